// Proves that start-up waits for NATS instead of exiting at the first refused connection: a real
// `billing start` launched while its nats-server is down logs one line per attempt naming the
// servers, and once the server is back (within nats.startupWaitMs) it sets up and serves. The
// bound itself (never up → exit 2 naming the servers) is in test/config/config.test.ts; restarts
// under load, during every start-up step, are a fault-suite scenario (test/fault/faults.test.ts).
import { describe, expect, it } from "vitest";
import { BillingClient } from "../../src/client/index.ts";
import { startNats } from "../support/nats-server.ts";
import { spawnService, workspace } from "../support/service.ts";

describe("service – start-up while the broker is away", () => {
  it("started while nats-server is down, the service retries (one line per attempt naming the servers) and serves once it is up", async () => {
    const nats = await startNats();
    await nats.kill("SIGTERM");
    const ws = workspace({ nats: { startupWaitMs: 30_000 } });
    try {
      const starting = spawnService(nats.url, ws.ledgerPath, ws.configPath);
      starting.catch(() => undefined); // awaited below
      await new Promise((r) => setTimeout(r, 2_500));
      await nats.restart();
      const service = await starting;
      const attempts = service.output().split("\n").filter((l) => l.includes("start-up: connect to NATS failed; trying again"));
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      for (const line of attempts) expect(line).toContain(nats.url);
      const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 20_000 });
      try {
        const outcome = await client.send("credit", { userId: "restart-user", amount: "500", currency: "EUR" }, { wait: true });
        expect(outcome.event?.event).toBe("credited");
      } finally {
        await client.close();
      }
      expect(await service.kill("SIGTERM")).toBe(0);
    } finally {
      await nats.stop();
      ws.cleanup();
    }
  }, 90_000);
});
