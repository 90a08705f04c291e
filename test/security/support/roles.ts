// The nats-server configuration of docs/security.md, as the tests run it: the block between the
// page's markers, taken verbatim, with each account's `users: [ … ]` line replaced by the test's
// own users (passwords, nkeys or certificate subjects), each bound to its role's permission set.
// So the permissions, exports and imports under test are exactly the documented ones.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

const DOC = new URL("../../../docs/security.md", import.meta.url);
const BEGIN = "<!-- nats-server-config:begin -->";
const END = "<!-- nats-server-config:end -->";

export const roles = {
  service: { account: "BILLING", permissions: "$BILLING_SERVICE" },
  operator: { account: "BILLING", permissions: "$BILLING_OPERATOR" },
  publisher: { account: "BILLING_PUBLISHERS", permissions: "$BILLING_PUBLISHER" },
  reader: { account: "BILLING_READERS", permissions: "$BILLING_EVENT_READER" },
} as const;

export type Role = keyof typeof roles;

/** One user entry: a password user, an nkey, or a certificate subject mapped by verify_and_map. */
export type TestUser =
  | { role: Role; user: string; password: string }
  | { role: Role; nkey: string }
  | { role: Role; certificateSubject: string };

/** The documented configuration block, fences removed. */
export function documentedConfig(): string {
  const page = readFileSync(DOC, "utf8");
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start)
    throw new Error(`docs/security.md: markers ${BEGIN} … ${END} not found`);
  const block = page.slice(start + BEGIN.length, end).trim();
  const fenced = /^```conf\n([\s\S]*)\n```$/.exec(block);
  if (!fenced?.[1]) throw new Error("docs/security.md: the marked block is not one ```conf fence");
  return fenced[1];
}

function entry(u: TestUser): string {
  const permissions = `permissions: ${roles[u.role].permissions}`;
  if ("password" in u)
    return `{ user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}, ${permissions} }`;
  if ("nkey" in u) return `{ nkey: ${u.nkey}, ${permissions} }`;
  return `{ user: ${JSON.stringify(u.certificateSubject)}, ${permissions} }`;
}

/** The documented configuration with the given users (and `extra` server settings, e.g. tls). */
export function serverConfig(users: readonly TestUser[], extra = ""): string {
  const lines = documentedConfig().split("\n");
  const replaced = new Set<string>();
  let account: string | null = null;
  const out = lines.map((line) => {
    const header = /^ {2}([A-Z_]+) \{$/.exec(line);
    if (header?.[1]) account = header[1];
    if (!/^\s+users: \[.*\]$/.test(line)) return line;
    if (account === null || replaced.has(account))
      throw new Error(`docs/security.md: unexpected users line in ${account ?? "no account"}`);
    replaced.add(account);
    // nats-server refuses a permission variable nobody uses ("unknown field"): a role without test
    // users gets one with a random password nobody knows.
    const entries = (Object.keys(roles) as Role[])
      .filter((r) => roles[r].account === account)
      .flatMap((role) => {
        const mine = users.filter((u) => u.role === role);
        return (
          mine.length > 0 ? mine : [{ role, user: `nobody-${role}`, password: randomUUID() }]
        ).map(entry);
      });
    return line.replace(/users: \[.*\]$/, `users: [ ${entries.join(", ")} ]`);
  });
  for (const { account: a } of Object.values(roles)) {
    if (!replaced.has(a)) throw new Error(`docs/security.md: no users line in account ${a}`);
  }
  return `${out.join("\n")}\n${extra}\n`;
}
