// Proves the pure half of hold expiry: a hold's deadline is its ledger timestamp plus its timeout
// in nanoseconds (none for timeout 0); a hold is due exactly when the deadline is at or before a
// timestamp the ledger already issued; the clock probe is an all-zero transfer the ledger must
// refuse; the void probe voids exactly the held amount under its own derived id; the ledger's
// answer to a probe maps to expired / captured / released and anything else is an assertion; and
// the expiry marker is a zero-amount marker-ledger transfer under a derived id whose code can never
// be read as a rejection reason. Holds are planned from decoded commands and given timestamps.
import { CreateTransferStatus as S, TransferFlags, type Transfer } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import { markerAccountIds } from "../../src/domain/accounts.ts";
import {
  clockProbe,
  EXPIRY_MARKER_CODE,
  expiryMarker,
  holdDeadline,
  isDue,
  probeVerdict,
  voidProbe,
} from "../../src/domain/expiry.ts";

import { isMarker, planTransfers } from "../../src/domain/plan.ts";
import { MARKER_CODE_BASE, reasonOfMarkerCode } from "../../src/domain/reasons.ts";
import { at, chart, decodeCommandOk, idOf, stored, uuid } from "./fixture.ts";

const HOLD = uuid(80);
const NS = 1_000_000_000n;
const T0 = 1_700_000_000_000_000_000n;

function storedHold(timeoutSeconds: number | undefined, amount = "250"): Transfer {
  const payload = {
    operationId: HOLD,
    userId: "alice",
    amount,
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
  };
  const d = decodeCommandOk("hold", payload);
  return stored(at(planTransfers(chart, d.command, d.fingerprint, null), 0), T0);
}

describe("expiry – deadlines", () => {
  it("expiry – a hold's deadline is its timestamp plus its timeout in nanoseconds", () => {
    expect(holdDeadline(storedHold(60))).toBe(T0 + 60n * NS);
    expect(holdDeadline(storedHold(1))).toBe(T0 + NS);
    expect(holdDeadline(storedHold(2_592_000))).toBe(T0 + 2_592_000n * NS);
  });

  it("expiry – a hold without timeout has no deadline and is never due", () => {
    const h = storedHold(undefined);
    expect(holdDeadline(h)).toBeNull();
    expect(isDue(h, T0 + 10n ** 18n)).toBe(false);
  });

  it("expiry – a hold is due at its deadline, not one nanosecond before", () => {
    const h = storedHold(60);
    const deadline = T0 + 60n * NS;
    expect(isDue(h, deadline - 1n)).toBe(false);
    expect(isDue(h, deadline)).toBe(true);
    expect(isDue(h, deadline + 1n)).toBe(true);
  });

  it("expiry – a hold is not due at its own timestamp", () => {
    expect(isDue(storedHold(1), T0)).toBe(false);
  });
});

describe("expiry – probes", () => {
  it("expiry – the clock probe is an all-zero transfer (id 0, which the ledger refuses)", () => {
    expect(clockProbe()).toEqual({
      id: 0n,
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
    });
  });

  it("expiry – the void probe voids exactly the held amount under the hold's probe id", () => {
    const h = storedHold(60, "987");
    expect(voidProbe(chart, h)).toEqual({
      ...clockProbe(),
      id: chart.space.expiryProbeId(idOf(HOLD)),
      pending_id: idOf(HOLD),
      amount: 987n,
      flags: TransferFlags.void_pending_transfer,
    });
  });

  it("expiry – the void probe carries no timestamp, timeout, ledger, code or user data (all inherited or refused)", () => {
    const probe = voidProbe(chart, storedHold(60));
    expect(probe).toMatchObject({
      timestamp: 0n,
      timeout: 0,
      ledger: 0,
      code: 0,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      debit_account_id: 0n,
      credit_account_id: 0n,
    });
  });

  it("expiry – the ledger's answers to a probe: expired, captured, released", () => {
    expect(probeVerdict(S.pending_transfer_expired)).toBe("expired");
    expect(probeVerdict(S.pending_transfer_already_posted)).toBe("captured");
    expect(probeVerdict(S.pending_transfer_already_voided)).toBe("released");
  });

  it.each([
    "created",
    "exists",
    "pending_transfer_not_found",
    "id_already_failed",
    "exceeds_pending_transfer_amount",
    "pending_transfer_has_different_amount",
  ] as const)("expiry – a probe answered %s is a broken invariant (assertion)", (status) => {
    expect(() => probeVerdict(S[status])).toThrow(new RegExp(`answered ${status}`));
  });
});

describe("expiry – markers", () => {
  it("expiry – the expiry marker is a zero-amount marker-ledger transfer naming the hold in user_data_128", () => {
    const marker = markerAccountIds(chart.space, chart.markerLedger);
    const t = expiryMarker(chart, storedHold(60));
    expect(t).toEqual({
      ...clockProbe(),
      id: chart.space.expiryMarkerId(idOf(HOLD)),
      debit_account_id: marker.debit,
      credit_account_id: marker.credit,
      ledger: chart.markerLedger,
      code: EXPIRY_MARKER_CODE,
      user_data_128: idOf(HOLD),
      user_data_64: chart.space.tag,
    });
    expect(isMarker(chart, t)).toBe(true);
  });

  it("expiry – the expiry marker is deterministic (one per hold)", () => {
    expect(expiryMarker(chart, storedHold(60))).toEqual(expiryMarker(chart, storedHold(60, "1")));
  });

  it("expiry – the expiry marker's code is below the rejection codes and names no reason", () => {
    expect(EXPIRY_MARKER_CODE).toBeLessThan(MARKER_CODE_BASE);
    expect(reasonOfMarkerCode(EXPIRY_MARKER_CODE)).toBeUndefined();
  });

  it("expiry – expiry marker and probe ids are distinct from the hold's own and derived ids", () => {
    const id = idOf(HOLD);
    const ids = [
      id,
      chart.space.expiryMarkerId(id),
      chart.space.expiryProbeId(id),
      chart.space.burnedMarkerId(id),
      chart.space.feeLegId(id),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    expect(chart.space.expiryMarkerId(id)).toBe(chart.space.expiryMarkerId(id));
    expect(chart.space.expiryProbeId(id)).not.toBe(chart.space.expiryProbeId(id + 1n));
  });
});
