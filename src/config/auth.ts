// NATS credentials: config → BrokerAuthOptions for connectBroker.
//
// Secrets come only from files named in config (nats.auth.passFile, tokenFile, nkeySeedFile,
// credsFile, tls.keyFile) or from the environment (NATS_PASSWORD, NATS_TOKEN), never from config
// values: a config file is copied, diffed and printed far more often than a secret file. For the
// same reason a server URL that carries credentials (nats://user:pass@host) is refused rather than
// passed on. Environment variables override the files, as they override config everywhere else.
//
// Every check fails early, at start-up, with a ConfigError (exit code 2, one line) that names the
// setting or the file, never the secret. The options returned serialize without their secrets
// (JSON.stringify, pino, util.inspect print "[REDACTED]"), so logging them by mistake leaks nothing.

import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import type { BrokerAuthOptions, BrokerTlsOptions } from "../broker/connection.ts";
import { ConfigError } from "./load.ts";
import type { Config } from "./schema.ts";

export const authEnv = { password: "NATS_PASSWORD", token: "NATS_TOKEN" } as const;

// Bound on a secret file: a password, token or seed is tens of bytes, a creds file about 1 KiB. A
// larger file is the wrong file (a log, a keystore), and reading it whole is pointless.
export const secretFileBytesMax = 64 * 1024;

// A user nkey seed: "SU" and 56 base32 characters (nkeys: 1 prefix byte pair, 32 bytes, CRC16).
const userSeedPattern = /^SU[A-Z2-7]{56}$/;
const credsJwtMarker = "BEGIN NATS USER JWT";
const credsSeedMarker = "BEGIN USER NKEY SEED";
const redacted = "[REDACTED]";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The NATS authentication options for config and environment, or undefined when neither sets any.
 * Throws ConfigError when they are inconsistent (two methods, a password without a user, …) or a
 * named file cannot be read.
 */
export function authOf(config: Config, env: Env = process.env): BrokerAuthOptions | undefined {
  refuseUrlCredentials(config.nats.servers);
  const a = config.nats.auth ?? {};
  const envPassword = nonEmpty(env[authEnv.password]);
  const envToken = nonEmpty(env[authEnv.token]);
  const methods = [
    a.user !== undefined ? "nats.auth.user" : null,
    a.tokenFile !== undefined ? "nats.auth.tokenFile" : null,
    envToken !== undefined ? authEnv.token : null,
    a.nkeySeedFile !== undefined ? "nats.auth.nkeySeedFile" : null,
    a.credsFile !== undefined ? "nats.auth.credsFile" : null,
  ].filter((m): m is string => m !== null);
  // A token from the file and from the environment is one method, the environment winning.
  const distinct = methods.filter((m) => !(m === authEnv.token && a.tokenFile !== undefined));
  if (distinct.length > 1)
    throw new ConfigError(`nats.auth: choose one authentication method; got ${methods.join(", ")}`);
  if (a.user === undefined && (a.passFile !== undefined || envPassword !== undefined)) {
    const source = envPassword !== undefined ? authEnv.password : "nats.auth.passFile";
    throw new ConfigError(`nats.auth: ${source} is set but nats.auth.user is not`);
  }

  const auth: BrokerAuthOptions = {};
  if (a.user !== undefined) {
    if (a.user.trim() === "") throw new ConfigError("nats.auth.user: must not be empty");
    const pass =
      envPassword ??
      (a.passFile !== undefined ? readSecret(a.passFile, "nats.auth.passFile") : undefined);
    if (pass === undefined)
      throw new ConfigError(
        `nats.auth.user needs a password: set nats.auth.passFile or ${authEnv.password}`,
      );
    auth.user = a.user;
    auth.pass = pass;
  }
  const token =
    envToken ??
    (a.tokenFile !== undefined ? readSecret(a.tokenFile, "nats.auth.tokenFile") : undefined);
  if (token !== undefined) auth.token = token;
  if (a.nkeySeedFile !== undefined) {
    const seed = readSecret(a.nkeySeedFile, "nats.auth.nkeySeedFile");
    if (!userSeedPattern.test(seed))
      throw new ConfigError(
        `nats.auth.nkeySeedFile: ${a.nkeySeedFile} does not hold a user nkey seed (SU…, 58 characters)`,
      );
    auth.nkeySeed = seed;
  }
  if (a.credsFile !== undefined) {
    // connectBroker reads the file again when it connects; read it here to fail at start-up.
    const creds = readSecret(a.credsFile, "nats.auth.credsFile");
    if (!creds.includes(credsJwtMarker) || !creds.includes(credsSeedMarker)) {
      throw new ConfigError(
        `nats.auth.credsFile: ${a.credsFile} is not a NATS user credentials file (no user JWT and nkey seed)`,
      );
    }
    auth.credsFile = a.credsFile;
  }
  if (a.tls !== undefined) auth.tls = tlsOf(a.tls);
  if (Object.keys(auth).length === 0) return undefined;
  return withoutSecretsWhenShown(auth);
}

function tlsOf(tls: NonNullable<NonNullable<Config["nats"]["auth"]>["tls"]>): BrokerTlsOptions {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new ConfigError("nats.auth.tls: certFile and keyFile go together");
  }
  const out: BrokerTlsOptions = {};
  if (tls.caFile !== undefined) out.caFile = readable(tls.caFile, "nats.auth.tls.caFile");
  if (tls.certFile !== undefined) out.certFile = readable(tls.certFile, "nats.auth.tls.certFile");
  if (tls.keyFile !== undefined) out.keyFile = readable(tls.keyFile, "nats.auth.tls.keyFile");
  return out;
}

// nats://user:pass@host or nats://token@host: a secret in config. The message shows the URL with
// its credentials cut out.
function refuseUrlCredentials(servers: readonly string[]): void {
  servers.forEach((server, i) => {
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*@/i.test(server) || /^[^/@]*@/.test(server)) {
      const shown = server.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?)[^/@]*@/i, "$1***@");
      throw new ConfigError(
        `nats.servers[${i}] (NATS_URL): ${shown}: credentials in a server URL are not accepted; use nats.auth (user with passFile or ${authEnv.password}, tokenFile or ${authEnv.token}, nkeySeedFile, credsFile)`,
      );
    }
  });
}

// The file's text without surrounding white space (a trailing newline is not part of a secret).
function readSecret(path: string, setting: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${setting}: cannot read ${path}: ${errorCode(error)}`);
  }
  if (bytes.length > secretFileBytesMax)
    throw new ConfigError(
      `${setting}: ${path} is larger than ${secretFileBytesMax} bytes; is it the right file?`,
    );
  const text = bytes.toString("utf8").trim();
  if (text === "") throw new ConfigError(`${setting}: ${path} is empty`);
  return text;
}

// TLS files are read by the transport at connect time; check here that they can be.
function readable(path: string, setting: string): string {
  try {
    readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${setting}: cannot read ${path}: ${errorCode(error)}`);
  }
  return path;
}

// The errno code only (ENOENT, EACCES, EISDIR): the rest of a fs error message repeats the path.
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "unreadable";
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

// The options as they are, for connectBroker; shown (JSON, pino, console, util.inspect) with every
// secret replaced. The methods are not enumerable, so a copy or a key list sees only the options.
function withoutSecretsWhenShown(auth: BrokerAuthOptions): BrokerAuthOptions {
  const shown = (): Record<string, unknown> => ({
    ...(auth.user !== undefined ? { user: auth.user } : {}),
    ...(auth.pass !== undefined ? { pass: redacted } : {}),
    ...(auth.token !== undefined ? { token: redacted } : {}),
    ...(auth.nkeySeed !== undefined ? { nkeySeed: redacted } : {}),
    ...(auth.credsFile !== undefined ? { credsFile: auth.credsFile } : {}),
    ...(auth.tls !== undefined ? { tls: auth.tls } : {}),
  });
  Object.defineProperty(auth, "toJSON", { value: shown, enumerable: false });
  Object.defineProperty(auth, inspect.custom, { value: shown, enumerable: false });
  return auth;
}
