// Proves that a dead letter is the original payload byte for byte, with the original headers plus
// the four Billing-* headers of the contract, that JetStream control headers of the original do
// not act on the copy, that Billing-Error is one bounded line, and that dead-lettering the same
// command again (a redelivery) stores it once. Against a real nats-server, via the commands stream:
// the command is published, consumed, and dead-lettered from the delivered message.

import { afterAll, beforeAll, expect, test } from "vitest";
import { headers } from "@nats-io/transport-node";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { ensureTopology } from "../../src/broker/topology.ts";
import { deadLetter, deadLetterErrorCharsMax, oneLine } from "../../src/broker/dead-letter.ts";
import { BrokerUnavailableError } from "../../src/broker/errors.ts";
import type { Broker } from "../../src/broker/connection.ts";
import { connectTest, testTopology } from "./fixture.ts";

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

test("broker – a dead letter carries the payload byte for byte, the original headers and the four Billing headers", async () => {
  // Not UTF-8, not JSON, with a NUL and a CR LF in it: exactly what a malformed command may be.
  const payload = new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x0d, 0x0a, 0x80, 0x22]);
  const h = headers();
  h.set("Nats-Msg-Id", "op-malformed-1");
  h.set("X-Trace-Id", "trace-42");
  h.append("X-Multi", "a");
  h.append("X-Multi", "b");
  h.set("billing-reason", "forged by the publisher"); // replaced by ours, whatever its case
  const pa = await broker.js.publish("billing.cmd.credit", payload, {
    msgID: "op-malformed-1",
    headers: h,
  });

  const consumer = await broker.js.consumers.get(t.commandsStream, t.consumer);
  const m = await consumer.next({ expires: 2_000 });
  expect(m?.seq).toBe(pa.seq);
  if (m === null) return;
  const error = 'Unexpected token \u00ff in JSON at position 0\nwhile parsing\r\n  "payload"';
  const source = {
    subject: m.subject,
    data: m.data,
    headers: m.headers ?? headers(),
    streamSequence: m.seq,
  };
  await deadLetter(broker.js, source, "malformed", error, 2_000);
  m.term();

  const dl = await broker.jsm.streams.getMessage(t.dlqStream, {
    last_by_subj: "billing.dlq.malformed",
  });
  expect(dl).not.toBeNull();
  expect(Buffer.from(dl?.data ?? []).equals(Buffer.from(payload))).toBe(true);
  const got = dl?.header;
  expect(got?.get("X-Trace-Id")).toBe("trace-42");
  expect(got?.values("X-Multi")).toEqual(["a", "b"]);
  expect(got?.get("Billing-Original-Subject")).toBe("billing.cmd.credit");
  expect(got?.get("Billing-Original-Sequence")).toBe(String(pa.seq));
  expect(got?.get("Billing-Reason")).toBe("malformed");
  expect(got?.has("billing-reason")).toBe(false);
  expect(got?.get("Billing-Error")).toBe(
    'Unexpected token \u00ff in JSON at position 0 while parsing "payload"',
  );
  // The command's own msgId is kept for operators; the copy's msgId is the dead letter's own.
  expect(got?.get("Billing-Original-Msg-Id")).toBe("op-malformed-1");
  expect(got?.get("Nats-Msg-Id")).toBe(`dlq:malformed:${pa.seq}`);
  // The caller's headers are untouched.
  expect(source.headers.get("Nats-Msg-Id")).toBe("op-malformed-1");
});

test("broker – a command dead-lettered again (redelivery) is stored once", async () => {
  const before = (await broker.jsm.streams.info(t.dlqStream)).state.messages;
  const source = {
    subject: "billing.cmd.debit",
    data: new TextEncoder().encode('{"operationId":"x"}'),
    streamSequence: 777,
  };
  await deadLetter(
    broker.js,
    source,
    "conflict",
    "operationId reused with different content",
    2_000,
  );
  await deadLetter(
    broker.js,
    source,
    "conflict",
    "operationId reused with different content",
    2_000,
  );
  expect((await broker.jsm.streams.info(t.dlqStream)).state.messages).toBe(before + 1);
  const dl = await broker.jsm.streams.getMessage(t.dlqStream, {
    last_by_subj: "billing.dlq.conflict",
  });
  expect(dl?.header.get("Billing-Original-Sequence")).toBe("777");
  expect(dl?.header.has("Billing-Original-Msg-Id")).toBe(false); // the command had no headers
});

test("broker – a command whose headers set JetStream expectations is still dead-lettered", async () => {
  // Nats-Expected-Stream would make the server refuse the copy on the DLQ stream if it were kept.
  const h = headers();
  h.set("Nats-Expected-Stream", t.commandsStream);
  h.set("Nats-Expected-Last-Sequence", "1");
  const source = {
    subject: "billing.cmd.nope",
    data: new Uint8Array([1, 2, 3]),
    headers: h,
    streamSequence: 778,
  };
  await deadLetter(broker.js, source, "max_deliveries", "delivered 5 times", 2_000);
  const dl = await broker.jsm.streams.getMessage(t.dlqStream, {
    last_by_subj: "billing.dlq.max_deliveries",
  });
  expect(dl?.header.get("Billing-Original-Sequence")).toBe("778");
  expect(dl?.header.has("Nats-Expected-Stream")).toBe(false);
});

test("broker – Billing-Error is one line of bounded length", () => {
  const long = `first line\n${"x".repeat(5_000)}`;
  const line = oneLine(long, deadLetterErrorCharsMax);
  expect(line.length).toBe(deadLetterErrorCharsMax);
  expect(line).toMatch(/^first line x+\.\.\.$/);
  expect(oneLine("\t a \r\n\r\n b \u0000", 100)).toBe("a b");
});

test("broker – a dead letter that cannot be stored throws BrokerUnavailableError", async () => {
  await broker.jsm.streams.delete(t.dlqStream);
  try {
    const source = { subject: "billing.cmd.credit", data: new Uint8Array([1]), streamSequence: 9 };
    await expect(deadLetter(broker.js, source, "malformed", "bad", 1_000)).rejects.toThrow(
      BrokerUnavailableError,
    );
  } finally {
    await ensureTopology(broker.jsm, t);
  }
});
