// Proves the whole path with the service's own worker loop: a command whose batches keep failing
// is naked by the worker until the server gives up (consumer.maxDeliver), and the processor then
// dead-letters it exactly once as max_deliveries, byte for byte, and counts it in
// billing_max_deliveries_advisories_total, while the worker goes on.
// How: a real nats-server and the real worker loop (src/worker/loop.ts) on the real consumer;
// the ledger is the fault: every call fails, as an unreachable or locked ledger does, so every
// batch is naked ("ledger unavailable"). The processor runs beside the worker as in the service.
import { randomUUID } from "node:crypto";
import { testSpace } from "../support/space.ts";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Broker } from "../../src/broker/connection.ts";
import type { Config } from "../../src/config/schema.ts";
import {
  advisoryConsumerName,
  startAdvisoryProcessor,
} from "../../src/dlq/max-deliveries-processor.ts";
import { advisoryVerdictCounter, createMetricsRegistry } from "../../src/telemetry/index.ts";
import { sample } from "../telemetry/fixture.ts";
import type { Ledger } from "../../src/ledger/port.ts";
import { LedgerTimeoutError } from "../../src/ledger/deadline.ts";
import { AccountRegistry } from "../../src/ledger-facts/account-registry.ts";
import { Batcher } from "../../src/worker/batcher.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { runWorker, type WorkerDeps } from "../../src/worker/loop.ts";
import { WorkerStats } from "../../src/worker/stats.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { storedMessages, waitFor, waitIdle } from "../support/streams.ts";
import { connectWithTopology, dlqConfig, encode, memoryLog } from "./fixture.ts";

let nats: NatsServer;
let config: Config;
let broker: Broker;

beforeAll(async () => {
  nats = await startNats();
  // Quick naks, so that seven deliveries take under a second.
  config = dlqConfig(nats.url, { worker: { nakDelayMs: 50 } });
  broker = await connectWithTopology(config);
});

afterAll(async () => {
  await broker?.close();
  await nats?.stop();
});

// Every ledger call fails the way an unanswered ledger does: past its deadline (transient).
const unreachableLedger = new Proxy(
  {},
  {
    get: (_target, name) => () =>
      Promise.reject(new LedgerTimeoutError(`ledger unreachable (${String(name)})`)),
  },
) as Ledger;

it("dlq – a command the worker keeps naking reaches max deliveries and is dead-lettered once", async () => {
  const workerLog = memoryLog("info");
  const w = config.worker;
  const deps: WorkerDeps = {
    ledger: unreachableLedger,
    js: broker.js,
    jsm: broker.jsm,
    dlqStream: config.streams.dlq,
    log: workerLog.log,
    stats: new WorkerStats(),
    chart: {
      currencies: config.currencies,
      defaultCurrency: config.defaultCurrency,
      markerLedger: config.markerLedger,
      space: testSpace,
    },
    registry: new AccountRegistry(unreachableLedger, 16),
    names: new NameBook(testSpace, 16),
    limits: { ...w, ackWaitMs: config.consumer.ackWaitMs },
  };
  const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
  const messages = await consumer.consume({ max_messages: w.batchMessagesMax, expires: 30_000 });
  let requestStop = (): void => undefined;
  const stopSignal = new Promise<void>((resolve) => (requestStop = resolve));
  const worker = runWorker(
    deps,
    new Batcher(messages[Symbol.asyncIterator](), w.batchMessagesMax),
    stopSignal,
  );
  const processorLog = memoryLog();
  const metrics = createMetricsRegistry();
  const processor = startAdvisoryProcessor({
    js: broker.js,
    jsm: broker.jsm,
    config,
    log: processorLog.log,
    counted: advisoryVerdictCounter(metrics),
  });
  try {
    const operationId = randomUUID();
    const data = encode(JSON.stringify({ operationId, userId: "u-stuck", amount: "10" }));
    const pa = await broker.js.publish("billing.cmd.credit", data, { msgID: operationId });
    const letters = await waitFor("the dead letter", async () => {
      const found = (await storedMessages(broker.jsm, config.streams.dlq)).filter(
        (m) => m.subject === "billing.dlq.max_deliveries",
      );
      return found.length > 0 ? found : null;
    });
    await waitIdle(broker.jsm, config.streams.advisories, advisoryConsumerName(config), 20_000);
    expect(letters).toHaveLength(1);
    expect(letters[0]?.header.get("Billing-Original-Sequence")).toBe(String(pa.seq));
    expect(Buffer.from(letters[0]?.data ?? []).equals(Buffer.from(data))).toBe(true);
    expect(deps.stats.naks).toBe(config.consumer.maxDeliver);
    expect(
      workerLog.lines().filter((l) => l["msg"] === "ledger unavailable; batch naked"),
    ).toHaveLength(config.consumer.maxDeliver);
    expect(
      processorLog
        .lines()
        .filter((l) => l["verdict"] === "dead_lettered")
        .map((l) => l["commandSequence"]),
    ).toEqual([pa.seq]);
    // The metric on-call alerts on (billing_dead_letters_total counts only the worker's letters).
    const text = await metrics.metrics();
    expect(
      sample(text, "billing_max_deliveries_advisories_total", { verdict: "dead_lettered" }),
    ).toBe(1);
    expect(
      sample(text, "billing_max_deliveries_advisories_total", { verdict: "redelivered" }),
    ).toBe(0);
  } finally {
    await processor.stop();
    requestStop();
    await worker;
    await messages.close();
  }
});
