// Fixed-layout packing of what crosses between the service's thread and the engine's thread
// (src/ledger/thread.ts): ledger records are flat objects of u128 BigInts and numbers, and the
// structured clone of a batch's thousands of them (every key written as a string, every BigInt as
// its digits, then parsed and internalised on the other side) was a tenth of the engine thread's
// CPU and most of what the main thread spent posting to it (bench/results, issue 13). Here the
// values of one message go into two typed arrays whose buffers are transferred, not copied: each
// BigInt as two 64-bit words, each number as a float64 (exact for every number). A value this
// module cannot represent exactly (anything but an array of u128 BigInts, a flat record, or an
// array of flat records of one shape) is left to the structured clone, so what arrives is always
// what was sent.
import { assert } from "../lib/assert.ts";

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;
/**
 * Words (and numbers) a packer starts with; it doubles as needed, bounded by what it is given. Small:
 * most messages carry one request or a few, and a large buffer costs its zeroing on every message.
 */
const INITIAL_SLOTS = 256;

/** The field names of a record and, per field, "b" (a u128 BigInt) or "n" (a number). */
export type Shape = { keys: string[]; kinds: string; bigints: number };

/** Where a packed value lies in its message's arrays. `shape` indexes the message's shapes. */
export type PackedRef =
  | { form: "ids"; count: number; word: number }
  | { form: "record" | "records"; shape: number; count: number; word: number; number: number };

/** The arrays of one message; their buffers go in the postMessage transfer list. */
export type PackedArrays = { shapes: Shape[]; words: BigUint64Array; numbers: Float64Array };

/**
 * A ref (or its absence: the value travels as it is) as REF_SLOTS numbers of a message's table, so
 * that a message of 600 small answers does not clone 600 small objects either.
 */
export const REF_SLOTS = 5;
const FORMS = [null, "ids", "record", "records"] as const;

export function writeRef(table: Float64Array, at: number, ref: PackedRef | null): void {
  if (ref === null) {
    table.fill(0, at, at + REF_SLOTS);
    return;
  }
  table[at] = FORMS.indexOf(ref.form);
  table[at + 1] = ref.form === "ids" ? 0 : ref.shape;
  table[at + 2] = ref.count;
  table[at + 3] = ref.word;
  table[at + 4] = ref.form === "ids" ? 0 : ref.number;
}

export function readRef(table: Float64Array, at: number): PackedRef | null {
  const form = FORMS[table[at] as number];
  assert(form !== undefined, "a packed ref has a known form");
  if (form === null) return null;
  const count = table[at + 2] as number;
  const word = table[at + 3] as number;
  return form === "ids" ? { form, count, word } : { form, shape: table[at + 1] as number, count, word, number: table[at + 4] as number };
}

function isU128(v: unknown): v is bigint {
  return typeof v === "bigint" && v >= 0n && v <= U128_MAX;
}

/** Same keys, same kinds (the order is the shape's: records of one shape come from one literal). */
function isOfShape(fields: Record<string, unknown>, shape: Shape): boolean {
  const { keys, kinds } = shape;
  let count = 0;
  for (const _ in fields) count += 1;
  if (count !== keys.length) return false;
  for (let k = 0; k < keys.length; k++) {
    const kind = typeof fields[keys[k] as string];
    if (kind !== (kinds.charCodeAt(k) === 98 /* b */ ? "bigint" : "number")) return false;
  }
  return true;
}

export class RecordPacker {
  private words = new BigUint64Array(INITIAL_SLOTS);
  private numbers = new Float64Array(INITIAL_SLOTS);
  private w = 0;
  private n = 0;
  private readonly shapes: Shape[] = [];

  /** Packs `value` and says where, or null when it must travel as it is (structured clone). */
  pack(value: unknown): PackedRef | null {
    if (Array.isArray(value)) {
      if (value.length === 0) return null;
      return typeof value[0] === "bigint" ? this.packIds(value) : this.packRecords(value, "records");
    }
    if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) return this.packRecords([value], "record");
    return null;
  }

  /** The message's arrays, trimmed views over buffers the caller transfers; the packer is spent. */
  finish(): PackedArrays {
    return { shapes: this.shapes, words: this.words.subarray(0, this.w), numbers: this.numbers.subarray(0, this.n) };
  }

  private packIds(ids: ReadonlyArray<unknown>): PackedRef | null {
    const word = this.w;
    this.reserve(2 * ids.length, 0);
    for (const id of ids) {
      if (!isU128(id)) {
        this.w = word;
        return null;
      }
      this.putU128(id);
    }
    return { form: "ids", count: ids.length, word };
  }

  private packRecords(records: ReadonlyArray<unknown>, form: "record" | "records"): PackedRef | null {
    const shape = this.shapeOf(records[0]);
    if (shape === null) return null;
    const { keys, kinds, bigints } = this.shapes[shape] as Shape;
    const word = this.w;
    const number = this.n;
    this.reserve(2 * bigints * records.length, (keys.length - bigints) * records.length);
    for (const r of records) {
      if (!this.putRecord(r, keys, kinds)) {
        this.w = word;
        this.n = number;
        return null;
      }
    }
    return { form, shape, count: records.length, word, number };
  }

  /** Writes one record of the shape; false (nothing to keep) when it is not exactly of that shape. */
  private putRecord(r: unknown, keys: ReadonlyArray<string>, kinds: string): boolean {
    if (r === null || typeof r !== "object" || Object.getPrototypeOf(r) !== Object.prototype) return false;
    const fields = r as Record<string, unknown>;
    // Enumerable keys, the prototype's included: any there makes the count differ (then cloned).
    let own = 0;
    for (const _ in fields) own += 1;
    if (own !== keys.length) return false;
    for (let k = 0; k < keys.length; k++) {
      const v = fields[keys[k] as string];
      if (kinds.charCodeAt(k) === 98 /* b */) {
        if (!isU128(v)) return false;
        this.putU128(v);
      } else {
        if (typeof v !== "number") return false;
        this.numbers[this.n++] = v;
      }
    }
    return true;
  }

  /** The index of the record's shape among the message's (added when new), or null: not a flat record. */
  private shapeOf(record: unknown): number | null {
    if (record === null || typeof record !== "object" || Object.getPrototypeOf(record) !== Object.prototype) return null;
    const fields = record as Record<string, unknown>;
    // A message holds a handful of shapes (a batch: thousands of records of 2 or 3): try them first.
    for (let i = this.shapes.length - 1; i >= 0; i--) if (isOfShape(fields, this.shapes[i] as Shape)) return i;
    const keys = Object.keys(fields);
    let kinds = "";
    for (const key of keys) {
      const v = fields[key];
      if (typeof v === "bigint") kinds += "b";
      else if (typeof v === "number") kinds += "n";
      else return null;
    }
    this.shapes.push({ keys, kinds, bigints: kinds.split("b").length - 1 });
    return this.shapes.length - 1;
  }

  private putU128(v: bigint): void {
    // A BigUint64Array stores a BigInt modulo 2^64: the low word without a shift.
    this.words[this.w] = v;
    this.words[this.w + 1] = v > U64_MAX ? v >> 64n : 0n;
    this.w += 2;
  }

  private reserve(words: number, numbers: number): void {
    if (this.w + words > this.words.length) {
      const grown = new BigUint64Array(Math.max(2 * this.words.length, this.w + words));
      grown.set(this.words.subarray(0, this.w));
      this.words = grown;
    }
    if (this.n + numbers > this.numbers.length) {
      const grown = new Float64Array(Math.max(2 * this.numbers.length, this.n + numbers));
      grown.set(this.numbers.subarray(0, this.n));
      this.numbers = grown;
    }
  }
}

/** Reads a packed value back: equal to the value packed (same keys, same order, same values). */
export function unpack(ref: PackedRef, arrays: PackedArrays): unknown {
  const { words } = arrays;
  // The high word of a u128 read as two u32 halves first: most are 0, and reading a word as a
  // BigInt allocates one.
  const halves = new Uint32Array(words.buffer, words.byteOffset, words.length * 2);
  const u128At = (j: number): bigint => {
    const low = words[j] as bigint;
    return halves[2 * j + 2] === 0 && halves[2 * j + 3] === 0 ? low : ((words[j + 1] as bigint) << 64n) | low;
  };
  if (ref.form === "ids") {
    const out: bigint[] = new Array(ref.count);
    for (let i = 0; i < ref.count; i++) out[i] = u128At(ref.word + 2 * i);
    return out;
  }
  const shape = arrays.shapes[ref.shape];
  assert(shape !== undefined, "a packed record names a shape of its message");
  const { keys, kinds } = shape;
  const { numbers } = arrays;
  let j = ref.word;
  let n = ref.number;
  const out: Array<Record<string, unknown>> = new Array(ref.count);
  for (let i = 0; i < ref.count; i++) {
    const r: Record<string, unknown> = {};
    for (let k = 0; k < keys.length; k++) {
      if (kinds.charCodeAt(k) === 98 /* b */) {
        r[keys[k] as string] = u128At(j);
        j += 2;
      } else {
        r[keys[k] as string] = numbers[n++];
      }
    }
    out[i] = r;
  }
  return ref.form === "record" ? out[0] : out;
}
