// Telemetry for one service process, wired in one call: the HTTP endpoint (/metrics, /healthz,
// /readyz) and the service description on NATS. The composition root owns the registry, the
// metered ledger and the query meter, because the ledger and the queries are created before this.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { AdvisoryOutcome } from "../dlq/max-deliveries-processor.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/log.ts";
import type { WorkerStats } from "../worker/stats.ts";
import {
  announceService,
  packageInfo,
  SERVICE_NAME,
  type ServiceDescription,
} from "./discovery.ts";
import type { MeteredLedger } from "./metered-ledger.ts";
import { queryName, type QueryMeter } from "./query-meter.ts";
import { telemetryLimits } from "../config/limits.ts";
import { readinessOf } from "./readiness.ts";
import { startTelemetryServer } from "./server.ts";
import type { ConsumerInfo } from "./worker-metrics.ts";

export { MeteredLedger } from "./metered-ledger.ts";
export { QueryMeter } from "./query-meter.ts";
export { startTelemetryServer, type TelemetryServer } from "./server.ts";
export { readinessOf } from "./readiness.ts";

/**
 * A registry with the process metrics (CPU, memory, event loop lag, GC, handles) already in it, and
 * billing_build_info: one series per process, so `count(billing_build_info)` is the number of
 * processes Prometheus scrapes, and the version label shows a rolling upgrade.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: "billing_build_info",
    help: "Always 1, one series per process; the label is the package version.",
    labelNames: ["version"],
    registers: [registry],
  });
  info.set({ version: packageInfo().version }, 1);
  return registry;
}

/** Every verdict of the max-deliveries processor (src/dlq/max-deliveries-processor.ts). */
const ADVISORY_VERDICTS: ReadonlyArray<AdvisoryOutcome> = [
  "dead_lettered",
  "command_missing",
  "redelivered",
  "already_dead_lettered",
];

/**
 * Counts the max-deliveries processor's verdicts: the max_deliveries dead letters, which
 * billing_dead_letters_total (the worker's own letters) does not hold. Every verdict's series exists
 * at 0 from the start, so rate() and alerts see the first one.
 */
export function advisoryVerdictCounter(registry: Registry): (outcome: AdvisoryOutcome) => void {
  const counter = new Counter({
    name: "billing_max_deliveries_advisories_total",
    registers: [registry],
    labelNames: ["verdict"],
    help: "MAX_DELIVERIES advisories this process handled, by verdict: dead_lettered and command_missing stored a max_deliveries dead letter; redelivered published a decided command again for its event; already_dead_lettered was a duplicate advisory.",
  });
  for (const verdict of ADVISORY_VERDICTS) counter.inc({ verdict }, 0);
  return (outcome) => counter.inc({ verdict: outcome });
}

/**
 * Counts events the recovery scan stored again from the ledger (src/recovery/event-recovery.ts):
 * events the broker had acknowledged and no longer held. At 0 from the start; any increase means
 * the events stream lost events (a broker crash before its disk sync, a stream recreated).
 */
export function recoveredEventsCounter(registry: Registry): (count: number) => void {
  const counter = new Counter({
    name: "billing_events_recovered_total",
    registers: [registry],
    help: "Events this process found missing from the events stream for operations the ledger decided, rebuilt from the ledger and stored again.",
  });
  counter.inc(0);
  return (count) => counter.inc(count);
}

export function recoveredCommandsCounter(registry: Registry): (count: number) => void {
  const counter = new Counter({
    name: "billing_commands_recovered_total",
    registers: [registry],
    help: "Commands this process found stored in the commands stream, behind the consumer and with no outcome (no decision, event or dead letter), and published again.",
  });
  counter.inc(0);
  return (count) => counter.inc(count);
}

export type TelemetryDeps = {
  config: Config;
  nc: NatsConnection;
  jsm: JetStreamManager;
  ledger: MeteredLedger;
  stats: WorkerStats;
  queries: QueryMeter;
  /** The query subjects this process serves (the keys of the handlers given to serveQueries). */
  querySubjects: ReadonlyArray<string>;
  registry: Registry;
  log: Logger;
};

export type Telemetry = {
  /** The ops endpoint's base URL, null when config.ops.port is 0. */
  url: string | null;
  /** This process's id on the $SRV subjects. */
  serviceId: string;
  close(): Promise<void>;
};

export async function startTelemetry(deps: TelemetryDeps): Promise<Telemetry> {
  const { config, log } = deps;
  const server = await startTelemetryServer({
    host: config.ops.host,
    port: config.ops.port,
    portInUse: config.ops.portInUse,
    stats: deps.stats,
    registry: deps.registry,
    ready: readinessOf(deps.nc, deps.ledger, telemetryLimits, {
      unstored: deps.stats.unstored,
      ageMaxMs: telemetryLimits.eventsUnstoredAgeMaxMs,
    }),
    consumerInfo: consumerInfoOf(deps.jsm, config.streams.commands, config.consumer.name),
    log,
  });
  const url = server?.url ?? null;
  try {
    const announcement = await announceService(
      deps.nc,
      describeService(config, url, deps.querySubjects),
      (subject) => deps.queries.endpointStats(subject),
      log,
    );
    return {
      url,
      serviceId: announcement.id,
      close: async () => {
        await announcement.stop();
        await server?.close();
      },
    };
  } catch (error) {
    await server?.close();
    throw error;
  }
}

export function consumerInfoOf(
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
): ConsumerInfo {
  return async () => {
    const info = await jsm.consumers.info(stream, consumer);
    return {
      num_pending: info.num_pending,
      num_ack_pending: info.num_ack_pending,
      num_redelivered: info.num_redelivered,
    };
  };
}

export function describeService(
  config: Config,
  url: string | null,
  querySubjects: ReadonlyArray<string>,
): ServiceDescription {
  const pkg = packageInfo();
  return {
    name: SERVICE_NAME,
    version: pkg.version,
    description: pkg.description,
    metadata: {
      ...(url === null
        ? {}
        : {
            metrics_url: `${url}/metrics`,
            ready_url: `${url}/readyz`,
            health_url: `${url}/healthz`,
          }),
      ledger_driver: config.ledger.driver,
      query_subjects: querySubjects.join(","),
      commands_stream: config.streams.commands,
      consumer: config.consumer.name,
    },
    endpoints: querySubjects.map((subject) => ({
      name: queryName(subject),
      subject,
      queue_group: config.queries.queue,
    })),
  };
}
