// Proves that a command whose operation the ledger has decided is never dead-lettered when it
// reaches max deliveries (processes died with it again and again): the max-deliveries processor
// finds the decision in the ledger, publishes the command again, and a worker replays the decision
// and stores the one event. A command that is not decided still gets its letter. How: a real
// nats-server and in-process services on one SQLite file. The events stream is capped (max_msgs
// reached, discard new) so the first service decides the credit but cannot store its event; that
// service stops (the batch is left to redelivery) and the test spends the command's remaining
// deliveries with naks, as crashing workers would; then the stream takes writes again and a second
// service (processor and worker) takes over.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { DiscardPolicy } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import { parseOperationId } from "../../src/domain/ids.ts";
import { openLedger } from "../../src/ledger/index.ts";
import type { RunningService } from "../../src/service.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, testConfig, workspace } from "../support/service.ts";
import { storedEvents, storedMessages, waitFor, waitIdle } from "../support/streams.ts";
import { advisoryCount, MAX_DELIVER } from "./fixture.ts";
import {
  advisoryConsumerName,
  redeliveryOfHeader,
} from "../../src/dlq/max-deliveries-processor.ts";

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let client: BillingClient;
let broker: Broker;
const services: RunningService[] = [];

beforeAll(async () => {
  nats = await startNats();
  ws = workspace({
    consumer: { maxDeliver: MAX_DELIVER, ackWaitMs: 30_000 },
    worker: { holdGraceMs: 1_000, holdWaitNakMs: 1_000, nakDelayMs: 200, publishRetryMaxMs: 200 },
    ops: { port: 0 },
  });
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
  broker = await connectBroker({
    servers: [nats.url],
    name: "decided-max-deliveries-test",
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
});

afterAll(async () => {
  for (const s of services) await s.stop().catch(() => undefined);
  await broker?.close();
  await client?.close();
  await nats?.stop();
  ws?.cleanup();
});

async function start(): Promise<RunningService> {
  const s = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
  services.push(s);
  return s;
}

/** Naks every delivery until the server gives up on the command (the advisory is stored). */
async function spendDeliveries(seq: number): Promise<void> {
  const config = testConfig(nats.url, ws.ledgerPath, ws.configPath);
  const before = await advisoryCount(broker.jsm, config);
  const consumer = await broker.js.consumers.get("BILLING_COMMANDS", "billing-worker");
  for (;;) {
    const m = await consumer.next({ expires: 3_000 });
    if (m === null) break;
    expect(m.seq).toBe(seq);
    m.nak();
  }
  await waitFor(
    "the MAX_DELIVERIES advisory",
    async () => (await advisoryCount(broker.jsm, config)) > before,
    10_000,
  );
}

async function decidedInLedger(operationId: string): Promise<boolean> {
  const ledger = await openLedger({ driver: "embedded", path: ws.ledgerPath });
  try {
    return (await ledger.lookupTransfers([parseOperationId(operationId) as bigint])).length === 1;
  } finally {
    ledger.destroy();
  }
}

describe("dlq processor – decided operations at max deliveries", () => {
  it("a decided credit that reaches max deliveries gets its one event and no dead letter; an undecided command is still dead-lettered", async () => {
    const first = await start();
    await client.credit({ userId: "decided-a", amount: 100 }, { wait: true });
    const held = (await broker.jsm.streams.info("BILLING_EVENTS")).state.messages;
    await broker.jsm.streams.update("BILLING_EVENTS", {
      max_msgs: held,
      discard: DiscardPolicy.New,
    });
    const operationId = randomUUID();
    const sent = await client.credit({ userId: "decided-a", amount: 7, operationId });
    await waitFor(
      "the credit decided in the ledger",
      () => decidedInLedger(operationId),
      10_000,
      100,
    );
    const stopping = Date.now();
    await first.stop();
    expect(Date.now() - stopping).toBeLessThan(5_000); // a stuck batch stops retrying at once
    services.splice(services.indexOf(first), 1);
    await spendDeliveries(sent.streamSequence);

    await broker.jsm.streams.update("BILLING_EVENTS", { max_msgs: -1, discard: DiscardPolicy.Old });
    await start();
    const event = await client.waitForEvent(operationId, 20_000);
    expect(event).toMatchObject({ event: "credited", operationId, amount: "7" });
    await waitIdle(
      broker.jsm,
      "BILLING_ADVISORIES",
      advisoryConsumerName(testConfig(nats.url, ws.ledgerPath, ws.configPath)),
      20_000,
    );
    await waitIdle(broker.jsm);
    const letters = (await storedMessages(broker.jsm, "BILLING_DLQ")).filter(
      (m) => m.subject === "billing.dlq.max_deliveries",
    );
    expect(letters.map((m) => m.header.get("Billing-Original-Sequence"))).toEqual([]);
    const events = (await storedEvents(broker.jsm)).filter(
      (e) => e.payload["operationId"] === operationId,
    );
    expect(events).toHaveLength(1);
    expect(await client.balance("decided-a", "EUR")).toMatchObject({ posted: "107" });
    const copies = (await storedMessages(broker.jsm, "BILLING_COMMANDS")).filter(
      (m) => m.header.get(redeliveryOfHeader) === String(sent.streamSequence),
    );
    expect(copies).toHaveLength(1); // the processor's copy, which the worker replayed

    // The negative space: with no worker running, a command the ledger never saw reaches max
    // deliveries and is dead-lettered as before.
    await Promise.all(services.splice(0).map((s) => s.stop()));
    const undecided = await client.credit({ userId: "decided-b", amount: 3 });
    await spendDeliveries(undecided.streamSequence);
    await start();
    const letter = await waitFor(
      "the undecided command's letter",
      async () =>
        (await storedMessages(broker.jsm, "BILLING_DLQ")).find(
          (m) =>
            m.subject === "billing.dlq.max_deliveries" &&
            m.header.get("Billing-Original-Sequence") === String(undecided.streamSequence),
        ),
      20_000,
      200,
    );
    expect(letter).toBeDefined();
    expect(await decidedInLedger(undecided.operationId)).toBe(false);
  }, 120_000);
});
