// Proves the `billing` command's exit codes and messages by spawning the real CLI (node
// bin/billing.js) against a real nats-server and a real service (in this process, on a temp
// ledger file): 0 done (inline JSON, stdin, @file), 1 rejected and conflict (inside the broker's
// duplicate window: the publish is dropped, the stored event is another command's), 2 usage and
// validation (one line, one prefix, the size named for an oversized file), 3 unavailable (NATS
// down, no service answering a query, a command stored whose event did not come: the message says
// it is stored and that a retry must reuse the id, and a service started later applies it), and
// `billing hold` / `billing op` showing what became of a hold.
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/service.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { billing, oneLine } from "./support.ts";

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let service: RunningService | null = null;
let env: Record<string, string>;

const overrides = {
  nats: { requestTimeoutMs: 3_000 },
  expiry: { delayMs: 1000, sweepIntervalMs: 100, holdsPerSweepMax: 1000 },
  worker: { holdGraceMs: 2000, holdWaitNakMs: 200 },
};

beforeAll(async () => {
  nats = await startNats();
  ws = workspace(overrides);
  env = { NATS_URL: nats.url, LEDGER_PATH: ws.ledgerPath, BILLING_CONFIG: ws.configPath };
  service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
});

afterAll(async () => {
  await service?.stop();
  await nats?.stop();
  ws?.cleanup();
});

const json = (text: string) => JSON.parse(text) as Record<string, unknown>;

describe("cli – exit 0: done", () => {
  it("send prints the operation's event from inline JSON, from stdin (-) and from a file (@file)", async () => {
    const inline = await billing(["send", "credit", '{"userId":"cli-a","amount":"1000"}'], env);
    expect(inline.code, inline.stderr).toBe(0);
    expect(json(inline.stdout)).toMatchObject({
      event: "credited",
      userId: "cli-a",
      amount: "1000",
    });
    const piped = await billing(["send", "credit", "-"], env, '{"userId":"cli-a","amount":"20"}');
    expect(piped.code, piped.stderr).toBe(0);
    expect(json(piped.stdout)).toMatchObject({ event: "credited", amount: "20" });
    const file = join(ws.dir, "debit.json");
    writeFileSync(file, '{"userId":"cli-a","amount":"7"}');
    const fromFile = await billing(["send", "debit", `@${file}`], env);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(json(fromFile.stdout)).toMatchObject({ event: "debited", amount: "7" });
    const balance = await billing(["balance", "cli-a"], env);
    expect(balance.code).toBe(0);
    expect(json(balance.stdout)).toMatchObject({ userId: "cli-a", available: "1013" });
  });

  it("the same command sent again under its operationId is no conflict: the first event, exit 0", async () => {
    const id = randomUUID();
    const first = await billing(
      ["send", "credit", JSON.stringify({ operationId: id, userId: "cli-same", amount: "10" })],
      env,
    );
    expect(first.code, first.stderr).toBe(0);
    // 10 and "10" are one amount, a currency named as the default is what the event says.
    const again = await billing(
      ["send", "credit", JSON.stringify({ operationId: id, userId: "cli-same", amount: 10 })],
      env,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(json(again.stdout)).toEqual(json(first.stdout));
  });
});

describe("cli – exit 1: rejected or conflict", () => {
  it("a rejected command prints its event and one line naming the reason", async () => {
    const r = await billing(["send", "debit", '{"userId":"cli-poor","amount":"5"}'], env);
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({ event: "rejected", reason: "insufficient_funds" });
    expect(oneLine(r)).toMatch(/^billing send: rejected: insufficient_funds/);
  });

  it("a used operationId with another amount inside the duplicate window is a conflict naming what differs, not the old event as success", async () => {
    const id = randomUUID();
    const first = await billing(
      ["send", "credit", JSON.stringify({ operationId: id, userId: "erin", amount: "10" })],
      env,
    );
    expect(first.code, first.stderr).toBe(0);
    const second = await billing(
      ["send", "credit", JSON.stringify({ operationId: id, userId: "erin", amount: "99" })],
      env,
    );
    expect(second.code).toBe(1);
    expect(second.stdout).toBe("");
    expect(oneLine(second)).toBe(
      `billing send: conflict: operation ${id} already has a credited event for a different command (amount 99 sent, 10 stored); this command is not applied`,
    );
    const other = await billing(
      ["send", "debit", JSON.stringify({ operationId: id, userId: "erin", amount: "10" })],
      env,
    );
    expect(other.code).toBe(1);
    expect(oneLine(other)).toContain("(command debit sent, credit stored)");
    expect(json((await billing(["balance", "erin"], env)).stdout)).toMatchObject({
      available: "10",
    });
  });
});

describe("cli – exit 2: usage and validation", () => {
  it("bad arguments and invalid commands are one line with one prefix, before any connection", async () => {
    const cases: Array<[string[], string]> = [
      [
        ["send", "credit", '{"userId":"a","amount":-5}'],
        "billing send: credit: amount: must be a positive integer (1 to 2^63 - 1), as a string of digits, a bigint or a safe integer",
      ],
      [
        ["send", "credit", '{"userId":"a","amount":0}'],
        "billing send: credit: amount: must be a positive integer (1 to 2^63 - 1), as a string of digits, a bigint or a safe integer",
      ],
      [["send", "credit", '{"amount":"5"}'], "billing send: credit: userId is required"],
      [
        ["send", "refund", "{}"],
        "billing send: unknown command refund; one of credit debit hold capture release transfer",
      ],
      [
        ["send", "credit"],
        "billing send: the command's JSON is missing ('<json>', - for stdin, or @file)",
      ],
      [["send", "credit", "{not json"], "billing send: the command is not JSON"],
      [["op", "nope"], 'billing op: operationId must be a UUID, not "nope"'],
      [["hold"], "billing hold: holdId is missing"],
      [["balance", "a", "EUR", "extra"], "billing balance: unexpected argument extra"],
    ];
    // NATS down: none of these may even try to connect.
    const nowhere = { ...env, NATS_URL: "nats://127.0.0.1:1" };
    for (const [args, line] of cases) {
      const r = await billing(args, nowhere);
      expect(r.code, args.join(" ")).toBe(2);
      expect(oneLine(r)).toContain(line);
      expect(r.stderr).not.toMatch(/send: send:/);
    }
  });

  it("a command file or stdin over worker.payloadBytesMax is refused naming its size", async () => {
    const file = join(ws.dir, "big.json");
    const text = JSON.stringify({ userId: "a", amount: "1", pad: "x".repeat(10_000) });
    writeFileSync(file, text);
    const r = await billing(["send", "credit", `@${file}`], env);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toBe(
      `billing send: ${file} (${Buffer.byteLength(text)} bytes) is over the limit of 4096 bytes per command (worker.payloadBytesMax)`,
    );
    const piped = await billing(["send", "credit", "-"], env, Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(piped.code).toBe(2);
    expect(oneLine(piped)).toContain(
      "the command on stdin (more than 4096 bytes) is over the limit",
    );
  });

  it("a query the service refuses as asked is one line naming its code, exit 2", async () => {
    const r = await billing(["balance", "alice", "XYZ"], env);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toBe("billing balance: unknown_currency: currency XYZ is not configured");
  });

  it("an unknown verb prints the usage on stderr and exits 2", async () => {
    const r = await billing(["frobnicate"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("billing: unknown command frobnicate");
    expect(r.stderr).toContain("billing send <command>");
  });
});

describe("cli – hold status", () => {
  it("billing hold shows a hold's status now, and billing op of an expired hold shows its held event and the hold's status", async () => {
    await billing(["send", "credit", '{"userId":"cli-h","amount":"100"}'], env);
    const held = await billing(
      ["send", "hold", '{"userId":"cli-h","amount":"30","timeoutSeconds":1}'],
      env,
    );
    expect(held.code, held.stderr).toBe(0);
    const holdId = String(json(held.stdout)["operationId"]);
    const deadline = Date.now() + 20_000;
    let status = "";
    while (Date.now() < deadline) {
      const r = await billing(["hold", holdId], env);
      expect(r.code, r.stderr).toBe(0);
      status = String(json(r.stdout)["status"]);
      if (status === "expired") break;
      expect(status).toBe("held");
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(status).toBe("expired");
    const op = await billing(["op", holdId], env);
    expect(op.code, op.stderr).toBe(0);
    expect(json(op.stdout)).toMatchObject({
      operationId: holdId,
      status: "applied",
      event: { event: "held" },
      hold: { status: "expired" },
    });
  });
});

describe("cli – exit 3: unavailable", () => {
  it("with NATS down, send and balance say so in one line, no stack", async () => {
    const down = await startNats();
    const url = down.url;
    await down.stop();
    for (const args of [
      ["send", "credit", '{"userId":"a","amount":"1"}'],
      ["balance", "alice"],
      ["op", randomUUID()],
      ["hold", randomUUID()],
      ["dlq", "list"],
    ]) {
      const r = await billing(args, { ...env, NATS_URL: url });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(3);
      expect(oneLine(r)).toMatch(
        new RegExp(`^billing ${args[0]}: .*${url.replace(/[.]/g, "\\.")}`),
      );
    }
  });

  it("on a NATS where no billing service ever ran, send says no stream takes the command", async () => {
    const bare = await startNats();
    try {
      const r = await billing(["send", "credit", '{"userId":"a","amount":"1"}'], {
        ...env,
        NATS_URL: bare.url,
      });
      expect(r.code).toBe(3);
      expect(oneLine(r)).toMatch(
        /^billing send: publish to billing\.cmd\.credit failed after \d+ attempts: no stream takes it \(no responders\); has a billing service or `billing setup` run on this NATS\?$/,
      );
    } finally {
      await bare.stop();
    }
  });

  it("with no service running, a query says no service answered and a send says the command is stored and a retry must reuse its id; a service started later applies it", async () => {
    await service?.stop();
    service = null;
    const balance = await billing(["balance", "alice"], env);
    expect(balance.code).toBe(3);
    expect(oneLine(balance)).toBe(
      "billing balance: billing.query.balance: no service answered (no responders); is a billing service running?",
    );
    const id = randomUUID();
    const sent = await billing(
      ["send", "credit", JSON.stringify({ operationId: id, userId: "cli-late", amount: "5" })],
      env,
    );
    expect(sent.code).toBe(3);
    expect(oneLine(sent)).toMatch(
      new RegExp(
        `^billing send: no event for operation ${id} within 3000 ms: the command is stored \\(commands stream sequence \\d+\\) and will be applied when a billing service runs; a retry must reuse operationId ${id}, never a new one$`,
      ),
    );
    service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
    const op = await billing(
      ["send", "credit", JSON.stringify({ operationId: id, userId: "cli-late", amount: "5" })],
      env,
    );
    expect(op.code, op.stderr).toBe(0);
    expect(json(op.stdout)).toMatchObject({ event: "credited", operationId: id });
    expect(json((await billing(["balance", "cli-late"], env)).stdout)).toMatchObject({
      available: "5",
    });
  });
});
