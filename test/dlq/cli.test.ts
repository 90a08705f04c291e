// Proves the operator's verbs on a real nats-server: `dlq list` shows every letter (reason,
// original subject and sequence, payload, time, replay history) and filters and bounds it;
// `dlq replay` republishes the original bytes and headers to the original subject, without the
// original Nats-Msg-Id unless --same-id, records who and when, refuses a second replay unless
// --force and refuses letters without a command; `dlq purge --before` removes only older letters
// and says how many; bad usage is one line and exit 2.
// How: letters are made the ways the service makes them (deadLetter() for malformed and conflict,
// the processor's handler for a command the server gave up on); the verbs run in process with an
// in-memory stdout/stderr.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers } from "@nats-io/transport-node";
import type { StoredMsg } from "@nats-io/jetstream";
import type { Broker } from "../../src/broker/connection.ts";
import { deadLetter } from "../../src/broker/dead-letter.ts";
import type { Config } from "../../src/config/schema.ts";
import { dlq, type LetterView } from "../../src/dlq/cli.ts";
import { advisoryContextOf, handleAdvisory } from "../../src/dlq/max-deliveries-processor.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { storedMessages } from "../support/streams.ts";
import { connectWithTopology, dlqConfig, encode, exhaustDeliveries, memoryIo } from "./fixture.ts";

let nats: NatsServer;
let config: Config;
let broker: Broker;

// Letters made in beforeAll, by reason.
let malformedSeq = 0;
let conflictSeq = 0;
let maxSeq = 0;
let maxCommand: { subject: string; data: Uint8Array; msgId: string };
const malformedPayload = new Uint8Array([0xff, 0x00, 0x7b, 0x0a]);
const conflictPayload = encode('{"operationId":"op-conflict","userId":"u-2","amount":"9"}');

beforeAll(async () => {
  nats = await startNats();
  config = dlqConfig(nats.url);
  broker = await connectWithTopology(config);
  const h = headers();
  h.set("Nats-Msg-Id", "op-conflict");
  h.set("X-Trace-Id", "trace-c");
  malformedSeq = await letter(() =>
    deadLetter(
      broker.js,
      { subject: "billing.cmd.debit", data: malformedPayload, streamSequence: 101 },
      "malformed",
      "not JSON",
      2_000,
    ),
  );
  conflictSeq = await letter(() =>
    deadLetter(
      broker.js,
      { subject: "billing.cmd.credit", data: conflictPayload, headers: h, streamSequence: 102 },
      "conflict",
      "operationId reused",
      2_000,
    ),
  );
  maxCommand = {
    subject: "billing.cmd.hold",
    data: encode('{"operationId":"op-max","userId":"u-3","amount":"1"}'),
    msgId: "op-max",
  };
  const seq = await exhaustDeliveries(broker.js, broker.jsm, config, maxCommand);
  const advisory = {
    stream: config.streams.commands,
    consumer: config.consumer.name,
    streamSequence: seq,
    deliveries: config.consumer.maxDeliver,
  };
  maxSeq = await letter(() =>
    handleAdvisory(advisoryContextOf({ js: broker.js, jsm: broker.jsm, config }), advisory),
  );
});

afterAll(async () => {
  await broker?.close();
  await nats?.stop();
});

// Runs make() and returns the sequence of the letter it stored.
async function letter(make: () => Promise<unknown>): Promise<number> {
  await make();
  const letters = (await storedMessages(broker.jsm, config.streams.dlq)).filter(
    (m) => m.subject.split(".").length === 3,
  );
  const last = letters[letters.length - 1];
  if (last === undefined) throw new Error("no letter stored");
  return last.seq;
}

async function run(args: string[], env: Record<string, string> = { USER: "alice" }) {
  const io = memoryIo(env);
  const code = await dlq(args, config, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

async function listJson(...args: string[]): Promise<LetterView[]> {
  const r = await run(["list", "--json", ...args]);
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as LetterView[];
}

async function commandsOn(subject: string): Promise<StoredMsg[]> {
  return (await storedMessages(broker.jsm, config.streams.commands)).filter(
    (m) => m.subject === subject,
  );
}

describe("dlq cli – list", () => {
  it("shows every letter oldest first with reason, original subject and sequence, payload and time", async () => {
    const letters = await listJson();
    expect(letters.map((l) => [l.sequence, l.reason])).toEqual([
      [malformedSeq, "malformed"],
      [conflictSeq, "conflict"],
      [maxSeq, "max_deliveries"],
    ]);
    const [malformed, conflict, max] = letters;
    expect(malformed).toMatchObject({
      originalSubject: "billing.cmd.debit",
      originalSequence: 101,
      error: "not JSON",
      payload: null,
      payloadBase64: Buffer.from(malformedPayload).toString("base64"),
      replays: [],
    });
    expect(conflict).toMatchObject({
      originalSubject: "billing.cmd.credit",
      originalSequence: 102,
      originalMsgId: "op-conflict",
      payload: new TextDecoder().decode(conflictPayload),
    });
    expect(max).toMatchObject({
      originalSubject: "billing.cmd.hold",
      originalMsgId: "op-max",
      reason: "max_deliveries",
    });
    expect(Date.now() - Date.parse(max?.time ?? "")).toBeLessThan(60_000);
  });

  it("filters by --reason and bounds by --limit, saying that more exist", async () => {
    expect((await listJson("--reason", "conflict")).map((l) => l.sequence)).toEqual([conflictSeq]);
    const r = await run(["list", "--limit=1"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`#${malformedSeq}  `);
    expect(r.out).not.toContain(`#${conflictSeq}  `);
    expect(r.out).toContain("1 dead letter shown; more exist");
  });
});

describe("dlq cli – replay", () => {
  it("republishes the original bytes and headers to the original subject without Nats-Msg-Id and records who and when", async () => {
    const before = await commandsOn("billing.cmd.credit");
    const r = await run(["replay", String(conflictSeq)]);
    expect(r).toMatchObject({ code: 0, err: "" });
    expect(r.out).toContain(`replayed letter #${conflictSeq} (conflict) to billing.cmd.credit`);
    const after = await commandsOn("billing.cmd.credit");
    expect(after).toHaveLength(before.length + 1);
    const replayed = after[after.length - 1];
    expect(Buffer.from(replayed?.data ?? []).equals(Buffer.from(conflictPayload))).toBe(true);
    expect(replayed?.header.get("X-Trace-Id")).toBe("trace-c");
    expect(replayed?.header.has("Nats-Msg-Id")).toBe(false);
    expect(replayed?.header.keys().filter((k) => k.toLowerCase().startsWith("billing-"))).toEqual(
      [],
    );
    const [view] = await listJson("--reason", "conflict");
    expect(view?.replays.map((x) => [x.status, x.by, x.commandSequence])).toEqual([
      ["started", "alice", null],
      ["published", "alice", replayed?.seq],
    ]);
    expect(Date.now() - Date.parse(view?.replays[1]?.at ?? "")).toBeLessThan(60_000);
  });

  it("refuses a second replay with exit 1 and replays again only with --force, recording the new operator", async () => {
    const before = await commandsOn("billing.cmd.credit");
    const again = await run(["replay", String(conflictSeq)]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already replayed \(last: published by alice at .*\); pass --force/);
    expect(await commandsOn("billing.cmd.credit")).toHaveLength(before.length);
    const forced = await run(["replay", String(conflictSeq), "--force", "--by", "bob"]);
    expect(forced.code).toBe(0);
    expect(await commandsOn("billing.cmd.credit")).toHaveLength(before.length + 1);
    const [view] = await listJson("--reason", "conflict");
    expect(view?.replays.map((x) => `${x.status}:${x.by}`)).toEqual([
      "started:alice",
      "published:alice",
      "started:bob",
      "published:bob",
    ]);
  });

  it("--same-id keeps the original Nats-Msg-Id, so inside the duplicate window the stream stores nothing new", async () => {
    const before = await commandsOn(maxCommand.subject);
    const r = await run(["replay", String(maxSeq), "--same-id"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`already stored as command #${before[0]?.seq}`);
    expect(await commandsOn(maxCommand.subject)).toHaveLength(before.length);
    const [view] = await listJson("--reason", "max_deliveries");
    expect(view?.replays.map((x) => [x.status, x.sameId])).toEqual([
      ["started", true],
      ["duplicate", true],
    ]);
  });

  it("two operators replaying the same letter at once: exactly one replays it, the other is refused", async () => {
    const before = await commandsOn("billing.cmd.debit");
    const results = await Promise.all([
      run(["replay", String(malformedSeq), "--by", "carol"]),
      run(["replay", String(malformedSeq), "--by", "dave"]),
    ]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    expect(results.find((r) => r.code === 1)?.err).toMatch(/already replayed|recorded meanwhile/);
    expect(await commandsOn("billing.cmd.debit")).toHaveLength(before.length + 1);
  });

  it("refuses --same-id for a letter without an original msgId, a letter without a command, and a sequence that holds no letter", async () => {
    const noId = await run(["replay", String(malformedSeq), "--same-id"]);
    expect(noId.code).toBe(1);
    expect(noId.err).toContain("carries no Billing-Original-Msg-Id");
    const deletedSeq = await letter(() =>
      deadLetter(
        broker.js,
        { subject: "unknown", data: new Uint8Array(0), streamSequence: 999 },
        "max_deliveries",
        "deleted",
        2_000,
      ),
    );
    const deleted = await run(["replay", String(deletedSeq)]);
    expect(deleted.code).toBe(1);
    expect(deleted.err).toContain('has no command to replay (original subject "unknown")');
    const records = (await storedMessages(broker.jsm, config.streams.dlq)).filter((m) =>
      m.subject.startsWith("billing.dlq.replayed."),
    );
    const notALetter = await run(["replay", String(records[0]?.seq ?? 0)]);
    expect(notALetter.code).toBe(1);
    expect(notALetter.err).toContain("no dead letter at sequence");
    expect((await run(["replay", "999999"])).code).toBe(1);
  });
});

describe("dlq cli – usage", () => {
  it.each([
    [[], "a subcommand is missing"],
    [["nope"], "unknown subcommand nope"],
    [["list", "--reason", "nope"], "--reason must be one of"],
    [["list", "--limit", "0"], "--limit must be an integer from 1 to 100"],
    [["list", "--limit", "101"], "--limit must be an integer from 1 to 100"],
    [["list", "--bogus"], "unknown option --bogus"],
    [["replay"], "sequence is missing"],
    [["replay", "abc"], "sequence must be an integer"],
    [["replay", "1", "2"], "unexpected argument 2"],
    [["purge"], "--before <ISO time> is required"],
    [["purge", "--before", "yesterday"], "--before must be an ISO 8601"],
    [["purge", "--before", "2024-05-01T12:00:00"], "--before must be an ISO 8601"],
  ])("billing dlq %j exits 2 with one line", async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain(message);
    expect(r.err.trimEnd().split("\n")).toHaveLength(1);
  });

  it("a replay without --by and without USER exits 2", async () => {
    const r = await run(["replay", String(malformedSeq)], {});
    expect(r.code).toBe(2);
    expect(r.err).toContain("pass --by NAME or set USER");
  });
});

describe("dlq cli – purge", () => {
  it("removes only the letters stored before the cut-off, with their replay records, and prints how many", async () => {
    const older = await listJson();
    const markersBefore = (await storedMessages(broker.jsm, config.streams.dlq)).filter((m) =>
      m.subject.startsWith("billing.dlq.marker."),
    );
    await new Promise((r) => setTimeout(r, 20));
    const cutOff = new Date();
    await new Promise((r) => setTimeout(r, 20));
    const newer = [
      await letter(() =>
        deadLetter(
          broker.js,
          { subject: "billing.cmd.debit", data: encode("{}"), streamSequence: 201 },
          "malformed",
          "no operationId",
          2_000,
        ),
      ),
      await letter(() =>
        deadLetter(
          broker.js,
          { subject: "billing.cmd.debit", data: encode("{}"), streamSequence: 202 },
          "conflict",
          "reused",
          2_000,
        ),
      ),
    ];
    const r = await run(["purge", "--before", cutOff.toISOString()]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      `purged ${older.length} dead letters stored before ${cutOff.toISOString()}`,
    );
    expect((await listJson()).map((l) => l.sequence)).toEqual(newer);
    const left = await storedMessages(broker.jsm, config.streams.dlq);
    expect(left.filter((m) => m.subject.startsWith("billing.dlq.replayed."))).toEqual([]);
    // Markers stay: a late duplicate advisory must not bring a purged letter back.
    expect(left.filter((m) => m.subject.startsWith("billing.dlq.marker."))).toHaveLength(
      markersBefore.length,
    );
    const none = await run(["purge", "--before", "2000-01-01"]);
    expect(none.out).toContain("purged 0 dead letters");
  });
});
