// The results page and its pictures, from one invocation's runs: a table per configuration, every
// target of the issue beside its measured figure (medians and ratios from this one invocation),
// the SVG charts, and the raw figures as JSON.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "./machine.ts";
import type { RunResult } from "./scenario.ts";
import { median, medianRun, slope, thousands } from "./stats.ts";
import { lineChart, NINES_TICKS, PALETTE, type Series } from "./svg.ts";

export type StoredRun = Omit<RunResult, "latencySorted"> & {
  latencySorted: null;
  curve: Array<[number, number]>;
};

export type Suite = {
  form: "quick" | "full" | "targets";
  /** Operation ids of the suite's runs (BENCH_IDS); absent in suites from before it: time-ordered. */
  ids?: "ordered" | "v4";
  machine: Machine;
  command: string;
  startedAt: string;
  durationS: number;
  users: number;
  batch: number;
  batchWaitMs: number;
  publishWindow: number;
  preload: { transfers: number } | null;
  /** Users of the scale run (group zipf-1m), drawn by Zipf's law; absent in older suites. */
  zipfUsers?: number;
  groups: Record<string, StoredRun[]>;
  /** The code measured (commit, snapshot note). */
  tree?: string;
  /** Groups run again later and merged in (BENCH_ONLY + BENCH_MERGE), with when. */
  rerun?: string[];
};

const ANALYSIS = new URL("./analysis.md", import.meta.url).pathname;
const MB = 2 ** 20;

/** Targets of the issue. */
export const TARGETS = {
  ceilingShareMin: 0.75,
  baselineFactorMin: 10,
  p99MsMax: 25,
  p99RatePerS: 2_000,
  rssBytesMax: 250 * MB,
  preloadedShareMin: 0.8,
  zipfShareMin: 0.8,
} as const;

const ok = (runs: StoredRun[] | undefined) => (runs ?? []).filter((r) => r.ok);
const med = (runs: StoredRun[] | undefined, f: (r: StoredRun) => number) => median(ok(runs).map(f));
const tput = (r: StoredRun) => r.throughput;
const cpuCost = (r: StoredRun) => r.cpuUsPerCommand;
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)} %` : "n/a");
const ms = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? "n/a" : x < 10 ? x.toFixed(1) : x.toFixed(0);
const yes = (b: boolean | null) => (b === null ? "not measured" : b ? "**met**" : "**not met**");

function maxRss(r: StoredRun): number {
  return Math.max(0, ...r.rss.flatMap((s) => s.points.map((p) => p.rssBytes)));
}

function checks(r: StoredRun): string {
  if (r.error) return `FAILED: ${r.error.split("\n")[0]}`;
  const v = r.verification;
  if (!v) return "not checked";
  if (!v.ok) return `FAILED: ${v.problems.slice(0, 2).join("; ")}`;
  const rej = Object.entries(v.rejected)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  return `${v.events} events = ${v.commands} commands${v.applied ? `, ${v.applied} applied` : ""}${rej ? `, rejected: ${rej}` : ""}${v.redelivered ? `, ${v.redelivered} redelivered` : ""}; ${v.audit}`;
}

function cpuText(r: StoredRun): string {
  const service = Object.entries(r.cpu)
    .filter(([k]) => k.startsWith("service") || k.startsWith("raw"))
    .map(([, v]) => v);
  return `${service.join(" + ")} / ${r.cpu["nats-server"] ?? "?"} / ${r.cpu["bench"] ?? "?"} / ${r.cpu["other"] ?? "?"}`;
}

/** The median run's CPU per command by thread (scenario.ts cpuUsByThread), µs. */
function threadText(r: StoredRun): string {
  const t = r.cpuUsByThread;
  return t ? `${t.main.toFixed(0)} / ${t.busiestOther.toFixed(0)} / ${t.rest.toFixed(0)}` : "";
}

function throughputTable(suite: Suite, rows: Array<[string, string, string | null]>): string {
  const out = [
    "| configuration | runs (cmd/s) | median cmd/s | ratio | CPU µs per command (median) | of which main / engine / rest (median run) | latency p50 / p99 (ms) | CPU % service / nats-server / bench / other | max RSS (MB) | checks (median run) |",
    "|---|---|---:|---:|---:|---|---|---|---:|---|",
  ];
  for (const [name, key, against] of rows) {
    const runs = suite.groups[key];
    if (!runs || runs.length === 0) continue;
    const m = ok(runs).length > 0 ? medianRun(ok(runs), tput) : (runs[0] as StoredRun);
    const ratio = against ? med(runs, tput) / med(suite.groups[against], tput) : Number.NaN;
    const cost = med(runs, cpuCost);
    const costRatio = against ? med(suite.groups[against], cpuCost) / cost : Number.NaN;
    out.push(
      `| ${name} | ${runs.map((r) => (r.ok ? thousands(r.throughput) : "failed")).join(", ")} | ${thousands(med(runs, tput))} | ${against ? `${pct(ratio)} of ${against}` : ""} | ${thousands(cost)}${against ? ` (${against} ÷ this: ${pct(costRatio)})` : ""} | ${threadText(m)} | ${ms(m.latency?.p50)} / ${ms(m.latency?.p99)} | ${cpuText(m)} | ${(maxRss(m) / MB).toFixed(0)} | ${checks(m)} |`,
    );
  }
  return out.join("\n");
}

function latencyTable(suite: Suite, keys: string[]): string {
  const out = [
    "| load | runs p99 (ms) | p50 | p90 | p99 | max | achieved cmd/s | CPU % service / nats-server / bench / other | checks (median run) |",
    "|---|---|---:|---:|---:|---:|---:|---|---|",
  ];
  for (const key of keys) {
    const runs = suite.groups[key];
    if (!runs || runs.length === 0) continue;
    const good = ok(runs);
    const m =
      good.length > 0
        ? medianRun(good, (r) => r.latency?.p99 ?? Number.POSITIVE_INFINITY)
        : (runs[0] as StoredRun);
    const l = m.latency;
    out.push(
      `| ${m.spec.label.replace(/ #\d+$/, "")} | ${runs.map((r) => (r.ok ? ms(r.latency?.p99) : "failed")).join(", ")} | ${ms(l?.p50)} | ${ms(l?.p90)} | ${ms(l?.p99)} | ${ms(l?.max)} | ${thousands(m.throughput)} | ${cpuText(m)} | ${checks(m)} |`,
    );
  }
  return out.join("\n");
}

function memoryFigures(
  r: StoredRun | undefined,
): { max: number; firstHalfMax: number; secondHalfMax: number; slopeMBperMin: number } | null {
  if (!r) return null;
  const pts = r.rss.flatMap((s) => s.points);
  if (pts.length < 4) return null;
  const tEnd = Math.max(...pts.map((p) => p.tMs));
  const first = pts.filter((p) => p.tMs < tEnd / 2);
  const second = pts.filter((p) => p.tMs >= tEnd / 2);
  return {
    max: Math.max(...pts.map((p) => p.rssBytes)),
    firstHalfMax: Math.max(...first.map((p) => p.rssBytes)),
    secondHalfMax: Math.max(...second.map((p) => p.rssBytes)),
    slopeMBperMin: slope(
      second.map((p) => p.tMs / 60_000),
      second.map((p) => p.rssBytes / MB),
    ),
  };
}

function targetsTable(suite: Suite): string {
  const g = suite.groups;
  const s1 = med(g["service-1"], tput),
    r1 = med(g["raw-1"], tput),
    s2 = med(g["service-2"], tput),
    r2 = med(g["raw-2"], tput);
  const b1 = med(g["baseline-1"], tput);
  const p99 = med(g[`open-${TARGETS.p99RatePerS}`], (r) => r.latency?.p99 ?? Number.NaN);
  const mem = memoryFigures(ok(g["memory-1"])[0]);
  const pre = med(g["preloaded-1"], tput);
  const zipf = med(g["zipf-1m"], tput);
  const finite = (x: number) => Number.isFinite(x);
  const c = (key: string) => med(g[key], cpuCost);
  // Throughput is the target's own figure; on a shared box it moves with other people's load, so
  // the CPU cost per command (what throughput would follow on a dedicated core) is given beside it.
  const both = (byTput: number, byCpu: number, min: number): [string, boolean | null] => {
    if (!finite(byTput)) return ["not measured", null];
    const t = byTput >= min,
      u = byCpu >= min;
    return [
      t === u || !finite(byCpu)
        ? yes(t)
        : `${yes(t)} by throughput; ${u ? "met" : "not met"} by CPU cost`,
      t,
    ];
  };
  const cpuView = (num: string, den: string) =>
    `; by CPU cost per command ${thousands(c(num))} / ${thousands(c(den))} µs = ${pct(c(num) / c(den))}`;
  const rows: Array<[string, string, [string, boolean | null]]> = [
    [
      "end-to-end throughput ≥ 75 % of the raw ceiling, 1 process",
      `${thousands(s1)} / ${thousands(r1)} cmd/s = ${pct(s1 / r1)}${cpuView("raw-1", "service-1")}`,
      both(s1 / r1, c("raw-1") / c("service-1"), TARGETS.ceilingShareMin),
    ],
    [
      "end-to-end throughput ≥ 75 % of the raw ceiling, 2 processes",
      `${thousands(s2)} / ${thousands(r2)} cmd/s = ${pct(s2 / r2)}${cpuView("raw-2", "service-2")}`,
      both(s2 / r2, c("raw-2") / c("service-2"), TARGETS.ceilingShareMin),
    ],
    [
      "≥ 10× the one-at-a-time baseline (1 process)",
      `${thousands(s1)} / ${thousands(b1)} cmd/s = ${(s1 / b1).toFixed(1)}×; by CPU cost ${thousands(c("baseline-1"))} / ${thousands(c("service-1"))} µs = ${(c("baseline-1") / c("service-1")).toFixed(1)}×`,
      both(s1 / b1, c("baseline-1") / c("service-1"), TARGETS.baselineFactorMin),
    ],
    [
      `p99 publish → event ≤ 25 ms at ${thousands(TARGETS.p99RatePerS)} commands/s offered, 1 process`,
      `p99 ${ms(p99)} ms`,
      [finite(p99) ? yes(p99 <= TARGETS.p99MsMax) : "not measured", null],
    ],
    [
      "resident memory flat (≤ 250 MB) across a 1,000,000-command run",
      mem
        ? `max ${(mem.max / MB).toFixed(0)} MB; max in first / second half ${(mem.firstHalfMax / MB).toFixed(0)} / ${(mem.secondHalfMax / MB).toFixed(0)} MB; second-half slope ${mem.slopeMBperMin.toFixed(1)} MB/min`
        : "n/a",
      [mem ? yes(mem.max <= TARGETS.rssBytesMax) : "not measured", null],
    ],
    [
      `with ${thousands(suite.preload?.transfers ?? 5_000_000)} transfers already in the ledger, ≥ 80 % of the throughput on an empty one`,
      `${thousands(pre)} / ${thousands(s1)} cmd/s = ${pct(pre / s1)}${cpuView("service-1", "preloaded-1")}`,
      both(pre / s1, c("service-1") / c("preloaded-1"), TARGETS.preloadedShareMin),
    ],
    [
      `${thousands(suite.zipfUsers ?? 1_000_000)} users drawn by Zipf's law (s = 1) on a ledger of as many accounts and ${thousands(suite.preload?.transfers ?? 5_000_000)} transfers, ≥ 80 % of the ${thousands(suite.users)}-user throughput`,
      `${thousands(zipf)} / ${thousands(s1)} cmd/s = ${pct(zipf / s1)}${cpuView("service-1", "zipf-1m")}`,
      both(zipf / s1, c("service-1") / c("zipf-1m"), TARGETS.zipfShareMin),
    ],
  ];
  return [
    "| target | measured (medians of this invocation) | |",
    "|---|---|---|",
    ...rows.map(([t, m, [verdict]]) => `| ${t} | ${m} | ${verdict} |`),
  ].join("\n");
}

function charts(suite: Suite, dir: string, suffix: string): string[] {
  const written: string[] = [];
  const g = suite.groups;
  const sweepKeys = Object.keys(g)
    .filter((k) => k.startsWith("sweep-"))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  const sweep: Array<[number, number]> = sweepKeys.map((k) => [
    Number(k.slice(6)),
    med(g[k], tput),
  ]);
  if (sweep.length === 0) {
    // Quick form: the baseline and the default batch are the two points there are.
    const b1 = med(g["baseline-1"], tput),
      s1 = med(g["service-1"], tput);
    if (Number.isFinite(b1)) sweep.push([1, b1]);
    if (Number.isFinite(s1)) sweep.push([suite.batch, s1]);
  }
  const r1 = med(g["raw-1"], tput);
  const xs = sweep.map((p) => p[0]);
  const lo = Math.min(1, ...xs),
    hi = Math.max(suite.batch, ...xs);
  const series: Series[] = [
    { name: "service, 1 process", points: sweep, color: PALETTE[0], markers: true },
  ];
  if (Number.isFinite(r1)) {
    series.push({
      name: `raw ceiling, 1 process, batch ${suite.batch}`,
      points: [
        [lo, r1],
        [hi, r1],
      ],
      color: PALETTE[1],
      dashed: true,
    });
    series.push({
      name: "75 % of the ceiling",
      points: [
        [lo, r1 * 0.75],
        [hi, r1 * 0.75],
      ],
      color: PALETTE[7],
      dashed: true,
    });
  }
  const s2 = med(g["service-2"], tput);
  if (Number.isFinite(s2))
    series.push({
      name: `service, 2 processes, batch ${suite.batch}`,
      points: [[suite.batch, s2]],
      color: PALETTE[2],
      markers: true,
    });
  const f1 = `e2e-throughput-batch${suffix}.svg`;
  writeFileSync(
    join(dir, f1),
    lineChart({
      title: "Throughput against batch size (worker.batchMessagesMax)",
      subtitle: `${suite.machine.nproc} cores, ${suite.machine.cpuModel}; medians of ${suite.form} form; commands/s from first publish to last event`,
      x: { label: "batch size (messages, log scale)", log: true, min: lo, max: hi },
      y: {
        label: "commands / s",
        min: 0,
        max: Math.max(r1 || 0, ...sweep.map((p) => p[1]), Number.isFinite(s2) ? s2 : 0) * 1.1,
      },
      series,
    }),
  );
  written.push(f1);
  const latKeys = Object.keys(g)
    .filter((k) => k.startsWith("open-") || k === "closed-1")
    .sort((a, b) =>
      a === "closed-1" ? 1 : b === "closed-1" ? -1 : Number(a.slice(5)) - Number(b.slice(5)),
    );
  const latSeries: Series[] = latKeys.map((k, i) => {
    const runs = ok(g[k]);
    const m =
      runs.length > 0
        ? medianRun(runs, (r) => r.latency?.p99 ?? Number.POSITIVE_INFINITY)
        : undefined;
    return {
      name: m ? m.spec.label.replace(/ #\d+$/, "") : k,
      points: m?.curve ?? [],
      color: PALETTE[i % PALETTE.length] as string,
    };
  });
  latSeries.push({
    name: "target: p99 25 ms",
    points: [
      [0, 25],
      [4, 25],
    ],
    color: "#444",
    dashed: true,
  });
  const f2 = `e2e-latency${suffix}.svg`;
  writeFileSync(
    join(dir, f2),
    lineChart({
      title: "Latency publish → event, 1 service process",
      subtitle:
        "median run (by p99) of each load; open loop measured from each command's intended send time",
      x: { label: "percentile", min: 0, max: 4, ticks: NINES_TICKS },
      y: { label: "milliseconds (log scale)", log: true },
      series: latSeries,
    }),
  );
  written.push(f2);
  const mem = ok(g["memory-1"])[0];
  if (mem) {
    const f3 = `e2e-memory${suffix}.svg`;
    writeFileSync(
      join(dir, f3),
      lineChart({
        title: "Resident memory (VmRSS) of the service process, 1,000,000 commands",
        subtitle: `sampled every ${mem.spec.rssEveryMs} ms from /proc/<pid>/status`,
        x: { label: "seconds since the process was ready" },
        y: { label: "MB", min: 0, max: Math.max(300, (maxRss(mem) / MB) * 1.1) },
        series: [
          ...mem.rss.map((s, i) => ({
            name: s.name,
            points: s.points.map((p) => [p.tMs / 1000, p.rssBytes / MB] as [number, number]),
            color: PALETTE[i] as string,
          })),
          {
            name: "target: 250 MB",
            points: [
              [0, 250],
              [Math.max(...mem.rss.flatMap((s) => s.points.map((p) => p.tMs / 1000))), 250],
            ],
            color: "#444",
            dashed: true,
          },
        ],
      }),
    );
    written.push(f3);
  }
  return written;
}

export function writeReport(suite: Suite, dir: string): string[] {
  const suffix = suite.form === "full" ? "" : `-${suite.form}`;
  const pictures = charts(suite, dir, suffix);
  const m = suite.machine;
  const g = suite.groups;
  const page: string[] = [
    `# End-to-end benchmark: the batched pipeline against the broker's ceiling${suite.form === "full" ? "" : ` (${suite.form} form)`}`,
    "",
    `Generated by \`${suite.command}\` (bench/run.ts) on ${suite.startedAt.slice(0, 16).replace("T", " ")} UTC in ${suite.durationS} s. Code measured: ${suite.tree ?? "see the commit of this page"}.`,
    "",
    `Machine: ${m.nproc} cores (nproc), ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}; nats-server ${m.natsServer} (own server per run, file storage).`,
    `Load: ${suite.users.toLocaleString("en-US")} users; mix 40 % credit, 30 % debit, 10 % hold, 10 % capture or release, 10 % transfer (half with a fee); publisher window ${suite.publishWindow} PubAcks; service config = config/default.json with worker.batchMessagesMax ${suite.batch}, batchWaitMs ${suite.batchWaitMs}, ops.port 0, LOG_LEVEL info, except where a row says otherwise.`,
    "",
    ...(suite.rerun
      ? [`Re-run and merged into this invocation's figures: ${suite.rerun.join("; ")}.`, ""]
      : []),
    "## Targets of the issue",
    "",
    targetsTable(suite),
    "",
    "## Throughput (publish as fast as the broker takes it, measured from the first publish to the last event)",
    "",
    throughputTable(suite, [
      ["raw ceiling, 1 process", "raw-1", null],
      ["service, 1 process", "service-1", "raw-1"],
      ["raw ceiling, 2 processes", "raw-2", null],
      ["service, 2 processes", "service-2", "raw-2"],
      [
        "service, 1 process, UUIDv4 operation ids (the other rows: time-ordered)",
        "service-1-v4",
        "raw-1",
      ],
      [
        "service, 2 processes, UUIDv4 operation ids (the other rows: time-ordered)",
        "service-2-v4",
        "raw-2",
      ],
      [
        "service, 1 process, time-ordered operation ids (the other rows: UUIDv4)",
        "service-1-ordered",
        "raw-1",
      ],
      [
        "service, 2 processes, time-ordered operation ids (the other rows: UUIDv4)",
        "service-2-ordered",
        "raw-2",
      ],
      ["one-at-a-time (batchMessagesMax 1), 1 process", "baseline-1", "service-1"],
      [
        `preloaded ledger (${thousands(suite.preload?.transfers ?? 0)} transfers), 1 process`,
        "preloaded-1",
        "service-1",
      ],
      [
        `${thousands(suite.zipfUsers ?? 1_000_000)} Zipf-drawn users on a ledger preloaded for them, 1 process`,
        "zipf-1m",
        "service-1",
      ],
    ]),
    "",
    "Latency in this table is queueing under a burst (everything is published at once), not the latency target; see the next table.",
    "",
    "## Latency publish → event, 1 process",
    "",
    latencyTable(
      suite,
      Object.keys(g).filter((k) => k.startsWith("open-") || k === "closed-1"),
    ),
    "",
    "Every row above runs on one nats-server (R1 streams); the cluster's figures are in the R1 against R3 section below.",
    "",
  ];
  if (g["r3-service-1"] !== undefined || g["r3-open-2000"] !== undefined) {
    page.push(
      "## R1 against R3: one nats-server, or three clustered nodes with every stream replicated (same run, same load)",
      "",
      throughputTable(suite, [
        ["service, 1 process, R1 (one node)", "service-1", null],
        ["service, 1 process, R3 (three nodes)", "r3-service-1", "service-1"],
      ]),
      "",
      latencyTable(suite, ["open-2000", "r3-open-2000"]),
      "",
      "On the cluster the three nodes run on the same cores as everything else; their CPU is summed in the nats-server column.",
      "",
    );
  }
  const sweep = Object.keys(g)
    .filter((k) => k.startsWith("sweep-"))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  if (sweep.length > 0) {
    page.push(
      "## Batch size (1 process, one run per size)",
      "",
      throughputTable(
        suite,
        sweep.map(
          (k) => [`batchMessagesMax ${k.slice(6)}`, k, "raw-1"] as [string, string, string],
        ),
      ),
      "",
    );
  }
  const backlog = Object.keys(g).filter((k) => k.startsWith("backlog-"));
  if (backlog.length > 0) {
    page.push(
      "## Backlog drain (all commands stored before the processes start; rate from first event to last)",
      "",
      "| configuration | drain cmd/s | checks |",
      "|---|---:|---|",
      ...backlog.map((k) => {
        const r = g[k]?.[0] as StoredRun;
        return `| ${r.spec.label} | ${thousands(r.drainRate)} | ${checks(r)} |`;
      }),
      "",
    );
  }
  const mem = g["memory-1"]?.[0];
  if (mem) {
    const f = memoryFigures(mem);
    page.push(
      "## Memory: 1,000,000 commands, 1 process",
      "",
      throughputTable(suite, [["1,000,000 commands", "memory-1", null]]),
      "",
      f
        ? `VmRSS max ${(f.max / MB).toFixed(0)} MB; max in the first half ${(f.firstHalfMax / MB).toFixed(0)} MB, in the second half ${(f.secondHalfMax / MB).toFixed(0)} MB; least-squares slope over the second half ${f.slopeMBperMin.toFixed(1)} MB/min.`
        : "",
      "",
    );
  }
  page.push("## Pictures", "", ...pictures.map((p) => `![${p}](${p})`), "");
  page.push(
    "## Method",
    "",
    "- Every run: a fresh `nats-server` (test/support/nats-server.ts, random port, temp store), a fresh ledger file (or a copy of the cached preloaded one), real `node bin/billing.js start` processes with `BILLING_CONFIG` pointing at the run's config file. Logs go to a file, not a pipe.",
    "- The raw ceiling is bench/e2e/raw-worker.ts: the service's own consume() buffer, Batcher, publishEvents (Nats-Msg-Id + expected last subject sequence 0, awaited PubAcks) and ack, with no decode, no ledger, no facts; events are a fixed 360-byte payload. Same config, same number of processes.",
    "- Throughput = commands / (last event seen − first publish), seen by a core subscription on billing.evt.> in the bench process. The bench process (publisher + collector) runs on the same 2 cores; its CPU share is in the tables.",
    "- Open loop: commands are sent on a fixed schedule and latency runs from each command's intended send time, so a stalled publisher cannot hide latency. Closed loop: 64 clients, each waits for its event before its next command.",
    "- Resident memory: VmRSS of every process from /proc/<pid>/status, sampled periodically. CPU: utime + stime from /proc/<pid>/stat over the measured interval, % of one core.",
    "- Checks, before any figure counts: every command stored once; exactly one event per command, of the right kind, nothing foreign; no dead letters; consumer idle; the events' balance lines equal a reference model replayed from the events in ledger-timestamp order (from the ledger's starting balances); rejections only where this load can produce them (credits never; captures and releases hold_not_found exactly when their hold was rejected); the ledger's final balances (read through the ledger port) equal the model; then `billing audit`, or debits = credits over every account where the audit verb does not exist.",
    "",
  );
  // The hand-written analysis reads the full form's figures; other forms are supplements to it.
  if (suite.form === "full" && existsSync(ANALYSIS)) page.push(readFileSync(ANALYSIS, "utf8"), "");
  const profile = join(dir, "e2e-profile.md");
  if (suite.form === "full" && existsSync(profile))
    page.push(
      "## CPU profile",
      "",
      "From `npx tsx bench/run.ts profile` (bench/results/e2e-profile.md):",
      "",
      readFileSync(profile, "utf8").replace(/^# .*\n/, ""),
      "",
    );
  const name = `e2e${suffix}.md`;
  writeFileSync(join(dir, name), page.join("\n"));
  writeFileSync(join(dir, `e2e${suffix}.json`), JSON.stringify(suite, null, 1));
  return [name, `e2e${suffix}.json`, ...pictures];
}
