// Proves that start-up waits for NATS instead of exiting at the first refused connection: a real
// `billing start` launched while its nats-server is down logs one line per attempt naming the
// servers, and once the server is back (within nats.startupWaitMs) it sets up and serves. The
// bound itself (never up → exit 3 naming the servers) is in test/config/config.test.ts; restarts
// under load, during every start-up step, are a fault-suite scenario (test/fault/faults.test.ts).
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BillingClient } from "@billing-ledger/client";
import { startNats } from "../support/nats-server.ts";
import { workspace } from "../support/service.ts";
import { waitFor } from "../support/streams.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
const ATTEMPT_LINE = "start-up: connect to NATS failed; trying again";

describe("service – start-up while the broker is away", () => {
  it("started while nats-server is down, the service retries (one line per attempt naming the servers) and serves once it is up", async () => {
    const nats = await startNats();
    await nats.kill("SIGTERM");
    const ws = workspace({ nats: { startupWaitMs: 30_000 } });
    const child = spawn(process.execPath, [BIN, "start"], {
      env: {
        ...process.env,
        NATS_URL: nats.url,
        LEDGER_PATH: ws.ledgerPath,
        BILLING_CONFIG: ws.configPath,
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    try {
      // The server comes back only once the process has met the outage: a fixed pause raced the
      // process's own boot on a loaded machine (it could start after the server was back).
      await waitFor(
        "a failed connection attempt",
        async () => output.includes(ATTEMPT_LINE),
        30_000,
        100,
      );
      await nats.restart();
      await waitFor(
        "the service started",
        async () => output.includes("service started"),
        30_000,
        100,
      );
      const attempts = output.split("\n").filter((l) => l.includes(ATTEMPT_LINE));
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      for (const line of attempts) expect(line).toContain(nats.url);
      const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 20_000 });
      try {
        const outcome = await client.send(
          "credit",
          { userId: "restart-user", amount: "500", currency: "EUR" },
          { wait: true },
        );
        expect(outcome.event?.event).toBe("credited");
      } finally {
        await client.close();
      }
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await nats.stop();
      ws.cleanup();
    }
  }, 90_000);
});
