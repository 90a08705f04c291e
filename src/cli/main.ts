// The `billing` command. Exit codes: 0 done, 1 a finding (audit discrepancy, a rejected command),
// 2 a usage, configuration or connection error (one line naming what is wrong).
import { BillingClient, BillingClientError, InvalidCallError, type CommandName } from "../client/index.ts";
import { commandSchemas } from "../client/schemas.ts";
import { ConfigError, loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { createLogger } from "../lib/log.ts";
import { AccountRegistry } from "../worker/accounts.ts";
import { connect, openServiceLedger, setup, startService } from "../service.ts";
import { LedgerFileError } from "../ledger/schema.ts";
import { DeploymentError } from "../deployment.ts";
import { LedgerUnavailableError } from "../ledger/deadline.ts";
import { exitOnBug, isTransient } from "../lib/failure.ts";
import { BrokerError } from "../broker/errors.ts";
import { authConnectionOptions } from "../broker/connection.ts";
import { authOf } from "../config/auth.ts";
import { dlq } from "../dlq/cli.ts";
import { auditVerb } from "../audit/cli.ts";
import { financeVerbs, type FinanceVerb } from "../finance/cli.ts";

/** Longest wait, after a stop, for what the stop left open before the process exits anyway. */
const EXIT_GRACE_MAX_MS = 2_000;

export class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = `usage:
  billing start                          run one service process (same as npm start)
  billing setup [--new-deployment]       create or update streams, consumer and system accounts
                                         (--new-deployment: bind fresh streams as one more deployment
                                         of a shared ledger, ledger.shared)
  billing send <command> '<json>'        publish a command, wait for its event, print it
                                         (command: credit debit hold capture release transfer)
  billing balance <userId> [currency]    print a user's balance
  billing op <operationId>               print an operation's status and event
  billing audit [--json] [--settle-ms N] [--expiry-lag-ms N] [--holds N] [--findings N]
                                         check the ledger against its events (exit 1 on a discrepancy)
  billing dlq list [--reason R] [--limit N] [--json]   dead letters, oldest first, with their replays
  billing dlq replay <sequence> [--by NAME] [--same-id] [--force]   publish a letter's command again (once)
  billing dlq purge --before <ISO time>                remove dead letters stored before that time
  billing export journal [--from T] [--to T] [--format csv|jsonl] [--out FILE]   the ledger's transfers as double-entry lines
  billing statement <userId> [--currency C] [--from T] [--to T] [--format text|csv|jsonl]   a user's movements and running balances
  billing trial-balance [--at T] [--format text|csv|jsonl]   every account's debits and credits; exit 1 if they do not balance`;

type Verb = (args: string[], config: Config) => Promise<number>;

async function withClient<T>(config: Config, use: (client: BillingClient) => Promise<T>): Promise<T> {
  const auth = await authConnectionOptions(authOf(config));
  const client = await BillingClient.connect({ servers: config.nats.servers, name: "billing-cli", timeoutMs: config.nats.requestTimeoutMs, maxReconnectAttempts: 0, ...auth });
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const verbs: Record<string, Verb> = {
  dlq,
  audit: auditVerb,
  export: (args, config) => (financeVerbs["export"] as FinanceVerb).run(args, config),
  statement: (args, config) => (financeVerbs["statement"] as FinanceVerb).run(args, config),
  "trial-balance": (args, config) => (financeVerbs["trial-balance"] as FinanceVerb).run(args, config),
  start: async (_args, config) => {
    const log = createLogger(config.log.level);
    // The last line of defence: whatever escaped every component's own handling is a bug; it is
    // logged (one fatal line) and ends the process, never silently.
    process.on("unhandledRejection", (error) => exitOnBug(log, error, "an unhandled promise rejection"));
    process.on("uncaughtException", (error) => exitOnBug(log, error, "an uncaught exception"));
    try {
      const service = await startService(config, log);
      const stop = (signal: string) => {
        log.info({ signal, drainTimeoutMs: config.worker.drainTimeoutMs }, "stopping: finishing the batch in hand");
        void service.stop().catch(() => undefined); // its failure is service.done's, handled below
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      // A failed batch is a bug (transient failures are naked inside): exit, as every component does.
      await service.done.catch((error: unknown) => exitOnBug(log, error, "the worker loop"));
      log.info("stopped");
      return 0;
    } finally {
      // What a bounded stop left open (a connection to a broker that is away, a ledger request
      // that never answered) must not keep the process: exit once main has set the exit code.
      // Not at once: the embedded engine's thread, still finishing the request it runs (at most
      // its lock wait) before it closes the file, keeps the process alive by design, and
      // process.exit() racing that thread was seen once to end the process by a signal instead
      // of exit 0. A process with nothing left open exits by itself before this timer.
      setTimeout(() => process.exit(), Math.min(config.ledger.requestTimeoutMs, EXIT_GRACE_MAX_MS) + 250).unref();
    }
  },
  setup: async (args, config) => {
    const unknown = args.filter((a) => a !== "--new-deployment");
    if (unknown.length > 0) throw new UsageError(`setup: unknown argument ${unknown[0]}; the only one is --new-deployment`);
    const ledger = await openServiceLedger(config);
    try {
      const broker = await connect(config, "billing-setup");
      try {
        const { deploymentId } = await setup(config, broker, ledger, new AccountRegistry(ledger, 1024), args.includes("--new-deployment"));
        process.stdout.write(`deployment ${deploymentId}\n`);
      } finally {
        await broker.close();
      }
    } finally {
      ledger.destroy();
    }
    process.stdout.write("streams, consumer and system accounts are in place\n");
    return 0;
  },
  send: async (args, config) => {
    const [command, json] = args;
    if (!command || !(command in commandSchemas)) throw new UsageError(`send: unknown command ${command ?? "(none)"}; one of ${Object.keys(commandSchemas).join(", ")}`);
    if (json === undefined) throw new UsageError("send: the command's JSON is missing");
    let input: unknown;
    try {
      input = JSON.parse(json);
    } catch {
      throw new UsageError("send: the command is not JSON");
    }
    const outcome = await withClient(config, (c) => c.send(command as CommandName, input as never, { wait: true }));
    print(outcome.event);
    return outcome.event?.event === "rejected" ? 1 : 0;
  },
  balance: async (args, config) => {
    const [userId, currency] = args;
    if (!userId) throw new UsageError("balance: userId is missing");
    print(await withClient(config, (c) => c.balance(userId, currency)));
    return 0;
  },
  op: async (args, config) => {
    const [operationId] = args;
    if (!operationId) throw new UsageError("op: operationId is missing");
    print(await withClient(config, (c) => c.operation(operationId)));
    return 0;
  },
};

export async function main(argv: string[], extra: Record<string, Verb> = {}): Promise<number> {
  const [verb, ...args] = argv;
  const all = { ...verbs, ...extra };
  const run = verb === undefined ? undefined : all[verb];
  if (!run) {
    process.stderr.write(`${verb === undefined ? "" : `billing: unknown command ${verb}\n`}${USAGE}\n`);
    return 2;
  }
  try {
    return await run(args, loadConfig());
  } catch (error) {
    const known = error instanceof DeploymentError || error instanceof ConfigError || error instanceof LedgerFileError || error instanceof LedgerUnavailableError || error instanceof UsageError || error instanceof InvalidCallError || error instanceof BrokerError || error instanceof BillingClientError;
    // A dependency still away when a one-shot verb gives up (the ledger past its deadline, the
    // broker not answering) is a connection error too: one line, exit 2.
    if (!known && !isConnectionError(error) && !isTransient(error)) throw error;
    process.stderr.write(`billing ${verb}: ${(error as Error).message.split("\n")[0]}\n`);
    return 2;
  }
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return typeof code === "string" && /CONNECTION_REFUSED|ECONNREFUSED|TIMEOUT/i.test(code);
}
