// Reading a stretch of a stream by sequence, in pages, through an ordered consumer: no ack state on
// the server, removed when idle (inactive_threshold) or deleted when the read ends. Used by the
// audit (events) and by command recovery (commands). Or, slower and answered by the stream's leader
// only (one message get per sequence), leaderRange: on a cluster whose replicas disagree, a
// consumer may be served from a replica that holds other messages than the leader. Every fetch has its own expiry, so a read of a
// range whose end was deleted or aged out ends after STREAM_RANGE_EMPTY_FETCHES_MAX empty fetches.
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { STREAM_RANGE_EMPTY_FETCHES_MAX, STREAM_RANGE_FETCH_EXPIRES_MS } from "../config/limits.ts";
import { assert } from "../lib/assert.ts";
import { BrokerUnavailableError } from "./errors.ts";
import { describeFailure } from "../lib/failure.ts";
import { mapBounded } from "../lib/map-bounded.ts";

export type RangeMessage = {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  storedAtMs: number;
};

/** Stored messages with first ≤ sequence ≤ last, in sequence order, at most `pageMax` per page. */
export async function* streamRange(
  js: JetStreamClient,
  stream: string,
  first: number,
  last: number,
  pageMax: number,
): AsyncGenerator<RangeMessage[]> {
  assert(Number.isSafeInteger(pageMax) && pageMax > 0, "streamRange: pageMax > 0");
  if (last < first || last === 0) return;
  const consumer = await js.consumers
    .get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, first) })
    .catch((err: unknown) => {
      throw new BrokerUnavailableError(`read ${stream} from #${first}: ${describeFailure(err)}`, {
        cause: err,
      });
    });
  try {
    let done = false;
    for (let empty = 0; !done && empty < STREAM_RANGE_EMPTY_FETCHES_MAX;) {
      const batch = await consumer.fetch({
        max_messages: Math.min(pageMax, last - first + 1),
        expires: STREAM_RANGE_FETCH_EXPIRES_MS,
      });
      const page: RangeMessage[] = [];
      for await (const m of batch) {
        if (m.seq <= last)
          page.push({
            seq: m.seq,
            subject: m.subject,
            data: m.data,
            headers: m.headers,
            storedAtMs: Math.floor(m.info.timestampNanos / 1e6),
          });
        // info.pending: messages still in the stream after this one; none left means nothing to wait for.
        done ||= m.seq >= last || m.info.pending === 0;
        if (done) break; // the rest of this fetch would only wait for its expiry
      }
      empty = page.length === 0 ? empty + 1 : 0;
      if (page.length > 0) yield page;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

/**
 * The same pages as streamRange, each message read with a message get (STREAM.MSG.GET), which the
 * stream's leader answers, `inFlight` at a time; a sequence with no message (deleted) is skipped.
 */
export async function* leaderRange(
  jsm: JetStreamManager,
  stream: string,
  first: number,
  last: number,
  pageMax: number,
  inFlight: number,
): AsyncGenerator<RangeMessage[]> {
  assert(
    Number.isSafeInteger(pageMax) && pageMax > 0 && inFlight > 0,
    "leaderRange: pageMax > 0, inFlight > 0",
  );
  for (let from = Math.max(1, first); from <= last; from += pageMax) {
    const seqs = Array.from({ length: Math.min(pageMax, last - from + 1) }, (_, i) => from + i);
    const got = await mapBounded(seqs, inFlight, async (seq) => {
      try {
        return await jsm.streams.getMessage(stream, { seq });
      } catch (err) {
        throw new BrokerUnavailableError(
          `message #${seq} of ${stream} from its leader: ${describeFailure(err)}`,
          { cause: err },
        );
      }
    });
    const page: RangeMessage[] = [];
    for (const m of got)
      if (m !== null)
        page.push({
          seq: m.seq,
          subject: m.subject,
          data: m.data,
          headers: m.header,
          storedAtMs: m.time.getTime(),
        });
    if (page.length > 0) yield page;
  }
}
