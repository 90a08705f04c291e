// Runs the finance audit (src/audit/cli.ts auditVerb, what `billing audit` runs) against the run's
// ledger and NATS, in its own process, so that its output and memory stay out of the bench.
// Environment as for the service (NATS_URL, LEDGER_PATH, BILLING_CONFIG); exit code is the verb's.
// The module is loaded by URL so that this file type-checks in a tree where the audit is not yet
// committed (verify.ts only starts this process when the file exists).
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";

type AuditModule = { auditVerb: (args: string[], config: Config) => Promise<number> };

const cli = (await import(new URL("../../src/audit/cli.ts", import.meta.url).href)) as AuditModule;
process.exitCode = await cli.auditVerb(process.argv.slice(2), loadConfig());
