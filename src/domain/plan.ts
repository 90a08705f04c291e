// The plan of an operation: the ledger transfers that carry it out, or the marker that records its
// rejection. Every transfer of an operation carries the command's fingerprint in user_data_128, the
// deployment's tag in user_data_64 and its command code in user_data_32, so a later copy is recognised as the same or a conflict.
import type { Transfer } from "tigerbeetle-node";
import { TransferFlags } from "./ledger-codes.ts";
import { assert } from "../lib/assert.ts";
import {
  feeAccountId,
  markerAccountIds,
  settlementAccountId,
  userAccountId,
  type Chart,
} from "./accounts.ts";
import { COMMAND_CODES, type Command, type CommandType } from "./commands.ts";
import { markerCode, type Reason } from "./reasons.ts";

/** Transfer codes of applied operations. Captures and releases inherit the hold's code. */
export const TransferCode = { credit: 1, debit: 2, hold: 3, transfer: 4, fee: 5 } as const;

/** What a capture or release needs to know of its hold. */
export type HoldFacts = { id: bigint; debitAccountId: bigint; amount: bigint; ledger: number };

/** A transfer with every field the plan does not set at zero (the ledger's default). */
export function transfer(fields: Partial<Transfer> & Pick<Transfer, "id">): Transfer {
  return {
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: 0n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: 0,
    code: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

/** The transfers of a command, in submission order. Captures and releases need their hold. */
export function planTransfers(
  chart: Chart,
  command: Command,
  fingerprint: bigint,
  hold: HoldFacts | null,
): Transfer[] {
  const { space } = chart;
  const tag = {
    user_data_128: fingerprint,
    user_data_64: space.tag,
    user_data_32: COMMAND_CODES[command.type],
  };
  switch (command.type) {
    case "credit": {
      const ledger = command.currency.ledger;
      return [
        transfer({
          id: command.operationId,
          debit_account_id: settlementAccountId(space, ledger),
          credit_account_id: userAccountId(space, ledger, command.userId),
          amount: command.amount,
          ledger,
          code: TransferCode.credit,
          ...tag,
        }),
      ];
    }
    case "debit":
    case "hold": {
      const ledger = command.currency.ledger;
      const held = command.type === "hold";
      return [
        transfer({
          id: command.operationId,
          debit_account_id: userAccountId(space, ledger, command.userId),
          credit_account_id: settlementAccountId(space, ledger),
          amount: command.amount,
          ledger,
          code: held ? TransferCode.hold : TransferCode.debit,
          flags: held ? TransferFlags.pending : TransferFlags.none,
          timeout: held ? command.timeoutSeconds : 0,
          ...tag,
        }),
      ];
    }
    case "capture":
    case "release": {
      assert(
        hold !== null && hold.id === command.holdId,
        "a capture or release is planned only with its hold",
      );
      // Exactly the held amount, never amount_max or 0, so a retry is `exists` byte for byte.
      const flags =
        command.type === "capture"
          ? TransferFlags.post_pending_transfer
          : TransferFlags.void_pending_transfer;
      return [
        transfer({
          id: command.operationId,
          pending_id: hold.id,
          amount: hold.amount,
          flags,
          ...tag,
        }),
      ];
    }
    case "transfer": {
      const ledger = command.currency.ledger;
      const from = userAccountId(space, ledger, command.fromUserId);
      const main = transfer({
        id: command.operationId,
        debit_account_id: from,
        credit_account_id: userAccountId(space, ledger, command.toUserId),
        amount: command.amount,
        ledger,
        code: TransferCode.transfer,
        flags: command.fee > 0n ? TransferFlags.linked : TransferFlags.none,
        ...tag,
      });
      if (command.fee === 0n) return [main];
      return [
        main,
        transfer({
          id: space.feeLegId(command.operationId),
          debit_account_id: from,
          credit_account_id: feeAccountId(space, ledger),
          amount: command.fee,
          ledger,
          code: TransferCode.fee,
          ...tag,
        }),
      ];
    }
  }
}

/** A zero-amount transfer between the marker accounts: the durable, final record of a rejection. */
export function markerTransfer(
  chart: Chart,
  id: bigint,
  type: CommandType,
  reason: Reason,
  fingerprint: bigint,
): Transfer {
  const marker = markerAccountIds(chart.space, chart.markerLedger);
  return transfer({
    id,
    debit_account_id: marker.debit,
    credit_account_id: marker.credit,
    amount: 0n,
    ledger: chart.markerLedger,
    code: markerCode(reason),
    user_data_128: fingerprint,
    user_data_64: chart.space.tag,
    user_data_32: COMMAND_CODES[type],
  });
}

/** The user accounts a command moves money on, with the userIds they belong to. */
export function touchedUsers(command: Command): Array<{ ledger: number; userId: string }> {
  switch (command.type) {
    case "credit":
    case "debit":
    case "hold":
      return [{ ledger: command.currency.ledger, userId: command.userId }];
    case "transfer":
      return [
        { ledger: command.currency.ledger, userId: command.fromUserId },
        { ledger: command.currency.ledger, userId: command.toUserId },
      ];
    case "capture":
    case "release":
      return [];
  }
}

export function isMarker(chart: Chart, t: Transfer): boolean {
  return t.ledger === chart.markerLedger;
}

/** A transfer this deployment wrote (deployments sharing a TigerBeetle cluster tag theirs apart). */
export function isOwn(chart: Chart, t: Transfer): boolean {
  return t.user_data_64 === chart.space.tag;
}

/** A transfer that is a hold this deployment placed: pending, with the hold code and our tag. */
export function isHold(chart: Chart, t: Transfer): boolean {
  return (
    (t.flags & TransferFlags.pending) !== 0 &&
    t.code === TransferCode.hold &&
    !isMarker(chart, t) &&
    isOwn(chart, t)
  );
}
