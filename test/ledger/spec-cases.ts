// Our own conformance cases, written from TigerBeetle's state_machine.zig and the spec, for every
// status and rule the shared vectors do not reach: reserved fields and flags, imported events,
// not-found accounts, post/void mismatches, resolving twice, closing accounts, balancing, overflow
// and expiry edge cases. Same form as the JSON fixture; `embeddedOnly` cases need a clock that
// only the embedded engine lets a test move (e.g. to the end of time).
import { AccountFlags as AF, TransferFlags as TF } from "tigerbeetle-node";
import type { Case, Step } from "./support/cases.ts";

type Value = string | number | { ofResult: [number, number]; plus: number };
type Fields = Record<string, Value>;
type WireEvent = Record<string, Value>;

const MAX = ((1n << 128n) - 1n).toString();
const MAX63 = ((1n << 63n) - 1n).toString();
const TWO63 = (1n << 63n).toString();

function A(id: number, f: Fields = {}): WireEvent {
  return {
    id: String(id),
    debits_pending: "0",
    debits_posted: "0",
    credits_pending: "0",
    credits_posted: "0",
    user_data_128: "0",
    user_data_64: "0",
    user_data_32: 0,
    reserved: 0,
    ledger: 1,
    code: 1,
    flags: 0,
    timestamp: "0",
    ...f,
  };
}

function T(
  id: number | string,
  dr: number | string,
  cr: number | string,
  amount: number | string,
  f: Fields = {},
): WireEvent {
  return {
    id: String(id),
    debit_account_id: String(dr),
    credit_account_id: String(cr),
    amount: String(amount),
    pending_id: "0",
    user_data_128: "0",
    user_data_64: "0",
    user_data_32: 0,
    timeout: 0,
    ledger: 1,
    code: 1,
    flags: 0,
    timestamp: "0",
    ...f,
  };
}

/** A post or void of `pendingId` with every optional field left at zero. */
function PV(
  id: number,
  pendingId: number,
  amount: number | string,
  flags: number,
  f: Fields = {},
): WireEvent {
  return T(id, 0, 0, amount, { pending_id: String(pendingId), ledger: 0, code: 0, flags, ...f });
}

function ts(step: number, index: number, plus = 0): Value {
  return { ofResult: [step, index], plus };
}

function accounts(events: WireEvent[], statuses: string[], extra: Partial<Step> = {}): Step {
  return { call: "createAccounts", events, statuses, ...extra } as Step;
}

function transfers(events: WireEvent[], statuses: string[], extra: Partial<Step> = {}): Step {
  return { call: "createTransfers", events, statuses, ...extra } as Step;
}

function lookupAccounts(ids: string[], found: Array<Record<string, string | number>>): Step {
  return { call: "lookupAccounts", ids, accounts: found };
}

function lookupTransfers(ids: string[], found: Array<Record<string, string | number>>): Step {
  return { call: "lookupTransfers", ids, transfers: found };
}

const created = (n: number) => new Array<string>(n).fill("created");

export const specCases: Array<Case & { embeddedOnly?: boolean }> = [
  {
    name: "an account with a reserved field or an unknown flag bit is refused",
    origin: "state_machine.zig create_account: reserved_field, reserved_flag",
    steps: [
      accounts(
        [
          A(1, { reserved: 1 }),
          A(2, { flags: 64 }),
          A(3, { flags: 1 << 15 }),
          A(4, { reserved: 1, flags: 64 }),
        ],
        ["reserved_field", "reserved_flag", "reserved_flag", "reserved_field"],
      ),
      accounts([A(5, { timestamp: "5" })], ["timestamp_must_be_zero"]),
      lookupAccounts(["1", "2", "3", "4", "5"], []),
    ],
  },
  {
    name: "imported accounts keep their own past timestamps",
    origin: "state_machine.zig execute_create + create_account (imported)",
    steps: [
      accounts([A(1)], ["created"]),
      accounts(
        [
          A(2, { flags: AF.imported, timestamp: ts(0, 0, 1) }),
          A(3, { flags: AF.imported, timestamp: ts(0, 0, 2) }),
        ],
        created(2),
        {
          timestampRelations: [
            { index: 0, equals: [0, 0], plus: 1 },
            { index: 1, equals: [0, 0], plus: 2 },
          ],
        },
      ),
      lookupAccounts(["2"], [{ id: "2", flags: AF.imported }]),
    ],
  },
  {
    name: "an imported account batch follows its first event and refuses bad timestamps",
    origin: "state_machine.zig execute_create (batch_imported) + create_account",
    steps: [
      accounts([A(1)], ["created"]),
      accounts(
        [A(2, { flags: AF.imported, timestamp: ts(0, 0, 1) }), A(3)],
        ["created", "imported_event_expected"],
      ),
      accounts(
        [A(4), A(5, { flags: AF.imported, timestamp: ts(0, 0, 5) })],
        ["created", "imported_event_not_expected"],
      ),
      accounts(
        [
          A(6, { flags: AF.imported, timestamp: "0" }),
          A(7, { flags: AF.imported, timestamp: TWO63 }),
          A(8, { flags: AF.imported, timestamp: MAX63 }),
          A(9, { flags: AF.imported, timestamp: ts(1, 0) }),
          A(10, { flags: AF.imported, timestamp: ts(0, 0, -1) }),
        ],
        [
          "imported_event_timestamp_out_of_range",
          "imported_event_timestamp_out_of_range",
          "imported_event_timestamp_must_not_advance",
          "imported_event_timestamp_must_not_regress",
          "imported_event_timestamp_must_not_regress",
        ],
      ),
    ],
  },
  {
    name: "an imported account may not take a transfer's timestamp",
    origin: "state_machine.zig create_account (transfers.indirect_lookup by timestamp)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers([T(1, 1, 2, 5)], ["created"]),
      accounts(
        [A(3, { flags: AF.imported, timestamp: ts(1, 0) })],
        ["imported_event_timestamp_must_not_regress"],
      ),
      accounts([A(3, { flags: AF.imported, timestamp: ts(1, 0, 1) })], ["created"], {
        timestampRelations: [{ index: 0, equals: [1, 0], plus: 1 }],
      }),
    ],
  },
  {
    name: "imported transfers must postdate their accounts, carry no timeout and not regress",
    origin: "state_machine.zig create_transfer + post_or_void_pending_transfer (imported)",
    steps: [
      accounts([A(1)], ["created"]),
      accounts([A(2)], ["created"]),
      transfers(
        [T(1, 2, 1, 5, { flags: TF.imported, timestamp: ts(1, 0, -1) })],
        ["imported_event_timestamp_must_postdate_debit_account"],
      ),
      transfers(
        [T(2, 1, 2, 5, { flags: TF.imported, timestamp: ts(1, 0, -1) })],
        ["imported_event_timestamp_must_postdate_credit_account"],
      ),
      transfers(
        [T(3, 1, 2, 5, { flags: TF.imported | TF.pending, timeout: 1, timestamp: ts(1, 0, 1) })],
        ["imported_event_timeout_must_be_zero"],
      ),
      transfers(
        [
          T(4, 1, 2, 5, { flags: TF.imported, timestamp: ts(1, 0, 1) }),
          T(5, 1, 2, 6, { flags: TF.imported, timestamp: ts(1, 0, 1) }),
          T(6, 1, 2, 7, { flags: TF.imported, timestamp: ts(1, 0, 3) }),
          T(7, 1, 2, 1),
        ],
        [
          "created",
          "imported_event_timestamp_must_not_regress",
          "created",
          "imported_event_expected",
        ],
        {
          timestampRelations: [
            { index: 0, equals: [1, 0], plus: 1 },
            { index: 2, equals: [1, 0], plus: 3 },
          ],
        },
      ),
      transfers(
        [T(8, 1, 2, 1), T(9, 1, 2, 1, { flags: TF.imported, timestamp: ts(1, 0, 9) })],
        ["created", "imported_event_not_expected"],
      ),
      transfers(
        [
          T(10, 1, 2, 1, { flags: TF.imported, timestamp: "0" }),
          T(11, 1, 2, 1, { flags: TF.imported, timestamp: TWO63 }),
          T(12, 1, 2, 1, { flags: TF.imported, timestamp: MAX63 }),
          T(13, 1, 2, 1, { flags: TF.imported, timestamp: ts(6, 0, 2) }),
          T(14, 1, 2, 1, { flags: TF.imported, timestamp: ts(6, 0) }),
        ],
        [
          "imported_event_timestamp_out_of_range",
          "imported_event_timestamp_out_of_range",
          "imported_event_timestamp_must_not_advance",
          "created",
          "imported_event_timestamp_must_not_regress",
        ],
      ),
      transfers(
        [
          T(20, 1, 2, 5, { flags: TF.imported | TF.pending, timestamp: ts(6, 0, 3) }),
          PV(21, 20, MAX, TF.imported | TF.post_pending_transfer, { timestamp: ts(6, 0, 4) }),
        ],
        created(2),
      ),
      transfers([T(15, 1, 2, 1, { timestamp: "7" })], ["timestamp_must_be_zero"]),
      lookupAccounts(
        ["1", "2"],
        [
          { id: "1", debits_posted: "19" },
          { id: "2", credits_posted: "19" },
        ],
      ),
    ],
  },
  {
    name: "an ordinary transfer's field rules are checked in order and leave the id reusable",
    origin: "state_machine.zig create_transfer (field checks)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers(
        [
          T(1, 1, 2, 1, { flags: 1 << 9 }),
          T(3, 0, 2, 1),
          T(4, MAX, 2, 1),
          T(5, 1, 0, 1),
          T(6, 1, MAX, 1),
          T(7, 1, 2, 1, { pending_id: "9" }),
          T(8, 1, 2, 1, { timeout: 1 }),
          T(9, 1, 2, 1, { flags: TF.closing_debit }),
          T(10, 1, 2, 1, { flags: TF.closing_credit }),
          T(11, 1, 2, 1, { code: 0 }),
        ],
        [
          "reserved_flag",
          "debit_account_id_must_not_be_zero",
          "debit_account_id_must_not_be_int_max",
          "credit_account_id_must_not_be_zero",
          "credit_account_id_must_not_be_int_max",
          "pending_id_must_be_zero",
          "timeout_reserved_for_pending_transfer",
          "closing_transfer_must_be_pending",
          "closing_transfer_must_be_pending",
          "code_must_not_be_zero",
        ],
      ),
      transfers(
        [1, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((id) => T(id, 1, 2, 1)),
        created(10),
      ),
    ],
  },
  {
    name: "a transfer to or from a missing account burns its id",
    origin: "state_machine.zig create_transfer + transient()",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers(
        [T(1, 9, 2, 1), T(2, 1, 9, 1)],
        ["debit_account_not_found", "credit_account_not_found"],
      ),
      transfers([T(1, 1, 2, 1), T(2, 1, 2, 1)], ["id_already_failed", "id_already_failed"]),
      lookupTransfers(["1", "2"], []),
    ],
  },
  {
    name: "a post or void cannot also be pending, balancing, closing or both",
    origin: "state_machine.zig post_or_void_pending_transfer (flags_are_mutually_exclusive)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers([T(1, 1, 2, 10, { flags: TF.pending })], ["created"]),
      transfers(
        [
          PV(2, 1, MAX, TF.post_pending_transfer | TF.void_pending_transfer),
          PV(3, 1, MAX, TF.post_pending_transfer | TF.pending),
          PV(4, 1, 0, TF.void_pending_transfer | TF.balancing_debit),
          PV(5, 1, 0, TF.void_pending_transfer | TF.balancing_credit),
          PV(6, 1, MAX, TF.post_pending_transfer | TF.closing_debit),
          PV(7, 1, MAX, TF.post_pending_transfer | TF.closing_credit),
        ],
        new Array<string>(6).fill("flags_are_mutually_exclusive"),
      ),
    ],
  },
  {
    name: "a post must name the pending transfer's accounts, ledger and code when it names them",
    origin: "state_machine.zig post_or_void_pending_transfer (pending_transfer_has_different_*)",
    steps: [
      accounts([A(1), A(2), A(3)], created(3)),
      transfers([T(1, 1, 2, 10, { flags: TF.pending })], ["created"]),
      transfers(
        [
          PV(2, 1, MAX, TF.post_pending_transfer, { debit_account_id: "3" }),
          PV(3, 1, MAX, TF.post_pending_transfer, { credit_account_id: "3" }),
          PV(4, 1, MAX, TF.post_pending_transfer, { ledger: 2 }),
          PV(5, 1, MAX, TF.post_pending_transfer, { code: 2 }),
          PV(6, 1, MAX, TF.post_pending_transfer, {
            debit_account_id: "1",
            credit_account_id: "2",
            ledger: 1,
            code: 1,
          }),
        ],
        [
          "pending_transfer_has_different_debit_account_id",
          "pending_transfer_has_different_credit_account_id",
          "pending_transfer_has_different_ledger",
          "pending_transfer_has_different_code",
          "created",
        ],
      ),
    ],
  },
  {
    name: "a pending transfer resolves once: a second post or void is already_posted or already_voided",
    origin: "state_machine.zig post_or_void_pending_transfer (transfer_pending.status)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers(
        [T(1, 1, 2, 10, { flags: TF.pending }), T(2, 1, 2, 20, { flags: TF.pending })],
        created(2),
      ),
      transfers(
        [PV(3, 1, MAX, TF.post_pending_transfer), PV(4, 2, 0, TF.void_pending_transfer)],
        created(2),
      ),
      transfers(
        [
          PV(5, 1, MAX, TF.post_pending_transfer),
          PV(6, 1, 0, TF.void_pending_transfer),
          PV(7, 2, MAX, TF.post_pending_transfer),
          PV(8, 2, 0, TF.void_pending_transfer),
        ],
        [
          "pending_transfer_already_posted",
          "pending_transfer_already_posted",
          "pending_transfer_already_voided",
          "pending_transfer_already_voided",
        ],
      ),
      lookupAccounts(["1"], [{ id: "1", debits_pending: "0", debits_posted: "10" }]),
    ],
  },
  {
    name: "a closed account refuses transfers and posts but allows voids, and voiding the closing transfer re-opens it",
    origin:
      "state_machine.zig create_transfer + post_or_void_pending_transfer (closing_debit, closing_credit)",
    steps: [
      accounts([A(1), A(2), A(3)], created(3)),
      transfers(
        [
          T(1, 1, 2, 10),
          T(2, 1, 3, 5, { flags: TF.pending }),
          T(3, 1, 3, 4, { flags: TF.pending }),
        ],
        created(3),
      ),
      transfers(
        [
          T(4, 1, 2, 0, { flags: TF.pending | TF.closing_debit }),
          T(5, 3, 2, 0, { flags: TF.pending | TF.closing_credit }),
        ],
        created(2),
      ),
      lookupAccounts(
        ["1", "2", "3"],
        [
          { id: "1", flags: AF.closed },
          { id: "2", flags: AF.closed },
          { id: "3", flags: 0 },
        ],
      ),
      transfers(
        [
          T(6, 1, 3, 1),
          T(7, 3, 2, 1),
          T(8, 3, 1, 1),
          T(9, 3, 2, 0, { flags: TF.pending | TF.closing_credit }),
          PV(10, 2, MAX, TF.post_pending_transfer),
          PV(11, 3, 0, TF.void_pending_transfer),
        ],
        [
          "debit_account_already_closed",
          "credit_account_already_closed",
          "credit_account_already_closed",
          "credit_account_already_closed",
          "debit_account_already_closed",
          "created",
        ],
      ),
      transfers(
        [T(6, 1, 3, 1), PV(10, 2, MAX, TF.post_pending_transfer)],
        ["id_already_failed", "id_already_failed"],
      ),
      accounts([A(1)], ["exists_with_different_flags"]),
      transfers([PV(12, 4, 0, TF.void_pending_transfer)], ["created"]),
      lookupAccounts(
        ["1", "2"],
        [
          { id: "1", flags: 0, debits_pending: "5", debits_posted: "10" },
          { id: "2", flags: AF.closed },
        ],
      ),
      transfers([T(13, 1, 3, 1), PV(14, 2, MAX, TF.post_pending_transfer)], created(2)),
      accounts([A(1)], ["exists"]),
    ],
  },
  {
    name: "an expiring closing transfer re-opens its account",
    origin: "state_machine.zig execute_expire_pending_transfers (closing flags)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers([T(1, 1, 2, 0, { flags: TF.pending | TF.closing_debit, timeout: 1 })], ["created"]),
      lookupAccounts(["1"], [{ id: "1", flags: AF.closed }]),
      { call: "advanceClock", seconds: 3 },
      lookupAccounts(["1"], [{ id: "1", flags: 0 }]),
      transfers([T(2, 1, 2, 1)], ["created"]),
    ],
  },
  {
    name: "a pending transfer on a closed account still expires",
    origin: "state_machine.zig execute_expire_pending_transfers (maybe closed)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers(
        [
          T(1, 1, 2, 5, { flags: TF.pending, timeout: 1 }),
          T(2, 1, 2, 0, { flags: TF.pending | TF.closing_debit }),
        ],
        created(2),
      ),
      { call: "advanceClock", seconds: 3 },
      lookupAccounts(
        ["1", "2"],
        [
          { id: "1", flags: AF.closed, debits_pending: "0" },
          { id: "2", credits_pending: "0" },
        ],
      ),
    ],
  },
  {
    name: "debits pending plus posted plus amount above u128 is overflows_debits",
    origin: "state_machine.zig create_transfer (overflows_debits)",
    steps: [
      accounts([A(1), A(2), A(3), A(4)], created(4)),
      transfers(
        [
          T(1, 1, 2, (1n << 126n).toString()),
          T(2, 1, 3, (1n << 126n).toString(), { flags: TF.pending }),
        ],
        created(2),
      ),
      transfers([T(3, 1, 4, (1n << 127n).toString())], ["overflows_debits"]),
      transfers([T(3, 1, 4, ((1n << 127n) - 1n).toString())], ["created"]),
    ],
  },
  {
    name: "balancing transfers move at most what the account can, possibly zero, and retry as exists",
    origin: "state_machine.zig create_transfer (balancing) + create_transfer_exists",
    steps: [
      accounts([A(100), A(1, { flags: AF.debits_must_not_exceed_credits }), A(2)], created(3)),
      transfers([T(90, 100, 1, 100)], ["created"]),
      transfers(
        [
          T(1, 1, 2, 30, { flags: TF.pending }),
          T(2, 1, 2, 1000, { flags: TF.balancing_debit }),
          T(3, 1, 2, 5, { flags: TF.balancing_debit }),
        ],
        created(3),
      ),
      lookupTransfers(
        ["2", "3"],
        [
          { id: "2", amount: "70" },
          { id: "3", amount: "0" },
        ],
      ),
      transfers(
        [
          T(2, 1, 2, 70, { flags: TF.balancing_debit }),
          T(2, 1, 2, 1000, { flags: TF.balancing_debit }),
          T(2, 1, 2, 69, { flags: TF.balancing_debit }),
        ],
        ["exists", "exists", "exists_with_different_amount"],
      ),
      transfers([T(4, 2, 100, MAX, { flags: TF.balancing_credit })], ["created"]),
      lookupTransfers(["4"], [{ id: "4", amount: "100" }]),
      lookupAccounts(
        ["1", "100"],
        [
          { id: "1", debits_pending: "30", debits_posted: "70", credits_posted: "100" },
          { id: "100", debits_posted: "100", credits_posted: "100" },
        ],
      ),
    ],
  },
  {
    name: "a transient failure in a linked chain burns only the failing id",
    origin: "state_machine.zig execute_create (transient_error after scope_close)",
    steps: [
      accounts([A(1, { flags: AF.debits_must_not_exceed_credits }), A(2)], created(2)),
      transfers(
        [T(1, 2, 1, 5, { flags: TF.linked }), T(2, 1, 2, 100, { flags: TF.linked }), T(3, 2, 1, 1)],
        ["linked_event_failed", "exceeds_credits", "linked_event_failed"],
      ),
      transfers(
        [T(1, 2, 1, 5), T(2, 1, 2, 1), T(3, 2, 1, 1)],
        ["created", "id_already_failed", "created"],
      ),
    ],
  },
  {
    name: "an exists inside a chain can name a transfer the same chain created and then rolled back",
    origin: "state_machine.zig execute_create (exists breaks a chain)",
    steps: [
      accounts([A(1), A(2)], created(2)),
      transfers(
        [T(1, 1, 2, 1, { flags: TF.linked }), T(1, 1, 2, 1, { flags: TF.linked }), T(2, 1, 2, 1)],
        ["linked_event_failed", "exists", "linked_event_failed"],
        {
          timestampRelations: [{ index: 1, equals: [1, 0] }],
        },
      ),
      lookupTransfers(["1", "2"], []),
      lookupAccounts(["1"], [{ id: "1", debits_posted: "0" }]),
    ],
  },
  {
    name: "balances of 2^63 and above are kept exactly, in accounts and in their history",
    origin: "u128 balances (tigerbeetle.zig Account, AccountBalance)",
    steps: [
      accounts([A(1, { flags: AF.history }), A(2, { flags: AF.history })], created(2)),
      transfers([T(1, 1, 2, (1n << 100n).toString()), T(2, 1, 2, "5")], created(2)),
      lookupAccounts(["1"], [{ id: "1", debits_posted: ((1n << 100n) + 5n).toString() }]),
      {
        call: "getAccountBalances",
        filter: {
          account_id: "2",
          user_data_128: "0",
          user_data_64: "0",
          user_data_32: 0,
          code: 0,
          timestamp_min: "0",
          timestamp_max: "0",
          limit: 10,
          flags: 3,
        },
        balances: [
          {
            timestampOfTransfer: "1",
            debits_pending: "0",
            debits_posted: "0",
            credits_pending: "0",
            credits_posted: (1n << 100n).toString(),
          },
          {
            timestampOfTransfer: "2",
            debits_pending: "0",
            debits_posted: "0",
            credits_pending: "0",
            credits_posted: ((1n << 100n) + 5n).toString(),
          },
        ],
      },
    ],
  },
  {
    name: "a deadline past 2^63-1 ns is overflows_timeout",
    origin:
      "state_machine.zig create_transfer (overflows_timeout); needs a clock near the end of u63",
    embeddedOnly: true,
    steps: [
      accounts([A(1), A(2)], created(2)),
      { call: "advanceClock", seconds: 3_300_000_000 },
      transfers(
        [
          T(1, 1, 2, 1, { flags: TF.pending, timeout: 4_294_967_295 }),
          T(2, 1, 2, 1, { flags: TF.pending, timeout: 1 }),
        ],
        ["overflows_timeout", "created"],
      ),
    ],
  },
];
