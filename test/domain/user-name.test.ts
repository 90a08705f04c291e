// Proves that a userId packed into an account's user_data fields (base-67 digits, 36 characters
// per account) reads back exactly: for every length 1..64 and every character of the alphabet
// (a property-style loop over seeded random strings), that a continuation to a name account is
// used only above 36 characters, that the packed value fits the u128/u64/u32 fields, and that
// encoding is injective. Misuse (empty, too long, foreign characters) is an assertion.
import { describe, expect, it } from "vitest";
import {
  decodeUserIdHead,
  decodeUserIdTail,
  encodeUserId,
  USER_ID_ALPHABET,
  type UserData,
} from "../../src/domain/user-name.ts";
import { randomInt, seeded } from "./fixture.ts";

/** The contract's userId characters: A-Z a-z 0-9 _ - . : */
const CONTRACT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:";

function roundTrip(userId: string): string {
  const { head, tail } = encodeUserId(userId);
  const decoded = decodeUserIdHead(head);
  expect(decoded.continued).toBe(tail !== null);
  return tail === null ? decoded.head : decoded.head + decodeUserIdTail(tail);
}

function expectFits(data: UserData): void {
  expect(data.user_data_128 >= 0n && data.user_data_128 < 1n << 128n).toBe(true);
  expect(data.user_data_64 >= 0n && data.user_data_64 < 1n << 64n).toBe(true);
  expect(
    Number.isInteger(data.user_data_32) && data.user_data_32 >= 0 && data.user_data_32 < 2 ** 32,
  ).toBe(true);
}

function randomUserId(next: () => number, length: number): string {
  let s = "";
  for (let i = 0; i < length; i += 1)
    s += USER_ID_ALPHABET[randomInt(next, USER_ID_ALPHABET.length)];
  return s;
}

describe("user-name", () => {
  it("user-name – the alphabet is exactly the contract's 66 characters", () => {
    expect(USER_ID_ALPHABET.length).toBe(66);
    expect([...USER_ID_ALPHABET].sort()).toEqual([...CONTRACT_ALPHABET].sort());
    expect(new Set(USER_ID_ALPHABET).size).toBe(66);
  });

  it("user-name – seeded random userIds of every length 1..64 round-trip", () => {
    const next = seeded(0xc0ffee);
    for (let length = 1; length <= 64; length += 1) {
      for (let sample = 0; sample < 25; sample += 1) {
        const userId = randomUserId(next, length);
        expect(roundTrip(userId)).toBe(userId);
      }
    }
  });

  it("user-name – every alphabet character round-trips alone, first, last and repeated 64 times", () => {
    for (const ch of USER_ID_ALPHABET) {
      expect(roundTrip(ch)).toBe(ch);
      expect(roundTrip(`${ch}zz`)).toBe(`${ch}zz`);
      expect(roundTrip(`zz${ch}`)).toBe(`zz${ch}`);
      expect(roundTrip(ch.repeat(64))).toBe(ch.repeat(64));
    }
  });

  it("user-name – the whole alphabet round-trips (split over two 33-character ids and across the 36-character boundary)", () => {
    expect(roundTrip(USER_ID_ALPHABET.slice(0, 33))).toBe(USER_ID_ALPHABET.slice(0, 33));
    expect(roundTrip(USER_ID_ALPHABET.slice(33))).toBe(USER_ID_ALPHABET.slice(33));
    expect(roundTrip(USER_ID_ALPHABET.slice(0, 64))).toBe(USER_ID_ALPHABET.slice(0, 64));
    expect(roundTrip(USER_ID_ALPHABET.slice(2))).toBe(USER_ID_ALPHABET.slice(2));
  });

  it("user-name – the first character (digit 1) is never lost at either end", () => {
    for (const userId of [
      "A",
      "AA",
      "A".repeat(36),
      "A".repeat(37),
      "A".repeat(64),
      "zA",
      "Az",
      `${"z".repeat(36)}A`,
    ]) {
      expect(roundTrip(userId)).toBe(userId);
    }
  });

  it("user-name – up to 36 characters fit one account, with no continuation", () => {
    for (const length of [1, 35, 36]) {
      const { head, tail } = encodeUserId(":".repeat(length));
      expect(tail).toBeNull();
      expect(decodeUserIdHead(head)).toEqual({ head: ":".repeat(length), continued: false });
    }
  });

  it("user-name – 37 characters and more continue into a name account holding the rest", () => {
    const userId = `${"a".repeat(36)}${"b".repeat(28)}`;
    const { head, tail } = encodeUserId(userId);
    expect(tail).not.toBeNull();
    expect(decodeUserIdHead(head)).toEqual({ head: "a".repeat(36), continued: true });
    expect(decodeUserIdTail(tail as UserData)).toBe("b".repeat(28));
    const just = encodeUserId(`${"a".repeat(36)}b`);
    expect(decodeUserIdHead(just.head).continued).toBe(true);
    expect(decodeUserIdTail(just.tail as UserData)).toBe("b");
  });

  it("user-name – the packed value fits the u128, u64 and u32 fields, the largest userIds included", () => {
    for (const userId of [":".repeat(36), ":".repeat(64), "A", USER_ID_ALPHABET.slice(0, 64)]) {
      const { head, tail } = encodeUserId(userId);
      expectFits(head);
      if (tail) expectFits(tail);
    }
  });

  it("user-name – the continuation mark is the top bit of user_data_32, set only when continued", () => {
    expect(encodeUserId(":".repeat(36)).head.user_data_32 & 0x80000000).toBe(0);
    expect(encodeUserId(":".repeat(37)).head.user_data_32 >>> 31).toBe(1);
    expect((encodeUserId(":".repeat(64)).tail as UserData).user_data_32 >>> 31).toBe(0);
  });

  it("user-name – short userIds use only user_data_128", () => {
    const { head } = encodeUserId("alice");
    expect(head.user_data_64).toBe(0n);
    expect(head.user_data_32).toBe(0);
    expect(head.user_data_128).toBeGreaterThan(0n);
  });

  it("user-name – distinct userIds encode differently (seeded sample, prefixes and case)", () => {
    const next = seeded(99);
    const seen = new Map<string, string>();
    const key = (userId: string) => {
      const { head, tail } = encodeUserId(userId);
      return `${head.user_data_128}/${head.user_data_64}/${head.user_data_32}/${tail ? `${tail.user_data_128}/${tail.user_data_64}/${tail.user_data_32}` : "-"}`;
    };
    const ids = new Set<string>(["a", "aa", "A", "a".repeat(36), "a".repeat(37), "ab", "ba"]);
    for (let i = 0; i < 2000; i += 1) ids.add(randomUserId(next, 1 + randomInt(next, 64)));
    for (const userId of ids) {
      const k = key(userId);
      expect(seen.get(k)).toBeUndefined();
      seen.set(k, userId);
    }
  });

  it("user-name – encoding is deterministic", () => {
    expect(encodeUserId("user:42")).toEqual(encodeUserId("user:42"));
  });

  it.each([
    ["empty", ""],
    ["65 characters", "a".repeat(65)],
    ["a space", "a b"],
    ["a non-ASCII letter", "é"],
    ["a slash", "a/b"],
  ])("user-name – a userId with %s is refused (assertion)", (_what, userId) => {
    expect(() => encodeUserId(userId)).toThrow();
  });
});
