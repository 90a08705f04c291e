// The trial balance: every account's debits and credits, posted and pending, at one instant, and
// per ledger (currency) the check that debits equal credits. Pure: the figures come in, rows,
// totals and the verdict come out.
//
// Where the figures come from (`trialBalance` in src/finance/run.ts reads them):
// - an account with balance history (flags.history: every user account) — posted figures from
//   its history entry at the instant (get_account_balances), the ledger's own record;
// - an account without history (settlement, fee, markers) — the fold of its own transfers up to
//   the instant under the two-phase rules (AccountFold below);
// - pending figures of both — the holds open at the instant: the folds see every hold (a hold is
//   always between a user and the currency's settlement account), post and void close one, and a
//   hold whose deadline (timestamp + timeout) is at or before the instant has expired: the ledger
//   released it without a transfer, so no history entry shows the release, and TigerBeetle
//   releases in the background (a history entry after the deadline may still count it held).
//   A post or void after the instant does not count: it is after the cut.
// Users' posted figures (history) and the system accounts' (transfers) are read independently,
// so equal totals per currency are a real check of the books, not a tautology.
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { csvLine, majorUnits } from "./money-text.ts";
import { NS_PER_SECOND } from "../lib/nanoseconds.ts";

export type Sides = {
  debits_posted: bigint;
  credits_posted: bigint;
  debits_pending: bigint;
  credits_pending: bigint;
};

export const zeroSides = (): Sides => ({
  debits_posted: 0n,
  credits_posted: 0n,
  debits_pending: 0n,
  credits_pending: 0n,
});

export type OpenHold = {
  id: bigint;
  debit: bigint;
  credit: bigint;
  amount: bigint;
  /** 0 when it never expires. */ deadline: bigint;
};

export function deadlineOf(t: Transfer): bigint {
  return t.timeout > 0 ? t.timestamp + BigInt(t.timeout) * NS_PER_SECOND : 0n;
}

/** Whether a hold is expired at `instant` (its deadline at or before it; the ledger's rule). */
export function expiredAt(hold: { deadline: bigint }, instant: bigint): boolean {
  return hold.deadline !== 0n && hold.deadline <= instant;
}

/**
 * One account's balances folded from its own transfers, ascending. Memory: the holds open on it
 * (an expired hold is dropped at the first page after its deadline: it can no longer be posted or
 * voided, the ledger refuses that with pending_transfer_expired).
 */
export class AccountFold {
  readonly sides = zeroSides();
  private readonly open = new Map<bigint, OpenHold>();
  readonly problems: string[] = [];

  constructor(readonly account: bigint) {}

  apply(page: ReadonlyArray<Transfer>): void {
    const first = page[0];
    if (first !== undefined) this.expire(first.timestamp);
    for (const t of page) this.applyOne(t);
  }

  /** The holds still open at `instant` (after expiring the due ones). */
  finish(instant: bigint): OpenHold[] {
    this.expire(instant);
    return [...this.open.values()];
  }

  private side(t: { debit: bigint } | Transfer): "debit" | "credit" {
    const debit = "debit" in t ? t.debit : t.debit_account_id;
    return debit === this.account ? "debit" : "credit";
  }

  private applyOne(t: Transfer): void {
    const side = this.side(t);
    if (
      (t.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !==
      0
    ) {
      const hold = this.open.get(t.pending_id);
      if (hold === undefined) {
        this.problems.push(
          `transfer ${t.id} posts or voids ${t.pending_id}, which is not an open hold on account ${this.account}`,
        );
        return;
      }
      this.open.delete(t.pending_id);
      this.sides[`${side}s_pending`] -= hold.amount;
      if ((t.flags & TransferFlags.post_pending_transfer) !== 0)
        this.sides[`${side}s_posted`] += t.amount;
      return;
    }
    if ((t.flags & TransferFlags.pending) !== 0) {
      this.open.set(t.id, {
        id: t.id,
        debit: t.debit_account_id,
        credit: t.credit_account_id,
        amount: t.amount,
        deadline: deadlineOf(t),
      });
      this.sides[`${side}s_pending`] += t.amount;
      return;
    }
    this.sides[`${side}s_posted`] += t.amount;
  }

  private expire(instant: bigint): void {
    for (const hold of this.open.values()) {
      if (!expiredAt(hold, instant)) continue;
      this.open.delete(hold.id);
      this.sides[`${this.side(hold)}s_pending`] -= hold.amount;
    }
  }
}

export type TrialRow = {
  account: bigint;
  kind: string;
  owner: string;
  ledger: number;
  currency: string;
  scale: number;
} & Sides;

export type LedgerTotals = {
  ledger: number;
  currency: string;
  scale: number;
  accounts: number;
  balanced: boolean;
} & Sides;

/** Totals per ledger, and whether each balances (debits = credits, posted and pending). */
export class Totals {
  private readonly byLedger = new Map<number, LedgerTotals>();

  add(row: TrialRow): void {
    let t = this.byLedger.get(row.ledger);
    if (t === undefined)
      this.byLedger.set(
        row.ledger,
        (t = {
          ledger: row.ledger,
          currency: row.currency,
          scale: row.scale,
          accounts: 0,
          balanced: true,
          ...zeroSides(),
        }),
      );
    t.accounts += 1;
    t.debits_posted += row.debits_posted;
    t.credits_posted += row.credits_posted;
    t.debits_pending += row.debits_pending;
    t.credits_pending += row.credits_pending;
  }

  result(): LedgerTotals[] {
    return [...this.byLedger.values()]
      .sort((a, b) => a.ledger - b.ledger)
      .map((t) => ({
        ...t,
        balanced: t.debits_posted === t.credits_posted && t.debits_pending === t.credits_pending,
      }));
  }
}

// ── rendering ────────────────────────────────────────────────────────────────────────────────

export const TRIAL_COLUMNS = [
  "account",
  "kind",
  "owner",
  "ledger",
  "currency",
  "debits_posted",
  "credits_posted",
  "debits_pending",
  "credits_pending",
  "balanced",
] as const;

const label = (currency: string) => (currency === "" ? "markers" : currency);

function rowValues(r: TrialRow): string[] {
  return [
    r.account.toString(),
    r.kind,
    r.owner,
    String(r.ledger),
    r.currency,
    r.debits_posted.toString(),
    r.credits_posted.toString(),
    r.debits_pending.toString(),
    r.credits_pending.toString(),
    "",
  ];
}

function totalValues(t: LedgerTotals): string[] {
  return [
    "",
    "total",
    `${t.accounts} accounts`,
    String(t.ledger),
    t.currency,
    t.debits_posted.toString(),
    t.credits_posted.toString(),
    t.debits_pending.toString(),
    t.credits_pending.toString(),
    t.balanced ? "yes" : "no",
  ];
}

const asJson = (values: string[]) =>
  `${JSON.stringify(Object.fromEntries(TRIAL_COLUMNS.map((k, i) => [k, values[i]])))}\n`;

export type TrialFormat = "text" | "csv" | "jsonl";

export function trialHeader(format: TrialFormat, instant: string): string {
  if (format === "csv") return csvLine(TRIAL_COLUMNS);
  if (format === "jsonl") return "";
  return `trial balance at ${instant} (amounts in major units)\n\n${textLine(["currency", "kind", "owner", "debits posted", "credits posted", "debits pending", "credits pending"])}`;
}

const WIDTHS = [9, 11, 40, 18, 18, 18, 18];

function textLine(cells: string[]): string {
  return `${cells
    .map((c, i) => (i < 3 ? c.padEnd(WIDTHS[i] ?? 0) : c.padStart(WIDTHS[i] ?? 0)))
    .join(" ")
    .trimEnd()}\n`;
}

export function trialRow(format: TrialFormat, r: TrialRow): string {
  if (format === "csv") return csvLine(rowValues(r));
  if (format === "jsonl") return asJson(rowValues(r));
  const m = (x: bigint) => majorUnits(x, r.scale);
  return textLine([
    label(r.currency),
    r.kind,
    r.owner,
    m(r.debits_posted),
    m(r.credits_posted),
    m(r.debits_pending),
    m(r.credits_pending),
  ]);
}

export function trialFooter(
  format: TrialFormat,
  totals: ReadonlyArray<LedgerTotals>,
  problems: ReadonlyArray<string>,
): string {
  if (format === "csv") return totals.map((t) => csvLine(totalValues(t))).join("");
  if (format === "jsonl") return totals.map((t) => asJson(totalValues(t))).join("");
  const m = (t: LedgerTotals, x: bigint) => majorUnits(x, t.scale);
  const lines = totals.map(
    (t) =>
      `${textLine([label(t.currency), "TOTAL", `${t.accounts} accounts`, m(t, t.debits_posted), m(t, t.credits_posted), m(t, t.debits_pending), m(t, t.credits_pending)])}` +
      `${label(t.currency)}: debits ${t.debits_posted === t.credits_posted ? "=" : "≠"} credits posted, ${t.debits_pending === t.credits_pending ? "=" : "≠"} pending: ${t.balanced ? "balanced" : "NOT BALANCED"}\n`,
  );
  const verdict =
    totals.every((t) => t.balanced) && problems.length === 0 ? "balanced" : "NOT BALANCED";
  return `\n${lines.join("")}${problems.map((p) => `problem: ${p}\n`).join("")}trial balance: ${verdict}\n`;
}

/** The verdict as an exit code: 0 every ledger balances and every fold was clean, 1 not. */
export function trialExitCode(
  totals: ReadonlyArray<LedgerTotals>,
  problems: ReadonlyArray<string>,
): 0 | 1 {
  return totals.every((t) => t.balanced) && problems.length === 0 ? 0 : 1;
}
