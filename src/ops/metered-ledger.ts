// The ledger port with a stopwatch: every request's latency goes into one histogram, labelled by
// operation and result, and the time of the last answer is kept for /readyz. It implements the
// same `Ledger` interface, so the worker, the queries and the registry never know it is there.
import { Histogram, type Registry } from "prom-client";
import type { Ledger } from "../ledger/port.ts";

export const LEDGER_LATENCY_METRIC = "billing_ledger_request_duration_seconds";

/** From 0.5 ms (an embedded SQLite lookup) to 10 s (a TigerBeetle cluster electing a primary). */
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

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

  constructor(private readonly inner: Ledger, registry: Registry) {
    const existing = registry.getSingleMetric(LEDGER_LATENCY_METRIC);
    this.latency = existing instanceof Histogram ? (existing as Histogram<"operation" | "result">) : new Histogram({
      name: LEDGER_LATENCY_METRIC,
      help: "Latency of one ledger request (one batch), by operation and result (ok, error).",
      labelNames: ["operation", "result"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    });
  }

  createAccounts(batch: In<"createAccounts">): Out<"createAccounts"> { return this.timed("createAccounts", () => this.inner.createAccounts(batch)); }
  createTransfers(batch: In<"createTransfers">): Out<"createTransfers"> { return this.timed("createTransfers", () => this.inner.createTransfers(batch)); }
  lookupAccounts(batch: In<"lookupAccounts">): Out<"lookupAccounts"> { return this.timed("lookupAccounts", () => this.inner.lookupAccounts(batch)); }
  lookupTransfers(batch: In<"lookupTransfers">): Out<"lookupTransfers"> { return this.timed("lookupTransfers", () => this.inner.lookupTransfers(batch)); }
  getAccountTransfers(filter: In<"getAccountTransfers">): Out<"getAccountTransfers"> { return this.timed("getAccountTransfers", () => this.inner.getAccountTransfers(filter)); }
  getAccountBalances(filter: In<"getAccountBalances">): Out<"getAccountBalances"> { return this.timed("getAccountBalances", () => this.inner.getAccountBalances(filter)); }
  queryAccounts(filter: In<"queryAccounts">): Out<"queryAccounts"> { return this.timed("queryAccounts", () => this.inner.queryAccounts(filter)); }
  queryTransfers(filter: In<"queryTransfers">): Out<"queryTransfers"> { return this.timed("queryTransfers", () => this.inner.queryTransfers(filter)); }

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
      throw error;
    }
  }
}

function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
