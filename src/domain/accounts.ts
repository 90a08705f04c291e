// The chart of accounts. One ledger per currency; every id is derived, so nothing is registered.
//
//   user       (code 1)  one per (currency, user): a liability of the operator, credit-normal,
//                        debits_must_not_exceed_credits (available never below 0) and history
//                        (balances after every transfer, for events and the audit)
//   user name  (code 2)  the rest of a userId over 36 characters; never moves money
//   settlement (code 10) one per currency: the outside world; credits come from it, debits and
//                        captures go to it
//   fee        (code 11) one per currency: fees of transfers
//   marker     (code 20, 21) a pair on the marker ledger: zero-amount transfers between them
//                        record rejections durably under the operation id
//   deployment (code 30, 31) on the marker ledger: which deployment this ledger serves, with its
//                        key (src/deployment.ts); never moves money
// Every id is derived in the deployment's id space (a keyed hash, src/domain/ids.ts).
import type { Account } from "tigerbeetle-node";
import { AccountFlags } from "./ledger-codes.ts";
import type { IdSpace } from "./ids.ts";
import { encodeUserId } from "./user-name.ts";

export type Currency = { code: string; ledger: number; scale: number };

export type Chart = {
  currencies: ReadonlyArray<Currency>;
  defaultCurrency: string;
  /** The ledger of rejection markers; no currency uses it. */
  markerLedger: number;
  /** The deployment's ids: every derived id and account id, and the tag on every transfer. */
  space: IdSpace;
};

export const AccountCode = {
  user: 1,
  userName: 2,
  settlement: 10,
  fee: 11,
  markerDebit: 20,
  markerCredit: 21,
  /** On the marker ledger: a deployment this ledger serves (src/deployment.ts), and its confirmation. */
  deployment: 30,
  deploymentBound: 31,
} as const;

/** Remembered in the space's own bounded memo: every event and plan names its users' accounts. */
export function userAccountId(space: IdSpace, ledger: number, userId: string): bigint {
  return space.userAccountIds.get(`${ledger}/${userId}`, () => space.hash("user", ledger, userId));
}

export function userNameAccountId(space: IdSpace, userAccount: bigint): bigint {
  return space.hash("user-name", userAccount);
}

/**
 * System accounts remembered per (purpose, ledger) in the space's bounded memo. Every plan names
 * one, and an HMAC each time was ~3 % of a busy worker's main thread (bench/results, issue 13).
 */
function systemAccountId(
  space: IdSpace,
  purpose: "settlement" | "fee" | "marker-debit" | "marker-credit",
  ledger: number,
): bigint {
  return space.systemAccountIds.get(`${purpose}/${ledger}`, () => space.hash(purpose, ledger));
}

export function settlementAccountId(space: IdSpace, ledger: number): bigint {
  return systemAccountId(space, "settlement", ledger);
}

export function feeAccountId(space: IdSpace, ledger: number): bigint {
  return systemAccountId(space, "fee", ledger);
}

export function markerAccountIds(
  space: IdSpace,
  markerLedger: number,
): { debit: bigint; credit: bigint } {
  return {
    debit: systemAccountId(space, "marker-debit", markerLedger),
    credit: systemAccountId(space, "marker-credit", markerLedger),
  };
}

function account(
  id: bigint,
  ledger: number,
  code: number,
  flags: number,
  data?: Pick<Account, "user_data_128" | "user_data_64" | "user_data_32">,
): Account {
  return {
    id,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: data?.user_data_128 ?? 0n,
    user_data_64: data?.user_data_64 ?? 0n,
    user_data_32: data?.user_data_32 ?? 0,
    reserved: 0,
    ledger,
    code,
    flags,
    timestamp: 0n,
  };
}

/** The user's account and, for a long userId, its name account. */
export function userAccounts(space: IdSpace, ledger: number, userId: string): Account[] {
  const id = userAccountId(space, ledger, userId);
  const { head, tail } = encodeUserId(userId);
  const flags = AccountFlags.debits_must_not_exceed_credits | AccountFlags.history;
  const accounts = [account(id, ledger, AccountCode.user, flags, head)];
  if (tail)
    accounts.push(
      account(userNameAccountId(space, id), ledger, AccountCode.userName, AccountFlags.none, tail),
    );
  return accounts;
}

/** Accounts that exist once per deployment: settlement and fee per currency, the marker pair. */
export function systemAccounts(chart: Chart): Account[] {
  const accounts: Account[] = [];
  for (const currency of chart.currencies) {
    accounts.push(
      account(
        settlementAccountId(chart.space, currency.ledger),
        currency.ledger,
        AccountCode.settlement,
        AccountFlags.none,
      ),
    );
    accounts.push(
      account(
        feeAccountId(chart.space, currency.ledger),
        currency.ledger,
        AccountCode.fee,
        AccountFlags.none,
      ),
    );
  }
  const marker = markerAccountIds(chart.space, chart.markerLedger);
  accounts.push(
    account(marker.debit, chart.markerLedger, AccountCode.markerDebit, AccountFlags.none),
  );
  accounts.push(
    account(marker.credit, chart.markerLedger, AccountCode.markerCredit, AccountFlags.none),
  );
  return accounts;
}

export function currencyByCode(chart: Chart, code: string): Currency | undefined {
  return chart.currencies.find((c) => c.code === code);
}

export function currencyByLedger(chart: Chart, ledger: number): Currency | undefined {
  return chart.currencies.find((c) => c.ledger === ledger);
}
