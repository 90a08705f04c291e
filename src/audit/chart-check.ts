// Whether an account is one the chart of accounts (src/domain/accounts.ts) defines: its id derived
// from what it is, its flags and data as the service creates them. Pure.
import { AccountFlags, type Account } from "tigerbeetle-node";
import {
  AccountCode,
  currencyByLedger,
  feeAccountId,
  markerAccountIds,
  settlementAccountId,
  userAccounts,
  type Chart,
} from "../domain/accounts.ts";
import { decodeUserIdHead, decodeUserIdTail } from "../domain/user-name.ts";

export type AccountKind = "user" | "user_name" | "settlement" | "fee" | "marker" | "deployment";

export type ChartVerdict =
  | { kind: AccountKind; head: { name: string; continued: boolean } | null; tail: string | null }
  | { problem: string };

function sameData(a: Account, b: Account): boolean {
  return (
    a.flags === b.flags &&
    a.user_data_128 === b.user_data_128 &&
    a.user_data_64 === b.user_data_64 &&
    a.user_data_32 === b.user_data_32 &&
    a.code === b.code &&
    a.ledger === b.ledger
  );
}

export function checkAccount(chart: Chart, a: Account): ChartVerdict {
  const currency = currencyByLedger(chart, a.ledger);
  const marker = markerAccountIds(chart.space, chart.markerLedger);
  switch (a.code) {
    case AccountCode.user: {
      if (!currency)
        return { problem: `a user account on ledger ${a.ledger}, which is no configured currency` };
      let head: { head: string; continued: boolean };
      try {
        head = decodeUserIdHead(a);
      } catch {
        return { problem: "a user account whose user_data is no encoded userId" };
      }
      return { kind: "user", head: { name: head.head, continued: head.continued }, tail: null };
    }
    case AccountCode.userName: {
      try {
        return { kind: "user_name", head: null, tail: decodeUserIdTail(a) };
      } catch {
        return { problem: "a user-name account whose user_data is no encoded name" };
      }
    }
    case AccountCode.settlement:
      return currency &&
        a.id === settlementAccountId(chart.space, a.ledger) &&
        a.flags === AccountFlags.none
        ? { kind: "settlement", head: null, tail: null }
        : { problem: "a settlement account that is not the currency's" };
    case AccountCode.fee:
      return currency &&
        a.id === feeAccountId(chart.space, a.ledger) &&
        a.flags === AccountFlags.none
        ? { kind: "fee", head: null, tail: null }
        : { problem: "a fee account that is not the currency's" };
    case AccountCode.markerDebit:
    case AccountCode.markerCredit: {
      const id = a.code === AccountCode.markerDebit ? marker.debit : marker.credit;
      return a.ledger === chart.markerLedger && a.id === id
        ? { kind: "marker", head: null, tail: null }
        : { problem: "a marker account that is not the chart's" };
    }
    case AccountCode.deployment:
    case AccountCode.deploymentBound:
      return a.ledger === chart.markerLedger
        ? { kind: "deployment", head: null, tail: null }
        : { problem: "a deployment record off the marker ledger" };
    default:
      return { problem: `account code ${a.code} is not in the chart of accounts` };
  }
}

/** Whether a user account (with its full userId) is exactly the one the service creates for it. */
export function isChartUserAccount(chart: Chart, a: Account, userId: string): boolean {
  const [expected] = userAccounts(chart.space, a.ledger, userId);
  return expected !== undefined && expected.id === a.id && sameData(expected, a);
}
