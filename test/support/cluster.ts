// JetStream on a test cluster (test/support/nats-server.ts, startNatsCluster), seen through a
// client: when the cluster's JetStream answers at all (after its meta-leader election), which
// node leads a stream, and when every replica of a stream has caught up. Each wait has a deadline
// and says what it waited for when it runs out.
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { NatsCluster } from "./nats-server.ts";
import { waitFor } from "./streams.ts";

// A fresh 2.9.10 cluster elects its meta leader in 2-5 s; on a busy 2-core machine give it more.
const JETSTREAM_READY_TIMEOUT_MS = 60_000;
// A stream leader election after its leader died took ~7 s here (2.9.10, three nodes on loopback).
const LEADER_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
// One API request while the cluster elects: short, so that a request lost to a dying node does not
// use up the wait.
const API_TIMEOUT_MS = 2_000;

/** Waits until the cluster's JetStream answers an account-info request. */
export async function waitForJetStream(
  nc: NatsConnection,
  timeoutMs = JETSTREAM_READY_TIMEOUT_MS,
): Promise<void> {
  await waitFor(
    "the cluster's JetStream (meta leader elected)",
    async () => {
      try {
        const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS, checkAPI: false });
        await jsm.getAccountInfo();
        return true;
      } catch {
        return false;
      }
    },
    timeoutMs,
    POLL_MS,
  );
}

/** The server_name of the node that leads the stream now (waits while it has none). */
/** The server_name of the node that leads the durable consumer now (waits while it has none, or JetStream is electing). */
export async function consumerLeader(
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
  timeoutMs = LEADER_TIMEOUT_MS,
): Promise<string> {
  return waitFor(
    `a leader for consumer ${consumer} on ${stream}`,
    async () => {
      const info = await jsm.consumers.info(stream, consumer).catch(() => null);
      const leader = info?.cluster?.leader;
      return leader !== undefined && leader !== "" ? leader : null;
    },
    timeoutMs,
    POLL_MS,
  );
}

export async function streamLeader(
  jsm: JetStreamManager,
  stream: string,
  timeoutMs = LEADER_TIMEOUT_MS,
): Promise<string> {
  return waitFor(
    `a leader for stream ${stream}`,
    async () => {
      const info = await jsm.streams.info(stream).catch(() => null);
      const leader = info?.cluster?.leader;
      return leader !== undefined && leader !== "" ? leader : null;
    },
    timeoutMs,
    POLL_MS,
  );
}

/** Waits until the stream has a leader other than `former` (a node just killed or stopped). */
export async function newStreamLeader(
  jsm: JetStreamManager,
  stream: string,
  former: string,
  timeoutMs = LEADER_TIMEOUT_MS,
): Promise<string> {
  return waitFor(
    `a new leader for stream ${stream} (was ${former})`,
    async () => {
      const info = await jsm.streams.info(stream).catch(() => null);
      const leader = info?.cluster?.leader;
      return leader !== undefined && leader !== "" && leader !== former ? leader : null;
    },
    timeoutMs,
    POLL_MS,
  );
}

/**
 * Waits until the stream has a leader and `replicas` − 1 followers that are current: a node
 * restarted on its store has caught up, so the next fault does not leave the stream on one node.
 */
export async function waitForReplicasCurrent(
  jsm: JetStreamManager,
  streams: readonly string[],
  replicas: number,
  timeoutMs = LEADER_TIMEOUT_MS,
): Promise<void> {
  for (const stream of streams) {
    await waitFor(
      `${replicas} current replicas of stream ${stream}`,
      async () => {
        const info = await jsm.streams.info(stream).catch(() => null);
        const c = info?.cluster;
        if (c?.leader === undefined || c.leader === "") return false;
        const current = (c.replicas ?? []).filter((r) => r.current && !r.offline).length;
        return current >= replicas - 1;
      },
      timeoutMs,
      POLL_MS,
    );
  }
}

/**
 * A client of every node that reconnects for as long as the test runs (nodes are killed and
 * restarted under it), returned once the cluster's JetStream answers.
 */
export async function connectToCluster(
  cluster: Pick<NatsCluster, "urls">,
): Promise<NatsConnection> {
  const nc = await connect({
    servers: [...cluster.urls],
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  await waitForJetStream(nc);
  return nc;
}
