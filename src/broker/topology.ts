// JetStream topology: the four streams and the one durable pull consumer, created or updated
// idempotently at start-up (and by `billing setup`). Safe to run twice, or from several processes
// at once: every process sends the same configuration, and the server treats an identical
// create or update as a no-op.
//
// Every option is passed explicitly. On nats-server 2.9.10 (see the shared notes §5.7):
// - streams.update merges our config into the stored one; an immutable difference (storage,
//   deny_delete/deny_purge true → false, max_consumers) is refused with a JetStreamApiError.
// - consumers.add on an existing durable updates it; an immutable difference (ack_policy,
//   deliver_policy, replay_policy, max_waiting) is refused. Both refusals become
//   BrokerConfigError naming the stream or consumer and the server's reason.
// - Only options known to 2.9 are sent (no metadata, compression, first_seq, …), so the v3 client
//   never has to refuse one for the server's version.

import { nanos } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { assert } from "../lib/assert.ts";
import { BrokerConfigError, BrokerUnavailableError } from "./errors.ts";
import { describeFailure, JETSTREAM_TEMPORARILY_UNAVAILABLE } from "../lib/failure.ts";

export interface Topology {
  commandsStream: string;
  eventsStream: string;
  dlqStream: string;
  advisoriesStream: string;
  /** The one deployment record (src/deployment.ts). */
  deploymentStream: string;
  consumer: string;
  storage: "file" | "memory";
  replicas: number;
  duplicateWindowMs: number;
  /** The dead-letter stream's own, longer window: a letter retried after a broker crash is stored once. */
  dlqDuplicateWindowMs: number;
  commandsMaxAgeMs: number; // 0 = forever
  eventsMaxAgeMs: number; // 0 = forever
  dlqMaxAgeMs: number; // 0 = forever; also bounds the advisories stream
  ackWaitMs: number;
  maxDeliver: number;
  maxAckPending: number;
  maxBatch: number; // the consumer's max_batch: a fetch may ask for at most this many messages
}

// Subjects fixed by the public contract (docs/contract.md, "Streams and subjects").
export const commandsSubjects = "billing.cmd.>";
export const eventsSubjects = "billing.evt.>";
export const dlqSubjects = "billing.dlq.>";
export const deploymentSubject = "billing.deployment";

// The server's pull-request queue length per consumer (its own default, 512, named here so that
// it is explicit). Immutable on 2.9: changing it means deleting the consumer.
export const consumerMaxWaiting = 512;

// JetStream's "stream name already in use" (a concurrent create with a different config won).
const streamNameExistCode = 10058;

// The advisory the server publishes when a command exhausted max_deliver; persisted so that the
// worker can dead-letter the command later, even if no process was listening at the time.
export function maxDeliveriesAdvisorySubject(
  t: Pick<Topology, "commandsStream" | "consumer">,
): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${t.commandsStream}.${t.consumer}`;
}

export async function ensureTopology(jsm: JetStreamManager, t: Topology): Promise<void> {
  assertTopology(t);
  for (const cfg of streamConfigs(t)) await ensureStream(jsm, cfg);
  await ensureConsumer(jsm, t.commandsStream, consumerConfig(t));
}

// The stream options we set, every one of them; the rest of StreamConfig is 2.10+ only.
export type StreamSettings = Pick<
  StreamConfig,
  | "name"
  | "subjects"
  | "retention"
  | "storage"
  | "num_replicas"
  | "max_consumers"
  | "max_msgs"
  | "max_bytes"
  | "max_msg_size"
  | "max_msgs_per_subject"
  | "max_age"
  | "discard"
  | "discard_new_per_subject"
  | "duplicate_window"
  | "allow_direct"
  | "mirror_direct"
  | "allow_rollup_hdrs"
  | "sealed"
  | "deny_delete"
  | "deny_purge"
> & { no_ack: boolean };

// The stream configurations, in creation order. Exported for tests and `billing setup` output.
export function streamConfigs(t: Topology): StreamSettings[] {
  const storage = t.storage === "file" ? StorageType.File : StorageType.Memory;
  const stream = (
    name: string,
    subjects: string,
    maxAgeMs: number,
    deny: boolean,
    windowMs = t.duplicateWindowMs,
  ): StreamSettings => ({
    name,
    subjects: [subjects],
    retention: RetentionPolicy.Limits,
    storage,
    num_replicas: t.replicas,
    max_consumers: -1,
    max_msgs: -1,
    max_bytes: -1,
    max_msg_size: -1,
    max_msgs_per_subject: -1,
    max_age: nanos(maxAgeMs),
    discard: DiscardPolicy.Old,
    discard_new_per_subject: false,
    duplicate_window: nanos(windowMs),
    // Readers (queries) get an operation's event by subject with a direct get.
    allow_direct: true,
    mirror_direct: false,
    allow_rollup_hdrs: false,
    no_ack: false,
    sealed: false,
    deny_delete: deny,
    deny_purge: deny,
  });
  return [
    // Commands may be deleted or purged by an operator in an incident: the ledger, not the
    // stream, is the record of what was applied.
    stream(t.commandsStream, commandsSubjects, t.commandsMaxAgeMs, false),
    // The events stream is the public record of outcomes, at most one per operation: nobody may
    // delete or purge it through the API (only max_age retires events). One-way on the server.
    stream(t.eventsStream, eventsSubjects, t.eventsMaxAgeMs, true),
    // Operators read and then purge dead letters.
    // Its window covers a crash between a letter and its claim (src/broker/dead-letter.ts).
    stream(t.dlqStream, dlqSubjects, t.dlqMaxAgeMs, false, dlqWindowMs(t)),
    stream(t.advisoriesStream, maxDeliveriesAdvisorySubject(t), t.dlqMaxAgeMs, false),
    // Which ledger serves these streams: one message, kept forever, never deleted or purged.
    stream(t.deploymentStream, deploymentSubject, 0, true),
  ];
}

/** The DLQ's window: the longer of the two, never beyond the DLQ's max age (the server refuses that). */
export function dlqWindowMs(t: Topology): number {
  const window = Math.max(t.duplicateWindowMs, t.dlqDuplicateWindowMs);
  return t.dlqMaxAgeMs > 0 ? Math.min(window, t.dlqMaxAgeMs) : window;
}

export function consumerConfig(t: Topology): ConsumerConfig {
  return {
    durable_name: t.consumer,
    description: "billing workers: every command, in order, explicit ack",
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    // No filter_subject: the stream holds only commandsSubjects, so an unfiltered consumer
    // delivers the same messages. With a wildcard filter, nats-server 2.9.10 counts the
    // consumer's pending messages by scanning the stream's block from the consumer's position,
    // and after any consumer info (command recovery, /metrics, an operator's `nats consumer
    // info`) taken while the backlog is deep it loses the count and scans again for every message
    // it delivers: delivery fell to ~300 messages/s per process with 14,000 waiting (bench/broker/
    // filtered-consumer.ts). An existing consumer created with the filter is updated in place
    // (2.9.10 allows it; position and acknowledgements are kept). Never the other way: 2.9.10
    // delivers nothing from a consumer made without a filter and given a wildcard one later, which
    // is what a process of an older version does at its start (docs/operations.md).
    ack_wait: nanos(t.ackWaitMs),
    max_deliver: t.maxDeliver,
    max_ack_pending: t.maxAckPending,
    max_waiting: consumerMaxWaiting,
    max_batch: t.maxBatch,
    headers_only: false,
    num_replicas: t.replicas,
    // Consumer state follows the stream's storage (a memory stream keeps it in memory anyway).
    mem_storage: false,
  };
}

function assertTopology(t: Topology): void {
  const names = [
    t.commandsStream,
    t.eventsStream,
    t.dlqStream,
    t.advisoriesStream,
    t.deploymentStream,
  ];
  assert(new Set(names).size === names.length, "topology: stream names must differ");
  for (const name of [...names, t.consumer]) {
    assert(
      /^[A-Za-z0-9_-]{1,255}$/.test(name),
      `topology: invalid stream or consumer name "${name}"`,
    );
  }
  const positive = {
    replicas: t.replicas,
    ackWaitMs: t.ackWaitMs,
    maxAckPending: t.maxAckPending,
    maxBatch: t.maxBatch,
  };
  for (const [key, value] of Object.entries(positive)) {
    assert(
      Number.isSafeInteger(value) && value > 0,
      `topology: ${key} must be a positive integer, got ${value}`,
    );
  }
  assert(
    t.maxDeliver === -1 || (Number.isSafeInteger(t.maxDeliver) && t.maxDeliver > 0),
    "topology: maxDeliver > 0 or -1",
  );
  const ages = {
    commandsMaxAgeMs: t.commandsMaxAgeMs,
    eventsMaxAgeMs: t.eventsMaxAgeMs,
    dlqMaxAgeMs: t.dlqMaxAgeMs,
  };
  assert(
    Number.isSafeInteger(t.duplicateWindowMs) && t.duplicateWindowMs > 0,
    "topology: duplicateWindowMs > 0",
  );
  for (const [key, value] of Object.entries(ages)) {
    assert(Number.isSafeInteger(value) && value >= 0, `topology: ${key} must be ≥ 0`);
    // The server refuses a duplicate window longer than max_age; say so in our terms.
    if (value > 0 && t.duplicateWindowMs > value) {
      throw new BrokerConfigError(
        `topology: duplicateWindowMs (${t.duplicateWindowMs}) exceeds ${key} (${value})`,
      );
    }
  }
}

async function ensureStream(jsm: JetStreamManager, cfg: StreamSettings): Promise<void> {
  let info: StreamInfo;
  try {
    info = await updateOrAdd(jsm, cfg);
  } catch (err) {
    throw toTopologyError(`stream ${cfg.name}`, err);
  }
  checkStream(cfg, info);
}

async function updateOrAdd(jsm: JetStreamManager, cfg: StreamSettings): Promise<StreamInfo> {
  const { name, ...update } = cfg;
  try {
    // streams.update reads the stored config, merges ours in and sends it: info → update.
    return await jsm.streams.update(name, update);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound))
      throw err;
  }
  try {
    return await jsm.streams.add(cfg);
  } catch (err) {
    // Another process created it between our update and add; an identical add would have
    // succeeded, so its config differs from ours in some way: bring it to ours.
    if (err instanceof JetStreamApiError && err.code === streamNameExistCode)
      return jsm.streams.update(name, update);
    throw err;
  }
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  cfg: ConsumerConfig,
): Promise<void> {
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.add(stream, cfg);
  } catch (err) {
    throw toTopologyError(`consumer ${stream}/${cfg.durable_name ?? "?"}`, err);
  }
  checkConsumer(cfg, info);
}

// The server answered with an error: our configuration is at fault. No answer: transient.
function toTopologyError(what: string, err: unknown): Error {
  // "Temporarily unavailable" (a clustered JetStream electing its leader) is an answer, not a refusal.
  if (err instanceof JetStreamApiError && err.code !== JETSTREAM_TEMPORARILY_UNAVAILABLE) {
    return new BrokerConfigError(
      `${what}: the server refused our configuration: ${err.message} (code ${err.code})`,
      { cause: err },
    );
  }
  return new BrokerUnavailableError(`${what}: ${describeFailure(err)}`, { cause: err });
}

// A server that silently ignored or rewrote an option would leave us running on a configuration
// nobody chose; compare what it reports with what we sent.
function checkStream(cfg: StreamSettings, info: StreamInfo): void {
  const got = info.config;
  const keys = [
    "subjects",
    "retention",
    "storage",
    "num_replicas",
    "max_age",
    "duplicate_window",
    "discard",
    "allow_direct",
    "deny_delete",
    "deny_purge",
  ] as const;
  const diffs = keys.filter((k) => JSON.stringify(got[k]) !== JSON.stringify(cfg[k]));
  if (diffs.length > 0) {
    const detail = diffs
      .map((k) => `${k}: want ${JSON.stringify(cfg[k])}, got ${JSON.stringify(got[k])}`)
      .join("; ");
    throw new BrokerConfigError(`stream ${cfg.name} does not have our configuration: ${detail}`);
  }
}

function checkConsumer(cfg: ConsumerConfig, info: ConsumerInfo): void {
  const got = info.config;
  const keys = [
    "ack_policy",
    "deliver_policy",
    "replay_policy",
    "filter_subject",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
    "max_waiting",
    "max_batch",
  ] as const;
  const diffs = keys.filter((k) => got[k] !== cfg[k]);
  if (diffs.length > 0) {
    const detail = diffs
      .map((k) => `${k}: want ${String(cfg[k])}, got ${String(got[k])}`)
      .join("; ");
    throw new BrokerConfigError(
      `consumer ${info.stream_name}/${info.name} does not have our configuration: ${detail}`,
    );
  }
}
