// The `billing` command's exit codes, decided in one place for every verb:
//   0 done;
//   1 rejected or a finding: a command the service rejected, a conflict (the operationId belongs
//     to another command), an audit discrepancy, a refused dead-letter replay;
//   2 usage or configuration: bad arguments, a bad config or credentials, a ledger file or
//     deployment that does not match, TigerBeetle addresses the client refuses, a TigerBeetle
//     cluster that refuses this client's release; retrying the same thing cannot help;
//   3 unavailable: the broker unreachable, no service answered, a request or the ledger past its
//     deadline, a command stored whose event did not come in time; the same call may succeed later.
// Anything else is a bug: its stack is printed and the process exits EXIT_BUG (70).
import {
  AuthorizationError,
  PermissionViolationError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import {
  BillingClientError,
  ConflictError,
  EventTimeoutError,
  InvalidCallError,
  UnavailableError,
} from "@billing-ledger/client";
import { BrokerConfigError, BrokerConnectError, BrokerUnavailableError } from "../broker/errors.ts";
import { ConfigError } from "../config/load.ts";
import { DeploymentError } from "../deployment.ts";
import { LedgerUnavailableError } from "../ledger/deadline.ts";
import { LedgerFileError } from "../ledger/schema.ts";
import { LedgerAddressError } from "../ledger/tigerbeetle.ts";
import { isRefusal, isTransient } from "../lib/failure.ts";

export const EXIT_DONE = 0;
export const EXIT_REJECTED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNAVAILABLE = 3;

/** A verb's arguments are wrong; the message says what, without the verb (main prefixes it once). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The exit code an error means, or null for an error nobody named (a bug). */
export function exitCodeOf(error: unknown): number | null {
  if (error instanceof ConflictError) return EXIT_REJECTED;
  if (
    error instanceof UnavailableError ||
    error instanceof EventTimeoutError ||
    error instanceof LedgerUnavailableError ||
    error instanceof BrokerUnavailableError
  )
    return EXIT_UNAVAILABLE;
  // A first connection that failed: the broker away (3), or its refusal of our credentials (2).
  if (error instanceof BrokerConnectError)
    return refusedLogin(error) ? EXIT_USAGE : EXIT_UNAVAILABLE;
  if (
    error instanceof UsageError ||
    error instanceof ConfigError ||
    error instanceof DeploymentError ||
    error instanceof LedgerFileError ||
    error instanceof InvalidCallError ||
    error instanceof BrokerConfigError ||
    error instanceof BillingClientError ||
    error instanceof LedgerAddressError ||
    isRefusal(error)
  )
    return EXIT_USAGE;
  if (isTransient(error) || isRefusedSocket(error)) return EXIT_UNAVAILABLE;
  return null;
}

function refusedLogin(error: Error): boolean {
  for (
    let e: unknown = error, depth = 0;
    e instanceof Error && depth < 8;
    e = e.cause, depth += 1
  ) {
    if (
      e instanceof AuthorizationError ||
      e instanceof UserAuthenticationExpiredError ||
      e instanceof PermissionViolationError
    )
      return true;
  }
  return false;
}

/** A socket error (the ledger's TCP connection refused or timed out) from below any of our classes. */
function isRefusedSocket(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /CONNECTION_REFUSED|ECONNREFUSED|TIMEOUT/i.test(code);
}
