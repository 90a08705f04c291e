// The expiry sweeper: finds holds whose deadline passed by the ledger's clock, lets the ledger say
// which of them expired (a void probe), records each expiry once (a marker) and publishes its one
// `expired` event. Every service process runs one; they agree because the ledger decides and the
// event subject takes one message. See src/domain/expiry.ts for why a probe cannot release early.
import type { JetStreamClient } from "@nats-io/jetstream";
import { CreateTransferStatus as S, type Transfer } from "tigerbeetle-node";
import { publishEvents } from "../broker/publisher.ts";
import { currencyByLedger, type Chart } from "../domain/accounts.ts";
import { COMMAND_CODES } from "../domain/commands.ts";
import { expiredEvent } from "../domain/events.ts";
import { clockProbe, expiryMarker, holdDeadline, probeVerdict, voidProbe } from "../domain/expiry.ts";
import { TransferCode } from "../domain/plan.ts";
import type { Ledger } from "../ledger/port.ts";
import { assert } from "../lib/assert.ts";
import { exitOnBug, isTransient } from "../lib/failure.ts";
import { MinHeap } from "../lib/heap.ts";
import type { Logger } from "../lib/log.ts";
import type { NameBook } from "../worker/facts.ts";

export type ExpiryLimits = { sweepIntervalMs: number; holdsPerSweepMax: number; holdTimeoutSecondsMax: number; publishTimeoutMs: number };
export type ExpiryDeps = { ledger: Ledger; js: JetStreamClient; chart: Chart; names: NameBook; log: Logger; limits: ExpiryLimits };

/** Timed holds kept in memory at most; past it the scan pauses until some resolve. */
export const OPEN_HOLDS_MAX = 1_000_000;
/** Query pages read per sweep, so one sweep stays short. */
const SCAN_PAGES_MAX = 16;

/** The ledger's current time: the slot it assigns to a transfer it refuses (id 0 is invalid). */
export async function ledgerNow(ledger: Ledger): Promise<bigint> {
  const [result] = await ledger.createTransfers([clockProbe()]);
  assert(result !== undefined && result.status === S.id_must_not_be_zero, "the clock probe is refused as id_must_not_be_zero");
  return result.timestamp;
}

export class ExpirySweeper {
  private cursor: bigint | null = null;
  private readonly due = new MinHeap<Transfer>();
  expired = 0;

  constructor(private readonly deps: ExpiryDeps) {}

  /** One sweep: scan new holds, probe those due, record and announce the expired ones. */
  async sweep(): Promise<number> {
    const now = await ledgerNow(this.deps.ledger);
    await this.scan(now);
    const batch: Transfer[] = [];
    while (batch.length < this.deps.limits.holdsPerSweepMax && (this.due.peekKey() ?? now + 1n) <= now) batch.push(this.due.pop() as Transfer);
    if (batch.length === 0) return 0;
    try {
      return await this.settle(batch);
    } catch (error) {
      for (const hold of batch) this.due.push(holdDeadline(hold) as bigint, hold); // try again next sweep
      throw error;
    }
  }

  /**
   * Reads holds created since the cursor (at first: since the longest timeout) into the heap. A
   * cursor left behind when a scan found nothing made every sweep read the whole window again: on a
   * ledger of 5,000,000 transfers that was a third of the engine's time (docs/benchmarks.md).
   */
  private async scan(now: bigint): Promise<void> {
    const windowNs = BigInt(this.deps.limits.holdTimeoutSecondsMax) * 1_000_000_000n;
    this.cursor ??= now > windowNs ? now - windowNs : 1n;
    for (let page = 0; page < SCAN_PAGES_MAX && this.due.size < OPEN_HOLDS_MAX; page += 1) {
      const holds = await this.deps.ledger.queryTransfers({
        user_data_128: 0n, user_data_64: 0n, user_data_32: COMMAND_CODES.hold, ledger: 0, code: TransferCode.hold,
        timestamp_min: this.cursor, timestamp_max: now, limit: this.deps.limits.holdsPerSweepMax, flags: 0,
      });
      for (const hold of holds) {
        const deadline = holdDeadline(hold);
        if (deadline !== null) this.due.push(deadline, hold);
      }
      if (holds.length < this.deps.limits.holdsPerSweepMax) {
        // Every transfer up to `now` is in (the clock probe took a later slot than any of them),
        // so the next scan starts after it: never read the same range twice, with or without holds.
        this.cursor = now + 1n;
        return;
      }
      this.cursor = (holds[holds.length - 1] as Transfer).timestamp + 1n;
    }
  }

  private async settle(batch: ReadonlyArray<Transfer>): Promise<number> {
    const { ledger, chart, names, js, limits } = this.deps;
    const probes = await ledger.createTransfers(batch.map(voidProbe));
    const expired = batch.filter((_, i) => probeVerdict((probes[i] as { status: number }).status) === "expired");
    if (expired.length === 0) return 0;
    const markers = await ledger.createTransfers(expired.map((h) => expiryMarker(chart, h)));
    const owners = await names.resolve(ledger, expired.map((h) => h.debit_account_id));
    const events = expired.map((hold, i) => {
      const marker = markers[i];
      assert(marker !== undefined && (marker.status === S.created || marker.status === S.exists), "an expiry marker is created once and then exists");
      const currency = currencyByLedger(chart, hold.ledger);
      assert(currency !== undefined, `hold on unconfigured ledger ${hold.ledger}`);
      const fields = { userId: owners.get(hold.debit_account_id) as string, amount: hold.amount.toString(), currency: currency.code };
      return expiredEvent(hold.id, fields, marker.timestamp);
    });
    await publishEvents(js, events, limits.publishTimeoutMs);
    this.expired += events.length;
    return events.length;
  }

  /** Sweeps every interval until stopped; a failed sweep is logged and retried next time. */
  start(): { stop(): Promise<void> } {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const tick = (): void => {
      running = this.sweep().then(
        (n) => void (n > 0 && this.deps.log.info({ expired: n }, "holds expired")),
        (error: unknown) => {
          // A transient failure is retried next interval; anything else would fail the same way
          // every interval (or, rethrown here, end the process as an unhandled rejection, unlogged).
          if (!isTransient(error)) exitOnBug(this.deps.log, error, "the expiry sweeper");
          this.deps.log.warn({ err: error }, "expiry sweep failed; retrying next interval");
        },
      ).finally(() => {
        if (!stopped) timer = setTimeout(tick, this.deps.limits.sweepIntervalMs);
      });
    };
    tick();
    return {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running.catch(() => undefined);
      },
    };
  }
}
