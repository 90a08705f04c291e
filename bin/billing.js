#!/usr/bin/env node
// The `billing` command. The project runs its TypeScript through tsx, so there is no build step
// between `npm ci` and a running service.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
