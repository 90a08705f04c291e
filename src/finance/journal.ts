// The journal: every ledger transfer as one double-entry line, in ledger order. Pure: a page of
// transfers (plus the holds its expiry markers name and the owners of its accounts) in, lines out.
//
// Status says what a line does to the books, from the transfer alone, so a line never changes
// after it is exported: "posted" (final money: credits, debits, transfers, fees, captures),
// "pending" (a hold reserves money), "voided" (a release gives a reservation back), "expired"
// (an expiry marker: the ledger gave the hold's reservation back at its deadline, with no
// transfer; the line carries the hold's accounts and amount so the pending totals add up) and
// "rejection record" (a zero-amount marker on the marker ledger: no money moved).
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { classify } from "../domain/transfer-kind.ts";
import { currencyByLedger, type Chart } from "../domain/accounts.ts";
import { formatOperationId } from "../domain/ids.ts";
import { csvLine, isoOfNs, majorUnits } from "./money-text.ts";

export type LineStatus = "posted" | "pending" | "voided" | "expired" | "rejection record";
export type Leg = "amount" | "fee" | "expiry" | "marker" | "foreign";

export type JournalLine = {
  timestamp: bigint;
  operationId: string;
  command: string;
  leg: Leg;
  transferId: bigint;
  debitAccount: bigint;
  debitOwner: string;
  creditAccount: bigint;
  creditOwner: string;
  amount: bigint;
  /** "" on the marker ledger, which holds no currency. */
  currency: string;
  scale: number;
  status: LineStatus;
  /** The rejection's reason, on rejection records only. */
  reason: string;
};

export const JOURNAL_COLUMNS = [
  "time",
  "ledger_timestamp",
  "operation_id",
  "command",
  "leg",
  "transfer_id",
  "debit_account",
  "debit_owner",
  "credit_account",
  "credit_owner",
  "amount_minor",
  "amount",
  "currency",
  "status",
  "reason",
] as const;

/** What a page needs from outside: each expiry marker's hold, and every account's owner. */
export type PageContext = {
  holds: ReadonlyMap<bigint, Transfer>;
  owners: ReadonlyMap<bigint, string>;
};

/** The accounts and holds a page's lines will name: read them before turning the page into lines. */
export function pageNeeds(
  chart: Chart,
  page: ReadonlyArray<Transfer>,
): { holdIds: bigint[]; accountIds: bigint[] } {
  const holdIds: bigint[] = [];
  const accountIds = new Set<bigint>();
  for (const t of page) {
    const c = classify(chart, t);
    if (c.kind === "expiry") holdIds.push(c.holdId);
    accountIds.add(t.debit_account_id);
    accountIds.add(t.credit_account_id);
  }
  return { holdIds, accountIds: [...accountIds] };
}

function statusOfFlags(flags: number): LineStatus {
  if ((flags & TransferFlags.pending) !== 0) return "pending";
  if ((flags & TransferFlags.void_pending_transfer) !== 0) return "voided";
  return "posted"; // a plain transfer, or the post of a hold (capture)
}

/**
 * Turns pages into lines. It remembers the last transfer across pages: a fee leg is the second
 * transfer of a linked chain (consecutive timestamps), and its operation is the first's id.
 */
export class JournalBuilder {
  private previous: Transfer | null = null;

  constructor(private readonly chart: Chart) {}

  /** Seeds the memory with the transfer just before the range, so a range may start at a fee leg. */
  seed(previous: Transfer | null): void {
    this.previous = previous;
  }

  lines(page: ReadonlyArray<Transfer>, context: PageContext): JournalLine[] {
    const out: JournalLine[] = [];
    for (const t of page) {
      out.push(this.line(t, context));
      this.previous = t;
    }
    return out;
  }

  private line(t: Transfer, context: PageContext): JournalLine {
    const owner = (id: bigint) => context.owners.get(id) ?? "";
    const currencyOf = (ledger: number) => currencyByLedger(this.chart, ledger);
    const base = (from: Transfer) => {
      const currency = currencyOf(from.ledger);
      return {
        timestamp: t.timestamp,
        transferId: t.id,
        debitAccount: from.debit_account_id,
        debitOwner: owner(from.debit_account_id),
        creditAccount: from.credit_account_id,
        creditOwner: owner(from.credit_account_id),
        amount: from.amount,
        currency: currency?.code ?? "",
        scale: currency?.scale ?? 0,
        reason: "",
      };
    };
    const c = classify(this.chart, t);
    switch (c.kind) {
      case "applied":
        return {
          ...base(t),
          operationId: formatOperationId(t.id),
          command: c.type,
          leg: "amount",
          status: statusOfFlags(t.flags),
        };
      case "fee_leg": {
        const main =
          this.previous !== null && this.chart.space.feeLegId(this.previous.id) === t.id
            ? this.previous
            : null;
        return {
          ...base(t),
          operationId: formatOperationId(main?.id ?? t.id),
          command: "transfer",
          leg: "fee",
          status: statusOfFlags(t.flags),
        };
      }
      case "rejection":
        // A rejection recorded under a burned operation id carries the burned-marker id here; its
        // event (billing op) names the operation.
        return {
          ...base(t),
          operationId: formatOperationId(t.id),
          command: c.type,
          leg: "marker",
          status: "rejection record",
          reason: c.reason,
        };
      case "expiry": {
        const hold = context.holds.get(c.holdId);
        const line =
          hold === undefined
            ? base(t)
            : { ...base(hold), timestamp: t.timestamp, transferId: t.id };
        return {
          ...line,
          operationId: formatOperationId(c.holdId),
          command: "hold",
          leg: "expiry",
          status: "expired",
        };
      }
      case "foreign":
        return {
          ...base(t),
          operationId: formatOperationId(t.id),
          command: "",
          leg: "foreign",
          status: statusOfFlags(t.flags),
          reason: c.detail,
        };
    }
  }
}

function fields(l: JournalLine): string[] {
  return [
    isoOfNs(l.timestamp),
    l.timestamp.toString(),
    l.operationId,
    l.command,
    l.leg,
    l.transferId.toString(),
    l.debitAccount.toString(),
    l.debitOwner,
    l.creditAccount.toString(),
    l.creditOwner,
    l.amount.toString(),
    majorUnits(l.amount, l.scale),
    l.currency,
    l.status,
    l.reason,
  ];
}

export function journalCsvHeader(): string {
  return csvLine(JOURNAL_COLUMNS);
}

export function journalCsv(l: JournalLine): string {
  return csvLine(fields(l));
}

export function journalJson(l: JournalLine): string {
  const values = fields(l);
  return `${JSON.stringify(Object.fromEntries(JOURNAL_COLUMNS.map((k, i) => [k, values[i]])))}\n`;
}
