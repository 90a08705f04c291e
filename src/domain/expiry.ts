// Hold expiry, decided by the ledger's own state and clock. TigerBeetle releases an expired hold by
// itself but records nothing visible: the pending transfer looks the same before and after. So:
//   1. a hold is due when its deadline (timestamp + timeout) is at or before a timestamp the ledger
//      has already issued ("ledger now"); every later ledger event is then past the deadline;
//   2. a void of a due hold (the probe) can only be refused: pending_transfer_expired (it expired),
//      or already posted / voided (captured or released before its deadline);
//   3. an expired hold gets one expiry marker (a zero-amount transfer, idempotent by id), whose
//      timestamp is the expired event's ledgerTimestamp, so every worker publishes the same event.
import type { Transfer } from "tigerbeetle-node";
import { assert } from "../lib/assert.ts";
import { markerAccountIds, type Chart } from "./accounts.ts";
import { CreateTransferStatus as S, TransferFlags, transferStatusName } from "./ledger-codes.ts";
import { NS_PER_SECOND } from "../lib/nanoseconds.ts";
import { transfer } from "./plan.ts";

/** The transfer code of expiry markers (rejection markers use 100 and up). */
export const EXPIRY_MARKER_CODE = 99;

export function holdDeadline(hold: Transfer): bigint | null {
  return hold.timeout === 0 ? null : hold.timestamp + BigInt(hold.timeout) * NS_PER_SECOND;
}

export function isDue(hold: Transfer, ledgerNow: bigint): boolean {
  const deadline = holdDeadline(hold);
  return deadline !== null && deadline <= ledgerNow;
}

/** A transfer that cannot be valid (id 0): the ledger refuses it and reports its clock. */
export function clockProbe(): Transfer {
  return transfer({ id: 0n });
}

export function voidProbe(chart: Chart, hold: Transfer): Transfer {
  return {
    ...clockProbe(),
    id: chart.space.expiryProbeId(hold.id),
    pending_id: hold.id,
    amount: hold.amount,
    flags: TransferFlags.void_pending_transfer,
  };
}

export type ProbeVerdict = "expired" | "captured" | "released";

export function probeVerdict(status: number): ProbeVerdict {
  if (status === S.pending_transfer_expired) return "expired";
  if (status === S.pending_transfer_already_posted) return "captured";
  if (status === S.pending_transfer_already_voided) return "released";
  // `created` would mean the ledger's clock ran backwards; the void then released a hold whose
  // deadline had passed, which is what expiry does, but it is a broken invariant: crash loudly.
  assert(false, `void probe of a due hold answered ${transferStatusName(status)}`);
}

export function expiryMarker(chart: Chart, hold: Transfer): Transfer {
  const marker = markerAccountIds(chart.space, chart.markerLedger);
  return {
    ...clockProbe(),
    id: chart.space.expiryMarkerId(hold.id),
    debit_account_id: marker.debit,
    credit_account_id: marker.credit,
    ledger: chart.markerLedger,
    code: EXPIRY_MARKER_CODE,
    user_data_128: hold.id,
    user_data_64: chart.space.tag,
  };
}
