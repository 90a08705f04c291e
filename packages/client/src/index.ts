// The client library for publishing services: typed commands that always carry an operation id,
// publish with Nats-Msg-Id, retry with the same id on timeouts and broker restarts, and can await
// the operation's one event. Plus the three queries.
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection, type ConnectionOptions } from "@nats-io/transport-node";
import { validate, type CommandInput, type CommandName } from "./schemas.ts";

export { InvalidCallError } from "./schemas.ts";
export type { CommandInput, CommandName } from "./schemas.ts";
export { commandSchemas } from "./schemas.ts";

export type BillingEvent = Record<string, unknown> & { event: string };
export type Sent = { operationId: string; streamSequence: number; duplicate: boolean };
export type SendOptions = { wait?: boolean; timeoutMs?: number };
export type Outcome = Sent & { event?: BillingEvent };

export class BillingClientError extends Error {
  override name = "BillingClientError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Publish attempts on timeouts / no responders before giving up; each uses the same msgID. */
const PUBLISH_ATTEMPTS_MAX = 10;
const PUBLISH_BACKOFF_MS = 250;
const PUBLISH_ATTEMPT_MIN_MS = 1_000;
/** How often a waiting call looks for an event stored before it subscribed. */
const STORED_EVENT_POLL_MS = 1_000;

export class BillingClient {
  private constructor(readonly nc: NatsConnection, private readonly js: JetStreamClient, private readonly timeoutMs: number, private readonly eventsStream: string) {}

  static async connect(options: ConnectionOptions & { timeoutMs?: number; eventsStream?: string }): Promise<BillingClient> {
    const { timeoutMs, eventsStream, ...nats } = options;
    const nc = await connect({ maxReconnectAttempts: -1, reconnectTimeWait: 250, name: "billing-client", ...nats });
    return BillingClient.wrap(nc, timeoutMs ?? 10_000, eventsStream);
  }

  static wrap(nc: NatsConnection, timeoutMs = 10_000, eventsStream = "BILLING_EVENTS"): BillingClient {
    return new BillingClient(nc, jetstream(nc, { timeout: timeoutMs }), timeoutMs, eventsStream);
  }

  credit(input: CommandInput<"credit">, options?: SendOptions): Promise<Outcome> { return this.send("credit", input, options); }
  debit(input: CommandInput<"debit">, options?: SendOptions): Promise<Outcome> { return this.send("debit", input, options); }
  hold(input: CommandInput<"hold">, options?: SendOptions): Promise<Outcome> { return this.send("hold", input, options); }
  capture(input: CommandInput<"capture">, options?: SendOptions): Promise<Outcome> { return this.send("capture", input, options); }
  release(input: CommandInput<"release">, options?: SendOptions): Promise<Outcome> { return this.send("release", input, options); }
  transfer(input: CommandInput<"transfer">, options?: SendOptions): Promise<Outcome> { return this.send("transfer", input, options); }

  /** Validates, publishes (retrying with the same id), and with `wait` awaits the event. */
  async send<C extends CommandName>(command: C, input: CommandInput<C>, options: SendOptions = {}): Promise<Outcome> {
    const payload = validate(command, input);
    const operationId = (payload["operationId"] as string | undefined) ?? randomUUID();
    const body = { ...payload, operationId };
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const waiter = options.wait ? this.eventWaiter(operationId, timeoutMs) : null;
    try {
      const sent = await this.publishRaw(`billing.cmd.${command}`, encoder.encode(JSON.stringify(body)), operationId, timeoutMs);
      if (!waiter) return sent;
      return { ...sent, event: await waiter.result };
    } finally {
      waiter?.cancel();
    }
  }

  /** Publishes bytes as they are (tests and tools use it for malformed input). */
  async publishRaw(subject: string, data: Uint8Array, msgId: string | undefined, timeoutMs = this.timeoutMs): Promise<Sent> {
    const deadline = Date.now() + timeoutMs;
    // Several attempts fit in the caller's timeout: a publish lost in a broker restart is retried.
    const attemptMs = Math.max(PUBLISH_ATTEMPT_MIN_MS, Math.floor(timeoutMs / PUBLISH_ATTEMPTS_MAX));
    for (let attempt = 1; ; attempt += 1) {
      try {
        const ack = await this.js.publish(subject, data, { ...(msgId ? { msgID: msgId } : {}), timeout: Math.max(1, Math.min(attemptMs, deadline - Date.now())) });
        return { operationId: msgId ?? "", streamSequence: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        if (attempt >= PUBLISH_ATTEMPTS_MAX || Date.now() + PUBLISH_BACKOFF_MS >= deadline) {
          throw new BillingClientError(`publish to ${subject} failed after ${attempt} attempts: ${(error as Error).message}`, { cause: error });
        }
        await new Promise((r) => setTimeout(r, PUBLISH_BACKOFF_MS));
      }
    }
  }

  /** The operation's event: from the subscription, or from the operation query if already stored. */
  async waitForEvent(operationId: string, timeoutMs = this.timeoutMs): Promise<BillingEvent> {
    const waiter = this.eventWaiter(operationId, timeoutMs);
    try {
      return await waiter.result;
    } finally {
      waiter.cancel();
    }
  }

  private eventWaiter(operationId: string, timeoutMs: number): { result: Promise<BillingEvent>; cancel(): void } {
    const id = operationId.toLowerCase();
    const sub = this.nc.subscribe(`billing.evt.*.${id}`);
    let timer: NodeJS.Timeout | undefined;
    const fromSubscription = (async () => {
      for await (const m of sub) {
        const event = JSON.parse(decoder.decode(m.data)) as BillingEvent;
        if (event.event !== "expired") return event;
      }
      return new Promise<BillingEvent>(() => undefined);
    })();
    // The event may be stored already (a re-sent command). Ask the service, and read the events
    // stream directly (where permitted), now and every second: no single failed ask loses it.
    let stopped = false;
    const fromStore = (async () => {
      while (!stopped) {
        const found = await this.storedEvent(id);
        if (found) return found;
        await new Promise((r) => setTimeout(r, STORED_EVENT_POLL_MS));
      }
      return new Promise<BillingEvent>(() => undefined);
    })();
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new BillingClientError(`no event for operation ${id} within ${timeoutMs} ms`)), timeoutMs)));
    const result = Promise.race([fromSubscription, fromStore, timeout]);
    result.catch(() => undefined); // the caller may stop awaiting (a failed publish); no unhandled rejection
    return {
      result,
      cancel: () => {
        stopped = true;
        clearTimeout(timer);
        sub.unsubscribe();
      },
    };
  }

  /** The operation's stored event, from the operation query or a direct get; null if neither has it. */
  private async storedEvent(operationId: string): Promise<BillingEvent | null> {
    const viaQuery = await this.operation(operationId).then((r) => (r["event"] as BillingEvent | undefined) ?? null, () => null);
    if (viaQuery) return viaQuery;
    try {
      // checkAPI off: the manager is only used for direct gets, so no $JS.API.INFO round trip per poll.
      const jsm = await jetstreamManager(this.nc, { timeout: this.timeoutMs, checkAPI: false });
      const m = await jsm.direct.getMessage(this.eventsStream, { last_by_subj: `billing.evt.*.${operationId}` });
      const event = m ? (JSON.parse(decoder.decode(m.data)) as BillingEvent) : null;
      return event && event.event !== "expired" ? event : null;
    } catch {
      return null; // no permission for direct gets (publishers usually have none), or no answer
    }
  }

  balance(userId: string | number, currency?: string): Promise<Record<string, unknown>> {
    return this.query("billing.query.balance", currency === undefined ? { userId } : { userId, currency });
  }

  operation(operationId: string): Promise<Record<string, unknown>> {
    return this.query("billing.query.operation", { operationId });
  }

  holdStatus(holdId: string): Promise<Record<string, unknown>> {
    return this.query("billing.query.hold", { holdId });
  }

  /** Sends a query; an error reply becomes a BillingClientError with its code. */
  async query(subject: string, body: unknown): Promise<Record<string, unknown>> {
    const reply = await this.nc.request(subject, encoder.encode(JSON.stringify(body)), { timeout: this.timeoutMs });
    const answer = JSON.parse(decoder.decode(reply.data)) as Record<string, unknown>;
    const error = answer["error"] as { code?: string; message?: string } | undefined;
    if (error) throw new BillingClientError(`${subject}: ${error.code ?? "error"}: ${error.message ?? ""}`);
    return answer;
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}
