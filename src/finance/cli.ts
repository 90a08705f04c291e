// The finance verbs: `billing export journal`, `billing statement`, `billing trial-balance`. Each
// reads the ledger through the port only (and the deployment record on NATS, for the chart's id
// space), writes nothing, and reads nothing past the cut it takes at its start, so it is
// consistent while a service runs (docs/finance.md, "Month end").
// Exit codes: 0 done, 1 a finding (an unbalanced trial balance, a statement of a user with no
// account, a post or void of a hold that was not open), 2 a usage or configuration error (one line naming the flag), 3 the ledger or the
// broker unavailable.
import { existsSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { currencyByCode, type Chart } from "../domain/accounts.ts";
import { openLedger } from "../ledger/index.ts";
import type { Ledger } from "../ledger/port.ts";
import { exitCodeOf as cliExitCodeOf, UsageError } from "../cli/exit-code.ts";
import { connect, ledgerOptionsOf, readChart } from "../service.ts";
import { isoOfNs, nsOfIso } from "./money-text.ts";
import { LineSink, Progress } from "./output.ts";
import { newestTransferTimestamp } from "../ledger/queries.ts";
import { exportJournal, statement, trialBalance, type FinanceDeps } from "./run.ts";
import { NS_PER_MS } from "../lib/nanoseconds.ts";

/** A bad flag or argument: exit 2 with one line naming it. */

export type FinanceVerb = {
  usage: string;
  run: (args: string[], config: Config) => Promise<number>;
};

const EXPORT_USAGE = `usage: billing export journal [--from <ISO time>] [--to <ISO time>] [--format csv|jsonl] [--out FILE]
  every ledger transfer with from ≤ ledger time < to as one double-entry line (default: all of them up to
  the newest, csv on stdout)
  --from, --to   ISO times (2026-11-01 or 2026-11-01T00:00:00Z; nanoseconds allowed)
  --format       csv (default, with a header line) or jsonl (one JSON object a line)
  --out FILE     write to FILE instead of stdout; a progress line goes to stderr every 2 s`;

const STATEMENT_USAGE = `usage: billing statement <userId> [--currency C] [--from <ISO time>] [--to <ISO time>] [--format text|csv|jsonl] [--out FILE]
  opening balance, every movement with its running posted / held / available balances, closing balance
  --currency C   the currency (default: defaultCurrency)
  --from, --to   the period, from ≤ ledger time < to (default: from the first movement to now)
  --format       text (default, major units), csv or jsonl (minor units)`;

const TRIAL_USAGE = `usage: billing trial-balance [--at <ISO time>] [--format text|csv|jsonl] [--out FILE]
  every account's debits and credits, posted and pending, at the instant, and per currency the check
  that debits equal credits (exit 1 if not)
  --at           the instant (default: now): every transfer before it, holds expired at it; a past instant
                 is read from the ledger's balance history, never from today's balances
  --format       text (default, major units), csv or jsonl (minor units)`;

type Flags = { positional: string[]; values: Map<string, string> };

/** Splits `--flag value` pairs from positional arguments; only the verb's own flags are accepted. */
export function parseFlags(args: ReadonlyArray<string>, allowed: ReadonlyArray<string>): Flags {
  const flags: Flags = { positional: [], values: new Map() };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (!arg.startsWith("--")) {
      flags.positional.push(arg);
      continue;
    }
    if (!allowed.includes(arg)) throw new UsageError(`unknown flag ${arg} (${allowed.join(", ")})`);
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value`);
    if (flags.values.has(arg)) throw new UsageError(`${arg} given twice`);
    flags.values.set(arg, value);
    i += 1;
  }
  return flags;
}

function timeFlag(flags: Flags, name: string): bigint | null {
  const text = flags.values.get(name);
  if (text === undefined) return null;
  const ns = nsOfIso(text);
  if (ns === null)
    throw new UsageError(
      `${name}: ${JSON.stringify(text)} is not an ISO time (2026-11-30 or 2026-11-30T23:59:59Z)`,
    );
  return ns;
}

function formatFlag<F extends string>(flags: Flags, allowed: ReadonlyArray<F>): F {
  const value = flags.values.get("--format") ?? allowed[0];
  if (!allowed.includes(value as F))
    throw new UsageError(`--format: ${value} is not one of ${allowed.join(", ")}`);
  return value as F;
}

const nowNs = () => BigInt(Date.now()) * NS_PER_MS;
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** The ledger (deadline-wrapped) and the chart of the deployment; the broker is only asked for the chart. */
async function openDeps(config: Config): Promise<FinanceDeps> {
  // Opening a missing embedded ledger would create an empty one: books of nothing, and a stray file.
  if (config.ledger.driver === "embedded" && !existsSync(config.ledger.path))
    throw new UsageError(`no ledger file at ${config.ledger.path} (ledger.path / LEDGER_PATH)`);
  const ledger: Ledger = await openLedger(ledgerOptionsOf(config));
  try {
    const broker = await connect(config, "billing-finance");
    try {
      const chart: Chart = await readChart(config, broker, ledger);
      return { ledger, chart };
    } finally {
      await broker.close();
    }
  } catch (error) {
    ledger.destroy();
    throw error;
  }
}

async function sinkOf(flags: Flags): Promise<LineSink> {
  const path = flags.values.get("--out");
  if (path === undefined) return LineSink.stdout();
  try {
    return await LineSink.file(path);
  } catch (error) {
    throw new UsageError(`--out: cannot write ${path}: ${(error as Error).message}`);
  }
}

/** Runs a verb's body with the ledger open and its output sink; maps failures to exit codes. */
async function withDeps(
  verb: string,
  config: Config,
  flags: Flags,
  body: (deps: FinanceDeps, sink: LineSink) => Promise<number>,
): Promise<number> {
  let deps: FinanceDeps | null = null;
  try {
    deps = await openDeps(config);
    const sink = await sinkOf(flags);
    try {
      return await body(deps, sink);
    } finally {
      await sink.close();
    }
  } catch (error) {
    const code = exitCodeOf(error);
    if (code === null) throw error;
    if (code !== 0)
      process.stderr.write(`billing ${verb}: ${(error as Error).message.split("\n")[0]}\n`);
    return code;
  } finally {
    deps?.ledger.destroy();
  }
}

/** The CLI's exit code of a failure; a reader of stdout that left (| head) ends the output quietly. */
function exitCodeOf(error: unknown): number | null {
  if ((error as { code?: unknown } | null)?.code === "EPIPE") return 0;
  return cliExitCodeOf(error);
}

/** One line naming what is wrong; the usage is one `--help` away. */
function usageFailure(verb: string, error: unknown): number {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`billing ${verb}: ${error.message} (billing ${verb} --help)\n`);
  return 2;
}

async function runExport(args: string[], config: Config): Promise<number> {
  let parsed: { flags: Flags; from: bigint; to: bigint | null; format: "csv" | "jsonl" };
  try {
    const flags = parseFlags(args, ["--from", "--to", "--format", "--out"]);
    if (flags.positional[0] !== "journal" || flags.positional.length !== 1)
      throw new UsageError(
        `export: what to export? the only kind is journal (got ${flags.positional.join(" ") || "nothing"})`,
      );
    const from = timeFlag(flags, "--from") ?? 1n;
    const to = timeFlag(flags, "--to");
    if (to !== null && to < from) throw new UsageError("--to is before --from");
    parsed = { flags, from, to, format: formatFlag(flags, ["csv", "jsonl"] as const) };
  } catch (error) {
    return usageFailure("export", error);
  }
  return withDeps("export", config, parsed.flags, async (deps, sink) => {
    const cut = await newestTransferTimestamp(deps.ledger);
    // [from, to): a transfer at exactly --to is the next period's, so consecutive exports never overlap.
    const to = parsed.to === null ? cut : min(parsed.to - 1n, cut);
    const progress = new Progress("billing export", true);
    const lines = await exportJournal(
      deps,
      { from: parsed.from, to, format: parsed.format },
      sink,
      progress,
    );
    const from = parsed.from <= 1n ? "the first transfer" : isoOfNs(parsed.from);
    const until = parsed.to === null ? `the cut ${isoOfNs(cut)}` : `before ${isoOfNs(parsed.to)}`;
    process.stderr.write(
      `billing export: ${lines} lines, ledger time from ${from} to ${until} (cut ${cut})\n`,
    );
    return 0;
  });
}

async function runStatement(args: string[], config: Config): Promise<number> {
  let parsed: {
    flags: Flags;
    userId: string;
    currency: string;
    from: bigint;
    to: bigint;
    format: "text" | "csv" | "jsonl";
  };
  try {
    const flags = parseFlags(args, ["--currency", "--from", "--to", "--format", "--out"]);
    const [userId, extra] = flags.positional;
    if (userId === undefined) throw new UsageError("statement: the userId is missing");
    if (extra !== undefined) throw new UsageError(`statement: unexpected argument ${extra}`);
    const currency = flags.values.get("--currency") ?? config.defaultCurrency;
    if (!config.currencies.some((c) => c.code === currency))
      throw new UsageError(
        `--currency: ${currency} is not a configured currency (${config.currencies.map((c) => c.code).join(", ")})`,
      );
    const from = timeFlag(flags, "--from") ?? 1n;
    const to = min(timeFlag(flags, "--to") ?? nowNs(), nowNs());
    if (to < from) throw new UsageError("--to is before --from");
    parsed = {
      flags,
      userId,
      currency,
      from,
      to,
      format: formatFlag(flags, ["text", "csv", "jsonl"] as const),
    };
  } catch (error) {
    return usageFailure("statement", error);
  }
  return withDeps("statement", config, parsed.flags, async (deps, sink) => {
    const currency = currencyByCode(deps.chart, parsed.currency);
    if (currency === undefined)
      throw new UsageError(`--currency: ${parsed.currency} is not a configured currency`);
    const cut = await newestTransferTimestamp(deps.ledger);
    const result = await statement(
      deps,
      {
        userId: parsed.userId,
        currency,
        from: parsed.from,
        to: parsed.to,
        cut,
        format: parsed.format,
      },
      sink,
      new Progress("billing statement", true),
    );
    if (result === null) {
      process.stderr.write(
        `billing statement: ${parsed.userId} has no ${currency.code} account in this ledger\n`,
      );
      return 1;
    }
    for (const problem of result.problems) process.stderr.write(`billing statement: ${problem}\n`);
    return result.problems.length === 0 ? 0 : 1;
  });
}

async function runTrialBalance(args: string[], config: Config): Promise<number> {
  let parsed: { flags: Flags; at: bigint; format: "text" | "csv" | "jsonl" };
  try {
    const flags = parseFlags(args, ["--at", "--format", "--out"]);
    if (flags.positional.length > 0)
      throw new UsageError(`trial-balance: unexpected argument ${flags.positional[0]}`);
    const at = timeFlag(flags, "--at") ?? nowNs();
    if (at > nowNs()) throw new UsageError("--at is in the future");
    parsed = { flags, at, format: formatFlag(flags, ["text", "csv", "jsonl"] as const) };
  } catch (error) {
    return usageFailure("trial-balance", error);
  }
  return withDeps("trial-balance", config, parsed.flags, async (deps, sink) => {
    const cut = await newestTransferTimestamp(deps.ledger);
    return trialBalance(
      deps,
      { at: parsed.at, cut, format: parsed.format, instantText: isoOfNs(parsed.at) },
      sink,
      new Progress("billing trial-balance", true),
    );
  });
}

export const financeVerbs: Record<string, FinanceVerb> = {
  export: { usage: EXPORT_USAGE, run: runExport },
  statement: { usage: STATEMENT_USAGE, run: runStatement },
  "trial-balance": { usage: TRIAL_USAGE, run: runTrialBalance },
};
