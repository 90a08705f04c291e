// What a caller may send, checked before anything reaches the broker. The service checks again
// (it trusts no publisher); these schemas only make a bad call fail at the caller, clearly.
import { z } from "zod";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MONEY_MAX = (1n << 63n) - 1n;

export const operationId = z.string().regex(UUID, "must be a UUID");
export const userId = z.union([
  z.string().regex(/^[A-Za-z0-9_\-.:]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 _ - . :"),
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
]);

function money(allowZero: boolean) {
  return z.union([z.bigint(), z.string().regex(/^[0-9]{1,19}$/, "must be a string of digits"), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)])
    .transform((v) => BigInt(v))
    .refine((v) => (allowZero ? v >= 0n : v > 0n) && v <= MONEY_MAX, allowZero ? "must be between 0 and 2^63 - 1" : "must be between 1 and 2^63 - 1")
    .transform((v) => v.toString());
}

const currency = z.string().min(1).max(16).optional();
const id = { operationId: operationId.optional() };

export const commandSchemas = {
  credit: z.strictObject({ ...id, userId, amount: money(false), currency }),
  debit: z.strictObject({ ...id, userId, amount: money(false), currency }),
  hold: z.strictObject({ ...id, userId, amount: money(false), currency, timeoutSeconds: z.number().int().positive().max(0xffff_ffff).optional() }),
  capture: z.strictObject({ ...id, holdId: operationId }),
  release: z.strictObject({ ...id, holdId: operationId }),
  transfer: z.strictObject({ ...id, fromUserId: userId, toUserId: userId, amount: money(false), fee: money(true).optional(), currency }),
} as const;

export type CommandName = keyof typeof commandSchemas;
export type CommandInput<C extends CommandName> = z.input<(typeof commandSchemas)[C]>;

export class InvalidCallError extends Error {
  override name = "InvalidCallError";
}

export function validate<C extends CommandName>(command: C, input: unknown): Record<string, unknown> {
  const r = commandSchemas[command].safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join(".") : command;
    const text = issue?.code === "unrecognized_keys" ? `unknown field ${issue.keys.join(", ")}` : `${where}: ${issue?.message ?? "invalid"}`;
    throw new InvalidCallError(`${command}: ${text}`);
  }
  return r.data as Record<string, unknown>;
}
