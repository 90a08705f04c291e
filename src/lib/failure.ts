// What a failure means, decided in one place for every component (worker loop, expiry sweeper,
// dead-letter processor, query server, start-up). Three kinds:
//
// - transient: a dependency is away or slow (ledger busy or past its deadline, the broker
//   unreachable, a NATS request that timed out or found no responder). Retrying the same thing
//   later can succeed without anyone changing anything: the worker naks, the sweeper and the
//   dead-letter processor try again next round, a query answers "unavailable".
// - refused: the ledger refuses this process in a way no retry can get past (a TigerBeetle cluster
//   that evicts our client for its release, or whose batch limit is below our requests). Nothing
//   in our code is wrong and nothing will change by waiting: the process logs one `fatal` line
//   naming it and exits 2 (configuration), for an operator to upgrade or reconfigure.
// - everything else is a bug: an AssertionError, a TypeError, an error nobody named. Retrying it
//   would repeat it forever (and a TypeError after the ledger applied an operation must not become
//   an endless redelivery), so the process logs one `fatal` line and exits with EXIT_BUG.
//
// A poison message (its content is the cause) is neither: the planner answers it as an outcome
// (a dead letter naming the ledger's status), never by throwing.
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError as NatsRequestError,
  TimeoutError as NatsTimeoutError,
} from "@nats-io/transport-node";
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { ErrorCodes, RequestError as LedgerRequestError } from "tigerbeetle-node";
import type { Logger } from "./log.ts";

/** Exit code of a process that met a bug (EX_SOFTWARE in sysexits.h; the query and ops servers used it first). */
export const EXIT_BUG = 70;

/** Exit code of a process the ledger refuses (src/cli/exit-code.ts EXIT_USAGE: retrying cannot help). */
export const EXIT_REFUSED = 2;

/** JetStream's error code for "JetStream system temporarily unavailable" (nats-server JSClusterNotAvailErr). */
export const JETSTREAM_TEMPORARILY_UNAVAILABLE = 10008;

/**
 * Names of the transient ledger errors. By name, not class: errors from the ledger's thread are
 * rebuilt in this one (src/ledger/thread.ts), and these classes live in src/ledger/, which
 * src/lib/ does not import.
 */
const TRANSIENT_NAMES = new Set(["LedgerBusyError", "LedgerTimeoutError", "DeadlineError"]);

/**
 * tigerbeetle-node's request errors that a new attempt can get past: the client was closed (we
 * replace it after a deadline, and destroy it at shutdown) or evicted by the cluster (too many
 * clients; a new one registers again). A release mismatch or too much data is not transient.
 */
const TRANSIENT_LEDGER_CODES = new Set<string>([
  ErrorCodes.ERR_CLIENT_CLOSED,
  ErrorCodes.ERR_CLIENT_EVICTED,
]);

/**
 * tigerbeetle-node's codes that mean the cluster refuses this process for good: its release is too
 * old or too new for the cluster, or a request exceeds the cluster's batch limit
 * (src/ledger/deadline.ts LedgerRefusedError says which, and what to change).
 */
const REFUSED_LEDGER_CODES = new Set<string>([
  ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW,
  ErrorCodes.ERR_CLIENT_RELEASE_TOO_HIGH,
  ErrorCodes.ERR_TOO_MUCH_DATA,
]);

/** The ledger refuses this process: retrying cannot help and no code of ours is wrong (exit 2). */
export function isRefusal(error: unknown): boolean {
  return error instanceof LedgerRequestError && REFUSED_LEDGER_CODES.has(error.code);
}

/**
 * The embedded engine's SQLite failures that leave nothing applied and can pass by themselves: a
 * full disk (docs/operations.md, "The disk is full"), an I/O error, a lock or memory shortage.
 * By name and code: errors from the engine's thread keep both. Corruption is not among them.
 */
const TRANSIENT_SQLITE_CODE = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|NOMEM|PROTOCOL)/;

export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (TRANSIENT_NAMES.has(error.name)) return true;
  if (error.name === "SqliteError")
    return TRANSIENT_SQLITE_CODE.test(String((error as { code?: unknown }).code));
  // Our broker errors say themselves (src/broker/errors.ts): unavailable is, config or connect is not.
  const flagged = (error as { transient?: unknown }).transient;
  if (typeof flagged === "boolean") return flagged;
  if (error instanceof LedgerRequestError) return TRANSIENT_LEDGER_CODES.has(error.code);
  // nats.js: a request that timed out, found no responder or lost its connection; a connection
  // that is closed, draining or failed. All of them are the broker being away.
  // A consumer's delivery interrupted by a status (the server restarting, a consumer re-created)
  // is JetStreamError; a server's answer to an API request (JetStreamApiError) is not transient.
  if (error instanceof JetStreamError) return true;
  // One API answer is the broker being away, not a refusal: a clustered JetStream without a meta
  // leader (an election after a node restart) answers "temporarily unavailable".
  if (error instanceof JetStreamApiError) return error.code === JETSTREAM_TEMPORARILY_UNAVAILABLE;
  return (
    error instanceof NatsRequestError ||
    error instanceof NatsTimeoutError ||
    error instanceof NoRespondersError ||
    error instanceof ConnectionError ||
    error instanceof ClosedConnectionError ||
    error instanceof DrainingConnectionError
  );
}

/**
 * The one way a component ends the process on a failure it cannot retry: one `fatal` line naming
 * where, then exit EXIT_BUG; a ledger that refuses this process (isRefusal) is no bug and exits
 * EXIT_REFUSED instead. pino's default destination writes synchronously, so the line is out first.
 */
export function exitOnBug(log: Logger, error: unknown, where: string): never {
  if (isRefusal(error)) {
    log.fatal(
      { err: error, where, code: (error as LedgerRequestError).code },
      `the ledger refuses this process (in ${where}): ${(error as Error).message}; retrying cannot help, exiting`,
    );
    process.exit(EXIT_REFUSED);
  }
  log.fatal({ err: error, where }, `bug in ${where}; exiting`);
  process.exit(EXIT_BUG);
}

/** Pause between two start-up attempts, doubled per attempt up to the max: quick on a restart, calm on an outage. */
export const startupRetryDelayMinMs = 250;
export const startupRetryDelayMaxMs = 2_000;

export type StartupStep = {
  /** What is being tried, for the log line: "connect to NATS", "streams and consumer", … */
  what: string;
  /** Date.now() after which no new attempt starts: one bound shared by the steps on one dependency. */
  deadlineMs: number;
  /** Fields every attempt's log line carries (the servers, the ledger's addresses). */
  names: Record<string, unknown>;
  log: Logger;
  /** Which failures are worth another attempt; default isTransient. */
  retryable?: (error: unknown) => boolean;
  /** The error thrown once the deadline passed, from the last failure. */
  giveUp: (last: unknown) => Error;
};

/**
 * Runs a start-up step until it succeeds, retrying failures a dependency's restart explains
 * (one `warn` line per failed attempt) until the step's deadline, then throws `giveUp(last)`.
 * Anything else is thrown at once: a refused configuration needs an operator, a bug a fix.
 */
export async function retryStartup<T>(step: StartupStep, attempt: () => Promise<T>): Promise<T> {
  const retryable = step.retryable ?? isTransient;
  let delayMs = startupRetryDelayMinMs;
  for (let n = 1; ; n += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!retryable(error)) throw error;
      const leftMs = step.deadlineMs - Date.now();
      if (leftMs <= 0) throw step.giveUp(error);
      const pauseMs = Math.min(delayMs, leftMs);
      step.log.warn(
        { ...step.names, attempt: n, err: describeFailure(error), retryInMs: pauseMs },
        `start-up: ${step.what} failed; trying again`,
      );
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      delayMs = Math.min(2 * delayMs, startupRetryDelayMaxMs);
    }
  }
}

/**
 * The one description of anything thrown, one line for a log field, an error message, a header or
 * a JSON body: name and message (the name alone when the message is empty), and the cause's when
 * there is one.
 */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause =
    error.cause instanceof Error ? ` (cause: ${error.cause.name}: ${error.cause.message})` : "";
  return `${error.message === "" ? error.name : `${error.name}: ${error.message}`}${cause}`;
}
