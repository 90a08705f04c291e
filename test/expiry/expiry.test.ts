// Proves hold expiry against a real nats-server and real ledger files: one `expired` event per
// expired hold, never before its deadline by the ledger's clock, none for holds captured or
// released in time, a capture after expiry rejected as hold_expired, the hold query's statuses,
// and the same with three service processes, one of them killed and restarted mid-run.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import type { RunningService } from "../../src/service.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import {
  spawnService,
  startInProcess,
  workspace,
  type ServiceProcess,
} from "../support/service.ts";
import { storedEvents, waitFor } from "../support/streams.ts";

const overrides = {
  expiry: { delayMs: 1000, sweepIntervalMs: 100, holdsPerSweepMax: 1000 },
  worker: { holdGraceMs: 2000, holdWaitNakMs: 200 },
  consumer: { ackWaitMs: 10_000 },
  ops: { port: 0 },
};
const wait = { wait: true } as const;
const NS = 1_000_000_000n;

describe("expiry – one process", () => {
  let nats: NatsServer;
  let service: RunningService;
  let client: BillingClient;
  let jsm: JetStreamManager;
  let ws: ReturnType<typeof workspace>;

  beforeAll(async () => {
    nats = await startNats();
    ws = workspace(overrides);
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

  it("a hold past its timeout produces one expired event, not before its deadline, and frees the funds", async () => {
    const u = `exp-${randomUUID().slice(0, 8)}`;
    await client.credit({ userId: u, amount: 100 }, wait);
    const h = await client.hold({ userId: u, amount: 60, timeoutSeconds: 1 }, wait);
    expect((await client.holdStatus(h.operationId))["status"]).toBe("held");
    const expired = await waitFor("expired event", async () =>
      (await storedEvents(jsm)).find((e) => e.subject === `billing.evt.expired.${h.operationId}`),
    );
    expect(expired.payload).toMatchObject({
      event: "expired",
      holdId: h.operationId,
      userId: u,
      amount: "60",
      currency: "EUR",
    });
    expect(expired.payload["operationId"]).toBeUndefined();
    const deadline = BigInt(String(h.event?.["ledgerTimestamp"])) + 1n * NS;
    expect(BigInt(String(expired.payload["ledgerTimestamp"]))).toBeGreaterThanOrEqual(deadline);
    expect((await client.balance(u))["available"]).toBe("100");
    expect(await client.holdStatus(h.operationId)).toEqual({
      holdId: h.operationId,
      status: "expired",
      amount: "60",
      userId: u,
      currency: "EUR",
    });
    expect((await client.capture({ holdId: h.operationId }, wait)).event).toMatchObject({
      event: "rejected",
      reason: "hold_expired",
    });
    expect((await client.release({ holdId: h.operationId }, wait)).event).toMatchObject({
      event: "rejected",
      reason: "hold_expired",
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(
      (await storedEvents(jsm)).filter((e) => e.subject === `billing.evt.expired.${h.operationId}`),
    ).toHaveLength(1);
  });

  it("holds captured or released before their deadline never expire, and the query says so", async () => {
    const u = `exp-${randomUUID().slice(0, 8)}`;
    await client.credit({ userId: u, amount: 100 }, wait);
    const a = await client.hold({ userId: u, amount: 10, timeoutSeconds: 2 }, wait);
    const b = await client.hold({ userId: u, amount: 10, timeoutSeconds: 2 }, wait);
    await client.capture({ holdId: a.operationId }, wait);
    await client.release({ holdId: b.operationId }, wait);
    await new Promise((r) => setTimeout(r, 3000));
    const subjects = (await storedEvents(jsm)).map((e) => e.subject);
    expect(subjects).not.toContain(`billing.evt.expired.${a.operationId}`);
    expect(subjects).not.toContain(`billing.evt.expired.${b.operationId}`);
    expect((await client.holdStatus(a.operationId))["status"]).toBe("captured");
    expect((await client.holdStatus(b.operationId))["status"]).toBe("released");
    expect(await client.balance(u)).toMatchObject({ posted: "90", held: "0", available: "90" });
  });

  it("the hold query answers unknown for an id that is not a hold, and an error for a bad request", async () => {
    expect(await client.holdStatus(randomUUID())).toMatchObject({ status: "unknown" });
    const credit = await client.credit({ userId: "exp-x", amount: 1 }, wait);
    expect(await client.holdStatus(credit.operationId)).toMatchObject({ status: "unknown" });
    await expect(client.holdStatus("nope")).rejects.toThrow(/invalid_request/);
  });
});

describe("expiry – three processes and a restart", () => {
  it("every expired hold gets exactly one expired event while processes are killed and restarted", async () => {
    const nats = await startNats();
    const ws = workspace(overrides);
    const procs: ServiceProcess[] = [];
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 20_000 });
    try {
      for (let i = 0; i < 3; i += 1)
        procs.push(await spawnService(nats.url, ws.ledgerPath, ws.configPath));
      const jsm = await jetstreamManager(client.nc);
      const users = Array.from({ length: 10 }, (_, i) => `mp-${i}-${randomUUID().slice(0, 6)}`);
      await Promise.all(users.map((u) => client.credit({ userId: u, amount: 1000 }, wait)));
      const holds = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          client.hold(
            { userId: users[i % users.length] as string, amount: 10, timeoutSeconds: 1 + (i % 3) },
            wait,
          ),
        ),
      );
      const captured = holds.filter((_, i) => i % 4 === 0);
      await Promise.all(captured.map((h) => client.capture({ holdId: h.operationId }, wait)));
      await procs[0]?.kill("SIGKILL");
      procs[0] = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      const expiring = holds
        .filter((h) => !captured.includes(h))
        .map((h) => `billing.evt.expired.${h.operationId}`);
      await waitFor(
        "all expired events",
        async () => {
          const subjects = new Set((await storedEvents(jsm)).map((e) => e.subject));
          return expiring.every((s) => subjects.has(s));
        },
        30_000,
        200,
      );
      await new Promise((r) => setTimeout(r, 1000));
      const events = await storedEvents(jsm);
      for (const s of expiring) expect(events.filter((e) => e.subject === s)).toHaveLength(1);
      for (const h of captured)
        expect(events.some((e) => e.subject === `billing.evt.expired.${h.operationId}`)).toBe(
          false,
        );
      for (const u of users) expect((await client.balance(u))["held"]).toBe("0");
    } finally {
      await client.close();
      for (const p of procs) await p.kill("SIGKILL");
      await nats.stop();
      ws.cleanup();
    }
  });
});
