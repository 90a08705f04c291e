// Ledger records as fixed-layout bytes, for the way to and from the engine's thread
// (src/ledger/thread.ts). Posting an array of objects of BigInts costs ~2 µs per transfer to
// serialize and as much to deserialize (structured clone walks every property); the same transfer
// written into an ArrayBuffer and handed over (transferred, not copied) costs ~0.8 µs both ways
// together (bench/results, issue 13). Layouts follow the ledger's own field order and widths, little
// endian: u128 as two u64 words, low word first. Requests and answers that are not arrays of these
// records (filters, errors) cross as they are.
import type {
  Account,
  AccountBalance,
  CreateAccountResult,
  CreateTransferResult,
  Transfer,
} from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import type { RequestName } from "./embedded.ts";

type Width = 16 | 8 | 4 | 2;
/** A record's fields in order, each with its width in bytes (16: u128, 8: u64, 4: u32, 2: u16). */
type Layout = ReadonlyArray<readonly [string, Width]>;

const transferLayout: Layout = [
  ["id", 16],
  ["debit_account_id", 16],
  ["credit_account_id", 16],
  ["amount", 16],
  ["pending_id", 16],
  ["user_data_128", 16],
  ["user_data_64", 8],
  ["user_data_32", 4],
  ["timeout", 4],
  ["ledger", 4],
  ["code", 2],
  ["flags", 2],
  ["timestamp", 8],
];
const accountLayout: Layout = [
  ["id", 16],
  ["debits_pending", 16],
  ["debits_posted", 16],
  ["credits_pending", 16],
  ["credits_posted", 16],
  ["user_data_128", 16],
  ["user_data_64", 8],
  ["user_data_32", 4],
  ["reserved", 4],
  ["ledger", 4],
  ["code", 2],
  ["flags", 2],
  ["timestamp", 8],
];
const balanceLayout: Layout = [
  ["debits_pending", 16],
  ["debits_posted", 16],
  ["credits_pending", 16],
  ["credits_posted", 16],
  ["timestamp", 8],
];
const resultLayout: Layout = [
  ["timestamp", 8],
  ["status", 4],
];

const sizeOf = (layout: Layout) => layout.reduce((size, [, width]) => size + width, 0);
const U64_MASK = (1n << 64n) - 1n;

/** An array of records as one buffer of fixed-size records. */
export type Packed = { packed: "records" | "ids"; bytes: ArrayBuffer };

function pack(layout: Layout, records: ReadonlyArray<object>): Packed {
  const size = sizeOf(layout);
  const bytes = new ArrayBuffer(size * records.length);
  const view = new DataView(bytes);
  let at = 0;
  for (const record of records) {
    const fields = record as Record<string, bigint | number>;
    for (const [name, width] of layout) {
      const value = fields[name];
      if (width === 16) {
        view.setBigUint64(at, (value as bigint) & U64_MASK, true);
        view.setBigUint64(at + 8, (value as bigint) >> 64n, true);
      } else if (width === 8) view.setBigUint64(at, value as bigint, true);
      else if (width === 4) view.setUint32(at, value as number, true);
      else view.setUint16(at, value as number, true);
      at += width;
    }
  }
  return { packed: "records", bytes };
}

function unpack<T>(layout: Layout, packed: Packed): T[] {
  const size = sizeOf(layout);
  const view = new DataView(packed.bytes);
  assert(
    packed.packed === "records" && packed.bytes.byteLength % size === 0,
    "packed records of the expected size",
  );
  const records: T[] = [];
  for (let at = 0; at < packed.bytes.byteLength;) {
    const record: Record<string, bigint | number> = {};
    for (const [name, width] of layout) {
      if (width === 16)
        record[name] = view.getBigUint64(at, true) | (view.getBigUint64(at + 8, true) << 64n);
      else if (width === 8) record[name] = view.getBigUint64(at, true);
      else if (width === 4) record[name] = view.getUint32(at, true);
      else record[name] = view.getUint16(at, true);
      at += width;
    }
    records.push(record as T);
  }
  return records;
}

function packIds(ids: ReadonlyArray<bigint>): Packed {
  const bytes = new ArrayBuffer(16 * ids.length);
  const view = new DataView(bytes);
  ids.forEach((id, i) => {
    view.setBigUint64(16 * i, id & U64_MASK, true);
    view.setBigUint64(16 * i + 8, id >> 64n, true);
  });
  return { packed: "ids", bytes };
}

function unpackIds(packed: Packed): bigint[] {
  assert(packed.packed === "ids" && packed.bytes.byteLength % 16 === 0, "packed ids");
  const view = new DataView(packed.bytes);
  const ids: bigint[] = [];
  for (let at = 0; at < packed.bytes.byteLength; at += 16)
    ids.push(view.getBigUint64(at, true) | (view.getBigUint64(at + 8, true) << 64n));
  return ids;
}

/** How each request's input and answer cross; null: as they are. */
const inputLayouts: Record<RequestName, Layout | "ids" | null> = {
  createAccounts: accountLayout,
  createTransfers: transferLayout,
  lookupAccounts: "ids",
  lookupTransfers: "ids",
  getAccountTransfers: null,
  getAccountBalances: null,
  queryAccounts: null,
  queryTransfers: null,
};
const answerLayouts: Record<RequestName, Layout> = {
  createAccounts: resultLayout,
  createTransfers: resultLayout,
  lookupAccounts: accountLayout,
  lookupTransfers: transferLayout,
  getAccountTransfers: transferLayout,
  getAccountBalances: balanceLayout,
  queryAccounts: accountLayout,
  queryTransfers: transferLayout,
};

/** A checked input (src/ledger/input.ts) as it crosses: records packed, anything else as it is. */
export function packInput(name: RequestName, input: unknown): unknown {
  const layout = inputLayouts[name];
  if (layout === null) return input;
  if (layout === "ids") return packIds(input as bigint[]);
  return pack(layout, input as object[]);
}

export function unpackInput(name: RequestName, input: unknown): unknown {
  const layout = inputLayouts[name];
  if (layout === null) return input;
  if (layout === "ids") return unpackIds(input as Packed);
  return unpack(layout, input as Packed);
}

/** A request's answer as it crosses (every answer is an array of records). */
export function packAnswer(name: RequestName, value: unknown): Packed {
  return pack(answerLayouts[name], value as object[]);
}

export function unpackAnswer(name: RequestName, packed: Packed): Answer[] {
  return unpack<Answer>(answerLayouts[name], packed);
}

type Answer = Account | Transfer | AccountBalance | CreateAccountResult | CreateTransferResult;

/** The buffers to hand over with a message instead of copying them. */
export function buffersOf(values: ReadonlyArray<unknown>): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const v of values)
    if (typeof v === "object" && v !== null && "packed" in v) buffers.push((v as Packed).bytes);
  return buffers;
}
