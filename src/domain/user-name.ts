// The ledger stores no strings, so a user account carries its own userId in its user_data fields
// (TigerBeetle has 224 free bits per account). That keeps the ledger self-describing: a capture
// names the held user, and finance can read who owns an account without any other database.
//
// Encoding: the userId's characters are digits of a base-67 number (1..66 for the 66 allowed
// characters, 0 for "no character"). The first 36 characters (67^36 < 2^219) go into the user
// account; the rest (up to 28 more) into a name account whose id derives from the user account's.
// Bit 223 (the top bit of user_data_32) marks that a name account holds the rest.
import { assert } from "../lib/assert.ts";

export const USER_ID_ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:";
const BASE = 67n;
const CHARS_PER_ACCOUNT = 36;
const CONTINUED_BIT = 1n << 223n;

export type UserData = { user_data_128: bigint; user_data_64: bigint; user_data_32: number };

function packChunk(chunk: string, continued: boolean): UserData {
  let value = 0n;
  for (let i = chunk.length - 1; i >= 0; i -= 1) {
    const digit = USER_ID_ALPHABET.indexOf(chunk[i] ?? "");
    assert(digit >= 0, "userId character outside the alphabet");
    value = value * BASE + BigInt(digit + 1);
  }
  if (continued) value |= CONTINUED_BIT;
  return {
    user_data_128: value & ((1n << 128n) - 1n),
    user_data_64: (value >> 128n) & ((1n << 64n) - 1n),
    user_data_32: Number((value >> 192n) & 0xffffffffn),
  };
}

function unpackChunk(data: UserData): { chunk: string; continued: boolean } {
  let value =
    data.user_data_128 | (data.user_data_64 << 128n) | (BigInt(data.user_data_32) << 192n);
  const continued = (value & CONTINUED_BIT) !== 0n;
  value &= CONTINUED_BIT - 1n;
  let chunk = "";
  while (value > 0n) {
    const digit = Number(value % BASE);
    assert(digit > 0, "user name encoding has an empty digit");
    chunk += USER_ID_ALPHABET[digit - 1];
    value /= BASE;
  }
  return { chunk, continued };
}

/** The user account's part and, for userIds over 36 characters, the name account's part. */
export function encodeUserId(userId: string): { head: UserData; tail: UserData | null } {
  assert(userId.length >= 1 && userId.length <= 64, "userId length");
  const head = userId.slice(0, CHARS_PER_ACCOUNT);
  const rest = userId.slice(CHARS_PER_ACCOUNT);
  return {
    head: packChunk(head, rest.length > 0),
    tail: rest.length > 0 ? packChunk(rest, false) : null,
  };
}

/** Reads the head; `continued` says whether the name account must be read for the rest. */
export function decodeUserIdHead(data: UserData): { head: string; continued: boolean } {
  const { chunk, continued } = unpackChunk(data);
  return { head: chunk, continued };
}

export function decodeUserIdTail(data: UserData): string {
  return unpackChunk(data).chunk;
}
