// Proves how the finance tools name accounts, on a real embedded ledger file: system accounts by
// role and currency, users by their userId (a long one through its name account), and — without
// failing — what they cannot name: another deployment's long userId on a shared ledger (its name
// account lives in that deployment's id space) ends in "…", an account that is no user's is named
// by its kind, an id with no account gets no name.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  settlementAccountId,
  systemAccounts,
  userAccountId,
  userAccounts,
  type Chart,
} from "../../src/domain/accounts.ts";
import { IdSpace } from "../../src/domain/ids.ts";
import { OwnerBook } from "../../src/finance/owners.ts";
import { openLedger } from "../../src/ledger/index.ts";
import { testSpace } from "../support/space.ts";

const dir = mkdtempSync(join(tmpdir(), "billing-owners-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const currencies = [{ code: "EUR", ledger: 978, scale: 2 }];
const ours: Chart = {
  currencies,
  defaultCurrency: "EUR",
  markerLedger: 1_000_000,
  space: testSpace,
};
const theirs: Chart = {
  ...ours,
  space: new IdSpace(0x7e11_0000_0000_0000_0000_0000_0000_0002n, 0x99n),
};

describe("finance owners – naming accounts", () => {
  it("names system accounts, short and long userIds, and what it cannot name without failing", async () => {
    const ledger = await openLedger({ driver: "embedded", path: join(dir, "ledger.db") });
    try {
      const long = `owner-${"q".repeat(50)}`;
      await ledger.createAccounts([
        ...systemAccounts(ours),
        ...userAccounts(testSpace, 978, "alice"),
        ...userAccounts(testSpace, 978, long),
        ...userAccounts(theirs.space, 978, long),
        ...systemAccounts(theirs),
      ]);
      const book = new OwnerBook(ledger, ours, 2);
      const ids = {
        settlement: settlementAccountId(testSpace, 978),
        alice: userAccountId(testSpace, 978, "alice"),
        long: userAccountId(testSpace, 978, long),
        theirLong: userAccountId(theirs.space, 978, long),
        theirSettlement: settlementAccountId(theirs.space, 978),
        none: 12345n,
      };
      const names = await book.resolve(Object.values(ids));
      expect(Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, names.get(id)]))).toEqual({
        settlement: "settlement EUR",
        alice: "alice",
        long,
        theirLong: `${long.slice(0, 36)}…`,
        theirSettlement: "settlement",
        none: undefined,
      });
      // A cache smaller than the page is cleared, never wrong.
      expect((await book.resolve([ids.alice, ids.long])).get(ids.long)).toBe(long);
    } finally {
      ledger.destroy();
    }
  });
});
