// Proves the mapping from ledger outcomes to the contract's reasons: every status the service can
// meet on a create_transfers result maps to its reason, everything else maps to none (and so
// crashes the caller); exactly TigerBeetle's transient statuses (spec §5.4) burn an id; each
// command type has the one burn reason its transient failure means; and a marker's transfer code
// round-trips to its reason.
import { CreateTransferStatus as S } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import { COMMAND_TYPES } from "../../src/domain/commands.ts";
import {
  BURN_REASON,
  burnsId,
  MARKER_CODE_BASE,
  markerCode,
  REASON_DETAIL,
  REASONS,
  reasonOfMarkerCode,
  reasonOfStatus,
} from "../../src/domain/reasons.ts";

/** Every CreateTransferStatus name, from the enum's reverse mapping. */
const ALL_STATUSES = Object.keys(S).filter((k) => Number.isNaN(Number(k))) as Array<keyof typeof S>;

const REJECTING: Array<[keyof typeof S, string]> = [
  ["exceeds_credits", "insufficient_funds"],
  ["pending_transfer_not_found", "hold_not_found"],
  ["pending_transfer_not_pending", "hold_not_found"],
  ["pending_transfer_already_posted", "hold_already_captured"],
  ["pending_transfer_already_voided", "hold_already_released"],
  ["pending_transfer_expired", "hold_expired"],
  ["overflows_debits_pending", "amount_overflow"],
  ["overflows_credits_pending", "amount_overflow"],
  ["overflows_debits_posted", "amount_overflow"],
  ["overflows_credits_posted", "amount_overflow"],
  ["overflows_debits", "amount_overflow"],
  ["overflows_credits", "amount_overflow"],
  ["overflows_timeout", "amount_overflow"],
];

/** TigerBeetle 0.17 transient statuses, spec §5.4. */
const TRANSIENT: Array<keyof typeof S> = [
  "debit_account_not_found",
  "credit_account_not_found",
  "pending_transfer_not_found",
  "exceeds_credits",
  "exceeds_debits",
  "debit_account_already_closed",
  "credit_account_already_closed",
];

describe("reasons – ledger status to reason", () => {
  it.each(REJECTING)("reasons – %s is %s", (status, reason) => {
    expect(reasonOfStatus(S[status])).toBe(reason);
  });

  it("reasons – every other status is no reason (the caller asserts)", () => {
    const rejecting = new Set<string>(REJECTING.map(([s]) => s));
    const others = ALL_STATUSES.filter((s) => !rejecting.has(s));
    expect(others).toContain("created");
    expect(others).toContain("exists");
    expect(others).toContain("id_already_failed");
    expect(others).toContain("linked_event_failed");
    expect(others).toContain("exceeds_pending_transfer_amount");
    for (const status of others) expect(reasonOfStatus(S[status])).toBeUndefined();
  });

  it("reasons – a number that is no status is no reason", () => {
    expect(reasonOfStatus(-1)).toBeUndefined();
    expect(reasonOfStatus(100_000)).toBeUndefined();
  });
});

describe("reasons – burned ids", () => {
  it.each(TRANSIENT)("reasons – %s burns the id", (status) => {
    expect(burnsId(S[status])).toBe(true);
  });

  it("reasons – no other status burns an id (expired, already posted, overflows and exists leave it free)", () => {
    const transient = new Set<string>(TRANSIENT);
    for (const status of ALL_STATUSES.filter((s) => !transient.has(s)))
      expect(burnsId(S[status])).toBe(false);
    expect(burnsId(S.pending_transfer_expired)).toBe(false);
    expect(burnsId(S.id_already_failed)).toBe(false);
  });

  it("reasons – a debit, hold or transfer is burned only by insufficient funds", () => {
    expect(BURN_REASON.debit).toBe("insufficient_funds");
    expect(BURN_REASON.hold).toBe("insufficient_funds");
    expect(BURN_REASON.transfer).toBe("insufficient_funds");
  });

  it("reasons – a capture or release is burned only by a missing hold", () => {
    expect(BURN_REASON.capture).toBe("hold_not_found");
    expect(BURN_REASON.release).toBe("hold_not_found");
  });

  it("reasons – a credit cannot be burned", () => {
    expect(BURN_REASON.credit).toBeNull();
  });

  it("reasons – every command type has a burn entry", () => {
    expect(Object.keys(BURN_REASON).sort()).toEqual([...COMMAND_TYPES].sort());
  });

  it("reasons – each burn reason is the reason of a transient status", () => {
    const transientReasons = new Set(
      TRANSIENT.map((s) => reasonOfStatus(S[s])).filter((r) => r !== undefined),
    );
    for (const reason of Object.values(BURN_REASON))
      if (reason !== null) expect(transientReasons.has(reason)).toBe(true);
  });
});

describe("reasons – marker codes", () => {
  it("reasons – the reasons are exactly the contract's, in a fixed order", () => {
    expect(REASONS).toEqual([
      "insufficient_funds",
      "hold_not_found",
      "hold_already_captured",
      "hold_already_released",
      "hold_expired",
      "same_user",
      "unknown_currency",
      "invalid_command",
      "amount_overflow",
    ]);
  });

  it("reasons – a marker's code is 100 + the reason's index", () => {
    expect(MARKER_CODE_BASE).toBe(100);
    expect(markerCode("insufficient_funds")).toBe(100);
    expect(markerCode("invalid_command")).toBe(107);
    expect(markerCode("amount_overflow")).toBe(108);
  });

  it.each(REASONS.map((r) => [r]))("reasons – the marker code of %s round-trips", (reason) => {
    expect(reasonOfMarkerCode(markerCode(reason))).toBe(reason);
  });

  it.each([[0], [1], [99], [109], [200], [100.5], [-100]])(
    "reasons – code %d names no reason",
    (code) => {
      expect(reasonOfMarkerCode(code)).toBeUndefined();
    },
  );

  it("reasons – every reason has a non-empty detail", () => {
    for (const reason of REASONS) expect(REASON_DETAIL[reason].length).toBeGreaterThan(0);
  });
});
