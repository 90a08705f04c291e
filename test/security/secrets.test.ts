// Proves that secrets never reach the service's output: real `billing start` processes at
// LOG_LEVEL=debug (every settled message logged), authenticated under docs/security.md's roles by
// a password from a file and from NATS_PASSWORD, apply commands, dead-letter a malformed one and
// answer queries, then stop; their whole stdout and stderr is searched for the password. And the
// start-up failures that handle a secret (a wrong password, credentials in NATS_URL, an unreadable
// password file) end the process with exit code 2 and one line that names the problem, not the
// secret.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BillingClient } from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";
import { secret, secretDir, type SecretDir } from "./support/fixture.ts";
import { serverConfig } from "./support/roles.ts";
import { serviceOverrides } from "./support/service-with-auth.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
// A start-up failure ends the process well within this (connect timeout 5 s by default).
const EXIT_TIMEOUT_MS = 20_000;

const servicePassword = secret("svc");
const publisherPassword = secret("pub");

let server: NatsServer;
let secrets: SecretDir;
let client: BillingClient;

beforeAll(async () => {
  secrets = secretDir();
  server = await startNats({
    configText: serverConfig([
      { role: "service", user: "billing", password: servicePassword },
      { role: "publisher", user: "orders", password: publisherPassword },
    ]),
  });
  client = await BillingClient.connect({
    servers: server.url,
    user: "orders",
    pass: publisherPassword,
    timeoutMs: 15_000,
  });
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
  secrets?.cleanup();
});

// Commands that make the service log at every level it has: applied, rejected, dead-lettered, and
// queries answered.
async function exercise(): Promise<void> {
  const userId = `u-${randomUUID().slice(0, 8)}`;
  await client.credit({ userId, amount: "100" }, { wait: true });
  const rejected = await client.debit({ userId, amount: "1000" }, { wait: true });
  expect(rejected.event).toMatchObject({ event: "rejected", reason: "insufficient_funds" });
  await client.publishRaw("billing.cmd.debit", new TextEncoder().encode("{not json"), undefined);
  expect(await client.balance(userId)).toMatchObject({ posted: "100" });
  await client.operation(rejected.operationId);
}

async function runToCompletion(service: ServiceProcess): Promise<string> {
  await exercise();
  expect(await service.kill("SIGTERM")).toBe(0);
  return service.output();
}

// Runs `billing start` expecting it to fail at start-up; resolves with its exit code and output.
async function failedStart(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [BIN, "start"], {
    env: { ...process.env, LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), EXIT_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

describe("secrets – a running service at LOG_LEVEL=debug prints none", () => {
  // One deployment (one NATS): both services serve it with its one ledger.
  const deployment = workspace();
  afterAll(() => deployment.cleanup());

  it("password from nats.auth.passFile", async () => {
    const ws = workspace(
      serviceOverrides({ user: "billing", passFile: secrets.file("pass", `${servicePassword}\n`) }),
    );
    try {
      const service = await spawnService(server.url, deployment.ledgerPath, ws.configPath, {
        LOG_LEVEL: "debug",
      });
      const output = await runToCompletion(service);
      expect(output).toContain('"msg":"message settled"'); // debug lines were written
      expect(output).not.toContain(servicePassword);
      expect(output).not.toContain(publisherPassword);
    } finally {
      ws.cleanup();
    }
  });

  it("password from NATS_PASSWORD", async () => {
    const ws = workspace(serviceOverrides({ user: "billing" }));
    try {
      const service = await spawnService(server.url, deployment.ledgerPath, ws.configPath, {
        LOG_LEVEL: "debug",
        NATS_PASSWORD: servicePassword,
      });
      const output = await runToCompletion(service);
      expect(output).toContain('"level":20');
      expect(output).not.toContain(servicePassword);
    } finally {
      ws.cleanup();
    }
  });
});

describe("secrets – start-up failures name the problem, not the secret", () => {
  it("a wrong password: exit code 2, one line naming the server and the refusal", async () => {
    const wrong = secret("wrong");
    const ws = workspace(
      serviceOverrides({ user: "billing", passFile: secrets.file("wrong", wrong) }),
    );
    try {
      const r = await failedStart({
        NATS_URL: server.url,
        LEDGER_PATH: ws.ledgerPath,
        BILLING_CONFIG: ws.configPath,
      });
      expect(r.code).toBe(2);
      expect(r.output).toContain(`cannot connect to NATS at ${server.url}`);
      expect(r.output).toMatch(/Authorization Violation/i);
      expect(r.output).not.toContain(wrong);
      expect(r.output.trim().split("\n")).toHaveLength(1);
    } finally {
      ws.cleanup();
    }
  });

  it("credentials in NATS_URL: exit code 2, the URL shown without them", async () => {
    const ws = workspace(serviceOverrides({}));
    try {
      const url = server.url.replace("nats://", `nats://billing:${servicePassword}@`);
      const r = await failedStart({
        NATS_URL: url,
        LEDGER_PATH: ws.ledgerPath,
        BILLING_CONFIG: ws.configPath,
      });
      expect(r.code).toBe(2);
      expect(r.output).toContain(
        `nats://***@127.0.0.1:${server.port}: credentials in a server URL are not accepted`,
      );
      expect(r.output).not.toContain(servicePassword);
    } finally {
      ws.cleanup();
    }
  });

  it("an unreadable password file: exit code 2 naming the setting and the file", async () => {
    const missing = `${secrets.dir}/missing-${randomUUID()}`;
    const ws = workspace(serviceOverrides({ user: "billing", passFile: missing }));
    try {
      const r = await failedStart({
        NATS_URL: server.url,
        LEDGER_PATH: ws.ledgerPath,
        BILLING_CONFIG: ws.configPath,
      });
      expect(r.code).toBe(2);
      expect(r.output).toContain(`nats.auth.passFile: cannot read ${missing}: ENOENT`);
    } finally {
      ws.cleanup();
    }
  });
});
