// Proves the expiry sweeper's and the hold query's bounds: the sweeper's memory holds open holds
// only (holds captured or released before their deadline leave it at the next scan), a sweep with
// no due hold and a hold query write nothing to the ledger (no createTransfers call: a write is an
// fsync and invalidates every other process's account cache), and a hold whose deadline passed by
// the wall clock is still expired with one clock write at most per sweep. Real embedded ledger file
// with a counting decorator over createTransfers, real nats-server for the expired events.
import path from "node:path";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import {
  settlementAccountId,
  systemAccounts,
  userAccountId,
  userAccounts,
} from "../../src/domain/accounts.ts";
import { COMMAND_CODES } from "../../src/domain/commands.ts";
import { formatOperationId } from "../../src/domain/ids.ts";
import { TransferCode } from "../../src/domain/plan.ts";
import { HEAP_SLACK } from "../../src/config/limits.ts";
import { ExpirySweeper } from "../../src/expiry/sweeper.ts";
import { openLedger, type Ledger } from "../../src/ledger/index.ts";
import { createLogger } from "../../src/lib/log.ts";
import { holdQuery, type QueryDeps } from "../../src/query/server.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { chart, EUR } from "../domain/fixture.ts";
import { tempDir } from "../ledger/support/drivers.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { storedEvents } from "../support/streams.ts";

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let tmp: ReturnType<typeof tempDir>;
let inner: Ledger;
let ledger: Ledger;
let writes = 0;
let nextId = 1n << 100n;

const user = userAccountId(chart.space, EUR.ledger, "alice");
const settlement = settlementAccountId(chart.space, EUR.ledger);

function transfer(fields: Partial<Transfer>): Transfer {
  return {
    id: nextId++,
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: 0n,
    pending_id: 0n,
    user_data_128: 1n,
    user_data_64: chart.space.tag,
    user_data_32: 0,
    timeout: 0,
    ledger: 0,
    code: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}
const credit = (amount: bigint) =>
  transfer({
    debit_account_id: settlement,
    credit_account_id: user,
    amount,
    ledger: EUR.ledger,
    code: TransferCode.credit,
    user_data_32: COMMAND_CODES.credit,
  });
const hold = (timeout: number) =>
  transfer({
    debit_account_id: user,
    credit_account_id: settlement,
    amount: 1n,
    ledger: EUR.ledger,
    code: TransferCode.hold,
    flags: TransferFlags.pending,
    timeout,
    user_data_32: COMMAND_CODES.hold,
  });
const capture = (h: Transfer) =>
  transfer({
    pending_id: h.id,
    amount: h.amount,
    flags: TransferFlags.post_pending_transfer,
    user_data_32: COMMAND_CODES.capture,
  });
const release = (h: Transfer) =>
  transfer({
    pending_id: h.id,
    amount: h.amount,
    flags: TransferFlags.void_pending_transfer,
    user_data_32: COMMAND_CODES.release,
  });

async function write(transfers: Transfer[]): Promise<void> {
  const results = await inner.createTransfers(transfers);
  expect(results.filter((r) => r.status !== 0xffffffff)).toEqual([]);
}

function sweeper(): ExpirySweeper {
  return new ExpirySweeper({
    ledger,
    js: jetstream(nc),
    chart,
    names: new NameBook(chart.space, 100),
    log: createLogger("silent"),
    limits: {
      sweepIntervalMs: 100,
      holdsPerSweepMax: 1000,
      holdTimeoutSecondsMax: 86_400,
      publishTimeoutMs: 5000,
    },
  });
}

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "EVENTS", subjects: ["billing.evt.>"] });
  tmp = tempDir("sweeper-bounds-");
  inner = await openLedger({ driver: "embedded", path: path.join(tmp.dir, "ledger.db") });
  ledger = {
    ...inner,
    createTransfers: async (batch) => {
      writes += 1;
      return inner.createTransfers(batch);
    },
  };
  await inner.createAccounts([
    ...systemAccounts(chart),
    ...userAccounts(chart.space, EUR.ledger, "alice"),
  ]);
  await write([credit(1_000_000n)]);
});
afterAll(async () => {
  inner?.destroy();
  tmp?.remove();
  await nc?.close();
  await nats?.stop();
});
beforeEach(() => {
  writes = 0;
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("expiry sweeper – bounds", () => {
  it("expiry sweeper – holds captured or released before their deadline leave its memory; only open holds stay", async () => {
    const s = sweeper();
    const early = Array.from({ length: 300 }, () => hold(3600));
    await write(early);
    await s.sweep();
    expect(s.openHolds).toBe(300);
    // Captured and released after the sweeper saw them, and a second lot resolved in the same scan.
    const late = Array.from({ length: 200 }, () => hold(3600));
    await write([
      ...early.slice(0, 150).map(capture),
      ...early.slice(150, 290).map(release),
      ...late,
      ...late.map(capture),
    ]);
    await s.sweep();
    expect(s.openHolds).toBe(10);
    expect(s.holdsInMemory).toBeLessThanOrEqual(2 * 10 + HEAP_SLACK);
  });

  it("expiry sweeper – sweeps with no due hold write nothing to the ledger", async () => {
    const s = sweeper();
    await write([hold(3600)]);
    await s.sweep();
    await s.sweep();
    await write([credit(1n)]);
    await s.sweep();
    expect(writes).toBe(0);
  });

  it("expiry sweeper – a hold due by the wall clock on an idle ledger expires, with one clock write in that sweep", async () => {
    const s = sweeper();
    await s.sweep();
    const h = hold(1);
    await write([h]);
    await s.sweep();
    expect(writes).toBe(0);
    await pause(1200);
    // Nothing written since the hold: only a clock reading can confirm its deadline passed.
    expect(await s.sweep()).toBe(1);
    expect(writes).toBe(3); // the clock reading, the void probe, the expiry marker
    writes = 0;
    await s.sweep();
    expect(writes).toBe(0);
    const events = (await storedEvents(jsm, "EVENTS")).filter(
      (e) => e.subject === `billing.evt.expired.${formatOperationId(h.id)}`,
    );
    expect(events).toHaveLength(1);
  });

  it("expiry sweeper – a due hold confirmed by a later transfer expires without a clock write", async () => {
    const s = sweeper();
    await s.sweep();
    await write([hold(1)]);
    await pause(1200);
    await write([credit(1n)]); // the ledger issued a timestamp past the deadline
    writes = 0;
    expect(await s.sweep()).toBe(1);
    expect(writes).toBe(2); // the void probe and the expiry marker
  });
});

describe("hold query – read-only", () => {
  function deps(): QueryDeps {
    return {
      nc,
      jsm,
      ledger,
      chart,
      names: new NameBook(chart.space, 100),
      eventsStream: "EVENTS",
      queue: "q",
      log: createLogger("silent"),
    };
  }
  const status = async (h: Transfer) =>
    (await holdQuery(deps(), { holdId: formatOperationId(h.id) }))["status"];

  it("hold query – held, captured, released and expired are answered without a ledger write", async () => {
    const open = hold(3600);
    const captured = hold(3600);
    const released = hold(3600);
    const expiring = hold(1);
    await write([open, captured, released, expiring]);
    await write([capture(captured), release(released)]);
    expect(await status(open)).toBe("held");
    expect(await status(captured)).toBe("captured");
    expect(await status(released)).toBe("released");
    await pause(1200);
    // Past its deadline by the wall clock, not yet by the ledger (nothing issued since): still held.
    expect(await status(expiring)).toBe("held");
    await write([credit(1n)]);
    expect(await status(expiring)).toBe("expired");
    expect(writes).toBe(0);
  });

  it("hold query – a hold the sweeper expired is expired by its marker", async () => {
    const h = hold(1);
    await write([h]);
    await pause(1200);
    const s = sweeper();
    await s.sweep();
    writes = 0;
    expect(await status(h)).toBe("expired");
    expect(writes).toBe(0);
  });
});
