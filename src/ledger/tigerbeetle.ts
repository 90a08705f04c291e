// The TigerBeetle adapter: the real client, unchanged. Creating it does not contact the cluster;
// requests never time out (the client retries forever), so callers bound them themselves.
import { createClient, type Client } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";

/**
 * tigerbeetle-node refused the replica addresses when the client was created: one it cannot parse
 * (it takes a port, or an IPv4 or [IPv6] address with a port: no host names) or more than a
 * cluster's replicas. Retrying cannot help: exit 2, naming them.
 */
export class LedgerAddressError extends Error {
  override name = "LedgerAddressError";
}

/** What createClient throws (a plain Error, no code) for addresses it refuses, in 0.17.9. */
const REFUSED_ADDRESSES = /replica address/i;

export function openTigerBeetleLedger(options: { clusterId: bigint; addresses: string[] }): Client {
  assert(options.addresses.length > 0, "a TigerBeetle ledger needs at least one replica address");
  try {
    return createClient({ cluster_id: options.clusterId, replica_addresses: options.addresses });
  } catch (error) {
    if (!(error instanceof Error) || !REFUSED_ADDRESSES.test(error.message)) throw error;
    throw new LedgerAddressError(
      `TigerBeetle cluster ${options.clusterId} at ${options.addresses.join(",")}: the client refuses these addresses: ${error.message} ` +
        "(ledger.tigerbeetle.addresses / TB_ADDRESSES: each a port, or an IPv4 or [IPv6] address with a port, no host names; at most 6)",
      { cause: error },
    );
  }
}
