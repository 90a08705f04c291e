import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Integration tests start real nats-server processes and real SQLite files; they share two cores,
// so files run in a few forks, not one per core, and timeouts are generous.
export default defineConfig({
  resolve: {
    // The client is imported by its package name; tests read its sources (as tsc and tsx do through
    // tsconfig's `paths`), not packages/client/dist.
    alias: { "@billing-ledger/client": fileURLToPath(new URL("./packages/client/src/index.ts", import.meta.url)) },
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
