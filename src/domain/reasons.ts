// Why an operation was not applied: the contract's reason codes, and where each comes from.
import { CreateTransferStatus as S, idBurningTransferStatuses } from "./ledger-codes.ts";
import type { CommandType } from "./commands.ts";

export const REASONS = [
  "insufficient_funds",
  "hold_not_found",
  "hold_already_captured",
  "hold_already_released",
  "hold_expired",
  "same_user",
  "unknown_currency",
  "invalid_command",
  "amount_overflow",
] as const;
export type Reason = (typeof REASONS)[number];

/** A rejection marker's transfer code is 100 + the reason's index; the code recovers the reason. */
export const MARKER_CODE_BASE = 100;

export function markerCode(reason: Reason): number {
  return MARKER_CODE_BASE + REASONS.indexOf(reason);
}

export function reasonOfMarkerCode(code: number): Reason | undefined {
  return REASONS[code - MARKER_CODE_BASE];
}

/**
 * The one transient ledger failure each command type can meet, and so the reason behind a burned
 * operation id (id_already_failed). Credits cannot fail transiently: both accounts are created
 * before the transfer is submitted, and accounts are never deleted.
 */
export const BURN_REASON: Record<CommandType, Reason | null> = {
  credit: null,
  debit: "insufficient_funds",
  hold: "insufficient_funds",
  transfer: "insufficient_funds",
  capture: "hold_not_found",
  release: "hold_not_found",
};

/** Ledger statuses that reject an operation, by reason. Anything else is a bug and crashes. */
const REJECTING: ReadonlyMap<number, Reason> = new Map<number, Reason>([
  [S.exceeds_credits, "insufficient_funds"],
  [S.pending_transfer_not_found, "hold_not_found"],
  [S.pending_transfer_not_pending, "hold_not_found"],
  [S.pending_transfer_already_posted, "hold_already_captured"],
  [S.pending_transfer_already_voided, "hold_already_released"],
  [S.pending_transfer_expired, "hold_expired"],
  [S.overflows_debits_pending, "amount_overflow"],
  [S.overflows_credits_pending, "amount_overflow"],
  [S.overflows_debits_posted, "amount_overflow"],
  [S.overflows_credits_posted, "amount_overflow"],
  [S.overflows_debits, "amount_overflow"],
  [S.overflows_credits, "amount_overflow"],
  [S.overflows_timeout, "amount_overflow"],
]);

export function reasonOfStatus(status: number): Reason | undefined {
  return REJECTING.get(status);
}

/** TigerBeetle burns the id of a transfer that fails with one of these (spec §5.4). */
export function burnsId(status: number): boolean {
  return idBurningTransferStatuses.has(status);
}

export const REASON_DETAIL: Record<Reason, string> = {
  insufficient_funds: "the available funds are below the amount",
  hold_not_found: "no hold with this holdId is in the ledger",
  hold_already_captured: "the hold was already captured",
  hold_already_released: "the hold was already released",
  hold_expired: "the hold expired before this command",
  same_user: "fromUserId and toUserId are the same user",
  unknown_currency: "the currency is not configured",
  invalid_command: "the command is invalid",
  amount_overflow: "the amount would overflow an account's 128-bit totals",
};
