// The one control loop: take a batch, decode, resolve in the ledger, read the facts events need,
// publish events and dead letters, then settle every message (ack / nak with delay / term).
// A command is acked only after its outcome is in the ledger and its event is stored.
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import {
  deadLetterOnce,
  type DeadLetterReason,
  type DeadLetterSource,
} from "../broker/dead-letter.ts";
import { storeEvents } from "../broker/publisher.ts";
import type { Chart } from "../domain/accounts.ts";
import { decodeMessage, type DecodeLimits, type Decoded } from "../domain/commands.ts";
import { appliedEvent, rejectedEvent, type OutboundEvent } from "../domain/events.ts";
import { formatOperationId } from "../domain/ids.ts";
import type { Operation, Verdict } from "../domain/resolve.ts";
import { CountingLedger } from "../ledger/counting.ts";
import type { Ledger } from "../ledger/port.ts";
import { assert, AssertionError } from "../lib/assert.ts";
import { describeFailure, isTransient } from "../lib/failure.ts";
import type { Logger } from "../lib/log.ts";
import { pauseUnlessAborted, unlessAborted } from "../lib/signal.ts";
import { publishRetryDelayMs } from "./backoff.ts";
import type { AccountRegistry } from "../ledger-facts/account-registry.ts";
import { appliedFacts, type Applied, type AppliedFacts } from "../ledger-facts/applied-facts.ts";
import type { NameBook } from "../ledger-facts/name-book.ts";
import { resolveOperations } from "./ledger-passes.ts";
import type { WorkerStats } from "./stats.ts";
import type { Batcher } from "./batcher.ts";

export type WorkerLimits = DecodeLimits & {
  batchMessagesMax: number;
  batchWaitMs: number;
  passesMax: number;
  nakDelayMs: number;
  holdGraceMs: number;
  holdWaitNakMs: number;
  publishTimeoutMs: number;
  publishRetryMaxMs: number;
  ackWaitMs: number;
  pipelineDepth: number;
  /** After a stop, how long the batches in hand may take; then their messages are naked. */
  drainTimeoutMs: number;
};

export type WorkerDeps = {
  ledger: Ledger;
  js: JetStreamClient;
  jsm: JetStreamManager;
  dlqStream: string;
  chart: Chart;
  limits: WorkerLimits;
  log: Logger;
  registry: AccountRegistry;
  names: NameBook;
  stats: WorkerStats;
};

/** What happens to one message once the batch is resolved. */
type Settlement =
  | { kind: "ack"; outcome: "applied" | "rejected"; event: OutboundEvent | null }
  | { kind: "dead"; reason: DeadLetterReason; error: string }
  | { kind: "nak"; delayMs: number; why: string };

type Item = { m: JsMsg; decoded: Decoded };
type Letter = { source: DeadLetterSource; reason: DeadLetterReason; error: string };
/** What a batch still has to store: events and dead letters of decided operations. */
type Unstored = { events: OutboundEvent[]; letters: Letter[] };

function operationOf(item: Item): Operation | null {
  const d = item.decoded;
  if (d.kind === "malformed") return null;
  return {
    id: d.operationId,
    decoded: d,
    publishedAtMs: Math.floor(item.m.info.timestampNanos / 1e6),
  };
}

async function resolveBatch(
  deps: WorkerDeps,
  leaders: ReadonlyArray<Operation>,
): Promise<{ verdicts: Map<bigint, Verdict>; events: Map<bigint, OutboundEvent> }> {
  const { ledger, chart, limits, stats } = deps;
  const clock = () => ({ nowMs: Date.now(), holdGraceMs: limits.holdGraceMs });
  const verdicts = await resolveOperations(
    ledger,
    deps.registry,
    chart,
    leaders,
    clock,
    limits.passesMax,
    stats,
  );
  const applied: Applied[] = [];
  for (const op of leaders) {
    const v = verdicts.get(op.id);
    if (v?.kind === "applied") applied.push({ op, verdict: v });
  }
  const facts =
    applied.length > 0
      ? await appliedFacts(ledger, chart, deps.names, applied)
      : new Map<bigint, AppliedFacts>();
  const events = new Map<bigint, OutboundEvent>();
  for (const op of leaders) {
    const v = verdicts.get(op.id);
    const d = op.decoded;
    if (v?.kind === "rejected")
      events.set(op.id, rejectedEvent(op.id, d.type, d.fields, v.reason, v.detail));
    const f = facts.get(op.id);
    if (v?.kind === "applied" && f)
      events.set(op.id, appliedEvent(op.id, d.type, f.fields, f.balances, f.ledgerTimestamp));
  }
  return { verdicts, events };
}

function settlementOf(
  deps: WorkerDeps,
  item: Item,
  leader: Operation | undefined,
  verdict: Verdict | undefined,
  event: OutboundEvent | undefined,
): Settlement {
  const d = item.decoded;
  if (d.kind === "malformed") return { kind: "dead", reason: "malformed", error: d.error };
  const follower = leader !== undefined && leader.decoded !== d;
  if (follower && leader.decoded.fingerprint !== d.fingerprint) {
    if (verdict?.kind === "applied" || verdict?.kind === "rejected")
      return {
        kind: "dead",
        reason: "conflict",
        error: "operationId was already used by a command with different content",
      };
    return {
      kind: "nak",
      delayMs: deps.limits.nakDelayMs,
      why: "same operationId with other content in one batch",
    };
  }
  switch (verdict?.kind) {
    case "applied":
    case "rejected":
      assert(
        follower || event !== undefined,
        "a decided operation has its event before it is acknowledged",
      );
      return { kind: "ack", outcome: verdict.kind, event: follower ? null : (event ?? null) };
    case "conflict":
      return { kind: "dead", reason: "conflict", error: verdict.detail };
    case "wait":
      return { kind: "nak", delayMs: deps.limits.holdWaitNakMs, why: verdict.detail };
    case undefined:
      return {
        kind: "nak",
        delayMs: deps.limits.nakDelayMs,
        why: "undecided after the configured ledger passes",
      };
  }
}

/**
 * Decodes and resolves a batch in the ledger, then starts storing its events and settling its
 * messages. Resolves when the ledger work is done, with the delivery still in flight, so the loop
 * can take the next batch meanwhile; batches are independent (the ledger decides every race).
 * Once `stop` aborts, a batch whose events cannot be stored stops retrying and is naked.
 */
export async function processBatch(
  deps: WorkerDeps,
  msgs: ReadonlyArray<JsMsg>,
  stop: AbortSignal = new AbortController().signal,
): Promise<{ delivered: Promise<void> }> {
  const started = Date.now();
  const heartbeat = setInterval(
    () => msgs.forEach((m) => m.working()),
    Math.max(100, Math.floor(deps.limits.ackWaitMs / 3)),
  );
  const stopHeartbeat = () => clearInterval(heartbeat);
  // Evidence for the fault suite (test/fault, FAULT_SERVICE_LOGS): which stream sequences reached this process.
  if (deps.log.isLevelEnabled("debug"))
    deps.log.debug({ seqs: msgs.map((m) => m.info.streamSequence) }, "batch received");
  try {
    // Loops, not closures made per batch: those lose their optimized code at every full GC.
    const items: Item[] = [];
    for (const m of msgs)
      items.push({ m, decoded: decodeMessage(m.subject, m.data, deps.chart, deps.limits) });
    const leaders = new Map<bigint, Operation>();
    for (const item of items) {
      const op = operationOf(item);
      if (op && !leaders.has(op.id)) leaders.set(op.id, op);
    }
    let resolved: Awaited<ReturnType<typeof resolveBatch>>;
    const decoded = Date.now();
    const counted = new CountingLedger(deps.ledger); // this batch's requests only, whatever else is in flight
    try {
      resolved = await resolveBatch({ ...deps, ledger: counted }, [...leaders.values()]);
      deps.stats.ledgerCountedBatches += 1;
      deps.stats.ledgerRequests += counted.total;
      deps.stats.requestsPerBatch.push(counted.total);
    } catch (error) {
      // Only a named transient failure (ledger busy or past its deadline, broker away) is retried;
      // anything else is a bug that a redelivery would repeat: the batch fails, the process exits.
      if (!isTransient(error)) throw error;
      deps.log.warn({ err: error, messages: msgs.length }, "ledger unavailable; batch naked");
      msgs.forEach((m) => m.nak(deps.limits.nakDelayMs));
      deps.stats.naks += msgs.length;
      stopHeartbeat();
      return { delivered: Promise.resolve() };
    }
    const settlements: Settlement[] = [];
    for (const item of items) {
      const id = item.decoded.kind === "malformed" ? null : item.decoded.operationId;
      const leader = id === null ? undefined : leaders.get(id);
      settlements.push(
        settlementOf(
          deps,
          item,
          leader,
          id === null ? undefined : resolved.verdicts.get(id),
          id === null ? undefined : resolved.events.get(id),
        ),
      );
    }
    const ledgered = Date.now();
    const delivered = storeAndSettle(deps, items, settlements, ledgered, stop)
      .then(() => {
        const now = Date.now();
        deps.log.info(
          {
            messages: msgs.length,
            operations: leaders.size,
            ledgerRequests: counted.total,
            ms: now - started,
            firstAgeMs: started - Math.floor((msgs[0] as JsMsg).info.timestampNanos / 1e6),
            decodeMs: decoded - started,
            ledgerMs: ledgered - decoded,
            publishMs: now - ledgered,
          },
          "batch settled",
        );
      })
      .finally(stopHeartbeat);
    return { delivered };
  } catch (error) {
    stopHeartbeat();
    throw error;
  }
}

/**
 * Stores events and dead letters, then acks, terms or naks each message. Every message here is
 * decided (or waits, and is naked after): its event is retried in hand, the messages kept leased
 * by the batch's heartbeat, for as long as it takes; a nak would count a delivery, and max
 * deliveries would dead-letter an operation whose money already moved.
 */
async function storeAndSettle(
  deps: WorkerDeps,
  items: ReadonlyArray<Item>,
  settlements: ReadonlyArray<Settlement>,
  decidedAtMs: number,
  stop: AbortSignal,
): Promise<void> {
  const { limits, stats, log } = deps;
  const unstored: Unstored = { events: [], letters: [] };
  // Loops, not forEach closures: a closure made per batch loses its optimized code at every full
  // GC and is compiled again (V8 keeps that code only while a closure holding it lives).
  for (let i = 0; i < settlements.length; i += 1) {
    const s = settlements[i] as Settlement;
    const m = (items[i] as Item).m;
    if (s.kind === "ack" && s.event) unstored.events.push(s.event);
    if (s.kind === "dead") {
      const source = {
        subject: m.subject,
        data: m.data,
        streamSequence: m.info.streamSequence,
        ...(m.headers ? { headers: m.headers } : {}),
      };
      unstored.letters.push({ source, reason: s.reason, error: s.error });
    }
  }
  const published = unstored.events.length;
  if (!(await storeDecided(deps, unstored, decidedAtMs, stop))) {
    log.warn(
      { messages: items.length },
      "stopping with events or dead letters not stored; batch naked, its redelivery stores them",
    );
    items.forEach(({ m }) => m.nak(limits.nakDelayMs));
    stats.naks += items.length;
    return;
  }
  stats.eventsPublished += published;
  for (let i = 0; i < settlements.length; i += 1) {
    const s = settlements[i] as Settlement;
    const { m, decoded } = items[i] as Item;
    if (s.kind === "ack") m.ack();
    else if (s.kind === "dead") m.term();
    else m.nak(s.delayMs);
    stats.count(decoded, s);
    if (log.isLevelEnabled("debug")) {
      const operationId =
        decoded.kind === "malformed" ? undefined : formatOperationId(decoded.operationId);
      log.debug(
        {
          operationId,
          seq: m.info.streamSequence,
          deliveries: m.info.deliveryCount,
          verdict: s.kind,
          ...(s.kind === "dead" ? { reason: s.reason } : {}),
        },
        "message settled",
      );
    }
  }
}

/**
 * Stores `open` (emptying it), retrying what failed with a capped backoff until everything is
 * stored: true; false when `stop` aborted first. The first attempt always runs to its end (bounded
 * by publishTimeoutMs), so a stop lets the batches in hand finish; only retries observe it.
 */
async function storeDecided(
  deps: WorkerDeps,
  open: Unstored,
  decidedAtMs: number,
  stop: AbortSignal,
): Promise<boolean> {
  if (open.events.length + open.letters.length === 0) return true;
  const entry = deps.stats.unstored.add(open.events.length + open.letters.length, decidedAtMs);
  try {
    for (let attempt = 1; ; attempt += 1) {
      const attempted = storeOnce(deps, open);
      const failure = attempt === 1 ? await attempted : await unlessAborted(attempted, stop);
      if (failure === null) return false;
      entry.count = open.events.length + open.letters.length;
      if (entry.count === 0) return true;
      const retryInMs = publishRetryDelayMs(attempt, deps.limits.publishRetryMaxMs);
      deps.log.warn(
        {
          err: describeFailure(failure?.cause),
          events: open.events.length,
          letters: open.letters.length,
          attempt,
          retryInMs,
          unstoredMs: Date.now() - decidedAtMs,
        },
        "events or dead letters of decided operations not stored; retrying, the messages stay leased",
      );
      deps.stats.publishRetries += 1;
      if (!(await pauseUnlessAborted(retryInMs, stop))) return false;
    }
  } finally {
    deps.stats.unstored.remove(entry);
  }
}

/** One attempt: what is stored leaves `open`; answers the first failure (undefined: none). */
async function storeOnce(
  deps: WorkerDeps,
  open: Unstored,
): Promise<{ cause: unknown } | undefined> {
  const { js, limits } = deps;
  const ctx = {
    js,
    jsm: deps.jsm,
    dlqStream: deps.dlqStream,
    publishTimeoutMs: limits.publishTimeoutMs,
  };
  const [events, letters] = await Promise.all([
    storeEvents(js, open.events, limits.publishTimeoutMs),
    Promise.allSettled(open.letters.map((l) => deadLetterOnce(ctx, l.source, l.reason, l.error))),
  ]);
  let first: { cause: unknown } | undefined;
  for (const r of letters) {
    if (r.status === "rejected" && r.reason instanceof AssertionError) throw r.reason;
    if (r.status === "rejected") first ??= { cause: r.reason };
  }
  for (const e of events) if (e !== null) first ??= { cause: e };
  if (first === undefined) {
    open.events.length = 0;
    open.letters.length = 0;
    return undefined;
  }
  open.events = open.events.filter((_, i) => events[i] !== null);
  open.letters = open.letters.filter((_, i) => letters[i]?.status === "rejected");
  return first;
}

/**
 * Runs until `stop` resolves: then the batches in hand are finished and settled, for at most
 * `drainTimeoutMs`; the messages of those still unfinished are naked, for another worker. At most
 * `pipelineDepth` batches are in hand at once, each anywhere between its ledger work and its last
 * acknowledgement: while one batch waits for the ledger, the next is decoded and sent to it, and
 * an earlier one's events are stored. A batch grows while an earlier one is with the ledger and is
 * taken as it stands when none is (src/worker/batcher.ts). Batches are independent: the ledger decides every race
 * between them, as it does between processes. A batch that fails (an assertion: never a transient
 * failure, those are naked inside) stops the loop with its error.
 */
export async function runWorker(
  deps: WorkerDeps,
  batcher: Batcher,
  stop: Promise<void>,
): Promise<void> {
  const inFlight = new Map<Promise<void>, ReadonlyArray<JsMsg>>(); // batch → its messages
  const withLedger = new Set<Promise<void>>(); // batches not done with the ledger yet
  const halt = new AbortController();
  void stop.then(() => halt.abort());
  const failures: unknown[] = []; // batches that failed; the first one's error is thrown
  try {
    for (;;) {
      while (
        inFlight.size >= deps.limits.pipelineDepth &&
        failures.length === 0 &&
        !halt.signal.aborted
      )
        await unlessAborted(Promise.race(inFlight.keys()), halt.signal);
      const batch =
        failures.length === 0
          ? await batcher.take(
              deps.limits.batchMessagesMax,
              deps.limits.batchWaitMs,
              halt.signal,
              withLedger.size > 0 ? Promise.race(withLedger) : null,
            )
          : null;
      if (failures.length > 0) {
        batch?.forEach((m) => m.nak());
        throw failures[0];
      }
      if (batch === null) return;
      deps.stats.batches += 1;
      deps.stats.batchSizes.push(batch.length);
      const ledgered = processBatch(deps, batch, halt.signal);
      const ledgerDone: Promise<void> = ledgered
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => withLedger.delete(ledgerDone));
      withLedger.add(ledgerDone);
      const settled: Promise<void> = ledgered
        .then(({ delivered }) => delivered)
        .catch((error: unknown) => {
          failures.push(error);
          halt.abort();
        })
        .finally(() => inFlight.delete(settled));
      inFlight.set(settled, batch);
    }
  } finally {
    await drain(deps, inFlight);
  }
}

/** Waits for the batches in hand, at most drainTimeoutMs; naks the messages of those left. */
async function drain(
  deps: WorkerDeps,
  inFlight: Map<Promise<void>, ReadonlyArray<JsMsg>>,
): Promise<void> {
  if (inFlight.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>(
    (resolve) => (timer = setTimeout(() => resolve(false), deps.limits.drainTimeoutMs)),
  );
  const finished = await Promise.race([Promise.all(inFlight.keys()).then(() => true), expired]);
  clearTimeout(timer);
  if (finished) return;
  const left = [...inFlight.values()].flat();
  for (const m of left) m.nak();
  deps.stats.naks += left.length;
  deps.log.warn(
    { batches: inFlight.size, messages: left.length, drainTimeoutMs: deps.limits.drainTimeoutMs },
    "drain timed out; the unfinished batches' messages are naked for redelivery",
  );
}
