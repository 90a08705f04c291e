// The one home of the service's limits. The configuration's (what an operator may change) are in
// config/default.json, validated and cross-checked by src/config/schema.ts; every other bound is
// named here, with its unit last and its source: TigerBeetle's own limits (copied from its 0.17
// sources, see docs/ledger.md), the embedded engine's (ours, measured), and the components'
// internal bounds that no operator has needed to change. Constants only: no I/O, no imports.

// ── TigerBeetle ─────────────────────────────────────────────────────────────────────────────

/** Events per create/lookup request, and the largest query `limit` (TigerBeetle 0.17, 1 MiB messages; spec §3). */
export const LEDGER_EVENTS_MAX = 8189;

/** u128 all-ones: `amount_max` in tigerbeetle-node; an invalid id, and "as much as possible" for amounts. */
export const u128Max = (1n << 128n) - 1n;

/** Timestamps are u63 nanoseconds since the epoch: TigerBeetle keeps the top bit of u64 for itself. */
export const timestampMax = (1n << 63n) - 1n;

// ── The embedded engine ─────────────────────────────────────────────────────────────────────

/**
 * How long one SQLite call may wait in place for a lock held by another process. Short on
 * purpose: better-sqlite3 waits synchronously, which blocks this process's event loop.
 */
export const sqliteBusyTimeoutMs = 5;

/** Pause between two attempts to take the write lock, doubled per attempt up to the max. */
export const lockRetryDelayMinMs = 1;
export const lockRetryDelayMaxMs = 50;

/**
 * Total time a request waits for the write lock before it rejects with a transient Error.
 * A writer holds the lock for one request (≈ 15 ms for 1,000 transfers), so 10 s means the
 * database is stuck or badly overloaded; the caller retries.
 */
export const lockWaitTotalMs = 10_000;

/**
 * How much later than its own lock-wait bound the deadline wrapper (src/ledger/deadline.ts) gives
 * up on an embedded request: the engine's LedgerBusyError, which names the lock, answers first;
 * the wrapper catches a request that runs, rather than waits, too long (a stuck thread).
 */
export const deadlineBackstopMs = 1_000;

/**
 * SQLite page cache per connection (KiB) unless the opener says otherwise: the tools that open the
 * file (audit, export, readers). The service's connection takes `ledger.pageCacheMib` (config),
 * whose default is the same 16 MiB: it keeps the interior B-tree pages and the tails of the
 * append-ordered tables; the leaves a batch touches at random (its accounts, the ids it checks)
 * are spread over the whole file and a miss is a read from the OS page cache. 64 MiB cost ~45 MB
 * more resident (the cache and malloc's per-page overhead) and saved ~5–8 % CPU per command on a
 * ledger that fits in it; 256 MiB put a process at ~650 MB (bench/results/memory-round2.md).
 */
export const sqliteCacheKib = 16_384;

/** WAL pages after which a commit checkpoints, and the size the WAL file is truncated back to. */
export const walAutocheckpointPages = 4_000;
export const walSizeLimitBytes = 64 * 1024 * 1024;

/**
 * Accounts a process keeps in memory between requests (valid until another process commits).
 * About 1 KB each with their chain, so ~20 MB: room for a busy batch's accounts several times
 * over, small next to the process's memory budget.
 */
export const engineAccountCacheMax = 20_000;

/** Pending transfers released per expiry pass; passes repeat until none is due. */
export const expiriesPerPassMax = LEDGER_EVENTS_MAX;

/**
 * Rows a batch's id range scan may return before the engine probes ids one by one instead:
 * enough for retried ids in a time-ordered batch, little wasted work for random ids.
 */
export const batchIdRangeRowsMax = 64;

/**
 * Links an ascending account read walks back from the range's last transfer before it seeks the
 * range's start instead: covers the reads of a batch's own transfers, wastes little otherwise.
 */
export const ascendingWalkMax = 32;

// ── The process ─────────────────────────────────────────────────────────────────────────────

/** The largest heap growing factor the configuration may ask for (runtime.heapGrowingPercent): 4× live, V8's own ceiling. */
export const HEAP_GROWING_PERCENT_MAX = 300;

// ── The worker and the readers of its results ───────────────────────────────────────────────

/**
 * Ledger ids looked up per operation in a pass: own id, burned marker, fee leg, hold, hold's burned
 * marker (so worker.batchMessagesMax ≤ LEDGER_EVENTS_MAX / LOOKUPS_PER_OPERATION, src/config/schema.ts).
 */
export const LOOKUPS_PER_OPERATION = 5;

/**
 * Rows one history read returns at most (src/ledger-facts/applied-facts.ts). Each read answers at
 * least the first range still open (an operation's range holds at most its two legs), so the rows
 * read per batch are at most HISTORY_READ_ROWS_MAX × the batch's (operation, account) pairs,
 * whatever the ledger's history holds between them: a days-old replay next to a fresh command on
 * one hot account no longer reads every row in between.
 */
export const HISTORY_READ_ROWS_MAX = 256;

/**
 * Event publishes awaiting their PubAck at once (src/broker/publisher.ts). The shared notes (§4)
 * measured windows of 100 and 1000 at 18.8k and 21.9k msg/s; 256 keeps most of that while bounding
 * client memory and server load.
 */
export const publishInFlightMax = 256;

// ── The expiry sweeper (src/expiry/sweeper.ts) ──────────────────────────────────────────────

/** Timed holds kept in memory at most; past it the scan pauses until some resolve. */
export const OPEN_HOLDS_MAX = 1_000_000;
/**
 * Deadline entries of resolved holds the heap may keep beyond twice the open holds before it is
 * rebuilt: its size stays at most 2 × open holds + HEAP_SLACK.
 */
export const HEAP_SLACK = 64;
/** Query pages read per sweep, so one sweep stays short. */
export const EXPIRY_SCAN_PAGES_MAX = 16;

// ── Event recovery (src/recovery/event-recovery.ts) ─────────────────────────────────────────

/** Query pages one scan reads at most, so one scan stays short; the next continues. */
export const RECOVERY_SCAN_PAGES_MAX = 16;
/** Direct gets (one per decided operation) awaiting their answer at once. */
export const RECOVERY_LOOKUPS_IN_FLIGHT_MAX = 64;

// ── Command recovery (src/recovery/command-recovery.ts) ─────────────────────────────────────

/** Commands one page reads and one ledger lookup covers (3 ids each, 5 for a capture: within a request). */
export const COMMAND_RECOVERY_PAGE_COMMANDS_MAX = 1_000;
/** Message gets to the commands stream's leader in flight at once, when ranges are read from it. */
export const COMMAND_RECOVERY_LEADER_GETS_IN_FLIGHT_MAX = 64;

// ── Dead letters (src/dlq/max-deliveries-processor.ts) ───────────────────────────────────────────

/**
 * Republishes of one command at most. Past it the command is dead-lettered after all, naming the
 * decision: a decided command that keeps reaching max deliveries is not a broker outage (those
 * are retried in hand) but a replay that fails every time (a bug, a currency removed from the
 * config), and publishing it again forever would take every worker down with it, round after round.
 */
export const REDELIVERY_ROUNDS_MAX = 3;

/** The max-deliveries processor's bounds. */
export const advisoryProcessorDefaults = {
  // Handling one advisory is at most 2 API requests and 2 publishes, each bounded by its timeout;
  // the ack wait allows twice that before another process gets the advisory.
  ackWaitFactor: 2,
  // After a transient failure (broker unavailable) the advisory comes back after this delay.
  retryDelayMs: 5_000,
  // Pull requests of consume() expire and are renewed after this long (the client's own default,
  // named here); the server's idle heartbeats come every half of it.
  pullExpiresMs: 30_000,
  // After the subscription itself failed (stream or consumer missing, connection closed), wait
  // before creating the consumer and subscribing again: this long at first, doubling up to the max.
  resubscribeDelayMs: 1_000,
  resubscribeDelayMaxMs: 30_000,
  // max_ack_pending = advisoriesBatchMax × this many processes pulling at once.
  processesMax: 16,
} as const;

// ── Telemetry: the operations endpoints (src/telemetry/) ────────────────────────────────────
// Each is small enough that a slow dependency (a NATS outage, a TigerBeetle cluster without
// quorum) costs a scrape or a probe only this long.
export const telemetryLimits = {
  /** A scrape waits at most this long for the commands consumer's info; then the gauges are absent. */
  consumerInfoTimeoutMs: 2_000,
  /** The NATS check of /readyz: a PING/PONG round trip must finish within this. */
  natsRttTimeoutMs: 1_000,
  /** The ledger counts as answering when any call succeeded this recently; older, /readyz probes it. */
  ledgerFreshMs: 10_000,
  /** The ledger probe of /readyz (one lookup of one account) must finish within this. */
  ledgerProbeTimeoutMs: 2_000,
  /** /readyz fails while a decided operation's event has waited longer than this to be stored:
   *  past one publish timeout (10 s) and a few capped retries, the events stream is refusing writes. */
  eventsUnstoredAgeMaxMs: 30_000,
  /** Bound on the whole readiness check, whatever check function was injected. */
  readyTimeoutMs: 3_000,
  /** Batch sizes are folded into the histogram this often, so the worker's bounded list of
   *  recent sizes (1024 entries) never overflows below ~1000 batches per second. */
  batchSampleIntervalMs: 1_000,
  /** HTTP: idle keep-alive connections are closed after this. */
  httpKeepAliveMs: 5_000,
  /** HTTP: a request's headers, and the whole request, must arrive within this. */
  httpRequestTimeoutMs: 10_000,
  /** HTTP: concurrent connections; scrapers and probes need a handful. */
  httpConnectionsMax: 64,
} as const;

/** The same names with any values, for tests that need shorter bounds. */
export type OpsLimits = { readonly [K in keyof typeof telemetryLimits]: number };

// ── Tools and start-up ──────────────────────────────────────────────────────────────────────

/** Reads of a stretch of a stream (src/broker/stream-range.ts: the audit's events, command
 *  recovery's commands): empty fetches tolerated in a row before the range is taken as read
 *  (messages deleted at its end), and how long one fetch waits. */
export const STREAM_RANGE_EMPTY_FETCHES_MAX = 3;
export const STREAM_RANGE_FETCH_EXPIRES_MS = 2_000;

/** Deployments listed in a refusal at most (src/deployment.ts); a ledger serving more is named by count. */
export const DEPLOYMENTS_LISTED_MAX = 16;

/** The CLI (src/cli/main.ts): longest wait, after a stop, for what the stop left open before the
 *  process exits anyway; longest wait for its connection to drain when it closes (a broker gone
 *  meanwhile never answers). */
export const EXIT_GRACE_MAX_MS = 2_000;
export const CLIENT_CLOSE_MAX_MS = 2_000;
