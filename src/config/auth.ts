// NATS credentials: secrets come only from files named in config or from the environment, never
// from config values, and are never logged.
import { readFileSync } from "node:fs";
import type { BrokerAuthOptions } from "../broker/connection.ts";
import type { Config } from "./schema.ts";

/** Secrets come only from files (or the environment, through them); never from config values. */
export function authOf(config: Config): BrokerAuthOptions | undefined {
  const a = config.nats.auth;
  if (!a) return undefined;
  const read = (path: string | undefined): string | undefined => (path === undefined ? undefined : readFileSync(path, "utf8").trim());
  const auth: BrokerAuthOptions = {};
  const pass = read(a.passFile) ?? process.env["NATS_PASSWORD"];
  const token = read(a.tokenFile) ?? process.env["NATS_TOKEN"];
  const nkeySeed = read(a.nkeySeedFile);
  if (a.user !== undefined) auth.user = a.user;
  if (pass !== undefined) auth.pass = pass;
  if (token !== undefined) auth.token = token;
  if (nkeySeed !== undefined) auth.nkeySeed = nkeySeed;
  if (a.credsFile !== undefined) auth.credsFile = a.credsFile;
  if (a.tls) auth.tls = Object.fromEntries(Object.entries(a.tls).filter(([, v]) => v !== undefined));
  return auth;
}

