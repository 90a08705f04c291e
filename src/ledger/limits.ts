// Every bound of the ledger engine, named with its unit last. TigerBeetle's own limits are copied
// from its 0.17 sources (see docs/ledger.md); the embedded engine's are ours and measured.

/** Events per create/lookup request, and the largest query `limit` (TigerBeetle 0.17, 1 MiB messages). */
export const batchEventsMax = 8189;

/** u128 all-ones: `amount_max` in tigerbeetle-node; an invalid id, and "as much as possible" for amounts. */
export const u128Max = (1n << 128n) - 1n;

/** Timestamps are u63 nanoseconds since the epoch: TigerBeetle keeps the top bit of u64 for itself. */
export const timestampMax = (1n << 63n) - 1n;

/** Nanoseconds per second, for `timeout` (seconds) → `expires_at` (ns). */
export const nsPerSecond = 1_000_000_000n;

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
 * SQLite page cache per connection (KiB). 64 MiB keeps the hot B-tree pages of the accounts a
 * batch touches and the tails of the append-ordered tables; 256 MiB put a service process at
 * ~650 MB resident over a million commands (bench/results/e2e.md), past its 250 MB budget.
 */
export const sqliteCacheKib = 65_536;

/** WAL pages after which a commit checkpoints, and the size the WAL file is truncated back to. */
export const walAutocheckpointPages = 4_000;
export const walSizeLimitBytes = 64 * 1024 * 1024;

/**
 * Accounts a process keeps in memory between requests (valid until another process commits).
 * About 1 KB each with their chain, so ~20 MB: room for a busy batch's accounts several times
 * over, small next to the process's memory budget.
 */
export const accountCacheMax = 20_000;

/** Pending transfers released per expiry pass; passes repeat until none is due. */
export const expiriesPerPassMax = 8189;

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
