import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Integration tests start real nats-server processes and real SQLite files; they share two cores,
// so files run in a few forks, not one per core, and timeouts are generous.
export default defineConfig({
  resolve: {
    // The client is imported by its package name; tests read its sources (as tsc and tsx do through
    // tsconfig's `paths`), not packages/client/dist.
    // Exact matches: the service's domain imports the subpath `@billing-ledger/client/schemas` too.
    alias: [
      { find: /^@billing-ledger\/client$/, replacement: fileURLToPath(new URL("./packages/client/src/index.ts", import.meta.url)) },
      { find: /^@billing-ledger\/client\/schemas$/, replacement: fileURLToPath(new URL("./packages/client/src/schemas.ts", import.meta.url)) },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Builds dist/ once per run: spawned `node bin/billing.js` processes run the compiled service.
    globalSetup: ["test/support/build.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
