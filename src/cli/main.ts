// The `billing` command: one entry per verb, each with its usage (printed by `billing help`,
// `billing <verb> --help` or -h, never starting anything) and its run. Errors are mapped to exit
// codes once, here (src/cli/exit-code.ts): 0 done, 1 rejected or a finding, 2 usage or
// configuration, 3 unavailable (broker down, no service answered, a timeout with the command
// stored); one line on stderr, prefixed once with `billing <verb>:`.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import {
  BillingClient,
  commandSchemas,
  operationIdSchema,
  validate,
  type BillingEvent,
  type CommandName,
} from "@billing-ledger/client";
import { CLIENT_CLOSE_MAX_MS, EXIT_GRACE_MAX_MS } from "../config/limits.ts";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { applyHeapGrowing } from "../lib/heap-growth.ts";
import { createLogger } from "../lib/log.ts";
import { AccountRegistry } from "../ledger-facts/account-registry.ts";
import { connect, openServiceLedger, setup, startService } from "../service.ts";
import { EXIT_BUG, exitOnBug } from "../lib/failure.ts";
import { onStopSignals } from "../lib/stop-signals.ts";
import { authConnectionOptions } from "../broker/connection.ts";
import { authOf } from "../config/auth.ts";
import { dlq, DLQ_USAGE } from "../dlq/cli.ts";
import { AUDIT_USAGE, auditVerb } from "../audit/cli.ts";
import { financeVerbs } from "../finance/cli.ts";
import { EXIT_DONE, EXIT_REJECTED, EXIT_USAGE, exitCodeOf, UsageError } from "./exit-code.ts";

export { UsageError } from "./exit-code.ts";

/** A verb: its usage text (lines starting `  billing …`) and what it does; returns the exit code. */
export type VerbEntry = { usage: string; run(args: string[], config: Config): Promise<number> };

const COMMANDS = Object.keys(commandSchemas).join(" ");

async function withClient<T>(
  config: Config,
  use: (client: BillingClient) => Promise<T>,
): Promise<T> {
  const auth = await authConnectionOptions(authOf(config));
  const client = await BillingClient.connect({
    servers: config.nats.servers,
    name: "billing-cli",
    timeoutMs: config.nats.requestTimeoutMs,
    maxReconnectAttempts: 0,
    eventsStream: config.streams.events,
    commandsStream: config.streams.commands,
    commandsConsumer: config.consumer.name,
    ...auth,
  });
  try {
    return await use(client);
  } finally {
    // The answer (or the error) is what matters; a connection that cannot drain must not hide it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.close().catch(() => undefined),
      new Promise((r) => (timer = setTimeout(r, CLIENT_CLOSE_MAX_MS))),
    ]);
    clearTimeout(timer);
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** An id argument, checked before any connection. */
function uuidArgument(name: string, value: string | undefined): string {
  if (!value) throw new UsageError(`${name} is missing`);
  if (!operationIdSchema.safeParse(value).success)
    throw new UsageError(`${name} must be a UUID, not ${JSON.stringify(value.slice(0, 64))}`);
  return value;
}

function noMoreArguments(extra: string[]): void {
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0] ?? ""}`);
}

/**
 * The command's JSON text: the argument itself, `-` for stdin, `@path` for a file. Bounded by
 * worker.payloadBytesMax (what the service takes at most), so nothing unbounded is read.
 */
async function commandText(source: string, limitBytes: number): Promise<string> {
  const over = (what: string, size: string) =>
    new UsageError(
      `${what} (${size} bytes) is over the limit of ${limitBytes} bytes per command (worker.payloadBytesMax)`,
    );
  if (source === "-") {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      size += (chunk as Buffer).length;
      if (size > limitBytes) throw over("the command on stdin", `more than ${limitBytes}`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString("utf8");
  }
  if (source.startsWith("@")) return fileText(source.slice(1), limitBytes, over);
  const size = Buffer.byteLength(source);
  if (size > limitBytes) throw over("the command", String(size));
  return source;
}

/** A file's text, reading at most limitBytes + 1 bytes (a FIFO or a growing file has no honest size). */
function fileText(
  path: string,
  limitBytes: number,
  over: (what: string, size: string) => UsageError,
): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw new UsageError(
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  try {
    const size = fstatSync(fd).size;
    if (size > limitBytes) throw over(path, String(size));
    const buffer = Buffer.alloc(limitBytes + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) return buffer.subarray(0, length).toString("utf8");
      length += read;
      if (length > limitBytes) throw over(path, `more than ${limitBytes}`);
    }
  } finally {
    closeSync(fd);
  }
}

const send: VerbEntry = {
  usage: `  billing send <command> <json|-|@file> publish a command, wait for its event, print it
                                         (command: ${COMMANDS};
                                         the JSON inline, - from stdin, @file from a file;
                                         exit 1 if rejected or a conflict, 3 if no event came)`,
  run: async (args, config) => {
    const [command, source, ...extra] = args;
    if (command === undefined || !(command in commandSchemas))
      throw new UsageError(`unknown command ${command ?? "(none)"}; one of ${COMMANDS}`);
    if (source === undefined)
      throw new UsageError("the command's JSON is missing ('<json>', - for stdin, or @file)");
    noMoreArguments(extra);
    const text = await commandText(source, config.worker.payloadBytesMax);
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch (error) {
      throw new UsageError(`the command is not JSON: ${(error as Error).message}`);
    }
    validate(command as CommandName, input); // a bad command is refused before any connection
    const outcome = await withClient(config, (c) =>
      c.send(command as CommandName, input as never, { wait: true }),
    );
    print(outcome.event);
    const event = outcome.event as BillingEvent;
    if (event.event !== "rejected") return EXIT_DONE;
    process.stderr.write(
      `billing send: rejected: ${String(event["reason"])}: ${String(event["detail"] ?? "")}\n`,
    );
    return EXIT_REJECTED;
  },
};

const balance: VerbEntry = {
  usage: "  billing balance <userId> [currency]    print a user's balance",
  run: async (args, config) => {
    const [userId, currency, ...extra] = args;
    if (!userId) throw new UsageError("userId is missing");
    noMoreArguments(extra);
    print(await withClient(config, (c) => c.balance(userId, currency)));
    return EXIT_DONE;
  },
};

const op: VerbEntry = {
  usage:
    "  billing op <operationId>               print an operation's status and event (a hold's: its status now)",
  run: async (args, config) => {
    const [given, ...extra] = args;
    const operationId = uuidArgument("operationId", given);
    noMoreArguments(extra);
    print(
      await withClient(config, async (c) => {
        const answer = await c.operation(operationId);
        const event = answer["event"] as BillingEvent | undefined;
        // A held event stays as it was published; what became of the hold since is the hold query's.
        if (event?.event !== "held") return answer;
        const hold = await c.holdStatus(operationId);
        return { ...answer, hold: { status: hold["status"] } };
      }),
    );
    return EXIT_DONE;
  },
};

const hold: VerbEntry = {
  usage:
    "  billing hold <holdId>                  print a hold's status now (held, captured, released, expired, unknown)",
  run: async (args, config) => {
    const [given, ...extra] = args;
    const holdId = uuidArgument("holdId", given);
    noMoreArguments(extra);
    print(await withClient(config, (c) => c.holdStatus(holdId)));
    return EXIT_DONE;
  },
};

const verbs: Record<string, VerbEntry> = {
  start: {
    usage: "  billing start                          run one service process (same as npm start)",
    run: async (args, config) => {
      noMoreArguments(args);
      applyHeapGrowing(config.runtime.heapGrowingPercent);
      const log = createLogger(config.log.level);
      // The last line of defence: whatever escaped every component's own handling is a bug; it is
      // logged (one fatal line) and ends the process, never silently.
      process.on("unhandledRejection", (error) =>
        exitOnBug(log, error, "an unhandled promise rejection"),
      );
      process.on("uncaughtException", (error) => exitOnBug(log, error, "an uncaught exception"));
      try {
        const service = await startService(config, log);
        const stop = (signal: string) => {
          log.info(
            { signal, drainTimeoutMs: config.worker.drainTimeoutMs },
            "stopping: finishing the batch in hand",
          );
          void service.stop().catch(() => undefined); // its failure is service.done's, handled below
        };
        onStopSignals(stop, (signal) =>
          log.info(
            { signal },
            "stopping already; a repeated signal changes nothing (worker.drainTimeoutMs bounds the stop)",
          ),
        );
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
        setTimeout(
          () => process.exit(),
          Math.min(config.ledger.requestTimeoutMs, EXIT_GRACE_MAX_MS) + 250,
        ).unref();
      }
    },
  },
  setup: {
    usage: `  billing setup [--new-deployment]       create or update streams, consumer and system accounts
                                         (--new-deployment: bind fresh streams as one more deployment
                                         of a shared ledger, ledger.shared)`,
    run: async (args, config) => {
      const unknown = args.filter((a) => a !== "--new-deployment");
      if (unknown.length > 0)
        throw new UsageError(`unknown argument ${unknown[0]}; the only one is --new-deployment`);
      const ledger = await openServiceLedger(config);
      try {
        const broker = await connect(config, "billing-setup");
        try {
          const { deploymentId } = await setup(
            config,
            broker,
            ledger,
            new AccountRegistry(ledger, 1024),
            args.includes("--new-deployment"),
          );
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
  },
  send,
  balance,
  op,
  hold,
  audit: { usage: AUDIT_USAGE, run: auditVerb },
  dlq: { usage: DLQ_USAGE, run: dlq },
  ...financeVerbs,
};

/** A verb's usage as listed: without its own "usage:" heading, indented by two spaces. */
function usageText(entry: VerbEntry): string {
  const text = entry.usage.replace(/^usage:[ \t]*\n?/, "");
  return text.startsWith("  ")
    ? text
    : text
        .split("\n")
        .map((line) => `  ${line}`)
        .join("\n");
}

function usageOf(all: Record<string, VerbEntry>): string {
  return `usage:\n${Object.values(all).map(usageText).join("\n")}
  billing help [verb]                    this text, or one verb's (also: billing <verb> --help)
exit codes: 0 done, 1 rejected or a finding (a conflict too), 2 usage or configuration,
            3 unavailable (broker down, no service answered, timeout with the command stored)`;
}

const HELP = new Set(["help", "--help", "-h"]);

/** Runs one verb; `extra` adds verbs (e.g. finance's) beside the built-in ones. */
export async function main(argv: string[], extra: Record<string, VerbEntry> = {}): Promise<number> {
  const [verb, ...args] = argv;
  const all: Record<string, VerbEntry> = { ...verbs, ...extra };
  if (verb === undefined) {
    process.stderr.write(`${usageOf(all)}\n`);
    return EXIT_USAGE;
  }
  if (HELP.has(verb)) {
    const topic = args[0] === undefined ? undefined : all[args[0]];
    if (args[0] !== undefined && topic === undefined) {
      process.stderr.write(`billing help: unknown command ${args[0]}\n${usageOf(all)}\n`);
      return EXIT_USAGE;
    }
    process.stdout.write(`${topic === undefined ? usageOf(all) : `usage:\n${usageText(topic)}`}\n`);
    return EXIT_DONE;
  }
  const entry = all[verb];
  if (entry === undefined) {
    process.stderr.write(`billing: unknown command ${verb}\n${usageOf(all)}\n`);
    return EXIT_USAGE;
  }
  // Asked for help, a verb only prints its usage: `billing start --help` starts nothing.
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`usage:\n${usageText(entry)}\n`);
    return EXIT_DONE;
  }
  try {
    return await entry.run(args, loadConfig());
  } catch (error) {
    const code = exitCodeOf(error);
    if (code === null) {
      // Nobody named this error: a bug. Its stack is the report; its exit code is none of the above.
      process.stderr.write(
        `billing ${verb}: bug: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      return EXIT_BUG;
    }
    process.stderr.write(`billing ${verb}: ${(error as Error).message.split("\n")[0]}\n`);
    return code;
  }
}
