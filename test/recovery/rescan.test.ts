// Proves the rescan's bounds and its handling of failure, in process, against a real ledger file and
// real nats-servers: a service applies a workload on broker A; each test then runs the recovery
// against a fresh broker whose events stream holds nothing (as a stream lost with its disk and
// recreated), so every applied operation's event is missing there. A scan step reads at most
// RECOVERY_SCAN_PAGES_MAX pages and the rescan ends at the newest decision; the events it stores are byte
// for byte those broker A got from the worker; a second rescan finds nothing missing; a stream
// that refuses the events leaves the cursor where it was and the next step stores them; events
// younger than lagMs or older than the events stream's max age are not touched.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { ensureTopology } from "../../src/broker/topology.ts";
import { createLogger } from "../../src/lib/log.ts";
import type { Ledger } from "../../src/ledger/port.ts";
import { RECOVERY_SCAN_PAGES_MAX } from "../../src/config/limits.ts";
import { EventRecovery, type RecoveryLimits } from "../../src/recovery/event-recovery.ts";
import {
  connect,
  openServiceLedger,
  readChart,
  startService,
  topologyOf,
} from "../../src/service.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import type { Broker } from "../../src/broker/connection.ts";
import type { Chart } from "../../src/domain/accounts.ts";
import type { Config } from "../../src/config/schema.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { testConfig, workspace } from "../support/service.ts";
import { storedMessages } from "../support/streams.ts";

let a: NatsServer;
let ws: ReturnType<typeof workspace>;
let config: Config;
let ledger: Ledger;
let chart: Chart;
/** Subject → the event's bytes as the worker stored them on broker A. */
const originals = new Map<string, string>();
const OPERATIONS = 14;

const limits: RecoveryLimits = {
  windowMs: 600_000,
  lagMs: 0,
  intervalMs: 100,
  transfersPerScanMax: 1,
  eventsMaxAgeMs: 0,
  publishTimeoutMs: 5_000,
};
const silent = createLogger("silent");

function recoveryOn(
  broker: Broker,
  overrides: Partial<RecoveryLimits> = {},
  counted: number[] = [],
): EventRecovery {
  return new EventRecovery({
    ledger,
    js: broker.js,
    jsm: broker.jsm,
    eventsStream: "BILLING_EVENTS",
    chart,
    names: new NameBook(chart.space, 1_000),
    log: silent,
    limits: { ...limits, ...overrides },
    recovered: (n) => counted.push(n),
  });
}

beforeAll(async () => {
  a = await startNats();
  ws = workspace();
  config = testConfig(a.url, ws.ledgerPath, ws.configPath);
  const service = await startService(config, silent);
  const client = await BillingClient.connect({ servers: a.url, timeoutMs: 15_000 });
  try {
    const send = { wait: true } as const;
    await client.credit({ userId: "r-a", amount: 500 }, send);
    for (let i = 0; i < 5; i += 1)
      await client.transfer(
        { fromUserId: "r-a", toUserId: `r-${i}`, amount: 10 + i, fee: i % 2 },
        send,
      );
    const h = await client.hold({ userId: "r-a", amount: 40 }, send);
    await client.capture({ holdId: h.operationId }, send);
    const h2 = await client.hold({ userId: "r-1", amount: 5 }, send);
    await client.release({ holdId: h2.operationId }, send);
    for (let i = 0; i < 4; i += 1) await client.debit({ userId: "r-a", amount: 1 + i }, send);
    const jsmA = await jetstreamManager(client.nc);
    for (const m of await storedMessages(jsmA, "BILLING_EVENTS"))
      originals.set(m.subject, new TextDecoder().decode(m.data));
  } finally {
    await client.close();
    await service.stop();
  }
  expect(originals.size).toBe(OPERATIONS);
  ledger = await openServiceLedger(config);
  const brokerA = await connect(config, "rescan-test-a");
  chart = await readChart(config, brokerA, ledger);
  await brokerA.close();
});

afterAll(async () => {
  ledger?.destroy();
  await a?.stop();
  ws?.cleanup();
});

/** A fresh broker whose events stream is empty, as one lost with its disk and recreated. */
async function emptyBroker(): Promise<{ broker: Broker; close(): Promise<void> }> {
  const server = await startNats();
  const broker = await connect(testConfig(server.url, ws.ledgerPath, ws.configPath), "rescan-test");
  await ensureTopology(broker.jsm, topologyOf(config));
  return {
    broker,
    close: async () => {
      await broker.close();
      await server.stop();
    },
  };
}

async function eventsOn(broker: Broker): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const m of await storedMessages(broker.jsm, "BILLING_EVENTS"))
    out.set(m.subject, [...(out.get(m.subject) ?? []), new TextDecoder().decode(m.data)]);
  return out;
}

describe("recovery – the rescan", () => {
  it("every applied operation's event comes back as the worker's bytes; a second rescan finds nothing missing", async () => {
    const b = await emptyBroker();
    try {
      const counted: number[] = [];
      const recovery = recoveryOn(b.broker, { transfersPerScanMax: 1_000 }, counted);
      expect(await recovery.scan()).toBe(OPERATIONS);
      expect(recovery.scanning).toBe(false);
      expect(counted).toEqual([OPERATIONS]);
      const stored = await eventsOn(b.broker);
      expect(stored.size).toBe(OPERATIONS);
      for (const [subject, data] of originals) expect(stored.get(subject), subject).toEqual([data]);
      const again = recoveryOn(b.broker, { transfersPerScanMax: 1_000 });
      expect(await again.scan()).toBe(0);
    } finally {
      await b.close();
    }
  });

  it("a stream refusing the events fails the step as transient, counts what it stored, keeps the cursor; the next step stores the rest", async () => {
    const b = await emptyBroker();
    try {
      await b.broker.jsm.streams.update("BILLING_EVENTS", {
        max_msgs: 3,
        discard: DiscardPolicy.New,
      });
      const counted: number[] = [];
      const recovery = recoveryOn(b.broker, { transfersPerScanMax: 1_000 }, counted);
      const error = await recovery.scan().catch((e: unknown) => e);
      expect((error as Error).name).toBe("BrokerUnavailableError");
      expect((error as Error).message).toMatch(
        new RegExp(`^${OPERATIONS - 3} of ${OPERATIONS} recovered events not stored`),
      );
      expect(counted).toEqual([3]);
      expect(recovery.scanning).toBe(true);
      await b.broker.jsm.streams.update("BILLING_EVENTS", {
        max_msgs: -1,
        discard: DiscardPolicy.Old,
      });
      expect(await recovery.scan()).toBe(OPERATIONS - 3);
      expect(recovery.scanning).toBe(false);
      expect([...(await eventsOn(b.broker)).values()].map((list) => list.length)).toEqual(
        new Array(OPERATIONS).fill(1),
      );
    } finally {
      await b.close();
    }
  });

  it("a step reads at most RECOVERY_SCAN_PAGES_MAX pages; the rescan goes on until the newest decision, then idles", async () => {
    const b = await emptyBroker();
    try {
      // 14 operations and 2 fee legs, in pages of one transfer.
      const recovery = recoveryOn(b.broker, { transfersPerScanMax: 1 });
      const perStep: number[] = [];
      while (recovery.scanning && perStep.length < 10) perStep.push(await recovery.scan());
      expect(perStep.length).toBe(Math.ceil((OPERATIONS + 2) / RECOVERY_SCAN_PAGES_MAX));
      expect(perStep.reduce((x, y) => x + y, 0)).toBe(OPERATIONS);
      expect(perStep[0]).toBeLessThanOrEqual(RECOVERY_SCAN_PAGES_MAX);
      expect(await recovery.scan()).toBe(0); // idle: no rescan under way
      recovery.rewind();
      expect(recovery.scanning).toBe(true);
    } finally {
      await b.close();
    }
  });

  it("events younger than lagMs, or older than the events stream's max age, are left alone", async () => {
    const b = await emptyBroker();
    try {
      const young = recoveryOn(b.broker, { lagMs: 3_600_000, transfersPerScanMax: 1_000 });
      expect(await young.scan()).toBe(0);
      expect(young.scanning).toBe(true); // waits for the lag to pass
      const retired = recoveryOn(b.broker, { eventsMaxAgeMs: 1, transfersPerScanMax: 1_000 });
      expect(await retired.scan()).toBe(0);
      expect((await b.broker.jsm.streams.info("BILLING_EVENTS")).state.messages).toBe(0);
    } finally {
      await b.close();
    }
  });
});
