// Proves the chart of accounts: a user's account per currency is derived (deterministic id, code
// user, flags debits_must_not_exceed_credits | history, zero balances, its userId readable from
// user_data), a long userId adds a name account, and the system accounts (settlement and fee per
// currency, the marker pair on the marker ledger) are complete, distinct and plain.
import { AccountFlags } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import {
  AccountCode,
  currencyByCode,
  currencyByLedger,
  feeAccountId,
  markerAccountIds,
  settlementAccountId,
  systemAccounts,
  userAccountId,
  userAccounts,
  userNameAccountId,
} from "../../src/domain/accounts.ts";
import { U128_MAX } from "../../src/domain/ids.ts";
import { decodeUserIdHead, decodeUserIdTail } from "../../src/domain/user-name.ts";
import { at, chart, EUR, USD } from "./fixture.ts";

const zeroBalances = {
  debits_pending: 0n,
  debits_posted: 0n,
  credits_pending: 0n,
  credits_posted: 0n,
  reserved: 0,
  timestamp: 0n,
};

describe("accounts – user accounts", () => {
  it("accounts – a short userId has one user account with the user flags and zero balances", () => {
    const accounts = userAccounts(chart.space, EUR.ledger, "alice");
    expect(accounts).toHaveLength(1);
    const a = at(accounts, 0);
    expect(a).toMatchObject({
      id: userAccountId(chart.space, EUR.ledger, "alice"),
      ledger: 978,
      code: AccountCode.user,
      ...zeroBalances,
    });
    expect(a.flags).toBe(AccountFlags.debits_must_not_exceed_credits | AccountFlags.history);
    expect(decodeUserIdHead(a)).toEqual({ head: "alice", continued: false });
  });

  it("accounts – user flags never include credits_must_not_exceed_debits, linked, closed or imported", () => {
    const { flags } = at(userAccounts(chart.space, EUR.ledger, "alice"), 0);
    for (const flag of [
      AccountFlags.credits_must_not_exceed_debits,
      AccountFlags.linked,
      AccountFlags.closed,
      AccountFlags.imported,
    ]) {
      expect(flags & flag).toBe(0);
    }
  });

  it("accounts – a 64-character userId adds a name account holding the rest, on the same ledger", () => {
    const userId = `${"a".repeat(36)}${"Z".repeat(28)}`;
    const accounts = userAccounts(chart.space, USD.ledger, userId);
    expect(accounts).toHaveLength(2);
    const [user, name] = [at(accounts, 0), at(accounts, 1)];
    expect(user.id).toBe(userAccountId(chart.space, USD.ledger, userId));
    expect(name).toMatchObject({
      id: userNameAccountId(chart.space, user.id),
      ledger: 840,
      code: AccountCode.userName,
      flags: AccountFlags.none,
      ...zeroBalances,
    });
    const head = decodeUserIdHead(user);
    expect(head).toEqual({ head: "a".repeat(36), continued: true });
    expect(head.head + decodeUserIdTail(name)).toBe(userId);
  });

  it("accounts – a 36-character userId needs no name account, 37 characters do", () => {
    expect(userAccounts(chart.space, EUR.ledger, "a".repeat(36))).toHaveLength(1);
    expect(userAccounts(chart.space, EUR.ledger, "a".repeat(37))).toHaveLength(2);
  });

  it("accounts – user account ids are deterministic and differ by ledger and by userId (case included)", () => {
    expect(userAccountId(chart.space, 978, "alice")).toBe(userAccountId(chart.space, 978, "alice"));
    const ids = [
      userAccountId(chart.space, 978, "alice"),
      userAccountId(chart.space, 840, "alice"),
      userAccountId(chart.space, 978, "Alice"),
      userAccountId(chart.space, 978, "bob"),
      userAccountId(chart.space, 978, "1"),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id > 0n && id < U128_MAX).toBe(true);
  });

  it("accounts – the same userId as a number and as a string is one account (ids are from the normalised text)", () => {
    expect(userAccountId(chart.space, 978, String(42))).toBe(userAccountId(chart.space, 978, "42"));
  });
});

describe("accounts – system accounts", () => {
  const accounts = systemAccounts(chart);

  it("accounts – one settlement and one fee account per currency, and the marker pair", () => {
    expect(accounts).toHaveLength(2 * chart.currencies.length + 2);
    for (const currency of chart.currencies) {
      expect(accounts).toContainEqual(
        expect.objectContaining({
          id: settlementAccountId(chart.space, currency.ledger),
          ledger: currency.ledger,
          code: AccountCode.settlement,
        }),
      );
      expect(accounts).toContainEqual(
        expect.objectContaining({
          id: feeAccountId(chart.space, currency.ledger),
          ledger: currency.ledger,
          code: AccountCode.fee,
        }),
      );
    }
    const marker = markerAccountIds(chart.space, chart.markerLedger);
    expect(accounts).toContainEqual(
      expect.objectContaining({
        id: marker.debit,
        ledger: chart.markerLedger,
        code: AccountCode.markerDebit,
      }),
    );
    expect(accounts).toContainEqual(
      expect.objectContaining({
        id: marker.credit,
        ledger: chart.markerLedger,
        code: AccountCode.markerCredit,
      }),
    );
  });

  it("accounts – system accounts have no flags, zero balances and no user data", () => {
    for (const a of accounts) {
      expect(a).toMatchObject({
        flags: AccountFlags.none,
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        ...zeroBalances,
      });
    }
  });

  it("accounts – all system account ids are distinct and never a user's", () => {
    const ids = accounts.map((a) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).not.toContain(userAccountId(chart.space, 978, "settlement"));
    expect(settlementAccountId(chart.space, 978)).not.toBe(settlementAccountId(chart.space, 840));
    expect(feeAccountId(chart.space, 978)).not.toBe(settlementAccountId(chart.space, 978));
  });

  it("accounts – system accounts are deterministic", () => {
    expect(systemAccounts(chart)).toEqual(accounts);
  });

  it("accounts – no currency shares the marker ledger in the test chart", () => {
    expect(chart.currencies.map((c) => c.ledger)).not.toContain(chart.markerLedger);
  });
});

describe("accounts – currencies", () => {
  it("accounts – currencies are found by code and by ledger", () => {
    expect(currencyByCode(chart, "USD")).toEqual(USD);
    expect(currencyByCode(chart, "usd")).toBeUndefined();
    expect(currencyByLedger(chart, 978)).toEqual(EUR);
    expect(currencyByLedger(chart, chart.markerLedger)).toBeUndefined();
  });
});
