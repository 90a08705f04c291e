// Proves production runs without a TypeScript toolchain: the compiled service (dist/, built by
// vitest's global setup exactly as `npm run build` does) imports neither tsx nor TypeScript nor any
// .ts file, the ledger's thread has a compiled entry, and bin/billing.js without a dist/ refuses
// in one line with exit code 2 instead of a stack trace. (A fresh clone pruned with
// `npm prune --omit=dev` was run by hand: docs/operations.md.)
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Every module specifier of a static or dynamic import, or an export-from. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;
const DEV_ONLY = /^(tsx|typescript|vitest)(\/|$)|\.m?ts$/;

function javascriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? javascriptFiles(join(dir, e.name))
      : e.name.endsWith(".js")
        ? [join(dir, e.name)]
        : [],
  );
}

describe("compiled service – runs with no TypeScript toolchain", () => {
  it("no compiled module imports tsx, TypeScript or a .ts file, and the ledger thread's entry is compiled", () => {
    const files = [
      ...javascriptFiles(join(ROOT, "dist")),
      ...javascriptFiles(join(ROOT, "packages/client/dist")),
    ];
    expect(files.length).toBeGreaterThan(20);
    const offending = files.flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(SPECIFIER)]
        .map((m) => m[1]!)
        .filter((s) => DEV_ONLY.test(s))
        .map((s) => `${file}: ${s}`),
    );
    expect(offending).toEqual([]);
    expect(existsSync(join(ROOT, "dist/ledger/thread-main.js"))).toBe(true);
    expect(existsSync(join(ROOT, "dist/cli/main.js"))).toBe(true);
  });

  it("bin/billing.js without a built dist/ exits 2 with one line naming the fix", () => {
    const dir = mkdtempSync(join(tmpdir(), "billing-no-dist-"));
    try {
      mkdirSync(join(dir, "bin"));
      copyFileSync(join(ROOT, "bin/billing.js"), join(dir, "bin/billing.js"));
      const r = spawnSync(process.execPath, [join(dir, "bin/billing.js"), "start"], {
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.status).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        "billing: dist/ is not built; run `npm run build` (npm ci runs it), or `npm run dev` for the sources\n",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
