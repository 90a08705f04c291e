// The finance tools' pure parts: amounts in major units, times with nanoseconds, CSV quoting, the
// trial balance's verdict on rows that do not balance (exit 1), the fold of an account without
// history under the two-phase rules (pending, post, void, expiry at the deadline, a post of a hold
// that is not open), and the flag parser's one-line answers.
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import { parseFlags } from "../../src/finance/cli.ts";
import { UsageError } from "../../src/cli/exit-code.ts";
import { csvLine, isoOfNs, majorUnits, nsOfIso } from "../../src/finance/money-text.ts";
import {
  AccountFold,
  Totals,
  trialExitCode,
  trialFooter,
  zeroSides,
  type TrialRow,
} from "../../src/finance/trial-balance.ts";

const S = 1_000_000_000n;

function transfer(fields: Partial<Transfer>): Transfer {
  return {
    id: 1n,
    debit_account_id: 10n,
    credit_account_id: 20n,
    amount: 0n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: 978,
    code: 1,
    flags: 0,
    timestamp: 1n,
    ...fields,
  };
}

describe("finance rows – amounts and times", () => {
  it("prints minor units in major units with the currency's scale, signs and leading zeros included", () => {
    expect(majorUnits(12345n, 2)).toBe("123.45");
    expect(majorUnits(5n, 2)).toBe("0.05");
    expect(majorUnits(-5n, 2)).toBe("-0.05");
    expect(majorUnits(0n, 3)).toBe("0.000");
    expect(majorUnits(7n, 0)).toBe("7");
    expect(majorUnits((1n << 63n) - 1n, 18)).toBe("9.223372036854775807");
  });

  it("reads ISO times to the nanosecond and prints ledger timestamps back the same way; anything else is no time", () => {
    const ns = nsOfIso("2026-11-30T23:59:59.123456789Z");
    expect(ns).toBe(BigInt(Date.parse("2026-11-30T23:59:59Z")) * 1_000_000n + 123_456_789n);
    expect(isoOfNs(ns as bigint)).toBe("2026-11-30T23:59:59.123456789Z");
    expect(nsOfIso("2026-12-01")).toBe(BigInt(Date.parse("2026-12-01T00:00:00Z")) * 1_000_000n);
    for (const bad of ["yesterday", "1733000000", "2026-13-01", "2026-12-01T25:00:00Z", ""])
      expect(nsOfIso(bad)).toBeNull();
  });

  it("quotes a CSV field only when it must", () => {
    expect(csvLine(["a", "b,c", 'say "hi"', ""])).toBe('a,"b,c","say ""hi""",\n');
  });
});

describe("finance rows – the trial balance's verdict", () => {
  const row = (ledger: number, sides: Partial<ReturnType<typeof zeroSides>>): TrialRow => ({
    account: 1n,
    kind: "user",
    owner: "x",
    ledger,
    currency: "EUR",
    scale: 2,
    ...zeroSides(),
    ...sides,
  });

  it("balances when debits equal credits, posted and pending, per ledger", () => {
    const totals = new Totals();
    totals.add(row(978, { credits_posted: 100n, debits_pending: 5n }));
    totals.add(row(978, { debits_posted: 100n, credits_pending: 5n }));
    const result = totals.result();
    expect(result).toEqual([expect.objectContaining({ ledger: 978, accounts: 2, balanced: true })]);
    expect(trialExitCode(result, [])).toBe(0);
    expect(trialFooter("text", result, [])).toMatch(/trial balance: balanced\n$/);
  });

  it("exits 1 and says NOT BALANCED when one currency's debits and credits differ, or a fold met a problem", () => {
    const totals = new Totals();
    totals.add(row(978, { credits_posted: 100n }));
    totals.add(row(978, { debits_posted: 99n }));
    totals.add(row(840, {}));
    const result = totals.result();
    expect(result.map((t) => [t.ledger, t.balanced])).toEqual([
      [840, true],
      [978, false],
    ]);
    expect(trialExitCode(result, [])).toBe(1);
    expect(trialFooter("text", result, [])).toMatch(
      /EUR: debits ≠ credits posted, = pending: NOT BALANCED/,
    );
    expect(trialFooter("csv", result, [])).toMatch(/,total,2 accounts,978,EUR,99,100,0,0,no\n$/);
    expect(
      trialExitCode(
        totals.result().filter((t) => t.balanced),
        ["a post of a hold that is not open"],
      ),
    ).toBe(1);
  });
});

describe("finance rows – folding an account without history", () => {
  it("holds pending until posted or voided, releases an expired hold at its deadline, and reports a post of a hold that is not open", () => {
    const fold = new AccountFold(20n); // the credit side, as a settlement account is of a hold
    fold.apply([
      transfer({ id: 1n, amount: 100n, timestamp: 1n * S }),
      transfer({ id: 2n, amount: 30n, flags: TransferFlags.pending, timestamp: 2n * S }),
      transfer({ id: 3n, amount: 20n, flags: TransferFlags.pending, timestamp: 3n * S }),
      transfer({
        id: 4n,
        amount: 10n,
        flags: TransferFlags.pending,
        timeout: 5,
        timestamp: 4n * S,
      }),
      transfer({
        id: 5n,
        amount: 30n,
        flags: TransferFlags.post_pending_transfer,
        pending_id: 2n,
        timestamp: 5n * S,
      }),
      transfer({
        id: 6n,
        amount: 20n,
        flags: TransferFlags.void_pending_transfer,
        pending_id: 3n,
        timestamp: 6n * S,
      }),
    ]);
    expect(fold.sides).toEqual({
      debits_posted: 0n,
      credits_posted: 130n,
      debits_pending: 0n,
      credits_pending: 10n,
    });
    expect(fold.finish(9n * S - 1n).map((h) => h.id)).toEqual([4n]); // before its deadline (4 s + 5 s)
    expect(fold.finish(9n * S)).toEqual([]); // at its deadline the ledger has released it
    expect(fold.sides.credits_pending).toBe(0n);
    fold.apply([
      transfer({
        id: 7n,
        amount: 10n,
        flags: TransferFlags.post_pending_transfer,
        pending_id: 4n,
        timestamp: 10n * S,
      }),
    ]);
    expect(fold.problems).toEqual([
      expect.stringMatching(/posts or voids 4, which is not an open hold/),
    ]);
  });
});

describe("finance rows – flags", () => {
  it("names an unknown flag, a flag without its value and a flag given twice", () => {
    expect(() => parseFlags(["--form", "csv"], ["--format"])).toThrow(
      new UsageError("unknown flag --form (--format)"),
    );
    expect(() => parseFlags(["--format"], ["--format"])).toThrow(/--format needs a value/);
    expect(() => parseFlags(["--at", "x", "--at", "y"], ["--at"])).toThrow(/--at given twice/);
    expect(parseFlags(["journal", "--format", "jsonl"], ["--format"])).toEqual({
      positional: ["journal"],
      values: new Map([["--format", "jsonl"]]),
    });
  });
});
