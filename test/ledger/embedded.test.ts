// Proves the embedded engine's own contract, beyond TigerBeetle's semantics: which files it opens,
// creates or refuses (naming the path, never touching a file that is not a ledger), with the page
// cache it was given; that batches over 8189 events are refused whole; that destroy() closes it
// like the real client; that it waits for another process's write lock within a bound and then
// fails transiently; that expiries take timestamps of their own; and that timestamps increase
// strictly across processes sharing a file.
// Everything runs on real SQLite files in temp directories, and real child processes.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CreateAccountStatus,
  CreateTransferStatus,
  ErrorCodes,
  RequestError,
  TransferFlags,
} from "tigerbeetle-node";
import {
  LedgerBusyError,
  LedgerFileError,
  openLedger,
  type Ledger,
} from "../../src/ledger/index.ts";
import { sqliteCacheKib } from "../../src/config/limits.ts";
import { AssertionError } from "../../src/lib/assert.ts";
import { formatVersion, openLedgerDatabase } from "../../src/ledger/schema.ts";
import { account, transfer } from "./support/events.ts";
import { fakeClock, fakeClockStartNs, rejection, tempDir } from "./support/drivers.ts";

let tmp: ReturnType<typeof tempDir>;
let file: string;

beforeEach(() => {
  tmp = tempDir("ledger-embedded-");
  file = path.join(tmp.dir, "ledger.db");
});
afterEach(() => tmp.remove());

describe("ledger embedded – files", () => {
  it("the connection's page cache is the size asked for (KiB), the default sqliteCacheKib, and a non-positive size is refused", () => {
    const asked = openLedgerDatabase(file, 2_048);
    expect(asked.pragma("cache_size", { simple: true })).toBe(-2_048n);
    asked.close();
    const byDefault = openLedgerDatabase(file);
    expect(byDefault.pragma("cache_size", { simple: true })).toBe(BigInt(-sqliteCacheKib));
    byDefault.close();
    expect(() => openLedgerDatabase(file, 0)).toThrow(AssertionError);
  });

  it("a missing file is created as an empty ledger", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    expect(await ledger.createAccounts([account({ id: 1n })])).toMatchObject([
      { status: CreateAccountStatus.created },
    ]);
    ledger.destroy();
    const again = await openLedger({ driver: "embedded", path: file });
    expect(await again.lookupAccounts([1n])).toHaveLength(1);
    again.destroy();
  });

  it("an empty file is created as an empty ledger", async () => {
    fs.writeFileSync(file, "");
    const ledger = await openLedger({ driver: "embedded", path: file });
    expect(await ledger.lookupAccounts([1n])).toEqual([]);
    ledger.destroy();
  });

  it("a file that is not SQLite is refused, naming the path, and left as it was", async () => {
    fs.writeFileSync(
      file,
      "not a database, just some words that fill more than one header of bytes ".repeat(20),
    );
    const before = fs.readFileSync(file);
    const error = await rejection(openLedger({ driver: "embedded", path: file }));
    expect(error).toBeInstanceOf(LedgerFileError);
    expect(error.message).toContain(file);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it("another application's SQLite database is refused and left as it was", async () => {
    const other = new Database(file);
    other.exec(
      "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER); INSERT INTO invoices VALUES (1, 100);",
    );
    other.close();
    const before = fs.readFileSync(file);
    const error = await rejection(openLedger({ driver: "embedded", path: file }));
    expect(error).toBeInstanceOf(LedgerFileError);
    expect(error.message).toContain(file);
    expect(error.message).toContain("not a ledger");
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it("a ledger whose header is damaged is refused, naming the path", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    await ledger.createAccounts([account({ id: 1n })]);
    ledger.destroy();
    const fd = fs.openSync(file, "r+");
    fs.writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 0);
    fs.closeSync(fd);
    const error = await rejection(openLedger({ driver: "embedded", path: file }));
    expect(error).toBeInstanceOf(LedgerFileError);
    expect(error.message).toContain(file);
  });

  it("a ledger whose schema pages are damaged is refused, naming the path", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    await ledger.createAccounts([account({ id: 1n })]);
    ledger.destroy();
    const fd = fs.openSync(file, "r+");
    fs.writeSync(fd, Buffer.alloc(3000, 0xff), 0, 3000, 100);
    fs.closeSync(fd);
    const error = await rejection(openLedger({ driver: "embedded", path: file }));
    expect(error).toBeInstanceOf(LedgerFileError);
    expect(error.message).toContain(file);
  });

  it("a ledger written by a newer format version is refused", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    ledger.destroy();
    const db = new Database(file);
    db.prepare("UPDATE meta SET version = ?").run(formatVersion + 1);
    db.close();
    const error = await rejection(openLedger({ driver: "embedded", path: file }));
    expect(error).toBeInstanceOf(LedgerFileError);
    expect(error.message).toContain(`version ${formatVersion + 1}`);
  });
});

describe("ledger embedded – requests", () => {
  let ledger: Ledger;
  const clock = fakeClock();

  beforeEach(async () => {
    ledger = await openLedger({ driver: "embedded", path: file, clock: clock.now });
  });
  afterEach(() => ledger.destroy());

  it("8190 events are refused whole with ERR_TOO_MUCH_DATA, and 8189 are accepted", async () => {
    const events = Array.from({ length: 8190 }, (_, i) => account({ id: BigInt(i + 1) }));
    const error = await rejection(ledger.createAccounts(events));
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    expect(await ledger.lookupAccounts([1n, 8190n])).toEqual([]);
    const results = await ledger.createAccounts(events.slice(0, 8189));
    expect(results.filter((r) => r.status === CreateAccountStatus.created)).toHaveLength(8189);
    expect(
      (await rejection(ledger.lookupAccounts(events.map((a) => a.id)))) as RequestError,
    ).toMatchObject({ code: ErrorCodes.ERR_TOO_MUCH_DATA });
  });

  it("after destroy every request, including ones already queued, rejects with ERR_CLIENT_CLOSED", async () => {
    const queued = [
      ledger.createAccounts([account({ id: 1n })]),
      ledger.lookupAccounts([1n]),
      ledger.createAccounts([account({ id: 2n })]),
    ];
    ledger.destroy();
    for (const pending of queued) {
      expect(await rejection(pending)).toMatchObject({ code: ErrorCodes.ERR_CLIENT_CLOSED });
    }
    expect(await rejection(ledger.lookupTransfers([1n]))).toMatchObject({
      code: ErrorCodes.ERR_CLIENT_CLOSED,
    });
    ledger.destroy();
  });

  it("each expiry takes its own timestamp: the next request's slots come after them", async () => {
    await ledger.createAccounts([account({ id: 1n }), account({ id: 2n })]);
    const pending = [1n, 2n, 3n].map((id) =>
      transfer({
        id,
        debit_account_id: 1n,
        credit_account_id: 2n,
        amount: 5n,
        flags: TransferFlags.pending,
        timeout: 1,
      }),
    );
    await ledger.createTransfers(pending);
    clock.advance(2_000_000_000n);
    const now = clock.now();
    const [result] = await ledger.createTransfers([
      transfer({ id: 9n, debit_account_id: 1n, credit_account_id: 2n, amount: 1n }),
    ]);
    // The expiries take now, now + 1 and now + 2; the request's p0 is now + 3, its first slot now + 4.
    expect(result).toEqual({ timestamp: now + 4n, status: CreateTransferStatus.created });
    expect(await ledger.lookupAccounts([1n])).toMatchObject([
      { debits_pending: 0n, debits_posted: 1n },
    ]);
  });
});

describe("ledger embedded – the write lock", () => {
  it("a request waits for another process's write lock and then succeeds", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file, lockWaitMs: 30_000 });
    const other = new Database(file);
    other.exec("BEGIN IMMEDIATE");
    const waiting = ledger.createAccounts([account({ id: 1n })]);
    setTimeout(() => other.exec("COMMIT"), 200);
    expect(await waiting).toMatchObject([{ status: CreateAccountStatus.created }]);
    other.close();
    ledger.destroy();
  });

  it("a request that cannot get the write lock within lockWaitMs rejects with LedgerBusyError, and the next one works", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file, lockWaitMs: 100 });
    const other = new Database(file);
    other.exec("BEGIN IMMEDIATE");
    const error = await rejection(ledger.createAccounts([account({ id: 1n })]));
    expect(error).toBeInstanceOf(LedgerBusyError);
    expect(error.message).toContain("100 ms");
    other.exec("COMMIT");
    other.close();
    expect(await ledger.createAccounts([account({ id: 1n })])).toMatchObject([
      { status: CreateAccountStatus.created },
    ]);
    ledger.destroy();
  });
});

interface Report {
  events: Array<{ id: string }>;
  results: Array<{ timestamp: string; status: number }>;
}

function child(args: string[], env: Record<string, string> = {}) {
  const script = path.join(import.meta.dirname, "support", "child-writer.ts");
  return spawn(process.execPath, ["--import", "tsx", script, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
}

function exited(proc: ReturnType<typeof child>): Promise<number | null> {
  return new Promise((resolve) => proc.on("exit", (code) => resolve(code)));
}

describe("ledger embedded – several connections", () => {
  it("accounts a connection cached are read again after another connection commits", async () => {
    const a = await openLedger({ driver: "embedded", path: file });
    const b = await openLedger({ driver: "embedded", path: file });
    try {
      await a.createAccounts([account({ id: 1n }), account({ id: 2n })]);
      const move = (id: bigint) => [
        transfer({ id, debit_account_id: 1n, credit_account_id: 2n, amount: 1n }),
      ];
      for (const [ledger, id] of [
        [a, 1n],
        [b, 2n],
        [a, 3n],
        [b, 4n],
        [a, 5n],
      ] as const) {
        expect(await ledger.createTransfers(move(id))).toMatchObject([
          { status: CreateTransferStatus.created },
        ]);
      }
      expect(await b.lookupAccounts([1n])).toMatchObject([{ debits_posted: 5n }]);
      const history = await a.getAccountTransfers({
        account_id: 2n,
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        code: 0,
        timestamp_min: 0n,
        timestamp_max: 0n,
        limit: 10,
        flags: 3,
      });
      expect(history.map((t) => t.id)).toEqual([1n, 2n, 3n, 4n, 5n]);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});

describe("ledger embedded – several processes", () => {
  it("timestamps increase strictly across processes sharing one file, even with every clock frozen", async () => {
    const setup = await openLedger({ driver: "embedded", path: file });
    await setup.createAccounts([account({ id: 1n }), account({ id: 2n })]);
    setup.destroy();
    const reports = [0, 1, 2].map((i) => path.join(tmp.dir, `report-${i}.jsonl`));
    const procs = reports.map((report, i) =>
      child(["timestamps", file, report, "40", "10", String(i + 1)], {
        LEDGER_CLOCK_NS: String(fakeClockStartNs),
      }),
    );
    expect(await Promise.all(procs.map(exited))).toEqual([0, 0, 0]);
    const requests = reports.flatMap((report) =>
      fs
        .readFileSync(report, "utf8")
        .trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as Report).results.map((r) => BigInt(r.timestamp))),
    );
    expect(requests).toHaveLength(120);
    const all = requests.flat().sort((a, b) => (a < b ? -1 : 1));
    expect(new Set(all).size).toBe(all.length);
    for (const slots of requests) {
      slots.forEach((ts, i) => i > 0 && expect(ts).toBe((slots[i - 1] as bigint) + 1n));
    }
    // Requests are serialised: no two requests' slot ranges interleave.
    const ranges = requests
      .map((slots) => ({ first: slots[0] as bigint, last: slots.at(-1) as bigint }))
      .sort((a, b) => (a.first < b.first ? -1 : 1));
    for (let i = 1; i < ranges.length; i++) {
      expect(
        (ranges[i] as { first: bigint }).first > (ranges[i - 1] as { last: bigint }).last,
      ).toBe(true);
    }
  });
});
