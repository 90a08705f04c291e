// What kind of record a ledger transfer is in the service's chart of accounts, by its codes alone:
// an applied command's transfer, a fee leg, a rejection marker, an expiry marker, or foreign (not
// written by this service). Pure; used by event recovery, the audit and the finance reports.
import type { Transfer } from "tigerbeetle-node";
import { markerAccountIds, type Chart } from "./accounts.ts";
import { COMMAND_CODES, COMMAND_TYPE_OF_CODE, type CommandType } from "./commands.ts";
import { EXPIRY_MARKER_CODE } from "./expiry.ts";
import { TransferCode } from "./plan.ts";
import { reasonOfMarkerCode, type Reason } from "./reasons.ts";

export type Classified =
  | { kind: "applied"; type: CommandType }
  | { kind: "fee_leg" }
  | { kind: "rejection"; type: CommandType; reason: Reason }
  | { kind: "expiry"; holdId: bigint }
  | { kind: "foreign"; detail: string };

/** What kind of record a transfer is, judged by its codes alone (its shape is checked later). */
export function classify(chart: Chart, t: Transfer): Classified {
  if (t.ledger === chart.markerLedger) return classifyMarker(chart, t);
  if (t.code === TransferCode.fee && t.user_data_32 === COMMAND_CODES.transfer)
    return { kind: "fee_leg" };
  const type = COMMAND_TYPE_OF_CODE.get(t.user_data_32);
  if (type === undefined)
    return { kind: "foreign", detail: `user_data_32 ${t.user_data_32} is no command code` };
  return { kind: "applied", type };
}

function classifyMarker(chart: Chart, t: Transfer): Classified {
  const marker = markerAccountIds(chart.space, chart.markerLedger);
  if (
    t.debit_account_id !== marker.debit ||
    t.credit_account_id !== marker.credit ||
    t.amount !== 0n ||
    t.flags !== 0
  ) {
    return { kind: "foreign", detail: "a marker-ledger transfer that is not a zero-amount marker" };
  }
  if (t.code === EXPIRY_MARKER_CODE) {
    if (t.user_data_32 !== 0 || t.id !== chart.space.expiryMarkerId(t.user_data_128))
      return { kind: "foreign", detail: "an expiry marker whose id is not derived from its hold" };
    return { kind: "expiry", holdId: t.user_data_128 };
  }
  const reason = reasonOfMarkerCode(t.code);
  const type = COMMAND_TYPE_OF_CODE.get(t.user_data_32);
  if (reason === undefined || type === undefined)
    return {
      kind: "foreign",
      detail: `marker code ${t.code} / command code ${t.user_data_32} unknown`,
    };
  return { kind: "rejection", type, reason };
}
