// The JetStream topology a configuration asks for: streams, their limits, the durable consumer.
import type { Topology } from "../broker/topology.ts";
import type { Config } from "./schema.ts";

export function topologyOf(config: Config): Topology {
  const s = config.streams;
  return {
    commandsStream: s.commands,
    eventsStream: s.events,
    dlqStream: s.dlq,
    advisoriesStream: s.advisories,
    deploymentStream: s.deployment,
    consumer: config.consumer.name,
    storage: s.storage,
    replicas: s.replicas,
    duplicateWindowMs: s.duplicateWindowMs,
    dlqDuplicateWindowMs: s.dlqDuplicateWindowMs,
    commandsMaxAgeMs: s.commandsMaxAgeMs,
    eventsMaxAgeMs: s.eventsMaxAgeMs,
    dlqMaxAgeMs: s.dlqMaxAgeMs,
    ackWaitMs: config.consumer.ackWaitMs,
    maxDeliver: config.consumer.maxDeliver,
    maxAckPending: config.consumer.maxAckPending,
    maxBatch: config.worker.batchMessagesMax,
  };
}
