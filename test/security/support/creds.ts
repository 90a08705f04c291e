// NATS decentralized auth for tests: an operator, one account with JetStream, and user credentials
// files (user JWT + nkey seed), made at test time with the nkeys the client library ships. The
// server trusts the operator and preloads the account (resolver MEMORY), so no nsc is needed.
//
// The JWTs follow the nats-io/jwt v2 wire format: a JSON header {"typ":"JWT","alg":"ed25519-nkey"},
// claims with jti/iat/iss/sub/name and a `nats` object naming the type and version 2, each part
// base64url without padding, signed (ed25519) by the issuer's nkey over "header.claims".
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";

type KeyPair = ReturnType<typeof nkeys.createUser>;

export interface UserPermissions {
  pub: { allow?: string[]; deny?: string[] };
  sub: { allow?: string[]; deny?: string[] };
  // Allow replies to requests received (the nats-server allow_responses).
  resp?: { max: number; ttl: number };
}

export interface Operator {
  // nats-server config text: trust the operator, preload the account.
  configText: string;
  // Writes a user credentials file signed by the account and returns its path.
  userCreds(name: string, permissions: UserPermissions): string;
}

const decoder = new TextDecoder();

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}

// RFC 4648 base32 without padding, as nats-io/jwt encodes the jti.
function base32(bytes: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function jwt(
  issuer: KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): string {
  const claims: Record<string, unknown> = {
    jti: "",
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims["jti"] = base32(createHash("sha512-256").update(JSON.stringify(claims)).digest());
  const signed = `${b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64url(JSON.stringify(claims))}`;
  return `${signed}.${b64url(issuer.sign(new TextEncoder().encode(signed)))}`;
}

// -1 everywhere: no limits; disk and memory storage -1 turn JetStream on for the account.
const unlimited = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

export function makeOperator(dir: string): Operator {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  // JetStream needs a system account in operator mode ("system account not setup" otherwise).
  const system = nkeys.createAccount();
  const operatorJwt = jwt(operator, operator.getPublicKey(), "billing-test-operator", {
    type: "operator",
    system_account: system.getPublicKey(),
  });
  const accountJwt = jwt(operator, account.getPublicKey(), "BILLING", {
    type: "account",
    limits: unlimited,
    default_permissions: { pub: {}, sub: {} },
  });
  const systemJwt = jwt(operator, system.getPublicKey(), "SYS", {
    type: "account",
    limits: { ...unlimited, mem_storage: 0, disk_storage: 0 },
  });
  const configText = [
    `operator: "${operatorJwt}"`,
    `system_account: ${system.getPublicKey()}`,
    "resolver: MEMORY",
    `resolver_preload: { ${account.getPublicKey()}: "${accountJwt}", ${system.getPublicKey()}: "${systemJwt}" }`,
    "",
  ].join("\n");
  return {
    configText,
    userCreds(name, permissions) {
      const user = nkeys.createUser();
      const userJwt = jwt(account, user.getPublicKey(), name, {
        type: "user",
        ...permissions,
        subs: -1,
        data: -1,
        payload: -1,
      });
      const path = join(dir, `${name}.creds`);
      writeFileSync(
        path,
        [
          "-----BEGIN NATS USER JWT-----",
          userJwt,
          "------END NATS USER JWT------",
          "",
          "************************* IMPORTANT *************************",
          "NKEY Seed printed below can be used to sign and prove identity.",
          "NKEYs are sensitive and should be treated as secrets.",
          "",
          "-----BEGIN USER NKEY SEED-----",
          decoder.decode(user.getSeed()),
          "------END USER NKEY SEED------",
          "",
          "*************************************************************",
          "",
        ].join("\n"),
        { mode: 0o600 },
      );
      return path;
    },
  };
}
