// Proves that the domain's own copy of TigerBeetle's flags and result codes
// (src/domain/ledger-codes.ts, which lets the pure core run without loading tigerbeetle-node's
// native addon) equals tigerbeetle-node's: every name with the same value, none missing, none extra;
// and that no file of the domain imports a value from tigerbeetle-node (only types).
import { readdirSync, readFileSync } from "node:fs";
import { AccountFlags, CreateTransferStatus, TransferFlags } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import * as codes from "../../src/domain/ledger-codes.ts";

/** A TypeScript numeric enum's name → value entries (its reverse mapping left out). */
function entriesOf(e: Record<string, string | number>): Array<[string, number]> {
  return Object.entries(e).filter(
    (entry): entry is [string, number] => typeof entry[1] === "number",
  );
}

describe("ledger codes – the domain's copy equals tigerbeetle-node's", () => {
  it("AccountFlags", () => {
    expect(Object.entries(codes.AccountFlags)).toEqual(entriesOf(AccountFlags));
  });

  it("TransferFlags", () => {
    expect(Object.entries(codes.TransferFlags)).toEqual(entriesOf(TransferFlags));
  });

  it("CreateTransferStatus, and each status's name", () => {
    expect(Object.entries(codes.CreateTransferStatus)).toEqual(entriesOf(CreateTransferStatus));
    for (const [name, value] of entriesOf(CreateTransferStatus))
      expect(codes.transferStatusName(value)).toBe(name);
    expect(codes.transferStatusName(1_000)).toBeUndefined();
  });

  it("the id-burning statuses are TigerBeetle 0.17's transient ones (spec §5.4)", () => {
    const S = CreateTransferStatus;
    expect([...codes.idBurningTransferStatuses].sort((a, b) => a - b)).toEqual(
      [
        S.debit_account_not_found,
        S.credit_account_not_found,
        S.pending_transfer_not_found,
        S.exceeds_credits,
        S.exceeds_debits,
        S.debit_account_already_closed,
        S.credit_account_already_closed,
      ].sort((a, b) => a - b),
    );
  });
});

describe("ledger codes – the pure core does not load tigerbeetle-node", () => {
  it("src/domain imports only types from tigerbeetle-node", () => {
    const dir = new URL("../../src/domain/", import.meta.url);
    const valueImports = readdirSync(dir)
      .filter((f) => f.endsWith(".ts"))
      .flatMap((f) =>
        [
          ...readFileSync(new URL(f, dir), "utf8").matchAll(
            /^import (?!type )[^;]*from "tigerbeetle-node";/gm,
          ),
        ].map((m) => `${f}: ${m[0]}`),
      );
    expect(valueImports).toEqual([]);
  });
});
