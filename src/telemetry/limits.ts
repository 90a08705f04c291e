// Every bound of the operations endpoints, named with its unit last. They are not in config/
// because no operator has needed to change them; each is small enough that a slow dependency
// (a NATS outage, a TigerBeetle cluster without quorum) costs a scrape or a probe only this long.
export const opsLimits = {
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
export type OpsLimits = { readonly [K in keyof typeof opsLimits]: number };
