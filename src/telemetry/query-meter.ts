// Counts and times the request/reply queries. The query server takes its handlers as an argument,
// so the composition root passes them through wrap() and the query code stays unaware. The counts
// feed both Prometheus and the $SRV.STATS answer of the service description.
import { Histogram, type Registry } from "prom-client";
import { QueryError, type Handler } from "../query/server.ts";

/** One endpoint's numbers in the NATS micro-service STATS shape (durations in nanoseconds). */
export type EndpointStats = {
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
};

/** From 0.5 ms (a balance read from SQLite) to 5 s (the requester's usual timeout). */
const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

type Tally = { requests: number; errors: number; lastError: string; nanos: bigint };

export class QueryMeter {
  private readonly tallies = new Map<string, Tally>();
  private readonly latency: Histogram<"query" | "result">;

  constructor(registry: Registry) {
    this.latency = new Histogram({
      name: "billing_query_duration_seconds",
      help: "Time to answer one query, by query (balance, operation, hold) and result: ok, invalid (the request was refused with an error reply), error (the ledger or the events stream failed).",
      labelNames: ["query", "result"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    });
  }

  /** The same handlers, each counted and timed under its subject. */
  wrap(handlers: Record<string, Handler>): Record<string, Handler> {
    return Object.fromEntries(
      Object.entries(handlers).map(([subject, handler]) => [subject, this.timed(subject, handler)]),
    );
  }

  endpointStats(subject: string): EndpointStats {
    const t = this.tallies.get(subject);
    if (t === undefined)
      return {
        num_requests: 0,
        num_errors: 0,
        last_error: "",
        processing_time: 0,
        average_processing_time: 0,
      };
    const total = Number(t.nanos);
    return {
      num_requests: t.requests,
      num_errors: t.errors,
      last_error: t.lastError,
      processing_time: total,
      average_processing_time: t.requests === 0 ? 0 : Math.round(total / t.requests),
    };
  }

  private timed(subject: string, handler: Handler): Handler {
    const tally: Tally = { requests: 0, errors: 0, lastError: "", nanos: 0n };
    this.tallies.set(subject, tally);
    const query = queryName(subject);
    return async (deps, body) => {
      const started = process.hrtime.bigint();
      let result = "ok";
      try {
        return await handler(deps, body);
      } catch (error) {
        result = error instanceof QueryError ? "invalid" : "error";
        tally.errors += 1;
        tally.lastError =
          error instanceof QueryError
            ? `${error.code}: ${error.message}`
            : error instanceof Error
              ? error.message
              : String(error);
        throw error;
      } finally {
        const elapsed = process.hrtime.bigint() - started;
        tally.requests += 1;
        tally.nanos += elapsed;
        this.latency.observe({ query, result }, Number(elapsed) / 1e9);
      }
    };
  }
}

/** billing.query.balance → balance. */
export function queryName(subject: string): string {
  return subject.slice(subject.lastIndexOf(".") + 1);
}
