// Proves that decodeCommand parses the contract's six command payloads strictly and sorts every
// message into exactly one of three outcomes: malformed (no operation at all: dead letter),
// rejected before the ledger (an operation with a reason), or a command ready to plan. Each schema
// edge of the contract (amounts, fees, userIds, UUIDs, currencies, timeouts, payload size) is
// exercised on both sides of its limit. Fingerprints have their own file (fingerprint.test.ts).
import { describe, expect, it } from "vitest";
import {
  COMMAND_TYPES,
  decodeCommand,
  fastParseForTest,
  schemaParse,
} from "../../src/domain/commands.ts";
import { MONEY_MAX } from "../../src/domain/money.ts";
import {
  EUR,
  USD,
  bytes,
  chart,
  decode,
  decodeCommandOk,
  decodeMalformed,
  decodeRejected,
  idOf,
  limits,
  MONEY_MAX_TEXT,
  MONEY_OVER_TEXT,
  randomInt,
  seeded,
  uuid,
} from "./fixture.ts";

const OP = uuid(1);
const HOLD = uuid(2);
const credit = (fields: Record<string, unknown>) => ({
  operationId: OP,
  userId: "alice",
  amount: "100",
  ...fields,
});
const transfer = (fields: Record<string, unknown>) => ({
  operationId: OP,
  fromUserId: "alice",
  toUserId: "bob",
  amount: "100",
  ...fields,
});

describe("decode – every command type", () => {
  it("decode – a credit becomes a credit command in the default currency", () => {
    const d = decodeCommandOk("credit", { operationId: OP, userId: "alice", amount: "100" });
    expect(d.operationId).toBe(idOf(OP));
    expect(d.type).toBe("credit");
    expect(d.command).toEqual({
      type: "credit",
      operationId: idOf(OP),
      userId: "alice",
      amount: 100n,
      currency: EUR,
    });
    expect(d.fields).toEqual({ userId: "alice", amount: "100", currency: "EUR" });
  });

  it("decode – a debit becomes a debit command", () => {
    const d = decodeCommandOk("debit", {
      operationId: OP,
      userId: "alice",
      amount: 7,
      currency: "USD",
    });
    expect(d.command).toEqual({
      type: "debit",
      operationId: idOf(OP),
      userId: "alice",
      amount: 7n,
      currency: USD,
    });
    expect(d.fields).toEqual({ userId: "alice", amount: "7", currency: "USD" });
  });

  it("decode – a hold carries its timeoutSeconds", () => {
    const d = decodeCommandOk("hold", {
      operationId: OP,
      userId: "alice",
      amount: "50",
      timeoutSeconds: 60,
    });
    expect(d.command).toEqual({
      type: "hold",
      operationId: idOf(OP),
      userId: "alice",
      amount: 50n,
      currency: EUR,
      timeoutSeconds: 60,
    });
    expect(d.fields).toEqual({ userId: "alice", amount: "50", currency: "EUR" });
  });

  it("decode – a hold without timeoutSeconds never expires (timeout 0)", () => {
    const d = decodeCommandOk("hold", { operationId: OP, userId: "alice", amount: "50" });
    expect(d.command).toMatchObject({ type: "hold", timeoutSeconds: 0 });
  });

  it("decode – a capture names its hold and has no currency", () => {
    const d = decodeCommandOk("capture", { operationId: OP, holdId: HOLD });
    expect(d.command).toEqual({ type: "capture", operationId: idOf(OP), holdId: idOf(HOLD) });
    expect(d.fields).toEqual({ holdId: HOLD });
  });

  it("decode – a release names its hold and has no currency", () => {
    const d = decodeCommandOk("release", { operationId: OP, holdId: HOLD });
    expect(d.command).toEqual({ type: "release", operationId: idOf(OP), holdId: idOf(HOLD) });
    expect(d.fields).toEqual({ holdId: HOLD });
  });

  it("decode – a transfer without fee has fee 0 and no fee field", () => {
    const d = decodeCommandOk("transfer", transfer({}));
    expect(d.command).toEqual({
      type: "transfer",
      operationId: idOf(OP),
      fromUserId: "alice",
      toUserId: "bob",
      amount: 100n,
      fee: 0n,
      currency: EUR,
    });
    expect(d.fields).toEqual({
      fromUserId: "alice",
      toUserId: "bob",
      amount: "100",
      currency: "EUR",
    });
  });

  it("decode – a transfer with a fee carries it as a field", () => {
    const d = decodeCommandOk("transfer", transfer({ fee: "3", currency: "USD" }));
    expect(d.command).toEqual({
      type: "transfer",
      operationId: idOf(OP),
      fromUserId: "alice",
      toUserId: "bob",
      amount: 100n,
      fee: 3n,
      currency: USD,
    });
    expect(d.fields).toEqual({
      fromUserId: "alice",
      toUserId: "bob",
      amount: "100",
      fee: "3",
      currency: "USD",
    });
  });
});

describe("decode – amount", () => {
  it("decode – an amount of 0 is invalid_command", () => {
    const r = decodeRejected("credit", credit({ amount: 0 }));
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toMatch(/amount/);
    expect(decodeRejected("credit", credit({ amount: "0" })).reason).toBe("invalid_command");
  });

  it("decode – 0, a negative amount and 2^63 share one detail naming the range; a missing field is 'required'", () => {
    for (const amount of [0, "0", -5, "-5", MONEY_OVER_TEXT]) {
      expect(decodeRejected("credit", credit({ amount })).detail).toBe(
        "amount: must be a positive integer (1 to 2^63 - 1)",
      );
    }
    expect(
      decodeRejected("transfer", {
        operationId: OP,
        fromUserId: "a",
        toUserId: "b",
        amount: "1",
        fee: -1,
      }).detail,
    ).toBe("fee: must be an integer from 0 to 2^63 - 1");
    expect(decodeRejected("credit", { operationId: OP, amount: "1" }).detail).toBe(
      "userId is required",
    );
    expect(decodeRejected("credit", { operationId: OP, userId: "alice" }).detail).toBe(
      "amount is required",
    );
  });

  it("decode – an amount of 1 is valid as a string and as a number", () => {
    expect(decodeCommandOk("credit", credit({ amount: "1" })).command).toMatchObject({
      amount: 1n,
    });
    expect(decodeCommandOk("credit", credit({ amount: 1 })).command).toMatchObject({ amount: 1n });
  });

  it("decode – an amount of 2^63 − 1 as a string is valid", () => {
    const d = decodeCommandOk("credit", credit({ amount: MONEY_MAX_TEXT }));
    expect(d.command).toMatchObject({ amount: MONEY_MAX });
    expect(d.fields.amount).toBe(MONEY_MAX_TEXT);
  });

  it("decode – an amount of 2^63 is invalid_command", () => {
    const r = decodeRejected("credit", credit({ amount: MONEY_OVER_TEXT }));
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toMatch(/^amount: /);
  });

  it("decode – amounts far above 2^63 (40 and 41 digits) are invalid_command", () => {
    expect(decodeRejected("credit", credit({ amount: "9".repeat(40) })).reason).toBe(
      "invalid_command",
    );
    expect(decodeRejected("credit", credit({ amount: "9".repeat(41) })).reason).toBe(
      "invalid_command",
    );
  });

  it("decode – a negative amount is invalid_command, as a number and as a string", () => {
    expect(decodeRejected("credit", credit({ amount: -1 })).reason).toBe("invalid_command");
    expect(decodeRejected("credit", credit({ amount: "-1" })).reason).toBe("invalid_command");
  });

  it("decode – a fractional amount is invalid_command, as a number and as a string", () => {
    expect(decodeRejected("credit", credit({ amount: 1.5 })).reason).toBe("invalid_command");
    expect(decodeRejected("credit", credit({ amount: "1.5" })).reason).toBe("invalid_command");
  });

  it("decode – a number amount up to MAX_SAFE_INTEGER is valid, above it invalid_command", () => {
    expect(
      decodeCommandOk("credit", credit({ amount: Number.MAX_SAFE_INTEGER })).command,
    ).toMatchObject({ amount: 9007199254740991n });
    expect(decodeRejected("credit", credit({ amount: Number.MAX_SAFE_INTEGER + 1 })).reason).toBe(
      "invalid_command",
    );
    expect(
      decodeRejected(
        "credit",
        `{"operationId":"${OP}","userId":"alice","amount":9223372036854775807}`,
      ).reason,
    ).toBe("invalid_command");
    expect(
      decodeRejected("credit", `{"operationId":"${OP}","userId":"alice","amount":1e30}`).reason,
    ).toBe("invalid_command");
  });

  it('decode – an amount with leading zeros ("007") is a string of digits and means 7', () => {
    const d = decodeCommandOk("credit", credit({ amount: "007" }));
    expect(d.command).toMatchObject({ amount: 7n });
    expect(d.fields.amount).toBe("7");
  });

  it("decode – a JSON number written with an exponent that is an integer (1e3) is 1000", () => {
    expect(
      decodeCommandOk("credit", `{"operationId":"${OP}","userId":"alice","amount":1e3}`).command,
    ).toMatchObject({ amount: 1000n });
  });

  it.each([[""], [" 1"], ["1 "], ["+1"], ["1e3"], ["0x10"], ["abc"], ["1_000"], ["١٢"], ["12a"]])(
    "decode – the non-digit string %j as amount is invalid_command",
    (amount) => {
      expect(decodeRejected("credit", credit({ amount })).reason).toBe("invalid_command");
    },
  );

  it.each([[null], [true], [{}], [[1]]])(
    "decode – the amount %j of the wrong JSON type is invalid_command",
    (amount) => {
      expect(decodeRejected("credit", credit({ amount })).reason).toBe("invalid_command");
    },
  );

  it("decode – a missing amount is invalid_command naming amount", () => {
    const r = decodeRejected("debit", { operationId: OP, userId: "alice" });
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toMatch(/amount/);
  });

  it("decode – amount rules hold for every command that has an amount", () => {
    for (const type of ["credit", "debit", "hold"] as const) {
      expect(decodeRejected(type, credit({ amount: 0 })).reason).toBe("invalid_command");
      expect(decodeRejected(type, credit({ amount: MONEY_OVER_TEXT })).reason).toBe(
        "invalid_command",
      );
      expect(decodeCommandOk(type, credit({ amount: MONEY_MAX_TEXT })).command).toMatchObject({
        amount: MONEY_MAX,
      });
    }
    expect(decodeRejected("transfer", transfer({ amount: 0 })).reason).toBe("invalid_command");
    expect(decodeRejected("transfer", transfer({ amount: MONEY_OVER_TEXT })).reason).toBe(
      "invalid_command",
    );
  });
});

describe("decode – fee", () => {
  it("decode – a fee of 0 (number or string) is a transfer without fee", () => {
    for (const fee of [0, "0"]) {
      const d = decodeCommandOk("transfer", transfer({ fee }));
      expect(d.command).toMatchObject({ fee: 0n });
      expect(d.fields).not.toHaveProperty("fee");
    }
  });

  it("decode – an absent fee is 0", () => {
    expect(decodeCommandOk("transfer", transfer({})).command).toMatchObject({ fee: 0n });
  });

  it("decode – a positive fee is kept, up to 2^63 − 1", () => {
    expect(decodeCommandOk("transfer", transfer({ fee: 1 })).command).toMatchObject({ fee: 1n });
    expect(decodeCommandOk("transfer", transfer({ fee: MONEY_MAX_TEXT })).command).toMatchObject({
      fee: MONEY_MAX,
    });
  });

  it.each([[-1], ["-1"], [1.5], [MONEY_OVER_TEXT], ["x"], [null]])(
    "decode – the fee %j is invalid_command",
    (fee) => {
      const r = decodeRejected("transfer", transfer({ fee }));
      expect(r.reason).toBe("invalid_command");
      expect(r.detail).toMatch(/fee/);
    },
  );

  it("decode – a fee on a command other than transfer is an unknown field", () => {
    const r = decodeRejected("debit", credit({ fee: "1" }));
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toContain('"fee"');
  });
});

describe("decode – userId", () => {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:";

  it("decode – a userId of 0 characters is invalid_command", () => {
    expect(decodeRejected("credit", credit({ userId: "" })).reason).toBe("invalid_command");
  });

  it("decode – userIds of 1 and 64 characters are valid", () => {
    expect(decodeCommandOk("credit", credit({ userId: "a" })).command).toMatchObject({
      userId: "a",
    });
    const long = "x".repeat(64);
    expect(decodeCommandOk("credit", credit({ userId: long })).command).toMatchObject({
      userId: long,
    });
  });

  it("decode – a userId of 65 characters is invalid_command naming userId", () => {
    const r = decodeRejected("credit", credit({ userId: "x".repeat(65) }));
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toMatch(/^userId: /);
  });

  it("decode – every allowed character (A-Z a-z 0-9 _ - . :) is accepted", () => {
    for (const userId of [chars.slice(0, 33), chars.slice(33)]) {
      expect(decodeCommandOk("credit", credit({ userId })).command).toMatchObject({ userId });
    }
    for (const ch of chars)
      expect(decodeCommandOk("credit", credit({ userId: ch })).kind).toBe("command");
  });

  it.each([
    [" "],
    ["a b"],
    ["a/b"],
    ["a@b"],
    ["é"],
    ["a\n"],
    ["\na"],
    ["#"],
    ["a,b"],
    ["😀"],
    ["a\u0000"],
  ])("decode – the userId %j with a disallowed character is invalid_command", (userId) => {
    expect(decodeRejected("credit", credit({ userId })).reason).toBe("invalid_command");
  });

  it("decode – a numeric userId is normalised to its decimal string", () => {
    expect(decodeCommandOk("credit", credit({ userId: 0 })).command).toMatchObject({ userId: "0" });
    expect(decodeCommandOk("credit", credit({ userId: 42 })).command).toMatchObject({
      userId: "42",
    });
    const max = decodeCommandOk("credit", credit({ userId: Number.MAX_SAFE_INTEGER }));
    expect(max.command).toMatchObject({ userId: "9007199254740991" });
    expect(max.fields.userId).toBe("9007199254740991");
  });

  it("decode – numeric fromUserId and toUserId are normalised too", () => {
    expect(
      decodeCommandOk("transfer", transfer({ fromUserId: 1, toUserId: 2 })).command,
    ).toMatchObject({ fromUserId: "1", toUserId: "2" });
  });

  it.each([[-1], [1.5], [Number.MAX_SAFE_INTEGER + 1], [null], [true], [["a"]]])(
    "decode – the userId %j is invalid_command",
    (userId) => {
      expect(decodeRejected("credit", credit({ userId })).reason).toBe("invalid_command");
    },
  );

  it("decode – a missing userId is invalid_command naming userId", () => {
    const r = decodeRejected("credit", { operationId: OP, amount: "1" });
    expect(r.detail).toMatch(/userId/);
  });

  it("decode – the transfer's userIds follow the same rules", () => {
    expect(decodeRejected("transfer", transfer({ fromUserId: "" })).reason).toBe("invalid_command");
    expect(decodeRejected("transfer", transfer({ toUserId: "x".repeat(65) })).reason).toBe(
      "invalid_command",
    );
    expect(decodeRejected("transfer", transfer({ toUserId: "a b" })).reason).toBe(
      "invalid_command",
    );
  });
});

describe("decode – unknown fields", () => {
  it("decode – an unknown field is invalid_command naming the field", () => {
    const r = decodeRejected("credit", credit({ note: "hi" }));
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toContain('"note"');
    expect(r.fields).toEqual({});
  });

  it("decode – a field of another command type is an unknown field", () => {
    expect(decodeRejected("credit", credit({ timeoutSeconds: 60 })).detail).toContain(
      '"timeoutSeconds"',
    );
    expect(
      decodeRejected("capture", { operationId: OP, holdId: HOLD, amount: "1" }).detail,
    ).toContain('"amount"');
    expect(
      decodeRejected("release", { operationId: OP, holdId: HOLD, currency: "EUR" }).detail,
    ).toContain('"currency"');
    expect(decodeRejected("transfer", transfer({ userId: "alice" })).detail).toContain('"userId"');
  });

  it('decode – a "__proto__" key is an unknown field, not a prototype', () => {
    const r = decodeRejected(
      "credit",
      `{"operationId":"${OP}","userId":"alice","amount":"1","__proto__":{"fee":"1"}}`,
    );
    expect(r.reason).toBe("invalid_command");
    expect(r.detail).toContain("__proto__");
  });

  it("decode – a field name differing only in case is unknown", () => {
    expect(decodeRejected("credit", { operationId: OP, userid: "alice", amount: "1" }).reason).toBe(
      "invalid_command",
    );
  });
});

describe("decode – operationId and holdId", () => {
  it.each([
    ["no dashes", "0190a6b23c4d4e8f9a0b000000001001"],
    ["braces", `{${OP}}`],
    ["urn prefix", `urn:uuid:${OP}`],
    ["31 hex digits", OP.slice(0, -1)],
    ["33 hex digits", `${OP}0`],
    ["a non-hex digit", OP.replace(/^0/, "g")],
    ["leading space", ` ${OP}`],
    ["trailing newline", `${OP}\n`],
    ["misplaced dash", "0190a6b2-3c4d4-e8f-9a0b-000000001001"],
    ["the nil UUID", "00000000-0000-0000-0000-000000000000"],
    ["the all-f UUID", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
    ["the all-F UUID", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"],
    ["empty", ""],
  ])("decode – an operationId with %s is malformed", (_what, operationId) => {
    expect(decodeMalformed("credit", credit({ operationId }))).toMatch(/operationId/);
  });

  it.each([[null], [123], [true], [{}], [[OP]]])(
    "decode – an operationId of JSON %j is malformed",
    (operationId) => {
      expect(decodeMalformed("credit", credit({ operationId }))).toMatch(/operationId/);
    },
  );

  it("decode – a missing operationId is malformed, whatever else is wrong", () => {
    expect(decodeMalformed("credit", { userId: "alice", amount: "1" })).toMatch(/operationId/);
    expect(decodeMalformed("capture", { holdId: HOLD, extra: 1 })).toMatch(/operationId/);
  });

  it("decode – an upper-case operationId is accepted as the same 128-bit id", () => {
    const upper = decodeCommandOk("credit", credit({ operationId: OP.toUpperCase() }));
    const lower = decodeCommandOk("credit", credit({}));
    expect(upper.operationId).toBe(lower.operationId);
    expect(upper.command.operationId).toBe(idOf(OP));
  });

  it("decode – the lowest and highest usable ids (1 and 2^128 − 2) are accepted", () => {
    expect(
      decodeCommandOk("credit", credit({ operationId: "00000000-0000-0000-0000-000000000001" }))
        .operationId,
    ).toBe(1n);
    expect(
      decodeCommandOk("credit", credit({ operationId: "ffffffff-ffff-ffff-ffff-fffffffffffe" }))
        .operationId,
    ).toBe((1n << 128n) - 2n);
  });

  it("decode – any UUID version is accepted (v1, v4, v7 and a non-RFC variant)", () => {
    for (const id of [
      "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
      "9b2e1c55-2f5c-4c3e-8d0a-6a2a1c3b4d5e",
      "01890a5d-ac96-774b-bcce-b302099a8057",
      "12345678-1234-1234-1234-123456789abc",
    ]) {
      expect(decodeCommandOk("credit", credit({ operationId: id })).operationId).toBe(idOf(id));
    }
  });

  it("decode – an upper-case holdId is normalised to lower case in the fields", () => {
    const d = decodeCommandOk("capture", { operationId: OP, holdId: HOLD.toUpperCase() });
    expect(d.fields.holdId).toBe(HOLD);
    expect(d.command).toMatchObject({ holdId: idOf(HOLD) });
  });

  it.each([
    ["the nil UUID", "00000000-0000-0000-0000-000000000000"],
    ["the all-f UUID", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
    ["a wrong shape", "not-a-uuid"],
    ["a number", 5],
  ])(
    "decode – a holdId with %s is invalid_command (the operation itself is well formed)",
    (_what, holdId) => {
      const r = decodeRejected("capture", { operationId: OP, holdId });
      expect(r.reason).toBe("invalid_command");
      expect(r.detail).toMatch(/^holdId: /);
      expect(r.operationId).toBe(idOf(OP));
    },
  );

  it("decode – a missing holdId is invalid_command", () => {
    expect(decodeRejected("release", { operationId: OP }).detail).toMatch(/holdId/);
  });
});

describe("decode – payload shape", () => {
  it.each([["{"], ["not json"], [""], ["{'a':1}"], ['{"a":1,}']])(
    "decode – the payload %j (not JSON) is malformed",
    (text) => {
      expect(decodeMalformed("credit", text)).toMatch(/not UTF-8 JSON/);
    },
  );

  it.each([["[]"], ["null"], ['"text"'], ["42"], ["true"], [`[{"operationId":"${OP}"}]`]])(
    "decode – the JSON payload %s that is not an object is malformed",
    (text) => {
      expect(decodeMalformed("credit", text)).toMatch(/not a JSON object/);
    },
  );

  it("decode – invalid UTF-8 is malformed", () => {
    const valid = bytes(credit({ userId: "ab" }));
    const at = valid.indexOf(0x61); // the first "a", inside a string
    const broken = Uint8Array.from(valid);
    broken[at] = 0xff;
    expect(decodeCommand("billing.cmd.credit", broken, chart, limits)).toMatchObject({
      kind: "malformed",
    });
    const overlong = Uint8Array.from([...bytes('{"operationId":"'), 0xc0, 0xaf, ...bytes('"}')]);
    expect(decodeCommand("billing.cmd.credit", overlong, chart, limits)).toMatchObject({
      kind: "malformed",
    });
    const lone = Uint8Array.from([...bytes('{"x":"'), 0xed, 0xa0, 0x80, ...bytes('"}')]); // a UTF-16 surrogate in UTF-8
    expect(decodeCommand("billing.cmd.credit", lone, chart, limits)).toMatchObject({
      kind: "malformed",
    });
  });

  it("decode – surrounding JSON whitespace is fine", () => {
    expect(decode("credit", `  \n${JSON.stringify(credit({}))}\t `).kind).toBe("command");
  });

  it.each([
    ["billing.cmd.refund"],
    ["billing.cmd.credit.extra"],
    ["billing.cmd."],
    ["billing.cmd"],
    ["billing.cmd.Credit"],
    ["BILLING.CMD.CREDIT"],
    ["billing.evt.credited"],
    ["billing.cmd.>"],
    ["xbilling.cmd.credit"],
  ])("decode – the unknown subject %s is malformed", (subject) => {
    const d = decodeCommand(subject, bytes(credit({})), chart, limits);
    expect(d).toEqual({ kind: "malformed", error: `unknown command subject ${subject}` });
  });

  it("decode – a payload of exactly payloadBytesMax bytes is decoded", () => {
    const text = JSON.stringify(credit({}));
    const padded = text + " ".repeat(limits.payloadBytesMax - text.length);
    expect(bytes(padded).byteLength).toBe(limits.payloadBytesMax);
    expect(decode("credit", padded).kind).toBe("command");
  });

  it("decode – a payload one byte over payloadBytesMax is invalid_command with its operationId, counted in bytes not characters", () => {
    const text = JSON.stringify(credit({}));
    const over = text + " ".repeat(limits.payloadBytesMax + 1 - text.length);
    expect(decodeRejected("credit", over)).toMatchObject({
      reason: "invalid_command",
      detail: `payload of ${limits.payloadBytesMax + 1} bytes exceeds 4096`,
    });
    // 2-byte characters: fewer characters than the limit, more bytes than it.
    const wide = JSON.stringify({ ...credit({}), pad: "é".repeat(limits.payloadBytesMax / 2) });
    expect(wide.length).toBeLessThan(limits.payloadBytesMax + 100);
    expect(decodeRejected("credit", wide).detail).toMatch(/bytes exceeds/);
  });

  it("decode – a payload over payloadBytesMax with no valid operationId is malformed, naming the size", () => {
    expect(decodeMalformed("credit", "{" + " ".repeat(limits.payloadBytesMax))).toMatch(
      /exceeds 4096/,
    );
  });

  it("decode – never throws, whatever the bytes (seeded random payloads)", () => {
    const next = seeded(0x5eed);
    const subjects = [
      "billing.cmd.credit",
      "billing.cmd.transfer",
      "billing.cmd.capture",
      "billing.cmd.nope",
    ];
    for (let i = 0; i < 500; i += 1) {
      const length = randomInt(next, 64);
      const data = Uint8Array.from({ length }, () => randomInt(next, 256));
      const subject = subjects[i % subjects.length] ?? "billing.cmd.credit";
      expect(() => decodeCommand(subject, data, chart, limits)).not.toThrow();
    }
  });
});

describe("decode – currency", () => {
  it("decode – an absent currency is the configured default", () => {
    expect(decodeCommandOk("credit", credit({})).command).toMatchObject({ currency: EUR });
  });

  it("decode – a configured currency is used", () => {
    expect(decodeCommandOk("debit", credit({ currency: "USD" })).command).toMatchObject({
      currency: USD,
    });
    expect(decodeCommandOk("hold", credit({ currency: "USD" })).command).toMatchObject({
      currency: USD,
    });
    expect(decodeCommandOk("transfer", transfer({ currency: "USD" })).command).toMatchObject({
      currency: USD,
    });
  });

  it("decode – an unknown currency is unknown_currency, with the command's fields", () => {
    const r = decodeRejected("credit", credit({ currency: "GBP" }));
    expect(r.reason).toBe("unknown_currency");
    expect(r.detail).toContain("GBP");
    expect(r.fields).toEqual({ userId: "alice", amount: "100", currency: "GBP" });
  });

  it('decode – currency codes are case sensitive ("eur" is unknown_currency)', () => {
    expect(decodeRejected("credit", credit({ currency: "eur" })).reason).toBe("unknown_currency");
  });

  it("decode – unknown_currency applies to every command with a currency", () => {
    for (const type of ["credit", "debit", "hold"] as const)
      expect(decodeRejected(type, credit({ currency: "XXX" })).reason).toBe("unknown_currency");
    expect(
      decodeRejected("transfer", transfer({ currency: "XXX", fee: "1" })).fields,
    ).toMatchObject({ fee: "1", currency: "XXX" });
  });

  it.each([[""], [978], [null], ["X".repeat(17)]])(
    "decode – the currency %j that is not a code is invalid_command",
    (currency) => {
      expect(decodeRejected("credit", credit({ currency })).reason).toBe("invalid_command");
    },
  );
});

describe("decode – same user", () => {
  it("decode – a transfer to the same user is same_user, with the command's fields", () => {
    const r = decodeRejected("transfer", transfer({ toUserId: "alice", fee: 2 }));
    expect(r.reason).toBe("same_user");
    expect(r.fields).toEqual({
      fromUserId: "alice",
      toUserId: "alice",
      amount: "100",
      fee: "2",
      currency: "EUR",
    });
    expect(r.operationId).toBe(idOf(OP));
  });

  it("decode – a numeric userId and its decimal string are the same user", () => {
    expect(decodeRejected("transfer", transfer({ fromUserId: 7, toUserId: "7" })).reason).toBe(
      "same_user",
    );
  });

  it("decode – userIds differing only in case are different users", () => {
    expect(
      decodeCommandOk("transfer", transfer({ fromUserId: "alice", toUserId: "Alice" })).kind,
    ).toBe("command");
  });

  it('decode – "07" and 7 are different users (only numbers are normalised)', () => {
    expect(decodeCommandOk("transfer", transfer({ fromUserId: "07", toUserId: 7 })).kind).toBe(
      "command",
    );
  });

  it("decode – an unknown currency is reported before same_user", () => {
    expect(
      decodeRejected("transfer", transfer({ toUserId: "alice", currency: "XXX" })).reason,
    ).toBe("unknown_currency");
  });

  it("decode – an invalid field is reported before same_user", () => {
    expect(decodeRejected("transfer", transfer({ toUserId: "alice", amount: 0 })).reason).toBe(
      "invalid_command",
    );
  });
});

describe("decode – timeoutSeconds", () => {
  const hold = (timeoutSeconds: unknown) => ({
    operationId: OP,
    userId: "alice",
    amount: "1",
    timeoutSeconds,
  });

  it("decode – timeoutSeconds of 1 and of holdTimeoutSecondsMax are valid", () => {
    expect(decodeCommandOk("hold", hold(1)).command).toMatchObject({ timeoutSeconds: 1 });
    expect(decodeCommandOk("hold", hold(limits.holdTimeoutSecondsMax)).command).toMatchObject({
      timeoutSeconds: 2_592_000,
    });
  });

  it.each([[0], [-1], [1.5], [2_592_001], ["60"], [null], [Number.MAX_SAFE_INTEGER + 1]])(
    "decode – timeoutSeconds %j is invalid_command",
    (t) => {
      const r = decodeRejected("hold", hold(t));
      expect(r.reason).toBe("invalid_command");
      expect(r.detail).toMatch(/^timeoutSeconds: /);
    },
  );
});

describe("decode – pre-ledger rejections", () => {
  it("decode – an invalid command keeps its operationId and type, with no fields", () => {
    const r = decodeRejected("hold", {
      operationId: OP.toUpperCase(),
      userId: "alice",
      amount: "x",
    });
    expect(r.operationId).toBe(idOf(OP));
    expect(r.type).toBe("hold");
    expect(r.fields).toEqual({});
    expect(typeof r.fingerprint).toBe("bigint");
  });

  it("decode – the detail of an invalid command names the failing field", () => {
    expect(decodeRejected("credit", credit({ amount: "1.0" })).detail).toMatch(/^amount: /);
    expect(decodeRejected("credit", credit({ userId: "a b" })).detail).toMatch(/^userId: /);
  });
});

describe("decode – hostile shapes", () => {
  it("decode – a payload nested 10,000 levels deep (20 KB, over payloadBytesMax) is answered, never thrown (no recursion on publisher input)", () => {
    const operationId = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
    const deep = `{"operationId":"${operationId}","userId":"u","amount":"1","x":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    let d: ReturnType<typeof decode> | undefined;
    expect(() => (d = decode("credit", deep))).not.toThrow();
    expect(d).toMatchObject({ kind: "rejected", reason: "invalid_command" });
    // The same content, decoded again, has the same fingerprint (a redelivery is a replay).
    expect((decode("credit", deep) as { fingerprint: bigint }).fingerprint).toBe(
      (d as unknown as { fingerprint: bigint }).fingerprint,
    );
  });

  it("decode – a payload nested 100,000 levels deep under the 1 MiB ceiling is answered, never thrown", () => {
    const deep = `{"operationId":"0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6c","x":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`;
    expect(() => decode("debit", deep)).not.toThrow();
  });
});

describe("decode – the fast path accepts only what the schema accepts, with the same values", () => {
  // decodeCommand parses valid payloads without zod (src/domain/commands.ts fastParse); anything it
  // does not vouch for goes to the schema. Seeded random payloads mix valid and invalid values of
  // every field, unknown keys and missing ones: whenever the fast path answers, the schema accepts
  // the payload too and gives the same fields; and it does answer for the valid ones.
  const values: Record<string, unknown[]> = {
    operationId: [OP, OP.toUpperCase(), "not-a-uuid", 5, "00000000-0000-0000-0000-000000000000"],
    userId: [
      "alice",
      "a".repeat(64),
      "a".repeat(65),
      "",
      "bad id",
      0,
      42,
      -1,
      1.5,
      2 ** 53,
      null,
      "x:y.z-_",
    ],
    amount: [
      "100",
      "0",
      "-5",
      "0100",
      MONEY_MAX_TEXT,
      MONEY_OVER_TEXT,
      7,
      0,
      -3,
      2.5,
      2 ** 53,
      "1e3",
      " 1",
      null,
      true,
    ],
    fee: ["0", "3", 0, 2, -1, "x", null, MONEY_OVER_TEXT],
    currency: ["EUR", "USD", "GBP", "", "x".repeat(16), "x".repeat(17), 5, null],
    timeoutSeconds: [
      1,
      60,
      0,
      -1,
      1.5,
      0xffff_ffff,
      0x1_0000_0000,
      "60",
      null,
      Number.MAX_SAFE_INTEGER,
    ],
    holdId: [HOLD, HOLD.toUpperCase(), "nope", 3, null],
    extra: [1, "x"],
  };
  const keys = Object.keys(values).concat(["__proto__"]);

  it("decode – fast path and schema agree on 20,000 seeded random payloads", () => {
    const next = seeded(0xfa57);
    let vouched = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const type = COMMAND_TYPES[i % COMMAND_TYPES.length] as (typeof COMMAND_TYPES)[number];
      // Mostly the type's own fields with valid values, so that both answers are exercised.
      const own = new Set([
        "operationId",
        ...(type === "capture" || type === "release"
          ? ["holdId"]
          : type === "transfer"
            ? ["fromUserId", "toUserId", "amount", "fee", "currency"]
            : ["userId", "amount", "currency", ...(type === "hold" ? ["timeoutSeconds"] : [])]),
      ]);
      const text =
        "{" +
        [...keys, "fromUserId", "toUserId"]
          .filter((k) => next() < (own.has(k) ? 0.9 : 0.04))
          .map((k) => {
            // "__proto__" is a key JSON.parse makes an own property (an object literal here would not).
            const options =
              k === "__proto__"
                ? [{}, { amount: "1" }]
                : Object.hasOwn(values, k)
                  ? (values[k] as unknown[])
                  : (values["userId"] as unknown[]);
            const value =
              next() < 0.75
                ? options[randomInt(next, 2)]
                : options[randomInt(next, options.length)];
            return `${JSON.stringify(k)}:${JSON.stringify(value)}`;
          })
          .join(",") +
        "}";
      const raw = JSON.parse(text) as Record<string, unknown>;
      const fast = fastParseForTest(type, raw);
      const schema = schemaParse(type, raw);
      if (fast === null) continue;
      vouched += 1;
      expect(schema.success, `${type} ${text}`).toBe(true);
      // operationId is read before either parse (parseOperationId): the parsed fields leave it out.
      const defined = Object.fromEntries(
        Object.entries(schema.data as object).filter(
          ([k, v]) => v !== undefined && k !== "operationId",
        ),
      );
      expect(fast, `${type} ${text}`).toEqual(defined);
    }
    expect(vouched).toBeGreaterThan(2_000);
  });

  it("decode – the fast path vouches for the valid payloads of every type", () => {
    const valid: Array<[(typeof COMMAND_TYPES)[number], Record<string, unknown>]> = [
      ["credit", credit({})],
      ["debit", credit({ amount: 5, currency: "USD" })],
      ["hold", credit({ timeoutSeconds: 60 })],
      ["capture", { operationId: OP, holdId: HOLD }],
      ["release", { operationId: OP, holdId: HOLD.toUpperCase() }],
      ["transfer", transfer({ fee: "1" })],
      ["transfer", transfer({ fee: 0, fromUserId: 12 })],
    ];
    for (const [type, payload] of valid) {
      expect(
        fastParseForTest(type, JSON.parse(JSON.stringify(payload)) as Record<string, unknown>),
        `${type} ${JSON.stringify(payload)}`,
      ).not.toBeNull();
    }
  });
});
