// The fault suite's environment: one real nats-server (killable with SIGKILL, restartable on its
// store) or a cluster of three (every stream R3, each node killable and restartable), SERVICES
// real `billing start` processes on one embedded ledger file, connected to every node, and a
// client that publishes until the broker has stored each command (through outages too).
import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  jetstreamManager,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { BillingClient, type Sent } from "@billing-ledger/client";
import {
  startNats,
  startNatsCluster,
  type NatsCluster,
  type NatsServer,
} from "../support/nats-server.ts";
import { waitForJetStream } from "../support/cluster.ts";
import {
  spawnService,
  workspace,
  type Overrides,
  type ServiceProcess,
} from "../support/service.ts";
import { rng } from "../support/workload.ts";

/** `npm run test:fault` sets FAULT_SUITE=full; `npm test` runs the short form. */
export const FULL = process.env["FAULT_SUITE"] === "full";

export const SERVICES = 3;

/** A short duplicate window and ack wait, so the suite crosses both within seconds. */
export const DUPLICATE_WINDOW_MS = 2_000;
export const ACK_WAIT_MS = 3_000;

export const FAULT_OVERRIDES: Overrides = {
  streams: { duplicateWindowMs: DUPLICATE_WINDOW_MS },
  consumer: { ackWaitMs: ACK_WAIT_MS, maxDeliver: 100 },
  // A capture may wait for its hold up to 10 s (its hold can sit with a killed process for an ack wait).
  worker: { holdGraceMs: 10_000, holdWaitNakMs: 500 },
  expiry: { delayMs: 1_000, sweepIntervalMs: 200 },
  // Checked behind the consumer every second, commands older than 10 s: well inside settling.
  commandRecovery: {
    intervalMs: 1_000,
    lagMs: 10_000,
    rangeCommands: 1_000,
    rangesPerScanMax: 64,
    rangesBackMax: 100,
  },
  ops: { port: 0 },
};

/** How long a publisher keeps retrying one command through an outage before the test fails. */
const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
const PUBLISH_PERSIST_MS = 120_000;
const PUBLISH_ATTEMPT_MS = 3_000;
const PUBLISH_PAUSE_MS = 200;
/** Starts of one service process tried before the scenario fails. */
const START_ATTEMPTS_MAX = 5;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FaultEnv {
  readonly procs: Array<ServiceProcess | null> = [];
  private stopped = false;
  /** Faults injected so far (kills, stalls, outages, re-publishes, conflicts, malformed messages). */
  faults = 0;
  /** What did not go to plan but is no broken guarantee (a process that failed to start, …). */
  readonly notes: string[] = [];
  /** Processes that exited without being killed by the test, with their exit code. */
  readonly selfExits: string[] = [];

  private constructor(
    /** One nats-server, or a cluster (FaultEnv.start with `{ cluster: true }`). */
    readonly broker: NatsServer | NatsCluster,
    readonly ws: ReturnType<typeof workspace>,
    readonly client: BillingClient,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    /** The ledger file: the workspace's own, or another deployment's on a shared ledger. */
    readonly ledgerPath: string,
  ) {}

  static async start(
    overrides: Overrides = {},
    ledgerPath?: string,
    options: { cluster?: boolean } = {},
  ): Promise<FaultEnv> {
    const broker = options.cluster === true ? await startNatsCluster() : await startNats();
    // On a cluster every stream the topology creates is R3.
    const ws = workspace(
      merge(
        merge(FAULT_OVERRIDES, options.cluster === true ? { streams: { replicas: 3 } } : {}),
        overrides,
      ),
    );
    const servers = "nodes" in broker ? [...broker.urls] : broker.url;
    const client = await BillingClient.connect({ servers, timeoutMs: 30_000 });
    if ("nodes" in broker) await waitForJetStream(client.nc);
    const env = new FaultEnv(
      broker,
      ws,
      client,
      jetstream(client.nc, { timeout: 10_000 }),
      await jetstreamManager(client.nc, { timeout: 10_000 }),
      ledgerPath ?? ws.ledgerPath,
    );
    // Another deployment's ledger (shared): these fresh streams join it on purpose, once.
    if (ledgerPath !== undefined) env.addDeployment();
    // On a fresh 2.9.10 cluster, three processes creating the same R3 stream at once all got no
    // answer (TimeoutError) and started ~30 s later on a retry; one `billing setup` first, as
    // docs/operations.md says for a cluster, and the processes find their streams in place.
    else if ("nodes" in broker) env.setup([]);
    await Promise.all(Array.from({ length: SERVICES }, (_, i) => env.restartService(i)));
    return env;
  }

  /** The single nats-server; a scenario written for one server never runs on a cluster. */
  get nats(): NatsServer {
    if ("nodes" in this.broker)
      throw new Error("this environment runs a NATS cluster: use env.cluster");
    return this.broker;
  }

  get cluster(): NatsCluster {
    if (!("nodes" in this.broker))
      throw new Error("this environment runs one nats-server: use env.nats");
    return this.broker;
  }

  /** Starts process i; a start that fails (it exits, or is not ready in time) is noted and tried again. */
  async restartService(i: number): Promise<ServiceProcess> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const p = await spawnService(
          this.broker.url,
          this.ledgerPath,
          this.ws.configPath,
          this.logDir === null ? {} : { LOG_LEVEL: "debug" },
        );
        if (this.logDir !== null) this.keepOutput(p, i, attempt);
        // A restart fired without waiting (a scenario's `void restartService`) may finish after
        // stop(): then nobody would ever kill this process.
        if (this.stopped) await p.kill("SIGKILL");
        else this.procs[i] = p;
        // killService forgets a process before it kills it: one still listed when it exits ended by itself.
        void p.exited.then((code) => {
          if (this.procs[i] === p && !this.stopped)
            this.selfExits.push(
              `process ${i} exited by itself (code ${code}): ${lastLines(p.output())}`,
            );
        });
        return p;
      } catch (error) {
        const text = (error as Error).message;
        const lines = text.split("\n");
        const reason = lines.find((l) => /"level":(50|60)/.test(l)) ?? lines[0] ?? "";
        // The last thing the process said shows where its start-up was when it gave up or was given up on.
        const last = lines.filter((l) => l.trim() !== "").at(-1) ?? "";
        this.notes.push(
          `process ${i} failed to start (attempt ${attempt}): ${reason.slice(0, 400)}${last !== reason ? ` … last: ${last.slice(0, 300)}` : ""}`,
        );
        if (attempt >= START_ATTEMPTS_MAX) throw error;
      }
    }
  }

  /**
   * FAULT_SERVICE_LOGS=1: every service process runs at LOG_LEVEL=debug (one line per batch received
   * and per message settled, with stream sequences) and its output goes to a file under the
   * workspace, kept after the test; verify.ts reads them when settling times out.
   */
  get logDir(): string | null {
    return process.env["FAULT_SERVICE_LOGS"] === "1" ? join(this.ws.dir, "service-logs") : null;
  }
  private logFiles = 0;

  private keepOutput(p: ServiceProcess, i: number, attempt: number): void {
    if (this.logDir === null) return;
    mkdirSync(this.logDir, { recursive: true });
    this.logFiles += 1;
    const file = createWriteStream(
      join(this.logDir, `service-${i}-${this.logFiles}-${attempt}.log`),
    );
    file.write(p.output()); // what it said before it was ready
    p.child.stdout?.on("data", (chunk: Buffer) => file.write(chunk));
    p.child.stderr?.on("data", (chunk: Buffer) => file.write(chunk));
    p.child.once("close", () => file.end()); // after its last output, unlike "exit"
  }

  /** Every service log file kept so far (FAULT_SERVICE_LOGS=1), else none. */
  serviceLogs(): string[] {
    if (this.logDir === null || !existsSync(this.logDir)) return [];
    return readdirSync(this.logDir).map((f) => join(this.logDir as string, f));
  }

  /** `billing setup --new-deployment`: binds this environment's fresh streams to a shared ledger. */
  addDeployment(): void {
    this.setup(["--new-deployment"]);
  }

  /** Runs `billing setup` with this environment's configuration; fails the test if it does not exit 0. */
  setup(args: string[]): void {
    const r = spawnSync(process.execPath, [BIN, "setup", ...args], {
      env: {
        ...process.env,
        NATS_URL: this.broker.url,
        LEDGER_PATH: this.ledgerPath,
        BILLING_CONFIG: this.ws.configPath,
        LOG_LEVEL: "warn",
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    if (r.status !== 0)
      throw new Error(`billing setup ${args.join(" ")} exited ${String(r.status)}: ${r.stderr}`);
  }

  /** SIGKILLs process i (only the pid we spawned) and waits for it to be gone. */
  async killService(i: number): Promise<void> {
    const p = this.procs[i];
    this.procs[i] = null;
    if (p) await p.kill("SIGKILL");
  }

  async ensureServices(): Promise<void> {
    await Promise.all(
      this.procs.map((p, i) =>
        p === null || p.child.exitCode !== null || p.child.signalCode !== null
          ? this.restartService(i)
          : Promise.resolve(),
      ),
    );
  }

  /** Publishes until JetStream has stored the message (same msgId on every attempt). */
  async publish(subject: string, data: Uint8Array, msgId: string | undefined): Promise<Sent> {
    const deadline = Date.now() + PUBLISH_PERSIST_MS;
    for (;;) {
      try {
        return await this.client.publishRaw(subject, data, msgId, PUBLISH_ATTEMPT_MS);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(PUBLISH_PAUSE_MS);
      }
    }
  }

  /**
   * Waits until the operation's event is in the events stream, read from the stream itself (the
   * client's waitForEvent needs a service to answer its one operation query).
   */
  async eventStored(operationId: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.jsm.streams
        .getMessage("BILLING_EVENTS", { last_by_subj: `billing.evt.*.${operationId}` })
        .catch(() => null);
      if (found) return;
      if (Date.now() > deadline)
        throw new Error(`no event for ${operationId} within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client.close().catch(() => undefined);
    for (let i = 0; i < this.procs.length; i += 1) await this.killService(i);
    await this.broker.stop();
    if (this.logDir === null) this.ws.cleanup();
    else console.log(`service logs kept in ${this.logDir}`);
  }
}

/** Kills running processes at random gaps, restarting each in the background; at most SERVICES − 1 down. */
export async function killAtRandom(
  env: FaultEnv,
  kills: number,
  seed: number,
  gapMs: [number, number],
): Promise<void> {
  const random = rng(seed);
  const restarts: Array<Promise<unknown>> = [];
  for (let k = 0; k < kills; k += 1) {
    await sleep(gapMs[0] + random() * (gapMs[1] - gapMs[0]));
    const up = env.procs.map((p, i) => (p ? i : -1)).filter((i) => i >= 0);
    if (up.length <= 1) await Promise.all(restarts);
    const i = up[Math.floor(random() * up.length)] ?? 0;
    await env.killService(i);
    env.faults += 1;
    const restart = sleep(random() * 800).then(() => env.restartService(i));
    restart.catch(() => undefined); // awaited below; this only marks the rejection as handled
    restarts.push(restart);
  }
  await Promise.all(restarts);
}

/** The end of a process's output, for a note: its last fatal/error line, or its last line. */
function lastLines(out: string): string {
  const lines = out.trim().split("\n");
  return (lines.filter((l) => /"level":(50|60)|Error/.test(l)).at(-1) ?? lines.at(-1) ?? "").slice(
    0,
    400,
  );
}

type Json = Record<string, unknown>;

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      b && typeof b === "object" && v && typeof v === "object" && !Array.isArray(v)
        ? merge(b as Json, v as Json)
        : v;
  }
  return out;
}
