// Proves that the max-deliveries processor turns each command the server gave up on into exactly
// one dead letter (reason max_deliveries, the payload byte for byte, the original headers), even
// when the advisory is duplicated inside or outside the duplicate window, when two processors run
// at once, and across a processor restart; that a command deleted meanwhile still gets a letter
// (empty, explanatory) and an error log; that an advisory it cannot read is logged, not dropped.
// How: a real nats-server with the service's topology; the server's own MAX_DELIVERIES advisory is
// produced by naking a command consumer.maxDeliver times, duplicates by re-publishing its bytes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers } from "@nats-io/transport-node";
import type { StoredMsg } from "@nats-io/jetstream";
import type { Broker } from "../../src/broker/connection.ts";
import { connectBroker } from "../../src/broker/connection.ts";
import { ensureTopology, maxDeliveriesAdvisorySubject } from "../../src/broker/topology.ts";
import type { Config } from "../../src/config/schema.ts";
import { claimSubject } from "../../src/broker/dead-letter.ts";
import {
  advisoryConsumerName,
  advisoryContextOf,
  handleAdvisory,
  startAdvisoryProcessor,
  type AdvisoryProcessor,
} from "../../src/dlq/max-deliveries-processor.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { storedMessages, waitFor, waitIdle } from "../support/streams.ts";
import {
  connectWithTopology,
  dlqConfig,
  topologyOf,
  duplicateLastAdvisory,
  encode,
  exhaustDeliveries,
  memoryLog,
} from "./fixture.ts";

// Short, so that "outside the duplicate window" takes a moment in a test.
const DUPLICATE_WINDOW_MS = 1_000;

let nats: NatsServer;
let config: Config;
let broker: Broker;
let second: Broker;

beforeAll(async () => {
  nats = await startNats();
  config = dlqConfig(nats.url, { streams: { duplicateWindowMs: DUPLICATE_WINDOW_MS } });
  broker = await connectWithTopology(config);
  second = await connectWithTopology(config, "dlq-test-2");
});

afterAll(async () => {
  await broker?.close();
  await second?.close();
  await nats?.stop();
});

let next = 0;
const command = (extra: Record<string, unknown> = {}) => {
  next += 1;
  const operationId = `op-max-${next}`;
  return {
    subject: "billing.cmd.credit",
    data: encode(JSON.stringify({ operationId, userId: "u-1", amount: "5", ...extra })),
    msgId: operationId,
  };
};

async function lettersOf(seq: number): Promise<StoredMsg[]> {
  const all = await storedMessages(broker.jsm, config.streams.dlq);
  return all.filter(
    (m) =>
      m.subject === "billing.dlq.max_deliveries" &&
      m.header.get("Billing-Original-Sequence") === String(seq),
  );
}

function start(b: Broker, log = memoryLog()): AdvisoryProcessor {
  return startAdvisoryProcessor({ js: b.js, jsm: b.jsm, config, log: log.log });
}

async function settled(): Promise<void> {
  await waitFor("the advisory consumer to exist", async () =>
    broker.jsm.consumers
      .info(config.streams.advisories, advisoryConsumerName(config))
      .catch(() => null),
  );
  await waitIdle(broker.jsm, config.streams.advisories, advisoryConsumerName(config), 20_000);
}

describe("dlq processor – max deliveries", () => {
  it("warns at start only when the dead-letter stream's duplicate window is shorter than an advisory's redelivery", async () => {
    const warned = async (c: Config): Promise<boolean> => {
      const log = memoryLog();
      const p = startAdvisoryProcessor({ js: broker.js, jsm: broker.jsm, config: c, log: log.log });
      // Stopped at once: before its subscription was read from, a stop used to hang for good.
      await p.stop();
      return log
        .lines()
        .some((l) =>
          String(l["msg"]).startsWith("duplicate window shorter than the advisory retry"),
        );
    };
    // The commands stream's window here is 1 s, but letters are deduplicated in the DLQ's (a day).
    expect(await warned(config)).toBe(false);
    expect(
      await warned(
        dlqConfig(nats.url, { streams: { duplicateWindowMs: 1_000, dlqDuplicateWindowMs: 1_000 } }),
      ),
    ).toBe(true);
  });

  it("a command that exhausts its deliveries is dead-lettered once as max_deliveries, byte for byte with its headers", async () => {
    const processor = start(broker);
    try {
      const h = headers();
      h.set("X-Trace-Id", "trace-7");
      const c = command();
      const seq = await exhaustDeliveries(broker.js, broker.jsm, config, { ...c, headers: h });
      const [letter] = await waitFor("the letter", async () => {
        const found = await lettersOf(seq);
        return found.length > 0 ? found : null;
      });
      await settled();
      expect(await lettersOf(seq)).toHaveLength(1);
      expect(Buffer.from(letter?.data ?? []).equals(Buffer.from(c.data))).toBe(true);
      const got = letter?.header;
      expect(got?.get("Billing-Reason")).toBe("max_deliveries");
      expect(got?.get("Billing-Original-Subject")).toBe("billing.cmd.credit");
      expect(got?.get("Billing-Original-Msg-Id")).toBe(c.msgId);
      expect(got?.get("X-Trace-Id")).toBe("trace-7");
      expect(got?.get("Nats-Msg-Id")).toBe(`dlq:max_deliveries:${seq}`);
      expect(got?.get("Billing-Error")).toContain(`delivered ${config.consumer.maxDeliver} times`);
      const marker = await broker.jsm.streams.getMessage(config.streams.dlq, {
        last_by_subj: claimSubject("max_deliveries", seq),
      });
      expect(marker?.header.get("Billing-Original-Sequence")).toBe(String(seq));
    } finally {
      await processor.stop();
    }
  });

  it("a duplicate advisory inside the duplicate window stores no second letter", async () => {
    const log = memoryLog();
    const processor = start(broker, log);
    try {
      const seq = await exhaustDeliveries(broker.js, broker.jsm, config, command());
      await duplicateLastAdvisory(broker.js, broker.jsm, config);
      await waitFor(
        "both advisories handled",
        async () => log.lines().filter((l) => l["commandSequence"] === seq).length === 2,
      );
      await settled();
      expect(await lettersOf(seq)).toHaveLength(1);
      expect(
        log
          .lines()
          .filter((l) => l["commandSequence"] === seq)
          .map((l) => l["verdict"])
          .sort(),
      ).toEqual(["already_dead_lettered", "dead_lettered"]);
    } finally {
      await processor.stop();
    }
  });

  it("a duplicate advisory after the duplicate window and a processor restart stores no second letter", async () => {
    const first = start(broker);
    const seq = await exhaustDeliveries(broker.js, broker.jsm, config, command());
    await waitFor("the letter", async () => (await lettersOf(seq)).length === 1);
    await settled();
    await first.stop();
    // Past the window, the letter's msgId no longer dedupes: only the marker stands in the way.
    await new Promise((r) => setTimeout(r, DUPLICATE_WINDOW_MS + 500));
    await duplicateLastAdvisory(broker.js, broker.jsm, config);
    const log = memoryLog();
    const restarted = start(broker, log);
    try {
      await waitFor("the duplicate handled", async () =>
        log.lines().some((l) => l["commandSequence"] === seq),
      );
      await settled();
      expect(await lettersOf(seq)).toHaveLength(1);
      expect(log.lines().find((l) => l["commandSequence"] === seq)?.["verdict"]).toBe(
        "already_dead_lettered",
      );
    } finally {
      await restarted.stop();
    }
  });

  it("two processes handling the same advisory at the same moment store one letter and one marker", async () => {
    const seq = await exhaustDeliveries(broker.js, broker.jsm, config, command());
    const advisory = {
      stream: config.streams.commands,
      consumer: config.consumer.name,
      streamSequence: seq,
      deliveries: config.consumer.maxDeliver,
    };
    // Neither sees a marker yet: the letter's msgId and the marker's expectation decide.
    const outcomes = await Promise.all([
      handleAdvisory(advisoryContextOf({ js: broker.js, jsm: broker.jsm, config }), advisory),
      handleAdvisory(advisoryContextOf({ js: second.js, jsm: second.jsm, config }), advisory),
    ]);
    expect(outcomes).toEqual(["dead_lettered", "dead_lettered"]);
    expect(await lettersOf(seq)).toHaveLength(1);
    const markers = (await storedMessages(broker.jsm, config.streams.dlq)).filter(
      (m) => m.subject === claimSubject("max_deliveries", seq),
    );
    expect(markers).toHaveLength(1);
    // The server's own advisory for this command is still in the stream: let a processor take it.
    const processor = start(broker);
    await settled();
    await processor.stop();
    expect(await lettersOf(seq)).toHaveLength(1);
  });

  it("two processors at once, with every advisory duplicated twice, dead-letter each command once", async () => {
    const [logA, logB] = [memoryLog(), memoryLog()];
    const a = start(broker, logA);
    const b = start(second, logB);
    try {
      const seqs: number[] = [];
      for (let i = 0; i < 3; i++) {
        seqs.push(await exhaustDeliveries(broker.js, broker.jsm, config, command()));
        await duplicateLastAdvisory(broker.js, broker.jsm, config);
        await duplicateLastAdvisory(broker.js, broker.jsm, config);
      }
      const handled = () =>
        [...logA.lines(), ...logB.lines()].filter((l) =>
          seqs.includes(l["commandSequence"] as number),
        );
      await waitFor("nine advisories handled", async () => handled().length === 9);
      await settled();
      // Two copies handled at the same moment may both report dead_lettered; the stream holds one.
      for (const seq of seqs) expect(await lettersOf(seq)).toHaveLength(1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("a command deleted from the commands stream meanwhile gets an explanatory empty letter and an error log", async () => {
    const seq = await exhaustDeliveries(broker.js, broker.jsm, config, command());
    expect(await broker.jsm.streams.deleteMessage(config.streams.commands, seq)).toBe(true);
    const log = memoryLog();
    const processor = start(broker, log);
    try {
      const [letter] = await waitFor("the letter", async () => {
        const found = await lettersOf(seq);
        return found.length > 0 ? found : null;
      });
      await settled();
      expect(letter?.data.length).toBe(0);
      expect(letter?.header.get("Billing-Original-Subject")).toBe("unknown");
      expect(letter?.header.get("Billing-Error")).toContain(
        `no longer in stream ${config.streams.commands}`,
      );
      const line = log.lines().find((l) => l["commandSequence"] === seq);
      expect(line).toMatchObject({ level: 50, verdict: "command_missing" });
    } finally {
      await processor.stop();
    }
  });

  it("an advisory it cannot read is logged as an error and terminated; nothing is dead-lettered", async () => {
    const before = (await broker.jsm.streams.info(config.streams.dlq)).state.messages;
    const log = memoryLog();
    const processor = start(broker, log);
    try {
      const subject = maxDeliveriesAdvisorySubject({
        commandsStream: config.streams.commands,
        consumer: config.consumer.name,
      });
      await broker.js.publish(
        subject,
        encode('{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream_seq":"x"}'),
      );
      await waitFor("the error log", async () =>
        log
          .lines()
          .find(
            (l) =>
              l["msg"] === "advisory not understood; terminated, left in the advisories stream",
          ),
      );
      await settled();
      expect((await broker.jsm.streams.info(config.streams.dlq)).state.messages).toBe(before);
      const line = log.lines().find((l) => l["level"] === 50);
      expect(String(line?.["error"])).toContain("stream_seq");
    } finally {
      await processor.stop();
    }
  });
});

describe("dlq processor – resilience", () => {
  it("started before the advisories stream exists, it logs the failure and subscribes once setup has run", async () => {
    const bare = await startNats();
    const c = dlqConfig(bare.url);
    const b = await connectBroker({
      servers: c.nats.servers,
      name: "dlq-bare",
      connectTimeoutMs: 2_000,
      apiTimeoutMs: 2_000,
    });
    const log = memoryLog();
    const processor = startAdvisoryProcessor({ js: b.js, jsm: b.jsm, config: c, log: log.log });
    try {
      await waitFor("the failure logged", async () =>
        log
          .lines()
          .find(
            (l) =>
              l["msg"] === "dead-letter processor: subscription failed; subscribing again" &&
              l["level"] === 50,
          ),
      );
      await ensureTopology(b.jsm, topologyOf(c));
      const seq = await exhaustDeliveries(b.js, b.jsm, c, command());
      await waitFor(
        "the letter",
        async () =>
          log.lines().find((l) => l["commandSequence"] === seq && l["verdict"] === "dead_lettered"),
        20_000,
      );
    } finally {
      await processor.stop();
      await b.close();
      await bare.stop();
    }
  });

  it("keeps dead-lettering after the nats-server is killed and restarted", async () => {
    const log = memoryLog();
    const processor = start(broker, log);
    try {
      const before = await exhaustDeliveries(broker.js, broker.jsm, config, command());
      await waitFor("the first letter", async () => (await lettersOf(before)).length === 1);
      await nats.kill("SIGKILL");
      await nats.restart();
      await waitFor("the connection back", async () =>
        broker.jsm.streams.info(config.streams.dlq).then(
          () => true,
          () => false,
        ),
      );
      const after = await waitFor(
        "a command exhausted after the restart",
        async () => exhaustDeliveries(broker.js, broker.jsm, config, command()).catch(() => null),
        20_000,
      );
      await waitFor("the second letter", async () => (await lettersOf(after)).length === 1, 30_000);
      await settled();
      expect(await lettersOf(before)).toHaveLength(1);
      expect(await lettersOf(after)).toHaveLength(1);
    } finally {
      await processor.stop();
    }
  });
});
