// What crosses to and from the engine's thread packed (src/ledger/record-pack.ts) arrives equal to
// what was sent: same keys in the same order, same BigInts (0, 2^64 − 1, 2^64, 2^128 − 1), same
// numbers (fractions, negatives, −0, NaN); and anything the packing cannot carry exactly is left to
// the structured clone (pack answers null) without disturbing what the message already holds.
// Packs through a real postMessage with the buffers transferred, as the thread does.
import { MessageChannel } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { RecordPacker, unpack, type PackedArrays, type PackedRef } from "../../src/ledger/record-pack.ts";
import { packMessage, transferList, unpackMessage, type Item, type PackedMessage } from "../../src/ledger/thread.ts";

const U128_MAX = (1n << 128n) - 1n;

/** Sends the packed arrays through a real port, buffers transferred, and unpacks each ref. */
async function roundTrip(refs: ReadonlyArray<PackedRef>, arrays: PackedArrays): Promise<unknown[]> {
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<PackedArrays>((resolve) => port2.once("message", resolve));
  port1.postMessage(arrays, [arrays.words.buffer as ArrayBuffer, arrays.numbers.buffer as ArrayBuffer]);
  const arrived = await received;
  port1.close();
  expect(arrays.words.buffer.byteLength).toBe(0); // transferred, not copied
  return refs.map((r) => unpack(r, arrived));
}

describe("ledger thread – packed records", () => {
  it("an array of u128 ids, records, and a single record come back equal, keys in order", async () => {
    const ids = [1n, (1n << 64n) - 1n, 1n << 64n, U128_MAX, 0n];
    const records = [
      { id: U128_MAX, amount: 5n, ledger: 7, code: 65535, flags: 0, timestamp: 1n << 63n },
      { id: 2n, amount: 0n, ledger: 1.5, code: -1, flags: -0, timestamp: 0n },
      { id: 3n, amount: 1n << 100n, ledger: Number.NaN, code: Number.MAX_SAFE_INTEGER, flags: 1e300, timestamp: 9n },
    ];
    const filter = { account_id: 42n, timestamp_min: 0n, limit: 3, flags: 3 };
    const packer = new RecordPacker();
    const refs = [packer.pack(ids), packer.pack(records), packer.pack(filter)].map((r) => {
      expect(r).not.toBeNull();
      return r as PackedRef;
    });
    const [a, b, c] = await roundTrip(refs, packer.finish());
    expect(a).toEqual(ids);
    expect(b).toEqual(records);
    expect((b as Array<Record<string, unknown>>).map((r) => Object.keys(r))).toEqual(records.map((r) => Object.keys(r)));
    expect(Object.is((b as Array<{ flags: number }>)[1]?.flags, -0)).toBe(true);
    expect(c).toEqual(filter);
    expect(Object.keys(c as object)).toEqual(Object.keys(filter));
  });

  it("grows past its first buffers (a batch of 8,189 transfers)", async () => {
    const transfers = Array.from({ length: 8_189 }, (_, i) => ({ id: BigInt(i + 1) << 70n, amount: BigInt(i), ledger: i, timestamp: 0n }));
    const packer = new RecordPacker();
    const ref = packer.pack(transfers);
    expect(ref).not.toBeNull();
    const [back] = await roundTrip([ref as PackedRef], packer.finish());
    expect(back).toEqual(transfers);
  });

  it("what it cannot carry exactly is left to the structured clone, and what it packed before stays intact", async () => {
    const packer = new RecordPacker();
    const before = packer.pack([7n, 8n]) as PackedRef;
    const refused: unknown[] = [
      [],
      [1n, -1n],
      [1n, 1n << 128n],
      [1n, "2"],
      [{ a: 1n, b: "text" }],
      [{ a: 1n }, { a: 2n, extra: 3 }],
      [{ a: 1n, b: 2 }, { a: 1n }],
      [{ a: 1n, b: 2 }, { a: 1n, b: 2n }],
      [{ a: 1n }, null],
      [{ a: { nested: 1n } }],
      new Map([[1n, 2n]]),
      "text",
      5,
      null,
      undefined,
    ];
    for (const value of refused) expect(packer.pack(value), String(value)).toBeNull();
    const after = packer.pack([{ a: 9n, b: 1 }]) as PackedRef;
    const [x, y] = await roundTrip([before, after], packer.finish());
    expect(x).toEqual([7n, 8n]);
    expect(y).toEqual([{ a: 9n, b: 1 }]);
  });

  it("a message keeps its items in order, packed and plain ones mixed, with their ids and request names", async () => {
    type Plain = { id: number; note: string };
    const items: Array<Item<Plain>> = [
      { id: 7, name: "lookupTransfers", value: [1n, 2n], packable: true, plain: () => ({ id: 7, note: "packed" }) },
      { id: 8, name: "createTransfers", value: "an error", packable: false, plain: () => ({ id: 8, note: "not packable" }) },
      { id: 9, name: "getAccountBalances", value: { account_id: 3n, limit: 2 }, packable: true, plain: () => ({ id: 9, note: "packed" }) },
      { id: 10, name: "queryAccounts", value: [{ a: 1n }, { b: 2n }], packable: true, plain: () => ({ id: 10, note: "refused by the packer" }) },
    ];
    const message = packMessage(items);
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<PackedMessage<Plain>>((resolve) => port2.once("message", resolve));
    port1.postMessage(message, transferList(message));
    const arrived = await received;
    port1.close();
    expect(unpackMessage(arrived)).toEqual([
      { id: 7, name: "lookupTransfers", value: [1n, 2n] },
      { plain: { id: 8, note: "not packable" } },
      { id: 9, name: "getAccountBalances", value: { account_id: 3n, limit: 2 } },
      { plain: { id: 10, note: "refused by the packer" } },
    ]);
  });
});
