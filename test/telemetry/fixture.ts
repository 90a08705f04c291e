// Shared by the ops tests: a logger that keeps its lines, an HTTP GET, a reader for one sample of
// the Prometheus text format, and a ledger that never answers (a TigerBeetle cluster without quorum).
import { pino, type Logger } from "pino";
import type { Ledger } from "../../src/ledger/port.ts";

export function capturingLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const kept: string[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void kept.push(line) });
  return { log, lines: () => kept.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export async function get(
  url: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(10_000) });
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: await res.text(),
  };
}

/** The value of one sample, e.g. sample(text, "billing_commands_settled_total", { type: "credit", outcome: "applied" }); undefined when absent. */
export function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map(
      [...(m[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Every request waits forever, as a TigerBeetle client does while the cluster has no quorum. */
export function stalledLedger(): Ledger & { calls: number } {
  const never = <T>(): Promise<T> => {
    stub.calls += 1;
    return new Promise<T>(() => undefined);
  };
  const stub = {
    calls: 0,
    createAccounts: never,
    createTransfers: never,
    lookupAccounts: never,
    lookupTransfers: never,
    getAccountTransfers: never,
    getAccountBalances: never,
    queryAccounts: never,
    queryTransfers: never,
    destroy: () => undefined,
  } as Ledger & { calls: number };
  return stub;
}

/** Every request answers at once with nothing found. */
export function emptyLedger(): Ledger {
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
