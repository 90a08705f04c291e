// Event publishing (the lookup of a stored event is src/broker/last-by-subject.ts).
//
// The contract fixes one event per operationId on billing.evt.<event>.<operationId>, published
// with Nats-Msg-Id and the expectation that the subject holds no message yet (expected last
// subject sequence 0). So a second publish of an operation's event is refused one of two ways,
// and both mean "already stored", i.e. done:
// - inside the stream's duplicate window, by msgId: a PubAck with duplicate: true;
// - after it, by the expectation: JetStreamApiError 10071 "wrong last sequence".
// Every other failure (timeout, no responders, connection lost, a stream that refuses writes) is
// transient. storeEvents answers each event, so the worker retries only those not stored;
// publishEvents (the expiry sweeper) throws one BrokerUnavailableError once all publishes of the
// batch settled, and the next sweep republishes everything, the stored ones counting as done.

import {
  JetStreamApiCodes,
  JetStreamApiError,
  PubHeaders,
  type JetStreamClient,
} from "@nats-io/jetstream";
import { createInbox, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { publishInFlightMax } from "../config/limits.ts";
import { assert } from "../lib/assert.ts";
import { BrokerUnavailableError } from "./errors.ts";
import { describeFailure } from "../lib/failure.ts";

export interface OutgoingEvent {
  subject: string;
  msgId: string;
  data: Uint8Array;
}

// Subjects we publish to: concrete (no wildcards, no spaces) and under billing.evt.
const eventSubject = /^billing\.evt\.[^.\s*>]+(\.[^.\s*>]+)+$/;

export async function publishEvents(
  js: JetStreamClient,
  events: ReadonlyArray<OutgoingEvent>,
  timeoutMs: number,
): Promise<void> {
  if (events.length === 0) return;
  const failures: string[] = [];
  let firstCause: unknown = undefined;
  const outcomes = await storeEvents(js, events, timeoutMs);
  outcomes.forEach((failure, i) => {
    if (failure === null) return;
    if (failures.length === 0) firstCause = failure;
    failures.push(`${(events[i] as OutgoingEvent).subject}: ${describeFailure(failure)}`);
  });
  if (failures.length > 0) {
    throw new BrokerUnavailableError(
      `${failures.length} of ${events.length} events not stored; first: ${failures[0] ?? ""}`,
      { cause: firstCause },
    );
  }
}

/**
 * Publishes every event once and answers each, in order: null when it is stored (now, or before:
 * a duplicate or 10071), else why not. Never throws but on a programmer error, so that a caller
 * retrying a batch can publish again only what is not stored.
 */
export async function storeEvents(
  js: JetStreamClient,
  events: ReadonlyArray<OutgoingEvent>,
  timeoutMs: number,
): Promise<unknown[]> {
  assert(Number.isSafeInteger(timeoutMs) && timeoutMs > 0, "publishEvents: timeoutMs > 0");
  for (const e of events) {
    assert(eventSubject.test(e.subject), `publishEvents: not an event subject: "${e.subject}"`);
    assert(
      e.msgId.length > 0 && !/[\r\n]/.test(e.msgId),
      `publishEvents: bad msgId for ${e.subject}`,
    );
  }
  if (events.length === 0) return [];
  return pubAcksOf(js).publishAll(events, timeoutMs);
}

/**
 * The PubAcks of this connection's event publishes, all on one subscription. `js.publish` makes one
 * request per event: a timer, a promise race and, even on success, an Error with a stack
 * (nats.js's request cancel path): ~6 % of a busy service's CPU (bench/results/e2e-profile.md).
 * This speaks the same protocol (headers Nats-Msg-Id and Nats-Expected-Last-Subject-Sequence,
 * the PubAck or API error as the reply) with one timer per batch.
 */
class PubAcks {
  private readonly prefix: string;
  private readonly waiting = new Map<number, (reply: Msg | Error) => void>();
  private nextToken = 0;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox()}.`;
    nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => {
        if (err) {
          // The subscription is gone (connection closed, or the inbox refused): batches waiting on
          // it fail by their timers, and the next batch subscribes again.
          if (pubAcks.get(nc) === this) pubAcks.delete(nc);
          return;
        }
        const token = Number(msg.subject.slice(this.prefix.length));
        const answer = this.waiting.get(token);
        if (answer === undefined) return; // answered already (timed out)
        this.waiting.delete(token);
        answer(msg);
      },
    });
  }

  /**
   * Publishes every event, at most publishInFlightMax awaiting their PubAck at once, and answers
   * each: null when it is stored (now or before), else why not. After `timeoutMs` whatever has no
   * answer, sent or not, fails with a timeout.
   */
  async publishAll(
    events: ReadonlyArray<OutgoingEvent>,
    timeoutMs: number,
  ): Promise<Array<unknown>> {
    const outcomes: unknown[] = new Array(events.length).fill(undefined);
    const tokens: number[] = [];
    let next = 0;
    let settled = 0;
    let expired = false;
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    const settle = (i: number, outcome: unknown) => {
      outcomes[i] = outcome;
      settled += 1;
      if (!expired && next < events.length) send();
      if (settled === events.length) done();
    };
    const send = () => {
      const i = next++;
      const event = events[i] as OutgoingEvent;
      const token = this.nextToken++;
      tokens.push(token);
      this.waiting.set(token, (reply) =>
        settle(i, reply instanceof Error ? reply : outcomeOf(reply)),
      );
      const h = headers();
      h.set(PubHeaders.MsgIdHdr, event.msgId);
      h.set(PubHeaders.ExpectedLastSubjectSequenceHdr, "0");
      try {
        this.nc.publish(event.subject, event.data, { reply: `${this.prefix}${token}`, headers: h });
      } catch (error) {
        this.waiting.delete(token);
        settle(i, error);
      }
    };
    const timer = setTimeout(() => {
      expired = true;
      const late = new Error(`no PubAck within ${timeoutMs} ms`);
      for (const token of tokens) {
        const answer = this.waiting.get(token);
        this.waiting.delete(token);
        answer?.(late);
      }
      while (next < events.length) settle(next++, late);
    }, timeoutMs);
    try {
      while (next < Math.min(publishInFlightMax, events.length)) send();
      await all;
    } finally {
      clearTimeout(timer);
      for (const token of tokens) this.waiting.delete(token);
    }
    return outcomes;
  }
}

/** A PubAck (null: stored, or a duplicate inside the window) or the refusal that means the same, else the error. */
function outcomeOf(reply: Msg): unknown {
  if (reply.data.length === 0 && reply.headers?.code === 503)
    return new Error("no responders: no stream stores this subject");
  let answer: { error?: { code: number; err_code?: number; description: string }; stream?: string };
  try {
    answer = JSON.parse(decoder.decode(reply.data)) as typeof answer;
  } catch {
    return new Error(`unreadable PubAck: ${decoder.decode(reply.data).slice(0, 200)}`);
  }
  if (answer.error) {
    // Expected last subject sequence 0 refused: the subject holds the event already.
    if (answer.error.err_code === JetStreamApiCodes.StreamWrongLastSequence) return null;
    return new JetStreamApiError(
      answer.error as ConstructorParameters<typeof JetStreamApiError>[0],
    );
  }
  return typeof answer.stream === "string" && answer.stream !== ""
    ? null
    : new Error("invalid PubAck: no stream");
}

const decoder = new TextDecoder();
const pubAcks = new WeakMap<NatsConnection, PubAcks>();

function pubAcksOf(js: JetStreamClient): PubAcks {
  const nc = (js as JetStreamClient & { nc?: NatsConnection }).nc;
  assert(
    nc !== undefined && typeof nc.publish === "function",
    "publishEvents: a JetStream client made by jetstream(nc)",
  );
  let acks = pubAcks.get(nc);
  if (acks === undefined) {
    acks = new PubAcks(nc);
    pubAcks.set(nc, acks);
  }
  return acks;
}
