// Generates the configuration reference (docs/config-reference.md) from the zod schema and the
// defaults, so the page cannot drift from the code. `npm run docs:config` rewrites it; a test
// checks it is current.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ENV_OF as ENV } from "./load.ts";
import { configSchema } from "./schema.ts";

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  pattern?: string;
  anyOf?: JsonSchema[];
  description?: string;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
};

function constraint(s: JsonSchema): string {
  const parts: string[] = [];
  if (s.enum) parts.push(s.enum.map((v) => `\`${String(v)}\``).join(" \\| "));
  if (s.pattern) parts.push(`pattern \`${s.pattern.replaceAll("|", "\\|")}\``);
  if (s.minimum !== undefined || s.maximum !== undefined)
    parts.push(`${s.minimum ?? "…"} – ${s.maximum ?? "…"}`);
  if (s.minItems !== undefined || s.maxItems !== undefined)
    parts.push(`${s.minItems ?? 0}–${s.maxItems ?? "…"} items`);
  if (s.minLength !== undefined || s.maxLength !== undefined)
    parts.push(`length ${s.minLength ?? 0}–${s.maxLength ?? "…"}`);
  return parts.join(", ");
}

function rows(schema: JsonSchema, defaults: unknown, path: string[], out: string[]): void {
  if (schema.properties) {
    for (const [key, child] of Object.entries(schema.properties)) {
      const value =
        defaults !== null && typeof defaults === "object"
          ? (defaults as Record<string, unknown>)[key]
          : undefined;
      rows(child, value, [...path, key], out);
    }
    return;
  }
  const name = path.join(".");
  const type = schema.type
    ? Array.isArray(schema.type)
      ? schema.type.join(" or ")
      : schema.type
    : schema.anyOf
      ? "see schema"
      : "";
  const itemType = schema.items?.type ? ` of ${String(schema.items.type)}` : "";
  const shown = defaults === undefined ? "(unset)" : `\`${JSON.stringify(defaults)}\``;
  const env = ENV[name] ? `\`${ENV[name]}\`` : "";
  out.push(`| \`${name}\` | ${type}${itemType} | ${constraint(schema)} | ${shown} | ${env} |`);
}

export function configReference(): string {
  const defaults: unknown = JSON.parse(
    readFileSync(fileURLToPath(new URL("../../config/default.json", import.meta.url)), "utf8"),
  );
  const schema = z.toJSONSchema(configSchema, {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  const out = [
    "# Configuration reference",
    "",
    "Generated from `src/config/schema.ts` and `config/default.json` by `npm run docs:config`; do not edit by hand.",
    "Order of precedence: `config/default.json`, then the JSON file named by `BILLING_CONFIG` (merged key by key;",
    "arrays replace), then the environment variables below. Unknown keys, wrong types and values out of range end",
    "the process with exit code 2 and one line naming the key. Limits are also cross-checked (see `crossCheck`).",
    "",
    "| key | type | allowed | default | environment |",
    "|---|---|---|---|---|",
  ];
  rows(schema, defaults, [], out);
  return `${out.join("\n")}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  process.stdout.write(configReference());
