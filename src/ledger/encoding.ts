// How the embedded engine stores TigerBeetle's unsigned integers in SQLite. Each encoding is
// canonical (one stored form per value), so SQL equality on the stored form is equality of values.
//
// - u128: an INTEGER when the value is below 2^63 (amounts, balances and test ids usually are),
//   otherwise a 16-byte big-endian BLOB. Small values cost 1–8 bytes instead of 16.
// - u64: the INTEGER with the same 64 bits (two's complement), as SQLite integers are signed.
// - u32/u16: plain INTEGER.
import { assert } from "../lib/assert.ts";
import type { Balances } from "./port.ts";

const int63Limit = 1n << 63n;
const u64Mask = (1n << 64n) - 1n;

// Scratch words: typed-array stores wrap to 64 bits and skip Buffer's per-write range checks;
// Buffer.from then copies the bytes out. (Hot path: every transfer id and history row.)
const words = new BigUint64Array(4);
const wordBytes = new Uint8Array(words.buffer);

export type SqlU128 = bigint | Buffer;

export function u128ToSql(value: bigint): SqlU128 {
  if (value < int63Limit) return value;
  words[0] = value >> 64n;
  words[1] = value; // the store keeps the low 64 bits
  return Buffer.from(wordBytes.subarray(0, 16)).swap64(); // big-endian words: blobs sort like the numbers
}

export function u128FromSql(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  assert(Buffer.isBuffer(value) && value.length === 16, "a stored u128 is an integer or 16 bytes");
  return (value.readBigUInt64BE(0) << 64n) | value.readBigUInt64BE(8);
}

export function u64ToSql(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}

export function u64FromSql(value: unknown): bigint {
  assert(typeof value === "bigint", "a stored u64 is an integer");
  return BigInt.asUintN(64, value);
}

export function intFromSql(value: unknown): number {
  assert(typeof value === "bigint", "a stored u32 is an integer");
  return Number(value);
}

/**
 * Four balances after a transfer (history accounts), as one BLOB: 32 bytes (four big-endian
 * int64) when all four are below 2^63, as they nearly always are, else 64 bytes (four u128).
 */
export type { Balances };

export function balancesToSql(b: Balances): Buffer {
  if (
    b.debits_pending < int63Limit &&
    b.debits_posted < int63Limit &&
    b.credits_pending < int63Limit &&
    b.credits_posted < int63Limit
  ) {
    words[0] = b.debits_pending;
    words[1] = b.debits_posted;
    words[2] = b.credits_pending;
    words[3] = b.credits_posted;
    return Buffer.from(wordBytes).swap64();
  }
  const bytes = Buffer.allocUnsafe(64);
  [b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted].forEach((value, i) => {
    bytes.writeBigUInt64BE(value >> 64n, i * 16);
    bytes.writeBigUInt64BE(value & u64Mask, i * 16 + 8);
  });
  return bytes;
}

export function balancesFromSql(value: unknown): Balances {
  assert(
    Buffer.isBuffer(value) && (value.length === 32 || value.length === 64),
    "stored balances are 32 or 64 bytes",
  );
  return {
    debits_pending: balanceAt(value, 0),
    debits_posted: balanceAt(value, 1),
    credits_pending: balanceAt(value, 2),
    credits_posted: balanceAt(value, 3),
  };
}

/**
 * The i-th of a stored balances BLOB's four numbers. A module function, not a closure per call: a
 * closure made per row loses its optimized code at every full GC and is compiled again.
 */
function balanceAt(value: Buffer, i: number): bigint {
  return value.length === 32
    ? value.readBigInt64BE(i * 8)
    : (value.readBigUInt64BE(i * 16) << 64n) | value.readBigUInt64BE(i * 16 + 8);
}
