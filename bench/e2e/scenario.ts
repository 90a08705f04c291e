// One measured run: a fresh nats-server and ledger, the pipeline's processes, one load, the
// figures, then the checks. Every run is isolated; nothing carries over between runs.
import { copyFileSync, existsSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ensureTopology } from "../../src/broker/topology.ts";
import { loadConfig } from "../../src/config/load.ts";
import { waitForJetStream } from "../../test/support/cluster.ts";
import {
  startNats,
  startNatsCluster,
  type NatsCluster,
  type NatsServer,
} from "../../test/support/nats-server.ts";
import {
  CpuMeter,
  ThreadCpuMeter,
  runDir,
  SERVICE_ROOT,
  RssSampler,
  spawnRaw,
  spawnService,
  type Proc,
  type RssSeries,
} from "./cluster.ts";
import { closedLoop, Collector, publishBurst, publishOpenLoop } from "./load.ts";
import { median, summarize, type Percentiles } from "./stats.ts";
import { topologyOf } from "./topology.ts";
import { readBalances, verifyRun, type Balance, type Verification } from "./verify.ts";
import { claimDeployment, spaceOf } from "../../src/deployment.ts";
import { chartOf as chartOfConfig } from "../../src/service.ts";
import { PRELOAD_DEPLOYMENT } from "./preload.ts";
import { randomTag, Workload, type CommandName } from "./workload.ts";

export type Load =
  | { kind: "burst"; window: number }
  | { kind: "backlog"; window: number }
  | { kind: "open"; ratePerS: number; durationS: number }
  | { kind: "closed"; concurrency: number; durationS: number };

export type RunSpec = {
  label: string;
  pipeline: "service" | "raw";
  processes: number;
  /** worker.batchMessagesMax */
  batch: number;
  batchWaitMs: number;
  load: Load;
  /** Commands (burst, backlog); an upper bound for closed; open uses rate × duration. */
  count: number;
  users: number;
  /** A prepared ledger file, copied for the run (the preloaded-ledger runs). */
  ledgerFrom?: string;
  rssEveryMs: number;
  cpuProfDir?: string;
  /** The tree whose bin/billing.js (and raw worker) run; default SERVICE_ROOT. */
  root?: string;
  /** Node flags for the service processes (after BENCH_SERVICE_NODE_ARGS). */
  nodeArgs?: string[];
  /** Extra config merged over the run's config (deep-merged by the service's loader). */
  config?: Record<string, unknown>;
  /** One nats-server with R1 streams (default), or three clustered nodes with every stream R3. */
  broker?: "single" | "cluster";
  /** Operation ids as the publisher sends them (bench/e2e/workload.ts): "ordered" (default) or "v4". */
  ids?: "ordered" | "v4";
  /** How commands pick their users (bench/e2e/workload.ts): "uniform" (default) or "zipf". */
  draw?: "uniform" | "zipf";
};

export type RunResult = {
  spec: RunSpec;
  ok: boolean;
  error?: string;
  commands: number;
  /** Commands per second from the first publish to the last event. */
  throughput: number;
  /** Commands per second from the first event to the last (backlog runs: the drain rate). */
  drainRate: number;
  elapsedMs: number;
  /** Publish → event: from the intended send time (open loop) or the send (closed, burst). */
  latency: Percentiles | null;
  latencySorted: Float64Array | null;
  rss: RssSeries[];
  cpu: Record<string, number>;
  /**
   * The service's CPU per command by thread (µs, summed over its processes; bench/e2e/cluster.ts
   * ThreadCpuMeter): main thread, busiest other thread (the ledger engine's), the rest (GC helpers,
   * libuv). Absent for raw runs and in older results.
   */
  cpuUsByThread?: { main: number; busiestOther: number; rest: number };
  /** Messages per batch from the services' "batch settled" log lines (median, mean); absent for raw runs. */
  batchMessages?: { median: number; mean: number; batches: number };
  /** CPU time of the pipeline's processes per command (µs): what a command costs, whatever else runs on the machine. */
  cpuUsPerCommand: number;
  mix: Record<CommandName, number>;
  verification: Verification | null;
  publisherLagMaxMs?: number;
};

/** The `messages` of every "batch settled" line in a service's log (pino JSON lines). */
function batchSizesIn(log: string): number[] {
  const sizes: number[] = [];
  for (const text of log.split("\n")) {
    if (!text.includes('"batch settled"')) continue;
    const messages = (JSON.parse(text) as { messages?: unknown }).messages;
    if (typeof messages === "number") sizes.push(messages);
  }
  return sizes;
}

/** Enough to finish any sane run; a run slower than this is reported as failed, not awaited forever. */
function deadlineMs(count: number): number {
  return 120_000 + count * 5;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/** Replicas of every stream on the three-node cluster. */
const CLUSTER_REPLICAS = 3;

function runConfig(spec: RunSpec): Record<string, unknown> {
  return {
    ...spec.config,
    ...(spec.broker === "cluster"
      ? { streams: { replicas: CLUSTER_REPLICAS, ...(spec.config?.["streams"] ?? {}) } }
      : {}),
    worker: {
      batchMessagesMax: spec.batch,
      batchWaitMs: spec.batchWaitMs,
      ...(spec.config?.["worker"] ?? {}),
    },
    ops: { port: 0 },
  };
}

function latenciesOf(seenAt: Float64Array, from: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < n; i += 1) {
    const v = (seenAt[i] as number) - (from[i] as number);
    if (Number.isFinite(v)) out[k++] = v;
  }
  return out.subarray(0, k).sort();
}

/** The run's broker: its URL(s) and the nats-server processes whose CPU counts as the broker's. */
type Broker = {
  url: string;
  servers: string[];
  pids: Array<{ name: string; pid: number }>;
  stop(): Promise<void>;
};

async function startBroker(kind: "single" | "cluster"): Promise<Broker> {
  if (kind === "single") {
    const nats: NatsServer = await startNats();
    return {
      url: nats.url,
      servers: [nats.url],
      pids: [{ name: "nats-server", pid: nats.pid }],
      stop: () => nats.stop(),
    };
  }
  const cluster: NatsCluster = await startNatsCluster();
  return {
    url: cluster.url,
    servers: [...cluster.urls],
    pids: cluster.nodes.map((n) => ({ name: `nats-server-${n.name}`, pid: n.pid })),
    stop: () => cluster.stop(),
  };
}

/** The cluster's nodes' CPU as one "nats-server" figure (% of one core, summed), as the single server reports it. */
function brokerCpu(cpu: Record<string, number>): Record<string, number> {
  const nodes = Object.keys(cpu).filter((k) => k.startsWith("nats-server-"));
  if (nodes.length === 0) return cpu;
  const out: Record<string, number> = {
    "nats-server": nodes.reduce((sum, k) => sum + (cpu[k] ?? 0), 0),
  };
  for (const [k, v] of Object.entries(cpu)) if (!k.startsWith("nats-server-")) out[k] = v;
  return out;
}

export async function runOne(spec: RunSpec): Promise<RunResult> {
  const nats = await startBroker(spec.broker ?? "single");
  const dir = runDir(runConfig(spec));
  const procs: Proc[] = [];
  const nc = await connect({
    servers: nats.servers,
    name: "billing-bench",
    maxReconnectAttempts: -1,
  });
  const count =
    spec.load.kind === "open" ? Math.round(spec.load.ratePerS * spec.load.durationS) : spec.count;
  const workload = new Workload({
    count,
    users: spec.users,
    seed: 0x5eed + spec.processes * 31 + spec.batch,
    tag: randomTag(),
    holdGapMin: 5_000,
    ...(spec.ids ? { ids: spec.ids } : {}),
    ...(spec.draw ? { draw: spec.draw } : {}),
  });
  const result: RunResult = {
    spec,
    ok: false,
    commands: 0,
    throughput: Number.NaN,
    drainRate: Number.NaN,
    elapsedMs: Number.NaN,
    latency: null,
    latencySorted: null,
    rss: [],
    cpu: {},
    cpuUsPerCommand: Number.NaN,
    mix: workload.mix(),
    verification: null,
  };
  try {
    if (spec.ledgerFrom !== undefined) {
      if (!existsSync(spec.ledgerFrom))
        throw new Error(`prepared ledger ${spec.ledgerFrom} is missing`);
      copyFileSync(spec.ledgerFrom, dir.ledgerPath);
    }
    const config = loadConfig({ BILLING_CONFIG: dir.configPath, NATS_URL: nats.url });
    // A cluster's JetStream answers once its nodes have elected a meta leader.
    if (spec.broker === "cluster") await waitForJetStream(nc);
    const js = jetstream(nc, { timeout: 30_000 });
    const jsm = await jetstreamManager(nc);
    await ensureTopology(jsm, topologyOf(config));
    // The services make the commands consumer with their own tree's code: an A/B between trees
    // whose consumer differs must not hand one tree's consumer to the other (on nats-server 2.9.10
    // a consumer made without a filter and updated to a wildcard filter delivers nothing).
    if (spec.pipeline === "service")
      await jsm.consumers.delete(config.streams.commands, config.consumer.name);
    // A copied ledger already belongs to the preloaded deployment: its fresh streams say so first.
    if (spec.ledgerFrom !== undefined)
      await claimDeployment({ js, stream: config.streams.deployment }, PRELOAD_DEPLOYMENT.id);
    const chart = chartOfConfig(config, spaceOf(PRELOAD_DEPLOYMENT.id, PRELOAD_DEPLOYMENT.key));
    const initial =
      spec.pipeline === "service" && spec.ledgerFrom !== undefined
        ? await readBalances(spec.root ?? SERVICE_ROOT, dir.ledgerPath, chart, workload)
        : new Map<string, Balance>();
    const collector = new Collector(
      nc,
      workload,
      spec.load.kind === "closed" ? Number.POSITIVE_INFINITY : count,
    );
    let backlog: Awaited<ReturnType<typeof publishBurst>> | null = null;
    if (spec.load.kind === "backlog") backlog = await publishBurst(js, workload, spec.load.window);
    const spawnOne = spec.pipeline === "service" ? spawnService : spawnRaw;
    procs.push(
      ...(await Promise.all(
        Array.from({ length: spec.processes }, (_, index) =>
          spawnOne({
            natsUrl: nats.url,
            run: dir,
            index,
            ...(spec.cpuProfDir ? { cpuProfDir: spec.cpuProfDir } : {}),
            ...(spec.root ? { root: spec.root } : {}),
            ...(spec.nodeArgs ? { nodeArgs: spec.nodeArgs } : {}),
          }),
        ),
      )),
    );
    const rss = new RssSampler(procs, spec.rssEveryMs).start();
    const cpu = new CpuMeter([...procs, ...nats.pids]);
    const threads = new ThreadCpuMeter(procs.map((p) => p.pid));
    const deadline = deadlineMs(count);
    let from: Float64Array;
    let firstPublish: number;
    switch (spec.load.kind) {
      case "burst": {
        const p = await withTimeout(
          publishBurst(js, workload, spec.load.window),
          deadline,
          "publish",
        );
        await withTimeout(
          collector.all,
          deadline,
          `events (${collector.distinct} of ${count} seen)`,
        );
        from = p.sentAt;
        firstPublish = p.firstPublishMs;
        break;
      }
      case "backlog": {
        await withTimeout(
          collector.all,
          deadline,
          `events (${collector.distinct} of ${count} seen)`,
        );
        from = (backlog as NonNullable<typeof backlog>).sentAt;
        firstPublish = (backlog as NonNullable<typeof backlog>).firstPublishMs;
        break;
      }
      case "open": {
        const p = await withTimeout(
          publishOpenLoop(js, workload, spec.load.ratePerS),
          deadline,
          "publish",
        );
        await withTimeout(
          collector.all,
          deadline,
          `events (${collector.distinct} of ${count} seen)`,
        );
        from = p.intendedAt;
        firstPublish = p.firstPublishMs;
        result.publisherLagMaxMs = p.lagMaxMs;
        break;
      }
      case "closed": {
        const c = await closedLoop(
          js,
          workload,
          collector,
          spec.load.concurrency,
          spec.load.durationS * 1000,
        );
        from = c.sentAt;
        firstPublish = performance.now() - c.elapsedMs;
        break;
      }
    }
    const n = workload.generated;
    const last = collector.lastSeenOf(n);
    result.commands = n;
    result.elapsedMs = last - firstPublish;
    result.throughput = n / ((last - firstPublish) / 1000);
    result.drainRate = n / ((last - collector.firstSeenOf(n)) / 1000);
    result.cpu = brokerCpu(cpu.read());
    const used = cpu.seconds();
    result.cpuUsPerCommand = (procs.reduce((sum, p) => sum + (used[p.name] ?? 0), 0) / n) * 1e6;
    if (spec.pipeline === "service") {
      const t = threads.read();
      result.cpuUsByThread = {
        main: (t.main / n) * 1e6,
        busiestOther: (t.busiestOther / n) * 1e6,
        rest: (t.rest / n) * 1e6,
      };
    }
    result.rss = rss.stop();
    result.latencySorted = latenciesOf(collector.seenAt, from, n);
    result.latency = summarize(result.latencySorted);
    result.mix = workload.mix();
    collector.close();
    const sizes: number[] = [];
    for (const p of procs.splice(0)) {
      const code = await p.stop();
      if (code !== 0) throw new Error(`${p.name} exited with ${code}:\n${p.log().slice(-3000)}`);
      if (spec.pipeline === "service") sizes.push(...batchSizesIn(p.log()));
    }
    if (sizes.length > 0)
      result.batchMessages = {
        median: median(sizes),
        mean: sizes.reduce((a, b) => a + b, 0) / sizes.length,
        batches: sizes.length,
      };
    if (spec.pipeline === "service") {
      const streams = {
        commands: config.streams.commands,
        events: config.streams.events,
        dlq: config.streams.dlq,
        consumer: config.consumer.name,
      };
      result.verification = await verifyRun({
        js,
        jsm,
        streams,
        workload,
        ledgerPath: dir.ledgerPath,
        configPath: dir.configPath,
        natsUrl: nats.url,
        initial,
        root: spec.root ?? SERVICE_ROOT,
        audit: spec.ledgerFrom === undefined,
      });
    } else {
      const events = (await jsm.streams.info(config.streams.events)).state.messages;
      const ci = await jsm.consumers.info(config.streams.commands, config.consumer.name);
      const problems = [
        ...(events === n ? [] : [`events stream holds ${events}, expected ${n}`]),
        ...(ci.num_pending === 0 && ci.num_ack_pending === 0
          ? []
          : [`consumer not idle: ${ci.num_pending} pending, ${ci.num_ack_pending} unacknowledged`]),
      ];
      result.verification = {
        ok: problems.length === 0,
        problems,
        commands: n,
        events,
        applied: 0,
        rejected: {},
        redelivered: ci.num_redelivered,
        audit: "raw pipeline: event count only",
      };
    }
    result.ok = result.verification.ok;
  } catch (error) {
    result.error = (error as Error).message;
    for (const p of procs) result.error += `\n--- ${p.name} log tail ---\n${p.log().slice(-2000)}`;
  } finally {
    for (const p of procs) await p.stop().catch(() => null);
    await nc.close().catch(() => undefined);
    await nats.stop();
    // BENCH_KEEP=1 keeps the run's directory (config, ledger, service logs with per-batch timings).
    if (process.env["BENCH_KEEP"] === "1") process.stderr.write(`  kept ${dir.dir}\n`);
    else dir.cleanup();
  }
  return result;
}
