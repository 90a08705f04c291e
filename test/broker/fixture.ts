// Shared by the broker tests: a topology with short, test-sized limits and a connection helper.
// Each test file starts its own nats-server (test/support/nats-server.ts).

import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import type { Topology } from "../../src/broker/topology.ts";

export function testTopology(overrides: Partial<Topology> = {}): Topology {
  return {
    commandsStream: "BILLING_COMMANDS",
    eventsStream: "BILLING_EVENTS",
    dlqStream: "BILLING_DLQ",
    advisoriesStream: "BILLING_ADVISORIES",
    deploymentStream: "BILLING_DEPLOYMENT",
    consumer: "billing-workers",
    storage: "file",
    replicas: 1,
    duplicateWindowMs: 120_000,
    dlqDuplicateWindowMs: 86_400_000,
    commandsMaxAgeMs: 0,
    eventsMaxAgeMs: 0,
    dlqMaxAgeMs: 7 * 24 * 3_600_000,
    ackWaitMs: 30_000,
    maxDeliver: 5,
    maxAckPending: 1_000,
    maxBatch: 256,
    ...overrides,
  };
}

export function connectTest(url: string, name = "broker-test"): Promise<Broker> {
  return connectBroker({ servers: [url], name, connectTimeoutMs: 2_000, apiTimeoutMs: 2_000 });
}

export const encode = (s: string): Uint8Array => new TextEncoder().encode(s);
export const decode = (b: Uint8Array): string => new TextDecoder().decode(b);
