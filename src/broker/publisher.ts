// Event publishing and event lookup.
//
// The contract fixes one event per operationId on billing.evt.<event>.<operationId>, published
// with Nats-Msg-Id and the expectation that the subject holds no message yet (expected last
// subject sequence 0). So a second publish of an operation's event is refused one of two ways,
// and both mean "already stored", i.e. done:
// - inside the stream's duplicate window, by msgId: a PubAck with duplicate: true;
// - after it, by the expectation: JetStreamApiError 10071 "wrong last sequence".
// Every other failure (timeout, no responders, connection lost) is transient: publishEvents waits
// for all publishes of the batch to settle, then throws one BrokerUnavailableError so that the
// caller naks the batch; the retry republishes everything and the stored ones count as done.

import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { assert } from "../lib/assert.ts";
import { BrokerUnavailableError, describeError } from "./errors.ts";

export interface OutgoingEvent {
  subject: string;
  msgId: string;
  data: Uint8Array;
}

// Publishes awaiting their PubAck at once. The shared notes (§4) measured windows of 100 and 1000
// at 18.8k and 21.9k msg/s; 256 keeps most of that while bounding client memory and server load.
export const publishInFlightMax = 256;

// Subjects we publish to: concrete (no wildcards, no spaces) and under billing.evt.
const eventSubject = /^billing\.evt\.[^.\s*>]+(\.[^.\s*>]+)+$/;

export async function publishEvents(
  js: JetStreamClient,
  events: ReadonlyArray<OutgoingEvent>,
  timeoutMs: number,
): Promise<void> {
  assert(Number.isSafeInteger(timeoutMs) && timeoutMs > 0, "publishEvents: timeoutMs > 0");
  for (const e of events) {
    assert(eventSubject.test(e.subject), `publishEvents: not an event subject: "${e.subject}"`);
    assert(e.msgId.length > 0 && !/[\r\n]/.test(e.msgId), `publishEvents: bad msgId for ${e.subject}`);
  }
  const failures: string[] = [];
  let firstCause: unknown = undefined;
  let next = 0;
  // Each lane publishes one event at a time; lanes share the index, so each event goes once.
  const lane = async (): Promise<void> => {
    while (next < events.length) {
      const event = events[next++];
      assert(event !== undefined, "publishEvents: index in range");
      const failure = await publishOne(js, event, timeoutMs);
      if (failure === null) continue;
      if (failures.length === 0) firstCause = failure;
      failures.push(`${event.subject}: ${describeError(failure)}`);
    }
  };
  const lanes = Math.min(publishInFlightMax, events.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failures.length > 0) {
    throw new BrokerUnavailableError(
      `${failures.length} of ${events.length} events not stored; first: ${failures[0] ?? ""}`,
      { cause: firstCause },
    );
  }
}

// Resolves to null when the event is stored (now or before), or to the error otherwise.
async function publishOne(js: JetStreamClient, event: OutgoingEvent, timeoutMs: number): Promise<unknown> {
  try {
    // retries: 1 means one attempt: the caller's nak and redelivery is our retry.
    await js.publish(event.subject, event.data, {
      msgID: event.msgId,
      expect: { lastSubjectSequence: 0 },
      timeout: timeoutMs,
      retries: 1,
    });
    return null; // stored now, or duplicate: true (stored before, inside the window)
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) return null;
    return err;
  }
}

// The last message stored on a subject (for an event subject: the operation's one event), or
// null when there is none. Uses the direct-get API (allow_direct is set on our streams), which
// any server holding the stream can answer. No answer → BrokerUnavailableError.
export async function getLastBySubject(jsm: JetStreamManager, stream: string, subject: string): Promise<StoredMsg | null> {
  assert(!/[\s*>]/.test(subject) && subject.length > 0, `getLastBySubject: not a concrete subject: "${subject}"`);
  try {
    return await jsm.direct.getMessage(stream, { last_by_subj: subject });
  } catch (err) {
    throw new BrokerUnavailableError(`get last message of ${stream} on ${subject}: ${describeError(err)}`, { cause: err });
  }
}
