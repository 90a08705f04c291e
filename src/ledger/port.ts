// The ledger port: exactly the tigerbeetle-node `Client` surface. The service depends on this type
// only; the embedded engine and the TigerBeetle adapter both implement it.
import type { AccountBalance, Client } from "tigerbeetle-node";

export type Ledger = Client;

/** An account's four totals, as an account and each row of its balance history carry them. */
export type Balances = Omit<AccountBalance, "timestamp">;

export type LedgerOptions =
  | {
      driver: "embedded";
      /** SQLite database file; created when missing, refused when it is not a ledger. */
      path: string;
      /** Wall time in nanoseconds. Tests pass a fake clock to drive hold timeouts. */
      clock?: () => bigint;
      /**
       * How long a request may wait for another process's write lock before it rejects with
       * LedgerBusyError (transient). Default 10,000 ms (src/config/limits.ts lockWaitTotalMs).
       */
      lockWaitMs?: number;
      /**
       * Run the engine on a worker thread (src/ledger/thread.ts): the same Client, with the
       * SQLite work off the caller's event loop. Not with a `clock` (a function cannot cross).
       */
      thread?: boolean;
      /** SQLite's page cache of the connection (KiB); default sqliteCacheKib (src/config/limits.ts). */
      pageCacheKib?: number;
      /**
       * Deadline on every request (src/ledger/deadline.ts); also the default lockWaitMs, so the
       * engine's own LedgerBusyError comes first. None when absent (tests of the engine itself).
       */
      requestTimeoutMs?: number;
    }
  | {
      driver: "tigerbeetle";
      clusterId: bigint;
      addresses: string[];
      /** Deadline on every request; after one passes, the client is replaced (src/ledger/deadline.ts). */
      requestTimeoutMs?: number;
    };
