// The worker's message source: a JetStream consume() that subscribes again when it ends.
//
// nats.js's consume() survives a broker restart by itself (missed heartbeats → it checks the
// consumer and pulls again, forever), but its iterator can still end with an error: a 400 or 409
// status, a subscription error, or simply end. Left alone, that error would end the worker loop
// and the process. Here a transient end (src/lib/failure.ts) is logged and the consumer is
// fetched and consumed again, with backoff; the Batcher never sees it. A connection closed for
// good, or an error that is not transient, still ends the loop: retrying cannot help.
//
// One `.then` per message is the whole cost on the hot path; no await is added.
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { describeFailure, isTransient } from "../lib/failure.ts";
import type { Logger } from "../lib/log.ts";
import { BrokerConnectError } from "./errors.ts";

/** Pause before subscribing again, doubled per failed attempt up to the max. */
export const resubscribeDelayMinMs = 250;
export const resubscribeDelayMaxMs = 5_000;

export class ResubscribingSource implements AsyncIterator<JsMsg> {
  private current: AsyncIterator<JsMsg>;
  private closed = false;

  constructor(
    private messages: ConsumerMessages,
    private readonly open: () => Promise<ConsumerMessages>,
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {
    this.current = messages[Symbol.asyncIterator]();
  }

  next(): Promise<IteratorResult<JsMsg>> {
    return this.current.next().then(
      (result) => (result.done === true && !this.closed ? this.reopen(null) : result),
      (error: unknown) => (this.closed ? ended : this.reopen(error)),
    );
  }

  /** Stops the current subscription; next() then ends. */
  async close(): Promise<void> {
    this.closed = true;
    await this.messages.close().catch(() => undefined);
  }

  private async reopen(error: unknown): Promise<IteratorResult<JsMsg>> {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what the iterator threw
    if (error !== null && !isTransient(error)) throw error;
    let delayMs = resubscribeDelayMinMs;
    let last = error;
    for (;;) {
      if (this.closed) return ended;
      if (this.nc.isClosed())
        throw new BrokerConnectError(
          `the NATS connection closed for good; last: ${describeFailure(last)}`,
          [],
          { cause: last },
        );
      this.log.warn(
        {
          err: last === null ? "the subscription ended" : describeFailure(last),
          retryInMs: delayMs,
        },
        "commands subscription ended; subscribing again",
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (this.closed) return ended;
      try {
        await this.messages.close().catch(() => undefined);
        this.messages = await this.open();
        this.current = this.messages[Symbol.asyncIterator]();
        return this.next();
      } catch (failure) {
        if (!isTransient(failure)) throw failure;
        last = failure;
        delayMs = Math.min(2 * delayMs, resubscribeDelayMaxMs);
      }
    }
  }
}

const ended: IteratorResult<JsMsg> = { done: true, value: undefined };
