// Proves authOf (src/config/auth.ts), the one place NATS credentials come from: each method from its
// file or environment variable, the environment overriding the file, every inconsistency refused
// at start-up with a ConfigError that names the setting or file but never the secret, credentials
// in server URLs refused, and the result printing "[REDACTED]" for each secret through JSON,
// pino and util.inspect. Config objects come from the real loader with in-memory overrides;
// secrets are real files in a temp dir.
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nkeys } from "@nats-io/transport-node";
import { pino } from "pino";
import { authOf, secretFileBytesMax } from "../../src/config/auth.ts";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { secret, secretDir, type SecretDir } from "./support/fixture.ts";

let dir: SecretDir;
const password = secret("pw");
const token = secret("tok");
const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
let passFile: string;
let tokenFile: string;
let seedFile: string;
let credsFile: string;
let certFile: string;

beforeAll(() => {
  dir = secretDir();
  passFile = dir.file("pass", `${password}\n`);
  tokenFile = dir.file("token", `  ${token}\n`);
  seedFile = dir.file("seed", `${seed}\n`);
  credsFile = dir.file(
    "user.creds",
    `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.x\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
  );
  certFile = dir.file("cert.pem", "-----BEGIN CERTIFICATE-----\n");
});

afterAll(() => dir.cleanup());

type Json = NonNullable<Parameters<typeof loadConfig>[1]>;

function config(auth: Json | undefined, servers = ["nats://127.0.0.1:4222"]): Config {
  return loadConfig({}, { nats: { servers, ...(auth === undefined ? {} : { auth }) } });
}

function refusal(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const s of [password, token, seed]) expect(message).not.toContain(s);
    expect(message.split("\n")).toHaveLength(1);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("auth – each method from its file or environment variable", () => {
  it("no auth settings and no variables: no authentication", () => {
    expect(authOf(config(undefined), {})).toBeUndefined();
    expect(authOf(config({}), {})).toBeUndefined();
  });

  it("user with passFile: the file's content without its trailing newline", () => {
    expect(authOf(config({ user: "billing", passFile }), {})).toEqual({
      user: "billing",
      pass: password,
    });
  });

  it("user with NATS_PASSWORD, which overrides passFile", () => {
    expect(authOf(config({ user: "billing" }), { NATS_PASSWORD: "from-env" })).toEqual({
      user: "billing",
      pass: "from-env",
    });
    expect(authOf(config({ user: "billing", passFile }), { NATS_PASSWORD: "from-env" })).toEqual({
      user: "billing",
      pass: "from-env",
    });
  });

  it("token from tokenFile (trimmed), from NATS_TOKEN alone, NATS_TOKEN overriding the file", () => {
    expect(authOf(config({ tokenFile }), {})).toEqual({ token });
    expect(authOf(config(undefined), { NATS_TOKEN: "env-token" })).toEqual({ token: "env-token" });
    expect(authOf(config({ tokenFile }), { NATS_TOKEN: "env-token" })).toEqual({
      token: "env-token",
    });
  });

  it("nkey seed from nkeySeedFile; credsFile passed as a path", () => {
    expect(authOf(config({ nkeySeedFile: seedFile }), {})).toEqual({ nkeySeed: seed });
    expect(authOf(config({ credsFile }), {})).toEqual({ credsFile });
  });

  it("TLS alone (client certificate) or with a password; empty variables count as unset", () => {
    expect(
      authOf(config({ tls: { caFile: certFile, certFile, keyFile: certFile } }), {
        NATS_TOKEN: "",
        NATS_PASSWORD: "",
      }),
    ).toEqual({ tls: { caFile: certFile, certFile, keyFile: certFile } });
    expect(authOf(config({ user: "billing", passFile, tls: { caFile: certFile } }), {})).toEqual({
      user: "billing",
      pass: password,
      tls: { caFile: certFile },
    });
  });
});

describe("auth – inconsistent settings are refused at start-up, naming the setting, never the secret", () => {
  it("two methods at once", () => {
    expect(
      refusal(() => authOf(config({ user: "billing", passFile, tokenFile }), {})).message,
    ).toMatch(/choose one.*nats\.auth\.user, nats\.auth\.tokenFile/);
    expect(
      refusal(() => authOf(config({ user: "billing", passFile }), { NATS_TOKEN: token })).message,
    ).toMatch(/nats\.auth\.user, NATS_TOKEN/);
    expect(
      refusal(() => authOf(config({ nkeySeedFile: seedFile, credsFile }), {})).message,
    ).toMatch(/nkeySeedFile, nats\.auth\.credsFile/);
  });

  it("a password without a user, a user without a password", () => {
    expect(refusal(() => authOf(config({ passFile }), {})).message).toContain(
      "nats.auth.passFile is set but nats.auth.user is not",
    );
    expect(refusal(() => authOf(config(undefined), { NATS_PASSWORD: password })).message).toContain(
      "NATS_PASSWORD is set but nats.auth.user is not",
    );
    expect(refusal(() => authOf(config({ user: "billing" }), {})).message).toContain(
      "nats.auth.user needs a password",
    );
  });

  it("a missing, empty or oversized secret file", () => {
    const missing = `${dir.dir}/nope`;
    expect(refusal(() => authOf(config({ user: "billing", passFile: missing }), {})).message).toBe(
      `nats.auth.passFile: cannot read ${missing}: ENOENT`,
    );
    expect(
      refusal(() => authOf(config({ tokenFile: dir.file("empty", "\n") }), {})).message,
    ).toMatch(/tokenFile: .*empty is empty/);
    const big = dir.file("big", "x".repeat(secretFileBytesMax + 1));
    expect(refusal(() => authOf(config({ tokenFile: big }), {})).message).toMatch(
      /larger than 65536 bytes/,
    );
    expect(refusal(() => authOf(config({ tls: { caFile: missing } }), {})).message).toBe(
      `nats.auth.tls.caFile: cannot read ${missing}: ENOENT`,
    );
  });

  it("a seed file that is not a user seed, a credentials file without JWT or seed, a certificate without its key", () => {
    const accountSeed = new TextDecoder().decode(nkeys.createAccount().getSeed());
    const e = refusal(() =>
      authOf(config({ nkeySeedFile: dir.file("acct-seed", accountSeed) }), {}),
    );
    expect(e.message).toContain("does not hold a user nkey seed");
    expect(e.message).not.toContain(accountSeed);
    expect(refusal(() => authOf(config({ nkeySeedFile: passFile }), {})).message).toContain(
      "does not hold a user nkey seed",
    );
    expect(refusal(() => authOf(config({ credsFile: passFile }), {})).message).toContain(
      "is not a NATS user credentials file",
    );
    expect(refusal(() => authOf(config({ tls: { certFile } }), {})).message).toBe(
      "nats.auth.tls: certFile and keyFile go together",
    );
  });

  it("credentials in a server URL, from config or NATS_URL, with the URL shown without them", () => {
    const e = refusal(() =>
      authOf(
        config({ tokenFile }, [
          "nats://127.0.0.1:4222",
          `nats://billing:${password}@nats.internal:4222`,
        ]),
        {},
      ),
    );
    expect(e.message).toContain(
      "nats.servers[1] (NATS_URL): nats://***@nats.internal:4222: credentials in a server URL are not accepted",
    );
    const fromEnv = loadConfig({ NATS_URL: `tls://${token}@nats.internal:4222` });
    expect(refusal(() => authOf(fromEnv, {})).message).toContain(
      "nats.servers[0] (NATS_URL): tls://***@nats.internal:4222",
    );
    expect(
      refusal(() => authOf(config(undefined, [`${token}@127.0.0.1:4222`]), {})).message,
    ).toContain("***@127.0.0.1:4222");
  });
});

describe("auth – the options print without their secrets", () => {
  const all = (): Array<Record<string, unknown> | undefined> => [
    authOf(config({ user: "billing", passFile, tls: { caFile: certFile } }), {}) as
      Record<string, unknown> | undefined,
    authOf(config({ tokenFile }), {}) as Record<string, unknown> | undefined,
    authOf(config({ nkeySeedFile: seedFile }), {}) as Record<string, unknown> | undefined,
  ];

  it("JSON.stringify and util.inspect show [REDACTED] for each secret, and the options themselves are intact", () => {
    for (const auth of all()) {
      const shown = `${JSON.stringify(auth)} ${inspect(auth, { depth: 5 })} ${inspect({ nested: { auth } }, { depth: 5 })}`;
      for (const s of [password, token, seed]) expect(shown).not.toContain(s);
      expect(shown).toContain("[REDACTED]");
    }
    expect(JSON.parse(JSON.stringify(all()[0]))).toEqual({
      user: "billing",
      pass: "[REDACTED]",
      tls: { caFile: certFile },
    });
    expect(Object.keys(all()[0] ?? {})).toEqual(["user", "pass", "tls"]);
  });

  it("a pino logger at trace level, given the options, writes no secret", () => {
    let out = "";
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        out += chunk.toString();
        done();
      },
    });
    const log = pino({ level: "trace" }, sink);
    for (const auth of all()) {
      log.trace({ auth }, "connecting");
      log.error({ err: new Error("x"), options: { auth } }, "failed");
    }
    for (const s of [password, token, seed]) expect(out).not.toContain(s);
    expect(out).toContain("[REDACTED]");
  });
});
