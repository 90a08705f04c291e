// Proves the client installs and runs as a package in a plain JavaScript project: `npm pack` of the
// packages/client workspace, `npm install` of that tarball into a temp project with no TypeScript,
// then an ES module script (and a CommonJS require) run by plain `node` round-trip a credit against
// a real nats-server and a real service process. The tarball holds only compiled JavaScript,
// declarations and the README, and depends on nothing of the service; a TypeScript caller gets
// its types from those declarations.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type NatsServer } from "../support/nats-server.ts";
import { spawnService, workspace, type ServiceProcess } from "../support/service.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const NPM_TIMEOUT_MS = 120_000;
const SCRIPT_TIMEOUT_MS = 30_000;
/** Only these may be in the tarball: what a consumer runs and reads. */
const PACKED = /^package\/(package\.json|README\.md|CHANGELOG\.md|dist\/[a-z-]+\.(js|d\.ts))$/;

let dir: string;
let tarball: string;
let nats: NatsServer;
let ws: ReturnType<typeof workspace>;
let service: ServiceProcess;

function npm(args: string[], cwd: string): string {
  const r = spawnSync("npm", args, {
    cwd,
    encoding: "utf8",
    timeout: NPM_TIMEOUT_MS,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
  if (r.status !== 0)
    throw new Error(
      `npm ${args.join(" ")} failed (status ${r.status}, signal ${r.signal}):\n${r.stdout}${r.stderr}`,
    );
  return r.stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "billing-client-package-"));
  const packed = JSON.parse(
    npm(["pack", "--workspace", "packages/client", "--pack-destination", dir, "--json"], ROOT),
  ) as Array<{ filename: string }>;
  tarball = join(dir, packed[0]!.filename);
  nats = await startNats();
  ws = workspace();
  service = await spawnService(nats.url, ws.ledgerPath, ws.configPath);
}, 180_000);

afterAll(async () => {
  await service?.kill("SIGTERM");
  await nats?.stop();
  ws?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("client package – installed from its tarball into a plain JavaScript project", () => {
  it("the tarball holds compiled JavaScript, declarations and the README, and depends only on nats.js and zod", () => {
    const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).trim().split("\n");
    expect(files.filter((f) => !PACKED.test(f))).toEqual([]);
    expect(files).toContain("package/dist/index.js");
    expect(files).toContain("package/dist/index.d.ts");
    expect(files).toContain("package/README.md");
    const manifest = JSON.parse(
      execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }),
    ) as Record<string, unknown>;
    expect(Object.keys(manifest["dependencies"] as object).sort()).toEqual([
      "@nats-io/jetstream",
      "@nats-io/transport-node",
      "zod",
    ]);
    expect(manifest["private"]).toBeUndefined();
  });

  it("an ES module script run by node round-trips a credit and reads the balance", () => {
    const project = join(dir, "consumer");
    mkdirSync(project);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }),
    );
    npm(
      ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"],
      project,
    );
    // Nothing of the service came with it.
    expect(() => readFileSync(join(project, "node_modules/billing-ledger/package.json"))).toThrow();
    writeFileSync(
      join(project, "round-trip.mjs"),
      [
        'import { BillingClient } from "@billing-ledger/client";',
        "const billing = await BillingClient.connect({ servers: process.env.NATS_URL, timeoutMs: 20000 });",
        'const { event } = await billing.credit({ userId: "package-alice", amount: "1000" }, { wait: true });',
        'const balance = await billing.balance("package-alice");',
        "console.log(JSON.stringify({ event, balance }));",
        "await billing.close();",
      ].join("\n"),
    );
    const r = spawnSync(process.execPath, ["round-trip.mjs"], {
      cwd: project,
      encoding: "utf8",
      timeout: SCRIPT_TIMEOUT_MS,
      env: { ...process.env, NATS_URL: nats.url },
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const { event, balance } = JSON.parse(r.stdout) as {
      event: Record<string, unknown>;
      balance: Record<string, unknown>;
    };
    expect(event).toMatchObject({
      event: "credited",
      command: "credit",
      userId: "package-alice",
      amount: "1000",
    });
    expect(event["operationId"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(balance).toMatchObject({ userId: "package-alice", posted: "1000", available: "1000" });

    // CommonJS projects load it too (require of an ES module: Node ^20.19 and >= 22.12, the engines range).
    writeFileSync(
      join(project, "require.cjs"),
      'const c = require("@billing-ledger/client"); console.log(typeof c.BillingClient.connect, typeof c.InvalidCallError);',
    );
    const cjs = spawnSync(process.execPath, ["--no-warnings", "require.cjs"], {
      cwd: project,
      encoding: "utf8",
      timeout: SCRIPT_TIMEOUT_MS,
    });
    expect(cjs.stdout.trim()).toBe("function function");
  });

  it("its declarations type-check a TypeScript caller, and a wrong amount is a type error", () => {
    const project = join(dir, "typed-consumer");
    mkdirSync(project);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "typed-consumer", version: "1.0.0", private: true, type: "module" }),
    );
    npm(
      ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"],
      project,
    );
    // The caller's own TypeScript setup: this repository's compiler and Node types (nats.js's
    // declarations need Node's, as in any Node project).
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
          typeRoots: [join(ROOT, "node_modules/@types")],
          types: ["node"],
        },
      }),
    );
    const call = (amount: string) =>
      [
        'import { BillingClient, type Outcome } from "@billing-ledger/client";',
        'const billing = await BillingClient.connect({ servers: "nats://127.0.0.1:4222", timeoutMs: 100 });',
        `const out: Outcome = await billing.credit({ userId: "a", amount: ${amount} }, { wait: true });`,
        "console.log(out.event?.event);",
      ].join("\n");
    // One compiler run for both files (each run loads Node's and nats.js's declarations).
    writeFileSync(join(project, "good.ts"), call("5n"));
    writeFileSync(join(project, "bad.ts"), call("true"));
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project],
      { cwd: project, encoding: "utf8", timeout: NPM_TIMEOUT_MS },
    );
    const errors = r.stdout.trim().split("\n");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.ts\(3,\d+\): error TS2322/);
  });
});
