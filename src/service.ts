// The composition root: config → ledger, broker, topology, queries, worker. One service process.
import type { ConsumerMessages } from "@nats-io/jetstream";
import {
  AuthorizationError,
  PermissionViolationError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import { connectBroker, redactUrl, type Broker } from "./broker/connection.ts";
import { BrokerConnectError } from "./broker/errors.ts";
import { ResubscribingSource } from "./broker/subscription.ts";
import { bindDeployment, readDeployment, type DeploymentDeps } from "./deployment.ts";
import type { IdSpace } from "./domain/ids.ts";
import { authOf } from "./config/auth.ts";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ensureTopology } from "./broker/topology.ts";
import { topologyOf } from "./config/topology.ts";
import { systemAccounts, type Chart } from "./domain/accounts.ts";
import { LedgerUnavailableError, openLedger } from "./ledger/index.ts";
import { describeFailure, retryStartup } from "./lib/failure.ts";
import { within } from "./lib/deadline.ts";
import type { Ledger, LedgerOptions } from "./ledger/port.ts";
import type { Logger } from "./lib/log.ts";
import type { Config } from "./config/schema.ts";
import { QUERY_HANDLERS, serveQueries } from "./query/server.ts";
import {
  advisoryVerdictCounter,
  createMetricsRegistry,
  MeteredLedger,
  QueryMeter,
  recoveredCommandsCounter,
  recoveredEventsCounter,
  startTelemetry,
} from "./telemetry/index.ts";
import { CommandRecovery } from "./recovery/command-recovery.ts";
import { EventRecovery } from "./recovery/event-recovery.ts";
import { ExpirySweeper } from "./expiry/sweeper.ts";
import { startAdvisoryProcessor } from "./dlq/max-deliveries-processor.ts";
import { AccountRegistry } from "./ledger-facts/account-registry.ts";
import { Batcher } from "./worker/batcher.ts";
import { NameBook } from "./ledger-facts/name-book.ts";
import { runWorker, type WorkerDeps } from "./worker/loop.ts";
import { WorkerStats } from "./worker/stats.ts";

/** Lifetime of one pull request; idle heartbeats come every half of it (nats.js default). */
const PULL_EXPIRES_MS = 5_000;

export { topologyOf };

export function chartOf(config: Config, space: IdSpace): Chart {
  return {
    currencies: config.currencies,
    defaultCurrency: config.defaultCurrency,
    markerLedger: config.markerLedger,
    space,
  };
}

/** How a refusal names this configuration's ledger and streams. */
export function deploymentDepsOf(
  config: Config,
  broker: Pick<Broker, "js" | "jsm">,
  ledger: Ledger,
): DeploymentDeps {
  const ledgerName =
    config.ledger.driver === "embedded"
      ? `ledger ${resolve(config.ledger.path)}`
      : ledgerNameOf(config);
  return {
    js: broker.js,
    jsm: broker.jsm,
    ledger,
    stream: config.streams.deployment,
    markerLedger: config.markerLedger,
    shared: config.ledger.shared,
    streamsName: `NATS ${config.nats.servers.map(redactUrl).join(",")} (stream ${config.streams.deployment})`,
    ledgerName,
  };
}

const KIB_PER_MIB = 1024;

export function ledgerOptionsOf(config: Config): LedgerOptions {
  const requestTimeoutMs = config.ledger.requestTimeoutMs;
  if (config.ledger.driver === "embedded")
    return {
      driver: "embedded",
      path: config.ledger.path,
      thread: config.ledger.thread,
      pageCacheKib: config.ledger.pageCacheMib * KIB_PER_MIB,
      requestTimeoutMs,
    };
  const tb = config.ledger.tigerbeetle;
  return {
    driver: "tigerbeetle",
    clusterId: BigInt(tb.clusterId),
    addresses: tb.addresses,
    requestTimeoutMs,
  };
}

/** The ledger as an operator knows it: the file, or the cluster and its addresses. */
export function ledgerNameOf(config: Config): string {
  const tb = config.ledger.tigerbeetle;
  return config.ledger.driver === "embedded"
    ? `embedded ledger ${config.ledger.path}`
    : `TigerBeetle cluster ${tb.clusterId} at ${tb.addresses.join(",")}`;
}

/**
 * Opens the ledger a service or `billing setup` writes to; the embedded engine's directory is
 * created on first use (a fresh clone has no ./data yet).
 */
export async function openServiceLedger(config: Config): Promise<Ledger> {
  if (config.ledger.driver === "embedded")
    mkdirSync(dirname(resolve(config.ledger.path)), { recursive: true });
  return openLedger(ledgerOptionsOf(config));
}

export async function connect(config: Config, name: string): Promise<Broker> {
  const auth = authOf(config);
  return connectBroker({
    servers: config.nats.servers,
    name,
    connectTimeoutMs: config.nats.connectTimeoutMs,
    apiTimeoutMs: config.nats.requestTimeoutMs,
    ...(auth ? { auth } : {}),
  });
}

/**
 * Streams, consumer, the deployment binding and system accounts: what `billing setup` does,
 * idempotently. Refuses (DeploymentError) a ledger that belongs to another deployment.
 */
export async function setup(
  config: Config,
  broker: Broker,
  ledger: Ledger,
  registry: AccountRegistry,
  newDeployment = false,
): Promise<{ chart: Chart; deploymentId: string }> {
  await ensureTopology(broker.jsm, topologyOf(config));
  const deployment = await bindDeployment(deploymentDepsOf(config, broker, ledger), newDeployment);
  const chart = chartOf(config, deployment.space);
  await registry.ensure(systemAccounts(chart));
  return { chart, deploymentId: deployment.id };
}

/** The chart of the deployment these streams belong to, read only (tools: audit, dlq). */
export async function readChart(
  config: Config,
  broker: Pick<Broker, "js" | "jsm">,
  ledger: Ledger,
): Promise<Chart> {
  const deployment = await readDeployment(deploymentDepsOf(config, broker, ledger));
  return chartOf(config, deployment.space);
}

export type RunningService = {
  stop(): Promise<void>;
  done: Promise<void>;
  stats: WorkerStats;
  opsUrl: string | null;
  serviceId: string;
};

/**
 * The share of worker.drainTimeoutMs kept for closing after the batches in hand (subscriptions,
 * the sweeper's round, the connection's flush): at most this, at most half the drain.
 */
export const CLOSE_RESERVE_MS = 2_000;

/**
 * Connects, retrying refused or unanswered connections (a broker being restarted) with one log
 * line per attempt naming the servers, until `deadlineMs`; then the last BrokerConnectError
 * (exit 2). Authentication and configuration failures are not retried: they need an operator.
 */
export async function connectWaiting(
  config: Config,
  name: string,
  log: Logger,
  deadlineMs: number,
): Promise<Broker> {
  const servers = config.nats.servers.map(redactUrl);
  return retryStartup(
    {
      what: "connect to NATS",
      deadlineMs,
      names: { servers },
      log,
      retryable: (error) => error instanceof BrokerConnectError && !isAuthFailure(error),
      giveUp: (last) =>
        new BrokerConnectError(
          `${(last as Error).message} (still failing after nats.startupWaitMs = ${config.nats.startupWaitMs} ms)`,
          servers,
          { cause: last },
        ),
    },
    () => connect(config, name),
  );
}

function isAuthFailure(error: Error): boolean {
  const cause = error.cause;
  return (
    cause instanceof AuthorizationError ||
    cause instanceof UserAuthenticationExpiredError ||
    cause instanceof PermissionViolationError
  );
}

/**
 * Everything a service needs before it takes its first message, each step retried while the
 * broker or the ledger is away (bounded by nats.startupWaitMs and ledger.startupWaitMs).
 */
async function startUp(
  config: Config,
  log: Logger,
  ledger: MeteredLedger,
  close: Array<() => Promise<void> | void>,
) {
  const startLog = log.child({ component: "start" });
  const natsDeadlineMs = Date.now() + config.nats.startupWaitMs;
  const broker = await connectWaiting(config, config.nats.name, startLog, natsDeadlineMs);
  close.push(() => broker.close());
  const servers = config.nats.servers.map(redactUrl);
  const onNats = (what: string) => ({
    what,
    deadlineMs: natsDeadlineMs,
    names: { servers },
    log: startLog,
    giveUp: (last: unknown) =>
      new BrokerConnectError(
        `NATS at ${servers.join(", ")}: ${what} still failing after nats.startupWaitMs = ${config.nats.startupWaitMs} ms: ${describeFailure(last)}`,
        servers,
        { cause: last },
      ),
  });
  await retryStartup(onNats("streams and consumer"), () =>
    ensureTopology(broker.jsm, topologyOf(config)),
  );
  const registry = new AccountRegistry(ledger, config.worker.accountCacheMax);
  const ledgerName = ledgerNameOf(config);
  // The binding and the system accounts, retried while the ledger or the broker is away; a
  // ledger of another deployment (DeploymentError) is not transient: exit 2 at once.
  const { chart, deploymentId } = await retryStartup(
    {
      what: "deployment and system accounts",
      deadlineMs: Date.now() + config.ledger.startupWaitMs,
      names: { ledger: ledgerName },
      log: startLog,
      giveUp: (last) =>
        new LedgerUnavailableError(
          `${ledgerName} did not answer within ledger.startupWaitMs = ${config.ledger.startupWaitMs} ms: ${describeFailure(last)}`,
          { cause: last },
        ),
    },
    async () => {
      const deployment = await bindDeployment(deploymentDepsOf(config, broker, ledger));
      const bound = chartOf(config, deployment.space);
      await registry.ensure(systemAccounts(bound));
      return { chart: bound, deploymentId: deployment.id };
    },
  );
  const subscribe = async (): Promise<ConsumerMessages> => {
    const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
    // Short pull expiry: after a broker restart the client notices missed heartbeats (half the
    // expiry) and pulls again, so a worker resumes within seconds.
    return consumer.consume({
      max_messages: config.worker.batchMessagesMax,
      expires: PULL_EXPIRES_MS,
    });
  };
  const first = await retryStartup(onNats("consumer subscription"), subscribe);
  const messages = new ResubscribingSource(
    first,
    subscribe,
    broker.nc,
    log.child({ component: "worker" }),
  );
  close.push(() => messages.close());
  return { broker, registry, messages, onNats, chart, deploymentId };
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const metrics = createMetricsRegistry();
  const ledger = new MeteredLedger(
    await openServiceLedger(config),
    metrics,
    log.child({ component: "ledger" }),
  );
  // What start-up opened, closed in reverse order if a later step fails.
  const opened: Array<() => Promise<void> | void> = [() => ledger.destroy()];
  try {
    return await run(config, log, metrics, ledger, opened);
  } catch (error) {
    // Bounded: a consumer subscription that was never read from never finishes closing (nats.js
    // resolves close() when its iterator ends), and a start-up that failed after subscribing hung
    // here for good, without a line. What is not closed in time goes with the process.
    for (const close of opened.reverse())
      await within(
        Promise.resolve(close()),
        CLOSE_RESERVE_MS,
        "closing after a failed start-up",
      ).catch(() => undefined);
    throw error;
  }
}

async function run(
  config: Config,
  log: Logger,
  metrics: ReturnType<typeof createMetricsRegistry>,
  ledger: MeteredLedger,
  opened: Array<() => Promise<void> | void>,
): Promise<RunningService> {
  const { broker, registry, messages, onNats, chart, deploymentId } = await startUp(
    config,
    log,
    ledger,
    opened,
  );
  const names = new NameBook(chart.space, config.worker.accountCacheMax);
  const queryMeter = new QueryMeter(metrics);
  const stats = new WorkerStats();
  const ops = await retryStartup(onNats("service announcement"), () =>
    startTelemetry({
      config,
      nc: broker.nc,
      jsm: broker.jsm,
      ledger,
      stats,
      queries: queryMeter,
      querySubjects: Object.keys(QUERY_HANDLERS),
      registry: metrics,
      log: log.child({ component: "ops" }),
    }),
  );
  // From here on nothing fails: the parts below retry by themselves while the broker is away.
  const deadLetters = startAdvisoryProcessor({
    js: broker.js,
    jsm: broker.jsm,
    config,
    log: log.child({ component: "dlq" }),
    decisions: { ledger, chart },
    counted: advisoryVerdictCounter(metrics),
  });
  const queries = serveQueries(
    {
      nc: broker.nc,
      jsm: broker.jsm,
      ledger,
      chart,
      names,
      eventsStream: config.streams.events,
      queue: config.queries.queue,
      log: log.child({ component: "query" }),
    },
    queryMeter.wrap(QUERY_HANDLERS),
  );
  const w = config.worker;
  const closeReserveMs = Math.min(CLOSE_RESERVE_MS, Math.floor(w.drainTimeoutMs / 2));
  const deps: WorkerDeps = {
    ledger,
    js: broker.js,
    jsm: broker.jsm,
    dlqStream: config.streams.dlq,
    chart,
    log: log.child({ component: "worker" }),
    registry,
    names,
    stats,
    limits: {
      ...w,
      ackWaitMs: config.consumer.ackWaitMs,
      drainTimeoutMs: w.drainTimeoutMs - closeReserveMs,
    },
  };
  let requestStop = (): void => undefined;
  const stopSignal = new Promise<void>((resolve) => (requestStop = resolve));
  const batcher = new Batcher(messages, config.worker.batchMessagesMax);
  const sweeper = new ExpirySweeper({
    ledger,
    js: broker.js,
    chart,
    names,
    log: log.child({ component: "expiry" }),
    limits: {
      ...config.expiry,
      holdTimeoutSecondsMax: w.holdTimeoutSecondsMax,
      publishTimeoutMs: w.publishTimeoutMs,
    },
  }).start();
  const recovery = new EventRecovery({
    ledger,
    js: broker.js,
    jsm: broker.jsm,
    eventsStream: config.streams.events,
    chart,
    names,
    log: log.child({ component: "recovery" }),
    limits: {
      ...config.recovery,
      eventsMaxAgeMs: config.streams.eventsMaxAgeMs,
      publishTimeoutMs: w.publishTimeoutMs,
    },
    recovered: recoveredEventsCounter(metrics),
  });
  const recovering = recovery.start();
  const commandRecovery = new CommandRecovery({
    js: broker.js,
    jsm: broker.jsm,
    ledger,
    chart,
    log: log.child({ component: "command-recovery" }),
    commandsStream: config.streams.commands,
    consumer: config.consumer.name,
    dlqStream: config.streams.dlq,
    eventsStream: config.streams.events,
    limits: {
      ...config.commandRecovery,
      holdTimeoutSecondsMax: w.holdTimeoutSecondsMax,
      payloadBytesMax: w.payloadBytesMax,
      holdGraceMs: w.holdGraceMs,
      publishTimeoutMs: w.publishTimeoutMs,
    },
    recovered: recoveredCommandsCounter(metrics),
  }).start();
  // A broker that comes back may have lost what it acknowledged before it went down.
  void (async () => {
    for await (const s of broker.nc.status()) if (s.type === "reconnect") recovery.rewind();
  })().catch(() => undefined);
  const done = (async () => {
    try {
      await runWorker(deps, batcher, stopSignal);
    } finally {
      // Bounded, so a stop ends within drainTimeoutMs even with the broker or the ledger away:
      // what is not closed by then goes with the process (messages not acked are redelivered).
      const closing = (async () => {
        // Hand buffered, untouched messages back at once rather than after ack_wait.
        for (const m of batcher.drainBuffered()) m.nak();
        await messages.close();
        await Promise.all([
          sweeper.stop(),
          recovering.stop(),
          commandRecovery.stop(),
          deadLetters.stop(),
          ops.close(),
        ]);
        for (const q of queries) q.unsubscribe();
        await broker.close();
      })();
      await within(closing, closeReserveMs, "closing the service").catch((error: unknown) =>
        log.warn(
          { err: describeFailure(error) },
          "stop: closing failed or ran out of time; leaving the rest to the process exit",
        ),
      );
      ledger.destroy();
    }
  })();
  // "started" means a query sent now is answered: the subscriptions must have reached the server
  // (a query right after start-up once got "no responders"). Bounded; a broker away now gets them
  // on reconnect, so a failed flush is logged, not fatal.
  await within(
    broker.nc.flush(),
    config.nats.requestTimeoutMs,
    "flushing the query subscriptions",
  ).catch((error: unknown) =>
    log.warn(
      { err: describeFailure(error) },
      "start: the query subscriptions are not confirmed by the server yet",
    ),
  );
  log.info(
    {
      deploymentId,
      ledger: config.ledger.driver,
      streams: config.streams.commands,
      consumer: config.consumer.name,
      ops: ops.url,
      serviceId: ops.serviceId,
    },
    "service started",
  );
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
