// The load generator and the event collector, both in the bench process.
//
// - Collector: one core subscription on billing.evt.>; records when the first event of each
//   command was seen (performance.now(), ms). It does no JSON work during a measurement; the
//   stored events are read and checked after the run (verify.ts).
// - publishBurst: every command as fast as the broker takes them, a bounded window of PubAcks
//   in flight (the throughput runs).
// - publishOpenLoop: a fixed offered rate; each command has an intended send time and latency is
//   measured from it, so a stalled publisher cannot hide latency (no coordinated omission).
// - closedLoop: `concurrency` clients, each sends a command and waits for its event.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Workload } from "./workload.ts";

/** PubAcks awaited per publish before it is an error (a run that stalls this long is broken). */
const PUBLISH_TIMEOUT_MS = 30_000;
/** Commands in flight without a PubAck in an open-loop run; beyond it the run is declared overloaded. */
const OPEN_LOOP_IN_FLIGHT_MAX = 20_000;
/** The open loop's tick: Node timers have ~1 ms resolution; every tick sends what is due. */
const TICK_MS = 1;

export class Collector {
  /** First time an event of command i was seen; NaN until then. */
  readonly seenAt: Float64Array;
  distinct = 0;
  foreign = 0;
  private readonly sub: Subscription;
  private readonly waiters = new Map<number, (t: number) => void>();
  private allSeen: () => void = () => undefined;
  /** Resolves when every command of the workload has an event. */
  readonly all: Promise<void>;

  constructor(
    nc: NatsConnection,
    private readonly workload: Workload,
    private readonly expected = workload.spec.count,
  ) {
    this.seenAt = new Float64Array(workload.spec.count).fill(Number.NaN);
    this.all = new Promise((resolve) => (this.allSeen = resolve));
    this.sub = nc.subscribe("billing.evt.>", {
      callback: (_err, m) => {
        const t = performance.now();
        const i = workload.indexOf(m.subject);
        if (i < 0 || i >= this.seenAt.length) {
          this.foreign += 1;
          return;
        }
        if (!Number.isNaN(this.seenAt[i])) return;
        this.seenAt[i] = t;
        this.distinct += 1;
        const w = this.waiters.get(i);
        if (w) {
          this.waiters.delete(i);
          w(t);
        }
        if (this.distinct === this.expected) this.allSeen();
      },
    });
  }

  /** Resolves with the time the event of command i was seen. */
  waitFor(i: number): Promise<number> {
    const t = this.seenAt[i] as number;
    if (!Number.isNaN(t)) return Promise.resolve(t);
    return new Promise((resolve) => this.waiters.set(i, resolve));
  }

  /** The latest first-seen time over commands 0 … n−1 (the last event); NaN if one is missing. */
  lastSeenOf(n: number): number {
    let last = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i += 1) {
      const t = this.seenAt[i] as number;
      if (Number.isNaN(t)) return Number.NaN;
      if (t > last) last = t;
    }
    return last;
  }

  /** The earliest first-seen time over commands 0 … n−1 (the first event). */
  firstSeenOf(n: number): number {
    let first = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i += 1) {
      const t = this.seenAt[i] as number;
      if (t < first) first = t;
    }
    return first;
  }

  close(): void {
    this.sub.unsubscribe();
  }
}

export type Published = {
  sentAt: Float64Array;
  firstPublishMs: number;
  lastAckMs: number;
  count: number;
};

function publishOne(
  js: JetStreamClient,
  c: { subject: string; msgId: string; data: Uint8Array },
): Promise<unknown> {
  return js.publish(c.subject, c.data, { msgID: c.msgId, timeout: PUBLISH_TIMEOUT_MS });
}

/** Publishes the whole workload with at most `window` PubAcks outstanding. */
export async function publishBurst(
  js: JetStreamClient,
  workload: Workload,
  window: number,
): Promise<Published> {
  const sentAt = new Float64Array(workload.spec.count).fill(Number.NaN);
  let inFlight = 0;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const firstPublishMs = performance.now();
  for (let c = workload.next(); c !== null; c = workload.next()) {
    while (inFlight >= window) await new Promise<void>((r) => (wake = r));
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what a publish rejected with
    if (failure !== null) throw failure;
    sentAt[c.index] = performance.now();
    inFlight += 1;
    publishOne(js, c)
      .then(
        () => undefined,
        (e: unknown) => (failure ??= e),
      )
      .finally(() => {
        inFlight -= 1;
        const w = wake;
        wake = null;
        w?.();
      });
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what a publish rejected with
  if (failure !== null) throw failure;
  return { sentAt, firstPublishMs, lastAckMs: performance.now(), count: workload.spec.count };
}

export type OpenLoop = Published & { intendedAt: Float64Array; ratePerS: number; lagMaxMs: number };

/** Offers the workload at `ratePerS` from now on; resolves when every PubAck is in. */
export async function publishOpenLoop(
  js: JetStreamClient,
  workload: Workload,
  ratePerS: number,
): Promise<OpenLoop> {
  const n = workload.spec.count;
  const sentAt = new Float64Array(n).fill(Number.NaN);
  const intendedAt = new Float64Array(n).fill(Number.NaN);
  const pending: Array<Promise<unknown>> = [];
  let inFlight = 0;
  let lagMaxMs = 0;
  const start = performance.now();
  let i = 0;
  while (i < n) {
    const now = performance.now();
    const due = Math.min(n, Math.floor(((now - start) * ratePerS) / 1000) + 1);
    for (; i < due; i += 1) {
      const c = workload.next();
      if (c === null) break;
      const intended = start + (c.index * 1000) / ratePerS;
      intendedAt[c.index] = intended;
      const t = performance.now();
      sentAt[c.index] = t;
      lagMaxMs = Math.max(lagMaxMs, t - intended);
      if (inFlight >= OPEN_LOOP_IN_FLIGHT_MAX)
        throw new Error(
          `open loop at ${ratePerS}/s: ${inFlight} publishes without PubAck; the broker is overloaded`,
        );
      inFlight += 1;
      pending.push(publishOne(js, c).finally(() => (inFlight -= 1)));
    }
    if (i < n) await new Promise((r) => setTimeout(r, TICK_MS));
  }
  await Promise.all(pending);
  return {
    sentAt,
    intendedAt,
    firstPublishMs: start,
    lastAckMs: performance.now(),
    count: n,
    ratePerS,
    lagMaxMs,
  };
}

export type ClosedLoop = {
  sentAt: Float64Array;
  latencies: number[];
  completed: number;
  elapsedMs: number;
  concurrency: number;
};

/** `concurrency` clients, each: publish, await its event, next; for `durationMs` or the workload. */
export async function closedLoop(
  js: JetStreamClient,
  workload: Workload,
  collector: Collector,
  concurrency: number,
  durationMs: number,
): Promise<ClosedLoop> {
  const sentAt = new Float64Array(workload.spec.count).fill(Number.NaN);
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + durationMs;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const c = workload.next();
      if (c === null) return;
      const t = performance.now();
      sentAt[c.index] = t;
      await publishOne(js, c);
      latencies.push((await collector.waitFor(c.index)) - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return {
    sentAt,
    latencies,
    completed: latencies.length,
    elapsedMs: performance.now() - start,
    concurrency,
  };
}
