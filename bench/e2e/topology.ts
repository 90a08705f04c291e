// The run's JetStream topology from its config: the same mapping as src/service.ts topologyOf,
// repeated so that the raw worker and the bench process do not load the ledger module.
import type { Topology } from "../../src/broker/topology.ts";
import type { Config } from "../../src/config/schema.ts";

export function topologyOf(config: Config): Topology {
  const s = config.streams;
  return {
    commandsStream: s.commands, eventsStream: s.events, dlqStream: s.dlq, advisoriesStream: s.advisories, consumer: config.consumer.name,
    storage: s.storage, replicas: s.replicas, duplicateWindowMs: s.duplicateWindowMs, commandsMaxAgeMs: s.commandsMaxAgeMs,
    eventsMaxAgeMs: s.eventsMaxAgeMs, dlqMaxAgeMs: s.dlqMaxAgeMs, ackWaitMs: config.consumer.ackWaitMs,
    maxDeliver: config.consumer.maxDeliver, maxAckPending: config.consumer.maxAckPending, maxBatch: config.worker.batchMessagesMax,
  };
}
