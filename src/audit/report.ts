// The audit's result: a summary first (per-currency totals, counts), then every discrepancy with
// the ids to look up, then open holds. Rendered as text for people and as JSON for tools.
import { NS_PER_MS } from "../lib/nanoseconds.ts";

export const FINDING_KINDS = {
  unbalanced_ledger: "the sums of debits and credits of a ledger differ",
  account_mismatch: "an account's stored balances differ from the fold of its transfers",
  negative_available: "a user account's available balance went below zero",
  invalid_transfer: "a transfer breaks the ledger's rules",
  foreign_transfer: "a transfer the service never writes",
  foreign_account: "an account outside the chart of accounts",
  missing_event: "an operation in the ledger without its event",
  duplicate_event: "a second event for one operation",
  event_mismatch: "an event that differs from its ledger record",
  orphan_event: "an event without a ledger record",
  malformed_event: "a message on the events stream that is no event",
  double_outcome: "an operation recorded both as applied and as rejected",
  expiry_mismatch: "an expiry marker or expired event that does not match its hold",
  missing_expiry: "a hold that expired long ago without its expiry marker",
} as const;

export type FindingKind = keyof typeof FINDING_KINDS;

export type Finding = { kind: FindingKind; message: string; ids: Record<string, string> };

export type CurrencyTotals = {
  currency: string;
  ledger: number;
  accounts: number;
  transfers: number;
  debitsPosted: string;
  creditsPosted: string;
  debitsPending: string;
  creditsPending: string;
  balanced: boolean;
};

export type OpenHold = {
  holdId: string;
  userId: string;
  currency: string;
  amount: string;
  ageMs: number;
  expiresInMs: number | null;
};

export type AuditCounts = {
  accounts: number;
  transfers: number;
  applied: number;
  rejected: number;
  feeLegs: number;
  expiryMarkers: number;
  events: number;
  expiredEvents: number;
  accountsVerified: number;
  accountsUnverified: number;
  inFlight: number;
  afterCut: number;
};

export type AuditReport = {
  ok: boolean;
  cut: { ledgerTimestamp: string; eventsLastSequence: number };
  durationMs: number;
  currencies: CurrencyTotals[];
  counts: AuditCounts;
  openHolds: { total: number; listed: OpenHold[] };
  findings: { total: number; byKind: Partial<Record<FindingKind, number>>; listed: Finding[] };
  notes: string[];
};

/** Collects findings, keeping the first `perKindMax` of each kind and counting all. */
export class Findings {
  readonly listed: Finding[] = [];
  readonly byKind: Partial<Record<FindingKind, number>> = {};
  total = 0;

  constructor(private readonly perKindMax: number) {}

  add(
    kind: FindingKind,
    message: string,
    ids: Record<string, string | bigint | number> = {},
  ): void {
    this.total += 1;
    const n = (this.byKind[kind] ?? 0) + 1;
    this.byKind[kind] = n;
    if (n > this.perKindMax) return;
    const text: Record<string, string> = {};
    for (const [k, v] of Object.entries(ids)) text[k] = String(v);
    this.listed.push({ kind, message, ids: text });
  }
}

function table(rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function summary(r: AuditReport): string[] {
  const c = r.counts;
  const stamp = BigInt(r.cut.ledgerTimestamp);
  const when = stamp > 0n ? ` (${new Date(Number(stamp / NS_PER_MS)).toISOString()})` : "";
  const out = [
    `billing audit: ${r.ok ? "OK" : `FAILED, ${r.findings.total} discrepanc${r.findings.total === 1 ? "y" : "ies"}`}`,
    `cut: ledger timestamp ${r.cut.ledgerTimestamp}${when}, events up to stream sequence ${r.cut.eventsLastSequence}; took ${r.durationMs} ms`,
    "",
    table([
      [
        "currency",
        "ledger",
        "accounts",
        "transfers",
        "debits posted",
        "credits posted",
        "debits pending",
        "credits pending",
        "balanced",
      ],
      ...r.currencies.map((t) => [
        t.currency,
        String(t.ledger),
        String(t.accounts),
        String(t.transfers),
        t.debitsPosted,
        t.creditsPosted,
        t.debitsPending,
        t.creditsPending,
        t.balanced ? "yes" : "NO",
      ]),
    ]),
    "",
    table([
      ["check", "count"],
      ["operations applied", String(c.applied)],
      ["operations rejected", String(c.rejected)],
      ["fee legs", String(c.feeLegs)],
      ["expiry markers", String(c.expiryMarkers)],
      ["events read", String(c.events)],
      ["expired events", String(c.expiredEvents)],
      ["accounts verified", String(c.accountsVerified)],
      ["accounts unverified (moved while read)", String(c.accountsUnverified)],
      ["operations in flight (event not yet stored)", String(c.inFlight)],
      ["events after the cut", String(c.afterCut)],
      ["open holds", String(r.openHolds.total)],
    ]),
  ];
  const kinds = Object.entries(r.findings.byKind);
  if (kinds.length > 0)
    out.push(
      "",
      table([
        ["discrepancy", "count", "meaning"],
        ...kinds.map(([k, n]) => [k, String(n), FINDING_KINDS[k as FindingKind]]),
      ]),
    );
  return out;
}

export function renderText(r: AuditReport): string {
  const out = summary(r);
  if (r.findings.listed.length > 0) {
    out.push("", "discrepancies:");
    for (const f of r.findings.listed) {
      out.push(`  [${f.kind}] ${f.message}`);
      const ids = Object.entries(f.ids)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      if (ids) out.push(`      ${ids}`);
    }
    if (r.findings.listed.length < r.findings.total)
      out.push(`  … ${r.findings.total - r.findings.listed.length} more (see the counts above)`);
  }
  if (r.openHolds.listed.length > 0) {
    out.push("", `open holds (${r.openHolds.total}, oldest first):`);
    out.push(
      table([
        ["holdId", "userId", "currency", "amount", "age", "expires in"],
        ...r.openHolds.listed.map((h) => [
          h.holdId,
          h.userId,
          h.currency,
          h.amount,
          `${(h.ageMs / 1000).toFixed(1)} s`,
          h.expiresInMs === null ? "never" : `${(h.expiresInMs / 1000).toFixed(1)} s`,
        ]),
      ])
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n"),
    );
  }
  if (r.notes.length > 0) out.push("", "notes:", ...r.notes.map((n) => `  - ${n}`));
  return `${out.join("\n")}\n`;
}
