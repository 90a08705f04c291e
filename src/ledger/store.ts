// The thin SQLite layer of the write path: prefetch what a batch needs into a RequestState, and
// write what it changed. Every statement is prepared once; rows are read as arrays (raw) with
// bigint integers. Nothing here decides anything.
import type Database from "better-sqlite3";
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import {
  balancesToSql,
  intFromSql,
  u128FromSql,
  u128ToSql,
  u64FromSql,
  u64ToSql,
} from "./encoding.ts";
import { append, chainFromSql, chainToSql, emptyChain, type Chain } from "./history.ts";
import { batchIdRangeRowsMax, u128Max } from "../config/limits.ts";
import type {
  CreatedTransfer,
  PendingRecord,
  PendingStatus,
  Prefetched,
  RequestState,
} from "./request-state.ts";

type Row = unknown[];

export const accountColumns =
  "timestamp, id, debits_pending, debits_posted, credits_pending, credits_posted, user_data_128, user_data_64, user_data_32, ledger, code, flags";
/** An account row with its transfer chain (history.ts): what the write path caches. */
export const accountRecordColumns = `${accountColumns}, history_count, history_spine`;

export const transferColumns =
  "t.timestamp, t.id, t.debit_account_id, t.credit_account_id, t.amount, t.pending_id, t.user_data_128, t.user_data_64, t.user_data_32, t.timeout, t.ledger, t.code, t.flags";
/** A transfer by id: through transfer_ids (a burned id has timestamp 0 and joins no transfer). */
export const transferByIdSql = `SELECT ${transferColumns} FROM transfer_ids i JOIN transfers t ON t.timestamp = i.timestamp WHERE i.id = ?`;

export function accountFromRow(r: Row): Account {
  return {
    id: u128FromSql(r[1]),
    debits_pending: u128FromSql(r[2]),
    debits_posted: u128FromSql(r[3]),
    credits_pending: u128FromSql(r[4]),
    credits_posted: u128FromSql(r[5]),
    user_data_128: u128FromSql(r[6]),
    user_data_64: u64FromSql(r[7]),
    user_data_32: intFromSql(r[8]),
    reserved: 0,
    ledger: intFromSql(r[9]),
    code: intFromSql(r[10]),
    flags: intFromSql(r[11]),
    timestamp: r[0] as bigint,
  };
}

export function transferFromRow(r: Row): Transfer {
  return {
    id: u128FromSql(r[1]),
    debit_account_id: u128FromSql(r[2]),
    credit_account_id: u128FromSql(r[3]),
    amount: u128FromSql(r[4]),
    pending_id: u128FromSql(r[5]),
    user_data_128: u128FromSql(r[6]),
    user_data_64: u64FromSql(r[7]),
    user_data_32: intFromSql(r[8]),
    timeout: intFromSql(r[9]),
    ledger: intFromSql(r[10]),
    code: intFromSql(r[11]),
    flags: intFromSql(r[12]),
    timestamp: r[0] as bigint,
  };
}

/** An account with the head of its transfer chain. */
export interface AccountRecord {
  account: Account;
  chain: Chain;
}

export function accountRecordFromRow(r: Row): AccountRecord {
  return { account: accountFromRow(r), chain: chainFromSql(r[12], r[13]) };
}

export interface Meta {
  lastTimestamp: bigint;
  commitSeq: bigint;
}

export class Store {
  private readonly s: ReturnType<typeof prepare>;

  constructor(readonly db: Database.Database) {
    this.s = prepare(db);
  }

  meta(): Meta {
    const r = this.s.meta.get() as Row;
    return { lastTimestamp: r[0] as bigint, commitSeq: r[1] as bigint };
  }

  writeMeta(meta: Meta): void {
    this.s.writeMeta.run(meta.lastTimestamp, meta.commitSeq);
  }

  accountById(id: bigint): AccountRecord | undefined {
    const r = this.s.accountById.get(u128ToSql(id)) as Row | undefined;
    return r === undefined ? undefined : accountRecordFromRow(r);
  }

  /** What an id is: never used (undefined), burned (0), or the timestamp of its transfer. */
  transferIdState(id: bigint): bigint | undefined {
    return this.s.transferIdState.get(u128ToSql(id)) as bigint | undefined;
  }

  /**
   * The used ids between min and max (inclusive) with their states, or null when there are more
   * than `limit`. The u128 encoding keeps numeric order (integers sort before blobs, blobs are
   * big-endian), so this is one range scan of the transfer_ids B-tree.
   */
  transferIdsBetween(min: bigint, max: bigint, limit: number): Map<bigint, bigint> | null {
    const rows = this.s.transferIdsBetween.all(u128ToSql(min), u128ToSql(max), limit + 1) as Row[];
    if (rows.length > limit) return null;
    return new Map(rows.map((r) => [u128FromSql(r[0]), r[1] as bigint]));
  }

  transferByTimestamp(timestamp: bigint): Transfer | undefined {
    const r = this.s.transferByTimestamp.get(timestamp) as Row | undefined;
    return r === undefined ? undefined : transferFromRow(r);
  }

  pendingRecord(timestamp: bigint): PendingRecord | undefined {
    const r = this.s.pendingByTimestamp.get(timestamp) as Row | undefined;
    if (r === undefined) return undefined;
    return { expiresAt: r[0] as bigint, status: intFromSql(r[1]) as PendingStatus };
  }

  /** Timestamps of pending transfers whose deadline is at or before `now`, oldest deadline first. */
  dueTimestamps(now: bigint, limit: number): bigint[] {
    return this.s.due.all(now, limit) as bigint[];
  }

  anyDue(now: bigint): boolean {
    return this.s.anyDue.get(now) !== undefined;
  }

  timestampMaxes(): { accounts: bigint; transfers: bigint } {
    const r = this.s.timestampMaxes.get() as Row;
    return { accounts: r[0] as bigint, transfers: r[1] as bigint };
  }

  accountAt(timestamp: bigint): boolean {
    return this.s.accountAt.get(timestamp) !== undefined;
  }

  transferAt(timestamp: bigint): boolean {
    return this.s.transferAt.get(timestamp) !== undefined;
  }

  /**
   * Writes everything a request created or changed, appending each created transfer to both its
   * accounts' chains in timestamp order. Accounts are written once, in their final state. Returns
   * the records of every account the request saw, as now stored.
   */
  flush(state: RequestState, chains: Map<bigint, Chain>): AccountRecord[] {
    for (const a of state.createdAccounts) {
      this.s.insertAccount.run(...accountRow(a), 0, chainToSql(emptyChain));
      chains.set(a.id, emptyChain);
    }
    for (const created of state.createdTransfers) this.insertTransfer(chains, created);
    for (const id of state.changedAccounts) {
      const a = state.account(id) as Account;
      const chain = chains.get(id) as Chain;
      this.s.updateAccount.run(
        u128ToSql(a.debits_pending),
        u128ToSql(a.debits_posted),
        u128ToSql(a.credits_pending),
        u128ToSql(a.credits_posted),
        a.flags,
        chain.count,
        chainToSql(chain),
        a.timestamp,
      );
    }
    for (const timestamp of state.changedPending) {
      const record = state.pendingRecord(timestamp) as PendingRecord;
      this.s.upsertPending.run(timestamp, record.expiresAt, record.status);
    }
    for (const id of state.newFailedIds) this.s.insertTransferId.run(u128ToSql(id), 0n);
    return Array.from(state.knownAccounts(), (account) => ({
      account,
      chain: chains.get(account.id) as Chain,
    }));
  }

  private insertTransfer(chains: Map<bigint, Chain>, created: CreatedTransfer): void {
    const { transfer: t, debitBalances, creditBalances } = created;
    const drChain = chains.get(t.debit_account_id);
    const crChain = chains.get(t.credit_account_id);
    assert(
      drChain !== undefined && crChain !== undefined,
      "a created transfer's accounts are prefetched",
    );
    const debit = append(drChain, t.timestamp);
    const credit = append(crChain, t.timestamp);
    chains.set(t.debit_account_id, debit.next);
    chains.set(t.credit_account_id, credit.next);
    const id = u128ToSql(t.id);
    this.s.insertTransferId.run(id, t.timestamp);
    this.s.insertTransfer.run(
      t.timestamp,
      id,
      u128ToSql(t.debit_account_id),
      u128ToSql(t.credit_account_id),
      u128ToSql(t.amount),
      u128ToSql(t.pending_id),
      u128ToSql(t.user_data_128),
      u64ToSql(t.user_data_64),
      t.user_data_32,
      t.timeout,
      t.ledger,
      t.code,
      t.flags,
      debit.link.prev,
      debit.link.jump,
      debit.link.seq,
      credit.link.prev,
      credit.link.jump,
      credit.link.seq,
      debitBalances === null ? null : balancesToSql(debitBalances),
      creditBalances === null ? null : balancesToSql(creditBalances),
    );
  }
}

function accountRow(a: Account): unknown[] {
  return [
    a.timestamp,
    u128ToSql(a.id),
    u128ToSql(a.debits_pending),
    u128ToSql(a.debits_posted),
    u128ToSql(a.credits_pending),
    u128ToSql(a.credits_posted),
    u128ToSql(a.user_data_128),
    u64ToSql(a.user_data_64),
    a.user_data_32,
    a.ledger,
    a.code,
    a.flags,
  ];
}

function prepare(db: Database.Database) {
  const row = (sql: string) => db.prepare(sql).raw(true);
  return {
    meta: row("SELECT last_timestamp, commit_seq FROM meta WHERE singleton = 1"),
    writeMeta: db.prepare("UPDATE meta SET last_timestamp = ?, commit_seq = ? WHERE singleton = 1"),
    accountById: row(`SELECT ${accountRecordColumns} FROM accounts WHERE id = ?`),
    transferIdState: db.prepare("SELECT timestamp FROM transfer_ids WHERE id = ?").pluck(),
    transferIdsBetween: row(
      "SELECT id, timestamp FROM transfer_ids WHERE id BETWEEN ? AND ? ORDER BY id LIMIT ?",
    ),
    transferByTimestamp: row(`SELECT ${transferColumns} FROM transfers t WHERE t.timestamp = ?`),
    pendingByTimestamp: row("SELECT expires_at, status FROM pending_transfers WHERE timestamp = ?"),
    due: db
      .prepare(
        "SELECT timestamp FROM pending_transfers WHERE status = 1 AND expires_at > 0 AND expires_at <= ? ORDER BY expires_at, timestamp LIMIT ?",
      )
      .pluck(),
    anyDue: row(
      "SELECT 1 FROM pending_transfers WHERE status = 1 AND expires_at > 0 AND expires_at <= ? LIMIT 1",
    ),
    timestampMaxes: row(
      "SELECT (SELECT coalesce(max(timestamp), 0) FROM accounts), (SELECT coalesce(max(timestamp), 0) FROM transfers)",
    ),
    accountAt: row("SELECT 1 FROM accounts WHERE timestamp = ?"),
    transferAt: row("SELECT 1 FROM transfers WHERE timestamp = ?"),
    insertAccount: db.prepare(
      `INSERT INTO accounts (${accountRecordColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    updateAccount: db.prepare(
      "UPDATE accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?, credits_posted = ?, flags = ?, " +
        "history_count = ?, history_spine = ? WHERE timestamp = ?",
    ),
    insertTransfer: db.prepare(
      `INSERT INTO transfers VALUES (${new Array(21).fill("?").join(", ")})`,
    ),
    upsertPending: db.prepare(
      "INSERT OR REPLACE INTO pending_transfers (timestamp, expires_at, status) VALUES (?, ?, ?)",
    ),
    insertTransferId: db.prepare("INSERT INTO transfer_ids (id, timestamp) VALUES (?, ?)"),
  };
}

/** What a request runs on, and the chains of the accounts in it (used only when writing). */
export interface Prefetch {
  prefetched: Prefetched;
  chains: Map<bigint, Chain>;
}

/**
 * What a create_transfers batch needs, read through `records` (the process's account cache, which
 * falls back to the store): each event's transfer id (existing or burned), each post/void's
 * pending transfer with its resolution state, every account either one names, and for imported
 * batches the timestamp facts the imported checks use.
 */
export function prefetchTransfers(
  store: Store,
  events: ReadonlyArray<Transfer>,
  records: (id: bigint) => AccountRecord | undefined,
): Prefetch {
  const transfers = new Map<bigint, Transfer>();
  const failedIds: bigint[] = [];
  const pending = new Map<bigint, PendingRecord>();
  const accountIds: bigint[] = [];
  const batchIds = usedIdsOfBatch(store, events);
  const lookup = (id: bigint, fromBatch: boolean) => {
    if (id === 0n || id === u128Max || transfers.has(id)) return;
    const timestamp = fromBatch && batchIds !== null ? batchIds.get(id) : store.transferIdState(id);
    if (timestamp === undefined) return;
    if (timestamp === 0n) {
      failedIds.push(id);
      return;
    }
    const t = store.transferByTimestamp(timestamp) as Transfer;
    transfers.set(id, t);
    accountIds.push(t.debit_account_id, t.credit_account_id);
    if ((t.flags & TransferFlags.pending) !== 0)
      pending.set(t.timestamp, store.pendingRecord(t.timestamp) as PendingRecord);
  };
  for (const e of events) {
    lookup(e.id, true);
    if (
      (e.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !==
      0
    )
      lookup(e.pending_id, false);
    accountIds.push(e.debit_account_id, e.credit_account_id);
  }
  const imported = events.some((e) => (e.flags & TransferFlags.imported) !== 0);
  const chains = new Map<bigint, Chain>();
  return {
    prefetched: {
      accounts: loadAccounts(accountIds, records, chains),
      transfers: transfers.values(),
      failedIds,
      pending,
      ...importFacts(store, imported ? events.map((e) => e.timestamp) : []),
    },
    chains,
  };
}

/**
 * The batch's own ids that are already used, by one range scan when few used ids lie between the
 * batch's smallest and largest id (time-ordered ids: the range is the end of the table), else null
 * (each id is then probed on its own).
 */
function usedIdsOfBatch(store: Store, events: ReadonlyArray<Transfer>): Map<bigint, bigint> | null {
  let min = u128Max;
  let max = 0n;
  for (const e of events) {
    if (e.id < min) min = e.id;
    if (e.id > max) max = e.id;
  }
  return events.length === 0
    ? null
    : store.transferIdsBetween(min, max, Math.min(events.length, batchIdRangeRowsMax));
}

export function prefetchAccounts(
  store: Store,
  events: ReadonlyArray<Account>,
  records: (id: bigint) => AccountRecord | undefined,
): Prefetch {
  const imported = events.some((e) => (e.flags & AccountFlags.imported) !== 0);
  const chains = new Map<bigint, Chain>();
  return {
    prefetched: {
      accounts: loadAccounts(
        events.map((e) => e.id),
        records,
        chains,
      ),
      transfers: [],
      failedIds: [],
      pending: [],
      ...importFacts(store, imported ? events.map((e) => e.timestamp) : []),
    },
    chains,
  };
}

/** The accounts and pending records the expiry of `due` (pending transfers) touches. */
export function prefetchExpiries(
  store: Store,
  due: ReadonlyArray<Transfer>,
  records: (id: bigint) => AccountRecord | undefined,
): Prefetch {
  const ids = due.flatMap((p) => [p.debit_account_id, p.credit_account_id]);
  const chains = new Map<bigint, Chain>();
  return {
    prefetched: {
      accounts: loadAccounts(ids, records, chains),
      transfers: due,
      failedIds: [],
      pending: due.map((p) => [p.timestamp, store.pendingRecord(p.timestamp) as PendingRecord]),
      accountTimestamps: [],
      transferTimestamps: [],
      accountTimestampMax: 0n,
      transferTimestampMax: 0n,
    },
    chains,
  };
}

/** Reads each account once: its state for the request, its chain for the flush. */
function loadAccounts(
  ids: Iterable<bigint>,
  records: (id: bigint) => AccountRecord | undefined,
  chains: Map<bigint, Chain>,
): Map<bigint, Account> {
  const loaded = new Map<bigint, Account>();
  for (const id of ids) {
    if (id === 0n || id === u128Max || loaded.has(id)) continue;
    const record = records(id);
    if (record === undefined) continue;
    loaded.set(id, record.account);
    chains.set(id, record.chain);
  }
  return loaded;
}

/** Only imported batches need these: the newest timestamps and which candidate timestamps are taken. */
function importFacts(store: Store, candidates: bigint[]) {
  if (candidates.length === 0) {
    return {
      accountTimestamps: [],
      transferTimestamps: [],
      accountTimestampMax: 0n,
      transferTimestampMax: 0n,
    };
  }
  const maxes = store.timestampMaxes();
  const inRange = candidates.filter((ts) => ts > 0n && ts < 1n << 63n);
  return {
    accountTimestamps: inRange.filter((ts) => store.accountAt(ts)),
    transferTimestamps: inRange.filter((ts) => store.transferAt(ts)),
    accountTimestampMax: maxes.accounts,
    transferTimestampMax: maxes.transfers,
  };
}
