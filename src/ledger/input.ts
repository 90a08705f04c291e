// Input checks that tigerbeetle-node 0.17.9 makes before a request leaves the process, with the
// same messages, in the same order (struct field order, first bad field of the first bad event
// wins). The native client reads each field through N-API: u128 via bigint words, u64 via
// napi_get_value_bigint_uint64, u32/u16 via napi_get_value_uint32 (ToUint32, so -1 and 1.5 are
// accepted as 4294967295 and 1). Decoding returns our own copy, so a caller mutating its objects
// after the call changes nothing.
import {
  ErrorCodes,
  RequestError,
  type Account,
  type AccountFilter,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import { LEDGER_EVENTS_MAX } from "../config/limits.ts";

type Fields = Record<string, unknown>;

const u128Limit = 1n << 128n;
const u64Limit = 1n << 64n;
const u16Max = 0xffff;

function fieldsOf(value: unknown): Fields {
  // N-API property access on null/undefined fails exactly like JavaScript's ToObject.
  if (value === null || value === undefined)
    throw new TypeError("Cannot convert undefined or null to object");
  return value as Fields;
}

function u128(fields: Fields, name: string): bigint {
  const value = fields[name];
  if (typeof value !== "bigint") throw new Error(`${name} must be a BigInt`);
  if (value < 0n) throw new Error(`${name} must be positive`);
  if (value >= u128Limit) throw new Error(`${name} must fit in 128 bits`);
  return value;
}

function u64(fields: Fields, name: string): bigint {
  const value = fields[name];
  if (typeof value !== "bigint") throw new Error(`${name} must be an unsigned 64-bit BigInt`);
  if (value < 0n || value >= u64Limit) throw new Error(`${name} conversion was lossy`);
  return value;
}

function u32(fields: Fields, name: string): number {
  const value = fields[name];
  if (typeof value !== "number") throw new Error(`${name} must be a number`);
  return value >>> 0;
}

function u16(fields: Fields, name: string): number {
  const value = u32(fields, name);
  if (value > u16Max) throw new Error(`${name} must be a u16.`);
  return value;
}

export function decodeAccount(value: unknown): Account {
  const f = fieldsOf(value);
  return {
    id: u128(f, "id"),
    debits_pending: u128(f, "debits_pending"),
    debits_posted: u128(f, "debits_posted"),
    credits_pending: u128(f, "credits_pending"),
    credits_posted: u128(f, "credits_posted"),
    user_data_128: u128(f, "user_data_128"),
    user_data_64: u64(f, "user_data_64"),
    user_data_32: u32(f, "user_data_32"),
    reserved: u32(f, "reserved"),
    ledger: u32(f, "ledger"),
    code: u16(f, "code"),
    flags: u16(f, "flags"),
    timestamp: u64(f, "timestamp"),
  };
}

export function decodeTransfer(value: unknown): Transfer {
  const f = fieldsOf(value);
  return {
    id: u128(f, "id"),
    debit_account_id: u128(f, "debit_account_id"),
    credit_account_id: u128(f, "credit_account_id"),
    amount: u128(f, "amount"),
    pending_id: u128(f, "pending_id"),
    user_data_128: u128(f, "user_data_128"),
    user_data_64: u64(f, "user_data_64"),
    user_data_32: u32(f, "user_data_32"),
    timeout: u32(f, "timeout"),
    ledger: u32(f, "ledger"),
    code: u16(f, "code"),
    flags: u16(f, "flags"),
    timestamp: u64(f, "timestamp"),
  };
}

export function decodeAccountFilter(value: unknown): AccountFilter {
  const f = fieldsOf(value);
  return checkedLimit({
    account_id: u128(f, "account_id"),
    user_data_128: u128(f, "user_data_128"),
    user_data_64: u64(f, "user_data_64"),
    user_data_32: u32(f, "user_data_32"),
    code: u16(f, "code"),
    timestamp_min: u64(f, "timestamp_min"),
    timestamp_max: u64(f, "timestamp_max"),
    limit: u32(f, "limit"),
    flags: u32(f, "flags"),
  });
}

export function decodeQueryFilter(value: unknown): QueryFilter {
  const f = fieldsOf(value);
  return checkedLimit({
    user_data_128: u128(f, "user_data_128"),
    user_data_64: u64(f, "user_data_64"),
    user_data_32: u32(f, "user_data_32"),
    ledger: u32(f, "ledger"),
    code: u16(f, "code"),
    timestamp_min: u64(f, "timestamp_min"),
    timestamp_max: u64(f, "timestamp_max"),
    limit: u32(f, "limit"),
    flags: u32(f, "flags"),
  });
}

/** The real client refuses a larger limit once registered with a cluster; the engine always is. */
function checkedLimit<F extends { limit: number }>(filter: F): F {
  if (filter.limit > LEDGER_EVENTS_MAX) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
  return filter;
}

export function decodeId(value: unknown): bigint {
  return u128({ lookup: value }, "lookup");
}

/** The batch checks of `request()` in node.zig: an array, then its length, then each element. */
export function decodeBatch<T>(batch: unknown, decode: (value: unknown) => T): T[] {
  if (!Array.isArray(batch)) throw new Error("Array argument must be an [object Array].");
  if (batch.length > LEDGER_EVENTS_MAX) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
  const events: T[] = new Array<T>(batch.length);
  for (let i = 0; i < batch.length; i++) events[i] = decode(batch[i]);
  return events;
}
