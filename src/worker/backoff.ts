// How long the worker waits before storing a decided batch's events and dead letters again. Pure.
//
// A decided operation is never handed back to the broker for want of its event: every nak counts a
// delivery, and max deliveries would dead-letter an operation whose money already moved. So the
// worker keeps the batch leased and retries, for as long as it takes: soon at first (a leader
// election, a reconnect last a second or two), then every `maxMs` at most, so that the event is
// stored within a few seconds of the stream accepting writes again.
import { assert } from "../lib/assert.ts";

/** The first retry, after the first failed attempt. */
export const publishRetryFirstMs = 100;

/** The wait after failed attempt number `attempt` (1, 2, …): 100 ms doubling, capped at `maxMs`. */
export function publishRetryDelayMs(attempt: number, maxMs: number): number {
  assert(Number.isSafeInteger(attempt) && attempt >= 1, "publishRetryDelayMs: attempt is 1, 2, …");
  // 2^30 × 100 ms is far past any cap; stopping the exponent there keeps the number finite.
  const delay = publishRetryFirstMs * 2 ** Math.min(attempt - 1, 30);
  return Math.min(delay, maxMs);
}
