// What a caller may send, checked before anything reaches the broker. The service checks again
// (it trusts no publisher); these schemas only make a bad call fail at the caller, clearly: one
// message per field, naming what is accepted.
import { z } from "zod";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MONEY_MAX = (1n << 63n) - 1n;
/** TigerBeetle's transfer timeout is a u32 of seconds. */
const TIMEOUT_SECONDS_MAX = 0xffff_ffff;

export const operationId = z.string().regex(UUID, "must be a UUID");

const USER_ID_TEXT = "must be 1-64 characters of A-Z a-z 0-9 _ - . : or a non-negative safe integer";
export const userId = z.custom<string | number>(() => true).transform((v, ctx): string | number => {
  if (typeof v === "string" && /^[A-Za-z0-9_\-.:]{1,64}$/.test(v)) return v;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  ctx.addIssue({ code: "custom", message: USER_ID_TEXT });
  return z.NEVER;
});

/** Money in minor units: a bigint, a string of digits or a safe integer; sent as a string of digits. */
function money(allowZero: boolean) {
  const range = allowZero ? "an integer from 0 to 2^63 - 1" : "a positive integer (1 to 2^63 - 1)";
  return z.custom<bigint | string | number>(() => true).transform((v, ctx): string => {
    let value: bigint | null = null;
    if (typeof v === "bigint") value = v;
    else if (typeof v === "string" && /^-?[0-9]{1,40}$/.test(v)) value = BigInt(v);
    else if (typeof v === "number" && Number.isSafeInteger(v)) value = BigInt(v);
    if (value === null || value < (allowZero ? 0n : 1n) || value > MONEY_MAX) {
      ctx.addIssue({ code: "custom", message: `must be ${range}, as a string of digits, a bigint or a safe integer` });
      return z.NEVER;
    }
    return value.toString();
  });
}

const TIMEOUT_TEXT = `must be a whole number of seconds from 1 to ${TIMEOUT_SECONDS_MAX}`;
const timeoutSeconds = z.number(TIMEOUT_TEXT).int(TIMEOUT_TEXT).min(1, TIMEOUT_TEXT).max(TIMEOUT_SECONDS_MAX, TIMEOUT_TEXT);
const currency = z.string("must be a currency code").min(1, "must be a currency code of 1-16 characters").max(16, "must be a currency code of 1-16 characters").optional();
const id = { operationId: operationId.optional() };

export const commandSchemas = {
  credit: z.strictObject({ ...id, userId, amount: money(false), currency }),
  debit: z.strictObject({ ...id, userId, amount: money(false), currency }),
  hold: z.strictObject({ ...id, userId, amount: money(false), currency, timeoutSeconds: timeoutSeconds.optional() }),
  capture: z.strictObject({ ...id, holdId: operationId }),
  release: z.strictObject({ ...id, holdId: operationId }),
  transfer: z.strictObject({ ...id, fromUserId: userId, toUserId: userId, amount: money(false), fee: money(true).optional(), currency }),
} as const;

export type CommandName = keyof typeof commandSchemas;
export type CommandInput<C extends CommandName> = z.input<(typeof commandSchemas)[C]>;

export class InvalidCallError extends Error {
  override name = "InvalidCallError";
}

/** The call's payload, normalised; or InvalidCallError with one line: `<command>: <field> …`. */
export function validate<C extends CommandName>(command: C, input: unknown): Record<string, unknown> {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new InvalidCallError(`${command}: the command must be a JSON object`);
  const r = commandSchemas[command].safeParse(input);
  if (!r.success) throw new InvalidCallError(`${command}: ${issueText(r.error, input as Record<string, unknown>)}`);
  return r.data;
}

function issueText(error: z.ZodError, input: Record<string, unknown>): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  if (issue.code === "unrecognized_keys") return `unknown field ${issue.keys.join(", ")}`;
  const field = issue.path[0];
  // A field left out reads as "is required", whatever its schema would say of `undefined`.
  if (typeof field === "string" && issue.path.length === 1 && input[field] === undefined) return `${field} is required`;
  return `${issue.path.length > 0 ? issue.path.join(".") : "command"}: ${issue.message}`;
}
