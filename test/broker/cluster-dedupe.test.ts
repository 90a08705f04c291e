// Measures what nats-server 2.9.10 does with the two duplicate guards the service relies on when a
// stream's leader changes in the middle of publishing: `Nats-Msg-Id` inside the duplicate window
// (commands and events) and the expected-last-subject-sequence 0 check (events). Three real nodes
// (test/support/nats-server.ts, startNatsCluster), the service's own R3 topology (ensureTopology
// with replicas 3). Eight publishers send commands and events with fresh ids and retry each one
// with the same id until the server answers; the node leading the commands stream is SIGKILLed,
// then (once it is back and caught up) the node leading the events stream. A publish whose first
// attempt got no answer and whose retry is answered "duplicate" or "wrong last sequence" was
// stored by the first attempt although its publisher never heard so. Then every message published
// before the first kill is published again, to the new leaders, inside the window. The test counts
// stored copies per id from the streams themselves: one each, whatever the leader changes did;
// then once more under new message ids, as after the window, so that only the subject check
// can refuse them. The printed table is what docs/guarantees.md ("Across a stream leader change") reports.
import {
  jetstream,
  jetstreamManager,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTopology } from "../../src/broker/topology.ts";
import {
  connectToCluster,
  newStreamLeader,
  streamLeader,
  waitForReplicasCurrent,
} from "../support/cluster.ts";
import { startNatsCluster, type NatsCluster } from "../support/nats-server.ts";
import { storedMessages } from "../support/streams.ts";
import { testTopology } from "./fixture.ts";

const COMMANDS = "BILLING_COMMANDS";
const EVENTS = "BILLING_EVENTS";
const STREAMS = [COMMANDS, EVENTS, "BILLING_DLQ", "BILLING_ADVISORIES", "BILLING_DEPLOYMENT"];
const LANES = 8;
/** Messages published (each to both streams) before the first kill: re-published after both. */
const BEFORE = 200;
/** One publish attempt: short, so that an attempt lost with a dying leader is retried soon. */
const ATTEMPT_MS = 1_000;
/** A publish is retried this long (two leader elections take ~15 s here) before the test fails. */
const PERSIST_MS = 60_000;
const WRONG_LAST_SEQUENCE = 10071;
/** A pause between one lane's publishes: ~200 pairs a second in all, a few thousand ids over the run. */
const LANE_PAUSE_MS = 40;

type Answer = "stored" | "duplicate" | "wrong last sequence";
type Tally = Record<Answer, number> & { retried: number; retriedAnswers: Record<Answer, number> };

const tally = (): Tally => ({
  stored: 0,
  duplicate: 0,
  "wrong last sequence": 0,
  retried: 0,
  retriedAnswers: { stored: 0, duplicate: 0, "wrong last sequence": 0 },
});
const encoder = new TextEncoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Publishes until the server answers; what it answered, and whether an earlier attempt went unanswered. */
async function publishUntilAnswered(
  js: JetStreamClient,
  subject: string,
  msgId: string,
  expectEmpty: boolean,
): Promise<{ answer: Answer; retried: boolean }> {
  const deadline = Date.now() + PERSIST_MS;
  for (let attempt = 0; ; attempt += 1) {
    try {
      const ack = await js.publish(subject, encoder.encode(msgId), {
        msgID: msgId,
        timeout: ATTEMPT_MS,
        ...(expectEmpty ? { expect: { lastSubjectSequence: 0 } } : {}),
      });
      return { answer: ack.duplicate ? "duplicate" : "stored", retried: attempt > 0 };
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE)
        return { answer: "wrong last sequence", retried: attempt > 0 };
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

function count(t: Tally, r: { answer: Answer; retried: boolean }): void {
  t[r.answer] += 1;
  if (r.retried) {
    t.retried += 1;
    t.retriedAnswers[r.answer] += 1;
  }
}

/** One command and its event, as the publisher and the worker send them. */
async function publishPair(
  js: JetStreamClient,
  id: string,
  commands: Tally,
  events: Tally,
): Promise<void> {
  const [c, e] = await Promise.all([
    publishUntilAnswered(js, "billing.cmd.credit", id, false),
    publishUntilAnswered(js, `billing.evt.credited.${id}`, id, true),
  ]);
  count(commands, c);
  count(events, e);
}

/** SIGKILLs the node leading `stream`, waits for another leader, restarts it and waits until every stream is whole. */
async function killLeader(
  cluster: NatsCluster,
  jsm: JetStreamManager,
  stream: string,
): Promise<string> {
  const leader = await streamLeader(jsm, stream);
  await cluster.node(leader).kill("SIGKILL");
  const next = await newStreamLeader(jsm, stream, leader);
  await sleep(1_000);
  await cluster.node(leader).restart();
  await waitForReplicasCurrent(jsm, STREAMS, 3);
  return `${leader} → ${next}`;
}

describe("broker – duplicate guards across a stream leader change (three nodes, R3)", () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    cluster = await startNatsCluster();
    nc = await connectToCluster(cluster);
    jsm = await jetstreamManager(nc, { timeout: 5_000 });
    await ensureTopology(jsm, testTopology({ replicas: 3 }));
  }, 120_000);

  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it("a message retried with its Nats-Msg-Id, or its event with expected last subject sequence 0, is stored once across two leader changes, and re-published to the new leaders inside the window it is refused", async () => {
    const js = jetstream(nc, { timeout: ATTEMPT_MS });
    const live = { commands: tally(), events: tally() };
    const again = { commands: tally(), events: tally() };
    const before = Array.from({ length: BEFORE }, (_, i) => `before-${i}`);
    for (const id of before) await publishPair(js, id, live.commands, live.events);

    let stop = false;
    let next = 0;
    const lanes = Array.from({ length: LANES }, async () => {
      while (!stop) {
        await publishPair(js, `during-${next++}`, live.commands, live.events);
        await sleep(LANE_PAUSE_MS);
      }
    });
    await sleep(1_000);
    const changes = [`${COMMANDS}: ${await killLeader(cluster, jsm, COMMANDS)}`];
    await sleep(1_000);
    changes.push(`${EVENTS}: ${await killLeader(cluster, jsm, EVENTS)}`);
    await sleep(1_000);
    stop = true;
    await Promise.all(lanes);
    for (const id of before) await publishPair(js, id, again.commands, again.events);
    // As after the window: the same events under new message ids, so only the subject check can refuse them.
    const late = tally();
    for (const id of before)
      count(late, await publishUntilAnswered(js, `billing.evt.credited.${id}`, `late-${id}`, true));

    const perId = (
      msgs: Awaited<ReturnType<typeof storedMessages>>,
      key: (m: (typeof msgs)[number]) => string,
    ): Map<string, number> => {
      const m = new Map<string, number>();
      for (const msg of msgs) m.set(key(msg), (m.get(key(msg)) ?? 0) + 1);
      return m;
    };
    const commands = perId(
      await storedMessages(jsm, COMMANDS),
      (m) => m.header?.get("Nats-Msg-Id") ?? "",
    );
    const events = perId(await storedMessages(jsm, EVENTS), (m) => m.subject);
    const published = BEFORE + next;
    const row = (name: string, t: Tally): string =>
      `| ${name} | ${t.stored} | ${t.duplicate} | ${t["wrong last sequence"]} | ${t.retried} | ${t.retriedAnswers.stored} / ${t.retriedAnswers.duplicate} / ${t.retriedAnswers["wrong last sequence"]} |`;
    console.log(
      [
        `leader changes: ${changes.join("; ")}; ${published} ids published to each stream`,
        "| publishes | stored | duplicate | wrong last sequence | retried after no answer | retried: stored / duplicate / wrong last seq |",
        row("commands, live", live.commands),
        row("events, live", live.events),
        row("commands, again after both changes", again.commands),
        row("events, again after both changes", again.events),
        row("events, again with new msg ids", late),
        `stored copies: commands ${commands.size} ids, ${[...commands.values()].filter((n) => n > 1).length} with more than one; events ${events.size} subjects, ${[...events.values()].filter((n) => n > 1).length} with more than one`,
      ].join("\n"),
    );

    expect(commands.size).toBe(published);
    expect([...commands.values()].filter((n) => n !== 1)).toEqual([]);
    expect(events.size).toBe(published);
    expect([...events.values()].filter((n) => n !== 1)).toEqual([]);
    // Re-published inside the window after both leader changes: the new leaders still know every id.
    expect(again.commands.stored).toBe(0);
    expect(again.events.stored).toBe(0);
    expect(late["wrong last sequence"]).toBe(BEFORE);
  }, 180_000);
});
