// Proves the one classification every component uses: the named transient failures (ledger busy
// or past its deadline, broker away, a NATS request or connection failure, a TigerBeetle client
// closed or evicted) are retried; everything else (an assertion, a TypeError, an unnamed Error, a
// refused configuration) is not. And the start-up retry: transient failures are retried with one
// log line each until the deadline, then the step's own error; anything else is thrown at once.
import {
  ConnectionError,
  NoRespondersError,
  RequestError as NatsRequestError,
  TimeoutError as NatsTimeoutError,
} from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";
import { ErrorCodes, RequestError as LedgerRequestError } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import {
  BrokerConfigError,
  BrokerConnectError,
  BrokerUnavailableError,
} from "../../src/broker/errors.ts";
import {
  LedgerBusyError,
  LedgerTimeoutError,
  LedgerUnavailableError,
} from "../../src/ledger/index.ts";
import { fromWire, toWire } from "../../src/ledger/thread.ts";
import { AssertionError } from "../../src/lib/assert.ts";
import { isTransient, retryStartup } from "../../src/lib/failure.ts";
import { createLogger } from "../../src/lib/log.ts";
import { DeadlineError } from "../../src/lib/deadline.ts";

/** What better-sqlite3 throws: a SqliteError with the SQLite result code. */
function sqliteError(code: string): Error {
  return Object.assign(new Error(`sqlite says ${code}`), { name: "SqliteError", code });
}

describe("failure – isTransient", () => {
  it("the named transient failures are transient", () => {
    const transient = [
      new LedgerBusyError("busy"),
      new LedgerTimeoutError("late"),
      fromWire(toWire(new LedgerBusyError("busy on the ledger's thread"))),
      new BrokerUnavailableError("away"),
      new NatsRequestError("connection disconnected"),
      new NatsTimeoutError(),
      new NoRespondersError("$JS.API.INFO"),
      new ConnectionError("connection refused"),
      new DeadlineError("the readiness check", 100),
      new LedgerRequestError(ErrorCodes.ERR_CLIENT_CLOSED),
      new LedgerRequestError(ErrorCodes.ERR_CLIENT_EVICTED),
      sqliteError("SQLITE_FULL"),
      sqliteError("SQLITE_IOERR_WRITE"),
      fromWire(toWire(sqliteError("SQLITE_FULL"))),
      // A clustered JetStream during a meta-leader election (a node restart): the broker is away.
      new JetStreamApiError({
        err_code: 10008,
        code: 503,
        description: "JetStream system temporarily unavailable",
      }),
    ];
    for (const error of transient)
      expect([error.name, isTransient(error)]).toEqual([error.name, true]);
  });

  it("bugs, refused configurations and unnamed errors are not transient", () => {
    const notTransient: unknown[] = [
      new AssertionError("an invariant broke"),
      new TypeError("x is undefined"),
      new Error("something"),
      new BrokerConfigError("stream refused"),
      new BrokerConnectError("cannot connect", ["nats://127.0.0.1:1"]),
      new LedgerUnavailableError("gave up at start-up"),
      new LedgerRequestError(ErrorCodes.ERR_TOO_MUCH_DATA),
      new LedgerRequestError(ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW),
      new JetStreamApiError({ err_code: 10059, code: 404, description: "stream not found" }),
      sqliteError("SQLITE_CORRUPT"),
      "a string",
      null,
    ];
    for (const error of notTransient)
      expect([String(error), isTransient(error)]).toEqual([String(error), false]);
  });
});

describe("failure – start-up retry", () => {
  const log = createLogger("silent");

  it("a transient failure is retried until the step succeeds", async () => {
    let calls = 0;
    const value = await retryStartup(
      {
        what: "x",
        deadlineMs: Date.now() + 5_000,
        names: {},
        log,
        giveUp: () => new Error("gave up"),
      },
      async () => {
        calls += 1;
        if (calls < 3) throw new BrokerUnavailableError("away");
        return 42;
      },
    );
    expect({ value, calls }).toEqual({ value: 42, calls: 3 });
  });

  it("past the deadline the step's own error is thrown, naming the last failure", async () => {
    const started = Date.now();
    const error = await retryStartup(
      {
        what: "x",
        deadlineMs: Date.now() + 600,
        names: {},
        log,
        giveUp: (last) => new Error(`gave up: ${(last as Error).message}`),
      },
      () => Promise.reject(new LedgerTimeoutError("late")),
    ).catch((e: unknown) => e as Error);
    expect(error.message).toBe("gave up: late");
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("a failure that is not retryable is thrown at once", async () => {
    let calls = 0;
    const error = await retryStartup(
      {
        what: "x",
        deadlineMs: Date.now() + 5_000,
        names: {},
        log,
        giveUp: () => new Error("gave up"),
      },
      () => {
        calls += 1;
        return Promise.reject(new TypeError("bug"));
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(calls).toBe(1);
  });
});
