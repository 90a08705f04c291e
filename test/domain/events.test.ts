// Proves the event payloads: for each applied event type the keys come in the contract's order
// (event, operationId, command, userId / fromUserId / toUserId / holdId, amount, fee, currency,
// balances, ledgerTimestamp) with decimal-string amounts; a rejected event carries only the
// command's fields, reason and detail (no balances, no timestamp); an expired event has its own
// subject and msgId, no operationId and no balances (expiry writes no balance history); and two
// builds of one event are byte-for-byte equal, including from payloads that spell the same
// command differently.
import { describe, expect, it } from "vitest";
import type { CommandType } from "../../src/domain/commands.ts";
import {
  appliedEvent,
  EVENT_OF,
  expiredEvent,
  rejectedEvent,
  type BalanceLine,
} from "../../src/domain/events.ts";
import { decodeCommandOk, decodeRejected, idOf, uuid } from "./fixture.ts";

const OP = uuid(30);
const HOLD = uuid(31);
const TS = 1_700_000_000_123_456_789n;
const alice: BalanceLine = {
  userId: "alice",
  currency: "EUR",
  posted: 1000n,
  held: 250n,
  available: 750n,
};
const bob: BalanceLine = { userId: "bob", currency: "EUR", posted: 70n, held: 0n, available: 70n };
const aliceJson = {
  userId: "alice",
  currency: "EUR",
  posted: "1000",
  held: "250",
  available: "750",
};
const bobJson = { userId: "bob", currency: "EUR", posted: "70", held: "0", available: "70" };

const text = (data: Uint8Array) => new TextDecoder().decode(data);

function applied(type: CommandType, payload: Record<string, unknown>, balances: BalanceLine[]) {
  const d = decodeCommandOk(type, { operationId: OP, ...payload });
  return appliedEvent(d.operationId, d.type, d.fields, balances, TS);
}

describe("events – applied", () => {
  it("events – credited: keys in contract order, amounts as decimal strings", () => {
    const e = applied("credit", { userId: "alice", amount: 100 }, [alice]);
    expect(e.subject).toBe(`billing.evt.credited.${OP}`);
    expect(e.msgId).toBe(OP);
    expect(Object.keys(e.payload)).toEqual([
      "event",
      "operationId",
      "command",
      "userId",
      "amount",
      "currency",
      "balances",
      "ledgerTimestamp",
    ]);
    expect(e.payload).toEqual({
      event: "credited",
      operationId: OP,
      command: "credit",
      userId: "alice",
      amount: "100",
      currency: "EUR",
      balances: [aliceJson],
      ledgerTimestamp: TS.toString(),
    });
  });

  it("events – debited", () => {
    const e = applied("debit", { userId: "alice", amount: "5", currency: "EUR" }, [alice]);
    expect(e.subject).toBe(`billing.evt.debited.${OP}`);
    expect(e.payload).toMatchObject({ event: "debited", command: "debit", amount: "5" });
  });

  it("events – held carries no timeoutSeconds", () => {
    const e = applied("hold", { userId: "alice", amount: "250", timeoutSeconds: 60 }, [alice]);
    expect(e.subject).toBe(`billing.evt.held.${OP}`);
    expect(Object.keys(e.payload)).toEqual([
      "event",
      "operationId",
      "command",
      "userId",
      "amount",
      "currency",
      "balances",
      "ledgerTimestamp",
    ]);
  });

  it("events – captured and released name the hold", () => {
    for (const [type, event] of [
      ["capture", "captured"],
      ["release", "released"],
    ] as const) {
      const e = applied(type, { holdId: HOLD.toUpperCase() }, [alice]);
      expect(e.subject).toBe(`billing.evt.${event}.${OP}`);
      expect(Object.keys(e.payload)).toEqual([
        "event",
        "operationId",
        "command",
        "holdId",
        "balances",
        "ledgerTimestamp",
      ]);
      expect(e.payload).toMatchObject({ event, command: type, holdId: HOLD });
    }
  });

  it("events – transferred with a fee: both users' balances, in the order given", () => {
    const e = applied(
      "transfer",
      { fromUserId: "alice", toUserId: "bob", amount: "70", fee: "3" },
      [alice, bob],
    );
    expect(e.subject).toBe(`billing.evt.transferred.${OP}`);
    expect(Object.keys(e.payload)).toEqual([
      "event",
      "operationId",
      "command",
      "fromUserId",
      "toUserId",
      "amount",
      "fee",
      "currency",
      "balances",
      "ledgerTimestamp",
    ]);
    expect(e.payload).toMatchObject({
      fromUserId: "alice",
      toUserId: "bob",
      amount: "70",
      fee: "3",
      currency: "EUR",
      balances: [aliceJson, bobJson],
    });
  });

  it("events – transferred without a fee has no fee key", () => {
    expect(
      applied("transfer", { fromUserId: "alice", toUserId: "bob", amount: "70", fee: 0 }, [
        alice,
        bob,
      ]).payload,
    ).not.toHaveProperty("fee");
  });

  it("events – balance lines have keys userId, currency, posted, held, available, as decimal strings", () => {
    const big = (1n << 100n) + 7n;
    const e = applied("credit", { userId: "alice", amount: "1" }, [
      { userId: "alice", currency: "EUR", posted: big, held: 0n, available: big },
    ]);
    const [line] = e.payload["balances"] as Array<Record<string, string>>;
    expect(Object.keys(line ?? {})).toEqual(["userId", "currency", "posted", "held", "available"]);
    expect(line).toEqual({
      userId: "alice",
      currency: "EUR",
      posted: big.toString(),
      held: "0",
      available: big.toString(),
    });
  });

  it("events – an applied event without balances is refused (assertion)", () => {
    expect(() => applied("credit", { userId: "alice", amount: "1" }, [])).toThrow(
      /at least one user account/,
    );
  });

  it("events – the data is the UTF-8 JSON of the payload", () => {
    const e = applied("credit", { userId: "alice", amount: "1" }, [alice]);
    expect(text(e.data)).toBe(JSON.stringify(e.payload));
    expect(JSON.parse(text(e.data))).toEqual(e.payload);
  });

  it("events – an upper-case operationId gives the lower-case subject, msgId and operationId", () => {
    const d = decodeCommandOk("credit", {
      operationId: OP.toUpperCase(),
      userId: "alice",
      amount: "1",
    });
    const e = appliedEvent(d.operationId, d.type, d.fields, [alice], TS);
    expect(e.subject).toBe(`billing.evt.credited.${OP}`);
    expect(e.msgId).toBe(OP);
    expect(e.payload["operationId"]).toBe(OP);
  });

  it("events – every command type has its event name", () => {
    expect(EVENT_OF).toEqual({
      credit: "credited",
      debit: "debited",
      hold: "held",
      capture: "captured",
      release: "released",
      transfer: "transferred",
    });
  });
});

describe("events – rejected", () => {
  it("events – rejected carries the command's fields, reason and detail, and no balances or timestamp", () => {
    const r = decodeRejected("transfer", {
      operationId: OP,
      fromUserId: "alice",
      toUserId: "alice",
      amount: "70",
      fee: "2",
    });
    const e = rejectedEvent(r.operationId, r.type, r.fields, r.reason, r.detail);
    expect(e.subject).toBe(`billing.evt.rejected.${OP}`);
    expect(e.msgId).toBe(OP);
    expect(Object.keys(e.payload)).toEqual([
      "event",
      "operationId",
      "command",
      "fromUserId",
      "toUserId",
      "amount",
      "fee",
      "currency",
      "reason",
      "detail",
    ]);
    expect(e.payload).toEqual({
      event: "rejected",
      operationId: OP,
      command: "transfer",
      fromUserId: "alice",
      toUserId: "alice",
      amount: "70",
      fee: "2",
      currency: "EUR",
      reason: "same_user",
      detail: "fromUserId and toUserId are the same user",
    });
  });

  it("events – a rejected invalid command carries no command fields", () => {
    const r = decodeRejected("credit", { operationId: OP, userId: "alice", amount: "0" });
    const e = rejectedEvent(r.operationId, r.type, r.fields, r.reason, r.detail);
    expect(Object.keys(e.payload)).toEqual(["event", "operationId", "command", "reason", "detail"]);
    expect(e.payload).toMatchObject({ command: "credit", reason: "invalid_command" });
  });

  it("events – a ledger rejection of a valid command carries its fields", () => {
    const d = decodeCommandOk("debit", { operationId: OP, userId: "alice", amount: "5" });
    const e = rejectedEvent(
      d.operationId,
      d.type,
      d.fields,
      "insufficient_funds",
      "the available funds are below the amount",
    );
    expect(e.payload).toEqual({
      event: "rejected",
      operationId: OP,
      command: "debit",
      userId: "alice",
      amount: "5",
      currency: "EUR",
      reason: "insufficient_funds",
      detail: "the available funds are below the amount",
    });
    expect(e.payload).not.toHaveProperty("balances");
    expect(e.payload).not.toHaveProperty("ledgerTimestamp");
  });

  it("events – fields are reordered into contract order whatever order they were given in", () => {
    const e = rejectedEvent(
      idOf(OP),
      "credit",
      { currency: "EUR", amount: "1", userId: "alice" },
      "hold_expired",
      "x",
    );
    expect(Object.keys(e.payload)).toEqual([
      "event",
      "operationId",
      "command",
      "userId",
      "amount",
      "currency",
      "reason",
      "detail",
    ]);
  });
});

describe("events – expired", () => {
  it("events – expired has its own subject and msgId, the holdId, and no operationId, command or balances", () => {
    const e = expiredEvent(idOf(HOLD), { userId: "alice", amount: "250", currency: "EUR" }, TS);
    expect(e.subject).toBe(`billing.evt.expired.${HOLD}`);
    expect(e.msgId).toBe(`expired:${HOLD}`);
    expect(Object.keys(e.payload)).toEqual([
      "event",
      "userId",
      "holdId",
      "amount",
      "currency",
      "ledgerTimestamp",
    ]);
    expect(e.payload).toEqual({
      event: "expired",
      userId: "alice",
      holdId: HOLD,
      amount: "250",
      currency: "EUR",
      ledgerTimestamp: TS.toString(),
    });
  });

  it("events – the holdId of an expired event is the canonical one, whatever the fields say", () => {
    const e = expiredEvent(
      idOf(HOLD),
      { userId: "alice", holdId: HOLD.toUpperCase(), amount: "1", currency: "EUR" },
      TS,
    );
    expect(e.payload["holdId"]).toBe(HOLD);
  });

  it("events – an expired event built from the hold's decoded fields names its user, amount and currency", () => {
    const d = decodeCommandOk("hold", {
      operationId: HOLD.toUpperCase(),
      userId: "alice",
      amount: 250,
      timeoutSeconds: 60,
    });
    const e = expiredEvent(d.operationId, d.fields, TS);
    expect(text(e.data)).toBe(
      `{"event":"expired","userId":"alice","holdId":"${HOLD}","amount":"250","currency":"EUR","ledgerTimestamp":"${TS}"}`,
    );
  });
});

describe("events – determinism", () => {
  it("events – two builds of the same applied event are byte for byte equal", () => {
    const a = applied(
      "transfer",
      { fromUserId: "alice", toUserId: "bob", amount: "70", fee: "3" },
      [alice, bob],
    );
    const b = applied(
      "transfer",
      { fromUserId: "alice", toUserId: "bob", amount: "70", fee: "3" },
      [alice, bob],
    );
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(a.subject).toBe(b.subject);
    expect(a.msgId).toBe(b.msgId);
  });

  it("events – the same command spelled differently yields the same bytes", () => {
    const one = decodeCommandOk("transfer", {
      operationId: OP,
      fromUserId: "alice",
      toUserId: "bob",
      amount: "70",
      fee: 0,
      currency: "EUR",
    });
    const two = decodeCommandOk("transfer", {
      currency: undefined,
      amount: 70,
      toUserId: "bob",
      fromUserId: "alice",
      operationId: OP.toUpperCase(),
    });
    const a = appliedEvent(one.operationId, one.type, one.fields, [alice, bob], TS);
    const b = appliedEvent(two.operationId, two.type, two.fields, [alice, bob], TS);
    expect(text(a.data)).toBe(text(b.data));
  });

  it("events – two builds of the same rejected event are byte for byte equal", () => {
    const build = () => {
      const r = decodeRejected("hold", {
        operationId: OP,
        userId: "alice",
        amount: "1",
        currency: "GBP",
      });
      return rejectedEvent(r.operationId, r.type, r.fields, r.reason, r.detail);
    };
    expect(text(build().data)).toBe(text(build().data));
  });

  it("events – two builds of the same expired event are byte for byte equal", () => {
    const build = () =>
      expiredEvent(idOf(HOLD), { userId: "alice", amount: "250", currency: "EUR" }, TS);
    expect(text(build().data)).toBe(text(build().data));
  });
});
