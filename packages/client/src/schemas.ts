// What a caller may send, checked before anything reaches the broker. The service checks again
// (it trusts no publisher); these schemas only make a bad call fail at the caller, clearly: one
// message per field, naming what is accepted. This module imports nothing but zod, so the service
// imports it (`@billing-ledger/client/schemas`) for the contract's field rules: one source of truth.
import { z } from "zod";

/**
 * The contract's rules for command fields (docs/contract.md, "Commands"), shared by this client's
 * schemas and the service's decoder (src/domain/commands.ts).
 */
export const commandFieldRules = {
  /** A UUID, any version, either case. */
  uuidPattern: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  /** A userId as a string: 1–64 of these characters (or, not here, a non-negative safe integer). */
  userIdPattern: /^[A-Za-z0-9_\-.:]{1,64}$/,
  userIdText: "must be 1-64 characters of A-Z a-z 0-9 _ - . : or a non-negative safe integer",
  /**
   * Money as a string: digits, a sign read only to name the range in the message ("-5" is out of
   * range, not "not digits"). 40 digits reach past any u128, so every value longer than
   * MONEY_MAX's 19 digits is still read, and refused by the range check, naming the range.
   */
  moneyDigitsPattern: /^-?[0-9]{1,40}$/,
  /** The largest amount or fee: 2^63 − 1 minor units. */
  moneyMax: (1n << 63n) - 1n,
  /** TigerBeetle's transfer timeout is a u32 of seconds: the largest timeoutSeconds there can be. */
  timeoutSecondsMax: 0xffff_ffff,
  /** A currency code's length. */
  currencyCharsMin: 1,
  currencyCharsMax: 16,
} as const;

const UUID = commandFieldRules.uuidPattern;
const MONEY_MAX = commandFieldRules.moneyMax;
const TIMEOUT_SECONDS_MAX = commandFieldRules.timeoutSecondsMax;

export const operationId = z.string().regex(UUID, "must be a UUID");

const USER_ID_TEXT = commandFieldRules.userIdText;
export const userId = z
  .custom<string | number>(() => true)
  .transform((v, ctx): string | number => {
    if (typeof v === "string" && commandFieldRules.userIdPattern.test(v)) return v;
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
    ctx.addIssue({ code: "custom", message: USER_ID_TEXT });
    return z.NEVER;
  });

/** Money in minor units: a bigint, a string of digits or a safe integer; sent as a string of digits. */
function money(allowZero: boolean) {
  const range = allowZero ? "an integer from 0 to 2^63 - 1" : "a positive integer (1 to 2^63 - 1)";
  return z
    .custom<bigint | string | number>(() => true)
    .transform((v, ctx): string => {
      let value: bigint | null = null;
      if (typeof v === "bigint") value = v;
      else if (typeof v === "string" && commandFieldRules.moneyDigitsPattern.test(v))
        value = BigInt(v);
      else if (typeof v === "number" && Number.isSafeInteger(v)) value = BigInt(v);
      if (value === null || value < (allowZero ? 0n : 1n) || value > MONEY_MAX) {
        ctx.addIssue({
          code: "custom",
          message: `must be ${range}, as a string of digits, a bigint or a safe integer`,
        });
        return z.NEVER;
      }
      return value.toString();
    });
}

const TIMEOUT_TEXT = `must be a whole number of seconds from 1 to ${TIMEOUT_SECONDS_MAX}`;
const timeoutSeconds = z
  .number(TIMEOUT_TEXT)
  .int(TIMEOUT_TEXT)
  .min(1, TIMEOUT_TEXT)
  .max(TIMEOUT_SECONDS_MAX, TIMEOUT_TEXT);
const CURRENCY_TEXT = `must be a currency code of ${commandFieldRules.currencyCharsMin}-${commandFieldRules.currencyCharsMax} characters`;
const currency = z
  .string("must be a currency code")
  .min(commandFieldRules.currencyCharsMin, CURRENCY_TEXT)
  .max(commandFieldRules.currencyCharsMax, CURRENCY_TEXT)
  .optional();
const id = { operationId: operationId.optional() };

export const commandSchemas = {
  credit: z.strictObject({ ...id, userId, amount: money(false), currency }),
  debit: z.strictObject({ ...id, userId, amount: money(false), currency }),
  hold: z.strictObject({
    ...id,
    userId,
    amount: money(false),
    currency,
    timeoutSeconds: timeoutSeconds.optional(),
  }),
  capture: z.strictObject({ ...id, holdId: operationId }),
  release: z.strictObject({ ...id, holdId: operationId }),
  transfer: z.strictObject({
    ...id,
    fromUserId: userId,
    toUserId: userId,
    amount: money(false),
    fee: money(true).optional(),
    currency,
  }),
} as const;

export type CommandName = keyof typeof commandSchemas;
export type CommandInput<C extends CommandName> = z.input<(typeof commandSchemas)[C]>;

export class InvalidCallError extends Error {
  override name = "InvalidCallError";
}

/** The call's payload, normalised; or InvalidCallError with one line: `<command>: <field> …`. */
export function validate<C extends CommandName>(
  command: C,
  input: unknown,
): Record<string, unknown> {
  if (input === null || typeof input !== "object" || Array.isArray(input))
    throw new InvalidCallError(`${command}: the command must be a JSON object`);
  const r = commandSchemas[command].safeParse(input);
  if (!r.success)
    throw new InvalidCallError(
      `${command}: ${issueText(r.error, input as Record<string, unknown>)}`,
    );
  return r.data;
}

function issueText(error: z.ZodError, input: Record<string, unknown>): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  if (issue.code === "unrecognized_keys") return `unknown field ${issue.keys.join(", ")}`;
  const field = issue.path[0];
  // A field left out reads as "is required", whatever its schema would say of `undefined`.
  if (typeof field === "string" && issue.path.length === 1 && input[field] === undefined)
    return `${field} is required`;
  return `${issue.path.length > 0 ? issue.path.join(".") : "command"}: ${issue.message}`;
}
