// /readyz: is this process able to do its work right now? Two checks, run side by side, each
// bounded: NATS answers a PING (the connection is up, not reconnecting), and the ledger answered a
// request recently (or, when it has been quiet, answers one small probe now).
import type { NatsConnection } from "@nats-io/transport-node";
import { describe, within } from "./deadline.ts";
import { opsLimits, type OpsLimits } from "./limits.ts";
import type { MeteredLedger } from "./metered-ledger.ts";

export type Check = { ok: boolean; detail: string };
export type ReadyReport = { ready: boolean; checks: Record<string, Check> };

export type ReadinessLimits = Pick<OpsLimits, "natsRttTimeoutMs" | "ledgerFreshMs" | "ledgerProbeTimeoutMs">;

/** The readiness check of one service process, for startOpsServer's `ready`. */
export function readinessOf(nc: NatsConnection, ledger: MeteredLedger, limits: ReadinessLimits = opsLimits): () => Promise<ReadyReport> {
  const ledgerCheck = ledgerCheckOf(ledger, limits);
  return async () => {
    const [nats, ledgerResult] = await Promise.all([natsCheck(nc, limits.natsRttTimeoutMs), ledgerCheck()]);
    return { ready: nats.ok && ledgerResult.ok, checks: { nats, ledger: ledgerResult } };
  };
}

async function natsCheck(nc: NatsConnection, timeoutMs: number): Promise<Check> {
  if (nc.isClosed()) return { ok: false, detail: "the NATS connection is closed" };
  try {
    // rtt() throws at once while the client is disconnected or reconnecting.
    const ms = await within(nc.rtt(), timeoutMs, "NATS PING");
    return { ok: true, detail: `connected to ${nc.getServer()}, round trip ${ms} ms` };
  } catch (error) {
    return { ok: false, detail: `NATS does not answer: ${describe(error)}` };
  }
}

function ledgerCheckOf(ledger: MeteredLedger, limits: ReadinessLimits): () => Promise<Check> {
  // One probe at a time: while the ledger hangs (a TigerBeetle client retries forever), further
  // checks wait on the same probe instead of piling up requests.
  let probing: Promise<void> | null = null;
  return async () => {
    const now = Date.now();
    const answeredMs = now - ledger.lastAnswerAtMs;
    const failedSince = ledger.lastFailureAtMs > ledger.lastAnswerAtMs;
    if (ledger.lastAnswerAtMs > 0 && answeredMs <= limits.ledgerFreshMs && !failedSince) {
      return { ok: true, detail: `the ledger answered ${answeredMs} ms ago` };
    }
    if (probing === null) {
      probing = ledger.probe().finally(() => {
        probing = null;
      });
    }
    const started = Date.now();
    try {
      await within(probing, limits.ledgerProbeTimeoutMs, "the ledger probe");
      return { ok: true, detail: `the ledger answered a probe in ${Date.now() - started} ms` };
    } catch (error) {
      return { ok: false, detail: `the ledger does not answer: ${describe(error)}` };
    }
  };
}
