// The thin part: pages through the ledger port (bounded pages, the port's own deadline on every
// call, nothing written, nothing read past the cut) and hands each page to the pure parts, their
// lines to a sink with backpressure. Memory holds one page, a bounded cache of owner names, and
// the holds open at the time being; never the range.
import { AccountFlags, type AccountBalance } from "tigerbeetle-node";
import {
  AccountCode,
  currencyByLedger,
  userAccountId,
  type Chart,
  type Currency,
} from "../domain/accounts.ts";
import type { Ledger } from "../ledger/port.ts";
import { journalCsv, journalCsvHeader, journalJson, pageNeeds, JournalBuilder } from "./journal.ts";
import type { LineSink, Progress } from "./output.ts";
import { kindOfCode, OwnerBook, systemOwners } from "./owners.ts";
import {
  accountBalancePages,
  accountPages,
  accountTransferPages,
  balanceAt,
  transferBefore,
  transferPages,
} from "./pages.ts";
import {
  StatementFold,
  statementClosing,
  statementOpening,
  statementRow,
  type StatementFormat,
} from "./statement.ts";
import {
  AccountFold,
  expiredAt,
  Totals,
  trialExitCode,
  trialFooter,
  trialHeader,
  trialRow,
  zeroSides,
  type OpenHold,
  type Sides,
  type TrialFormat,
} from "./trial-balance.ts";
import { isoOfNs } from "./money-text.ts";
import { LEDGER_EVENTS_MAX } from "../config/limits.ts";

export type FinanceDeps = { ledger: Ledger; chart: Chart };

export const financeLimits = {
  /** Records per ledger read (the ledger's batch limit). */
  pageMax: LEDGER_EVENTS_MAX,
  /** User names kept between pages. */
  ownerCacheMax: 65_536,
  /** Problems a trial balance lists (the rest are counted). */
  problemsListedMax: 100,
  /** History reads of a trial balance in flight at once (one per account). */
  balanceReadsInFlight: 32,
};

// ── journal ──────────────────────────────────────────────────────────────────────────────────

export type JournalOptions = {
  from: bigint;
  /** The last ledger timestamp included. */ to: bigint;
  format: "csv" | "jsonl";
  pageMax?: number;
};

/** Streams the journal of from ≤ timestamp ≤ to (inclusive: the caller has made --to exclusive); returns the number of lines. */
export async function exportJournal(
  deps: FinanceDeps,
  o: JournalOptions,
  sink: LineSink,
  progress: Progress,
): Promise<number> {
  const pageMax = o.pageMax ?? financeLimits.pageMax;
  const owners = new OwnerBook(deps.ledger, deps.chart, financeLimits.ownerCacheMax);
  const builder = new JournalBuilder(deps.chart);
  builder.seed(await transferBefore(deps.ledger, o.from));
  if (o.format === "csv") await sink.write(journalCsvHeader());
  let count = 0;
  let last = 0n;
  for await (const page of transferPages(deps.ledger, o.from, o.to, pageMax)) {
    const needs = pageNeeds(deps.chart, page);
    const holds = needs.holdIds.length > 0 ? await deps.ledger.lookupTransfers(needs.holdIds) : [];
    const names = await owners.resolve([
      ...needs.accountIds,
      ...holds.flatMap((h) => [h.debit_account_id, h.credit_account_id]),
    ]);
    const lines = builder.lines(page, {
      holds: new Map(holds.map((h) => [h.id, h])),
      owners: names,
    });
    // One write per page: the sink waits when the reader of the output is slower than the ledger.
    await sink.write(lines.map(o.format === "csv" ? journalCsv : journalJson).join(""));
    count += lines.length;
    last = page[page.length - 1]?.timestamp ?? last;
    progress.tick(() => `${count} lines, up to ${isoOfNs(last)}`);
  }
  return count;
}

// ── trial balance ────────────────────────────────────────────────────────────────────────────

export type TrialOptions = { at: bigint; cut: bigint; format: TrialFormat; instantText: string };

/**
 * Two passes over the accounts created by the instant: first the accounts without history (the
 * system accounts: a few) are folded from their transfers, which also yields every hold open at
 * the instant; then every account's row is written in creation order, user accounts from their
 * balance history. Returns the exit code (1 when the books do not balance).
 */
export async function trialBalance(
  deps: FinanceDeps,
  o: TrialOptions,
  sink: LineSink,
  progress: Progress,
): Promise<number> {
  const { ledger, chart } = deps;
  // The state at the instant: every transfer before it (at-or-after is the next period's).
  const upTo = o.at - 1n < o.cut ? o.at - 1n : o.cut;
  const folded = new Map<bigint, Sides>();
  const problems: string[] = [];
  const held = new Map<bigint, Sides>();
  const openHolds = new Map<bigint, OpenHold>();
  for await (const page of accountPages(ledger, upTo, financeLimits.pageMax)) {
    for (const a of page) {
      if ((a.flags & AccountFlags.history) !== 0) continue;
      const fold = new AccountFold(a.id);
      for await (const transfers of accountTransferPages(
        ledger,
        a.id,
        1n,
        upTo,
        financeLimits.pageMax,
      )) {
        fold.apply(transfers);
        progress.tick(
          () =>
            `folding ${kindOfCode(a.code)} account ${a.id}: up to ${isoOfNs(transfers[transfers.length - 1]?.timestamp ?? 0n)}`,
        );
      }
      for (const h of fold.finish(o.at)) if (!expiredAt(h, o.at)) openHolds.set(h.id, h);
      folded.set(a.id, fold.sides);
      problems.push(...fold.problems);
    }
  }
  if (problems.length > financeLimits.problemsListedMax)
    problems.splice(
      financeLimits.problemsListedMax,
      Infinity,
      `… and ${problems.length - financeLimits.problemsListedMax} more`,
    );
  // The pending side of accounts with history: the holds open at the instant.
  for (const h of openHolds.values()) {
    sidesOf(held, h.debit).debits_pending += h.amount;
    sidesOf(held, h.credit).credits_pending += h.amount;
  }
  await sink.write(trialHeader(o.format, o.instantText));
  const totals = new Totals();
  const owners = new OwnerBook(ledger, chart, financeLimits.ownerCacheMax);
  const system = systemOwners(chart);
  let rows = 0;
  for await (const page of accountPages(ledger, upTo, financeLimits.pageMax)) {
    const users = page.filter((a) => a.code === AccountCode.user);
    const names = await owners.resolve(users.map((a) => a.id));
    const history = await balancesAt(
      ledger,
      page.filter((a) => !folded.has(a.id)).map((a) => a.id),
      upTo,
    );
    let text = "";
    for (const a of page) {
      let sides = folded.get(a.id);
      if (sides === undefined) {
        const h = history.get(a.id) ?? null;
        const pending = held.get(a.id) ?? zeroSides();
        sides = {
          debits_posted: h?.debits_posted ?? 0n,
          credits_posted: h?.credits_posted ?? 0n,
          debits_pending: pending.debits_pending,
          credits_pending: pending.credits_pending,
        };
      }
      const currency = currencyByLedger(chart, a.ledger);
      const row = {
        account: a.id,
        kind: kindOfCode(a.code),
        owner: names.get(a.id) ?? system.get(a.id) ?? kindOfCode(a.code),
        ledger: a.ledger,
        currency: currency?.code ?? "",
        scale: currency?.scale ?? 0,
        ...sides,
      };
      totals.add(row);
      text += trialRow(o.format, row);
    }
    await sink.write(text);
    rows += page.length;
    progress.tick(() => `${rows} accounts`);
  }
  const result = totals.result();
  await sink.write(trialFooter(o.format, result, problems));
  return trialExitCode(result, problems);
}

/**
 * Each account's history entry at `at`, a few requests in flight: the port has no batch read of
 * balances, and one request at a time would wait a round trip (a thread hop, or the network to
 * TigerBeetle) per account.
 */
async function balancesAt(
  ledger: Ledger,
  ids: ReadonlyArray<bigint>,
  at: bigint,
): Promise<Map<bigint, AccountBalance | null>> {
  const out = new Map<bigint, AccountBalance | null>();
  for (let i = 0; i < ids.length; i += financeLimits.balanceReadsInFlight) {
    const chunk = ids.slice(i, i + financeLimits.balanceReadsInFlight);
    const found = await Promise.all(chunk.map((id) => balanceAt(ledger, id, at)));
    chunk.forEach((id, k) => out.set(id, found[k] ?? null));
  }
  return out;
}

function sidesOf(map: Map<bigint, Sides>, id: bigint): Sides {
  let s = map.get(id);
  if (s === undefined) map.set(id, (s = zeroSides()));
  return s;
}

// ── statement ────────────────────────────────────────────────────────────────────────────────

export type StatementOptions = {
  userId: string;
  currency: Currency;
  from: bigint;
  /** The instant the statement closes at. */ to: bigint;
  cut: bigint;
  format: StatementFormat;
};

/**
 * Streams a user's statement; returns the number of movements and what did not follow the
 * two-phase rules (a post or void of a hold the account does not hold open), or null when the user
 * has no account in that currency.
 */
export async function statement(
  deps: FinanceDeps,
  o: StatementOptions,
  sink: LineSink,
  progress: Progress,
): Promise<{ movements: number; problems: string[] } | null> {
  const { ledger, chart } = deps;
  const account = userAccountId(chart.space, o.currency.ledger, o.userId);
  const [found] = await ledger.lookupAccounts([account]);
  if (found === undefined) return null;
  const fold = new StatementFold(chart, account, o.from);
  const owners = new OwnerBook(ledger, chart, financeLimits.ownerCacheMax);
  const head = {
    userId: o.userId,
    currency: o.currency.code,
    scale: o.currency.scale,
    from: o.from,
    to: o.to,
  };
  let opened = false;
  let movements = 0;
  const write = async (rows: ReturnType<StatementFold["page"]>) => {
    if (rows.length === 0) return;
    if (!opened) {
      opened = true;
      await sink.write(statementOpening(o.format, head, fold.openingBalance()));
    }
    const names = await owners.resolve(rows.map((r) => r.counterparty).filter((id) => id !== 0n));
    await sink.write(
      rows.map((r) => statementRow(o.format, head, r, names.get(r.counterparty) ?? "")).join(""),
    );
    movements += rows.length;
  };
  // Transfers and history entries are paged over the same range; an account with history has one
  // entry per transfer, so the pages line up one to one.
  const upTo = o.to - 1n < o.cut ? o.to - 1n : o.cut; // movements before `to`, as the journal's range
  const history = accountBalancePages(ledger, account, 1n, upTo, financeLimits.pageMax);
  for await (const transfers of accountTransferPages(
    ledger,
    account,
    1n,
    upTo,
    financeLimits.pageMax,
  )) {
    const entries = await history.next();
    await write(fold.page(transfers, entries.done === true ? [] : entries.value));
    progress.tick(() => `${movements} movements`);
  }
  const end = fold.finish(o.to);
  await write(end.rows);
  if (!opened) await sink.write(statementOpening(o.format, head, end.opening));
  await sink.write(statementClosing(o.format, head, end.closing, movements));
  return { movements, problems: fold.problems };
}
