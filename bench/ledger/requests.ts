// `npx tsx bench/ledger/requests.ts [commands] [users]`: ledger requests per batch on the bench mix
// (bench/e2e/workload.ts: 40 % credit, 30 % debit, 10 % hold, 10 % capture or release, 10 %
// transfer, half of the transfers with a fee), counted by a counting ledger decorator around the
// embedded engine, at batch sizes 100 and 1000. Each batch runs the worker's ledger side as the
// worker does (src/worker/loop.ts resolveBatch): resolveOperations, then appliedFacts for the
// applied ones. Prints a markdown table: requests (client calls) per batch by operation, and the
// history rows the balance reads ask for per batch (their `limit`s): tigerbeetle-node packs
// concurrent reads into one message to the cluster only while those limits sum to at most one
// reply (8189 rows), so this decides how many messages a batch's reads take on TigerBeetle.
// Not a timing benchmark: the ms and CPU columns are indicative only (the machine is shared; the
// engine runs in this process, so CPU counts the engine and the worker's ledger side together).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { systemAccounts } from "../../src/domain/accounts.ts";
import { decodeMessage } from "../../src/domain/commands.ts";
import { IdSpace } from "../../src/domain/ids.ts";
import type { Operation, Verdict } from "../../src/domain/resolve.ts";
import { loadConfig } from "../../src/config/load.ts";
import { CountingLedger } from "../../src/ledger/counting.ts";
import { openLedger, type Ledger } from "../../src/ledger/index.ts";
import { chartOf } from "../../src/service.ts";
import { AccountRegistry } from "../../src/ledger-facts/account-registry.ts";
import { appliedFacts, type Applied } from "../../src/ledger-facts/applied-facts.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { resolveOperations } from "../../src/worker/ledger-passes.ts";
import { Workload } from "./../e2e/workload.ts";

/** TigerBeetle's reply holds at most this many AccountBalance rows (docs/coding/requests.md in tigerbeetle). */
const REPLY_ROWS_MAX = 8189;

type Tally = {
  batches: number;
  commands: number;
  calls: Map<string, number>;
  rowsAsked: number;
  readMessagesMin: number;
  ms: number;
  cpuUs: number;
};

async function run(batch: number, commands: number, users: number): Promise<Tally> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-requests-"));
  const config = loadConfig({});
  const chart = chartOf(config, new IdSpace(0xbe7c_0000_0000_0000_0000_0000_0000_0001n, 0x1n));
  const engine = await openLedger({ driver: "embedded", path: path.join(dir, "ledger.db") });
  let rowsAsked = 0;
  const asking: Ledger = {
    ...engine,
    getAccountBalances: (filter) => (
      (rowsAsked += filter.limit),
      engine.getAccountBalances(filter)
    ),
  };
  const registry = new AccountRegistry(engine, config.worker.accountCacheMax);
  await registry.ensure(systemAccounts(chart));
  const names = new NameBook(chart.space, config.worker.accountCacheMax);
  const workload = new Workload({
    count: commands,
    users,
    seed: 0x5eed,
    tag: "be7c0001",
    holdGapMin: 2 * batch,
  });
  const tally: Tally = {
    batches: 0,
    commands: 0,
    calls: new Map(),
    rowsAsked: 0,
    readMessagesMin: 0,
    ms: 0,
    cpuUs: 0,
  };
  const clock = () => ({ nowMs: Date.now(), holdGraceMs: config.worker.holdGraceMs });
  try {
    for (;;) {
      const ops: Operation[] = [];
      for (let e = workload.next(); e !== null; e = ops.length < batch ? workload.next() : null) {
        const decoded = decodeMessage(e.subject, e.data, chart, config.worker);
        if (decoded.kind !== "malformed")
          ops.push({ id: decoded.operationId, decoded, publishedAtMs: Date.now() });
      }
      if (ops.length === 0) break;
      const counted = new CountingLedger(asking);
      rowsAsked = 0;
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      // The worker's ledger side of one batch (src/worker/loop.ts resolveBatch).
      const verdicts: Map<bigint, Verdict> = await resolveOperations(
        counted,
        registry,
        chart,
        ops,
        clock,
        config.worker.passesMax,
        { passes: 0 },
      );
      const applied: Applied[] = [];
      for (const op of ops) {
        const v = verdicts.get(op.id);
        if (v?.kind === "applied") applied.push({ op, verdict: v });
      }
      if (applied.length > 0) await appliedFacts(counted, chart, names, applied);
      tally.ms += Number(process.hrtime.bigint() - started) / 1e6;
      const used = process.cpuUsage(cpu);
      tally.cpuUs += used.user + used.system;
      tally.commands += ops.length;
      tally.batches += 1;
      for (const [operation, n] of counted.byOperation)
        tally.calls.set(operation, (tally.calls.get(operation) ?? 0) + n);
      tally.rowsAsked += rowsAsked;
      tally.readMessagesMin += Math.ceil(rowsAsked / REPLY_ROWS_MAX);
    }
  } finally {
    engine.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return tally;
}

async function main(): Promise<void> {
  const commands = Number(process.argv[2] ?? 20_000);
  const users = Number(process.argv[3] ?? 10_000);
  const operations = [
    "lookupTransfers",
    "createAccounts",
    "createTransfers",
    "lookupAccounts",
    "getAccountBalances",
  ];
  process.stdout.write(`bench mix, ${commands} commands over ${users} users, embedded engine\n\n`);
  process.stdout.write(
    `| batch | batches | requests per batch | ${operations.join(" | ")} | history rows asked per batch | read messages per batch (at least) | ledger ms per batch | CPU µs per command |\n`,
  );
  process.stdout.write(
    `|---:|---:|---:|${operations.map(() => "---:").join("|")}|---:|---:|---:|---:|\n`,
  );
  for (const batch of [100, 1000]) {
    const t = await run(batch, commands, users);
    const per = (n: number) => (n / t.batches).toFixed(1);
    const total = [...t.calls.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(
      `| ${batch} | ${t.batches} | ${per(total)} | ${operations.map((o) => per(t.calls.get(o) ?? 0)).join(" | ")} | ${per(t.rowsAsked)} | ${per(t.readMessagesMin)} | ${per(t.ms)} | ${(t.cpuUs / t.commands).toFixed(0)} |\n`,
    );
  }
}

await main();
