// Proves the loop behind the expiry sweeper and the event recovery: runs one at a time every
// interval, a transient failure is logged once and retried at the next interval, and stop() waits
// for the run in hand and schedules no other.
import { describe, expect, it } from "vitest";
import { LedgerBusyError } from "../../src/ledger/index.ts";
import { runPeriodically } from "../../src/lib/periodic.ts";
import { capturingLogger } from "../telemetry/fixture.ts";

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("periodic task", () => {
  it("retries a transient failure at the next interval and logs it once per failure", async () => {
    const { log, lines } = capturingLogger();
    let runs = 0;
    const task = runPeriodically({
      where: "the test task",
      what: "test run",
      intervalMs: 20,
      log,
      run: async () => {
        runs += 1;
        if (runs <= 2) throw new LedgerBusyError("busy");
      },
    });
    await pause(200);
    await task.stop();
    expect(runs).toBeGreaterThanOrEqual(4);
    expect(
      lines().filter((l) => l["msg"] === "test run failed; retrying next interval"),
    ).toHaveLength(2);
  });

  it("stop waits for the run in hand and no run starts after it", async () => {
    const { log } = capturingLogger();
    let runs = 0;
    let finished = 0;
    const task = runPeriodically({
      where: "the test task",
      what: "test run",
      intervalMs: 1,
      log,
      run: async () => {
        runs += 1;
        await pause(50);
        finished += 1;
      },
    });
    await pause(10);
    await task.stop();
    expect(finished).toBe(runs);
    await pause(60);
    expect(runs).toBe(finished);
    expect(runs).toBe(1);
  });
});
