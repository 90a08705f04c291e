// Proves the event publisher's contract against a real nats-server: an operation's event is
// stored once however often it is published (a repeat inside the duplicate window is acked as a
// duplicate; a repeat the window no longer covers is refused with 10071, and both count as done);
// a batch publishes everything it can and then reports the failures as one BrokerUnavailableError;
// getLastBySubject finds an event by its subject and returns null for an unknown one.

import { afterAll, beforeAll, expect, test } from "vitest";
import { JetStreamApiError } from "@nats-io/jetstream";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { ensureTopology } from "../../src/broker/topology.ts";
import { getLastBySubject } from "../../src/broker/last-by-subject.ts";
import { publishInFlightMax } from "../../src/config/limits.ts";
import { publishEvents } from "../../src/broker/publisher.ts";
import { BrokerUnavailableError } from "../../src/broker/errors.ts";
import type { Broker } from "../../src/broker/connection.ts";
import { connectTest, decode, encode, testTopology } from "./fixture.ts";

const t = testTopology();
let server: NatsServer;
let broker: Broker;

beforeAll(async () => {
  server = await startNats();
  broker = await connectTest(server.url);
  await ensureTopology(broker.jsm, t);
});

afterAll(async () => {
  await broker?.close();
  await server?.stop();
});

const opId = "6f1c2a40-0000-4000-8000-000000000001";

test("broker – an event published twice is stored once, and both publishes count as done", async () => {
  const subject = `billing.evt.credited.${opId}`;
  const event = { subject, msgId: opId, data: encode('{"event":"credited","n":1}') };
  await publishEvents(broker.js, [event], 2_000);
  // Inside the duplicate window: the server acks the repeat as duplicate: true.
  await publishEvents(broker.js, [event], 2_000);
  // Outside the window the msgId is forgotten; a different msgId models that. The expectation
  // "no message on this subject yet" refuses it with 10071, which publishEvents counts as done.
  const late = { ...event, msgId: `${opId}-after-window`, data: encode("second") };
  await publishEvents(broker.js, [late], 2_000);
  // Control: the same publish made directly is indeed refused with 10071, and a repeat of the
  // original msgId is indeed acked as a duplicate.
  const raw = await broker.js
    .publish(late.subject, late.data, { msgID: late.msgId, expect: { lastSubjectSequence: 0 } })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(raw).toBeInstanceOf(JetStreamApiError);
  expect((raw as JetStreamApiError).code).toBe(10071);
  expect((await broker.js.publish(subject, event.data, { msgID: opId })).duplicate).toBe(true);

  const info = await broker.jsm.streams.info(t.eventsStream, { subjects_filter: subject });
  expect(info.state.subjects?.[subject]).toBe(1);
  expect(info.state.messages).toBe(1);
  const stored = await getLastBySubject(broker.jsm, t.eventsStream, subject);
  expect(stored?.seq).toBe(1);
  expect(decode(stored?.data ?? new Uint8Array())).toBe('{"event":"credited","n":1}');
  expect(stored?.header.get("Nats-Msg-Id")).toBe(opId);
});

test("broker – getLastBySubject returns null for a subject with no event", async () => {
  expect(
    await getLastBySubject(broker.jsm, t.eventsStream, "billing.evt.debited.no-such-op"),
  ).toBeNull();
});

test("broker – a batch larger than the in-flight bound is stored completely, each event once", async () => {
  const n = publishInFlightMax * 2 + 7;
  const events = Array.from({ length: n }, (_, i) => {
    const id = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
    return { subject: `billing.evt.debited.${id}`, msgId: id, data: encode(`{"i":${i}}`) };
  });
  const before = (await broker.jsm.streams.info(t.eventsStream)).state.messages;
  await publishEvents(broker.js, events, 5_000);
  await publishEvents(broker.js, events, 5_000); // a whole-batch retry after a nak
  expect((await broker.jsm.streams.info(t.eventsStream)).state.messages).toBe(before + n);
});

test("broker – a failed publish fails the batch with BrokerUnavailableError after the others are stored", async () => {
  // A payload over the server's max_payload (1 MiB by default) is refused; its neighbour is not.
  const good = { subject: "billing.evt.held.op-good", msgId: "op-good", data: encode("ok") };
  const tooBig = {
    subject: "billing.evt.held.op-big",
    msgId: "op-big",
    data: new Uint8Array(2 * 1024 * 1024),
  };
  const err = await publishEvents(broker.js, [tooBig, good], 1_000).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BrokerUnavailableError);
  expect((err as Error).message).toMatch(
    /^1 of 2 events not stored; first: billing\.evt\.held\.op-big: /,
  );
  expect(await getLastBySubject(broker.jsm, t.eventsStream, good.subject)).not.toBeNull();
  expect(await getLastBySubject(broker.jsm, t.eventsStream, tooBig.subject)).toBeNull();
});

test("broker – publishing to a deleted events stream fails with BrokerUnavailableError", async () => {
  for (const s of [t.commandsStream, t.eventsStream, t.dlqStream, t.advisoriesStream])
    await broker.jsm.streams.delete(s);
  try {
    const event = {
      subject: "billing.evt.held.op-nowhere",
      msgId: "op-nowhere",
      data: encode("x"),
    };
    await expect(publishEvents(broker.js, [event], 1_000)).rejects.toThrow(BrokerUnavailableError);
  } finally {
    await ensureTopology(broker.jsm, t);
  }
});

test("broker – publishEvents of an empty batch does nothing", async () => {
  await expect(publishEvents(broker.js, [], 1_000)).resolves.toBeUndefined();
});

test("broker – PubAcks that never come fail the whole batch once, after the timeout, sent or not", async () => {
  // No stream stores the subject, but a plain subscriber takes it: nobody answers, no 503 either.
  for (const s of [t.commandsStream, t.eventsStream, t.dlqStream, t.advisoriesStream])
    await broker.jsm.streams.delete(s);
  const silent = broker.nc.subscribe("billing.evt.>");
  try {
    const events = Array.from({ length: publishInFlightMax + 10 }, (_, i) => ({
      subject: `billing.evt.held.op-silent-${i}`,
      msgId: `op-silent-${i}`,
      data: encode("x"),
    }));
    const started = Date.now();
    const err = await publishEvents(broker.js, events, 300).then(
      () => null,
      (e: unknown) => e,
    );
    const tookMs = Date.now() - started;
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^${events.length} of ${events.length} events not stored; first: .*no PubAck within 300 ms`,
      ),
    );
    expect(tookMs).toBeGreaterThanOrEqual(290);
    expect(tookMs).toBeLessThan(3_000); // one timeout for the batch, not one per window
  } finally {
    silent.unsubscribe();
    await ensureTopology(broker.jsm, t);
  }
});
