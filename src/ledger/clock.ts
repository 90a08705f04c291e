// The ledger's clock, as the service reads it: TigerBeetle keeps time itself and issues every
// transfer's timestamp, so "now" for hold expiry is a timestamp the ledger has issued, never the
// wall clock. Used by the expiry sweeper (which holds are due), the hold query and event recovery.
import { CreateTransferStatus as S, QueryFilterFlags } from "tigerbeetle-node";
import { clockProbe } from "../domain/expiry.ts";
import { assert } from "../lib/assert.ts";
import type { Ledger } from "./port.ts";

/**
 * The ledger's current time: the slot it assigns to a transfer it refuses (id 0 is invalid). A
 * write (an fsync, and every other process's account cache is invalidated): the sweeper takes it
 * at most once per sweep, only when a hold is due by the wall clock but not yet by ledgerIssued.
 */
export async function ledgerNow(ledger: Ledger): Promise<bigint> {
  const [result] = await ledger.createTransfers([clockProbe()]);
  assert(
    result !== undefined && result.status === S.id_must_not_be_zero,
    "the clock probe is refused as id_must_not_be_zero",
  );
  return result.timestamp;
}

/**
 * A read-only lower bound of the ledger's clock: the newest transfer's timestamp (0 on an empty
 * ledger), which the ledger has issued, so every later ledger event is past it. Any transfer will
 * do, whoever wrote it: a timestamp issued is issued. One reversed query with an all-zero filter
 * (TigerBeetle's query_transfers matches everything then); the embedded engine answers it from the
 * end of the transfers table's timestamp key.
 */
export async function ledgerIssued(ledger: Ledger): Promise<bigint> {
  const [newest] = await ledger.queryTransfers({
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 1,
    flags: QueryFilterFlags.reversed,
  });
  return newest?.timestamp ?? 0n;
}
