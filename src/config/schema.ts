// The configuration: every limit named, with its unit last, validated by zod and cross-checked.
import { z } from "zod";
import { HEAP_GROWING_PERCENT_MAX, LEDGER_EVENTS_MAX, LOOKUPS_PER_OPERATION } from "./limits.ts";

const ms = (max: number) => z.number().int().min(1).max(max);
const u32 = z.number().int().min(1).max(0xffff_ffff);

export const configSchema = z.strictObject({
  nats: z.strictObject({
    servers: z.array(z.string().min(1)).min(1).max(32),
    name: z.string().min(1).max(64),
    connectTimeoutMs: ms(600_000),
    requestTimeoutMs: ms(600_000),
    /** How long `billing start` keeps trying to reach NATS and set up its streams before it exits 2. */
    startupWaitMs: ms(3_600_000),
    auth: z
      .strictObject({
        user: z.string().optional(),
        passFile: z.string().optional(),
        tokenFile: z.string().optional(),
        nkeySeedFile: z.string().optional(),
        credsFile: z.string().optional(),
        tls: z
          .strictObject({
            caFile: z.string().optional(),
            certFile: z.string().optional(),
            keyFile: z.string().optional(),
          })
          .optional(),
      })
      .optional(),
  }),
  ledger: z.strictObject({
    driver: z.enum(["embedded", "tigerbeetle"]),
    path: z.string().min(1),
    /** Embedded engine only: run it on a worker thread so its CPU overlaps the broker work. */
    thread: z.boolean(),
    /**
     * Embedded engine only: SQLite's page cache of the service's connection (MiB). 16 keeps a
     * process within 250 MB resident over a million commands; 64 saved ~5–8 % CPU per command on a
     * ledger that fits in it, for ~45 MB more (bench/results/memory-round2.md).
     */
    pageCacheMib: z.number().int().min(1).max(1024),
    /**
     * May this ledger serve several deployments (several NATS, one TigerBeetle cluster)? Each one's
     * accounts and transfers stay its own (src/deployment.ts); off, a ledger serves one deployment.
     */
    shared: z.boolean(),
    /**
     * Deadline on one ledger request (both drivers; the embedded engine's wait for the write lock
     * too). Past it the request fails as transient and the worker naks its batch.
     */
    requestTimeoutMs: ms(600_000),
    /** How long `billing start` keeps trying to reach the ledger (system accounts) before it exits 2. */
    startupWaitMs: ms(3_600_000),
    tigerbeetle: z.strictObject({
      clusterId: z.string().regex(/^[0-9]{1,39}$/, "must be a decimal u128"),
      addresses: z.array(z.string().min(1)).min(1).max(6),
    }),
  }),
  currencies: z
    .array(
      z.strictObject({
        code: z
          .string()
          .regex(/^[A-Z][A-Z0-9]{1,15}$/, "must be 2-16 upper-case letters or digits"),
        ledger: u32,
        scale: z.number().int().min(0).max(18),
      }),
    )
    .min(1)
    .max(256),
  defaultCurrency: z.string(),
  markerLedger: u32,
  streams: z.strictObject({
    commands: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    events: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    dlq: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    advisories: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    /** Holds the one record naming the deployment these streams belong to (src/deployment.ts). */
    deployment: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    storage: z.enum(["file", "memory"]),
    replicas: z.number().int().min(1).max(5),
    duplicateWindowMs: ms(7 * 24 * 3_600_000),
    /** The dead-letter stream's window (at least duplicateWindowMs is used). */
    dlqDuplicateWindowMs: ms(7 * 24 * 3_600_000),
    commandsMaxAgeMs: z.number().int().min(0),
    eventsMaxAgeMs: z.number().int().min(0),
    dlqMaxAgeMs: z.number().int().min(0),
  }),
  consumer: z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    ackWaitMs: ms(3_600_000),
    maxDeliver: z.number().int().min(2).max(100_000),
    maxAckPending: z.number().int().min(1).max(1_000_000),
  }),
  worker: z.strictObject({
    batchMessagesMax: z
      .number()
      .int()
      .min(1)
      .max(Math.floor(LEDGER_EVENTS_MAX / LOOKUPS_PER_OPERATION)),
    batchWaitMs: z.number().int().min(0).max(10_000),
    /** Batches between their ledger work and their acknowledgements at once (1 = no overlap). */
    pipelineDepth: z.number().int().min(1).max(8),
    passesMax: z.number().int().min(2).max(16),
    nakDelayMs: ms(600_000),
    holdGraceMs: ms(86_400_000),
    holdWaitNakMs: ms(600_000),
    accountCacheMax: z.number().int().min(0).max(10_000_000),
    payloadBytesMax: z.number().int().min(256).max(1_048_576),
    holdTimeoutSecondsMax: u32,
    publishTimeoutMs: ms(600_000),
    /** A decided batch whose events are not stored is retried in hand: 100 ms doubling up to this. */
    publishRetryMaxMs: ms(60_000),
    /** Bound on a stop (SIGTERM): batches still in hand then are naked and left to redelivery. */
    drainTimeoutMs: ms(600_000),
  }),
  queries: z.strictObject({ queue: z.string().min(1).max(64) }),
  expiry: z.strictObject({
    /** The contract: an expired event within this delay after the hold's deadline (default 5 s). */
    delayMs: ms(3_600_000),
    sweepIntervalMs: ms(3_600_000),
    holdsPerSweepMax: z.number().int().min(1).max(LEDGER_EVENTS_MAX),
  }),
  /**
   * Events the broker acknowledged and then lost, stored again from the ledger
   * (src/recovery/event-recovery.ts, docs/guarantees.md).
   */
  recovery: z.strictObject({
    /**
     * How far back, before the ledger's newest transfer, a rescan looks for decided operations
     * whose event is missing: at start and after every reconnection to NATS. Never past the events
     * stream's max age. Cover the broker's unsynced writes (2 minutes by default on 2.10+).
     */
    windowMs: ms(30 * 86_400_000),
    /** Operations younger than this are left to the worker storing their event. */
    lagMs: z.number().int().min(0).max(3_600_000),
    intervalMs: ms(3_600_000),
    /** Ledger transfers one scan query reads. */
    transfersPerScanMax: z.number().int().min(1).max(LEDGER_EVENTS_MAX),
  }),
  /**
   * Commands the broker stored and never delivered to a worker, published again
   * (src/recovery/command-recovery.ts, docs/guarantees.md).
   */
  commandRecovery: z.strictObject({
    intervalMs: ms(3_600_000),
    /** Commands younger than this are left to the consumer; longer than a worker needs to answer one. */
    lagMs: z.number().int().min(0).max(86_400_000),
    /** Commands stream sequences per range: a scan's unit, and one done-record each in the dead-letter stream. */
    rangeCommands: z.number().int().min(1).max(100_000),
    /** Ranges one scan looks at, at most. */
    rangesPerScanMax: z.number().int().min(1).max(10_000),
    /** At start, how many ranges behind the consumer's ack floor the walk begins (ranges already recorded cost one read each). */
    rangesBackMax: z.number().int().min(0).max(1_000_000),
  }),
  dlq: z.strictObject({
    advisoriesBatchMax: z.number().int().min(1).max(10_000),
    listMax: z.number().int().min(1).max(100_000),
  }),
  ops: z.strictObject({
    host: z.string().min(1),
    /** 0 disables the metrics and health endpoint. */
    port: z.number().int().min(0).max(65_535),
    /**
     * When the port is taken: "ephemeral" binds a free port and logs it (several `npm start` on one
     * machine); "exit" refuses to start (exit 2), for ports pinned per process as scrape targets.
     */
    portInUse: z.enum(["ephemeral", "exit"]),
  }),
  log: z.strictObject({
    level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  }),
  runtime: z.strictObject({
    /**
     * `billing start` only: V8's old generation may grow to (1 + this / 100) × what its last full
     * collection kept before the next one (src/lib/heap-growth.ts); 0 leaves V8's own factor (up
     * to 4×, ~150 MB more resident). Lower holds memory tighter for more full collections.
     */
    heapGrowingPercent: z.number().int().min(0).max(HEAP_GROWING_PERCENT_MAX),
  }),
});

export type Config = z.infer<typeof configSchema>;

/** Cross-checks between limits; each returns the path and what is wrong. */
export function crossCheck(c: Config): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  const codes = c.currencies.map((x) => x.code);
  const ledgers = c.currencies.map((x) => x.ledger);
  if (!codes.includes(c.defaultCurrency))
    problems.push({
      path: "defaultCurrency",
      message: `${c.defaultCurrency} is not among the configured currencies`,
    });
  if (new Set(codes).size !== codes.length)
    problems.push({ path: "currencies", message: "currency codes must be unique" });
  if (new Set(ledgers).size !== ledgers.length)
    problems.push({ path: "currencies", message: "ledger numbers must be unique" });
  if (ledgers.includes(c.markerLedger))
    problems.push({ path: "markerLedger", message: "must differ from every currency's ledger" });
  if (c.consumer.maxAckPending < c.worker.batchMessagesMax * (c.worker.pipelineDepth + 1))
    problems.push({
      path: "consumer.maxAckPending",
      message: "must be at least worker.batchMessagesMax × (worker.pipelineDepth + 1)",
    });
  const waits = Math.ceil(c.worker.holdGraceMs / c.worker.holdWaitNakMs);
  if (c.consumer.maxDeliver <= waits + 5)
    problems.push({
      path: "consumer.maxDeliver",
      message: `must exceed holdGraceMs / holdWaitNakMs + 5 (= ${waits + 5}), or a capture waiting for its hold is dropped`,
    });
  if (c.expiry.sweepIntervalMs > c.expiry.delayMs)
    problems.push({
      path: "expiry.sweepIntervalMs",
      message: "must not exceed expiry.delayMs, or expired events come late",
    });
  if (c.consumer.ackWaitMs < 4 * c.worker.batchWaitMs + 1000)
    problems.push({
      path: "consumer.ackWaitMs",
      message: "must exceed 4 × worker.batchWaitMs + 1 s",
    });
  return problems;
}
