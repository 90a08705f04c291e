// Prometheus metrics read from the worker's own counters (WorkerStats) when scraped, plus the
// commands consumer's backlog, sampled on scrape under a bound. The worker keeps plain numbers and
// never imports prom-client; this file turns them into counters, a histogram and gauges.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { assert } from "../lib/assert.ts";
import type { Logger } from "../lib/log.ts";
import type { WorkerStats } from "../worker/stats.ts";
import { within } from "../lib/deadline.ts";
import { describeFailure } from "../lib/failure.ts";
import { telemetryLimits, type OpsLimits } from "../config/limits.ts";

export type ConsumerSample = {
  num_pending: number;
  num_ack_pending: number;
  num_redelivered: number;
};
export type ConsumerInfo = () => Promise<ConsumerSample>;
export type WorkerMetrics = { unregister(): void };
type Limits = Pick<OpsLimits, "consumerInfoTimeoutMs" | "batchSampleIntervalMs">;

/** Powers of two up to 2048, above worker.batchMessagesMax's ceiling (floor(8189 / 5) = 1637, src/config/schema.ts). */
const BATCH_BUCKETS_MESSAGES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

/** Registers the worker's metrics in `registry`; unregister() removes exactly these again. */
export function registerWorkerMetrics(
  registry: Registry,
  stats: WorkerStats,
  consumerInfo: ConsumerInfo,
  log: Logger,
  limits: Limits = telemetryLimits,
): WorkerMetrics {
  const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
  registerSettlementCounters(registry, stats);
  const stopSampler = registerBatchHistogram(registry, stats, limits.batchSampleIntervalMs);
  registerConsumerGauges(registry, consumerInfo, log, limits.consumerInfoTimeoutMs);
  registerUnstoredGauges(registry, stats);
  const ours = registry
    .getMetricsAsArray()
    .map((m) => m.name)
    .filter((name) => !before.has(name));
  return {
    unregister: () => {
      stopSampler();
      for (const name of ours) registry.removeSingleMetric(name);
    },
  };
}

type Labels = Record<string, string>;
type Reading = Array<readonly [Labels, number]>;

function registerSettlementCounters(registry: Registry, stats: WorkerStats): void {
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    read: (s: WorkerStats) => Reading,
  ): void => {
    const sync = mirror(name, () => read(stats));
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        sync(this);
      },
    });
  };
  counter(
    "billing_commands_settled_total",
    "Messages settled, by command type (or malformed) and outcome: applied, rejected, dead_conflict, dead_malformed, nak.",
    ["type", "outcome"],
    (s) =>
      [...s.outcomes].map(([key, value]) => {
        const [type = "", outcome = ""] = key.split(":");
        return [{ type, outcome }, value] as const;
      }),
  );
  counter(
    "billing_dead_letters_total",
    "Messages this process copied to the dead-letter stream and terminated, by reason (malformed, conflict).",
    ["reason"],
    (s) => {
      const byReason = new Map<string, number>();
      for (const [key, value] of s.outcomes) {
        const outcome = key.split(":")[1] ?? "";
        if (!outcome.startsWith("dead_")) continue;
        const reason = outcome.slice("dead_".length);
        byReason.set(reason, (byReason.get(reason) ?? 0) + value);
      }
      return [...byReason].map(([reason, value]) => [{ reason }, value] as const);
    },
  );
  counter(
    "billing_batch_failure_naks_total",
    "Messages handed back with a delayed nak because the batch's ledger call, or storing its events or dead letters, failed.",
    [],
    (s) => [[{}, s.naks]],
  );
  counter(
    "billing_events_published_total",
    "Events this process stored in the events stream.",
    [],
    (s) => [[{}, s.eventsPublished]],
  );
  counter(
    "billing_event_publish_retries_total",
    "Attempts to store a decided batch's events and dead letters again after an attempt failed (the batch stays leased meanwhile).",
    [],
    (s) => [[{}, s.publishRetries]],
  );
  counter(
    "billing_batches_total",
    "Batches the worker took from the commands consumer.",
    [],
    (s) => [[{}, s.batches]],
  );
  counter(
    "billing_ledger_passes_total",
    "Ledger passes (lookup, decide, create) over all batches; more than one per batch means operations were retried inside their batch.",
    [],
    (s) => [[{}, s.passes]],
  );
}

/** Keeps a prom-client counter equal to a cumulative number the worker keeps, by adding the difference at each scrape. */
function mirror(name: string, read: () => Reading): (counter: Counter<string>) => void {
  const seen = new Map<string, number>();
  return (counter) => {
    for (const [labels, value] of read()) {
      const key = JSON.stringify(labels);
      const delta = value - (seen.get(key) ?? 0);
      assert(delta >= 0, `${name}: a worker counter never decreases`);
      counter.inc(labels, delta);
      seen.set(key, value);
    }
  };
}

/**
 * Ledger requests (client calls) one batch made: a lookup, creates, and the history reads of its
 * events' balances. Up to 256, far above what a batch of the default size makes (docs/benchmarks.md).
 */
const REQUESTS_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 64, 128, 256];

/**
 * The worker keeps the last 1024 batch sizes and request counts; they are folded in every interval
 * and at every scrape. Sizes that left the list unsampled are counted (requests: the same batches).
 */
function registerBatchHistogram(
  registry: Registry,
  stats: WorkerStats,
  intervalMs: number,
): () => void {
  const unsampled = new Counter({
    name: "billing_batch_sizes_unsampled_total",
    registers: [registry],
    help: "Batches whose size left the worker's bounded list of recent sizes before it was sampled (more than 1024 batches in one sample interval).",
  });
  const sizes = folding(
    () => stats.batches,
    stats.batchSizes.values,
    (lost) => unsampled.inc(lost),
  );
  const requests = folding(
    () => stats.ledgerCountedBatches,
    stats.requestsPerBatch.values,
    () => undefined,
  );
  const histogram = new Histogram({
    name: "billing_batch_size_messages",
    help: "Messages per batch taken from the commands consumer.",
    buckets: BATCH_BUCKETS_MESSAGES,
    registers: [registry],
    collect() {
      sizes(this);
    },
  });
  const perBatch = new Histogram({
    name: "billing_ledger_requests_per_batch",
    registers: [registry],
    buckets: REQUESTS_BUCKETS,
    collect() {
      requests(this);
    },
    help: "Ledger requests (client calls: lookups, creates, history reads for the events' balances) per batch the ledger resolved.",
  });
  const sampler = setInterval(() => {
    sizes(histogram);
    requests(perBatch);
  }, intervalMs);
  sampler.unref();
  return () => clearInterval(sampler);
}

/** Observes the values pushed since the last fold (the newest `kept` ones), and reports those lost. */
function folding(
  count: () => number,
  kept: ReadonlyArray<number>,
  lost: (n: number) => void,
): (histogram: Histogram) => void {
  let seen = count();
  return (histogram) => {
    const fresh = count() - seen;
    assert(fresh >= 0, "a worker's batch count never decreases");
    const take = Math.min(fresh, kept.length);
    for (let i = kept.length - take; i < kept.length; i += 1) histogram.observe(kept[i] as number);
    if (fresh > take) lost(fresh - take);
    seen += fresh;
  };
}

/** Backlog gauges. One consumer-info request per scrape, shared by the four gauges, bounded in time. */
function registerConsumerGauges(
  registry: Registry,
  consumerInfo: ConsumerInfo,
  log: Logger,
  timeoutMs: number,
): void {
  let inFlight: Promise<ConsumerSample | null> | null = null;
  const sample = (): Promise<ConsumerSample | null> => {
    inFlight ??= within(consumerInfo(), timeoutMs, "consumer info")
      .catch((error: unknown) => {
        log.warn({ err: describeFailure(error) }, "consumer info unavailable for /metrics");
        return null;
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  };
  const gauge = (name: string, help: string, value: (s: ConsumerSample) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        // A label-less gauge cannot be left out of the exposition; NaN says "not known now".
        const s = await sample();
        this.set(s === null ? Number.NaN : value(s));
      },
    });
  };
  gauge(
    "billing_consumer_pending_messages",
    "Commands in the stream not yet delivered to any worker (consumer num_pending).",
    (s) => s.num_pending,
  );
  gauge(
    "billing_consumer_ack_pending_messages",
    "Commands delivered and not yet acknowledged (consumer num_ack_pending).",
    (s) => s.num_ack_pending,
  );
  gauge(
    "billing_consumer_redelivered_messages",
    "Commands delivered more than once and not yet acknowledged (consumer num_redelivered).",
    (s) => s.num_redelivered,
  );
  new Gauge({
    name: "billing_consumer_info_up",
    registers: [registry],
    help: `1 when the commands consumer's info answered within ${timeoutMs} ms at this scrape, else 0 (and the three consumer gauges are NaN).`,
    async collect() {
      this.set((await sample()) === null ? 0 : 1);
    },
  });
}

/** Decided operations whose event (or dead letter) this process has not stored yet, and for how long. */
function registerUnstoredGauges(registry: Registry, stats: WorkerStats): void {
  new Gauge({
    name: "billing_events_unstored",
    registers: [registry],
    help: "Events and dead letters of operations decided in the ledger that this process holds and has not stored yet (retried in hand until stored).",
    collect() {
      this.set(stats.unstored.count());
    },
  });
  new Gauge({
    name: "billing_events_unstored_oldest_age_seconds",
    registers: [registry],
    help: "Seconds since the oldest decided operation this process holds without its event stored was decided; 0 when there is none.",
    collect() {
      const since = stats.unstored.oldestSinceMs();
      this.set(since === null ? 0 : (Date.now() - since) / 1000);
    },
  });
}
