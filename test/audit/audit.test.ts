// Proves the finance audit: on a ledger and events stream produced by the real service (a mixed
// workload with rejections, fees, captures, releases, an expired hold, a long userId) it finds
// nothing, also while the service runs and takes load; and on copies of them damaged on purpose
// it finds each kind of discrepancy: a balance changed in the ledger file, a transfer changed or
// deleted in the file, a transfer the service never made, an operation without its event, an
// expiry marker for a live hold, and an events stream with an event deleted, duplicated, altered
// (amount, reason), invented, or not an event at all. The CLI verb's exit codes are 0, 1 and 2.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  jetstreamManager,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { runAudit } from "../../src/audit/audit.ts";
import { auditVerb } from "../../src/audit/cli.ts";
import type { StoredEvent } from "../../src/audit/event-index.ts";
import type { AuditReport, FindingKind } from "../../src/audit/report.ts";
import { eventPages, lastEventSequence } from "../../src/audit/sources.ts";
import { BillingClient } from "@billing-ledger/client";
import type { Config } from "../../src/config/schema.ts";
import { decodeCommand } from "../../src/domain/commands.ts";
import { expiryMarker } from "../../src/domain/expiry.ts";
import { parseOperationId } from "../../src/domain/ids.ts";
import { planTransfers } from "../../src/domain/plan.ts";
import { u128ToSql } from "../../src/ledger/encoding.ts";
import { openLedger } from "../../src/ledger/index.ts";
import type { Ledger } from "../../src/ledger/port.ts";
import { readChart, type RunningService } from "../../src/service.ts";
import type { Chart } from "../../src/domain/accounts.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, startInProcess, testConfig, workspace } from "../support/service.ts";
import { waitFor, waitIdle } from "../support/streams.ts";
import { inParallel, mixedWorkload } from "../support/workload.ts";
import {
  copyLedger,
  deleteTransfer,
  EventsCopy,
  payloadOf,
  rawLedger,
  removeCopies,
  withPayload,
} from "./fixture.ts";

const OVERRIDES = {
  worker: { holdGraceMs: 5_000, holdWaitNakMs: 200 },
  expiry: { delayMs: 1_000, sweepIntervalMs: 200 },
  ops: { port: 0 },
};
const STREAM = "BILLING_EVENTS";
const wait = { wait: true } as const;

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let client: BillingClient;
let js: JetStreamClient;
let jsm: JetStreamManager;
let config: Config;
let copy: EventsCopy;
/** The events as the service stored them, before any damage. */
let events: StoredEvent[] = [];
const ids: Record<string, string> = {};
const users = {
  a: "aud-a",
  b: "aud-b",
  c: "aud-c",
  broke: "aud-broke",
  long: `aud-long-${"y".repeat(40)}`,
};

async function healthyWorkload(): Promise<void> {
  ids["creditA"] = (await client.credit({ userId: users.a, amount: 100 }, wait)).operationId;
  ids["debitA"] = (await client.debit({ userId: users.a, amount: 80 }, wait)).operationId;
  ids["creditB"] = (await client.credit({ userId: users.b, amount: 1000 }, wait)).operationId;
  ids["openHold"] = (await client.hold({ userId: users.b, amount: 50 }, wait)).operationId;
  ids["expiringHold"] = (
    await client.hold({ userId: users.b, amount: 20, timeoutSeconds: 1 }, wait)
  ).operationId;
  const captured = await client.hold({ userId: users.b, amount: 30 }, wait);
  await client.capture({ holdId: captured.operationId }, wait);
  const released = await client.hold({ userId: users.b, amount: 10 }, wait);
  await client.release({ holdId: released.operationId }, wait);
  ids["feeTransfer"] = (
    await client.transfer({ fromUserId: users.b, toUserId: users.c, amount: 40, fee: 3 }, wait)
  ).operationId;
  ids["insufficient"] = (await client.debit({ userId: users.broke, amount: 5 }, wait)).operationId;
  await client.transfer({ fromUserId: users.b, toUserId: users.b, amount: 1 }, wait);
  await client.credit({ userId: users.long, amount: 7, currency: "USD" }, wait);
  const encoder = new TextEncoder();
  await inParallel(
    mixedWorkload(400, 20, 42, "aud-w"),
    32,
    async (c) =>
      void (await client.publishRaw(
        c.subject,
        encoder.encode(JSON.stringify(c.body)),
        c.operationId,
      )),
  );
  await waitFor(
    "the expired event",
    async () =>
      (await client.holdStatus(ids["expiringHold"] as string))["status"] === "expired" &&
      (await jsm.direct
        .getMessage(STREAM, { last_by_subj: `billing.evt.expired.${ids["expiringHold"]}` })
        .catch(() => null)) !== null,
    20_000,
    100,
  );
  await waitIdle(jsm);
}

async function readAll(j: JetStreamClient, m: JetStreamManager): Promise<StoredEvent[]> {
  const state = await lastEventSequence(m, STREAM);
  const out: StoredEvent[] = [];
  for await (const page of eventPages(j, STREAM, state.first, state.last, 500)) out.push(...page);
  return out;
}

beforeAll(async () => {
  nats = await startNats();
  ws = workspace(OVERRIDES);
  config = testConfig(nats.url, ws.ledgerPath, ws.configPath);
  const service: RunningService = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
  client = await BillingClient.connect({ servers: nats.url, timeoutMs: 20_000 });
  js = jetstream(client.nc);
  jsm = await jetstreamManager(client.nc);
  try {
    await healthyWorkload();
  } finally {
    await service.stop(); // the ledger file is closed and quiet from here on
  }
  events = await readAll(js, jsm);
  copy = await EventsCopy.start();
}, 120_000);

afterAll(async () => {
  await client?.close();
  await copy?.stop();
  await nats?.stop();
  ws?.cleanup();
  removeCopies();
});

/** Audits a ledger file (the original or a damaged copy) with the real events or a damaged copy. */
/** The chart of the deployment the service bound at its first start (its id space lives in the ledger). */
let deployed: Chart | null = null;
async function deployedChart(): Promise<Chart> {
  if (deployed) return deployed;
  const ledger = await openLedger({ driver: "embedded", path: ws.ledgerPath });
  try {
    return (deployed = await readChart(config, { js, jsm }, ledger));
  } finally {
    ledger.destroy();
  }
}

async function audit(
  o: { ledgerPath?: string; events?: StoredEvent[] } = {},
): Promise<AuditReport> {
  const chart = await deployedChart();
  const ledger = await openLedger({ driver: "embedded", path: o.ledgerPath ?? ws.ledgerPath });
  try {
    if (o.events) await copy.fill(STREAM, o.events);
    const source = o.events ? { js: copy.js, jsm: copy.jsm } : { js, jsm };
    return await runAudit({ ledger, ...source, chart, eventsStream: STREAM }, { settleMs: 0 });
  } finally {
    ledger.destroy();
  }
}

async function damageWith(change: (ledger: Ledger) => Promise<void>): Promise<string> {
  const path = copyLedger(ws.ledgerPath);
  const ledger = await openLedger({ driver: "embedded", path });
  try {
    await change(ledger);
  } finally {
    ledger.destroy();
  }
  return path;
}

function kinds(r: AuditReport): FindingKind[] {
  return Object.keys(r.findings.byKind).sort() as FindingKind[];
}

function idOf(name: string): bigint {
  return parseOperationId(ids[name]) as bigint;
}

function eventOf(name: string): StoredEvent {
  const e = events.find(
    (x) => x.subject.endsWith(`.${ids[name]}`) && !x.subject.includes(".expired."),
  );
  if (!e) throw new Error(`no event for ${name}`);
  return e;
}

async function captureStdout(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    return true;
  });
  try {
    return { code: await run(), out };
  } finally {
    spy.mockRestore();
  }
}

describe("audit – a healthy ledger", () => {
  it("finds nothing on what the real service produced, and counts what it checked", async () => {
    const r = await audit();
    expect(r.findings.listed).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.counts.applied).toBeGreaterThan(300);
    expect(r.counts.rejected).toBeGreaterThanOrEqual(2);
    expect(r.counts.feeLegs).toBeGreaterThanOrEqual(1);
    expect(r.counts.expiryMarkers).toBeGreaterThanOrEqual(1);
    expect(r.counts.expiredEvents).toBe(r.counts.expiryMarkers);
    expect(r.counts.events).toBe(r.counts.applied + r.counts.rejected + r.counts.expiredEvents);
    expect(r.counts.accountsVerified).toBe(r.counts.accounts);
    expect(r.currencies.every((c) => c.balanced)).toBe(true);
    expect(r.openHolds.listed.map((h) => h.holdId)).toContain(ids["openHold"]);
    expect(r.openHolds.listed.find((h) => h.holdId === ids["openHold"])).toMatchObject({
      userId: users.b,
      currency: "EUR",
      amount: "50",
      expiresInMs: null,
    });
  });

  it("billing audit prints the summary table first and exits 0; with --json it prints the report", async () => {
    const text = await captureStdout(() => auditVerb([], config));
    expect(text.code).toBe(0);
    expect(text.out.split("\n")[0]).toBe("billing audit: OK");
    expect(text.out).toMatch(/currency\s+ledger\s+accounts\s+transfers\s+debits posted/);
    const json = await captureStdout(() => auditVerb(["--json", "--holds", "3"], config));
    expect(json.code).toBe(0);
    const report = JSON.parse(json.out) as AuditReport;
    expect(report.ok).toBe(true);
    expect(report.openHolds.listed).toHaveLength(3);
  });

  it("billing audit exits 2 on a usage error and a missing ledger file, 3 when NATS cannot be reached", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await auditVerb(["--bogus"], config)).toBe(2);
      expect(await auditVerb(["--settle-ms"], config)).toBe(2);
      const down = await startNats();
      const url = down.url;
      await down.stop();
      expect(await auditVerb([], testConfig(url, ws.ledgerPath, ws.configPath))).toBe(3);
      // A ledger path with no file is refused, naming the path, and no empty ledger is created there.
      const missing = `${ws.ledgerPath}.missing`;
      expect(await auditVerb([], testConfig(nats.url, missing, ws.configPath))).toBe(2);
      expect(stderr.mock.calls.map((c) => String(c[0])).join("")).toContain(
        `no ledger file at ${missing}`,
      );
      expect(existsSync(missing)).toBe(false);
    } finally {
      stderr.mockRestore();
    }
  });
});

describe("audit – a damaged ledger file", () => {
  it("a balance changed in the file is account_mismatch and unbalances its currency; the verb exits 1", async () => {
    const path = copyLedger(ws.ledgerPath);
    const db = rawLedger(path);
    const ledger = await openLedger({ driver: "embedded", path });
    const [account] = await ledger.lookupAccounts([
      (await ledger.lookupTransfers([idOf("creditB")]))[0]?.credit_account_id ?? 0n,
    ]);
    ledger.destroy();
    db.prepare("UPDATE accounts SET credits_posted = ? WHERE id = ?").run(
      u128ToSql((account?.credits_posted ?? 0n) + 1n),
      u128ToSql(account?.id ?? 0n),
    );
    db.close();
    const r = await audit({ ledgerPath: path });
    expect(kinds(r)).toEqual(["account_mismatch", "unbalanced_ledger"]);
    expect(r.findings.listed.find((f) => f.kind === "account_mismatch")?.ids).toMatchObject({
      userId: users.b,
    });
    expect(r.currencies.find((c) => c.currency === "EUR")?.balanced).toBe(false);
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const verb = await captureStdout(() =>
        auditVerb([], testConfig(nats.url, path, ws.configPath)),
      );
      expect(verb.code).toBe(1);
      expect(verb.out).toContain("[account_mismatch]");
    } finally {
      stderr.mockRestore();
    }
  });

  it("a transfer's amount changed in the file is found on its accounts and as a transfer the service never wrote", async () => {
    const path = copyLedger(ws.ledgerPath);
    const db = rawLedger(path);
    db.prepare("UPDATE transfers SET amount = ? WHERE id = ?").run(
      u128ToSql(1001n),
      u128ToSql(idOf("creditB")),
    );
    db.close();
    expect(kinds(await audit({ ledgerPath: path }))).toEqual(
      expect.arrayContaining(["account_mismatch", "foreign_transfer"]),
    );
  });

  it("a credit deleted from the file leaves a later debit below zero: negative_available", async () => {
    const path = copyLedger(ws.ledgerPath);
    const db = rawLedger(path);
    deleteTransfer(db, u128ToSql(idOf("creditA")));
    db.close();
    const r = await audit({ ledgerPath: path });
    expect(kinds(r)).toEqual(
      expect.arrayContaining(["negative_available", "account_mismatch", "orphan_event"]),
    );
    expect(r.findings.listed.find((f) => f.kind === "orphan_event")?.ids["id"]).toBe(
      ids["creditA"],
    );
  });

  it("a transfer written through the port that no command describes is foreign_transfer", async () => {
    const path = await damageWith(async (ledger) => {
      const [credit] = await ledger.lookupTransfers([idOf("creditA")]);
      if (!credit) throw new Error("creditA missing");
      const results = await ledger.createTransfers([
        {
          ...credit,
          id: parseOperationId(randomUUID()) as bigint,
          user_data_128: 12345n,
          timestamp: 0n,
        },
      ]);
      expect(results.map((x) => x.status)).toEqual([0xffffffff]);
    });
    expect(kinds(await audit({ ledgerPath: path }))).toEqual(["foreign_transfer"]);
  });

  it("an operation applied in the ledger with no event is missing_event", async () => {
    const operationId = randomUUID();
    const path = await damageWith(async (ledger) => {
      const data = new TextEncoder().encode(
        JSON.stringify({ operationId, userId: users.a, amount: 5 }),
      );
      const chart = await deployedChart();
      const decoded = decodeCommand("billing.cmd.credit", data, chart, config.worker);
      if (decoded.kind !== "command") throw new Error("the credit does not decode");
      await ledger.createTransfers(
        planTransfers(chart, decoded.command, decoded.fingerprint, null),
      );
    });
    const r = await audit({ ledgerPath: path });
    expect(kinds(r)).toEqual(["missing_event"]);
    expect(r.findings.listed[0]?.ids["id"]).toBe(operationId);
  });

  it("an expiry marker for a hold that has not expired is expiry_mismatch", async () => {
    const path = await damageWith(async (ledger) => {
      const [hold] = await ledger.lookupTransfers([idOf("openHold")]);
      if (!hold) throw new Error("open hold missing");
      await ledger.createTransfers([expiryMarker(await deployedChart(), hold)]);
    });
    expect(kinds(await audit({ ledgerPath: path }))).toEqual(["expiry_mismatch"]);
  });
});

describe("audit – a damaged events stream", () => {
  it("the untouched copy finds nothing (the copy itself is faithful)", async () => {
    expect((await audit({ events })).findings.listed).toEqual([]);
  });

  it("a deleted event is missing_event naming its operation", async () => {
    const r = await audit({ events: events.filter((e) => e !== eventOf("creditB")) });
    expect(kinds(r)).toEqual(["missing_event"]);
    expect(r.findings.listed[0]?.ids["id"]).toBe(ids["creditB"]);
  });

  it("a second copy of an event is duplicate_event", async () => {
    const r = await audit({ events: [...events, eventOf("debitA")] });
    expect(kinds(r)).toEqual(["duplicate_event"]);
    expect(r.findings.listed[0]?.ids["id"]).toBe(ids["debitA"]);
  });

  it("an event with a wrong amount is event_mismatch", async () => {
    const bad = eventOf("feeTransfer");
    const r = await audit({
      events: events.map((e) =>
        e === bad ? withPayload(e, { ...payloadOf(e), amount: "41" }) : e,
      ),
    });
    expect(kinds(r)).toEqual(["event_mismatch"]);
    expect(r.findings.listed[0]?.ids["operationId"]).toBe(ids["feeTransfer"]);
  });

  it("a rejected event whose reason is not its marker's is event_mismatch", async () => {
    const bad = eventOf("insufficient");
    const r = await audit({
      events: events.map((e) =>
        e === bad ? withPayload(e, { ...payloadOf(e), reason: "hold_not_found" }) : e,
      ),
    });
    expect(kinds(r)).toEqual(["event_mismatch"]);
  });

  it("a fake event for an operation the ledger never saw is orphan_event, worded 'a credited event'", async () => {
    const id = randomUUID();
    const fake = { ...eventOf("creditA"), subject: `billing.evt.credited.${id}` };
    const r = await audit({
      events: [
        ...events,
        withPayload(fake, { ...payloadOf(fake), operationId: id, amount: "1000000" }),
      ],
    });
    expect(kinds(r)).toEqual(["orphan_event"]);
    expect(r.findings.listed.find((f) => f.kind === "orphan_event")?.message).toBe(
      "a credited event without a ledger record",
    );
  });

  it("a message on the events stream that is no event is malformed_event", async () => {
    const junk = {
      seq: 0,
      subject: `billing.evt.credited.${randomUUID()}`,
      data: new TextEncoder().encode("{not json"),
    };
    expect(kinds(await audit({ events: [...events, junk] }))).toEqual(["malformed_event"]);
  });
});

describe("audit – while the service runs", () => {
  it("finds nothing while a mixed workload is being applied", async () => {
    const service = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
    try {
      const encoder = new TextEncoder();
      const load = inParallel(
        mixedWorkload(3000, 30, 7, "aud-live"),
        8,
        async (c) =>
          void (await client.publishRaw(
            c.subject,
            encoder.encode(JSON.stringify(c.body)),
            c.operationId,
          )),
      );
      await waitFor(
        "the load under way",
        async () => (await lastEventSequence(jsm, STREAM)).last > events.length + 100,
        30_000,
        50,
      );
      const ledger = await openLedger({ driver: "embedded", path: ws.ledgerPath });
      try {
        const r = await runAudit(
          { ledger, js, jsm, chart: await deployedChart(), eventsStream: STREAM },
          { settleMs: 30_000 },
        );
        expect(r.findings.listed).toEqual([]);
        expect(r.counts.applied).toBeGreaterThan(400);
      } finally {
        ledger.destroy();
      }
      await load;
    } finally {
      await service.kill("SIGTERM");
    }
  });
});
