// The processes of one measured run: a throwaway nats-server (test/support), a temp directory with
// the run's config file and ledger, the spawned service processes (real `node bin/billing.js
// start`) or raw pipeline workers, and a sampler of their resident memory and CPU.
import { spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** Where the service under test lives; BENCH_SERVICE_ROOT points at another tree (a proposal). */
export const SERVICE_ROOT = resolve(
  process.env["BENCH_SERVICE_ROOT"] ?? new URL("../..", import.meta.url).pathname,
);
/** The raw worker of a tree: each tree's own, so that a proposal's broker code is its ceiling too. */
const RAW_WORKER = "bench/e2e/raw-worker.ts";
/** A cold start (through tsx, as trees older than the compiled build ran) took up to ~8 s on a loaded 2-core box. */
const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 50;
/** SIGTERM finishes the batch in hand; after this we SIGKILL and say so. */
const STOP_TIMEOUT_MS = 30_000;

export type RunDir = { dir: string; ledgerPath: string; configPath: string; cleanup(): void };

export function runDir(config: Record<string, unknown>, ledgerPath?: string): RunDir {
  const dir = mkdtempSync(join(tmpdir(), "billing-bench-"));
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return {
    dir,
    ledgerPath: ledgerPath ?? join(dir, "ledger.db"),
    configPath,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export type Proc = {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  log(): string;
  /** Sends SIGTERM, waits for the exit; SIGKILL after STOP_TIMEOUT_MS. Resolves with the exit code. */
  stop(): Promise<number | null>;
};

type SpawnOptions = {
  name: string;
  args: string[];
  env: Record<string, string>;
  logFile: string;
  readyText: string;
  root: string;
};

async function spawnReady(o: SpawnOptions): Promise<Proc> {
  // stdout and stderr go to a file, not a pipe: the bench process must not spend its CPU reading
  // the service's log lines during a measurement.
  const fd = openSync(o.logFile, "a");
  const child: ChildProcess = spawn(process.execPath, o.args, {
    env: { ...process.env, ...o.env },
    stdio: ["ignore", fd, fd],
    cwd: o.root,
  });
  closeSync(fd);
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const log = () => readFileSync(o.logFile, "utf8");
  const started = Date.now();
  while (!log().includes(o.readyText)) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${o.name} exited before it was ready:\n${log().slice(-4000)}`);
    if (Date.now() - started > READY_TIMEOUT_MS) {
      child.kill("SIGKILL");
      throw new Error(`${o.name} not ready within ${READY_TIMEOUT_MS} ms:\n${log().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${o.name} has no pid`);
  return {
    name: o.name,
    pid,
    logFile: o.logFile,
    log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        process.stderr.write(
          `  ! ${o.name} (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS} ms: SIGKILL\n`,
        );
        child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export type ServiceOptions = {
  natsUrl: string;
  run: RunDir;
  index: number;
  cpuProfDir?: string;
  logLevel?: string;
  root?: string;
  nodeArgs?: string[];
};

/** `node bin/billing.js start` with the run's config, ready when it logged "service started". */
export function spawnService(o: ServiceOptions): Promise<Proc> {
  const prof = o.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`];
  return spawnReady({
    name: `service-${o.index}`,
    args: [
      ...prof,
      ...(process.env["BENCH_SERVICE_NODE_ARGS"] ?? "").split(" ").filter(Boolean),
      ...(o.nodeArgs ?? []),
      join(o.root ?? SERVICE_ROOT, "bin/billing.js"),
      "start",
    ],
    root: o.root ?? SERVICE_ROOT,
    env: {
      NATS_URL: o.natsUrl,
      LEDGER_PATH: o.run.ledgerPath,
      BILLING_CONFIG: o.run.configPath,
      LOG_LEVEL: o.logLevel ?? "info",
    },
    logFile: join(o.run.dir, `service-${o.index}.log`),
    readyText: "service started",
  });
}

/** The raw pipeline (no ledger work): consume → publish the event → ack, same config. */
export function spawnRaw(o: ServiceOptions): Promise<Proc> {
  const prof = o.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`];
  return spawnReady({
    name: `raw-${o.index}`,
    args: [...prof, "--import", "tsx", join(o.root ?? SERVICE_ROOT, RAW_WORKER)],
    root: o.root ?? SERVICE_ROOT,
    env: { NATS_URL: o.natsUrl, BILLING_CONFIG: o.run.configPath },
    logFile: join(o.run.dir, `raw-${o.index}.log`),
    readyText: "raw worker started",
  });
}

// /proc readers. CLK_TCK is 100 on Linux x86-64 (getconf CLK_TCK); page size does not matter
// because VmRSS is reported in kB.
const CLOCK_TICKS_PER_S = 100;

/** Resident memory of a process in bytes (VmRSS), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User + system CPU seconds of a process (or of thread `pid` of process `owner`), or null when it is gone. */
export function cpuSeconds(pid: number, owner?: number): number | null {
  try {
    const path = owner === undefined ? `/proc/${pid}/stat` : `/proc/${owner}/task/${pid}/stat`;
    const st = readFileSync(path, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return null;
  }
}

/** User + system CPU seconds of each thread of a process, by OS thread id; empty when it is gone. */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const used = cpuSeconds(Number(tid), pid);
    if (used !== null) out.set(Number(tid), used);
  }
  return out;
}

export type RssSeries = {
  name: string;
  pid: number;
  points: Array<{ tMs: number; rssBytes: number }>;
};

/** Samples VmRSS of the given processes every `everyMs` until stopped. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private readonly t0 = performance.now();
  readonly series: RssSeries[];

  constructor(
    procs: ReadonlyArray<{ name: string; pid: number }>,
    private readonly everyMs: number,
  ) {
    this.series = procs.map((p) => ({ name: p.name, pid: p.pid, points: [] }));
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  private sample(): void {
    const tMs = performance.now() - this.t0;
    for (const s of this.series) {
      const rss = rssBytes(s.pid);
      if (rss !== null) s.points.push({ tMs, rssBytes: rss });
    }
  }

  stop(): RssSeries[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    return this.series;
  }
}

/** Busy CPU seconds of the whole machine (all cores) from /proc/stat: everything but idle and iowait. */
function machineBusySeconds(): number {
  const first = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0) - (f[8] ?? 0) - (f[9] ?? 0);
  return busy / CLOCK_TICKS_PER_S;
}

/**
 * CPU used by each process between construction and read(), in % of one core; "bench" is this
 * process and "other" is everything else on the machine (other people's work on a shared box).
 */
export class CpuMeter {
  private readonly t0 = performance.now();
  private readonly c0: Map<number, number>;
  private readonly self0 = process.cpuUsage();
  private readonly machine0 = machineBusySeconds();

  constructor(private readonly procs: ReadonlyArray<{ name: string; pid: number }>) {
    this.c0 = new Map(procs.map((p) => [p.pid, cpuSeconds(p.pid) ?? 0]));
  }

  /** CPU seconds each process used so far. */
  seconds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.procs) out[p.name] = (cpuSeconds(p.pid) ?? 0) - (this.c0.get(p.pid) ?? 0);
    return out;
  }

  read(): Record<string, number> {
    const s = (performance.now() - this.t0) / 1000;
    const out: Record<string, number> = {};
    let ours = 0;
    for (const [name, used] of Object.entries(this.seconds())) {
      ours += used;
      out[name] = Math.round((used / s) * 100);
    }
    const self = process.cpuUsage(this.self0);
    const selfS = (self.user + self.system) / 1e6;
    out["bench"] = Math.round((selfS / s) * 100);
    out["other"] = Math.max(
      0,
      Math.round(((machineBusySeconds() - this.machine0 - ours - selfS) / s) * 100),
    );
    return out;
  }
}

/**
 * Where a service's CPU goes, by thread: the main thread (broker I/O, decode, planning, events),
 * the busiest other thread (under load, the embedded ledger engine's worker thread: Node 20 names
 * every thread "node", so it is told by its use), and the rest (V8's GC and compiler helpers,
 * libuv's pool). Seconds since the meter was made, summed over the processes.
 */
export class ThreadCpuMeter {
  private readonly t0: Map<number, Map<number, number>>;

  constructor(private readonly pids: ReadonlyArray<number>) {
    this.t0 = new Map(pids.map((pid) => [pid, threadCpuSeconds(pid)]));
  }

  read(): { main: number; busiestOther: number; rest: number } {
    const out = { main: 0, busiestOther: 0, rest: 0 };
    for (const pid of this.pids) {
      const before = this.t0.get(pid) ?? new Map<number, number>();
      const others: number[] = [];
      for (const [tid, used] of threadCpuSeconds(pid)) {
        const delta = used - (before.get(tid) ?? 0);
        if (tid === pid) out.main += delta;
        else others.push(delta);
      }
      others.sort((a, b) => b - a);
      out.busiestOther += others[0] ?? 0;
      out.rest += others.slice(1).reduce((a, b) => a + b, 0);
    }
    return out;
  }
}
