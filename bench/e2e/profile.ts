// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: by area (nats client,
// ledger engine, zod, domain, worker, GC, …), the functions with the most self time, and the
// project's functions with the most total (inclusive) time.
import { readFileSync } from "node:fs";

type CallFrame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type CpuProfile = {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
};

export type Row = { name: string; ms: number; share: number };
export type ProfileSummary = {
  file: string;
  wallMs: number;
  busyMs: number;
  areas: Row[];
  self: Row[];
  inclusive: Row[];
};

const ROWS_MAX = 25;

/** The area a frame belongs to, from its script URL (or the VM's own pseudo-frames). */
export function areaOf(f: CallFrame): string {
  const u = f.url;
  if (u === "") {
    if (f.functionName === "(idle)") return "idle";
    if (f.functionName === "(garbage collector)") return "GC";
    if (f.functionName === "(program)") return "V8/native (program)";
    return "builtins (JSON, BigInt, …)";
  }
  if (u.includes("node_modules/@nats-io/")) return "nats client";
  if (u.includes("node_modules/zod/")) return "zod (decode)";
  if (u.includes("node_modules/better-sqlite3/") || u.includes("/src/ledger/"))
    return "ledger engine";
  if (
    u.includes("node_modules/pino") ||
    u.includes("node_modules/sonic-boom") ||
    u.includes("node_modules/thread-stream")
  )
    return "logging";
  if (u.includes("node_modules/tigerbeetle-node/")) return "tigerbeetle-node";
  if (u.includes("node_modules/")) return "other dependencies";
  for (const area of ["domain", "worker", "broker", "query", "expiry", "audit", "lib", "config"])
    if (u.includes(`/src/${area}/`)) return `src/${area}`;
  if (u.includes("/src/")) return "src (other)";
  if (u.startsWith("node:internal/crypto") || u.includes("internal/crypto"))
    return "crypto (hashId)";
  if (u.startsWith("node:")) return "node core";
  return "other";
}

function label(f: CallFrame): string {
  const file = f.url
    .replace(/^file:\/\//, "")
    .replace(/^.*\/node_modules\//, "~/")
    .replace(/^.*\/(src|bench)\//, "$1/");
  // Project files run through tsx, whose output keeps no line numbers worth showing.
  const line = f.url.includes("/node_modules/") ? `:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"} ${file ? `${file}${line}` : ""}`.trim();
}

function rows(map: Map<string, number>, busyMs: number, max = ROWS_MAX): Row[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, max)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / 1000 / busyMs }));
}

export function summarizeProfile(file: string): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const area = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busyUs = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const a = areaOf(node.callFrame);
    area.set(a, (area.get(a) ?? 0) + dt);
    if (a === "idle") return;
    busyUs += dt;
    const l = label(node.callFrame);
    self.set(l, (self.get(l) ?? 0) + dt);
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)?.callFrame;
      if (f && /\/(src|bench)\//.test(f.url)) onStack.add(label(f));
    }
    for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  });
  const busyMs = busyUs / 1000;
  area.delete("idle");
  return {
    file,
    wallMs: (p.endTime - p.startTime) / 1000,
    busyMs,
    areas: rows(area, busyMs, 50),
    self: rows(self, busyMs),
    inclusive: rows(inclusive, busyMs),
  };
}

export function profileMarkdown(s: ProfileSummary, title: string): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const table = (head: string, rs: Row[]) =>
    [
      `| ${head} | ms | share of busy CPU |`,
      "|---|---:|---:|",
      ...rs.map((r) => `| \`${r.name}\` | ${Math.round(r.ms)} | ${pct(r.share)} |`),
    ].join("\n");
  return [
    `### ${title}`,
    "",
    `Profile \`${s.file.replace(/^.*\//, "")}\`: ${Math.round(s.wallMs)} ms of wall time, ${Math.round(s.busyMs)} ms busy (not idle) on the main thread (${pct(s.busyMs / s.wallMs)}).`,
    "",
    table("area (self time)", s.areas),
    "",
    table("function (self time)", s.self.slice(0, 20)),
    "",
    table("project function (total time, callees included)", s.inclusive.slice(0, 20)),
    "",
  ].join("\n");
}
