// A deadline on every ledger request, for both drivers, in one place: the port with a timer.
//
// tigerbeetle-node never gives up on a request: its client retries until the cluster answers, so
// a cluster without quorum (or addresses that never answer) would hold a batch, and the worker's
// heartbeats would keep it leased, forever. Past `requestTimeoutMs` the caller gets a
// LedgerTimeoutError (transient: the worker naks the batch) instead.
//
// The request itself cannot be cancelled and may still commit later; the ids make that safe (a
// retry finds it `exists`). But the client is no longer known to be idle: a TigerBeetle client
// runs one request at a time and queues the rest behind the one that hangs. So after a timeout
// the TigerBeetle client is destroyed (its pending requests reject with ERR_CLIENT_CLOSED, which
// is transient too) and a fresh one is created on the next request. Creating a client does not
// contact the cluster, so replacing one is cheap. An eviction (ERR_CLIENT_EVICTED: the cluster
// dropped this session, most often for a newer one when more clients than its session limit
// registered; docs/reference/sessions.md in tigerbeetle) is answered the same way: an evicted
// client never runs another request, a new one registers a new session.
//
// Three answers no new client can get past, because they are about this process, not the moment:
// the cluster evicting us for a release it does not accept (ERR_CLIENT_RELEASE_TOO_LOW / _HIGH:
// tigerbeetle-node must be upgraded or downgraded to match the cluster), and a request larger than
// the cluster's batch limit (ERR_TOO_MUCH_DATA: a cluster built with a smaller message size). They
// reject as LedgerRefusedError, the same RequestError with the same code, its message naming the
// cluster and what to change; src/lib/failure.ts makes them exit 2, not a retry loop.
//
// The embedded engine bounds its own wait for another process's write lock (LedgerBusyError,
// src/ledger/embedded.ts); here it gets a backstop a little later, for a request that runs rather
// than waits too long. Its engine is not replaced: requests there run in order and each gives up
// by itself, so nothing stays stuck behind one that timed out.
import { ErrorCodes, RequestError, type Client } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import type { Ledger } from "./port.ts";

/** A ledger request that did not answer within its deadline: transient, try again later. */
export class LedgerTimeoutError extends Error {
  override name = "LedgerTimeoutError";
}

/** The ledger did not answer at start-up within ledger.startupWaitMs: exit 3 (unavailable), naming it. */
export class LedgerUnavailableError extends Error {
  override name = "LedgerUnavailableError";
}

/** tigerbeetle-node's codes that no retry and no new client can get past, with what to change. */
const REFUSALS: Partial<Record<ErrorCodes, string>> = {
  [ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW]:
    "the cluster evicted this client: its tigerbeetle-node release is older than the cluster accepts; upgrade the service's tigerbeetle-node to the cluster's release",
  [ErrorCodes.ERR_CLIENT_RELEASE_TOO_HIGH]:
    "the cluster evicted this client: its tigerbeetle-node release is newer than the cluster's; upgrade the cluster first (or pin tigerbeetle-node to the cluster's release)",
  [ErrorCodes.ERR_TOO_MUCH_DATA]:
    "a request is larger than the cluster's batch limit; lower worker.batchMessagesMax (the cluster runs with a smaller message size than the default)",
};

/**
 * The cluster refuses this process in a way no retry can get past (REFUSALS above). A RequestError
 * with the client's code, so callers that match codes see what tigerbeetle-node throws.
 */
export class LedgerRefusedError extends RequestError {
  override name = "LedgerRefusedError";
  constructor(code: ErrorCodes, what: string) {
    super(code);
    this.message = `${what}: ${REFUSALS[code] ?? code} (${code})`;
  }
}

/** Why a client was replaced: a request past its deadline, or the cluster evicted its session. */
export type ReplaceReason = "timeout" | "evicted";

export type DeadlineOptions = {
  /** Bound on one request, from the call to its answer. */
  timeoutMs: number;
  /** What the ledger is, for error messages: "TigerBeetle cluster 0 at 3000" or the file path. */
  what: string;
  /** Destroy the client after a timeout or an eviction and open a new one on the next request. */
  replaceAfterTimeout: boolean;
};

type Operation = Exclude<keyof Ledger, "destroy">;
type In<O extends Operation> = Parameters<Ledger[O]>[0];
type Out<O extends Operation> = ReturnType<Ledger[O]>;

/**
 * Each operation's call, made once: a closure made per request loses its optimized code at every
 * full GC and is compiled again (V8 keeps that code only while a closure holding it lives).
 */
const CALLS = {
  createAccounts: (c: Client, batch: In<"createAccounts">) => c.createAccounts(batch),
  createTransfers: (c: Client, batch: In<"createTransfers">) => c.createTransfers(batch),
  lookupAccounts: (c: Client, batch: In<"lookupAccounts">) => c.lookupAccounts(batch),
  lookupTransfers: (c: Client, batch: In<"lookupTransfers">) => c.lookupTransfers(batch),
  getAccountTransfers: (c: Client, filter: In<"getAccountTransfers">) =>
    c.getAccountTransfers(filter),
  getAccountBalances: (c: Client, filter: In<"getAccountBalances">) => c.getAccountBalances(filter),
  queryAccounts: (c: Client, filter: In<"queryAccounts">) => c.queryAccounts(filter),
  queryTransfers: (c: Client, filter: In<"queryTransfers">) => c.queryTransfers(filter),
} satisfies { [O in Operation]: (c: Client, input: In<O>) => Out<O> };

export class DeadlineLedger implements Ledger {
  private current: Client | null;
  private destroyed = false;
  /** Clients replaced after a timeout or an eviction, for tests and logs. */
  replaced = 0;
  /** Told of every replacement (the metering decorator counts and logs them); at most one listener. */
  onReplaced: ((reason: ReplaceReason, what: string) => void) | null = null;

  constructor(
    first: Client,
    private readonly open: () => Client,
    private readonly options: DeadlineOptions,
  ) {
    assert(
      Number.isInteger(options.timeoutMs) && options.timeoutMs > 0,
      "a ledger deadline is a positive number of milliseconds",
    );
    this.current = first;
  }

  createAccounts(batch: In<"createAccounts">): Out<"createAccounts"> {
    return this.bounded("createAccounts", CALLS.createAccounts, batch);
  }
  createTransfers(batch: In<"createTransfers">): Out<"createTransfers"> {
    return this.bounded("createTransfers", CALLS.createTransfers, batch);
  }
  lookupAccounts(batch: In<"lookupAccounts">): Out<"lookupAccounts"> {
    return this.bounded("lookupAccounts", CALLS.lookupAccounts, batch);
  }
  lookupTransfers(batch: In<"lookupTransfers">): Out<"lookupTransfers"> {
    return this.bounded("lookupTransfers", CALLS.lookupTransfers, batch);
  }
  getAccountTransfers(filter: In<"getAccountTransfers">): Out<"getAccountTransfers"> {
    return this.bounded("getAccountTransfers", CALLS.getAccountTransfers, filter);
  }
  getAccountBalances(filter: In<"getAccountBalances">): Out<"getAccountBalances"> {
    return this.bounded("getAccountBalances", CALLS.getAccountBalances, filter);
  }
  queryAccounts(filter: In<"queryAccounts">): Out<"queryAccounts"> {
    return this.bounded("queryAccounts", CALLS.queryAccounts, filter);
  }
  queryTransfers(filter: In<"queryTransfers">): Out<"queryTransfers"> {
    return this.bounded("queryTransfers", CALLS.queryTransfers, filter);
  }

  destroy(): void {
    this.destroyed = true;
    this.current?.destroy();
    this.current = null;
  }

  private client(): Client {
    if (this.destroyed) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
    this.current ??= this.open();
    return this.current;
  }

  /** Retires `client` if it is still the current one; the next request opens a new one. */
  private retire(client: Client, reason: ReplaceReason): void {
    if (!this.options.replaceAfterTimeout || this.current !== client) return;
    this.current = null;
    this.replaced += 1;
    client.destroy();
    this.onReplaced?.(reason, this.options.what);
  }

  private bounded<I, T>(
    operation: Operation,
    call: (client: Client, input: I) => Promise<T>,
    input: I,
  ): Promise<T> {
    let client: Client;
    try {
      client = this.client();
    } catch (error) {
      return Promise.reject(error);
    }
    const { timeoutMs, what } = this.options;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new LedgerTimeoutError(
            `ledger ${operation} did not answer within ${timeoutMs} ms (${what})`,
          ),
        );
        this.retire(client, "timeout");
      }, timeoutMs);
      call(client, input).then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (error instanceof RequestError && error.code === ErrorCodes.ERR_CLIENT_EVICTED)
            this.retire(client, "evicted");
          const refused =
            error instanceof RequestError &&
            !(error instanceof LedgerRefusedError) &&
            REFUSALS[error.code] !== undefined;
          reject(refused ? new LedgerRefusedError(error.code, what) : error);
        },
      );
    });
  }
}
