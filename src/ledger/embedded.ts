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
  type AccountFilter,
  type Client,
  type CreateAccountResult,
  type CreateTransferResult,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import { assert, AssertionError, unreachable } from "../lib/assert.ts";
import {
  decodeAccount,
  decodeAccountFilter,
  decodeBatch,
  decodeId,
  decodeQueryFilter,
  decodeTransfer,
} from "./input.ts";
import {
  engineAccountCacheMax,
  LEDGER_EVENTS_MAX,
  expiriesPerPassMax,
  lockRetryDelayMaxMs,
  lockRetryDelayMinMs,
  lockWaitTotalMs,
} from "../config/limits.ts";
import { Reads } from "./reads.ts";
import { RequestState } from "./request-state.ts";
import { isBusy, openLedgerDatabase } from "./schema.ts";
import { createAccounts, createTransfers, expirePendingTransfer } from "./state-machine.ts";
import {
  prefetchAccounts,
  prefetchExpiries,
  prefetchTransfers,
  Store,
  type AccountRecord,
  type Prefetch,
} from "./store.ts";
import { NS_PER_MS } from "../lib/nanoseconds.ts";

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
  /** SQLite's page cache (KiB); default sqliteCacheKib. */
  pageCacheKib?: number;
}

export function wallClockNs(): bigint {
  return BigInt(Date.now()) * NS_PER_MS;
}

export async function openEmbeddedLedger(options: EmbeddedOptions): Promise<Client> {
  return (await openEmbeddedEngine(options)).client();
}

/** The engine itself, for a client in this thread (`client()`) or one in another (src/ledger/thread.ts). */
export async function openEmbeddedEngine(options: EmbeddedOptions): Promise<EmbeddedLedger> {
  const lockWaitMs = options.lockWaitMs ?? lockWaitTotalMs;
  assert(
    Number.isFinite(lockWaitMs) && lockWaitMs >= 0,
    "lockWaitMs is a non-negative number of milliseconds",
  );
  const db = await retryWhileBusy(
    () => openLedgerDatabase(options.path, options.pageCacheKib),
    () => false,
    `opening ${options.path}`,
    lockWaitMs,
  );
  return new EmbeddedLedger(db, options.clock ?? wallClockNs, lockWaitMs);
}

/** The requests of the Client surface (everything but destroy). */
export type RequestName = Exclude<keyof Client, "destroy">;

/** One request whose input its decoder checked, and what it came to. */
export type Request = { name: RequestName; input: unknown };
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function isRead(request: Request): boolean {
  return request.name !== "createAccounts" && request.name !== "createTransfers";
}

/** The checks each request makes on the caller's side before it is queued (src/ledger/input.ts). */
const requestDecoders: Record<RequestName, (input: unknown) => unknown> = {
  createAccounts: (batch) => decodeBatch(batch, decodeAccount),
  createTransfers: (batch) => decodeBatch(batch, decodeTransfer),
  lookupAccounts: (batch) => decodeBatch(batch, decodeId),
  lookupTransfers: (batch) => decodeBatch(batch, decodeId),
  getAccountTransfers: decodeAccountFilter,
  getAccountBalances: decodeAccountFilter,
  queryAccounts: decodeQueryFilter,
  queryTransfers: decodeQueryFilter,
};

/**
 * A Client whose requests check their input now (like the native client, before anything is
 * sent: a bad input rejects without being queued), then go to `send`.
 */
export function clientOf(
  send: (name: RequestName, input: unknown) => Promise<unknown>,
  closed: () => boolean,
  destroy: () => void,
): Client {
  const request =
    (name: RequestName) =>
    (raw: unknown): Promise<never> => {
      if (closed()) return Promise.reject(new RequestError(ErrorCodes.ERR_CLIENT_CLOSED));
      let input: unknown;
      try {
        input = requestDecoders[name](raw);
      } catch (error) {
        return Promise.reject(error);
      }
      return send(name, input) as Promise<never>;
    };
  return {
    createAccounts: request("createAccounts"),
    createTransfers: request("createTransfers"),
    lookupAccounts: request("lookupAccounts"),
    lookupTransfers: request("lookupTransfers"),
    getAccountTransfers: request("getAccountTransfers"),
    getAccountBalances: request("getAccountBalances"),
    queryAccounts: request("queryAccounts"),
    queryTransfers: request("queryTransfers"),
    destroy,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `attempt` until it does not fail with SQLITE_BUSY, sleeping between attempts, until
 * `lockWaitMs` after `started`: for a request, the time it was queued, so that requests queued
 * behind one that waits for the lock give up with it rather than one `lockWaitMs` after another.
 */
async function retryWhileBusy<R>(
  attempt: () => R,
  closed: () => boolean,
  what: string,
  lockWaitMs: number,
  started = Date.now(),
): Promise<R> {
  let delayMs = lockRetryDelayMinMs;
  for (;;) {
    if (closed()) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
    try {
      return attempt();
    } catch (error) {
      if (!isBusy(error)) throw error;
      const waitedMs = Date.now() - started;
      if (waitedMs >= lockWaitMs) {
        throw new LedgerBusyError(
          `ledger database busy: gave up ${what} after ${waitedMs} ms (limit ${lockWaitMs} ms)`,
        );
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

export class EmbeddedLedger {
  private db: Database.Database | null;
  private readonly store: Store;
  private readonly reads: Reads;
  /** Committed accounts with their chains; valid while the meta row's commit_seq equals cacheSeq. */
  private readonly cache = new Map<bigint, AccountRecord>();
  private cacheSeq = -1n;
  /** Accounts as written by the open transaction, moved to the cache after COMMIT. */
  private readonly written = new Map<bigint, AccountRecord>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    db: Database.Database,
    private readonly clock: () => bigint,
    private readonly lockWaitMs: number,
  ) {
    this.db = db;
    this.store = new Store(db);
    this.reads = new Reads(db);
  }

  client(): Client {
    return clientOf(
      (name, input) => this.execute(name, input),
      () => this.db === null,
      () => this.destroy(),
    );
  }

  /** Runs one request whose input `requestDecoders[name]` already checked, after the ones before it. */
  async execute(name: RequestName, input: unknown): Promise<unknown> {
    const [outcome] = await this.executeAll([{ name, input }]);
    assert(outcome !== undefined, "one outcome per request");
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * Runs requests in order, after the ones before them, and answers each one: one write
   * transaction per write request; a run of consecutive reads shares one snapshot (one meta read,
   * one due check, one BEGIN/COMMIT instead of one each), a serial order TigerBeetle could also
   * have given them. Bounded by the caller: at most LEDGER_EVENTS_MAX requests.
   */
  executeAll(requests: ReadonlyArray<Request>): Promise<Outcome[]> {
    assert(requests.length <= LEDGER_EVENTS_MAX, `at most ${LEDGER_EVENTS_MAX} requests at once`);
    const queuedAt = Date.now();
    const result = this.queue.then(() => this.runAll(requests, queuedAt));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runAll(requests: ReadonlyArray<Request>, queuedAt: number): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < requests.length;) {
      let end = i + 1;
      if (isRead(requests[i] as Request))
        while (end < requests.length && isRead(requests[end] as Request)) end += 1;
      const run = requests.slice(i, end);
      try {
        const answers = await retryWhileBusy(
          () =>
            isRead(run[0] as Request) ? this.readAll(run) : [this.writeOne(run[0] as Request)],
          () => this.db === null,
          "waiting for the write lock",
          this.lockWaitMs,
          queuedAt,
        );
        outcomes.push(...answers);
      } catch (error) {
        for (let k = 0; k < run.length; k++) outcomes.push({ ok: false, error });
      }
      i = end;
    }
    return outcomes;
  }

  private writeOne(request: Request): Outcome {
    switch (request.name) {
      case "createAccounts":
        return { ok: true, value: this.createAccounts(request.input as Account[]) };
      case "createTransfers":
        return { ok: true, value: this.createTransfers(request.input as Transfer[]) };
      default:
        return unreachable(request.name as never, "ledger write request");
    }
  }

  /** Reads in one snapshot; an error in one (other than a busy database) answers only that one. */
  private readAll(requests: ReadonlyArray<Request>): Outcome[] {
    return this.read(() =>
      requests.map((request): Outcome => {
        try {
          return { ok: true, value: this.readOne(request) };
        } catch (error) {
          if (isBusy(error) || error instanceof AssertionError) throw error;
          return { ok: false, error };
        }
      }),
    );
  }

  private readOne({ name, input }: Request): unknown {
    switch (name) {
      case "lookupAccounts":
        return this.reads.lookupAccounts(input as bigint[]);
      case "lookupTransfers":
        return this.reads.lookupTransfers(input as bigint[]);
      case "getAccountTransfers":
        return this.reads.getAccountTransfers(input as AccountFilter);
      case "getAccountBalances":
        return this.reads.getAccountBalances(input as AccountFilter);
      case "queryAccounts":
        return this.reads.queryAccounts(input as QueryFilter);
      case "queryTransfers":
        return this.reads.queryTransfers(input as QueryFilter);
      default:
        return unreachable(name as never, "ledger read request");
    }
  }

  destroy(): void {
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
    for (const record of this.store.flush(state, prefetch.chains))
      this.written.set(record.account.id, record);
  }

  /** An account as of the open transaction: written by it, else cached, else read. */
  private account(id: bigint): AccountRecord | undefined {
    return this.written.get(id) ?? this.cache.get(id) ?? this.store.accountById(id);
  }

  /** Moves what the committed transaction wrote into the cache; beyond engineAccountCacheMax the oldest entries go. */
  private keepWritten(): void {
    for (const [id, record] of this.written) this.cache.set(id, record);
    this.written.clear();
    for (const id of this.cache.keys()) {
      if (this.cache.size <= engineAccountCacheMax) break;
      this.cache.delete(id);
    }
  }

  private open(): Database.Database {
    if (this.db === null) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
    return this.db;
  }
}
