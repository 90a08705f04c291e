// Proves start-up from a fresh clone's state: the embedded ledger's directory is created on first
// use, and a file that is not a ledger ends `billing start` with exit code 2 naming it, untouched.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connectBroker } from "../../src/broker/connection.ts";
import { startNats } from "../support/nats-server.ts";
import { BillingClient } from "@billing-ledger/client";
import { spawnService, startInProcess, workspace } from "../support/service.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;

describe("service – start-up", () => {
  it("starts on a ledger path whose directory does not exist yet, and stops with SIGTERM or SIGINT", async () => {
    const nats = await startNats();
    const ws = workspace();
    try {
      const service = await spawnService(
        nats.url,
        join(ws.dir, "data", "nested", "ledger.db"),
        ws.configPath,
      );
      expect(await service.kill("SIGTERM")).toBe(0);
      // The contract treats SIGINT like SIGTERM: finish the batch in hand, exit 0.
      const again = await spawnService(
        nats.url,
        join(ws.dir, "data", "nested", "ledger.db"),
        ws.configPath,
      );
      expect(await again.kill("SIGINT")).toBe(0);
      expect(again.output()).toContain('"signal":"SIGINT"');
    } finally {
      await nats.stop();
      ws.cleanup();
    }
  });

  it("a query sent the moment start-up returns is answered, not 'no responders'", async () => {
    const nats = await startNats();
    const ws = workspace();
    // Connected before the service, so the query goes out as soon as startService resolves.
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 5_000 });
    try {
      const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
      try {
        expect(await client.balance("alice")).toMatchObject({ userId: "alice", posted: "0" });
      } finally {
        await service.stop();
      }
    } finally {
      await client.close();
      await nats.stop();
      ws.cleanup();
    }
  });

  it("billing setup creates the streams, the consumer and the system accounts without starting workers, twice", async () => {
    const nats = await startNats();
    const ws = workspace();
    try {
      const deployments: string[] = [];
      for (let i = 0; i < 2; i += 1) {
        const r = spawnSync(process.execPath, [BIN, "setup"], {
          env: {
            ...process.env,
            NATS_URL: nats.url,
            LEDGER_PATH: join(ws.dir, "fresh", "ledger.db"),
            BILLING_CONFIG: ws.configPath,
          },
          encoding: "utf8",
          timeout: 60_000,
        });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain("streams, consumer and system accounts are in place");
        deployments.push(/deployment ([0-9a-f-]{36})/.exec(r.stdout)?.[1] ?? "none");
      }
      // The first run bound the streams to the ledger; the second found the same deployment.
      expect(deployments[0]).toMatch(/^[0-9a-f]{8}-/);
      expect(deployments[1]).toBe(deployments[0]);
      const broker = await connectBroker({
        servers: [nats.url],
        name: "setup-test",
        connectTimeoutMs: 2_000,
      });
      try {
        const names = [];
        for await (const s of broker.jsm.streams.list()) names.push(s.config.name);
        expect(names.sort()).toEqual([
          "BILLING_ADVISORIES",
          "BILLING_COMMANDS",
          "BILLING_DEPLOYMENT",
          "BILLING_DLQ",
          "BILLING_EVENTS",
        ]);
        expect(
          (await broker.jsm.consumers.info("BILLING_COMMANDS", "billing-worker")).config
            .durable_name,
        ).toBe("billing-worker");
      } finally {
        await broker.close();
      }
    } finally {
      await nats.stop();
      ws.cleanup();
    }
  });

  it("a file that is not a ledger is refused with exit code 2 naming it, and left as it was", () => {
    const ws = workspace();
    try {
      const path = join(ws.dir, "not-a-ledger.db");
      writeFileSync(path, "these are someone else's bytes\n");
      const r = spawnSync(process.execPath, [BIN, "start"], {
        env: { ...process.env, LEDGER_PATH: path, NATS_URL: "nats://127.0.0.1:1" },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(path);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(readFileSync(path, "utf8")).toBe("these are someone else's bytes\n");
    } finally {
      ws.cleanup();
    }
  });
});
