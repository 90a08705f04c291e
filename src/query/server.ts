// Read-only queries over NATS request/reply. Every request gets a reply: the answer, or
// { error: { code, message } } for a bad request or a failure to read.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { getLastBySubject } from "../broker/last-by-subject.ts";
import { AccountFilterFlags, TransferFlags, type Transfer } from "tigerbeetle-node";
import { LEDGER_EVENTS_MAX } from "../config/limits.ts";
import { currencyByCode, currencyByLedger, userAccountId, type Chart } from "../domain/accounts.ts";
import { EXPIRY_MARKER_CODE, isDue } from "../domain/expiry.ts";
import { ledgerIssued } from "../ledger/clock.ts";
import type { NameBook } from "../ledger-facts/name-book.ts";
import { COMMAND_TYPE_OF_CODE, userIdSchema, uuidSchema } from "../domain/commands.ts";
import { EVENT_OF } from "../domain/events.ts";
import { formatOperationId, parseOperationId } from "../domain/ids.ts";
import { userBalance } from "../domain/money.ts";
import { isHold, isMarker, isOwn, TransferCode } from "../domain/plan.ts";
import type { Ledger } from "../ledger/port.ts";
import { AssertionError } from "../lib/assert.ts";
import { exitOnBug, isTransient } from "../lib/failure.ts";
import type { Logger } from "../lib/log.ts";

export type QueryDeps = {
  nc: NatsConnection;
  jsm: JetStreamManager;
  ledger: Ledger;
  chart: Chart;
  names: NameBook;
  eventsStream: string;
  queue: string;
  log: Logger;
};

export type Handler = (deps: QueryDeps, body: unknown) => Promise<Record<string, unknown>>;

export class QueryError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join(".") : "request";
    const text =
      issue?.code === "unrecognized_keys"
        ? `unknown field ${issue.keys.join(", ")}`
        : `${where}: ${issue?.message ?? "invalid"}`;
    throw new QueryError("invalid_request", text);
  }
  return r.data;
}

export const balanceQuery: Handler = async (deps, body) => {
  const q = parse(z.strictObject({ userId: userIdSchema, currency: z.string().optional() }), body);
  const code = q.currency ?? deps.chart.defaultCurrency;
  const currency = currencyByCode(deps.chart, code);
  if (!currency) throw new QueryError("unknown_currency", `currency ${code} is not configured`);
  const [account] = await deps.ledger.lookupAccounts([
    userAccountId(deps.chart.space, currency.ledger, q.userId),
  ]);
  const b = account ? userBalance(account) : { posted: 0n, held: 0n, available: 0n };
  return {
    userId: q.userId,
    currency: code,
    posted: b.posted.toString(),
    held: b.held.toString(),
    available: b.available.toString(),
  };
};

export const operationQuery: Handler = async (deps, body) => {
  const q = parse(z.strictObject({ operationId: uuidSchema }), body);
  const id = parseOperationId(q.operationId) as bigint;
  const operationId = formatOperationId(id);
  const found = await deps.ledger.lookupTransfers([id, deps.chart.space.burnedMarkerId(id)]);
  const record = found[0];
  // A transfer of another deployment sharing the ledger is not an operation of ours.
  if (!record || !isOwn(deps.chart, record)) return { operationId, status: "unknown" };
  const rejected = isMarker(deps.chart, record);
  const type = COMMAND_TYPE_OF_CODE.get(record.user_data_32);
  const event = rejected ? "rejected" : type ? EVENT_OF[type] : undefined;
  const stored = event
    ? await getLastBySubject(deps.jsm, deps.eventsStream, `billing.evt.${event}.${operationId}`)
    : null;
  const reply: Record<string, unknown> = { operationId, status: rejected ? "rejected" : "applied" };
  if (stored) reply["event"] = JSON.parse(new TextDecoder().decode(stored.data));
  return reply;
};

/** The post or void of a hold, if any: scans the held account's transfers after the hold. */
async function resolutionOf(
  ledger: Ledger,
  hold: Transfer,
): Promise<"captured" | "released" | null> {
  for (let min = hold.timestamp + 1n; ;) {
    const page = await ledger.getAccountTransfers({
      account_id: hold.debit_account_id,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: TransferCode.hold,
      timestamp_min: min,
      timestamp_max: 0n,
      limit: LEDGER_EVENTS_MAX,
      flags: AccountFilterFlags.debits,
    });
    const found = page.find((t) => t.pending_id === hold.id);
    if (found)
      return (found.flags & TransferFlags.post_pending_transfer) !== 0 ? "captured" : "released";
    const last = page[page.length - 1];
    if (page.length < LEDGER_EVENTS_MAX || last === undefined) return null;
    min = last.timestamp + 1n;
  }
}

export const holdQuery: Handler = async (deps, body) => {
  const q = parse(z.strictObject({ holdId: uuidSchema }), body);
  const id = parseOperationId(q.holdId) as bigint;
  const holdId = formatOperationId(id);
  const markerId = deps.chart.space.expiryMarkerId(id);
  const found = await deps.ledger.lookupTransfers([id, markerId]);
  const hold = found.find((t) => t.id === id);
  if (!hold || !isHold(deps.chart, hold)) return { holdId, status: "unknown" };
  const currency = currencyByLedger(deps.chart, hold.ledger);
  const owners = await deps.names.resolve(deps.ledger, [hold.debit_account_id]);
  const resolved = await resolutionOf(deps.ledger, hold);
  // Read-only: expired when the sweeper recorded it, or when the ledger has issued a timestamp at
  // or past the deadline (a capture now would meet pending_transfer_expired). A deadline passed by
  // the wall clock only is still `held`, as the balance's `held` amount says, until the ledger's
  // next timestamp confirms it (docs/contract.md, queries).
  const marked = found.some(
    (t) => t.id === markerId && t.code === EXPIRY_MARKER_CODE && t.user_data_128 === id,
  );
  const status =
    resolved ?? (marked || isDue(hold, await ledgerIssued(deps.ledger)) ? "expired" : "held");
  return {
    holdId,
    status,
    amount: hold.amount.toString(),
    userId: owners.get(hold.debit_account_id),
    currency: currency?.code,
  };
};

export const QUERY_HANDLERS: Record<string, Handler> = {
  "billing.query.balance": balanceQuery,
  "billing.query.operation": operationQuery,
  "billing.query.hold": holdQuery,
};

const encoder = new TextEncoder();

async function answer(deps: QueryDeps, handler: Handler, m: Msg): Promise<void> {
  let reply: Record<string, unknown>;
  try {
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(m.data));
    } catch {
      throw new QueryError("invalid_request", "request is not UTF-8 JSON");
    }
    reply = await handler(deps, body);
  } catch (error) {
    if (error instanceof AssertionError) throw error;
    if (error instanceof QueryError)
      reply = { error: { code: error.code, message: error.message } };
    else if (isTransient(error)) {
      deps.log.warn({ err: error, subject: m.subject }, "query failed");
      reply = {
        error: { code: "unavailable", message: `could not answer: ${(error as Error).message}` },
      };
    } else {
      // A bug in a read path: answered and logged, not fatal. A query writes nothing, so it cannot
      // have left anything half done, and one bad read must not stop the worker beside it.
      deps.log.error({ err: error, subject: m.subject }, "query failed with an unexpected error");
      reply = { error: { code: "internal", message: "the service failed to answer this query" } };
    }
  }
  m.respond(encoder.encode(JSON.stringify(reply)));
}

/** Subscribes every query subject in one queue group, so any number of processes share them. */
export function serveQueries(
  deps: QueryDeps,
  handlers: Record<string, Handler> = QUERY_HANDLERS,
): Subscription[] {
  return Object.entries(handlers).map(([subject, handler]) =>
    deps.nc.subscribe(subject, {
      queue: deps.queue,
      callback: (err, m) => {
        if (err) {
          deps.log.warn({ err, subject }, "query subscription error");
          return;
        }
        if (!m.reply) return; // a publish without a reply subject cannot be answered
        if (m.reply.startsWith("billing.") || m.reply.startsWith("$")) {
          // A reply subject inside our own namespace would let a caller make us write there.
          deps.log.warn(
            { subject, reply: m.reply },
            "query refused: reply subject inside billing.* or $*",
          );
          return;
        }
        void answer(deps, handler, m).catch((error: unknown) =>
          exitOnBug(deps.log, error, "the query server"),
        );
      },
    }),
  );
}
