// Purging dead letters older than a given time, with their replay records. Claims stay: they are
// the processor's memory that a command was dead-lettered, so that a late duplicate advisory does
// not bring a purged letter back (they are tiny, and the stream's max age retires them).
//
// JetStream 2.9 purges by subject filter "up to, not including, sequence N". Stored times grow
// with sequences (the server stamps each message as it stores it), so the first sequence at or
// after the cut-off time is found by a binary search over direct gets, O(log n) requests, and one
// purge per filter removes the rest.
import type { JetStreamManager } from "@nats-io/jetstream";
import { BrokerUnavailableError } from "../broker/errors.ts";
import { describeFailure } from "../lib/failure.ts";
import { lettersFilter, replayRecordsFilter } from "./layout.ts";
import { nextOn } from "./reader.ts";

// Every message of the dead-letter stream, whatever its kind: the time line the search runs on.
const anyDlqMessage = "billing.dlq.>";

// A binary search over at most 2^64 sequences ends in 64 probes; more means the stream changed
// under us in a way the search cannot follow.
const searchProbesMax = 64;

export interface PurgeResult {
  letters: number;
  records: number;
  boundary: number; // every letter below this sequence was purged
}

export async function purgeBefore(
  jsm: JetStreamManager,
  stream: string,
  before: Date,
): Promise<PurgeResult> {
  const boundary = await firstSequenceAtOrAfter(jsm, stream, before);
  const letters = await purgeBelow(jsm, stream, lettersFilter, boundary);
  const records = await purgeBelow(jsm, stream, replayRecordsFilter, boundary);
  return { letters, records, boundary };
}

// The sequence of the first message stored at or after `time`, or last_seq + 1 when none is.
export async function firstSequenceAtOrAfter(
  jsm: JetStreamManager,
  stream: string,
  time: Date,
): Promise<number> {
  let state;
  try {
    state = (await jsm.streams.info(stream)).state;
  } catch (err) {
    throw new BrokerUnavailableError(`stream ${stream}: ${describeFailure(err)}`, { cause: err });
  }
  // Invariant: every message below lo is older than time; every message at or above hi is not.
  let lo = Math.max(1, state.first_seq);
  let hi = state.last_seq + 1;
  for (let probe = 0; lo < hi; probe++) {
    if (probe >= searchProbesMax)
      throw new BrokerUnavailableError(
        `stream ${stream}: no stable cut-off sequence after ${probe} probes`,
      );
    const mid = lo + Math.floor((hi - lo) / 2);
    const m = await nextOn(jsm, stream, anyDlqMessage, mid);
    if (m === null || m.seq >= hi || m.time.getTime() >= time.getTime()) hi = mid;
    else lo = m.seq + 1;
  }
  return hi;
}

async function purgeBelow(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  seq: number,
): Promise<number> {
  try {
    return (await jsm.streams.purge(stream, { filter, seq })).purged;
  } catch (err) {
    throw new BrokerUnavailableError(
      `purge ${stream} on ${filter} below #${seq}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}
