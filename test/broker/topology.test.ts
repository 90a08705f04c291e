// Proves that ensureTopology creates the four streams and the durable pull consumer with exactly
// the configured options, that it is idempotent (twice in a row; three processes at once, each on
// its own connection), that an immutable difference fails with a BrokerConfigError naming the
// consumer, and that the advisories stream really captures a MAX_DELIVERIES advisory.
// Against a real nats-server (test/support/nats-server.ts), one per file.

import { afterAll, beforeAll, expect, test } from "vitest";
import { nanos } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import {
  consumerConfig,
  ensureTopology,
  maxDeliveriesAdvisorySubject,
  consumerMaxWaiting,
} from "../../src/broker/topology.ts";
import { BrokerConfigError } from "../../src/broker/errors.ts";
import type { Broker } from "../../src/broker/connection.ts";
import { connectTest, encode, testTopology } from "./fixture.ts";

let server: NatsServer;
let broker: Broker;

beforeAll(async () => {
  server = await startNats();
  broker = await connectTest(server.url);
});

afterAll(async () => {
  await broker?.close();
  await server?.stop();
});

/** The second topology of this file: its own stream names (the subjects stay the contract's). */
function idemTopology(overrides: Parameters<typeof testTopology>[0] = {}) {
  return testTopology({
    commandsStream: "IDEM_CMD",
    eventsStream: "IDEM_EVT",
    dlqStream: "IDEM_DLQ",
    advisoriesStream: "IDEM_ADV",
    deploymentStream: "IDEM_DEP",
    ...overrides,
  });
}

test("broker – topology creates every stream and the consumer with the configured options", async () => {
  const t = testTopology({ eventsMaxAgeMs: 30 * 24 * 3_600_000, dlqMaxAgeMs: 3_600_000 });
  await ensureTopology(broker.jsm, t);

  const cmd = (await broker.jsm.streams.info(t.commandsStream)).config;
  expect(cmd).toMatchObject({
    subjects: ["billing.cmd.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: 1,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(120_000),
    max_age: 0,
    allow_direct: true,
    deny_delete: false,
    deny_purge: false,
    max_msgs: -1,
    max_bytes: -1,
  });
  const evt = (await broker.jsm.streams.info(t.eventsStream)).config;
  expect(evt).toMatchObject({
    subjects: ["billing.evt.>"],
    max_age: nanos(30 * 24 * 3_600_000),
    allow_direct: true,
    deny_delete: true,
    deny_purge: true,
  });
  const dlq = (await broker.jsm.streams.info(t.dlqStream)).config;
  // The DLQ's own window (a day) is capped by its max age (an hour).
  expect(dlq).toMatchObject({
    subjects: ["billing.dlq.>"],
    max_age: nanos(3_600_000),
    duplicate_window: nanos(3_600_000),
    deny_purge: false,
    deny_delete: false,
  });
  const adv = (await broker.jsm.streams.info(t.advisoriesStream)).config;
  expect(adv.subjects).toEqual([
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.BILLING_COMMANDS.billing-workers",
  ]);

  const c = (await broker.jsm.consumers.info(t.commandsStream, t.consumer)).config;
  expect(c).toMatchObject({
    durable_name: t.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    ack_wait: nanos(30_000),
    max_deliver: 5,
    max_ack_pending: 1_000,
    max_waiting: consumerMaxWaiting,
    max_batch: 256,
  });
  expect(c.deliver_subject ?? "").toBe(""); // a pull consumer
  expect(c.filter_subject ?? "").toBe(""); // unfiltered: see consumerConfig
});

test("broker – topology is idempotent: twice, then three processes at once, then a changed limit", async () => {
  const t = idemTopology();
  // Subjects are fixed by the contract, so this second topology needs the first one's streams gone.
  for (const s of ["BILLING_COMMANDS", "BILLING_DLQ", "BILLING_ADVISORIES", "BILLING_DEPLOYMENT"])
    await broker.jsm.streams.delete(s);
  // The events stream denies purge and delete, but a stream as a whole can still be deleted.
  await broker.jsm.streams.delete("BILLING_EVENTS");

  await ensureTopology(broker.jsm, t);
  await broker.js.publish("billing.cmd.credit", encode("{}"), { msgID: "op-1" });
  await ensureTopology(broker.jsm, t);

  const others = await Promise.all([1, 2, 3].map((i) => connectTest(server.url, `setup-${i}`)));
  try {
    await Promise.all(others.map((b) => ensureTopology(b.jsm, t)));
  } finally {
    await Promise.all(others.map((b) => b.close()));
  }
  const names: string[] = [];
  for await (const s of broker.jsm.streams.list()) names.push(s.config.name);
  expect(names.sort()).toEqual(["IDEM_ADV", "IDEM_CMD", "IDEM_DEP", "IDEM_DLQ", "IDEM_EVT"]);
  const consumers: string[] = [];
  for await (const c of broker.jsm.consumers.list("IDEM_CMD")) consumers.push(c.name);
  expect(consumers).toEqual([t.consumer]);
  // Updates keep what is stored: the command published in between is still there.
  expect((await broker.jsm.streams.info("IDEM_CMD")).state.messages).toBe(1);

  // A mutable limit changed in config is applied on the next start.
  await ensureTopology(broker.jsm, {
    ...t,
    maxAckPending: 2_000,
    ackWaitMs: 45_000,
    duplicateWindowMs: 60_000,
  });
  expect((await broker.jsm.consumers.info("IDEM_CMD", t.consumer)).config).toMatchObject({
    max_ack_pending: 2_000,
    ack_wait: nanos(45_000),
  });
  expect((await broker.jsm.streams.info("IDEM_CMD")).config.duplicate_window).toBe(nanos(60_000));
});

test("broker – topology drops the old billing.cmd.> filter of an existing consumer in place, keeping its position", async () => {
  // Consumers made before the filter was dropped (consumerConfig) carry it; on nats-server 2.9.10
  // a filtered consumer with a deep backlog delivers at a crawl after any consumer info.
  const t = idemTopology({
    consumer: "filtered",
  });
  await broker.jsm.consumers.add("IDEM_CMD", {
    ...consumerConfig(t),
    filter_subject: "billing.cmd.>",
  });
  const first = (await broker.jsm.streams.info("IDEM_CMD")).state.last_seq + 1;
  for (const id of ["op-f1", "op-f2", "op-f3"])
    await broker.js.publish("billing.cmd.credit", encode("{}"), { msgID: id });
  const before = await broker.js.consumers.get("IDEM_CMD", "filtered");
  const head: number[] = [];
  for await (const m of await before.fetch({ max_messages: first + 1, expires: 5_000 })) {
    head.push(m.info.streamSequence);
    await m.ackAck();
  }
  expect(head.at(-1)).toBe(first + 1);

  await ensureTopology(broker.jsm, t);

  const info = await broker.jsm.consumers.info("IDEM_CMD", "filtered");
  expect(info.config.filter_subject ?? "").toBe("");
  expect(info.ack_floor.stream_seq).toBe(first + 1);
  expect(info.num_pending).toBe(1);
  const after = await broker.js.consumers.get("IDEM_CMD", "filtered");
  const next: number[] = [];
  for await (const m of await after.fetch({ max_messages: 1, expires: 5_000 })) {
    next.push(m.info.streamSequence);
    m.ack();
  }
  expect(next).toEqual([first + 2]);
  // The next test counts the stream's messages: leave it as this test found it.
  for (let seq = first; seq <= first + 2; seq++)
    await broker.jsm.streams.deleteMessage("IDEM_CMD", seq, false);
});

test("broker – topology refuses an existing consumer whose immutable ack policy differs", async () => {
  const t = idemTopology({
    consumer: "legacy",
  });
  await broker.jsm.consumers.add("IDEM_CMD", {
    durable_name: "legacy",
    ack_policy: AckPolicy.All,
    deliver_policy: DeliverPolicy.All,
    filter_subject: "billing.cmd.>",
  });
  const err = await ensureTopology(broker.jsm, t).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BrokerConfigError);
  expect((err as Error).message).toMatch(
    /consumer IDEM_CMD\/legacy: the server refused our configuration: .*ack policy/,
  );
});

test("broker – topology refuses a duplicate window longer than a stream's max age", async () => {
  const t = testTopology({ dlqMaxAgeMs: 60_000, duplicateWindowMs: 120_000 });
  await expect(ensureTopology(broker.jsm, t)).rejects.toThrow(BrokerConfigError);
  await expect(ensureTopology(broker.jsm, t)).rejects.toThrow(
    /duplicateWindowMs \(120000\) exceeds dlqMaxAgeMs \(60000\)/,
  );
});

test("broker – a command that exhausts max_deliver leaves its advisory in the advisories stream", async () => {
  const t = idemTopology({
    consumer: "poison",
    maxDeliver: 2,
  });
  await ensureTopology(broker.jsm, t);
  const pa = await broker.js.publish("billing.cmd.debit", encode("poison"), { msgID: "poison-1" });
  const consumer = await broker.js.consumers.get("IDEM_CMD", "poison");
  // The stream already holds op-1 from the idempotency test; nak everything twice.
  for (let i = 0; i < 4; i++) {
    const m = await consumer.next({ expires: 1_000 });
    expect(m).not.toBeNull();
    m?.nak();
  }
  // The next pull makes the server find both messages exhausted and publish the advisories.
  expect(await consumer.next({ expires: 1_000 })).toBeNull();
  const advisory = await broker.jsm.streams.getMessage("IDEM_ADV", {
    last_by_subj: maxDeliveriesAdvisorySubject(t),
  });
  expect(advisory).not.toBeNull();
  const body = advisory?.json<{
    stream: string;
    consumer: string;
    stream_seq: number;
    deliveries: number;
  }>();
  expect(body).toMatchObject({ stream: "IDEM_CMD", consumer: "poison", deliveries: 2 });
  expect([1, pa.seq]).toContain(body?.stream_seq);
  expect((await broker.jsm.streams.info("IDEM_ADV")).state.messages).toBe(2);
});
