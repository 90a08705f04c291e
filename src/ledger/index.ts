// The ledger: open one by driver. Both drivers return tigerbeetle-node's `Client`, with the same
// statuses, result shapes and RequestError codes (see docs/ledger.md).
import { assert } from "../lib/assert.ts";
import { openEmbeddedLedger } from "./embedded.ts";
import type { Ledger, LedgerOptions } from "./port.ts";
import { openThreadedLedger } from "./thread.ts";
import { openTigerBeetleLedger } from "./tigerbeetle.ts";

export type { Ledger, LedgerOptions } from "./port.ts";
export { LedgerBusyError } from "./embedded.ts";
export { LedgerFileError } from "./schema.ts";

export async function openLedger(options: LedgerOptions): Promise<Ledger> {
  switch (options.driver) {
    case "embedded":
      if (options.thread === true) {
        assert(options.clock === undefined, "a ledger on its own thread keeps the wall clock");
        return openThreadedLedger({ path: options.path, ...(options.lockWaitMs !== undefined ? { lockWaitMs: options.lockWaitMs } : {}) });
      }
      return openEmbeddedLedger(options);
    case "tigerbeetle":
      return openTigerBeetleLedger({ clusterId: options.clusterId, addresses: options.addresses });
  }
}
