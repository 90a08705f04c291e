// Proves that an events stream refusing every write for minutes loses no event and dead-letters no
// decided operation (issue 10, item 2). BILLING_EVENTS is capped the way an operator or a full disk
// caps it: max_msgs a little above what it holds, discard new, so every publish is refused with
// "maximum messages exceeded" (10077) once the cap is reached, while commands keep coming and the
// three service processes keep deciding them in the ledger. consumer.maxDeliver is set low (16 with
// 1 s naks: a batch naked on each failed publish reaches it in ~20 s), so a worker that hands a
// decided batch back to the broker gets its operations dead-lettered as max_deliveries well inside
// the outage (30 s here, 5 minutes in the full form). Then the cap is lifted and the verification
// of the fault suite runs: every operation has exactly one event, the dead letters are exactly
// none, every balance equals the model from the events, and the audit finds nothing.
import { DiscardPolicy } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { FaultEnv, FULL, sleep } from "./harness.ts";
import { deadLetters, formatTable, ROW_HEADER, rowCells, verify } from "./verify.ts";
import { Workload } from "./workload.ts";

/** How long the events stream refuses writes: the five minutes in the full form. */
const OUTAGE_MS = FULL ? 300_000 : 30_000;
// Low enough that 1 s naks exhaust it inside the outage; high enough that a command the consumer
// buffered for a process whose batches are stuck, redelivered every ack wait (3 s), does not
// (16 × 3 s = 48 s > 30 s; 150 × 3 s = 450 s > 300 s). The config cross-check wants more than
// holdGraceMs / holdWaitNakMs + 5 = 15.
const MAX_DELIVER = FULL ? 150 : 16;
/** Events the capped stream still takes before it refuses: the cap must stay above what it holds, or the server purges the oldest. */
const CAP_HEADROOM = 200;
const RATE = 80;

it(
  "fault suite – the events stream refusing every write for a while loses no event and dead-letters no decided operation",
  async () => {
    const started = Date.now();
    const env = await FaultEnv.start({
      consumer: { maxDeliver: MAX_DELIVER },
      worker: { holdWaitNakMs: 1_000 },
    });
    try {
      const w = new Workload(801, 150, "outage");
      const outage = (async () => {
        await sleep(3_000);
        const held = (await env.jsm.streams.info("BILLING_EVENTS")).state.messages;
        await env.jsm.streams.update("BILLING_EVENTS", {
          max_msgs: held + CAP_HEADROOM,
          discard: DiscardPolicy.New,
        });
        // The outage starts when the stream is full.
        for (;;) {
          const s = await env.jsm.streams.info("BILLING_EVENTS");
          if (s.state.messages >= held + CAP_HEADROOM) break;
          await sleep(100);
        }
        env.faults += 1;
        const full = w.published.size;
        await sleep(OUTAGE_MS);
        console.log(
          `events stream refused writes for ${OUTAGE_MS / 1000} s while ${w.published.size - full} commands came in`,
        );
        await env.jsm.streams.update("BILLING_EVENTS", {
          max_msgs: -1,
          discard: DiscardPolicy.Old,
        });
      })();
      await w.run(env, {
        ratePerSecond: RATE,
        minimum: 0,
        maximum: 100_000,
        lanes: 8,
        stop: outage,
      });
      await outage;
      // What the outage dead-lettered, seen at once (the verification below waits minutes for events).
      const lettered = (await deadLetters(env)).filter(
        (m) => m.subject === "billing.dlq.max_deliveries",
      );
      expect(lettered.length, "commands dead-lettered as max_deliveries during the outage").toBe(0);
      const row = await verify(env, w, "events stream refusing writes", started);
      const info = await env.jsm.streams.info("BILLING_EVENTS");
      console.log(
        `\n${formatTable([ROW_HEADER, rowCells(row)])}\n${[...row.problems.slice(0, 30), ...row.notes].join("\n")}`,
      );
      expect(info.state.first_seq).toBe(1); // the cap purged nothing
      expect(row.problems).toEqual([]);
      expect({
        lost: row.lost,
        appliedTwice: row.appliedTwice,
        eventsDuplicated: row.eventsDuplicated,
        deadLetters: row.deadLetters,
      }).toEqual({ lost: 0, appliedTwice: 0, eventsDuplicated: 0, deadLetters: 0 });
      expect(row.audit.ok).toBe(true);
    } finally {
      await env.stop();
    }
  },
  OUTAGE_MS + 420_000,
);
