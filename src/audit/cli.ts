// `billing audit`: runs the finance audit against the configured ledger and events stream.
// Exit codes (src/cli/exit-code.ts): 0 every check holds, 1 at least one discrepancy, 2 a usage
// or configuration error, 3 the broker or the ledger unavailable.
import { existsSync } from "node:fs";
import { z } from "zod";
import type { Config } from "../config/schema.ts";
import { openLedger } from "../ledger/index.ts";
import type { Ledger } from "../ledger/port.ts";
import { AssertionError } from "../lib/assert.ts";
import { connect, ledgerOptionsOf, readChart } from "../service.ts";
import type { Broker } from "../broker/connection.ts";
import { auditDefaults, runAudit, type AuditOptions } from "./audit.ts";
import { renderText } from "./report.ts";
import { EXIT_UNAVAILABLE, EXIT_USAGE, exitCodeOf } from "../cli/exit-code.ts";

export const AUDIT_USAGE = `usage: billing audit [--json] [--settle-ms N] [--expiry-lag-ms N] [--holds N] [--findings N]
  --json            print the report as JSON instead of text
  --settle-ms N     operations this young at the cut may still lack their event (default: 2 × consumer.ackWaitMs + expiry.delayMs)
  --expiry-lag-ms N how late after its deadline a hold may still read as held (default ${auditDefaults.expiryLagMs})
  --holds N         open holds listed, oldest first (default ${auditDefaults.holdsListMax})
  --findings N      discrepancies listed per kind (default ${auditDefaults.findingsPerKindMax})`;

const count = z.coerce.number().int().min(0).max(10_000_000);
const FLAGS = {
  "--settle-ms": "settleMs",
  "--expiry-lag-ms": "expiryLagMs",
  "--holds": "holdsListMax",
  "--findings": "findingsPerKindMax",
} as const;

type Parsed = { json: boolean; options: Partial<AuditOptions> };

/** The verb's arguments, or a one-line usage error. */
export function parseAuditArgs(args: ReadonlyArray<string>): Parsed | string {
  const parsed: Parsed = { json: false, options: {} };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === "--json") {
      parsed.json = true;
      continue;
    }
    const key = FLAGS[arg as keyof typeof FLAGS];
    if (key === undefined) return `unknown argument ${arg}`;
    const value = count.safeParse(args[i + 1]);
    if (!value.success) return `${arg} needs a non-negative integer`;
    parsed.options[key] = value.data;
    i += 1;
  }
  return parsed;
}

function fail(message: string, code = EXIT_USAGE): number {
  process.stderr.write(`billing audit: ${message.split("\n")[0]}\n`);
  return code;
}

export async function auditVerb(args: string[], config: Config): Promise<number> {
  const parsed = parseAuditArgs(args);
  if (typeof parsed === "string") {
    process.stderr.write(`billing audit: ${parsed}\n${AUDIT_USAGE}\n`);
    return 2;
  }
  // Opening a missing embedded ledger would create an empty one: an audit of nothing, and a stray file.
  if (config.ledger.driver === "embedded" && !existsSync(config.ledger.path)) {
    return fail(`no ledger file at ${config.ledger.path} (ledger.path / LEDGER_PATH)`);
  }
  let ledger: Ledger | null = null;
  let broker: Broker | null = null;
  try {
    const opened: Ledger = await openLedger(ledgerOptionsOf(config));
    ledger = opened;
    const connected = await connect(config, "billing-audit");
    broker = connected;
    const chart = await readChart(config, connected, opened);
    const report = await runAudit(
      {
        ledger: opened,
        js: connected.js,
        jsm: connected.jsm,
        chart,
        eventsStream: config.streams.events,
        shared: config.ledger.shared,
      },
      {
        settleMs: 2 * config.consumer.ackWaitMs + config.expiry.delayMs,
        eventsMaxAgeMs: config.streams.eventsMaxAgeMs,
        ...parsed.options,
      },
    );
    process.stdout.write(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
    return report.ok ? 0 : 1;
  } catch (error) {
    if (error instanceof AssertionError) throw error;
    // The broker or the ledger away is 3, like every verb's; anything else stops the audit as 2.
    return fail(
      `cannot complete the audit: ${(error as Error).message}`,
      exitCodeOf(error) === EXIT_UNAVAILABLE ? EXIT_UNAVAILABLE : EXIT_USAGE,
    );
  } finally {
    await broker?.close();
    ledger?.destroy();
  }
}
