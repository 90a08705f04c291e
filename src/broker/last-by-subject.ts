// Reads of the last message stored on one concrete subject: an operation's one event
// (billing.evt.<event>.<operationId>), a dead-letter claim (src/broker/dead-letter.ts). Writes
// live with their writers (src/broker/publisher.ts, src/broker/dead-letter.ts).

import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { assert } from "../lib/assert.ts";
import { BrokerUnavailableError } from "./errors.ts";
import { describeFailure } from "../lib/failure.ts";

// The last message stored on a subject (for an event subject: the operation's one event), or
// null when there is none. Uses the direct-get API (allow_direct is set on our streams), which
// any server holding the stream can answer. No answer → BrokerUnavailableError.
export async function getLastBySubject(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): Promise<StoredMsg | null> {
  assert(
    !/[\s*>]/.test(subject) && subject.length > 0,
    `getLastBySubject: not a concrete subject: "${subject}"`,
  );
  try {
    return await jsm.direct.getMessage(stream, { last_by_subj: subject });
  } catch (err) {
    throw new BrokerUnavailableError(
      `get last message of ${stream} on ${subject}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}

// The same read answered by the stream leader (not a direct get, which any replica may answer from
// a state a moment old): a message just written by another process is seen. No answer → BrokerUnavailableError.
export async function getLastBySubjectFromLeader(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(stream, { last_by_subj: subject });
  } catch (err) {
    throw new BrokerUnavailableError(
      `last message of ${stream} on ${subject}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}
