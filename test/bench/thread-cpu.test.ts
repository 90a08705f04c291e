// The bench's split of a service's CPU by thread: a process whose worker thread does the work must
// show it on the busiest other thread, not on the main thread (bench/e2e/cluster.ts ThreadCpuMeter).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { ThreadCpuMeter } from "../../bench/e2e/cluster.ts";

// The worker does a fixed amount of work (CPU time, not wall time: a loaded machine slows it, it
// does not shrink it), then stays alive (a thread that ended is gone from /proc, as the service's
// are not while the bench reads them).
const SPIN_IN_WORKER = `
const { Worker } = require("node:worker_threads");
const w = new Worker(
  "let x = 0; for (let i = 0; i < 100000000; i++) x = (x + i) | 0;" +
    "require('node:worker_threads').parentPort.postMessage(x); setInterval(() => {}, 1000);",
  { eval: true },
);
w.on("message", () => process.stdout.write("done\\n"));
process.stdout.write("ready\\n");
`;

describe("the bench's CPU by thread", () => {
  it("puts a worker thread's spinning on the busiest other thread", async () => {
    const child = spawn(process.execPath, ["-e", SPIN_IN_WORKER], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let out = "";
      child.stdout.setEncoding("utf8");
      const lines = (async () => {
        for await (const chunk of child.stdout) {
          out += chunk as string;
          if (out.includes("done")) return;
        }
      })();
      while (!out.includes("ready")) await new Promise((r) => setTimeout(r, 5));
      const meter = new ThreadCpuMeter([child.pid as number]);
      await lines;
      const t = meter.read();
      expect(t.busiestOther).toBeGreaterThan(0.05);
      expect(t.main).toBeLessThan(t.busiestOther / 2);
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  });
});
