// Proves the client library's promises: a bad call fails at the caller before anything is sent
// (a payload over the server's max_payload too, at once); an operation id is generated when
// absent and kept when given; a publish is retried with the same id across a broker restart; an
// event stored earlier is found even when no service answers; and its typed errors: a used id with
// another command is a ConflictError naming what differs (never the old event as a success), a
// command stored whose event does not come is an EventTimeoutError carrying its stream sequence,
// a query nobody answers is an UnavailableError, a query the service refuses a QueryError.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  BillingClient,
  ConflictError,
  differencesOf,
  EventTimeoutError,
  InvalidCallError,
  QueryError,
  UnavailableError,
} from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { storedMessages, waitFor } from "../support/streams.ts";

let nats: NatsServer;
let client: BillingClient;
let ws: ReturnType<typeof workspace>;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace();
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 15_000 });
});

afterAll(async () => {
  await client?.close();
  await nats?.stop();
  ws?.cleanup();
});

describe("client – validation at the caller", () => {
  it("a bad call throws InvalidCallError naming the field and publishes nothing", async () => {
    const calls: Array<[() => Promise<unknown>, RegExp]> = [
      [
        () => client.credit({ userId: "a", amount: 0 }),
        /credit: amount: must be a positive integer \(1 to 2\^63 - 1\)/,
      ],
      [
        () => client.credit({ userId: "a", amount: -5 }),
        /credit: amount: must be a positive integer \(1 to 2\^63 - 1\)/,
      ],
      [() => client.credit({ amount: 5 } as never), /^credit: userId is required$/],
      [
        () => client.transfer({ fromUserId: "a", toUserId: "b", amount: 1, fee: -1 }),
        /transfer: fee: must be an integer from 0 to 2\^63 - 1/,
      ],
      [() => client.debit({ userId: "bad user", amount: 1 }), /debit: userId/],
      [() => client.hold({ userId: "a", amount: 1, timeoutSeconds: -1 }), /hold: timeoutSeconds/],
      [() => client.capture({ holdId: "nope" }), /capture: holdId: must be a UUID/],
      [
        () => client.transfer({ fromUserId: "a", toUserId: "b", amount: 1, note: "x" } as never),
        /transfer: unknown field note/,
      ],
      [() => client.credit({ userId: "a", amount: 1n << 63n }), /amount/],
    ];
    for (const [call, message] of calls) {
      await expect(call()).rejects.toThrow(InvalidCallError);
      await expect(call()).rejects.toThrow(message);
    }
  });

  it("a payload over the server's max_payload is refused at once naming both sizes, not retried", async () => {
    const max = client.nc.info?.max_payload ?? 0;
    expect(max).toBeGreaterThan(0);
    const big = new Uint8Array(max + 1);
    const error = await client
      .publishRaw("billing.cmd.credit", big, randomUUID())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidCallError);
    expect((error as Error).message).toBe(
      `the command is ${max + 1} bytes; the NATS server takes at most ${max} bytes per message (max_payload)`,
    );
  });
});

describe("client – conflicts", () => {
  it("what differs: another command, user, amount, fee, currency or hold; never what the event cannot tell", () => {
    const credited = {
      event: "credited",
      command: "credit",
      userId: "u",
      amount: "10",
      currency: "EUR",
    };
    expect(differencesOf("credit", { userId: "u", amount: "10" }, credited)).toEqual([]);
    expect(
      differencesOf("credit", { userId: "u", amount: "10", currency: "EUR" }, credited),
    ).toEqual([]);
    expect(
      differencesOf("credit", { userId: "u", amount: "11", currency: "USD" }, credited),
    ).toEqual([
      { field: "amount", sent: "11", stored: "10" },
      { field: "currency", sent: "USD", stored: "EUR" },
    ]);
    expect(differencesOf("debit", { userId: "u", amount: "10" }, credited)).toEqual([
      { field: "command", sent: "debit", stored: "credit" },
    ]);
    const transferred = {
      event: "transferred",
      command: "transfer",
      fromUserId: "a",
      toUserId: "b",
      amount: "5",
      currency: "EUR",
    };
    expect(
      differencesOf(
        "transfer",
        { fromUserId: "a", toUserId: "b", amount: "5", fee: "0" },
        transferred,
      ),
    ).toEqual([]);
    expect(
      differencesOf(
        "transfer",
        { fromUserId: "a", toUserId: "b", amount: "5", fee: "1" },
        transferred,
      ),
    ).toEqual([{ field: "fee", sent: "1", stored: null }]);
    const holdId = randomUUID();
    const captured = {
      event: "captured",
      command: "capture",
      userId: "u",
      holdId,
      amount: "3",
      currency: "EUR",
    };
    expect(differencesOf("capture", { holdId: holdId.toUpperCase() }, captured)).toEqual([]);
    expect(differencesOf("capture", { holdId: randomUUID() }, captured)).toHaveLength(1);
    // A rejection of a command the service could not read carries no fields: only the command is known.
    expect(
      differencesOf(
        "credit",
        { userId: "u", amount: "10" },
        { event: "rejected", command: "credit", reason: "invalid_command" },
      ),
    ).toEqual([]);
    expect(
      differencesOf("credit", { userId: 42, amount: "10" }, { ...credited, userId: "42" }),
    ).toEqual([]);
  });

  it("a used operationId with another amount is a ConflictError carrying the stored event, inside the duplicate window", async () => {
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    try {
      const id = randomUUID();
      const first = await client.credit(
        { operationId: id, userId: "c-conf", amount: "10" },
        { wait: true },
      );
      const error = await client
        .credit({ operationId: id, userId: "c-conf", amount: "99" }, { wait: true })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      const conflict = error as ConflictError;
      expect(conflict.event).toEqual(first.event);
      expect(conflict.differences).toEqual([{ field: "amount", sent: "99", stored: "10" }]);
      expect(conflict.message).toContain(
        `operation ${id} already has a credited event for a different command`,
      );
      // The same command again is no conflict: the first event.
      expect(
        (await client.credit({ operationId: id, userId: "c-conf", amount: 10 }, { wait: true }))
          .event,
      ).toEqual(first.event);
    } finally {
      await service.stop();
    }
  });
});

describe("client – typed errors without a service", () => {
  it("a query nobody answers is an UnavailableError; a send whose event does not come is an EventTimeoutError with its stream sequence", async () => {
    const short = await BillingClient.connect({ servers: nats.url, timeoutMs: 1_500 });
    try {
      await expect(short.balance("nobody")).rejects.toThrow(UnavailableError);
      await expect(short.balance("nobody")).rejects.toThrow("no service answered (no responders)");
      const id = randomUUID();
      const error = await short
        .credit({ operationId: id, userId: "c-late", amount: 1 }, { wait: true })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventTimeoutError);
      const timeout = error as EventTimeoutError;
      expect(timeout.streamSequence).toBeGreaterThan(0);
      expect(timeout.message).toContain(
        `the command is stored (commands stream sequence ${timeout.streamSequence}) and will be applied when a billing service runs; a retry must reuse operationId ${id}`,
      );
    } finally {
      await short.close();
    }
  });

  it("a query the service refuses is a QueryError with its code", async () => {
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    try {
      // The service's query subscriptions reach the server a moment after it started.
      await waitFor("the service answering queries", () =>
        client.balance("alice").then(
          () => true,
          () => false,
        ),
      );
      const error = await client.balance("alice", "XYZ").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueryError);
      expect((error as QueryError).code).toBe("unknown_currency");
    } finally {
      await service.stop();
    }
  });

  it("connecting to a NATS that is down is an UnavailableError naming the server", async () => {
    const down = await startNats();
    const url = down.url;
    await down.stop();
    const error = await BillingClient.connect({ servers: url, maxReconnectAttempts: 0 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toContain(`cannot connect to NATS at ${url}`);
  });
});

describe("client – publishing and waiting", () => {
  it("an operation id is generated when absent, kept when given, and sent as Nats-Msg-Id", async () => {
    const jsm = await jetstreamManager(client.nc);
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    try {
      const mine = randomUUID();
      const given = await client.credit(
        { operationId: mine, userId: "c1", amount: 5n },
        { wait: true },
      );
      expect(given.operationId).toBe(mine);
      expect(given.event).toMatchObject({ event: "credited", operationId: mine, amount: "5" });
      const generated = await client.credit({ userId: "c1", amount: "6" });
      expect(generated.operationId).toMatch(/^[0-9a-f-]{36}$/);
      const stored = (await storedMessages(jsm, "BILLING_COMMANDS")).find(
        (m) => m.seq === generated.streamSequence,
      );
      expect(stored?.header?.get("Nats-Msg-Id")).toBe(generated.operationId);
    } finally {
      await service.stop();
    }
  });

  it("an event stored earlier is found while no service answers queries", async () => {
    const service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    const r = await client.credit({ userId: "c2", amount: 1 }, { wait: true });
    await service.stop();
    expect(await client.waitForEvent(r.operationId, 5_000)).toEqual(r.event);
  });

  it("a publish during a broker outage is retried with the same id and stored once", async () => {
    await nats.kill("SIGKILL");
    const id = randomUUID();
    const sending = client.credit({ operationId: id, userId: "c3", amount: 1 });
    await new Promise((r) => setTimeout(r, 700));
    await nats.restart();
    const sent = await sending;
    expect(sent.operationId).toBe(id);
    const jsm = await jetstreamManager(client.nc);
    const copies = (await storedMessages(jsm, "BILLING_COMMANDS")).filter(
      (m) => m.header?.get("Nats-Msg-Id") === id,
    );
    expect(copies).toHaveLength(1);
  });
});
