// Proves that a ledger that stops answering holds nothing forever, on real `billing start`
// processes and a real nats-server. TigerBeetle addresses that never answer (a TCP server that
// accepts and stays silent; a port that refuses connections): start-up gives up after
// ledger.startupWaitMs with exit code 3 (unavailable) naming the addresses; and the worker loop (in process: a
// service cannot start without its system accounts, and this machine has no TigerBeetle) naks a
// command's batch after ledger.requestTimeoutMs, again at every redelivery, and stops within
// drainTimeoutMs. The embedded file locked by another
// process (an open exclusive write transaction): every batch is naked with LedgerBusyError within
// ledger.requestTimeoutMs, SIGTERM exits 0 within worker.drainTimeoutMs with the unfinished
// messages left to redelivery, and once the lock is gone the next process applies every command
// exactly once.
import { spawn, type ChildProcess } from "node:child_process";
import { testSpace } from "../support/space.ts";
import { describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { ensureTopology } from "../../src/broker/topology.ts";
import { createLogger } from "../../src/lib/log.ts";
import { chartOf, connect, openServiceLedger, topologyOf } from "../../src/service.ts";
import { AccountRegistry } from "../../src/ledger-facts/account-registry.ts";
import { Batcher } from "../../src/worker/batcher.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { runWorker } from "../../src/worker/loop.ts";
import { WorkerStats } from "../../src/worker/stats.ts";
import { startNats } from "../support/nats-server.ts";
import { spawnService, testConfig, workspace } from "../support/service.ts";
import { storedEvents, waitFor } from "../support/streams.ts";
import { inParallel, mixedWorkload } from "../support/workload.ts";
import { refusingPort, silentServer } from "../support/silent-ledger.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
const REPO = new URL("../..", import.meta.url).pathname;

/** A process holding an exclusive write transaction on the ledger file until it is killed. */
async function lockLedger(file: string): Promise<ChildProcess> {
  const script = `const D = require("better-sqlite3"); const db = new D(process.env.LOCK_FILE); db.pragma("busy_timeout = 10000"); db.exec("BEGIN EXCLUSIVE"); console.log("locked"); setInterval(() => undefined, 1000);`;
  const child = spawn(process.execPath, ["-e", script], {
    cwd: REPO,
    env: { ...process.env, LOCK_FILE: file },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => chunk.toString().includes("locked") && resolve());
    child.once("exit", (code) => reject(new Error(`locker exited with ${code}`)));
  });
  return child;
}

function run(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, "start"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

describe("service – a ledger that stops answering", () => {
  for (const kind of ["accepts and stays silent", "refuses connections"] as const) {
    it(`TigerBeetle addresses that ${kind}: start-up gives up after ledger.startupWaitMs, exit 3 (unavailable) naming the addresses`, async () => {
      const nats = await startNats();
      const silent = await silentServer();
      const ws = workspace({ ledger: { requestTimeoutMs: 300, startupWaitMs: 1_500 } });
      try {
        const port = kind === "refuses connections" ? await refusingPort() : silent.port;
        const r = await run({
          NATS_URL: nats.url,
          LEDGER_DRIVER: "tigerbeetle",
          TB_ADDRESSES: String(port),
          BILLING_CONFIG: ws.configPath,
          LOG_LEVEL: "info",
        });
        expect(r.code).toBe(3);
        // One line of ours (the native client also logs its refused connections to stderr).
        const ours = r.stderr.split("\n").filter((l) => l.startsWith("billing start:"));
        expect(ours).toHaveLength(1);
        expect(ours[0]).toContain(`TigerBeetle cluster 0 at ${port}`);
        expect(ours[0]).toContain("ledger.startupWaitMs");
        expect(r.stdout).toContain("start-up: deployment and system accounts failed; trying again");
        expect(r.stdout).toContain("LedgerTimeoutError");
        // Node's start-up (tsx) plus the bound; without one the process would never end.
        expect(r.ms).toBeLessThan(15_000);
      } finally {
        await silent.close();
        await nats.stop();
        ws.cleanup();
      }
    }, 60_000);
  }

  it("TigerBeetle addresses that never answer: the worker naks a command's batch after requestTimeoutMs at every delivery; a stop naks the batch in hand after drainTimeoutMs", async () => {
    const nats = await startNats();
    const silent = await silentServer();
    const requestTimeoutMs = 1_000;
    // Shorter than a request's deadline, so the stop below meets a batch still waiting for the ledger.
    const drainTimeoutMs = 300;
    const ws = workspace({
      ledger: { requestTimeoutMs },
      worker: { drainTimeoutMs, nakDelayMs: 100 },
    });
    const config = testConfig(nats.url, ws.ledgerPath, ws.configPath);
    config.ledger.driver = "tigerbeetle";
    config.ledger.tigerbeetle.addresses = [String(silent.port)];
    const broker = await connect(config, "stall-test");
    const ledger = await openServiceLedger(config);
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 10_000 });
    try {
      await ensureTopology(broker.jsm, topologyOf(config));
      const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
      const messages = await consumer.consume({ max_messages: 10, expires: 5_000 });
      const stats = new WorkerStats();
      const w = config.worker;
      const deps = {
        ledger,
        js: broker.js,
        jsm: broker.jsm,
        dlqStream: config.streams.dlq,
        chart: chartOf(config, testSpace),
        log: createLogger("silent"),
        registry: new AccountRegistry(ledger, 1024),
        names: new NameBook(testSpace, 1024),
        stats,
        limits: { ...w, ackWaitMs: config.consumer.ackWaitMs },
      };
      let stop = (): void => undefined;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const started = Date.now();
      const running = runWorker(
        deps,
        new Batcher(messages[Symbol.asyncIterator](), w.batchMessagesMax),
        stopped,
      );
      await client.send("credit", { userId: "stalled", amount: "100" }, { wait: false });
      // Naked after the deadline, redelivered, naked again: never held for ever.
      await waitFor("two naks", async () => stats.naks >= 2, 20_000, 20);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2 * requestTimeoutMs);
      const info = await broker.jsm.consumers.info(config.streams.commands, config.consumer.name);
      expect(info.num_ack_pending + info.num_pending + info.num_redelivered).toBeGreaterThanOrEqual(
        1,
      );
      expect(info.delivered.consumer_seq).toBeGreaterThanOrEqual(2);
      await waitFor("a third delivery in hand", async () => stats.batches >= 3, 20_000, 5);
      const naks = stats.naks;
      const stopping = Date.now();
      stop();
      await running;
      // The drain gave up on the batch waiting for the ledger and naked it.
      expect(Date.now() - stopping).toBeLessThan(drainTimeoutMs + 200);
      expect(stats.naks).toBe(naks + 1);
      await messages.close();
    } finally {
      ledger.destroy();
      await client.close();
      await broker.close();
      await silent.close();
      await nats.stop();
      ws.cleanup();
    }
  }, 60_000);

  it("the embedded file locked by another process: batches naked with LedgerBusyError, SIGTERM inside drainTimeoutMs, every command applied once after", async () => {
    const nats = await startNats();
    const drainTimeoutMs = 3_000;
    const ws = workspace({
      ledger: { requestTimeoutMs: 1_000 },
      worker: { drainTimeoutMs, nakDelayMs: 200, holdGraceMs: 10_000, holdWaitNakMs: 200 },
    });
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 30_000 });
    let locker: ChildProcess | null = null;
    try {
      const first = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      locker = await lockLedger(ws.ledgerPath);
      const commands = mixedWorkload(300, 20, 7, "locked");
      const encoder = new TextEncoder();
      await inParallel(
        commands,
        32,
        async (c) =>
          void (await client.publishRaw(
            c.subject,
            encoder.encode(JSON.stringify(c.body)),
            c.operationId,
          )),
      );
      await waitFor(
        "a batch naked for a busy ledger",
        async () =>
          /"type":"LedgerBusyError"[^\n]*ledger unavailable; batch naked/.test(first.output()),
        20_000,
        50,
      );
      await waitFor(
        "a second batch naked (the first ones were not held)",
        async () => (first.output().match(/ledger unavailable; batch naked/g) ?? []).length >= 2,
        20_000,
        50,
      );
      const stopping = Date.now();
      expect(await first.kill("SIGTERM")).toBe(0);
      const stopMs = Date.now() - stopping;
      expect(stopMs).toBeLessThan(drainTimeoutMs);
      locker.kill("SIGKILL");
      const jsm = await jetstreamManager(client.nc);
      const second = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      const events = await waitFor(
        "all events",
        async () => {
          const all = await storedEvents(jsm);
          return all.length >= commands.length ? all : undefined;
        },
        60_000,
        250,
      );
      const ids = events.map((e) => String(e.payload["operationId"]));
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(commands.map((c) => c.operationId)));
      await second.kill("SIGTERM");
    } finally {
      locker?.kill("SIGKILL");
      await client.close();
      await nats.stop();
      ws.cleanup();
    }
  }, 120_000);
});
