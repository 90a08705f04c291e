// Proves configuration handling: defaults, the BILLING_CONFIG file and the contract's environment
// variables in that order; every bad value refused with one line naming it; limits cross-checked;
// the process exits 2 on a configuration error; the generated reference page is current.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { configReference } from "../../src/config/reference.ts";

const dir = mkdtempSync(join(tmpdir(), "billing-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(content: unknown): string {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("config – loading", () => {
  it("the defaults are valid and name the contract's defaults", () => {
    const c = loadConfig({});
    expect(c.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(c.ledger).toMatchObject({
      driver: "embedded",
      path: "./data/ledger.db",
      tigerbeetle: { addresses: ["3000"], clusterId: "0" },
    });
    expect(c.log.level).toBe("info");
    expect(c.ledger.pageCacheMib).toBe(16);
    expect(c.runtime.heapGrowingPercent).toBe(75);
  });

  it("environment variables override the file, which overrides the defaults", () => {
    const path = file({ ledger: { path: "/from/file.db" }, worker: { batchMessagesMax: 50 } });
    const c = loadConfig({
      BILLING_CONFIG: path,
      NATS_URL: "nats://a:1, nats://b:2",
      LEDGER_PATH: "/from/env.db",
      TB_ADDRESSES: "3001,3002",
      TB_CLUSTER_ID: "7",
      LOG_LEVEL: "debug",
      LEDGER_DRIVER: "tigerbeetle",
    });
    expect(c.nats.servers).toEqual(["nats://a:1", "nats://b:2"]);
    expect(c.ledger.path).toBe("/from/env.db");
    expect(c.ledger.driver).toBe("tigerbeetle");
    expect(c.ledger.tigerbeetle).toEqual({ clusterId: "7", addresses: ["3001", "3002"] });
    expect(c.worker.batchMessagesMax).toBe(50);
    expect(c.worker.batchWaitMs).toBe(5);
    expect(c.log.level).toBe("debug");
  });

  it("an unknown key, a wrong type and an out-of-range limit are refused naming the key", () => {
    expect(() => loadConfig({ BILLING_CONFIG: file({ worker: { batchSize: 5 } }) })).toThrow(
      /worker: unknown key batchSize/,
    );
    expect(() => loadConfig({ BILLING_CONFIG: file({ consumer: { ackWaitMs: "30s" } }) })).toThrow(
      /consumer\.ackWaitMs/,
    );
    expect(() =>
      loadConfig({ BILLING_CONFIG: file({ worker: { batchMessagesMax: 5000 } }) }),
    ).toThrow(/worker\.batchMessagesMax/);
    expect(() => loadConfig({ LEDGER_DRIVER: "postgres" })).toThrow(
      /ledger\.driver \(LEDGER_DRIVER\)/,
    );
    expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/log\.level \(LOG_LEVEL\)/);
    for (const pageCacheMib of [0, 1025, 1.5])
      expect(() => loadConfig({ BILLING_CONFIG: file({ ledger: { pageCacheMib } }) })).toThrow(
        /ledger\.pageCacheMib/,
      );
    for (const heapGrowingPercent of [-1, 301, 12.5])
      expect(() =>
        loadConfig({ BILLING_CONFIG: file({ runtime: { heapGrowingPercent } }) }),
      ).toThrow(/runtime\.heapGrowingPercent/);
    expect(
      loadConfig({ BILLING_CONFIG: file({ runtime: { heapGrowingPercent: 0 } }) }).runtime,
    ).toEqual({ heapGrowingPercent: 0 });
    expect(() => loadConfig({ BILLING_CONFIG: file("{oops") })).toThrow(ConfigError);
    expect(() => loadConfig({ BILLING_CONFIG: join(dir, "missing.json") })).toThrow(/cannot read/);
  });

  it("limits are cross-checked", () => {
    expect(() => loadConfig({ BILLING_CONFIG: file({ defaultCurrency: "JPY" }) })).toThrow(
      /defaultCurrency: JPY is not among/,
    );
    expect(() => loadConfig({ BILLING_CONFIG: file({ markerLedger: 978 }) })).toThrow(
      /markerLedger/,
    );
    expect(() => loadConfig({ BILLING_CONFIG: file({ consumer: { maxAckPending: 10 } }) })).toThrow(
      /consumer\.maxAckPending/,
    );
    expect(() => loadConfig({ BILLING_CONFIG: file({ consumer: { maxDeliver: 10 } }) })).toThrow(
      /consumer\.maxDeliver/,
    );
    expect(() =>
      loadConfig({ BILLING_CONFIG: file({ expiry: { sweepIntervalMs: 10_000 } }) }),
    ).toThrow(/expiry\.sweepIntervalMs/);
  });
});

describe("config – the process", () => {
  it("a configuration error ends `billing start` with exit code 2 and one line naming the field", () => {
    const bin = new URL("../../bin/billing.js", import.meta.url).pathname;
    const r = spawnSync(process.execPath, [bin, "start"], {
      env: { ...process.env, LEDGER_DRIVER: "postgres" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("LEDGER_DRIVER");
  });

  it("an unreachable NATS at start-up ends with exit code 3 (unavailable) naming the server, after nats.startupWaitMs", () => {
    const bin = new URL("../../bin/billing.js", import.meta.url).pathname;
    const config = file({ nats: { startupWaitMs: 1000 }, ops: { port: 0 } });
    const r = spawnSync(process.execPath, [bin, "start"], {
      env: {
        ...process.env,
        NATS_URL: "nats://127.0.0.1:1",
        LEDGER_PATH: join(dir, "l.db"),
        BILLING_CONFIG: config,
      },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain("127.0.0.1:1");
    expect(r.stderr).toContain("nats.startupWaitMs");
  });

  it("an unknown command prints the usage and exits 2", () => {
    const bin = new URL("../../bin/billing.js", import.meta.url).pathname;
    const r = spawnSync(process.execPath, [bin, "frobnicate"], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("usage:");
  });
});

describe("config – reference", () => {
  it("docs/config-reference.md is generated from the current schema (run npm run docs:config)", () => {
    expect(readFileSync(new URL("../../docs/config-reference.md", import.meta.url), "utf8")).toBe(
      configReference(),
    );
  });
});
