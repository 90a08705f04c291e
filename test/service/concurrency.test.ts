// Proves that several service processes on one NATS and one ledger file apply a mixed workload
// exactly once: 3 real processes, 10,000 commands over 200 users; afterwards every operation has
// exactly one event, every event's balances equal a reference model computed from the events in
// ledger order, and every user's balance in the ledger equals the model.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { BalanceModel } from "../support/model.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";
import { storedEvents, waitFor } from "../support/streams.ts";
import { inParallel, mixedWorkload } from "../support/workload.ts";

const COMMANDS = 10_000;
const USERS = 200;

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
const procs: ServiceProcess[] = [];

beforeAll(async () => {
  nats = await startNats();
  ws = workspace({ worker: { holdGraceMs: 10_000, holdWaitNakMs: 200 }, ops: { port: 0 } });
  for (let i = 0; i < 3; i += 1)
    procs.push(await spawnService(nats.url, ws.ledgerPath, ws.configPath));
});

afterAll(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  await nats?.stop();
  ws?.cleanup();
});

describe("service – three processes, one ledger", () => {
  it("10,000 mixed commands over 200 users: one event each, balances equal the reference model", async () => {
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 30_000 });
    try {
      const jsm = await jetstreamManager(client.nc);
      const commands = mixedWorkload(COMMANDS, USERS, 7);
      const encoder = new TextEncoder();
      await inParallel(commands, 256, async (c) => {
        await client.publishRaw(c.subject, encoder.encode(JSON.stringify(c.body)), c.operationId);
      });
      const ids = new Set(commands.map((c) => c.operationId));
      const events = await waitFor(
        "every operation's event",
        async () => {
          const all = await storedEvents(jsm);
          return all.length >= ids.size ? all : undefined;
        },
        240_000,
        500,
      );
      const perOperation = new Map<string, number>();
      for (const e of events)
        perOperation.set(
          String(e.payload["operationId"]),
          (perOperation.get(String(e.payload["operationId"])) ?? 0) + 1,
        );
      expect(events).toHaveLength(ids.size);
      expect([...perOperation.keys()].sort()).toEqual([...ids].sort());
      expect([...perOperation.values()].every((n) => n === 1)).toBe(true);
      const model = new BalanceModel();
      expect(model.applyAll(events.map((e) => e.payload))).toEqual([]);
      for (const [key, b] of model.users) {
        const userId = key.slice(key.indexOf("/") + 1);
        const got = await client.balance(userId);
        expect({ userId, posted: got["posted"], held: got["held"] }).toEqual({
          userId,
          posted: b.posted.toString(),
          held: b.held.toString(),
        });
      }
      const applied = events.filter((e) => e.payload.event !== "rejected").length;
      console.log(
        `concurrency: ${events.length} events, ${applied} applied, ${events.length - applied} rejected`,
      );
    } finally {
      await client.close();
    }
  }, 300_000);
});
