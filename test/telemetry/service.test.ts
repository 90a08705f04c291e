// Proves the operations endpoints end to end against a real nats-server and a real in-process
// service on a SQLite ledger file: /metrics counts what the service settled (by type and outcome),
// its dead letters, events, batches and ledger requests per batch, with the consumer's backlog and the process metrics; the
// service description on $SRV names the ops URL actually bound, also when a second process on the
// same machine finds the configured port taken; /readyz turns 503 when nats-server is killed and
// 200 again once it is back. Beside the service's own endpoint, the test starts one on a port it
// chooses, with the service's WorkerStats, its own NATS connection and a metered ledger on the same file.
import { afterAll, beforeAll, expect, test } from "vitest";
import { Empty } from "@nats-io/transport-node";
import { BillingClient } from "@billing-ledger/client";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import type { Config } from "../../src/config/schema.ts";
import { openLedger } from "../../src/ledger/index.ts";
import {
  createMetricsRegistry,
  MeteredLedger,
  QueryMeter,
  startTelemetry,
  type Telemetry,
} from "../../src/telemetry/index.ts";
import { QUERY_HANDLERS } from "../../src/query/server.ts";
import type { RunningService } from "../../src/service.ts";
import { freePort, startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, testConfig, workspace } from "../support/service.ts";
import { waitFor, waitIdle } from "../support/streams.ts";
import { capturingLogger, get, sample } from "./fixture.ts";

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let service: RunningService;
let client: BillingClient;
let broker: Broker;
let ledger: MeteredLedger;
let config: Config;
let ops: Telemetry;
let opsPort: number;

beforeAll(async () => {
  nats = await startNats();
  opsPort = await freePort();
  // The service's own ops endpoint stays off (port 0), so this test's endpoint owns opsPort.
  ws = workspace({ worker: { batchWaitMs: 5 }, ops: { host: "127.0.0.1", port: 0 } });
  service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
  config = {
    ...testConfig(nats.url, ws.ledgerPath, ws.configPath),
    ops: { host: "127.0.0.1", port: opsPort, portInUse: "ephemeral" },
  };
  broker = await connectBroker({
    servers: [nats.url],
    name: "ops-service-test",
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
  const registry = createMetricsRegistry();
  ledger = new MeteredLedger(
    await openLedger({ driver: "embedded", path: ws.ledgerPath }),
    registry,
  );
  ops = await startTelemetry({
    config,
    nc: broker.nc,
    jsm: broker.jsm,
    ledger,
    stats: service.stats,
    queries: new QueryMeter(registry),
    querySubjects: Object.keys(QUERY_HANDLERS),
    registry,
    log: capturingLogger().log,
  });
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

const wait = { wait: true } as const;

test("ops – /metrics counts the commands a real service settled, by type and outcome, with backlog and process metrics", async () => {
  const url = ops.url as string;
  await client.credit({ userId: "ops-a", amount: 100 }, wait);
  await client.credit({ userId: "ops-a", amount: 50 }, wait);
  await client.debit({ userId: "ops-a", amount: 30 }, wait);
  await client.debit({ userId: "ops-a", amount: 10_000 }, wait);
  await client.publishRaw("billing.cmd.credit", new TextEncoder().encode("not json"), undefined);
  await waitIdle(broker.jsm);
  const m = (await get(`${url}/metrics`)).body;
  expect(sample(m, "billing_commands_settled_total", { type: "credit", outcome: "applied" })).toBe(
    2,
  );
  expect(sample(m, "billing_commands_settled_total", { type: "debit", outcome: "applied" })).toBe(
    1,
  );
  expect(sample(m, "billing_commands_settled_total", { type: "debit", outcome: "rejected" })).toBe(
    1,
  );
  expect(
    sample(m, "billing_commands_settled_total", { type: "malformed", outcome: "dead_malformed" }),
  ).toBe(1);
  expect(sample(m, "billing_dead_letters_total", { reason: "malformed" })).toBe(1);
  expect(sample(m, "billing_events_published_total")).toBe(4);
  const batches = sample(m, "billing_batches_total") ?? 0;
  expect(batches).toBeGreaterThan(0);
  expect(sample(m, "billing_batch_size_messages_count")).toBe(batches);
  expect(sample(m, "billing_batch_size_messages_sum")).toBe(5);
  // Every batch the ledger resolved reports its requests: a lookup and creates, a history read per account.
  expect(sample(m, "billing_ledger_requests_per_batch_count")).toBe(batches);
  expect(sample(m, "billing_ledger_requests_per_batch_sum")).toBeGreaterThanOrEqual(4 * 3);
  expect(sample(m, "billing_ledger_requests_per_batch_sum")).toBeLessThanOrEqual(8 * batches);
  expect(sample(m, "billing_consumer_pending_messages")).toBe(0);
  expect(sample(m, "billing_consumer_ack_pending_messages")).toBe(0);
  expect(sample(m, "billing_consumer_info_up")).toBe(1);
  expect(sample(m, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
  expect(sample(m, "nodejs_eventloop_lag_seconds")).toBeDefined();
});

test("ops – $SRV.PING is answered and INFO names the URL actually bound, also for a second process that found the port taken", async () => {
  const second = await startTelemetry({
    config,
    nc: broker.nc,
    jsm: broker.jsm,
    ledger,
    stats: service.stats,
    queries: new QueryMeter(createMetricsRegistry()),
    querySubjects: Object.keys(QUERY_HANDLERS),
    registry: createMetricsRegistry(),
    log: capturingLogger().log,
  });
  try {
    expect(ops.url).toBe(`http://127.0.0.1:${opsPort}`);
    expect(second.url).not.toBe(ops.url);
    const ping = JSON.parse(
      new TextDecoder().decode(
        (await broker.nc.request(`$SRV.PING.billing.${ops.serviceId}`, Empty, { timeout: 2_000 }))
          .data,
      ),
    ) as Record<string, unknown>;
    expect(ping).toMatchObject({
      type: "io.nats.micro.v1.ping_response",
      name: "billing",
      id: ops.serviceId,
    });
    for (const o of [ops, second]) {
      const info = JSON.parse(
        new TextDecoder().decode(
          (await broker.nc.request(`$SRV.INFO.billing.${o.serviceId}`, Empty, { timeout: 2_000 }))
            .data,
        ),
      ) as { metadata: Record<string, string>; endpoints: Array<{ subject: string }> };
      expect(info.metadata).toMatchObject({
        metrics_url: `${o.url}/metrics`,
        ready_url: `${o.url}/readyz`,
        ledger_driver: "embedded",
        query_subjects: Object.keys(QUERY_HANDLERS).join(","),
      });
      expect(info.endpoints.map((e) => e.subject)).toEqual(Object.keys(QUERY_HANDLERS));
      expect((await get(info.metadata["metrics_url"] as string)).status).toBe(200);
    }
  } finally {
    await second.close();
  }
});

test("ops – /readyz turns 503 naming NATS when nats-server is killed, and 200 again after it restarts", async () => {
  const url = `${ops.url as string}/readyz`;
  expect((await get(url)).status).toBe(200);
  await nats.kill("SIGKILL");
  const down = await waitFor(
    "readyz 503",
    async () => {
      const r = await get(url);
      return r.status === 503 ? r : null;
    },
    10_000,
  );
  const body = JSON.parse(down.body) as {
    ready: boolean;
    checks: Record<string, { ok: boolean; detail: string }>;
  };
  expect(body.ready).toBe(false);
  expect(body.checks["nats"]?.ok).toBe(false);
  expect(body.checks["nats"]?.detail).toMatch(/^NATS does not answer/);
  expect(body.checks["ledger"]?.ok).toBe(true);
  // A scrape during the outage still answers, within the consumer-info bound.
  const scrape = await get(`${ops.url as string}/metrics`);
  expect(scrape.status).toBe(200);
  expect(sample(scrape.body, "billing_consumer_info_up")).toBe(0);
  await nats.restart();
  await waitFor("readyz 200", async () => (await get(url)).status === 200, 20_000, 100);
  // The service itself is back too: a command after the restart is applied.
  // Generous: on a loaded 2-core box the restarted server and the re-pull take seconds.
  const r = await client.credit({ userId: "ops-b", amount: 1 }, { wait: true, timeoutMs: 60_000 });
  expect(r.event).toMatchObject({ event: "credited" });
}, 120_000);
