// Identifiers: operation ids are UUIDs whose 128 bits are the ledger transfer id; every other id
// (extra legs, markers, accounts) is derived deterministically by a keyed hash in the deployment's
// id space, so any worker of the deployment computes the same id for the same purpose at any time,
// and no publisher can.
import { createHash, createHmac } from "node:crypto";
import { commandFieldRules } from "@billing-ledger/client/schemas";
import { u128Max as U128_MAX } from "../config/limits.ts";
import { assert } from "../lib/assert.ts";
import { BoundedMemo } from "../lib/bounded-memo.ts";

/** The reserved all-ones id; defined once, with the ledger's limits. */
export { U128_MAX };

const UUID_PATTERN = commandFieldRules.uuidPattern;

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

/** What a hash covers: each part as "type:text" and a NUL, so parts' types and boundaries differ. */
function hashInput(parts: ReadonlyArray<string | bigint | number>): string {
  let text = "";
  for (const part of parts) text += `${typeof part}:${String(part)}\u0000`;
  return text;
}

/** 128 bits of SHA-256 over the parts, never 0 or 2^128 − 1. */
export function hashId(...parts: ReadonlyArray<string | bigint | number>): bigint {
  // One update of the parts' texts joined: the same bytes as an update per part, fewer calls.
  const id = BigInt(
    "0x" + createHash("sha256").update(hashInput(parts)).digest("hex").slice(0, 32),
  );
  assert(id !== 0n && id !== U128_MAX, "hashId hit a reserved id");
  return id;
}

/**
 * User account ids (by ledger and userId) an id space remembers at most: hashing is a visible share
 * of a batch's CPU time, and the accounts of active users come back batch after batch. About 100
 * bytes an entry, so under 7 MB; past the bound the memo is cleared (src/lib/bounded-memo.ts). The
 * memos live in the IdSpace the composition root makes, not in a module, so two spaces (tests, two
 * deployments) never share one.
 */
export const USER_ACCOUNT_ID_MEMO_ENTRIES_MAX = 65_536;

/**
 * Derived ids (fee leg, burned marker) remembered by operation id. Unlike accounts, an operation id
 * comes back only while its command is in hand (its passes, its event) or when a capture or release
 * names its hold, so the working set is the batches in hand: at most (pipelineDepth + 1) × 1,637
 * operations at the largest batch the config accepts, and ~3,000 at the defaults. A bound of 65,536
 * kept ~12 MB of entries for operations long settled (209,000 BigInts in a heap snapshot of a
 * busy process, a third of its live heap), which V8 then multiplied into heap it did not return
 * (bench/results/memory-round2.md); a miss costs one HMAC again.
 */
export const DERIVED_ID_MEMO_ENTRIES_MAX = 8_192;

/** 2^64 − 1: a deployment tag is a non-zero u64 (a zero filter field means "any" in the ledger). */
const U64_MAX = (1n << 64n) - 1n;

/**
 * The ids of one deployment. Every id the service derives (extra legs, markers, probes, accounts)
 * is an HMAC under the deployment's secret key, which lives only in the ledger (src/deployment.ts).
 * A publisher chooses operation ids, and any UUID is a valid one (the contract), so an unkeyed
 * derivation let a publisher send, as its own operationId, the id the service would later derive
 * for someone else's fee leg; under a key it cannot compute one. Two deployments sharing one
 * TigerBeetle cluster have different keys, so their accounts and derived transfers never meet,
 * and `tag` (in every transfer's user_data_64) says which deployment wrote a transfer.
 */
/**
 * System account ids remembered per space: callers pass configured ledgers, but the audit passes
 * whatever ledger a transfer names, so the memo is bounded anyway.
 */
export const SYSTEM_ACCOUNT_IDS_MAX = 1_024;

export class IdSpace {
  private readonly key: Buffer;
  private readonly derivedIds: BoundedMemo<bigint, { fee: bigint; burned: bigint }>;
  /** User account ids by `${ledger}/${userId}` (src/domain/accounts.ts userAccountId). */
  readonly userAccountIds: BoundedMemo<string, bigint>;
  /** Ids of the per-ledger system accounts (settlement, fee, markers) by `${purpose}/${ledger}` (src/domain/accounts.ts). */
  readonly systemAccountIds = new BoundedMemo<string, bigint>(SYSTEM_ACCOUNT_IDS_MAX);

  constructor(
    key: bigint,
    readonly tag: bigint,
  ) {
    assert(key > 0n && key <= U128_MAX, "a deployment key is a non-zero u128");
    assert(tag > 0n && tag <= U64_MAX, "a deployment tag is a non-zero u64");
    this.key = Buffer.from(key.toString(16).padStart(32, "0"), "hex");
    this.derivedIds = new BoundedMemo(DERIVED_ID_MEMO_ENTRIES_MAX);
    this.userAccountIds = new BoundedMemo(USER_ACCOUNT_ID_MEMO_ENTRIES_MAX);
  }

  /** 128 bits of HMAC-SHA256 under the deployment key, never 0 or 2^128 − 1. */
  hash(...parts: ReadonlyArray<string | bigint | number>): bigint {
    const id = BigInt(
      "0x" + createHmac("sha256", this.key).update(hashInput(parts)).digest("hex").slice(0, 32),
    );
    assert(id !== 0n && id !== U128_MAX, "hash hit a reserved id");
    return id;
  }

  /** Both ids derived from an operation id, from one HMAC: the first and the last 128 bits. */
  private derived(operationId: bigint): { fee: bigint; burned: bigint } {
    return this.derivedIds.get(operationId, () => {
      const hex = createHmac("sha256", this.key)
        .update(`operation-derived:${operationId}`)
        .digest("hex");
      const ids = { fee: BigInt("0x" + hex.slice(0, 32)), burned: BigInt("0x" + hex.slice(32)) };
      assert(
        ids.fee !== 0n && ids.fee !== U128_MAX && ids.burned !== 0n && ids.burned !== U128_MAX,
        "derived id hit a reserved id",
      );
      return ids;
    });
  }

  /** The fee leg of a transfer with a fee. */
  feeLegId(operationId: bigint): bigint {
    return this.derived(operationId).fee;
  }

  /**
   * Where a rejection is recorded when the operation id itself was burned by a transient ledger
   * failure (TigerBeetle refuses any later transfer under a burned id with id_already_failed).
   */
  burnedMarkerId(operationId: bigint): bigint {
    return this.derived(operationId).burned;
  }

  /** Ids of the lookups that decide an operation: its own transfer, its burned marker, its fee leg. */
  operationLookupIds(operationId: bigint): [bigint, bigint, bigint] {
    const ids = this.derived(operationId);
    return [operationId, ids.burned, ids.fee];
  }

  /** The record that a hold expired: written once, its timestamp is the expired event's. */
  expiryMarkerId(holdId: bigint): bigint {
    return this.hash("expiry-marker", holdId);
  }

  /** A void probe of a hold past its deadline: the ledger answers expired, posted or voided. */
  expiryProbeId(holdId: bigint): bigint {
    return this.hash("expiry-probe", holdId);
  }
}
