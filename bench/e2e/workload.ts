// The offered load: N commands over K users in the mix (40 % credit, 30 % debit, 10 % hold,
// 10 % capture or release, 10 % transfer), generated lazily from a seed so that a 1,000,000-command
// run needs no prepared payloads, and the same seed gives the same commands.
//
// Operation ids carry the command's index (the last 12 hex digits) under a per-run tag, so the
// collector maps an event subject to its command without a lookup table, and a run on a ledger
// that already holds other operations (the preloaded one) never collides with them.
// Captures and releases name a hold published at least `holdGapMin` commands earlier, so that the
// hold is normally decided before its capture arrives (a capture ahead of its hold is naked with
// holdWaitNakMs and would show up as a latency outlier, not as an error).
import { rng as prng } from "../../test/support/workload.ts";

export { prng };

export const COMMAND_NAMES = ["credit", "debit", "hold", "capture", "release", "transfer"] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];
export const Kind = { credit: 0, debit: 1, hold: 2, capture: 3, release: 4, transfer: 5 } as const;

export type WorkloadSpec = {
  /** Commands in the run. */
  count: number;
  /** Distinct users the commands are spread over (userIds u0 … u{users-1}). */
  users: number;
  seed: number;
  /** 8 hex digits: the first group of every operation id of the run. */
  tag: string;
  /** A capture or release names a hold at least this many commands earlier. */
  holdGapMin: number;
  /**
   * Operation ids: "ordered" (default): the tag, then the index, so ids of a run increase, as
   * time-ordered ids (UUIDv7, TigerBeetle's id()) do; "v4": UUIDv4s as publishers send them, 74
   * pseudo-random bits (a hash of the tag and the index) ahead of the index in the last 48 bits, so
   * they land anywhere in the ledger's id order, among a preloaded ledger's ids too.
   */
  ids?: "ordered" | "v4";
  /**
   * How a command picks its users: "uniform" (default), or "zipf": user u{k} with probability
   * proportional to 1 / (k + 1), Zipf's law with exponent 1 as shops see it (u0 the busiest).
   */
  draw?: "uniform" | "zipf";
};

export type Encoded = { index: number; subject: string; msgId: string; data: Uint8Array };

/** The mix; capture and release share their 10 % (70 % captures). */
const MIX = { credit: 0.4, debit: 0.3, hold: 0.1, settle: 0.1, transfer: 0.1 } as const;
const CAPTURE_SHARE = 0.7;
/** Amounts in minor units: credits are larger than spends, so most spends apply. */
const CREDIT_AMOUNT = [1_000, 5_000] as const;
const SPEND_AMOUNT = [100, 1_500] as const;
const FEE_AMOUNT = [1, 10] as const;
const FEE_SHARE = 0.5;

export function operationId(tag: string, index: number): string {
  return `${tag}-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;
}

/** A 32-bit integer hash (the "lowbias32" finalizer): the v4 ids' pseudo-random bits. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A UUIDv4 (version 4, RFC 4122 variant) whose random-looking bits depend on the tag and the index only. */
export function v4OperationId(tag: string, index: number): string {
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const a = mix32(Number.parseInt(tag, 16) ^ mix32(index + 1));
  const b = hex(mix32(a ^ 0x9e3779b9));
  const c = mix32(a ^ 0x85ebca6b);
  return `${hex(a)}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${"89ab"[c & 3]}${hex(c).slice(1, 4)}-${index.toString(16).padStart(12, "0")}`;
}

/** The command index of an operation id or an event subject ending in one; -1 when not ours. */
export function indexOf(tag: string, idOrSubject: string): number {
  const id = idOrSubject.slice(-36);
  if (!id.startsWith(tag)) return -1;
  return Number.parseInt(id.slice(-12), 16);
}

export function randomTag(): string {
  return Math.floor(Math.random() * 0xffffffff)
    .toString(16)
    .padStart(8, "0");
}

/**
 * The cumulative distribution of Zipf's law with exponent 1 over `n` ranks: entry k is the
 * probability of drawing a rank ≤ k. 8 bytes per user (8 MB for a million).
 */
export function zipfCdf(n: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k += 1) cdf[k] = sum += 1 / (k + 1);
  for (let k = 0; k < n; k += 1) cdf[k] = (cdf[k] as number) / sum;
  return cdf;
}

/** The first rank whose cumulative probability reaches `r` (binary search; r in [0, 1)). */
export function zipfRank(cdf: Float64Array, r: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cdf[mid] as number) < r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Workload {
  /** The command kind of every index (Kind values), filled as commands are generated. */
  readonly kinds: Uint8Array;
  /** For a capture or release, the index of its hold; -1 otherwise. */
  readonly holdOf: Int32Array;
  private readonly random: () => number;
  private readonly holds: Int32Array;
  private holdsHead = 0;
  private holdsTail = 0;
  private nextIndex = 0;
  private readonly encoder = new TextEncoder();
  /** The Zipf draw's distribution; null for uniform users. */
  private readonly cdf: Float64Array | null;

  constructor(readonly spec: WorkloadSpec) {
    if (!/^[0-9a-f]{8}$/.test(spec.tag))
      throw new Error(`workload tag must be 8 lower-case hex digits: ${spec.tag}`);
    if (spec.count < 1 || spec.count > 0xffff_ffff_ffff)
      throw new Error("workload count out of range");
    this.kinds = new Uint8Array(spec.count);
    this.holdOf = new Int32Array(spec.count).fill(-1);
    this.holds = new Int32Array(spec.count);
    if (spec.users < 2) throw new Error("a workload needs at least 2 users (transfers)");
    this.random = prng(spec.seed);
    this.cdf = spec.draw === "zipf" ? zipfCdf(spec.users) : null;
  }

  get generated(): number {
    return this.nextIndex;
  }

  userId(k: number): string {
    return `u${k}`;
  }

  private between(range: readonly [number, number]): number {
    return range[0] + Math.floor(this.random() * (range[1] - range[0] + 1));
  }

  private userIndex(): number {
    return this.cdf === null
      ? Math.floor(this.random() * this.spec.users)
      : zipfRank(this.cdf, this.random());
  }

  private anyUser(): string {
    return this.userId(this.userIndex());
  }

  /** A transfer's two distinct users, drawn like every other user. */
  private pair(): [number, number] {
    const from = this.userIndex();
    if (this.cdf === null)
      return [
        from,
        (from + 1 + Math.floor(this.random() * (this.spec.users - 1))) % this.spec.users,
      ];
    // Redraw while equal, at most 64 times (u0's share is 1/H(n): 2/3 for 2 users, ~7 % for 10^6),
    // then take the next user.
    for (let tries = 0; tries < 64; tries += 1) {
      const to = this.userIndex();
      if (to !== from) return [from, to];
    }
    return [from, (from + 1) % this.spec.users];
  }

  /** The operation id of command `index` in this workload's id form. */
  operationId(index: number): string {
    return this.spec.ids === "v4"
      ? v4OperationId(this.spec.tag, index)
      : operationId(this.spec.tag, index);
  }

  /** The command index of an operation id or an event subject ending in one; -1 when not ours. */
  indexOf(idOrSubject: string): number {
    if (this.spec.ids !== "v4") return indexOf(this.spec.tag, idOrSubject);
    const id = idOrSubject.slice(-36);
    const index = Number.parseInt(id.slice(-12), 16);
    return Number.isInteger(index) &&
      index >= 0 &&
      index < this.spec.count &&
      v4OperationId(this.spec.tag, index) === id
      ? index
      : -1;
  }

  /** The next command, or null after the last one. */
  next(): Encoded | null {
    const index = this.nextIndex;
    if (index >= this.spec.count) return null;
    this.nextIndex += 1;
    const operation = this.operationId(index);
    const r = this.random();
    let name: CommandName;
    let body: Record<string, unknown>;
    const oldest = this.holdsHead < this.holdsTail ? (this.holds[this.holdsHead] as number) : -1;
    const settleReady = oldest >= 0 && oldest <= index - this.spec.holdGapMin;
    if (
      r < MIX.credit ||
      (r >= MIX.credit + MIX.debit + MIX.hold &&
        r < MIX.credit + MIX.debit + MIX.hold + MIX.settle &&
        !settleReady)
    ) {
      // A settle slot with no hold old enough yet becomes a credit (only at the start of a run).
      name = "credit";
      body = {
        operationId: operation,
        userId: this.anyUser(),
        amount: this.between(CREDIT_AMOUNT),
      };
    } else if (r < MIX.credit + MIX.debit) {
      name = "debit";
      body = { operationId: operation, userId: this.anyUser(), amount: this.between(SPEND_AMOUNT) };
    } else if (r < MIX.credit + MIX.debit + MIX.hold) {
      name = "hold";
      body = { operationId: operation, userId: this.anyUser(), amount: this.between(SPEND_AMOUNT) };
      this.holds[this.holdsTail++] = index;
    } else if (r < MIX.credit + MIX.debit + MIX.hold + MIX.settle) {
      name = this.random() < CAPTURE_SHARE ? "capture" : "release";
      this.holdsHead += 1;
      this.holdOf[index] = oldest;
      body = { operationId: operation, holdId: this.operationId(oldest) };
    } else {
      name = "transfer";
      const [from, to] = this.pair();
      body = {
        operationId: operation,
        fromUserId: this.userId(from),
        toUserId: this.userId(to),
        amount: this.between(SPEND_AMOUNT),
      };
      if (this.random() < FEE_SHARE) body["fee"] = this.between(FEE_AMOUNT);
    }
    this.kinds[index] = Kind[name];
    return {
      index,
      subject: `billing.cmd.${name}`,
      msgId: operation,
      data: this.encoder.encode(JSON.stringify(body)),
    };
  }

  /** How many commands of each kind were generated so far. */
  mix(): Record<CommandName, number> {
    const out = { credit: 0, debit: 0, hold: 0, capture: 0, release: 0, transfer: 0 };
    for (let i = 0; i < this.nextIndex; i += 1)
      out[COMMAND_NAMES[this.kinds[i] as number] as CommandName] += 1;
    return out;
  }
}
