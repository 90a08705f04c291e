#!/usr/bin/env node
// The `billing` command: runs the compiled service in dist/ (built by `npm run build`, which
// `npm ci` runs through `prepare`). Production needs no TypeScript loader; `npm run dev`
// (bin/billing-dev.js) runs the sources through tsx instead.
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    "billing: dist/ is not built; run `npm run build` (npm ci runs it), or `npm run dev` for the sources\n",
  );
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
