// How a fault scenario is judged once the faults stop: wait until every command is settled and every
// due hold has expired, then compare what went in (the published commands) with what came out (the
// events, the dead letters, the balances) and run the finance audit over the ledger and the events.
import { leaderRange, streamRange } from "../../src/broker/stream-range.ts";
import { readFileSync } from "node:fs";
import type { StoredMsg } from "@nats-io/jetstream";
import { runAudit } from "../../src/audit/audit.ts";
import { eventPages, lastEventSequence } from "../../src/audit/sources.ts";
import type { AuditReport } from "../../src/audit/report.ts";
import { formatOperationId, parseOperationId } from "../../src/domain/ids.ts";
import { openLedger } from "../../src/ledger/index.ts";
import { readChart } from "../../src/service.ts";
import { BalanceModel } from "../support/model.ts";
import { testConfig } from "../support/service.ts";
import { storedMessages, waitFor } from "../support/streams.ts";
import type { FaultEnv } from "./harness.ts";
import type { Workload } from "./workload.ts";

export type Row = {
  scenario: string;
  faults: number;
  published: number;
  lost: number;
  appliedTwice: number;
  eventsDuplicated: number;
  deadLetters: number;
  seconds: number;
  audit: AuditReport;
  /** Deliveries beyond one per stored command: redeliveries after crashes, stalls and outages, and naks. */
  redelivered: number;
  /** Commands the service's command recovery published again (stored, behind the consumer, no outcome). */
  recovered: number;
  /**
   * Commands the broker acknowledged and then no longer held (nowhere in the commands stream) with
   * no event: sent again by their publisher with the same operationId, as the contract asks of a
   * publisher whose event does not come (the client's `wait` does it by itself).
   */
  resent: number;
  /** What went wrong, one line each (empty when the scenario holds). */
  problems: string[];
  /** What did not go to plan without breaking a guarantee (from the environment). */
  notes: string[];
};

export type ExpectedDeadLetter = { reason: "malformed" | "conflict"; sequence: number };

type Payload = Record<string, unknown> & { event: string };
type Event = { seq: number; subject: string; payload: Payload };

const decoder = new TextDecoder();
const SETTLE_TIMEOUT_MS = 240_000;

export async function readEvents(env: FaultEnv): Promise<Event[]> {
  const state = await lastEventSequence(env.jsm, "BILLING_EVENTS");
  const out: Event[] = [];
  for await (const page of eventPages(env.js, "BILLING_EVENTS", state.first, state.last, 1000)) {
    for (const m of page)
      out.push({
        seq: m.seq,
        subject: m.subject,
        payload: JSON.parse(decoder.decode(m.data)) as Payload,
      });
  }
  return out;
}

/** Holds published with a timeout whose events say they were neither captured nor released. */
function expiring(workload: Workload, events: ReadonlyArray<Event>): string[] {
  const resolved = new Set(
    events
      .filter((e) => e.payload.event === "captured" || e.payload.event === "released")
      .map((e) => String(e.payload["holdId"])),
  );
  const held = new Set(
    events.filter((e) => e.payload.event === "held").map((e) => String(e.payload["operationId"])),
  );
  return [...workload.holdTimeouts().keys()].filter((id) => held.has(id) && !resolved.has(id));
}

/** Waits for the consumer to have nothing pending or unacknowledged; a broker still recovering is asked again. */
async function idle(env: FaultEnv): Promise<void> {
  await waitFor(
    "the consumer idle",
    async () => {
      const info = await env.jsm.consumers
        .info("BILLING_COMMANDS", "billing-worker")
        .catch(() => null);
      return info !== null && info.num_pending === 0 && info.num_ack_pending === 0;
    },
    SETTLE_TIMEOUT_MS,
    200,
  );
}

/** Every published operation has its event and every due hold its expired event. */
function allAnswered(workload: Workload, events: ReadonlyArray<Event>): boolean {
  const ids = new Set(events.map((e) => String(e.payload["operationId"] ?? "")));
  const expired = new Set(
    events.filter((e) => e.payload.event === "expired").map((e) => String(e.payload["holdId"])),
  );
  return (
    [...workload.published.keys()].every((id) => ids.has(id)) &&
    expiring(workload, events).every((id) => expired.has(id))
  );
}

/**
 * How long after the consumer is idle a publisher waits for its events before it acts on a missing
 * one: longer than command recovery needs for commands the stream still holds (FAULT_OVERRIDES:
 * 10 s lag, a scan every second).
 */
const PUBLISHER_PATIENCE_MS = 60_000;

/**
 * Every service up, the consumer idle, and every due hold's expired event stored. A command whose
 * event has not come after PUBLISHER_PATIENCE_MS and that the commands stream no longer holds at
 * all was lost by the broker after its PubAck: its publisher sends it again with the same
 * operationId (counted; answers how many). A command the stream still holds is never sent again
 * here: answering it is the service's job, and settling fails if it does not.
 */
export async function settle(env: FaultEnv, workload: Workload): Promise<number> {
  await env.ensureServices();
  await idle(env);
  const complete = async (): Promise<boolean> => {
    const events = await readEvents(env).catch(() => null);
    return events !== null && allAnswered(workload, events);
  };
  const resent = await waitFor("events", complete, PUBLISHER_PATIENCE_MS, 500).then(
    () => 0,
    async () => resendLost(env, workload),
  );
  let lastRead: unknown = null;
  await waitFor(
    "every published operation's event and every due hold's expired event",
    async () => {
      const events = await readEvents(env).catch((error: unknown) => {
        lastRead = error;
        return null;
      });
      return events !== null && allAnswered(workload, events);
    },
    SETTLE_TIMEOUT_MS,
    500,
  ).catch(async (error: unknown) => {
    throw new Error(
      `${(error as Error).message}\n${await missingDetail(env, workload, lastRead)}${resent > 0 ? `\n  (${resent} commands the broker no longer held were sent again by their publishers)` : ""}`,
    );
  });
  await idle(env);
  return resent;
}

/**
 * Operation ids of every command the commands stream holds now (any copy, any Nats-Msg-Id), as its
 * leader has them: on a cluster an ordered consumer may be served from a replica that disagrees.
 */
async function operationsInStream(env: FaultEnv): Promise<Set<string>> {
  const info = await env.jsm.streams.info("BILLING_COMMANDS");
  const ids = new Set<string>();
  for await (const page of leaderRange(
    env.jsm,
    "BILLING_COMMANDS",
    info.state.first_seq,
    info.state.last_seq,
    1000,
    64,
  )) {
    for (const m of page) {
      try {
        const id = (JSON.parse(decoder.decode(m.data)) as { operationId?: unknown }).operationId;
        if (typeof id === "string") ids.add(id);
      } catch {
        // a malformed command of the workload
      }
    }
  }
  return ids;
}

/** Sends again, under a new Nats-Msg-Id, each command without its event that the stream no longer holds. */
async function resendLost(env: FaultEnv, workload: Workload): Promise<number> {
  const events = await readEvents(env);
  const answered = new Set(events.map((e) => String(e.payload["operationId"] ?? "")));
  const stored = await operationsInStream(env);
  const lost = [...workload.published.values()].filter(
    (p) => !answered.has(p.operationId) && !stored.has(p.operationId),
  );
  for (const p of lost) await workload.republish(env, p, `${p.operationId}:resent`);
  if (lost.length > 0)
    env.notes.push(
      `${lost.length} commands acknowledged by the broker were no longer in the commands stream and had no event; their publishers sent them again (e.g. ${lost
        .slice(0, 3)
        .map((p) => `${p.operationId} first stored at #${p.sequences[0] ?? "?"}`)
        .join(", ")})`,
    );
  return lost.length;
}

/** What is missing when settling times out: which operations, and where their commands are. */
async function missingDetail(
  env: FaultEnv,
  workload: Workload,
  lastRead: unknown,
): Promise<string> {
  const events = await readEvents(env).catch(
    (error: unknown) => `the events could not be read: ${String(error)}`,
  );
  if (typeof events === "string") return `${events}; last read error: ${String(lastRead)}`;
  const ids = new Set(events.map((e) => String(e.payload["operationId"] ?? "")));
  const expired = new Set(
    events.filter((e) => e.payload.event === "expired").map((e) => String(e.payload["holdId"])),
  );
  const missing = [...workload.published.values()].filter((p) => !ids.has(p.operationId));
  const notExpired = expiring(workload, events).filter((id) => !expired.has(id));
  const lines = [
    `${events.length} events read; ${missing.length} operations without an event; ${notExpired.length} due holds without an expired event`,
  ];
  // Decided in the ledger (a transfer or a rejection marker under the operation id) but no event: acknowledged without its event. Not there: never processed.
  const ledger = await openLedger({ driver: "embedded", path: env.ledgerPath });
  const decided =
    missing.length === 0
      ? []
      : await ledger
          .lookupTransfers(
            missing
              .map((p) => parseOperationId(p.operationId))
              .filter((id): id is bigint => typeof id === "bigint"),
          )
          .finally(() => ledger.destroy());
  const decidedIds = new Set(decided.map((t) => formatOperationId(t.id)));
  lines.push(
    `  ${missing.filter((p) => decidedIds.has(p.operationId)).length} of them decided in the ledger, ${missing.filter((p) => !decidedIds.has(p.operationId)).length} not`,
  );
  for (const p of missing.slice(0, 10)) {
    const stored = await Promise.all(
      p.sequences.map(async (seq) => {
        const m =
          (await env.jsm.streams
            .getMessage("BILLING_COMMANDS", { seq })
            .catch((e: unknown) => String(e))) ?? "not found";
        return typeof m === "string"
          ? `#${seq}: ${m}`
          : `#${seq}: ${m.subject} msgId ${m.header?.get("Nats-Msg-Id") ?? "-"}${m.header?.get("Nats-Msg-Id") === p.operationId ? "" : " (another message!)"}`;
      }),
    );
    lines.push(`  ${p.subject} ${p.operationId}: ${stored.join("; ")}`);
  }
  const consumer = await env.jsm.consumers
    .info("BILLING_COMMANDS", "billing-worker")
    .catch((e: unknown) => String(e));
  const stream = await env.jsm.streams.info("BILLING_COMMANDS").catch((e: unknown) => String(e));
  lines.push(
    `  consumer: ${typeof consumer === "string" ? consumer : JSON.stringify({ delivered: consumer.delivered, ack_floor: consumer.ack_floor, pending: consumer.num_pending, ack_pending: consumer.num_ack_pending })}`,
  );
  lines.push(
    `  commands stream: ${typeof stream === "string" ? stream : JSON.stringify(stream.state)}`,
  );
  if (typeof consumer !== "string")
    lines.push(
      ...(await serviceLogEvidence(
        env,
        workload,
        missing,
        consumer.ack_floor.stream_seq,
        consumer.delivered.stream_seq,
      )),
    );
  return lines.join("\n");
}

/** Examples of each kind printed by serviceLogEvidence. */
const EVIDENCE_EXAMPLES_MAX = 5;

/**
 * With FAULT_SERVICE_LOGS=1: for each missing operation's command (its stream sequences), whether
 * any service process logged it received ("batch received") or settled ("message settled", with
 * the verdict), grouped by where it sits against the consumer (below its ack floor, between the
 * floor and its delivered sequence, beyond that). Acked with no event would be the service's bug;
 * below the floor and never received, the consumer's.
 */
async function serviceLogEvidence(
  env: FaultEnv,
  workload: Workload,
  missing: ReadonlyArray<{ operationId: string; sequences: number[] }>,
  ackFloor: number,
  delivered: number,
): Promise<string[]> {
  const files = env.serviceLogs();
  if (files.length === 0) return ["  service logs: not kept (run with FAULT_SERVICE_LOGS=1)"];
  const received = new Map<number, number>();
  const settled = new Map<number, string[]>();
  for (const file of files) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.includes("batch received") && !line.includes("message settled")) continue;
      let entry: {
        msg?: string;
        seqs?: number[];
        seq?: number;
        verdict?: string;
        deliveries?: number;
        operationId?: string;
      };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (entry.msg === "batch received")
        for (const seq of entry.seqs ?? []) received.set(seq, (received.get(seq) ?? 0) + 1);
      if (entry.msg === "message settled" && entry.seq !== undefined)
        settled.set(entry.seq, [
          ...(settled.get(entry.seq) ?? []),
          `${entry.verdict ?? "?"}@${entry.deliveries ?? "?"} as ${entry.operationId ?? "?"}`,
        ]);
    }
  }
  const groups = new Map<string, string[]>();
  for (const p of missing) {
    for (const seq of p.sequences) {
      const place =
        seq <= ackFloor
          ? "at or below the ack floor"
          : seq <= delivered
            ? "above the ack floor, delivered"
            : "beyond the delivered sequence";
      const verdicts = settled.get(seq) ?? [];
      // A settled line names the operation the service decoded from what it was delivered under this sequence.
      const others = [
        ...new Set(
          verdicts.map((v) => v.split(" as ")[1] ?? "?").filter((id) => id !== p.operationId),
        ),
      ];
      const seen =
        others.length > 0
          ? "settled by a service as ANOTHER operation (the delivered message under this sequence was not the stream's)"
          : verdicts.some((v) => v.startsWith("ack@"))
            ? "acked by a service"
            : verdicts.length > 0
              ? "settled (not acked) by a service"
              : (received.get(seq) ?? 0) > 0
                ? "received, never settled"
                : "never received by any service";
      const key = `${place}: ${seen}`;
      const elsewhere = await Promise.all(
        others.map(async (id) => {
          const seqs = workload.published.get(id)?.sequences ?? [];
          const at = await Promise.all(
            seqs.map(async (q) => {
              const m = await env.jsm.streams
                .getMessage("BILLING_COMMANDS", { seq: q })
                .catch((e: unknown) => String(e));
              return typeof m === "string" || m === null
                ? `#${q}: ${String(m)}`
                : `#${q} holds ${m.header?.get("Nats-Msg-Id") ?? "-"}`;
            }),
          );
          return `${id} published at [${at.join(", ")}]`;
        }),
      );
      groups.set(key, [
        ...(groups.get(key) ?? []),
        `#${seq} ${p.operationId} received ${received.get(seq) ?? 0}x settled [${verdicts.join(",")}]${elsewhere.length > 0 ? ` (${elsewhere.join("; ")})` : ""}`,
      ]);
    }
  }
  const out = [
    `  service logs (${files.length} files, ${received.size} sequences received, ${settled.size} settled); missing commands by consumer position and log evidence (ack floor ${ackFloor}, delivered ${delivered}):`,
  ];
  for (const [key, items] of groups)
    out.push(
      `    ${key}: ${items.length}; e.g. ${items.slice(0, EVIDENCE_EXAMPLES_MAX).join("; ")}`,
    );
  return out;
}

export async function audit(
  env: FaultEnv,
  options: { settleMs: number } = { settleMs: 0 },
): Promise<AuditReport> {
  const config = testConfig(env.broker.url, env.ledgerPath, env.ws.configPath);
  const ledger = await openLedger({ driver: "embedded", path: env.ledgerPath });
  try {
    return await runAudit(
      {
        ledger,
        js: env.js,
        jsm: env.jsm,
        chart: await readChart(config, env, ledger),
        eventsStream: config.streams.events,
        shared: config.ledger.shared,
      },
      options,
    );
  } finally {
    ledger.destroy();
  }
}

function countEvents(
  workload: Workload,
  events: ReadonlyArray<Event>,
  problems: string[],
): { lost: number; duplicated: number } {
  const perOp = new Map<string, number>();
  const perHold = new Map<string, number>();
  for (const e of events) {
    const map = e.payload.event === "expired" ? perHold : perOp;
    const id = String(
      e.payload.event === "expired" ? e.payload["holdId"] : e.payload["operationId"],
    );
    map.set(id, (map.get(id) ?? 0) + 1);
  }
  let lost = 0;
  let duplicated = 0;
  for (const id of workload.published.keys()) if (!perOp.has(id)) lost += 1;
  for (const id of expiring(workload, events)) if (!perHold.has(id)) lost += 1;
  for (const [id, n] of [...perOp, ...perHold]) {
    duplicated += n - 1;
    if (n > 1) problems.push(`${n} events for ${id}`);
  }
  const phantom =
    [...perOp.keys()].filter((id) => !workload.published.has(id)).length +
    [...perHold.keys()].filter((id) => !workload.published.has(id)).length;
  if (phantom > 0) problems.push(`${phantom} event(s) for operations nobody published`);
  if (lost > 0) problems.push(`${lost} published operation(s) or due hold(s) without their event`);
  return { lost, duplicated };
}

/** (user, currency) pairs whose balance in the ledger differs from the model built from the events. */
async function balanceDifferences(
  env: FaultEnv,
  events: ReadonlyArray<Event>,
  problems: string[],
): Promise<number> {
  const model = new BalanceModel();
  const first = new Map<string, Event>();
  for (const e of events) {
    const key =
      e.payload.event === "expired"
        ? `expired:${String(e.payload["holdId"])}`
        : String(e.payload["operationId"]);
    if (!first.has(key)) first.set(key, e);
  }
  // Final balances do not depend on order; every event's own balances are the audit's to check.
  for (const e of first.values()) model.apply(e.payload);
  let differences = 0;
  for (const [key, want] of model.users) {
    const [currency, userId] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
    const got = await env.client.balance(userId, currency);
    if (got["posted"] !== want.posted.toString() || got["held"] !== want.held.toString()) {
      differences += 1;
      problems.push(
        `${currency}/${userId}: ledger ${String(got["posted"])}/${String(got["held"])}, model ${want.posted}/${want.held}`,
      );
    }
  }
  return differences;
}

/** The dead letters themselves (billing.dlq.<reason>), not the stream's bookkeeping (markers, replay records). */
export async function deadLetters(env: FaultEnv): Promise<StoredMsg[]> {
  return (await storedMessages(env.jsm, "BILLING_DLQ")).filter(
    (m) => m.subject.split(".").length === 3,
  );
}

async function deadLetterProblems(
  env: FaultEnv,
  expected: ReadonlyArray<ExpectedDeadLetter>,
  problems: string[],
): Promise<number> {
  const letters = await deadLetters(env);
  const got = letters
    .map(
      (m) =>
        `${m.header?.get("Billing-Reason") ?? "?"}#${m.header?.get("Billing-Original-Sequence") ?? "?"}`,
    )
    .sort();
  const want = expected.map((d) => `${d.reason}#${d.sequence}`).sort();
  if (JSON.stringify(got) !== JSON.stringify(want))
    problems.push(
      `dead letters ${JSON.stringify(got)} are not the expected ${JSON.stringify(want)}`,
    );
  return letters.length;
}

export async function verify(
  env: FaultEnv,
  workload: Workload,
  scenario: string,
  startedMs: number,
  expectedDead: ReadonlyArray<ExpectedDeadLetter> = [],
): Promise<Row> {
  const resent = await settle(env, workload);
  const problems: string[] = [];
  const events = await readEvents(env);
  const { lost, duplicated } = countEvents(workload, events, problems);
  const appliedTwice = await balanceDifferences(env, events, problems);
  const deadLetters = await deadLetterProblems(env, expectedDead, problems);
  const consumer = await env.jsm.consumers.info("BILLING_COMMANDS", "billing-worker");
  const stream = await env.jsm.streams.info("BILLING_COMMANDS");
  let recovered = 0;
  for await (const page of streamRange(
    env.js,
    "BILLING_COMMANDS",
    stream.state.first_seq,
    stream.state.last_seq,
    1000,
  ))
    recovered += page.filter((m) => m.headers?.has("Billing-Recovered-Of") === true).length;
  const report = await audit(env);
  if (!report.ok)
    problems.push(
      ...report.findings.listed
        .slice(0, 20)
        .map((f) => `audit: [${f.kind}] ${f.message} ${JSON.stringify(f.ids)}`),
    );
  return {
    scenario,
    faults: env.faults,
    published: workload.published.size,
    lost,
    appliedTwice,
    eventsDuplicated: duplicated,
    deadLetters,
    redelivered: consumer.delivered.consumer_seq - stream.state.messages,
    recovered,
    resent,
    seconds: Math.round((Date.now() - startedMs) / 100) / 10,
    audit: report,
    problems,
    notes: [...env.notes],
  };
}

export const ROW_HEADER = [
  "scenario",
  "faults",
  "published",
  "lost",
  "applied twice",
  "events duplicated",
  "dead letters",
  "redelivered",
  "commands recovered",
  "lost by the broker, resent",
  "audit",
  "seconds",
];

export function rowCells(r: Row): string[] {
  return [
    r.scenario,
    String(r.faults),
    String(r.published),
    String(r.lost),
    String(r.appliedTwice),
    String(r.eventsDuplicated),
    String(r.deadLetters),
    String(r.redelivered),
    String(r.recovered),
    String(r.resent),
    `${r.audit.ok ? "ok" : `${r.audit.findings.total} findings`} (${(r.audit.durationMs / 1000).toFixed(1)} s)`,
    String(r.seconds),
  ];
}

export function formatTable(rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`).join("\n");
}
