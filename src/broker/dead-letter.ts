// Dead letters: a copy of a command that cannot be applied, on billing.dlq.<reason>, for operators.
//
// The contract: the payload is the original payload byte for byte; the headers are the original
// headers plus Billing-Original-Subject, Billing-Original-Sequence (commands stream sequence),
// Billing-Reason and Billing-Error (one human-readable line).
//
// Two details the contract leaves to us:
// - JetStream acts on headers named Nats-* when a message is stored (Nats-Msg-Id dedupes,
//   Nats-Expected-* can refuse the publish, Nats-Rollup can purge). A publisher's command may carry
//   them, and a message read back with a direct get carries Nats-Stream, Nats-Sequence, … So the
//   copy leaves out every Nats-* header, keeps the command's own Nats-Msg-Id (its operationId, when
//   the publisher set one) as Billing-Original-Msg-Id, and sets its own Nats-Msg-Id
//   dlq:<reason>:<streamSequence>: a redelivered command dead-lettered again inside the duplicate
//   window is stored once.
// - Billing-* headers already on the command are replaced by ours, whatever their case.
//
// At most one letter per (reason, command sequence), for longer than the duplicate window: a
// claim, billing.dlq.marker.<reason>.<commandSeq> in the dead-letter stream (its subject kept from
// when claims were called markers; src/dlq/layout.ts lists the stream's subjects), says that the
// command was dead-lettered. deadLetterOnce (the worker) and the max-deliveries processor
// (src/dlq/max-deliveries-processor.ts) check it before a letter and write it after.

import { headers, Match, type MsgHdrs } from "@nats-io/transport-node";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { copyHeaders } from "./headers.ts";
import { assert } from "../lib/assert.ts";
import { BrokerUnavailableError } from "./errors.ts";
import { describeFailure } from "../lib/failure.ts";
import { getLastBySubjectFromLeader } from "./last-by-subject.ts";

export type DeadLetterReason = "malformed" | "conflict" | "max_deliveries";

export interface DeadLetterSource {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
  streamSequence: number;
}

export const deadLetterHeaders = {
  originalSubject: "Billing-Original-Subject",
  originalSequence: "Billing-Original-Sequence",
  originalMsgId: "Billing-Original-Msg-Id",
  reason: "Billing-Reason",
  error: "Billing-Error",
} as const;

// Billing-Error stays one short line: long enough for a zod issue list, short enough for a header
// (NATS headers share the 1 MiB default max_payload with the payload).
export const deadLetterErrorCharsMax = 1_000;

const natsMsgIdHeader = "Nats-Msg-Id";

export function deadLetterSubject(reason: DeadLetterReason): string {
  return `billing.dlq.${reason}`;
}

export function deadLetterMsgId(reason: DeadLetterReason, streamSequence: number): string {
  return `dlq:${reason}:${streamSequence}`;
}

export async function deadLetter(
  js: JetStreamClient,
  m: DeadLetterSource,
  reason: DeadLetterReason,
  error: string,
  timeoutMs: number,
): Promise<void> {
  assert(
    Number.isSafeInteger(m.streamSequence) && m.streamSequence > 0,
    "deadLetter: streamSequence > 0",
  );
  assert(Number.isSafeInteger(timeoutMs) && timeoutMs > 0, "deadLetter: timeoutMs > 0");
  const h = deadLetterHeaderSet(m, reason, error);
  try {
    await js.publish(deadLetterSubject(reason), m.data, {
      msgID: deadLetterMsgId(reason, m.streamSequence),
      headers: h,
      timeout: timeoutMs,
      retries: 1, // one attempt: the caller naks, and the redelivery retries
    });
  } catch (err) {
    throw new BrokerUnavailableError(
      `dead letter of ${m.subject} #${m.streamSequence} to ${deadLetterSubject(reason)}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}

// The dead letter's headers: a fresh set (js.publish writes Nats-Msg-Id into the set it is given,
// and the caller's headers must stay as they are).
export function deadLetterHeaderSet(
  m: DeadLetterSource,
  reason: DeadLetterReason,
  error: string,
): MsgHdrs {
  const h = copyHeaders(m.headers, Object.values(deadLetterHeaders));
  if (m.headers !== undefined) {
    const msgId = m.headers.get(natsMsgIdHeader, Match.IgnoreCase);
    if (msgId !== "")
      h.set(deadLetterHeaders.originalMsgId, oneLine(msgId, deadLetterErrorCharsMax));
  }
  h.set(deadLetterHeaders.originalSubject, m.subject);
  h.set(deadLetterHeaders.originalSequence, String(m.streamSequence));
  h.set(deadLetterHeaders.reason, reason);
  h.set(deadLetterHeaders.error, oneLine(error, deadLetterErrorCharsMax) || "(no detail)");
  return h;
}

// eslint-disable-next-line no-control-regex -- control characters are what this matches
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;

// Control characters (newlines included) become spaces, runs of spaces one space, then the line is
// cut to maxChars, ending in "..." (ASCII, as header values should be).
export function oneLine(text: string, maxChars: number): string {
  const flat = text.replace(CONTROL_CHARACTERS, " ").replace(/ {2,}/g, " ").trim();
  return flat.length <= maxChars ? flat : `${flat.slice(0, maxChars - 3)}...`;
}

/** What claiming a letter needs: the dead-letter stream and how long a publish may take. */
export type DeadLetterContext = {
  js: JetStreamClient;
  jsm: JetStreamManager;
  dlqStream: string;
  publishTimeoutMs: number;
};

/** The claim's headers: it carries no payload, so `nats stream view` shows it plainly. */
export const claimHeaders = {
  originalSequence: deadLetterHeaders.originalSequence,
  reason: deadLetterHeaders.reason,
} as const;

export function claimSubject(reason: DeadLetterReason, commandSequence: number): string {
  assert(
    Number.isSafeInteger(commandSequence) && commandSequence > 0,
    `claimSubject: a stream sequence > 0, got ${commandSequence}`,
  );
  return `billing.dlq.marker.${reason}.${commandSequence}`;
}

export function claimMsgId(reason: DeadLetterReason, commandSequence: number): string {
  return `dlq-marker:${reason}:${commandSequence}`;
}

/**
 * At most one letter per (reason, command sequence), whatever is redelivered or resurrected after a
 * broker crash, and for longer than the duplicate window: the claim says it was stored. Returns
 * false when it already was. A crash between the letter and its claim is covered by the letter's
 * msgID inside the duplicate window.
 */
export async function deadLetterOnce(
  ctx: DeadLetterContext,
  source: DeadLetterSource,
  reason: DeadLetterReason,
  error: string,
): Promise<boolean> {
  const seq = source.streamSequence;
  if (await isClaimed(ctx, reason, seq)) return false;
  await deadLetter(ctx.js, source, reason, error, ctx.publishTimeoutMs);
  await writeClaim(ctx, reason, seq);
  return true;
}

/** Whether the command was dead-lettered for this reason. The stream leader answers (not a direct
 *  get), so a claim just written by another process is seen. */
export async function isClaimed(
  ctx: Pick<DeadLetterContext, "jsm" | "dlqStream">,
  reason: DeadLetterReason,
  seq: number,
): Promise<boolean> {
  return (
    (await getLastBySubjectFromLeader(ctx.jsm, ctx.dlqStream, claimSubject(reason, seq))) !== null
  );
}

/** Writes the claim, expecting its subject empty; "wrong last sequence" means another process wrote it first, which is as good. */
export async function writeClaim(
  ctx: DeadLetterContext,
  reason: DeadLetterReason,
  seq: number,
): Promise<void> {
  const h = headers();
  h.set(claimHeaders.originalSequence, String(seq));
  h.set(claimHeaders.reason, reason);
  try {
    await ctx.js.publish(claimSubject(reason, seq), new Uint8Array(0), {
      msgID: claimMsgId(reason, seq),
      expect: { lastSubjectSequence: 0 },
      headers: h,
      timeout: ctx.publishTimeoutMs,
      retries: 1, // one attempt: the advisory's redelivery is our retry
    });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence)
      return;
    throw new BrokerUnavailableError(
      `dead-letter claim for command #${seq}: ${describeFailure(err)}`,
      { cause: err },
    );
  }
}
