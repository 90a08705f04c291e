// What an applied operation's event needs from the ledger: the userIds behind accounts (captures and
// releases name only their hold) and each touched account's balance right after the operation,
// read from the account history at the operation's own timestamps, so a replay reads the same.
import { AccountFilterFlags, type AccountBalance } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import { currencyByLedger, userAccountId, type Chart, type Currency } from "../domain/accounts.ts";
import { commandOf, type CommandFields } from "../domain/commands.ts";
import type { BalanceLine } from "../domain/events.ts";
import { userBalance } from "../domain/money.ts";
import type { Operation, Verdict } from "../domain/resolve.ts";
import type { Ledger } from "../ledger/port.ts";
import type { NameBook } from "./name-book.ts";
import { HISTORY_READ_ROWS_MAX, LEDGER_EVENTS_MAX } from "../config/limits.ts";

export type Applied = { op: Operation; verdict: Extract<Verdict, { kind: "applied" }> };
export type AppliedFacts = {
  fields: CommandFields;
  balances: BalanceLine[];
  ledgerTimestamp: bigint;
};

type Touch = { account: bigint; userId: string | null; currency: string };

function userTouch(chart: Chart, currency: Currency, userId: string): Touch {
  return {
    account: userAccountId(chart.space, currency.ledger, userId),
    userId,
    currency: currency.code,
  };
}

function touches(chart: Chart, a: Applied): { touches: Touch[]; fields: CommandFields } {
  const d = a.op.decoded;
  // A command a limit rejects today may have been applied under a larger limit: it has its command.
  const c = commandOf(d);
  assert(c !== null, "only commands are applied");
  switch (c.type) {
    case "credit":
    case "debit":
    case "hold": {
      const { currency, fields } = decidedIn(chart, a, c.currency, d.fields);
      return { touches: [userTouch(chart, currency, c.userId)], fields };
    }
    case "transfer": {
      const { currency, fields } = decidedIn(chart, a, c.currency, d.fields);
      return {
        touches: [userTouch(chart, currency, c.fromUserId), userTouch(chart, currency, c.toUserId)],
        fields,
      };
    }
    case "capture":
    case "release": {
      const hold = a.verdict.hold;
      assert(hold !== null, "a capture or release is applied with its hold");
      const currency = currencyByLedger(chart, hold.ledger);
      assert(currency !== undefined, `hold on unconfigured ledger ${hold.ledger}`);
      return {
        touches: [{ account: hold.debitAccountId, userId: null, currency: currency.code }],
        fields: { ...d.fields, amount: hold.amount.toString(), currency: currency.code },
      };
    }
  }
}

/**
 * The currency an operation was applied in: the recorded ledger's on a replay. A command without a
 * currency took the default of its first decision; the default may have changed since, and the
 * replayed event must be the first one (same currency, balances of the same account).
 */
function decidedIn(
  chart: Chart,
  a: Applied,
  decoded: Currency,
  fields: CommandFields,
): { currency: Currency; fields: CommandFields } {
  const ledger = a.verdict.ledger;
  if (ledger === undefined || ledger === decoded.ledger) return { currency: decoded, fields };
  const currency = currencyByLedger(chart, ledger);
  assert(currency !== undefined, `operation applied on unconfigured ledger ${ledger}`);
  return { currency, fields: { ...fields, currency: currency.code } };
}

/** Rows of one account an operation's range can hold: its legs (a transfer and a fee or a post). */
const RANGE_ROWS_MAX = 2;

type Range = { lo: bigint; hi: bigint };

/**
 * The limit of a history read whose open ranges are `open`: the rows those ranges can hold, plus
 * one, so a page shorter than its limit proves nothing is left. Why not always the maximum: the
 * TigerBeetle client packs concurrent reads into one message to the cluster only while the sum of
 * their limits fits one reply (8189 rows); at 256 rows each, 31 accounts fill a message, while
 * a batch's own operations, applied in one request, leave no foreign row between their ranges, so
 * the exact bound answers every range in one read and a whole batch's reads share one message.
 */
function readLimit(open: number): number {
  return Math.min(HISTORY_READ_ROWS_MAX, RANGE_ROWS_MAX * open + 1);
}

/**
 * The account's history rows inside the ranges (among them, the last row in [lo, hi] answers each
 * range), in ascending order. One read covers as many consecutive ranges as its rows reach; the
 * next one starts at the first range not covered, skipping whatever lies between. Only rows inside
 * a range are kept, so memory is bounded by the operations (two legs each), not by the reads.
 * Ranges of distinct operations are disjoint (a chain's legs take consecutive timestamps).
 */
async function history(
  ledger: Ledger,
  account: bigint,
  ranges: Range[],
): Promise<AccountBalance[]> {
  assert(
    ranges.length > 0 && HISTORY_READ_ROWS_MAX <= LEDGER_EVENTS_MAX,
    "a history read has a range and a valid limit",
  );
  ranges.sort(byLo);
  const to = (ranges[ranges.length - 1] as Range).hi;
  const rows: AccountBalance[] = [];
  for (let open = 0, kept = 0, min = (ranges[0] as Range).lo; ;) {
    const limit = readLimit(ranges.length - open);
    const page = await ledger.getAccountBalances({
      account_id: account,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: 0,
      timestamp_min: min,
      timestamp_max: to,
      limit,
      flags: AccountFilterFlags.debits | AccountFilterFlags.credits,
    });
    for (const row of page) {
      while (kept < ranges.length && (ranges[kept] as Range).hi < row.timestamp) kept += 1;
      if (kept < ranges.length && (ranges[kept] as Range).lo <= row.timestamp) rows.push(row);
    }
    const last = page[page.length - 1];
    if (page.length < limit || last === undefined) return rows;
    while (open < ranges.length && (ranges[open] as Range).hi <= last.timestamp) open += 1;
    if (open === ranges.length) return rows;
    const next = (ranges[open] as Range).lo;
    min = next > last.timestamp ? next : last.timestamp + 1n; // strictly forward: the loop ends
  }
}

function byLo(a: Range, b: Range): number {
  return a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0;
}

/** The account's history rows inside the ranges, under `account` in `rows`. */
async function historyInto(
  rows: Map<bigint, AccountBalance[]>,
  ledger: Ledger,
  account: bigint,
  ranges: Range[],
): Promise<void> {
  rows.set(account, await history(ledger, account, ranges));
}

/** The last row at or before `hi` and at or after `lo`. */
function rowIn(
  rows: ReadonlyArray<AccountBalance>,
  lo: bigint,
  hi: bigint,
): AccountBalance | undefined {
  let found: AccountBalance | undefined;
  for (const r of rows) {
    if (r.timestamp > hi) break;
    if (r.timestamp >= lo) found = r;
  }
  return found;
}

export async function appliedFacts(
  ledger: Ledger,
  chart: Chart,
  names: NameBook,
  applied: ReadonlyArray<Applied>,
): Promise<Map<bigint, AppliedFacts>> {
  // Loops, not closures made per batch: those lose their optimized code at every full GC and are
  // compiled again (V8 keeps that code only while a closure holding it lives).
  const plans: Array<{ a: Applied; touches: Touch[]; fields: CommandFields }> = [];
  const unnamed: bigint[] = [];
  for (const a of applied) {
    const t = touches(chart, a);
    plans.push({ a, touches: t.touches, fields: t.fields });
    for (const touch of t.touches) if (touch.userId === null) unnamed.push(touch.account);
  }
  const ranges = new Map<bigint, Range[]>();
  for (const p of plans) {
    const ts = p.a.verdict.timestamps;
    const range = { lo: ts[0] as bigint, hi: ts[ts.length - 1] as bigint };
    for (const t of p.touches) {
      const r = ranges.get(t.account);
      if (r) r.push(range);
      else ranges.set(t.account, [range]);
    }
  }
  // Every read at once, the names' lookup among them: the TigerBeetle client sends one request and
  // queues the rest, packing those of one operation into one message (see readLimit).
  const rows = new Map<bigint, AccountBalance[]>();
  const naming =
    unnamed.length > 0
      ? names.resolve(ledger, unnamed)
      : Promise.resolve(new Map<bigint, string>());
  const reads: Promise<void>[] = [];
  for (const [account, r] of ranges) reads.push(historyInto(rows, ledger, account, r));
  const [named] = await Promise.all([naming, ...reads]);
  const out = new Map<bigint, AppliedFacts>();
  for (const p of plans) {
    const ts = p.a.verdict.timestamps;
    const balances: BalanceLine[] = [];
    for (const t of p.touches) {
      const row = rowIn(rows.get(t.account) ?? [], ts[0] as bigint, ts[ts.length - 1] as bigint);
      assert(
        row !== undefined,
        `no history row for account ${t.account} at operation ${p.a.op.id}`,
      );
      const userId = t.userId ?? named.get(t.account);
      assert(userId !== undefined, "every touched account has a userId");
      balances.push({ userId, currency: t.currency, ...userBalance(row) });
    }
    const userId = p.touches[0]?.userId === null ? balances[0]?.userId : undefined;
    const fields = userId === undefined ? p.fields : { userId, ...p.fields };
    out.set(p.a.op.id, { fields, balances, ledgerTimestamp: ts[0] as bigint });
  }
  return out;
}
