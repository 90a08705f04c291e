// Reads of the whole ledger by timestamp through the port, shared by the audit and the finance
// tools: a query filter that matches every record in a timestamp range, and the cut they read up to.
import { QueryFilterFlags, type QueryFilter } from "tigerbeetle-node";
import type { Ledger } from "./port.ts";

/** Every record with timestamp in [timestampMin, timestampMax] (0 = unbounded), up to `limit`. */
export function timestampQuery(
  timestampMin: bigint,
  timestampMax: bigint,
  limit: number,
  flags: number,
): QueryFilter {
  return {
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: timestampMin,
    timestamp_max: timestampMax,
    limit,
    flags,
  };
}

/** The newest transfer's timestamp, 0 for an empty ledger: the cut a tool reads up to. */
export async function newestTransferTimestamp(ledger: Ledger): Promise<bigint> {
  const [newest] = await ledger.queryTransfers(
    timestampQuery(0n, 0n, 1, QueryFilterFlags.reversed),
  );
  return newest?.timestamp ?? 0n;
}
