// Events rebuilt from the ledger: the ledger, not the events stream, is the record of what was
// decided. JetStream acknowledges a publish before it syncs it to disk (every two minutes by
// default on 2.10+, never configurable on 2.9), so a broker's OS crash or power loss can lose
// events it acknowledged, and the worker acked their commands on that acknowledgement: no message
// is left to replay them. This scan walks the ledger's recent transfers by timestamp, finds
// decided operations whose event subject is empty, rebuilds each event exactly as the worker and
// the sweeper build it (the same builders, balances read at the operation's own timestamps) and
// stores it like they do (expected last subject sequence 0, Nats-Msg-Id): a copy another process
// stored first is refused as "already there", so any number of processes may scan at once.
//
// What it covers: applied operations (every command type) and expiries. Not rejections: a
// rejection marker holds the reason and the command's fingerprint, not its fields or detail, and
// one under a burned-marker id cannot be traced back to its operation id (docs/guarantees.md).
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { classify } from "../domain/transfer-kind.ts";
import { getLastBySubject } from "../broker/last-by-subject.ts";
import { RECOVERY_LOOKUPS_IN_FLIGHT_MAX, RECOVERY_SCAN_PAGES_MAX } from "../config/limits.ts";
import { storeEvents } from "../broker/publisher.ts";
import { BrokerUnavailableError } from "../broker/errors.ts";
import { describeFailure } from "../lib/failure.ts";
import { currencyByLedger, type Chart } from "../domain/accounts.ts";
import type { Command, CommandFields, CommandType } from "../domain/commands.ts";
import { appliedEvent, EVENT_OF, expiredEvent, type OutboundEvent } from "../domain/events.ts";
import { formatOperationId } from "../domain/ids.ts";
import type { HoldFacts } from "../domain/plan.ts";
import type { Operation } from "../domain/resolve.ts";
import type { Ledger } from "../ledger/port.ts";
import { mapBounded } from "../lib/map-bounded.ts";
import { runPeriodically } from "../lib/periodic.ts";
import type { Logger } from "../lib/log.ts";
import { ledgerIssued } from "../ledger/clock.ts";
import { appliedFacts, type Applied, type AppliedFacts } from "../ledger-facts/applied-facts.ts";
import type { NameBook } from "../ledger-facts/name-book.ts";
import { NS_PER_MS } from "../lib/nanoseconds.ts";

export type RecoveryLimits = {
  /** How far back (ledger time, before its newest transfer) a rescan starts: at start and after each reconnection. */
  windowMs: number;
  /** Operations younger than this (wall clock) are left to the worker storing their event. */
  lagMs: number;
  intervalMs: number;
  /** Transfers one ledger query reads. */
  transfersPerScanMax: number;
  /** The events stream's max_age (0: forever): an event older than it is retired, never recovered. */
  eventsMaxAgeMs: number;
  publishTimeoutMs: number;
};

export type RecoveryDeps = {
  ledger: Ledger;
  js: JetStreamClient;
  jsm: JetStreamManager;
  eventsStream: string;
  chart: Chart;
  names: NameBook;
  log: Logger;
  limits: RecoveryLimits;
  /** Called with the number of events each page stored again (the metric). */
  recovered: (count: number) => void;
};

type Candidate = { transfer: Transfer; subject: string } & (
  { kind: "applied"; type: CommandType } | { kind: "expiry"; holdId: bigint }
);

export class EventRecovery {
  /** The next ledger timestamp to look at in the current rescan. */
  private cursor = 1n;
  /** Where the current rescan ends (the newest decision when it began); null: none under way. */
  private target: bigint | null = null;
  private rewindWanted = true;
  /** Events this process stored again. */
  recovered = 0;

  constructor(private readonly deps: RecoveryDeps) {}

  /**
   * Rescans the last windowMs of decisions, from the next scan on: after a reconnection to the
   * broker, which may have come back without what it acknowledged before it went down.
   */
  rewind(): void {
    this.rewindWanted = true;
  }

  /** Whether a rescan is under way (or wanted). */
  get scanning(): boolean {
    return this.rewindWanted || this.target !== null;
  }

  /**
   * One step of the rescan under way, if any: at most RECOVERY_SCAN_PAGES_MAX pages from the cursor, never
   * past `lagMs` ago; answers how many events it stored again. Idle (no ledger read at all) when
   * no rescan is under way: the cost is paid after a start or a reconnection, not per operation.
   */
  async scan(): Promise<number> {
    const { ledger, chart, limits } = this.deps;
    if (this.rewindWanted) {
      this.rewindWanted = false;
      // Anchored on the newest decision, not on the wall clock: while the broker was down nothing
      // was decided, so the window covers what came just before the outage, however long it was.
      const issued = await ledgerIssued(ledger);
      const back = issued - BigInt(limits.windowMs) * NS_PER_MS;
      const start = back > 1n ? back : 1n; // a young (or empty: 0) ledger from its first timestamp
      this.cursor = this.target !== null && this.cursor < start ? this.cursor : start;
      this.target = issued;
    }
    if (this.target === null) return 0;
    const nowNs = BigInt(Date.now()) * NS_PER_MS;
    const lagged = nowNs - BigInt(limits.lagMs) * NS_PER_MS;
    const upTo = this.target < lagged ? this.target : lagged;
    // Never bring back an event the stream has retired on purpose (max_age), nor look before it.
    const floor =
      limits.eventsMaxAgeMs > 0 ? nowNs - BigInt(limits.eventsMaxAgeMs) * NS_PER_MS + 1n : 1n;
    if (this.cursor < floor) this.cursor = floor;
    let stored = 0;
    for (let page = 0; page < RECOVERY_SCAN_PAGES_MAX && this.cursor <= upTo; page += 1) {
      const found = await ledger.queryTransfers({
        user_data_128: 0n,
        user_data_64: chart.space.tag,
        user_data_32: 0,
        ledger: 0,
        code: 0,
        timestamp_min: this.cursor,
        timestamp_max: upTo,
        limit: limits.transfersPerScanMax,
        flags: 0,
      });
      // A page whose events are not all stored throws: the cursor stays, the next scan retries it.
      stored += await this.recoverPage(found);
      const last = found[found.length - 1];
      // Every transfer up to `upTo` is in (at most a timestamp the ledger issued; transfers commit
      // in timestamp order): a short page ends the step there.
      this.cursor =
        found.length < limits.transfersPerScanMax || last === undefined
          ? upTo + 1n
          : last.timestamp + 1n;
    }
    if (this.cursor > this.target) {
      this.deps.log.info(
        { recovered: this.recovered, windowMs: limits.windowMs },
        "rescan of the ledger's recent decisions against the events stream finished",
      );
      this.target = null;
    }
    return stored;
  }

  /** The decided operations of a page whose event subject is empty, their events rebuilt and stored. */
  private async recoverPage(found: ReadonlyArray<Transfer>): Promise<number> {
    const { deps } = this;
    const candidates = found.flatMap((t) => this.candidate(t));
    if (candidates.length === 0) return 0;
    const present = await mapBounded(
      candidates,
      RECOVERY_LOOKUPS_IN_FLIGHT_MAX,
      async (c) => (await getLastBySubject(deps.jsm, deps.eventsStream, c.subject)) !== null,
    );
    const missing = candidates.filter((_, i) => !present[i]);
    if (missing.length === 0) return 0;
    const events = await this.rebuild(missing);
    const outcomes = await storeEvents(deps.js, events, deps.limits.publishTimeoutMs);
    const failed = outcomes.filter((o) => o !== null);
    const stored = events.length - failed.length;
    if (stored > 0) {
      this.recovered += stored;
      deps.recovered(stored);
      const first = missing[0] as Candidate;
      const last = missing[missing.length - 1] as Candidate;
      deps.log.info(
        {
          events: stored,
          firstSubject: first.subject,
          fromLedgerTimestamp: String(first.transfer.timestamp),
          toLedgerTimestamp: String(last.transfer.timestamp),
        },
        "events missing from the events stream stored again from the ledger",
      );
    }
    if (failed.length > 0) {
      throw new BrokerUnavailableError(
        `${failed.length} of ${events.length} recovered events not stored; first: ${describeFailure(failed[0])}`,
        { cause: failed[0] },
      );
    }
    return stored;
  }

  private candidate(t: Transfer): Candidate[] {
    const c = classify(this.deps.chart, t);
    if (c.kind === "applied")
      return [
        {
          kind: "applied",
          type: c.type,
          transfer: t,
          subject: `billing.evt.${EVENT_OF[c.type]}.${formatOperationId(t.id)}`,
        },
      ];
    if (c.kind === "expiry")
      return [
        {
          kind: "expiry",
          holdId: c.holdId,
          transfer: t,
          subject: `billing.evt.expired.${formatOperationId(c.holdId)}`,
        },
      ];
    return []; // fee legs (their transfer's event), rejections (not rebuildable: header), foreign
  }

  /** Each missing operation's event, built by the domain's builders from what the ledger holds. */
  private async rebuild(missing: ReadonlyArray<Candidate>): Promise<OutboundEvent[]> {
    const { ledger, chart, names, log } = this.deps;
    const related = new Set<bigint>();
    for (const c of missing) {
      const t = c.transfer;
      if (c.kind === "expiry") related.add(c.holdId);
      else if (c.type === "capture" || c.type === "release") related.add(t.pending_id);
      else if (c.type === "transfer" && (t.flags & TransferFlags.linked) !== 0)
        related.add(chart.space.feeLegId(t.id));
    }
    const found = new Map(
      (related.size > 0 ? await ledger.lookupTransfers([...related]) : []).map((t) => [t.id, t]),
    );
    const userAccounts = missing.flatMap((c) => this.userAccountsOf(c, found));
    const named =
      userAccounts.length > 0
        ? await names.resolve(ledger, userAccounts)
        : new Map<bigint, string>();
    const applied: Applied[] = [];
    const events: OutboundEvent[] = [];
    for (const c of missing) {
      if (c.kind === "expiry") {
        const expired = this.expired(c.holdId, c.transfer, found, named);
        if (expired) events.push(expired);
        else
          log.warn(
            { holdId: formatOperationId(c.holdId) },
            "an expiry marker whose hold is not a hold of a configured currency; its event is not rebuilt",
          );
        continue;
      }
      const a = this.applied(c.type, c.transfer, found, named);
      if (a) applied.push(a);
      else
        log.warn(
          { operationId: formatOperationId(c.transfer.id), command: c.type },
          "a decided operation the ledger does not describe fully (currency, hold or fee leg missing); its event is not rebuilt",
        );
    }
    const facts =
      applied.length > 0
        ? await appliedFacts(ledger, chart, names, applied)
        : new Map<bigint, AppliedFacts>();
    for (const a of applied) {
      const f = facts.get(a.op.id);
      if (f)
        events.push(
          appliedEvent(a.op.id, a.op.decoded.type, f.fields, f.balances, f.ledgerTimestamp),
        );
    }
    return events;
  }

  private userAccountsOf(c: Candidate, found: ReadonlyMap<bigint, Transfer>): bigint[] {
    const t = c.transfer;
    if (c.kind === "expiry")
      return found.has(c.holdId) ? [(found.get(c.holdId) as Transfer).debit_account_id] : [];
    switch (c.type) {
      case "credit":
        return [t.credit_account_id];
      case "debit":
      case "hold":
        return [t.debit_account_id];
      case "transfer":
        return [t.debit_account_id, t.credit_account_id];
      case "capture":
      case "release":
        return []; // appliedFacts names the hold's account itself
    }
  }

  private expired(
    holdId: bigint,
    marker: Transfer,
    found: ReadonlyMap<bigint, Transfer>,
    named: ReadonlyMap<bigint, string>,
  ): OutboundEvent | null {
    const hold = found.get(holdId);
    const currency = hold ? currencyByLedger(this.deps.chart, hold.ledger) : undefined;
    const userId = hold ? named.get(hold.debit_account_id) : undefined;
    if (!hold || !currency || userId === undefined) return null;
    // As the sweeper builds it: the hold's owner, amount and currency, the marker's timestamp.
    return expiredEvent(
      holdId,
      { userId, amount: hold.amount.toString(), currency: currency.code },
      marker.timestamp,
    );
  }

  /**
   * The operation as a worker replaying it would hold it: the command the ledger records (its
   * fingerprint is the transfer's) and an `applied` verdict with the recorded timestamps, hold
   * and ledger, so appliedFacts reads the same balances and the event is the first one, byte
   * for byte.
   */
  private applied(
    type: CommandType,
    t: Transfer,
    found: ReadonlyMap<bigint, Transfer>,
    named: ReadonlyMap<bigint, string>,
  ): Applied | null {
    const { chart } = this.deps;
    let command: Command;
    let fields: CommandFields;
    let hold: HoldFacts | null = null;
    const timestamps = [t.timestamp];
    if (type === "capture" || type === "release") {
      const h = found.get(t.pending_id);
      if (!h) return null;
      hold = { id: h.id, debitAccountId: h.debit_account_id, amount: h.amount, ledger: h.ledger };
      command = { type, operationId: t.id, holdId: t.pending_id };
      fields = { holdId: formatOperationId(t.pending_id) };
    } else {
      const currency = currencyByLedger(chart, t.ledger);
      if (!currency) return null;
      const base = { amount: t.amount.toString(), currency: currency.code };
      if (type === "transfer") {
        const fee =
          (t.flags & TransferFlags.linked) !== 0
            ? found.get(chart.space.feeLegId(t.id))
            : undefined;
        if ((t.flags & TransferFlags.linked) !== 0 && !fee) return null;
        if (fee) timestamps.push(fee.timestamp);
        const fromUserId = named.get(t.debit_account_id) as string;
        const toUserId = named.get(t.credit_account_id) as string;
        command = {
          type,
          operationId: t.id,
          fromUserId,
          toUserId,
          amount: t.amount,
          fee: fee?.amount ?? 0n,
          currency,
        };
        fields = { fromUserId, toUserId, ...base, ...(fee ? { fee: fee.amount.toString() } : {}) };
      } else {
        const userId = named.get(
          type === "credit" ? t.credit_account_id : t.debit_account_id,
        ) as string;
        command =
          type === "hold"
            ? {
                type,
                operationId: t.id,
                userId,
                amount: t.amount,
                currency,
                timeoutSeconds: t.timeout,
              }
            : { type, operationId: t.id, userId, amount: t.amount, currency };
        fields = { userId, ...base };
      }
    }
    const op: Operation = {
      id: t.id,
      decoded: {
        kind: "command",
        operationId: t.id,
        type,
        command,
        fields,
        fingerprint: t.user_data_128,
      },
      publishedAtMs: 0,
    };
    return { op, verdict: { kind: "applied", replay: true, timestamps, hold, ledger: t.ledger } };
  }

  /** Scans every intervalMs until stopped; a failed scan is logged and retried next interval. */
  start(): { stop(): Promise<void> } {
    return runPeriodically({
      where: "the event recovery",
      what: "event recovery scan",
      intervalMs: this.deps.limits.intervalMs,
      log: this.deps.log,
      run: async () => void (await this.scan()),
    });
  }
}
