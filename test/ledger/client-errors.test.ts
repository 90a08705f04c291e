// Proves what the service does with each error the TigerBeetle client can throw, and with replica
// addresses it refuses. A cluster that evicts a session or refuses a release cannot be had on this
// machine (no TigerBeetle server here), so those answers come from a stand-in Client that rejects
// with tigerbeetle-node's own RequestError and codes, behind the real DeadlineLedger and
// MeteredLedger: an eviction replaces the client (the next request goes to a new one), is counted
// by code and by reason, and logged naming the cluster; a release mismatch or a request over the
// cluster's batch limit becomes LedgerRefusedError (the same code, a message naming the cluster and
// what to change), is not retried, and maps to exit 2, and a component that meets it exits 2
// (a real process). Addresses the real client refuses make a real `billing start` exit 2 at once,
// naming them.
import { spawn } from "node:child_process";
import { ErrorCodes, RequestError, type Client } from "tigerbeetle-node";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { exitCodeOf } from "../../src/cli/exit-code.ts";
import {
  DeadlineLedger,
  LedgerRefusedError,
  LedgerTimeoutError,
  openLedger,
} from "../../src/ledger/index.ts";
import { isRefusal, isTransient } from "../../src/lib/failure.ts";
import { MeteredLedger } from "../../src/telemetry/metered-ledger.ts";
import { capturingLogger, sample } from "../telemetry/fixture.ts";
import { startNats } from "../support/nats-server.ts";
import { workspace } from "../support/service.ts";
import { silentServer } from "../support/silent-ledger.ts";

const WHAT = "TigerBeetle cluster 0 at 3000";
const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;

/** A client whose every request rejects with `code`, counting its requests and whether it was destroyed. */
function failingClient(code: ErrorCodes): Client & { calls: number; destroyed: boolean } {
  const fail = <T>(): Promise<T> => {
    stub.calls += 1;
    return Promise.reject(new RequestError(code));
  };
  const stub = {
    calls: 0,
    destroyed: false,
    createAccounts: fail,
    createTransfers: fail,
    lookupAccounts: fail,
    lookupTransfers: fail,
    getAccountTransfers: fail,
    getAccountBalances: fail,
    queryAccounts: fail,
    queryTransfers: fail,
    destroy: () => void (stub.destroyed = true),
  } as Client & { calls: number; destroyed: boolean };
  return stub;
}

/** A client whose every read answers at once with nothing found. */
function answeringClient(): Client {
  const none = <T>(): Promise<T[]> => Promise.resolve([]);
  return {
    createAccounts: none,
    createTransfers: none,
    lookupAccounts: none,
    lookupTransfers: none,
    getAccountTransfers: none,
    getAccountBalances: none,
    queryAccounts: none,
    queryTransfers: none,
    destroy: () => undefined,
  };
}

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (e: unknown) => e,
  );
}

describe("TigerBeetle client errors – what the cluster can answer", () => {
  it("an eviction (ERR_CLIENT_EVICTED) is transient: the client is replaced, the next request goes to a new one, counted and logged naming the cluster", async () => {
    const first = failingClient(ErrorCodes.ERR_CLIENT_EVICTED);
    const opened: Client[] = [];
    const deadline = new DeadlineLedger(
      first,
      () => {
        const c = answeringClient();
        opened.push(c);
        return c;
      },
      { timeoutMs: 1_000, what: WHAT, replaceAfterTimeout: true },
    );
    const registry = new Registry();
    const { log, lines } = capturingLogger();
    const ledger = new MeteredLedger(deadline, registry, log);
    const error = await rejection(ledger.lookupAccounts([1n]));
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).code).toBe(ErrorCodes.ERR_CLIENT_EVICTED);
    expect(isTransient(error)).toBe(true);
    expect(exitCodeOf(error)).toBe(3);
    expect(first.destroyed).toBe(true);
    expect(deadline.replaced).toBe(1);
    // The next request registers a new client and is answered.
    expect(await ledger.lookupAccounts([1n])).toEqual([]);
    expect(opened).toHaveLength(1);
    expect(first.calls).toBe(1);
    const text = await registry.metrics();
    expect(
      sample(text, "billing_ledger_request_failures_total", {
        operation: "lookupAccounts",
        error: "ERR_CLIENT_EVICTED",
      }),
    ).toBe(1);
    expect(sample(text, "billing_ledger_client_replacements_total", { reason: "evicted" })).toBe(1);
    const warned = lines().filter((l) => l["reason"] === "evicted");
    expect(warned).toHaveLength(1);
    expect(warned[0]?.["ledger"]).toBe(WHAT);
    expect(String(warned[0]?.["msg"])).toContain("session limit");
  });

  for (const [code, remedy] of [
    [ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW, "older than the cluster accepts"],
    [ErrorCodes.ERR_CLIENT_RELEASE_TOO_HIGH, "newer than the cluster's"],
    [ErrorCodes.ERR_TOO_MUCH_DATA, "worker.batchMessagesMax"],
  ] as const) {
    it(`${code} is a refusal: LedgerRefusedError with the same code naming the cluster, not retried, not replaced, exit 2`, async () => {
      const first = failingClient(code);
      let opened = 0;
      const deadline = new DeadlineLedger(
        first,
        () => {
          opened += 1;
          return answeringClient();
        },
        { timeoutMs: 1_000, what: WHAT, replaceAfterTimeout: true },
      );
      const registry = new Registry();
      const ledger = new MeteredLedger(deadline, registry);
      const error = await rejection(ledger.createTransfers([]));
      expect(error).toBeInstanceOf(LedgerRefusedError);
      expect(error).toBeInstanceOf(RequestError);
      expect((error as RequestError).code).toBe(code);
      expect((error as Error).message).toContain(WHAT);
      expect((error as Error).message).toContain(remedy);
      expect(isTransient(error)).toBe(false);
      expect(isRefusal(error)).toBe(true);
      expect(exitCodeOf(error)).toBe(2);
      // The raw client error is a refusal as well (a ledger without the deadline wrapper).
      expect(isRefusal(new RequestError(code))).toBe(true);
      expect(deadline.replaced).toBe(0);
      expect(opened).toBe(0);
      expect(
        sample(await registry.metrics(), "billing_ledger_request_failures_total", {
          operation: "createTransfers",
          error: code,
        }),
      ).toBe(1);
    });
  }

  it("a component that meets a refusal exits 2 with one fatal line naming it (a real process), a bug still exits 70", async () => {
    const script = new URL("./support/exit-on-failure.ts", import.meta.url).pathname;
    const run = (kind: string) =>
      new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", script, kind], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let stdout = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        child.once("exit", (code) => {
          clearTimeout(killer);
          resolve({ code, stdout });
        });
      });
    const refused = await run("refused");
    expect(refused.code).toBe(2);
    const fatal = refused.stdout.split("\n").filter((l) => l.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toContain("the ledger refuses this process (in the worker loop)");
    expect(fatal[0]).toContain(WHAT);
    expect(fatal[0]).toContain("ERR_CLIENT_RELEASE_TOO_LOW");
    const bug = await run("bug");
    expect(bug.code).toBe(70);
    expect(bug.stdout).toContain("bug in the worker loop");
  }, 60_000);
});

describe("TigerBeetle client errors – requests that never complete", () => {
  it("the real client against an address that accepts and stays silent: LedgerTimeoutError, the client replaced, counted by reason and error, logged naming the addresses", async () => {
    const silent = await silentServer();
    try {
      const registry = new Registry();
      const { log, lines } = capturingLogger();
      const ledger = new MeteredLedger(
        await openLedger({
          driver: "tigerbeetle",
          clusterId: 0n,
          addresses: [String(silent.port)],
          requestTimeoutMs: 200,
        }),
        registry,
        log,
      );
      expect(await rejection(ledger.lookupTransfers([1n]))).toBeInstanceOf(LedgerTimeoutError);
      expect(
        await rejection(
          ledger.getAccountBalances({
            account_id: 1n,
            user_data_128: 0n,
            user_data_64: 0n,
            user_data_32: 0,
            code: 0,
            timestamp_min: 0n,
            timestamp_max: 0n,
            limit: 1,
            flags: 3,
          }),
        ),
      ).toBeInstanceOf(LedgerTimeoutError);
      ledger.destroy();
      const text = await registry.metrics();
      expect(sample(text, "billing_ledger_client_replacements_total", { reason: "timeout" })).toBe(
        2,
      );
      expect(
        sample(text, "billing_ledger_request_failures_total", {
          operation: "lookupTransfers",
          error: "LedgerTimeoutError",
        }),
      ).toBe(1);
      expect(
        sample(text, "billing_ledger_request_failures_total", {
          operation: "getAccountBalances",
          error: "LedgerTimeoutError",
        }),
      ).toBe(1);
      const warned = lines().filter((l) => l["reason"] === "timeout");
      expect(warned).toHaveLength(2);
      expect(warned[0]?.["ledger"]).toBe(`TigerBeetle cluster 0 at ${silent.port}`);
    } finally {
      await silent.close();
    }
  });
});

describe("TigerBeetle client errors – replica addresses the client refuses", () => {
  for (const addresses of ["localhost:3000", "not-an-address"]) {
    it(`billing start with TB_ADDRESSES=${addresses} exits 2 at once, one line naming the addresses`, async () => {
      const nats = await startNats();
      const ws = workspace({ ledger: { requestTimeoutMs: 300, startupWaitMs: 20_000 } });
      try {
        const started = Date.now();
        const child = spawn(process.execPath, [BIN, "start"], {
          env: {
            ...process.env,
            NATS_URL: nats.url,
            LEDGER_DRIVER: "tigerbeetle",
            TB_ADDRESSES: addresses,
            BILLING_CONFIG: ws.configPath,
            LOG_LEVEL: "info",
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        child.stdout.resume();
        const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
        clearTimeout(killer);
        expect(code).toBe(2);
        const ours = stderr.split("\n").filter((l) => l.startsWith("billing start:"));
        expect(ours).toHaveLength(1);
        expect(ours[0]).toContain(`TigerBeetle cluster 0 at ${addresses}`);
        expect(ours[0]).toContain("TB_ADDRESSES");
        // Not after ledger.startupWaitMs (20 s): retrying cannot help, so it does not wait.
        expect(Date.now() - started).toBeLessThan(15_000);
      } finally {
        await nats.stop();
        ws.cleanup();
      }
    }, 60_000);
  }
});
