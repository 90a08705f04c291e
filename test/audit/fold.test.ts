// Proves the audit's fold applies the ledger's rules (TigerBeetle semantics) to balances: pending,
// post, void and expiry, the limit flag, and the tolerance for a reader that has not yet seen the
// newest expiries. Pure: transfers in, balances and issues out.
import { describe, expect, it } from "vitest";
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { LedgerFold, matchesWithExpiry, predictWithExpiry } from "../../src/audit/fold.ts";
import { NS_PER_SECOND } from "../../src/lib/nanoseconds.ts";

const USER = 1n;
const BANK = 2n;

function account(id: bigint, flags: number): Account {
  return {
    id,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    ledger: 978,
    code: 1,
    flags,
    timestamp: id,
  };
}

function transfer(fields: Partial<Transfer> & Pick<Transfer, "id" | "timestamp">): Transfer {
  return {
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: 0n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: 978,
    code: 1,
    flags: 0,
    ...fields,
  };
}

function fold(): LedgerFold {
  const f = new LedgerFold(10n * NS_PER_SECOND);
  f.addAccount(account(USER, AccountFlags.debits_must_not_exceed_credits | AccountFlags.history));
  f.addAccount(account(BANK, AccountFlags.none));
  return f;
}

const T0 = 1_000n * NS_PER_SECOND;
const credit = (id: bigint, ts: bigint, amount: bigint) =>
  transfer({ id, timestamp: ts, debit_account_id: BANK, credit_account_id: USER, amount });
const hold = (id: bigint, ts: bigint, amount: bigint, timeout = 0) =>
  transfer({
    id,
    timestamp: ts,
    debit_account_id: USER,
    credit_account_id: BANK,
    amount,
    flags: TransferFlags.pending,
    timeout,
  });
const post = (id: bigint, ts: bigint, pending: bigint, amount: bigint) =>
  transfer({
    id,
    timestamp: ts,
    debit_account_id: USER,
    credit_account_id: BANK,
    amount,
    pending_id: pending,
    flags: TransferFlags.post_pending_transfer,
  });

describe("audit fold – the ledger's rules", () => {
  it("a post moves the posted amount from pending to posted and releases the rest of the hold", () => {
    const f = fold();
    expect(f.apply(credit(10n, T0 + 1n, 100n))).toEqual([]);
    expect(f.apply(hold(11n, T0 + 2n, 60n))).toEqual([]);
    expect(f.apply(post(12n, T0 + 3n, 11n, 40n))).toEqual([]);
    expect(f.accounts.get(USER)?.bal).toEqual({
      debits_pending: 0n,
      debits_posted: 40n,
      credits_pending: 0n,
      credits_posted: 100n,
    });
    expect(f.accounts.get(BANK)?.bal).toEqual({
      debits_pending: 0n,
      debits_posted: 100n,
      credits_pending: 0n,
      credits_posted: 40n,
    });
  });

  it("a void releases the whole hold and a second post of it is pending_not_open", () => {
    const f = fold();
    f.apply(credit(10n, T0 + 1n, 100n));
    f.apply(hold(11n, T0 + 2n, 60n));
    f.apply(
      transfer({
        id: 12n,
        timestamp: T0 + 3n,
        debit_account_id: USER,
        credit_account_id: BANK,
        amount: 60n,
        pending_id: 11n,
        flags: TransferFlags.void_pending_transfer,
      }),
    );
    expect(f.accounts.get(USER)?.bal.debits_pending).toBe(0n);
    expect(f.apply(post(13n, T0 + 4n, 11n, 60n)).map((i) => i.kind)).toEqual(["pending_not_open"]);
  });

  it("a hold past its deadline is released before the next transfer, with no transfer of its own", () => {
    const f = fold();
    f.apply(credit(10n, T0 + 1n, 100n));
    f.apply(hold(11n, T0 + 2n, 100n, 1));
    expect(f.apply(hold(12n, T0 + 2n + NS_PER_SECOND, 100n))).toEqual([]);
    expect(f.holds.get(11n)?.status).toBe("expired");
    expect(f.apply(post(13n, T0 + 5n * NS_PER_SECOND, 11n, 100n)).map((i) => i.kind)).toEqual([
      "pending_not_open",
    ]);
  });

  it("a debit beyond the credits is reported as limit_exceeded on the user account", () => {
    const f = fold();
    f.apply(credit(10n, T0 + 1n, 100n));
    const issues = f.apply(
      transfer({
        id: 11n,
        timestamp: T0 + 2n,
        debit_account_id: USER,
        credit_account_id: BANK,
        amount: 101n,
      }),
    );
    expect(issues).toMatchObject([{ kind: "limit_exceeded", accountId: USER }]);
  });

  it("a transfer on an account that does not exist is unknown_account", () => {
    expect(fold().apply(credit(10n, T0, 5n)).length).toBe(0);
    expect(
      fold()
        .apply(
          transfer({
            id: 10n,
            timestamp: T0,
            debit_account_id: 99n,
            credit_account_id: USER,
            amount: 1n,
          }),
        )
        .map((i) => i.kind),
    ).toEqual(["unknown_account"]);
  });

  it("a reader that has not yet seen the newest expiries matches, and any other difference does not", () => {
    const f = fold();
    f.apply(credit(10n, T0 + 1n, 100n));
    f.apply(hold(11n, T0 + 2n, 30n, 1));
    f.apply(hold(12n, T0 + 3n, 20n, 1));
    const at = T0 + 3n + NS_PER_SECOND;
    f.expireThrough(at);
    const user = f.accounts.get(USER);
    if (!user) throw new Error("user account missing");
    const { predicted, debitSide } = predictWithExpiry(
      user,
      f.uncertain(at - NS_PER_SECOND, at),
      at - NS_PER_SECOND,
    );
    const stored = (pending: bigint) => ({ ...predicted, debits_pending: pending });
    expect(matchesWithExpiry(stored(0n), predicted, debitSide, [])).toBe(true);
    expect(matchesWithExpiry(stored(20n), predicted, debitSide, [])).toBe(true); // the later-due hold not yet expired
    expect(matchesWithExpiry(stored(50n), predicted, debitSide, [])).toBe(true); // neither
    expect(matchesWithExpiry(stored(30n), predicted, debitSide, [])).toBe(false); // not in deadline order
    expect(
      matchesWithExpiry({ ...stored(0n), credits_posted: 101n }, predicted, debitSide, []),
    ).toBe(false);
  });
});
