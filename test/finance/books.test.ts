// Proves the finance tools on a ledger the real service built from real commands over a real
// nats-server (a mixed workload with fees, captures, releases, an expired hold, rejections, a long
// userId and a second currency): the journal's lines balance per operation and, folded per account
// under the two-phase rules, equal the trial balance; every statement's running balances equal the
// balances in that user's events; a trial balance at past instants equals the reference model
// (test/support/model.ts) replayed from the events up to that instant; the trial balance of a file
// whose transfer was altered behind the engine's back does not balance (exit 1); the real CLI runs
// each verb, exits 2 naming a bad flag, 1 for a user with no account and 3 when the broker is away;
// a statement period opens at the balance before it; and a trial balance and an export taken
// while a service applies load balance. The TigerBeetle half runs when TB_ADDRESSES is set.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { StoredEvent } from "../../src/audit/event-index.ts";
import { eventPages, lastEventSequence } from "../../src/audit/sources.ts";
import { BillingClient } from "@billing-ledger/client";
import type { Config } from "../../src/config/schema.ts";
import { financeVerbs } from "../../src/finance/cli.ts";
import { isoOfNs } from "../../src/finance/money-text.ts";
import { u128ToSql } from "../../src/ledger/encoding.ts";
import { formatOperationId, parseOperationId } from "../../src/domain/ids.ts";
import type { Chart } from "../../src/domain/accounts.ts";
import { openLedger } from "../../src/ledger/index.ts";
import {
  ledgerOptionsOf,
  readChart,
  startService,
  type RunningService,
} from "../../src/service.ts";
import { createLogger } from "../../src/lib/log.ts";
import { BalanceModel } from "../support/model.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, testConfig, workspace } from "../support/service.ts";
import { waitFor, waitIdle } from "../support/streams.ts";
import { inParallel, mixedWorkload } from "../support/workload.ts";
import { copyLedger, rawLedger, removeCopies } from "../audit/fixture.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;
const OVERRIDES = {
  worker: { holdGraceMs: 5_000, holdWaitNakMs: 200 },
  expiry: { delayMs: 1_000, sweepIntervalMs: 200 },
  ops: { port: 0 },
};
const STREAM = "BILLING_EVENTS";
const wait = { wait: true } as const;
const CLI_TIMEOUT_MS = 60_000;

type Row = Record<string, string>;
type Event = Record<string, unknown> & { event: string };

const tbAddresses = process.env["TB_ADDRESSES"];
const drivers = [
  { name: "embedded", skip: null as string | null },
  {
    name: "tigerbeetle",
    skip: tbAddresses
      ? null
      : "TB_ADDRESSES is not set (e.g. TB_ADDRESSES=3000 after `docker compose up -d tigerbeetle`)",
  },
];

for (const driver of drivers) {
  // Like the ledger suites: the TigerBeetle half is registered, and skipped with its reason printed.
  if (driver.skip !== null) console.log(`finance on ${driver.name}: skipped: ${driver.skip}`);
  describe.skipIf(driver.skip !== null)(`finance on ${driver.name}`, () =>
    suite(driver.name as "embedded" | "tigerbeetle"),
  );
}

function suite(driverName: "embedded" | "tigerbeetle"): void {
  let nats: NatsServer;
  let ws: ReturnType<typeof workspace>;
  let client: BillingClient;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let config: Config;
  let env: Record<string, string>;
  let out: string;
  let events: Event[] = [];
  const ids: Record<string, string> = {};
  const run = Math.random().toString(36).slice(2, 8);
  const users = {
    a: `fin-${run}-a`,
    b: `fin-${run}-b`,
    c: `fin-${run}-c`,
    broke: `fin-${run}-broke`,
    long: `fin-${run}-long-${"z".repeat(40)}`,
  };

  async function workload(): Promise<void> {
    ids["creditA"] = (await client.credit({ userId: users.a, amount: 100 }, wait)).operationId;
    await client.debit({ userId: users.a, amount: 80 }, wait);
    await client.credit({ userId: users.b, amount: 1000 }, wait);
    await client.hold({ userId: users.b, amount: 50 }, wait);
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
    await client.debit({ userId: users.broke, amount: 5 }, wait);
    await client.credit({ userId: users.long, amount: 7, currency: "USD" }, wait);
    await waitFor(
      "the expired event",
      async () => (await client.holdStatus(ids["expiringHold"] as string))["status"] === "expired",
      20_000,
      100,
    );
    const encoder = new TextEncoder();
    await inParallel(
      mixedWorkload(300, 12, 7, `fin-${run}-w`),
      16,
      async (c) =>
        void (await client.publishRaw(
          c.subject,
          encoder.encode(JSON.stringify(c.body)),
          c.operationId,
        )),
    );
    await waitIdle(jsm);
    await waitFor(
      "the expired event stored",
      async () =>
        (await jsm.direct
          .getMessage(STREAM, { last_by_subj: `billing.evt.expired.${ids["expiringHold"]}` })
          .catch(() => null)) !== null,
      20_000,
      100,
    );
  }

  async function readEvents(): Promise<Event[]> {
    const state = await lastEventSequence(jsm, STREAM);
    const all: StoredEvent[] = [];
    for await (const page of eventPages(js, STREAM, state.first, state.last, 500))
      all.push(...page);
    return all.map((e) => JSON.parse(new TextDecoder().decode(e.data)) as Event);
  }

  beforeAll(async () => {
    nats = await startNats();
    const tb =
      driverName === "tigerbeetle"
        ? {
            ledger: {
              driver: "tigerbeetle",
              shared: true,
              tigerbeetle: {
                addresses: (tbAddresses ?? "").split(","),
                clusterId: process.env["TB_CLUSTER_ID"] ?? "0",
              },
            },
          }
        : {};
    ws = workspace({ ...OVERRIDES, ...tb });
    out = mkdtempSync(join(tmpdir(), "billing-finance-"));
    config = testConfig(nats.url, ws.ledgerPath, ws.configPath);
    env = {
      NATS_URL: nats.url,
      LEDGER_PATH: ws.ledgerPath,
      BILLING_CONFIG: ws.configPath,
      LOG_LEVEL: "warn",
    };
    const service: RunningService = await startService(config, createLogger(config.log.level));
    client = await BillingClient.connect({ servers: nats.url, timeoutMs: 20_000 });
    js = jetstream(client.nc);
    jsm = await jetstreamManager(client.nc);
    try {
      await workload();
    } finally {
      await service.stop();
    }
    events = await readEvents();
  }, 180_000);

  afterAll(async () => {
    await client?.close();
    await nats?.stop();
    ws?.cleanup();
    if (out) rmSync(out, { recursive: true, force: true });
    removeCopies();
  });

  /** Spawns the real CLI; resolves with its exit code and output. */
  function cli(
    args: string[],
    extraEnv: Record<string, string> = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, ...env, ...extraEnv },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(
          new Error(
            `billing ${args.join(" ")} did not finish within ${CLI_TIMEOUT_MS} ms:\n${stderr}`,
          ),
        );
      }, CLI_TIMEOUT_MS);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  let file = 0;
  /** Runs a verb in this process with --out to a file; returns its exit code and the file's lines. */
  async function verb(
    name: string,
    args: string[],
    cfg: Config = config,
  ): Promise<{ code: number; text: string }> {
    const path = join(out, `out-${(file += 1)}`);
    const code = await (
      financeVerbs[name] as { run: (a: string[], c: Config) => Promise<number> }
    ).run([...args, "--out", path], cfg);
    return { code, text: readFileSync(path, "utf8") };
  }

  const jsonl = (text: string): Row[] =>
    text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Row);

  function csvRows(text: string): Row[] {
    const [header, ...lines] = text.split("\n").filter((l) => l !== "");
    const keys = (header as string).split(",");
    // The workload's owners and ids hold no commas or quotes, so a split is exact here.
    return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [keys[i], v])) as Row);
  }

  type Sides = {
    debits_posted: bigint;
    credits_posted: bigint;
    debits_pending: bigint;
    credits_pending: bigint;
  };
  const zero = (): Sides => ({
    debits_posted: 0n,
    credits_posted: 0n,
    debits_pending: 0n,
    credits_pending: 0n,
  });

  /** Folds journal lines per account under the two-phase rules, as the ledger applies them. */
  function foldJournal(lines: Row[]): Map<string, Sides> {
    const accounts = new Map<string, Sides>();
    const of = (id: string): Sides =>
      accounts.get(id) ?? (accounts.set(id, zero()), accounts.get(id) as Sides);
    for (const l of lines) {
      const amount = BigInt(l["amount_minor"] as string);
      const dr = of(l["debit_account"] as string);
      const cr = of(l["credit_account"] as string);
      switch (l["status"]) {
        case "posted":
          dr.debits_posted += amount;
          cr.credits_posted += amount;
          if (l["command"] === "capture") {
            dr.debits_pending -= amount;
            cr.credits_pending -= amount;
          }
          break;
        case "pending":
          dr.debits_pending += amount;
          cr.credits_pending += amount;
          break;
        case "voided":
        case "expired":
          dr.debits_pending -= amount;
          cr.credits_pending -= amount;
          break;
        case "rejection record":
          expect(amount).toBe(0n);
          break;
        default:
          throw new Error(`unknown status ${l["status"]}`);
      }
    }
    return accounts;
  }

  async function deployedChart(): Promise<Chart> {
    const ledger = await openLedger(ledgerOptionsOf(config));
    try {
      return await readChart(config, { js, jsm }, ledger);
    } finally {
      ledger.destroy();
    }
  }

  /** What an operation's lines do to each owner: +credit −debit, per status ("posted", "pending", …). */
  function netOf(lines: Row[]): Record<string, string> {
    const net = new Map<string, bigint>();
    const add = (key: string, x: bigint) => net.set(key, (net.get(key) ?? 0n) + x);
    for (const l of lines) {
      if (l["status"] === "rejection record") continue;
      const amount = BigInt(l["amount_minor"] as string);
      add(`${l["status"]} ${l["credit_owner"]}`, amount);
      add(`${l["status"]} ${l["debit_owner"]}`, -amount);
    }
    return Object.fromEntries(
      [...net].filter(([, x]) => x !== 0n).map(([k, x]) => [k, x.toString()]),
    );
  }

  /** The same, from the event alone. */
  function expectedNet(e: Event): Record<string, string> {
    const amount = BigInt(String(e["amount"] ?? "0"));
    const fee = BigInt(String(e["fee"] ?? "0"));
    const settlement = `settlement ${String(e["currency"])}`;
    const user = String(e["userId"]);
    const pair = (status: string, from: string, to: string, x: bigint) => ({
      [`${status} ${from}`]: (-x).toString(),
      [`${status} ${to}`]: x.toString(),
    });
    switch (e.event) {
      case "credited":
        return pair("posted", settlement, user, amount);
      case "debited":
        return pair("posted", user, settlement, amount);
      case "captured":
        return pair("posted", user, settlement, amount);
      case "held":
        return pair("pending", user, settlement, amount);
      case "released":
        return pair("voided", user, settlement, amount);
      case "expired":
        return pair("expired", user, settlement, amount);
      case "transferred": {
        const net: Record<string, string> = {
          [`posted ${String(e["fromUserId"])}`]: (-(amount + fee)).toString(),
          [`posted ${String(e["toUserId"])}`]: amount.toString(),
        };
        if (fee > 0n) net[`posted fee ${String(e["currency"])}`] = fee.toString();
        return net;
      }
      default:
        return {};
    }
  }

  it("export journal: every operation's lines balance, and folded per account they equal the trial balance", async () => {
    // One instant for both: the journal of everything before it folds to the trial balance at it,
    // whatever else writes to the ledger meanwhile (a shared TigerBeetle cluster).
    const instant = new Date().toISOString();
    const journal = await cli(["export", "journal", "--to", instant, "--format", "jsonl"]);
    expect(journal.code, journal.stderr).toBe(0);
    const lines = jsonl(journal.stdout);
    const trial = await cli(["trial-balance", "--at", instant, "--format", "csv"]);
    expect(trial.code, trial.stderr).toBe(0);
    const rows = csvRows(trial.stdout);

    expect(new Set(lines.map((l) => l["status"]))).toEqual(
      new Set(["posted", "pending", "voided", "expired", "rejection record"]),
    );
    // Per operation and currency, debits equal credits; a transfer with a fee is two lines of one operation.
    const perOp = new Map<string, { debit: bigint; credit: bigint; legs: string[] }>();
    for (const l of lines) {
      const key = `${l["operation_id"]}/${l["currency"]}/${l["status"]}`;
      const op = perOp.get(key) ?? { debit: 0n, credit: 0n, legs: [] };
      op.debit += BigInt(l["amount_minor"] as string);
      op.credit += BigInt(l["amount_minor"] as string);
      op.legs.push(l["leg"] as string);
      perOp.set(key, op);
      expect(l["debit_account"]).not.toBe(l["credit_account"]);
      expect(BigInt(l["amount_minor"] as string) >= 0n).toBe(true);
    }
    for (const op of perOp.values()) expect(op.debit).toBe(op.credit);
    // Each operation's lines move what its event says, between the accounts it names.
    const byOp = new Map<string, Row[]>();
    for (const l of lines)
      byOp.set(l["operation_id"] as string, [...(byOp.get(l["operation_id"] as string) ?? []), l]);
    let matched = 0;
    const chart = await deployedChart();
    const seen = new Set<string>();
    for (const e of events) {
      let id = String(e["operationId"] ?? e["holdId"]);
      // A rejection recorded under a burned operation id is in the ledger under its burned-marker
      // id, and only the event names the operation (docs/finance.md).
      if (!byOp.has(id) && e.event === "rejected")
        id = formatOperationId(chart.space.burnedMarkerId(parseOperationId(id) as bigint));
      seen.add(id);
      const own = (byOp.get(id) ?? []).filter(
        (l) => (e.event === "expired") === (l["status"] === "expired"),
      );
      expect(own.length, `${e.event} ${id}`).toBeGreaterThan(0);
      expect(netOf(own), `${e.event} ${id}`).toEqual(expectedNet(e));
      if (e.event === "rejected")
        expect(own.map((l) => [l["status"], l["reason"], l["command"]])).toEqual([
          ["rejection record", e["reason"], e["command"]],
        ]);
      matched += 1;
    }
    expect(matched).toBe(events.length);
    // And no line belongs to no operation (on TigerBeetle the cluster is shared with other runs,
    // whose transfers are in the journal too).
    if (driverName === "embedded")
      expect(lines.filter((l) => !seen.has(l["operation_id"] as string))).toEqual([]);
    expect(perOp.get(`${ids["feeTransfer"]}/EUR/posted`)?.legs).toEqual(["amount", "fee"]);
    const fee = lines.find((l) => l["operation_id"] === ids["feeTransfer"] && l["leg"] === "fee");
    expect(fee).toMatchObject({
      debit_owner: users.b,
      credit_owner: "fee EUR",
      amount_minor: "3",
      amount: "0.03",
      currency: "EUR",
    });
    expect(
      lines.find((l) => l["operation_id"] === ids["expiringHold"] && l["status"] === "expired"),
    ).toMatchObject({ debit_owner: users.b, credit_owner: "settlement EUR", amount_minor: "20" });
    expect(
      lines.find((l) => l["status"] === "rejection record" && l["reason"] === "insufficient_funds"),
    ).toMatchObject({ command: "debit", amount_minor: "0", debit_owner: "marker debit" });
    expect(
      lines.some((l) => l["debit_owner"] === users.long || l["credit_owner"] === users.long),
    ).toBe(true);

    const folded = foldJournal(lines);
    const accountRows = rows.filter((r) => r["kind"] !== "total");
    for (const r of accountRows) {
      const f = folded.get(r["account"] as string) ?? zero();
      expect({
        account: r["owner"],
        dp: f.debits_posted,
        cp: f.credits_posted,
        dpe: f.debits_pending,
        cpe: f.credits_pending,
      }).toEqual({
        account: r["owner"],
        dp: BigInt(r["debits_posted"] as string),
        cp: BigInt(r["credits_posted"] as string),
        dpe: BigInt(r["debits_pending"] as string),
        cpe: BigInt(r["credits_pending"] as string),
      });
    }
    for (const id of folded.keys()) expect(accountRows.some((r) => r["account"] === id)).toBe(true);
    const totals = rows.filter((r) => r["kind"] === "total");
    expect(totals.map((t) => t["currency"]).sort()).toEqual(
      ["", ...config.currencies.map((c) => c.code)].sort(),
    );
    for (const t of totals) expect(t["balanced"]).toBe("yes");
  }, 120_000);

  it("export journal: a range starting at a fee leg still names its operation; --from/--to bound the lines", async () => {
    const all = jsonl((await verb("export", ["journal", "--format", "jsonl"])).text);
    const fee = all.find((l) => l["leg"] === "fee") as Row;
    const from = isoOfNs(BigInt(fee["ledger_timestamp"] as string));
    const to = isoOfNs(BigInt(fee["ledger_timestamp"] as string) + 1_000_000n); // exclusive
    const r = await verb("export", ["journal", "--from", from, "--to", to, "--format", "jsonl"]);
    expect(r.code).toBe(0);
    const lines = jsonl(r.text);
    expect(lines[0]).toEqual(fee);
    expect(
      lines.every(
        (l) => BigInt(l["ledger_timestamp"] as string) >= BigInt(fee["ledger_timestamp"] as string),
      ),
    ).toBe(true);
    expect(lines.length).toBe(
      all.filter(
        (l) =>
          BigInt(l["ledger_timestamp"] as string) >= BigInt(fee["ledger_timestamp"] as string) &&
          BigInt(l["ledger_timestamp"] as string) <
            BigInt(fee["ledger_timestamp"] as string) + 1_000_000n,
      ).length,
    );
  });

  it("statement: each user's running balances equal the balances in that user's events, operation by operation", async () => {
    const people = [
      ...new Set(
        events.flatMap((e) =>
          ((e["balances"] as Row[] | undefined) ?? []).map(
            (b) => `${b["currency"]}/${b["userId"]}`,
          ),
        ),
      ),
    ];
    expect(people.length).toBeGreaterThan(12);
    let checked = 0;
    for (const person of people) {
      const [currency, userId] = person.split(/\/(.*)/s) as [string, string];
      const r = await verb("statement", [userId, "--currency", currency, "--format", "jsonl"]);
      expect(r.code).toBe(0);
      const rows = jsonl(r.text);
      const movements = rows.filter((x) => x["operation_id"] !== "");
      const lastOf = new Map<string, Row>();
      // An operation's last row (a transfer's fee leg) carries its event's balances; an expired
      // hold's own row comes later and has no event balances (expired events carry none).
      for (const m of movements)
        if (m["leg"] !== "expiry") lastOf.set(m["operation_id"] as string, m);
      for (const e of events) {
        const line = ((e["balances"] as Row[] | undefined) ?? []).find(
          (b) => b["userId"] === userId && b["currency"] === currency,
        );
        if (line === undefined) continue;
        const row = lastOf.get(String(e["operationId"]));
        expect(row, `${userId}: ${e.event} ${String(e["operationId"])}`).toBeDefined();
        expect({
          posted: row?.["posted"],
          held: row?.["held"],
          available: row?.["available"],
        }).toEqual({ posted: line["posted"], held: line["held"], available: line["available"] });
        checked += 1;
      }
      const closing = rows[rows.length - 1] as Row;
      expect(closing["leg"]).toBe("closing");
      const model = new BalanceModel();
      model.applyAll(events);
      const want = model.users.get(person) ?? { posted: 0n, held: 0n };
      expect({ posted: closing["posted"], held: closing["held"] }).toEqual({
        posted: want.posted.toString(),
        held: want.held.toString(),
      });
    }
    expect(checked).toBeGreaterThan(300);
    // The expired hold shows as its own movement at its deadline.
    const b = jsonl((await verb("statement", [users.b, "--format", "jsonl"])).text);
    expect(
      b.find((x) => x["operation_id"] === ids["expiringHold"] && x["status"] === "expired"),
    ).toMatchObject({ held_change: "-20", leg: "expiry" });
    // A period: the opening is the balance after the last movement before --from, and the
    // movements are those from --from on, before --to.
    const moves = b.filter((x) => x["operation_id"] !== "");
    const from = moves[4] as Row;
    const to = moves[8] as Row;
    const period = jsonl(
      (
        await verb("statement", [
          users.b,
          "--from",
          isoOfNs(BigInt(from["ledger_timestamp"] as string)),
          "--to",
          isoOfNs(BigInt(to["ledger_timestamp"] as string)),
          "--format",
          "jsonl",
        ])
      ).text,
    );
    expect(period[0]).toMatchObject({
      leg: "opening",
      posted: moves[3]?.["posted"],
      held: moves[3]?.["held"],
      available: moves[3]?.["available"],
    });
    expect(period.slice(1, -1)).toEqual(moves.slice(4, 8));
    expect(period[period.length - 1]).toMatchObject({
      leg: "closing",
      posted: moves[7]?.["posted"],
      held: moves[7]?.["held"],
    });
  }, 180_000);

  it("trial balance at past instants equals the reference model replayed from the events to that instant", async () => {
    const timed = events
      .filter((e) => e["ledgerTimestamp"] !== undefined)
      .sort((x, y) =>
        BigInt(String(x["ledgerTimestamp"])) < BigInt(String(y["ledgerTimestamp"])) ? -1 : 1,
      );
    const held = timed.find((e) => e["operationId"] === ids["expiringHold"]) as Event;
    const expired = timed.find((e) => e.event === "expired") as Event;
    const deadline = BigInt(String(held["ledgerTimestamp"])) + 1_000_000_000n;
    // Instants inside the workload, none between the expiring hold's deadline and its expiry
    // marker (the model applies the expiry at the marker, the ledger at the deadline).
    // The trial balance at an instant holds the transfers before it. A transfer with a fee is a
    // linked chain of two transfers with consecutive timestamps; its event carries the first.
    const after = (e: Event | undefined) =>
      BigInt(String(e?.["ledgerTimestamp"])) +
      (e?.event === "transferred" && e["fee"] !== undefined ? 2n : 1n);
    const instants = [0.1, 0.35, 0.6, 0.85]
      .map((f) => after(timed[Math.floor(f * timed.length)]))
      .filter((at) => at < deadline || at >= BigInt(String(expired["ledgerTimestamp"])));
    instants.push(
      deadline + 1n < BigInt(String(expired["ledgerTimestamp"]))
        ? deadline
        : BigInt(String(expired["ledgerTimestamp"])),
    );
    expect(instants.length).toBeGreaterThanOrEqual(4);
    for (const at of instants) {
      const r = await verb("trial-balance", ["--at", isoOfNs(at), "--format", "jsonl"]);
      expect(r.code).toBe(0);
      const rows = jsonl(r.text);
      const model = new BalanceModel();
      const upTo = timed.filter((e) => BigInt(String(e["ledgerTimestamp"])) < at);
      model.applyAll(upTo);
      // At the deadline itself the ledger has released the hold; the model sees it at the marker.
      if (at === deadline) model.apply({ ...expired, event: "expired" });
      const users = rows.filter((x) => x["kind"] === "user");
      for (const [key, want] of model.users) {
        const [currency, userId] = key.split(/\/(.*)/s) as [string, string];
        const row = users.find((x) => x["owner"] === userId && x["currency"] === currency);
        const got =
          row === undefined
            ? { posted: 0n, held: 0n }
            : {
                posted:
                  BigInt(row["credits_posted"] as string) - BigInt(row["debits_posted"] as string),
                held: BigInt(row["debits_pending"] as string),
              };
        expect({ at: isoOfNs(at), key, ...got }).toEqual({ at: isoOfNs(at), key, ...want });
      }
      const fees = upTo
        .filter((e) => e.event === "transferred" && e["fee"] !== undefined)
        .reduce((s, e) => s + BigInt(String(e["fee"])), 0n);
      expect(rows.find((x) => x["owner"] === "fee EUR")?.["credits_posted"]).toBe(fees.toString());
      for (const t of rows.filter((x) => x["kind"] === "total")) expect(t["balanced"]).toBe("yes");
    }
  }, 120_000);

  it("billing trial-balance prints the table and exits 0; exits 1 when a transfer was altered in the file", async () => {
    const ok = await cli(["trial-balance"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^trial balance at /);
    expect(ok.stdout).toMatch(/EUR: debits = credits posted, = pending: balanced/);
    expect(ok.stdout.trimEnd().split("\n").pop()).toBe("trial balance: balanced");
    if (driverName !== "embedded") return; // the damage needs the embedded engine's file
    const copy = copyLedger(ws.ledgerPath);
    const db = rawLedger(copy);
    db.prepare("UPDATE transfers SET amount = ? WHERE id = ?").run(
      u128ToSql(101n),
      u128ToSql(parseOperationId(ids["creditA"]) as bigint),
    );
    db.close();
    const bad = await cli(["trial-balance"], { LEDGER_PATH: copy });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/EUR: debits ≠ credits posted/);
    expect(bad.stdout.trimEnd().split("\n").pop()).toBe("trial balance: NOT BALANCED");
  }, 60_000);

  it("billing statement prints opening, movements and closing; exits 1 for a user with no account; a bad flag exits 2 with one line naming it; an unreachable broker exits 3; --help prints the usage", async () => {
    const s = await cli(["statement", users.b]);
    expect(s.code, s.stderr).toBe(0);
    const text = s.stdout.split("\n");
    expect(text[0]).toMatch(
      new RegExp(`^statement of ${users.b} in EUR from the first movement to `),
    );
    expect(text[1]).toBe("opening  posted 0.00  held 0.00  available 0.00");
    expect(s.stdout).toMatch(
      /\nclosing {2}posted [\d.]+ {2}held [\d.]+ {2}available [\d.]+ {2}\(\d+ movements\)\n$/,
    );
    const none = await cli(["statement", `fin-${run}-nobody`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/has no EUR account/);
    for (const [args, flag] of [
      [["export", "journal", "--form", "csv"], "--form"],
      [["trial-balance", "--at", "yesterday"], "--at"],
      [["statement", users.a, "--currency", "XYZ"], "--currency"],
      [["export", "journal", "--format", "xml"], "--format"],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringContaining(flag)]); // one line, naming the flag
    }
    const away = await cli(["trial-balance"], { NATS_URL: "nats://127.0.0.1:1" }); // nothing listens on port 1
    expect(away.code).toBe(3);
    expect(away.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(/^billing trial-balance: /),
    ]);
    const help = await cli(["trial-balance", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage:\n {2}billing trial-balance \[--at <ISO time>\]/);
  }, 120_000);

  it("a trial balance taken while a service applies load balances, and reads nothing after its cut", async () => {
    const service = await spawnService(
      nats.url,
      ws.ledgerPath,
      ws.configPath,
      driverName === "embedded" ? {} : env,
    );
    try {
      const encoder = new TextEncoder();
      const load = inParallel(
        mixedWorkload(400, 10, 11, `fin-${run}-live`),
        8,
        async (c) =>
          void (await client.publishRaw(
            c.subject,
            encoder.encode(JSON.stringify(c.body)),
            c.operationId,
          )),
      );
      const during = await cli(["trial-balance", "--format", "csv"]);
      const journal = await cli(["export", "journal", "--format", "csv"]);
      await load;
      expect(during.code, during.stderr).toBe(0);
      expect(journal.code, journal.stderr).toBe(0);
      for (const t of csvRows(during.stdout).filter((r) => r["kind"] === "total"))
        expect(t["balanced"]).toBe("yes");
      expect(journal.stderr).toMatch(
        /billing export: \d+ lines, ledger time from the first transfer to the cut .* \(cut \d+\)/,
      );
    } finally {
      await service.kill("SIGTERM");
    }
  }, 120_000);
}
