// The embedded engine: tigerbeetle-node's Client surface over one SQLite file that several
// processes may share. Each request is one SQLite transaction (writes: BEGIN IMMEDIATE), so
// requests are serialisable across processes; timestamps come from the meta row read inside the
// write transaction, so they increase strictly across processes too.
//
// better-sqlite3 is synchronous: a request runs to completion on the event loop once it holds the
// lock. Waiting for the lock is asynchronous: a short SQLite busy timeout, then sleeps with backoff
// until `lockWaitMs` (default lockWaitTotalMs), after which the request rejects with
// LedgerBusyError (transient).
import type Database from "better-sqlite3";
import {
  ErrorCodes,
  RequestError,
  type Account,
  type Client,
  type CreateAccountResult,
  type CreateTransferResult,
  type Transfer,
} from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import { decodeAccount, decodeAccountFilter, decodeBatch, decodeId, decodeQueryFilter, decodeTransfer } from "./input.ts";
import {
  accountCacheMax,
  expiriesPerPassMax,
  lockRetryDelayMaxMs,
  lockRetryDelayMinMs,
  lockWaitTotalMs,
} from "./limits.ts";
import { Reads } from "./reads.ts";
import { RequestState } from "./request-state.ts";
import { isBusy, openLedgerDatabase } from "./schema.ts";
import { createAccounts, createTransfers, expirePendingTransfer } from "./state-machine.ts";
import { prefetchAccounts, prefetchExpiries, prefetchTransfers, Store, type AccountRecord, type Prefetch } from "./store.ts";

/** The write lock stayed taken for `lockWaitMs`: transient, retry later. */
export class LedgerBusyError extends Error {
  override name = "LedgerBusyError";
}

export interface EmbeddedOptions {
  path: string;
  /** Wall time in nanoseconds since the Unix epoch. */
  clock?: () => bigint;
  /** Bound on waiting for the write lock; default lockWaitTotalMs. */
  lockWaitMs?: number;
}

export function wallClockNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export async function openEmbeddedLedger(options: EmbeddedOptions): Promise<Client> {
  const lockWaitMs = options.lockWaitMs ?? lockWaitTotalMs;
  assert(Number.isFinite(lockWaitMs) && lockWaitMs >= 0, "lockWaitMs is a non-negative number of milliseconds");
  const db = await retryWhileBusy(() => openLedgerDatabase(options.path), () => false, `opening ${options.path}`, lockWaitMs);
  return new EmbeddedLedger(db, options.clock ?? wallClockNs, lockWaitMs).client();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `attempt` until it does not fail with SQLITE_BUSY, sleeping between attempts, for at most `lockWaitMs`. */
async function retryWhileBusy<R>(attempt: () => R, closed: () => boolean, what: string, lockWaitMs: number): Promise<R> {
  const started = Date.now();
  let delayMs = lockRetryDelayMinMs;
  for (;;) {
    if (closed()) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
    try {
      return attempt();
    } catch (error) {
      if (!isBusy(error)) throw error;
      const waitedMs = Date.now() - started;
      if (waitedMs >= lockWaitMs) {
        throw new LedgerBusyError(`ledger database busy: gave up ${what} after ${waitedMs} ms (limit ${lockWaitMs} ms)`);
      }
      await sleep(delayMs * (0.5 + Math.random()));
      delayMs = Math.min(delayMs * 2, lockRetryDelayMaxMs);
    }
  }
}

interface WriteOutcome<R> {
  result: R;
  /** The request's own timestamp (the last one it issued). */
  timestamp: bigint;
}

class EmbeddedLedger {
  private db: Database.Database | null;
  private readonly store: Store;
  private readonly reads: Reads;
  /** Committed accounts with their chains; valid while the meta row's commit_seq equals cacheSeq. */
  private readonly cache = new Map<bigint, AccountRecord>();
  private cacheSeq = -1n;
  /** Accounts as written by the open transaction, moved to the cache after COMMIT. */
  private readonly written = new Map<bigint, AccountRecord>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(db: Database.Database, private readonly clock: () => bigint, private readonly lockWaitMs: number) {
    this.db = db;
    this.store = new Store(db);
    this.reads = new Reads(db);
  }

  client(): Client {
    return {
      createAccounts: (batch) => this.submit(() => decodeBatch(batch, decodeAccount), (events) => this.createAccounts(events)),
      createTransfers: (batch) => this.submit(() => decodeBatch(batch, decodeTransfer), (events) => this.createTransfers(events)),
      lookupAccounts: (batch) => this.submit(() => decodeBatch(batch, decodeId), (ids) => this.read(() => this.reads.lookupAccounts(ids))),
      lookupTransfers: (batch) => this.submit(() => decodeBatch(batch, decodeId), (ids) => this.read(() => this.reads.lookupTransfers(ids))),
      getAccountTransfers: (filter) => this.submit(() => decodeAccountFilter(filter), (f) => this.read(() => this.reads.getAccountTransfers(f))),
      getAccountBalances: (filter) => this.submit(() => decodeAccountFilter(filter), (f) => this.read(() => this.reads.getAccountBalances(f))),
      queryAccounts: (filter) => this.submit(() => decodeQueryFilter(filter), (f) => this.read(() => this.reads.queryAccounts(f))),
      queryTransfers: (filter) => this.submit(() => decodeQueryFilter(filter), (f) => this.read(() => this.reads.queryTransfers(f))),
      destroy: () => this.destroy(),
    };
  }

  /**
   * Checks the input now (like the native client, before anything is sent), then runs the request
   * after the ones this client already accepted.
   */
  private submit<I, R>(decode: () => I, run: (input: I) => R): Promise<R> {
    if (this.db === null) return Promise.reject(new RequestError(ErrorCodes.ERR_CLIENT_CLOSED));
    let input: I;
    try {
      input = decode();
    } catch (error) {
      return Promise.reject(error);
    }
    const result = this.queue.then(() => retryWhileBusy(() => run(input), () => this.db === null, "waiting for the write lock", this.lockWaitMs));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private destroy(): void {
    const db = this.db;
    this.db = null;
    this.cache.clear();
    // No statement can be running here: requests run synchronously to completion.
    if (db !== null && db.open) db.close();
  }

  private createAccounts(events: Account[]): CreateAccountResult[] {
    return this.write((p0) => {
      const timestamp = p0 + BigInt(events.length);
      const prefetch = prefetchAccounts(this.store, events, (id) => this.account(id));
      const state = new RequestState(prefetch.prefetched);
      const result = createAccounts(state, events, timestamp);
      this.flush(state, prefetch);
      return { result, timestamp };
    });
  }

  private createTransfers(events: Transfer[]): CreateTransferResult[] {
    return this.write((p0) => {
      const timestamp = p0 + BigInt(events.length);
      const prefetch = prefetchTransfers(this.store, events, (id) => this.account(id));
      const state = new RequestState(prefetch.prefetched);
      const result = createTransfers(state, events, timestamp);
      this.flush(state, prefetch);
      return { result, timestamp };
    });
  }

  /**
   * One write transaction: read the meta row, release due reservations, run `body` with the
   * request's p0 = max(last + 1, clock), write the meta row, commit. Throws SQLITE_BUSY (retried by
   * the caller) when another process holds the write lock.
   */
  private write<R>(body: (p0: bigint) => WriteOutcome<R>): R {
    const db = this.open();
    db.exec("BEGIN IMMEDIATE");
    try {
      const meta = this.store.meta();
      if (meta.commitSeq !== this.cacheSeq) this.cache.clear();
      const last = this.expireDue(meta.lastTimestamp);
      const { result, timestamp } = body(this.next(last));
      assert(timestamp > meta.lastTimestamp, "a write request advances the ledger clock");
      this.store.writeMeta({ lastTimestamp: timestamp, commitSeq: meta.commitSeq + 1n });
      db.exec("COMMIT");
      this.cacheSeq = meta.commitSeq + 1n;
      this.keepWritten();
      return result;
    } catch (error) {
      if (db.inTransaction) db.exec("ROLLBACK");
      this.written.clear();
      this.cache.clear();
      this.cacheSeq = -1n;
      throw error;
    }
  }

  /** A read in one snapshot, after releasing what is due (a write transaction, only if something is). */
  private read<R>(body: () => R): R {
    const db = this.open();
    const now = this.next(this.store.meta().lastTimestamp);
    if (this.store.anyDue(now)) this.write((p0) => ({ result: undefined, timestamp: p0 }));
    db.exec("BEGIN");
    try {
      const result = body();
      db.exec("COMMIT");
      return result;
    } catch (error) {
      if (db.inTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Releases, in deadline order, every reservation whose deadline is at or before
   * now = max(last + 1, clock). Each expiry takes its own timestamp. Returns the new last timestamp.
   * Passes of expiriesPerPassMax repeat until none is due: bounded by the live pending transfers.
   */
  private expireDue(lastTimestamp: bigint): bigint {
    const now = this.next(lastTimestamp);
    let last = lastTimestamp;
    for (;;) {
      const due = this.store.dueTimestamps(now, expiriesPerPassMax);
      if (due.length === 0) return last;
      const pending = due.map((timestamp) => this.store.transferByTimestamp(timestamp) as Transfer);
      const prefetch = prefetchExpiries(this.store, pending, (id) => this.account(id));
      const state = new RequestState(prefetch.prefetched);
      for (const p of pending) expirePendingTransfer(state, p);
      this.flush(state, prefetch);
      last = (last < now ? now - 1n : last) + BigInt(pending.length);
      if (due.length < expiriesPerPassMax) return last;
    }
  }

  private next(lastTimestamp: bigint): bigint {
    const wall = this.clock();
    return wall > lastTimestamp + 1n ? wall : lastTimestamp + 1n;
  }

  private flush(state: RequestState, prefetch: Prefetch): void {
    for (const record of this.store.flush(state, prefetch.chains)) this.written.set(record.account.id, record);
  }

  /** An account as of the open transaction: written by it, else cached, else read. */
  private account(id: bigint): AccountRecord | undefined {
    return this.written.get(id) ?? this.cache.get(id) ?? this.store.accountById(id);
  }

  /** Moves what the committed transaction wrote into the cache; beyond accountCacheMax the oldest entries go. */
  private keepWritten(): void {
    for (const [id, record] of this.written) this.cache.set(id, record);
    this.written.clear();
    for (const id of this.cache.keys()) {
      if (this.cache.size <= accountCacheMax) break;
      this.cache.delete(id);
    }
  }

  private open(): Database.Database {
    if (this.db === null) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
    return this.db;
  }
}
