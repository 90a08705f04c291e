// Proves the metrics port of each process on one machine: OPS_PORT pins it per process; a process
// whose port is taken (a second one with the same port, as with the default 9464 in two
// terminals) warns, binds a free port and logs it, so every process's /metrics is reachable at the
// URL its log names, unless ops.portInUse is "exit" (then a taken port is exit code 2);
// OPS_PORT=0 turns the endpoint off; a bad OPS_PORT, or a host the machine cannot listen on, ends
// `billing start` with exit code 2 naming it. Real `billing start` processes on a test nats-server and one ledger file.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";
import { get } from "./fixture.ts";

const BIN = new URL("../../bin/billing.js", import.meta.url).pathname;

/** The URL a process logged in "operations endpoint listening"; undefined when it logged none. */
function loggedUrl(output: string): string | undefined {
  const line = output.split("\n").find((l) => l.includes('"msg":"operations endpoint listening"'));
  return line === undefined ? undefined : (JSON.parse(line) as { url: string }).url;
}

describe("ops – the metrics port of several processes on one machine", () => {
  let nats: NatsServer;
  const ws = workspace();
  const running: ServiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNats();
  });

  afterAll(async () => {
    for (const s of running) await s.kill("SIGTERM");
    await nats.stop();
    ws.cleanup();
  });

  it("OPS_PORT pins each process's port; one that finds it taken logs the free port it bound; every logged URL serves /metrics", async () => {
    const [pinned, other] = [await freePort(), await freePort()];
    const first = await spawnService(nats.url, ws.ledgerPath, ws.configPath, {
      OPS_PORT: String(pinned),
    });
    running.push(first);
    const second = await spawnService(nats.url, ws.ledgerPath, ws.configPath, {
      OPS_PORT: String(pinned),
    });
    running.push(second);
    const third = await spawnService(nats.url, ws.ledgerPath, ws.configPath, {
      OPS_PORT: String(other),
    });
    running.push(third);
    expect(loggedUrl(first.output())).toBe(`http://127.0.0.1:${pinned}`);
    expect(loggedUrl(third.output())).toBe(`http://127.0.0.1:${other}`);
    const fallback = loggedUrl(second.output());
    expect(fallback).toMatch(/^http:\/\/127\.0\.0\.1:[0-9]+$/);
    expect([`http://127.0.0.1:${pinned}`, `http://127.0.0.1:${other}`]).not.toContain(fallback);
    expect(second.output()).toContain(`"configuredPort":${pinned}`);
    expect(second.output()).toContain("operations port in use");
    for (const url of [
      `http://127.0.0.1:${pinned}`,
      fallback as string,
      `http://127.0.0.1:${other}`,
    ]) {
      const scrape = await get(`${url}/metrics`);
      expect(scrape.status).toBe(200);
      expect(scrape.body).toContain("billing_commands_settled_total");
    }
  });

  it("OPS_PORT=0 turns the endpoint off (the service still runs)", async () => {
    const off = await spawnService(nats.url, ws.ledgerPath, ws.configPath, { OPS_PORT: "0" });
    running.push(off);
    expect(loggedUrl(off.output())).toBeUndefined();
    expect(off.output()).toContain('"ops":null');
  });

  it("an ops host this machine does not have ends billing start with exit code 2 and one line naming it, not a silent hang", () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): assigned to no machine, so listening there fails.
    const config = join(ws.dir, "unbindable.json");
    writeFileSync(config, JSON.stringify({ ops: { host: "192.0.2.1", port: 9464 } }));
    const started = Date.now();
    const r = spawnSync(process.execPath, [BIN, "start"], {
      env: {
        ...process.env,
        NATS_URL: nats.url,
        LEDGER_PATH: ws.ledgerPath,
        BILLING_CONFIG: config,
      },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.signal, `still running after ${Date.now() - started} ms`).toBeNull();
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /ops\.host 192\.0\.2\.1, ops\.port \(OPS_PORT\) 9464: cannot serve the operations endpoint there: EADDRNOTAVAIL/,
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it('with ops.portInUse "exit", a pinned port another process holds ends billing start with exit code 2 naming it', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const config = join(ws.dir, "strict.json");
      writeFileSync(config, JSON.stringify({ ops: { portInUse: "exit" } }));
      const r = spawnSync(process.execPath, [BIN, "start"], {
        env: {
          ...process.env,
          NATS_URL: nats.url,
          LEDGER_PATH: ws.ledgerPath,
          BILLING_CONFIG: config,
          OPS_PORT: String(taken),
        },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `ops.port (OPS_PORT) ${taken} on 127.0.0.1 is in use by another process, and ops.portInUse is "exit"`,
      );
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("a bad OPS_PORT ends billing start with exit code 2 and one line naming it", () => {
    for (const bad of ["metrics", "70000"]) {
      const r = spawnSync(process.execPath, [BIN, "start"], {
        env: {
          ...process.env,
          NATS_URL: nats.url,
          LEDGER_PATH: ws.ledgerPath,
          BILLING_CONFIG: ws.configPath,
          OPS_PORT: bad,
        },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/ops\.port \(OPS_PORT\)/);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
