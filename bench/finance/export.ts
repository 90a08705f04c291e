// The finance export's memory on a large ledger: builds an embedded ledger of 1,000,000 transfers
// (credits, transfers between users, one in ten with its fee leg as a linked chain) directly
// through the ledger port, in the id space of a deployment bound by the real `setup` on a
// throw-away nats-server; then runs the real CLI in a child process under /usr/bin/time and reports
// its peak RSS and wall time for the whole journal and for its first tenth (the same peak for ten
// times the lines is what "bounded" means), once more with the JS heap capped at 64 MiB (it
// completes only if the heap it needs is bounded), and for a trial balance over the same ledger.
//
//   npx tsx bench/finance/export.ts [transfers]      # default 1,000,000
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { CreateTransferStatus, TransferFlags, type Transfer } from "tigerbeetle-node";
import { loadConfig } from "../../src/config/load.ts";
import {
  feeAccountId,
  settlementAccountId,
  userAccountId,
  userAccounts,
} from "../../src/domain/accounts.ts";
import { COMMAND_CODES } from "../../src/domain/commands.ts";
import { TransferCode } from "../../src/domain/plan.ts";
import { isoOfNs } from "../../src/finance/money-text.ts";
import { transferPages } from "../../src/finance/pages.ts";
import { newestTransferTimestamp } from "../../src/ledger/queries.ts";
import { connect, openServiceLedger, setup } from "../../src/service.ts";
import { AccountRegistry } from "../../src/ledger-facts/account-registry.ts";
import { startNats } from "../../test/support/nats-server.ts";

const TRANSFERS = Number(process.argv[2] ?? 1_000_000);
const USERS = 10_000;
const BATCH_MAX = 8189;
/** The old-space limit of the capped run (node --max-old-space-size). */
const HEAP_CAP_MIB = 64;
const EUR = 978;
const BIN = resolve(import.meta.dirname, "../../bin/billing.js");

const id = () =>
  (randomBytes(16).readBigUInt64BE(0) << 64n) | randomBytes(8).readBigUInt64BE(0) | 1n;

function plain(fields: Partial<Transfer>): Transfer {
  return {
    id: id(),
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: 1n,
    pending_id: 0n,
    user_data_128: 1n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: EUR,
    code: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

/** Runs `billing <args>` under /usr/bin/time: its peak RSS, wall seconds, exit code and stderr. */
function run(
  env: Record<string, string>,
  args: string[],
): { rssMiB: number; seconds: number; status: number | null; stderr: string } {
  const r = spawnSync("/usr/bin/time", ["-f", "TIME %M %e", process.execPath, BIN, ...args], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
  const m = /TIME (\d+) ([\d.]+)/.exec(r.stderr);
  if (!m) throw new Error(`no /usr/bin/time figures in:\n${r.stderr}`);
  return {
    rssMiB: Math.round(Number(m[1]) / 1024),
    seconds: Number(m[2]),
    status: r.status,
    stderr: r.stderr,
  };
}

const nats = await startNats();
const dir = mkdtempSync(join(tmpdir(), "billing-finance-bench-"));
try {
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify({ ops: { port: 0 } }));
  const env = {
    NATS_URL: nats.url,
    LEDGER_PATH: join(dir, "ledger.db"),
    BILLING_CONFIG: configPath,
    LOG_LEVEL: "warn",
  };
  const config = loadConfig(env);
  const started = Date.now();
  const ledger = await openServiceLedger(config);
  const broker = await connect(config, "bench-finance");
  const { chart } = await setup(config, broker, ledger, new AccountRegistry(ledger, 1024));
  await broker.close();
  const space = chart.space;
  const users = Array.from({ length: USERS }, (_, i) => `bench-${i}`);
  const accounts = users.flatMap((u) => userAccounts(space, EUR, u));
  for (let i = 0; i < accounts.length; i += BATCH_MAX)
    await ledger.createAccounts(accounts.slice(i, i + BATCH_MAX));
  const settlement = settlementAccountId(space, EUR);
  const fee = feeAccountId(space, EUR);
  const userIds = users.map((u) => userAccountId(space, EUR, u));
  const tag = { user_data_64: space.tag };
  let made = 0;
  let seed = 1;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
  while (made < TRANSFERS) {
    const batch: Transfer[] = [];
    while (batch.length < BATCH_MAX - 1 && made + batch.length < TRANSFERS) {
      const n = made + batch.length;
      if (n < USERS) {
        batch.push(
          plain({
            debit_account_id: settlement,
            credit_account_id: userIds[n] as bigint,
            amount: 1_000_000_000n,
            code: TransferCode.credit,
            user_data_32: COMMAND_CODES.credit,
            ...tag,
          }),
        );
        continue;
      }
      const from = userIds[next() % USERS] as bigint;
      let to = userIds[next() % USERS] as bigint;
      if (to === from) to = userIds[(userIds.indexOf(from) + 1) % USERS] as bigint;
      const main = plain({
        debit_account_id: from,
        credit_account_id: to,
        amount: BigInt(1 + (next() % 500)),
        code: TransferCode.transfer,
        user_data_32: COMMAND_CODES.transfer,
        ...tag,
      });
      if (n % 10 === 0 && made + batch.length + 2 <= TRANSFERS) {
        batch.push({ ...main, flags: TransferFlags.linked });
        batch.push(
          plain({
            id: space.feeLegId(main.id),
            debit_account_id: from,
            credit_account_id: fee,
            amount: 2n,
            code: TransferCode.fee,
            user_data_32: COMMAND_CODES.transfer,
            ...tag,
          }),
        );
      } else batch.push(main);
    }
    for (const r of await ledger.createTransfers(batch))
      if (r.status !== CreateTransferStatus.created)
        throw new Error(`bench: a transfer was not created: ${CreateTransferStatus[r.status]}`);
    made += batch.length;
    if (made % 200_000 < BATCH_MAX)
      console.error(
        `built ${made} transfers after ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
  }
  // The timestamp a tenth of the way in, for the shorter export.
  let tenth = 0n;
  let seen = 0;
  for await (const page of transferPages(
    ledger,
    1n,
    await newestTransferTimestamp(ledger),
    BATCH_MAX,
  )) {
    seen += page.length;
    if (seen >= TRANSFERS / 10) {
      tenth = page[page.length - 1]?.timestamp ?? 0n;
      break;
    }
  }
  ledger.destroy();
  console.error(
    `built ${made} transfers over ${USERS} users in ${((Date.now() - started) / 1000).toFixed(0)} s; ledger file ${(statSync(env.LEDGER_PATH).size / 2 ** 20).toFixed(0)} MiB`,
  );

  const out = join(dir, "journal.csv");
  const none = run(env, ["export", "journal", "--to", "1970-01-02", "--out", out]);
  const small = run(env, ["export", "journal", "--to", isoOfNs(tenth), "--out", out]);
  const smallLines = /(\d+) lines, ledger time from/.exec(small.stderr)?.[1];
  const full = run(env, ["export", "journal", "--out", out]);
  const fullLines = /(\d+) lines, ledger time from/.exec(full.stderr)?.[1];
  const fullBytes = statSync(out).size;
  // The same export with the JS heap capped: it completes only if the heap it needs is bounded.
  const capped = run({ ...env, NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MIB}` }, [
    "export",
    "journal",
    "--out",
    out,
  ]);
  const trial = run(env, ["trial-balance", "--out", join(dir, "trial.txt")]);
  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${new Date().toISOString()}`,
  );
  console.log(
    `export journal, no lines:    peak RSS ${none.rssMiB} MiB, ${none.seconds} s (the process itself: tsx, the ledger thread, NATS)`,
  );
  console.log(
    `export journal, first tenth: ${smallLines} lines, peak RSS ${small.rssMiB} MiB, ${small.seconds} s, exit ${small.status}`,
  );
  console.log(
    `export journal, all:         ${fullLines} lines (${(fullBytes / 2 ** 20).toFixed(0)} MiB of CSV), peak RSS ${full.rssMiB} MiB, ${full.seconds} s, exit ${full.status}`,
  );
  console.log(
    `export journal, all, heap capped at ${HEAP_CAP_MIB} MiB: peak RSS ${capped.rssMiB} MiB, ${capped.seconds} s, exit ${capped.status}${capped.status === 0 ? "" : `\n${capped.stderr.slice(-2000)}`}`,
  );
  console.log(
    `trial-balance:               ${USERS + 6} accounts, peak RSS ${trial.rssMiB} MiB, ${trial.seconds} s, exit ${trial.status}`,
  );
} finally {
  await nats.stop();
  if (process.env["KEEP"]) console.error(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
