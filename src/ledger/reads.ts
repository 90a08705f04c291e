// The read path: lookups by id, an account's transfers and balance history, and queries by
// timestamp range with optional field filters. Filter validity follows get_scan_from_account_filter
// and get_scan_from_query_filter: an invalid filter is not an error, it matches nothing.
//
// An account's transfers come from two index range scans (as debit account, as credit account),
// each already in timestamp order, merged here. Queries scan the timestamp range of the table in
// order and filter rows, so their cost is the size of the range, not of the result.
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
import { balancesFromSql, u128ToSql, u64ToSql } from "./encoding.ts";
import { timestampMax, u128Max } from "./limits.ts";
import { accountColumns, accountFromRow, transferColumns, transferFromRow, transferJoins } from "./store.ts";

type Row = unknown[];
type Order = "ASC" | "DESC";
type Side = "debit" | "credit";

const accountFilterFlagsKnown = AccountFilterFlags.debits | AccountFilterFlags.credits | AccountFilterFlags.reversed;

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
  return rangeValid(f.timestamp_min, f.timestamp_max) && f.limit !== 0 && (f.flags & ~QueryFilterFlags.reversed) === 0;
}

/** Named parameters shared by every filtered scan; a zero field is "no filter" (NULL). */
function filterParams(f: { user_data_128: bigint; user_data_64: bigint; user_data_32: number; code: number; timestamp_min: bigint; timestamp_max: bigint; limit: number }) {
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
    const rows = this.accountRows(f, account[0] as bigint, "rows");
    return rows.map(([, row]) => transferFromRow(row));
  }

  getAccountBalances(f: AccountFilter): AccountBalance[] {
    if (!accountFilterValid(f)) return [];
    const account = this.s.accountHead.get(u128ToSql(f.account_id)) as Row | undefined;
    if (account === undefined || (Number(account[1]) & AccountFlags.history) === 0) return [];
    return this.accountRows(f, account[0] as bigint, "balances").map(([timestamp, row]) => ({ ...balancesFromSql(row[1]), timestamp }));
  }

  queryAccounts(f: QueryFilter): Account[] {
    if (!queryFilterValid(f)) return [];
    const statement = (f.flags & QueryFilterFlags.reversed) !== 0 ? this.s.queryAccountsDesc : this.s.queryAccountsAsc;
    return (statement.all({ ...filterParams(f), ledger: f.ledger === 0 ? null : f.ledger }) as Row[]).map(accountFromRow);
  }

  queryTransfers(f: QueryFilter): Transfer[] {
    if (!queryFilterValid(f)) return [];
    const statement = (f.flags & QueryFilterFlags.reversed) !== 0 ? this.s.queryTransfersDesc : this.s.queryTransfersAsc;
    return (statement.all({ ...filterParams(f), ledger: f.ledger === 0 ? null : f.ledger }) as Row[]).map(transferFromRow);
  }

  /** Rows of the account as debit and/or credit side, merged by timestamp, at most `limit`. */
  private accountRows(f: AccountFilter, accountTimestamp: bigint, kind: "rows" | "balances"): Array<[bigint, Row]> {
    const order: Order = (f.flags & AccountFilterFlags.reversed) !== 0 ? "DESC" : "ASC";
    const params = { ...filterParams(f), account: accountTimestamp };
    const side = (which: Side): Array<[bigint, Row]> => {
      const statement = this.s.scans[kind][which][order];
      return (statement.all(params) as Row[]).map((row) => [row[0] as bigint, row]);
    };
    const debits = (f.flags & AccountFilterFlags.debits) !== 0 ? side("debit") : [];
    const credits = (f.flags & AccountFilterFlags.credits) !== 0 ? side("credit") : [];
    return merge(debits, credits, order, f.limit);
  }
}

/** Merges two lists sorted by timestamp in `order` (timestamps are unique) and keeps `limit`. */
function merge<T>(a: Array<[bigint, T]>, b: Array<[bigint, T]>, order: Order, limit: number): Array<[bigint, T]> {
  const out: Array<[bigint, T]> = [];
  let i = 0;
  let j = 0;
  while (out.length < limit && (i < a.length || j < b.length)) {
    const x = a[i];
    const y = b[j];
    const takeA = y === undefined || (x !== undefined && (order === "ASC" ? x[0] < y[0] : x[0] > y[0]));
    if (takeA) out.push(a[i++] as [bigint, T]);
    else out.push(b[j++] as [bigint, T]);
  }
  return out;
}

function prepareReads(db: Database.Database) {
  const row = (sql: string) => db.prepare(sql).raw(true);
  const scan = (kind: "rows" | "balances", side: Side, order: Order) => {
    const columns = kind === "rows" ? transferColumns : `t.timestamp, t.${side}_balances`;
    const joins = kind === "rows" ? transferJoins : "";
    return row(
      `SELECT ${columns} FROM transfers t ${joins} WHERE t.${side}_account = @account AND t.timestamp BETWEEN @min AND @max ` +
        `AND ${fieldFilters} ORDER BY t.timestamp ${order} LIMIT @limit`,
    );
  };
  const scans = (kind: "rows" | "balances") => ({
    debit: { ASC: scan(kind, "debit", "ASC"), DESC: scan(kind, "debit", "DESC") },
    credit: { ASC: scan(kind, "credit", "ASC"), DESC: scan(kind, "credit", "DESC") },
  });
  const queryAccounts = (order: Order) =>
    row(
      `SELECT ${accountColumns} FROM accounts t WHERE t.timestamp BETWEEN @min AND @max AND ${fieldFilters} ` +
        `AND (@ledger IS NULL OR t.ledger = @ledger) ORDER BY t.timestamp ${order} LIMIT @limit`,
    );
  const queryTransfers = (order: Order) =>
    row(
      `SELECT ${transferColumns} FROM transfers t ${transferJoins} WHERE t.timestamp BETWEEN @min AND @max AND ${fieldFilters} ` +
        `AND (@ledger IS NULL OR t.ledger = @ledger) ORDER BY t.timestamp ${order} LIMIT @limit`,
    );
  return {
    accountById: row(`SELECT ${accountColumns} FROM accounts WHERE id = ?`),
    accountHead: row("SELECT timestamp, flags FROM accounts WHERE id = ?"),
    transferById: row(`SELECT ${transferColumns} FROM transfers t ${transferJoins} WHERE t.id = ?`),
    scans: { rows: scans("rows"), balances: scans("balances") },
    queryAccountsAsc: queryAccounts("ASC"),
    queryAccountsDesc: queryAccounts("DESC"),
    queryTransfersAsc: queryTransfers("ASC"),
    queryTransfersDesc: queryTransfers("DESC"),
  };
}
