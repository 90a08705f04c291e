// The events stream, indexed for the audit: one record per operation (and per expired hold), with a
// hash of the stored bytes, since an event is fully determined by the ledger and can be rebuilt and
// compared byte for byte. Memory is about a hundred bytes per event. Pure: the audit feeds it the
// stored messages page by page.
import { createHash } from "node:crypto";
import { COMMAND_TYPES, type CommandFields, type CommandType } from "../domain/commands.ts";
import { EVENT_OF } from "../domain/events.ts";
import { parseOperationId, type IdSpace } from "../domain/ids.ts";
import { rejectedFingerprints } from "./operations.ts";

export type RejectedFacts = { command: CommandType; reason: string; fingerprints: bigint[] | null };

export type EventRecord = {
  seq: number;
  event: string;
  hash: string;
  matched: boolean;
  rejected: RejectedFacts | null;
};

export type EventProblem =
  | { kind: "malformed_event"; seq: number; subject: string; detail: string }
  | { kind: "duplicate_event"; id: bigint; seq: number; firstSeq: number; subject: string };

export type StoredEvent = { seq: number; subject: string; data: Uint8Array };

const APPLIED_EVENTS: ReadonlySet<string> = new Set(Object.values(EVENT_OF));
const FIELD_KEYS = [
  "userId",
  "fromUserId",
  "toUserId",
  "holdId",
  "amount",
  "fee",
  "currency",
] as const;
const decoder = new TextDecoder("utf-8", { fatal: true });

export function hashOf(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex").slice(0, 32);
}

function parse(data: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(data));
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function rejectedFacts(payload: Record<string, unknown>): RejectedFacts | string {
  const command = payload["command"];
  const reason = payload["reason"];
  if (typeof command !== "string" || !(COMMAND_TYPES as readonly string[]).includes(command))
    return "a rejected event without a known command";
  if (typeof reason !== "string") return "a rejected event without a reason";
  const fields: CommandFields = {};
  for (const key of FIELD_KEYS) {
    const value = payload[key];
    if (typeof value === "string") fields[key] = value;
  }
  return {
    command: command as CommandType,
    reason,
    fingerprints: rejectedFingerprints(command as CommandType, reason, fields),
  };
}

export class EventIndex {
  /** By operation id. */
  readonly operations = new Map<bigint, EventRecord>();
  /** By hold id: the `expired` events. */
  readonly expired = new Map<bigint, EventRecord>();
  /** burned-marker id → operation id, for every rejected event. */
  readonly burned = new Map<bigint, bigint>();
  count = 0;

  constructor(private readonly space: IdSpace) {}

  /** Indexes one stored event; a problem when it is malformed or a second event of its id. */
  add(m: StoredEvent): EventProblem | null {
    this.count += 1;
    const bad = (detail: string): EventProblem => ({
      kind: "malformed_event",
      seq: m.seq,
      subject: m.subject,
      detail,
    });
    const parts = m.subject.split(".");
    const [, , event, idText] = parts;
    const id = parseOperationId(idText);
    if (parts.length !== 4 || event === undefined || id === null)
      return bad("the subject is not billing.evt.<event>.<id>");
    const payload = parse(m.data);
    if (payload === null) return bad("the payload is not a JSON object");
    if (payload["event"] !== event)
      return bad(`the payload says event ${String(payload["event"])}`);
    const idField = event === "expired" ? "holdId" : "operationId";
    if (typeof payload[idField] !== "string" || parseOperationId(payload[idField]) !== id)
      return bad(`the payload's ${idField} is not the subject's`);
    let rejected: RejectedFacts | null = null;
    if (event === "rejected") {
      const facts = rejectedFacts(payload);
      if (typeof facts === "string") return bad(facts);
      rejected = facts;
    } else if (event !== "expired" && !APPLIED_EVENTS.has(event)) {
      return bad(`unknown event ${event}`);
    }
    const map = event === "expired" ? this.expired : this.operations;
    const first = map.get(id);
    if (first)
      return { kind: "duplicate_event", id, seq: m.seq, firstSeq: first.seq, subject: m.subject };
    map.set(id, { seq: m.seq, event, hash: hashOf(m.data), matched: false, rejected });
    if (rejected) this.burned.set(this.space.burnedMarkerId(id), id);
    return null;
  }

  /** The rejected event a marker records: under the operation id, or under its burned-marker id. */
  rejectionOf(markerId: bigint): {
    operationId: bigint;
    record: EventRecord | undefined;
    burned: boolean;
  } {
    const own = this.operations.get(markerId);
    if (own) return { operationId: markerId, record: own, burned: false };
    const operationId = this.burned.get(markerId);
    if (operationId !== undefined)
      return { operationId, record: this.operations.get(operationId), burned: true };
    return { operationId: markerId, record: undefined, burned: false };
  }
}
