// TigerBeetle 0.17's create_accounts / create_transfers / expiry, check by check in the order of
// src/state_machine.zig (execute_create, create_account, create_transfer, create_transfer_exists,
// post_or_void_pending_transfer, execute_expire_pending_transfers). Pure: it reads and writes only
// the RequestState it is given and takes the request timestamp as an argument.
import {
  AccountFlags,
  CreateAccountStatus as AS,
  CreateTransferStatus as TS,
  TransferFlags as TF,
  type Account,
  type CreateAccountResult,
  type CreateTransferResult,
  type Transfer,
} from "tigerbeetle-node";
import { idBurningTransferStatuses } from "../domain/ledger-codes.ts";
import { assert } from "../lib/assert.ts";
import { timestampMax, u128Max } from "../config/limits.ts";
import { NS_PER_SECOND } from "../lib/nanoseconds.ts";
import { PendingStatus, type RequestState } from "./request-state.ts";
import type { Balances } from "./encoding.ts";

const accountFlagsKnown = 0x3f;
const transferFlagsKnown = 0x1ff;

type Outcome<S> = readonly [status: S, timestamp: bigint];

interface CreateKind<E, S extends number> {
  importedFlag: number;
  statuses: {
    created: S;
    linkedEventFailed: S;
    chainOpen: S;
    importedExpected: S;
    importedNotExpected: S;
    timestampMustBeZero: S;
    importedOutOfRange: S;
    importedMustNotAdvance: S;
  };
  create(state: RequestState, timestampEvent: bigint, event: E): Outcome<S>;
  transient(status: S): boolean;
}

/**
 * execute_create: slots, linked chains (savepoint, rollback, status rewriting), imported-batch
 * checks, then the per-kind create. `timestamp` is the request's timestamp: event i of n gets the
 * slot timestamp - n + i + 1.
 */
function executeCreate<
  E extends { id: bigint; flags: number; timestamp: bigint },
  S extends number,
>(
  state: RequestState,
  events: ReadonlyArray<E>,
  timestamp: bigint,
  kind: CreateKind<E, S>,
): Array<{ timestamp: bigint; status: S }> {
  const s = kind.statuses;
  const results = new Array<{ timestamp: bigint; status: S }>(events.length);
  const batchImported = events.length > 0 && ((events[0] as E).flags & kind.importedFlag) !== 0;
  let chainStart: number | null = null;
  let chainBroken = false;
  let slot = timestamp - BigInt(events.length);
  for (let index = 0; index < events.length; index++) {
    const event = events[index] as E;
    slot += 1n; // event i of n gets timestamp - n + i + 1
    const linked = (event.flags & AccountFlags.linked) !== 0;
    if (linked && chainStart === null) {
      chainStart = index;
      state.savepoint();
    }
    let status: S;
    let timestampActual = slot;
    if (linked && index === events.length - 1) status = s.chainOpen;
    else if (chainBroken) status = s.linkedEventFailed;
    else
      [status, timestampActual] = createChecked(state, slot, timestamp, event, batchImported, kind);

    if (status !== s.created) {
      if (chainStart !== null && !chainBroken) {
        chainBroken = true;
        state.rollback();
        for (let j = chainStart; j < index; j++)
          (results[j] as { status: S }).status = s.linkedEventFailed;
      }
      if (kind.transient(status)) state.markFailed(event.id);
    }
    results[index] = { timestamp: timestampActual, status };

    if (chainStart !== null && (!linked || status === s.chainOpen)) {
      if (!chainBroken) state.release();
      chainStart = null;
      chainBroken = false;
    }
  }
  return results;
}

/** The imported / timestamp checks every event passes before its kind's own checks. */
function createChecked<E extends { flags: number; timestamp: bigint }, S extends number>(
  state: RequestState,
  slot: bigint,
  timestamp: bigint,
  event: E,
  batchImported: boolean,
  kind: CreateKind<E, S>,
): Outcome<S> {
  const s = kind.statuses;
  const imported = (event.flags & kind.importedFlag) !== 0;
  if (batchImported !== imported)
    return [imported ? s.importedNotExpected : s.importedExpected, slot];
  if (imported) {
    if (event.timestamp < 1n || event.timestamp > timestampMax) return [s.importedOutOfRange, slot];
    if (event.timestamp >= timestamp) return [s.importedMustNotAdvance, slot];
  } else if (event.timestamp !== 0n) {
    return [s.timestampMustBeZero, slot];
  }
  return kind.create(state, slot, event);
}

export function createAccounts(
  state: RequestState,
  events: ReadonlyArray<Account>,
  timestamp: bigint,
): CreateAccountResult[] {
  return executeCreate(state, events, timestamp, accountKind);
}

export function createTransfers(
  state: RequestState,
  events: ReadonlyArray<Transfer>,
  timestamp: bigint,
): CreateTransferResult[] {
  return executeCreate(state, events, timestamp, transferKind);
}

const accountKind: CreateKind<Account, AS> = {
  importedFlag: AccountFlags.imported,
  statuses: {
    created: AS.created,
    linkedEventFailed: AS.linked_event_failed,
    chainOpen: AS.linked_event_chain_open,
    importedExpected: AS.imported_event_expected,
    importedNotExpected: AS.imported_event_not_expected,
    timestampMustBeZero: AS.timestamp_must_be_zero,
    importedOutOfRange: AS.imported_event_timestamp_out_of_range,
    importedMustNotAdvance: AS.imported_event_timestamp_must_not_advance,
  },
  create: createAccount,
  transient: () => false,
};

const transferKind: CreateKind<Transfer, TS> = {
  importedFlag: TF.imported,
  statuses: {
    created: TS.created,
    linkedEventFailed: TS.linked_event_failed,
    chainOpen: TS.linked_event_chain_open,
    importedExpected: TS.imported_event_expected,
    importedNotExpected: TS.imported_event_not_expected,
    timestampMustBeZero: TS.timestamp_must_be_zero,
    importedOutOfRange: TS.imported_event_timestamp_out_of_range,
    importedMustNotAdvance: TS.imported_event_timestamp_must_not_advance,
  },
  create: createTransfer,
  transient: (status) => idBurningTransferStatuses.has(status),
};

function has(flags: number, flag: number): boolean {
  return (flags & flag) !== 0;
}

function createAccount(state: RequestState, timestampEvent: bigint, a: Account): Outcome<AS> {
  if (a.reserved !== 0) return [AS.reserved_field, timestampEvent];
  if ((a.flags & ~accountFlagsKnown) !== 0) return [AS.reserved_flag, timestampEvent];
  if (a.id === 0n) return [AS.id_must_not_be_zero, timestampEvent];
  if (a.id === u128Max) return [AS.id_must_not_be_int_max, timestampEvent];
  const existing = state.account(a.id);
  if (existing !== undefined) {
    const status = accountExists(a, existing);
    return [status, status === AS.exists ? existing.timestamp : timestampEvent];
  }
  if (
    has(a.flags, AccountFlags.debits_must_not_exceed_credits) &&
    has(a.flags, AccountFlags.credits_must_not_exceed_debits)
  ) {
    return [AS.flags_are_mutually_exclusive, timestampEvent];
  }
  if (a.debits_pending !== 0n) return [AS.debits_pending_must_be_zero, timestampEvent];
  if (a.debits_posted !== 0n) return [AS.debits_posted_must_be_zero, timestampEvent];
  if (a.credits_pending !== 0n) return [AS.credits_pending_must_be_zero, timestampEvent];
  if (a.credits_posted !== 0n) return [AS.credits_posted_must_be_zero, timestampEvent];
  if (a.ledger === 0) return [AS.ledger_must_not_be_zero, timestampEvent];
  if (a.code === 0) return [AS.code_must_not_be_zero, timestampEvent];
  let timestampActual = timestampEvent;
  if (has(a.flags, AccountFlags.imported)) {
    if (a.timestamp <= state.accountTimestampMax() || state.transferAt(a.timestamp)) {
      return [AS.imported_event_timestamp_must_not_regress, timestampEvent];
    }
    timestampActual = a.timestamp;
  }
  state.insertAccount({
    ...a,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    reserved: 0,
    timestamp: timestampActual,
  });
  return [AS.created, timestampActual];
}

/** The caller reports `exists` with the original timestamp; other statuses keep the slot. */
function accountExists(a: Account, e: Account): AS {
  if (a.flags !== e.flags) return AS.exists_with_different_flags;
  if (a.user_data_128 !== e.user_data_128) return AS.exists_with_different_user_data_128;
  if (a.user_data_64 !== e.user_data_64) return AS.exists_with_different_user_data_64;
  if (a.user_data_32 !== e.user_data_32) return AS.exists_with_different_user_data_32;
  if (a.ledger !== e.ledger) return AS.exists_with_different_ledger;
  if (a.code !== e.code) return AS.exists_with_different_code;
  return AS.exists;
}

function createTransfer(state: RequestState, timestampEvent: bigint, t: Transfer): Outcome<TS> {
  if ((t.flags & ~transferFlagsKnown) !== 0) return [TS.reserved_flag, timestampEvent];
  if (t.id === 0n) return [TS.id_must_not_be_zero, timestampEvent];
  if (t.id === u128Max) return [TS.id_must_not_be_int_max, timestampEvent];
  const existing = state.transfer(t.id);
  if (existing !== undefined) {
    const status = transferExists(state, t, existing);
    return [status, status === TS.exists ? existing.timestamp : timestampEvent];
  }
  if (state.transferFailed(t.id)) return [TS.id_already_failed, timestampEvent];
  if (has(t.flags, TF.post_pending_transfer) || has(t.flags, TF.void_pending_transfer)) {
    return postOrVoidPendingTransfer(state, timestampEvent, t);
  }
  const invalid = transferFieldsInvalid(t);
  if (invalid !== null) return [invalid, timestampEvent];
  const dr = state.account(t.debit_account_id);
  if (dr === undefined) return [TS.debit_account_not_found, timestampEvent];
  const cr = state.account(t.credit_account_id);
  if (cr === undefined) return [TS.credit_account_not_found, timestampEvent];
  if (dr.ledger !== cr.ledger) return [TS.accounts_must_have_the_same_ledger, timestampEvent];
  if (t.ledger !== dr.ledger)
    return [TS.transfer_must_have_the_same_ledger_as_accounts, timestampEvent];
  let timestampActual = timestampEvent;
  if (has(t.flags, TF.imported)) {
    const imported = importedTransferInvalid(state, t, dr, cr);
    if (imported !== null) return [imported, timestampEvent];
    timestampActual = t.timestamp;
  }
  if (has(dr.flags, AccountFlags.closed)) return [TS.debit_account_already_closed, timestampEvent];
  if (has(cr.flags, AccountFlags.closed)) return [TS.credit_account_already_closed, timestampEvent];
  const amount = balancedAmount(t, dr, cr);
  const refused = balanceRefusal(t, dr, cr, amount, timestampActual);
  if (refused !== null) return [refused, timestampEvent];
  applyTransfer(state, { ...t, amount, timestamp: timestampActual }, dr, cr);
  return [TS.created, timestampActual];
}

/** Field checks of an ordinary or pending transfer, in create_transfer's order. */
function transferFieldsInvalid(t: Transfer): TS | null {
  if (t.debit_account_id === 0n) return TS.debit_account_id_must_not_be_zero;
  if (t.debit_account_id === u128Max) return TS.debit_account_id_must_not_be_int_max;
  if (t.credit_account_id === 0n) return TS.credit_account_id_must_not_be_zero;
  if (t.credit_account_id === u128Max) return TS.credit_account_id_must_not_be_int_max;
  if (t.credit_account_id === t.debit_account_id) return TS.accounts_must_be_different;
  if (t.pending_id !== 0n) return TS.pending_id_must_be_zero;
  if (!has(t.flags, TF.pending)) {
    if (t.timeout !== 0) return TS.timeout_reserved_for_pending_transfer;
    if (has(t.flags, TF.closing_debit) || has(t.flags, TF.closing_credit))
      return TS.closing_transfer_must_be_pending;
  }
  if (t.ledger === 0) return TS.ledger_must_not_be_zero;
  if (t.code === 0) return TS.code_must_not_be_zero;
  return null;
}

function importedTransferInvalid(
  state: RequestState,
  t: Transfer,
  dr: Account,
  cr: Account,
): TS | null {
  if (t.timestamp <= state.transferTimestampMax() || state.accountAt(t.timestamp)) {
    return TS.imported_event_timestamp_must_not_regress;
  }
  if (t.timestamp <= dr.timestamp) return TS.imported_event_timestamp_must_postdate_debit_account;
  if (t.timestamp <= cr.timestamp) return TS.imported_event_timestamp_must_postdate_credit_account;
  if (t.timeout !== 0) return TS.imported_event_timeout_must_be_zero;
  return null;
}

/** Balancing clamps the amount to what the account can still move (saturating at zero). */
function balancedAmount(t: Transfer, dr: Account, cr: Account): bigint {
  let amount = t.amount;
  if (has(t.flags, TF.balancing_debit)) {
    const room = dr.credits_posted - (dr.debits_posted + dr.debits_pending);
    amount = minimum(amount, room > 0n ? room : 0n);
  }
  if (has(t.flags, TF.balancing_credit)) {
    const room = cr.debits_posted - (cr.credits_posted + cr.credits_pending);
    amount = minimum(amount, room > 0n ? room : 0n);
  }
  return amount;
}

function minimum(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** Below this, a sum of three values cannot pass u128 max: the overflow checks can be skipped. */
const overflowFree = 1n << 125n;

/** Overflow, timeout and balance-limit checks, after the amount is known. */
function balanceRefusal(
  t: Transfer,
  dr: Account,
  cr: Account,
  amount: bigint,
  timestampActual: bigint,
): TS | null {
  const small =
    amount < overflowFree &&
    dr.debits_pending < overflowFree &&
    dr.debits_posted < overflowFree &&
    cr.credits_pending < overflowFree &&
    cr.credits_posted < overflowFree;
  if (!small) {
    const overflow = overflowRefusal(t, dr, cr, amount);
    if (overflow !== null) return overflow;
  }
  if (t.timeout !== 0 && timestampActual + BigInt(t.timeout) * NS_PER_SECOND > timestampMax)
    return TS.overflows_timeout;
  if (
    has(dr.flags, AccountFlags.debits_must_not_exceed_credits) &&
    dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
  ) {
    return TS.exceeds_credits;
  }
  if (
    has(cr.flags, AccountFlags.credits_must_not_exceed_debits) &&
    cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
  ) {
    return TS.exceeds_debits;
  }
  return null;
}

function overflowRefusal(t: Transfer, dr: Account, cr: Account, amount: bigint): TS | null {
  if (has(t.flags, TF.pending)) {
    if (amount + dr.debits_pending > u128Max) return TS.overflows_debits_pending;
    if (amount + cr.credits_pending > u128Max) return TS.overflows_credits_pending;
  }
  if (amount + dr.debits_posted > u128Max) return TS.overflows_debits_posted;
  if (amount + cr.credits_posted > u128Max) return TS.overflows_credits_posted;
  if (amount + dr.debits_pending + dr.debits_posted > u128Max) return TS.overflows_debits;
  if (amount + cr.credits_pending + cr.credits_posted > u128Max) return TS.overflows_credits;
  return null;
}

/** The effects of a created ordinary or pending transfer. `t` carries the actual amount and timestamp. */
function applyTransfer(state: RequestState, t: Transfer, dr: Account, cr: Account): void {
  const pending = has(t.flags, TF.pending);
  const drNext = { ...dr };
  const crNext = { ...cr };
  if (pending) {
    drNext.debits_pending += t.amount;
    crNext.credits_pending += t.amount;
    const expiresAt = t.timeout > 0 ? t.timestamp + BigInt(t.timeout) * NS_PER_SECOND : 0n;
    state.setPending(t.timestamp, { status: PendingStatus.pending, expiresAt });
  } else {
    drNext.debits_posted += t.amount;
    crNext.credits_posted += t.amount;
  }
  if (has(t.flags, TF.closing_debit)) drNext.flags |= AccountFlags.closed;
  if (has(t.flags, TF.closing_credit)) crNext.flags |= AccountFlags.closed;
  state.updateAccount(drNext);
  state.updateAccount(crNext);
  state.insertTransfer({
    transfer: t,
    debitBalances: historyOf(drNext),
    creditBalances: historyOf(crNext),
  });
}

/** The account's balances after a transfer, when it keeps history (state objects are never mutated). */
function historyOf(a: Account): Balances | null {
  return has(a.flags, AccountFlags.history) ? a : null;
}

function transferExists(state: RequestState, t: Transfer, e: Transfer): TS {
  if (t.flags !== e.flags) return TS.exists_with_different_flags;
  if (t.pending_id !== e.pending_id) return TS.exists_with_different_pending_id;
  if (t.timeout !== e.timeout) return TS.exists_with_different_timeout;
  if (has(t.flags, TF.post_pending_transfer) || has(t.flags, TF.void_pending_transfer)) {
    const p = state.transfer(t.pending_id);
    assert(p !== undefined, "a stored post/void has its pending transfer prefetched");
    return postOrVoidExists(t, e, p);
  }
  if (t.debit_account_id !== e.debit_account_id) return TS.exists_with_different_debit_account_id;
  if (t.credit_account_id !== e.credit_account_id)
    return TS.exists_with_different_credit_account_id;
  // A balancing transfer records the clamped amount, so a retry conflicts only when it asks for less.
  const balancing = has(t.flags, TF.balancing_debit) || has(t.flags, TF.balancing_credit);
  if (balancing ? t.amount < e.amount : t.amount !== e.amount)
    return TS.exists_with_different_amount;
  if (t.user_data_128 !== e.user_data_128) return TS.exists_with_different_user_data_128;
  if (t.user_data_64 !== e.user_data_64) return TS.exists_with_different_user_data_64;
  if (t.user_data_32 !== e.user_data_32) return TS.exists_with_different_user_data_32;
  if (t.ledger !== e.ledger) return TS.exists_with_different_ledger;
  if (t.code !== e.code) return TS.exists_with_different_code;
  return TS.exists;
}

function postOrVoidExists(t: Transfer, e: Transfer, p: Transfer): TS {
  if (t.debit_account_id !== 0n && t.debit_account_id !== e.debit_account_id)
    return TS.exists_with_different_debit_account_id;
  if (t.credit_account_id !== 0n && t.credit_account_id !== e.credit_account_id)
    return TS.exists_with_different_credit_account_id;
  if (has(t.flags, TF.void_pending_transfer)) {
    if (t.amount === 0n ? e.amount !== p.amount : t.amount !== e.amount)
      return TS.exists_with_different_amount;
  }
  if (has(t.flags, TF.post_pending_transfer)) {
    if (t.amount === u128Max ? e.amount !== p.amount : t.amount !== e.amount)
      return TS.exists_with_different_amount;
  }
  // A zero user_data on the retry means "inherited from the pending transfer".
  if (
    t.user_data_128 === 0n
      ? e.user_data_128 !== p.user_data_128
      : t.user_data_128 !== e.user_data_128
  ) {
    return TS.exists_with_different_user_data_128;
  }
  if (
    t.user_data_64 === 0n ? e.user_data_64 !== p.user_data_64 : t.user_data_64 !== e.user_data_64
  ) {
    return TS.exists_with_different_user_data_64;
  }
  if (
    t.user_data_32 === 0 ? e.user_data_32 !== p.user_data_32 : t.user_data_32 !== e.user_data_32
  ) {
    return TS.exists_with_different_user_data_32;
  }
  if (t.ledger !== 0 && t.ledger !== e.ledger) return TS.exists_with_different_ledger;
  if (t.code !== 0 && t.code !== e.code) return TS.exists_with_different_code;
  return TS.exists;
}

const postVoidExclusive =
  TF.pending | TF.balancing_debit | TF.balancing_credit | TF.closing_debit | TF.closing_credit;

function postOrVoidPendingTransfer(
  state: RequestState,
  timestampEvent: bigint,
  t: Transfer,
): Outcome<TS> {
  const post = has(t.flags, TF.post_pending_transfer);
  if ((post && has(t.flags, TF.void_pending_transfer)) || (t.flags & postVoidExclusive) !== 0) {
    return [TS.flags_are_mutually_exclusive, timestampEvent];
  }
  if (t.pending_id === 0n) return [TS.pending_id_must_not_be_zero, timestampEvent];
  if (t.pending_id === u128Max) return [TS.pending_id_must_not_be_int_max, timestampEvent];
  if (t.pending_id === t.id) return [TS.pending_id_must_be_different, timestampEvent];
  if (t.timeout !== 0) return [TS.timeout_reserved_for_pending_transfer, timestampEvent];
  const p = state.transfer(t.pending_id);
  if (p === undefined) return [TS.pending_transfer_not_found, timestampEvent];
  if (!has(p.flags, TF.pending)) return [TS.pending_transfer_not_pending, timestampEvent];
  const dr = state.account(p.debit_account_id);
  const cr = state.account(p.credit_account_id);
  assert(dr !== undefined && cr !== undefined, "a pending transfer's accounts are prefetched");
  const refused = postOrVoidRefusal(state, timestampEvent, t, p);
  if (refused !== null) return [refused, timestampEvent];
  const amount = postOrVoidAmount(t, p);
  let timestampActual = timestampEvent;
  if (has(t.flags, TF.imported)) {
    if (t.timestamp <= state.transferTimestampMax() || state.accountAt(t.timestamp)) {
      return [TS.imported_event_timestamp_must_not_regress, timestampEvent];
    }
    timestampActual = t.timestamp;
  }
  // The only movement a closed account allows is voiding a pending transfer.
  if (post && has(dr.flags, AccountFlags.closed))
    return [TS.debit_account_already_closed, timestampEvent];
  if (post && has(cr.flags, AccountFlags.closed))
    return [TS.credit_account_already_closed, timestampEvent];
  applyPostOrVoid(state, { ...t, amount, timestamp: timestampActual }, p, dr, cr);
  return [TS.created, timestampActual];
}

/** Account/ledger/code mismatches, amount rules, then the pending transfer's state and deadline. */
function postOrVoidRefusal(
  state: RequestState,
  timestampEvent: bigint,
  t: Transfer,
  p: Transfer,
): TS | null {
  if (t.debit_account_id !== 0n && t.debit_account_id !== p.debit_account_id)
    return TS.pending_transfer_has_different_debit_account_id;
  if (t.credit_account_id !== 0n && t.credit_account_id !== p.credit_account_id)
    return TS.pending_transfer_has_different_credit_account_id;
  if (t.ledger !== 0 && t.ledger !== p.ledger) return TS.pending_transfer_has_different_ledger;
  if (t.code !== 0 && t.code !== p.code) return TS.pending_transfer_has_different_code;
  const post = has(t.flags, TF.post_pending_transfer);
  const amount = postOrVoidAmount(t, p);
  if (amount > p.amount) return TS.exceeds_pending_transfer_amount;
  if (!post && amount < p.amount) return TS.pending_transfer_has_different_amount;
  const record = state.pendingRecord(p.timestamp);
  assert(record !== undefined, "a pending transfer's resolution state is prefetched");
  if (record.status === PendingStatus.posted) return TS.pending_transfer_already_posted;
  if (record.status === PendingStatus.voided) return TS.pending_transfer_already_voided;
  if (record.status === PendingStatus.expired) return TS.pending_transfer_expired;
  if (p.timeout > 0 && p.timestamp + BigInt(p.timeout) * NS_PER_SECOND <= timestampEvent)
    return TS.pending_transfer_expired;
  return null;
}

/** A void moves the pending amount (0 means "all of it"); a post moves `amount` (MAX means "all of it"; 0 posts zero). */
function postOrVoidAmount(t: Transfer, p: Transfer): bigint {
  if (has(t.flags, TF.post_pending_transfer)) return t.amount === u128Max ? p.amount : t.amount;
  return t.amount === 0n ? p.amount : t.amount;
}

/** The effects of a created post/void. `t` carries the actual amount and timestamp. */
function applyPostOrVoid(
  state: RequestState,
  t: Transfer,
  p: Transfer,
  dr: Account,
  cr: Account,
): void {
  const post = has(t.flags, TF.post_pending_transfer);
  const record = state.pendingRecord(p.timestamp) as { expiresAt: bigint };
  state.setPending(p.timestamp, {
    status: post ? PendingStatus.posted : PendingStatus.voided,
    expiresAt: record.expiresAt,
  });
  const drNext = { ...dr, debits_pending: dr.debits_pending - p.amount };
  const crNext = { ...cr, credits_pending: cr.credits_pending - p.amount };
  if (post) {
    drNext.debits_posted += t.amount;
    crNext.credits_posted += t.amount;
  } else {
    if (has(p.flags, TF.closing_debit)) drNext.flags &= ~AccountFlags.closed;
    if (has(p.flags, TF.closing_credit)) crNext.flags &= ~AccountFlags.closed;
  }
  state.updateAccount(drNext);
  state.updateAccount(crNext);
  const stored: Transfer = {
    id: t.id,
    debit_account_id: p.debit_account_id,
    credit_account_id: p.credit_account_id,
    amount: t.amount,
    pending_id: t.pending_id,
    user_data_128: t.user_data_128 !== 0n ? t.user_data_128 : p.user_data_128,
    user_data_64: t.user_data_64 !== 0n ? t.user_data_64 : p.user_data_64,
    user_data_32: t.user_data_32 !== 0 ? t.user_data_32 : p.user_data_32,
    timeout: 0,
    ledger: p.ledger,
    code: p.code,
    flags: t.flags,
    timestamp: t.timestamp,
  };
  state.insertTransfer({
    transfer: stored,
    debitBalances: historyOf(drNext),
    creditBalances: historyOf(crNext),
  });
}

/**
 * Releases one due pending transfer's reservation, as a void would (re-opening an account it
 * closed). No transfer and no balance row is created.
 */
export function expirePendingTransfer(state: RequestState, p: Transfer): void {
  const record = state.pendingRecord(p.timestamp);
  assert(
    record !== undefined && record.status === PendingStatus.pending,
    "only a pending transfer expires",
  );
  const dr = state.account(p.debit_account_id);
  const cr = state.account(p.credit_account_id);
  assert(dr !== undefined && cr !== undefined, "an expiring transfer's accounts are prefetched");
  assert(
    dr.debits_pending >= p.amount && cr.credits_pending >= p.amount,
    "a reservation is held until released",
  );
  state.setPending(p.timestamp, { status: PendingStatus.expired, expiresAt: record.expiresAt });
  const drNext = { ...dr, debits_pending: dr.debits_pending - p.amount };
  const crNext = { ...cr, credits_pending: cr.credits_pending - p.amount };
  if (has(p.flags, TF.closing_debit)) drNext.flags &= ~AccountFlags.closed;
  if (has(p.flags, TF.closing_credit)) crNext.flags &= ~AccountFlags.closed;
  state.updateAccount(drNext);
  state.updateAccount(crNext);
}
