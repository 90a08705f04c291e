// Events: one per operation, built only from the command and what the ledger recorded, so the
// event published again for the same operation (after a crash, by another worker) is byte for byte
// the same. Key order is fixed by construction; amounts are decimal strings.
import { assert } from "../lib/assert.ts";
import type { CommandFields, CommandType } from "./commands.ts";
import { formatOperationId } from "./ids.ts";
import type { Reason } from "./reasons.ts";

export const EVENT_OF: Record<CommandType, string> = {
  credit: "credited",
  debit: "debited",
  hold: "held",
  capture: "captured",
  release: "released",
  transfer: "transferred",
};

export type BalanceLine = {
  userId: string;
  currency: string;
  posted: bigint;
  held: bigint;
  available: bigint;
};

export type OutboundEvent = {
  subject: string;
  msgId: string;
  payload: Record<string, unknown>;
  data: Uint8Array;
};

const encoder = new TextEncoder();

function finish(
  event: string,
  id: string,
  msgId: string,
  payload: Record<string, unknown>,
): OutboundEvent {
  return {
    subject: `billing.evt.${event}.${id}`,
    msgId,
    payload,
    data: encoder.encode(JSON.stringify(payload)),
  };
}

function balancesJson(lines: ReadonlyArray<BalanceLine>): Array<Record<string, string>> {
  return lines.map((b) => ({
    userId: b.userId,
    currency: b.currency,
    posted: b.posted.toString(),
    held: b.held.toString(),
    available: b.available.toString(),
  }));
}

/** Fields in the contract's order: userId / fromUserId / toUserId / holdId, amount, fee, currency. */
function orderedFields(fields: CommandFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [
    "userId",
    "fromUserId",
    "toUserId",
    "holdId",
    "amount",
    "fee",
    "currency",
  ] as const) {
    const value = fields[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

export function appliedEvent(
  operationId: bigint,
  type: CommandType,
  fields: CommandFields,
  balances: ReadonlyArray<BalanceLine>,
  ledgerTimestamp: bigint,
): OutboundEvent {
  assert(balances.length > 0, "an applied operation touches at least one user account");
  const id = formatOperationId(operationId);
  const event = EVENT_OF[type];
  return finish(event, id, id, {
    event,
    operationId: id,
    command: type,
    ...orderedFields(fields),
    balances: balancesJson(balances),
    ledgerTimestamp: ledgerTimestamp.toString(),
  });
}

export function rejectedEvent(
  operationId: bigint,
  type: CommandType,
  fields: CommandFields,
  reason: Reason,
  detail: string,
): OutboundEvent {
  const id = formatOperationId(operationId);
  return finish("rejected", id, id, {
    event: "rejected",
    operationId: id,
    command: type,
    ...orderedFields(fields),
    reason,
    detail,
  });
}

/**
 * A hold that expired: its own subject and message id, so at most one per hold. Expiry writes no
 * balance history in the ledger, so the event carries no balances: the next operation's event or
 * a balance query shows the released funds.
 */
export function expiredEvent(
  holdId: bigint,
  fields: CommandFields,
  ledgerTimestamp: bigint,
): OutboundEvent {
  const id = formatOperationId(holdId);
  return finish("expired", id, `expired:${id}`, {
    event: "expired",
    ...orderedFields({ ...fields, holdId: id }),
    ledgerTimestamp: ledgerTimestamp.toString(),
  });
}
