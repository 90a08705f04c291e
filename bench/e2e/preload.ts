// The ledger that already holds 5,000,000 transfers, built once straight through the ledger port
// in requests of 8189 transfers (the port's maximum) and cached under bench/.data (not committed).
// It uses the service's own chart: the bench's users u0 … u{users−1} with their accounts, each
// credited once, then transfers between random pairs of them, so the run after it touches
// accounts with long histories and looks ids up in a large table.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Account, Transfer } from "tigerbeetle-node";
import { CreateAccountStatus, CreateTransferStatus } from "tigerbeetle-node";
import { loadConfig } from "../../src/config/load.ts";
import { LEDGER_EVENTS_MAX } from "../../src/config/limits.ts";
import {
  settlementAccountId,
  systemAccounts,
  userAccountId,
  userAccounts,
  type Chart,
} from "../../src/domain/accounts.ts";
import { COMMAND_CODES } from "../../src/domain/commands.ts";
import { TransferCode } from "../../src/domain/plan.ts";
import { openLedger } from "../../src/ledger/index.ts";
import { recordDeployment, spaceOf } from "../../src/deployment.ts";
import { prng } from "./workload.ts";

export const PRELOAD = { transfers: 5_000_000, version: 2, seed: 0x10ad } as const;

/**
 * The preloaded ledger's deployment (src/deployment.ts): fixed, so a run that copies the ledger
 * stores the same id in its fresh streams (claimDeployment) and every run derives the same ids.
 */
export const PRELOAD_DEPLOYMENT = {
  id: 0xbe0c10ad_0000_4000_8000_000000000001n,
  key: 0xbe0c10ad_5eed_0000_0000_000000000001n,
} as const;
const DATA_DIR = new URL("../.data/", import.meta.url).pathname;
const SCHEMA_SOURCE = new URL("../../src/ledger/schema.ts", import.meta.url).pathname;
/** Every preloaded id starts with these 32 bits; run tags are random, a clash is 1 in 2^32 per run. */
const ID_PREFIX = 0xbe0c10adn << 96n;
/** Each user starts with this much, far above what 5,000,000 transfers of ≤ 100 can take away. */
const OPENING_CREDIT = 1_000_000_000n;
const TRANSFER_AMOUNT_MAX = 100;

function transfer(
  id: bigint,
  debit: bigint,
  credit: bigint,
  amount: bigint,
  ledger: number,
  code: number,
  command: number,
): Transfer {
  return {
    id,
    debit_account_id: debit,
    credit_account_id: credit,
    amount,
    pending_id: 0n,
    user_data_128: id,
    user_data_64: 0n,
    user_data_32: command,
    timeout: 0,
    ledger,
    code,
    flags: 0,
    timestamp: 0n,
  };
}

/** The cache is keyed on the ledger's schema source too: a file of another format is rebuilt, not misread. */
export function preloadedPath(users: number): string {
  const schema = createHash("sha256").update(readFileSync(SCHEMA_SOURCE)).digest("hex").slice(0, 8);
  return join(DATA_DIR, `ledger-${PRELOAD.transfers}-u${users}-v${PRELOAD.version}-${schema}.db`);
}

/** The cached ledger's path; builds it first when it is missing. */
export async function ensurePreloadedLedger(users: number): Promise<string> {
  const path = preloadedPath(users);
  if (existsSync(path)) return path;
  mkdirSync(DATA_DIR, { recursive: true });
  const building = `${path}.building`;
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${building}${suffix}`, { force: true });
  const config = loadConfig({});
  const chart: Chart = {
    currencies: config.currencies,
    defaultCurrency: config.defaultCurrency,
    markerLedger: config.markerLedger,
    space: spaceOf(PRELOAD_DEPLOYMENT.id, PRELOAD_DEPLOYMENT.key),
  };
  const currency = chart.currencies.find((c) => c.code === chart.defaultCurrency);
  if (!currency) throw new Error("no default currency");
  const ledgerNo = currency.ledger;
  const started = Date.now();
  process.stdout.write(
    `building the preloaded ledger (${PRELOAD.transfers.toLocaleString("en-US")} transfers over ${users} users) at ${path}\n`,
  );
  const ledger = await openLedger({ driver: "embedded", path: building });
  try {
    await recordDeployment(
      ledger,
      config.markerLedger,
      PRELOAD_DEPLOYMENT.id,
      PRELOAD_DEPLOYMENT.key,
    );
    const accounts: Account[] = [...systemAccounts(chart)];
    for (let k = 0; k < users; k += 1)
      accounts.push(...userAccounts(chart.space, ledgerNo, `u${k}`));
    for (let at = 0; at < accounts.length; at += LEDGER_EVENTS_MAX) {
      const results = await ledger.createAccounts(accounts.slice(at, at + LEDGER_EVENTS_MAX));
      const bad = results.find((r) => r.status !== CreateAccountStatus.created);
      if (bad) throw new Error(`preload: account not created: ${CreateAccountStatus[bad.status]}`);
    }
    const userIds = Array.from({ length: users }, (_, k) =>
      userAccountId(chart.space, ledgerNo, `u${k}`),
    );
    const settlement = settlementAccountId(chart.space, ledgerNo);
    let next = 0n;
    const submit = async (batch: Transfer[]): Promise<void> => {
      const results = await ledger.createTransfers(batch);
      const bad = results.find((r) => r.status !== CreateTransferStatus.created);
      if (bad)
        throw new Error(`preload: transfer not created: ${CreateTransferStatus[bad.status]}`);
    };
    const credits = userIds.map((u) =>
      transfer(
        ID_PREFIX | next++,
        settlement,
        u,
        OPENING_CREDIT,
        ledgerNo,
        TransferCode.credit,
        COMMAND_CODES.credit,
      ),
    );
    for (let at = 0; at < credits.length; at += LEDGER_EVENTS_MAX)
      await submit(credits.slice(at, at + LEDGER_EVENTS_MAX));
    const random = prng(PRELOAD.seed);
    for (let done = 0; done < PRELOAD.transfers;) {
      const size = Math.min(LEDGER_EVENTS_MAX, PRELOAD.transfers - done);
      const batch = new Array<Transfer>(size);
      for (let j = 0; j < size; j += 1) {
        const from = Math.floor(random() * users);
        const to = (from + 1 + Math.floor(random() * (users - 1))) % users;
        const amount = BigInt(1 + Math.floor(random() * TRANSFER_AMOUNT_MAX));
        batch[j] = transfer(
          ID_PREFIX | next++,
          userIds[from] as bigint,
          userIds[to] as bigint,
          amount,
          ledgerNo,
          TransferCode.transfer,
          COMMAND_CODES.transfer,
        );
      }
      await submit(batch);
      done += size;
      if (done % (LEDGER_EVENTS_MAX * 61) < LEDGER_EVENTS_MAX || done === PRELOAD.transfers) {
        const s = (Date.now() - started) / 1000;
        process.stdout.write(
          `  ${done.toLocaleString("en-US")} transfers, ${s.toFixed(0)} s, ${Math.round(done / s).toLocaleString("en-US")}/s\n`,
        );
      }
    }
  } finally {
    ledger.destroy();
  }
  for (const suffix of ["-wal", "-shm"])
    if (existsSync(`${building}${suffix}`))
      throw new Error(
        `preload: ${building}${suffix} left behind; the ledger was not closed cleanly`,
      );
  renameSync(building, path);
  process.stdout.write(
    `preloaded ledger ready: ${(statSync(path).size / 2 ** 30).toFixed(2)} GiB in ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  return path;
}
