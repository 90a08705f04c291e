// The expiry sweeper: finds holds whose deadline passed by the ledger's clock, lets the ledger say
// which of them expired (a void probe), records each expiry once (a marker) and publishes its one
// `expired` event. Every service process runs one; they agree because the ledger decides and the
// event subject takes one message. See src/domain/expiry.ts for why a probe cannot release early.
import type { JetStreamClient } from "@nats-io/jetstream";
import { CreateTransferStatus as S, TransferFlags, type Transfer } from "tigerbeetle-node";
import { publishEvents } from "../broker/publisher.ts";
import { EXPIRY_SCAN_PAGES_MAX, HEAP_SLACK, OPEN_HOLDS_MAX } from "../config/limits.ts";
import { currencyByLedger, type Chart } from "../domain/accounts.ts";
import { COMMAND_CODES } from "../domain/commands.ts";
import { expiredEvent } from "../domain/events.ts";
import { expiryMarker, holdDeadline, probeVerdict, voidProbe } from "../domain/expiry.ts";
import { TransferCode } from "../domain/plan.ts";
import { ledgerIssued, ledgerNow } from "../ledger/clock.ts";
import type { Ledger } from "../ledger/port.ts";
import { assert } from "../lib/assert.ts";
import { runPeriodically } from "../lib/periodic.ts";
import { MinHeap } from "../lib/heap.ts";
import type { Logger } from "../lib/log.ts";
import type { NameBook } from "../ledger-facts/name-book.ts";
import { NS_PER_MS, NS_PER_SECOND } from "../lib/nanoseconds.ts";

export type ExpiryLimits = {
  sweepIntervalMs: number;
  holdsPerSweepMax: number;
  holdTimeoutSecondsMax: number;
  publishTimeoutMs: number;
};
export type ExpiryDeps = {
  ledger: Ledger;
  js: JetStreamClient;
  chart: Chart;
  names: NameBook;
  log: Logger;
  limits: ExpiryLimits;
};

export class ExpirySweeper {
  private cursor: bigint | null = null;
  /** Timed holds seen and not yet resolved (expired, captured or released), by id. */
  private readonly open = new Map<bigint, Transfer>();
  /** Hold ids by deadline; entries of holds no longer open are skipped and, past a bound, dropped. */
  private due = new MinHeap<bigint>();
  expired = 0;

  constructor(private readonly deps: ExpiryDeps) {}

  /** Timed holds the sweeper watches. */
  get openHolds(): number {
    return this.open.size;
  }

  /** Deadline entries in memory: at most 2 × openHolds + HEAP_SLACK. */
  get holdsInMemory(): number {
    return this.due.size;
  }

  /**
   * One sweep: scan new holds (and the captures and releases that close them), probe those due,
   * record and announce the expired ones; returns how many this sweep recorded. Reads the
   * ledger's clock read-only; a clock write only when a hold is due by the wall clock and no
   * transfer since has confirmed it.
   */
  async sweep(): Promise<number> {
    let now = await ledgerIssued(this.deps.ledger);
    await this.scan(now);
    const next = this.nextDeadline();
    if (next !== undefined && next > now && next <= BigInt(Date.now()) * NS_PER_MS)
      now = await ledgerNow(this.deps.ledger);
    const batch: Transfer[] = [];
    while (
      batch.length < this.deps.limits.holdsPerSweepMax &&
      (this.nextDeadline() ?? now + 1n) <= now
    ) {
      const hold = this.open.get(this.due.pop() as bigint) as Transfer;
      this.open.delete(hold.id);
      batch.push(hold);
    }
    if (batch.length === 0) return 0;
    try {
      return await this.expireDue(batch);
    } catch (error) {
      for (const hold of batch) this.watch(hold); // try again next sweep
      throw error;
    }
  }

  /** The earliest deadline of an open hold; drops the heap's entries of holds resolved meanwhile. */
  private nextDeadline(): bigint | undefined {
    for (;;) {
      const key = this.due.peekKey();
      if (key === undefined) return undefined;
      if (this.open.has(this.due.peek() as bigint)) return key;
      this.due.pop();
    }
  }

  private watch(hold: Transfer): void {
    const deadline = holdDeadline(hold);
    if (deadline === null) return;
    this.open.set(hold.id, hold);
    this.due.push(deadline, hold.id);
  }

  /** Rebuilds the heap from the open holds once resolved holds' entries outnumber them. */
  private compact(): void {
    if (this.due.size <= 2 * this.open.size + HEAP_SLACK) return;
    const due = new MinHeap<bigint>();
    for (const hold of this.open.values()) due.push(holdDeadline(hold) as bigint, hold.id);
    this.due = due;
  }

  /**
   * Reads what happened to holds since the cursor (at first: since the longest timeout): new holds
   * go into the heap, captures and releases (they carry the hold's code) take theirs out, so memory
   * holds open holds only. A cursor left behind when a scan found nothing made every sweep read the
   * whole window again: on a ledger of 5,000,000 transfers that was a third of the engine's time
   * (docs/benchmarks.md).
   */
  private async scan(now: bigint): Promise<void> {
    const windowNs = BigInt(this.deps.limits.holdTimeoutSecondsMax) * NS_PER_SECOND;
    this.cursor ??= now > windowNs ? now - windowNs : 1n;
    for (
      let page = 0;
      page < EXPIRY_SCAN_PAGES_MAX && this.cursor <= now && this.open.size < OPEN_HOLDS_MAX;
      page += 1
    ) {
      // This deployment's holds and their captures and releases (which inherit the hold's code).
      const found = await this.deps.ledger.queryTransfers({
        user_data_128: 0n,
        user_data_64: this.deps.chart.space.tag,
        user_data_32: 0,
        ledger: 0,
        code: TransferCode.hold,
        timestamp_min: this.cursor,
        timestamp_max: now,
        limit: this.deps.limits.holdsPerSweepMax,
        flags: 0,
      });
      for (const t of found) {
        if (t.user_data_32 === COMMAND_CODES.hold && (t.flags & TransferFlags.pending) !== 0)
          this.watch(t);
        else if (t.pending_id !== 0n) this.open.delete(t.pending_id); // captured or released: it cannot expire
      }
      this.compact();
      if (found.length < this.deps.limits.holdsPerSweepMax) {
        // Every transfer up to `now` is in (`now` is a timestamp the ledger issued, and its
        // transfers commit in timestamp order), so the next scan starts after it: never read the
        // same range twice, with or without holds.
        this.cursor = now + 1n;
        return;
      }
      this.cursor = (found[found.length - 1] as Transfer).timestamp + 1n;
    }
  }

  private async expireDue(batch: ReadonlyArray<Transfer>): Promise<number> {
    const { ledger, chart, names, js, limits } = this.deps;
    const probes = await ledger.createTransfers(batch.map((h) => voidProbe(chart, h)));
    const expired = batch.filter(
      (_, i) => probeVerdict((probes[i] as { status: number }).status) === "expired",
    );
    if (expired.length === 0) return 0;
    const markers = await ledger.createTransfers(expired.map((h) => expiryMarker(chart, h)));
    const owners = await names.resolve(
      ledger,
      expired.map((h) => h.debit_account_id),
    );
    const events = expired.map((hold, i) => {
      const marker = markers[i];
      assert(
        marker !== undefined && (marker.status === S.created || marker.status === S.exists),
        "an expiry marker is created once and then exists",
      );
      const currency = currencyByLedger(chart, hold.ledger);
      assert(currency !== undefined, `hold on unconfigured ledger ${hold.ledger}`);
      const fields = {
        userId: owners.get(hold.debit_account_id) as string,
        amount: hold.amount.toString(),
        currency: currency.code,
      };
      return expiredEvent(hold.id, fields, marker.timestamp);
    });
    await publishEvents(js, events, limits.publishTimeoutMs);
    // Counted (and logged) by the one process whose marker recorded the expiry. Every process
    // meets each expired hold again when it starts (its scan re-reads the longest timeout's
    // window) or when another process expired it first; its marker then `exists`. Its event is
    // published again all the same (idempotent: one message per subject), since the process
    // that recorded it may have died before publishing.
    const recorded = markers.filter((m) => m.status === S.created).length;
    this.expired += recorded;
    return recorded;
  }

  /** Sweeps every interval until stopped; a failed sweep is logged and retried next time. */
  start(): { stop(): Promise<void> } {
    return runPeriodically({
      where: "the expiry sweeper",
      what: "expiry sweep",
      intervalMs: this.deps.limits.sweepIntervalMs,
      log: this.deps.log,
      run: async () => {
        const n = await this.sweep();
        if (n > 0) this.deps.log.info({ expired: n }, "holds expired");
      },
    });
  }
}
