// Replaying a dead letter: its original payload, byte for byte, to its original subject with its
// original headers, after an operator fixed the cause. Recorded in the dead-letter stream.
//
// Once per letter unless forced, even with two operators at once: before publishing, we write a
// "started" record on billing.dlq.replayed.<letterSeq>, expecting the subject's last sequence to
// be the one we read (0 when never replayed). The stream leader lets exactly one of two racing
// replays through. After the publish, a "published" (or "duplicate", or "failed") record follows
// with the new command's sequence, so the history shows who, when and what became of it.
//
// Nats-Msg-Id: by default the command is published without one, because inside the commands
// stream's duplicate window the original msgId would make the server drop the replay as a
// duplicate. --same-id keeps it (from Billing-Original-Msg-Id), for when that is wanted. Either
// way the worker's own idempotency (operationId) applies to the replayed command.
import { headers } from "@nats-io/transport-node";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from "@nats-io/jetstream";
import { BrokerUnavailableError } from "../broker/errors.ts";
import { describeFailure } from "../lib/failure.ts";
import { oneLine } from "../broker/dead-letter.ts";
import {
  commandSubjectPrefix,
  replayHeaders,
  replayRecordSubject,
  type ReplayStatus,
} from "./layout.ts";
import { replayHeaderSet, type Letter, type ReplayRecord } from "./letter.ts";
import { getLetter, lastReplayRecord } from "./reader.ts";

export interface ReplayDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  dlqStream: string;
  commandsStream: string;
  publishTimeoutMs: number;
}

export interface ReplayRequest {
  letterSequence: number;
  by: string;
  at: Date;
  force: boolean;
  sameId: boolean;
}

export type ReplayResult =
  | {
      kind: "replayed";
      letter: Letter;
      commandSequence: number;
      duplicate: boolean;
      recordError: string | null;
    }
  | { kind: "refused"; why: string };

// Bound on the one-line values we write into record headers.
const recordValueCharsMax = 200;

export async function replayLetter(deps: ReplayDeps, req: ReplayRequest): Promise<ReplayResult> {
  const seq = req.letterSequence;
  const letter = await getLetter(deps.jsm, deps.dlqStream, seq);
  if (letter === null)
    return { kind: "refused", why: `no dead letter at sequence ${seq} of ${deps.dlqStream}` };
  if (!isCommandSubject(letter.originalSubject)) {
    return {
      kind: "refused",
      why: `letter #${seq} has no command to replay (original subject "${letter.originalSubject}"): ${letter.error}`,
    };
  }
  if (req.sameId && letter.originalMsgId === null)
    return { kind: "refused", why: `--same-id: letter #${seq} carries no Billing-Original-Msg-Id` };
  const last = await lastReplayRecord(deps.jsm, deps.dlqStream, seq);
  if (last !== null && !req.force)
    return {
      kind: "refused",
      why: `letter #${seq} was already replayed (${describeLast(last.record)}); pass --force to replay it again`,
    };

  const claimed = await writeRecord(deps, req, "started", { expectLast: last?.seq ?? 0 });
  if (!claimed)
    return {
      kind: "refused",
      why: `another replay of letter #${seq} was recorded meanwhile; list it and try again`,
    };
  let ack: PubAck;
  try {
    ack = await publishCommand(deps, letter, req.sameId);
  } catch (err) {
    await writeRecord(deps, req, "failed", { error: describeFailure(err) }).catch(() => undefined);
    throw err;
  }
  const status: ReplayStatus = ack.duplicate ? "duplicate" : "published";
  const recordError = await writeRecord(deps, req, status, { commandSequence: ack.seq }).then(
    () => null,
    (err: unknown) => describeFailure(err),
  );
  return {
    kind: "replayed",
    letter,
    commandSequence: ack.seq,
    duplicate: ack.duplicate,
    recordError,
  };
}

function isCommandSubject(subject: string): boolean {
  return (
    subject.startsWith(commandSubjectPrefix) &&
    subject.length > commandSubjectPrefix.length &&
    !/[\s*>]/.test(subject)
  );
}

function describeLast(r: ReplayRecord | null): string {
  if (r === null) return "unreadable record";
  const command = r.commandSequence === null ? "" : `, command #${r.commandSequence}`;
  return `last: ${r.status} by ${r.by} at ${r.at}${command}${r.error === null ? "" : `, ${r.error}`}`;
}

async function publishCommand(deps: ReplayDeps, letter: Letter, sameId: boolean): Promise<PubAck> {
  const h = replayHeaderSet(letter);
  try {
    return await deps.js.publish(letter.originalSubject, letter.data, {
      headers: h,
      ...(sameId && letter.originalMsgId !== null ? { msgID: letter.originalMsgId } : {}),
      // Only into the commands stream: anything else there is a topology problem, not a replay.
      expect: { streamName: deps.commandsStream },
      timeout: deps.publishTimeoutMs,
      retries: 1,
    });
  } catch (err) {
    throw new BrokerUnavailableError(
      `replay of letter #${letter.sequence} to ${letter.originalSubject}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}

// Resolves false when expectLast was given and another record got there first.
async function writeRecord(
  deps: ReplayDeps,
  req: ReplayRequest,
  status: ReplayStatus,
  extra: { expectLast?: number; commandSequence?: number; error?: string },
): Promise<boolean> {
  const h = headers();
  h.set(replayHeaders.of, String(req.letterSequence));
  h.set(replayHeaders.by, oneLine(req.by, recordValueCharsMax));
  h.set(replayHeaders.at, req.at.toISOString());
  h.set(replayHeaders.status, status);
  h.set(replayHeaders.sameId, String(req.sameId));
  if (extra.commandSequence !== undefined)
    h.set(replayHeaders.commandSequence, String(extra.commandSequence));
  if (extra.error !== undefined)
    h.set(replayHeaders.error, oneLine(extra.error, recordValueCharsMax));
  try {
    await deps.js.publish(replayRecordSubject(req.letterSequence), new Uint8Array(0), {
      headers: h,
      ...(extra.expectLast !== undefined
        ? { expect: { lastSubjectSequence: extra.expectLast } }
        : {}),
      timeout: deps.publishTimeoutMs,
      retries: 1,
    });
    return true;
  } catch (err) {
    if (
      extra.expectLast !== undefined &&
      err instanceof JetStreamApiError &&
      err.code === JetStreamApiCodes.StreamWrongLastSequence
    )
      return false;
    throw new BrokerUnavailableError(
      `replay record (${status}) of letter #${req.letterSequence}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}
