// Proves the contract end to end against a real nats-server and a real SQLite ledger file: each
// command's event and balances, every rejection reason the service can meet, captures racing their
// holds, duplicates inside and outside the dedupe window, redelivered acknowledged commands,
// conflicts and malformed messages ending in the dead letters, and the queries.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BillingClient, type BillingEvent } from "@billing-ledger/client";
import type { RunningService } from "../../src/service.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { storedEvents, storedMessages, waitFor, waitIdle } from "../support/streams.ts";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";

let nats: NatsServer;
let service: RunningService;
let client: BillingClient;
let jsm: JetStreamManager;
let ws: ReturnType<typeof workspace>;

const DUPLICATE_WINDOW_MS = 1500;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace({
    streams: { duplicateWindowMs: DUPLICATE_WINDOW_MS },
    worker: { holdGraceMs: 2000, holdWaitNakMs: 200, batchWaitMs: 5 },
    consumer: { ackWaitMs: 10_000 },
  });
  service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
  jsm = await jetstreamManager(client.nc);
});

afterAll(async () => {
  await client?.close();
  await service?.stop();
  await nats?.stop();
  ws?.cleanup();
});

const user = () => `u-${randomUUID().slice(0, 8)}`;
const wait = { wait: true } as const;

function balance(e: BillingEvent | undefined, index = 0): Record<string, string> {
  return (e?.["balances"] as Array<Record<string, string>>)[index] as Record<string, string>;
}

describe("service – applied commands", () => {
  it("a credit produces credited with the balance right after it", async () => {
    const u = user();
    const r = await client.credit({ userId: u, amount: "1000" }, wait);
    expect(r.event).toMatchObject({
      event: "credited",
      operationId: r.operationId,
      command: "credit",
      userId: u,
      amount: "1000",
      currency: "EUR",
    });
    expect(balance(r.event)).toEqual({
      userId: u,
      currency: "EUR",
      posted: "1000",
      held: "0",
      available: "1000",
    });
    expect(typeof r.event?.["ledgerTimestamp"]).toBe("string");
  });

  it("a debit within the available funds is debited; beyond them it is rejected as insufficient_funds", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 500 }, wait);
    const ok = await client.debit({ userId: u, amount: 200 }, wait);
    expect(ok.event).toMatchObject({ event: "debited", amount: "200" });
    expect(balance(ok.event)).toMatchObject({ posted: "300", available: "300" });
    const no = await client.debit({ userId: u, amount: 301 }, wait);
    expect(no.event).toMatchObject({
      event: "rejected",
      reason: "insufficient_funds",
      userId: u,
      amount: "301",
      command: "debit",
    });
    expect(no.event?.["balances"]).toBeUndefined();
  });

  it("a rejection is final: funds that arrive later do not apply the same debit when it is sent again", async () => {
    const u = user();
    const id = randomUUID();
    const first = await client.debit({ operationId: id, userId: u, amount: 50 }, wait);
    expect(first.event).toMatchObject({ event: "rejected", reason: "insufficient_funds" });
    await client.credit({ userId: u, amount: 100 }, wait);
    await client.publishRaw(
      "billing.cmd.debit",
      new TextEncoder().encode(JSON.stringify({ operationId: id, userId: u, amount: 50 })),
      `again-${id}`,
    );
    await waitIdle(jsm);
    expect((await client.balance(u))["available"]).toBe("100");
    expect((await storedEvents(jsm)).filter((e) => e.payload["operationId"] === id)).toHaveLength(
      1,
    );
  });

  it("several holds coexist up to the available funds and one beyond is insufficient_funds", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 100 }, wait);
    const a = await client.hold({ userId: u, amount: 40 }, wait);
    const b = await client.hold({ userId: u, amount: 60 }, wait);
    expect(balance(b.event)).toEqual({
      userId: u,
      currency: "EUR",
      posted: "100",
      held: "100",
      available: "0",
    });
    expect(a.event?.event).toBe("held");
    const c = await client.hold({ userId: u, amount: 1 }, wait);
    expect(c.event).toMatchObject({ event: "rejected", reason: "insufficient_funds" });
  });

  it("a capture takes exactly the held amount; a second capture or a release is hold_already_captured", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 100 }, wait);
    const h = await client.hold({ userId: u, amount: 30 }, wait);
    const c = await client.capture({ holdId: h.operationId }, wait);
    expect(c.event).toMatchObject({
      event: "captured",
      userId: u,
      holdId: h.operationId,
      amount: "30",
      currency: "EUR",
    });
    expect(balance(c.event)).toEqual({
      userId: u,
      currency: "EUR",
      posted: "70",
      held: "0",
      available: "70",
    });
    expect((await client.capture({ holdId: h.operationId }, wait)).event).toMatchObject({
      event: "rejected",
      reason: "hold_already_captured",
      holdId: h.operationId,
    });
    expect((await client.release({ holdId: h.operationId }, wait)).event).toMatchObject({
      event: "rejected",
      reason: "hold_already_captured",
    });
  });

  it("a release returns exactly the held amount; a later capture is hold_already_released", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 100 }, wait);
    const h = await client.hold({ userId: u, amount: 30 }, wait);
    const r = await client.release({ holdId: h.operationId }, wait);
    expect(r.event).toMatchObject({ event: "released", userId: u, amount: "30" });
    expect(balance(r.event)).toEqual({
      userId: u,
      currency: "EUR",
      posted: "100",
      held: "0",
      available: "100",
    });
    expect((await client.capture({ holdId: h.operationId }, wait)).event).toMatchObject({
      event: "rejected",
      reason: "hold_already_released",
    });
  });

  it("a capture after the hold's timeout is rejected as hold_expired and the funds are available again", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 100 }, wait);
    const h = await client.hold({ userId: u, amount: 100, timeoutSeconds: 1 }, wait);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await client.capture({ holdId: h.operationId }, wait)).event).toMatchObject({
      event: "rejected",
      reason: "hold_expired",
    });
    expect((await client.balance(u))["available"]).toBe("100");
  });

  it("a transfer without a fee moves the amount; with a fee both legs apply, all or nothing", async () => {
    const [a, b] = [user(), user()];
    await client.credit({ userId: a, amount: 100 }, wait);
    const t = await client.transfer({ fromUserId: a, toUserId: b, amount: 40 }, wait);
    expect(t.event).toMatchObject({
      event: "transferred",
      fromUserId: a,
      toUserId: b,
      amount: "40",
    });
    expect(t.event?.["fee"]).toBeUndefined();
    expect(balance(t.event, 0)).toMatchObject({ userId: a, available: "60" });
    expect(balance(t.event, 1)).toMatchObject({ userId: b, available: "40" });
    const f = await client.transfer({ fromUserId: a, toUserId: b, amount: 50, fee: 5 }, wait);
    expect(f.event).toMatchObject({ event: "transferred", amount: "50", fee: "5" });
    expect(balance(f.event, 0)).toMatchObject({ userId: a, available: "5" });
    const over = await client.transfer({ fromUserId: a, toUserId: b, amount: 5, fee: 1 }, wait);
    expect(over.event).toMatchObject({ event: "rejected", reason: "insufficient_funds" });
    expect((await client.balance(a))["available"]).toBe("5");
    expect((await client.balance(b))["available"]).toBe("90");
  });

  it("a user id over 36 characters is carried through a capture event", async () => {
    const u = `long-user-${"x".repeat(50)}`;
    await client.credit({ userId: u, amount: 10 }, wait);
    const h = await client.hold({ userId: u, amount: 10 }, wait);
    const c = await client.capture({ holdId: h.operationId }, wait);
    expect(c.event).toMatchObject({ event: "captured", userId: u });
  });
});

describe("service – rejections decided before the ledger", () => {
  it("a transfer to the same user is same_user", async () => {
    const u = user();
    expect(
      (await client.transfer({ fromUserId: u, toUserId: u, amount: 1 }, wait)).event,
    ).toMatchObject({ event: "rejected", reason: "same_user" });
  });

  it("an unknown currency is unknown_currency", async () => {
    expect(
      (await client.credit({ userId: user(), amount: 1, currency: "XXX" }, wait)).event,
    ).toMatchObject({ event: "rejected", reason: "unknown_currency", currency: "XXX" });
  });

  it("an amount above 2^63 - 1, zero, or fractional is invalid_command", async () => {
    for (const amount of ["9223372036854775808", 0, 1.5]) {
      const id = randomUUID();
      await client.publishRaw(
        "billing.cmd.credit",
        new TextEncoder().encode(JSON.stringify({ operationId: id, userId: "x", amount })),
        id,
      );
      const e = await client.waitForEvent(id);
      expect(e).toMatchObject({ event: "rejected", reason: "invalid_command", operationId: id });
      expect(String(e["detail"])).toContain("amount");
    }
  });

  it("an unknown field is invalid_command naming the field", async () => {
    const id = randomUUID();
    await client.publishRaw(
      "billing.cmd.credit",
      new TextEncoder().encode(
        JSON.stringify({ operationId: id, userId: "x", amount: 1, note: "hi" }),
      ),
      id,
    );
    expect(await client.waitForEvent(id)).toMatchObject({
      event: "rejected",
      reason: "invalid_command",
      detail: 'unknown field "note"',
    });
  });

  it("a capture of an unknown hold is hold_not_found after the grace period", async () => {
    const r = await client.capture({ holdId: randomUUID() }, { wait: true, timeoutMs: 15_000 });
    expect(r.event).toMatchObject({ event: "rejected", reason: "hold_not_found" });
  });
});

describe("service – ordering and duplicates", () => {
  it("a capture published before its hold waits for it and then captures", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 100 }, wait);
    const holdId = randomUUID();
    const capture = client.capture({ holdId }, { wait: true, timeoutMs: 15_000 });
    await new Promise((r) => setTimeout(r, 300));
    await client.hold({ operationId: holdId, userId: u, amount: 25 }, wait);
    expect((await capture).event).toMatchObject({ event: "captured", amount: "25", holdId });
  });

  it("a hold and its capture published together both apply", async () => {
    const u = user();
    await client.credit({ userId: u, amount: 100 }, wait);
    const holdId = randomUUID();
    const [h, c] = await Promise.all([
      client.hold({ operationId: holdId, userId: u, amount: 10 }, wait),
      client.capture({ holdId }, wait),
    ]);
    expect(h.event?.event).toBe("held");
    expect(c.event?.event).toBe("captured");
  });

  it("a duplicate publish inside the window is dropped by the broker; outside it, the ledger keeps one outcome", async () => {
    const u = user();
    const id = randomUUID();
    const body = new TextEncoder().encode(
      JSON.stringify({ operationId: id, userId: u, amount: 7 }),
    );
    await client.publishRaw("billing.cmd.credit", body, id);
    const second = await client.publishRaw("billing.cmd.credit", body, id);
    expect(second.duplicate).toBe(true);
    const first = await client.waitForEvent(id);
    await new Promise((r) => setTimeout(r, DUPLICATE_WINDOW_MS + 500));
    const third = await client.publishRaw("billing.cmd.credit", body, id);
    expect(third.duplicate).toBe(false);
    await waitIdle(jsm);
    const events = (await storedEvents(jsm)).filter((e) => e.payload["operationId"] === id);
    expect(events).toHaveLength(1);
    expect(events[0]?.payload).toEqual(first);
    expect((await client.balance(u))["posted"]).toBe("7");
  });

  it("an acknowledged command delivered again (new message id) changes nothing and publishes no second event", async () => {
    const u = user();
    const r = await client.credit({ userId: u, amount: 11 }, wait);
    await client.publishRaw(
      "billing.cmd.credit",
      new TextEncoder().encode(
        JSON.stringify({ operationId: r.operationId, userId: u, amount: "11" }),
      ),
      `redelivery-${r.operationId}`,
    );
    await waitIdle(jsm);
    expect((await client.balance(u))["posted"]).toBe("11");
    expect(
      (await storedEvents(jsm)).filter((e) => e.payload["operationId"] === r.operationId),
    ).toHaveLength(1);
  });
});

describe("service – dead letters", () => {
  it("a reused operationId with different content is a conflict: dead letter, no second event, no balance change", async () => {
    const u = user();
    const r = await client.credit({ userId: u, amount: 5 }, wait);
    const body = new TextEncoder().encode(
      JSON.stringify({ operationId: r.operationId, userId: u, amount: 6 }),
    );
    const sent = await client.publishRaw("billing.cmd.credit", body, `conflict-${r.operationId}`);
    const letter = await waitFor("conflict dead letter", async () =>
      (await storedMessages(jsm, "BILLING_DLQ")).find(
        (m) => m.header?.get("Billing-Original-Sequence") === String(sent.streamSequence),
      ),
    );
    expect(letter.subject).toBe("billing.dlq.conflict");
    expect(new TextDecoder().decode(letter.data)).toBe(new TextDecoder().decode(body));
    expect(letter.header?.get("Billing-Reason")).toBe("conflict");
    expect(letter.header?.get("Billing-Original-Subject")).toBe("billing.cmd.credit");
    expect(letter.header?.get("Billing-Error")).toBeTruthy();
    expect((await client.balance(u))["posted"]).toBe("5");
    expect(
      (await storedEvents(jsm)).filter((e) => e.payload["operationId"] === r.operationId),
    ).toHaveLength(1);
  });

  it("not JSON, no operationId, or an unknown subject is malformed: dead letter with the original bytes", async () => {
    const cases: Array<[string, string]> = [
      ["billing.cmd.credit", "{not json"],
      ["billing.cmd.debit", JSON.stringify({ userId: "x", amount: 1 })],
      ["billing.cmd.refund", JSON.stringify({ operationId: randomUUID() })],
    ];
    for (const [subject, text] of cases) {
      const sent = await client.publishRaw(subject, new TextEncoder().encode(text), undefined);
      const letter = await waitFor(`malformed dead letter for ${subject}`, async () =>
        (await storedMessages(jsm, "BILLING_DLQ")).find(
          (m) => m.header?.get("Billing-Original-Sequence") === String(sent.streamSequence),
        ),
      );
      expect(letter.subject).toBe("billing.dlq.malformed");
      expect(new TextDecoder().decode(letter.data)).toBe(text);
      expect(letter.header?.get("Billing-Original-Subject")).toBe(subject);
    }
  });
});

describe("service – queries", () => {
  it("balance answers zeros for an unknown user and an error for a bad request", async () => {
    expect(await client.balance("nobody-here")).toEqual({
      userId: "nobody-here",
      currency: "EUR",
      posted: "0",
      held: "0",
      available: "0",
    });
    await expect(client.balance("bad user!")).rejects.toThrow(/invalid_request/);
    await expect(client.balance("x", "XXX")).rejects.toThrow(/unknown_currency/);
  });

  it("operation answers applied with its event, rejected, or unknown", async () => {
    const u = user();
    const ok = await client.credit({ userId: u, amount: 3 }, wait);
    expect(await client.operation(ok.operationId)).toEqual({
      operationId: ok.operationId,
      status: "applied",
      event: ok.event,
    });
    const no = await client.debit({ userId: u, amount: 4 }, wait);
    expect(await client.operation(no.operationId)).toEqual({
      operationId: no.operationId,
      status: "rejected",
      event: no.event,
    });
    const id = randomUUID();
    expect(await client.operation(id)).toEqual({ operationId: id, status: "unknown" });
    await expect(client.operation("not-a-uuid")).rejects.toThrow(/invalid_request/);
  });
});
