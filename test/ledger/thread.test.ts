// The embedded engine on its own thread (src/ledger/thread.ts) is the same Client as the engine in
// the caller's thread: same results for the same requests, same input errors, same error classes
// across the thread boundary, destroy() like the native client; and a thread that dies (or runs out
// of the heap it is given) fails every request loudly instead of leaving it waiting. Real SQLite files, real worker threads.
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  ErrorCodes,
  RequestError,
  TransferFlags,
  type Client,
} from "tigerbeetle-node";
import { AssertionError } from "../../src/lib/assert.ts";
import { LedgerBusyError, LedgerFileError, openLedger } from "../../src/ledger/index.ts";
import { openThreadedLedger } from "../../src/ledger/thread.ts";
import { rejection, tempDir } from "./support/drivers.ts";
import { account, accountFilter, queryFilter, transfer } from "./support/events.ts";

let tmp: ReturnType<typeof tempDir>;

beforeEach(() => {
  tmp = tempDir("ledger-thread-");
});
afterEach(() => tmp.remove());

/** Every answer of a mixed session, timestamps replaced by their order (the clocks differ). */
async function session(ledger: Client): Promise<unknown[]> {
  const out: unknown[] = [];
  out.push(
    await ledger.createAccounts([
      account({ id: 1n, flags: AccountFlags.history }),
      account({
        id: 2n,
        flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
      }),
      account({ id: 3n }),
      account({ id: 3n }),
      account({ id: 0n }),
    ]),
  );
  out.push(
    await ledger.createTransfers([
      transfer({ id: 10n, debit_account_id: 1n, credit_account_id: 2n, amount: 500n }),
      transfer({ id: 11n, debit_account_id: 2n, credit_account_id: 1n, amount: 900n }),
      transfer({
        id: 12n,
        debit_account_id: 2n,
        credit_account_id: 3n,
        amount: 100n,
        flags: TransferFlags.linked,
      }),
      transfer({ id: 13n, debit_account_id: 2n, credit_account_id: 9n, amount: 100n }),
      transfer({
        id: 14n,
        debit_account_id: 2n,
        credit_account_id: 1n,
        amount: 200n,
        flags: TransferFlags.pending,
      }),
      transfer({ id: 10n, debit_account_id: 1n, credit_account_id: 2n, amount: 500n }),
    ]),
  );
  out.push(
    await ledger.createTransfers([
      transfer({
        id: 15n,
        pending_id: 14n,
        flags: TransferFlags.post_pending_transfer,
        amount: 200n,
      }),
    ]),
  );
  // Reads made in one turn of the event loop travel together and are answered in order.
  out.push(
    await Promise.all([
      ledger.lookupAccounts([1n, 2n, 3n, 4n]),
      ledger.lookupTransfers([10n, 11n, 14n, 15n]),
      ledger.getAccountBalances(accountFilter({ account_id: 2n })),
      ledger.getAccountTransfers(accountFilter({ account_id: 2n })),
      ledger.queryTransfers(queryFilter({ ledger: 1 })),
      ledger.queryAccounts(queryFilter({ code: 1 })),
    ]),
  );
  const order = new Map<bigint, number>();
  const normalise = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(normalise);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => {
          if (k !== "timestamp" || typeof v !== "bigint" || v === 0n) return [k, normalise(v)];
          if (!order.has(v)) order.set(v, order.size);
          return [k, `t${order.get(v)}`];
        }),
      );
    }
    return value;
  };
  return normalise(out) as unknown[];
}

describe("ledger thread – same client as the engine in this thread", () => {
  it("a mixed session of writes and reads gives the same answers on a thread and in this thread", async () => {
    const here = await openLedger({ driver: "embedded", path: path.join(tmp.dir, "here.db") });
    const there = await openLedger({
      driver: "embedded",
      path: path.join(tmp.dir, "there.db"),
      thread: true,
    });
    try {
      const expected = await session(here);
      expect(await session(there)).toEqual(expected);
      // The session is not trivial: it has refusals among its results.
      const text = JSON.stringify(expected, (_, v: unknown) =>
        typeof v === "bigint" ? v.toString() : v,
      );
      expect(text).toContain(`"status":${CreateTransferStatus.exceeds_credits}`);
      expect(text).toContain(`"status":${CreateTransferStatus.linked_event_failed}`);
    } finally {
      here.destroy();
      there.destroy();
    }
  });

  it("bad input is refused in the caller's thread with the native client's errors", async () => {
    const ledger = await openLedger({
      driver: "embedded",
      path: path.join(tmp.dir, "ledger.db"),
      thread: true,
    });
    try {
      const notArray = await rejection(ledger.createTransfers("no" as never));
      expect(notArray.message).toBe("Array argument must be an [object Array].");
      const tooLarge = await rejection(
        ledger.getAccountBalances(accountFilter({ account_id: 1n, limit: 8190 })),
      );
      expect(tooLarge).toBeInstanceOf(RequestError);
      expect((tooLarge as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
      const badField = await rejection(
        ledger.createAccounts([{ ...account({ id: 1n }), ledger: "1" as never }]),
      );
      expect(badField.message).toBe("ledger must be a number");
    } finally {
      ledger.destroy();
    }
  });

  it("a request that cannot get the write lock rejects with LedgerBusyError across the thread", async () => {
    const file = path.join(tmp.dir, "ledger.db");
    const ledger = await openLedger({
      driver: "embedded",
      path: file,
      lockWaitMs: 100,
      thread: true,
    });
    const other = new Database(file);
    try {
      other.exec("BEGIN IMMEDIATE");
      const error = await rejection(ledger.createAccounts([account({ id: 1n })]));
      expect(error).toBeInstanceOf(LedgerBusyError);
      expect(error.message).toContain("100 ms");
      other.exec("COMMIT");
      expect(await ledger.createAccounts([account({ id: 1n })])).toMatchObject([
        { status: CreateAccountStatus.created },
      ]);
    } finally {
      other.close();
      ledger.destroy();
    }
  });

  it("a file that is not a ledger is refused at open with LedgerFileError naming the path", async () => {
    const file = path.join(tmp.dir, "other.db");
    const db = new Database(file);
    db.exec("CREATE TABLE t (x)");
    db.close();
    const error = await rejection(openLedger({ driver: "embedded", path: file, thread: true }));
    expect(error).toBeInstanceOf(LedgerFileError);
    expect(error.message).toContain(file);
  });

  it("destroy() rejects what is not answered yet and later requests with ERR_CLIENT_CLOSED, and closes the file", async () => {
    const file = path.join(tmp.dir, "ledger.db");
    const ledger = await openLedger({ driver: "embedded", path: file, thread: true });
    await ledger.createAccounts([account({ id: 1n })]);
    const waiting = ledger.lookupAccounts([1n]);
    ledger.destroy();
    for (const error of [await rejection(waiting), await rejection(ledger.lookupAccounts([1n]))]) {
      expect(error).toBeInstanceOf(RequestError);
      expect((error as RequestError).code).toBe(ErrorCodes.ERR_CLIENT_CLOSED);
    }
    // The thread closed the database: a new client opens it and finds what was committed.
    const again = await openLedger({ driver: "embedded", path: file, thread: true });
    expect(await again.lookupAccounts([1n])).toHaveLength(1);
    again.destroy();
  });

  it("a thread that dies fails the waiting request and every later one with an AssertionError", async () => {
    const entry = new URL("./support/dying-thread.mjs", import.meta.url);
    const ledger = await openThreadedLedger({ path: path.join(tmp.dir, "ledger.db"), entry });
    const first = await rejection(ledger.lookupAccounts([1n]));
    expect(first).toBeInstanceOf(AssertionError);
    expect(first.message).toContain("exited unexpectedly (code 7)");
    expect(await rejection(ledger.createAccounts([account({ id: 1n })]))).toBe(first);
    ledger.destroy();
  });

  it("a thread that runs out of its heap fails the waiting request with an AssertionError naming it", async () => {
    const entry = new URL("./support/oom-thread.mjs", import.meta.url);
    const ledger = await openThreadedLedger({ path: path.join(tmp.dir, "ledger.db"), entry });
    const failure = await rejection(ledger.lookupAccounts([1n]));
    expect(failure).toBeInstanceOf(AssertionError);
    expect(failure.message).toContain("ERR_WORKER_OUT_OF_MEMORY");
    expect(await rejection(ledger.lookupAccounts([1n]))).toBe(failure);
    ledger.destroy();
  });
});
