// Proves the money rules: the contract's largest amount is 2^63 − 1 minor units, and a user
// account's balance (credit-normal) is read from the ledger's totals as posted = credits − debits
// that are final, held = pending debits, available = posted − held, all as bigints.
import { describe, expect, it } from "vitest";
import { MONEY_MAX, userBalance } from "../../src/domain/money.ts";

describe("money", () => {
  it("money – the largest amount is 2^63 − 1", () => {
    expect(MONEY_MAX).toBe(9223372036854775807n);
  });

  it("money – a fresh account has zero everything", () => {
    expect(userBalance({ debits_pending: 0n, debits_posted: 0n, credits_posted: 0n })).toEqual({
      posted: 0n,
      held: 0n,
      available: 0n,
    });
  });

  it("money – posted is credits minus final debits, held the pending debits, available their difference", () => {
    expect(
      userBalance({ debits_pending: 250n, debits_posted: 100n, credits_posted: 1000n }),
    ).toEqual({ posted: 900n, held: 250n, available: 650n });
  });

  it("money – a fully held balance has nothing available", () => {
    expect(
      userBalance({ debits_pending: 900n, debits_posted: 100n, credits_posted: 1000n }),
    ).toEqual({ posted: 900n, held: 900n, available: 0n });
  });

  it("money – totals beyond 64 bits stay exact", () => {
    const big = 1n << 120n;
    expect(userBalance({ debits_pending: 1n, debits_posted: 0n, credits_posted: big })).toEqual({
      posted: big,
      held: 1n,
      available: big - 1n,
    });
  });
});
