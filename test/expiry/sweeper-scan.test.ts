// The sweeper reads each stretch of the ledger once: a scan that finds no hold still moves its
// cursor past the ledger time it searched up to, so later sweeps read only what is new (a cursor
// left behind made every sweep re-read the whole holdTimeoutSecondsMax window), and a sweep after
// which the ledger issued nothing new reads nothing at all. Real embedded
// ledger file, real nats-server for the sweeper's JetStream client.
import path from "node:path";
import { testSpace } from "../support/space.ts";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TransferFlags, type QueryFilter, type Transfer } from "tigerbeetle-node";
import { loadConfig } from "../../src/config/load.ts";
import {
  systemAccounts,
  userAccounts,
  userAccountId,
  settlementAccountId,
} from "../../src/domain/accounts.ts";
import { COMMAND_CODES } from "../../src/domain/commands.ts";
import { TransferCode } from "../../src/domain/plan.ts";
import { ExpirySweeper } from "../../src/expiry/sweeper.ts";
import { openLedger, type Ledger } from "../../src/ledger/index.ts";
import { createLogger } from "../../src/lib/log.ts";
import { chartOf } from "../../src/service.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { tempDir } from "../ledger/support/drivers.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";

let nats: NatsServer;
let nc: NatsConnection;
let tmp: ReturnType<typeof tempDir>;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  tmp = tempDir("sweeper-scan-");
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  tmp?.remove();
});

it("expiry sweeper – a scan that finds no hold is not read again; a later hold is found in the new stretch", async () => {
  const config = loadConfig({});
  const chart = chartOf(config, testSpace);
  const eur = chart.currencies[0] as { ledger: number };
  const inner = await openLedger({ driver: "embedded", path: path.join(tmp.dir, "ledger.db") });
  const scans: Array<{ filter: QueryFilter; found: number }> = [];
  const ledger: Ledger = {
    ...inner,
    queryTransfers: async (filter) => {
      const found = await inner.queryTransfers(filter);
      // The scans only: the read-only clock (one reversed query for the newest transfer) is not one.
      if (filter.code === TransferCode.hold) scans.push({ filter, found: found.length });
      return found;
    },
  };
  await inner.createAccounts([
    ...systemAccounts(chart),
    ...userAccounts(chart.space, eur.ledger, "alice"),
  ]);
  const user = userAccountId(chart.space, eur.ledger, "alice");
  let id = 1000n;
  const credit = (): Transfer => ({
    id: id++,
    debit_account_id: settlementAccountId(chart.space, eur.ledger),
    credit_account_id: user,
    amount: 10n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: COMMAND_CODES.credit,
    timeout: 0,
    ledger: eur.ledger,
    code: TransferCode.credit,
    flags: 0,
    timestamp: 0n,
  });
  const sweeper = new ExpirySweeper({
    ledger,
    js: jetstream(nc),
    chart,
    names: new NameBook(testSpace, 100),
    log: createLogger("silent"),
    limits: {
      sweepIntervalMs: 1000,
      holdsPerSweepMax: 100,
      holdTimeoutSecondsMax: config.worker.holdTimeoutSecondsMax,
      publishTimeoutMs: 1000,
    },
  });
  try {
    await inner.createTransfers(Array.from({ length: 50 }, credit));
    await sweeper.sweep();
    await inner.createTransfers(Array.from({ length: 50 }, credit));
    await sweeper.sweep();
    const hold: Transfer = {
      ...credit(),
      debit_account_id: user,
      credit_account_id: settlementAccountId(chart.space, eur.ledger),
      amount: 5n,
      user_data_64: chart.space.tag,
      user_data_32: COMMAND_CODES.hold,
      code: TransferCode.hold,
      flags: TransferFlags.pending,
      timeout: 3600,
    };
    await inner.createTransfers([hold]);
    await sweeper.sweep();
    await sweeper.sweep();
    // The fourth sweep reads nothing: the ledger issued no timestamp since the third searched up to.
    expect(scans.map((s) => s.found)).toEqual([0, 0, 1]);
    for (let i = 1; i < scans.length; i++) {
      const before = scans[i - 1]?.filter as QueryFilter;
      const now = scans[i]?.filter as QueryFilter;
      // Contiguous, never overlapping: each scan starts right after the time the previous one searched up to.
      expect(now.timestamp_min).toBe(before.timestamp_max + 1n);
      expect(now.timestamp_max).toBeGreaterThan(before.timestamp_max);
    }
  } finally {
    inner.destroy();
  }
});
