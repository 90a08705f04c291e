// Turns the consumer's message stream into batches bounded by count and by time: wait as long as
// needed for the first message, take what is already buffered, and wait for more only while an
// earlier batch is still with the ledger (the ledger runs one request at a time, so a batch that
// waits there costs nothing, and one that waits while the ledger is idle only adds latency): until
// that batch is done, at most `waitMs` after the first message, never more than `max` messages.
import type { JsMsg } from "@nats-io/jetstream";
import { unlessAborted } from "../lib/signal.ts";

export class Batcher {
  private pending: Promise<IteratorResult<JsMsg>> | null = null;
  private ended = false;

  constructor(private readonly source: AsyncIterator<JsMsg>) {}

  private next(): Promise<IteratorResult<JsMsg>> {
    this.pending ??= this.source.next();
    return this.pending;
  }

  /**
   * Resolves with null when the source has ended or `stop` aborted first. `busy` resolves when the
   * ledger can take this batch (an earlier batch is done with it); null: it can now.
   */
  async take(
    max: number,
    waitMs: number,
    stop: AbortSignal,
    busy: Promise<void> | null = null,
  ): Promise<JsMsg[] | null> {
    if (this.ended) return null;
    const first = await unlessAborted(this.next(), stop);
    if (first === null) return null;
    this.pending = null;
    if (first.done) {
      this.ended = true;
      return null;
    }
    const batch = [first.value];
    const deadline = Date.now() + waitMs;
    let free = busy === null;
    void busy?.then(() => (free = true));
    while (batch.length < max) {
      const left = deadline - Date.now();
      const result =
        free || left <= 0 ? await this.ready() : await this.within(left, busy as Promise<void>);
      if (result === null) break;
      this.pending = null;
      if (result.done) {
        this.ended = true;
        break;
      }
      batch.push(result.value);
    }
    return batch;
  }

  /** A message already buffered, without waiting for the network. */
  private async ready(): Promise<IteratorResult<JsMsg> | null> {
    const marker = Symbol("later");
    // setImmediate runs after every pending microtask, so a buffered message wins the race.
    const result = await Promise.race([
      this.next(),
      new Promise<symbol>((resolve) => setImmediate(() => resolve(marker))),
    ]);
    return result === marker ? null : (result as IteratorResult<JsMsg>);
  }

  /** The next message within `ms`, unless `until` resolves first. */
  private async within(ms: number, until: Promise<void>): Promise<IteratorResult<JsMsg> | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
    try {
      return await Promise.race([this.next(), timeout, until.then(() => null)]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Messages buffered but not taken, for a prompt nak at shutdown. */
  async drainBuffered(): Promise<JsMsg[]> {
    const left: JsMsg[] = [];
    for (;;) {
      const r = await this.ready();
      if (r === null || r.done) return left;
      this.pending = null;
      left.push(r.value);
    }
  }
}
