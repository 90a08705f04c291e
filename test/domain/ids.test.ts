// Proves the identifier rules: an operationId's text and its 128-bit ledger id convert both ways
// (any letter case in, lower case out), the two ids the ledger forbids (0 and 2^128 − 1) are
// refused, and every derived id (fee leg, burned marker, hashId purposes) is deterministic,
// distinct per purpose and never a forbidden id. Derived-id properties run over a seeded sample.
import { describe, expect, it } from "vitest";
import { createHash, createHmac } from "node:crypto";
import {
  formatOperationId,
  hashId,
  IdSpace,
  parseOperationId,
  U128_MAX,
} from "../../src/domain/ids.ts";
import { chart, randomInt, seeded } from "./fixture.ts";

function randomId(next: () => number): bigint {
  let id = 0n;
  for (let i = 0; i < 4; i += 1) id = (id << 32n) | BigInt(randomInt(next, 2 ** 32));
  return id;
}

describe("ids – operation ids", () => {
  it("ids – parse and format round-trip over a seeded sample", () => {
    const next = seeded(7);
    for (let i = 0; i < 1000; i += 1) {
      const id = randomId(next);
      if (id === 0n || id === U128_MAX) continue;
      const text = formatOperationId(id);
      expect(text).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(parseOperationId(text)).toBe(id);
      expect(parseOperationId(text.toUpperCase())).toBe(id);
    }
  });

  it("ids – format pads small ids and prints lower case", () => {
    expect(formatOperationId(1n)).toBe("00000000-0000-0000-0000-000000000001");
    expect(formatOperationId(U128_MAX - 1n)).toBe("ffffffff-ffff-ffff-ffff-fffffffffffe");
    expect(formatOperationId(0xabcdefn << 100n)).toBe("0abcdef0-0000-0000-0000-000000000000");
  });

  it("ids – parse reads the UUID's 128 bits, big-endian", () => {
    expect(parseOperationId("00000000-0000-0000-0000-000000000001")).toBe(1n);
    expect(parseOperationId("10000000-0000-0000-0000-000000000000")).toBe(1n << 124n);
    expect(parseOperationId("0190A6B2-3C4D-7E8F-9A0B-1C2D3E4F5A6B")).toBe(
      0x0190a6b23c4d7e8f9a0b1c2d3e4f5a6bn,
    );
  });

  it("ids – parse refuses the nil id and the all-ones id", () => {
    expect(parseOperationId("00000000-0000-0000-0000-000000000000")).toBeNull();
    expect(parseOperationId("ffffffff-ffff-ffff-ffff-ffffffffffff")).toBeNull();
    expect(parseOperationId("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")).toBeNull();
  });

  it.each([
    ["undefined", undefined],
    ["null", null],
    ["a number", 1],
    ["a bigint", 1n],
    ["an object", {}],
    ["the empty string", ""],
    ["32 hex digits without dashes", "0190a6b23c4d7e8f9a0b1c2d3e4f5a6b"],
    ["31 hex digits", "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6"],
    ["33 hex digits", "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6bc"],
    ["underscores", "0190a6b2_3c4d_7e8f_9a0b_1c2d3e4f5a6b"],
    ["a non-hex digit", "z190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"],
  ])("ids – parse refuses %s", (_what, value) => {
    expect(parseOperationId(value)).toBeNull();
  });

  it("ids – format refuses 0, 2^128 − 1, negatives and ids beyond 128 bits (assertion)", () => {
    expect(() => formatOperationId(0n)).toThrow(/out of range/);
    expect(() => formatOperationId(U128_MAX)).toThrow(/out of range/);
    expect(() => formatOperationId(-1n)).toThrow(/out of range/);
    expect(() => formatOperationId(U128_MAX + 1n)).toThrow(/out of range/);
  });
});

describe("ids – derived ids", () => {
  const op = 0x0190a6b23c4d7e8f9a0b1c2d3e4f5a6bn;

  it("ids – hashId is deterministic", () => {
    expect(hashId("user", 978, "alice")).toBe(hashId("user", 978, "alice"));
  });

  it("ids – hashId and an id space's hash are SHA-256 / HMAC-SHA256 over each part as type:text and a NUL, in order", () => {
    // The bytes hashed are fixed: every id and fingerprint already in a ledger depends on them.
    const parts = ["user", 978, "alice \u00e9\u{1F600}", 5n] as const;
    const reference = createHash("sha256");
    for (const part of parts) reference.update(`${typeof part}:${String(part)}\u0000`);
    expect(hashId(...parts)).toBe(BigInt("0x" + reference.digest("hex").slice(0, 32)));
    const key = 0x1234n;
    const mac = createHmac("sha256", Buffer.from(key.toString(16).padStart(32, "0"), "hex"));
    for (const part of parts) mac.update(`${typeof part}:${String(part)}\u0000`);
    expect(new IdSpace(key, 1n).hash(...parts)).toBe(BigInt("0x" + mac.digest("hex").slice(0, 32)));
  });

  it("ids – hashId tells parts' types and boundaries apart", () => {
    const prints = [
      hashId("x", 1),
      hashId("x", "1"),
      hashId("x", 1n),
      hashId("ab", "c"),
      hashId("a", "bc"),
      hashId("abc"),
      hashId("x", 1, 2),
      hashId("x", 12),
    ];
    expect(new Set(prints).size).toBe(prints.length);
  });

  it("ids – fee leg and burned marker ids are deterministic and distinct from each other and the operation", () => {
    expect(chart.space.feeLegId(op)).toBe(chart.space.feeLegId(op));
    expect(chart.space.burnedMarkerId(op)).toBe(chart.space.burnedMarkerId(op));
    expect(new Set([op, chart.space.feeLegId(op), chart.space.burnedMarkerId(op)]).size).toBe(3);
  });

  it("ids – derived ids are never 0 or 2^128 − 1 and fit in 128 bits (seeded sample)", () => {
    const next = seeded(11);
    const seen = new Set<bigint>();
    for (let i = 0; i < 2000; i += 1) {
      const id = randomId(next) | 1n;
      for (const derived of [
        chart.space.feeLegId(id),
        chart.space.burnedMarkerId(id),
        hashId("user", i, String(id)),
      ]) {
        expect(derived > 0n && derived < U128_MAX).toBe(true);
        seen.add(derived);
      }
    }
    expect(seen.size).toBe(6000);
  });

  it("ids – derived ids of different operations differ", () => {
    expect(chart.space.feeLegId(op)).not.toBe(chart.space.feeLegId(op + 1n));
    expect(chart.space.burnedMarkerId(op)).not.toBe(chart.space.burnedMarkerId(op + 1n));
    expect(chart.space.feeLegId(op)).not.toBe(chart.space.burnedMarkerId(op + 1n));
  });

  it("ids – derived ids format as UUIDs (usable in subjects and logs)", () => {
    expect(formatOperationId(chart.space.feeLegId(op))).toMatch(
      /^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/,
    );
  });

  it("ids – an operation is looked up under its own id, its burned-marker id and its fee-leg id, in that order", () => {
    expect(chart.space.operationLookupIds(op)).toEqual([
      op,
      chart.space.burnedMarkerId(op),
      chart.space.feeLegId(op),
    ]);
  });
});

describe("ids – a deployment's id space", () => {
  const op = 0x0190a6b23c4d7e8f9a0b1c2d3e4f5a6bn;

  it("ids – derived ids depend on the deployment key: a publisher without it cannot compute one", () => {
    // The derivation before id spaces: SHA-256 over a public string, which a publisher could
    // compute and send as its own operationId (issue 10, item 1).
    const unkeyed = BigInt(
      "0x" + createHash("sha256").update(`operation-derived:${op}`).digest("hex").slice(0, 32),
    );
    expect(chart.space.feeLegId(op)).not.toBe(unkeyed);
    const other = new IdSpace(0x5eed_0000_0000_0000_0000_0000_0000_0002n, 0x7a6n);
    expect(other.feeLegId(op)).not.toBe(chart.space.feeLegId(op));
    expect(other.burnedMarkerId(op)).not.toBe(chart.space.burnedMarkerId(op));
    expect(other.expiryMarkerId(op)).not.toBe(chart.space.expiryMarkerId(op));
    expect(other.hash("user", 978, "alice")).not.toBe(chart.space.hash("user", 978, "alice"));
  });

  it("ids – the same key and purpose give the same id in every process (a fresh IdSpace, no shared cache)", () => {
    const again = new IdSpace(0x5eed_0000_0000_0000_0000_0000_0000_0001n, 0x7a6n);
    expect(again.feeLegId(op)).toBe(chart.space.feeLegId(op));
    expect(again.operationLookupIds(op)).toEqual(chart.space.operationLookupIds(op));
    expect(again.expiryProbeId(op)).toBe(chart.space.expiryProbeId(op));
  });

  it("ids – an id space refuses a zero key or a tag outside 1..2^64 − 1 (assertion)", () => {
    expect(() => new IdSpace(0n, 1n)).toThrow(/key/);
    expect(() => new IdSpace(1n, 0n)).toThrow(/tag/);
    expect(() => new IdSpace(1n, 1n << 64n)).toThrow(/tag/);
  });
});
