// Loads config/default.json, then the file named by BILLING_CONFIG (deep-merged over it), then the
// contract's environment variables. Any problem is a ConfigError naming the field.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { configSchema, crossCheck, type Config } from "./schema.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const DEFAULT_FILE = fileURLToPath(new URL("../../config/default.json", import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function readJson(path: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`${what}: cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    throw new ConfigError(`${what}: ${path} is not JSON: ${(error as Error).message}`);
  }
}

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Objects merge key by key; anything else (arrays included) replaces. */
export function merge(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: { [key: string]: Json } = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = merge(base[key] ?? null, value);
  return out;
}

function set(target: Json, path: string[], value: Json): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node)) return;
    node = node[key] ?? (node[key] = {});
  }
  if (isObject(node)) node[path[path.length - 1] as string] = value;
}

const list = (v: string): string[] =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

function applyEnv(raw: Json, env: NodeJS.ProcessEnv): void {
  const e = (name: string): string | undefined =>
    env[name] === undefined || env[name] === "" ? undefined : env[name];
  const natsUrl = e("NATS_URL");
  if (natsUrl !== undefined) set(raw, ["nats", "servers"], list(natsUrl));
  const driver = e("LEDGER_DRIVER");
  if (driver !== undefined) set(raw, ["ledger", "driver"], driver);
  const path = e("LEDGER_PATH");
  if (path !== undefined) set(raw, ["ledger", "path"], path);
  const addresses = e("TB_ADDRESSES");
  if (addresses !== undefined) set(raw, ["ledger", "tigerbeetle", "addresses"], list(addresses));
  const cluster = e("TB_CLUSTER_ID");
  if (cluster !== undefined) set(raw, ["ledger", "tigerbeetle", "clusterId"], cluster);
  const level = e("LOG_LEVEL");
  if (level !== undefined) set(raw, ["log", "level"], level);
  // Digits become a number; anything else is passed as it is, so the schema refuses it naming OPS_PORT.
  const opsPort = e("OPS_PORT");
  if (opsPort !== undefined)
    set(raw, ["ops", "port"], /^[0-9]{1,5}$/.test(opsPort) ? Number(opsPort) : opsPort);
}

/** The environment variable of each key that has one (also the configuration reference's column). */
export const ENV_OF: Readonly<Record<string, string>> = {
  "nats.servers": "NATS_URL",
  "ledger.driver": "LEDGER_DRIVER",
  "ledger.path": "LEDGER_PATH",
  "ledger.tigerbeetle.addresses": "TB_ADDRESSES",
  "ledger.tigerbeetle.clusterId": "TB_CLUSTER_ID",
  "log.level": "LOG_LEVEL",
  "ops.port": "OPS_PORT",
};

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.join(".");
  const env = Object.entries(ENV_OF).find(([p]) => path.startsWith(p))?.[1];
  const where = env ? `${path} (${env})` : path || "config";
  if (issue.code === "unrecognized_keys") return `${where}: unknown key ${issue.keys.join(", ")}`;
  return `${where}: ${issue.message}`;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Json = {}): Config {
  let raw = readJson(DEFAULT_FILE, "config/default.json");
  const file = env["BILLING_CONFIG"];
  if (file) raw = merge(raw, readJson(file, "BILLING_CONFIG"));
  raw = merge(raw, overrides);
  applyEnv(raw, env);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map(describe).join("; ")}`);
  const problems = crossCheck(parsed.data);
  if (problems.length > 0)
    throw new ConfigError(
      `invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
    );
  return parsed.data;
}
