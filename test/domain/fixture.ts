// Shared fixtures of the domain tests: one chart of accounts, one set of decode limits, payload
// helpers that decode and narrow, and a seeded pseudo-random generator so property-style loops
// are the same on every run. Nothing here performs I/O; domain tests need no mocks.
import { rng } from "../support/workload.ts";
import type { Transfer } from "tigerbeetle-node";
import type { Chart } from "../../src/domain/accounts.ts";
import { testSpace } from "../support/space.ts";
import {
  decodeCommand,
  type CommandType,
  type Decoded,
  type DecodeLimits,
} from "../../src/domain/commands.ts";
import type { Operation } from "../../src/domain/resolve.ts";

export const EUR = { code: "EUR", ledger: 978, scale: 2 } as const;
export const USD = { code: "USD", ledger: 840, scale: 2 } as const;

export const space = testSpace;

export const chart: Chart = {
  currencies: [EUR, USD],
  defaultCurrency: "EUR",
  markerLedger: 1_000_000,
  space,
};

/** 30 days, the service's default upper bound of a hold, and a 4 KiB payload bound. */
export const limits: DecodeLimits = { holdTimeoutSecondsMax: 2_592_000, payloadBytesMax: 4096 };

/** 2^63 − 1, the contract's largest amount, as text. */
export const MONEY_MAX_TEXT = "9223372036854775807";
/** 2^63, one above the contract's largest amount. */
export const MONEY_OVER_TEXT = "9223372036854775808";

const encoder = new TextEncoder();

/** A payload's bytes: a string is taken as the JSON text itself, anything else is serialised. */
export function bytes(payload: unknown): Uint8Array {
  return encoder.encode(typeof payload === "string" ? payload : JSON.stringify(payload));
}

/** Decodes a payload sent as `type`: a command type ("credit"), or a whole subject when it has a dot. */
export function decode(type: string, payload: unknown): Decoded {
  const subject = type.includes(".") ? type : `billing.cmd.${type}`;
  return decodeCommand(subject, bytes(payload), chart, limits);
}

export type CommandDecoded = Extract<Decoded, { kind: "command" }>;
export type RejectedDecoded = Extract<Decoded, { kind: "rejected" }>;

export function decodeCommandOk(type: CommandType, payload: unknown): CommandDecoded {
  const d = decode(type, payload);
  if (d.kind !== "command")
    throw new Error(`expected a command, got ${JSON.stringify(d, bigintText)}`);
  return d;
}

export function decodeRejected(type: CommandType, payload: unknown): RejectedDecoded {
  const d = decode(type, payload);
  if (d.kind !== "rejected")
    throw new Error(`expected a rejection, got ${JSON.stringify(d, bigintText)}`);
  return d;
}

export function decodeMalformed(type: string, payload: unknown): string {
  const d = decode(type, payload);
  if (d.kind !== "malformed")
    throw new Error(`expected malformed, got ${JSON.stringify(d, bigintText)}`);
  return d.error;
}

export function bigintText(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** A deterministic, well-formed UUID (version 4 shape) for a small number: never nil, never all-f. */
export function uuid(n: number): string {
  const hex = (BigInt(n) + 0x1000n).toString(16).padStart(12, "0");
  return `0190a6b2-3c4d-4e8f-9a0b-${hex}`;
}

export function idOf(text: string): bigint {
  return BigInt("0x" + text.replaceAll("-", ""));
}

/** An operation of a resolve pass, from a decoded payload; never malformed. */
export function operation(type: CommandType, payload: unknown, publishedAtMs = 0): Operation {
  const decoded = decode(type, payload);
  if (decoded.kind === "malformed")
    throw new Error(`fixture payload is malformed: ${decoded.error}`);
  return { id: decoded.operationId, decoded, publishedAtMs };
}

/** A transfer as the ledger returns it on lookup: what was submitted, with its timestamp. */
export function stored(t: Transfer, timestamp: bigint): Transfer {
  return { ...t, timestamp };
}

/** The element at an index, failing the test (not the type checker) when it is missing. */
export function at<T>(items: ReadonlyArray<T>, index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no element at index ${index} of ${items.length}`);
  return item;
}

export function randomInt(next: () => number, maxExclusive: number): number {
  return Math.floor(next() * maxExclusive);
}

/** mulberry32, seeded: the shared generator of test/support/workload.ts. */
export const seeded = rng;
