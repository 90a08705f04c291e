// Checks a run's result, so that a fast wrong answer cannot pass as a result:
// - the commands stream holds every command once, the dead-letter stream nothing, the consumer
//   nothing pending or unacknowledged;
// - the events stream holds exactly one event per command (no missing, no foreign, no second),
//   of the right kind;
// - a reference model replays the applied events in ledger-timestamp order from the ledger's
//   starting balances; every event's balance lines equal the model right after that operation;
// - rejections are only the ones this load can meet (credits never; captures and releases
//   hold_not_found exactly when their hold was rejected);
// - the ledger itself (read through the ledger port after the services stopped) holds the
//   model's final balances, and `billing audit` passes, or when the audit verb does not exist
//   yet, debits equal credits over every account of every ledger.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { JetStreamManager, JetStreamClient } from "@nats-io/jetstream";
import { systemAccounts, userAccountId, type Chart } from "../../src/domain/accounts.ts";
import { loadConfig } from "../../src/config/load.ts";
import { readChart } from "../../src/service.ts";
import { LEDGER_EVENTS_MAX } from "../../src/config/limits.ts";
import { pathToFileURL } from "node:url";
import { COMMAND_NAMES, Kind, type Workload } from "./workload.ts";

export type Balance = { posted: bigint; held: bigint };
export type Verification = {
  ok: boolean;
  problems: string[];
  commands: number;
  events: number;
  applied: number;
  rejected: Record<string, number>;
  redelivered: number;
  audit: string;
};

const EVENT_NAME = ["credited", "debited", "held", "captured", "released", "transferred"] as const;
/** Problems listed one by one before the rest are only counted. */
const PROBLEMS_SHOWN_MAX = 20;
const AUDIT_TIMEOUT_MS = 15 * 60_000;
const AUDIT_RUN = "bench/e2e/audit-run.ts";

export type RunStreams = { commands: string; events: string; dlq: string; consumer: string };

/** The chart of the run's deployment: its id space is in the ledger, named by the run's streams. */
export async function chartOf(
  root: string,
  configPath: string,
  ledgerPath: string,
  broker: { js: JetStreamClient; jsm: JetStreamManager },
): Promise<Chart> {
  const config = loadConfig({ BILLING_CONFIG: configPath, LEDGER_PATH: ledgerPath });
  const ledger = await openLedgerOf(root, ledgerPath);
  try {
    return await readChart(config, broker, ledger);
  } finally {
    ledger.destroy();
  }
}

function ledgerOfDefault(chart: Chart): number {
  const c = chart.currencies.find((x) => x.code === chart.defaultCurrency);
  if (!c) throw new Error("default currency not configured");
  return c.ledger;
}

type LedgerModule = typeof import("../../src/ledger/index.ts");

/**
 * Opens a ledger file with the ledger code of the tree under test (its file format is that
 * tree's), not necessarily this bench's own tree.
 */
async function openLedgerOf(root: string, path: string): ReturnType<LedgerModule["openLedger"]> {
  const mod = (await import(pathToFileURL(join(root, "src/ledger/index.ts")).href)) as LedgerModule;
  return mod.openLedger({ driver: "embedded", path });
}

/** Posted and held balances of the workload's users, read through the ledger port. */
export async function readBalances(
  root: string,
  ledgerPath: string,
  chart: Chart,
  workload: Workload,
): Promise<Map<string, Balance>> {
  const ledger = await openLedgerOf(root, ledgerPath);
  try {
    const ledgerNo = ledgerOfDefault(chart);
    const byId = new Map<bigint, string>();
    for (let k = 0; k < workload.spec.users; k += 1)
      byId.set(userAccountId(chart.space, ledgerNo, workload.userId(k)), workload.userId(k));
    const ids = [...byId.keys()];
    const out = new Map<string, Balance>();
    for (let at = 0; at < ids.length; at += LEDGER_EVENTS_MAX) {
      for (const a of await ledger.lookupAccounts(ids.slice(at, at + LEDGER_EVENTS_MAX))) {
        const user = byId.get(a.id);
        if (user !== undefined)
          out.set(user, { posted: a.credits_posted - a.debits_posted, held: a.debits_pending });
      }
    }
    return out;
  } finally {
    ledger.destroy();
  }
}

type Payload = Record<string, unknown> & {
  event: string;
  balances?: Array<Record<string, string>>;
};

class Problems {
  readonly shown: string[] = [];
  count = 0;
  add(text: string): void {
    this.count += 1;
    if (this.shown.length < PROBLEMS_SHOWN_MAX) this.shown.push(text);
  }
  list(): string[] {
    return this.count > this.shown.length
      ? [...this.shown, `… and ${this.count - this.shown.length} more`]
      : this.shown;
  }
}

/** Every stored event of the stream, parsed, by command index. */
async function readEvents(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  workload: Workload,
  problems: Problems,
): Promise<Array<Payload | undefined>> {
  const total = (await jsm.streams.info(stream)).state.messages;
  const byIndex = new Array<Payload | undefined>(workload.generated);
  if (total === 0) return byIndex;
  const reader = await js.consumers.get(stream);
  const messages = await reader.consume({ max_messages: 5_000 });
  const decoder = new TextDecoder();
  let read = 0;
  for await (const m of messages) {
    read += 1;
    const i = workload.indexOf(m.subject);
    if (i < 0 || i >= workload.generated) problems.add(`foreign event on ${m.subject}`);
    else if (byIndex[i] !== undefined)
      problems.add(`a second event for command ${i} on ${m.subject}`);
    else byIndex[i] = JSON.parse(decoder.decode(m.data)) as Payload;
    if (read >= total) break;
  }
  await messages.close();
  return byIndex;
}

function amountOf(p: Payload, key: string): bigint {
  const v = p[key];
  return typeof v === "string" ? BigInt(v) : 0n;
}

/** Applies one applied event to the model; returns the users it touched, in the event's order. */
function apply(model: Map<string, Balance>, p: Payload): void {
  const get = (u: unknown): Balance => {
    const key = String(u);
    let b = model.get(key);
    if (!b) model.set(key, (b = { posted: 0n, held: 0n }));
    return b;
  };
  const amount = amountOf(p, "amount");
  switch (p.event) {
    case "credited":
      get(p["userId"]).posted += amount;
      break;
    case "debited":
      get(p["userId"]).posted -= amount;
      break;
    case "held":
      get(p["userId"]).held += amount;
      break;
    case "captured": {
      const b = get(p["userId"]);
      b.posted -= amount;
      b.held -= amount;
      break;
    }
    case "released":
      get(p["userId"]).held -= amount;
      break;
    case "transferred":
      get(p["fromUserId"]).posted -= amount + amountOf(p, "fee");
      get(p["toUserId"]).posted += amount;
      break;
    default:
      throw new Error(`not an applied event: ${p.event}`);
  }
}

function checkLines(model: Map<string, Balance>, p: Payload, i: number, problems: Problems): void {
  for (const line of p.balances ?? []) {
    const b = model.get(String(line["userId"])) ?? { posted: 0n, held: 0n };
    const want = {
      posted: b.posted.toString(),
      held: b.held.toString(),
      available: (b.posted - b.held).toString(),
    };
    if (
      line["posted"] !== want.posted ||
      line["held"] !== want.held ||
      line["available"] !== want.available
    ) {
      problems.add(
        `command ${i} (${p.event}): balance of ${line["userId"]} is ${line["posted"]}/${line["held"]}/${line["available"]}, model ${want.posted}/${want.held}/${want.available}`,
      );
    }
    if (BigInt(line["available"] ?? "0") < 0n)
      problems.add(`command ${i}: available below 0 for ${line["userId"]}`);
  }
}

function checkOutcomes(
  workload: Workload,
  events: ReadonlyArray<Payload | undefined>,
  problems: Problems,
): { applied: Array<{ i: number; p: Payload; ts: bigint }>; rejected: Record<string, number> } {
  const applied: Array<{ i: number; p: Payload; ts: bigint }> = [];
  const rejected: Record<string, number> = {};
  let missing = 0;
  for (let i = 0; i < workload.generated; i += 1) {
    const p = events[i];
    const kind = workload.kinds[i] as number;
    if (p === undefined) {
      missing += 1;
      continue;
    }
    if (p.event === "rejected") {
      const reason = String(p["reason"]);
      rejected[reason] = (rejected[reason] ?? 0) + 1;
      const hold = workload.holdOf[i] as number;
      const holdRejected = hold >= 0 && events[hold]?.event === "rejected";
      const allowed =
        kind === Kind.capture || kind === Kind.release
          ? holdRejected
            ? "hold_not_found"
            : null
          : kind === Kind.credit
            ? null
            : "insufficient_funds";
      if (reason !== allowed)
        problems.add(
          `command ${i} (${COMMAND_NAMES[kind]}) rejected as ${reason}${holdRejected ? " (its hold was rejected)" : ""}`,
        );
    } else if (p.event !== EVENT_NAME[kind]) {
      problems.add(`command ${i} (${COMMAND_NAMES[kind]}) has event ${p.event}`);
    } else {
      const hold = workload.holdOf[i] as number;
      if (hold >= 0 && events[hold]?.event !== "held")
        problems.add(
          `command ${i} (${p.event}) applied although its hold is ${events[hold]?.event ?? "missing"}`,
        );
      applied.push({ i, p, ts: BigInt(String(p["ledgerTimestamp"])) });
    }
  }
  if (missing > 0) problems.add(`${missing} commands have no event`);
  return { applied, rejected };
}

/** Debits equal credits (posted and pending) on every ledger, over every account the run can have. */
async function balancedLedger(
  root: string,
  ledgerPath: string,
  chart: Chart,
  workload: Workload,
  problems: Problems,
): Promise<void> {
  const ledger = await openLedgerOf(root, ledgerPath);
  try {
    const ids = systemAccounts(chart).map((a) => a.id);
    for (const c of chart.currencies)
      for (let k = 0; k < workload.spec.users; k += 1)
        ids.push(userAccountId(chart.space, c.ledger, workload.userId(k)));
    const sums = new Map<number, { dp: bigint; cp: bigint; dq: bigint; cq: bigint }>();
    for (let at = 0; at < ids.length; at += LEDGER_EVENTS_MAX) {
      for (const a of await ledger.lookupAccounts(ids.slice(at, at + LEDGER_EVENTS_MAX))) {
        const s = sums.get(a.ledger) ?? { dp: 0n, cp: 0n, dq: 0n, cq: 0n };
        s.dp += a.debits_posted;
        s.cp += a.credits_posted;
        s.dq += a.debits_pending;
        s.cq += a.credits_pending;
        sums.set(a.ledger, s);
      }
    }
    for (const [ledgerNo, s] of sums) {
      if (s.dp !== s.cp)
        problems.add(`ledger ${ledgerNo}: posted debits ${s.dp} ≠ posted credits ${s.cp}`);
      if (s.dq !== s.cq)
        problems.add(`ledger ${ledgerNo}: pending debits ${s.dq} ≠ pending credits ${s.cq}`);
    }
  } finally {
    ledger.destroy();
  }
}

/** The finance audit (auditVerb, what `billing audit` runs), when it exists in the tree under test. */
function financeAudit(
  root: string,
  ledgerPath: string,
  configPath: string,
  natsUrl: string,
  problems: Problems,
): string {
  if (!existsSync(join(root, "src/audit/cli.ts")))
    return "debits = credits (ledger port); the audit verb does not exist yet";
  const run = spawnSync(process.execPath, ["--import", "tsx", join(root, AUDIT_RUN)], {
    cwd: root,
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      LEDGER_PATH: ledgerPath,
      BILLING_CONFIG: configPath,
      LOG_LEVEL: "warn",
    },
    encoding: "utf8",
    timeout: AUDIT_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status === 0) return "debits = credits (ledger port); billing audit passed";
  const text = `${run.stdout ?? ""}${run.stderr ?? ""}`.trim().split("\n").slice(-6).join(" | ");
  problems.add(`billing audit exited ${run.status ?? run.signal}: ${text}`);
  return "billing audit FAILED";
}

export type VerifyInput = {
  js: JetStreamClient;
  jsm: JetStreamManager;
  streams: RunStreams;
  workload: Workload;
  ledgerPath: string;
  configPath: string;
  natsUrl: string;
  initial: Map<string, Balance>;
  /** The tree under test (its audit verb runs). */
  root: string;
  /**
   * Whether `billing audit` can pass: not on a preloaded ledger, whose 5,000,000 transfers were
   * written through the port and so have no events by construction (the audit reports each).
   */
  audit: boolean;
};

/** Runs every check once the services have stopped. */
export async function verifyRun(v: VerifyInput): Promise<Verification> {
  const problems = new Problems();
  const n = v.workload.generated;
  const commands = (await v.jsm.streams.info(v.streams.commands)).state.messages;
  if (commands !== n)
    problems.add(`commands stream holds ${commands} messages, ${n} were published`);
  // Dead letters only (billing.dlq.<reason>): the stream also holds the service's bookkeeping
  // (claims, and command recovery's records of the ranges it checked), which is no failure.
  const dlqInfo = await v.jsm.streams.info(v.streams.dlq, { subjects_filter: "billing.dlq.*" });
  const dlq = Object.values(dlqInfo.state.subjects ?? {}).reduce((n, count) => n + count, 0);
  if (dlq !== 0) problems.add(`${dlq} dead letters`);
  const consumer = await v.jsm.consumers.info(v.streams.commands, v.streams.consumer);
  if (consumer.num_pending !== 0 || consumer.num_ack_pending !== 0)
    problems.add(
      `consumer not idle: ${consumer.num_pending} pending, ${consumer.num_ack_pending} unacknowledged`,
    );
  const events = await readEvents(v.js, v.jsm, v.streams.events, v.workload, problems);
  const { applied, rejected } = checkOutcomes(v.workload, events, problems);
  applied.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  const model = new Map<string, Balance>();
  for (const [u, b] of v.initial) model.set(u, { ...b });
  for (const { i, p } of applied) {
    apply(model, p);
    checkLines(model, p, i, problems);
  }
  const chart = await chartOf(v.root, v.configPath, v.ledgerPath, v);
  const final = await readBalances(v.root, v.ledgerPath, chart, v.workload);
  for (const [u, b] of model) {
    const l = final.get(u) ?? { posted: 0n, held: 0n };
    if (l.posted !== b.posted || l.held !== b.held)
      problems.add(`ledger balance of ${u} is ${l.posted}/${l.held}, model ${b.posted}/${b.held}`);
  }
  for (const [u, l] of final) {
    // An account is created before its first transfer is tried, so a user whose every command was
    // rejected has one, at zero.
    if (!model.has(u) && (l.posted !== 0n || l.held !== 0n))
      problems.add(`ledger balance of ${u} is ${l.posted}/${l.held}, but no event moved it`);
  }
  await balancedLedger(v.root, v.ledgerPath, chart, v.workload, problems);
  const audit = v.audit
    ? financeAudit(v.root, v.ledgerPath, v.configPath, v.natsUrl, problems)
    : "debits = credits (ledger port); billing audit not run: the preloaded transfers have no events by construction";
  return {
    ok: problems.count === 0,
    problems: problems.list(),
    commands,
    events: events.filter((e) => e !== undefined).length,
    applied: applied.length,
    rejected,
    redelivered: consumer.num_redelivered,
    audit,
  };
}
