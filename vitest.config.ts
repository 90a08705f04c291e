import { defineConfig } from "vitest/config";

// Integration tests start real nats-server processes and real SQLite files; they share two cores,
// so files run in a few forks, not one per core, and timeouts are generous.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
