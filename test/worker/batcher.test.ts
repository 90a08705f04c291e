// The batch policy: take what is buffered at once when the ledger is idle; grow a batch only while
// an earlier one is with the ledger, at most batchWaitMs, never past the count bound.
import { describe, expect, it } from "vitest";
import type { JsMsg } from "@nats-io/jetstream";
import { Batcher } from "../../src/worker/batcher.ts";

/** A message source the test feeds by hand, like the consumer's iterator. */
function source() {
  const buffered: JsMsg[] = [];
  const waiting: Array<(r: IteratorResult<JsMsg>) => void> = [];
  let ended = false;
  const iterator: AsyncIterator<JsMsg> = {
    next: () => {
      const m = buffered.shift();
      if (m !== undefined) return Promise.resolve({ done: false, value: m });
      if (ended) return Promise.resolve({ done: true, value: undefined });
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
  return {
    iterator,
    push(...names: string[]) {
      for (const name of names) {
        const m = { subject: name } as unknown as JsMsg;
        const w = waiting.shift();
        if (w) w({ done: false, value: m });
        else buffered.push(m);
      }
    },
    end() {
      ended = true;
      for (const w of waiting.splice(0)) w({ done: true, value: undefined });
    },
  };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const subjects = (batch: JsMsg[] | null) => batch?.map((m) => m.subject) ?? null;
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
/** Far longer than the test's own timeout: a take that waited for it fails the test. */
const FOREVER_MS = 600_000;
const stop = new AbortController().signal;

describe("Batcher", () => {
  it("takes what is buffered at once when no earlier batch is with the ledger", async () => {
    const s = source();
    s.push("a", "b", "c");
    const batch = await new Batcher(s.iterator, 100).take(100, FOREVER_MS, stop, null);
    expect(subjects(batch)).toEqual(["a", "b", "c"]);
  }, 5_000);

  it("waits for the first message however long, then takes it alone when the ledger is idle", async () => {
    const s = source();
    const taking = new Batcher(s.iterator, 100).take(100, FOREVER_MS, stop, null);
    await turns(5);
    s.push("late");
    expect(subjects(await taking)).toEqual(["late"]);
  }, 5_000);

  it("grows a batch while an earlier one is with the ledger and closes it when that one is done", async () => {
    const s = source();
    const ledger = deferred();
    const batcher = new Batcher(s.iterator, 100);
    let taken: JsMsg[] | null | undefined;
    const taking = batcher.take(100, FOREVER_MS, stop, ledger.promise).then((b) => (taken = b));
    s.push("a");
    await turns(5);
    s.push("b");
    await turns(5);
    s.push("c");
    await turns(5);
    expect(taken).toBeUndefined();
    ledger.resolve();
    await taking;
    expect(subjects(taken ?? null)).toEqual(["a", "b", "c"]);
    s.push("d");
    expect(subjects(await batcher.take(100, FOREVER_MS, stop, null))).toEqual(["d"]);
  }, 5_000);

  it("closes a batch after batchWaitMs even while the ledger stays busy", async () => {
    const s = source();
    s.push("a");
    const never = new Promise<void>(() => undefined);
    const batch = await new Batcher(s.iterator, 100).take(100, 20, stop, never);
    expect(subjects(batch)).toEqual(["a"]);
  }, 5_000);

  it("never takes more than the count bound; the rest waits for the next batch", async () => {
    const s = source();
    s.push("a", "b", "c", "d", "e");
    const batcher = new Batcher(s.iterator, 100);
    const never = new Promise<void>(() => undefined);
    expect(subjects(await batcher.take(3, FOREVER_MS, stop, never))).toEqual(["a", "b", "c"]);
    expect(subjects(await batcher.take(3, FOREVER_MS, stop, null))).toEqual(["d", "e"]);
  }, 5_000);

  it("hands over what it holds when the source ends, then null", async () => {
    const s = source();
    const batcher = new Batcher(s.iterator, 100);
    const ledger = deferred();
    const taking = batcher.take(100, FOREVER_MS, stop, ledger.promise);
    s.push("a");
    await turns(3);
    s.end();
    expect(subjects(await taking)).toEqual(["a"]);
    expect(await batcher.take(100, FOREVER_MS, stop, null)).toBeNull();
  }, 5_000);

  it("reads one message ahead while no batch is being taken, and up to the bound while one is", async () => {
    const s = source();
    let reads = 0;
    const counted: AsyncIterator<JsMsg> = {
      next: () => {
        reads += 1;
        return s.iterator.next();
      },
    };
    s.push("a", "b", "c", "d", "e", "f", "g");
    const batcher = new Batcher(counted, 3);
    await turns(5);
    // consume() pulls again only when its iterator is read: holding one message while the loop
    // waits for room in its pipeline keeps the process from leasing a batch more than it can take.
    expect(reads).toBe(1);
    expect(subjects(await batcher.take(3, FOREVER_MS, stop, null))).toEqual(["a", "b", "c"]);
    await turns(5);
    expect(reads).toBe(4);
    expect(subjects(await batcher.take(3, FOREVER_MS, stop, null))).toEqual(["d", "e", "f"]);
    await turns(5);
    expect(reads).toBe(7);
    expect(subjects(await batcher.take(3, FOREVER_MS, stop, null))).toEqual(["g"]);
  }, 5_000);

  it("after drainBuffered reads the source to its end and naks what still arrives", async () => {
    const s = source();
    const naked: string[] = [];
    const counted: AsyncIterator<JsMsg> = {
      next: () =>
        s.iterator.next().then((r) => {
          if (r.done !== true)
            (r.value as { nak?: () => void }).nak = () => naked.push(r.value.subject);
          return r;
        }),
    };
    s.push("a", "b");
    const batcher = new Batcher(counted, 100);
    await turns(5);
    expect(subjects(batcher.drainBuffered())).toEqual(["a"]);
    await turns(5);
    s.push("c");
    await turns(5);
    s.end();
    await turns(5);
    // Closing a consume() waits for its iterator to be read to the end: nothing may stop the read.
    expect(naked).toEqual(["b", "c"]);
    expect(await batcher.take(100, FOREVER_MS, stop, null)).toBeNull();
  }, 5_000);

  it("hands over what arrived before the source failed, then throws its error", async () => {
    let calls = 0;
    const failing: AsyncIterator<JsMsg> = {
      next: () =>
        calls++ === 0
          ? Promise.resolve({ done: false, value: { subject: "a" } as unknown as JsMsg })
          : Promise.reject(new Error("subscription gone")),
    };
    const batcher = new Batcher(failing, 100);
    expect(subjects(await batcher.take(100, FOREVER_MS, stop, null))).toEqual(["a"]);
    await expect(batcher.take(100, FOREVER_MS, stop, null)).rejects.toThrow("subscription gone");
  }, 5_000);

  it("answers null when stopped before the first message", async () => {
    const s = source();
    const halt = new AbortController();
    const taking = new Batcher(s.iterator, 100).take(100, FOREVER_MS, halt.signal, null);
    halt.abort();
    expect(await taking).toBeNull();
  }, 5_000);
});
