// Proves that the ledger, not the broker, is the truth for events: events the broker acknowledged
// and then lost come back, once each, byte for byte. Two real service processes run on a real
// nats-server and a real SQLite ledger; a workload of every command type (and a hold that expires)
// gets its events; then the broker is stopped and loses the tail of its events stream as an OS
// crash before the disk sync does (test/support/lost-tail.ts cuts the last records of the stream's
// block), and restarted. The services reconnect, rescan the ledger's last recovery.windowMs of
// decisions (never past recovery.lagMs ago, so within a second here) and store the
// missing events again: each subject then holds exactly one event whose bytes equal the original
// (so the same balances, read at the operation's ledger timestamps), the balances queried equal
// what the events say, nothing is dead-lettered, and the recovery is counted on /metrics and
// logged per batch. Several processes recovering at once store each event once (the subject
// expectation decides). A lost rejection is not rebuilt from the ledger (it does not hold the
// command's fields): its publisher's waiting re-send under the same operationId brings it back.
import { randomUUID } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { BillingClient } from "@billing-ledger/client";
import { loseStoredTail } from "../support/lost-tail.ts";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";
import { storedMessages, waitFor } from "../support/streams.ts";

let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  nats = await startNats();
  // A short lag so the scan follows closely; every other recovery setting is the default.
  ws = workspace({
    recovery: { lagMs: 1_000, intervalMs: 500 },
    expiry: { delayMs: 1_000, sweepIntervalMs: 200 },
  });
});

afterAll(async () => {
  for (const s of services) await s.kill("SIGKILL");
  await nats?.stop();
  ws?.cleanup();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const text = (m: StoredMsg) => new TextDecoder().decode(m.data);

async function eventsBySubject(jsm: JetStreamManager): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const m of await storedMessages(jsm, "BILLING_EVENTS"))
    out.set(m.subject, [...(out.get(m.subject) ?? []), text(m)]);
  return out;
}

function recoveredInLog(output: string): number {
  let n = 0;
  for (const line of output.split("\n")) {
    if (!line.includes("stored again from the ledger")) continue;
    n += (JSON.parse(line) as { events: number }).events;
  }
  return n;
}

it("recovery – events the broker acknowledged and lost in a crash are stored again from the ledger, once each, byte for byte", async () => {
  const opsPort = await freePort();
  services.push(
    await spawnService(nats.url, ws.ledgerPath, ws.configPath, { OPS_PORT: String(opsPort) }),
  );
  services.push(await spawnService(nats.url, ws.ledgerPath, ws.configPath));
  const client = await BillingClient.connect({ servers: nats.url, timeoutMs: 20_000 });
  try {
    const send = { wait: true, republishAfterMs: 0 } as const;
    // A rejection first: rejections are not rebuilt from the ledger (docs/guarantees.md), so it stays outside the lost tail.
    const rejected = await client.debit({ userId: "lost-a", amount: 5 }, send);
    expect(rejected.event?.event).toBe("rejected");
    await client.credit({ userId: "lost-a", amount: 1_000 }, send);
    await client.credit({ userId: 4242, amount: "70", currency: "USD" }, send);
    await client.debit({ userId: "lost-a", amount: 100 }, send);
    await client.transfer(
      {
        fromUserId: "lost-a",
        toUserId: "lost-b-with-a-rather-long-user-id-over-thirty-six-characters",
        amount: 200,
        fee: 3,
      },
      send,
    );
    const held = await client.hold({ userId: "lost-a", amount: 50 }, send);
    await client.capture({ holdId: held.operationId }, send);
    const held2 = await client.hold(
      { userId: "lost-b-with-a-rather-long-user-id-over-thirty-six-characters", amount: 20 },
      send,
    );
    await client.release({ holdId: held2.operationId }, send);
    await client.transfer(
      { fromUserId: "lost-a", toUserId: 4242, amount: 10, currency: "EUR" },
      send,
    );
    // A rejection inside the lost tail: the rescan cannot rebuild it, a waiting re-send does.
    const lostRejection = { operationId: randomUUID(), userId: "lost-c", amount: 9 };
    const rejectedLater = await client.debit(lostRejection, send);
    expect(rejectedLater.event?.event).toBe("rejected");
    const expiring = await client.hold(
      { operationId: randomUUID(), userId: "lost-a", amount: 7, timeoutSeconds: 1 },
      send,
    );
    const jsm = await jetstreamManager(client.nc);
    const expiredSubject = `billing.evt.expired.${expiring.operationId}`;
    await waitFor(
      "the expired event",
      async () => (await eventsBySubject(jsm)).has(expiredSubject),
      30_000,
      200,
    );
    const before = await storedMessages(jsm, "BILLING_EVENTS");
    expect(before).toHaveLength(13);
    expect(before[before.length - 1]?.subject).toBe(expiredSubject);
    const recoveredBefore = services.reduce((n, s) => n + recoveredInLog(s.output()), 0);
    expect(
      recoveredBefore,
      "nothing was missing before the crash (each start rescanned an empty window)",
    ).toBe(0);

    // The crash: the last 10 events (everything after the first rejection and the first two
    // credits) were acknowledged but never reached the disk.
    const LOST = 10;
    const rejectedSubject = `billing.evt.rejected.${lostRejection.operationId}`;
    await nats.kill("SIGTERM");
    const lostSeqs = loseStoredTail(nats.storeDir, "BILLING_EVENTS", LOST);
    expect(lostSeqs).toEqual(before.slice(-LOST).map((m) => m.seq));
    await nats.restart();
    const afterCrash = jsm;
    // The services store the lost ones again within a scan interval of reconnecting, often before
    // this test's client is back: the logs and the counter below show they were lost and recovered.

    const recovered = await waitFor(
      "every applied operation's and the expiry's event stored again",
      async () => {
        const now = await eventsBySubject(afterCrash).catch(() => new Map<string, string[]>());
        return [...now.values()].reduce((n, list) => n + list.length, 0) >= before.length - 1
          ? now
          : undefined;
      },
      30_000,
      200,
    );
    // Exactly one event per subject, byte for byte the original; the lost rejection is not rebuilt.
    expect(recovered.size).toBe(before.length - 1);
    for (const m of before)
      expect(recovered.get(m.subject), m.subject).toEqual(
        m.subject === rejectedSubject ? undefined : [text(m)],
      );
    // Settled: a second look later finds no further copy, and still no rejection.
    await new Promise((r) => setTimeout(r, 1_500));
    const settled = await eventsBySubject(afterCrash);
    expect([...settled.values()].every((list) => list.length === 1)).toBe(true);
    expect(settled.has(rejectedSubject)).toBe(false);

    // Its publisher sends it again with the same operationId and waits: the first copy was acked
    // (its event lost after), so a copy is published and the worker's replay stores the event.
    const again = await client.debit(lostRejection, { wait: true, republishAfterMs: 1_000 });
    expect(again.duplicate).toBe(true); // the first copy is still in the stream, under its id
    expect(again.republished).toBe(1);
    expect(JSON.stringify(again.event)).toBe(
      text(before.find((m) => m.subject === rejectedSubject) as StoredMsg),
    );
    expect((await eventsBySubject(afterCrash)).get(rejectedSubject)).toHaveLength(1);

    // No operation applied twice: the balances queried are those the last events state.
    expect(await client.balance("lost-a")).toMatchObject({
      posted: String(1_000 - 100 - 200 - 3 - 50 - 10),
      held: "0",
    });
    expect(
      await client.balance("lost-b-with-a-rather-long-user-id-over-thirty-six-characters"),
    ).toMatchObject({ posted: "200", held: "0" });
    expect(await client.balance(4242, "USD")).toMatchObject({ posted: "70" });
    expect(await client.balance(4242)).toMatchObject({ posted: "10" });
    expect((await afterCrash.streams.info("BILLING_DLQ")).state.messages).toBe(0);

    // Counted and logged: the lost events, by one process or both (a copy the other stored first counts for both).
    const logged = services.map((s) => recoveredInLog(s.output()));
    const total = logged.reduce((a, b) => a + b, 0);
    console.log(`lost ${LOST} events; stored again by the two processes: ${logged.join(" + ")}`);
    // All lost but the rejection; the expired event may come back through the sweeper instead.
    expect(total).toBeGreaterThanOrEqual(LOST - 2);
    expect(total).toBeLessThanOrEqual(2 * (LOST - 1));
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    const counted = Number(/^billing_events_recovered_total (\d+)/m.exec(metrics)?.[1]);
    expect(counted).toBe(logged[0]);
  } finally {
    await client.close();
  }
}, 120_000);
