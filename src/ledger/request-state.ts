// The in-memory state one request runs on: what the store prefetched for this batch, plus what
// the batch created or changed so far. The state machine reads and writes only this; the store
// loads it before and writes its changes after. Linked chains take a savepoint: changes made while
// one is open are recorded in an undo log and reverted when the chain breaks.
import type { Account, Transfer } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import type { Balances } from "./encoding.ts";

/** The hidden resolution state of a pending transfer (TigerBeetle's `TransferPendingStatus`). */
export const PendingStatus = { pending: 1, posted: 2, voided: 3, expired: 4 } as const;
export type PendingStatus = (typeof PendingStatus)[keyof typeof PendingStatus];

export interface PendingRecord {
  status: PendingStatus;
  /** 0 when the pending transfer has no timeout. */
  expiresAt: bigint;
}

/** A transfer created by this request, with the balances after it of each side that keeps history. */
export interface CreatedTransfer {
  transfer: Transfer;
  debitBalances: Balances | null;
  creditBalances: Balances | null;
}

export interface Prefetched {
  /** Accounts by id; the RequestState takes this map over. */
  accounts: Map<bigint, Account>;
  transfers: Iterable<Transfer>;
  failedIds: Iterable<bigint>;
  pending: Iterable<[bigint, PendingRecord]>;
  accountTimestamps: Iterable<bigint>;
  transferTimestamps: Iterable<bigint>;
  accountTimestampMax: bigint;
  transferTimestampMax: bigint;
}

export class RequestState {
  private readonly accounts: Map<bigint, Account>;
  private readonly transfers = new Map<bigint, Transfer>();
  private readonly failed = new Set<bigint>();
  private readonly pending = new Map<bigint, PendingRecord>();
  private readonly accountTimestamps: Set<bigint>;
  private readonly transferTimestamps: Set<bigint>;
  private accountTsMax: bigint;
  private transferTsMax: bigint;

  /** What the store writes at the end of the request. */
  readonly createdAccounts: Account[] = [];
  readonly createdTransfers: CreatedTransfer[] = [];
  readonly changedAccounts = new Set<bigint>();
  readonly changedPending = new Set<bigint>();
  readonly newFailedIds: bigint[] = [];

  private undo: Array<() => void> = [];
  private savepointAt: number | null = null;

  constructor(loaded: Prefetched) {
    this.accounts = loaded.accounts;
    for (const t of loaded.transfers) this.transfers.set(t.id, t);
    for (const id of loaded.failedIds) this.failed.add(id);
    for (const [timestamp, record] of loaded.pending) this.pending.set(timestamp, record);
    this.accountTimestamps = new Set(loaded.accountTimestamps);
    this.transferTimestamps = new Set(loaded.transferTimestamps);
    this.accountTsMax = loaded.accountTimestampMax;
    this.transferTsMax = loaded.transferTimestampMax;
  }

  /** Every account this request has seen, in its current state (the store's view after flush). */
  knownAccounts(): IterableIterator<Account> {
    return this.accounts.values();
  }

  account(id: bigint): Account | undefined {
    return this.accounts.get(id);
  }

  transfer(id: bigint): Transfer | undefined {
    return this.transfers.get(id);
  }

  transferFailed(id: bigint): boolean {
    return this.failed.has(id);
  }

  pendingRecord(timestamp: bigint): PendingRecord | undefined {
    return this.pending.get(timestamp);
  }

  /**
   * Imported events: the newest timestamps so far (this batch included), and whether a timestamp
   * is taken by an object stored before this batch. A batch creates only accounts or only
   * transfers, and a same-kind clash is already caught by the newest-timestamp check.
   */
  accountTimestampMax(): bigint {
    return this.accountTsMax;
  }

  transferTimestampMax(): bigint {
    return this.transferTsMax;
  }

  accountAt(timestamp: bigint): boolean {
    return this.accountTimestamps.has(timestamp);
  }

  transferAt(timestamp: bigint): boolean {
    return this.transferTimestamps.has(timestamp);
  }

  insertAccount(a: Account): void {
    assert(!this.accounts.has(a.id), "an account is inserted once");
    const tsMax = this.accountTsMax;
    this.accounts.set(a.id, a);
    if (a.timestamp > tsMax) this.accountTsMax = a.timestamp;
    this.createdAccounts.push(a);
    this.record(() => {
      this.accounts.delete(a.id);
      this.accountTsMax = tsMax;
      this.createdAccounts.pop();
    });
  }

  /** Replaces an account's state (balances, `closed`); the old object is never mutated. */
  updateAccount(next: Account): void {
    const previous = this.accounts.get(next.id);
    assert(previous !== undefined, "only a loaded account is updated");
    const wasChanged = this.changedAccounts.has(next.id);
    this.accounts.set(next.id, next);
    this.changedAccounts.add(next.id);
    this.record(() => {
      this.accounts.set(next.id, previous);
      if (!wasChanged) this.changedAccounts.delete(next.id);
    });
  }

  insertTransfer(created: CreatedTransfer): void {
    const t = created.transfer;
    assert(!this.transfers.has(t.id), "a transfer is inserted once");
    const tsMax = this.transferTsMax;
    this.transfers.set(t.id, t);
    if (t.timestamp > tsMax) this.transferTsMax = t.timestamp;
    this.createdTransfers.push(created);
    this.record(() => {
      this.transfers.delete(t.id);
      this.transferTsMax = tsMax;
      this.createdTransfers.pop();
    });
  }

  setPending(timestamp: bigint, record: PendingRecord): void {
    const previous = this.pending.get(timestamp);
    const wasChanged = this.changedPending.has(timestamp);
    this.pending.set(timestamp, record);
    this.changedPending.add(timestamp);
    this.record(() => {
      if (previous === undefined) this.pending.delete(timestamp);
      else this.pending.set(timestamp, previous);
      if (!wasChanged) this.changedPending.delete(timestamp);
    });
  }

  /** Burns a transfer id. Never undone: TigerBeetle records it after rolling a chain back. */
  markFailed(id: bigint): void {
    assert(this.savepointAt === null, "ids are burned outside a savepoint");
    if (this.failed.has(id)) return;
    this.failed.add(id);
    this.newFailedIds.push(id);
  }

  savepoint(): void {
    assert(this.savepointAt === null, "linked chains do not nest");
    this.savepointAt = this.undo.length;
  }

  rollback(): void {
    assert(this.savepointAt !== null, "rollback needs a savepoint");
    while (this.undo.length > this.savepointAt) (this.undo.pop() as () => void)();
    this.savepointAt = null;
  }

  release(): void {
    assert(this.savepointAt !== null, "release needs a savepoint");
    this.undo.length = this.savepointAt;
    this.savepointAt = null;
  }

  private record(undo: () => void): void {
    if (this.savepointAt !== null) this.undo.push(undo);
  }
}
