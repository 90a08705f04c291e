// Proves the first half of a resolve pass: lookupIds names every id the pass must read, and
// decide() turns what the ledger holds (a synthetic `found` map, built from real plans and markers
// with timestamps, as lookup_transfers would return them) into exactly one of: a verdict now
// (applied replay, rejected replay, conflict, wait), a plan to submit, or a marker to write.
// Covered: new operations, replays with the same fingerprint (own id, fee leg, burned marker),
// conflicts, pre-ledger rejections, captures and releases against a stored hold, a non-hold, a
// hold planned in the same pass (in either input order) and a missing hold on both sides of the
// grace period.
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import { userAccountId } from "../../src/domain/accounts.ts";
import type { Command } from "../../src/domain/commands.ts";
import { formatOperationId } from "../../src/domain/ids.ts";
import {
  markerTransfer,
  planTransfers,
  TransferCode,
  type HoldFacts,
} from "../../src/domain/plan.ts";
import { REASON_DETAIL } from "../../src/domain/reasons.ts";
import { decide, lookupIds, type Clock, type Operation } from "../../src/domain/resolve.ts";
import { at, chart, idOf, operation, stored, uuid } from "./fixture.ts";

const GRACE_MS = 5_000;
const PUBLISHED_MS = 1_000_000;
const within: Clock = { nowMs: PUBLISHED_MS + 10, holdGraceMs: GRACE_MS };
const after: Clock = { nowMs: PUBLISHED_MS + GRACE_MS + 10, holdGraceMs: GRACE_MS };

const OP = uuid(40);
const HOLD = uuid(41);
const OTHER = uuid(42);

function commandOf(op: Operation): Command {
  if (op.decoded.kind !== "command") throw new Error("fixture operation is not a command");
  return op.decoded.command;
}

/** The transfers an operation's plan would write, as the ledger stores them after success. */
function recordedPlan(
  op: Operation,
  firstTimestamp: bigint,
  hold: HoldFacts | null = null,
): Transfer[] {
  return planTransfers(chart, commandOf(op), op.decoded.fingerprint, hold).map((t, i) =>
    stored(t, firstTimestamp + BigInt(i)),
  );
}

function foundOf(...transfers: Transfer[]): Map<bigint, Transfer> {
  return new Map(transfers.map((t) => [t.id, t]));
}

const credit = () =>
  operation("credit", { operationId: OP, userId: "alice", amount: "100" }, PUBLISHED_MS);
const hold = (amount = "250") =>
  operation(
    "hold",
    { operationId: HOLD, userId: "alice", amount, timeoutSeconds: 60 },
    PUBLISHED_MS,
  );
const capture = (holdId = HOLD) => operation("capture", { operationId: OP, holdId }, PUBLISHED_MS);
const release = (holdId = HOLD) => operation("release", { operationId: OP, holdId }, PUBLISHED_MS);
const transferWithFee = () =>
  operation(
    "transfer",
    { operationId: OP, fromUserId: "alice", toUserId: "bob", amount: "70", fee: "3" },
    PUBLISHED_MS,
  );

function holdFactsOf(holdOp: Operation): HoldFacts {
  const c = commandOf(holdOp);
  if (c.type !== "hold") throw new Error("not a hold");
  return {
    id: c.operationId,
    debitAccountId: userAccountId(chart.space, c.currency.ledger, c.userId),
    amount: c.amount,
    ledger: c.currency.ledger,
  };
}

describe("resolve – lookupIds", () => {
  it("resolve – an operation is looked up under its own, burned-marker and fee-leg ids", () => {
    const op = credit();
    expect(lookupIds(chart, [op])).toEqual(chart.space.operationLookupIds(op.id));
  });

  it("resolve – a capture or release also looks up its hold and the hold's burned marker", () => {
    expect(lookupIds(chart, [capture()])).toEqual([
      ...chart.space.operationLookupIds(idOf(OP)),
      idOf(HOLD),
      chart.space.burnedMarkerId(idOf(HOLD)),
    ]);
    expect(lookupIds(chart, [release()])).toEqual([
      ...chart.space.operationLookupIds(idOf(OP)),
      idOf(HOLD),
      chart.space.burnedMarkerId(idOf(HOLD)),
    ]);
  });

  it("resolve – a capture of a hold rejected with a burned id is hold_not_found at once, without waiting", () => {
    const c = capture();
    const rejectedHold = markerTransfer(
      chart,
      chart.space.burnedMarkerId(idOf(HOLD)),
      "hold",
      "insufficient_funds",
      1n,
    );
    const d = decide(chart, [c], new Map([[rejectedHold.id, rejectedHold]]), within);
    expect(d.markers.map((m) => m.reason)).toEqual(["hold_not_found"]);
    expect(d.verdicts.size).toBe(0);
  });

  it("resolve – a capture rejected before the ledger does not look up a hold", () => {
    const invalid = operation("capture", { operationId: OP, holdId: "nope" });
    expect(lookupIds(chart, [invalid])).toEqual(chart.space.operationLookupIds(idOf(OP)));
  });

  it("resolve – ids of several operations come in input order", () => {
    const ops = [hold(), capture()];
    expect(lookupIds(chart, ops)).toEqual([
      ...chart.space.operationLookupIds(idOf(HOLD)),
      ...chart.space.operationLookupIds(idOf(OP)),
      idOf(HOLD),
      chart.space.burnedMarkerId(idOf(HOLD)),
    ]);
  });

  it("resolve – no operations, no ids", () => {
    expect(lookupIds(chart, [])).toEqual([]);
  });
});

describe("resolve – decide: new and recorded operations", () => {
  it("resolve – a new operation gets its plan and no verdict", () => {
    const op = credit();
    const d = decide(chart, [op], new Map(), within);
    expect(d.verdicts.size).toBe(0);
    expect(d.markers).toEqual([]);
    expect(d.plans).toEqual([
      {
        op,
        transfers: planTransfers(chart, commandOf(op), op.decoded.fingerprint, null),
        hold: null,
      },
    ]);
  });

  it("resolve – a recorded operation with the same fingerprint is an applied replay with its timestamp", () => {
    const op = credit();
    const d = decide(chart, [op], foundOf(...recordedPlan(op, 500n)), within);
    expect(d.plans).toEqual([]);
    expect(d.markers).toEqual([]);
    expect(d.verdicts.get(op.id)).toEqual({
      kind: "applied",
      replay: true,
      timestamps: [500n],
      hold: null,
      ledger: 978,
    });
  });

  it("resolve – a recorded transfer with a fee replays with the fee leg's timestamp too", () => {
    const op = transferWithFee();
    const legs = recordedPlan(op, 700n);
    expect(at(legs, 1).id).toBe(chart.space.feeLegId(op.id));
    expect(decide(chart, [op], foundOf(...legs), within).verdicts.get(op.id)).toEqual({
      kind: "applied",
      replay: true,
      timestamps: [700n, 701n],
      hold: null,
      ledger: 978,
    });
  });

  it("resolve – a recorded capture replays with the facts of its hold", () => {
    const h = hold();
    const op = capture();
    const storedHold = at(recordedPlan(h, 10n), 0);
    const storedPost = at(recordedPlan(op, 20n, holdFactsOf(h)), 0);
    const verdict = decide(chart, [op], foundOf(storedHold, storedPost), within).verdicts.get(
      op.id,
    );
    // ledger 0: the post as submitted; a real ledger stores the hold's ledger on it.
    expect(verdict).toEqual({
      kind: "applied",
      replay: true,
      timestamps: [20n],
      hold: holdFactsOf(h),
      ledger: 0,
    });
  });

  it("resolve – a recorded hold replays as applied without hold facts", () => {
    const h = hold();
    expect(decide(chart, [h], foundOf(...recordedPlan(h, 10n)), within).verdicts.get(h.id)).toEqual(
      { kind: "applied", replay: true, timestamps: [10n], hold: null, ledger: 978 },
    );
  });

  it("resolve – a marker with the same fingerprint at the own id is a rejected replay with the marker's reason", () => {
    const op = credit();
    const marker = stored(
      markerTransfer(chart, op.id, "credit", "amount_overflow", op.decoded.fingerprint),
      9n,
    );
    expect(decide(chart, [op], foundOf(marker), within).verdicts.get(op.id)).toEqual({
      kind: "rejected",
      replay: true,
      reason: "amount_overflow",
      detail: REASON_DETAIL.amount_overflow,
    });
  });

  it("resolve – a marker with the same fingerprint at the burned-marker id is a rejected replay", () => {
    const op = operation("debit", { operationId: OP, userId: "alice", amount: "100" });
    const marker = stored(
      markerTransfer(
        chart,
        chart.space.burnedMarkerId(op.id),
        "debit",
        "insufficient_funds",
        op.decoded.fingerprint,
      ),
      9n,
    );
    const d = decide(chart, [op], foundOf(marker), within);
    expect(d.plans).toEqual([]);
    expect(d.verdicts.get(op.id)).toEqual({
      kind: "rejected",
      replay: true,
      reason: "insufficient_funds",
      detail: REASON_DETAIL.insufficient_funds,
    });
  });

  it("resolve – a replayed pre-ledger rejection keeps its decoding detail", () => {
    const op = operation("credit", { operationId: OP, userId: "alice", amount: "1", note: "x" });
    if (op.decoded.kind !== "rejected") throw new Error("fixture");
    const marker = stored(
      markerTransfer(chart, op.id, "credit", "invalid_command", op.decoded.fingerprint),
      9n,
    );
    expect(decide(chart, [op], foundOf(marker), within).verdicts.get(op.id)).toEqual({
      kind: "rejected",
      replay: true,
      reason: "invalid_command",
      detail: op.decoded.detail,
    });
  });

  it("resolve – a transfer with another fingerprint under the own id is a conflict", () => {
    const op = credit();
    const other = operation("credit", { operationId: OP, userId: "alice", amount: "101" });
    const d = decide(chart, [op], foundOf(...recordedPlan(other, 5n)), within);
    expect(d.verdicts.get(op.id)).toMatchObject({
      kind: "conflict",
      detail: expect.stringMatching(/already used/),
    });
    expect(d.plans).toEqual([]);
    expect(d.markers).toEqual([]);
  });

  it("resolve – a marker with another fingerprint under the own id is a conflict", () => {
    const op = credit();
    const marker = stored(markerTransfer(chart, op.id, "credit", "invalid_command", 123n), 9n);
    expect(decide(chart, [op], foundOf(marker), within).verdicts.get(op.id)).toMatchObject({
      kind: "conflict",
    });
  });

  it("resolve – a burned marker with another fingerprint is a conflict", () => {
    const op = credit();
    const marker = stored(
      markerTransfer(chart, chart.space.burnedMarkerId(op.id), "debit", "insufficient_funds", 123n),
      9n,
    );
    expect(decide(chart, [op], foundOf(marker), within).verdicts.get(op.id)).toMatchObject({
      kind: "conflict",
      detail: expect.stringMatching(/burned/),
    });
  });

  it("resolve – a pre-ledger rejection whose id another command used is a conflict, not a marker", () => {
    const op = operation("credit", {
      operationId: OP,
      userId: "alice",
      amount: "1",
      currency: "GBP",
    });
    const d = decide(chart, [op], foundOf(...recordedPlan(credit(), 5n)), within);
    expect(d.verdicts.get(op.id)).toMatchObject({ kind: "conflict" });
    expect(d.markers).toEqual([]);
  });

  it("resolve – a marker with an unknown code is a conflict naming the code, never an assertion", () => {
    const op = credit();
    const marker = stored(
      {
        ...markerTransfer(chart, op.id, "credit", "invalid_command", op.decoded.fingerprint),
        code: 99,
      },
      9n,
    );
    expect(decide(chart, [op], foundOf(marker), within).verdicts.get(op.id)).toEqual({
      kind: "conflict",
      detail: "operationId holds a marker with unknown code 99",
    });
  });
});

describe("resolve – decide: pre-ledger rejections", () => {
  it.each([
    ["invalid_command", "credit", { operationId: OP, userId: "alice", amount: "0" }],
    [
      "unknown_currency",
      "debit",
      { operationId: OP, userId: "alice", amount: "1", currency: "GBP" },
    ],
    ["same_user", "transfer", { operationId: OP, fromUserId: "a", toUserId: "a", amount: "1" }],
  ] as const)(
    "resolve – a %s rejection becomes a marker at the operation id",
    (reason, type, payload) => {
      const op = operation(type, payload);
      if (op.decoded.kind !== "rejected") throw new Error("fixture");
      const d = decide(chart, [op], new Map(), within);
      expect(d.plans).toEqual([]);
      expect(d.verdicts.size).toBe(0);
      expect(d.markers).toEqual([
        {
          op,
          reason,
          detail: op.decoded.detail,
          burned: false,
          transfer: markerTransfer(chart, op.id, type, reason, op.decoded.fingerprint),
        },
      ]);
    },
  );
});

describe("resolve – decide: captures and releases", () => {
  it("resolve – a capture whose hold is stored is planned with exactly the held amount", () => {
    const h = hold("250");
    const op = capture();
    const storedHold = at(recordedPlan(h, 10n), 0);
    const d = decide(chart, [op], foundOf(storedHold), within);
    expect(d.markers).toEqual([]);
    expect(d.verdicts.size).toBe(0);
    const plan = at(d.plans, 0);
    expect(plan.hold).toEqual({
      id: idOf(HOLD),
      debitAccountId: userAccountId(chart.space, 978, "alice"),
      amount: 250n,
      ledger: 978,
    });
    expect(plan.transfers).toEqual(
      planTransfers(chart, commandOf(op), op.decoded.fingerprint, plan.hold),
    );
    expect(at(plan.transfers, 0)).toMatchObject({
      pending_id: idOf(HOLD),
      amount: 250n,
      flags: TransferFlags.post_pending_transfer,
    });
  });

  it("resolve – a release whose hold is stored is planned as a void of the held amount", () => {
    const storedHold = at(recordedPlan(hold("33"), 10n), 0);
    const plan = at(decide(chart, [release()], foundOf(storedHold), within).plans, 0);
    expect(at(plan.transfers, 0)).toMatchObject({
      pending_id: idOf(HOLD),
      amount: 33n,
      flags: TransferFlags.void_pending_transfer,
    });
  });

  it("resolve – a capture of a hold that is stored but already posted is still planned (the ledger decides)", () => {
    const storedHold = at(recordedPlan(hold(), 10n), 0);
    expect(decide(chart, [capture()], foundOf(storedHold), within).plans).toHaveLength(1);
  });

  it.each([
    [
      "a debit",
      () =>
        at(
          recordedPlan(
            operation("debit", { operationId: OTHER, userId: "alice", amount: "5" }),
            3n,
          ),
          0,
        ),
    ],
    [
      "a credit",
      () =>
        at(
          recordedPlan(
            operation("credit", { operationId: OTHER, userId: "alice", amount: "5" }),
            3n,
          ),
          0,
        ),
    ],
    [
      "a rejected hold's marker",
      () => {
        const h = operation("hold", {
          operationId: OTHER,
          userId: "alice",
          amount: "5",
          currency: "GBP",
        });
        return stored(
          markerTransfer(chart, h.id, "hold", "unknown_currency", h.decoded.fingerprint),
          3n,
        );
      },
    ],
    [
      "a capture (a post, which inherits the hold's code)",
      () => ({
        ...at(
          recordedPlan(operation("capture", { operationId: OTHER, holdId: HOLD }), 3n, {
            id: idOf(HOLD),
            debitAccountId: 1n,
            amount: 5n,
            ledger: 978,
          }),
          0,
        ),
        code: TransferCode.hold,
        ledger: 978,
      }),
    ],
    [
      "a fee leg",
      () =>
        at(
          recordedPlan(
            operation("transfer", {
              operationId: uuid(43),
              fromUserId: "a",
              toUserId: "b",
              amount: "5",
              fee: "1",
            }),
            3n,
          ),
          1,
        ),
    ],
  ])(
    "resolve – a capture whose holdId names %s is a hold_not_found marker at once, even within the grace",
    (_what, make) => {
      const named = make();
      const op = capture(formatOperationId(named.id));
      const d = decide(chart, [op], foundOf(named), within);
      expect(d.plans).toEqual([]);
      expect(d.verdicts.size).toBe(0);
      expect(d.markers).toEqual([
        {
          op,
          reason: "hold_not_found",
          detail: REASON_DETAIL.hold_not_found,
          burned: false,
          transfer: markerTransfer(
            chart,
            op.id,
            "capture",
            "hold_not_found",
            op.decoded.fingerprint,
          ),
        },
      ]);
    },
  );

  it("resolve – a capture of a hold planned in the same pass is decided next pass, never posted against the unstored hold", () => {
    const h = hold("250");
    const op = capture();
    const d = decide(chart, [op, h], new Map(), within);
    expect(d.verdicts.size).toBe(0);
    expect(d.markers).toEqual([]);
    expect(d.plans.map((p) => p.op)).toEqual([h]);
    expect(d.retry).toEqual([op]);
    // Next pass, with the hold stored: planned with exactly the stored amount.
    const next = decide(
      chart,
      [op],
      new Map([[idOf(HOLD), { ...at(at(d.plans, 0).transfers, 0), timestamp: 5n }]]),
      within,
    );
    expect(at(at(next.plans, 0).transfers, 0)).toMatchObject({
      pending_id: idOf(HOLD),
      amount: 250n,
    });
    expect(at(next.plans, 0).hold).toEqual(holdFactsOf(h));
  });

  it("resolve – a release of a hold planned in the same pass waits for the next pass too", () => {
    const h = hold("9");
    const r = release();
    const d = decide(chart, [r, h], new Map(), within);
    expect(d.plans.map((p) => p.op.id)).toEqual([idOf(HOLD)]);
    expect(d.retry).toEqual([r]);
  });

  it("resolve – a capture with no hold inside the grace period waits", () => {
    const op = capture();
    const d = decide(chart, [op], new Map(), within);
    expect(d.plans).toEqual([]);
    expect(d.markers).toEqual([]);
    expect(d.verdicts.get(op.id)).toMatchObject({ kind: "wait" });
  });

  it("resolve – a capture with no hold waits until one millisecond before the grace ends, and is hold_not_found at the grace", () => {
    const op = capture();
    const justBefore = decide(chart, [op], new Map(), {
      nowMs: PUBLISHED_MS + GRACE_MS - 1,
      holdGraceMs: GRACE_MS,
    });
    expect(justBefore.verdicts.get(op.id)).toMatchObject({ kind: "wait" });
    const atGrace = decide(chart, [op], new Map(), {
      nowMs: PUBLISHED_MS + GRACE_MS,
      holdGraceMs: GRACE_MS,
    });
    expect(atGrace.verdicts.size).toBe(0);
    expect(atGrace.markers).toMatchObject([{ op, reason: "hold_not_found", burned: false }]);
  });

  it("resolve – a capture with no hold after the grace period is a hold_not_found marker at the operation id", () => {
    const op = release();
    const d = decide(chart, [op], new Map(), after);
    expect(d.markers).toEqual([
      {
        op,
        reason: "hold_not_found",
        detail: REASON_DETAIL.hold_not_found,
        burned: false,
        transfer: markerTransfer(chart, op.id, "release", "hold_not_found", op.decoded.fingerprint),
      },
    ]);
  });

  it("resolve – a capture whose hold op is only rejected before the ledger in the same pass waits (the marker is not a hold yet)", () => {
    const h = operation(
      "hold",
      { operationId: HOLD, userId: "alice", amount: "5", currency: "GBP" },
      PUBLISHED_MS,
    );
    const d = decide(chart, [h, capture()], new Map(), within);
    expect(d.verdicts.get(idOf(OP))).toMatchObject({ kind: "wait" });
    expect(d.markers.map((m) => m.op)).toEqual([h]);
  });

  it("resolve – two captures of one stored hold are both planned (the ledger lets one win)", () => {
    const storedHold = at(recordedPlan(hold(), 10n), 0);
    const a = capture();
    const b = operation("release", { operationId: OTHER, holdId: HOLD }, PUBLISHED_MS);
    expect(decide(chart, [a, b], foundOf(storedHold), within).plans.map((p) => p.op)).toEqual([
      a,
      b,
    ]);
  });
});

describe("resolve – decide: a mixed pass", () => {
  it("resolve – one pass yields verdicts, plans and markers side by side, each operation once", () => {
    const replayed = credit();
    const fresh = operation("debit", { operationId: uuid(46), userId: "bob", amount: "1" });
    const invalid = operation("credit", { operationId: uuid(47), userId: "bob", amount: "0" });
    const waiting = operation("capture", { operationId: uuid(48), holdId: uuid(49) }, PUBLISHED_MS);
    const d = decide(
      chart,
      [replayed, fresh, invalid, waiting],
      foundOf(...recordedPlan(replayed, 1n)),
      within,
    );
    expect([...d.verdicts.keys()].sort()).toEqual([replayed.id, waiting.id].sort());
    expect(d.plans.map((p) => p.op)).toEqual([fresh]);
    expect(d.markers.map((m) => m.op)).toEqual([invalid]);
  });
});
