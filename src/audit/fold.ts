// The audit's own ledger: every account's balances recomputed from the transfers alone, by the
// ledger's rules (TigerBeetle's two-phase semantics, docs/ledger.md and test/ledger/spec-cases.ts):
//   - a pending transfer adds its amount to the debit account's debits_pending and the credit
//     account's credits_pending;
//   - a post moves the posted amount from pending to posted and releases the rest of the hold;
//   - a void releases the whole hold;
//   - a hold with a timeout whose deadline (timestamp + timeout) passed before a transfer, and that
//     was neither posted nor voided, is expired: released without a transfer of its own;
//   - an ordinary transfer adds to debits_posted and credits_posted.
// Transfers are applied in timestamp order. Each breach of the rules is returned as an issue; the
// fold never throws on bad data, because bad data is what the audit is looking for.
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { Heap } from "../lib/heap.ts";
import type { Balances } from "../ledger/port.ts";
import { NS_PER_SECOND } from "../lib/nanoseconds.ts";

export type FoldAccount = {
  id: bigint;
  ledger: number;
  code: number;
  flags: number;
  bal: Balances;
  transfers: number;
};

export type HoldStatus = "open" | "posted" | "voided" | "expired";

export type FoldHold = {
  id: bigint;
  debit: bigint;
  credit: bigint;
  amount: bigint;
  ledger: number;
  code: number;
  timestamp: bigint;
  timeout: number;
  expiresAt: bigint;
  status: HoldStatus;
  resolvedAt: bigint;
};

export type FoldIssueKind =
  | "unknown_account"
  | "ledger_mismatch"
  | "timestamp_order"
  | "pending_not_found"
  | "pending_not_open"
  | "pending_accounts_differ"
  | "post_exceeds_pending"
  | "void_amount_differs"
  | "limit_exceeded";

export type FoldIssue = {
  kind: FoldIssueKind;
  transferId: bigint;
  accountId: bigint | null;
  detail: string;
};

/** A hold whose expiry the ledger may or may not have applied yet when it was read. */
export type Uncertain = { hold: FoldHold; expiredInFold: boolean };

const NO_DEADLINE = (1n << 64n) - 1n;

export function zeroBalances(): Balances {
  return { debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n };
}

export function balancesOf(a: Balances): Balances {
  return {
    debits_pending: a.debits_pending,
    debits_posted: a.debits_posted,
    credits_pending: a.credits_pending,
    credits_posted: a.credits_posted,
  };
}

function expiresBefore(a: FoldHold, b: FoldHold): boolean {
  return a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.timestamp < b.timestamp);
}

/** Every hold due at or before `ts`, in expiry order, without removing any. */
function dueThrough(due: Heap<FoldHold>, ts: bigint): FoldHold[] {
  return due
    .topWhere((h) => h.expiresAt <= ts)
    .sort((a, b) => (expiresBefore(a, b) ? -1 : expiresBefore(b, a) ? 1 : 0));
}

export class LedgerFold {
  readonly accounts = new Map<bigint, FoldAccount>();
  readonly holds = new Map<bigint, FoldHold>();
  /** Open holds by deadline, then creation timestamp (the ledger's own tie-break): the fold expires them in the ledger's order. */
  private readonly due = new Heap<FoldHold>(expiresBefore);
  /** Holds the fold expired recently, in deadline order; kept for `keepNs` behind the fold's time. */
  private recent: FoldHold[] = [];
  /** The timestamp of the last transfer applied (or of the last expireThrough). */
  now = 0n;

  constructor(private readonly keepNs: bigint) {}

  addAccount(a: Account): FoldAccount {
    const fold: FoldAccount = {
      id: a.id,
      ledger: a.ledger,
      code: a.code,
      flags: a.flags,
      bal: zeroBalances(),
      transfers: 0,
    };
    this.accounts.set(a.id, fold);
    return fold;
  }

  apply(t: Transfer): FoldIssue[] {
    const issues: FoldIssue[] = [];
    if (t.timestamp <= this.now)
      issues.push(
        issue("timestamp_order", t, null, `timestamp ${t.timestamp} is not after ${this.now}`),
      );
    this.expireThrough(t.timestamp);
    this.now = t.timestamp;
    if (
      (t.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !==
      0
    ) {
      this.resolve(t, issues);
      return issues;
    }
    const dr = this.accounts.get(t.debit_account_id);
    const cr = this.accounts.get(t.credit_account_id);
    if (!dr || !cr) {
      issues.push(
        issue(
          "unknown_account",
          t,
          dr ? t.credit_account_id : t.debit_account_id,
          "the transfer names an account that is not in the ledger",
        ),
      );
      return issues;
    }
    if (dr.ledger !== t.ledger || cr.ledger !== t.ledger)
      issues.push(
        issue(
          "ledger_mismatch",
          t,
          null,
          `transfer on ledger ${t.ledger} between accounts on ${dr.ledger} and ${cr.ledger}`,
        ),
      );
    if ((t.flags & TransferFlags.pending) !== 0) {
      dr.bal.debits_pending += t.amount;
      cr.bal.credits_pending += t.amount;
      this.addHold(t);
    } else {
      dr.bal.debits_posted += t.amount;
      cr.bal.credits_posted += t.amount;
    }
    this.touched(dr, t, issues);
    this.touched(cr, t, issues);
    return issues;
  }

  private addHold(t: Transfer): void {
    const expiresAt = t.timeout > 0 ? t.timestamp + BigInt(t.timeout) * NS_PER_SECOND : NO_DEADLINE;
    const hold: FoldHold = {
      id: t.id,
      debit: t.debit_account_id,
      credit: t.credit_account_id,
      amount: t.amount,
      ledger: t.ledger,
      code: t.code,
      timestamp: t.timestamp,
      timeout: t.timeout,
      expiresAt,
      status: "open",
      resolvedAt: 0n,
    };
    this.holds.set(t.id, hold);
    if (t.timeout > 0) this.due.push(hold);
  }

  private resolve(t: Transfer, issues: FoldIssue[]): void {
    const hold = this.holds.get(t.pending_id);
    if (!hold) {
      issues.push(
        issue(
          "pending_not_found",
          t,
          null,
          `pending_id ${t.pending_id} is not a pending transfer before it`,
        ),
      );
      return;
    }
    if (hold.status !== "open") {
      issues.push(
        issue(
          "pending_not_open",
          t,
          null,
          `pending transfer ${hold.id} was already ${hold.status}`,
        ),
      );
      return;
    }
    if (t.debit_account_id !== hold.debit || t.credit_account_id !== hold.credit)
      issues.push(
        issue("pending_accounts_differ", t, null, "accounts differ from the pending transfer's"),
      );
    const post = (t.flags & TransferFlags.post_pending_transfer) !== 0;
    if (post && t.amount > hold.amount)
      issues.push(
        issue("post_exceeds_pending", t, null, `posts ${t.amount} of a pending ${hold.amount}`),
      );
    if (!post && t.amount !== hold.amount)
      issues.push(
        issue("void_amount_differs", t, null, `voids ${t.amount} of a pending ${hold.amount}`),
      );
    const dr = this.accounts.get(hold.debit);
    const cr = this.accounts.get(hold.credit);
    hold.status = post ? "posted" : "voided";
    hold.resolvedAt = t.timestamp;
    if (!dr || !cr) return; // reported when the pending transfer was applied
    dr.bal.debits_pending -= hold.amount;
    cr.bal.credits_pending -= hold.amount;
    if (post) {
      dr.bal.debits_posted += t.amount;
      cr.bal.credits_posted += t.amount;
    }
    this.touched(dr, t, issues);
    this.touched(cr, t, issues);
  }

  private touched(a: FoldAccount, t: Transfer, issues: FoldIssue[]): void {
    a.transfers += 1;
    const b = a.bal;
    if (
      (a.flags & AccountFlags.debits_must_not_exceed_credits) !== 0 &&
      b.debits_posted + b.debits_pending > b.credits_posted
    ) {
      issues.push(
        issue(
          "limit_exceeded",
          t,
          a.id,
          `available would be ${b.credits_posted - b.debits_posted - b.debits_pending}`,
        ),
      );
    }
    if (
      (a.flags & AccountFlags.credits_must_not_exceed_debits) !== 0 &&
      b.credits_posted + b.credits_pending > b.debits_posted
    ) {
      issues.push(
        issue(
          "limit_exceeded",
          t,
          a.id,
          `credits would exceed debits by ${b.credits_posted + b.credits_pending - b.debits_posted}`,
        ),
      );
    }
  }

  /** Expires every open hold whose deadline is at or before `ts`, in deadline order. */
  expireThrough(ts: bigint): void {
    for (
      let next = this.due.peek();
      next !== undefined && next.expiresAt <= ts;
      next = this.due.peek()
    ) {
      this.due.pop();
      if (next.status !== "open") continue;
      next.status = "expired";
      next.resolvedAt = next.expiresAt;
      const dr = this.accounts.get(next.debit);
      const cr = this.accounts.get(next.credit);
      if (dr) dr.bal.debits_pending -= next.amount;
      if (cr) cr.bal.credits_pending -= next.amount;
      this.recent.push(next);
    }
    if (ts > this.now) this.now = ts;
    const horizon = this.now - this.keepNs;
    if (this.recent.length > 0 && (this.recent[0] as FoldHold).expiresAt <= horizon)
      this.recent = this.recent.filter((h) => h.expiresAt > horizon);
  }

  /**
   * Holds whose expiry a reader may or may not have seen at a wall time in [fromNs, toNs]: the
   * ones the fold expired with a deadline after fromNs, and the open ones due by toNs.
   */
  uncertain(fromNs: bigint, toNs: bigint): Uncertain[] {
    const out: Uncertain[] = this.recent
      .filter((h) => h.expiresAt > fromNs)
      .map((hold) => ({ hold, expiredInFold: true }));
    for (const hold of dueThrough(this.due, toNs))
      if (hold.status === "open") out.push({ hold, expiredInFold: false });
    return out;
  }

  /** Open holds, in no particular order. */
  *openHolds(): Iterable<FoldHold> {
    for (const h of this.holds.values()) if (h.status === "open") yield h;
  }
}

function issue(
  kind: FoldIssueKind,
  t: Transfer,
  accountId: bigint | null,
  detail: string,
): FoldIssue {
  return { kind, transferId: t.id, accountId, detail };
}

/**
 * Whether a stored balance matches the fold, given holds whose expiry the reader may not have
 * seen yet. `predicted` counts every uncertain hold as expired; the ledger expires holds in deadline
 * order, so the ones it had not yet expired are a suffix of each side's uncertain list.
 */
export function matchesWithExpiry(
  stored: Balances,
  predicted: Balances,
  debitSide: bigint[],
  creditSide: bigint[],
): boolean {
  if (
    stored.debits_posted !== predicted.debits_posted ||
    stored.credits_posted !== predicted.credits_posted
  )
    return false;
  return (
    suffixMatches(stored.debits_pending - predicted.debits_pending, debitSide) &&
    suffixMatches(stored.credits_pending - predicted.credits_pending, creditSide)
  );
}

function suffixMatches(extra: bigint, amounts: ReadonlyArray<bigint>): boolean {
  let sum = 0n;
  if (extra === 0n) return true;
  for (let i = amounts.length - 1; i >= 0; i -= 1) {
    sum += amounts[i] as bigint;
    if (sum === extra) return true;
  }
  return false;
}

/**
 * The balances of one account as a reader at wall time [fromNs, toNs] should see them, counting
 * every uncertain hold as expired, with each side's uncertain amounts in deadline order.
 */
export function predictWithExpiry(
  account: FoldAccount,
  uncertain: ReadonlyArray<Uncertain>,
  certainBeforeNs: bigint,
): { predicted: Balances; debitSide: bigint[]; creditSide: bigint[] } {
  const predicted = balancesOf(account.bal);
  const debitSide: bigint[] = [];
  const creditSide: bigint[] = [];
  for (const { hold, expiredInFold } of uncertain) {
    const onDebit = hold.debit === account.id;
    const onCredit = hold.credit === account.id;
    if (!onDebit && !onCredit) continue;
    if (!expiredInFold) {
      if (onDebit) predicted.debits_pending -= hold.amount;
      if (onCredit) predicted.credits_pending -= hold.amount;
    }
    if (hold.expiresAt <= certainBeforeNs) continue;
    if (onDebit) debitSide.push(hold.amount);
    if (onCredit) creditSide.push(hold.amount);
  }
  return { predicted, debitSide, creditSide };
}
