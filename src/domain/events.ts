// Events: one per operation, built only from the command and what the ledger recorded, so the
// event published again for the same operation (after a crash, by another worker) is byte for byte
// the same. Key order is fixed by construction; amounts are decimal strings.
import { assert } from "../lib/assert.ts";
import type { CommandFields, CommandType } from "./commands.ts";
import { formatOperationId } from "./ids.ts";
import type { Reason } from "./reasons.ts";

export const EVENT_OF: Record<CommandType, string> = {
  credit: "credited", debit: "debited", hold: "held", capture: "captured", release: "released", transfer: "transferred",
};

export type BalanceLine = { userId: string; currency: string; posted: bigint; held: bigint; available: bigint };

export type OutboundEvent = { subject: string; msgId: string; payload: Record<string, unknown>; data: Uint8Array };

const encoder = new TextEncoder();

function finish(event: string, id: string, msgId: string, payload: Record<string, unknown>): OutboundEvent {
  return { subject: `billing.evt.${event}.${id}`, msgId, payload, data: encoder.encode(JSON.stringify(payload)) };
}

/** Fields in the contract's order: userId / fromUserId / toUserId / holdId, amount, fee, currency. */
function orderedFields(fields: CommandFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["userId", "fromUserId", "toUserId", "holdId", "amount", "fee", "currency"] as const) {
    const value = fields[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * An event whose JSON text is written directly (the two events of every command): the bytes
 * JSON.stringify gives for the payload object, without building that object, its field and balance
 * objects, and then walking them (issue 13: a few % of a busy worker's main thread, and its
 * garbage). The payload object, which only the audit and tests read, is the text parsed, when asked.
 * Keys and event, command and id values are plain ASCII written as they are; every other string
 * goes through JSON.stringify; amounts are decimal digits. test/domain/events.test.ts holds the
 * bytes equal to JSON.stringify of the payload built field by field.
 */
function finishJson(event: string, id: string, json: string): OutboundEvent {
  return {
    subject: `billing.evt.${event}.${id}`, msgId: id, data: encoder.encode(json),
    get payload(): Record<string, unknown> {
      return JSON.parse(json) as Record<string, unknown>;
    },
  };
}

/** `,"key":value` for each field present, in the contract's order (orderedFields). */
function fieldsJson(fields: CommandFields): string {
  let out = "";
  if (fields.userId !== undefined) out += `,"userId":${JSON.stringify(fields.userId)}`;
  if (fields.fromUserId !== undefined) out += `,"fromUserId":${JSON.stringify(fields.fromUserId)}`;
  if (fields.toUserId !== undefined) out += `,"toUserId":${JSON.stringify(fields.toUserId)}`;
  if (fields.holdId !== undefined) out += `,"holdId":${JSON.stringify(fields.holdId)}`;
  if (fields.amount !== undefined) out += `,"amount":${JSON.stringify(fields.amount)}`;
  if (fields.fee !== undefined) out += `,"fee":${JSON.stringify(fields.fee)}`;
  if (fields.currency !== undefined) out += `,"currency":${JSON.stringify(fields.currency)}`;
  return out;
}

function balanceJson(b: BalanceLine): string {
  return `{"userId":${JSON.stringify(b.userId)},"currency":${JSON.stringify(b.currency)},"posted":"${b.posted}","held":"${b.held}","available":"${b.available}"}`;
}

export function appliedEvent(operationId: bigint, type: CommandType, fields: CommandFields, balances: ReadonlyArray<BalanceLine>, ledgerTimestamp: bigint): OutboundEvent {
  assert(balances.length > 0, "an applied operation touches at least one user account");
  const id = formatOperationId(operationId);
  const event = EVENT_OF[type];
  let lines = balanceJson(balances[0] as BalanceLine);
  for (let i = 1; i < balances.length; i++) lines += `,${balanceJson(balances[i] as BalanceLine)}`;
  return finishJson(event, id, `{"event":"${event}","operationId":"${id}","command":"${type}"${fieldsJson(fields)},"balances":[${lines}],"ledgerTimestamp":"${ledgerTimestamp}"}`);
}

export function rejectedEvent(operationId: bigint, type: CommandType, fields: CommandFields, reason: Reason, detail: string): OutboundEvent {
  const id = formatOperationId(operationId);
  return finishJson("rejected", id, `{"event":"rejected","operationId":"${id}","command":"${type}"${fieldsJson(fields)},"reason":${JSON.stringify(reason)},"detail":${JSON.stringify(detail)}}`);
}

/**
 * A hold that expired: its own subject and message id, so at most one per hold. Expiry writes no
 * balance history in the ledger, so the event carries no balances: the next operation's event or
 * a balance query shows the released funds.
 */
export function expiredEvent(holdId: bigint, fields: CommandFields, ledgerTimestamp: bigint): OutboundEvent {
  const id = formatOperationId(holdId);
  return finish("expired", id, `expired:${id}`, {
    event: "expired", ...orderedFields({ ...fields, holdId: id }), ledgerTimestamp: ledgerTimestamp.toString(),
  });
}
