// Proves that a ledger is bound to its deployment (issue 10, item 3): the first start records which
// ledger serves a set of streams; a process whose ledger is another one (a second clone, another
// working directory, a deleted ./data) refuses to start with exit 2 naming both, instead of taking
// half of the commands into a ledger of its own; a ledger that served other streams refuses new
// ones. Two deployments sharing one ledger (ledger.shared, as on a shared TigerBeetle cluster) keep
// their accounts, transfers, holds and expired events to themselves. Real nats-servers, real
// `billing start` processes, real SQLite files.
import { spawnSync } from "node:child_process";
import { CreateTransferStatus } from "tigerbeetle-node";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { openLedger } from "../../src/ledger/index.ts";
import { connectBroker } from "../../src/broker/connection.ts";
import { readChart } from "../../src/service.ts";
import { runAudit } from "../../src/audit/audit.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, testConfig, workspace, type ServiceProcess } from "../support/service.ts";
import { storedEvents, storedMessages, waitFor } from "../support/streams.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;

/** Runs `billing setup --new-deployment`: one more deployment on a shared ledger, on purpose. */
function newDeployment(
  natsUrl: string,
  ledgerPath: string,
  configPath: string,
): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "setup", "--new-deployment"], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      LEDGER_PATH: ledgerPath,
      BILLING_CONFIG: configPath,
      LOG_LEVEL: "warn",
    },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, stderr: `${r.stderr}${r.stdout}` };
}

/** Runs `billing start` to its end: a refused start exits at once. */
function startToEnd(
  natsUrl: string,
  ledgerPath: string,
  configPath: string,
): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "start"], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      LEDGER_PATH: ledgerPath,
      BILLING_CONFIG: configPath,
      LOG_LEVEL: "warn",
    },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, stderr: `${r.stderr}${r.stdout}` };
}

describe("deployment – one ledger per set of streams", () => {
  let nats: NatsServer;
  let other: NatsServer;
  let ws: ReturnType<typeof workspace>;
  let first: ServiceProcess;

  beforeAll(async () => {
    nats = await startNats();
    other = await startNats();
    ws = workspace();
    first = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
  });

  afterAll(async () => {
    await first?.kill("SIGTERM");
    await nats?.stop();
    await other?.stop();
    ws?.cleanup();
  });

  it("a second worker with another (empty) ledger file is refused with exit 2 naming the deployment and both ledgers' sides", async () => {
    const deploymentId = /"deploymentId":"([0-9a-f-]{36})"/.exec(first.output())?.[1];
    expect(deploymentId).toMatch(/^[0-9a-f]{8}-/);
    const stray = join(ws.dir, "elsewhere", "ledger.db");
    const r = startToEnd(nats.url, stray, ws.configPath);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`belongs to deployment ${deploymentId}`);
    expect(r.stderr).toContain(stray);
    expect(r.stderr).toContain("serves no deployment");
  });

  it("with the refused worker gone, every credit lands in the one ledger: balances whole, nothing split", async () => {
    const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
    try {
      const u = `split-${randomUUID().slice(0, 8)}`;
      for (let i = 0; i < 10; i += 1)
        await client.credit({ userId: u, amount: "5" }, { wait: true });
      expect(await client.balance(u)).toMatchObject({ posted: "50", available: "50" });
    } finally {
      await client.close();
    }
  });

  it("a later message on billing.deployment never rebinds the streams: the first record stands", async () => {
    const deploymentId = /"deploymentId":"([0-9a-f-]{36})"/.exec(first.output())?.[1];
    const broker = await connectBroker({
      servers: [nats.url],
      name: "rebind-test",
      connectTimeoutMs: 2_000,
    });
    try {
      await broker.js.publish("billing.deployment", JSON.stringify({ deploymentId: randomUUID() }));
    } finally {
      await broker.close();
    }
    const second = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
    try {
      expect(/"deploymentId":"([0-9a-f-]{36})"/.exec(second.output())?.[1]).toBe(deploymentId);
    } finally {
      await second.kill("SIGTERM");
    }
  });

  it("a ledger that serves a deployment refuses the fresh streams of another NATS (exit 2 naming it)", async () => {
    const r = startToEnd(other.url, ws.ledgerPath, ws.configPath);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /already serves deployment [0-9a-f-]{36}, but NATS .* has no deployment record/,
    );
  });

  it("a ledger file of an older version (transfers, no deployment record) is refused for fresh streams", async () => {
    const legacy = join(ws.dir, "legacy.db");
    const ledger = await openLedger({ driver: "embedded", path: legacy });
    try {
      await ledger.createAccounts(
        [1n, 2n].map((id) => ({
          id,
          debits_pending: 0n,
          debits_posted: 0n,
          credits_pending: 0n,
          credits_posted: 0n,
          user_data_128: 0n,
          user_data_64: 0n,
          user_data_32: 0,
          reserved: 0,
          ledger: 978,
          code: 10,
          flags: 0,
          timestamp: 0n,
        })),
      );
      const [result] = await ledger.createTransfers([
        {
          id: 3n,
          debit_account_id: 1n,
          credit_account_id: 2n,
          amount: 1n,
          pending_id: 0n,
          user_data_128: 0n,
          user_data_64: 0n,
          user_data_32: 0,
          timeout: 0,
          ledger: 978,
          code: 1,
          flags: 0,
          timestamp: 0n,
        },
      ]);
      expect(result?.status).toBe(CreateTransferStatus.created);
    } finally {
      ledger.destroy();
    }
    const fresh = await startNats();
    try {
      const r = startToEnd(fresh.url, legacy, ws.configPath);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain("holds transfers but no deployment record");
    } finally {
      await fresh.stop();
    }
  });
});

describe("deployment – first starts racing", () => {
  it("three processes started at once on fresh streams and one fresh ledger all start, bound to one deployment", async () => {
    const nats = await startNats();
    const ws = workspace();
    const procs: ServiceProcess[] = [];
    try {
      const started = await Promise.allSettled(
        [0, 1, 2].map(() => spawnService(nats.url, ws.ledgerPath, ws.configPath)),
      );
      for (const r of started) if (r.status === "fulfilled") procs.push(r.value);
      expect(
        started.map((r) => (r.status === "rejected" ? String(r.reason).slice(0, 400) : "started")),
      ).toEqual(["started", "started", "started"]);
      const ids = procs.map((p) => /"deploymentId":"([0-9a-f-]{36})"/.exec(p.output())?.[1]);
      expect(new Set(ids).size).toBe(1);
      expect(ids[0]).toMatch(/^[0-9a-f]{8}-/);
    } finally {
      for (const p of procs) await p.kill("SIGTERM");
      await nats.stop();
      ws.cleanup();
    }
  });
});

describe("deployment – two deployments sharing one ledger (ledger.shared)", () => {
  let a: NatsServer;
  let b: NatsServer;
  let ws: ReturnType<typeof workspace>;
  const services: ServiceProcess[] = [];
  const clients: BillingClient[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([startNats(), startNats()]);
    ws = workspace({ ledger: { shared: true }, expiry: { delayMs: 1000, sweepIntervalMs: 200 } });
    services.push(await spawnService(a.url, ws.ledgerPath, ws.configPath));
    // B's fresh streams on a ledger that serves A: `billing start` alone refuses (lost streams
    // would look the same); `billing setup --new-deployment` adds B on purpose.
    const refused = startToEnd(b.url, ws.ledgerPath, ws.configPath);
    expect(refused.status, refused.stderr).toBe(2);
    expect(refused.stderr).toContain("billing setup --new-deployment");
    const added = newDeployment(b.url, ws.ledgerPath, ws.configPath);
    expect(added.status, added.stderr).toBe(0);
    services.push(await spawnService(b.url, ws.ledgerPath, ws.configPath));
    clients.push(
      await BillingClient.connect({ servers: a.url, timeoutMs: 15_000 }),
      await BillingClient.connect({ servers: b.url, timeoutMs: 15_000 }),
    );
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    for (const s of services) await s.kill("SIGTERM");
    await a?.stop();
    await b?.stop();
    ws?.cleanup();
  });

  it("the same userId has one balance per deployment; neither sees the other's money", async () => {
    const [ca, cb] = clients as [BillingClient, BillingClient];
    await ca.credit({ userId: "alice", amount: "700" }, { wait: true });
    await cb.credit({ userId: "alice", amount: "30" }, { wait: true });
    await cb.transfer(
      { fromUserId: "alice", toUserId: "bob", amount: "10", fee: "1" },
      { wait: true },
    );
    expect(await ca.balance("alice")).toMatchObject({ posted: "700", available: "700" });
    expect(await cb.balance("alice")).toMatchObject({ posted: "19", available: "19" });
    expect(await ca.balance("bob")).toMatchObject({ posted: "0" });
  });

  it("an operationId already used in the other deployment is a conflict here, never a replay of their event", async () => {
    const [ca, cb] = clients as [BillingClient, BillingClient];
    const operationId = randomUUID();
    await ca.credit({ operationId, userId: "carol", amount: "5" }, { wait: true });
    await cb.publishRaw(
      "billing.cmd.credit",
      new TextEncoder().encode(JSON.stringify({ operationId, userId: "carol", amount: "5" })),
      operationId,
    );
    const jsm = await jetstreamManager(cb.nc);
    const letter = await waitFor(
      "the conflict letter in deployment B",
      async () =>
        (await storedMessages(jsm, "BILLING_DLQ")).find(
          (m) => m.subject === "billing.dlq.conflict",
        ),
      20_000,
    );
    expect(letter.header?.get("Billing-Error")).toContain("another deployment");
    expect(
      (await storedEvents(jsm)).filter((e) => e.payload["operationId"] === operationId),
    ).toEqual([]);
    expect(await cb.balance("carol")).toMatchObject({ posted: "0" });
  });

  it("a hold expires in its own deployment only: one expired event there, none in the other", async () => {
    const [ca, cb] = clients as [BillingClient, BillingClient];
    await ca.credit({ userId: "dave", amount: "100" }, { wait: true });
    const hold = await ca.hold({ userId: "dave", amount: "40", timeoutSeconds: 1 }, { wait: true });
    const jsmA = await jetstreamManager(ca.nc);
    const jsmB = await jetstreamManager(cb.nc);
    await waitFor(
      "the expired event in deployment A",
      async () =>
        (await storedEvents(jsmA)).some(
          (e) => e.payload.event === "expired" && e.payload["holdId"] === hold.operationId,
        ),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 1500)); // B's sweeper has swept several times since
    expect((await storedEvents(jsmB)).filter((e) => e.payload.event === "expired")).toEqual([]);
  });

  it("each deployment's audit of the shared ledger is clean and counts only its own operations", async () => {
    for (const [nats, expected] of [
      [a, 3],
      [b, 2],
    ] as const) {
      const config = testConfig(nats.url, ws.ledgerPath, ws.configPath);
      const broker = await connectBroker({
        servers: [nats.url],
        name: "audit-test",
        connectTimeoutMs: 2_000,
      });
      const ledger = await openLedger({ driver: "embedded", path: ws.ledgerPath });
      try {
        const chart = await readChart(config, broker, ledger);
        const report = await runAudit(
          {
            ledger,
            js: broker.js,
            jsm: broker.jsm,
            chart,
            eventsStream: config.streams.events,
            shared: true,
          },
          { settleMs: 0 },
        );
        expect(report.findings.listed).toEqual([]);
        expect(report.counts.applied).toBeGreaterThanOrEqual(expected);
      } finally {
        ledger.destroy();
        await broker.close();
      }
    }
  });
});
