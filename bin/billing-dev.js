#!/usr/bin/env node
// The `billing` command from the TypeScript sources, for development (`npm run dev`, or
// `node bin/billing-dev.js <verb>`): no build step, edits take effect at the next start. tsx is a
// devDependency; production runs bin/billing.js (compiled). The project's tsconfig is named so
// its `paths` (the client package read from packages/client/src) apply from any working directory.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
