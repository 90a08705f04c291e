// The ledgers the conformance suite runs against: always the embedded engine (a fresh SQLite file
// per case, a fake clock), and a real TigerBeetle cluster when TB_ADDRESSES is set. A cluster is
// shared by every case and by earlier runs, so each case offsets its ids by a random 64-bit base,
// and clock steps become real sleeps.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { openLedger, type Ledger } from "../../../src/ledger/index.ts";

export interface LedgerUnderTest {
  ledger: Ledger;
  /** Added to every id (except 0 and u128 max) so cases do not see each other on a shared cluster. */
  idBase: bigint;
  /** Moves the ledger's clock forward (fake clock) or waits for the real one. */
  advanceClock(seconds: number): Promise<void>;
  close(): void;
}

export interface Driver {
  name: "embedded" | "tigerbeetle";
  /** Why the driver cannot run here, or null when it can. */
  skipReason: string | null;
  /** Shared TigerBeetle runs need isolation; the embedded engine starts each case empty. */
  shared: boolean;
  open(): Promise<LedgerUnderTest>;
}

/** A fixed start for fake clocks: 2023-11-14T22:13:20Z in ns. */
export const fakeClockStartNs = 1_700_000_000_000_000_000n;

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export function fakeClock(startNs = fakeClockStartNs): {
  now: () => bigint;
  advance(ns: bigint): void;
} {
  let now = startNs;
  return {
    now: () => now,
    advance: (ns) => {
      now += ns;
    },
  };
}

const embedded: Driver = {
  name: "embedded",
  skipReason: null,
  shared: false,
  async open() {
    const tmp = tempDir("ledger-case-");
    const clock = fakeClock();
    const ledger = await openLedger({
      driver: "embedded",
      path: path.join(tmp.dir, "ledger.db"),
      clock: clock.now,
    });
    return {
      ledger,
      idBase: 0n,
      advanceClock: async (seconds) => clock.advance(BigInt(seconds) * 1_000_000_000n),
      close: () => {
        ledger.destroy();
        tmp.remove();
      },
    };
  },
};

const addresses = process.env["TB_ADDRESSES"];
let shared: Ledger | null = null;

const tigerbeetle: Driver = {
  name: "tigerbeetle",
  skipReason: addresses
    ? null
    : "TB_ADDRESSES is not set (e.g. TB_ADDRESSES=3000 after `docker compose up -d tigerbeetle`)",
  shared: true,
  async open() {
    shared ??= await openLedger({
      driver: "tigerbeetle",
      clusterId: BigInt(process.env["TB_CLUSTER_ID"] ?? "0"),
      addresses: (addresses ?? "").split(","),
    });
    const ledger = shared;
    return {
      ledger,
      idBase: (randomBytes(8).readBigUInt64BE(0) | 1n) << 64n,
      // TigerBeetle expires pending transfers in a background pulse; a little slack lets it run.
      advanceClock: (seconds) =>
        new Promise((resolve) => setTimeout(resolve, seconds * 1000 + 250)),
      close: () => undefined,
    };
  },
};

export const drivers: Driver[] = [embedded, tigerbeetle];

/** Closes the shared TigerBeetle client (call from afterAll). */
export function closeSharedClients(): void {
  shared?.destroy();
  shared = null;
}

/** The error `promise` rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the promise to reject");
}
