// The read path: lookups by id, an account's transfers and balance history, and queries by
// timestamp range with optional field filters. Filter validity follows get_scan_from_account_filter
// and get_scan_from_query_filter: an invalid filter is not an error, it matches nothing.
//
// An account's transfers are read by walking its chain (history.ts): O(log n) rows to find where
// the timestamp range starts, then one row per transfer of the account in the range, filtered
// here. Queries scan the timestamp range of the table in order and filter rows. Either way the
// cost is the size of the range scanned, not of the result.
import type Database from "better-sqlite3";
import {
  AccountFilterFlags,
  AccountFlags,
  QueryFilterFlags,
  type Account,
  type AccountBalance,
  type AccountFilter,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import {
  balancesFromSql,
  intFromSql,
  u128FromSql,
  u128ToSql,
  u64FromSql,
  u64ToSql,
  type SqlU128,
} from "./encoding.ts";
import { atSeq, chainFromSql, lastAtOrBefore, type Chain, type Link } from "./history.ts";
import { ascendingWalkMax, timestampMax, u128Max } from "../config/limits.ts";
import {
  accountColumns,
  accountFromRow,
  transferByIdSql,
  transferColumns,
  transferFromRow,
} from "./store.ts";

type Row = unknown[];
type Order = "ASC" | "DESC";

/** What a chain walk reads per transfer: whose side it is, both sides' links, the filterable fields. */
const entryColumns =
  "debit_account_id, debit_prev, debit_jump, debit_seq, credit_prev, credit_jump, credit_seq, user_data_128, user_data_64, user_data_32, code";

const accountFilterFlagsKnown =
  AccountFilterFlags.debits | AccountFilterFlags.credits | AccountFilterFlags.reversed;

function timestampValid(timestamp: bigint): boolean {
  return timestamp === 0n || timestamp <= timestampMax;
}

function rangeValid(min: bigint, max: bigint): boolean {
  return timestampValid(min) && timestampValid(max) && (max === 0n || min <= max);
}

export function accountFilterValid(f: AccountFilter): boolean {
  return (
    f.account_id !== 0n &&
    f.account_id !== u128Max &&
    rangeValid(f.timestamp_min, f.timestamp_max) &&
    f.limit !== 0 &&
    (f.flags & (AccountFilterFlags.debits | AccountFilterFlags.credits)) !== 0 &&
    (f.flags & ~accountFilterFlagsKnown) === 0
  );
}

export function queryFilterValid(f: QueryFilter): boolean {
  return (
    rangeValid(f.timestamp_min, f.timestamp_max) &&
    f.limit !== 0 &&
    (f.flags & ~QueryFilterFlags.reversed) === 0
  );
}

/** Named parameters shared by every filtered scan; a zero field is "no filter" (NULL). */
function filterParams(f: {
  user_data_128: bigint;
  user_data_64: bigint;
  user_data_32: number;
  code: number;
  timestamp_min: bigint;
  timestamp_max: bigint;
  limit: number;
}) {
  return {
    min: f.timestamp_min === 0n ? 1n : f.timestamp_min,
    max: f.timestamp_max === 0n ? timestampMax : f.timestamp_max,
    ud128: f.user_data_128 === 0n ? null : u128ToSql(f.user_data_128),
    ud64: f.user_data_64 === 0n ? null : u64ToSql(f.user_data_64),
    ud32: f.user_data_32 === 0 ? null : f.user_data_32,
    code: f.code === 0 ? null : f.code,
    limit: f.limit,
  };
}

const fieldFilters =
  "(@ud128 IS NULL OR t.user_data_128 = @ud128) AND (@ud64 IS NULL OR t.user_data_64 = @ud64) AND " +
  "(@ud32 IS NULL OR t.user_data_32 = @ud32) AND (@code IS NULL OR t.code = @code)";

export class Reads {
  private readonly s: ReturnType<typeof prepareReads>;

  constructor(db: Database.Database) {
    this.s = prepareReads(db);
  }

  lookupAccounts(ids: ReadonlyArray<bigint>): Account[] {
    const found: Account[] = [];
    for (const id of ids) {
      const r = this.s.accountById.get(u128ToSql(id)) as Row | undefined;
      if (r !== undefined) found.push(accountFromRow(r));
    }
    return found;
  }

  lookupTransfers(ids: ReadonlyArray<bigint>): Transfer[] {
    const found: Transfer[] = [];
    for (const id of ids) {
      const r = this.s.transferById.get(u128ToSql(id)) as Row | undefined;
      if (r !== undefined) found.push(transferFromRow(r));
    }
    return found;
  }

  getAccountTransfers(f: AccountFilter): Transfer[] {
    if (!accountFilterValid(f)) return [];
    const account = this.s.accountHead.get(u128ToSql(f.account_id)) as Row | undefined;
    if (account === undefined) return [];
    return this.accountEntries(f, account).map((e) =>
      transferFromRow(this.s.transferAt.get(e.link.timestamp) as Row),
    );
  }

  getAccountBalances(f: AccountFilter): AccountBalance[] {
    if (!accountFilterValid(f)) return [];
    const account = this.s.accountHead.get(u128ToSql(f.account_id)) as Row | undefined;
    if (account === undefined || (Number(account[1]) & AccountFlags.history) === 0) return [];
    return this.accountEntries(f, account).map((e) => {
      const sides = this.s.balancesAt.get(e.link.timestamp) as Row;
      return { ...balancesFromSql(sides[e.debit ? 0 : 1]), timestamp: e.link.timestamp };
    });
  }

  queryAccounts(f: QueryFilter): Account[] {
    if (!queryFilterValid(f)) return [];
    const statement =
      (f.flags & QueryFilterFlags.reversed) !== 0
        ? this.s.queryAccountsDesc
        : this.s.queryAccountsAsc;
    return (
      statement.all({ ...filterParams(f), ledger: f.ledger === 0 ? null : f.ledger }) as Row[]
    ).map(accountFromRow);
  }

  queryTransfers(f: QueryFilter): Transfer[] {
    if (!queryFilterValid(f)) return [];
    const statement =
      (f.flags & QueryFilterFlags.reversed) !== 0
        ? this.s.queryTransfersDesc
        : this.s.queryTransfersAsc;
    return (
      statement.all({ ...filterParams(f), ledger: f.ledger === 0 ? null : f.ledger }) as Row[]
    ).map(transferFromRow);
  }

  /**
   * The account's transfers matching the filter, in the filter's order, at most `limit`, as chain
   * entries: the walk reads only links and filtered fields; callers fetch what they return.
   */
  private accountEntries(f: AccountFilter, account: Row): Entry[] {
    const accountId = u128ToSql(f.account_id);
    const chain = chainFromSql(account[2], account[3]);
    const entryAt = (timestamp: bigint): Entry => {
      const row = this.s.entryAt.get(timestamp) as Row;
      const debit = sameU128(row[0], accountId);
      return {
        row,
        debit,
        link: {
          timestamp,
          prev: row[debit ? 1 : 4] as bigint,
          jump: row[debit ? 2 : 5] as bigint,
          seq: Number(row[debit ? 3 : 6]),
        },
      };
    };
    const range = {
      min: f.timestamp_min === 0n ? 1n : f.timestamp_min,
      max: f.timestamp_max === 0n ? timestampMax : f.timestamp_max,
    };
    const matches = entryFilter(f);
    if ((f.flags & AccountFilterFlags.reversed) !== 0)
      return descending(chain, range, f.limit, entryAt, matches);
    return ascending(chain, range, f.limit, entryAt, matches);
  }
}

/** One transfer of an account's chain, from `entryColumns`. */
interface Entry {
  row: Row;
  /** Whether the account is this transfer's debit account. */
  debit: boolean;
  link: Link;
}

/** Whether a stored u128 is the given encoded value (encodings are canonical). */
function sameU128(stored: unknown, value: SqlU128): boolean {
  return typeof value === "bigint"
    ? stored === value
    : Buffer.isBuffer(stored) && value.equals(stored);
}

function entryFilter(f: AccountFilter): (e: Entry) => boolean {
  const debits = (f.flags & AccountFilterFlags.debits) !== 0;
  const credits = (f.flags & AccountFilterFlags.credits) !== 0;
  return ({ row, debit }) =>
    (debit ? debits : credits) &&
    (f.user_data_128 === 0n || u128FromSql(row[7]) === f.user_data_128) &&
    (f.user_data_64 === 0n || u64FromSql(row[8]) === f.user_data_64) &&
    (f.user_data_32 === 0 || intFromSql(row[9]) === f.user_data_32) &&
    (f.code === 0 || intFromSql(row[10]) === f.code);
}

type Range = { min: bigint; max: bigint };

/** Newest first: from the last transfer at or before max, back along `prev` until min or `limit`. */
function descending(
  chain: Chain,
  range: Range,
  limit: number,
  entryAt: (ts: bigint) => Entry,
  matches: (e: Entry) => boolean,
): Entry[] {
  const out: Entry[] = [];
  const start = lastAtOrBefore(chain, range.max, (ts) => entryAt(ts).link);
  for (let at = start?.timestamp ?? 0n; at >= range.min && at !== 0n && out.length < limit;) {
    const e = entryAt(at);
    if (matches(e)) out.push(e);
    at = e.link.prev;
  }
  return out;
}

/**
 * Oldest first. The chain only points backwards, so it reads windows of seqs from the first
 * transfer at or after min: seek the window's last seq, walk back to its first, keep the matches
 * in order. Windows start at `limit` transfers and double, so an unfiltered page costs one window.
 */
function ascending(
  chain: Chain,
  range: Range,
  limit: number,
  entryAt: (ts: bigint) => Entry,
  matches: (e: Entry) => boolean,
): Entry[] {
  const linkAt = (ts: bigint) => entryAt(ts).link;
  const last = lastAtOrBefore(chain, range.max, linkAt);
  if (last === null) return [];
  const near = walkBack(last, range.min, ascendingWalkMax, entryAt);
  if (near !== null) return near.filter(matches).slice(0, limit);
  const before = range.min > 1n ? lastAtOrBefore(chain, range.min - 1n, linkAt) : null;
  const out: Entry[] = [];
  let window = limit;
  for (
    let from = (before?.seq ?? 0) + 1;
    from <= last.seq && out.length < limit;
    from += window, window *= 2
  ) {
    const to = Math.min(last.seq, from + window - 1);
    const part: Entry[] = [];
    let at = atSeq(last, to, linkAt).timestamp;
    for (let seq = to; seq >= from; seq--) {
      const e = entryAt(at);
      if (matches(e)) part.push(e);
      at = e.link.prev;
    }
    part.reverse();
    out.push(...part.slice(0, limit - out.length));
  }
  return out;
}

/**
 * The range's entries, oldest first, read back from `last` along `prev`, when there are at most
 * `stepsMax` of them; null when there are more. The common read (an account's balances over the
 * batch that just wrote it) has one to three entries at the end of a long chain: this finds them
 * without the two chain seeks below, which cost O(log n) reads each.
 */
function walkBack(
  last: Link,
  min: bigint,
  stepsMax: number,
  entryAt: (ts: bigint) => Entry,
): Entry[] | null {
  const out: Entry[] = [];
  for (let at = last.timestamp; at !== 0n && at >= min;) {
    if (out.length === stepsMax) return null;
    const e = entryAt(at);
    out.push(e);
    at = e.link.prev;
  }
  return out.reverse();
}

function prepareReads(db: Database.Database) {
  const row = (sql: string) => db.prepare(sql).raw(true);
  const queryAccounts = (order: Order) =>
    row(
      `SELECT ${accountColumns} FROM accounts t WHERE t.timestamp BETWEEN @min AND @max AND ${fieldFilters} ` +
        `AND (@ledger IS NULL OR t.ledger = @ledger) ORDER BY t.timestamp ${order} LIMIT @limit`,
    );
  const queryTransfers = (order: Order) =>
    row(
      `SELECT ${transferColumns} FROM transfers t WHERE t.timestamp BETWEEN @min AND @max AND ${fieldFilters} ` +
        `AND (@ledger IS NULL OR t.ledger = @ledger) ORDER BY t.timestamp ${order} LIMIT @limit`,
    );
  return {
    accountById: row(`SELECT ${accountColumns} FROM accounts WHERE id = ?`),
    accountHead: row(
      "SELECT timestamp, flags, history_count, history_spine FROM accounts WHERE id = ?",
    ),
    transferById: row(transferByIdSql),
    entryAt: row(`SELECT ${entryColumns} FROM transfers WHERE timestamp = ?`),
    transferAt: row(`SELECT ${transferColumns} FROM transfers t WHERE t.timestamp = ?`),
    balancesAt: row("SELECT debit_balances, credit_balances FROM transfers WHERE timestamp = ?"),
    queryAccountsAsc: queryAccounts("ASC"),
    queryAccountsDesc: queryAccounts("DESC"),
    queryTransfersAsc: queryTransfers("ASC"),
    queryTransfersDesc: queryTransfers("DESC"),
  };
}
