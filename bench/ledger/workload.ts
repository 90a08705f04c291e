// The benchmark's ledger workload, shaped like the billing service's: user accounts with
// debits_must_not_exceed_credits | history, one settlement account per ledger, and transfers that
// credit a user (settlement → user), debit a user (user → settlement) or move money between users.
import { randomBytes } from "node:crypto";
import { AccountFlags, id as timeOrderedId, type Account, type Transfer } from "tigerbeetle-node";

export const ledgerId = 1;
export const settlementId = 1n;
const userFlags = AccountFlags.debits_must_not_exceed_credits | AccountFlags.history;

/** Transfer ids: TigerBeetle's `id()` (time-ordered, as TigerBeetle recommends) or random (UUIDv4-like). */
export type IdScheme = "time-ordered" | "random";

export function newId(scheme: IdScheme): bigint {
  if (scheme === "time-ordered") return timeOrderedId();
  const bytes = randomBytes(16);
  return (bytes.readBigUInt64BE(0) << 64n) | bytes.readBigUInt64BE(8);
}

export function account(id: bigint, flags: number): Account {
  return {
    id,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    ledger: ledgerId,
    code: flags === 0 ? 1 : 2,
    flags,
    timestamp: 0n,
  };
}

export function userAccount(id: bigint): Account {
  return account(id, userFlags);
}

export function settlementAccount(): Account {
  return account(settlementId, AccountFlags.none);
}

export function transfer(
  id: bigint,
  debit: bigint,
  credit: bigint,
  amount: bigint,
  flags = 0,
): Transfer {
  return {
    id,
    debit_account_id: debit,
    credit_account_id: credit,
    amount,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: ledgerId,
    code: 1,
    flags,
    timestamp: 0n,
  };
}

/** One batch: a quarter credits, a quarter debits, half user-to-user, between users drawn uniformly from `users`. */
export function batch(size: number, users: ReadonlyArray<bigint>, ids: IdScheme): Transfer[] {
  const pick = () => users[Math.floor(Math.random() * users.length)] as bigint;
  const out: Transfer[] = new Array<Transfer>(size);
  for (let i = 0; i < size; i++) {
    const kind = Math.random();
    const from = kind < 0.25 ? settlementId : pick();
    let to = kind >= 0.25 && kind < 0.5 ? settlementId : pick();
    if (to === from) to = settlementId === from ? pick() : settlementId;
    out[i] = transfer(newId(ids), from, to, 1n + BigInt(Math.floor(Math.random() * 100)));
  }
  return out;
}

export function randomAccountId(): bigint {
  return newId("random");
}
