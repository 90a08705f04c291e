// Proves that the decision recorded for an operation does not depend on configuration that can
// change between two deliveries of the same message: the default currency, holdTimeoutSecondsMax
// and payloadBytesMax. The same bytes are decoded under the configuration of the first delivery,
// their plan is "stored" (timestamps added, as lookup_transfers returns it), and then decoded again
// under the changed configuration and decided against that record: it must be a replay of what was
// decided, never a conflict, a new rejection or a malformed message. Pure: no ledger, no broker.
import { describe, expect, it } from "vitest";
import type { Transfer } from "tigerbeetle-node";
import type { Chart } from "../../src/domain/accounts.ts";
import {
  canonicalJson,
  decodeCommand,
  PAYLOAD_BYTES_CEILING,
  type Decoded,
  type DecodeLimits,
} from "../../src/domain/commands.ts";
import { hashId } from "../../src/domain/ids.ts";
import { markerTransfer, planTransfers } from "../../src/domain/plan.ts";
import { decide, lookupIds, type Operation } from "../../src/domain/resolve.ts";
import { bytes, chart, EUR, idOf, limits, stored, uuid } from "./fixture.ts";

const OP = uuid(70);
const T0 = 1_700_000_000_000_000_000n;
const clock = { nowMs: 0, holdGraceMs: 30_000 };

function decodeWith(type: string, payload: unknown, c: Chart, l: DecodeLimits): Decoded {
  return decodeCommand(`billing.cmd.${type}`, bytes(payload), c, l);
}

function operationOf(d: Decoded): Operation {
  if (d.kind === "malformed") throw new Error(`malformed: ${d.error}`);
  return { id: d.operationId, decoded: d, publishedAtMs: 0 };
}

/** What the ledger holds after the first delivery was applied. */
function appliedRecord(d: Decoded): Map<bigint, Transfer> {
  if (d.kind !== "command") throw new Error(`expected a command, got ${d.kind}`);
  return new Map(
    planTransfers(chart, d.command, d.fingerprint, null).map((t, i) => [
      t.id,
      stored(t, T0 + BigInt(i)),
    ]),
  );
}

/** The decision on the second delivery: exactly one verdict, nothing to write. */
function redelivered(d: Decoded, found: Map<bigint, Transfer>) {
  const op = operationOf(d);
  const decision = decide(chart, [op], found, clock);
  expect(decision.plans).toEqual([]);
  expect(decision.markers).toEqual([]);
  return decision.verdicts.get(op.id);
}

describe("config change – a redelivery replays the recorded decision", () => {
  it("config change – a hold applied with timeoutSeconds T, redelivered after holdTimeoutSecondsMax fell below T, replays held", () => {
    const payload = { operationId: OP, userId: "alice", amount: "50", timeoutSeconds: 3600 };
    const first = decodeWith("hold", payload, chart, limits);
    const found = appliedRecord(first);
    const second = decodeWith("hold", payload, chart, { ...limits, holdTimeoutSecondsMax: 600 });
    expect(redelivered(second, found)).toMatchObject({
      kind: "applied",
      replay: true,
      timestamps: [T0],
    });
  });

  it("config change – a hold rejected for a timeout over the limit, redelivered after the limit rose, replays the rejection", () => {
    const payload = { operationId: OP, userId: "alice", amount: "50", timeoutSeconds: 3600 };
    const first = decodeWith("hold", payload, chart, { ...limits, holdTimeoutSecondsMax: 600 });
    expect(first).toMatchObject({
      kind: "rejected",
      reason: "invalid_command",
      detail: "timeoutSeconds: must be at most 600",
    });
    if (first.kind !== "rejected") return;
    const marker = stored(
      markerTransfer(chart, first.operationId, "hold", first.reason, first.fingerprint),
      T0,
    );
    const second = decodeWith("hold", payload, chart, limits);
    expect(second.kind).toBe("command");
    expect(redelivered(second, new Map([[marker.id, marker]]))).toMatchObject({
      kind: "rejected",
      replay: true,
      reason: "invalid_command",
    });
  });

  it("config change – a credit without currency applied in EUR, redelivered after the default became USD, replays in EUR", () => {
    const payload = { operationId: OP, userId: "alice", amount: "100" };
    const first = decodeWith("credit", payload, chart, limits);
    const found = appliedRecord(first);
    const usd: Chart = { ...chart, defaultCurrency: "USD" };
    const second = decodeWith("credit", payload, usd, limits);
    // The ledger the operation was decided on travels with the replay, so its event names EUR.
    expect(redelivered(second, found)).toMatchObject({
      kind: "applied",
      replay: true,
      ledger: EUR.ledger,
    });
  });

  it("config change – a transfer applied, redelivered after payloadBytesMax fell below its size, replays transferred", () => {
    const payload = {
      operationId: OP,
      fromUserId: "alice",
      toUserId: "bob",
      amount: "70",
      fee: "3",
      currency: "EUR",
    };
    const size = bytes(payload).byteLength;
    const first = decodeWith("transfer", payload, chart, limits);
    const found = appliedRecord(first);
    const second = decodeWith("transfer", payload, chart, { ...limits, payloadBytesMax: size - 1 });
    expect(second).toMatchObject({
      kind: "rejected",
      operationId: idOf(OP),
      reason: "invalid_command",
    });
    expect(redelivered(second, found)).toMatchObject({
      kind: "applied",
      replay: true,
      timestamps: [T0, T0 + 1n],
    });
  });

  it("config change – a capture applied, redelivered after payloadBytesMax fell below its size, looks up its hold and replays captured", () => {
    const holdPayload = {
      operationId: uuid(71),
      userId: "alice",
      amount: "50",
      timeoutSeconds: 60,
    };
    const held = decodeWith("hold", holdPayload, chart, limits);
    const found = appliedRecord(held);
    const payload = JSON.stringify({ operationId: OP, holdId: uuid(71) }) + " ".repeat(300);
    const first = decodeCommand("billing.cmd.capture", bytes(payload), chart, limits);
    if (first.kind !== "command" || held.kind !== "command") throw new Error("fixture");
    const hold = {
      id: held.operationId,
      debitAccountId: (found.get(held.operationId) as Transfer).debit_account_id,
      amount: 50n,
      ledger: EUR.ledger,
    };
    for (const t of planTransfers(chart, first.command, first.fingerprint, hold))
      found.set(t.id, stored(t, T0 + 10n));
    const second = decodeCommand("billing.cmd.capture", bytes(payload), chart, {
      ...limits,
      payloadBytesMax: 256,
    });
    expect(second).toMatchObject({
      kind: "rejected",
      reason: "invalid_command",
      command: { type: "capture", holdId: held.operationId },
    });
    expect(lookupIds(chart, [operationOf(second)])).toContain(held.operationId);
    expect(redelivered(second, found)).toMatchObject({
      kind: "applied",
      replay: true,
      timestamps: [T0 + 10n],
      hold,
    });
  });
});

describe("config change – first decisions under the limits", () => {
  it("config change – a new command over payloadBytesMax keeps its operationId and is rejected as invalid_command", () => {
    const payload = { operationId: OP, userId: "alice", amount: "100" };
    const d = decodeWith("credit", payload, chart, { ...limits, payloadBytesMax: 256 });
    expect(d.kind).toBe("command"); // small enough
    const padded = JSON.stringify(payload) + " ".repeat(300);
    const over = decodeCommand("billing.cmd.credit", bytes(padded), chart, {
      ...limits,
      payloadBytesMax: 256,
    });
    expect(over).toMatchObject({
      kind: "rejected",
      operationId: idOf(OP),
      reason: "invalid_command",
      detail: `payload of ${bytes(padded).byteLength} bytes exceeds 256`,
    });
    // The same content under a larger limit: the same fingerprint, so the rejection is final either way.
    if (over.kind !== "rejected" || d.kind !== "command") return;
    expect(over.fingerprint).toBe(d.fingerprint);
  });

  it("config change – a payload over the broker's max_payload is malformed without being parsed", () => {
    const text = JSON.stringify({
      operationId: OP,
      userId: "alice",
      amount: "1",
      pad: "x".repeat(PAYLOAD_BYTES_CEILING),
    });
    const d = decodeCommand("billing.cmd.credit", bytes(text), chart, {
      ...limits,
      payloadBytesMax: PAYLOAD_BYTES_CEILING,
    });
    expect(d).toMatchObject({ kind: "malformed" });
    if (d.kind === "malformed") expect(d.error).toMatch(/exceeds/);
  });

  it("config change – an oversized payload without a valid operationId is still malformed", () => {
    const text = JSON.stringify({ userId: "alice", amount: "1" }) + " ".repeat(300);
    const d = decodeCommand("billing.cmd.credit", bytes(text), chart, {
      ...limits,
      payloadBytesMax: 256,
    });
    expect(d).toMatchObject({ kind: "malformed" });
  });
});

describe("config change – the fingerprint is a function of the message only", () => {
  it("config change – an absent currency is fingerprinted as absent: the default's value does not enter it", () => {
    const payload = { operationId: OP, userId: "alice", amount: "1" };
    const eur = operationOf(decodeWith("debit", payload, chart, limits));
    const usd = operationOf(
      decodeWith("debit", payload, { ...chart, defaultCurrency: "USD" }, limits),
    );
    expect(usd.decoded.fingerprint).toBe(eur.decoded.fingerprint);
  });

  it("config change – the limits do not enter the fingerprint", () => {
    const payload = { operationId: OP, userId: "alice", amount: "1", timeoutSeconds: 100 };
    const wide = operationOf(decodeWith("hold", payload, chart, limits));
    const narrow = operationOf(
      decodeWith("hold", payload, chart, { holdTimeoutSecondsMax: 10, payloadBytesMax: 256 }),
    );
    expect(narrow.decoded.fingerprint).toBe(wide.decoded.fingerprint);
  });

  it("config change – a command naming every field keeps the fingerprint it had before absent currencies were fingerprinted as absent", () => {
    // The formula of the first release, pinned: ledgers written before keep replaying these commands.
    const d = operationOf(
      decodeWith(
        "hold",
        { operationId: OP, userId: "alice", amount: "50", currency: "EUR", timeoutSeconds: 60 },
        chart,
        limits,
      ),
    );
    expect(d.decoded.fingerprint).toBe(
      hashId(
        "command",
        "hold",
        canonicalJson({ userId: "alice", amount: "50", currency: "EUR", timeoutSeconds: 60 }),
      ),
    );
  });
});
