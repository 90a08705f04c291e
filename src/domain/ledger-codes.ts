// TigerBeetle's flags and result codes as plain values (tigerbeetle-node 0.17.9), so the pure core
// never loads tigerbeetle-node, whose index loads its native addon. The domain imports only types
// from tigerbeetle-node; test/ledger/ledger-codes.test.ts asserts these equal the package's own.
// Same names as tigerbeetle-node's enums, so code reads the same on both sides.

/** Account flags (bit set). */
export const AccountFlags = {
  none: 0,
  linked: 1,
  debits_must_not_exceed_credits: 2,
  credits_must_not_exceed_debits: 4,
  history: 8,
  imported: 16,
  closed: 32,
} as const;

/** Transfer flags (bit set). */
export const TransferFlags = {
  none: 0,
  linked: 1,
  pending: 2,
  post_pending_transfer: 4,
  void_pending_transfer: 8,
  balancing_debit: 16,
  balancing_credit: 32,
  closing_debit: 64,
  closing_credit: 128,
  imported: 256,
} as const;

/** The status of one create_transfers result. */
export const CreateTransferStatus = {
  created: 0xffff_ffff,
  linked_event_failed: 1,
  linked_event_chain_open: 2,
  imported_event_expected: 56,
  imported_event_not_expected: 57,
  timestamp_must_be_zero: 3,
  imported_event_timestamp_out_of_range: 58,
  imported_event_timestamp_must_not_advance: 59,
  reserved_flag: 4,
  id_must_not_be_zero: 5,
  id_must_not_be_int_max: 6,
  exists_with_different_flags: 36,
  exists_with_different_pending_id: 40,
  exists_with_different_timeout: 44,
  exists_with_different_debit_account_id: 37,
  exists_with_different_credit_account_id: 38,
  exists_with_different_amount: 39,
  exists_with_different_user_data_128: 41,
  exists_with_different_user_data_64: 42,
  exists_with_different_user_data_32: 43,
  exists_with_different_ledger: 67,
  exists_with_different_code: 45,
  exists: 46,
  id_already_failed: 68,
  flags_are_mutually_exclusive: 7,
  debit_account_id_must_not_be_zero: 8,
  debit_account_id_must_not_be_int_max: 9,
  credit_account_id_must_not_be_zero: 10,
  credit_account_id_must_not_be_int_max: 11,
  accounts_must_be_different: 12,
  pending_id_must_be_zero: 13,
  pending_id_must_not_be_zero: 14,
  pending_id_must_not_be_int_max: 15,
  pending_id_must_be_different: 16,
  timeout_reserved_for_pending_transfer: 17,
  closing_transfer_must_be_pending: 64,
  ledger_must_not_be_zero: 19,
  code_must_not_be_zero: 20,
  debit_account_not_found: 21,
  credit_account_not_found: 22,
  accounts_must_have_the_same_ledger: 23,
  transfer_must_have_the_same_ledger_as_accounts: 24,
  pending_transfer_not_found: 25,
  pending_transfer_not_pending: 26,
  pending_transfer_has_different_debit_account_id: 27,
  pending_transfer_has_different_credit_account_id: 28,
  pending_transfer_has_different_ledger: 29,
  pending_transfer_has_different_code: 30,
  exceeds_pending_transfer_amount: 31,
  pending_transfer_has_different_amount: 32,
  pending_transfer_already_posted: 33,
  pending_transfer_already_voided: 34,
  pending_transfer_expired: 35,
  imported_event_timestamp_must_not_regress: 60,
  imported_event_timestamp_must_postdate_debit_account: 61,
  imported_event_timestamp_must_postdate_credit_account: 62,
  imported_event_timeout_must_be_zero: 63,
  debit_account_already_closed: 65,
  credit_account_already_closed: 66,
  overflows_debits_pending: 47,
  overflows_credits_pending: 48,
  overflows_debits_posted: 49,
  overflows_credits_posted: 50,
  overflows_debits: 51,
  overflows_credits: 52,
  overflows_timeout: 53,
  exceeds_credits: 54,
  exceeds_debits: 55,
} as const;

const transferStatusNames = new Map<number, string>(
  Object.entries(CreateTransferStatus).map(([name, code]) => [code, name]),
);

/** A create_transfers status by name, as tigerbeetle-node's enum reverse mapping gives it; undefined for an unknown code. */
export function transferStatusName(status: number): string | undefined {
  return transferStatusNames.get(status);
}

/**
 * The statuses that burn a transfer's id: TigerBeetle records the id as failed, and a later
 * transfer under it answers id_already_failed (spec §5.4, "transient" errors). The domain decides
 * by them (src/domain/reasons.ts) and the embedded engine implements them (src/ledger/state-machine.ts).
 */
export const idBurningTransferStatuses: ReadonlySet<number> = new Set<number>([
  CreateTransferStatus.debit_account_not_found,
  CreateTransferStatus.credit_account_not_found,
  CreateTransferStatus.pending_transfer_not_found,
  CreateTransferStatus.exceeds_credits,
  CreateTransferStatus.exceeds_debits,
  CreateTransferStatus.debit_account_already_closed,
  CreateTransferStatus.credit_account_already_closed,
]);
