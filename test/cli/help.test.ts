// Proves that help is help: `billing help`, `-h` and `--help` print the whole usage (stdout, exit
// 0), and `billing <verb> --help` or `-h` prints that verb's usage and exits 0 for every verb,
// without reading the configuration or starting anything (`billing start --help` with no NATS and
// no ledger creates no ledger file and ends at once). Spawns the real CLI.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { billing } from "./support.ts";

const dir = mkdtempSync(join(tmpdir(), "billing-help-"));
const ledgerPath = join(dir, "ledger.db");
// Nothing to reach and a broken configuration: help must not need either.
const env = {
  NATS_URL: "nats://127.0.0.1:1",
  LEDGER_PATH: ledgerPath,
  BILLING_CONFIG: join(dir, "missing.json"),
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VERBS = ["start", "setup", "send", "balance", "op", "hold", "audit", "dlq"];

describe("cli – help", () => {
  it("billing help, -h and --help print the usage of every verb and the exit codes on stdout, exit 0", async () => {
    for (const flag of ["help", "-h", "--help"]) {
      const r = await billing([flag], env);
      expect(r.code, flag).toBe(0);
      expect(r.stderr).toBe("");
      for (const verb of VERBS) expect(r.stdout).toContain(`billing ${verb}`);
      expect(r.stdout).toContain("3 unavailable");
    }
  });

  it.each(VERBS)("billing %s --help prints that verb's usage and exits 0", async (verb) => {
    const r = await billing([verb, "--help"], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage:\\n {2}billing ${verb}`));
    expect(r.stderr).toBe("");
  });

  it("billing start -h starts nothing: no ledger file, no service, exit 0", async () => {
    const r = await billing(["start", "-h"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("service started");
    expect(existsSync(ledgerPath)).toBe(false);
  });

  it("billing help <verb> prints that verb's usage; billing help <unknown> is a usage error", async () => {
    const r = await billing(["help", "send"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage:\n {2}billing send <command> <json\|-\|@file>/);
    const unknown = await billing(["help", "nope"], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("billing help: unknown command nope");
  });
});
