// Proves that the embedded engine keeps the ledger whole when several processes write to one file
// at once and one of them dies mid-way. Four real child processes (support/child-writer.ts) each
// submit 10,000 transfers in batches of 100 — transfers between users whose accounts must not go
// negative and keep history, pending transfers with timeouts, posts and voids of their own pending
// transfers, credits — and report every request that resolved. One child is SIGKILLed after it
// has reported 30 requests. Afterwards: debits equal credits (posted and pending) over all
// accounts; every transfer any child saw `created` is in the ledger exactly once, with its fields;
// no user's available balance is negative; each account's history (built by all writers in turn)
// lists exactly its transfers; and the file reopens and passes integrity_check.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AccountFlags,
  CreateTransferStatus,
  TransferFlags,
  type Account,
  type Transfer,
} from "tigerbeetle-node";
import { openLedger } from "../../src/ledger/index.ts";
import { settlementId, userId } from "./support/workload-ids.ts";
import { account, accountFilter, queryFilter, transfer } from "./support/events.ts";
import { tempDir } from "./support/drivers.ts";

const workers = 4;
const transfersPerWorker = 10_000;
const batchSize = 100;
const users = 200;
const victim = 2;
const killAfterRequests = 30;

interface Report {
  events: Array<Record<string, string | number>>;
  results: Array<{ timestamp: string; status: number }>;
}

let tmp: ReturnType<typeof tempDir>;
let file: string;

function readReports(report: string): Report[] {
  if (!fs.existsSync(report)) return [];
  return fs
    .readFileSync(report, "utf8")
    .split("\n")
    .filter((line) => line.endsWith("}"))
    .map((line) => JSON.parse(line) as Report);
}

function toTransfer(e: Record<string, string | number>): Transfer {
  const big = (k: string) => BigInt(e[k] as string);
  return {
    id: big("id"),
    debit_account_id: big("debit_account_id"),
    credit_account_id: big("credit_account_id"),
    amount: big("amount"),
    pending_id: big("pending_id"),
    user_data_128: big("user_data_128"),
    user_data_64: big("user_data_64"),
    user_data_32: Number(e["user_data_32"]),
    timeout: Number(e["timeout"]),
    ledger: Number(e["ledger"]),
    code: Number(e["code"]),
    flags: Number(e["flags"]),
    timestamp: big("timestamp"),
  };
}

async function allOf<T extends { timestamp: bigint }>(
  page: (min: bigint) => Promise<T[]>,
): Promise<T[]> {
  const out: T[] = [];
  for (let min = 1n; ;) {
    const rows = await page(min);
    out.push(...rows);
    const last = rows.at(-1);
    if (last === undefined || rows.length < 8189) return out;
    min = last.timestamp + 1n;
  }
}

describe("ledger multi-process – four writers, one killed", () => {
  const reports: string[] = [];

  beforeAll(async () => {
    tmp = tempDir("ledger-multi-");
    file = path.join(tmp.dir, "ledger.db");
    const setup = await openLedger({ driver: "embedded", path: file });
    const userFlags = AccountFlags.debits_must_not_exceed_credits | AccountFlags.history;
    await setup.createAccounts([
      account({ id: settlementId }),
      ...Array.from({ length: users }, (_, i) => account({ id: userId(i), flags: userFlags })),
    ]);
    const funding = await setup.createTransfers(
      Array.from({ length: users }, (_, i) =>
        transfer({
          id: 1n + BigInt(i),
          debit_account_id: settlementId,
          credit_account_id: userId(i),
          amount: 500n,
        }),
      ),
    );
    expect(funding.every((r) => r.status === CreateTransferStatus.created)).toBe(true);
    setup.destroy();

    const script = path.join(import.meta.dirname, "support", "child-writer.ts");
    const children = Array.from({ length: workers }, (_, w) => {
      const report = path.join(tmp.dir, `report-${w}.jsonl`);
      reports.push(report);
      const proc = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          script,
          "mixed",
          file,
          report,
          String(w),
          String(transfersPerWorker),
          String(batchSize),
          String(users),
        ],
        {
          stdio: ["ignore", "inherit", "inherit"],
        },
      );
      return {
        proc,
        exited: new Promise<NodeJS.Signals | number | null>((resolve) =>
          proc.on("exit", (code, signal) => resolve(signal ?? code)),
        ),
      };
    });
    const victimChild = children[victim] as (typeof children)[number];
    const killer = setInterval(() => {
      if (readReports(reports[victim] as string).length >= killAfterRequests) {
        victimChild.proc.kill("SIGKILL");
        clearInterval(killer);
      }
    }, 20);
    const outcomes = await Promise.all(children.map((c) => c.exited));
    clearInterval(killer);
    expect(outcomes.filter((_, w) => w !== victim)).toEqual([0, 0, 0]);
    expect(outcomes[victim]).toBe("SIGKILL");
  }, 90_000);

  afterAll(() => tmp.remove());

  it("the killed writer stopped midway and the others finished", () => {
    const done = reports.map((r) => readReports(r).length);
    expect(done[victim]).toBeGreaterThanOrEqual(killAfterRequests);
    expect(done[victim]).toBeLessThan(transfersPerWorker / batchSize);
    done.forEach((n, w) => w !== victim && expect(n).toBe(transfersPerWorker / batchSize));
  });

  it("the file reopens cleanly and passes SQLite's integrity check", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    ledger.destroy();
    const db = new Database(file, { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    db.close();
  });

  it("debits equal credits, posted and pending, over all accounts", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    try {
      const accounts = await allOf<Account>((min) =>
        ledger.queryAccounts(queryFilter({ timestamp_min: min })),
      );
      expect(accounts).toHaveLength(users + 1);
      const sum = (
        field: "debits_posted" | "credits_posted" | "debits_pending" | "credits_pending",
      ) => accounts.reduce((s, a) => s + a[field], 0n);
      expect(sum("debits_posted")).toBe(sum("credits_posted"));
      expect(sum("debits_pending")).toBe(sum("credits_pending"));
    } finally {
      ledger.destroy();
    }
  });

  it("no user's available balance (credits posted − debits posted − debits pending) is negative", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    try {
      const found = await ledger.lookupAccounts(Array.from({ length: users }, (_, i) => userId(i)));
      expect(found).toHaveLength(users);
      for (const a of found)
        expect(
          a.credits_posted - a.debits_posted - a.debits_pending,
          `account ${a.id}`,
        ).toBeGreaterThanOrEqual(0n);
    } finally {
      ledger.destroy();
    }
  });

  it("each account's history lists exactly its transfers, in order, though every writer appended to it", async () => {
    const ledger = await openLedger({ driver: "embedded", path: file });
    try {
      const stored = await allOf<Transfer>((min) =>
        ledger.queryTransfers(queryFilter({ timestamp_min: min })),
      );
      for (const id of [settlementId, userId(0), userId(1), userId(users - 1)]) {
        const expected = stored
          .filter((t) => t.debit_account_id === id || t.credit_account_id === id)
          .map((t) => t.timestamp);
        const ascending = await allOf<Transfer>((min) =>
          ledger.getAccountTransfers(accountFilter({ account_id: id, timestamp_min: min })),
        );
        expect(
          ascending.map((t) => t.timestamp),
          `account ${id}`,
        ).toEqual(expected);
        const newest = await ledger.getAccountTransfers(
          accountFilter({ account_id: id, limit: 10, flags: 7 }),
        );
        expect(newest.map((t) => t.timestamp)).toEqual(expected.slice(-10).reverse());
      }
      const [user] = await ledger.lookupAccounts([userId(0)]);
      const [last] = await ledger.getAccountBalances(
        accountFilter({ account_id: userId(0), limit: 1, flags: 7 }),
      );
      expect(last?.credits_posted).toBe(user?.credits_posted);
      expect(last?.debits_posted).toBe(user?.debits_posted);
    } finally {
      ledger.destroy();
    }
  });

  it("every transfer a writer saw created is in the ledger exactly once, with its fields", async () => {
    const created = new Map<bigint, { sent: Transfer; timestamp: bigint }>();
    for (const report of reports) {
      for (const { events, results } of readReports(report)) {
        results.forEach((r, i) => {
          if (r.status !== CreateTransferStatus.created) return;
          const sent = toTransfer(events[i] as Record<string, string | number>);
          expect(created.has(sent.id), `id ${sent.id} created once`).toBe(false);
          created.set(sent.id, { sent, timestamp: BigInt(r.timestamp) });
        });
      }
    }
    expect(created.size).toBeGreaterThan(20_000);
    const ledger = await openLedger({ driver: "embedded", path: file });
    try {
      const stored = await allOf<Transfer>((min) =>
        ledger.queryTransfers(queryFilter({ timestamp_min: min })),
      );
      const byId = new Map<bigint, Transfer[]>();
      for (const t of stored) byId.set(t.id, [...(byId.get(t.id) ?? []), t]);
      for (const [id, { sent, timestamp }] of created) {
        const copies = byId.get(id) ?? [];
        expect(copies, `transfer ${id}`).toHaveLength(1);
        const t = copies[0] as Transfer;
        expect(t.timestamp).toBe(timestamp);
        expect(t.flags).toBe(sent.flags);
        expect(t.pending_id).toBe(sent.pending_id);
        if (
          (sent.flags &
            (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) ===
          0
        ) {
          expect({
            dr: t.debit_account_id,
            cr: t.credit_account_id,
            amount: t.amount,
            timeout: t.timeout,
          }).toEqual({
            dr: sent.debit_account_id,
            cr: sent.credit_account_id,
            amount: sent.amount,
            timeout: sent.timeout,
          });
        }
      }
    } finally {
      ledger.destroy();
    }
  });
});
