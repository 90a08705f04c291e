// Records cross to and from the engine's thread packed (src/ledger/wire.ts): every field of every
// record kind comes back as it went, at the edges of its width, and nothing is copied twice.
import { describe, expect, it } from "vitest";
import type { Account, AccountBalance, Transfer } from "tigerbeetle-node";
import {
  buffersOf,
  packAnswer,
  packInput,
  unpackAnswer,
  unpackInput,
  type Packed,
} from "../../src/ledger/wire.ts";

const U128_MAX = (1n << 128n) - 1n;
const U64_MAX = (1n << 64n) - 1n;
/** A u128 whose two words differ, so a swapped or truncated word shows. */
const SPLIT = (0x0123456789abcdefn << 64n) | 0xfedcba9876543210n;

const transfers: Transfer[] = [
  {
    id: U128_MAX,
    debit_account_id: SPLIT,
    credit_account_id: 1n,
    amount: 1n << 64n,
    pending_id: U64_MAX,
    user_data_128: 0n,
    user_data_64: U64_MAX,
    user_data_32: 0xffffffff,
    timeout: 1,
    ledger: 0xfffffffe,
    code: 0xffff,
    flags: 1,
    timestamp: U64_MAX - 1n,
  },
  {
    id: 1n,
    debit_account_id: 0n,
    credit_account_id: U128_MAX,
    amount: 0n,
    pending_id: SPLIT,
    user_data_128: SPLIT,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0xffffffff,
    ledger: 0,
    code: 0,
    flags: 0xffff,
    timestamp: 0n,
  },
];

const accounts: Account[] = [
  {
    id: SPLIT,
    debits_pending: U128_MAX,
    debits_posted: 1n,
    credits_pending: 1n << 127n,
    credits_posted: 0n,
    user_data_128: U128_MAX,
    user_data_64: U64_MAX,
    user_data_32: 7,
    reserved: 0xffffffff,
    ledger: 978,
    code: 0xffff,
    flags: 0x8000,
    timestamp: 1n,
  },
];

const balances: AccountBalance[] = [
  {
    debits_pending: U128_MAX,
    debits_posted: SPLIT,
    credits_pending: 0n,
    credits_posted: 1n << 64n,
    timestamp: U64_MAX,
  },
];

/** As the thread boundary does it: pack, hand the buffer over, unpack. */
function across<T>(packed: T): T {
  return structuredClone(packed, { transfer: buffersOf([packed]) });
}

describe("records packed for the engine's thread", () => {
  it("transfers, accounts and ids come back field for field at the edges of their widths", () => {
    expect(unpackInput("createTransfers", across(packInput("createTransfers", transfers)))).toEqual(
      transfers,
    );
    expect(unpackInput("createAccounts", across(packInput("createAccounts", accounts)))).toEqual(
      accounts,
    );
    const ids = [U128_MAX, SPLIT, 1n, 1n << 64n];
    expect(unpackInput("lookupTransfers", across(packInput("lookupTransfers", ids)))).toEqual(ids);
    expect(unpackInput("lookupAccounts", across(packInput("lookupAccounts", [])))).toEqual([]);
  });

  it("answers of every kind come back field for field", () => {
    const results = [
      { timestamp: U64_MAX, status: 0xffffffff },
      { timestamp: 0n, status: 3 },
    ];
    expect(unpackAnswer("createTransfers", across(packAnswer("createTransfers", results)))).toEqual(
      results,
    );
    expect(
      unpackAnswer("lookupTransfers", across(packAnswer("lookupTransfers", transfers))),
    ).toEqual(transfers);
    expect(unpackAnswer("queryAccounts", across(packAnswer("queryAccounts", accounts)))).toEqual(
      accounts,
    );
    expect(
      unpackAnswer("getAccountBalances", across(packAnswer("getAccountBalances", balances))),
    ).toEqual(balances);
  });

  it("filters cross as they are; packed buffers are handed over, leaving the sender's empty", () => {
    const filter = { account_id: 1n, limit: 3 };
    expect(packInput("getAccountBalances", filter)).toBe(filter);
    const packed = packInput("createTransfers", transfers) as Packed;
    expect(packed.bytes.byteLength).toBe(128 * transfers.length);
    expect(buffersOf([filter, packed, null])).toEqual([packed.bytes]);
    across(packed);
    expect(packed.bytes.byteLength).toBe(0);
  });
});
