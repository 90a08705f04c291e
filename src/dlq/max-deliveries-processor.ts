// The max-deliveries processor: turns each MAX_DELIVERIES advisory of the commands consumer into
// exactly one dead letter with reason max_deliveries, then acks the advisory.
//
// The server publishes the advisory once a command has been delivered consumer.maxDeliver times
// without an ack; topology captures it in the advisories stream, so none is lost while no process
// listens. Every service process runs this processor on one shared durable consumer of that stream,
// so each advisory goes to one process at a time; a redelivery (ack wait, crash) may reach another.
//
// Exactly one letter per command, even when the advisory comes twice (the server emits it again
// after a crash rolled its consumer state back; shared notes §3/§5), or is handled by two processes:
// 1. A claim subject per command, billing.dlq.marker.max_deliveries.<commandSeq>, in the
//    dead-letter stream. If it holds a message, the command was dead-lettered: ack, done. One
//    get of the last message on a concrete subject, answered by the stream leader.
// 2. Otherwise read the command by its stream sequence and dead-letter it (src/broker/dead-letter.ts):
//    its msgId dlq:max_deliveries:<commandSeq> makes a concurrent or retried copy inside the
//    duplicate window a no-op.
// 3. Write the claim, expecting the subject to be empty (last subject sequence 0); "wrong last
//    sequence" means another process wrote it first, which is as good.
// 4. Ack the advisory.
// A crash between 2 and 3 leaves the advisory unacked; it is redelivered after ackWaitMs, inside
// the dead-letter stream's duplicate window as long as that window (dlqWindowMs: the longer of
// dlqDuplicateWindowMs and duplicateWindowMs) > ackWaitMs + retryDelayMs (warned at start).
// We chose a claim over a KV bucket (one more stream to create and secure) and over scanning the
// letters for a Billing-Original-Sequence (cost grows with the stream).
//
// A command deleted from the commands stream before we read it is never silently dropped: it gets
// an explanatory letter with an empty payload, original subject "unknown", and an error log line.
//
// A command whose operation the ledger has decided is never dead-lettered (its money moved, or its
// rejection is final; only its event may be missing): the worker retries a decided batch's events
// in hand, so this happens only when processes died with it again and again. The processor
// publishes the command again, headers kept, under Nats-Msg-Id redeliver:<commandSeq> (a duplicate
// advisory inside the window stores no second copy; outside it, a second copy is one more replay).
// A worker takes the copy, finds the decision in the ledger, rebuilds the same event and stores
// it; the subject expectation makes that a no-op when the event was stored after all.

import { nanos } from "@nats-io/transport-node";
import { copyHeaders } from "../broker/headers.ts";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  ReplayPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StoredMsg,
} from "@nats-io/jetstream";
import type { Transfer } from "tigerbeetle-node";
import { deadLetter, isClaimed, writeClaim, type DeadLetterSource } from "../broker/dead-letter.ts";
import type { Chart } from "../domain/accounts.ts";
import { decodeMessage, type DecodeLimits } from "../domain/commands.ts";
import { decide, lookupIds, type Operation } from "../domain/resolve.ts";
import type { Ledger } from "../ledger/port.ts";
import { BrokerConfigError, BrokerError, BrokerUnavailableError } from "../broker/errors.ts";
import {
  consumerMaxWaiting,
  dlqWindowMs,
  maxDeliveriesAdvisorySubject,
} from "../broker/topology.ts";
import { advisoryProcessorDefaults, REDELIVERY_ROUNDS_MAX } from "../config/limits.ts";
import { topologyOf } from "../config/topology.ts";
import type { Config } from "../config/schema.ts";
import { assert } from "../lib/assert.ts";
import { describeFailure, exitOnBug, isTransient } from "../lib/failure.ts";
import type { Logger } from "../lib/log.ts";
import { parseAdvisory, type MaxDeliverAdvisory } from "./advisory.ts";
import { unknownOriginalSubject } from "./layout.ts";

export interface AdvisoryProcessorDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  config: Config;
  log: Logger;
  /** The ledger and chart, to tell a decided operation (never dead-lettered) from one that is not. */
  decisions?: { ledger: Ledger; chart: Chart };
  /** Told each advisory's verdict once it is acked (the metrics). */
  counted?: (outcome: AdvisoryOutcome) => void;
}

export interface AdvisoryProcessor {
  // Finishes the advisory in hand, then closes the subscription. Safe to call twice.
  stop(): Promise<void>;
  // Settles when the processor has stopped; rejects only on an assertion (a programmer error).
  done: Promise<void>;
}

export function advisoryConsumerName(config: Config): string {
  return `${config.consumer.name}-dlq`;
}

export function advisoryAckWaitMs(config: Config): number {
  const handleMs = 2 * config.nats.requestTimeoutMs + 2 * config.worker.publishTimeoutMs;
  return advisoryProcessorDefaults.ackWaitFactor * handleMs;
}

export function advisoryConsumerConfig(config: Config): ConsumerConfig {
  const batchMax = config.dlq.advisoriesBatchMax;
  return {
    durable_name: advisoryConsumerName(config),
    description:
      "billing dead-letter processor: MAX_DELIVERIES advisories of the commands consumer",
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: maxDeliveriesAdvisorySubject({
      commandsStream: config.streams.commands,
      consumer: config.consumer.name,
    }),
    ack_wait: nanos(advisoryAckWaitMs(config)),
    // Never give up on an advisory: a failure is transient (nak with delay) or logged and termed.
    max_deliver: -1,
    max_ack_pending: batchMax * advisoryProcessorDefaults.processesMax,
    max_waiting: consumerMaxWaiting,
    max_batch: batchMax,
    headers_only: false,
    num_replicas: config.streams.replicas,
    mem_storage: false,
  };
}

// Creates or updates the durable; every process sends the same configuration.
export async function ensureAdvisoryConsumer(jsm: JetStreamManager, config: Config): Promise<void> {
  const want = advisoryConsumerConfig(config);
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.add(config.streams.advisories, want);
  } catch (err) {
    if (err instanceof JetStreamApiError) {
      throw new BrokerConfigError(
        `consumer ${config.streams.advisories}/${want.durable_name ?? "?"}: the server refused our configuration: ${err.message} (code ${err.code})`,
        { cause: err },
      );
    }
    throw new BrokerUnavailableError(
      `consumer ${config.streams.advisories}/${want.durable_name ?? "?"}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
  const got = info.config;
  const keys = [
    "ack_policy",
    "deliver_policy",
    "filter_subject",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
    "max_batch",
  ] as const;
  const diffs = keys.filter((k) => got[k] !== want[k]);
  if (diffs.length > 0) {
    throw new BrokerConfigError(
      `consumer ${info.stream_name}/${info.name} does not have our configuration: ${diffs.join(", ")}`,
    );
  }
}

export type AdvisoryOutcome =
  "dead_lettered" | "already_dead_lettered" | "command_missing" | "redelivered";

/** What it takes to ask the ledger whether a command's operation is decided. */
export interface DecisionLookup {
  ledger: Ledger;
  chart: Chart;
  decode: DecodeLimits;
  holdGraceMs: number;
}

/** The header a command published again by the processor carries: the sequence of the copy that reached max deliveries. */
export const redeliveryOfHeader = "Billing-Redelivery-Of";

/** How many times the processor has published this command again (absent: never). */
export const redeliveryRoundHeader = "Billing-Redelivery-Round";

export function redeliveryMsgId(commandSeq: number): string {
  return `redeliver:${commandSeq}`;
}

export interface AdvisoryContext {
  js: JetStreamClient;
  jsm: JetStreamManager;
  commandsStream: string;
  dlqStream: string;
  publishTimeoutMs: number;
  /** Absent: every command that reached max deliveries is dead-lettered (tools without a ledger). */
  decisions?: DecisionLookup;
}

export function advisoryContextOf(
  deps: Pick<AdvisoryProcessorDeps, "js" | "jsm" | "config" | "decisions">,
): AdvisoryContext {
  const c = deps.config;
  const ctx: AdvisoryContext = {
    js: deps.js,
    jsm: deps.jsm,
    commandsStream: c.streams.commands,
    dlqStream: c.streams.dlq,
    publishTimeoutMs: c.worker.publishTimeoutMs,
  };
  if (deps.decisions === undefined) return ctx;
  const decode = {
    holdTimeoutSecondsMax: c.worker.holdTimeoutSecondsMax,
    payloadBytesMax: c.worker.payloadBytesMax,
  };
  return { ...ctx, decisions: { ...deps.decisions, decode, holdGraceMs: c.worker.holdGraceMs } };
}

// One advisory → at most one letter. Throws only on transient failures (and assertions).
export async function handleAdvisory(
  ctx: AdvisoryContext,
  advisory: MaxDeliverAdvisory,
): Promise<AdvisoryOutcome> {
  const seq = advisory.streamSequence;
  if (await isClaimed(ctx, "max_deliveries", seq)) return "already_dead_lettered";
  const command = await getCommand(ctx.jsm, ctx.commandsStream, seq);
  const decided =
    command !== null && ctx.decisions !== undefined && (await isDecided(ctx.decisions, command));
  const round = command === null ? 0 : roundOf(command);
  if (decided && round < REDELIVERY_ROUNDS_MAX) {
    await redeliver(ctx, command, round + 1);
    return "redelivered";
  }
  const source: DeadLetterSource =
    command === null
      ? { subject: unknownOriginalSubject, data: new Uint8Array(0), streamSequence: seq }
      : {
          subject: command.subject,
          data: command.data,
          headers: command.header,
          streamSequence: seq,
        };
  const error = decided
    ? `decided in the ledger, but its event was still not stored after ${round} republishes, each delivered ${advisory.deliveries} times: ` +
      "its replay fails every time; fix the cause (the workers' logs), then replay this letter"
    : letterError(advisory, ctx.commandsStream, command !== null);
  await deadLetter(ctx.js, source, "max_deliveries", error, ctx.publishTimeoutMs);
  await writeClaim(ctx, "max_deliveries", seq);
  return command === null ? "command_missing" : "dead_lettered";
}

/** Whether the ledger holds the command's outcome (applied, or rejected and recorded): one lookup. */
export async function isDecided(d: DecisionLookup, command: StoredMsg): Promise<boolean> {
  const decoded = decodeMessage(command.subject, command.data, d.chart, d.decode);
  if (decoded.kind === "malformed") return false;
  const op: Operation = { id: decoded.operationId, decoded, publishedAtMs: command.time.getTime() };
  const found = new Map<bigint, Transfer>();
  for (const t of await d.ledger.lookupTransfers(lookupIds(d.chart, [op]))) found.set(t.id, t);
  const verdict = decide(d.chart, [op], found, {
    nowMs: Date.now(),
    holdGraceMs: d.holdGraceMs,
  }).verdicts.get(op.id);
  return verdict?.kind === "applied" || verdict?.kind === "rejected";
}

// The command again, byte for byte with its own headers (no Nats-* header: a direct get adds some,
// and the original Nats-Msg-Id is inside the duplicate window perhaps), so a worker replays it.
function roundOf(command: StoredMsg): number {
  const n = Number(command.header?.get(redeliveryRoundHeader) ?? "0");
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

async function redeliver(ctx: AdvisoryContext, command: StoredMsg, round: number): Promise<void> {
  const h = copyHeaders(command.header, [redeliveryOfHeader, redeliveryRoundHeader]);
  h.set(redeliveryOfHeader, String(command.seq));
  h.set(redeliveryRoundHeader, String(round));
  try {
    await ctx.js.publish(command.subject, command.data, {
      msgID: redeliveryMsgId(command.seq),
      headers: h,
      timeout: ctx.publishTimeoutMs,
      retries: 1,
    });
  } catch (err) {
    throw new BrokerUnavailableError(
      `command #${command.seq} published again: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}

function letterError(a: MaxDeliverAdvisory, commandsStream: string, found: boolean): string {
  if (!found) {
    return (
      `command #${a.streamSequence} reached max deliveries (${a.deliveries} to consumer ${a.consumer}) but is no longer in ` +
      `stream ${commandsStream} (deleted or aged out); its subject, headers and payload are lost`
    );
  }
  return (
    `delivered ${a.deliveries} times to consumer ${a.consumer} without an ack (max deliveries); a late ack may still ` +
    `have applied it: check the operation before replaying`
  );
}

async function getCommand(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(stream, { seq });
  } catch (err) {
    throw new BrokerUnavailableError(`command #${seq} of ${stream}: ${describeFailure(err)}`, {
      cause: err,
    });
  }
}

export function startAdvisoryProcessor(deps: AdvisoryProcessorDeps): AdvisoryProcessor {
  const { config, log } = deps;
  assert(config.dlq.advisoriesBatchMax > 0, "advisory processor: advisoriesBatchMax > 0");
  // The letters live in the dead-letter stream, so its window (the longer of the two) is the one
  // that must outlast a redelivered advisory.
  const retryWindowMs = advisoryAckWaitMs(config) + advisoryProcessorDefaults.retryDelayMs;
  const letterWindowMs = dlqWindowMs(topologyOf(config));
  if (letterWindowMs <= retryWindowMs) {
    log.warn(
      { dlqDuplicateWindowMs: letterWindowMs, retryWindowMs },
      "duplicate window shorter than the advisory retry: a crash between a dead letter and its claim could store the letter twice",
    );
  }
  const state: LoopState = { stopping: false, messages: null, wake: () => undefined };
  const done = runLoop(deps, state);
  log.info(
    { consumer: advisoryConsumerName(config), stream: config.streams.advisories },
    "dead-letter processor started",
  );
  return {
    done,
    stop: async () => {
      state.stopping = true;
      state.wake();
      // Ends the iteration in hand; the loop itself waits for the close, and only when it read.
      void state.messages?.close().catch(() => undefined);
      await done;
    },
  };
}

interface LoopState {
  stopping: boolean;
  messages: ConsumerMessages | null;
  wake: () => void;
}

async function runLoop(deps: AdvisoryProcessorDeps, state: LoopState): Promise<void> {
  const { js, jsm, config, log } = deps;
  const ctx = advisoryContextOf(deps);
  const d = advisoryProcessorDefaults;
  let delayMs: number = d.resubscribeDelayMs;
  while (!state.stopping) {
    // nats.js resolves close() only when the iterator has run and ended: a subscription stopped
    // before it was read from is closed without waiting (waiting hung a stop for good).
    let read = false;
    try {
      await ensureAdvisoryConsumer(jsm, config);
      const consumer = await js.consumers.get(
        config.streams.advisories,
        advisoryConsumerName(config),
      );
      state.messages = await consumer.consume({
        max_messages: config.dlq.advisoriesBatchMax,
        expires: advisoryProcessorDefaults.pullExpiresMs,
      });
      if (state.stopping) break;
      read = true;
      for await (const m of state.messages) {
        delayMs = d.resubscribeDelayMs;
        await settle(ctx, log, m, deps.counted);
        if (state.stopping) break;
      }
      if (!state.stopping) log.warn("dead-letter processor: subscription ended; subscribing again");
    } catch (err) {
      // A refused configuration needs an operator (logged, retried); the broker being away is
      // retried; anything else is a bug: one fatal line and exit, as in every component.
      const refused = err instanceof BrokerError || err instanceof JetStreamApiError;
      if (!isTransient(err) && !refused) exitOnBug(log, err, "the dead-letter processor");
      const fatal = err instanceof BrokerError && !err.transient;
      log[fatal ? "error" : "warn"](
        { err: describeFailure(err), retryInMs: delayMs },
        "dead-letter processor: subscription failed; subscribing again",
      );
    } finally {
      const closing = state.messages?.close().catch(() => undefined);
      if (read) await closing;
      state.messages = null;
    }
    if (state.stopping) break;
    await pause(state, delayMs);
    delayMs = Math.min(2 * delayMs, d.resubscribeDelayMaxMs);
  }
}

// The one place that acks, naks or terms an advisory.
async function settle(
  ctx: AdvisoryContext,
  log: Logger,
  m: JsMsg,
  counted: (outcome: AdvisoryOutcome) => void = () => undefined,
): Promise<void> {
  const parsed = parseAdvisory(m.data);
  if (!parsed.ok) {
    // Kept in the advisories stream for an operator; handling it again cannot help.
    log.error(
      { advisorySequence: m.seq, error: parsed.error },
      "advisory not understood; terminated, left in the advisories stream",
    );
    m.term();
    return;
  }
  const a = parsed.advisory;
  const facts = {
    advisorySequence: m.seq,
    commandSequence: a.streamSequence,
    deliveries: a.deliveries,
    consumer: a.consumer,
  };
  if (a.stream !== ctx.commandsStream) {
    log.error(
      { ...facts, stream: a.stream },
      "advisory for another stream; acked, left in the advisories stream",
    );
    m.ack();
    return;
  }
  let outcome: AdvisoryOutcome;
  try {
    outcome = await handleAdvisory(ctx, a);
  } catch (err) {
    if (!isTransient(err)) throw err; // a bug: runLoop ends the process
    log.warn({ ...facts, err: describeFailure(err) }, "advisory not handled; retrying later");
    m.nak(advisoryProcessorDefaults.retryDelayMs);
    return;
  }
  m.ack();
  counted(outcome);
  if (outcome === "redelivered")
    log.warn(
      { ...facts, verdict: outcome },
      "max deliveries: operation decided in the ledger; command published again so that a worker stores its event",
    );
  else if (outcome === "command_missing")
    log.error(
      { ...facts, verdict: outcome },
      "max deliveries: command no longer in the stream; explanatory dead letter stored",
    );
  else if (outcome === "dead_lettered")
    log.warn({ ...facts, verdict: outcome }, "max deliveries: command dead-lettered");
  else
    log.info(
      { ...facts, verdict: outcome },
      "max deliveries: duplicate advisory; already dead-lettered",
    );
}

function pause(state: LoopState, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    state.wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}
