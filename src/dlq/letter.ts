// Dead letters and replay records as values: parsed from stored messages, never trusted. Pure.
import { Match, type MsgHdrs } from "@nats-io/transport-node";
import { copyHeaders } from "../broker/headers.ts";
import type { StoredMsg } from "@nats-io/jetstream";
import { deadLetterHeaders } from "../broker/dead-letter.ts";
import { replayHeaders, replayStatuses, type ReplayStatus } from "./layout.ts";

export interface Letter {
  sequence: number; // in the dead-letter stream
  time: Date; // when the dead-letter stream stored it
  subject: string; // billing.dlq.<reason>
  reason: string; // Billing-Reason; a reason unknown to this version is still listed
  originalSubject: string;
  originalSequence: number | null; // null when the header is missing or not a sequence
  originalMsgId: string | null;
  error: string;
  data: Uint8Array;
  headers: MsgHdrs;
}

export interface ReplayRecord {
  sequence: number; // in the dead-letter stream
  letterSequence: number;
  by: string;
  at: string;
  status: ReplayStatus;
  commandSequence: number | null;
  sameId: boolean;
  error: string | null;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

// A letter is any message on billing.dlq.<token> with a Billing-Reason header; anything else on
// such a subject (a stray publish) is not ours to list or replay.
export function letterOf(m: StoredMsg): Letter | null {
  const h = m.header;
  const reason = header(h, deadLetterHeaders.reason);
  if (m.subject.split(".").length !== 3 || reason === null) return null;
  return {
    sequence: m.seq,
    time: m.time,
    subject: m.subject,
    reason,
    originalSubject: header(h, deadLetterHeaders.originalSubject) ?? "",
    originalSequence: sequenceOf(header(h, deadLetterHeaders.originalSequence)),
    originalMsgId: header(h, deadLetterHeaders.originalMsgId),
    error: header(h, deadLetterHeaders.error) ?? "",
    data: m.data,
    headers: h,
  };
}

export function recordOf(m: StoredMsg): ReplayRecord | null {
  const h = m.header;
  const letterSequence = sequenceOf(header(h, replayHeaders.of));
  const status = header(h, replayHeaders.status);
  if (
    letterSequence === null ||
    status === null ||
    !(replayStatuses as readonly string[]).includes(status)
  )
    return null;
  return {
    sequence: m.seq,
    letterSequence,
    by: header(h, replayHeaders.by) ?? "",
    at: header(h, replayHeaders.at) ?? m.time.toISOString(),
    status: status as ReplayStatus,
    commandSequence: sequenceOf(header(h, replayHeaders.commandSequence)),
    sameId: header(h, replayHeaders.sameId) === "true",
    error: header(h, replayHeaders.error),
  };
}

// The headers a replayed command carries: the letter's, minus every Nats-* header (the letter's
// own Nats-Msg-Id, and what a direct get adds) and minus the Billing-* headers dead-lettering
// added. That is the command's original headers without its Nats-Msg-Id, which the dead letter
// kept as Billing-Original-Msg-Id; the caller sets it again for --same-id.
export function replayHeaderSet(letter: Letter): MsgHdrs {
  return copyHeaders(letter.headers, Object.values(deadLetterHeaders));
}

// The payload as text when it is UTF-8, else null (then show payloadBase64).
export function payloadText(data: Uint8Array): string | null {
  try {
    return utf8.decode(data);
  } catch {
    return null;
  }
}

export function payloadBase64(data: Uint8Array): string {
  return Buffer.from(data).toString("base64");
}

function header(h: MsgHdrs, name: string): string | null {
  if (!h.has(name, Match.IgnoreCase)) return null;
  return h.get(name, Match.IgnoreCase);
}

function sequenceOf(value: string | null): number | null {
  if (value === null || !/^[1-9][0-9]{0,15}$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}
