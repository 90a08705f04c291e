// Proves the bound on publishing a decided command again at max deliveries: the first rounds
// publish it again (one round more in a header each time), and past REDELIVERY_ROUNDS_MAX it is
// dead-lettered after all, naming the decision, so a replay that fails every time cannot take the
// workers down forever. How: a real nats-server, a real SQLite ledger holding the credit's
// transfer, and the processor's own handleAdvisory on advisories for the stored copies.
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { headers } from "@nats-io/transport-node";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import { ensureTopology } from "../../src/broker/topology.ts";
import { systemAccounts, userAccounts } from "../../src/domain/accounts.ts";
import { decodeCommand } from "../../src/domain/commands.ts";
import { planTransfers } from "../../src/domain/plan.ts";
import { REDELIVERY_ROUNDS_MAX } from "../../src/config/limits.ts";
import {
  advisoryContextOf,
  handleAdvisory,
  redeliveryRoundHeader,
} from "../../src/dlq/max-deliveries-processor.ts";
import { openLedger } from "../../src/ledger/index.ts";
import type { Ledger } from "../../src/ledger/port.ts";
import { chartOf, topologyOf } from "../../src/service.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { testConfig, workspace } from "../support/service.ts";
import { testSpace } from "../support/space.ts";
import { storedMessages } from "../support/streams.ts";

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let broker: Broker;
let ledger: Ledger;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace();
  broker = await connectBroker({
    servers: [nats.url],
    name: "redelivery-rounds-test",
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
  ledger = await openLedger({ driver: "embedded", path: join(ws.dir, "ledger.db") });
});

afterAll(async () => {
  ledger?.destroy();
  await broker?.close();
  await nats?.stop();
  ws?.cleanup();
});

it("a decided command is published again at max deliveries for rounds 1..max, then dead-lettered naming the decision", async () => {
  const config = testConfig(nats.url, join(ws.dir, "ledger.db"), ws.configPath);
  const chart = chartOf(config, testSpace);
  await ensureTopology(broker.jsm, topologyOf(config));
  // The credit is decided in the ledger (its transfer is there), as a worker would have left it.
  const data = new TextEncoder().encode(
    JSON.stringify({ operationId: randomUUID(), userId: "rounds", amount: "5" }),
  );
  const decoded = decodeCommand("billing.cmd.credit", data, chart, config.worker);
  if (decoded.kind !== "command") throw new Error("the credit does not decode");
  await ledger.createAccounts([
    ...systemAccounts(chart),
    ...userAccounts(chart.space, 978, "rounds"),
  ]);
  await ledger.createTransfers(planTransfers(chart, decoded.command, decoded.fingerprint, null));
  const ctx = advisoryContextOf({
    js: broker.js,
    jsm: broker.jsm,
    config,
    decisions: { ledger, chart },
  });
  const advisory = (seq: number) => ({
    stream: config.streams.commands,
    consumer: config.consumer.name,
    streamSequence: seq,
    deliveries: config.consumer.maxDeliver,
  });

  for (let round = 0; round <= REDELIVERY_ROUNDS_MAX; round += 1) {
    const h = headers();
    if (round > 0) h.set(redeliveryRoundHeader, String(round));
    const stored = await broker.js.publish("billing.cmd.credit", data, {
      headers: h,
      msgID: `round-${round}`,
    });
    const outcome = await handleAdvisory(ctx, advisory(stored.seq));
    if (round < REDELIVERY_ROUNDS_MAX) {
      expect(outcome).toBe("redelivered");
      const copies = await storedMessages(broker.jsm, config.streams.commands);
      expect(copies.at(-1)?.header?.get(redeliveryRoundHeader)).toBe(String(round + 1));
    } else {
      expect(outcome).toBe("dead_lettered");
    }
  }
  const letters = (await storedMessages(broker.jsm, config.streams.dlq)).filter(
    (m) => m.subject === "billing.dlq.max_deliveries",
  );
  expect(letters).toHaveLength(1);
  expect(letters[0]?.header?.get("Billing-Error")).toContain(
    `decided in the ledger, but its event was still not stored after ${REDELIVERY_ROUNDS_MAX} republishes`,
  );
});
