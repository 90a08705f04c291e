// The composition root: config → ledger, broker, topology, queries, worker. One service process.
import type { ConsumerMessages } from "@nats-io/jetstream";
import { connectBroker, redactUrl, type Broker } from "./broker/connection.ts";
import { bindDeployment, readDeployment, type DeploymentDeps } from "./deployment.ts";
import type { IdSpace } from "./domain/ids.ts";
import { authOf } from "./config/auth.ts";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ensureTopology } from "./broker/topology.ts";
import { topologyOf } from "./config/topology.ts";
import { systemAccounts, type Chart } from "./domain/accounts.ts";
import { openLedger } from "./ledger/index.ts";
import type { Ledger, LedgerOptions } from "./ledger/port.ts";
import type { Logger } from "./lib/log.ts";
import type { Config } from "./config/schema.ts";
import { QUERY_HANDLERS, serveQueries } from "./query/server.ts";
import { createOpsRegistry, MeteredLedger, QueryMeter, startOperations } from "./ops/index.ts";
import { ExpirySweeper } from "./expiry/sweeper.ts";
import { startAdvisoryProcessor } from "./dlq/processor.ts";
import { AccountRegistry } from "./worker/accounts.ts";
import { Batcher } from "./worker/batcher.ts";
import { NameBook } from "./worker/facts.ts";
import { runWorker, type WorkerDeps } from "./worker/loop.ts";
import { WorkerStats } from "./worker/stats.ts";

/** Lifetime of one pull request; idle heartbeats come every half of it (nats.js default). */
const PULL_EXPIRES_MS = 5_000;

export { topologyOf };

export function chartOf(config: Config, space: IdSpace): Chart {
  return { currencies: config.currencies, defaultCurrency: config.defaultCurrency, markerLedger: config.markerLedger, space };
}

/** How a refusal names this configuration's ledger and streams. */
export function deploymentDepsOf(config: Config, broker: Pick<Broker, "js" | "jsm">, ledger: Ledger): DeploymentDeps {
  const ledgerName = config.ledger.driver === "embedded"
    ? `ledger ${resolve(config.ledger.path)}`
    : `TigerBeetle cluster ${config.ledger.tigerbeetle.clusterId} at ${config.ledger.tigerbeetle.addresses.join(",")}`;
  return {
    js: broker.js, jsm: broker.jsm, ledger, stream: config.streams.deployment, markerLedger: config.markerLedger, shared: config.ledger.shared,
    streamsName: `NATS ${config.nats.servers.map(redactUrl).join(",")} (stream ${config.streams.deployment})`, ledgerName,
  };
}

export function ledgerOptionsOf(config: Config): LedgerOptions {
  if (config.ledger.driver === "embedded") return { driver: "embedded", path: config.ledger.path, thread: config.ledger.thread };
  const tb = config.ledger.tigerbeetle;
  return { driver: "tigerbeetle", clusterId: BigInt(tb.clusterId), addresses: tb.addresses };
}

/**
 * Opens the ledger a service or `billing setup` writes to; the embedded engine's directory is
 * created on first use (a fresh clone has no ./data yet).
 */
export async function openServiceLedger(config: Config): Promise<Ledger> {
  if (config.ledger.driver === "embedded") mkdirSync(dirname(resolve(config.ledger.path)), { recursive: true });
  return openLedger(ledgerOptionsOf(config));
}

export async function connect(config: Config, name: string): Promise<Broker> {
  const auth = authOf(config);
  return connectBroker({
    servers: config.nats.servers, name, connectTimeoutMs: config.nats.connectTimeoutMs, apiTimeoutMs: config.nats.requestTimeoutMs,
    ...(auth ? { auth } : {}),
  });
}

/**
 * Streams, consumer, the deployment binding and system accounts: what `billing setup` does,
 * idempotently. Refuses (DeploymentError) a ledger that belongs to another deployment.
 */
export async function setup(config: Config, broker: Broker, ledger: Ledger, registry: AccountRegistry): Promise<{ chart: Chart; deploymentId: string }> {
  await ensureTopology(broker.jsm, topologyOf(config));
  const deployment = await bindDeployment(deploymentDepsOf(config, broker, ledger));
  const chart = chartOf(config, deployment.space);
  await registry.ensure(systemAccounts(chart));
  return { chart, deploymentId: deployment.id };
}

/** The chart of the deployment these streams belong to, read only (tools: audit, dlq). */
export async function readChart(config: Config, broker: Pick<Broker, "js" | "jsm">, ledger: Ledger): Promise<Chart> {
  const deployment = await readDeployment(deploymentDepsOf(config, broker, ledger));
  return chartOf(config, deployment.space);
}

export type RunningService = { stop(): Promise<void>; done: Promise<void>; stats: WorkerStats; opsUrl: string | null; serviceId: string };

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const metrics = createOpsRegistry();
  const ledger = new MeteredLedger(await openServiceLedger(config), metrics);
  const broker = await connect(config, config.nats.name).catch(async (error: unknown) => {
    ledger.destroy();
    throw error;
  });
  const registry = new AccountRegistry(ledger, config.worker.accountCacheMax);
  const { chart, deploymentId } = await setup(config, broker, ledger, registry).catch(async (error: unknown) => {
    await broker.close();
    ledger.destroy();
    throw error;
  });
  const deadLetters = startAdvisoryProcessor({ js: broker.js, jsm: broker.jsm, config, log: log.child({ component: "dlq" }), decisions: { ledger, chart } });
  const names = new NameBook(chart.space, config.worker.accountCacheMax);
  const queryMeter = new QueryMeter(metrics);
  const queries = serveQueries({ nc: broker.nc, jsm: broker.jsm, ledger, chart, names, eventsStream: config.streams.events, queue: config.queries.queue, log: log.child({ component: "query" }) }, queryMeter.wrap(QUERY_HANDLERS));
  const stats = new WorkerStats();
  const ops = await startOperations({
    config, nc: broker.nc, jsm: broker.jsm, ledger, stats, queries: queryMeter, querySubjects: Object.keys(QUERY_HANDLERS), registry: metrics, log: log.child({ component: "ops" }),
  });
  const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
  // Short pull expiry: after a broker restart the client notices missed heartbeats (half the
  // expiry) and pulls again, so a worker resumes within seconds.
  const messages: ConsumerMessages = await consumer.consume({ max_messages: config.worker.batchMessagesMax, expires: PULL_EXPIRES_MS });
  const w = config.worker;
  const deps: WorkerDeps = {
    ledger, js: broker.js, jsm: broker.jsm, dlqStream: config.streams.dlq, chart, log: log.child({ component: "worker" }), registry, names, stats,
    limits: { ...w, ackWaitMs: config.consumer.ackWaitMs },
  };
  let requestStop = (): void => undefined;
  const stopSignal = new Promise<void>((resolve) => (requestStop = resolve));
  const batcher = new Batcher(messages[Symbol.asyncIterator]());
  const sweeper = new ExpirySweeper({
    ledger, js: broker.js, chart, names, log: log.child({ component: "expiry" }),
    limits: { ...config.expiry, holdTimeoutSecondsMax: w.holdTimeoutSecondsMax, publishTimeoutMs: w.publishTimeoutMs },
  }).start();
  const done = (async () => {
    try {
      await runWorker(deps, batcher, stopSignal);
    } finally {
      // Hand buffered, untouched messages back at once rather than after ack_wait.
      for (const m of await batcher.drainBuffered()) m.nak();
      await messages.close().catch(() => undefined);
      await sweeper.stop();
      await deadLetters.stop();
      await ops.close();
      for (const q of queries) q.unsubscribe();
      await broker.close();
      ledger.destroy();
    }
  })();
  log.info({ deploymentId, ledger: config.ledger.driver, streams: config.streams.commands, consumer: config.consumer.name, ops: ops.url, serviceId: ops.serviceId }, "service started");
  return {
    stats,
    opsUrl: ops.url,
    serviceId: ops.serviceId,
    done,
    stop: async () => {
      requestStop();
      await done;
    },
  };
}
