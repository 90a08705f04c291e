// Shared pieces of the security tests: secret files and the server's permission-violation log lines.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServer } from "../../support/nats-server.ts";

/** A fresh random secret, distinctive enough to grep for in any output. */
export function secret(label: string): string {
  return `${label}-${randomBytes(12).toString("hex")}`;
}

export interface SecretDir {
  readonly dir: string;
  /** Writes a mode-0600 file, as an operator would, and returns its path. */
  file(name: string, content: string): string;
  cleanup(): void;
}

export function secretDir(): SecretDir {
  const dir = mkdtempSync(join(tmpdir(), "billing-secrets-"));
  return {
    dir,
    file(name, content) {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The server's "Publish Violation" / "Subscription Violation" lines for one user. */
export function violationsOf(server: NatsServer, user: string): string[] {
  return server
    .log()
    .split("\n")
    .filter((line) => line.includes("Violation") && line.includes(`User "${user}"`));
}

// The server writes its log asynchronously to the pipe we read: a violation may show a moment
// after the client's flush returned.
const VIOLATION_LOG_WAIT_MS = 2_000;

/** Resolves once the server has logged a violation by `user` on `subject`; false if it never does. */
export async function violationLogged(
  server: NatsServer,
  user: string,
  kind: "Publish" | "Subscription",
  subject: string,
): Promise<boolean> {
  const wanted = `${kind} Violation - User "${user}", Subject "${subject}"`;
  const deadline = Date.now() + VIOLATION_LOG_WAIT_MS;
  while (!violationsOf(server, user).some((l) => l.includes(wanted))) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A RequestError message for a publish the server refused on permissions. */
export function refusedPublish(subject: string): RegExp {
  return new RegExp(
    `Permissions Violation for Publish to "${subject.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`,
  );
}
