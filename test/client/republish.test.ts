// Proves that a waiting send treats the PubAck as provisional and the event as the acknowledgement:
// a command the broker acknowledged and then no longer has (deleted here with the stream API, as
// an operator might, and as a broker's crash before its disk sync does) is published again under
// the same operationId when its event is late, and the ledger applies it once. Also what the
// broker does that forces a new Nats-Msg-Id for the copy (2.9.10: a deleted message keeps its id
// in the duplicate window), that a command still stored is not copied, and that copies published
// blindly (a publisher that cannot read the stream) are still applied once; and the same through
// `billing send` (node bin/billing.js). Real nats-server, real service, real SQLite ledger.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { storedEvents, storedMessages, waitFor, waitIdle } from "../support/streams.ts";
import { billing } from "../cli/support.ts";

let nats: NatsServer;
let client: BillingClient;
let jsm: JetStreamManager;
let ws: ReturnType<typeof workspace>;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace();
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
  jsm = await jetstreamManager(client.nc);
  // Streams, consumer and deployment exist; no service runs until a test starts one.
  await (await startInProcess(nats.url, ws.ledgerPath, ws.configPath)).stop();
});

afterAll(async () => {
  await client?.close();
  await nats?.stop();
  ws?.cleanup();
});

async function commandSeq(msgId: string): Promise<number> {
  return waitFor(
    `command ${msgId} stored`,
    async () =>
      (await storedMessages(jsm, "BILLING_COMMANDS")).find(
        (m) => m.header?.get("Nats-Msg-Id") === msgId,
      )?.seq,
  );
}

async function eventsOf(id: string) {
  return (await storedEvents(jsm)).filter((e) => e.subject.endsWith(`.${id}`));
}

describe("client – the event is the acknowledgement", () => {
  it("nats-server 2.9.10 keeps a deleted message's Nats-Msg-Id: a copy under the same id is dropped as a duplicate", async () => {
    const js = jetstream(client.nc);
    const id = randomUUID();
    // Not a command subject the service reads as one: a malformed payload on a real subject would
    // be dead-lettered; nothing consumes this message while no service runs, and it is deleted.
    const first = await js.publish("billing.cmd.credit", "probe", { msgID: `probe:${id}` });
    expect(await jsm.streams.deleteMessage("BILLING_COMMANDS", first.seq)).toBe(true);
    const again = await js.publish("billing.cmd.credit", "probe", { msgID: `probe:${id}` });
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
    expect(
      (await storedMessages(jsm, "BILLING_COMMANDS")).some(
        (m) => m.header?.get("Nats-Msg-Id") === `probe:${id}`,
      ),
    ).toBe(false);
  });

  it("a command deleted before any worker took it is published again and applied once; send gets its event", async () => {
    const id = randomUUID();
    const sending = client.credit(
      { operationId: id, userId: "rp-1", amount: 7 },
      { wait: true, timeoutMs: 30_000, republishAfterMs: 1_000 },
    );
    expect(await jsm.streams.deleteMessage("BILLING_COMMANDS", await commandSeq(id))).toBe(true);
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    try {
      const outcome = await sending;
      expect(outcome.republished).toBe(1);
      expect(outcome.event).toMatchObject({
        event: "credited",
        operationId: id,
        amount: "7",
        balances: [{ userId: "rp-1", posted: "7" }],
      });
      expect(
        (await storedMessages(jsm, "BILLING_COMMANDS")).find(
          (m) => m.header?.get("Nats-Msg-Id") === `${id}:republish:1`,
        ),
      ).toBeDefined();
      expect(await eventsOf(id)).toHaveLength(1);
      expect(await client.balance("rp-1")).toMatchObject({ currency: "EUR", posted: "7" });
    } finally {
      await service.stop();
    }
  });

  it("a command still stored is not copied while its event is late (a service that is not running)", async () => {
    const id = randomUUID();
    const sending = client.credit(
      { operationId: id, userId: "rp-2", amount: 3 },
      { wait: true, timeoutMs: 30_000, republishAfterMs: 500 },
    );
    await commandSeq(id);
    await new Promise((r) => setTimeout(r, 1_800)); // three deadlines pass with the command stored
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    try {
      const outcome = await sending;
      expect(outcome.republished).toBe(0);
      expect(
        (await storedMessages(jsm, "BILLING_COMMANDS")).filter((m) =>
          m.header?.get("Nats-Msg-Id")?.startsWith(id),
        ),
      ).toHaveLength(1);
    } finally {
      await service.stop();
    }
  });

  it("billing send: a command deleted before any worker took it is published again; exit 0 with the event, applied once", async () => {
    const id = randomUUID();
    // The CLI waits nats.requestTimeoutMs (8 s here) and republishes after half of it.
    const cliWs = workspace({ nats: { requestTimeoutMs: 8_000 } });
    try {
      const sending = billing(
        ["send", "credit", JSON.stringify({ operationId: id, userId: "rp-cli", amount: "11" })],
        { NATS_URL: nats.url, BILLING_CONFIG: cliWs.configPath },
      );
      expect(await jsm.streams.deleteMessage("BILLING_COMMANDS", await commandSeq(id))).toBe(true);
      const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
      try {
        const run = await sending;
        expect(run.stderr).toBe("");
        expect(run.code).toBe(0);
        expect(JSON.parse(run.stdout)).toMatchObject({
          event: "credited",
          operationId: id,
          amount: "11",
          balances: [{ userId: "rp-cli", posted: "11" }],
        });
        expect(await eventsOf(id)).toHaveLength(1);
        expect(await client.balance("rp-cli")).toMatchObject({ posted: "11" });
      } finally {
        await service.stop();
      }
    } finally {
      cliWs.cleanup();
    }
  });

  it("copies published blindly (the stream cannot be read) are applied once: one event, one balance change", async () => {
    // A client that cannot read the commands stream (as a publisher without JetStream API access).
    const blind = await BillingClient.connect({
      servers: nats.url,
      timeoutMs: 15_000,
      commandsStream: "NOT_READABLE",
    });
    try {
      const id = randomUUID();
      const sending = blind.credit(
        { operationId: id, userId: "rp-3", amount: 2 },
        { wait: true, timeoutMs: 30_000, republishAfterMs: 700 },
      );
      await waitFor(
        "three copies stored",
        async () =>
          (await storedMessages(jsm, "BILLING_COMMANDS")).filter((m) =>
            m.header?.get("Nats-Msg-Id")?.startsWith(id),
          ).length >= 3,
      );
      const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
      try {
        const outcome = await sending;
        expect(outcome.republished).toBeGreaterThanOrEqual(2);
        expect(outcome.event).toMatchObject({
          event: "credited",
          balances: [{ userId: "rp-3", posted: "2" }],
        });
        expect(await eventsOf(id)).toHaveLength(1);
        // Every copy was taken and settled (the consumer has nothing left), and money moved once.
        await waitIdle(jsm);
        expect(await client.balance("rp-3")).toMatchObject({ posted: "2" });
      } finally {
        await service.stop();
      }
    } finally {
      await blind.close();
    }
  });
});
