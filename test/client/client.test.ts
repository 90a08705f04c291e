// Proves the client library's promises: a bad call fails at the caller before anything is sent;
// an operation id is generated when absent and kept when given; a publish is retried with the
// same id across a broker restart; an event stored earlier is found even when no service answers.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { BillingClient, InvalidCallError } from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { storedMessages } from "../support/streams.ts";

let nats: NatsServer;
let client: BillingClient;
let ws: ReturnType<typeof workspace>;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace();
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
});

afterAll(async () => {
  await client?.close();
  await nats?.stop();
  ws?.cleanup();
});

describe("client – validation at the caller", () => {
  it("a bad call throws InvalidCallError naming the field and publishes nothing", async () => {
    const calls: Array<[() => Promise<unknown>, RegExp]> = [
      [() => client.credit({ userId: "a", amount: 0 }), /credit: amount: must be between 1 and 2\^63 - 1/],
      [() => client.debit({ userId: "bad user", amount: 1 }), /debit: userId/],
      [() => client.hold({ userId: "a", amount: 1, timeoutSeconds: -1 }), /hold: timeoutSeconds/],
      [() => client.capture({ holdId: "nope" }), /capture: holdId: must be a UUID/],
      [() => client.transfer({ fromUserId: "a", toUserId: "b", amount: 1, note: "x" } as never), /transfer: unknown field note/],
      [() => client.credit({ userId: "a", amount: (1n << 63n) }), /amount/],
    ];
    for (const [call, message] of calls) {
      await expect(call()).rejects.toThrow(InvalidCallError);
      await expect(call()).rejects.toThrow(message);
    }
  });
});

describe("client – publishing and waiting", () => {
  it("an operation id is generated when absent, kept when given, and sent as Nats-Msg-Id", async () => {
    const jsm = await jetstreamManager(client.nc);
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    try {
      const mine = randomUUID();
      const given = await client.credit({ operationId: mine, userId: "c1", amount: 5n }, { wait: true });
      expect(given.operationId).toBe(mine);
      expect(given.event).toMatchObject({ event: "credited", operationId: mine, amount: "5" });
      const generated = await client.credit({ userId: "c1", amount: "6" });
      expect(generated.operationId).toMatch(/^[0-9a-f-]{36}$/);
      const stored = (await storedMessages(jsm, "BILLING_COMMANDS")).find((m) => m.seq === generated.streamSequence);
      expect(stored?.header?.get("Nats-Msg-Id")).toBe(generated.operationId);
    } finally {
      await service.stop();
    }
  });

  it("an event stored earlier is found while no service answers queries", async () => {
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    const r = await client.credit({ userId: "c2", amount: 1 }, { wait: true });
    await service.stop();
    expect(await client.waitForEvent(r.operationId, 5_000)).toEqual(r.event);
  });

  it("a publish during a broker outage is retried with the same id and stored once", async () => {
    await nats.kill("SIGKILL");
    const id = randomUUID();
    const sending = client.credit({ operationId: id, userId: "c3", amount: 1 });
    await new Promise((r) => setTimeout(r, 700));
    await nats.restart();
    const sent = await sending;
    expect(sent.operationId).toBe(id);
    const jsm = await jetstreamManager(client.nc);
    const copies = (await storedMessages(jsm, "BILLING_COMMANDS")).filter((m) => m.header?.get("Nats-Msg-Id") === id);
    expect(copies).toHaveLength(1);
  });
});
