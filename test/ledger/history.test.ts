// Proves that an account's transfer chain (src/ledger/history.ts) finds what an index would: for
// chains of every length up to 300, the seek by timestamp and by sequence number land on the
// right link, checked against a plain array; and that getAccountTransfers / getAccountBalances
// over a long, interleaved history return exactly what filtering and sorting the full list gives,
// for random ranges, limits, side flags, field filters and both orders.
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  AccountFilterFlags,
  AccountFlags,
  CreateTransferStatus,
  type Transfer,
} from "tigerbeetle-node";
import {
  append,
  atSeq,
  chainFromSql,
  chainToSql,
  emptyChain,
  lastAtOrBefore,
  spineSeqs,
  type Chain,
  type Link,
} from "../../src/ledger/history.ts";
import { openLedger } from "../../src/ledger/index.ts";
import { account, accountFilter, transfer } from "./support/events.ts";
import { fakeClock, tempDir } from "./support/drivers.ts";

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

describe("ledger history – chain seeks", () => {
  it("a seek by timestamp finds the newest transfer at or before it, for every chain length and target", () => {
    let chain: Chain = emptyChain;
    const links = new Map<bigint, Link>();
    const timestamps: bigint[] = [];
    for (let n = 1; n <= 300; n++) {
      const timestamp = BigInt(n * 10);
      const { link, next } = append(chain, timestamp);
      links.set(timestamp, link);
      timestamps.push(timestamp);
      chain = next;
      for (let target = 0n; target <= BigInt(n * 10 + 10); target += 5n) {
        const found = lastAtOrBefore(chain, target, (ts) => links.get(ts) as Link);
        const expected = timestamps.filter((ts) => ts <= target).at(-1);
        expect(found?.timestamp, `n=${n} target=${target}`).toBe(expected);
      }
    }
  });

  it("a chain's spine is the skew-binary decomposition of its count, so it is stored as timestamps only", () => {
    let chain: Chain = emptyChain;
    for (let n = 1; n <= 5_000; n++) {
      chain = append(chain, BigInt(n * 3)).next;
      expect(chain.spine.map((e) => e.seq)).toEqual(spineSeqs(n));
      expect(chainFromSql(BigInt(chain.count), chainToSql(chain))).toEqual(chain);
    }
    expect(spineSeqs(5)).toEqual([5, 4, 3]);
    expect(spineSeqs(7)).toEqual([7]);
  });

  it("a seek by sequence number from any link reaches every earlier link", () => {
    let chain: Chain = emptyChain;
    const links = new Map<bigint, Link>();
    const bySeq: Link[] = [];
    for (let n = 1; n <= 300; n++) {
      const { link, next } = append(chain, BigInt(n));
      links.set(link.timestamp, link);
      bySeq.push(link);
      chain = next;
    }
    for (const from of bySeq) {
      for (let seq = 1; seq <= from.seq; seq++) {
        expect(atSeq(from, seq, (ts) => links.get(ts) as Link).timestamp).toBe(BigInt(seq));
      }
    }
  });

  it("a seek reads O(log n) links: at most 3·log2(n) for any target in 100,000 transfers", () => {
    let chain: Chain = emptyChain;
    const links = new Map<bigint, Link>();
    for (let n = 1; n <= 100_000; n++) {
      const { link, next } = append(chain, BigInt(n));
      links.set(link.timestamp, link);
      chain = next;
    }
    let reads = 0;
    const counted = (ts: bigint) => {
      reads++;
      return links.get(ts) as Link;
    };
    const bound = 3 * Math.ceil(Math.log2(100_000));
    for (let target = 1n; target <= 100_000n; target += 997n) {
      reads = 0;
      expect(lastAtOrBefore(chain, target, counted)?.timestamp).toBe(target);
      expect(reads, `seek to ${target}`).toBeLessThanOrEqual(bound);
    }
  });
});

describe("ledger history – account queries over a long history", () => {
  it("getAccountTransfers and getAccountBalances match filtering the full history, for random filters", async () => {
    const tmp = tempDir("ledger-history-");
    const clock = fakeClock();
    const ledger = await openLedger({
      driver: "embedded",
      path: path.join(tmp.dir, "ledger.db"),
      clock: clock.now,
    });
    try {
      const next = random(7);
      await ledger.createAccounts(
        [1n, 2n, 3n].map((id) => account({ id, flags: AccountFlags.history })),
      );
      const all: Transfer[] = [];
      for (let b = 0; b < 12; b++) {
        const events = Array.from({ length: 60 }, (_, i) => {
          const [dr, cr] = [
            [1n, 2n],
            [2n, 1n],
            [1n, 3n],
            [3n, 2n],
          ][Math.floor(next() * 4)] as [bigint, bigint];
          const userData128 = next() < 0.5 ? 0n : (1n << 100n) + BigInt(Math.floor(next() * 2));
          return transfer({
            id: BigInt(b * 100 + i + 1),
            debit_account_id: dr,
            credit_account_id: cr,
            amount: 1n + BigInt(Math.floor(next() * 9)),
            code: 1 + Math.floor(next() * 3),
            user_data_32: Math.floor(next() * 2),
            user_data_128: userData128,
          });
        });
        const results = await ledger.createTransfers(events);
        results.forEach((r, i) => {
          expect(r.status).toBe(CreateTransferStatus.created);
          all.push({ ...(events[i] as Transfer), timestamp: r.timestamp });
        });
        clock.advance(1_000_000n);
      }
      const ofAccount = all.filter((t) => t.debit_account_id === 1n || t.credit_account_id === 1n);
      // Rounds from 200 on read narrow ranges (0–40 transfers of the account, either side of the
      // engine's 32-link walk-back) anywhere in the chain, most often at its end.
      for (let round = 0; round < 320; round++) {
        const pick = () => ofAccount[Math.floor(next() * ofAccount.length)]?.timestamp ?? 0n;
        const narrow = (): [bigint, bigint] => {
          const i =
            next() < 0.5
              ? ofAccount.length - 1 - Math.floor(next() * 40)
              : Math.floor(next() * ofAccount.length);
          const j = Math.min(ofAccount.length - 1, i + Math.floor(next() * 41));
          return [ofAccount[i]?.timestamp ?? 0n, ofAccount[j]?.timestamp ?? 0n];
        };
        const [a, b] =
          round >= 200 ? narrow() : [next() < 0.3 ? 0n : pick(), next() < 0.3 ? 0n : pick()];
        const min = b !== 0n && a > b ? b : a;
        const max = b !== 0n && a > b ? a : b;
        const flags = [
          AccountFilterFlags.debits,
          AccountFilterFlags.credits,
          AccountFilterFlags.debits | AccountFilterFlags.credits,
        ][Math.floor(next() * 3)] as number;
        const reversed = next() < 0.5;
        const filter = accountFilter({
          account_id: 1n,
          timestamp_min: min,
          timestamp_max: max,
          limit: 1 + Math.floor(next() * 300),
          code: next() < 0.3 ? 1 + Math.floor(next() * 3) : 0,
          user_data_32: next() < 0.2 ? 1 : 0,
          user_data_128: next() < 0.2 ? (1n << 100n) + BigInt(Math.floor(next() * 2)) : 0n,
          flags: flags | (reversed ? AccountFilterFlags.reversed : 0),
        });
        const expected = ofAccount
          .filter(
            (t) =>
              (t.debit_account_id === 1n
                ? flags & AccountFilterFlags.debits
                : flags & AccountFilterFlags.credits) !== 0,
          )
          .filter(
            (t) => t.timestamp >= (min === 0n ? 1n : min) && (max === 0n || t.timestamp <= max),
          )
          .filter(
            (t) =>
              (filter.code === 0 || t.code === filter.code) &&
              (filter.user_data_32 === 0 || t.user_data_32 === filter.user_data_32),
          )
          .filter((t) => filter.user_data_128 === 0n || t.user_data_128 === filter.user_data_128)
          .sort((x, y) =>
            reversed ? Number(y.timestamp - x.timestamp) : Number(x.timestamp - y.timestamp),
          )
          .slice(0, filter.limit);
        const found = await ledger.getAccountTransfers(filter);
        expect(
          found.map((t) => t.id),
          JSON.stringify(filter, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v)),
        ).toEqual(expected.map((t) => t.id));
        const balances = await ledger.getAccountBalances(filter);
        expect(balances.map((row) => row.timestamp)).toEqual(expected.map((t) => t.timestamp));
      }
      const [final] = await ledger.lookupAccounts([1n]);
      const [last] = await ledger.getAccountBalances(
        accountFilter({ account_id: 1n, limit: 1, flags: 7 }),
      );
      expect(last).toEqual({
        debits_pending: 0n,
        debits_posted: final?.debits_posted,
        credits_pending: 0n,
        credits_posted: final?.credits_posted,
        timestamp: ofAccount.at(-1)?.timestamp,
      });
    } finally {
      ledger.destroy();
      tmp.remove();
    }
  });
});
