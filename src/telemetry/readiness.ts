// /readyz: is this process able to do its work right now? Checks run side by side, each bounded:
// NATS answers a PING (the connection is up, not reconnecting), the ledger answered a request
// recently (or, when it has been quiet, answers one small probe now), and no decided operation has
// waited too long for its event to be stored (the events stream accepts writes).
import type { NatsConnection } from "@nats-io/transport-node";
import { within } from "../lib/deadline.ts";
import { describeFailure } from "../lib/failure.ts";
import { telemetryLimits, type OpsLimits } from "../config/limits.ts";
import type { MeteredLedger } from "./metered-ledger.ts";
import type { UnstoredOutcomes } from "../worker/stats.ts";

export type Check = { ok: boolean; detail: string };
export type ReadyReport = { ready: boolean; checks: Record<string, Check> };

export type ReadinessLimits = Pick<
  OpsLimits,
  "natsRttTimeoutMs" | "ledgerFreshMs" | "ledgerProbeTimeoutMs"
>;

/** The events a worker holds unstored, and the age past which the process is not ready. */
export type UnstoredEvents = { unstored: UnstoredOutcomes; ageMaxMs: number };

/** The readiness check of one service process, for startTelemetryServer's `ready`. */
export function readinessOf(
  nc: NatsConnection,
  ledger: MeteredLedger,
  limits: ReadinessLimits = telemetryLimits,
  events?: UnstoredEvents,
): () => Promise<ReadyReport> {
  const ledgerCheck = ledgerCheckOf(ledger, limits);
  return async () => {
    const [nats, ledgerResult] = await Promise.all([
      natsCheck(nc, limits.natsRttTimeoutMs),
      ledgerCheck(),
    ]);
    if (events === undefined)
      return { ready: nats.ok && ledgerResult.ok, checks: { nats, ledger: ledgerResult } };
    const stored = eventsCheck(events, Date.now());
    return {
      ready: nats.ok && ledgerResult.ok && stored.ok,
      checks: { nats, ledger: ledgerResult, events: stored },
    };
  };
}

export function eventsCheck(events: UnstoredEvents, nowMs: number): Check {
  const since = events.unstored.oldestSinceMs();
  if (since === null) return { ok: true, detail: "every decided operation's event is stored" };
  const ageMs = nowMs - since;
  const detail = `${events.unstored.count()} events or dead letters of decided operations not stored, the oldest for ${ageMs} ms`;
  if (ageMs <= events.ageMaxMs) return { ok: true, detail };
  return {
    ok: false,
    detail: `${detail} (more than ${events.ageMaxMs} ms): the events stream refuses writes or does not answer`,
  };
}

async function natsCheck(nc: NatsConnection, timeoutMs: number): Promise<Check> {
  if (nc.isClosed()) return { ok: false, detail: "the NATS connection is closed" };
  try {
    // rtt() throws at once while the client is disconnected or reconnecting.
    const ms = await within(nc.rtt(), timeoutMs, "NATS PING");
    return { ok: true, detail: `connected to ${nc.getServer()}, round trip ${ms} ms` };
  } catch (error) {
    return { ok: false, detail: `NATS does not answer: ${describeFailure(error)}` };
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
      return { ok: false, detail: `the ledger does not answer: ${describeFailure(error)}` };
    }
  };
}
