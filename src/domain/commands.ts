// Commands: the six payloads of the contract, parsed strictly. Decoding never throws: a message is
// malformed (no operation at all), rejected before the ledger (an operation with a reason), or a
// command ready to plan.
import { commandFieldRules } from "@billing-ledger/client/schemas";
import { z } from "zod";
import { currencyByCode, type Chart, type Currency } from "./accounts.ts";
import { formatOperationId, hashId, parseOperationId } from "./ids.ts";
import { MONEY_MAX } from "./money.ts";
import type { Reason } from "./reasons.ts";

export const COMMAND_TYPES = ["credit", "debit", "hold", "capture", "release", "transfer"] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

/** Stored in user_data_32 of every transfer an operation writes, so the ledger names the command. */
export const COMMAND_CODES: Record<CommandType, number> = {
  credit: 1,
  debit: 2,
  hold: 3,
  capture: 4,
  release: 5,
  transfer: 6,
};

/** The command type a transfer's user_data_32 names, or none. */
export const COMMAND_TYPE_OF_CODE: ReadonlyMap<number, CommandType> = new Map(
  Object.entries(COMMAND_CODES).map(([t, c]) => [c, t as CommandType]),
);

export type Command =
  | {
      type: "credit" | "debit";
      operationId: bigint;
      userId: string;
      amount: bigint;
      currency: Currency;
    }
  | {
      type: "hold";
      operationId: bigint;
      userId: string;
      amount: bigint;
      currency: Currency;
      timeoutSeconds: number;
    }
  | { type: "capture" | "release"; operationId: bigint; holdId: bigint }
  | {
      type: "transfer";
      operationId: bigint;
      fromUserId: string;
      toUserId: string;
      amount: bigint;
      fee: bigint;
      currency: Currency;
    };

/** Fields of a command as text, in contract order: what a rejected event may carry. */
export type CommandFields = Partial<
  Record<"userId" | "fromUserId" | "toUserId" | "holdId" | "amount" | "fee" | "currency", string>
>;

export type Decoded =
  | { kind: "malformed"; error: string }
  /**
   * `command`: when a configured limit alone rejects a valid command (payloadBytesMax,
   * holdTimeoutSecondsMax). The limit may have been higher when the operation was decided; a replay
   * of an applied operation rebuilds its event from the command.
   */
  | {
      kind: "rejected";
      operationId: bigint;
      type: CommandType;
      reason: Reason;
      detail: string;
      fields: CommandFields;
      fingerprint: bigint;
      command?: Command;
    }
  | {
      kind: "command";
      operationId: bigint;
      type: CommandType;
      command: Command;
      fields: CommandFields;
      fingerprint: bigint;
    };

/**
 * Limits the configuration sets. They decide only whether a command is rejected as
 * `invalid_command`, never its operationId or its fingerprint: a message redelivered after a limit
 * changed must still find the decision recorded for it (a replay), not become a conflict or a
 * malformed letter.
 */
export type DecodeLimits = { holdTimeoutSecondsMax: number; payloadBytesMax: number };

/**
 * The largest payload ever parsed, whatever payloadBytesMax says: NATS's default max_payload
 * (1 MiB), the most the broker delivers and the config's upper bound of payloadBytesMax.
 */
export const PAYLOAD_BYTES_CEILING = 1_048_576;
/** TigerBeetle's transfer timeout is a u32 of seconds: the largest timeoutSeconds a hold can carry. */
const TIMEOUT_SECONDS_CEILING = commandFieldRules.timeoutSecondsMax;

/** A userId: 1-64 allowed characters, or a non-negative safe integer (normalised to its digits). */
export const userIdSchema = z.unknown().transform((v, ctx): string => {
  if (typeof v === "string" && commandFieldRules.userIdPattern.test(v)) return v;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return String(v);
  ctx.addIssue({ code: "custom", message: commandFieldRules.userIdText });
  return z.NEVER;
});

/** Money: a string of digits or a safe integer, positive (or zero for a fee), at most 2^63 − 1. */
function moneySchema(allowZero: boolean) {
  return z.unknown().transform((v, ctx): bigint => {
    const fail = (message: string) => {
      ctx.addIssue({ code: "custom", message });
      return z.NEVER;
    };
    let value: bigint;
    if (typeof v === "string") {
      // A sign is read only to name the range in the detail ("-5" is out of it, not "not digits").
      if (!commandFieldRules.moneyDigitsPattern.test(v))
        return fail("must be a string of digits or a safe integer");
      value = BigInt(v);
    } else if (typeof v === "number") {
      if (!Number.isInteger(v)) return fail("must be an integer number of minor units");
      if (!Number.isSafeInteger(v)) return fail("must be a safe integer, or a string of digits");
      value = BigInt(v);
    } else {
      return fail("must be a string of digits or a safe integer");
    }
    // One message for every value out of range, naming the range (0 is out of it for an amount).
    if (value < (allowZero ? 0n : 1n) || value > MONEY_MAX)
      return fail(
        allowZero
          ? "must be an integer from 0 to 2^63 - 1"
          : "must be a positive integer (1 to 2^63 - 1)",
      );
    return value;
  });
}

export const uuidSchema = z.string().refine((s) => parseOperationId(s) !== null, "must be a UUID");
const currencySchema = z
  .string()
  .min(commandFieldRules.currencyCharsMin)
  .max(commandFieldRules.currencyCharsMax)
  .optional();

/**
 * Built once (zod schemas are costly to build) and independent of the configuration: the
 * configured hold timeout limit is checked after parsing, so it cannot change the fingerprint.
 */
const schemas = buildSchemas();

function buildSchemas() {
  const base = { operationId: uuidSchema };
  const timeout = z
    .number()
    .int()
    .positive()
    .max(TIMEOUT_SECONDS_CEILING, `must be at most ${TIMEOUT_SECONDS_CEILING}`);
  const account = {
    ...base,
    userId: userIdSchema,
    amount: moneySchema(false),
    currency: currencySchema,
  };
  return {
    credit: z.strictObject(account),
    debit: z.strictObject(account),
    hold: z.strictObject({ ...account, timeoutSeconds: timeout.optional() }),
    capture: z.strictObject({ ...base, holdId: uuidSchema }),
    release: z.strictObject({ ...base, holdId: uuidSchema }),
    transfer: z.strictObject({
      ...base,
      fromUserId: userIdSchema,
      toUserId: userIdSchema,
      amount: moneySchema(false),
      fee: moneySchema(true).optional(),
      currency: currencySchema,
    }),
  };
}

/**
 * The fields each command type accepts (its strict schema's keys), for the fast path below, and
 * which of them it requires.
 */
const FAST_FIELDS: Record<
  CommandType,
  { allowed: ReadonlySet<string>; required: ReadonlyArray<string> }
> = {
  credit: {
    allowed: new Set(["operationId", "userId", "amount", "currency"]),
    required: ["userId", "amount"],
  },
  debit: {
    allowed: new Set(["operationId", "userId", "amount", "currency"]),
    required: ["userId", "amount"],
  },
  hold: {
    allowed: new Set(["operationId", "userId", "amount", "currency", "timeoutSeconds"]),
    required: ["userId", "amount"],
  },
  capture: { allowed: new Set(["operationId", "holdId"]), required: ["holdId"] },
  release: { allowed: new Set(["operationId", "holdId"]), required: ["holdId"] },
  transfer: {
    allowed: new Set(["operationId", "fromUserId", "toUserId", "amount", "fee", "currency"]),
    required: ["fromUserId", "toUserId", "amount"],
  },
};

const USER_ID_PATTERN = /^[A-Za-z0-9_\-.:]{1,64}$/;
const MONEY_TEXT_PATTERN = /^-?[0-9]{1,40}$/;

function fastUserId(v: unknown): string | undefined {
  if (typeof v === "string") return USER_ID_PATTERN.test(v) ? v : undefined;
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined;
}

function fastMoney(v: unknown, allowZero: boolean): bigint | undefined {
  let value: bigint;
  if (typeof v === "string" && MONEY_TEXT_PATTERN.test(v)) value = BigInt(v);
  else if (typeof v === "number" && Number.isSafeInteger(v)) value = BigInt(v);
  else return undefined;
  return value < (allowZero ? 0n : 1n) || value > MONEY_MAX ? undefined : value;
}

/**
 * What the command's schema gives for a payload it accepts, computed directly; null for anything
 * the fast path does not vouch for (then the schema decides, and names what is wrong). It accepts
 * only what the schema accepts, with the same values (test/domain/decode.test.ts checks both
 * against each other on seeded random payloads): zod's generic object walk was ~4 % of a busy
 * worker's main thread (issue 13), and nearly every payload is valid.
 */
function fastParse(type: CommandType, raw: Record<string, unknown>): Parsed | null {
  const { allowed, required } = FAST_FIELDS[type];
  for (const key in raw) if (!Object.hasOwn(raw, key) || !allowed.has(key)) return null;
  for (const key of required) if (raw[key] === undefined) return null;
  if (typeof raw["operationId"] !== "string" || parseOperationId(raw["operationId"]) === null)
    return null;
  const out: Parsed = {};
  if (type === "capture" || type === "release") {
    const holdId = raw["holdId"];
    if (typeof holdId !== "string" || parseOperationId(holdId) === null) return null;
    out.holdId = holdId;
    return out;
  }
  if (type === "transfer") {
    const from = fastUserId(raw["fromUserId"]);
    const to = fastUserId(raw["toUserId"]);
    if (from === undefined || to === undefined) return null;
    out.fromUserId = from;
    out.toUserId = to;
  } else {
    const userId = fastUserId(raw["userId"]);
    if (userId === undefined) return null;
    out.userId = userId;
  }
  const amount = fastMoney(raw["amount"], false);
  if (amount === undefined) return null;
  out.amount = amount;
  if (raw["fee"] !== undefined) {
    const fee = fastMoney(raw["fee"], true);
    if (fee === undefined) return null;
    out.fee = fee;
  }
  const currency = raw["currency"];
  if (currency !== undefined) {
    if (typeof currency !== "string" || currency.length < 1 || currency.length > 16) return null;
    out.currency = currency;
  }
  const timeout = raw["timeoutSeconds"];
  if (timeout !== undefined) {
    if (
      typeof timeout !== "number" ||
      !Number.isInteger(timeout) ||
      timeout <= 0 ||
      timeout > TIMEOUT_SECONDS_CEILING
    )
      return null;
    out.timeoutSeconds = timeout;
  }
  return out;
}

/** The schema's answer for a payload: the fast path's when it vouches for it, else zod's. */
function parseFields(
  type: CommandType,
  raw: Record<string, unknown>,
): { success: true; data: Parsed } | { success: false; error: z.ZodError } {
  const fast = fastParse(type, raw);
  if (fast !== null) return { success: true, data: fast };
  const parsed = schemas[type].safeParse(raw);
  return parsed.success
    ? { success: true, data: parsed.data }
    : { success: false, error: parsed.error };
}

/** For tests: zod's answer alone, to hold the fast path to it. */
export function schemaParse(
  type: CommandType,
  raw: Record<string, unknown>,
): { success: boolean; data?: unknown } {
  return schemas[type].safeParse(raw);
}

/** For tests: the fast path alone (null: not vouched for). */
export const fastParseForTest = fastParse;

type Parsed = {
  userId?: string;
  fromUserId?: string;
  toUserId?: string;
  holdId?: string;
  amount?: bigint;
  fee?: bigint | undefined;
  currency?: string | undefined;
  timeoutSeconds?: number | undefined;
};

type CanonicalFrame = {
  items: ReadonlyArray<readonly [string | null, unknown]>;
  next: number;
  close: string;
};

/**
 * A canonical JSON text: object keys sorted at every depth, so equal content hashes equally.
 * Iterative, with its own stack: it runs on publisher input (an invalid command's content), and a
 * recursive walk let a payload nested 10,000 levels deep end the process with a stack overflow.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const stack: CanonicalFrame[] = [];
  const open = (v: unknown): void => {
    if (Array.isArray(v)) {
      out.push("[");
      stack.push({ items: v.map((x: unknown) => [null, x] as const), next: 0, close: "]" });
    } else if (v !== null && typeof v === "object") {
      out.push("{");
      const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      stack.push({ items: entries, next: 0, close: "}" });
    } else {
      out.push(JSON.stringify(v));
    }
  };
  open(value);
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    if (top.next === top.items.length) {
      out.push(top.close);
      stack.pop();
      continue;
    }
    const [key, v] = top.items[top.next] as readonly [string | null, unknown];
    if (top.next > 0) out.push(",");
    top.next += 1;
    if (key !== null) out.push(`${JSON.stringify(key)}:`);
    open(v);
  }
  return out.join("");
}

/**
 * canonicalJson({ ...fields, timeoutSeconds }), written out: the same text (keys in sorted order,
 * values as JSON.stringify writes them) without the generic walk's entries, sort and frames, which
 * were a visible share of decoding a batch (issue 13). The audit recomputes fingerprints with
 * canonicalJson; test/domain/fingerprint.test.ts holds the two equal.
 */
export function fingerprintJson(fields: CommandFields, timeoutSeconds: number): string {
  // Sorted: amount < currency < fee < fromUserId < holdId < timeoutSeconds < toUserId < userId.
  let out = "";
  if (fields.amount !== undefined) out += `,"amount":${JSON.stringify(fields.amount)}`;
  if (fields.currency !== undefined) out += `,"currency":${JSON.stringify(fields.currency)}`;
  if (fields.fee !== undefined) out += `,"fee":${JSON.stringify(fields.fee)}`;
  if (fields.fromUserId !== undefined) out += `,"fromUserId":${JSON.stringify(fields.fromUserId)}`;
  if (fields.holdId !== undefined) out += `,"holdId":${JSON.stringify(fields.holdId)}`;
  out += `,"timeoutSeconds":${JSON.stringify(timeoutSeconds)}`;
  if (fields.toUserId !== undefined) out += `,"toUserId":${JSON.stringify(fields.toUserId)}`;
  if (fields.userId !== undefined) out += `,"userId":${JSON.stringify(fields.userId)}`;
  return `{${out.slice(1)}}`;
}

function fieldsOf(p: Parsed, currencyCode: string | undefined): CommandFields {
  const f: CommandFields = {};
  if (p.userId !== undefined) f.userId = p.userId;
  if (p.fromUserId !== undefined) f.fromUserId = p.fromUserId;
  if (p.toUserId !== undefined) f.toUserId = p.toUserId;
  if (p.holdId !== undefined) f.holdId = formatOperationId(parseOperationId(p.holdId) ?? 0n);
  if (p.amount !== undefined) f.amount = p.amount.toString();
  if (p.fee !== undefined && p.fee > 0n) f.fee = p.fee.toString();
  if (currencyCode !== undefined) f.currency = currencyCode;
  return f;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function parseJsonObject(data: Uint8Array): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch (error) {
    return `payload is not UTF-8 JSON: ${(error as Error).message}`;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return "payload is not a JSON object";
  return value as Record<string, unknown>;
}

function issueText(error: z.ZodError, raw: Record<string, unknown>): string {
  const issue = error.issues[0];
  if (!issue) return "invalid command";
  if (issue.code === "unrecognized_keys")
    return `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
  const field = issue.path[0];
  // A field left out reads as "is required", whatever its schema would say of `undefined`.
  if (typeof field === "string" && issue.path.length === 1 && raw[field] === undefined)
    return `${field} is required`;
  const path = issue.path.length > 0 ? issue.path.join(".") : "command";
  return `${path}: ${issue.message}`;
}

/**
 * decodeCommand for a message off the wire: whatever the decoder throws on a publisher's bytes
 * (a shape nobody foresaw) is a malformed message, dead-lettered with the error named, never the
 * end of the process that read it.
 */
export function decodeMessage(
  subject: string,
  data: Uint8Array,
  chart: Chart,
  limits: DecodeLimits,
): Decoded {
  try {
    return decodeCommand(subject, data, chart, limits);
  } catch (error) {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { kind: "malformed", error: `payload could not be decoded (${text.slice(0, 200)})` };
  }
}

export function decodeCommand(
  subject: string,
  data: Uint8Array,
  chart: Chart,
  limits: DecodeLimits,
): Decoded {
  const type = subject.startsWith("billing.cmd.") ? subject.slice("billing.cmd.".length) : "";
  if (!(COMMAND_TYPES as readonly string[]).includes(type))
    return { kind: "malformed", error: `unknown command subject ${subject}` };
  const commandType = type as CommandType;
  const oversize =
    data.byteLength > limits.payloadBytesMax
      ? `payload of ${data.byteLength} bytes exceeds ${limits.payloadBytesMax}`
      : null;
  // Past the ceiling nothing is parsed (never unbounded input); below it an oversized payload is
  // still read for its operationId, so an operation decided under a larger limit is replayed.
  if (data.byteLength > PAYLOAD_BYTES_CEILING)
    return {
      kind: "malformed",
      error: oversize ?? `payload of ${data.byteLength} bytes exceeds ${PAYLOAD_BYTES_CEILING}`,
    };
  const raw = parseJsonObject(data);
  if (typeof raw === "string") return { kind: "malformed", error: oversize ?? raw };
  const operationId = parseOperationId(raw["operationId"]);
  if (operationId === null)
    return { kind: "malformed", error: oversize ?? "operationId is missing or not a UUID" };

  const parsed = parseFields(commandType, raw);
  let decoded: Extract<Decoded, { kind: "rejected" | "command" }>;
  if (!parsed.success) {
    // The operation id is the key, not content: its spelling (letter case) must not matter.
    const { operationId: _key, ...content } = raw;
    const fingerprint = hashId("raw", commandType, canonicalJson(content));
    decoded = {
      kind: "rejected",
      operationId,
      type: commandType,
      reason: "invalid_command",
      detail: issueText(parsed.error, raw),
      fields: {},
      fingerprint,
    };
  } else {
    decoded = interpret(commandType, operationId, parsed.data, chart, limits);
  }
  if (oversize === null) return decoded;
  // Same fingerprint as the content decoded under a larger limit: a replay if it was decided then.
  const rejected: Decoded = {
    kind: "rejected",
    operationId,
    type: commandType,
    reason: "invalid_command",
    detail: oversize,
    fields: decoded.fields,
    fingerprint: decoded.fingerprint,
  };
  const command = commandOf(decoded);
  if (command !== null) rejected.command = command;
  return rejected;
}

/** The command a message holds, when its content is a valid command (even one a limit rejects). */
export function commandOf(d: Decoded): Command | null {
  if (d.kind === "command") return d.command;
  return d.kind === "rejected" ? (d.command ?? null) : null;
}

function interpret(
  type: CommandType,
  operationId: bigint,
  p: Parsed,
  chart: Chart,
  limits: DecodeLimits,
): Extract<Decoded, { kind: "rejected" | "command" }> {
  // The fingerprint covers what the message says, never the configuration: an absent currency is
  // absent in it (not today's default), so a change of the default cannot turn a redelivery into
  // a conflict. A command that names its currency hashes exactly as it always did.
  const named = fieldsOf(p, p.currency);
  const fingerprint = hashId("command", type, fingerprintJson(named, p.timeoutSeconds ?? 0));
  const code =
    type === "capture" || type === "release" ? undefined : (p.currency ?? chart.defaultCurrency);
  const fields: CommandFields =
    code === undefined || code === p.currency ? named : { ...named, currency: code };
  const reject = (reason: Reason, detail: string): Extract<Decoded, { kind: "rejected" }> => ({
    kind: "rejected",
    operationId,
    type,
    reason,
    detail,
    fields,
    fingerprint,
  });
  const currency = code === undefined ? undefined : currencyByCode(chart, code);
  const known = code === undefined || currency !== undefined;
  if (p.timeoutSeconds !== undefined && p.timeoutSeconds > limits.holdTimeoutSecondsMax) {
    const rejected = reject(
      "invalid_command",
      `timeoutSeconds: must be at most ${limits.holdTimeoutSecondsMax}`,
    );
    if (known) rejected.command = build(type, operationId, p, currency);
    return rejected;
  }
  if (!known) return reject("unknown_currency", `currency ${code} is not configured`);
  const command = build(type, operationId, p, currency);
  if (command.type === "transfer" && command.fromUserId === command.toUserId)
    return reject("same_user", "fromUserId and toUserId are the same user");
  return { kind: "command", operationId, type, command, fields, fingerprint };
}

function build(
  type: CommandType,
  operationId: bigint,
  p: Parsed,
  currency: Currency | undefined,
): Command {
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("schema and command builder disagree");
    return v;
  };
  switch (type) {
    case "credit":
    case "debit":
      return {
        type,
        operationId,
        userId: need(p.userId),
        amount: need(p.amount),
        currency: need(currency),
      };
    case "hold":
      return {
        type,
        operationId,
        userId: need(p.userId),
        amount: need(p.amount),
        currency: need(currency),
        timeoutSeconds: p.timeoutSeconds ?? 0,
      };
    case "capture":
    case "release":
      return { type, operationId, holdId: need(parseOperationId(p.holdId) ?? undefined) };
    case "transfer":
      return {
        type,
        operationId,
        fromUserId: need(p.fromUserId),
        toUserId: need(p.toUserId),
        amount: need(p.amount),
        fee: p.fee ?? 0n,
        currency: need(currency),
      };
  }
}
