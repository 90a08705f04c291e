// The client library for publishing services: typed commands that always carry an operation id,
// publish with Nats-Msg-Id, retry with the same id on timeouts and broker restarts, and can await
// the operation's one event. Plus the three queries.
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import {
  AuthorizationError,
  connect,
  InvalidArgumentError,
  InvalidSubjectError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  UserAuthenticationExpiredError,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
} from "@nats-io/transport-node";
import {
  commandSchemas,
  InvalidCallError,
  validate,
  type CommandInput,
  type CommandName,
} from "./schemas.ts";

export { InvalidCallError } from "./schemas.ts";
export type { CommandInput, CommandName } from "./schemas.ts";
export { commandSchemas, operationId as operationIdSchema, validate } from "./schemas.ts";

export type BillingEvent = Record<string, unknown> & { event: string };
export type Sent = { operationId: string; streamSequence: number; duplicate: boolean };
/**
 * `republishAfterMs` (with `wait`): publish the command again when no event came this long after
 * the last publish, while the timeout allows (at most REPUBLISHES_MAX times). Default half the
 * timeout; 0 never republishes.
 */
export type SendOptions = { wait?: boolean; timeoutMs?: number; republishAfterMs?: number };
/** `republished`: how many more copies of the command this call stored while it waited. */
export type Outcome = Sent & { event?: BillingEvent; republished?: number };

/**
 * Every error this client throws on a call it accepted, one class per kind, so a caller branches
 * by class: UnavailableError (try later), EventTimeoutError (stored, not yet applied: wait or
 * retry with the same id), ConflictError (the id belongs to another command: a bug of the
 * caller), QueryError (the service refused the query as asked). InvalidCallError (schemas.ts) is
 * a bad call refused before anything was sent.
 */
export class BillingClientError extends Error {
  override name = "BillingClientError";
}

/**
 * The broker or the service did not answer: NATS unreachable, no service answering a query (no
 * responders), a request past its deadline, a publish that failed on every attempt, a service
 * that answered "unavailable". Nothing changed because of the call, except possibly a publish
 * whose acknowledgement was lost: retry with the same operationId.
 */
export class UnavailableError extends BillingClientError {
  override name = "UnavailableError";
}

/**
 * The broker stored the command (at `streamSequence` in the commands stream), but its event did
 * not come within the wait: no service is running, or it is behind. The command will be applied
 * when a service takes it; a retry must reuse the same operationId, or it may apply twice.
 */
export class EventTimeoutError extends BillingClientError {
  override name = "EventTimeoutError";
  constructor(
    readonly operationId: string,
    readonly timeoutMs: number,
    readonly streamSequence: number | null,
  ) {
    const stored =
      streamSequence === null
        ? "it may still be applied"
        : `the command is stored (commands stream sequence ${streamSequence}) and will be applied when a billing service runs`;
    super(
      `no event for operation ${operationId} within ${timeoutMs} ms: ${stored}; a retry must reuse operationId ${operationId}, never a new one`,
    );
  }
}

/** One field in which the command sent differs from the command its operation's event records. */
export type Difference = { field: string; sent: string | null; stored: string | null };

/**
 * The operationId already has an event, for a different command (another type, user, amount,
 * fee, currency or hold). That event is the operation's only one: the command sent is never
 * applied (the service dead-letters it as `conflict`, or the broker drops it as a duplicate).
 */
export class ConflictError extends BillingClientError {
  override name = "ConflictError";
  constructor(
    readonly operationId: string,
    readonly event: BillingEvent,
    readonly differences: ReadonlyArray<Difference>,
  ) {
    const what = differences
      .map((d) => `${d.field} ${d.sent ?? "(none)"} sent, ${d.stored ?? "(none)"} stored`)
      .join("; ");
    super(
      `conflict: operation ${operationId} already has a ${event.event} event for a different command (${what}); this command is not applied`,
    );
  }
}

/** The service refused the query as asked (`code`: invalid_request, unknown_currency, …). */
export class QueryError extends BillingClientError {
  override name = "QueryError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Publish attempts on timeouts / no responders before giving up; each uses the same msgID. */
const PUBLISH_ATTEMPTS_MAX = 10;
const PUBLISH_BACKOFF_MS = 250;
const PUBLISH_ATTEMPT_MIN_MS = 1_000;
/**
 * Copies of a command a waiting send publishes at most after the first. A PubAck says the broker
 * stored the command, not that it keeps it: JetStream acknowledges before it syncs to disk, so a
 * broker's OS crash or power loss can lose it, and an operator can delete it. The event is the
 * acknowledgement; a command whose event is late is published again, a bounded number of times.
 */
const REPUBLISHES_MAX = 3;
/** How often a waiting call looks for an event stored before it subscribed. */
const STORED_EVENT_POLL_MS = 1_000;
/** The fields of a command an event repeats (docs/contract.md, events), in contract order. */
const EVENT_FIELDS = [
  "userId",
  "fromUserId",
  "toUserId",
  "holdId",
  "amount",
  "fee",
  "currency",
] as const;

/**
 * How the command sent differs from the one its operation's event records; empty when they are
 * the same as far as the event tells. What an event cannot tell is never a difference: a currency
 * the caller left out (the event names the default of the day), a rejection that carries no
 * fields (a command the service could not read), timeoutSeconds (no event carries it), and what
 * the event adds to a command (a capture's event names the hold's user and amount). Normalised as
 * the service does: 42 and "42" are one user, fee 0 is no fee, a holdId in any letter case is one
 * hold. Pure, and independent of the service's code (this client is packaged on its own).
 */
export function differencesOf(
  command: CommandName,
  sent: Record<string, unknown>,
  event: BillingEvent,
): Difference[] {
  const storedCommand = typeof event["command"] === "string" ? event["command"] : null;
  if (storedCommand !== command)
    return [{ field: "command", sent: command, stored: storedCommand }];
  if (!EVENT_FIELDS.some((f) => event[f] !== undefined)) return [];
  const out: Difference[] = [];
  // Only the command's own fields: a capture's event also names the hold's user and amount.
  const own = Object.keys(commandSchemas[command].shape);
  for (const field of EVENT_FIELDS.filter((f) => own.includes(f))) {
    const mine = textOf(sent[field], field);
    const theirs = typeof event[field] === "string" ? event[field] : null;
    if (mine === theirs) continue;
    if (field === "currency" && mine === null) continue; // left out: whatever the default was
    if (field !== "fee" && theirs === null) continue; // not carried by this event: cannot tell
    out.push({ field, sent: mine, stored: theirs });
  }
  return out;
}

function textOf(value: unknown, field: (typeof EVENT_FIELDS)[number]): string | null {
  if (value === undefined || value === null) return null;
  const text = String(value);
  if (field === "fee" && text === "0") return null; // events leave out a zero fee
  return field === "holdId" ? text.toLowerCase() : text;
}

/**
 * A NATS failure as this client's error, one line: what failed, why, and what to do. A refused
 * login is the caller's to fix (BillingClientError); the rest is the broker or the service away.
 */
function unavailable(what: string, error: unknown, advice = ""): BillingClientError {
  const message = error instanceof Error ? error.message : String(error);
  if (
    error instanceof AuthorizationError ||
    error instanceof UserAuthenticationExpiredError ||
    error instanceof PermissionViolationError
  ) {
    return new BillingClientError(`${what}: ${message}`, { cause: error });
  }
  if (error instanceof RequestError && error.isNoResponders()) {
    return new UnavailableError(
      `${what}: no service answered (no responders); is a billing service running?`,
      { cause: error },
    );
  }
  // nats.js reads a publish that no stream takes (a 503: nobody responded) as JetStream "not
  // enabled"; by name, as the package does not export the class.
  if (error instanceof Error && error.name === "JetStreamNotEnabled") {
    return new UnavailableError(
      `${what}: no stream takes it (no responders); has a billing service or \`billing setup\` run on this NATS?`,
      { cause: error },
    );
  }
  if (error instanceof TimeoutError)
    return new UnavailableError(`${what}: no answer within the request timeout${advice}`, {
      cause: error,
    });
  return new UnavailableError(`${what}: ${message}${advice}`, { cause: error });
}

export class BillingClient {
  private constructor(
    readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly timeoutMs: number,
    private readonly eventsStream: string,
    private readonly commands: { stream: string; consumer: string },
  ) {}

  /** Connects; an unreachable broker is an UnavailableError, refused credentials a BillingClientError. */
  /**
   * `commandsStream` and `commandsConsumer` (defaults `BILLING_COMMANDS`, `billing-worker`): where a
   * waiting send looks whether its command still waits for a worker before it publishes a copy.
   */
  static async connect(
    options: ConnectionOptions & {
      timeoutMs?: number;
      eventsStream?: string;
      commandsStream?: string;
      commandsConsumer?: string;
    },
  ): Promise<BillingClient> {
    const { timeoutMs, eventsStream, commandsStream, commandsConsumer, ...nats } = options;
    let nc: NatsConnection;
    try {
      nc = await connect({
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        name: "billing-client",
        ...nats,
      });
    } catch (error) {
      const servers = [nats.servers ?? "127.0.0.1:4222"].flat().map(hideCredentials).join(", ");
      throw unavailable(`cannot connect to NATS at ${servers}`, error);
    }
    return BillingClient.wrap(
      nc,
      timeoutMs ?? 10_000,
      eventsStream,
      commandsStream,
      commandsConsumer,
    );
  }

  static wrap(
    nc: NatsConnection,
    timeoutMs = 10_000,
    eventsStream = "BILLING_EVENTS",
    commandsStream = "BILLING_COMMANDS",
    commandsConsumer = "billing-worker",
  ): BillingClient {
    return new BillingClient(nc, jetstream(nc, { timeout: timeoutMs }), timeoutMs, eventsStream, {
      stream: commandsStream,
      consumer: commandsConsumer,
    });
  }

  credit(input: CommandInput<"credit">, options?: SendOptions): Promise<Outcome> {
    return this.send("credit", input, options);
  }
  debit(input: CommandInput<"debit">, options?: SendOptions): Promise<Outcome> {
    return this.send("debit", input, options);
  }
  hold(input: CommandInput<"hold">, options?: SendOptions): Promise<Outcome> {
    return this.send("hold", input, options);
  }
  capture(input: CommandInput<"capture">, options?: SendOptions): Promise<Outcome> {
    return this.send("capture", input, options);
  }
  release(input: CommandInput<"release">, options?: SendOptions): Promise<Outcome> {
    return this.send("release", input, options);
  }
  transfer(input: CommandInput<"transfer">, options?: SendOptions): Promise<Outcome> {
    return this.send("transfer", input, options);
  }

  /**
   * Validates, publishes (retrying with the same id), and with `wait` awaits the event. With
   * `wait`, an event that records another command under this operationId is a ConflictError,
   * whether the broker dropped this publish as a duplicate or the service dead-lettered it.
   */
  async send<C extends CommandName>(
    command: C,
    input: CommandInput<C>,
    options: SendOptions = {},
  ): Promise<Outcome> {
    const payload = validate(command, input);
    const operationId = (payload["operationId"] as string | undefined) ?? randomUUID();
    const body = { ...payload, operationId };
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const waiter = options.wait ? this.eventWaiter(operationId, timeoutMs) : null;
    const deadline = Date.now() + timeoutMs;
    try {
      const subject = `billing.cmd.${command}`;
      const data = encoder.encode(JSON.stringify(body));
      const sent = await this.publishRaw(subject, data, operationId, timeoutMs);
      if (!waiter) return sent;
      const republishAfterMs = options.republishAfterMs ?? Math.floor(timeoutMs / 2);
      const { event, republished } = await this.awaitEvent(waiter.result, {
        subject,
        data,
        operationId,
        sent,
        deadline,
        republishAfterMs,
      }).catch((error: unknown) => {
        throw error instanceof EventTimeoutError
          ? new EventTimeoutError(operationId, timeoutMs, sent.streamSequence)
          : error;
      });
      const differences = differencesOf(command, body, event);
      if (differences.length > 0) throw new ConflictError(operationId, event, differences);
      return { ...sent, event, republished };
    } finally {
      waiter?.cancel();
    }
  }

  /**
   * Waits for the event; each time `republishAfterMs` passes without it, publishes the command
   * again unless the broker shows its copy still waiting for a worker (a slow or stopped service:
   * another copy would only add work). A copy the broker no longer has (deleted, or lost in a crash before
   * its disk sync) or whose presence cannot be read (a publisher has no JetStream API) is
   * published again under a new Nats-Msg-Id, `<operationId>:republish:<n>`: the broker keeps
   * the first id in its duplicate window even after the message is deleted, and would drop the
   * copy as a duplicate. Two copies are safe only because the operationId is the ledger's
   * transfer id: the ledger decides the operation once, and the second copy replays it.
   */
  private async awaitEvent(
    result: Promise<BillingEvent>,
    c: {
      subject: string;
      data: Uint8Array;
      operationId: string;
      sent: Sent;
      deadline: number;
      republishAfterMs: number;
    },
  ): Promise<{ event: BillingEvent; republished: number }> {
    let republished = 0;
    let copy = c.sent;
    for (;;) {
      const nextAt = Date.now() + c.republishAfterMs;
      const canRepublish =
        c.republishAfterMs > 0 && republished < REPUBLISHES_MAX && nextAt < c.deadline;
      if (!canRepublish) return { event: await result, republished };
      let timer: NodeJS.Timeout | undefined;
      const due = new Promise<null>(
        (resolve) => (timer = setTimeout(() => resolve(null), c.republishAfterMs)),
      );
      const event = await Promise.race([result, due]).finally(() => clearTimeout(timer));
      if (event !== null) return { event, republished };
      if (await this.commandWaiting(copy, c.republishAfterMs)) continue;
      const msgId = `${c.operationId}:republish:${republished + 1}`;
      // A failed republish leaves the copies already sent: keep waiting for their event.
      const again = await this.publishRaw(
        c.subject,
        c.data,
        msgId,
        Math.max(1, c.deadline - Date.now()),
      ).catch(() => null);
      if (again === null) continue;
      republished += 1;
      copy = again;
    }
  }

  /**
   * Whether this copy still waits for a worker: the commands stream holds it at its sequence, with
   * its Nats-Msg-Id (a broker that lost its tail reuses sequences), and the workers' consumer has
   * not acknowledged it (its ack floor is below it). A copy already acknowledged whose event is
   * missing (lost by the broker after the ack) needs a new copy: the worker replays the decision
   * and stores the event again, a rejection's too. False when it cannot tell (no permission, no
   * answer within `timeoutMs`), which costs one more copy, never a second application.
   */
  private async commandWaiting(copy: Sent, timeoutMs: number): Promise<boolean> {
    try {
      const jsm = await jetstreamManager(this.nc, {
        timeout: Math.min(timeoutMs, this.timeoutMs),
        checkAPI: false,
      });
      const m = await jsm.direct.getMessage(this.commands.stream, { seq: copy.streamSequence });
      if (m === null || m.header.get("Nats-Msg-Id") !== copy.operationId) return false;
      const consumer = await jsm.consumers.info(this.commands.stream, this.commands.consumer);
      return consumer.ack_floor.stream_seq < copy.streamSequence;
    } catch {
      return false;
    }
  }

  /**
   * Publishes bytes as they are (tests and tools use it for malformed input). A payload over the
   * server's max_payload is refused at once (InvalidCallError): no attempt could pass.
   */
  async publishRaw(
    subject: string,
    data: Uint8Array,
    msgId: string | undefined,
    timeoutMs = this.timeoutMs,
  ): Promise<Sent> {
    const maxPayload = this.nc.info?.max_payload;
    if (maxPayload !== undefined && data.byteLength > maxPayload) {
      throw new InvalidCallError(
        `the command is ${data.byteLength} bytes; the NATS server takes at most ${maxPayload} bytes per message (max_payload)`,
      );
    }
    const deadline = Date.now() + timeoutMs;
    // Several attempts fit in the caller's timeout: a publish lost in a broker restart is retried.
    const attemptMs = Math.max(
      PUBLISH_ATTEMPT_MIN_MS,
      Math.floor(timeoutMs / PUBLISH_ATTEMPTS_MAX),
    );
    for (let attempt = 1; ; attempt += 1) {
      try {
        const ack = await this.js.publish(subject, data, {
          ...(msgId ? { msgID: msgId } : {}),
          timeout: Math.max(1, Math.min(attemptMs, deadline - Date.now())),
        });
        return { operationId: msgId ?? "", streamSequence: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        // The message itself is refused (too large with its headers, a bad subject): every attempt would be.
        if (error instanceof InvalidArgumentError || error instanceof InvalidSubjectError) {
          throw new InvalidCallError(`publish to ${subject} refused: ${error.message}`, {
            cause: error,
          });
        }
        if (attempt >= PUBLISH_ATTEMPTS_MAX || Date.now() + PUBLISH_BACKOFF_MS >= deadline) {
          // An acknowledgement lost on its way back leaves the command stored: say how to retry safely.
          const advice = msgId ? `; it may be stored: a retry must reuse operationId ${msgId}` : "";
          throw unavailable(
            `publish to ${subject} failed after ${attempt} attempts`,
            error,
            advice,
          );
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

  private eventWaiter(
    operationId: string,
    timeoutMs: number,
  ): { result: Promise<BillingEvent>; cancel(): void } {
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
    const timeout = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new EventTimeoutError(id, timeoutMs, null)), timeoutMs)),
    );
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
    const viaQuery = await this.operation(operationId).then(
      (r) => (r["event"] as BillingEvent | undefined) ?? null,
      () => null,
    );
    if (viaQuery) return viaQuery;
    try {
      // checkAPI off: the manager is only used for direct gets, so no $JS.API.INFO round trip per poll.
      const jsm = await jetstreamManager(this.nc, { timeout: this.timeoutMs, checkAPI: false });
      const m = await jsm.direct.getMessage(this.eventsStream, {
        last_by_subj: `billing.evt.*.${operationId}`,
      });
      const event = m ? (JSON.parse(decoder.decode(m.data)) as BillingEvent) : null;
      return event && event.event !== "expired" ? event : null;
    } catch {
      return null; // no permission for direct gets (publishers usually have none), or no answer
    }
  }

  balance(userId: string | number, currency?: string): Promise<Record<string, unknown>> {
    return this.query(
      "billing.query.balance",
      currency === undefined ? { userId } : { userId, currency },
    );
  }

  operation(operationId: string): Promise<Record<string, unknown>> {
    return this.query("billing.query.operation", { operationId });
  }

  holdStatus(holdId: string): Promise<Record<string, unknown>> {
    return this.query("billing.query.hold", { holdId });
  }

  /**
   * Sends a query. No answer (no service, a timeout, the broker away) or an "unavailable" or
   * "internal" answer is an UnavailableError; any other error answer a QueryError with its code.
   */
  async query(subject: string, body: unknown): Promise<Record<string, unknown>> {
    let reply: Msg;
    try {
      reply = await this.nc.request(subject, encoder.encode(JSON.stringify(body)), {
        timeout: this.timeoutMs,
      });
    } catch (error) {
      throw unavailable(subject, error);
    }
    const answer = JSON.parse(decoder.decode(reply.data)) as Record<string, unknown>;
    const error = answer["error"] as { code?: string; message?: string } | undefined;
    if (error) {
      const code = error.code ?? "error";
      if (code === "unavailable" || code === "internal")
        throw new UnavailableError(`${subject}: ${code}: ${error.message ?? ""}`);
      throw new QueryError(code, error.message ?? "");
    }
    return answer;
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}

/** A server URL for a message, without user and password. */
function hideCredentials(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//");
}
