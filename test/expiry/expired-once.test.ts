// Proves that "holds expired" is logged once per hold, by the process that expired it: a second
// sweeper on the same ledger (another process, or the same one restarted) that meets a hold
// already expired and marked still publishes its event again (the publish is idempotent, and the
// first process may have died before it) but neither counts nor logs it. Before the fix every
// process logged the same hold again at every start. Real embedded ledger file, real
// nats-server for the events, a pino logger writing into memory.
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import {
  settlementAccountId,
  systemAccounts,
  userAccountId,
  userAccounts,
} from "../../src/domain/accounts.ts";
import { COMMAND_CODES } from "../../src/domain/commands.ts";
import { TransferCode } from "../../src/domain/plan.ts";
import { ExpirySweeper } from "../../src/expiry/sweeper.ts";
import { openLedger, type Ledger } from "../../src/ledger/index.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { chart, EUR } from "../domain/fixture.ts";
import { tempDir } from "../ledger/support/drivers.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { storedEvents } from "../support/streams.ts";

let nats: NatsServer;
let nc: NatsConnection;
let tmp: ReturnType<typeof tempDir>;
let ledger: Ledger;

const user = userAccountId(chart.space, EUR.ledger, "alice");
const settlement = settlementAccountId(chart.space, EUR.ledger);
const base = {
  pending_id: 0n,
  user_data_128: 1n,
  user_data_64: chart.space.tag,
  timeout: 0,
  ledger: EUR.ledger,
  flags: 0,
  timestamp: 0n,
};
const credit: Transfer = {
  ...base,
  id: 1n << 100n,
  debit_account_id: settlement,
  credit_account_id: user,
  amount: 100n,
  code: TransferCode.credit,
  user_data_32: COMMAND_CODES.credit,
};
const hold: Transfer = {
  ...base,
  id: (1n << 100n) + 1n,
  debit_account_id: user,
  credit_account_id: settlement,
  amount: 7n,
  code: TransferCode.hold,
  flags: TransferFlags.pending,
  timeout: 1,
  user_data_32: COMMAND_CODES.hold,
};

/** A sweeper as one service process runs it, with its log lines kept. */
function serviceProcess(): { sweeper: ExpirySweeper; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const sweeper = new ExpirySweeper({
    ledger,
    js: jetstream(nc),
    chart,
    names: new NameBook(chart.space, 100),
    log,
    limits: {
      sweepIntervalMs: 50,
      holdsPerSweepMax: 100,
      holdTimeoutSecondsMax: 60,
      publishTimeoutMs: 5000,
    },
  });
  return { sweeper, lines };
}

/** Runs a sweeper's own loop until its first sweep is done, as a process does after it starts. */
async function runOnce(p: ReturnType<typeof serviceProcess>): Promise<void> {
  const running = p.sweeper.start();
  await new Promise((r) => setTimeout(r, 200));
  await running.stop();
}

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "EVENTS", subjects: ["billing.evt.>"] });
  tmp = tempDir("expired-once-");
  ledger = await openLedger({ driver: "embedded", path: path.join(tmp.dir, "ledger.db") });
  await ledger.createAccounts([
    ...systemAccounts(chart),
    ...userAccounts(chart.space, EUR.ledger, "alice"),
  ]);
  const results = await ledger.createTransfers([credit, hold]);
  expect(results.every((r) => r.status === 0xffffffff)).toBe(true);
});
afterAll(async () => {
  ledger?.destroy();
  tmp?.remove();
  await nc?.close();
  await nats?.stop();
});

it("expiry sweeper – 'holds expired' is logged once per hold, by the process that expired it, not again by the next process or a restart", async () => {
  await new Promise((r) => setTimeout(r, 1_100)); // past the hold's one-second timeout
  const first = serviceProcess();
  await runOnce(first);
  const second = serviceProcess(); // another process on the same ledger, or the first one restarted
  await runOnce(second);
  const third = serviceProcess();
  await runOnce(third);
  const expiredLines = (p: ReturnType<typeof serviceProcess>) =>
    p.lines.filter((l) => l["msg"] === "holds expired");
  expect(expiredLines(first).map((l) => l["expired"])).toEqual([1]);
  expect(expiredLines(second)).toEqual([]);
  expect(expiredLines(third)).toEqual([]);
  expect([first.sweeper.expired, second.sweeper.expired, third.sweeper.expired]).toEqual([1, 0, 0]);
  const events = (await storedEvents(await jetstreamManager(nc), "EVENTS")).filter((e) =>
    e.subject.startsWith("billing.evt.expired."),
  );
  expect(events).toHaveLength(1);
});
