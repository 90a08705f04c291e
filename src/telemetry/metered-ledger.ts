// The ledger port with a stopwatch: every request's latency goes into one histogram, labelled by
// operation and result, and the time of the last answer is kept for /readyz. Every failed request
// is counted by the error it met (a TigerBeetle client code such as ERR_CLIENT_EVICTED, or our
// error's name such as LedgerTimeoutError), and every TigerBeetle client the deadline wrapper
// replaced is counted by why and logged once. It implements the same `Ledger` interface, so the
// worker, the queries and the registry never know it is there.
import { Counter, Histogram, type Registry } from "prom-client";
import { DeadlineLedger, type ReplaceReason } from "../ledger/deadline.ts";
import type { Ledger } from "../ledger/port.ts";
import type { Logger } from "../lib/log.ts";

export const LEDGER_LATENCY_METRIC = "billing_ledger_request_duration_seconds";
export const LEDGER_FAILURES_METRIC = "billing_ledger_request_failures_total";
export const LEDGER_REPLACEMENTS_METRIC = "billing_ledger_client_replacements_total";

/** What a replacement means to an operator, for its log line. */
const REPLACED_BECAUSE: Record<ReplaceReason, string> = {
  timeout:
    "a request passed ledger.requestTimeoutMs; the client may still be working on it, so a new one takes the next request",
  evicted:
    "the cluster evicted this client's session (most often: more clients than the cluster's session limit, docs/operations.md); a new client registers on the next request",
};

/** From 0.5 ms (an embedded SQLite lookup) to 10 s (a TigerBeetle cluster electing a primary). */
const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

type Operation = Exclude<keyof Ledger, "destroy">;
type In<O extends Operation> = Parameters<Ledger[O]>[0];
type Out<O extends Operation> = ReturnType<Ledger[O]>;

/** The account the readiness probe reads. Whether or not it exists, a lookup changes nothing. */
export const PROBE_ACCOUNT_ID = 0xb111_0000_0000_0000_0000_0000_0000_0001n;

export class MeteredLedger implements Ledger {
  /** Date.now() of the last request that returned; 0 before the first. */
  lastAnswerAtMs = 0;
  /** Date.now() of the last request that threw; 0 before the first. */
  lastFailureAtMs = 0;
  lastFailure = "";
  private readonly latency: Histogram<"operation" | "result">;
  private readonly failures: Counter<"operation" | "error">;

  constructor(
    private readonly inner: Ledger,
    registry: Registry,
    log?: Logger,
  ) {
    const existing = registry.getSingleMetric(LEDGER_LATENCY_METRIC);
    this.latency =
      existing instanceof Histogram
        ? existing
        : new Histogram({
            name: LEDGER_LATENCY_METRIC,
            help: "Latency of one ledger request (one batch), by operation and result (ok, error).",
            labelNames: ["operation", "result"],
            buckets: LATENCY_BUCKETS_SECONDS,
            registers: [registry],
          });
    this.failures = counterOf(
      registry,
      LEDGER_FAILURES_METRIC,
      "Ledger requests that failed, by operation and error: a TigerBeetle client code (ERR_CLIENT_EVICTED, ERR_CLIENT_RELEASE_TOO_LOW, ...) or the error's name (LedgerTimeoutError, LedgerBusyError, ...).",
      ["operation", "error"],
    );
    if (inner instanceof DeadlineLedger) {
      const replacements = counterOf(
        registry,
        LEDGER_REPLACEMENTS_METRIC,
        "TigerBeetle clients replaced by a new one, by reason: timeout (a request past ledger.requestTimeoutMs), evicted (the cluster ended the session).",
        ["reason"],
      );
      inner.onReplaced = (reason, what) => {
        replacements.inc({ reason });
        log?.warn({ reason, ledger: what }, `ledger client replaced: ${REPLACED_BECAUSE[reason]}`);
      };
    }
  }

  createAccounts(batch: In<"createAccounts">): Out<"createAccounts"> {
    return this.timed("createAccounts", () => this.inner.createAccounts(batch));
  }
  createTransfers(batch: In<"createTransfers">): Out<"createTransfers"> {
    return this.timed("createTransfers", () => this.inner.createTransfers(batch));
  }
  lookupAccounts(batch: In<"lookupAccounts">): Out<"lookupAccounts"> {
    return this.timed("lookupAccounts", () => this.inner.lookupAccounts(batch));
  }
  lookupTransfers(batch: In<"lookupTransfers">): Out<"lookupTransfers"> {
    return this.timed("lookupTransfers", () => this.inner.lookupTransfers(batch));
  }
  getAccountTransfers(filter: In<"getAccountTransfers">): Out<"getAccountTransfers"> {
    return this.timed("getAccountTransfers", () => this.inner.getAccountTransfers(filter));
  }
  getAccountBalances(filter: In<"getAccountBalances">): Out<"getAccountBalances"> {
    return this.timed("getAccountBalances", () => this.inner.getAccountBalances(filter));
  }
  queryAccounts(filter: In<"queryAccounts">): Out<"queryAccounts"> {
    return this.timed("queryAccounts", () => this.inner.queryAccounts(filter));
  }
  queryTransfers(filter: In<"queryTransfers">): Out<"queryTransfers"> {
    return this.timed("queryTransfers", () => this.inner.queryTransfers(filter));
  }

  destroy(): void {
    this.inner.destroy();
  }

  /** One read that touches no account: proves the ledger answers. */
  async probe(): Promise<void> {
    await this.lookupAccounts([PROBE_ACCOUNT_ID]);
  }

  private async timed<T>(operation: Operation, call: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    try {
      const result = await call();
      this.lastAnswerAtMs = Date.now();
      this.latency.observe({ operation, result: "ok" }, secondsSince(started));
      return result;
    } catch (error) {
      this.lastFailureAtMs = Date.now();
      this.lastFailure = error instanceof Error ? error.message : String(error);
      this.latency.observe({ operation, result: "error" }, secondsSince(started));
      this.failures.inc({ operation, error: errorLabel(error) });
      throw error;
    }
  }
}

/** A bounded label: the client's code when it has one (RequestError), else the error's class name. */
function errorLabel(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code.startsWith("ERR_")) return code;
  return error instanceof Error ? error.name : "unknown";
}

function counterOf<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  return existing instanceof Counter
    ? existing
    : new Counter({ name, help, labelNames, registers: [registry] });
}

function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
