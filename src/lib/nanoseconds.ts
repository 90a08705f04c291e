// Ledger timestamps are nanoseconds since the epoch (TigerBeetle's u63), hold timeouts are seconds
// and configured durations milliseconds: the two factors between them, named once.

/** Nanoseconds per millisecond: a configured duration (…Ms) or Date.now() → ledger time. */
export const NS_PER_MS = 1_000_000n;

/** Nanoseconds per second: a hold's `timeout` (seconds) → its deadline in ledger time. */
export const NS_PER_SECOND = 1_000_000_000n;
