// Proves that the service role of docs/security.md covers the service's rarest broker paths, which
// the end-to-end role tests cannot reach with a healthy ledger: updating existing streams at a
// restart (STREAM.UPDATE), and the max-deliveries processor (its own durable consumer on the
// advisories stream, STREAM.MSG.GET of the original command and of its dead-letter marker, the
// max_deliveries dead letter). How: a real nats-server running the page's configuration; the
// service's own connect() with user and password file; the real worker loop and processor as in
// the service, on a ledger that fails every call (as an unreachable ledger does), so a command is
// naked until the server gives up on it; and, on a real ledger file, the processor publishing a
// decided command again instead of dead-lettering it. The server must log no permission violation.
import { randomUUID } from "node:crypto";
import { testSpace } from "../support/space.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureTopology } from "../../src/broker/topology.ts";
import { BillingClient } from "@billing-ledger/client";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import {
  advisoryContextOf,
  handleAdvisory,
  redeliveryOfHeader,
  startAdvisoryProcessor,
} from "../../src/dlq/max-deliveries-processor.ts";
import { systemAccounts } from "../../src/domain/accounts.ts";
import { openLedger } from "../../src/ledger/index.ts";
import type { Ledger } from "../../src/ledger/port.ts";
import { LedgerTimeoutError } from "../../src/ledger/deadline.ts";
import { createLogger } from "../../src/lib/log.ts";
import { chartOf, connect, topologyOf } from "../../src/service.ts";
import { AccountRegistry } from "../../src/ledger-facts/account-registry.ts";
import { Batcher } from "../../src/worker/batcher.ts";
import { NameBook } from "../../src/ledger-facts/name-book.ts";
import { runWorker, type WorkerDeps } from "../../src/worker/loop.ts";
import { WorkerStats } from "../../src/worker/stats.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { secret, secretDir, violationsOf, type SecretDir } from "./support/fixture.ts";
import { serverConfig } from "./support/roles.ts";

// Seven deliveries (the least the config's cross-check allows with these hold settings) 50 ms apart.
const MAX_DELIVER = 7;
const DEAD_LETTER_WAIT_MS = 20_000;

const servicePassword = secret("svc");
const publisherPassword = secret("pub");

let server: NatsServer;
let secrets: SecretDir;
let config: Config;

beforeAll(async () => {
  secrets = secretDir();
  server = await startNats({
    configText: serverConfig([
      { role: "service", user: "billing", password: servicePassword },
      { role: "publisher", user: "orders", password: publisherPassword },
    ]),
  });
  config = loadConfig(
    { NATS_URL: server.url, LOG_LEVEL: "silent" },
    {
      nats: {
        auth: { user: "billing", passFile: secrets.file("pass", servicePassword) },
        requestTimeoutMs: 2_000,
      },
      consumer: { maxDeliver: MAX_DELIVER },
      worker: { nakDelayMs: 50, holdGraceMs: 1_000, holdWaitNakMs: 1_000, publishTimeoutMs: 2_000 },
      ops: { port: 0 },
    },
  );
});

afterAll(async () => {
  await server?.stop();
  secrets?.cleanup();
});

const unreachableLedger = new Proxy(
  {},
  {
    get: (_target, name) => () =>
      Promise.reject(new LedgerTimeoutError(`ledger unreachable (${String(name)})`)),
  },
) as Ledger;

it("service role – a restart's stream updates and a max-deliveries dead letter need nothing beyond it", async () => {
  const broker = await connect(config, "billing");
  const client = await BillingClient.connect({
    servers: server.url,
    user: "orders",
    pass: publisherPassword,
    timeoutMs: 10_000,
  });
  const log = createLogger("silent");
  try {
    // Twice: the first run creates the streams and consumers, the second updates them.
    await ensureTopology(broker.jsm, topologyOf(config));
    await ensureTopology(broker.jsm, topologyOf(config));
    const w = config.worker;
    const deps: WorkerDeps = {
      ledger: unreachableLedger,
      js: broker.js,
      jsm: broker.jsm,
      dlqStream: config.streams.dlq,
      log,
      stats: new WorkerStats(),
      chart: {
        currencies: config.currencies,
        defaultCurrency: config.defaultCurrency,
        markerLedger: config.markerLedger,
        space: testSpace,
      },
      registry: new AccountRegistry(unreachableLedger, 16),
      names: new NameBook(testSpace, 16),
      limits: { ...w, ackWaitMs: config.consumer.ackWaitMs },
    };
    const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
    const messages = await consumer.consume({ max_messages: w.batchMessagesMax, expires: 30_000 });
    let requestStop = (): void => undefined;
    const stopSignal = new Promise<void>((resolve) => (requestStop = resolve));
    const worker = runWorker(
      deps,
      new Batcher(messages[Symbol.asyncIterator](), w.batchMessagesMax),
      stopSignal,
    );
    const processor = startAdvisoryProcessor({ js: broker.js, jsm: broker.jsm, config, log });
    try {
      const sent = await client.credit({
        operationId: randomUUID(),
        userId: "u-stuck",
        amount: "10",
      });
      const deadline = Date.now() + DEAD_LETTER_WAIT_MS;
      let letter = null;
      while (letter === null && Date.now() < deadline) {
        letter = await broker.jsm.streams.getMessage(config.streams.dlq, {
          last_by_subj: "billing.dlq.max_deliveries",
        });
        if (letter === null) await new Promise((r) => setTimeout(r, 100));
      }
      expect(letter?.header.get("Billing-Original-Sequence")).toBe(String(sent.streamSequence));
    } finally {
      await processor.stop();
      requestStop();
      await worker;
      await messages.close();
    }
  } finally {
    await client.close();
    await broker.close();
  }
  expect(violationsOf(server, "billing")).toEqual([]);
});

it("service role – publishing a decided command again at max deliveries (for its event, instead of a letter) needs nothing beyond it", async () => {
  const broker = await connect(config, "billing");
  const client = await BillingClient.connect({
    servers: server.url,
    user: "orders",
    pass: publisherPassword,
    timeoutMs: 10_000,
  });
  const dir = mkdtempSync(join(tmpdir(), "billing-sec-ledger-"));
  const ledger = await openLedger({ driver: "embedded", path: join(dir, "ledger.db") });
  const log = createLogger("silent");
  try {
    await ensureTopology(broker.jsm, topologyOf(config));
    const chart = chartOf(config, testSpace);
    const registry = new AccountRegistry(ledger, 16);
    await registry.ensure(systemAccounts(chart));
    const w = config.worker;
    const deps: WorkerDeps = {
      ledger,
      js: broker.js,
      jsm: broker.jsm,
      dlqStream: config.streams.dlq,
      log,
      stats: new WorkerStats(),
      chart,
      registry,
      names: new NameBook(testSpace, 16),
      limits: { ...w, ackWaitMs: config.consumer.ackWaitMs },
    };
    const consumer = await broker.js.consumers.get(config.streams.commands, config.consumer.name);
    const messages = await consumer.consume({ max_messages: w.batchMessagesMax, expires: 30_000 });
    let requestStop = (): void => undefined;
    const stopSignal = new Promise<void>((resolve) => (requestStop = resolve));
    const worker = runWorker(
      deps,
      new Batcher(messages[Symbol.asyncIterator](), w.batchMessagesMax),
      stopSignal,
    );
    let sent: { streamSequence: number };
    try {
      sent = await client.credit(
        { operationId: randomUUID(), userId: "u-decided", amount: "10" },
        { wait: true },
      );
    } finally {
      requestStop();
      await worker;
      await messages.close();
    }
    // The advisory as the server would send it once processes died with the command again and again.
    const advisory = {
      stream: config.streams.commands,
      consumer: config.consumer.name,
      streamSequence: sent.streamSequence,
      deliveries: MAX_DELIVER,
    };
    const outcome = await handleAdvisory(
      advisoryContextOf({ js: broker.js, jsm: broker.jsm, config, decisions: { ledger, chart } }),
      advisory,
    );
    expect(outcome).toBe("redelivered");
    const copy = await broker.jsm.streams.getMessage(config.streams.commands, {
      last_by_subj: "billing.cmd.credit",
    });
    expect(copy?.header.get(redeliveryOfHeader)).toBe(String(sent.streamSequence));
  } finally {
    ledger.destroy();
    rmSync(dir, { recursive: true, force: true });
    await client.close();
    await broker.close();
  }
  expect(violationsOf(server, "billing")).toEqual([]);
});
