// Proves that each command becomes exactly the ledger transfers the design names: accounts,
// amounts, ledger, code and flags (pending + timeout for a hold, post/void of exactly the held
// amount, a linked chain with a fee leg under its derived id and no linked flag without a fee),
// every leg tagged with the fingerprint (user_data_128) and command code (user_data_32); and that a
// rejection marker is a zero-amount transfer between the marker accounts whose code names the
// reason. Commands are decoded from payloads, so the plans are those the worker will submit.
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import {
  feeAccountId,
  markerAccountIds,
  settlementAccountId,
  userAccountId,
} from "../../src/domain/accounts.ts";
import { COMMAND_CODES, COMMAND_TYPES } from "../../src/domain/commands.ts";

import {
  isHold,
  isMarker,
  markerTransfer,
  planTransfers,
  touchedUsers,
  TransferCode,
  type HoldFacts,
} from "../../src/domain/plan.ts";
import { REASONS } from "../../src/domain/reasons.ts";
import { at, chart, decodeCommandOk, idOf, uuid } from "./fixture.ts";

const OP = uuid(20);
const HOLD = uuid(21);
const FINGERPRINT = 0x1234_5678_9abc_def0_1122_3344_5566_7788n;

const unused = { pending_id: 0n, user_data_64: chart.space.tag, timestamp: 0n };

function plan(
  type: Parameters<typeof decodeCommandOk>[0],
  payload: Record<string, unknown>,
  hold: HoldFacts | null = null,
): Transfer[] {
  const d = decodeCommandOk(type, { operationId: OP, ...payload });
  return planTransfers(chart, d.command, FINGERPRINT, hold);
}

const holdFacts: HoldFacts = {
  id: idOf(HOLD),
  debitAccountId: userAccountId(chart.space, 978, "alice"),
  amount: 250n,
  ledger: 978,
};

describe("plan – credit, debit, hold", () => {
  it("plan – a credit moves the amount from settlement to the user", () => {
    const legs = plan("credit", { userId: "alice", amount: "100" });
    expect(legs).toEqual([
      {
        id: idOf(OP),
        debit_account_id: settlementAccountId(chart.space, 978),
        credit_account_id: userAccountId(chart.space, 978, "alice"),
        amount: 100n,
        ledger: 978,
        code: TransferCode.credit,
        flags: TransferFlags.none,
        timeout: 0,
        user_data_128: FINGERPRINT,
        user_data_32: COMMAND_CODES.credit,
        ...unused,
      },
    ]);
  });

  it("plan – a debit moves the amount from the user to settlement, final at once", () => {
    const legs = plan("debit", { userId: "alice", amount: "40", currency: "USD" });
    expect(legs).toEqual([
      {
        id: idOf(OP),
        debit_account_id: userAccountId(chart.space, 840, "alice"),
        credit_account_id: settlementAccountId(chart.space, 840),
        amount: 40n,
        ledger: 840,
        code: TransferCode.debit,
        flags: TransferFlags.none,
        timeout: 0,
        user_data_128: FINGERPRINT,
        user_data_32: COMMAND_CODES.debit,
        ...unused,
      },
    ]);
  });

  it("plan – a hold is a pending debit of the user with the command's timeout", () => {
    const legs = plan("hold", { userId: "alice", amount: "250", timeoutSeconds: 900 });
    expect(legs).toEqual([
      {
        id: idOf(OP),
        debit_account_id: userAccountId(chart.space, 978, "alice"),
        credit_account_id: settlementAccountId(chart.space, 978),
        amount: 250n,
        ledger: 978,
        code: TransferCode.hold,
        flags: TransferFlags.pending,
        timeout: 900,
        user_data_128: FINGERPRINT,
        user_data_32: COMMAND_CODES.hold,
        ...unused,
      },
    ]);
  });

  it("plan – a hold without timeoutSeconds is pending with timeout 0 (no expiry)", () => {
    expect(at(plan("hold", { userId: "alice", amount: "1" }), 0)).toMatchObject({
      flags: TransferFlags.pending,
      timeout: 0,
    });
  });
});

describe("plan – capture and release", () => {
  it("plan – a capture posts the hold with exactly the held amount", () => {
    const legs = plan("capture", { holdId: HOLD }, holdFacts);
    expect(legs).toEqual([
      {
        id: idOf(OP),
        pending_id: idOf(HOLD),
        amount: 250n,
        flags: TransferFlags.post_pending_transfer,
        debit_account_id: 0n,
        credit_account_id: 0n,
        ledger: 0,
        code: 0,
        timeout: 0,
        user_data_128: FINGERPRINT,
        user_data_64: chart.space.tag,
        user_data_32: COMMAND_CODES.capture,
        timestamp: 0n,
      },
    ]);
  });

  it("plan – a release voids the hold with exactly the held amount", () => {
    const legs = plan("release", { holdId: HOLD }, holdFacts);
    expect(legs).toEqual([
      {
        id: idOf(OP),
        pending_id: idOf(HOLD),
        amount: 250n,
        flags: TransferFlags.void_pending_transfer,
        debit_account_id: 0n,
        credit_account_id: 0n,
        ledger: 0,
        code: 0,
        timeout: 0,
        user_data_128: FINGERPRINT,
        user_data_64: chart.space.tag,
        user_data_32: COMMAND_CODES.release,
        timestamp: 0n,
      },
    ]);
  });

  it("plan – the held amount is used even at its extremes (1 and 2^63 − 1), never amount_max or 0", () => {
    for (const amount of [1n, (1n << 63n) - 1n]) {
      expect(at(plan("capture", { holdId: HOLD }, { ...holdFacts, amount }), 0).amount).toBe(
        amount,
      );
      expect(at(plan("release", { holdId: HOLD }, { ...holdFacts, amount }), 0).amount).toBe(
        amount,
      );
    }
  });

  it("plan – a capture or release without its hold is refused (assertion)", () => {
    expect(() => plan("capture", { holdId: HOLD }, null)).toThrow(/with its hold/);
    expect(() => plan("release", { holdId: HOLD }, null)).toThrow(/with its hold/);
  });

  it("plan – a capture with another hold's facts is refused (assertion)", () => {
    expect(() => plan("capture", { holdId: HOLD }, { ...holdFacts, id: idOf(uuid(99)) })).toThrow(
      /with its hold/,
    );
  });
});

describe("plan – transfer", () => {
  it("plan – a transfer without fee is one unlinked leg from sender to receiver", () => {
    const legs = plan("transfer", { fromUserId: "alice", toUserId: "bob", amount: "70" });
    expect(legs).toEqual([
      {
        id: idOf(OP),
        debit_account_id: userAccountId(chart.space, 978, "alice"),
        credit_account_id: userAccountId(chart.space, 978, "bob"),
        amount: 70n,
        ledger: 978,
        code: TransferCode.transfer,
        flags: TransferFlags.none,
        timeout: 0,
        user_data_128: FINGERPRINT,
        user_data_32: COMMAND_CODES.transfer,
        ...unused,
      },
    ]);
  });

  it("plan – a transfer with fee 0 has no linked flag and no fee leg", () => {
    const legs = plan("transfer", { fromUserId: "alice", toUserId: "bob", amount: "70", fee: 0 });
    expect(legs).toHaveLength(1);
    expect(at(legs, 0).flags & TransferFlags.linked).toBe(0);
  });

  it("plan – a transfer with a fee is a linked chain: the main leg, then the fee leg under its derived id", () => {
    const legs = plan("transfer", {
      fromUserId: "alice",
      toUserId: "bob",
      amount: "70",
      fee: "3",
      currency: "USD",
    });
    expect(legs).toHaveLength(2);
    const [main, fee] = [at(legs, 0), at(legs, 1)];
    expect(main).toEqual({
      id: idOf(OP),
      debit_account_id: userAccountId(chart.space, 840, "alice"),
      credit_account_id: userAccountId(chart.space, 840, "bob"),
      amount: 70n,
      ledger: 840,
      code: TransferCode.transfer,
      flags: TransferFlags.linked,
      timeout: 0,
      user_data_128: FINGERPRINT,
      user_data_32: COMMAND_CODES.transfer,
      ...unused,
    });
    expect(fee).toEqual({
      id: chart.space.feeLegId(idOf(OP)),
      debit_account_id: userAccountId(chart.space, 840, "alice"),
      credit_account_id: feeAccountId(chart.space, 840),
      amount: 3n,
      ledger: 840,
      code: TransferCode.fee,
      flags: TransferFlags.none,
      timeout: 0,
      user_data_128: FINGERPRINT,
      user_data_32: COMMAND_CODES.transfer,
      ...unused,
    });
  });

  it("plan – the last leg of a chain is never linked (an open chain would fail as linked_event_chain_open)", () => {
    const legs = plan("transfer", { fromUserId: "alice", toUserId: "bob", amount: "1", fee: "1" });
    expect(at(legs, legs.length - 1).flags & TransferFlags.linked).toBe(0);
  });
});

describe("plan – every leg", () => {
  const cases: Array<[string, Transfer[]]> = [
    ["credit", plan("credit", { userId: "u", amount: "1" })],
    ["debit", plan("debit", { userId: "u", amount: "1" })],
    ["hold", plan("hold", { userId: "u", amount: "1", timeoutSeconds: 5 })],
    ["capture", plan("capture", { holdId: HOLD }, holdFacts)],
    ["release", plan("release", { holdId: HOLD }, holdFacts)],
    ["transfer", plan("transfer", { fromUserId: "u", toUserId: "v", amount: "1", fee: "1" })],
  ];

  it.each(cases)(
    "plan – every leg of a %s carries the fingerprint, the deployment's tag and the command code",
    (type, legs) => {
      const code = COMMAND_CODES[type as keyof typeof COMMAND_CODES];
      for (const leg of legs) {
        expect(leg.user_data_128).toBe(FINGERPRINT);
        expect(leg.user_data_32).toBe(code);
        expect(leg.user_data_64).toBe(chart.space.tag);
        expect(leg.timestamp).toBe(0n);
      }
    },
  );

  it.each(cases)("plan – the first leg of a %s is the operation id", (_type, legs) => {
    expect(at(legs, 0).id).toBe(idOf(OP));
  });

  it.each(cases.filter(([t]) => t !== "capture" && t !== "release"))(
    "plan – every leg of a %s is balanced double entry on one ledger",
    (_type, legs) => {
      for (const leg of legs) {
        expect(leg.debit_account_id).not.toBe(leg.credit_account_id);
        expect(leg.debit_account_id).not.toBe(0n);
        expect(leg.credit_account_id).not.toBe(0n);
        expect(leg.ledger).toBe(978);
        expect(leg.amount).toBeGreaterThan(0n);
        expect(leg.pending_id).toBe(0n);
      }
    },
  );

  it("plan – command codes are distinct and cover every command type", () => {
    expect(Object.keys(COMMAND_CODES).sort()).toEqual([...COMMAND_TYPES].sort());
    expect(new Set(Object.values(COMMAND_CODES)).size).toBe(COMMAND_TYPES.length);
  });

  it("plan – transfer codes are distinct, non-zero, and none is a marker code", () => {
    const codes = Object.values(TransferCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code > 0 && code < 100).toBe(true);
  });
});

describe("plan – markers", () => {
  const marker = markerAccountIds(chart.space, chart.markerLedger);

  it.each(REASONS.map((r, i) => [r, i] as const))(
    "plan – a %s marker is a zero-amount transfer on the marker ledger with code 100 + %i",
    (reason, index) => {
      const t = markerTransfer(chart, idOf(OP), "debit", reason, FINGERPRINT);
      expect(t).toEqual({
        id: idOf(OP),
        debit_account_id: marker.debit,
        credit_account_id: marker.credit,
        amount: 0n,
        pending_id: 0n,
        user_data_128: FINGERPRINT,
        user_data_64: chart.space.tag,
        user_data_32: COMMAND_CODES.debit,
        timeout: 0,
        ledger: chart.markerLedger,
        code: 100 + index,
        flags: TransferFlags.none,
        timestamp: 0n,
      });
    },
  );

  it("plan – a marker carries the command code of its command type", () => {
    for (const type of COMMAND_TYPES) {
      expect(markerTransfer(chart, 5n, type, "invalid_command", FINGERPRINT).user_data_32).toBe(
        COMMAND_CODES[type],
      );
    }
  });

  it("plan – a marker is a marker and not a hold", () => {
    const t = markerTransfer(chart, idOf(OP), "hold", "insufficient_funds", FINGERPRINT);
    expect(isMarker(chart, t)).toBe(true);
    expect(isHold(chart, t)).toBe(false);
  });
});

describe("plan – recognising stored transfers", () => {
  it("plan – a planned hold is a hold; a debit, a credit, a capture and a fee leg are not", () => {
    expect(isHold(chart, at(plan("hold", { userId: "u", amount: "1" }), 0))).toBe(true);
    expect(isHold(chart, at(plan("debit", { userId: "u", amount: "1" }), 0))).toBe(false);
    expect(isHold(chart, at(plan("credit", { userId: "u", amount: "1" }), 0))).toBe(false);
    // As stored, a post inherits the hold's code and ledger but is not pending.
    const post = {
      ...at(plan("capture", { holdId: HOLD }, holdFacts), 0),
      code: TransferCode.hold,
      ledger: 978,
    };
    expect(isHold(chart, post)).toBe(false);
    expect(
      isHold(
        chart,
        at(plan("transfer", { fromUserId: "u", toUserId: "v", amount: "1", fee: "1" }), 1),
      ),
    ).toBe(false);
  });

  it("plan – a pending transfer with another code, or on the marker ledger, is not a hold", () => {
    const hold = at(plan("hold", { userId: "u", amount: "1" }), 0);
    expect(isHold(chart, { ...hold, code: TransferCode.debit })).toBe(false);
    expect(isHold(chart, { ...hold, ledger: chart.markerLedger })).toBe(false);
  });

  it("plan – only transfers on the marker ledger are markers", () => {
    expect(isMarker(chart, at(plan("credit", { userId: "u", amount: "1" }), 0))).toBe(false);
  });
});

describe("plan – touched users", () => {
  it("plan – credit, debit and hold touch their user; a transfer touches both; capture and release name none", () => {
    const cmd = (type: Parameters<typeof decodeCommandOk>[0], payload: Record<string, unknown>) =>
      decodeCommandOk(type, { operationId: OP, ...payload }).command;
    expect(touchedUsers(cmd("credit", { userId: "a", amount: "1" }))).toEqual([
      { ledger: 978, userId: "a" },
    ]);
    expect(touchedUsers(cmd("debit", { userId: "a", amount: "1", currency: "USD" }))).toEqual([
      { ledger: 840, userId: "a" },
    ]);
    expect(touchedUsers(cmd("hold", { userId: "a", amount: "1" }))).toEqual([
      { ledger: 978, userId: "a" },
    ]);
    expect(touchedUsers(cmd("transfer", { fromUserId: "a", toUserId: "b", amount: "1" }))).toEqual([
      { ledger: 978, userId: "a" },
      { ledger: 978, userId: "b" },
    ]);
    expect(touchedUsers(cmd("capture", { holdId: HOLD }))).toEqual([]);
    expect(touchedUsers(cmd("release", { holdId: HOLD }))).toEqual([]);
  });
});
