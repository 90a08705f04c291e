// Isolates, without the service, what the cluster fault suite's SIGSTOP scenario met on
// nats-server 2.9.10: after the node leading the commands stream was stopped (SIGSTOP) past the
// election timeout and resumed, the durable pull consumer reported nothing pending and nothing
// unacknowledged while commands it had never delivered were in the stream. Here: three real nodes,
// the service's own R3 commands stream and durable consumer (ensureTopology, replicas 3); four
// publishers store commands (retrying each with its Nats-Msg-Id until acknowledged) while one
// client fetches and acks every message; the stream's leader, then the consumer's, is stopped for 12 s
// and resumed, four times, while the load goes on. Then: every acknowledged command must have been delivered, and the consumer
// must not call itself idle while one was not. On 2.9.10 this held (11,278 commands, 4 stops, all
// delivered): what the fault suite met needs more than one fetching client (see docs/guarantees.md).
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTopology } from "../../src/broker/topology.ts";
import {
  connectToCluster,
  consumerLeader,
  streamLeader,
  waitForReplicasCurrent,
} from "../support/cluster.ts";
import { startNatsCluster, type NatsCluster } from "../support/nats-server.ts";
import { testTopology } from "../broker/fixture.ts";
import { FULL } from "./harness.ts";

const COMMANDS = "BILLING_COMMANDS";
const CONSUMER = "billing-workers";
const STREAMS = [
  COMMANDS,
  "BILLING_EVENTS",
  "BILLING_DLQ",
  "BILLING_ADVISORIES",
  "BILLING_DEPLOYMENT",
];
const LANES = 4;
const LANE_PAUSE_MS = 20;
/** Longer than the ~7 s a stream's survivors took to elect another leader here. */
const STOP_MS = 12_000;
const STOPS = 4;
const ATTEMPT_MS = 1_000;
const SETTLE_MS = 60_000;
const encoder = new TextEncoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function publishUntilStored(js: JetStreamClient, id: string): Promise<void> {
  for (;;) {
    try {
      await js.publish("billing.cmd.credit", encoder.encode(id), {
        msgID: id,
        timeout: ATTEMPT_MS,
      });
      return;
    } catch {
      await sleep(50);
    }
  }
}

/** Fetches and acks until stopped; every message's Nats-Msg-Id goes into `seen`. */
async function consumeAll(
  js: JetStreamClient,
  seen: Set<string>,
  stopped: () => boolean,
): Promise<void> {
  while (!stopped()) {
    try {
      const consumer = await js.consumers.get(COMMANDS, CONSUMER);
      const batch = await consumer.fetch({ max_messages: 200, expires: 1_000 });
      for await (const m of batch) {
        seen.add(m.headers?.get("Nats-Msg-Id") ?? "");
        m.ack();
      }
    } catch {
      await sleep(100);
    }
  }
}

// 90 s: the full form only (npm run test:fault).
if (!FULL)
  console.log("cluster consumer under SIGSTOP: runs in the full form only (npm run test:fault)");

describe.skipIf(!FULL)(
  "broker – a durable consumer on R3 after its stream's leader was stopped past the election timeout",
  () => {
    let cluster: NatsCluster;
    let nc: NatsConnection;
    let jsm: JetStreamManager;

    beforeAll(async () => {
      cluster = await startNatsCluster();
      nc = await connectToCluster(cluster);
      jsm = await jetstreamManager(nc, { timeout: 5_000 });
      await ensureTopology(jsm, testTopology({ replicas: 3, ackWaitMs: 3_000, maxDeliver: -1 }));
    }, 120_000);

    afterAll(async () => {
      for (const node of cluster?.nodes ?? []) {
        try {
          process.kill(node.pid, "SIGCONT");
        } catch {
          // not running
        }
      }
      await nc?.close();
      await cluster?.stop();
    });

    it("every acknowledged command is delivered, and the consumer is not idle before", async () => {
      const js = jetstream(nc, { timeout: ATTEMPT_MS });
      const stored = new Set<string>();
      const seen = new Set<string>();
      let publishing = true;
      let consuming = true;
      let next = 0;
      const lanes = Array.from({ length: LANES }, async () => {
        while (publishing) {
          const id = `c-${next++}`;
          await publishUntilStored(js, id);
          stored.add(id);
          await sleep(LANE_PAUSE_MS);
        }
      });
      const consumer = consumeAll(js, seen, () => !consuming);
      await sleep(2_000);
      // As the fault suite does: four stops, the stream's leader, then the consumer's, then again.
      const stops: string[] = [];
      for (let k = 0; k < STOPS; k += 1) {
        const name =
          k % 2 === 0
            ? await streamLeader(jsm, COMMANDS)
            : await consumerLeader(jsm, COMMANDS, CONSUMER);
        stops.push(`${k % 2 === 0 ? "stream" : "consumer"} leader ${name}`);
        const node = cluster.node(name);
        process.kill(node.pid, "SIGSTOP"); // only the pid we spawned
        await sleep(STOP_MS);
        process.kill(node.pid, "SIGCONT");
        await waitForReplicasCurrent(jsm, STREAMS, 3);
        await sleep(2_000);
      }
      await sleep(3_000);
      publishing = false;
      await Promise.all(lanes);
      // Idle by the consumer's own account, then the client's view.
      let info = await jsm.consumers.info(COMMANDS, CONSUMER);
      for (
        const until = Date.now() + SETTLE_MS;
        Date.now() < until &&
        (info.num_pending > 0 ||
          info.num_ack_pending > 0 ||
          [...stored].some((id) => !seen.has(id)));
        await sleep(500)
      ) {
        info = await jsm.consumers.info(COMMANDS, CONSUMER).catch(() => info);
      }
      consuming = false;
      await consumer;
      const missing = [...stored].filter((id) => !seen.has(id));
      const state = (await jsm.streams.info(COMMANDS)).state;
      console.log(
        `stopped ${STOP_MS} ms each: ${stops.join(", ")}; ${stored.size} commands stored, ${seen.size} delivered, ${missing.length} never delivered (${missing.slice(0, 5).join(", ")}); consumer: pending ${info.num_pending}, unacknowledged ${info.num_ack_pending}, delivered to stream seq ${info.delivered.stream_seq}, ack floor ${info.ack_floor.stream_seq}; stream: ${state.messages} messages, last seq ${state.last_seq}`,
      );
      expect(missing).toEqual([]);
    }, 180_000);
  },
);
