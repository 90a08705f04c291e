// vitest globalSetup: builds dist/ (the service) and packages/client/dist before any test runs.
// Tests that spawn `node bin/billing.js` run the compiled service, as production does; building
// here, once per vitest run, means they always run the code under test, never a stale dist/.
// `tsc -b` is incremental: with nothing changed it takes well under a second.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = fileURLToPath(new URL("../../node_modules/typescript/bin/tsc", import.meta.url));
/** A full build took ~5 s on the 2-core machine; generous for a loaded one. */
const BUILD_TIMEOUT_MS = 120_000;

export default function setup(): void {
  const r = spawnSync(process.execPath, [TSC, "-b", "tsconfig.build.json"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: BUILD_TIMEOUT_MS,
  });
  if (r.status !== 0)
    throw new Error(
      `build failed (tsc -b tsconfig.build.json, status ${r.status}, signal ${r.signal}):\n${r.stdout}${r.stderr}`,
    );
}
