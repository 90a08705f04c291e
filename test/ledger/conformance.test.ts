// Proves that each ledger driver behaves like TigerBeetle 0.17: every case of the shared
// conformance vectors (converted into fixtures/tigerbeetle-cases.json) and our own cases from the
// spec (spec-cases.ts) are played step by step, and every status, timestamp relation, lookup and
// query result must match exactly. The embedded engine always runs (a fresh SQLite file and a fake
// clock per case); a real TigerBeetle runs when TB_ADDRESSES is set.
import { afterAll, describe, it } from "vitest";
import { runCase, loadFixture } from "./support/cases.ts";
import { closeSharedClients, drivers } from "./support/drivers.ts";
import { specCases } from "./spec-cases.ts";

const fixture = loadFixture(new URL("./fixtures/tigerbeetle-cases.json", import.meta.url));

function title(name: string): string {
  return name.replaceAll("_", " ");
}

afterAll(() => closeSharedClients());

for (const driver of drivers) {
  if (driver.skipReason !== null)
    console.log(`ledger conformance: skipping ${driver.name}: ${driver.skipReason}`);
  describe.skipIf(driver.skipReason !== null)(`ledger conformance – ${driver.name}`, () => {
    const cases = [
      ...fixture.cases.map((c) => ({ group: "TigerBeetle vectors", c })),
      ...specCases
        .filter((c) => driver.name === "embedded" || !c.embeddedOnly)
        .map((c) => ({ group: "spec cases", c })),
    ];
    for (const { group, c } of cases) {
      it(`${group}: ${title(c.name)}`, async () => {
        const target = await driver.open();
        try {
          await runCase(target, c, driver.shared);
        } finally {
          target.close();
        }
      });
    }
  });
}
