// The ledger: open one by driver. Both drivers return tigerbeetle-node's `Client`, with the same
// statuses, result shapes and RequestError codes (see docs/ledger.md).
import type { Client } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import { DeadlineLedger } from "./deadline.ts";
import { openEmbeddedLedger } from "./embedded.ts";
import { deadlineBackstopMs } from "../config/limits.ts";
import type { Ledger, LedgerOptions } from "./port.ts";
import { openThreadedLedger } from "./thread.ts";
import { openTigerBeetleLedger } from "./tigerbeetle.ts";

export type { Ledger, LedgerOptions } from "./port.ts";
export { LedgerBusyError } from "./embedded.ts";
export {
  DeadlineLedger,
  LedgerRefusedError,
  LedgerTimeoutError,
  LedgerUnavailableError,
  type ReplaceReason,
} from "./deadline.ts";
export { LedgerAddressError } from "./tigerbeetle.ts";
export { LedgerFileError } from "./schema.ts";

export async function openLedger(options: LedgerOptions): Promise<Ledger> {
  const timeoutMs = options.requestTimeoutMs;
  switch (options.driver) {
    case "embedded": {
      const lockWaitMs = options.lockWaitMs ?? timeoutMs;
      let engine: Client;
      if (options.thread === true) {
        assert(options.clock === undefined, "a ledger on its own thread keeps the wall clock");
        engine = await openThreadedLedger({
          path: options.path,
          ...(lockWaitMs !== undefined ? { lockWaitMs } : {}),
          ...(options.pageCacheKib !== undefined ? { pageCacheKib: options.pageCacheKib } : {}),
        });
      } else {
        engine = await openEmbeddedLedger({
          path: options.path,
          ...(options.clock ? { clock: options.clock } : {}),
          ...(lockWaitMs !== undefined ? { lockWaitMs } : {}),
          ...(options.pageCacheKib !== undefined ? { pageCacheKib: options.pageCacheKib } : {}),
        });
      }
      if (timeoutMs === undefined) return engine;
      const backstopMs = Math.max(timeoutMs, lockWaitMs ?? 0) + deadlineBackstopMs;
      return new DeadlineLedger(engine, () => engine, {
        timeoutMs: backstopMs,
        what: `embedded ledger ${options.path}`,
        replaceAfterTimeout: false,
      });
    }
    case "tigerbeetle": {
      const open = () =>
        openTigerBeetleLedger({ clusterId: options.clusterId, addresses: options.addresses });
      if (timeoutMs === undefined) return open();
      const what = `TigerBeetle cluster ${options.clusterId} at ${options.addresses.join(",")}`;
      return new DeadlineLedger(open(), open, { timeoutMs, what, replaceAfterTimeout: true });
    }
  }
}
