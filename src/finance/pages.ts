// The finance tools' reads, all through the ledger port and all bounded: pages of at most
// `pageMax` records ordered by ledger timestamp, never past an upper timestamp fixed when the
// tool starts (the cut). Records at or before the cut never change (transfers and balance history
// are append-only), so a tool reads the same books whatever a running service writes meanwhile.
// Nothing here writes. Each call has the ledger's own deadline (ledger.requestTimeoutMs, the
// port opened by openLedger(ledgerOptionsOf(config)) is deadline-wrapped).
import {
  AccountFilterFlags,
  QueryFilterFlags,
  type Account,
  type AccountBalance,
  type Transfer,
} from "tigerbeetle-node";
import { LEDGER_EVENTS_MAX } from "../config/limits.ts";
import type { Ledger } from "../ledger/port.ts";
import { timestampQuery } from "../ledger/queries.ts";
import { assert } from "../lib/assert.ts";

/** The transfer just before `timestamp`, or null. */
export async function transferBefore(ledger: Ledger, timestamp: bigint): Promise<Transfer | null> {
  if (timestamp <= 1n) return null;
  const [t] = await ledger.queryTransfers(
    timestampQuery(0n, timestamp - 1n, 1, QueryFilterFlags.reversed),
  );
  return t ?? null;
}

/** Pages by timestamp: `read(min)` returns up to pageMax records with timestamp ≥ min, ascending. */
async function* byTimestamp<T extends { timestamp: bigint }>(
  from: bigint,
  to: bigint,
  pageMax: number,
  read: (min: bigint) => Promise<T[]>,
): AsyncGenerator<T[]> {
  assert(pageMax > 0 && pageMax <= LEDGER_EVENTS_MAX, "a page holds 1..8189 records");
  for (let min = from < 1n ? 1n : from; min <= to;) {
    const page = await read(min);
    if (page.length > 0) yield page;
    const last = page[page.length - 1];
    if (page.length < pageMax || last === undefined) return;
    min = last.timestamp + 1n;
  }
}

/** Every transfer with from ≤ timestamp ≤ to, ascending. */
export function transferPages(
  ledger: Ledger,
  from: bigint,
  to: bigint,
  pageMax: number,
): AsyncGenerator<Transfer[]> {
  return byTimestamp(from, to, pageMax, (min) =>
    ledger.queryTransfers(timestampQuery(min, to, pageMax, 0)),
  );
}

/** Every account created at or before `to`, ascending by creation. */
export function accountPages(
  ledger: Ledger,
  to: bigint,
  pageMax: number,
): AsyncGenerator<Account[]> {
  return byTimestamp(1n, to, pageMax, (min) =>
    ledger.queryAccounts(timestampQuery(min, to, pageMax, 0)),
  );
}

function accountFilter(
  account: bigint,
  min: bigint,
  max: bigint,
  limit: number,
  reversed: boolean,
) {
  const flags =
    AccountFilterFlags.debits |
    AccountFilterFlags.credits |
    (reversed ? AccountFilterFlags.reversed : 0);
  return {
    account_id: account,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    code: 0,
    timestamp_min: min,
    timestamp_max: max,
    limit,
    flags,
  };
}

/** One account's transfers (either side) with from ≤ timestamp ≤ to, ascending. */
export function accountTransferPages(
  ledger: Ledger,
  account: bigint,
  from: bigint,
  to: bigint,
  pageMax: number,
): AsyncGenerator<Transfer[]> {
  return byTimestamp(from, to, pageMax, (min) =>
    ledger.getAccountTransfers(accountFilter(account, min, to, pageMax, false)),
  );
}

/** One account's balance history (an account with flags.history) with from ≤ timestamp ≤ to, ascending. */
export function accountBalancePages(
  ledger: Ledger,
  account: bigint,
  from: bigint,
  to: bigint,
  pageMax: number,
): AsyncGenerator<AccountBalance[]> {
  return byTimestamp(from, to, pageMax, (min) =>
    ledger.getAccountBalances(accountFilter(account, min, to, pageMax, false)),
  );
}

/** The account's balances right after its last transfer at or before `at` (history), or null when it had none. */
export async function balanceAt(
  ledger: Ledger,
  account: bigint,
  at: bigint,
): Promise<AccountBalance | null> {
  if (at < 1n) return null;
  const [b] = await ledger.getAccountBalances(accountFilter(account, 1n, at, 1, true));
  return b ?? null;
}
