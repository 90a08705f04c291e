// The TigerBeetle adapter: the real client, unchanged. Creating it does not contact the cluster;
// requests never time out (the client retries forever), so callers bound them themselves.
import { createClient, type Client } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";

export function openTigerBeetleLedger(options: { clusterId: bigint; addresses: string[] }): Client {
  assert(options.addresses.length > 0, "a TigerBeetle ledger needs at least one replica address");
  return createClient({ cluster_id: options.clusterId, replica_addresses: options.addresses });
}
