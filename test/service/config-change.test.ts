// Proves end to end that a redelivery straddling a configuration change is a replay of the recorded
// decision: a real nats-server, a real `billing start` process applies a credit without currency
// (default EUR), a hold with a one-hour timeout and a padded transfer; the process is stopped and a
// new one started on the same ledger file with the default currency USD, holdTimeoutSecondsMax 600
// and payloadBytesMax below the transfer's size. The same three messages are published again (new
// message ids, so the broker does not drop them) after the events stream was deleted (it refuses
// purges; the new process creates it again), so the new process
// must rebuild and publish them: each must equal the first byte for byte, nothing may reach the
// dead letters, no balance may move, and `billing audit` must find nothing.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { BillingClient } from "@billing-ledger/client";
import { startNats } from "../support/nats-server.ts";
import { spawnService, workspace } from "../support/service.ts";
import { storedEvents, storedMessages, waitFor, waitIdle } from "../support/streams.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
const encoder = new TextEncoder();

describe("service – configuration changed between two deliveries", () => {
  it("a credit without currency, a long hold and a large transfer replay their events after the default currency and both limits changed", async () => {
    const nats = await startNats();
    const ws = workspace({ defaultCurrency: "EUR" });
    const changedPath = join(ws.dir, "changed.json");
    writeFileSync(
      changedPath,
      JSON.stringify({
        ops: { port: 0 },
        defaultCurrency: "USD",
        worker: { holdTimeoutSecondsMax: 600, payloadBytesMax: 256 },
      }),
    );
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 30_000 });
    const jsm = await jetstreamManager(client.nc);
    const u = `u-${randomUUID().slice(0, 8)}`;
    const v = `v-${randomUUID().slice(0, 8)}`;
    const messages = [
      {
        subject: "billing.cmd.credit",
        text: JSON.stringify({ operationId: randomUUID(), userId: u, amount: "1000" }),
      },
      {
        subject: "billing.cmd.hold",
        text: JSON.stringify({
          operationId: randomUUID(),
          userId: u,
          amount: "300",
          currency: "EUR",
          timeoutSeconds: 3600,
        }),
      },
      // Over the new payloadBytesMax (256), under the old one (4096).
      {
        subject: "billing.cmd.transfer",
        text:
          JSON.stringify({
            operationId: randomUUID(),
            fromUserId: u,
            toUserId: v,
            amount: "100",
            fee: "5",
            currency: "EUR",
          }) + " ".repeat(300),
      },
    ];
    const ids = messages.map((m) => (JSON.parse(m.text) as { operationId: string }).operationId);
    const eventsOf = async () => {
      const all = await storedEvents(jsm);
      return ids.map((id) => all.filter((e) => e.payload["operationId"] === id));
    };
    try {
      const first = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      for (const m of messages)
        await client.publishRaw(m.subject, encoder.encode(m.text), `first-${m.text.slice(16, 52)}`);
      const original = await waitFor("the first events", async () => {
        const found = await eventsOf();
        return found.every((e) => e.length === 1) ? found.map((e) => e[0]?.payload) : undefined;
      });
      expect(original.map((e) => e?.event)).toEqual(["credited", "held", "transferred"]);
      const balanceBefore = await client.balance(u, "EUR");
      expect(await first.kill("SIGTERM")).toBe(0);

      // The events are gone (as after a crash between the ledger and the publish): the new process
      // must rebuild them from the ledger, under the changed configuration.
      await jsm.streams.delete("BILLING_EVENTS");
      const second = await spawnService(nats.url, ws.ledgerPath, changedPath);
      for (const m of messages)
        await client.publishRaw(m.subject, encoder.encode(m.text), `again-${m.text.slice(16, 52)}`);
      await waitIdle(jsm, "BILLING_COMMANDS", "billing-worker", 15_000).catch((e: unknown) => {
        console.log(second.output().slice(-6000));
        throw e;
      });
      const replayed = await waitFor("the replayed events", async () => {
        const found = await eventsOf();
        return found.every((e) => e.length === 1) ? found.map((e) => e[0]?.payload) : undefined;
      });
      expect(replayed).toEqual(original);
      expect(await storedMessages(jsm, "BILLING_DLQ")).toEqual([]);
      expect(await client.balance(u, "EUR")).toEqual(balanceBefore);
      expect(await client.balance(u, "USD")).toMatchObject({ posted: "0", held: "0" });
      expect(await second.kill("SIGTERM")).toBe(0);

      const audit = spawnSync(process.execPath, [BIN, "audit"], {
        env: {
          ...process.env,
          NATS_URL: nats.url,
          LEDGER_PATH: ws.ledgerPath,
          BILLING_CONFIG: changedPath,
          LOG_LEVEL: "warn",
        },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(audit.stdout + audit.stderr).not.toMatch(/foreign_transfer|event_mismatch/);
      expect(audit.status).toBe(0);
    } finally {
      await client.close();
      await nats.stop();
      ws.cleanup();
    }
  }, 120_000);
});
