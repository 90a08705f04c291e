// Proves the operations HTTP endpoint on its own, against a real nats-server where NATS matters:
// port 0 disables it; /healthz, 404 and 405; a configured port already in use is logged and
// replaced by an ephemeral one; /metrics renders the worker's counters, batch sizes and ledger
// latencies in the Prometheus text format; a consumer info that hangs costs a scrape its bound
// only and shows as billing_consumer_info_up 0 (the backlog gauges NaN); /readyz is 503, saying why, when the ledger does
// not answer its probe. The end-to-end behaviours with a real service are in service.test.ts.
import net from "node:net";
import { Registry } from "prom-client";
import { afterAll, beforeAll, expect, test } from "vitest";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import { MeteredLedger } from "../../src/telemetry/metered-ledger.ts";
import { readinessOf } from "../../src/telemetry/readiness.ts";
import {
  startTelemetryServer,
  type TelemetryServer,
  type TelemetryServerDeps,
} from "../../src/telemetry/server.ts";
import type { ConsumerSample } from "../../src/telemetry/worker-metrics.ts";
import { WorkerStats } from "../../src/worker/stats.ts";
import { freePort, startNats, type NatsServer } from "../support/nats-server.ts";
import { capturingLogger, emptyLedger, get, sample, stalledLedger } from "./fixture.ts";

let nats: NatsServer;
let broker: Broker;
const open: TelemetryServer[] = [];

beforeAll(async () => {
  nats = await startNats();
  broker = await connectBroker({
    servers: [nats.url],
    name: "ops-test",
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
});

afterAll(async () => {
  for (const s of open) await s.close();
  await broker?.close();
  await nats?.stop();
});

const idle: ConsumerSample = { num_pending: 7, num_ack_pending: 3, num_redelivered: 1 };

async function start(overrides: Partial<TelemetryServerDeps> = {}): Promise<TelemetryServer> {
  const registry = new Registry();
  const ledger = new MeteredLedger(emptyLedger(), registry);
  const server = await startTelemetryServer({
    host: "127.0.0.1",
    port: await freePort(),
    stats: new WorkerStats(),
    registry,
    ready: readinessOf(broker.nc, ledger),
    consumerInfo: () => Promise.resolve(idle),
    log: capturingLogger().log,
    ...overrides,
  });
  if (server === null) throw new Error("expected a server");
  open.push(server);
  return server;
}

test("ops – port 0 disables the endpoint: no server, no port bound", async () => {
  const registry = new Registry();
  const server = await startTelemetryServer({
    host: "127.0.0.1",
    port: 0,
    stats: new WorkerStats(),
    registry,
    ready: readinessOf(broker.nc, new MeteredLedger(emptyLedger(), registry)),
    consumerInfo: () => Promise.resolve(idle),
    log: capturingLogger().log,
  });
  expect(server).toBeNull();
  expect(registry.getSingleMetric("billing_commands_settled_total")).toBeUndefined();
});

test("ops – /healthz answers 200; an unknown path is 404 and a POST 405", async () => {
  const server = await start();
  const health = await get(`${server.url}/healthz`);
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toMatchObject({ alive: true });
  expect((await get(`${server.url}/nope`)).status).toBe(404);
  expect((await get(`${server.url}/metrics`, "POST")).status).toBe(405);
  expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
});

test("ops – a configured port in use is logged as a warning and an ephemeral port is bound instead", async () => {
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
  const taken = (squatter.address() as net.AddressInfo).port;
  try {
    const { log, lines } = capturingLogger();
    const server = await start({ port: taken, log });
    expect(server.port).not.toBe(taken);
    expect(server.port).toBeGreaterThan(0);
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
    const warning = lines().find(
      (l) => l["level"] === 40 && String(l["msg"]).includes("port in use"),
    );
    expect(warning).toMatchObject({ configuredPort: taken, port: server.port });
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});

test("ops – a host that cannot be bound is an error, not a silent fallback", async () => {
  await expect(start({ host: "192.0.2.1" })).rejects.toThrow(/EADDRNOTAVAIL/);
});

test("ops – /metrics renders the worker's counters, batch sizes, consumer backlog and ledger latency", async () => {
  const stats = new WorkerStats();
  const registry = new Registry();
  const ledger = new MeteredLedger(emptyLedger(), registry);
  const server = await start({ stats, registry, ready: readinessOf(broker.nc, ledger) });
  stats.outcomes
    .set("credit:applied", 3)
    .set("debit:rejected", 1)
    .set("malformed:dead_malformed", 2)
    .set("capture:dead_conflict", 1)
    .set("capture:nak", 4);
  stats.batches = 2;
  stats.batchSizes.push(5);
  stats.batchSizes.push(600);
  stats.eventsPublished = 4;
  stats.naks = 10;
  await ledger.lookupTransfers([1n]);
  const first = await get(`${server.url}/metrics`);
  expect(first.status).toBe(200);
  expect(first.type).toContain("text/plain; version=0.0.4");
  const m = first.body;
  expect(sample(m, "billing_commands_settled_total", { type: "credit", outcome: "applied" })).toBe(
    3,
  );
  expect(sample(m, "billing_commands_settled_total", { type: "capture", outcome: "nak" })).toBe(4);
  expect(sample(m, "billing_dead_letters_total", { reason: "malformed" })).toBe(2);
  expect(sample(m, "billing_dead_letters_total", { reason: "conflict" })).toBe(1);
  expect(sample(m, "billing_events_published_total")).toBe(4);
  expect(sample(m, "billing_batch_failure_naks_total")).toBe(10);
  expect(sample(m, "billing_batch_size_messages_count")).toBe(2);
  expect(sample(m, "billing_batch_size_messages_sum")).toBe(605);
  expect(sample(m, "billing_batch_size_messages_bucket", { le: "8" })).toBe(1);
  expect(sample(m, "billing_consumer_pending_messages")).toBe(7);
  expect(sample(m, "billing_consumer_ack_pending_messages")).toBe(3);
  expect(sample(m, "billing_consumer_redelivered_messages")).toBe(1);
  expect(sample(m, "billing_consumer_info_up")).toBe(1);
  expect(
    sample(m, "billing_ledger_request_duration_seconds_count", {
      operation: "lookupTransfers",
      result: "ok",
    }),
  ).toBe(1);

  // Counters follow the worker's numbers across scrapes; batches are observed once each.
  stats.outcomes.set("credit:applied", 5);
  stats.batches = 3;
  stats.batchSizes.push(1);
  const second = (await get(`${server.url}/metrics`)).body;
  expect(
    sample(second, "billing_commands_settled_total", { type: "credit", outcome: "applied" }),
  ).toBe(5);
  expect(sample(second, "billing_batch_size_messages_count")).toBe(3);
  expect(sample(second, "billing_batch_sizes_unsampled_total")).toBe(0);
});

test("ops – a consumer info that hangs costs a scrape its bound only: the gauges are NaN and billing_consumer_info_up is 0", async () => {
  const { log, lines } = capturingLogger();
  const server = await start({
    consumerInfo: () => new Promise<ConsumerSample>(() => undefined),
    log,
  });
  const started = Date.now();
  const res = await get(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  expect(Date.now() - started).toBeLessThan(4_000);
  expect(sample(res.body, "billing_consumer_info_up")).toBe(0);
  expect(sample(res.body, "billing_consumer_pending_messages")).toBeNaN();
  expect(sample(res.body, "process_cpu_user_seconds_total")).toBeUndefined(); // process metrics come from createMetricsRegistry
  expect(lines().some((l) => String(l["msg"]).includes("consumer info unavailable"))).toBe(true);
});

test("ops – /readyz is 503 with a JSON body naming the ledger when it does not answer its probe within the bound", async () => {
  const registry = new Registry();
  const stalled = stalledLedger();
  const ledger = new MeteredLedger(stalled, registry);
  const server = await start({
    registry,
    ready: readinessOf(broker.nc, ledger, {
      natsRttTimeoutMs: 1_000,
      ledgerFreshMs: 10_000,
      ledgerProbeTimeoutMs: 200,
    }),
  });
  const [a, b] = await Promise.all([get(`${server.url}/readyz`), get(`${server.url}/readyz`)]);
  for (const res of [a, b]) {
    expect(res.status).toBe(503);
    const body = JSON.parse(res.body) as {
      ready: boolean;
      checks: Record<string, { ok: boolean; detail: string }>;
    };
    expect(body.ready).toBe(false);
    expect(body.checks["nats"]?.ok).toBe(true);
    expect(body.checks["ledger"]).toEqual({
      ok: false,
      detail:
        "the ledger does not answer: DeadlineError: the ledger probe did not finish within 200 ms",
    });
  }
  // Concurrent checks share one probe rather than piling requests onto a hung ledger.
  expect(stalled.calls).toBe(1);
});

test("ops – /readyz is 200 when NATS answers and the ledger answered a probe", async () => {
  const server = await start();
  const res = await get(`${server.url}/readyz`);
  expect(res.status).toBe(200);
  const body = JSON.parse(res.body) as {
    ready: boolean;
    checks: Record<string, { ok: boolean; detail: string }>;
  };
  expect(body).toMatchObject({ ready: true, checks: { nats: { ok: true }, ledger: { ok: true } } });
  expect(body.checks["ledger"]?.detail).toMatch(/answered a probe/);
  // Within ledgerFreshMs the last answer suffices: no second probe.
  const again = JSON.parse((await get(`${server.url}/readyz`)).body) as {
    checks: Record<string, { detail: string }>;
  };
  expect(again.checks["ledger"]?.detail).toMatch(/answered \d+ ms ago/);
});
