// `npm run bench:ledger`: transfers per second of the embedded engine at batch sizes 1, 100, 1000
// and 8189, on an empty database and on one holding 1,000,000 accounts and 5,000,000 transfers,
// with p50/p99 commit latency per batch. Prints a markdown table.
//
// Each batch size gets its own databases: a new file, and a copy of the cached large fixture (see
// fixture.ts). The workload is the same in both: a fresh pool of 10,000 funded user accounts and
// one settlement account, transfers between them (workload.ts), one request in flight. The two
// databases are measured in alternating rounds, so load that drifts during the run (the machine
// is shared) affects both alike.
// Options: --ids random (random transfer ids instead of time-ordered), --uniform (the loaded run
// draws users from all 1,000,000 accounts instead of its own pool), --batches 1000,8189, --quick.
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { CreateTransferStatus, type Client } from "tigerbeetle-node";
import { openLedger } from "../../src/ledger/index.ts";
import { ensureFixture, fundingAmount } from "./fixture.ts";
import {
  batch,
  newId,
  randomAccountId,
  settlementAccount,
  settlementId,
  transfer,
  userAccount,
  type IdScheme,
} from "./workload.ts";

const poolSize = 10_000;
/** Transfers measured per batch size (batch 1 is bounded by requests, the others by volume). */
const volume: Record<number, number> = { 1: 3_000, 100: 100_000, 1000: 300_000, 8189: 409_450 };
const warmupBatches = 3;
/** Rounds per batch size, alternating between the databases. */
const rounds = 5;

interface Args {
  ids: IdScheme;
  uniform: boolean;
  batches: number[];
  quick: boolean;
  databases: Array<"empty" | "loaded">;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const only = value("--only");
  return {
    ids: value("--ids") === "random" ? "random" : "time-ordered",
    uniform: argv.includes("--uniform"),
    batches: (value("--batches") ?? "1,100,1000,8189").split(",").map(Number),
    quick: argv.includes("--quick"),
    databases: only === "empty" || only === "loaded" ? [only] : ["empty", "loaded"],
  };
}

interface Measurement {
  database: string;
  batchSize: number;
  transfers: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the main thread per 1,000 transfers: what the engine costs, whatever else runs. */
  cpuMsPer1000: number | null;
}

/** CPU time (user + system) of this process's main thread, in ms; null where /proc is missing. */
function mainThreadCpuMs(): number | null {
  try {
    const fields =
      fs.readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ??
      [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** A fresh pool of funded users in `ledger` (created the same way in both databases). */
async function createPool(ledger: Client, withSettlement: boolean): Promise<bigint[]> {
  if (withSettlement) await ledger.createAccounts([settlementAccount()]);
  const users = Array.from({ length: poolSize }, () => randomAccountId());
  for (let at = 0; at < users.length; at += 8189) {
    const chunk = users.slice(at, at + 8189);
    await ledger.createAccounts(chunk.map(userAccount));
    await ledger.createTransfers(
      chunk.map((user) => transfer(newId("time-ordered"), settlementId, user, fundingAmount)),
    );
  }
  return users;
}

/** What one database's measurement accumulates over the rounds. */
interface Tally {
  latenciesMs: number[];
  transfers: number;
  elapsedNs: bigint;
  cpuMs: number | null;
}

/** Sends `total` transfers in batches of `batchSize`, adding latencies, time and CPU to `tally`. */
async function measureRound(
  ledger: Client,
  users: ReadonlyArray<bigint>,
  batchSize: number,
  total: number,
  ids: IdScheme,
  tally: Tally,
): Promise<void> {
  const cpuStart = mainThreadCpuMs();
  for (let sent = 0; sent < total; sent += batchSize) {
    const events = batch(batchSize, users, ids);
    const started = process.hrtime.bigint();
    const results = await ledger.createTransfers(events);
    const tookNs = process.hrtime.bigint() - started;
    tally.elapsedNs += tookNs;
    tally.latenciesMs.push(Number(tookNs) / 1e6);
    const failed = results.filter((r) => r.status !== CreateTransferStatus.created);
    if (failed.length > 0)
      throw new Error(
        `bench: ${failed.length} transfers not created (first: ${CreateTransferStatus[failed[0]?.status ?? 0]})`,
      );
    tally.transfers += events.length;
  }
  const cpuEnd = mainThreadCpuMs();
  tally.cpuMs =
    tally.cpuMs === null || cpuStart === null || cpuEnd === null
      ? null
      : tally.cpuMs + (cpuEnd - cpuStart);
}

function summary(database: string, batchSize: number, tally: Tally): Measurement {
  const sorted = [...tally.latenciesMs].sort((a, b) => a - b);
  return {
    database,
    batchSize,
    transfers: tally.transfers,
    perSecond: tally.transfers / (Number(tally.elapsedNs) / 1e9),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    cpuMsPer1000: tally.cpuMs === null ? null : (tally.cpuMs * 1000) / tally.transfers,
  };
}

/**
 * One batch size: opens a database of each kind, creates its pool, then alternates rounds between
 * them (rounds × volume / rounds transfers each), so load that drifts during the run hits both alike.
 */
async function measureBatchSize(
  args: Args,
  batchSize: number,
  work: string,
  fixture: string | null,
): Promise<Measurement[]> {
  const targets: Array<{
    database: string;
    file: string;
    ledger: Client;
    users: bigint[];
    tally: Tally;
  }> = [];
  try {
    for (const database of args.databases) {
      const file = path.join(work, `${database}-${batchSize}.db`);
      if (database === "loaded") copyDurably(fixture as string, file);
      const ledger = await openLedger({ driver: "embedded", path: file });
      const users =
        args.uniform && database === "loaded"
          ? allUsers(file)
          : await createPool(ledger, database === "empty");
      for (let i = 0; i < warmupBatches; i++)
        await ledger.createTransfers(batch(batchSize, users, args.ids));
      targets.push({
        database,
        file,
        ledger,
        users,
        tally: { latenciesMs: [], transfers: 0, elapsedNs: 0n, cpuMs: 0 },
      });
    }
    const total = args.quick
      ? Math.ceil((volume[batchSize] ?? 100_000) / 10)
      : (volume[batchSize] ?? 100_000);
    const perRound = Math.max(batchSize, Math.ceil(total / rounds / batchSize) * batchSize);
    for (let round = 0; round < rounds; round++) {
      for (const t of targets)
        await measureRound(t.ledger, t.users, batchSize, perRound, args.ids, t.tally);
    }
    return targets.map((t) => summary(t.database, batchSize, t.tally));
  } finally {
    for (const t of targets) {
      t.ledger.destroy();
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(t.file + suffix, { force: true });
    }
  }
}

async function run(args: Args, log: (line: string) => void): Promise<Measurement[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ledger-bench-"));
  const results: Measurement[] = [];
  try {
    const fixture = args.databases.includes("loaded") ? await ensureFixture(log) : null;
    for (const batchSize of args.batches) {
      for (const m of await measureBatchSize(args, batchSize, work, fixture)) {
        log(
          `${m.database} batch ${batchSize}: ${m.perSecond.toFixed(0)} transfers/s, p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms, load ${os.loadavg()[0]?.toFixed(2)}`,
        );
        results.push(m);
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return results.sort((a, b) =>
    a.database === b.database ? a.batchSize - b.batchSize : a.database === "empty" ? -1 : 1,
  );
}

/**
 * Copies the fixture and waits until the copy is on disk, so the kernel's write-back of 1 GB does
 * not compete with the measured commits' fsyncs.
 */
function copyDurably(from: string, to: string): void {
  fs.copyFileSync(from, to);
  const fd = fs.openSync(to, "r+");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Every user account of the fixture (all but the settlement account). */
function allUsers(file: string): bigint[] {
  const db = new Database(file, { readonly: true });
  try {
    db.defaultSafeIntegers(true);
    const ids = db.prepare("SELECT id FROM accounts WHERE code = 2").pluck().all() as Array<
      bigint | Buffer
    >;
    return ids.map((v) =>
      typeof v === "bigint" ? v : (v.readBigUInt64BE(0) << 64n) | v.readBigUInt64BE(8),
    );
  } finally {
    db.close();
  }
}

function environment(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const sqlite = (
    new Database(":memory:").prepare("SELECT sqlite_version() AS v").get() as { v: string }
  ).v;
  const nproc = execSync("nproc").toString().trim();
  return `${nproc} cores (nproc), ${cpu}, Node ${process.version}, SQLite ${sqlite}, ${os.platform()} ${os.release()}`;
}

function table(results: Measurement[], args: Args): string {
  const empty1000 = results.find((r) => r.database === "empty" && r.batchSize === 1000)?.perSecond;
  const lines = [
    `Transfer ids: ${args.ids}; loaded database users: ${args.uniform ? "uniform over all 1,000,000 accounts" : "a fresh pool of 10,000"}.`,
    "",
    "| database | batch | transfers/s | p50 commit (ms) | p99 commit (ms) | main-thread CPU per 1,000 (ms) | target |",
    "|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of results) {
    const empty = results.find(
      (e) => e.database === "empty" && e.batchSize === r.batchSize,
    )?.perSecond;
    let target = "";
    if (r.database === "empty" && r.batchSize === 1000)
      target = `≥ 50,000/s: ${r.perSecond >= 50_000 ? "met" : "not met"}`;
    if (r.database === "loaded" && empty !== undefined) {
      const ratio = r.perSecond / empty;
      target = `≥ 80% of empty: ${(ratio * 100).toFixed(0)}%, ${ratio >= 0.8 ? "met" : "not met"}`;
    }
    const cpu = r.cpuMsPer1000 === null ? "" : r.cpuMsPer1000.toFixed(1);
    lines.push(
      `| ${r.database === "empty" ? "empty" : "1M accounts, 5M transfers"} | ${r.batchSize} | ${Math.round(r.perSecond).toLocaleString("en")} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${cpu} | ${target} |`,
    );
  }
  if (empty1000 === undefined)
    lines.push("", "(no empty-database run at batch 1000: the 50,000/s target was not measured)");
  return lines.join("\n");
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

const args = parseArgs(process.argv.slice(2));
const log = (line: string) => process.stderr.write(`${line}\n`);
log(environment());
const loadBefore = loadAverage();
const results = await run(args, log);
process.stdout.write(
  `\n${environment()}\nLoad average (1/5/15 min) before: ${loadBefore}; after: ${loadAverage()}\n\n${table(results, args)}\n`,
);
