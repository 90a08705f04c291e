// The raw ceiling: the service's broker pipeline with no ledger work. One process connects like
// the service (same config, topology, consume() buffer, Batcher and publishEvents), and for each
// batch publishes one event per command (Nats-Msg-Id + expected last subject sequence 0, awaited
// PubAcks) and then acks. Whatever the service adds on top of this is decode, ledger and facts.
//
// Started by the bench with NATS_URL and BILLING_CONFIG; prints "raw worker started" when ready;
// SIGTERM finishes the batch in hand and exits 0.
import type { JsMsg } from "@nats-io/jetstream";
import { connectBroker } from "../../src/broker/connection.ts";
import { publishEvents, type OutgoingEvent } from "../../src/broker/publisher.ts";
import { ensureTopology } from "../../src/broker/topology.ts";
import { loadConfig } from "../../src/config/load.ts";
import { Batcher } from "../../src/worker/batcher.ts";
import { topologyOf } from "./topology.ts";

/** Bytes of a typical event of the mix (a transferred event with two balance lines is ~420). */
const EVENT_BYTES = 360;
const EVENT_OF: Record<string, string> = {
  credit: "credited",
  debit: "debited",
  hold: "held",
  capture: "captured",
  release: "released",
  transfer: "transferred",
};

function eventOf(m: JsMsg, payload: Uint8Array): OutgoingEvent {
  const operationId = m.headers?.get("Nats-Msg-Id") ?? "";
  const command = m.subject.slice("billing.cmd.".length);
  return {
    subject: `billing.evt.${EVENT_OF[command] ?? "rejected"}.${operationId}`,
    msgId: operationId,
    data: payload,
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const broker = await connectBroker({
    servers: config.nats.servers,
    name: "billing-raw",
    connectTimeoutMs: config.nats.connectTimeoutMs,
    apiTimeoutMs: config.nats.requestTimeoutMs,
  });
  await ensureTopology(broker.jsm, topologyOf(config));
  const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
  const messages = await consumer.consume({
    max_messages: config.worker.batchMessagesMax,
    expires: 30_000,
  });
  const batcher = new Batcher(messages[Symbol.asyncIterator](), config.worker.batchMessagesMax);
  const payload = new TextEncoder().encode(
    JSON.stringify({ event: "raw", pad: "x".repeat(EVENT_BYTES - 24) }),
  );
  const stop = new AbortController();
  process.once("SIGTERM", () => stop.abort());
  process.once("SIGINT", () => stop.abort());
  process.stdout.write("raw worker started\n");
  const w = config.worker;
  for (;;) {
    const batch = await batcher.take(w.batchMessagesMax, w.batchWaitMs, stop.signal);
    if (batch === null) break;
    await publishEvents(
      broker.js,
      batch.map((m) => eventOf(m, payload)),
      w.publishTimeoutMs,
    );
    for (const m of batch) m.ack();
  }
  for (const m of batcher.drainBuffered()) m.nak();
  await messages.close().catch(() => undefined);
  await broker.close();
}

await main();
