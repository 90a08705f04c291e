// Proves that command recovery judges the recent ranges again under a new leader of the commands
// stream. On the 3-node 2.9.10 cluster a new leader's store was seen to hold other commands at some
// sequences than the old one had delivered (docs/guarantees.md, finding 4), so a range checked under
// one leader is not taken as checked under the next. Here: three real nats-servers, R3 streams, one
// service; commands acked on the service's consumer by another client (so no worker sees them) are
// published again once (on a cluster, a starting process reads the ranges it walks back over from
// the stream's leader, one message get each), every range is recorded under the leader it was
// checked under; after a leader stepdown every recent range is recorded again naming the new
// leader, and nothing is copied twice (each copy has its own record).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { checkedLeaderHeader } from "../../src/recovery/command-recovery.ts";
import { connectToCluster, newStreamLeader, streamLeader } from "../support/cluster.ts";
import { startNatsCluster, type NatsCluster } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { storedEvents, storedMessages, waitFor, waitIdle } from "../support/streams.ts";

const RANGE = 4;
const COMMANDS = "BILLING_COMMANDS";

let cluster: NatsCluster;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let ws: ReturnType<typeof workspace>;

beforeAll(async () => {
  cluster = await startNatsCluster();
  nc = await connectToCluster(cluster);
  js = jetstream(nc, { timeout: 10_000 });
  jsm = await jetstreamManager(nc, { timeout: 10_000 });
  ws = workspace({
    streams: { replicas: 3 },
    commandRecovery: {
      intervalMs: 200,
      lagMs: 1_000,
      rangeCommands: RANGE,
      rangesPerScanMax: 64,
      rangesBackMax: 100,
    },
  });
  await (await startInProcess(cluster.url, ws.ledgerPath, ws.configPath)).stop();
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
  ws?.cleanup();
});

async function checkedRecords(): Promise<Map<string, string>> {
  const records = new Map<string, string>(); // subject → leader of its last record
  for (const m of await storedMessages(jsm, "BILLING_DLQ"))
    if (m.subject.startsWith("billing.dlq.checked."))
      records.set(m.subject, m.header?.get(checkedLeaderHeader) ?? "");
  return records;
}

async function copies(): Promise<number> {
  return (await storedMessages(jsm, COMMANDS)).filter((m) => m.header?.has("Billing-Recovered-Of"))
    .length;
}

describe("command recovery – a new leader of the commands stream", () => {
  it("ranges checked under one leader are checked again under the next; nothing is copied twice", async () => {
    const ids = Array.from({ length: 10 }, () => randomUUID());
    for (const [i, id] of ids.entries())
      await js.publish(
        "billing.cmd.credit",
        JSON.stringify({ operationId: id, userId: `lcc-${i}`, amount: "3" }),
        { msgID: id },
      );
    // Five of them taken from the service's consumer and acked by this client: no worker sees them.
    const consumer = await js.consumers.get(COMMANDS, "billing-worker");
    for (let taken = 0; taken < 5;) {
      for await (const m of await consumer.fetch({ max_messages: 5 - taken, expires: 2_000 })) {
        await m.ackAck();
        taken += 1;
      }
    }
    const service = await startInProcess(cluster.url, ws.ledgerPath, ws.configPath);
    try {
      await waitFor(
        "an event for every command",
        async () => {
          const events = await storedEvents(jsm);
          return ids.every((id) => events.some((e) => e.subject.endsWith(`.${id}`)));
        },
        60_000,
        200,
      );
      await waitIdle(jsm);
      const first = await streamLeader(jsm, COMMANDS);
      const last = (await jsm.streams.info(COMMANDS)).state.last_seq;
      const whole = Math.floor(last / RANGE);
      await waitFor(
        "every whole range recorded under the leader",
        async () => {
          const records = await checkedRecords();
          return records.size >= whole && [...records.values()].every((l) => l === first);
        },
        30_000,
        200,
      );
      expect(await copies()).toBe(5);

      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${COMMANDS}`, "", { timeout: 10_000 });
      const next = await newStreamLeader(jsm, COMMANDS, first);
      await waitFor(
        `every range recorded again under ${next}`,
        async () => {
          const records = await checkedRecords();
          return records.size >= whole && [...records.values()].every((l) => l === next);
        },
        60_000,
        200,
      );
      expect(await copies()).toBe(5);
      const events = await storedEvents(jsm);
      for (const id of ids)
        expect(
          events.filter((e) => e.subject.endsWith(`.${id}`)),
          id,
        ).toHaveLength(1);
    } finally {
      await service.stop();
    }
  }, 240_000);
});
