// Identifiers: operation ids are UUIDs whose 128 bits are the ledger transfer id; every other id
// (extra legs, markers, accounts) is derived deterministically by hashing, so any worker computes
// the same id for the same purpose at any time.
import { createHash } from "node:crypto";
import { assert } from "../lib/assert.ts";

export const U128_MAX = (1n << 128n) - 1n;

const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A UUID usable as a ledger id: well formed, and neither 0 nor 2^128 − 1 (both invalid ids). */
export function parseOperationId(text: unknown): bigint | null {
  if (typeof text !== "string" || !UUID_PATTERN.test(text)) return null;
  const id = BigInt("0x" + text.replaceAll("-", ""));
  if (id === 0n || id === U128_MAX) return null;
  return id;
}

/** The canonical text of an operation id: lower case, 8-4-4-4-12. */
export function formatOperationId(id: bigint): string {
  assert(id > 0n && id < U128_MAX, "operation id out of range");
  const hex = id.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** 128 bits of SHA-256 over the parts, never 0 or 2^128 − 1. */
export function hashId(...parts: ReadonlyArray<string | bigint | number>): bigint {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(`${typeof part}:${String(part)}\u0000`);
  const id = BigInt("0x" + hash.digest("hex").slice(0, 32));
  assert(id !== 0n && id !== U128_MAX, "hashId hit a reserved id");
  return id;
}

/** Derived ids a process remembers; hashing is a visible share of a batch's CPU time. */
const DERIVED_CACHE_MAX = 65_536;
const derivedCache = new Map<bigint, { fee: bigint; burned: bigint }>();

/** Both ids derived from an operation id, from one SHA-256: the first and the last 128 bits. */
function derived(operationId: bigint): { fee: bigint; burned: bigint } {
  let ids = derivedCache.get(operationId);
  if (ids) return ids;
  const hex = createHash("sha256").update(`operation-derived:${operationId}`).digest("hex");
  ids = { fee: BigInt("0x" + hex.slice(0, 32)), burned: BigInt("0x" + hex.slice(32)) };
  assert(ids.fee !== 0n && ids.fee !== U128_MAX && ids.burned !== 0n && ids.burned !== U128_MAX, "derived id hit a reserved id");
  if (derivedCache.size >= DERIVED_CACHE_MAX) derivedCache.clear();
  derivedCache.set(operationId, ids);
  return ids;
}

/** The fee leg of a transfer with a fee. */
export function feeLegId(operationId: bigint): bigint {
  return derived(operationId).fee;
}

/**
 * Where a rejection is recorded when the operation id itself was burned by a transient ledger
 * failure (TigerBeetle refuses any later transfer under a burned id with id_already_failed).
 */
export function burnedMarkerId(operationId: bigint): bigint {
  return derived(operationId).burned;
}

/** Ids of the lookups that decide an operation: its own transfer, its burned marker, its fee leg. */
export function operationLookupIds(operationId: bigint): [bigint, bigint, bigint] {
  return [operationId, burnedMarkerId(operationId), feeLegId(operationId)];
}

/** The record that a hold expired: written once, its timestamp is the expired event's. */
export function expiryMarkerId(holdId: bigint): bigint {
  return hashId("expiry-marker", holdId);
}

/** A void probe of a hold past its deadline: the ledger answers expired, posted or voided. */
export function expiryProbeId(holdId: bigint): bigint {
  return hashId("expiry-probe", holdId);
}
