// The dead-letter stream's layout: which subjects hold what, and the headers of our bookkeeping.
//
// The stream captures billing.dlq.>. Three kinds of message live there, told apart by the number
// of subject tokens, so that one wildcard selects each kind and nothing else:
//
//   billing.dlq.<reason>                         a dead letter (the contract; src/broker/dead-letter.ts)
//   billing.dlq.replayed.<letterSequence>        a replay record: who replayed the letter, when, how
//   billing.dlq.marker.<reason>.<commandSeq>     a claim: "this command was dead-lettered for this
//                                                reason" (src/broker/dead-letter.ts)
//   billing.dlq.checked.<firstCommandSeq>        "this range of commands was checked for commands
//                                                 without an outcome" (src/recovery/command-recovery.ts)
//   billing.dlq.recovered.<commandSeq>.<digest>  "this command, with this content, was published again"
//
// Per-letter and per-command subjects are what make our checks cheap and race-free on 2.9.10:
// "is there a record/claim?" is one get of the last message on a concrete subject, and "be the
// first to write it" is a publish that expects the subject's last sequence (0 = empty), which the
// stream leader checks atomically for every process at once. Claims and records carry no payload;
// everything is in headers, so that `nats stream view` shows them plainly.

import type { DeadLetterReason } from "../broker/dead-letter.ts";
import { assert } from "../lib/assert.ts";

export const deadLetterReasons: readonly DeadLetterReason[] = [
  "malformed",
  "conflict",
  "max_deliveries",
];

// Selects every dead letter and nothing else (three tokens).
export const lettersFilter = "billing.dlq.*";
export const replayRecordsFilter = "billing.dlq.replayed.>";

// The commands stream's subjects (the contract); a replay publishes only there.
export const commandSubjectPrefix = "billing.cmd.";

// What a letter for a command that no longer exists names as its original subject.
export const unknownOriginalSubject = "unknown";

export const replayHeaders = {
  of: "Billing-Replay-Of", // the letter's DLQ stream sequence
  by: "Billing-Replay-By",
  at: "Billing-Replay-At", // ISO 8601, the operator's clock
  status: "Billing-Replay-Status",
  commandSequence: "Billing-Replay-Command-Sequence", // where the command was stored again
  sameId: "Billing-Replay-Same-Id", // "true" when the original Nats-Msg-Id was kept
  error: "Billing-Replay-Error",
} as const;

// started: the claim, written before the command is published. published: stored as a new
// command. duplicate: --same-id and the commands stream already held that msgId (nothing new
// stored). failed: the publish failed; whether the command was stored is unknown.
export type ReplayStatus = "started" | "published" | "duplicate" | "failed";
export const replayStatuses: readonly ReplayStatus[] = [
  "started",
  "published",
  "duplicate",
  "failed",
];

export function letterSubject(reason: DeadLetterReason): string {
  return `billing.dlq.${reason}`;
}

export function replayRecordSubject(letterSequence: number): string {
  assertSequence(letterSequence);
  return `billing.dlq.replayed.${letterSequence}`;
}

export function checkedRangeSubject(firstCommandSequence: number): string {
  assertSequence(firstCommandSequence);
  return `billing.dlq.checked.${firstCommandSequence}`;
}

/** `digest`: hex of the command's content, since replicas that disagree may hold two commands at one sequence. */
export function recoveredCommandSubject(commandSequence: number, digest: string): string {
  assertSequence(commandSequence);
  assert(/^[0-9a-f]{1,64}$/.test(digest), "dlq layout: a hex digest");
  return `billing.dlq.recovered.${commandSequence}.${digest}`;
}

export function isDeadLetterReason(value: string): value is DeadLetterReason {
  return (deadLetterReasons as readonly string[]).includes(value);
}

function assertSequence(seq: number): void {
  assert(Number.isSafeInteger(seq) && seq > 0, `dlq layout: a stream sequence > 0, got ${seq}`);
}
