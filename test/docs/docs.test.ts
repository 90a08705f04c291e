// Proves the documentation names only what exists, with the values the code has:
// - every relative link and every backticked file path in README.md and docs/*.md resolves to a
//   file inside the repository (a path outside it, e.g. a notes directory on one machine, fails);
// - every configuration key in backticks (`worker.batchMessagesMax`, or a bare `holdGraceMs`)
//   is a key of the schema (src/config/schema.ts);
// - a value stated right after a key, in the forms the docs use ("`key` (10 s)", "`key` (default
//   9464)", "`key`, default 2 minutes", "`key` (4 KiB by default)", "`key` ≤ 1637"), equals the
//   default in config/default.json, or the schema's bound for ≤ / ≥;
// - the nats-server version the README names is the one docker-compose.yml runs.
// The checks read the files as they are; a second set of cases feeds each check a sentence that
// is wrong on purpose, so a check that silently matches nothing fails too.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { configSchema } from "../../src/config/schema.ts";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
/** Generated from the schema itself (a test in test/config checks it is current). */
const GENERATED = new Set(["docs/config-reference.md"]);

type Leaf = { path: string; min?: number; max?: number; value: unknown };
type JsonSchema = { properties?: Record<string, JsonSchema>; minimum?: number; maximum?: number };

function leaves(): Map<string, Leaf> {
  const defaults = JSON.parse(readFileSync(join(ROOT, "config/default.json"), "utf8")) as unknown;
  const out = new Map<string, Leaf>();
  const walk = (s: JsonSchema, value: unknown, path: string[]): void => {
    if (path.length > 0) {
      const leaf: Leaf = { path: path.join("."), value };
      if (s.minimum !== undefined) leaf.min = s.minimum;
      if (s.maximum !== undefined) leaf.max = s.maximum;
      out.set(leaf.path, leaf);
    }
    for (const [key, child] of Object.entries(s.properties ?? {})) {
      walk(
        child,
        value !== null && typeof value === "object"
          ? (value as Record<string, unknown>)[key]
          : undefined,
        [...path, key],
      );
    }
  };
  walk(
    z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema,
    defaults,
    [],
  );
  return out;
}
const KEYS = leaves();
const TOP = new Set([...KEYS.keys()].filter((k) => !k.includes(".")));

/** Every file of the repository (its own sources and docs), as paths from the root. */
function repositoryFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    // Not the repository's own: installed packages, git's store, ledgers and bench fixtures made at run time.
    if (
      e.name === "node_modules" ||
      e.name === "data" ||
      (e.name.startsWith(".") && e.name !== ".ci")
    )
      return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? repositoryFiles(path) : [relative(ROOT, path)];
  });
}
const FILES = repositoryFiles();

/** Bounds named in code rather than config (src/config/limits.ts): a bare name there is not a config key. */
const CODE_LIMITS = new Set(
  FILES.filter((f) => /^src\/.*limits\.ts$/.test(f)).flatMap((f) =>
    [
      ...readFileSync(join(ROOT, f), "utf8").matchAll(
        /^\s*(?:export const )?([a-z][A-Za-z0-9]*)(?::| =)/gm,
      ),
    ].map((m) => m[1] as string),
  ),
);

/** A backticked name that is a config key: dotted under a top-level key, or a bare leaf name with a unit or limit suffix. */
function keyOf(name: string): { key: Leaf | null; problem?: string } | null {
  if (
    /^[a-z][A-Za-z0-9]*(\.[a-zA-Z][A-Za-z0-9]*)+$/.test(name) &&
    TOP.has(name.split(".")[0] as string)
  ) {
    const key = KEYS.get(name);
    return key === undefined
      ? { key: null, problem: `\`${name}\` is not a configuration key` }
      : { key };
  }
  if (
    /^[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*(Ms|Max|Bytes|Seconds)$/.test(name) &&
    !CODE_LIMITS.has(name)
  ) {
    const found = [...KEYS.values()].filter((k) => k.path.endsWith(`.${name}`) || k.path === name);
    if (found.length === 1) return { key: found[0] as Leaf };
    if (found.length > 1)
      return {
        key: null,
        problem: `\`${name}\` is ambiguous (${found.map((k) => k.path).join(", ")}): name the full key next to a value`,
      };
  }
  return null;
}

const WORDS: Record<string, number> = { one: 1, two: 2, three: 3, four: 4, five: 5, ten: 10 };
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  second: 1_000,
  seconds: 1_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
};
const UNIT_BYTES: Record<string, number> = { B: 1, bytes: 1, KiB: 1_024, MiB: 1_048_576 };
const UNIT_SECONDS: Record<string, number> = Object.fromEntries(
  Object.entries(UNIT_MS)
    .filter(([u]) => u !== "ms")
    .map(([u, v]) => [u, v / 1_000]),
);

/** The stated quantity in the key's own unit (ms for …Ms, bytes for …Bytes…, seconds for …Seconds…); null when not understood. */
function quantity(key: string, amount: string, unit: string | undefined): number | boolean | null {
  if (amount === "on" || amount === "off") return amount === "on";
  const n = WORDS[amount] ?? Number(amount.replaceAll(",", "").replaceAll("_", ""));
  if (!Number.isFinite(n)) return null;
  if (unit === undefined || unit === "") return n;
  const table = /Ms$/.test(key)
    ? UNIT_MS
    : /Bytes/.test(key)
      ? UNIT_BYTES
      : /Seconds/.test(key)
        ? UNIT_SECONDS
        : null;
  const factor = table?.[unit];
  return factor === undefined ? null : n * factor;
}

const VALUE_AFTER =
  /^(?: \(|, )(?:default |by default )?((?:[0-9][0-9,_]*(?:\.[0-9]+)?)|one|two|three|four|five|ten|on|off)(?: ?(ms|s|seconds?|min|minutes?|h|hours?|days?|KiB|MiB|B|bytes)\b)?/;
const BOUND_AFTER = /^ ?(≤|≥|<=|>=) ?([0-9][0-9,_]*)\b/;

/** Every problem with the configuration keys named in one document's text. */
export function keyProblems(text: string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(/`([^`\n]+)`/g)) {
    const span = m[1] as string;
    const after = text.slice((m.index ?? 0) + m[0].length, (m.index ?? 0) + m[0].length + 40);
    // A bound written inside the span: `batchMessagesMax ≤ 1637`.
    const inner = /^([A-Za-z.]+) ?(≤|≥) ?([0-9][0-9,_]*)$/.exec(span);
    const name = inner?.[1] ?? span;
    const found = keyOf(name);
    if (found === null) continue;
    const bound = inner ? [inner[2], inner[3]] : BOUND_AFTER.exec(after)?.slice(1);
    const v = VALUE_AFTER.exec(after);
    if (found.key === null) {
      // An ambiguous bare name is a problem only where a value is stated next to it.
      if (
        found.problem !== undefined &&
        (!found.problem.includes("ambiguous") || bound !== undefined || v !== null)
      )
        problems.push(found.problem);
      continue;
    }
    const key = found.key;
    if (bound !== undefined && bound[1] !== undefined) {
      const stated = Number(bound[1].replaceAll(",", "").replaceAll("_", ""));
      const real = bound[0] === "≤" || bound[0] === "<=" ? key.max : key.min;
      if (real !== stated)
        problems.push(`\`${key.path}\` ${bound[0]} ${stated}, but the schema says ${String(real)}`);
      continue;
    }
    if (v === null || v[1] === undefined) continue;
    const stated = quantity(key.path, v[1], v[2]);
    if (stated === null) continue;
    if (stated !== key.value)
      problems.push(`\`${key.path}\`${v[0]}: the default is ${JSON.stringify(key.value)}`);
  }
  return problems;
}

/** Every link or backticked file path in `file` that does not resolve to a file inside the repository. */
export function pathProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  const targets = [
    ...[...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => ({ target: m[1] as string, link: true })),
    ...[...text.matchAll(/`([^`\s*]+\.(?:md|ts|mjs|js|json|ya?ml|svg))`/g)].map((m) => ({
      target: m[1] as string,
      link: false,
    })),
  ];
  for (const { target, link } of targets) {
    if (/^(https?:|mailto:|#)/.test(target)) continue;
    const path = target.split("#")[0] as string;
    if (path.startsWith("/") || path.startsWith("~")) {
      problems.push(`${target}: an absolute path, outside the repository`);
      continue;
    }
    // A link is relative to its document. A path in backticks names a file from the root or from
    // the directory the text is about (`fixtures/x.json`, `resolve.ts`): some file must end so.
    const linked = resolve(dirname(join(ROOT, file)), path);
    if (path.split("/").includes("..") && relative(ROOT, linked).startsWith("..")) {
      problems.push(`${target}: outside the repository`);
      continue;
    }
    const found = link
      ? existsSync(linked) && statSync(linked).isFile()
      : FILES.some((f) => f === path || f.endsWith(`/${path}`) || relative(ROOT, linked) === f);
    if (!found) problems.push(`${target}: no such file in the repository`);
  }
  return problems;
}

describe("docs – names and values match the repository", () => {
  it.each(DOCS)("%s: every link and file path resolves inside the repository", (file) => {
    expect(pathProblems(file, readFileSync(join(ROOT, file), "utf8"))).toEqual([]);
  });

  it.each(DOCS.filter((f) => !GENERATED.has(f)))(
    "%s: every configuration key exists, with the default and limit the schema has",
    (file) => {
      expect(keyProblems(readFileSync(join(ROOT, file), "utf8"))).toEqual([]);
    },
  );

  it("the nats-server version the README names is the one docker-compose.yml runs", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const named = new Set(
      [...readme.matchAll(/nats-server[`)]? \(?v?([0-9]+\.[0-9]+\.[0-9]+)/g)].map((m) => m[1]),
    );
    expect([...named]).toHaveLength(1);
    const image = /image: nats:([^\s]+)/.exec(
      readFileSync(join(ROOT, "docker-compose.yml"), "utf8"),
    )?.[1];
    expect(image?.split("-")[0]).toBe([...named][0]);
  });
});

describe("docs – the checks catch what they are for", () => {
  it("a link or a path outside the repository, and a missing file, are reported", () => {
    expect(
      pathProblems(
        "docs/x.md",
        "see [notes](../../shared/notes.md) and `/work/shared/spec/contract.md`",
      ),
    ).toHaveLength(2);
    expect(pathProblems("docs/x.md", "see [gone](gone.md) and `src/nothing-here.ts`")).toHaveLength(
      2,
    );
    expect(
      pathProblems("docs/x.md", "see [ops](operations.md) and `src/config/schema.ts`"),
    ).toEqual([]);
  });

  it("an unknown key, a wrong default and a wrong limit are reported", () => {
    expect(keyProblems("`worker.batchSize` (100)")).toHaveLength(1);
    expect(keyProblems("`streams.duplicateWindowMs`, default one day")).toHaveLength(1);
    expect(keyProblems("`consumer.ackWaitMs` (30 s) and `ops.port` (default 9464)")).toEqual([]);
    expect(keyProblems("`batchMessagesMax ≤ 2047`")).toHaveLength(1);
    expect(keyProblems("`worker.batchMessagesMax` ≤ 1637")).toEqual([]);
    expect(keyProblems("`requestTimeoutMs` (10 s)")).toHaveLength(1); // nats. or ledger.?
    expect(keyProblems("`requestTimeoutMs` bounds it")).toEqual([]);
  });
});
