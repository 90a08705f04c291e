// Proves the nats-server test harness itself (test/support/nats-server.ts): a server killed with
// SIGKILL and restarted keeps its streams, messages and msgId dedupe table (same port, same store
// dir, new pid); restart() waits out another process holding the port; stop() removes the store.

import { existsSync } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { ensureTopology } from "../../src/broker/topology.ts";
import type { Broker } from "../../src/broker/connection.ts";
import { connectTest, encode, testTopology } from "./fixture.ts";

const t = testTopology();
let server: NatsServer;

beforeAll(async () => {
  server = await startNats();
});

afterAll(async () => {
  await server?.stop();
});

test("broker – harness kill(SIGKILL) and restart keep stream contents and the dedupe table", async () => {
  let broker: Broker = await connectTest(server.url);
  await ensureTopology(broker.jsm, t);
  for (let i = 1; i <= 20; i++)
    await broker.js.publish("billing.cmd.credit", encode(`c${i}`), { msgID: `op-${i}` });
  await broker.close();

  const { port, storeDir, pid } = server;
  await server.kill("SIGKILL");
  await server.restart();
  expect(server.port).toBe(port);
  expect(server.storeDir).toBe(storeDir);
  expect(server.pid).not.toBe(pid);

  broker = await connectTest(server.url);
  try {
    const info = await broker.jsm.streams.info(t.commandsStream);
    expect(info.state.messages).toBe(20);
    const first = await broker.jsm.streams.getMessage(t.commandsStream, { seq: 1 });
    expect(first?.string()).toBe("c1");
    expect(
      (await broker.js.publish("billing.cmd.credit", encode("again"), { msgID: "op-7" })).duplicate,
    ).toBe(true);
    expect((await broker.jsm.consumers.info(t.commandsStream, t.consumer)).name).toBe(t.consumer);
  } finally {
    await broker.close();
  }
});

test("broker – harness restart waits for a port briefly held by another process", async () => {
  await server.kill("SIGTERM");
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(server.port, "127.0.0.1", resolve));
  setTimeout(() => holder.close(), 500);
  await server.restart();
  const broker = await connectTest(server.url);
  expect((await broker.jsm.streams.info(t.commandsStream)).state.messages).toBe(20);
  await broker.close();
});

test("broker – harness stop removes the store dir and is idempotent", async () => {
  const other = await startNats();
  expect(existsSync(other.storeDir)).toBe(true);
  await other.stop();
  await other.stop();
  expect(existsSync(other.storeDir)).toBe(false);
});
