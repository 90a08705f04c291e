// Money is a bigint count of a currency's minor units, from the edge inward; never a JS number.

import { commandFieldRules } from "@billing-ledger/client/schemas";

/** The contract's largest amount: 2^63 − 1 minor units (the client package's field rules). */
export const MONEY_MAX = commandFieldRules.moneyMax;

export type UserBalance = { posted: bigint; held: bigint; available: bigint };

/**
 * A user account is credit-normal: posted = credits − debits that are final, held = open holds
 * (pending debits), available = posted − held. debits_must_not_exceed_credits keeps available ≥ 0.
 */
export function userBalance(b: {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_posted: bigint;
}): UserBalance {
  const posted = b.credits_posted - b.debits_posted;
  return { posted, held: b.debits_pending, available: posted - b.debits_pending };
}
