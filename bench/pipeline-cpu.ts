// `npx tsx bench/pipeline-cpu.ts [rounds=5] [commands=20000] [name=/path/to/tree ...]`: the CPU the
// service's own work costs per command, without the broker, for A/B comparisons of trees on a
// shared machine. Each tree's compiled dist/ runs the worker's path for the bench mix
// (bench/e2e/workload.ts, 10,000 users, batch 1,000): decode every message (with its fingerprint),
// resolve the batch in the ledger (resolveOperations, as src/worker/loop.ts does), read the facts
// of the applied operations (appliedFacts) and build every event, on the embedded engine on its
// own thread (ledger.thread, as the service runs it). CPU is the whole process's (user + system,
// every thread), measured from the first batch to the last, in a fresh child process per run;
// trees alternate within each round (A B, B A, …) so that load drifting during the run affects
// each alike. Prints each run and the medians per tree with the ratio to the first tree.
//
// The ledger is the service's stack (BENCH_LEDGER=service, the default): the deadline wrapper
// (config's ledger.requestTimeoutMs), the metering decorator on a registry of its own and a
// counting wrapper per batch, as src/service.ts and src/worker/loop.ts wrap it; BENCH_LEDGER=bare
// runs the engine's client alone (the figures in docs/benchmarks.md before issue 13's round three).
//
// What it leaves out is the broker's part (consume, publish the events, ack): the raw ceiling
// measures that. What it keeps is deterministic work, so CPU per command moves far less here than
// in an end-to-end run on a loaded machine; callgrind-like steadiness it does not have.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Workload } from "./e2e/workload.ts";

const BATCH = 1000;
const USERS = 10_000;

type Tree = { name: string; root: string };

/** One run in this process, on `root`'s dist/: CPU µs per command of the service's own work. */
async function runOne(
  root: string,
  commands: number,
  idKind: string,
  stack: string,
): Promise<number> {
  // The tree's compiled modules, typed as this tree's sources; older trees kept some files under
  // other names (src/worker/{accounts,facts,settle}.ts before the layout of issue 15).
  const load = async <T>(...candidates: string[]): Promise<T> => {
    for (const c of candidates) {
      const file = path.join(root, "dist", c);
      if (fs.existsSync(file)) return (await import(pathToFileURL(file).href)) as T;
    }
    throw new Error(`${root}: none of ${candidates.join(", ")} in dist/`);
  };
  const { systemAccounts } =
    await load<typeof import("../src/domain/accounts.ts")>("domain/accounts.js");
  const { decodeMessage } =
    await load<typeof import("../src/domain/commands.ts")>("domain/commands.js");
  const { appliedEvent, rejectedEvent } =
    await load<typeof import("../src/domain/events.ts")>("domain/events.js");
  const { IdSpace } = await load<typeof import("../src/domain/ids.ts")>("domain/ids.js");
  const { loadConfig } = await load<typeof import("../src/config/load.ts")>("config/load.js");
  const { openLedger } = await load<typeof import("../src/ledger/index.ts")>("ledger/index.js");
  const { AccountRegistry } = await load<typeof import("../src/ledger-facts/account-registry.ts")>(
    "ledger-facts/account-registry.js",
    "worker/accounts.js",
  );
  const { appliedFacts } = await load<typeof import("../src/ledger-facts/applied-facts.ts")>(
    "ledger-facts/applied-facts.js",
    "worker/facts.js",
  );
  const { NameBook } = await load<typeof import("../src/ledger-facts/name-book.ts")>(
    "ledger-facts/name-book.js",
    "worker/facts.js",
  );
  const { resolveOperations } = await load<typeof import("../src/worker/ledger-passes.ts")>(
    "worker/ledger-passes.js",
    "worker/settle.js",
  );
  const { MeteredLedger } = await load<typeof import("../src/telemetry/metered-ledger.ts")>(
    "telemetry/metered-ledger.js",
  );
  const { CountingLedger } =
    await load<typeof import("../src/ledger/counting.ts")>("ledger/counting.js");
  const promClient = createRequire(path.join(root, "package.json"))(
    "prom-client",
  ) as typeof import("prom-client");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-pipeline-"));
  const config = loadConfig({});
  const space = new IdSpace(0xbe7c_0000_0000_0000_0000_0000_0000_0001n, 0x1n);
  const chart = {
    currencies: config.currencies,
    defaultCurrency: config.defaultCurrency,
    markerLedger: config.markerLedger,
    space,
  };
  const engine = await openLedger({
    driver: "embedded",
    path: path.join(dir, "ledger.db"),
    thread: true,
    ...(stack === "service" ? { requestTimeoutMs: config.ledger.requestTimeoutMs } : {}),
  });
  const ledger =
    stack === "service" ? new MeteredLedger(engine, new promClient.Registry()) : engine;
  const batchLedger = () => (stack === "service" ? new CountingLedger(ledger) : ledger);
  try {
    const registry = new AccountRegistry(ledger, config.worker.accountCacheMax);
    await registry.ensure(systemAccounts(chart));
    const names = new NameBook(space, config.worker.accountCacheMax);
    const workload = new Workload({
      count: commands,
      users: USERS,
      seed: 0x5eed,
      tag: "be7c0001",
      holdGapMin: 2 * BATCH,
      ...(idKind === "v4" ? { ids: "v4" } : {}),
    });
    const clock = () => ({ nowMs: Date.now(), holdGraceMs: config.worker.holdGraceMs });
    const messages: Array<{ subject: string; data: Uint8Array }> = [];
    for (let e = workload.next(); e !== null; e = workload.next()) messages.push(e);
    const cpu = process.cpuUsage();
    let bytes = 0;
    for (let at = 0; at < messages.length; at += BATCH) {
      const ops = [];
      for (const m of messages.slice(at, at + BATCH)) {
        const decoded = decodeMessage(m.subject, m.data, chart, config.worker);
        if (decoded.kind !== "malformed")
          ops.push({ id: decoded.operationId, decoded, publishedAtMs: Date.now() });
      }
      const counted = batchLedger();
      const verdicts = await resolveOperations(
        counted,
        registry,
        chart,
        ops,
        clock,
        config.worker.passesMax,
        { passes: 0 },
      );
      const applied = ops.flatMap((op) => {
        const verdict = verdicts.get(op.id);
        return verdict?.kind === "applied" ? [{ op, verdict }] : [];
      });
      const facts = applied.length > 0 ? await appliedFacts(counted, chart, names, applied) : null;
      for (const op of ops) {
        const v = verdicts.get(op.id);
        const f = facts?.get(op.id);
        if (v?.kind === "rejected")
          bytes += rejectedEvent(op.id, op.decoded.type, op.decoded.fields, v.reason, v.detail).data
            .byteLength;
        if (v?.kind === "applied" && f)
          bytes += appliedEvent(op.id, op.decoded.type, f.fields, f.balances, f.ledgerTimestamp)
            .data.byteLength;
      }
    }
    const used = process.cpuUsage(cpu);
    if (bytes === 0) throw new Error("no events built");
    return (used.user + used.system) / messages.length;
  } finally {
    ledger.destroy();
    await new Promise((r) => setTimeout(r, 200));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  if (process.argv[2] === "--one") {
    const us = await runOne(
      process.argv[3] as string,
      Number(process.argv[4]),
      process.argv[5] ?? "ordered",
      process.argv[6] ?? "service",
    );
    process.stdout.write(`${us}\n`);
    return;
  }
  const rounds = Number(process.argv[2] ?? 5);
  const commands = Number(process.argv[3] ?? 20_000);
  const trees: Tree[] = process.argv
    .slice(4)
    .map((a) => ({ name: a.split("=")[0] as string, root: a.split("=")[1] as string }));
  if (trees.length === 0)
    trees.push({
      name: "this tree",
      root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), ".."),
    });
  const idKind = process.env["BENCH_IDS"] ?? "ordered";
  const stack = process.env["BENCH_LEDGER"] ?? "service";
  const runs = new Map<string, number[]>(trees.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? trees : [...trees].reverse();
    for (const t of order) {
      const child = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          fileURLToPath(import.meta.url),
          "--one",
          t.root,
          String(commands),
          idKind,
          stack,
        ],
        { encoding: "utf8" },
      );
      if (child.status !== 0) throw new Error(`${t.name}: ${child.stderr}`);
      const us = Number(child.stdout.trim().split("\n").at(-1));
      runs.get(t.name)?.push(us);
      process.stdout.write(
        `round ${round + 1} ${t.name.padEnd(12)} ${us.toFixed(1)} µs CPU per command (load ${os.loadavg()[0]?.toFixed(1)})\n`,
      );
    }
  }
  const base = median(runs.get(trees[0]?.name as string) ?? []);
  process.stdout.write(
    `\nmedians of ${rounds} alternating rounds, ${commands} commands, batch ${BATCH}, ${idKind} ids, ${stack} ledger:\n`,
  );
  for (const t of trees) {
    const m = median(runs.get(t.name) ?? []);
    process.stdout.write(
      `  ${t.name.padEnd(12)} ${m.toFixed(1)} µs  (${(m / base).toFixed(3)}× ${trees[0]?.name})  runs ${(runs.get(t.name) ?? []).map((x) => x.toFixed(1)).join(", ")}\n`,
    );
  }
}

await main();
