// Reads the dead-letter stream: letters in order, replay records, one letter by sequence.
//
// Listing walks the stream with direct gets of "the next message on this filter at or after
// sequence N" (next_by_subj, supported by 2.9.10 with wildcards), one request per message read,
// with no consumer to create or clean up; the caller bounds how many. Decisions (is there a replay
// record already?) read through the stream leader instead, which is never stale.
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { BrokerUnavailableError } from "../broker/errors.ts";
import { describeFailure } from "../lib/failure.ts";
import { assert } from "../lib/assert.ts";
import { letterOf, recordOf, type Letter, type ReplayRecord } from "./letter.ts";
import { replayRecordsFilter, replayRecordSubject } from "./layout.ts";

// Replay records read for one listing; records are one or two per replay, so this is far above
// any real history, and a listing beyond it says so.
export const replayRecordsScanMax = 100_000;
// Messages on the letters filter read for one listing (letters plus any stray message there).
export const lettersScanMax = 1_000_000;

// The next stored message on filter at or after seq, or null when there is none.
export async function nextOn(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  seq: number,
): Promise<StoredMsg | null> {
  assert(Number.isSafeInteger(seq) && seq > 0, "nextOn: seq > 0");
  try {
    return await jsm.direct.getMessage(stream, { next_by_subj: filter, seq });
  } catch (err) {
    throw new BrokerUnavailableError(
      `next message of ${stream} on ${filter} from #${seq}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}

// The oldest letters on filter, at most limit; more is true when there are others after them.
export async function readLetters(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  limit: number,
): Promise<{ letters: Letter[]; more: boolean }> {
  assert(Number.isSafeInteger(limit) && limit > 0, "readLetters: limit > 0");
  const letters: Letter[] = [];
  let cursor = 1;
  for (let read = 0; read < lettersScanMax; read++) {
    const m = await nextOn(jsm, stream, filter, cursor);
    if (m === null) return { letters, more: false };
    cursor = m.seq + 1;
    const letter = letterOf(m);
    if (letter === null) continue;
    if (letters.length === limit) return { letters, more: true };
    letters.push(letter);
  }
  return { letters, more: true };
}

// Every replay record of the given letters, oldest first, by letter sequence.
export async function readReplayRecords(
  jsm: JetStreamManager,
  stream: string,
  letterSequences: ReadonlySet<number>,
): Promise<{ records: Map<number, ReplayRecord[]>; truncated: boolean }> {
  const records = new Map<number, ReplayRecord[]>();
  if (letterSequences.size === 0) return { records, truncated: false };
  // A record is always stored after its letter.
  let cursor = Math.min(...letterSequences) + 1;
  for (let read = 0; read < replayRecordsScanMax; read++) {
    const m = await nextOn(jsm, stream, replayRecordsFilter, cursor);
    if (m === null) return { records, truncated: false };
    cursor = m.seq + 1;
    const r = recordOf(m);
    if (r === null || !letterSequences.has(r.letterSequence)) continue;
    const list = records.get(r.letterSequence) ?? [];
    list.push(r);
    records.set(r.letterSequence, list);
  }
  return { records, truncated: true };
}

// The letter at seq, from the stream leader; null when that sequence holds no letter.
export async function getLetter(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
): Promise<Letter | null> {
  try {
    const m = await jsm.streams.getMessage(stream, { seq });
    return m === null ? null : letterOf(m);
  } catch (err) {
    throw new BrokerUnavailableError(`dead letter #${seq} of ${stream}: ${describeFailure(err)}`, {
      cause: err,
    });
  }
}

// The newest replay record of a letter and its sequence, from the stream leader; null when none.
export async function lastReplayRecord(
  jsm: JetStreamManager,
  stream: string,
  letterSequence: number,
): Promise<{ seq: number; record: ReplayRecord | null } | null> {
  const subject = replayRecordSubject(letterSequence);
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m === null ? null : { seq: m.seq, record: recordOf(m) };
  } catch (err) {
    throw new BrokerUnavailableError(
      `last message of ${stream} on ${subject}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}
