// Turns the consumer's message stream into batches bounded by count and by time: wait as long as
// needed for the first message, take what is already buffered, and wait for more only while an
// earlier batch is still with the ledger (the ledger runs one request at a time, so a batch that
// waits there costs nothing, and one that waits while the ledger is idle only adds latency): until
// that batch is done, at most `waitMs` after the first message, never more than `max` messages.
//
// One loop moves messages from the source into a plain array as they arrive, and stops reading
// while the array holds `bufferMax` of them: nats.js's consume() sends its next pull request only
// when its iterator is read, so this keeps the backpressure it had (messages waiting here are not
// leased by a batch's heartbeat, and ack wait runs for them). A batch then costs one timer and one
// promise, not a timer and a race per message (bench: ~1.5 KB of garbage per message before).
import type { JsMsg } from "@nats-io/jetstream";
import { assert } from "../lib/assert.ts";
import { unlessAborted } from "../lib/signal.ts";

export class Batcher {
  private readonly buffered: JsMsg[] = [];
  private ended = false;
  /** The source's failure, thrown by take() once what arrived before it is handed over. */
  private failure: { error: unknown } | null = null;
  /** Called on every arrival and at the end; set only while a take() waits. */
  private wake: (() => void) | null = null;
  /** Called when messages leave the array; set only while the pump waits for room. */
  private room: (() => void) | null = null;

  constructor(
    source: AsyncIterator<JsMsg>,
    private readonly bufferMax: number,
  ) {
    assert(Number.isSafeInteger(bufferMax) && bufferMax > 0, "bufferMax is a positive integer");
    void this.pump(source);
  }

  private async pump(source: AsyncIterator<JsMsg>): Promise<void> {
    try {
      for (;;) {
        if (this.buffered.length >= this.bufferMax)
          await new Promise<void>((resolve) => (this.room = resolve));
        const result = await source.next();
        if (result.done === true) break;
        this.buffered.push(result.value);
        this.wake?.();
      }
    } catch (error) {
      this.failure = { error };
    }
    this.ended = true;
    this.wake?.();
  }

  /**
   * Resolves with null when the source has ended or `stop` aborted first; throws the source's
   * failure. `busy` resolves when the ledger can take this batch (an earlier batch is done with
   * it); null: it can now.
   */
  async take(
    max: number,
    waitMs: number,
    stop: AbortSignal,
    busy: Promise<void> | null = null,
  ): Promise<JsMsg[] | null> {
    assert(this.wake === null, "one take() at a time");
    assert(max <= this.bufferMax, "a batch fits in the buffer");
    if (this.buffered.length === 0 && !this.ended) {
      const arrived = await unlessAborted(
        this.until(() => this.buffered.length > 0),
        stop,
      );
      if (arrived === null) {
        this.wake = null;
        return null;
      }
    }
    if (this.buffered.length === 0) {
      if (this.failure !== null) throw this.failure.error;
      return null;
    }
    if (this.buffered.length < max && !this.ended) {
      if (busy !== null && waitMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
        await Promise.race([this.until(() => this.buffered.length >= max), late, busy]);
        clearTimeout(timer);
        this.wake = null;
      }
      // What reached the process in this turn of the event loop joins (setImmediate runs after it).
      await new Promise((resolve) => setImmediate(resolve));
    }
    return this.handOver(max);
  }

  private handOver(count: number): JsMsg[] {
    const batch = this.buffered.splice(0, count);
    this.room?.();
    this.room = null;
    return batch;
  }

  /** Resolves once `done()` holds after an arrival, or the source ended. */
  private until(done: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = () => {
        if (!done() && !this.ended) return;
        this.wake = null;
        resolve();
      };
    });
  }

  /** Messages buffered but not taken, for a prompt nak at shutdown. */
  drainBuffered(): JsMsg[] {
    return this.handOver(this.buffered.length);
  }
}
