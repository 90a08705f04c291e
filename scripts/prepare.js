// `npm ci` / `npm install` run this (package.json "prepare"): it builds dist/ and
// packages/client/dist with TypeScript. A production install (`npm ci --omit=dev`, e.g. the second
// stage of an image that copied dist/ from a build stage) has no TypeScript: then it builds
// nothing and says so, instead of failing the install; bin/billing.js refuses to start with one
// line if dist/ is missing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
const built =
  existsSync(new URL("../dist/cli/main.js", import.meta.url)) &&
  existsSync(new URL("../packages/client/dist/index.js", import.meta.url));

if (!existsSync(tsc)) {
  process.stderr.write(
    built
      ? "prepare: TypeScript is not installed (a production install); using the dist/ already there\n"
      : "prepare: TypeScript is not installed (a production install) and dist/ is not built: build where dev dependencies are installed (npm ci && npm run build) and bring dist/ and packages/client/dist/ along\n",
  );
  process.exit(0);
}
/** A full build takes seconds; a build that hangs must not hang the install. */
const BUILD_TIMEOUT_MS = 600_000;
const r = spawnSync(process.execPath, [tsc, "-b", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
  timeout: BUILD_TIMEOUT_MS,
});
process.exit(r.status ?? 1);
