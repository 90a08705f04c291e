// The one event a ledger transfer must have (its kind is src/domain/transfer-kind.ts's classify).
// Pure: the audit classifies each transfer, checks that its shape is one the service writes (codes,
// flags, accounts, and the fingerprint in user_data_128 recomputed from the fields the ledger
// holds), and rebuilds the event byte for byte with the domain's own event builders.
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import {
  currencyByLedger,
  feeAccountId,
  settlementAccountId,
  userAccountId,
  type Chart,
} from "../domain/accounts.ts";
import { canonicalJson, type CommandFields, type CommandType } from "../domain/commands.ts";
import {
  appliedEvent,
  expiredEvent,
  type BalanceLine,
  type OutboundEvent,
} from "../domain/events.ts";
import { formatOperationId, hashId } from "../domain/ids.ts";
import { userBalance } from "../domain/money.ts";
import { TransferCode } from "../domain/plan.ts";
import type { Balances } from "../ledger/port.ts";
import type { FoldHold } from "./fold.ts";

/** Everything the audit knows around one applied operation. */
export type AppliedInput = {
  chart: Chart;
  type: CommandType;
  main: Transfer;
  fee: Transfer | null;
  /** The hold of a capture or release, as the fold holds it. */
  hold: FoldHold | null;
  /** userId of each user account. */
  names: ReadonlyMap<bigint, string>;
  /** Balances of an account right after the operation (the fold's, or an alternative). */
  balanceOf: (account: bigint) => Balances;
};

export type Expected = { event: OutboundEvent; touched: bigint[] } | { problem: string };

function fingerprint(type: CommandType, fields: CommandFields, timeoutSeconds: number): bigint {
  return hashId("command", type, canonicalJson({ ...fields, timeoutSeconds }));
}

/**
 * The fingerprints a command with these fields may carry. A command that named no currency is
 * fingerprinted without one (the default is configuration, not content), and neither the ledger
 * nor an event says whether the currency was named: both forms are the command's.
 */
function fingerprintsOf(
  type: CommandType,
  fields: CommandFields,
  timeoutSeconds: number,
): bigint[] {
  const full = fingerprint(type, fields, timeoutSeconds);
  if (fields.currency === undefined) return [full];
  const { currency: _default, ...named } = fields;
  return [full, fingerprint(type, named, timeoutSeconds)];
}

/** The fingerprints a rejected event's fields allow, when they determine them (null when not). */
export function rejectedFingerprints(
  type: CommandType,
  reason: string,
  fields: CommandFields,
): bigint[] | null {
  if (reason === "invalid_command" || type === "hold") return null; // raw payload, or a timeout the event omits
  return fingerprintsOf(type, fields, 0);
}

function userOf(input: AppliedInput, account: bigint, ledger: number): string | null {
  const name = input.names.get(account);
  return name !== undefined && userAccountId(input.chart.space, ledger, name) === account
    ? name
    : null;
}

/** The command fields, touched accounts and shape problems of an applied operation. */
function shape(
  input: AppliedInput,
):
  | { fields: CommandFields; timeout: number; touched: bigint[]; ledger: number }
  | { problem: string } {
  const { main: t, type, chart } = input;
  const settlement = settlementAccountId(input.chart.space, t.ledger);
  const currency = currencyByLedger(chart, t.ledger)?.code;
  const want = (ok: boolean, what: string) => (ok ? null : what);
  switch (type) {
    case "credit":
    case "debit":
    case "hold": {
      const userSide = type === "credit" ? t.credit_account_id : t.debit_account_id;
      const otherSide = type === "credit" ? t.debit_account_id : t.credit_account_id;
      const userId = userOf(input, userSide, t.ledger);
      const code =
        type === "credit"
          ? TransferCode.credit
          : type === "debit"
            ? TransferCode.debit
            : TransferCode.hold;
      const flags = type === "hold" ? TransferFlags.pending : TransferFlags.none;
      const bad =
        want(currency !== undefined, `ledger ${t.ledger} is no configured currency`) ??
        want(
          t.code === code && t.flags === flags,
          `code ${t.code} / flags ${t.flags} are not a ${type}'s`,
        ) ??
        want(
          otherSide === settlement && userId !== null,
          `a ${type} not between the settlement account and a user account`,
        ) ??
        want(type === "hold" || t.timeout === 0, "a timeout on a posted transfer");
      if (bad !== null) return { problem: bad };
      return {
        fields: {
          userId: userId as string,
          amount: t.amount.toString(),
          currency: currency as string,
        },
        timeout: t.timeout,
        touched: [userSide],
        ledger: t.ledger,
      };
    }
    case "capture":
    case "release":
      return holdShape(input);
    case "transfer":
      return transferShape(input, currency);
  }
}

function holdShape(
  input: AppliedInput,
):
  | { fields: CommandFields; timeout: number; touched: bigint[]; ledger: number }
  | { problem: string } {
  const { main: t, type, hold, chart } = input;
  const flag =
    type === "capture" ? TransferFlags.post_pending_transfer : TransferFlags.void_pending_transfer;
  if (t.flags !== flag) return { problem: `flags ${t.flags} are not a ${type}'s` };
  if (hold === null || hold.code !== TransferCode.hold)
    return { problem: `pending_id ${t.pending_id} is not a hold` };
  if (t.amount !== hold.amount)
    return {
      problem: `a ${type} of ${t.amount} of a hold of ${hold.amount}: the contract takes exactly the held amount`,
    };
  const currency = currencyByLedger(chart, hold.ledger)?.code;
  const userId = userOf(input, hold.debit, hold.ledger);
  if (currency === undefined || userId === null)
    return { problem: "the hold is not on a user account of a configured currency" };
  return {
    fields: { holdId: formatOperationId(hold.id) },
    timeout: 0,
    touched: [hold.debit],
    ledger: hold.ledger,
  };
}

function transferShape(
  input: AppliedInput,
  currency: string | undefined,
):
  | { fields: CommandFields; timeout: number; touched: bigint[]; ledger: number }
  | { problem: string } {
  const { main: t, fee } = input;
  const from = userOf(input, t.debit_account_id, t.ledger);
  const to = userOf(input, t.credit_account_id, t.ledger);
  if (currency === undefined || from === null || to === null)
    return { problem: "a transfer not between two user accounts of a configured currency" };
  if (
    t.code !== TransferCode.transfer ||
    t.flags !== (fee ? TransferFlags.linked : TransferFlags.none)
  )
    return { problem: `code ${t.code} / flags ${t.flags} are not a transfer's` };
  if (fee) {
    const ok =
      fee.id === input.chart.space.feeLegId(t.id) &&
      fee.debit_account_id === t.debit_account_id &&
      fee.credit_account_id === feeAccountId(input.chart.space, t.ledger) &&
      fee.ledger === t.ledger &&
      fee.flags === TransferFlags.none &&
      fee.user_data_128 === t.user_data_128 &&
      fee.amount > 0n;
    if (!ok) return { problem: `fee leg ${fee.id} is not the fee of transfer ${t.id}` };
  }
  const fields: CommandFields = {
    fromUserId: from,
    toUserId: to,
    amount: t.amount.toString(),
    currency,
  };
  if (fee) fields.fee = fee.amount.toString();
  return {
    fields,
    timeout: 0,
    touched: [t.debit_account_id, t.credit_account_id],
    ledger: t.ledger,
  };
}

/** The applied operation's event, exactly as a worker builds it, or why the transfer is not the service's. */
export function expectedApplied(input: AppliedInput): Expected {
  const s = shape(input);
  if ("problem" in s) return s;
  if (!fingerprintsOf(input.type, s.fields, s.timeout).includes(input.main.user_data_128)) {
    return {
      problem: "user_data_128 is not the fingerprint of the command the ledger record describes",
    };
  }
  const currency = currencyByLedger(input.chart, s.ledger)?.code as string;
  const balances: BalanceLine[] = s.touched.map((account) => ({
    userId: input.names.get(account) as string,
    currency,
    ...userBalance(input.balanceOf(account)),
  }));
  let fields = s.fields;
  if (input.hold !== null)
    fields = {
      userId: balances[0]?.userId as string,
      ...fields,
      amount: input.hold.amount.toString(),
      currency,
    };
  return {
    event: appliedEvent(input.main.id, input.type, fields, balances, input.main.timestamp),
    touched: s.touched,
  };
}

/** The expired event of a hold, as the sweeper builds it from its expiry marker. */
export function expectedExpired(
  chart: Chart,
  hold: FoldHold,
  names: ReadonlyMap<bigint, string>,
  markerTimestamp: bigint,
): OutboundEvent | null {
  const currency = currencyByLedger(chart, hold.ledger)?.code;
  const userId = names.get(hold.debit);
  if (currency === undefined || userId === undefined) return null;
  return expiredEvent(
    hold.id,
    { userId, amount: hold.amount.toString(), currency },
    markerTimestamp,
  );
}
