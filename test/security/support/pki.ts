// A throwaway public-key infrastructure made with openssl at test time: one CA, a server
// certificate for 127.0.0.1, and client certificates whose subject is "CN=<name>" (nats-server's
// verify_and_map takes that string as the user name). EC P-256 keys: fast to generate.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export interface Pki {
  caFile: string;
  server: CertFiles;
  client(name: string): CertFiles;
}

// Certificates live one day: long enough for any test run, short if a temp dir is left behind.
const VALID_DAYS = "1";
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

export function makePki(dir: string, clientNames: readonly string[]): Pki {
  const f = (name: string): string => join(dir, name);
  openssl(
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    VALID_DAYS,
    "-subj",
    "/CN=billing-test-ca",
  );
  const sign = (name: string, subject: string, extensions: string): CertFiles => {
    openssl(
      "req",
      ...EC_KEY,
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
      "-subj",
      subject,
    );
    writeFileSync(f(`${name}.ext`), extensions);
    openssl(
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-out",
      f(`${name}.pem`),
      "-days",
      VALID_DAYS,
      "-extfile",
      f(`${name}.ext`),
    );
    return { certFile: f(`${name}.pem`), keyFile: f(`${name}.key`) };
  };
  // nats.js (node) checks a server addressed by IP against the name "localhost" as well.
  const server = sign(
    "server",
    "/CN=127.0.0.1",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  const clients = new Map<string, CertFiles>();
  for (const name of clientNames)
    clients.set(name, sign(`client-${name}`, `/CN=${name}`, "extendedKeyUsage=clientAuth\n"));
  return {
    caFile: f("ca.pem"),
    server,
    client(name) {
      const files = clients.get(name);
      if (files === undefined) throw new Error(`no client certificate for ${name}`);
      return files;
    },
  };
}
