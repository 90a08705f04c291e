// Proves SIGTERM drains: a real service process stops fetching, finishes and settles the batch in
// hand and exits 0; nothing it took is lost (another process finishes the rest, one event each).
import { describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { startNats } from "../support/nats-server.ts";
import { spawnService, workspace } from "../support/service.ts";
import { storedEvents, waitFor } from "../support/streams.ts";
import { inParallel, mixedWorkload } from "../support/workload.ts";

describe("service – SIGTERM", () => {
  it("SIGTERM during a burst finishes the batch in hand, exits 0, and loses nothing", async () => {
    const nats = await startNats();
    const ws = workspace({
      worker: { batchMessagesMax: 200, holdGraceMs: 10_000, holdWaitNakMs: 200 },
      ops: { port: 0 },
    });
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 30_000 });
    try {
      const first = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      const commands = mixedWorkload(3000, 50, 11, "drain");
      const encoder = new TextEncoder();
      await inParallel(
        commands,
        128,
        async (c) =>
          void (await client.publishRaw(
            c.subject,
            encoder.encode(JSON.stringify(c.body)),
            c.operationId,
          )),
      );
      const jsm = await jetstreamManager(client.nc);
      await waitFor(
        "some progress",
        async () => (await storedEvents(jsm)).length > 100,
        60_000,
        100,
      );
      expect(await first.kill("SIGTERM")).toBe(0);
      expect(first.output()).toContain("stopping: finishing the batch in hand");
      const second = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      const events = await waitFor(
        "all events",
        async () => {
          const all = await storedEvents(jsm);
          return all.length >= commands.length ? all : undefined;
        },
        120_000,
        250,
      );
      const ids = events.map((e) => String(e.payload["operationId"]));
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(commands.map((c) => c.operationId)));
      await second.kill("SIGTERM");
    } finally {
      await client.close();
      await nats.stop();
      ws.cleanup();
    }
  }, 240_000);
});
