// `billing dlq list | replay | purge`: the operator's tools for dead letters.
// Exit codes, as for every verb: 0 done, 1 refused (nothing changed; the line says why), 2 bad
// usage (one line). Broker failures are thrown as BrokerError; `billing` prints them as one line
// and exits 3 when the broker is away, 2 when it refuses the configuration (src/cli/exit-code.ts).
import { connectBroker, type Broker } from "../broker/connection.ts";
import { authOf } from "../config/auth.ts";
import type { Config } from "../config/schema.ts";
import { deadLetterReasons, isDeadLetterReason, letterSubject, lettersFilter } from "./layout.ts";
import { payloadBase64, payloadText, type Letter, type ReplayRecord } from "./letter.ts";
import { purgeBefore } from "./purge.ts";
import { readLetters, readReplayRecords } from "./reader.ts";
import { replayLetter } from "./replay.ts";

// Where a verb writes and what it reads from its environment; tests pass their own.
export interface DlqIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

export const processIo: DlqIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
};

export const DLQ_USAGE = `usage:
  billing dlq list [--reason R] [--limit N] [--json]   dead letters, oldest first, with their replays
                                                       (R: ${deadLetterReasons.join(", ")})
  billing dlq replay <sequence> [--by NAME] [--same-id] [--force]
                                                       publish a letter's command again (once)
  billing dlq purge --before <ISO time>                remove dead letters stored before that time`;

type Verb = (args: string[], config: Config, io?: DlqIo) => Promise<number>;

class Usage extends Error {
  override name = "Usage";
}

// `billing dlq <list|replay|purge> …`: the one verb to register with the CLI.
export const dlq: Verb = async (args, config, io = processIo) => {
  const [sub, ...rest] = args;
  const verb = sub === undefined ? undefined : subVerbs[sub];
  if (verb === undefined) {
    io.err(
      `billing dlq: ${sub === undefined ? "a subcommand is missing" : `unknown subcommand ${sub}`}; one of ${Object.keys(subVerbs).join(", ")}\n`,
    );
    return 2;
  }
  return verb(rest, config, io);
};

export const dlqList: Verb = (args, config, io = processIo) =>
  usage("list", io, async () => {
    const flags = parseFlags(args, { reason: "value", limit: "value", json: "switch" });
    if (flags.positional.length > 0)
      throw new Usage(`unexpected argument ${flags.positional[0] ?? ""}`);
    const reason = flags.values.get("reason");
    if (reason !== undefined && !isDeadLetterReason(reason))
      throw new Usage(`--reason must be one of ${deadLetterReasons.join(", ")}`);
    const limit = parseCount(
      flags.values.get("limit") ?? String(config.dlq.listMax),
      config.dlq.listMax,
      "--limit",
    );
    return () =>
      withBroker(config, async (b) => {
        const filter = reason === undefined ? lettersFilter : letterSubject(reason);
        const { letters, more } = await readLetters(b.jsm, config.streams.dlq, filter, limit);
        const { records, truncated } = await readReplayRecords(
          b.jsm,
          config.streams.dlq,
          new Set(letters.map((l) => l.sequence)),
        );
        const views = letters.map((l) => letterView(l, records.get(l.sequence) ?? []));
        if (flags.switches.has("json")) io.out(`${JSON.stringify(views, null, 2)}\n`);
        else
          io.out(
            views.map(formatLetter).join("") +
              `${letters.length} dead letter${letters.length === 1 ? "" : "s"}${more ? " shown; more exist (use --limit or --reason)" : ""}\n`,
          );
        if (more && flags.switches.has("json"))
          io.err(`billing dlq list: more than ${limit} letters; only the oldest ${limit} shown\n`);
        if (truncated) io.err("billing dlq list: replay history truncated\n");
        return 0;
      });
  });

export const dlqReplay: Verb = (args, config, io = processIo) =>
  usage("replay", io, async () => {
    const flags = parseFlags(args, { by: "value", "same-id": "switch", force: "switch" });
    const [sequence, ...extra] = flags.positional;
    if (sequence === undefined) throw new Usage("the letter's sequence is missing");
    if (extra.length > 0) throw new Usage(`unexpected argument ${extra[0] ?? ""}`);
    const letterSequence = parseCount(sequence, Number.MAX_SAFE_INTEGER, "sequence");
    const by = flags.values.get("by") ?? io.env["USER"] ?? "";
    if (by.trim() === "" || /[\r\n]/.test(by))
      throw new Usage("who replays is unknown: pass --by NAME or set USER");
    return () =>
      withBroker(config, async (b) => {
        const deps = {
          js: b.js,
          jsm: b.jsm,
          dlqStream: config.streams.dlq,
          commandsStream: config.streams.commands,
          publishTimeoutMs: config.worker.publishTimeoutMs,
        };
        const at = new Date();
        const result = await replayLetter(deps, {
          letterSequence,
          by: by.trim(),
          at,
          force: flags.switches.has("force"),
          sameId: flags.switches.has("same-id"),
        });
        if (result.kind === "refused") {
          io.err(`billing dlq replay: ${result.why}\n`);
          return 1;
        }
        const l = result.letter;
        const stored = result.duplicate
          ? `already stored as command #${result.commandSequence} (same msgId inside the duplicate window)`
          : `stored as command #${result.commandSequence}`;
        io.out(
          `replayed letter #${l.sequence} (${l.reason}) to ${l.originalSubject}: ${stored}; by ${by.trim()} at ${at.toISOString()}\n`,
        );
        if (result.recordError !== null)
          io.err(
            `billing dlq replay: the command is out but its record was not written: ${result.recordError}\n`,
          );
        return 0;
      });
  });

export const dlqPurge: Verb = (args, config, io = processIo) =>
  usage("purge", io, async () => {
    const flags = parseFlags(args, { before: "value" });
    if (flags.positional.length > 0)
      throw new Usage(`unexpected argument ${flags.positional[0] ?? ""}`);
    const text = flags.values.get("before");
    if (text === undefined) throw new Usage("--before <ISO time> is required");
    const before = parseIsoTime(text);
    return () =>
      withBroker(config, async (b) => {
        const r = await purgeBefore(b.jsm, config.streams.dlq, before);
        io.out(
          `purged ${r.letters} dead letter${r.letters === 1 ? "" : "s"} stored before ${before.toISOString()} (and ${r.records} replay record${r.records === 1 ? "" : "s"})\n`,
        );
        return 0;
      });
  });

const subVerbs: Record<string, Verb> = { list: dlqList, replay: dlqReplay, purge: dlqPurge };

// Parsing happens first, without a connection; a Usage error becomes one line and exit 2.
async function usage(
  sub: string,
  io: DlqIo,
  parse: () => Promise<() => Promise<number>>,
): Promise<number> {
  let run: () => Promise<number>;
  try {
    run = await parse();
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    io.err(`billing dlq ${sub}: ${err.message}\n`);
    return 2;
  }
  return run();
}

async function withBroker<T>(config: Config, use: (b: Broker) => Promise<T>): Promise<T> {
  const auth = authOf(config);
  const broker = await connectBroker({
    servers: config.nats.servers,
    name: "billing-dlq",
    connectTimeoutMs: config.nats.connectTimeoutMs,
    apiTimeoutMs: config.nats.requestTimeoutMs,
    ...(auth ? { auth } : {}),
  });
  try {
    return await use(broker);
  } finally {
    await broker.close();
  }
}

type FlagKinds = Record<string, "value" | "switch">;
interface Flags {
  values: Map<string, string>;
  switches: Set<string>;
  positional: string[];
}

// --name value, --name=value, --switch; each flag at most once; "--" ends the flags.
export function parseFlags(args: readonly string[], kinds: FlagKinds): Flags {
  const flags: Flags = { values: new Map(), switches: new Set(), positional: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") {
      flags.positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      flags.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = kinds[name];
    if (kind === undefined) throw new Usage(`unknown option --${name}`);
    if (flags.values.has(name) || flags.switches.has(name))
      throw new Usage(`--${name} given twice`);
    if (kind === "switch") {
      if (eq !== -1) throw new Usage(`--${name} takes no value`);
      flags.switches.add(name);
      continue;
    }
    const value = eq !== -1 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === "") throw new Usage(`--${name} needs a value`);
    flags.values.set(name, value);
  }
  return flags;
}

function parseCount(text: string, max: number, what: string): number {
  const n = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > max)
    throw new Usage(`${what} must be an integer from 1 to ${max}, got "${text}"`);
  return n;
}

// A date (UTC midnight) or a date and time with a zone: a time without a zone would silently mean
// the local zone of whoever runs the command.
const isoTime = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

export function parseIsoTime(text: string): Date {
  const ms = isoTime.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms))
    throw new Usage(
      `--before must be an ISO 8601 date or time with a zone (2024-05-01 or 2024-05-01T12:00:00Z), got "${text}"`,
    );
  return new Date(ms);
}

export interface LetterView {
  sequence: number;
  time: string;
  reason: string;
  originalSubject: string;
  originalSequence: number | null;
  originalMsgId: string | null;
  error: string;
  payload: string | null; // the payload as UTF-8 text, or null when it is not UTF-8
  payloadBase64: string;
  replays: Array<Omit<ReplayRecord, "letterSequence">>;
}

function letterView(l: Letter, records: readonly ReplayRecord[]): LetterView {
  return {
    sequence: l.sequence,
    time: l.time.toISOString(),
    reason: l.reason,
    originalSubject: l.originalSubject,
    originalSequence: l.originalSequence,
    originalMsgId: l.originalMsgId,
    error: l.error,
    payload: payloadText(l.data),
    payloadBase64: payloadBase64(l.data),
    replays: records.map(({ letterSequence: _letter, ...r }) => r),
  };
}

function formatLetter(v: LetterView): string {
  const original = `${v.originalSubject}${v.originalSequence === null ? "" : ` #${v.originalSequence}`}`;
  const msgId = v.originalMsgId === null ? "" : `  msgId ${v.originalMsgId}`;
  const payload = v.payload === null ? `base64 ${v.payloadBase64}` : JSON.stringify(v.payload);
  const replays = v.replays.map((r) => {
    const command = r.commandSequence === null ? "" : ` as command #${r.commandSequence}`;
    return `    replay: ${r.status}${command} by ${r.by} at ${r.at}${r.sameId ? " (same msgId)" : ""}${r.error === null ? "" : `: ${r.error}`}\n`;
  });
  return `#${v.sequence}  ${v.time}  ${v.reason}  ${original}${msgId}\n    error: ${v.error}\n    payload: ${payload}\n${replays.join("")}`;
}
