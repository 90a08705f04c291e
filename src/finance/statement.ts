// A user's statement in one currency: opening balance, every movement with its operation, its
// counterparty and the running posted / held / available balances, closing balance. Pure: the
// account's transfers and its balance history (one entry per transfer, same timestamps) in, rows
// out.
//
// The running balances of a transfer's row are the ledger's history entry for that transfer:
// exactly what the operation's event carries (the worker builds events from the same history).
// A hold that expires leaves no transfer and no history entry (the ledger releases it at its
// deadline), so the statement adds an "expired" row at the deadline: held − amount, available +
// amount. The next transfer's row is again the ledger's own figure.
import { TransferFlags, type AccountBalance, type Transfer } from "tigerbeetle-node";
import { classify } from "../domain/transfer-kind.ts";
import type { Chart } from "../domain/accounts.ts";
import { formatOperationId } from "../domain/ids.ts";
import { assert } from "../lib/assert.ts";
import { csvLine, isoOfNs, majorUnits } from "./money-text.ts";
import { deadlineOf, expiredAt, type OpenHold } from "./trial-balance.ts";

export type Running = { posted: bigint; held: bigint };

export type StatementRow = {
  timestamp: bigint;
  operationId: string;
  command: string;
  leg: "amount" | "fee" | "expiry";
  counterparty: bigint;
  postedChange: bigint;
  heldChange: bigint;
  status: "posted" | "pending" | "voided" | "expired";
} & Running;

export class StatementFold {
  private running: Running = { posted: 0n, held: 0n };
  private opening: Running | null = null;
  private readonly open = new Map<bigint, OpenHold & { timestamp: bigint }>();
  private previous: Transfer | null = null;
  private counterpartyOfHold = new Map<bigint, bigint>();
  readonly problems: string[] = [];

  /** Rows with a timestamp before `from` only move the running balance (they are before the statement). */
  constructor(
    private readonly chart: Chart,
    readonly account: bigint,
    private readonly from: bigint,
  ) {}

  /** One page of the account's transfers and their history entries (same length, same order). */
  page(transfers: ReadonlyArray<Transfer>, history: ReadonlyArray<AccountBalance>): StatementRow[] {
    assert(
      transfers.length === history.length,
      "one history entry per transfer of an account with history",
    );
    const rows: StatementRow[] = [];
    transfers.forEach((t, i) => {
      const h = history[i] as AccountBalance;
      assert(h.timestamp === t.timestamp, "history entries carry their transfer's timestamp");
      this.expireUntil(t.timestamp, rows);
      this.emit(this.row(t, h), rows);
      this.previous = t;
    });
    return rows;
  }

  /** The balance before the first row at or after `from` (the running balance until one is reached). */
  openingBalance(): Running {
    return this.opening ?? this.running;
  }

  /** Expiries up to `instant`; then the opening (if no row reached `from`) and closing balances. */
  finish(instant: bigint): { rows: StatementRow[]; opening: Running; closing: Running } {
    const rows: StatementRow[] = [];
    this.expireUntil(instant, rows);
    return { rows, opening: this.opening ?? this.running, closing: this.running };
  }

  private emit(row: StatementRow, rows: StatementRow[]): void {
    if (row.timestamp < this.from) {
      this.running = { posted: row.posted, held: row.held };
      return;
    }
    this.opening ??= this.running;
    this.running = { posted: row.posted, held: row.held };
    rows.push(row);
  }

  private expireUntil(instant: bigint, rows: StatementRow[]): void {
    const due = [...this.open.values()]
      .filter((h) => expiredAt(h, instant))
      .sort((a, b) => (a.deadline < b.deadline ? -1 : 1));
    for (const hold of due) {
      this.open.delete(hold.id);
      const held = this.running.held - hold.amount;
      this.emit(
        {
          timestamp: hold.deadline,
          operationId: formatOperationId(hold.id),
          command: "hold",
          leg: "expiry",
          counterparty: this.counterpartyOfHold.get(hold.id) ?? 0n,
          postedChange: 0n,
          heldChange: -hold.amount,
          status: "expired",
          posted: this.running.posted,
          held,
        },
        rows,
      );
      this.counterpartyOfHold.delete(hold.id);
    }
  }

  private row(t: Transfer, h: AccountBalance): StatementRow {
    const debit = t.debit_account_id === this.account;
    const counterparty = debit ? t.credit_account_id : t.debit_account_id;
    const c = classify(this.chart, t);
    let operationId = formatOperationId(t.id);
    let command = c.kind === "applied" ? c.type : "";
    let leg: StatementRow["leg"] = "amount";
    if (c.kind === "fee_leg") {
      const main =
        this.previous !== null && this.chart.space.feeLegId(this.previous.id) === t.id
          ? this.previous
          : null;
      operationId = formatOperationId(main?.id ?? t.id);
      command = "transfer";
      leg = "fee";
    }
    const posted = h.credits_posted - h.debits_posted;
    const base = {
      timestamp: t.timestamp,
      operationId,
      command,
      leg,
      counterparty,
      posted,
      held: h.debits_pending,
    };
    if ((t.flags & TransferFlags.pending) !== 0) {
      this.open.set(t.id, {
        id: t.id,
        debit: t.debit_account_id,
        credit: t.credit_account_id,
        amount: t.amount,
        deadline: deadlineOf(t),
        timestamp: t.timestamp,
      });
      this.counterpartyOfHold.set(t.id, counterparty);
      return { ...base, postedChange: 0n, heldChange: debit ? t.amount : 0n, status: "pending" };
    }
    const closes =
      (t.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !== 0;
    if (closes) {
      const hold = this.open.get(t.pending_id);
      if (hold === undefined)
        this.problems.push(
          `${operationId} closes ${formatOperationId(t.pending_id)}, which is not an open hold of this account`,
        );
      this.open.delete(t.pending_id);
      this.counterpartyOfHold.delete(t.pending_id);
      const heldChange = -(hold?.amount ?? t.amount);
      if ((t.flags & TransferFlags.void_pending_transfer) !== 0)
        return { ...base, postedChange: 0n, heldChange, status: "voided" };
      return { ...base, postedChange: debit ? -t.amount : t.amount, heldChange, status: "posted" };
    }
    return {
      ...base,
      postedChange: debit ? -t.amount : t.amount,
      heldChange: 0n,
      status: "posted",
    };
  }
}

// ── rendering ────────────────────────────────────────────────────────────────────────────────

export const STATEMENT_COLUMNS = [
  "time",
  "ledger_timestamp",
  "operation_id",
  "command",
  "leg",
  "counterparty",
  "posted_change",
  "held_change",
  "posted",
  "held",
  "available",
  "status",
] as const;

export type StatementFormat = "text" | "csv" | "jsonl";
export type StatementHead = {
  userId: string;
  currency: string;
  scale: number;
  from: bigint;
  to: bigint;
};

function values(r: StatementRow, counterparty: string, m: (x: bigint) => string): string[] {
  return [
    isoOfNs(r.timestamp),
    r.timestamp.toString(),
    r.operationId,
    r.command,
    r.leg,
    counterparty,
    m(r.postedChange),
    m(r.heldChange),
    m(r.posted),
    m(r.held),
    m(r.posted - r.held),
    r.status,
  ];
}

const balanceText = (b: Running, m: (x: bigint) => string) =>
  `posted ${m(b.posted)}  held ${m(b.held)}  available ${m(b.posted - b.held)}`;

/** The opening lines; csv and jsonl carry the opening and closing balances as rows of their own. */
export function statementOpening(
  format: StatementFormat,
  head: StatementHead,
  opening: Running,
): string {
  const from = head.from <= 1n ? "the first movement" : isoOfNs(head.from);
  if (format === "text") {
    const m = (x: bigint) => majorUnits(x, head.scale);
    return (
      `statement of ${head.userId} in ${head.currency} from ${from} to ${isoOfNs(head.to)} (amounts in major units)\n` +
      `opening  ${balanceText(opening, m)}\n\n` +
      textRow([
        "time",
        "operation",
        "command",
        "leg",
        "counterparty",
        "Δposted",
        "Δheld",
        "posted",
        "held",
        "available",
        "status",
      ])
    );
  }
  return balanceRow(format, "opening", head.from, opening, format === "csv");
}

/** Column widths of the text form: time, operation, command, leg, counterparty, then five amounts, status. */
const TEXT_WIDTHS = [30, 36, 8, 6, 20, 14, 14, 14, 14, 14, 8];

function textRow(cells: string[]): string {
  return `${cells
    .map((c, i) =>
      i >= 5 && i <= 9 ? c.padStart(TEXT_WIDTHS[i] ?? 0) : c.padEnd(TEXT_WIDTHS[i] ?? 0),
    )
    .join(" ")
    .trimEnd()}\n`;
}

function balanceRow(
  format: "csv" | "jsonl",
  kind: "opening" | "closing",
  at: bigint,
  b: Running,
  header: boolean,
): string {
  const start = at <= 1n; // no --from: the opening is before the first movement, at no particular time
  const cells = [
    start ? "" : isoOfNs(at),
    start ? "" : at.toString(),
    "",
    "",
    kind,
    "",
    "",
    "",
    b.posted.toString(),
    b.held.toString(),
    (b.posted - b.held).toString(),
    "",
  ];
  if (format === "jsonl")
    return `${JSON.stringify(Object.fromEntries(STATEMENT_COLUMNS.map((k, i) => [k, cells[i]])))}\n`;
  return `${header ? csvLine(STATEMENT_COLUMNS) : ""}${csvLine(cells)}`;
}

export function statementRow(
  format: StatementFormat,
  head: StatementHead,
  r: StatementRow,
  counterparty: string,
): string {
  if (format === "text") {
    const m = (x: bigint) => majorUnits(x, head.scale);
    return textRow(values(r, counterparty, m).filter((_, i) => i !== 1));
  }
  const cells = values(r, counterparty, (x) => x.toString());
  if (format === "jsonl")
    return `${JSON.stringify(Object.fromEntries(STATEMENT_COLUMNS.map((k, i) => [k, cells[i]])))}\n`;
  return csvLine(cells);
}

export function statementClosing(
  format: StatementFormat,
  head: StatementHead,
  closing: Running,
  rows: number,
): string {
  if (format === "text")
    return `\nclosing  ${balanceText(closing, (x) => majorUnits(x, head.scale))}  (${rows} movements)\n`;
  return balanceRow(format, "closing", head.to, closing, false);
}
