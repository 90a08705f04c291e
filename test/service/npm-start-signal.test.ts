// Proves `npm start` stops like `billing start`: SIGTERM or SIGINT, sent to npm's own pid or to
// its whole process group (what Ctrl-C in a terminal does), ends npm with exit code 0 after the
// service logged "stopping" and "stopped", and leaves no service process behind.
//
// How it fails without the fix: npm runs a script through `sh -c`, and Debian's dash does not exec
// the last command, so npm forwarded the signal to the shell, the shell died, npm exited 143 at
// once and `node bin/billing.js start` ran on as an orphan, still holding its ledger and port.
// With `exec` in the script npm's child is the service itself; npm forwards the signal and exits
// with its code. To the group, the service gets the signal twice (from the terminal and from npm):
// a one-shot listener let the second one end it by the signal (npm then exited 130 or 143); the
// last case sends the second SIGTERM the moment the first is seen handled, so it fails every time.
//
// Spawns real `npm start` processes (the project's package.json) in their own process group, on a
// test nats-server and a temp ledger file.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace } from "../support/service.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

type Started = {
  npmPid: number;
  servicePid: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** Whether a process runs: a zombie (exited, not yet reaped by whoever adopted it) does not. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Every group this file started, ended with SIGKILL if a test fails half-way. */
const groups = new Set<number>();

async function npmStart(natsUrl: string, ledgerPath: string, configPath: string): Promise<Started> {
  const child = spawn("npm", ["start"], {
    cwd: ROOT,
    detached: true, // its own process group, as a terminal gives a foreground job
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      LEDGER_PATH: ledgerPath,
      BILLING_CONFIG: configPath,
      LOG_LEVEL: "info",
      npm_config_update_notifier: "false",
    },
  });
  const npmPid = child.pid;
  if (npmPid === undefined) throw new Error("npm did not start");
  groups.add(npmPid);
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => void (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => void (out += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const started = Date.now();
  for (;;) {
    const line = out.split("\n").find((l) => l.includes('"msg":"service started"'));
    if (line !== undefined)
      return {
        npmPid,
        servicePid: (JSON.parse(line) as { pid: number }).pid,
        output: () => out,
        exited,
      };
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`npm start ended before the service started:\n${out}`);
    if (Date.now() - started > START_TIMEOUT_MS)
      throw new Error(`npm start: no "service started" within ${START_TIMEOUT_MS} ms:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("service – npm start and stop signals", () => {
  let nats: NatsServer;
  const ws = workspace();

  beforeAll(async () => {
    nats = await startNats();
  });

  afterAll(async () => {
    for (const pgid of groups) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // The group is gone already.
      }
    }
    await nats.stop();
    ws.cleanup();
  });

  const cases: Array<{ signal: NodeJS.Signals; to: "npm" | "group" }> = [
    { signal: "SIGTERM", to: "npm" },
    { signal: "SIGINT", to: "npm" },
    { signal: "SIGINT", to: "group" },
    { signal: "SIGTERM", to: "group" },
  ];

  it.each(cases)(
    "$signal to $to: npm exits 0, the service logged stopping and stopped, and no service process is left",
    async ({ signal, to }) => {
      const s = await npmStart(nats.url, ws.ledgerPath, ws.configPath);
      expect(s.servicePid).not.toBe(s.npmPid);
      expect(running(s.servicePid)).toBe(true);
      process.kill(to === "npm" ? s.npmPid : -s.npmPid, signal);
      const timeout = new Promise<"timeout">((r) =>
        setTimeout(() => r("timeout"), STOP_TIMEOUT_MS).unref(),
      );
      const result = await Promise.race([s.exited, timeout]);
      expect(result, s.output()).toEqual({ code: 0, signal: null });
      expect(s.output()).toContain(`"signal":"${signal}"`);
      expect(s.output()).toContain('"msg":"stopping: finishing the batch in hand"');
      expect(s.output()).toContain('"msg":"stopped"');
      expect(running(s.servicePid), `service pid ${s.servicePid} still runs after npm exited`).toBe(
        false,
      );
      groups.delete(s.npmPid);
    },
    START_TIMEOUT_MS + STOP_TIMEOUT_MS + 5_000,
  );

  it(
    "a second SIGTERM during the stop is acknowledged and the service still exits 0",
    async () => {
      const service = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
      const pid = service.child.pid as number;
      // The same signal again the moment the first one is seen handled, as npm's forwarded copy of a
      // terminal's signal arrives (sent at once, the kernel may merge two of the same signal into one).
      let second = "not sent";
      service.child.stdout?.on("data", (chunk: Buffer) => {
        if (
          second !== "not sent" ||
          !chunk.toString().includes('"msg":"stopping: finishing the batch in hand"')
        )
          return;
        try {
          process.kill(pid, "SIGTERM");
          second = "sent";
        } catch (error) {
          second = `not delivered: ${(error as Error).message}`;
        }
      });
      process.kill(pid, "SIGTERM");
      expect(await service.exited, service.output()).toBe(0);
      expect(second).toBe("sent");
      expect(service.output()).toContain(
        '"msg":"stopping already; a repeated signal changes nothing (worker.drainTimeoutMs bounds the stop)"',
      );
      expect(service.output()).toContain('"msg":"stopped"');
    },
    START_TIMEOUT_MS + STOP_TIMEOUT_MS,
  );
});
