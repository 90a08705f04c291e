// Proves the roles of docs/security.md against a real nats-server 2.9.10 that runs the page's own
// configuration block (support/roles.ts reads it from the page), with the service in this process
// authenticated by user name and a password file: a publisher can send a command, await its event
// and query; it can neither write, squat nor remove an event (no billing.evt.> publish, no
// JetStream API, no reply-subject trick, no acks); an event reader reads events three ways and
// writes nothing; the service itself never runs into its permissions (the server logs no
// violation for it after commands, a dead letter, an expired hold, queries and $SRV discovery).
//
// A refused publish is observed twice: the client's request fails with the server's
// "Permissions Violation for Publish to …", and the stream it aimed at is unchanged, read back
// through the operator role.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { BillingClient, type BillingEvent } from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { serverConfig } from "./support/roles.ts";
import {
  refusedPublish,
  secret,
  secretDir,
  violationLogged,
  violationsOf,
  type SecretDir,
} from "./support/fixture.ts";
import { startServiceWith, type ServiceUnderTest } from "./support/service-with-auth.ts";

const EVENTS = "BILLING_EVENTS";
const COMMANDS = "BILLING_COMMANDS";
// The prefix under which the readers' account imports the events stream's read API (the page).
const READER_API_PREFIX = "JS.billing.API";
// A refused publish fails at once (the server's -ERR); the bound is for an accepted one.
const REQUEST_TIMEOUT_MS = 5_000;
// An expired event comes within expiry.delayMs (5 s by default) after the hold's deadline.
const EXPIRY_WAIT_MS = 15_000;
// A malformed command is dead-lettered by the worker's next batch.
const DLQ_WAIT_MS = 10_000;

const users = {
  service: "billing",
  operator: "billing-ops",
  publisher: "orders",
  reader: "reporting",
} as const;
const passwords = {
  service: secret("svc"),
  operator: secret("ops"),
  publisher: secret("pub"),
  reader: secret("read"),
};

let server: NatsServer;
let secrets: SecretDir;
let svc: ServiceUnderTest;
let publisher: BillingClient;
let reader: NatsConnection;
let ops: NatsConnection;
let opsJsm: JetStreamManager;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const user = (): string => `u-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  secrets = secretDir();
  server = await startNats({
    configText: serverConfig([
      { role: "service", user: users.service, password: passwords.service },
      { role: "operator", user: users.operator, password: passwords.operator },
      { role: "publisher", user: users.publisher, password: passwords.publisher },
      { role: "reader", user: users.reader, password: passwords.reader },
    ]),
  });
  svc = await startServiceWith(server, {
    user: users.service,
    passFile: secrets.file("nats-billing", `${passwords.service}\n`),
  });
  publisher = await BillingClient.connect({
    servers: server.url,
    user: users.publisher,
    pass: passwords.publisher,
    timeoutMs: 15_000,
  });
  reader = await connect({
    servers: server.url,
    user: users.reader,
    pass: passwords.reader,
    name: "reporting",
  });
  ops = await connect({
    servers: server.url,
    user: users.operator,
    pass: passwords.operator,
    name: "operator",
  });
  opsJsm = await jetstreamManager(ops);
});

afterAll(async () => {
  await publisher?.close();
  await reader?.close();
  await ops?.close();
  await svc?.stop();
  await server?.stop();
  secrets?.cleanup();
});

// The message stored on an events-stream subject, as the operator reads it, or null.
async function storedEvent(subject: string): Promise<string | null> {
  const m = await opsJsm.streams.getMessage(EVENTS, { last_by_subj: subject });
  return m === null ? null : decoder.decode(m.data);
}

async function messagesIn(stream: string): Promise<number> {
  return (await opsJsm.streams.info(stream)).state.messages;
}

describe("security – publisher", () => {
  it("sends a command, awaits its event and queries the balance and the operation", async () => {
    const u = user();
    const credited = await publisher.credit({ userId: u, amount: "1500" }, { wait: true });
    expect(credited.event).toMatchObject({
      event: "credited",
      operationId: credited.operationId,
      userId: u,
      amount: "1500",
    });
    expect(await publisher.balance(u)).toMatchObject({
      userId: u,
      posted: "1500",
      available: "1500",
    });
    const op = await publisher.operation(credited.operationId);
    expect(op).toMatchObject({ operationId: credited.operationId, status: "applied" });
    expect((op["event"] as BillingEvent | undefined)?.event).toBe("credited");
    const hold = await publisher.hold({ userId: u, amount: "100" }, { wait: true });
    expect(await publisher.holdStatus(hold.operationId)).toMatchObject({
      holdId: hold.operationId,
      status: "held",
    });
  });

  it("cannot publish on billing.evt.>: the server refuses it and the events stream is unchanged", async () => {
    const before = await messagesIn(EVENTS);
    const subject = `billing.evt.credited.${randomUUID()}`;
    const forged = encoder.encode(
      JSON.stringify({
        event: "credited",
        operationId: subject.split(".").at(-1),
        amount: "1000000",
      }),
    );
    await expect(
      jetstream(publisher.nc, { timeout: REQUEST_TIMEOUT_MS }).publish(subject, forged, {
        msgID: "forged",
      }),
    ).rejects.toThrow(refusedPublish(subject));
    publisher.nc.publish(subject, forged);
    await publisher.nc.flush();
    expect(await storedEvent(subject)).toBeNull();
    expect(await messagesIn(EVENTS)).toBe(before);
    expect(await violationLogged(server, users.publisher, "Publish", subject)).toBe(true);
  });

  it("cannot use the JetStream API: no stream info, message delete, purge, stream delete or update, new stream, consumer", async () => {
    const jsm = await jetstreamManager(publisher.nc, {
      checkAPI: false,
      timeout: REQUEST_TIMEOUT_MS,
    });
    const eventsBefore = await messagesIn(EVENTS);
    const commandsBefore = await messagesIn(COMMANDS);
    const attempts: Array<[string, () => Promise<unknown>]> = [
      [`$JS.API.STREAM.INFO.${EVENTS}`, () => jsm.streams.info(EVENTS)],
      [`$JS.API.STREAM.MSG.DELETE.${EVENTS}`, () => jsm.streams.deleteMessage(EVENTS, 1)],
      [`$JS.API.STREAM.PURGE.${EVENTS}`, () => jsm.streams.purge(EVENTS)],
      [`$JS.API.STREAM.DELETE.${EVENTS}`, () => jsm.streams.delete(EVENTS)],
      [`$JS.API.STREAM.PURGE.${COMMANDS}`, () => jsm.streams.purge(COMMANDS)],
      [`$JS.API.STREAM.DELETE.${COMMANDS}`, () => jsm.streams.delete(COMMANDS)],
      // streams.update reads the stream's info first; send the update itself, as an attacker would.
      [
        `$JS.API.STREAM.UPDATE.${EVENTS}`,
        () =>
          publisher.nc.request(
            `$JS.API.STREAM.UPDATE.${EVENTS}`,
            encoder.encode(
              JSON.stringify({ name: EVENTS, subjects: ["billing.evt.>", "billing.forged.>"] }),
            ),
            { timeout: REQUEST_TIMEOUT_MS },
          ),
      ],
      [
        "$JS.API.STREAM.CREATE.FORGE",
        () =>
          jsm.streams.add({ name: "FORGE", subjects: ["forge.>"], sources: [{ name: COMMANDS }] }),
      ],
      // A push consumer on the commands stream delivering into billing.evt.> would store the
      // publisher's own payload in the events stream (docs/security.md, "Why a publisher cannot forge").
      [
        `$JS.API.CONSUMER.CREATE.${COMMANDS}.forge`,
        () =>
          jsm.consumers.add(COMMANDS, {
            name: "forge",
            deliver_subject: `billing.evt.credited.${randomUUID()}`,
            ack_policy: AckPolicy.None,
            deliver_policy: DeliverPolicy.All,
          }),
      ],
    ];
    for (const [subject, attempt] of attempts) {
      await expect(attempt(), subject).rejects.toThrow(refusedPublish(subject));
    }
    expect(await messagesIn(EVENTS)).toBe(eventsBefore);
    expect(await messagesIn(COMMANDS)).toBe(commandsBefore);
    expect((await opsJsm.streams.info(EVENTS)).config.subjects).toEqual(["billing.evt.>"]);
    const names: string[] = [];
    for await (const name of opsJsm.streams.names()) names.push(name);
    expect(names).not.toContain("FORGE");
    const consumers: string[] = [];
    for await (const c of opsJsm.consumers.list(COMMANDS)) consumers.push(c.name);
    expect(consumers).toEqual(["billing-worker"]);
  });

  it("cannot squat an event through a reply subject: the acknowledgement and the query answer stay in its account", async () => {
    const operationId = randomUUID();
    const own = `billing.evt.credited.${operationId}`;
    const other = `billing.evt.debited.${randomUUID()}`;
    // The command's reply subject is the command's own event subject: JetStream's acknowledgement
    // would take that subject first, and the genuine event would be refused forever.
    publisher.nc.publish(
      "billing.cmd.credit",
      encoder.encode(JSON.stringify({ operationId, userId: user(), amount: "10" })),
      { reply: own },
    );
    publisher.nc.publish(
      "billing.query.balance",
      encoder.encode(JSON.stringify({ userId: "squat" })),
      { reply: other },
    );
    await publisher.nc.flush();
    const event = await publisher.waitForEvent(operationId, 15_000);
    expect(event).toMatchObject({ event: "credited", operationId });
    expect(JSON.parse((await storedEvent(own)) ?? "null")).toMatchObject({
      event: "credited",
      operationId,
    });
    expect(await storedEvent(other)).toBeNull();
  });

  it("cannot ack, nak or terminate commands", async () => {
    const ack = `$JS.ACK.${COMMANDS}.billing-worker.1.1.1.1700000000000000000.0`;
    await expect(
      publisher.nc.request(ack, encoder.encode("+TERM"), { timeout: REQUEST_TIMEOUT_MS }),
    ).rejects.toThrow(refusedPublish(ack));
  });

  it("cannot subscribe to commands, dead letters or other requests", async () => {
    for (const subject of ["billing.cmd.>", "billing.dlq.>", "billing.query.*"]) {
      const sub = publisher.nc.subscribe(subject);
      await publisher.nc.flush();
      expect(await violationLogged(server, users.publisher, "Subscription", subject), subject).toBe(
        true,
      );
      sub.unsubscribe();
    }
  });
});

describe("security – event reader", () => {
  it("reads events by subscription, with an ordered consumer and with a direct get", async () => {
    const u = user();
    const sub = reader.subscribe(`billing.evt.credited.>`);
    const heard = (async () => {
      for await (const m of sub) {
        const e = JSON.parse(decoder.decode(m.data)) as BillingEvent;
        if (e["userId"] === u) return e;
      }
      return null;
    })();
    const credited = await publisher.credit({ userId: u, amount: "42" }, { wait: true });
    expect(await heard).toMatchObject({ event: "credited", operationId: credited.operationId });
    sub.unsubscribe();

    const js = jetstream(reader, { apiPrefix: READER_API_PREFIX, timeout: REQUEST_TIMEOUT_MS });
    const ordered = await js.consumers.get(EVENTS);
    const seen: string[] = [];
    const batch = await ordered.fetch({ max_messages: 1_000, expires: 1_000 });
    // Bounded: without response_type stream on the export, the pull's later responses never come.
    await withTimeout(
      (async () => {
        for await (const m of batch) seen.push(m.subject);
      })(),
      REQUEST_TIMEOUT_MS,
    );
    expect(seen).toContain(`billing.evt.credited.${credited.operationId}`);

    const jsm = await jetstreamManager(reader, {
      apiPrefix: READER_API_PREFIX,
      checkAPI: false,
      timeout: REQUEST_TIMEOUT_MS,
    });
    const direct = await jsm.direct.getMessage(EVENTS, {
      last_by_subj: `billing.evt.credited.${credited.operationId}`,
    });
    expect(direct?.json<BillingEvent>()).toMatchObject({
      event: "credited",
      operationId: credited.operationId,
    });
  });

  it("cannot publish commands, queries or events, nor manage the events stream", async () => {
    const commandsBefore = await messagesIn(COMMANDS);
    const eventsBefore = await messagesIn(EVENTS);
    const js = jetstream(reader, { timeout: REQUEST_TIMEOUT_MS });
    const command = encoder.encode(
      JSON.stringify({ operationId: randomUUID(), userId: user(), amount: "5" }),
    );
    await expect(js.publish("billing.cmd.credit", command)).rejects.toThrow(
      refusedPublish("billing.cmd.credit"),
    );
    await expect(
      reader.request("billing.query.balance", encoder.encode('{"userId":"x"}'), {
        timeout: REQUEST_TIMEOUT_MS,
      }),
    ).rejects.toThrow(refusedPublish("billing.query.balance"));
    const forged = `billing.evt.credited.${randomUUID()}`;
    await expect(js.publish(forged, encoder.encode("{}"))).rejects.toThrow(refusedPublish(forged));
    for (const subject of [
      `${READER_API_PREFIX}.STREAM.PURGE.${EVENTS}`,
      `${READER_API_PREFIX}.STREAM.DELETE.${EVENTS}`,
      `${READER_API_PREFIX}.STREAM.MSG.DELETE.${EVENTS}`,
      `$JS.API.STREAM.PURGE.${EVENTS}`,
    ]) {
      await expect(
        reader.request(subject, encoder.encode("{}"), { timeout: REQUEST_TIMEOUT_MS }),
      ).rejects.toThrow(refusedPublish(subject));
    }
    expect(await messagesIn(COMMANDS)).toBe(commandsBefore);
    expect(await messagesIn(EVENTS)).toBe(eventsBefore);
  });

  it("cannot squat an event through the reply subject of its own API requests", async () => {
    const squat = `billing.evt.released.${randomUUID()}`;
    reader.publish(`${READER_API_PREFIX}.STREAM.INFO.${EVENTS}`, encoder.encode(""), {
      reply: squat,
    });
    await reader.flush();
    // The stream-info answer travels back into the reader's account; give it time to go wrong.
    await new Promise((r) => setTimeout(r, 300));
    expect(await storedEvent(squat)).toBeNull();
  });
});

describe("security – service", () => {
  it("dead-letters a malformed command and publishes an expired hold's event within its permissions", async () => {
    const dlqBefore = await messagesIn("BILLING_DLQ");
    await publisher.publishRaw("billing.cmd.credit", encoder.encode("not json"), undefined);
    // A hold of one second expires: billing.evt.expired.<holdId>, published by the sweeper.
    const u = user();
    const holdId = randomUUID();
    const expired = firstMessage(reader, `billing.evt.expired.${holdId}`);
    await publisher.credit({ userId: u, amount: "10" }, { wait: true });
    await publisher.hold(
      { operationId: holdId, userId: u, amount: "10", timeoutSeconds: 1 },
      { wait: true },
    );
    expect(await withTimeout(expired, EXPIRY_WAIT_MS)).toMatchObject({ event: "expired", holdId });
    expect(await publisher.balance(u)).toMatchObject({ available: "10", held: "0" });
    await waitUntil(async () => (await messagesIn("BILLING_DLQ")) > dlqBefore, DLQ_WAIT_MS);
  });

  it("answers $SRV discovery: an operator's ping and info requests reach it", async () => {
    const ping = await ops.request("$SRV.PING.billing", encoder.encode(""), {
      timeout: REQUEST_TIMEOUT_MS,
    });
    expect(JSON.parse(decoder.decode(ping.data))).toMatchObject({
      type: "io.nats.micro.v1.ping_response",
      name: "billing",
    });
    const info = await ops.request("$SRV.INFO.billing", encoder.encode(""), {
      timeout: REQUEST_TIMEOUT_MS,
    });
    expect(JSON.parse(decoder.decode(info.data))).toMatchObject({
      type: "io.nats.micro.v1.info_response",
      name: "billing",
    });
  });

  // Last in this file: everything above ran the service (start-up, topology, both consumers,
  // commands, events, rejections, dead letters, expiry, queries) under the documented permissions.
  it("met no permission violation, and no password reached the server's log", () => {
    expect(violationsOf(server, users.service)).toEqual([]);
    expect(violationsOf(server, users.operator)).toEqual([]);
    for (const p of Object.values(passwords)) expect(server.log()).not.toContain(p);
  });
});

function firstMessage(nc: NatsConnection, subject: string): Promise<BillingEvent> {
  return new Promise((resolve) => {
    const sub = nc.subscribe(subject, {
      callback: (_err, m) => {
        sub.unsubscribe();
        resolve(JSON.parse(decoder.decode(m.data)) as BillingEvent);
      },
    });
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms)),
  );
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitUntil(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
