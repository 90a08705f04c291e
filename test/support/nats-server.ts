// Test harness: one throwaway nats-server (JetStream on, 127.0.0.1, a free random port, a fresh
// temp store dir) per call, for every integration test. Never the system server on :4222.
//
// Readiness is read from the server's own log ("Server is ready" is printed after JetStream has
// recovered its store and the client listener is open), then confirmed by a TCP connect. The log
// is used rather than a NATS client so that servers configured with auth (configText) are
// awaited the same way. A bind failure (another process took the port between our probe and the
// server's bind) is retried on a new port; on restart() the port is fixed, so it is retried on
// the same port after a short pause.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NATS_SERVER_BIN = "/usr/sbin/nats-server";
const HOST = "127.0.0.1";
// How long one start may take before we give up; a cold 2.9.10 start is ~50-300 ms here.
const START_TIMEOUT_MS = 10_000;
// How long kill() waits for the process to exit after SIGTERM before it sends SIGKILL.
const TERM_GRACE_MS = 5_000;
// New ports tried when a bind fails at first start.
const BIND_ATTEMPTS_MAX = 8;
// Attempts to rebind the same port on restart(), and the pause between them.
const REBIND_ATTEMPTS_MAX = 20;
const REBIND_PAUSE_MS = 100;
// Server log lines kept for error messages and log().
const LOG_LINES_MAX = 200;

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  // The pid of the running process; changes on restart().
  readonly pid: number;
  // Sends the signal (default SIGTERM) and waits for the process to exit.
  kill(signal?: NodeJS.Signals): Promise<void>;
  // Starts the server again on the same port and store dir (kills it first if it still runs).
  restart(): Promise<void>;
  // Kills the server (SIGKILL) and removes its temp dir. Idempotent.
  stop(): Promise<void>;
  // The last lines the server logged, for diagnosing a failing test.
  log(): string;
}

export interface StartNatsOptions {
  // Extra command-line arguments, appended after ours.
  args?: string[];
  // A nats-server config file's text (accounts, users, permissions, TLS). Our command-line flags
  // (-js, -a, -p, -sd) override the same settings in it.
  configText?: string;
}

interface Running {
  proc: ChildProcess;
  exited: Promise<void>;
  lines: string[];
}

class BindError extends Error {
  override name = "BindError";
}

// Every server this process started and has not stopped, for the exit-time cleanup. Kept on
// globalThis so that a test runner evaluating this module once per test file in one process
// shares one set and registers the process handlers once.
interface Stoppable {
  stopNow(): void;
}
const liveKey: unique symbol = Symbol.for("billing.test.nats-servers");
const registry = globalThis as typeof globalThis & { [liveKey]?: Set<Stoppable> };
const firstLoad = registry[liveKey] === undefined;
const live: Set<Stoppable> = registry[liveKey] ?? new Set<Stoppable>();
registry[liveKey] = live;

class Instance implements NatsServer {
  readonly storeDir: string;
  private readonly rootDir: string;
  private readonly configFile: string | null;
  private readonly extraArgs: readonly string[];
  private current: Running | null = null;
  private stopped = false;
  port = 0;

  // A cluster node's ports are chosen before any node starts (each node's config names the
  // others' route ports): fixedPort > 0 starts on that port or fails with BindError.
  constructor(
    rootDir: string,
    configFile: string | null,
    extraArgs: readonly string[],
    private readonly fixedPort = 0,
  ) {
    this.rootDir = rootDir;
    this.storeDir = join(rootDir, "store");
    this.configFile = configFile;
    this.extraArgs = extraArgs;
  }

  get url(): string {
    return `nats://${HOST}:${this.port}`;
  }

  get pid(): number {
    const pid = this.current?.proc.pid;
    if (pid === undefined) throw new Error("nats-server is not running");
    return pid;
  }

  log(): string {
    return (this.current?.lines ?? []).join("\n");
  }

  async startFresh(): Promise<void> {
    if (this.fixedPort > 0) {
      this.port = this.fixedPort;
      await this.spawnOnce();
      return;
    }
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      try {
        await this.spawnOnce();
        return;
      } catch (err) {
        if (!(err instanceof BindError) || attempt >= BIND_ATTEMPTS_MAX) throw err;
      }
    }
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error("nats-server was stopped; start a new one");
    if (this.isRunning()) await this.kill("SIGTERM");
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnOnce();
        return;
      } catch (err) {
        if (!(err instanceof BindError) || attempt >= REBIND_ATTEMPTS_MAX) throw err;
        await sleep(REBIND_PAUSE_MS);
      }
    }
  }

  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const running = this.current;
    if (running === null || !this.isRunning()) return;
    const pid = running.proc.pid;
    if (pid === undefined) return;
    process.kill(pid, signal); // only the pid we spawned
    if (signal === "SIGKILL") {
      await running.exited;
      return;
    }
    const timer = setTimeout(() => {
      if (this.isRunning()) process.kill(pid, "SIGKILL");
    }, TERM_GRACE_MS);
    await running.exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill("SIGKILL");
    live.delete(this);
    rmSync(this.rootDir, { recursive: true, force: true });
  }

  // Synchronous last-resort cleanup for process exit: no awaiting possible.
  stopNow(): void {
    const pid = this.current?.proc.pid;
    if (pid !== undefined && this.isRunning()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone: nothing to clean up.
      }
    }
    rmSync(this.rootDir, { recursive: true, force: true });
  }

  private isRunning(): boolean {
    const proc = this.current?.proc;
    return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
  }

  private args(): string[] {
    const args = ["-js", "-a", HOST, "-p", String(this.port), "-sd", this.storeDir];
    if (this.configFile !== null) args.unshift("-c", this.configFile);
    return [...args, ...this.extraArgs];
  }

  // Spawns the server once and resolves when it is ready; rejects with BindError when the port
  // was taken, or with an Error carrying the server's log otherwise.
  private async spawnOnce(): Promise<void> {
    const proc = spawn(NATS_SERVER_BIN, this.args(), { stdio: ["ignore", "pipe", "pipe"] });
    const lines: string[] = [];
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    this.current = { proc, exited, lines };
    let ready = false;
    const readyOrExit = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line.trim() === "") continue;
          lines.push(line);
          if (lines.length > LOG_LINES_MAX) lines.shift();
          if (!ready && line.includes("Server is ready")) {
            ready = true;
            resolve();
          }
        }
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", onData);
      proc.once("error", reject);
      void exited.then(() => {
        if (ready) return;
        const log = lines.join("\n");
        if (log.includes("address already in use"))
          reject(new BindError(`port ${this.port} in use`));
        else
          reject(
            new Error(`nats-server exited before it was ready (code ${proc.exitCode}):\n${log}`),
          );
      });
    });
    const timer = setTimeout(() => {
      if (!ready && proc.pid !== undefined) process.kill(proc.pid, "SIGKILL");
    }, START_TIMEOUT_MS);
    try {
      await readyOrExit;
    } finally {
      clearTimeout(timer);
    }
    await waitForPort(this.port);
  }
}

export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer> {
  const rootDir = mkdtempSync(join(tmpdir(), "billing-nats-"));
  let configFile: string | null = null;
  if (opts.configText !== undefined) {
    configFile = join(rootDir, "server.conf");
    writeFileSync(configFile, opts.configText);
  }
  const server = new Instance(rootDir, configFile, opts.args ?? []);
  live.add(server);
  try {
    await server.startFresh();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

export interface NatsClusterNode extends NatsServer {
  // The node's server_name: what a stream's cluster info names as its leader.
  readonly name: string;
}

export interface NatsCluster {
  readonly nodes: readonly NatsClusterNode[];
  // Every node's client URL, for clients that take a list.
  readonly urls: readonly string[];
  // The same, comma-separated, as NATS_URL takes it.
  readonly url: string;
  node(name: string): NatsClusterNode;
  // Kills every node (SIGKILL) and removes the temp dirs. Idempotent.
  stop(): Promise<void>;
}

export interface StartNatsClusterOptions {
  // Nodes in the cluster; 3 unless told (the smallest that keeps a quorum with one node down).
  nodes?: number;
}

const CLUSTER_NAME = "billing-test";
const CLUSTER_NODES_DEFAULT = 3;
// Whole-cluster starts tried when a node's port was taken by another process before it bound.
const CLUSTER_START_ATTEMPTS_MAX = 4;

// The config of one cluster node: its name, and routes to every node (its own route is ignored
// by the server). Ports and the store dir come from the command line like a single server's.
function clusterNodeConfig(name: string, routePort: number, routePorts: readonly number[]): string {
  const routes = routePorts.map((p) => `    nats-route://${HOST}:${p}`).join("\n");
  return [
    `server_name: ${name}`,
    "cluster {",
    `  name: ${CLUSTER_NAME}`,
    `  listen: ${HOST}:${routePort}`,
    "  routes: [",
    routes,
    "  ]",
    "}",
    "",
  ].join("\n");
}

// Three (or `nodes`) nats-servers clustered on loopback, JetStream on each, every node with its
// own client and route port and its own store dir. Resolves once every node logged "Server is
// ready"; JetStream itself answers only after the nodes have elected a meta leader, which the
// caller awaits with its own client (a few seconds on 2.9.10).
export async function startNatsCluster(opts: StartNatsClusterOptions = {}): Promise<NatsCluster> {
  const count = opts.nodes ?? CLUSTER_NODES_DEFAULT;
  if (!Number.isSafeInteger(count) || count < 1)
    throw new Error(`a cluster needs at least one node, got ${count}`);
  for (let attempt = 1; ; attempt++) {
    const rootDir = mkdtempSync(join(tmpdir(), "billing-nats-cluster-"));
    const ports = await distinctFreePorts(count * 2);
    const routePorts = ports.slice(count);
    const nodes = Array.from({ length: count }, (_, i) => {
      const name = `n${i + 1}`;
      const dir = join(rootDir, name);
      mkdirSync(dir);
      const configFile = join(dir, "server.conf");
      writeFileSync(configFile, clusterNodeConfig(name, routePorts[i] as number, routePorts));
      const node = Object.assign(new Instance(dir, configFile, [], ports[i] as number), { name });
      live.add(node);
      return node;
    });
    const cluster = new Cluster(rootDir, nodes);
    try {
      // Together: a node waits for its routes, not for the others' readiness.
      await Promise.all(nodes.map((n) => n.startFresh()));
      return cluster;
    } catch (err) {
      await cluster.stop();
      if (!(err instanceof BindError) || attempt >= CLUSTER_START_ATTEMPTS_MAX) throw err;
    }
  }
}

class Cluster implements NatsCluster {
  private stopped = false;
  constructor(
    private readonly rootDir: string,
    readonly nodes: ReadonlyArray<Instance & { name: string }>,
  ) {}

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  get url(): string {
    return this.urls.join(",");
  }

  node(name: string): NatsClusterNode {
    const found = this.nodes.find((n) => n.name === name);
    if (found === undefined)
      throw new Error(
        `no node ${name} in the cluster (${this.nodes.map((n) => n.name).join(", ")})`,
      );
    return found;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.rootDir, { recursive: true, force: true });
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

// Asks the kernel for a free port. Another process may take it before nats-server binds it;
// startFresh() retries on a new port in that case. Tests use it for other listeners too.
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, HOST, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await sleep(20);
  }
  throw new Error(`nats-server did not accept connections on ${HOST}:${port}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Cleanup when the test process ends without calling stop(): on normal exit, and on the usual
// termination signals. A signal is re-raised only when nobody else handles it, so that the
// process keeps its default behaviour (and a test runner keeps its own).
function stopAllNow(): void {
  for (const server of live) server.stopNow();
  live.clear();
}
if (firstLoad) {
  process.once("exit", stopAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      stopAllNow();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
