// The worker waits for every batch "unless told to stop". Racing each wait against one long-lived
// stop promise kept every batch reachable from it (a leak of ~180,000 messages over a 200,000-
// command run); unlessAborted must leave nothing behind on the signal once a wait is decided.
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { unlessAborted } from "../../src/lib/signal.ts";

describe("worker stop – waiting unless stopped", () => {
  it("a thousand decided waits leave no listener on the stop signal", async () => {
    const stop = new AbortController();
    for (let i = 0; i < 1000; i++)
      expect(await unlessAborted(Promise.resolve(i), stop.signal)).toBe(i);
    await expect(unlessAborted(Promise.reject(new Error("boom")), stop.signal)).rejects.toThrow(
      "boom",
    );
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
  });

  it("a wait in progress ends with null when the signal aborts, and one after it at once", async () => {
    const stop = new AbortController();
    const never = new Promise<number>(() => undefined);
    const waiting = unlessAborted(never, stop.signal);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(1);
    stop.abort();
    expect(await waiting).toBeNull();
    expect(await unlessAborted(Promise.resolve(1), stop.signal)).toBeNull();
  });
});
