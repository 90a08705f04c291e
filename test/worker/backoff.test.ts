// Proves the retry schedule of a decided batch whose events are not stored: 100 ms, doubling, never
// more than the configured cap, and still the cap after any number of attempts (a retry goes on for
// as long as the events stream refuses writes). Pure function, no broker.
import { describe, expect, it } from "vitest";
import { publishRetryDelayMs, publishRetryFirstMs } from "../../src/worker/backoff.ts";
import { AssertionError } from "../../src/lib/assert.ts";
import { loadConfig } from "../../src/config/load.ts";

describe("worker – publish retry backoff", () => {
  it("starts at 100 ms and doubles after each failed attempt", () => {
    expect([1, 2, 3, 4, 5].map((a) => publishRetryDelayMs(a, 5_000))).toEqual([
      100, 200, 400, 800, 1_600,
    ]);
    expect(publishRetryFirstMs).toBe(100);
  });

  it("is capped at publishRetryMaxMs, also after a day of attempts", () => {
    expect([6, 7, 8, 50, 1_000, 100_000].map((a) => publishRetryDelayMs(a, 5_000))).toEqual([
      3_200, 5_000, 5_000, 5_000, 5_000, 5_000,
    ]);
    expect(publishRetryDelayMs(1, 50)).toBe(50);
  });

  it("the default cap is a few seconds", () => {
    const max = loadConfig({ LOG_LEVEL: "silent" }).worker.publishRetryMaxMs;
    expect(max).toBeGreaterThanOrEqual(1_000);
    expect(max).toBeLessThanOrEqual(10_000);
    const total = Array.from({ length: 20 }, (_, i) => publishRetryDelayMs(i + 1, max)).reduce(
      (a, b) => a + b,
      0,
    );
    expect(total).toBeLessThan(20 * max); // the first retries come sooner
  });

  it("an attempt number below 1 is a programmer error", () => {
    expect(() => publishRetryDelayMs(0, 5_000)).toThrow(AssertionError);
  });
});
