// Proves the example for publishing teams in other languages (docs/examples/publish-raw.sh, shown in
// docs/contract.md) is true: that script, run as it is with bash and socat against a real
// nats-server and a real service process, gets JetStream's acknowledgement and the operation's
// event; run again with the same operation id it is acknowledged as a duplicate.
import { randomUUID } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";

const SCRIPT = fileURLToPath(new URL("../../docs/examples/publish-raw.sh", import.meta.url));
const SOCAT = ["/usr/bin/socat", "/bin/socat", "/usr/local/bin/socat"].find((p) => existsSync(p));
const RUN_TIMEOUT_MS = 30_000;
if (!SOCAT)
  console.log("raw-protocol: socat is not installed; the example that uses it is not run");

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let service: ServiceProcess;

beforeAll(async () => {
  if (!SOCAT) return;
  nats = await startNats();
  ws = workspace();
  service = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
});

afterAll(async () => {
  await service?.kill("SIGTERM");
  await nats?.stop();
  ws?.cleanup();
});

/** Runs the example; returns what the server sent, split into CRLF-ended lines. */
function runExample(env: Record<string, string>): string[] {
  const r = spawnSync("bash", [SCRIPT], {
    encoding: "utf8",
    timeout: RUN_TIMEOUT_MS,
    env: { ...process.env, NATS: `127.0.0.1:${nats.port}`, ...env },
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout.split("\r\n");
}

describe.skipIf(!SOCAT)("contract – the raw NATS protocol example for other languages", () => {
  it("a credit sent as HPUB with Nats-Msg-Id is acknowledged by JetStream and answered by its event; the same id again is a duplicate", () => {
    const id = randomUUID();
    const lines = runExample({
      OPERATION_ID: id,
      USER_ID: "raw-bob",
      AMOUNT: "700",
      WAIT_SECONDS: "6",
    });
    const ack = JSON.parse(
      lines[lines.findIndex((l) => l.startsWith(`MSG _INBOX.raw.${id} 2 `)) + 1]!,
    ) as Record<string, unknown>;
    expect(ack).toMatchObject({ stream: "BILLING_COMMANDS" });
    expect(ack["duplicate"]).toBeUndefined();
    const at = lines.findIndex((l) => l.startsWith(`HMSG billing.evt.credited.${id} 1 `));
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toBe("NATS/1.0");
    expect(lines).toContain(`Nats-Msg-Id: ${id}`);
    const event = JSON.parse(lines.slice(at).find((l) => l.startsWith("{"))!) as Record<
      string,
      unknown
    >;
    expect(event).toMatchObject({
      event: "credited",
      operationId: id,
      command: "credit",
      userId: "raw-bob",
      amount: "700",
    });

    const again = runExample({
      OPERATION_ID: id,
      USER_ID: "raw-bob",
      AMOUNT: "700",
      WAIT_SECONDS: "1",
    });
    const duplicate = JSON.parse(
      again[again.findIndex((l) => l.startsWith(`MSG _INBOX.raw.${id} 2 `)) + 1]!,
    ) as Record<string, unknown>;
    expect(duplicate).toMatchObject({
      stream: "BILLING_COMMANDS",
      seq: ack["seq"],
      duplicate: true,
    });
    expect(again.some((l) => l.startsWith("HMSG billing.evt."))).toBe(false);
  });
});
