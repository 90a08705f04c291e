// Test harness for the service: real `billing start` processes (spawned, killable with SIGKILL,
// stoppable with SIGTERM) or an in-process service, each on a temp ledger file and a test NATS.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { createLogger } from "../../src/lib/log.ts";
import { startService, type RunningService } from "../../src/service.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
const READY_TIMEOUT_MS = 30_000;

export type Overrides = Record<string, unknown>;

/** A temp dir with a ledger path and a config file holding the overrides. */
export function workspace(overrides: Overrides = {}): {
  dir: string;
  ledgerPath: string;
  configPath: string;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), "billing-test-"));
  const configPath = join(dir, "config.json");
  // Tests run many services side by side: no metrics port unless a test asks for one.
  writeFileSync(configPath, JSON.stringify({ ops: { port: 0 }, ...overrides }));
  return {
    dir,
    ledgerPath: join(dir, "ledger.db"),
    configPath,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function testConfig(natsUrl: string, ledgerPath: string, configPath: string): Config {
  return loadConfig({
    NATS_URL: natsUrl,
    LEDGER_PATH: ledgerPath,
    BILLING_CONFIG: configPath,
    LOG_LEVEL: process.env["TEST_LOG_LEVEL"] ?? "warn",
  });
}

export async function startInProcess(
  natsUrl: string,
  ledgerPath: string,
  configPath: string,
): Promise<RunningService> {
  const config = testConfig(natsUrl, ledgerPath, configPath);
  return startService(config, createLogger(config.log.level));
}

export type ServiceProcess = {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
};

/**
 * Every process spawned here; killed when the test process ends, whatever the tests did: on a
 * normal exit, and when the runner ends its worker with a signal (no "exit" event then). The
 * signal is raised again once the children are gone, so the worker ends as it was told to.
 */
const spawned = new Set<ChildProcess>();
const killSpawned = () => {
  for (const child of spawned)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
};
process.once("exit", killSpawned);
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  process.once(signal, () => {
    killSpawned();
    process.kill(process.pid, signal);
  });
}

/** Spawns `billing start` and waits until it logs "service started". */
export async function spawnService(
  natsUrl: string,
  ledgerPath: string,
  configPath: string,
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [BIN, "start"], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      LEDGER_PATH: ledgerPath,
      BILLING_CONFIG: configPath,
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  spawned.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      spawned.delete(child);
      resolve(code);
    }),
  );
  const started = Date.now();
  while (!out.includes("service started")) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`service exited before it started:\n${out}`);
    if (Date.now() - started > READY_TIMEOUT_MS) {
      child.kill("SIGKILL");
      throw new Error(`service did not start within ${READY_TIMEOUT_MS} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => out,
    exited,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
