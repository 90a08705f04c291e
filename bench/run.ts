// The end-to-end benchmark of the batched pipeline (issue "Performance: the batched pipeline at
// the broker's ceiling, measured end to end").
//
//   npm run bench               quick form, under 2 minutes: one run per configuration
//   npm run bench:full          full form: repeated runs and medians, the batch-size sweep, the
//                               latency ladder, backlog drains, the 1,000,000-command memory run and
//                               the run on a ledger already holding 5,000,000 transfers
//   npx tsx bench/run.ts targets   only what the issue's targets need (full sizes, no sweep, no ladder)
//   npx tsx bench/run.ts report bench/results/e2e.json   re-render a page from a suite's figures
//   npx tsx bench/run.ts profile   one service process under --cpu-prof, summarised (BENCH_ROOT: another tree)
//   npx tsx bench/run.ts compare   A/B of trees (a proposal against HEAD), interleaved runs:
//       BENCH_ROOTS="head=/work/main,pipe=/tmp/v-pipe" BENCH_REPS=3 BENCH_COUNT=20000 BENCH_PROCS=1,2
//       (BENCH_PRELOADED=1: on the 5,000,000-transfer ledger; BENCH_SERVICE_NODE_ARGS: node flags
//       for the service processes, e.g. "--max-old-space-size=96"; one tree's own flags follow its
//       path: "semi=/work/main --max-semi-space-size=32")
//
// Every run starts its own nats-server (test/support/nats-server.ts) and its own ledger file,
// spawns real `node bin/billing.js start` processes (or the raw pipeline worker for the ceiling),
// and checks its result before its figure counts (bench/e2e/verify.ts).
// Output: bench/results/e2e.md (full) or e2e-quick.md (quick), SVG charts beside it, and the
// raw figures as JSON.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LEDGER_EVENTS_MAX, LOOKUPS_PER_OPERATION } from "../src/config/limits.ts";
import { SERVICE_ROOT } from "./e2e/cluster.ts";
import { describeMachine, describeTree } from "./e2e/machine.ts";
import { ensurePreloadedLedger, PRELOAD } from "./e2e/preload.ts";
import { profileMarkdown, summarizeProfile } from "./e2e/profile.ts";
import { writeReport, type Suite } from "./e2e/report.ts";
import { runOne, type RunResult, type RunSpec } from "./e2e/scenario.ts";
import { percentileCurve } from "./e2e/svg.ts";
import { median, thousands } from "./e2e/stats.ts";

const RESULTS_DIR = new URL("./results/", import.meta.url).pathname;
const form = (process.argv[2] ?? "quick") as
  "quick" | "full" | "targets" | "profile" | "compare" | "report";
if (!["quick", "full", "targets", "profile", "compare", "report"].includes(form)) {
  process.stderr.write(
    "usage: tsx bench/run.ts quick|full|targets|profile|compare|report [suite.json]\n",
  );
  process.exit(2);
}

/** The largest batch the config accepts (schema: LEDGER_EVENTS_MAX / LOOKUPS_PER_OPERATION). */
const BATCH_MAX = Math.floor(LEDGER_EVENTS_MAX / LOOKUPS_PER_OPERATION);
/** The service's default batch bound (config/default.json worker.batchMessagesMax). */
const BATCH = 1000;
const BATCH_WAIT_MS = 5;
/** PubAcks in flight for the load generator (the notes measured 21.9k msg/s with 1000). */
const PUBLISH_WINDOW = 1000;
const USERS = 10_000;
/** The scale run: this many users, drawn by Zipf's law, on a preloaded ledger of as many accounts. */
const ZIPF_USERS = 1_000_000;
/** The issue's latency target is stated at this offered rate. */
const TARGET_RATE_PER_S = 2_000;

type Plan = {
  reps: number;
  throughputCount: number;
  baselineCount: number;
  sweep: number[];
  sweepCount: number;
  openRates: number[];
  openDurationS: number;
  latencyReps: number;
  closedConcurrency: number;
  closedDurationS: number;
  backlog: boolean;
  memoryCount: number;
  preloaded: boolean;
  /** The scale run (group zipf-1m): ZIPF_USERS Zipf-drawn users on a ledger preloaded for them. */
  zipf: boolean;
  rssEveryMs: number;
};

const PLANS: Record<"quick" | "full" | "targets", Plan> = {
  quick: {
    reps: 1,
    throughputCount: 20_000,
    baselineCount: 2_000,
    sweep: [],
    sweepCount: 0,
    openRates: [2_000],
    openDurationS: 8,
    latencyReps: 1,
    closedConcurrency: 64,
    closedDurationS: 5,
    backlog: false,
    memoryCount: 0,
    preloaded: false,
    zipf: false,
    rssEveryMs: 250,
  },
  full: {
    reps: 3,
    throughputCount: 50_000,
    baselineCount: 5_000,
    sweep: [1, 10, 50, 100, 250, 500, 1000, BATCH_MAX],
    sweepCount: 20_000,
    openRates: [1_000, 2_000, 4_000],
    openDurationS: 10,
    latencyReps: 3,
    closedConcurrency: 64,
    closedDurationS: 10,
    backlog: true,
    memoryCount: 1_000_000,
    preloaded: true,
    zipf: true,
    rssEveryMs: 1_000,
  },
  targets: {
    reps: 3,
    throughputCount: 50_000,
    baselineCount: 5_000,
    sweep: [],
    sweepCount: 0,
    openRates: [2_000],
    openDurationS: 10,
    latencyReps: 3,
    closedConcurrency: 64,
    closedDurationS: 10,
    backlog: false,
    memoryCount: 1_000_000,
    preloaded: true,
    zipf: true,
    rssEveryMs: 1_000,
  },
};

/**
 * BENCH_IDS=v4: every run of a suite sends random UUIDv4 operation ids, as publishers do, and the
 * groups service-1-ordered / service-2-ordered measure time-ordered ids beside them; unset (or
 * "ordered"): the other way round (groups service-1-v4, service-2-v4).
 */
const SUITE_IDS: "ordered" | "v4" = process.env["BENCH_IDS"] === "v4" ? "v4" : "ordered";
const OTHER_IDS: "ordered" | "v4" = SUITE_IDS === "v4" ? "ordered" : "v4";

function spec(
  label: string,
  over: Partial<RunSpec> & Pick<RunSpec, "load" | "count">,
  rssEveryMs: number,
): RunSpec {
  return {
    label,
    pipeline: "service",
    processes: 1,
    batch: BATCH,
    batchWaitMs: BATCH_WAIT_MS,
    users: USERS,
    rssEveryMs,
    ids: SUITE_IDS,
    ...over,
  };
}

function line(r: RunResult): string {
  const lat = r.latency
    ? `p50 ${r.latency.p50.toFixed(1)} p99 ${r.latency.p99.toFixed(1)} max ${r.latency.max.toFixed(1)} ms`
    : "";
  const rss = Math.max(0, ...r.rss.flatMap((s) => s.points.map((p) => p.rssBytes))) / 2 ** 20;
  const status = r.ok
    ? "ok"
    : `FAILED: ${r.error ?? r.verification?.problems.slice(0, 3).join("; ") ?? "?"}`;
  const threads = r.cpuUsByThread
    ? ` (main ${r.cpuUsByThread.main.toFixed(0)} + engine ${r.cpuUsByThread.busiestOther.toFixed(0)} + rest ${r.cpuUsByThread.rest.toFixed(0)})`
    : "";
  const batches = r.batchMessages
    ? `  batches ${r.batchMessages.batches} of median ${r.batchMessages.median} (mean ${r.batchMessages.mean.toFixed(1)})`
    : "";
  return `${r.spec.label.padEnd(34)} ${thousands(r.throughput).padStart(7)} cmd/s  ${thousands(r.cpuUsPerCommand).padStart(5)} µs CPU/cmd${threads}  (${r.commands} cmds, ${(r.elapsedMs / 1000).toFixed(1)} s)${batches}  ${lat}  rss≤${rss.toFixed(0)} MB  cpu ${JSON.stringify(r.cpu)}  ${status}`;
}

/** BENCH_ONLY=group,group: run only these groups (e.g. to redo some runs and merge them with BENCH_MERGE); "open-*": every group with that prefix. */
const ONLY = process.env["BENCH_ONLY"] ? new Set(process.env["BENCH_ONLY"].split(",")) : null;

async function measure(suite: Suite, group: string, s: RunSpec): Promise<RunResult | null> {
  if (
    ONLY !== null &&
    !ONLY.has(group) &&
    ![...ONLY].some((o) => o.endsWith("*") && group.startsWith(o.slice(0, -1)))
  )
    return null;
  const r = await runOne(s);
  process.stdout.write(`${line(r)}\n`);
  const stored = {
    ...r,
    latencySorted: null,
    curve: r.latencySorted ? percentileCurve(r.latencySorted) : [],
  };
  (suite.groups[group] ??= []).push(stored);
  return r;
}

async function runSuite(which: "quick" | "full" | "targets"): Promise<void> {
  const plan = PLANS[which];
  const started = Date.now();
  const suite: Suite = {
    form: which,
    ids: SUITE_IDS,
    machine: describeMachine(),
    command:
      which === "quick"
        ? "npm run bench"
        : which === "full"
          ? "npm run bench:full"
          : "npx tsx bench/run.ts targets",
    startedAt: new Date().toISOString(),
    durationS: 0,
    users: USERS,
    batch: BATCH,
    batchWaitMs: BATCH_WAIT_MS,
    publishWindow: PUBLISH_WINDOW,
    preload: plan.preloaded ? PRELOAD : null,
    ...(plan.zipf ? { zipfUsers: ZIPF_USERS } : {}),
    groups: {},
    tree: describeTree(SERVICE_ROOT),
  };
  const every = plan.rssEveryMs;
  const burst = { kind: "burst", window: PUBLISH_WINDOW } as const;
  const ledgerFrom =
    plan.preloaded && (ONLY === null || ONLY.has("preloaded-1"))
      ? await ensurePreloadedLedger(USERS)
      : undefined;
  const zipfLedgerFrom =
    plan.zipf && (ONLY === null || ONLY.has("zipf-1m"))
      ? await ensurePreloadedLedger(ZIPF_USERS)
      : undefined;
  // Interleaved repetitions, so that drift on a shared machine spreads over every configuration.
  for (let rep = 0; rep < plan.reps; rep += 1) {
    await measure(
      suite,
      "raw-1",
      spec(
        `raw ceiling ×1 #${rep + 1}`,
        { pipeline: "raw", load: burst, count: plan.throughputCount },
        every,
      ),
    );
    await measure(
      suite,
      "service-1",
      spec(`service ×1 #${rep + 1}`, { load: burst, count: plan.throughputCount }, every),
    );
    // The same on three clustered nodes with every stream R3: what replication costs (R1 vs R3).
    await measure(
      suite,
      "r3-service-1",
      spec(
        `service ×1, R3 cluster #${rep + 1}`,
        { broker: "cluster", load: burst, count: plan.throughputCount },
        every,
      ),
    );
    await measure(
      suite,
      "raw-2",
      spec(
        `raw ceiling ×2 #${rep + 1}`,
        { pipeline: "raw", processes: 2, load: burst, count: plan.throughputCount },
        every,
      ),
    );
    await measure(
      suite,
      "service-2",
      spec(
        `service ×2 #${rep + 1}`,
        { processes: 2, load: burst, count: plan.throughputCount },
        every,
      ),
    );
    // The other form of operation ids (random UUIDv4 as publishers send them, or time-ordered).
    await measure(
      suite,
      `service-1-${OTHER_IDS}`,
      spec(
        `service ×1, ${OTHER_IDS} ids #${rep + 1}`,
        { load: burst, count: plan.throughputCount, ids: OTHER_IDS },
        every,
      ),
    );
    await measure(
      suite,
      `service-2-${OTHER_IDS}`,
      spec(
        `service ×2, ${OTHER_IDS} ids #${rep + 1}`,
        { processes: 2, load: burst, count: plan.throughputCount, ids: OTHER_IDS },
        every,
      ),
    );
    // The conventional design: one message, one ledger transaction, one ack, nothing overlapped.
    await measure(
      suite,
      "baseline-1",
      spec(
        `one-at-a-time ×1 #${rep + 1}`,
        {
          batch: 1,
          load: burst,
          count: plan.baselineCount,
          config: { worker: { pipelineDepth: 1 } },
        },
        every,
      ),
    );
    if (ledgerFrom !== undefined) {
      await measure(
        suite,
        "preloaded-1",
        spec(
          `preloaded ledger ×1 #${rep + 1}`,
          { load: burst, count: plan.throughputCount, ledgerFrom },
          every,
        ),
      );
    }
    // The scale of real data: a million users, a few of them very busy (Zipf, s = 1), on a ledger
    // with as many accounts and 5M transfers, against service-1's 10,000 uniform users.
    if (zipfLedgerFrom !== undefined) {
      await measure(
        suite,
        "zipf-1m",
        spec(
          `${thousands(ZIPF_USERS)} Zipf users, preloaded ×1 #${rep + 1}`,
          {
            load: burst,
            count: plan.throughputCount,
            users: ZIPF_USERS,
            draw: "zipf",
            ledgerFrom: zipfLedgerFrom,
          },
          every,
        ),
      );
    }
  }
  // Half the measured maximum rate (the median burst throughput of one process in this suite's id
  // form), rounded to 100/s; measured in every form beside the target's rate.
  const maxRate = median(
    (suite.groups["service-1"] ?? []).filter((r) => r.ok).map((r) => r.throughput),
  );
  const halfMax = Number.isFinite(maxRate)
    ? Math.max(100, Math.round(maxRate / 2 / 100) * 100)
    : null;
  for (let rep = 0; rep < plan.latencyReps; rep += 1) {
    if (halfMax !== null && halfMax !== TARGET_RATE_PER_S) {
      await measure(
        suite,
        `open-${halfMax}`,
        spec(
          `open loop ${halfMax}/s (50 % of max) ×1 #${rep + 1}`,
          { load: { kind: "open", ratePerS: halfMax, durationS: plan.openDurationS }, count: 0 },
          every,
        ),
      );
    }
    // The target's rate is repeated for a median; the other rates of the ladder run once.
    for (const rate of plan.openRates.filter((r) => rep === 0 || r === TARGET_RATE_PER_S)) {
      await measure(
        suite,
        `open-${rate}`,
        spec(
          `open loop ${rate}/s ×1 #${rep + 1}`,
          { load: { kind: "open", ratePerS: rate, durationS: plan.openDurationS }, count: 0 },
          every,
        ),
      );
    }
    await measure(
      suite,
      `r3-open-${TARGET_RATE_PER_S}`,
      spec(
        `open loop ${TARGET_RATE_PER_S}/s ×1, R3 cluster #${rep + 1}`,
        {
          broker: "cluster",
          load: { kind: "open", ratePerS: TARGET_RATE_PER_S, durationS: plan.openDurationS },
          count: 0,
        },
        every,
      ),
    );
    if (rep > 0) continue;
    await measure(
      suite,
      "closed-1",
      spec(
        `closed loop c=${plan.closedConcurrency} ×1 #${rep + 1}`,
        {
          load: {
            kind: "closed",
            concurrency: plan.closedConcurrency,
            durationS: plan.closedDurationS,
          },
          count: plan.closedDurationS * 20_000,
        },
        every,
      ),
    );
  }
  for (const batch of plan.sweep) {
    // Small batches are slow; fewer commands give the same rate in bounded time.
    const count = batch <= 10 ? plan.baselineCount : plan.sweepCount;
    await measure(
      suite,
      `sweep-${batch}`,
      spec(`batch ${batch} ×1`, { batch, load: burst, count }, every),
    );
  }
  if (plan.backlog) {
    for (const [pipeline, processes] of [
      ["raw", 1],
      ["service", 1],
      ["raw", 2],
      ["service", 2],
    ] as const) {
      await measure(
        suite,
        `backlog-${pipeline}-${processes}`,
        spec(
          `backlog ${pipeline} ×${processes}`,
          {
            pipeline,
            processes,
            load: { kind: "backlog", window: PUBLISH_WINDOW },
            count: plan.throughputCount,
          },
          every,
        ),
      );
    }
  }
  if (plan.memoryCount > 0) {
    await measure(
      suite,
      "memory-1",
      spec(`1,000,000 commands ×1`, { load: burst, count: plan.memoryCount }, every),
    );
  }
  suite.durationS = Math.round((Date.now() - started) / 1000);
  const mergeInto = process.env["BENCH_MERGE"];
  if (mergeInto !== undefined) {
    // The earlier suite keeps its other groups; the groups run now replace theirs.
    const earlier = JSON.parse(readFileSync(mergeInto, "utf8")) as Suite;
    earlier.groups = { ...earlier.groups, ...suite.groups };
    earlier.rerun = [
      ...(earlier.rerun ?? []),
      `${Object.keys(suite.groups).join(", ")} re-run on ${suite.startedAt.slice(0, 16).replace("T", " ")} UTC (${suite.durationS} s)`,
    ];
    Object.assign(suite, earlier);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const written = writeReport(suite, RESULTS_DIR);
  process.stdout.write(`\n${which} form took ${suite.durationS} s; wrote ${written.join(", ")}\n`);
  const failed = Object.values(suite.groups)
    .flat()
    .filter((r) => !r.ok);
  if (failed.length > 0) {
    process.stdout.write(
      `${failed.length} run(s) FAILED their checks; their figures do not count\n`,
    );
    process.exitCode = 1;
  }
}

/** One service process under --cpu-prof on the throughput load; the summary goes to e2e-profile.md. */
async function runProfile(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "billing-prof-"));
  const count = Number(process.env["PROFILE_COUNT"] ?? 50_000);
  const batch = Number(process.env["PROFILE_BATCH"] ?? BATCH);
  // PROFILE_RATE: an open loop at this many commands per second instead of a burst.
  const rate = Number(process.env["PROFILE_RATE"] ?? 0);
  const out: string[] = ["# CPU profile of one service process", ""];
  for (const pipeline of ["service", "raw"] as const) {
    const profDir = join(dir, pipeline);
    mkdirSync(profDir);
    const root = process.env["BENCH_ROOT"];
    const r = await runOne(
      spec(
        `profile ${pipeline}`,
        {
          pipeline,
          batch,
          load:
            rate > 0
              ? { kind: "open", ratePerS: rate, durationS: count / rate }
              : { kind: "burst", window: PUBLISH_WINDOW },
          count,
          cpuProfDir: profDir,
          ...(root ? { root } : {}),
        },
        500,
      ),
    );
    process.stdout.write(`${line(r)}\n`);
    const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no profile written in ${profDir}`);
    const summary = summarizeProfile(join(profDir, file));
    out.push(
      profileMarkdown(
        summary,
        `${pipeline === "service" ? "Service" : "Raw pipeline"}: ${thousands(count)} commands${rate > 0 ? ` offered at ${thousands(rate)}/s` : ""}, batch ${batch}, ${thousands(r.throughput)} cmd/s`,
      ),
    );
  }
  out.push(
    `Reproduce: \`npx tsx bench/run.ts profile\` (PROFILE_COUNT, PROFILE_BATCH, PROFILE_RATE to vary). Machine: ${JSON.stringify(describeMachine())}`,
    "",
  );
  const target = resolve(RESULTS_DIR, process.env["PROFILE_OUT"] ?? "e2e-profile.md");
  writeFileSync(target, out.join("\n"));
  process.stdout.write(
    `wrote ${target}; the .cpuprofile files stay in ${dir} (open them in Chrome DevTools)\n`,
  );
}

/** Interleaved A/B runs of several trees on the same load; medians and ratios to the first tree. */
async function runCompare(): Promise<void> {
  const roots = (process.env["BENCH_ROOTS"] ?? "")
    .split(",")
    .filter((x) => x.includes("="))
    .map((x) => {
      // name=path, or name=path followed by node flags for its service processes
      const [name, value] = x.split(/=(.*)/s) as [string, string];
      const [path, ...nodeArgs] = value.split(" ").filter(Boolean);
      return [name, path as string, nodeArgs] as const;
    });
  if (roots.length === 0) throw new Error("BENCH_ROOTS=name=path,name=path is required");
  const reps = Number(process.env["BENCH_REPS"] ?? 3);
  const count = Number(process.env["BENCH_COUNT"] ?? 20_000);
  const procs = (process.env["BENCH_PROCS"] ?? "1").split(",").map(Number);
  const batch = Number(process.env["BENCH_BATCH"] ?? BATCH);
  const pipeline = (process.env["BENCH_PIPELINE"] ?? "service") as "service" | "raw";
  const rate = Number(process.env["BENCH_RATE"] ?? 0);
  // BENCH_IDS=v4: publishers' random UUIDv4 operation ids instead of time-ordered ones.
  const ids = process.env["BENCH_IDS"] === "v4" ? ("v4" as const) : ("ordered" as const);
  // BENCH_PRELOADED=1: every run starts from a copy of the 5,000,000-transfer ledger.
  const ledgerFrom =
    process.env["BENCH_PRELOADED"] === "1" ? await ensurePreloadedLedger(USERS) : undefined;
  const figures = new Map<string, number[]>();
  for (let rep = 0; rep < reps; rep += 1) {
    for (const p of procs) {
      for (const [name, root, nodeArgs] of roots) {
        const load =
          rate > 0
            ? ({ kind: "open", ratePerS: rate, durationS: count / rate } as const)
            : ({ kind: "burst", window: PUBLISH_WINDOW } as const);
        const r = await runOne(
          spec(
            `${name} ×${p} #${rep + 1}`,
            {
              pipeline,
              processes: p,
              batch,
              load,
              count,
              root,
              ...(nodeArgs.length > 0 ? { nodeArgs } : {}),
              ids,
              ...(ledgerFrom ? { ledgerFrom } : {}),
            },
            500,
          ),
        );
        process.stdout.write(`${line(r)}\n`);
        const key = `${name} ×${p}`;
        const figure = rate > 0 ? (r.latency?.p99 ?? Number.NaN) : r.throughput;
        figures.set(key, [...(figures.get(key) ?? []), r.ok ? figure : Number.NaN]);
        figures.set(`${key} cpu`, [
          ...(figures.get(`${key} cpu`) ?? []),
          r.ok ? r.cpuUsPerCommand : Number.NaN,
        ]);
      }
    }
  }
  process.stdout.write(
    `\n${rate > 0 ? `p99 ms at ${rate}/s` : "cmd/s"}, medians of ${reps} interleaved runs, ${thousands(count)} commands, batch ${batch}, ${pipeline}:\n`,
  );
  for (const p of procs) {
    const base = median(figures.get(`${roots[0]?.[0]} ×${p}`) ?? []);
    for (const [name] of roots) {
      const runs = figures.get(`${name} ×${p}`) ?? [];
      const m = median(runs);
      const cpu = figures.get(`${name} ×${p} cpu`) ?? [];
      const baseCpu = median(figures.get(`${roots[0]?.[0]} ×${p} cpu`) ?? []);
      process.stdout.write(
        `  ${`${name} ×${p}`.padEnd(20)} median ${m.toFixed(rate > 0 ? 1 : 0).padStart(8)}  (${(m / base).toFixed(2)}× ${roots[0]?.[0]})  runs ${runs.map((x) => x.toFixed(rate > 0 ? 1 : 0)).join(", ")}` +
          `  | CPU µs/cmd median ${median(cpu).toFixed(0)} (${(median(cpu) / baseCpu).toFixed(2)}×)  runs ${cpu.map((x) => x.toFixed(0)).join(", ")}\n`,
      );
    }
  }
}

/** Renders the page again from a suite's JSON (e.g. after bench/e2e/analysis.md changed). */
function rerender(): void {
  const file = process.argv[3] ?? join(RESULTS_DIR, "e2e.json");
  const suite = JSON.parse(readFileSync(file, "utf8")) as Suite;
  process.stdout.write(`wrote ${writeReport(suite, RESULTS_DIR).join(", ")}\n`);
}

if (form === "profile") await runProfile();
else if (form === "report") rerender();
else if (form === "compare") await runCompare();
else await runSuite(form);
