// Runs the finance audit (src/audit/cli.ts auditVerb, what `billing audit` runs) against the run's
// ledger and NATS, in its own process, so that its output and memory stay out of the bench.
// Environment as for the service (NATS_URL, LEDGER_PATH, BILLING_CONFIG); exit code is the verb's.
import { auditVerb } from "../../src/audit/cli.ts";
import { loadConfig } from "../../src/config/load.ts";

process.exitCode = await auditVerb(process.argv.slice(2), loadConfig());
