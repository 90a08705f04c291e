// Proves that a decided operation whose event the events stream refuses is retried in hand and seen
// by operators: while BILLING_EVENTS is full (max_msgs reached, discard new: every publish refused
// with 10077), the command stays leased to its worker (delivered once, never naked, so it cannot
// reach max deliveries), /metrics shows one unstored event, its age and the retries, and /readyz
// turns 503 naming the age once it passes the limit; when the stream takes writes again the event is
// stored within the capped backoff, the backlog is 0 and /readyz is 200. How: a real nats-server, a
// real in-process service on a SQLite file, and an ops endpoint on the service's WorkerStats with a
// short readiness limit (the service's own uses telemetryLimits.eventsUnstoredAgeMaxMs).
import { afterAll, beforeAll, expect, test } from "vitest";
import { randomUUID } from "node:crypto";
import { DiscardPolicy } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import { openLedger } from "../../src/ledger/index.ts";
import {
  createMetricsRegistry,
  MeteredLedger,
  readinessOf,
  startTelemetryServer,
  type TelemetryServer,
} from "../../src/telemetry/index.ts";
import { telemetryLimits } from "../../src/config/limits.ts";
import type { RunningService } from "../../src/service.ts";
import { freePort, startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { waitFor, waitIdle } from "../support/streams.ts";
import { capturingLogger, get, sample } from "./fixture.ts";

const READY_AGE_MAX_MS = 2_000;
const RETRY_MAX_MS = 500;

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let service: RunningService;
let client: BillingClient;
let broker: Broker;
let ledger: MeteredLedger;
let ops: TelemetryServer;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace({
    worker: { batchWaitMs: 5, publishRetryMaxMs: RETRY_MAX_MS },
    ops: { host: "127.0.0.1", port: 0 },
  });
  service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
  broker = await connectBroker({
    servers: [nats.url],
    name: "events-backlog-test",
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
  const registry = createMetricsRegistry();
  ledger = new MeteredLedger(
    await openLedger({ driver: "embedded", path: ws.ledgerPath }),
    registry,
  );
  ops = (await startTelemetryServer({
    host: "127.0.0.1",
    port: await freePort(),
    stats: service.stats,
    registry,
    log: capturingLogger().log,
    ready: readinessOf(broker.nc, ledger, telemetryLimits, {
      unstored: service.stats.unstored,
      ageMaxMs: READY_AGE_MAX_MS,
    }),
    consumerInfo: async () => {
      const i = await broker.jsm.consumers.info("BILLING_COMMANDS", "billing-worker");
      return {
        num_pending: i.num_pending,
        num_ack_pending: i.num_ack_pending,
        num_redelivered: i.num_redelivered,
      };
    },
  })) as TelemetryServer;
});

afterAll(async () => {
  await ops?.close();
  ledger?.destroy();
  await broker?.close();
  await client?.close();
  await service?.stop();
  await nats?.stop();
  ws?.cleanup();
});

type Ready = { ready: boolean; checks: Record<string, { ok: boolean; detail: string }> };

test("ops – an event the full events stream refuses is retried in hand, counted on /metrics, fails /readyz by its age, and is stored once the stream takes writes", async () => {
  await client.credit({ userId: "backlog-a", amount: 100 }, { wait: true });
  const held = (await broker.jsm.streams.info("BILLING_EVENTS")).state.messages;
  await broker.jsm.streams.update("BILLING_EVENTS", { max_msgs: held, discard: DiscardPolicy.New });
  const operationId = randomUUID();
  await client.credit({ userId: "backlog-a", amount: 5, operationId });

  const stuck = await waitFor(
    "the readiness check to fail on the unstored event's age",
    async () => {
      const r = await get(`${ops.url}/readyz`);
      return r.status === 503 ? (JSON.parse(r.body) as Ready) : null;
    },
    20_000,
    200,
  );
  expect(stuck.checks["events"]?.ok).toBe(false);
  expect(stuck.checks["events"]?.detail).toMatch(
    /^1 events or dead letters of decided operations not stored, the oldest for \d+ ms \(more than 2000 ms\)/,
  );
  expect(stuck.checks["nats"]?.ok).toBe(true);
  const m = (await get(`${ops.url}/metrics`)).body;
  expect(sample(m, "billing_events_unstored")).toBe(1);
  expect(sample(m, "billing_events_unstored_oldest_age_seconds")).toBeGreaterThan(
    READY_AGE_MAX_MS / 1000,
  );
  expect(sample(m, "billing_event_publish_retries_total")).toBeGreaterThanOrEqual(3);
  // Leased, not handed back: delivered once, no nak, so no delivery is spent while it waits.
  const consumer = await broker.jsm.consumers.info("BILLING_COMMANDS", "billing-worker");
  expect({ ackPending: consumer.num_ack_pending, redelivered: consumer.num_redelivered }).toEqual({
    ackPending: 1,
    redelivered: 0,
  });
  expect(sample(m, "billing_batch_failure_naks_total")).toBe(0);

  const lifted = Date.now();
  await broker.jsm.streams.update("BILLING_EVENTS", { max_msgs: -1, discard: DiscardPolicy.Old });
  const event = await client.waitForEvent(operationId, 10_000);
  expect(event).toMatchObject({ event: "credited", operationId });
  // One retry interval at most after the stream took writes again (plus scheduling slack).
  expect(Date.now() - lifted).toBeLessThan(RETRY_MAX_MS + 2_000);
  await waitIdle(broker.jsm);
  const after = (await get(`${ops.url}/metrics`)).body;
  expect(sample(after, "billing_events_unstored")).toBe(0);
  expect(sample(after, "billing_events_unstored_oldest_age_seconds")).toBe(0);
  const ready = await get(`${ops.url}/readyz`);
  expect(ready.status).toBe(200);
  expect((JSON.parse(ready.body) as Ready).checks["events"]).toEqual({
    ok: true,
    detail: "every decided operation's event is stored",
  });
  expect(await client.balance("backlog-a", "EUR")).toMatchObject({ posted: "105" });
}, 60_000);
