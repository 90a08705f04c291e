// Shared by the dead-letter tests: a test configuration, the topology it implies, a logger whose
// lines the test can read, and a way to make the real server give up on a command (max deliveries).
import { topologyOf } from "../../src/config/topology.ts";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import { ensureTopology, maxDeliveriesAdvisorySubject } from "../../src/broker/topology.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import type { Logger } from "../../src/lib/log.ts";
import type { DlqIo } from "../../src/dlq/cli.ts";
import { waitFor } from "../support/streams.ts";

// The smallest max_deliver the config cross-check allows with holdGraceMs = holdWaitNakMs
// (ceil(1000 / 1000) + 5 < 7).
export const MAX_DELIVER = 7;

export function dlqConfig(natsUrl: string, overrides: Record<string, unknown> = {}): Config {
  const base = {
    nats: { requestTimeoutMs: 2_000, connectTimeoutMs: 2_000 },
    consumer: { maxDeliver: MAX_DELIVER, ackWaitMs: 30_000 },
    worker: { holdGraceMs: 1_000, holdWaitNakMs: 1_000, publishTimeoutMs: 2_000 },
    dlq: { advisoriesBatchMax: 10, listMax: 100 },
  };
  return loadConfig(
    { NATS_URL: natsUrl, LOG_LEVEL: "silent" },
    merge(base, overrides) as Parameters<typeof loadConfig>[1],
  );
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isRecord(prev) && isRecord(v) ? merge(prev, v) : v;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export { topologyOf };

export async function connectWithTopology(config: Config, name = "dlq-test"): Promise<Broker> {
  const broker = await connectBroker({
    servers: config.nats.servers,
    name,
    connectTimeoutMs: 2_000,
    apiTimeoutMs: 2_000,
  });
  await ensureTopology(broker.jsm, topologyOf(config));
  return broker;
}

export interface MemoryLog {
  log: Logger;
  lines(): Array<Record<string, unknown>>;
}

export function memoryLog(level = "debug"): MemoryLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { log: pino({ level }, sink), lines: () => lines };
}

export interface MemoryIo extends DlqIo {
  stdout(): string;
  stderr(): string;
}

export function memoryIo(env: Record<string, string> = { USER: "tester" }): MemoryIo {
  let out = "";
  let err = "";
  return {
    env,
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    stdout: () => out,
    stderr: () => err,
  };
}

export async function advisoryCount(jsm: JetStreamManager, config: Config): Promise<number> {
  return (await jsm.streams.info(config.streams.advisories)).state.messages;
}

// Publishes a command and naks every delivery of it until the server gives up and publishes its
// MAX_DELIVERIES advisory (captured by the advisories stream). Returns the command's sequence.
// The commands consumer must have nothing else pending.
export async function exhaustDeliveries(
  js: JetStreamClient,
  jsm: JetStreamManager,
  config: Config,
  command: { subject: string; data: Uint8Array; msgId: string; headers?: MsgHdrs },
): Promise<number> {
  const before = await advisoryCount(jsm, config);
  const pa = await js.publish(command.subject, command.data, {
    msgID: command.msgId,
    ...(command.headers ? { headers: command.headers } : {}),
  });
  const consumer = await js.consumers.get(config.streams.commands, config.consumer.name);
  for (let delivery = 1; delivery <= config.consumer.maxDeliver; delivery++) {
    const m = await consumer.next({ expires: 2_000 });
    if (m === null || m.seq !== pa.seq)
      throw new Error(
        `delivery ${delivery}: expected command #${pa.seq}, got ${m === null ? "nothing" : `#${m.seq}`}`,
      );
    m.nak();
  }
  // The server notices the exhausted command when a pull asks for the next message.
  const extra = await consumer.next({ expires: 1_000 });
  if (extra !== null) throw new Error(`command #${extra.seq} delivered after max deliveries`);
  await waitFor(
    "the MAX_DELIVERIES advisory",
    async () => (await advisoryCount(jsm, config)) > before,
    10_000,
  );
  return pa.seq;
}

// A copy of the last advisory, published again: what the server does after a crash.
export async function duplicateLastAdvisory(
  js: JetStreamClient,
  jsm: JetStreamManager,
  config: Config,
): Promise<void> {
  const subject = maxDeliveriesAdvisorySubject({
    commandsStream: config.streams.commands,
    consumer: config.consumer.name,
  });
  const last = await jsm.streams.getMessage(config.streams.advisories, { last_by_subj: subject });
  if (last === null) throw new Error("no advisory to duplicate");
  await js.publish(subject, last.data);
}

export const encode = (s: string): Uint8Array => new TextEncoder().encode(s);
export const decode = (b: Uint8Array): string => new TextDecoder().decode(b);
