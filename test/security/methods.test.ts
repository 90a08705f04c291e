// Proves that the service authenticates by each method docs/security.md lists, end to end against a
// real nats-server: an nkey seed file and TLS client certificates (openssl CA made at test time,
// verify_and_map) under the page's own role configuration, a token (from a file in this process,
// from NATS_TOKEN in a spawned `billing start`), and a credentials file (an operator-mode server
// trusting a test operator). Each time a publisher's command comes back as its event, which needs
// the service's consumer, worker and event publishing to work with those credentials.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator, nkeys } from "@nats-io/transport-node";
import { BillingClient } from "@billing-ledger/client";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace } from "../support/service.ts";
import { makeOperator } from "./support/creds.ts";
import {
  secret,
  secretDir,
  violationLogged,
  violationsOf,
  type SecretDir,
} from "./support/fixture.ts";
import { makePki } from "./support/pki.ts";
import { serverConfig } from "./support/roles.ts";
import { serviceOverrides, startServiceWith } from "./support/service-with-auth.ts";

const CLIENT_TIMEOUT_MS = 15_000;
const CONNECT_TIMEOUT_MS = 2_000;

let secrets: SecretDir;

beforeAll(() => {
  secrets = secretDir();
});

afterAll(() => secrets?.cleanup());

// A credit sent by `client` must come back as its credited event: the service took it, applied it
// and published the event.
async function roundTrip(client: BillingClient): Promise<void> {
  const userId = `u-${randomUUID().slice(0, 8)}`;
  const r = await client.credit({ userId, amount: "7" }, { wait: true });
  expect(r.event).toMatchObject({
    event: "credited",
    operationId: r.operationId,
    userId,
    amount: "7",
  });
}

async function withServer(
  configText: string,
  use: (server: NatsServer) => Promise<void>,
): Promise<void> {
  const server = await startNats({ configText });
  try {
    await use(server);
  } finally {
    await server.stop();
  }
}

describe("methods – the service authenticates by", () => {
  it("an nkey seed file, with the service role's permissions", async () => {
    const serviceKey = nkeys.createUser();
    const publisherPassword = secret("pub");
    const config = serverConfig([
      { role: "service", nkey: serviceKey.getPublicKey() },
      { role: "publisher", user: "orders", password: publisherPassword },
    ]);
    await withServer(config, async (server) => {
      const seedFile = secrets.file(
        "billing.nk",
        `${new TextDecoder().decode(serviceKey.getSeed())}\n`,
      );
      const svc = await startServiceWith(server, { nkeySeedFile: seedFile });
      const client = await BillingClient.connect({
        servers: server.url,
        user: "orders",
        pass: publisherPassword,
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      try {
        await roundTrip(client);
        expect(violationsOf(server, serviceKey.getPublicKey())).toEqual([]);
      } finally {
        await client.close();
        await svc.stop();
      }
    });
  });

  it("a TLS client certificate mapped to its user; clients without a certificate or the CA are refused", async () => {
    const pki = makePki(secrets.dir, ["billing-service", "orders"]);
    const tls = `tls { cert_file: "${pki.server.certFile}", key_file: "${pki.server.keyFile}", ca_file: "${pki.caFile}", verify_and_map: true, timeout: 2 }`;
    const config = serverConfig(
      [
        { role: "service", certificateSubject: "CN=billing-service" },
        { role: "publisher", certificateSubject: "CN=orders" },
      ],
      tls,
    );
    await withServer(config, async (server) => {
      const svc = await startServiceWith(server, {
        tls: { caFile: pki.caFile, ...pki.client("billing-service") },
      });
      const client = await BillingClient.connect({
        servers: server.url,
        tls: { caFile: pki.caFile, ...pki.client("orders") },
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      try {
        await roundTrip(client);
        // The certificate's user carries the publisher role: events are out of its reach.
        client.nc.publish("billing.evt.credited.x", new Uint8Array(0));
        await client.nc.flush();
        expect(
          await violationLogged(server, "CN=orders", "Publish", "billing.evt.credited.x"),
        ).toBe(true);
        expect(violationsOf(server, "CN=billing-service")).toEqual([]);
        await expect(
          connect({
            servers: server.url,
            tls: { caFile: pki.caFile },
            timeout: CONNECT_TIMEOUT_MS,
            reconnect: false,
          }),
        ).rejects.toThrow();
        await expect(
          connect({
            servers: server.url,
            tls: pki.client("orders"),
            timeout: CONNECT_TIMEOUT_MS,
            reconnect: false,
          }),
        ).rejects.toThrow(/certificate/i);
      } finally {
        await client.close();
        await svc.stop();
      }
    });
  });

  it("a token from a file (in process) and from NATS_TOKEN (a spawned billing start)", async () => {
    const token = secret("tok");
    // Token authentication is one identity in the global account: no roles (docs/security.md).
    await withServer(`authorization { token: "${token}" }\n`, async (server) => {
      const client = await BillingClient.connect({
        servers: server.url,
        token,
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      const fromFile = await startServiceWith(server, {
        tokenFile: secrets.file("token", `${token}\n`),
      });
      const ws = workspace(serviceOverrides({}));
      try {
        await roundTrip(client);
        // A second process of the same deployment: the same ledger (another one would be refused).
        const spawned = await spawnService(server.url, fromFile.ledgerPath, ws.configPath, {
          NATS_TOKEN: token,
        });
        await fromFile.service.stop();
        try {
          await roundTrip(client);
        } finally {
          await spawned.kill("SIGTERM");
        }
        expect(spawned.output()).not.toContain(token);
      } finally {
        await fromFile.stop();
        await client.close();
        ws.cleanup();
      }
    });
  });

  it("a credentials file (user JWT and seed) on an operator-mode server", async () => {
    const operator = makeOperator(secrets.dir);
    const everything = { pub: { allow: [">"] }, sub: { allow: [">"] } };
    await withServer(operator.configText, async (server) => {
      const svc = await startServiceWith(server, {
        credsFile: operator.userCreds("billing", { ...everything, resp: { max: 1, ttl: 0 } }),
      });
      const client = await BillingClient.connect({
        servers: server.url,
        authenticator: credsAuthenticator(readFileSync(operator.userCreds("orders", everything))),
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      try {
        await roundTrip(client);
      } finally {
        await client.close();
        await svc.stop();
      }
    });
  });
});
