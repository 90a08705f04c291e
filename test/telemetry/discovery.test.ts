// Proves the service description on the NATS discovery subjects against a real nats-server: every
// running process answers $SRV.PING (and $SRV.PING.billing) in the micro protocol's ping shape with
// its own id; $SRV.INFO.billing.<id> reaches exactly one process and carries the query endpoints
// and the metadata; $SRV.STATS counts the queries served through the QueryMeter (errors too); and
// after stop() the process no longer answers.
import { readFileSync } from "node:fs";
import { testSpace } from "../support/space.ts";
import { Empty, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, expect, test } from "vitest";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import {
  announceService,
  packageInfo,
  type Announcement,
  type ServiceDescription,
} from "../../src/telemetry/discovery.ts";
import { QueryMeter } from "../../src/telemetry/query-meter.ts";
import { QUERY_HANDLERS, serveQueries } from "../../src/query/server.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { capturingLogger, emptyLedger, sample } from "./fixture.ts";

let nats: NatsServer;
let broker: Broker;

beforeAll(async () => {
  nats = await startNats();
  broker = await connectBroker({
    servers: [nats.url],
    name: "discovery-test",
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
});

afterAll(async () => {
  await broker?.close();
  await nats?.stop();
});

const decoder = new TextDecoder();

function description(metricsUrl: string): ServiceDescription {
  return {
    name: "billing",
    version: packageInfo().version,
    description: "test",
    metadata: {
      metrics_url: metricsUrl,
      ledger_driver: "embedded",
      query_subjects: "billing.query.balance,billing.query.operation",
    },
    endpoints: [
      { name: "balance", subject: "billing.query.balance", queue_group: "billing-query" },
      { name: "operation", subject: "billing.query.operation", queue_group: "billing-query" },
    ],
  };
}

async function all(nc: NatsConnection, subject: string): Promise<Array<Record<string, unknown>>> {
  const replies: Array<Record<string, unknown>> = [];
  for await (const m of await nc.requestMany(subject, Empty, { strategy: "timer", maxWait: 500 }))
    replies.push(JSON.parse(decoder.decode(m.data)) as Record<string, unknown>);
  return replies;
}

test("ops – the version comes from package.json", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  expect(packageInfo().version).toBe(pkg.version);
});

test("ops – every process answers $SRV.PING with its own id; INFO by id reaches one; stop() ends the answers", async () => {
  const log = capturingLogger().log;
  const meter = new QueryMeter(new Registry());
  const a: Announcement = await announceService(
    broker.nc,
    description("http://127.0.0.1:1/metrics"),
    (s) => meter.endpointStats(s),
    log,
  );
  const b: Announcement = await announceService(
    broker.nc,
    description("http://127.0.0.1:2/metrics"),
    (s) => meter.endpointStats(s),
    log,
  );
  try {
    for (const subject of ["$SRV.PING", "$SRV.PING.billing"]) {
      const pings = await all(broker.nc, subject);
      expect(pings.map((p) => p["id"]).sort()).toEqual([a.id, b.id].sort());
      for (const p of pings)
        expect(p).toMatchObject({
          type: "io.nats.micro.v1.ping_response",
          name: "billing",
          version: packageInfo().version,
        });
    }
    const infos = await all(broker.nc, `$SRV.INFO.billing.${b.id}`);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({
      type: "io.nats.micro.v1.info_response",
      name: "billing",
      id: b.id,
      description: "test",
      metadata: {
        metrics_url: "http://127.0.0.1:2/metrics",
        ledger_driver: "embedded",
        query_subjects: "billing.query.balance,billing.query.operation",
      },
      endpoints: [
        {
          name: "balance",
          subject: "billing.query.balance",
          queue_group: "billing-query",
          metadata: null,
        },
        {
          name: "operation",
          subject: "billing.query.operation",
          queue_group: "billing-query",
          metadata: null,
        },
      ],
    });
    await a.stop();
    expect((await all(broker.nc, "$SRV.PING")).map((p) => p["id"])).toEqual([b.id]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test("ops – $SRV.STATS counts the queries served through the meter, errors included, and Prometheus sees the same", async () => {
  const registry = new Registry();
  const meter = new QueryMeter(registry);
  const log = capturingLogger().log;
  const chart = {
    currencies: [{ code: "EUR", ledger: 978, scale: 2 }],
    defaultCurrency: "EUR",
    markerLedger: 1_000_000,
    space: testSpace,
  };
  const subs = serveQueries(
    {
      nc: broker.nc,
      jsm: broker.jsm,
      ledger: emptyLedger(),
      chart,
      names: new NameBook(testSpace, 1024),
      eventsStream: "BILLING_EVENTS",
      queue: "billing-query",
      log,
    },
    meter.wrap(QUERY_HANDLERS),
  );
  const srv = await announceService(
    broker.nc,
    description("http://127.0.0.1:1/metrics"),
    (s) => meter.endpointStats(s),
    log,
  );
  try {
    const ask = async (body: unknown) =>
      JSON.parse(
        decoder.decode(
          (
            await broker.nc.request("billing.query.balance", JSON.stringify(body), {
              timeout: 2_000,
            })
          ).data,
        ),
      ) as Record<string, unknown>;
    expect(await ask({ userId: "u-1" })).toMatchObject({ userId: "u-1", available: "0" });
    expect(await ask({ userId: "u-2" })).toMatchObject({ available: "0" });
    expect(await ask({ userId: "u-3", extra: 1 })).toMatchObject({
      error: { code: "invalid_request" },
    });
    const [stats] = await all(broker.nc, `$SRV.STATS.billing.${srv.id}`);
    expect(stats).toMatchObject({
      type: "io.nats.micro.v1.stats_response",
      name: "billing",
      id: srv.id,
    });
    expect(Date.parse(String(stats?.["started"]))).toBeGreaterThan(0);
    const endpoints = stats?.["endpoints"] as Array<Record<string, unknown>>;
    const balance = endpoints.find((e) => e["name"] === "balance");
    expect(balance).toMatchObject({
      subject: "billing.query.balance",
      num_requests: 3,
      num_errors: 1,
    });
    expect(String(balance?.["last_error"])).toMatch(/^invalid_request: unknown field extra/);
    expect(Number(balance?.["processing_time"])).toBeGreaterThan(0);
    expect(endpoints.find((e) => e["name"] === "operation")).toMatchObject({
      num_requests: 0,
      num_errors: 0,
      last_error: "",
    });
    const text = await registry.metrics();
    expect(
      sample(text, "billing_query_duration_seconds_count", { query: "balance", result: "ok" }),
    ).toBe(2);
    expect(
      sample(text, "billing_query_duration_seconds_count", { query: "balance", result: "invalid" }),
    ).toBe(1);
  } finally {
    await srv.stop();
    for (const s of subs) s.unsubscribe();
  }
});
