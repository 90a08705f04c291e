// Proves that a used operationId sent with another command after the broker's duplicate window is
// still reported as a conflict (exit 1), not as the old event: the broker stores the second
// command this time, the service dead-letters it as `conflict` and writes no new event, and the
// CLI compares the operation's one event with what it sent. How: a real nats-server whose streams
// have a 300 ms duplicate window (streams.duplicateWindowMs), a service in this process, the real
// CLI spawned for the sends and for `billing dlq list`.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningService } from "../../src/service.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { startInProcess, workspace } from "../support/service.ts";
import { billing, oneLine } from "./support.ts";

const WINDOW_MS = 300;
let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let service: RunningService;
let env: Record<string, string>;

beforeAll(async () => {
  nats = await startNats();
  ws = workspace({ streams: { duplicateWindowMs: WINDOW_MS }, nats: { requestTimeoutMs: 5_000 } });
  env = { NATS_URL: nats.url, LEDGER_PATH: ws.ledgerPath, BILLING_CONFIG: ws.configPath };
  service = await startInProcess(nats.url, ws.ledgerPath, ws.configPath);
});

afterAll(async () => {
  await service?.stop();
  await nats?.stop();
  ws?.cleanup();
});

it("cli – a used operationId with another amount after the duplicate window is a conflict (exit 1), and the service dead-lettered it", async () => {
  const id = randomUUID();
  const first = await billing(
    ["send", "credit", JSON.stringify({ operationId: id, userId: "erin", amount: "10" })],
    env,
  );
  expect(first.code, first.stderr).toBe(0);
  // Several windows: the broker forgets the msgId and stores the second command.
  await new Promise((resolve) => setTimeout(resolve, 6 * WINDOW_MS));
  const second = await billing(
    ["send", "credit", JSON.stringify({ operationId: id, userId: "erin", amount: "99" })],
    env,
  );
  expect(second.code).toBe(1);
  expect(oneLine(second)).toBe(
    `billing send: conflict: operation ${id} already has a credited event for a different command (amount 99 sent, 10 stored); this command is not applied`,
  );
  // The service saw it (so it was outside the window) and dead-lettered it; no second event.
  const deadline = Date.now() + 20_000;
  let letters: Array<{ originalMsgId?: string; payload?: string }> = [];
  while (Date.now() < deadline) {
    const list = await billing(["dlq", "list", "--json", "--reason", "conflict"], env);
    expect(list.code, list.stderr).toBe(0);
    letters = JSON.parse(list.stdout) as typeof letters;
    if (letters.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  expect(letters.map((l) => l.originalMsgId)).toEqual([id]);
  expect(letters[0]?.payload).toContain('"amount":"99"');
  const balance = await billing(["balance", "erin"], env);
  expect(JSON.parse(balance.stdout)).toMatchObject({ available: "10" });
});
