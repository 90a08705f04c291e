// Each account's transfers as a backward chain through the transfers table, instead of an index.
//
// Why: an index on (account, timestamp) puts each new entry in its account's own part of the
// B-tree, so a batch touching 1,500 accounts dirties ~1,500 index pages per index per commit
// (measured: 1,500 pages per commit instead of 160). A chain costs no page of its own: the links
// live in the new transfer row (appended) and the chain head in the account row (written anyway).
//
// Links: the n-th transfer of an account (seq n, from 1) stores, for that account's side (debit
// or credit), `prev` = the timestamp of transfer n-1 and `jump` = the timestamp of an earlier
// transfer chosen by Myers' skew-binary rule ("An applicative random-access stack", 1983): with
// p the previous transfer, jump = jump(jump(p)) when p's two jumps span equal distances, else p.
// Walking `jump` when it does not overshoot and `prev` otherwise reaches any earlier transfer in
// O(log n) rows. The account keeps its spine: the newest transfer, its jump, that one's jump, …
// (O(log n) entries), which is all a new transfer needs to pick its jump.
import os from "node:os";
import { assert } from "../lib/assert.ts";

assert(os.endianness() === "LE", "spines are stored little-endian through typed arrays");

export interface SpineEntry {
  seq: number;
  timestamp: bigint;
}

export interface Chain {
  /** Transfers on this account so far (a number: 2^53 transfers on one account is out of reach). */
  count: number;
  /** The newest transfer, then its jump target, then that one's, … (empty when count is 0). */
  spine: SpineEntry[];
  /** The spine's timestamps as stored: int64 little-endian each, newest first. */
  bytes: Buffer;
}

export const emptyChain: Chain = { count: 0, spine: [], bytes: Buffer.alloc(0) };

const scratch = new BigInt64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);

/** `timestamp` (8 bytes, little-endian) followed by `rest`. */
function prepend(timestamp: bigint, rest: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(8 + rest.length);
  scratch[0] = timestamp;
  bytes.set(scratchBytes, 0);
  bytes.set(rest, 8);
  return bytes;
}

/** One link of a chain as stored in a transfer row for one side; 0 timestamps mean "none". */
export interface Link {
  timestamp: bigint;
  seq: number;
  prev: bigint;
  jump: bigint;
}

/** Seq 0 stands for "before the first transfer": the root every jump may end at. */
const root: SpineEntry = { seq: 0, timestamp: 0n };

/** Appends a transfer at `timestamp`; returns the link to store and the account's next chain. */
export function append(chain: Chain, timestamp: bigint): { link: Link; next: Chain } {
  const p = chain.spine[0] ?? root;
  const j1 = chain.spine[1] ?? root;
  const j2 = chain.spine[2] ?? root;
  assert(p.seq === chain.count, "a chain's spine starts at its newest transfer");
  const seq = chain.count + 1;
  const entry: SpineEntry = { seq, timestamp };
  if (p.seq - j1.seq === j1.seq - j2.seq) {
    const next = {
      count: seq,
      spine: [entry, ...chain.spine.slice(2)],
      bytes: prepend(timestamp, chain.bytes.subarray(16)),
    };
    return { link: { timestamp, seq, prev: p.timestamp, jump: j2.timestamp }, next };
  }
  const next = {
    count: seq,
    spine: [entry, ...chain.spine],
    bytes: prepend(timestamp, chain.bytes),
  };
  return { link: { timestamp, seq, prev: p.timestamp, jump: p.timestamp }, next };
}

/**
 * The spine's seqs follow from the count alone: they are the running sums of count's greedy
 * skew-binary decomposition (largest term 2^k - 1 first), newest first; 5 = 3 + 1 + 1 → 5, 4, 3.
 * So only the timestamps are stored (8 bytes each, at most ~2·log2(count) of them).
 */
export function spineSeqs(count: number): number[] {
  const sums: number[] = [];
  let sum = 0;
  while (sum < count) {
    let term = 1;
    while (2 * term + 1 <= count - sum) term = 2 * term + 1;
    sum += term;
    sums.push(sum);
  }
  return sums.reverse();
}

export function chainToSql(chain: Chain): Buffer {
  return chain.bytes;
}

export function chainFromSql(count: unknown, spine: unknown): Chain {
  assert(
    typeof count === "bigint" && Buffer.isBuffer(spine),
    "a stored chain is a count and a spine",
  );
  const seqs = spineSeqs(Number(count));
  assert(
    spine.length === 8 * seqs.length,
    "a stored spine has one timestamp per skew-binary term of the count",
  );
  return {
    count: Number(count),
    spine: seqs.map((seq, i) => ({ seq, timestamp: spine.readBigInt64LE(i * 8) })),
    bytes: spine,
  };
}

/** Reads an account's link in the transfer at `timestamp`. */
export type LinkAt = (timestamp: bigint) => Link;

/**
 * The newest link at or before `from` for which `after` is false (null if none), given that
 * `after` is true for every link newer than some point and false before it.
 */
function newestNotAfter(from: Link, after: (link: Link) => boolean, linkAt: LinkAt): Link | null {
  let link = from;
  if (!after(link)) return link;
  for (;;) {
    if (link.jump !== 0n) {
      const jumped = linkAt(link.jump);
      if (after(jumped)) {
        link = jumped;
        continue;
      }
    }
    if (link.prev === 0n) return null;
    const previous = linkAt(link.prev);
    if (!after(previous)) return previous;
    link = previous;
  }
}

/** The newest link whose timestamp is at most `max` (null if none). */
export function lastAtOrBefore(chain: Chain, max: bigint, linkAt: LinkAt): Link | null {
  const newest = chain.spine[0];
  if (newest === undefined) return null;
  return newestNotAfter(linkAt(newest.timestamp), (link) => link.timestamp > max, linkAt);
}

/** The link with sequence number `seq` (1 ≤ seq ≤ from.seq), starting from `from`. */
export function atSeq(from: Link, seq: number, linkAt: LinkAt): Link {
  assert(seq >= 1 && seq <= from.seq, "a chain seek stays inside the chain");
  const found = newestNotAfter(from, (link) => link.seq > seq, linkAt);
  assert(found !== null && found.seq === seq, "every seq of a chain is reachable");
  return found;
}
