// Proves that the history read behind events' balances is bounded by the batch, not by the ledger's
// history: a replay of a days-old operation in the same batch as a fresh one on one hot account
// must not read every row in between (thousands here, millions in production). Real embedded
// ledger file; a counting decorator over its getAccountBalances counts the rows returned. The
// balances must still be the ones right after each operation. And a batch applied in one request
// costs one read per touched account, each asking only for the rows its operations can hold, so
// the reads of a whole batch fit one TigerBeetle reply (8189 rows) and the client can carry them
// in one message.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Transfer } from "tigerbeetle-node";
import { systemAccounts, userAccountId, userAccounts } from "../../src/domain/accounts.ts";
import { planTransfers } from "../../src/domain/plan.ts";
import type { Operation } from "../../src/domain/resolve.ts";
import { openLedger, type Ledger } from "../../src/ledger/index.ts";
import { HISTORY_READ_ROWS_MAX } from "../../src/config/limits.ts";
import { appliedFacts, type Applied } from "../../src/ledger-facts/applied-facts.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { chart, EUR, operation, uuid } from "../domain/fixture.ts";
import { tempDir } from "../ledger/support/drivers.ts";

const HISTORY_BETWEEN = 5_000;

let tmp: ReturnType<typeof tempDir>;
let inner: Ledger;
let rowsRead = 0;
let reads = 0;
let rowsAsked = 0;
let ledger: Ledger;

beforeAll(async () => {
  tmp = tempDir("facts-");
  inner = await openLedger({ driver: "embedded", path: path.join(tmp.dir, "ledger.db") });
  ledger = {
    ...inner,
    getAccountBalances: async (filter) => {
      const rows = await inner.getAccountBalances(filter);
      reads += 1;
      rowsAsked += filter.limit;
      rowsRead += rows.length;
      return rows;
    },
  };
  await inner.createAccounts([
    ...systemAccounts(chart),
    ...userAccounts(chart.space, EUR.ledger, "hot"),
    ...userAccounts(chart.space, EUR.ledger, "cold"),
  ]);
});
afterAll(() => {
  inner?.destroy();
  tmp?.remove();
});

async function apply(op: Operation): Promise<Applied> {
  if (op.decoded.kind !== "command") throw new Error("fixture");
  const [result] = await inner.createTransfers(
    planTransfers(chart, op.decoded.command, op.decoded.fingerprint, null),
  );
  if (result === undefined) throw new Error("no result");
  return {
    op,
    verdict: { kind: "applied", replay: false, timestamps: [result.timestamp], hold: null },
  };
}

describe("facts – bounded history reads", () => {
  it("facts – a days-old replay and a fresh credit on one hot account read at most HISTORY_READ_ROWS_MAX rows per operation, not the history between", async () => {
    const old = await apply(
      operation("credit", { operationId: uuid(1), userId: "hot", amount: "7" }),
    );
    const coldOld = await apply(
      operation("credit", { operationId: uuid(2), userId: "cold", amount: "1" }),
    );
    // The history in between: thousands of credits of the hot account.
    const between: Transfer[] = Array.from({ length: HISTORY_BETWEEN }, (_, i) => {
      const d = operation("credit", {
        operationId: uuid(1000 + i),
        userId: "hot",
        amount: "1",
      }).decoded;
      if (d.kind !== "command") throw new Error("fixture");
      return planTransfers(chart, d.command, d.fingerprint, null)[0] as Transfer;
    });
    await inner.createTransfers(between);
    const fresh = await apply(
      operation("credit", { operationId: uuid(3), userId: "hot", amount: "100" }),
    );
    const replay: Applied = { ...old, verdict: { ...old.verdict, replay: true } };

    rowsRead = 0;
    reads = 0;
    const facts = await appliedFacts(ledger, chart, new NameBook(chart.space, 100), [
      replay,
      fresh,
      coldOld,
    ]);
    expect(facts.get(old.op.id)?.balances).toEqual([
      { userId: "hot", currency: "EUR", posted: 7n, held: 0n, available: 7n },
    ]);
    expect(facts.get(fresh.op.id)?.balances).toEqual([
      {
        userId: "hot",
        currency: "EUR",
        posted: BigInt(7 + HISTORY_BETWEEN + 100),
        held: 0n,
        available: BigInt(7 + HISTORY_BETWEEN + 100),
      },
    ]);
    expect(facts.get(coldOld.op.id)?.balances).toEqual([
      { userId: "cold", currency: "EUR", posted: 1n, held: 0n, available: 1n },
    ]);
    // Three (operation, account) pairs: the bound, whatever the history holds.
    expect(rowsRead).toBeLessThanOrEqual(3 * HISTORY_READ_ROWS_MAX);
    expect(reads).toBeLessThanOrEqual(3);
    expect(userAccountId(chart.space, EUR.ledger, "hot")).not.toBe(
      userAccountId(chart.space, EUR.ledger, "cold"),
    );
  });

  it("facts – a batch of many operations on one hot account still reads its rows in few reads, each balance right", async () => {
    const ops: Applied[] = [];
    for (let i = 0; i < 600; i += 1)
      ops.push(
        await apply(
          operation("credit", { operationId: uuid(20_000 + i), userId: "cold", amount: "2" }),
        ),
      );
    rowsRead = 0;
    reads = 0;
    const facts = await appliedFacts(ledger, chart, new NameBook(chart.space, 100), ops);
    ops.forEach((a, i) =>
      expect(facts.get(a.op.id)?.balances[0]?.posted).toBe(1n + 2n * BigInt(i + 1)),
    );
    expect(rowsRead).toBe(600);
    expect(reads).toBeLessThanOrEqual(Math.ceil(600 / HISTORY_READ_ROWS_MAX) + 1);
  });

  it("facts – a batch applied in one request reads each touched account once, asking only for the rows its operations can hold", async () => {
    const users = Array.from({ length: 400 }, (_, i) => `many-${i}`);
    await inner.createAccounts(users.flatMap((u) => userAccounts(chart.space, EUR.ledger, u)));
    // Two credits per user, all in one request, as the worker applies a batch.
    const ops = users.flatMap((u, i) =>
      [0, 1].map((k) =>
        operation("credit", {
          operationId: uuid(40_000 + 2 * i + k),
          userId: u,
          amount: String(k + 1),
        }),
      ),
    );
    const transfers = ops.map((op) => {
      if (op.decoded.kind !== "command") throw new Error("fixture");
      return planTransfers(chart, op.decoded.command, op.decoded.fingerprint, null)[0] as Transfer;
    });
    const results = await inner.createTransfers(transfers);
    const applied: Applied[] = ops.map((op, i) => ({
      op,
      verdict: {
        kind: "applied",
        replay: false,
        timestamps: [(results[i] as { timestamp: bigint }).timestamp],
        hold: null,
      },
    }));
    rowsRead = 0;
    reads = 0;
    rowsAsked = 0;
    const facts = await appliedFacts(ledger, chart, new NameBook(chart.space, 1_000), applied);
    applied.forEach((a, i) =>
      expect(facts.get(a.op.id)?.balances[0]?.posted).toBe(i % 2 === 0 ? 1n : 3n),
    );
    expect(reads).toBe(users.length);
    expect(rowsRead).toBe(ops.length);
    // 2 rows per operation's range and one more per account; at 256 per read this was 102,400.
    expect(rowsAsked).toBe(users.length * (2 * 2 + 1));
    expect(rowsAsked).toBeLessThanOrEqual(8189);
  });
});

describe("facts – the user-name cache", () => {
  it("names every account of a call even when the call holds more new names than the cache keeps", async () => {
    // Three users, a cache of two: filling the cache mid-call once cleared names the same call had
    // just read, and the worker then asserted that a user account was not one (exit 70).
    await inner.createAccounts(
      ["ann", "bob", "cyd"].flatMap((u) => userAccounts(chart.space, EUR.ledger, u)),
    );
    const ids = ["ann", "bob", "cyd"].map((u) => userAccountId(chart.space, EUR.ledger, u));
    const names = await new NameBook(chart.space, 2).resolve(ledger, ids);
    expect(ids.map((id) => names.get(id))).toEqual(["ann", "bob", "cyd"]);
  });
});
