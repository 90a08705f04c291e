// The finance audit: reads the ledger (through the port only) and the events stream, recomputes
// every balance from the transfers, and checks the books and the exactly-once promise.
//
// A consistent cut while the service runs: the audit first reads the newest transfer timestamp T
// and the events stream's last sequence L, and judges operations and events by what is at or
// before them. Accounts are read in pages after T, each page between two reads of the newest
// transfer timestamp (A before, B after); the fold then continues past T, and each page is compared
// with the fold at its A. An account a transfer touched between A and B is read again. So stored
// balances are compared at the moment they were read, and the cut's totals are the fold's at T plus
// every unexplained difference.
//
// Stages: cut → events → accounts → transfers up to T → accounts compared → late events and
// missing events checked again → report. All reads are bounded pages; memory grows with the number
// of accounts, holds and events (about a hundred bytes each), never with a page.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { currencyByLedger, userNameAccountId, type Chart } from "../domain/accounts.ts";
import { COMMAND_TYPE_OF_CODE } from "../domain/commands.ts";
import { formatOperationId } from "../domain/ids.ts";
import { TransferCode } from "../domain/plan.ts";
import { classify } from "../domain/transfer-kind.ts";
import type { Balances, Ledger } from "../ledger/port.ts";
import { checkAccount, isChartUserAccount } from "./chart-check.ts";
import { EventIndex, hashOf } from "./event-index.ts";
import {
  LedgerFold,
  matchesWithExpiry,
  predictWithExpiry,
  zeroBalances,
  type FoldHold,
  type Uncertain,
} from "./fold.ts";
import { expectedApplied, expectedExpired, type AppliedInput } from "./operations.ts";
import {
  Findings,
  type AuditCounts,
  type AuditReport,
  type CurrencyTotals,
  type OpenHold,
} from "./report.ts";
import { accountPages, eventPages, lastEventSequence, transferPages } from "./sources.ts";
import { newestTransferTimestamp } from "../ledger/queries.ts";
import { LEDGER_EVENTS_MAX } from "../config/limits.ts";
import { NS_PER_MS } from "../lib/nanoseconds.ts";

export type AuditDeps = {
  ledger: Ledger;
  js: JetStreamClient;
  jsm: JetStreamManager;
  chart: Chart;
  eventsStream: string;
  /**
   * The ledger serves other deployments too (ledger.shared): audit only this deployment's
   * transfers (its tag) and accounts (ids in its id space); the others' are counted and left out.
   */
  shared?: boolean;
};

export type AuditOptions = {
  /** How long after a deadline a reader may still see a hold held (TigerBeetle expires in the background). */
  expiryLagMs: number;
  /** An operation this young at the cut may still lack its event: in flight, not missing. */
  settleMs: number;
  /** The events stream's max age (0 = forever): older operations' events may be retired. */
  eventsMaxAgeMs: number;
  holdsListMax: number;
  findingsPerKindMax: number;
  /** Missing events looked up again one by one at the end, at most. */
  recheckMax: number;
  /** Accounts, transfers or events per read; the ledger takes at most 8189. */
  pageMax: number;
  /** Rounds of re-reading accounts a transfer touched while they were read. */
  rereadRoundsMax: number;
  /** Wall time in nanoseconds. */
  wallNs: () => bigint;
};

export const auditDefaults: AuditOptions = {
  expiryLagMs: 2_000,
  settleMs: 65_000,
  eventsMaxAgeMs: 0,
  holdsListMax: 50,
  findingsPerKindMax: 100,
  recheckMax: 10_000,
  pageMax: LEDGER_EVENTS_MAX,
  rereadRoundsMax: 8,
  wallNs: () => BigInt(Date.now()) * NS_PER_MS,
};

type ReadPage = { a: bigint; b: bigint; w0: bigint; w1: bigint; ids: bigint[] };
type Missing = {
  id: bigint;
  timestamp: bigint;
  subject: string;
  hash: string | null;
  what: string;
};
type Watch = { page: ReadPage; suspects: Map<bigint, { stored: Balances; predicted: Balances }> };

export async function runAudit(
  deps: AuditDeps,
  options: Partial<AuditOptions> = {},
): Promise<AuditReport> {
  return new AuditRun(deps, { ...auditDefaults, ...options }).run();
}

class AuditRun {
  private readonly findings: Findings;
  private readonly fold: LedgerFold;
  private readonly events: EventIndex;
  /** userId of every user account whose id and data are the chart's. */
  private readonly names = new Map<bigint, string>();
  private readonly stored = new Map<bigint, Balances>();
  private readonly perLedger = new Map<
    number,
    { accounts: number; transfers: number; totals: Balances; diff: Balances }
  >();
  private pages: ReadPage[] = [];
  private readonly missing: Missing[] = [];
  private readonly burnedOps: bigint[] = [];
  private readonly expiryMarked = new Set<bigint>();
  private readonly notes: string[] = [];
  private readonly counts: AuditCounts = {
    accounts: 0,
    transfers: 0,
    applied: 0,
    rejected: 0,
    feeLegs: 0,
    expiryMarkers: 0,
    events: 0,
    expiredEvents: 0,
    accountsVerified: 0,
    accountsUnverified: 0,
    inFlight: 0,
    afterCut: 0,
  };
  private pendingMain: Transfer | null = null;
  private cut = 0n;
  private eventsLast = 0;
  private forwardedTo = 0n;
  private readonly lagNs: bigint;
  private readonly startedNs: bigint;
  /** The transfer filter: this deployment's tag on a shared ledger, everything (0) otherwise. */
  private readonly ownTag: bigint;
  /** Accounts of other deployments left out (shared ledgers only). */
  private otherAccounts = 0;

  constructor(
    private readonly deps: AuditDeps,
    private readonly opts: AuditOptions,
  ) {
    this.findings = new Findings(opts.findingsPerKindMax);
    this.events = new EventIndex(deps.chart.space);
    this.ownTag = deps.shared === true ? deps.chart.space.tag : 0n;
    this.lagNs = BigInt(opts.expiryLagMs) * NS_PER_MS;
    this.fold = new LedgerFold(this.lagNs * 4n + 60_000n * NS_PER_MS);
    this.startedNs = opts.wallNs();
  }

  async run(): Promise<AuditReport> {
    const started = Date.now();
    this.cut = await newestTransferTimestamp(this.deps.ledger);
    const stream = await lastEventSequence(this.deps.jsm, this.deps.eventsStream);
    this.eventsLast = stream.last;
    await this.readEvents(stream.first);
    await this.readAccounts();
    if (this.cut > 0n) await this.scanCut();
    const totals = this.cutTotals();
    const holds = this.openHolds();
    await this.verifyAccounts();
    await this.checkLeftoverEvents();
    return this.report(totals, holds, Date.now() - started);
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────

  private async readEvents(first: number): Promise<void> {
    for await (const page of eventPages(
      this.deps.js,
      this.deps.eventsStream,
      first,
      this.eventsLast,
      Math.min(this.opts.pageMax, 1000),
    )) {
      for (const m of page) {
        const problem = this.events.add(m);
        if (problem?.kind === "malformed_event")
          this.findings.add("malformed_event", `${problem.subject}: ${problem.detail}`, {
            seq: problem.seq,
          });
        if (problem?.kind === "duplicate_event") {
          this.findings.add(
            "duplicate_event",
            `a second event for ${formatOperationId(problem.id)} on ${problem.subject}`,
            { id: formatOperationId(problem.id), seq: problem.seq, firstSeq: problem.firstSeq },
          );
        }
      }
    }
    this.counts.events = this.events.count;
    this.counts.expiredEvents = this.events.expired.size;
  }

  // ── accounts ──────────────────────────────────────────────────────────────────────────────

  private async readAccounts(): Promise<void> {
    const heads: Array<{ account: Account; head: string }> = [];
    const tails = new Map<bigint, string>();
    const { ledger } = this.deps;
    let a = await newestTransferTimestamp(ledger);
    let w0 = this.opts.wallNs();
    for await (const page of accountPages(ledger, this.opts.pageMax)) {
      const w1 = this.opts.wallNs();
      const b = await newestTransferTimestamp(ledger);
      this.pages.push({ a, b, w0, w1, ids: page.map((x) => x.id) });
      for (const account of page) this.addAccount(account, heads, tails);
      a = b;
      w0 = this.opts.wallNs();
    }
    for (const { account, head } of heads) {
      const tail = tails.get(userNameAccountId(this.deps.chart.space, account.id));
      if (this.deps.shared === true) {
        // Its name account derives in this deployment's id space only if the account is ours.
        if (tail === undefined || !isChartUserAccount(this.deps.chart, account, head + tail))
          this.otherAccounts += 1;
        else {
          this.include(account);
          this.nameUser(account, head + tail);
        }
      } else if (tail === undefined)
        this.findings.add("foreign_account", "a long userId's name account is missing", {
          accountId: account.id,
        });
      else this.nameUser(account, head + tail);
    }
    if (this.otherAccounts > 0)
      this.notes.push(
        `${this.otherAccounts} account(s) of other deployments on this shared ledger left out`,
      );
  }

  private include(account: Account): void {
    this.counts.accounts += 1;
    this.fold.addAccount(account);
    this.stored.set(account.id, {
      debits_pending: account.debits_pending,
      debits_posted: account.debits_posted,
      credits_pending: account.credits_pending,
      credits_posted: account.credits_posted,
    });
    this.ledgerOf(account.ledger).accounts += 1;
  }

  /** On a shared ledger: whether an account is this deployment's (null: a long userId, decided later). */
  private ownAccount(account: Account, verdict: ReturnType<typeof checkAccount>): boolean | null {
    if ("problem" in verdict || verdict.kind === "deployment") return false;
    if (verdict.head === null) return true; // the chart's system accounts (ids checked) and name accounts (never move money)
    if (verdict.head.continued) return null;
    return isChartUserAccount(this.deps.chart, account, verdict.head.name);
  }

  private addAccount(
    account: Account,
    heads: Array<{ account: Account; head: string }>,
    tails: Map<bigint, string>,
  ): void {
    const verdict = checkAccount(this.deps.chart, account);
    if (this.deps.shared === true) {
      const own = this.ownAccount(account, verdict);
      if (own === false) {
        this.otherAccounts += 1;
        return;
      }
      if (own === null && !("problem" in verdict) && verdict.head !== null) {
        heads.push({ account, head: verdict.head.name });
        return;
      }
    }
    this.include(account);
    if ("problem" in verdict) {
      this.findings.add("foreign_account", verdict.problem, {
        accountId: account.id,
        ledger: account.ledger,
        code: account.code,
      });
      return;
    }
    if (verdict.tail !== null) tails.set(account.id, verdict.tail);
    if (verdict.head === null) return;
    if (verdict.head.continued) heads.push({ account, head: verdict.head.name });
    else this.nameUser(account, verdict.head.name);
  }

  private nameUser(account: Account, userId: string): void {
    if (isChartUserAccount(this.deps.chart, account, userId)) this.names.set(account.id, userId);
    else
      this.findings.add(
        "foreign_account",
        `a user account that is not the one the service creates for ${JSON.stringify(userId)}`,
        { accountId: account.id },
      );
  }

  private ledgerOf(ledger: number): {
    accounts: number;
    transfers: number;
    totals: Balances;
    diff: Balances;
  } {
    let entry = this.perLedger.get(ledger);
    if (!entry)
      this.perLedger.set(
        ledger,
        (entry = { accounts: 0, transfers: 0, totals: zeroBalances(), diff: zeroBalances() }),
      );
    return entry;
  }

  // ── transfers up to the cut ──────────────────────────────────────────────────────────────

  private async scanCut(): Promise<void> {
    for await (const page of transferPages(
      this.deps.ledger,
      1n,
      this.cut,
      this.opts.pageMax,
      this.ownTag,
    )) {
      for (const t of page) this.onCutTransfer(t);
    }
    if (this.pendingMain) this.brokenChain(this.pendingMain);
    this.fold.expireThrough(this.cut);
    this.forwardedTo = this.cut;
    this.checkExpiries();
  }

  private onCutTransfer(t: Transfer): void {
    this.counts.transfers += 1;
    this.ledgerOf(t.ledger).transfers += 1;
    const main = this.pendingMain;
    if (main && t.id !== this.deps.chart.space.feeLegId(main.id)) this.brokenChain(main);
    for (const issue of this.fold.apply(t)) {
      const ids = {
        transferId: formatOperationId(t.id),
        ...(issue.accountId === null ? {} : { accountId: issue.accountId }),
      };
      this.findings.add(
        issue.kind === "limit_exceeded" ? "negative_available" : "invalid_transfer",
        `${issue.kind}: ${issue.detail}`,
        ids,
      );
    }
    const c = classify(this.deps.chart, t);
    switch (c.kind) {
      case "foreign":
        this.findings.add("foreign_transfer", c.detail, {
          transferId: formatOperationId(t.id),
          timestamp: t.timestamp,
        });
        return;
      case "fee_leg":
        if (main && t.id === this.deps.chart.space.feeLegId(main.id)) {
          this.pendingMain = null;
          this.counts.feeLegs += 1;
          this.onApplied(main, t);
        } else
          this.findings.add("foreign_transfer", "a fee leg that does not follow its transfer", {
            transferId: formatOperationId(t.id),
          });
        return;
      case "applied":
        if (c.type === "transfer" && (t.flags & TransferFlags.linked) !== 0)
          this.pendingMain = t; // linked: its fee leg comes next
        else this.onApplied(t, null);
        return;
      case "rejection":
        this.onRejection(t, c.type, c.reason);
        return;
      case "expiry":
        this.onExpiryMarker(t, c.holdId);
        return;
    }
  }

  private brokenChain(main: Transfer): void {
    this.pendingMain = null;
    this.findings.add("invalid_transfer", "a linked transfer without its fee leg right after it", {
      operationId: formatOperationId(main.id),
    });
    this.onApplied(main, null);
  }

  private onApplied(main: Transfer, fee: Transfer | null): void {
    const type = COMMAND_TYPE_OF_CODE.get(main.user_data_32);
    if (type === undefined) return;
    const hold =
      type === "capture" || type === "release"
        ? (this.fold.holds.get(main.pending_id) ?? null)
        : null;
    const input: AppliedInput = {
      chart: this.deps.chart,
      type,
      main,
      fee,
      hold,
      names: this.names,
      balanceOf: (a) => this.fold.accounts.get(a)?.bal ?? zeroBalances(),
    };
    const expected = expectedApplied(input);
    if ("problem" in expected) {
      this.findings.add("foreign_transfer", expected.problem, {
        transferId: formatOperationId(main.id),
        timestamp: main.timestamp,
      });
      return;
    }
    this.counts.applied += 1;
    const record = this.events.operations.get(main.id);
    const hash = hashOf(expected.event.data);
    if (!record)
      return this.noteMissing(
        main.id,
        main.timestamp,
        expected.event.subject,
        hash,
        `${type} applied`,
      );
    record.matched = true;
    if (record.hash === hash) return;
    if (
      record.event === expected.event.payload["event"] &&
      this.alternatives(input, expected.touched).includes(record.hash)
    )
      return;
    this.findings.add(
      "event_mismatch",
      `the ${record.event} event differs from the ${type} the ledger records; expected ${JSON.stringify(expected.event.payload)}`,
      { operationId: formatOperationId(main.id), seq: record.seq },
    );
  }

  /** Hashes of the event with each balance a reader could have seen, given holds expiring right then. */
  private alternatives(input: AppliedInput, touched: bigint[]): string[] {
    const now = this.fold.now;
    const uncertain = this.fold.uncertain(now - this.lagNs, now);
    if (uncertain.length === 0) return [];
    let combos: Array<Map<bigint, Balances>> = [new Map<bigint, Balances>()];
    for (const account of touched) {
      const fold = this.fold.accounts.get(account);
      if (!fold) return [];
      const { predicted, debitSide } = predictWithExpiry(fold, uncertain, now - this.lagNs);
      const options: Balances[] = [predicted];
      let extra = 0n;
      for (let i = debitSide.length - 1; i >= 0 && options.length < 8; i -= 1) {
        extra += debitSide[i] as bigint;
        options.push({ ...predicted, debits_pending: predicted.debits_pending + extra });
      }
      combos = combos.flatMap((m) => options.map((o) => new Map([...m, [account, o]])));
    }
    return combos.map((m) => {
      const e = expectedApplied({ ...input, balanceOf: (a) => m.get(a) ?? zeroBalances() });
      return "problem" in e ? "" : hashOf(e.event.data);
    });
  }

  private onRejection(t: Transfer, type: string, reason: string): void {
    this.counts.rejected += 1;
    const { operationId, record, burned } = this.events.rejectionOf(t.id);
    if (burned) this.burnedOps.push(operationId);
    const id = formatOperationId(operationId);
    if (!record)
      return this.noteMissing(
        operationId,
        t.timestamp,
        `billing.evt.rejected.${id}`,
        null,
        `${type} rejected as ${reason} (marker ${formatOperationId(t.id)})`,
      );
    record.matched = true;
    const r = record.rejected;
    const why =
      r === null
        ? `the event is ${record.event}`
        : r.command !== type
          ? `the event names command ${r.command}`
          : r.reason !== reason
            ? `the event gives reason ${r.reason}`
            : r.fingerprints !== null && !r.fingerprints.includes(t.user_data_128)
              ? "the event's fields are not the rejected command's"
              : null;
    if (why !== null)
      this.findings.add("event_mismatch", `the ledger rejected ${type} as ${reason} but ${why}`, {
        operationId: id,
        seq: record.seq,
        marker: formatOperationId(t.id),
      });
  }

  private onExpiryMarker(t: Transfer, holdId: bigint): void {
    this.counts.expiryMarkers += 1;
    this.expiryMarked.add(holdId);
    const hold = this.fold.holds.get(holdId);
    const id = formatOperationId(holdId);
    if (
      !hold ||
      hold.code !== TransferCode.hold ||
      hold.timeout === 0 ||
      hold.status !== "expired"
    ) {
      this.findings.add(
        "expiry_mismatch",
        `an expiry marker for a hold that is ${hold ? (hold.timeout === 0 ? "without a timeout" : hold.status) : "not in the ledger"}`,
        { holdId: id, marker: formatOperationId(t.id) },
      );
      return;
    }
    const expected = expectedExpired(this.deps.chart, hold, this.names, t.timestamp);
    const record = this.events.expired.get(holdId);
    if (!expected) return;
    if (!record)
      return this.noteMissing(
        holdId,
        t.timestamp,
        expected.subject,
        hashOf(expected.data),
        "hold expired",
      );
    record.matched = true;
    if (record.hash !== hashOf(expected.data))
      this.findings.add(
        "event_mismatch",
        `the expired event differs from the hold and its marker; expected ${JSON.stringify(expected.payload)}`,
        { holdId: id, seq: record.seq },
      );
  }

  private noteMissing(
    id: bigint,
    timestamp: bigint,
    subject: string,
    hash: string | null,
    what: string,
  ): void {
    if (
      this.opts.eventsMaxAgeMs > 0 &&
      timestamp < this.cut - BigInt(this.opts.eventsMaxAgeMs) * NS_PER_MS
    )
      return; // retired by max_age
    if (this.missing.length < this.opts.recheckMax)
      this.missing.push({ id, timestamp, subject, hash, what });
    else if (timestamp <= this.cut - BigInt(this.opts.settleMs) * NS_PER_MS)
      this.findings.add("missing_event", `${what}, no event on ${subject}`, {
        id: formatOperationId(id),
      });
    else this.counts.inFlight += 1;
  }

  /** Holds whose deadline passed long before the cut must have their expiry marker by then. */
  private checkExpiries(): void {
    const settled = this.cut - BigInt(this.opts.settleMs) * NS_PER_MS;
    for (const hold of this.fold.holds.values()) {
      if (
        hold.status === "expired" &&
        hold.expiresAt < settled &&
        hold.code === TransferCode.hold &&
        !this.expiryMarked.has(hold.id)
      ) {
        this.findings.add("missing_expiry", "the hold expired but no expiry marker records it", {
          holdId: formatOperationId(hold.id),
          deadline: hold.expiresAt,
        });
      }
    }
  }

  // ── totals and holds at the cut ───────────────────────────────────────────────────────────

  private cutTotals(): Map<number, Balances> {
    const totals = new Map<number, Balances>();
    for (const a of this.fold.accounts.values()) {
      const t = totals.get(a.ledger) ?? zeroBalances();
      t.debits_pending += a.bal.debits_pending;
      t.debits_posted += a.bal.debits_posted;
      t.credits_pending += a.bal.credits_pending;
      t.credits_posted += a.bal.credits_posted;
      totals.set(a.ledger, t);
    }
    return totals;
  }

  private openHolds(): { total: number; listed: OpenHold[] } {
    const open: FoldHold[] = [];
    for (const h of this.fold.openHolds())
      if (h.timeout === 0 || h.expiresAt > this.startedNs) open.push(h);
    open.sort((x, y) => (x.timestamp < y.timestamp ? -1 : 1));
    const listed = open.slice(0, this.opts.holdsListMax).map((h): OpenHold => ({
      holdId: formatOperationId(h.id),
      userId: this.names.get(h.debit) ?? "?",
      currency: currencyByLedger(this.deps.chart, h.ledger)?.code ?? String(h.ledger),
      amount: h.amount.toString(),
      ageMs: Number((this.startedNs - h.timestamp) / NS_PER_MS),
      expiresInMs: h.timeout === 0 ? null : Number((h.expiresAt - this.startedNs) / NS_PER_MS),
    }));
    return { total: open.length, listed };
  }

  // ── stored balances against the fold ──────────────────────────────────────────────────────

  private async verifyAccounts(): Promise<void> {
    let pages = this.pages;
    for (let round = 1; pages.length > 0; round += 1) {
      const ambiguous = await this.forward(pages);
      if (ambiguous.length === 0) return;
      if (round >= this.opts.rereadRoundsMax) {
        this.counts.accountsUnverified += ambiguous.length;
        this.notes.push(
          `${ambiguous.length} account(s) moved every time they were read (${round} rounds); not verified this time`,
        );
        return;
      }
      pages = await this.reread(ambiguous);
    }
  }

  /** Continues the fold past the cut, comparing each page at its A; returns accounts to read again. */
  private async forward(pages: ReadonlyArray<ReadPage>): Promise<bigint[]> {
    const queue = [...pages].sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : 0));
    const end = pages.reduce((m, p) => (p.b > m ? p.b : m), this.forwardedTo);
    const watching: Watch[] = [];
    const ambiguous: bigint[] = [];
    if (end > this.forwardedTo) {
      for await (const page of transferPages(
        this.deps.ledger,
        this.forwardedTo + 1n,
        end,
        this.opts.pageMax,
        this.ownTag,
      )) {
        for (const t of page) {
          while (queue[0] && queue[0].a < t.timestamp)
            watching.push(this.compare(queue.shift() as ReadPage));
          this.finish(watching, t.timestamp);
          for (const w of watching) {
            for (const id of [t.debit_account_id, t.credit_account_id])
              if (w.suspects.delete(id)) ambiguous.push(id);
          }
          this.applyForward(t);
        }
      }
    }
    while (queue.length > 0) watching.push(this.compare(queue.shift() as ReadPage));
    this.finish(watching, null);
    this.forwardedTo = end;
    return ambiguous;
  }

  private applyForward(t: Transfer): void {
    for (const id of [t.debit_account_id, t.credit_account_id]) {
      if (id !== 0n && !this.fold.accounts.has(id)) {
        this.fold.addAccount({
          id,
          ledger: t.ledger,
          code: 0,
          flags: 0,
          debits_pending: 0n,
          debits_posted: 0n,
          credits_pending: 0n,
          credits_posted: 0n,
          user_data_128: 0n,
          user_data_64: 0n,
          user_data_32: 0,
          reserved: 0,
          timestamp: 0n,
        });
      }
    }
    this.fold.apply(t); // issues after the cut belong to the next audit
  }

  private compare(page: ReadPage): Watch {
    const uncertain = this.fold.uncertain(page.w0 - this.lagNs, page.w1 + this.lagNs);
    const byAccount = new Map<bigint, Uncertain[]>();
    for (const u of uncertain) {
      for (const id of [u.hold.debit, u.hold.credit])
        byAccount.set(id, [...(byAccount.get(id) ?? []), u]);
    }
    const watch: Watch = { page, suspects: new Map() };
    for (const id of page.ids) {
      const account = this.fold.accounts.get(id);
      const stored = this.stored.get(id);
      if (!account || !stored) continue;
      const { predicted, debitSide, creditSide } = predictWithExpiry(
        account,
        byAccount.get(id) ?? [],
        page.w0 - this.lagNs,
      );
      if (matchesWithExpiry(stored, predicted, debitSide, creditSide))
        this.counts.accountsVerified += 1;
      else watch.suspects.set(id, { stored, predicted });
    }
    return watch;
  }

  /** Mismatches of pages whose read ended before `ts` (all when null) are final. */
  private finish(watching: Watch[], ts: bigint | null): void {
    for (let i = watching.length - 1; i >= 0; i -= 1) {
      const w = watching[i] as Watch;
      if (ts !== null && w.page.b >= ts) continue;
      watching.splice(i, 1);
      for (const [id, { stored, predicted }] of w.suspects) this.mismatch(id, stored, predicted);
    }
  }

  private mismatch(id: bigint, stored: Balances, predicted: Balances): void {
    const account = this.fold.accounts.get(id);
    const diff = this.ledgerOf(account?.ledger ?? 0).diff;
    const fields = [
      "debits_pending",
      "debits_posted",
      "credits_pending",
      "credits_posted",
    ] as const;
    const deltas = fields
      .filter((f) => stored[f] !== predicted[f])
      .map((f) => {
        diff[f] += stored[f] - predicted[f];
        return `${f} ${stored[f]} (transfers give ${predicted[f]})`;
      });
    const owner = this.names.get(id);
    this.findings.add("account_mismatch", `stored ${deltas.join(", ")}`, {
      accountId: id,
      ...(owner === undefined ? {} : { userId: owner }),
      ledger: account?.ledger ?? "?",
    });
  }

  private async reread(ids: ReadonlyArray<bigint>): Promise<ReadPage[]> {
    const pages: ReadPage[] = [];
    for (let i = 0; i < ids.length; i += this.opts.pageMax) {
      const chunk = ids.slice(i, i + this.opts.pageMax);
      const a = await newestTransferTimestamp(this.deps.ledger);
      const w0 = this.opts.wallNs();
      const accounts = await this.deps.ledger.lookupAccounts([...chunk]);
      const w1 = this.opts.wallNs();
      const b = await newestTransferTimestamp(this.deps.ledger);
      for (const x of accounts)
        this.stored.set(x.id, {
          debits_pending: x.debits_pending,
          debits_posted: x.debits_posted,
          credits_pending: x.credits_pending,
          credits_posted: x.credits_posted,
        });
      pages.push({ a, b, w0, w1, ids: accounts.map((x) => x.id) });
    }
    return pages;
  }

  // ── events the scan did not match ─────────────────────────────────────────────────────────

  private async checkLeftoverEvents(): Promise<void> {
    await this.unmatchedEvents();
    await this.recheckMissing();
    await this.doubleOutcomes();
  }

  /** Events no transfer up to the cut claimed: after the cut, or without a ledger record. */
  private async unmatchedEvents(): Promise<void> {
    const loose: Array<{ id: bigint; seq: number; lookup: bigint[]; what: string }> = [];
    for (const [id, r] of this.events.operations)
      if (!r.matched)
        loose.push({
          id,
          seq: r.seq,
          lookup: [id, this.deps.chart.space.burnedMarkerId(id)],
          what: `${r.event} event`,
        });
    for (const [id, r] of this.events.expired)
      if (!r.matched)
        loose.push({
          id,
          seq: r.seq,
          lookup: [this.deps.chart.space.expiryMarkerId(id)],
          what: "expired event",
        });
    const step = Math.floor(this.opts.pageMax / 2);
    for (let i = 0; i < loose.length; i += step) {
      const chunk = loose.slice(i, i + step);
      const found = new Map(
        (await this.deps.ledger.lookupTransfers(chunk.flatMap((l) => l.lookup))).map((t) => [
          t.id,
          t,
        ]),
      );
      for (const l of chunk) {
        const records = l.lookup
          .map((id) => found.get(id))
          .filter((t): t is Transfer => t !== undefined);
        if (records.some((t) => t.timestamp > this.cut)) this.counts.afterCut += 1;
        else if (records.length === 0)
          this.findings.add("orphan_event", `${withArticle(l.what)} without a ledger record`, {
            id: formatOperationId(l.id),
            seq: l.seq,
          });
        else
          this.findings.add(
            "orphan_event",
            `${withArticle(l.what)} whose ledger record is not an operation of the service`,
            { id: formatOperationId(l.id), seq: l.seq },
          );
      }
    }
  }

  /** Operations whose event was not in the stream when it was read: look each up once more. */
  private async recheckMissing(): Promise<void> {
    const settled = this.cut - BigInt(this.opts.settleMs) * NS_PER_MS;
    for (const m of this.missing) {
      // The stream's own API, not a direct get: it answers whether or not the stream allows direct reads.
      const stored = await this.deps.jsm.streams.getMessage(this.deps.eventsStream, {
        last_by_subj: m.subject,
      });
      if (stored) {
        if (m.hash !== null && hashOf(stored.data) !== m.hash)
          this.findings.add(
            "event_mismatch",
            `the late event on ${m.subject} differs from the ledger record`,
            { id: formatOperationId(m.id), seq: stored.seq },
          );
      } else if (m.timestamp <= settled) {
        this.findings.add("missing_event", `${m.what}, but ${m.subject} holds no event`, {
          id: formatOperationId(m.id),
          ledgerTimestamp: m.timestamp,
        });
      } else {
        this.counts.inFlight += 1;
      }
    }
    if (this.counts.inFlight > 0)
      this.notes.push(
        `${this.counts.inFlight} operation(s) applied within ${this.opts.settleMs} ms of the cut have no event yet (in flight)`,
      );
  }

  /** An operation rejected under its burned-marker id must have nothing under its own id. */
  private async doubleOutcomes(): Promise<void> {
    for (let i = 0; i < this.burnedOps.length; i += this.opts.pageMax) {
      for (const t of await this.deps.ledger.lookupTransfers(
        this.burnedOps.slice(i, i + this.opts.pageMax),
      )) {
        this.findings.add(
          "double_outcome",
          "a rejection under the burned-marker id, and a transfer under the operation id itself",
          { operationId: formatOperationId(t.id) },
        );
      }
    }
  }

  // ── report ────────────────────────────────────────────────────────────────────────────────

  private report(
    totals: Map<number, Balances>,
    holds: { total: number; listed: OpenHold[] },
    durationMs: number,
  ): AuditReport {
    const currencies: CurrencyTotals[] = this.deps.chart.currencies.map((c) => {
      const entry = this.ledgerOf(c.ledger);
      const t = totals.get(c.ledger) ?? zeroBalances();
      const d = entry.diff;
      const sum = {
        dp: t.debits_posted + d.debits_posted,
        cp: t.credits_posted + d.credits_posted,
        dn: t.debits_pending + d.debits_pending,
        cn: t.credits_pending + d.credits_pending,
      };
      const balanced = sum.dp === sum.cp && sum.dn === sum.cn;
      if (!balanced)
        this.findings.add(
          "unbalanced_ledger",
          `${c.code}: debits posted ${sum.dp} / credits posted ${sum.cp}, debits pending ${sum.dn} / credits pending ${sum.cn}`,
          { ledger: c.ledger },
        );
      return {
        currency: c.code,
        ledger: c.ledger,
        accounts: entry.accounts,
        transfers: entry.transfers,
        debitsPosted: String(sum.dp),
        creditsPosted: String(sum.cp),
        debitsPending: String(sum.dn),
        creditsPending: String(sum.cn),
        balanced,
      };
    });
    return {
      ok: this.findings.total === 0,
      cut: { ledgerTimestamp: this.cut.toString(), eventsLastSequence: this.eventsLast },
      durationMs,
      currencies,
      counts: this.counts,
      openHolds: holds,
      findings: {
        total: this.findings.total,
        byKind: this.findings.byKind,
        listed: this.findings.listed,
      },
      notes: this.notes,
    };
  }
}

/** "a credited event", "an expired event": the article a finding's noun takes. */
function withArticle(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? "an" : "a"} ${noun}`;
}
