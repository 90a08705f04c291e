// Proves start-up from a fresh clone's state: the embedded ledger's directory is created on first
// use, and a file that is not a ledger ends `billing start` with exit code 2 naming it, untouched.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startNats } from "../support/nats-server.ts";
import { spawnService, workspace } from "../support/service.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;

describe("service – start-up", () => {
  it("starts on a ledger path whose directory does not exist yet, and stops with SIGTERM", async () => {
    const nats = await startNats();
    const ws = workspace();
    try {
      const service = await spawnService(nats.url, join(ws.dir, "data", "nested", "ledger.db"), ws.configPath);
      expect(await service.kill("SIGTERM")).toBe(0);
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
      const r = spawnSync(process.execPath, [BIN, "start"], { env: { ...process.env, LEDGER_PATH: path, NATS_URL: "nats://127.0.0.1:1" }, encoding: "utf8", timeout: 30_000 });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(path);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(readFileSync(path, "utf8")).toBe("these are someone else's bytes\n");
    } finally {
      ws.cleanup();
    }
  });
});
