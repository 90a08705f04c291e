// The large benchmark database: 1,000,000 accounts (one settlement account, the rest users) and
// 5,000,000 transfers, built through the engine itself in batches of 8189 and cached on disk. It
// is rebuilt only when missing; the benchmark works on a copy so the cached file never grows.
import fs from "node:fs";
import path from "node:path";
import { CreateAccountStatus, CreateTransferStatus } from "tigerbeetle-node";
import { openLedger } from "../../src/ledger/index.ts";
import {
  batch,
  newId,
  randomAccountId,
  settlementAccount,
  settlementId,
  transfer,
  userAccount,
} from "./workload.ts";

export const fixtureAccounts = 1_000_000;
export const fixtureTransfers = 5_000_000;
const batchMax = 8189;
/** Every user starts with this much, so no debit in the fixture or the benchmark runs dry. */
export const fundingAmount = 1_000_000_000_000n;

export const fixturePath = path.resolve(
  import.meta.dirname,
  "../.data/ledger-1m-accounts-5m-transfers.db",
);

export async function ensureFixture(log: (line: string) => void): Promise<string> {
  if (fs.existsSync(fixturePath)) return fixturePath;
  fs.mkdirSync(path.dirname(fixturePath), { recursive: true });
  const building = `${fixturePath}.building.db`;
  for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(building + suffix, { force: true });
  const started = Date.now();
  const ledger = await openLedger({ driver: "embedded", path: building });
  try {
    const users: bigint[] = [];
    const first = await ledger.createAccounts([settlementAccount()]);
    if (first[0]?.status !== CreateAccountStatus.created)
      throw new Error("fixture: settlement account not created");
    for (let made = 1; made < fixtureAccounts;) {
      const accounts = Array.from({ length: Math.min(batchMax, fixtureAccounts - made) }, () =>
        userAccount(randomAccountId()),
      );
      await expectCreated(ledger.createAccounts(accounts), CreateAccountStatus.created, "account");
      users.push(...accounts.map((a) => a.id));
      made += accounts.length;
    }
    log(`fixture: ${fixtureAccounts} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    let moved = 0;
    for (let at = 0; at < users.length; at += batchMax) {
      const funding = users
        .slice(at, at + batchMax)
        .map((user) => transfer(newId("time-ordered"), settlementId, user, fundingAmount));
      await expectCreated(
        ledger.createTransfers(funding),
        CreateTransferStatus.created,
        "funding transfer",
      );
      moved += funding.length;
    }
    for (; moved < fixtureTransfers;) {
      const events = batch(Math.min(batchMax, fixtureTransfers - moved), users, "time-ordered");
      await expectCreated(ledger.createTransfers(events), CreateTransferStatus.created, "transfer");
      moved += events.length;
      if (moved % 1_000_000 < batchMax)
        log(`fixture: ${moved} transfers after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
  } finally {
    ledger.destroy();
  }
  fs.renameSync(building, fixturePath);
  log(`fixture: built ${fixturePath} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return fixturePath;
}

async function expectCreated(
  results: Promise<Array<{ status: number }>>,
  created: number,
  what: string,
): Promise<void> {
  for (const r of await results) {
    if (r.status !== created)
      throw new Error(`fixture: a ${what} was not created (status ${r.status})`);
  }
}
