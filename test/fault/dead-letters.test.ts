// Proves that a dead letter is stored once per provoked message when
// nats-server crashes right after the letter was stored: the crash loses the message's `term`
// (JetStream 2.9 loses the last ~100–200 ms of acks, shared notes §3), the message is delivered
// again after the duplicate window, and it must not be dead-lettered a second time. Each round
// publishes one malformed message, SIGKILLs nats-server the moment its letter is seen on a core
// subscription (so the term is lost), restarts it on its store after the duplicate window, and
// waits for the redelivery to be settled.
//
// Found by this suite and fixed: the worker's letters were deduped only by Nats-Msg-Id inside the
// duplicate window. Now every letter has a per-command marker (checked before, written after,
// src/dlq/max-deliveries-processor.ts deadLetterOnce) and the DLQ stream keeps its own day-long duplicate window
// for the crash between a letter and its claim, which is exactly where this test kills.
import { describe, expect, it } from "vitest";
import { ACK_WAIT_MS, DUPLICATE_WINDOW_MS, FaultEnv, FULL, sleep } from "./harness.ts";
import { deadLetters } from "./verify.ts";
import { waitFor } from "../support/streams.ts";

const ROUNDS = FULL ? 5 : 2;

describe("fault suite – dead letters under nats-server crashes", () => {
  it("a malformed message is dead-lettered once even when nats-server crashes right after its letter", async () => {
    const env = await FaultEnv.start();
    try {
      const sequences: number[] = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        // The letter is seen on a core subscription as it is stored; the kill follows within a millisecond.
        const seen = new Set<string>();
        const letters = env.client.nc.subscribe("billing.dlq.*", {
          callback: (_, m) => void seen.add(m.headers?.get("Billing-Original-Sequence") ?? ""),
        });
        const sent = await env.publish(
          "billing.cmd.credit",
          new TextEncoder().encode(`{not json ${round}`),
          undefined,
        );
        sequences.push(sent.streamSequence);
        const deadline = Date.now() + 30_000;
        while (!seen.has(String(sent.streamSequence)) && Date.now() < deadline) await sleep(1);
        letters.unsubscribe();
        await env.nats.kill("SIGKILL");
        env.faults += 1;
        await sleep(DUPLICATE_WINDOW_MS);
        await env.nats.restart();
        // A lost term comes back as a redelivery within the ack wait; give it that and a margin.
        await sleep(ACK_WAIT_MS * 2);
      }
      await env.ensureServices();
      await waitFor(
        "every command settled",
        async () => {
          const info = await env.jsm.consumers
            .info("BILLING_COMMANDS", "billing-worker")
            .catch(() => null);
          return info !== null && info.num_pending === 0 && info.num_ack_pending === 0;
        },
        60_000,
        200,
      );
      const counts = new Map<number, number>();
      for (const m of await deadLetters(env)) {
        const seq = Number(m.header?.get("Billing-Original-Sequence"));
        counts.set(seq, (counts.get(seq) ?? 0) + 1);
      }
      console.log(
        `dead letters per provoked message after ${ROUNDS} crashes: ${JSON.stringify(Object.fromEntries(counts))}`,
      );
      expect(sequences.map((s) => counts.get(s) ?? 0)).toEqual(sequences.map(() => 1));
    } finally {
      await env.stop();
    }
  }, 300_000);
});
