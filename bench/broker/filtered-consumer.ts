// What a consumer's filter_subject costs on nats-server 2.9.10 (src/broker/topology.ts,
// consumerConfig): a publisher fills a stream faster than two workers drain it, a consumer info is
// asked every INFO_MS (as command recovery, /metrics or an operator do), and each worker takes
// what its consume() buffered, "works" on it (a timer standing in for the ledger), publishes one
// event per message and acks. Run once with the filter and once without; prints batches and
// messages per second, and the time to drain.
//
//   npx tsx bench/broker/filtered-consumer.ts            (N=60000 WORKERS=2 INFO_MS=2000 WORK_US=600)
import { connect } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { startNats } from "../../test/support/nats-server.ts";
import { Batcher } from "../../src/worker/batcher.ts";

const N = Number(process.env["N"] ?? 60_000);
const WORKERS = Number(process.env["WORKERS"] ?? 2);
const INFO_MS = Number(process.env["INFO_MS"] ?? 2_000);
const WORK_US = Number(process.env["WORK_US"] ?? 600); // per message, on top of 1 ms per batch
const body = new TextEncoder().encode(JSON.stringify({ pad: "x".repeat(150) }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(filtered: boolean): Promise<string> {
  const server = await startNats();
  const admin = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(admin);
    await jsm.streams.add({ name: "C", subjects: ["c.>"] });
    await jsm.streams.add({ name: "E", subjects: ["e.>"] });
    await jsm.consumers.add("C", {
      durable_name: "w",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: 30e9,
      max_ack_pending: 20_000,
      max_batch: 1_000,
      ...(filtered ? { filter_subject: "c.>" } : {}),
    });
    const info = setInterval(
      () => void jsm.consumers.info("C", "w").catch(() => undefined),
      INFO_MS,
    );
    const started = Date.now();
    const publisher = (async () => {
      const js = jetstream(admin);
      for (let i = 0; i < N; i += 1_000) {
        const pubs: Promise<unknown>[] = [];
        for (let k = i; k < Math.min(N, i + 1_000); k++)
          pubs.push(js.publish(`c.${k % 6}`, body, { msgID: `m-${k}` }));
        await Promise.all(pubs);
      }
      return Date.now() - started;
    })();
    let acked = 0;
    const seconds = new Map<number, [number, number]>(); // second → [batches, messages]
    const worker = async () => {
      const nc = await connect({ servers: server.url });
      const js = jetstream(nc);
      const messages = await (
        await js.consumers.get("C", "w")
      ).consume({
        max_messages: 1_000,
        expires: 5_000,
      });
      const batcher = new Batcher(messages[Symbol.asyncIterator](), 1_000);
      const stop = new AbortController();
      let withLedger: Promise<void> | null = null;
      const inFlight = new Set<Promise<void>>();
      while (acked < N) {
        while (inFlight.size >= 2) await Promise.race(inFlight);
        const batch = await Promise.race([
          batcher.take(1_000, 5, stop.signal, withLedger),
          sleep(1_000).then(() => null),
        ]);
        if (batch === null) continue;
        const second = Math.floor((Date.now() - started) / 1_000);
        const s = seconds.get(second) ?? [0, 0];
        seconds.set(second, [s[0] + 1, s[1] + batch.length]);
        const ledger: Promise<void> = sleep(1 + (WORK_US * batch.length) / 1_000).then(() => {
          if (withLedger === ledger) withLedger = null;
        });
        withLedger = ledger;
        const settled: Promise<void> = ledger
          .then(async () => {
            await Promise.all(batch.map((m: JsMsg) => js.publish(`e.${m.seq}`, body)));
            for (const m of batch) m.ack();
            acked += batch.length;
          })
          .finally(() => inFlight.delete(settled));
        inFlight.add(settled);
      }
      stop.abort();
      await Promise.all(inFlight);
      await nc.close();
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    const drainedMs = Date.now() - started;
    const publishedMs = await publisher;
    clearInterval(info);
    const perSecond = [...seconds]
      .sort((a, b) => a[0] - b[0])
      .map(([s, [b, m]]) => `${s}s ${b}/${m}`)
      .join(", ");
    const batches = [...seconds.values()].reduce((sum, [b]) => sum + b, 0);
    return `${filtered ? "filter c.>" : "no filter "}: published in ${publishedMs} ms, drained in ${drainedMs} ms, ${batches} batches (per second batches/messages: ${perSecond})`;
  } finally {
    await admin.close();
    await server.stop();
  }
}

console.log(
  `nats-server 2.9.10, ${N} messages, ${WORKERS} workers, consumer info every ${INFO_MS} ms`,
);
for (const filtered of [true, false]) console.log(await run(filtered));
process.exit(0);
