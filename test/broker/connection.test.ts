// Proves the connection's behaviour at its edges, against real nats-servers: a closed port at
// start-up fails fast with a BrokerConnectError naming the URL; user/password and token auth are
// passed to the server (a wrong secret fails the same way); TLS trusts the given CA file; and a publish during an outage (server
// killed with SIGKILL) fails with BrokerUnavailableError, then succeeds once the server is back on
// the same port and store, through the client's own reconnect, with the stored data intact.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { nkeys } from "@nats-io/transport-node";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { connectBroker, type Broker } from "../../src/broker/connection.ts";
import { ensureTopology } from "../../src/broker/topology.ts";
import { getLastBySubject } from "../../src/broker/last-by-subject.ts";
import { publishEvents } from "../../src/broker/publisher.ts";
import { BrokerConnectError, BrokerUnavailableError } from "../../src/broker/errors.ts";
import { connectTest, decode, encode, testTopology } from "./fixture.ts";

const t = testTopology();
let server: NatsServer;
let broker: Broker;

beforeAll(async () => {
  server = await startNats();
  broker = await connectTest(server.url);
  await ensureTopology(broker.jsm, t);
});

afterAll(async () => {
  await broker?.close();
  await server?.stop();
});

test("broker – connecting to a closed port fails fast with an error naming the URL", async () => {
  const closed = await startNats();
  const url = closed.url;
  await closed.stop();
  const started = Date.now();
  const err = await connectBroker({
    servers: [url],
    name: "no-server",
    connectTimeoutMs: 2_000,
  }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BrokerConnectError);
  expect((err as BrokerConnectError).message).toContain(`cannot connect to NATS at ${url}`);
  expect((err as BrokerConnectError).servers).toEqual([url]);
  expect(Date.now() - started).toBeLessThan(2_000);
});

test("broker – credentials in a server URL are not printed in the error", async () => {
  const closed = await startNats();
  const port = closed.port;
  await closed.stop();
  const err = await connectBroker({
    servers: [`nats://alice:hunter2@127.0.0.1:${port}`],
    name: "x",
    connectTimeoutMs: 1_000,
  }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BrokerConnectError);
  expect((err as Error).message).not.toContain("hunter2");
  expect((err as Error).message).toContain(`nats://***@127.0.0.1:${port}`);
});

test("broker – user/password and token auth reach the server; a wrong secret fails with BrokerConnectError", async () => {
  const users = await startNats({
    configText: 'authorization { users = [ { user: "billing", password: "s3cret" } ] }\n',
  });
  const tokens = await startNats({ configText: 'authorization { token: "t0ken" }\n' });
  try {
    const ok = await connectBroker({
      servers: [users.url],
      name: "auth",
      connectTimeoutMs: 2_000,
      auth: { user: "billing", pass: "s3cret" },
    });
    await ok.close();
    const okToken = await connectBroker({
      servers: [tokens.url],
      name: "auth",
      connectTimeoutMs: 2_000,
      auth: { token: "t0ken" },
    });
    await okToken.close();
    const bad = await connectBroker({
      servers: [users.url],
      name: "auth",
      connectTimeoutMs: 2_000,
      auth: { user: "billing", pass: "wrong" },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(bad).toBeInstanceOf(BrokerConnectError);
    expect((bad as Error).message).toMatch(/Authorization Violation/i);
    const none = await connectBroker({
      servers: [tokens.url],
      name: "auth",
      connectTimeoutMs: 2_000,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(none).toBeInstanceOf(BrokerConnectError);
  } finally {
    await users.stop();
    await tokens.stop();
  }
});

test("broker – nkey auth signs the server's nonce with the seed", async () => {
  const user = nkeys.createUser();
  const seed = new TextDecoder().decode(user.getSeed());
  const server2 = await startNats({
    configText: `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }\n`,
  });
  try {
    const ok = await connectBroker({
      servers: [server2.url],
      name: "nkey",
      connectTimeoutMs: 2_000,
      auth: { nkeySeed: seed },
    });
    await ok.close();
    const other = new TextDecoder().decode(nkeys.createUser().getSeed());
    await expect(
      connectBroker({
        servers: [server2.url],
        name: "nkey",
        connectTimeoutMs: 2_000,
        auth: { nkeySeed: other },
      }),
    ).rejects.toThrow(BrokerConnectError);
  } finally {
    await server2.stop();
  }
});

test("broker – TLS with our CA file connects; without it the server's certificate is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "billing-tls-"));
  try {
    const pki = makeTestPki(dir);
    const tls = await startNats({
      configText: `tls { cert_file: "${pki.certFile}", key_file: "${pki.keyFile}" }\n`,
    });
    try {
      const ok = await connectBroker({
        servers: [tls.url],
        name: "tls",
        connectTimeoutMs: 2_000,
        auth: { tls: { caFile: pki.caFile } },
      });
      expect(ok.nc.info?.tls_required).toBe(true);
      await ok.close();
      const untrusted = await connectBroker({
        servers: [tls.url],
        name: "tls",
        connectTimeoutMs: 2_000,
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(untrusted).toBeInstanceOf(BrokerConnectError);
      expect((untrusted as Error).message).toMatch(/certificate/i);
    } finally {
      await tls.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("broker – a publish during an outage throws BrokerUnavailableError and works after restart with reconnect", async () => {
  const before = {
    subject: "billing.evt.credited.op-before",
    msgId: "op-before",
    data: encode("before"),
  };
  await publishEvents(broker.js, [before], 2_000);

  const reconnected = waitForStatus(broker, "reconnect");
  await server.kill("SIGKILL");
  const during = {
    subject: "billing.evt.credited.op-during",
    msgId: "op-during",
    data: encode("during"),
  };
  await expect(publishEvents(broker.js, [during], 500)).rejects.toThrow(BrokerUnavailableError);

  await server.restart();
  await reconnected;
  await publishEvents(broker.js, [during], 2_000);
  const stored = await getLastBySubject(broker.jsm, t.eventsStream, before.subject);
  expect(decode(stored?.data ?? new Uint8Array())).toBe("before");
  expect((await broker.jsm.streams.info(t.eventsStream)).state.messages).toBe(2);
});

// A throwaway CA and a server certificate for 127.0.0.1 (EC keys: fast to generate).
function makeTestPki(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => {
    execFileSync("openssl", args, { stdio: "ignore" });
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=billing-test-ca",
  );
  ssl("req", ...ec, "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=127.0.0.1");
  // nats.js v3 (node) verifies a server given by IP address against the name "localhost".
  writeFileSync(f("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ssl(
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.pem"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-out",
    f("server.pem"),
    "-days",
    "1",
    "-extfile",
    f("san.ext"),
  );
  return { caFile: f("ca.pem"), certFile: f("server.pem"), keyFile: f("server.key") };
}

async function waitForStatus(b: Broker, type: string): Promise<void> {
  for await (const s of b.nc.status()) {
    if (s.type === type) return;
  }
}
