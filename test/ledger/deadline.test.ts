// Proves the deadline on every ledger request. TigerBeetle: the real tigerbeetle-node client
// against addresses that never answer (a TCP server that accepts and stays silent, and a port that
// refuses connections): each request rejects with LedgerTimeoutError after requestTimeoutMs
// instead of waiting forever, the client is replaced (the next request gets a fresh one, bounded
// the same way), and destroy ends it all. Embedded: requests waiting behind another process's
// write lock give up with LedgerBusyError within the deadline, queued ones too (not one deadline
// after another), and succeed again once the lock is gone.
import path from "node:path";
import Database from "better-sqlite3";
import { CreateAccountStatus } from "tigerbeetle-node";
import { afterAll, describe, expect, it } from "vitest";
import { DeadlineLedger } from "../../src/ledger/deadline.ts";
import { LedgerBusyError, LedgerTimeoutError, openLedger } from "../../src/ledger/index.ts";
import { account } from "./support/events.ts";
import { tempDir } from "./support/drivers.ts";
import { refusingPort, silentServer } from "../support/silent-ledger.ts";

async function timed<T>(promise: Promise<T>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - started };
}

describe("ledger deadline – TigerBeetle addresses that never answer", () => {
  const silent = silentServer();
  afterAll(async () => (await silent).close());

  for (const kind of ["accepts and stays silent", "refuses connections"] as const) {
    it(`a request to an address that ${kind} rejects with LedgerTimeoutError after requestTimeoutMs, and the client is replaced`, async () => {
      const port = kind === "refuses connections" ? await refusingPort() : (await silent).port;
      const ledger = await openLedger({
        driver: "tigerbeetle",
        clusterId: 0n,
        addresses: [String(port)],
        requestTimeoutMs: 300,
      });
      expect(ledger).toBeInstanceOf(DeadlineLedger);
      const first = await timed(ledger.lookupAccounts([1n]));
      expect(first.error).toBeInstanceOf(LedgerTimeoutError);
      expect((first.error as Error).message).toContain(`TigerBeetle cluster 0 at ${port}`);
      expect(first.ms).toBeGreaterThanOrEqual(290);
      expect(first.ms).toBeLessThan(2_000);
      expect((ledger as DeadlineLedger).replaced).toBe(1);
      // The next request goes to a fresh client, bounded the same way.
      const second = await timed(ledger.createAccounts([account({ id: 1n })]));
      expect(second.error).toBeInstanceOf(LedgerTimeoutError);
      expect(second.ms).toBeLessThan(2_000);
      expect((ledger as DeadlineLedger).replaced).toBe(2);
      ledger.destroy();
      expect((await timed(ledger.lookupAccounts([1n]))).error).toMatchObject({
        code: "ERR_CLIENT_CLOSED",
      });
    });
  }
});

describe("ledger deadline – the embedded file locked by another process", () => {
  const tmp = tempDir("ledger-deadline-");
  afterAll(() => tmp.remove());

  for (const thread of [false, true]) {
    it(`requests queued behind the lock all give up with LedgerBusyError within one deadline, then work again (thread: ${thread})`, async () => {
      const file = path.join(tmp.dir, `locked-${thread}.db`);
      const ledger = await openLedger({
        driver: "embedded",
        path: file,
        thread,
        requestTimeoutMs: 400,
      });
      const other = new Database(file);
      other.exec("BEGIN IMMEDIATE");
      const started = Date.now();
      const results = await Promise.all(
        [1n, 2n, 3n, 4n].map((id) => timed(ledger.createAccounts([account({ id })]))),
      );
      for (const r of results) expect(r.error).toBeInstanceOf(LedgerBusyError);
      // One deadline for all of them, not 4 × 400 ms one after another.
      expect(Date.now() - started).toBeLessThan(1_200);
      other.exec("COMMIT");
      other.close();
      expect(await ledger.createAccounts([account({ id: 1n })])).toMatchObject([
        { status: CreateAccountStatus.created },
      ]);
      ledger.destroy();
    });
  }
});
