// Proves that bad input gets what tigerbeetle-node 0.17.9 gives: the same Error / TypeError /
// RequestError, with the same message and code, before anything is written; and that numbers are
// coerced to u32 exactly as the native client does (-1 → 4294967295, 1.5 → 1). Every case runs
// against each driver, and a differential test compares the embedded engine with the real native
// client, which checks its input without a server (it is pointed at a closed port).
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createClient, CreateAccountStatus, ErrorCodes, type Client } from "tigerbeetle-node";
import { account, accountFilter, queryFilter, transfer } from "./support/events.ts";
import { closeSharedClients, drivers, type LedgerUnderTest } from "./support/drivers.ts";

type Call = (l: Client, base: bigint) => Promise<unknown>;

const u128Limit = 1n << 128n;
const without = <T extends object>(o: T, key: keyof T): Partial<T> => {
  const copy: Partial<T> = { ...o };
  delete copy[key];
  return copy;
};
// Inputs the client refuses on purpose are typed loosely: these calls are about wrong types.
const loose = <T>(value: unknown) => value as T;

/** [behaviour, call, expected rejection]. */
const refusals: Array<[string, Call, { name: string; message: string; code?: string }]> = [
  [
    "a number where a u128 is expected",
    (l) => l.createAccounts([loose({ ...account({ id: 1n }), id: 1 })]),
    { name: "Error", message: "id must be a BigInt" },
  ],
  [
    "a missing u128 field",
    (l) => l.createAccounts([loose(without(account({ id: 1n }), "id"))]),
    { name: "Error", message: "id must be a BigInt" },
  ],
  [
    "a missing u32 field",
    (l) => l.createAccounts([loose(without(account({ id: 1n }), "reserved"))]),
    { name: "Error", message: "reserved must be a number" },
  ],
  [
    "a missing u64 field",
    (l) => l.createAccounts([loose(without(account({ id: 1n }), "timestamp"))]),
    { name: "Error", message: "timestamp must be an unsigned 64-bit BigInt" },
  ],
  [
    "a string where a u32 is expected",
    (l) => l.createAccounts([loose({ ...account({ id: 1n }), ledger: "1" })]),
    { name: "Error", message: "ledger must be a number" },
  ],
  [
    "a bigint where a u32 is expected",
    (l) => l.createAccounts([loose({ ...account({ id: 1n }), ledger: 1n })]),
    { name: "Error", message: "ledger must be a number" },
  ],
  [
    "a negative u128",
    (l) => l.createAccounts([account({ id: -1n })]),
    { name: "Error", message: "id must be positive" },
  ],
  [
    "a u128 of 2^128",
    (l) => l.createAccounts([account({ id: u128Limit })]),
    { name: "Error", message: "id must fit in 128 bits" },
  ],
  [
    "a u64 of 2^64",
    (l) => l.createAccounts([account({ id: 1n, user_data_64: 1n << 64n })]),
    { name: "Error", message: "user_data_64 conversion was lossy" },
  ],
  [
    "a negative u64",
    (l) => l.createAccounts([account({ id: 1n, user_data_64: -1n })]),
    { name: "Error", message: "user_data_64 conversion was lossy" },
  ],
  [
    "a code above 65535",
    (l) => l.createAccounts([account({ id: 1n, code: 65536 })]),
    { name: "Error", message: "code must be a u16." },
  ],
  [
    "negative flags (4294967295 after u32 coercion)",
    (l) => l.createAccounts([account({ id: 1n, flags: -1 })]),
    { name: "Error", message: "flags must be a u16." },
  ],
  [
    "a null event",
    (l) => l.createAccounts([loose(null)]),
    { name: "TypeError", message: "Cannot convert undefined or null to object" },
  ],
  [
    "a batch that is not an array",
    (l) => l.createTransfers(loose({})),
    { name: "Error", message: "Array argument must be an [object Array]." },
  ],
  [
    "a number where a transfer amount is expected",
    (l) => l.createTransfers([loose({ ...transfer({ id: 1n }), amount: 5 })]),
    { name: "Error", message: "amount must be a BigInt" },
  ],
  [
    "a string timeout",
    (l) => l.createTransfers([loose({ ...transfer({ id: 1n }), timeout: "x" })]),
    { name: "Error", message: "timeout must be a number" },
  ],
  [
    "a bad second event refuses the whole batch",
    (l, base) =>
      l.createTransfers([transfer({ id: base + 1n }), loose({ ...transfer({ id: 2n }), id: "2" })]),
    { name: "Error", message: "id must be a BigInt" },
  ],
  [
    "a number as an id to look up",
    (l) => l.lookupAccounts([loose(1)]),
    { name: "Error", message: "lookup must be a BigInt" },
  ],
  [
    "a string as an id to look up",
    (l) => l.lookupTransfers([loose("1")]),
    { name: "Error", message: "lookup must be a BigInt" },
  ],
  [
    "an account filter with missing fields",
    (l) => l.getAccountTransfers(loose({ account_id: 1n })),
    { name: "Error", message: "user_data_128 must be a BigInt" },
  ],
  [
    "a query filter with a missing u64",
    (l) => l.queryTransfers(loose({ user_data_128: 0n })),
    { name: "Error", message: "user_data_64 must be an unsigned 64-bit BigInt" },
  ],
  [
    "a string filter limit",
    (l) => l.getAccountBalances(loose({ ...accountFilter({ account_id: 1n }), limit: "x" })),
    { name: "Error", message: "limit must be a number" },
  ],
  [
    "8190 ids to look up",
    (l) => l.lookupAccounts(new Array<bigint>(8190).fill(1n)),
    {
      name: "RequestError",
      message: "Too much data was sent or requested in this batch.",
      code: ErrorCodes.ERR_TOO_MUCH_DATA,
    },
  ],
  [
    "8190 transfers, even invalid ones",
    (l) => l.createTransfers(loose(new Array(8190).fill({}))),
    {
      name: "RequestError",
      message: "Too much data was sent or requested in this batch.",
      code: ErrorCodes.ERR_TOO_MUCH_DATA,
    },
  ],
];

async function outcome(
  call: () => Promise<unknown>,
): Promise<{ name: string; message: string; code?: string } | "resolved"> {
  try {
    await call();
    return "resolved";
  } catch (error) {
    const e = error as Error & { code?: string };
    return e.code === undefined
      ? { name: e.name, message: e.message }
      : { name: e.name, message: e.message, code: e.code };
  }
}

afterAll(() => closeSharedClients());

for (const driver of drivers) {
  if (driver.skipReason !== null)
    console.log(`ledger input: skipping ${driver.name}: ${driver.skipReason}`);
  describe.skipIf(driver.skipReason !== null)(`ledger input – ${driver.name}`, () => {
    const withLedger = async (body: (t: LedgerUnderTest) => Promise<void>) => {
      const target = await driver.open();
      try {
        await body(target);
      } finally {
        target.close();
      }
    };

    for (const [behaviour, call, expected] of refusals) {
      it(`${behaviour} is refused like the client refuses it`, () =>
        withLedger(async (t) => {
          expect(await outcome(() => call(t.ledger, t.idBase))).toEqual(expected);
        }));
    }

    it("nothing of a refused batch is written", () =>
      withLedger(async (t) => {
        await outcome(() =>
          t.ledger.createAccounts([
            account({ id: t.idBase + 1n }),
            loose({ ...account({ id: t.idBase + 2n }), ledger: "x" }),
          ]),
        );
        expect(await t.ledger.lookupAccounts([t.idBase + 1n])).toEqual([]);
      }));

    it("u32 fields are coerced like N-API does: -1 is 4294967295, 1.5 is 1, 2^32 + 5 is 5", () =>
      withLedger(async (t) => {
        const id = t.idBase + 1n;
        const results = await t.ledger.createAccounts([
          account({ id, ledger: -1, user_data_32: 2 ** 32 + 5, code: 1.5 }),
        ]);
        expect(results.map((r) => r.status)).toEqual([CreateAccountStatus.created]);
        expect(await t.ledger.lookupAccounts([id])).toMatchObject([
          { ledger: 4294967295, user_data_32: 5, code: 1 },
        ]);
      }));

    it("a query limit above 8189 is refused with ERR_TOO_MUCH_DATA", () =>
      withLedger(async (t) => {
        expect(
          await outcome(() => t.ledger.queryTransfers(queryFilter({ limit: 8190 }))),
        ).toMatchObject({ code: ErrorCodes.ERR_TOO_MUCH_DATA });
        expect(
          await outcome(() =>
            t.ledger.getAccountTransfers(accountFilter({ account_id: t.idBase + 1n, limit: 8190 })),
          ),
        ).toMatchObject({ code: ErrorCodes.ERR_TOO_MUCH_DATA });
      }));
  });
}

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("ledger input – the embedded engine and the real client agree", () => {
  it("every refused input is refused by the native tigerbeetle-node client the same way", async () => {
    const real = createClient({ cluster_id: 0n, replica_addresses: [String(await closedPort())] });
    const embedded = await drivers[0]?.open();
    if (embedded === undefined) throw new Error("the embedded driver is always available");
    try {
      for (const [behaviour, call] of refusals) {
        const fromReal = await outcome(() => call(real, 0n));
        expect(fromReal, `${behaviour}: the real client refuses it`).not.toBe("resolved");
        expect(await outcome(() => call(embedded.ledger, 0n)), behaviour).toEqual(fromReal);
      }
    } finally {
      real.destroy();
      embedded.close();
    }
  });
});
