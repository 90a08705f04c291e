// Processes started at the same moment on a ledger file that does not exist yet: one creates it,
// the others wait for it and open it. None may take the half-made file for a foreign database
// (bench, 2026-12-08: one of two services started together exited with "not a ledger database
// (application_id 0)": it read the header before the creator's commit and the schema after it).
import path from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempDir } from "./support/drivers.ts";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir("ledger-first-open-");
});
afterEach(() => tmp.remove());

const ROUNDS = 25;
const OPENERS = 4;

function opener(file: string): Promise<{ worker: Worker; answer: Promise<string> }> {
  const worker = new Worker(new URL("./support/open-ledger-thread.mjs", import.meta.url), {
    workerData: { file },
  });
  return new Promise((resolve, reject) => {
    worker.once("error", reject);
    worker.once("message", (ready: string) => {
      expect(ready).toBe("ready");
      const answer = new Promise<string>((done) => worker.once("message", done));
      resolve({ worker, answer });
    });
  });
}

describe("ledger file – first open by several processes at once", () => {
  it("every opener of a new file gets the ledger, whoever creates it", async () => {
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const file = path.join(tmp.dir, `ledger-${round}.db`);
      const openers = await Promise.all(Array.from({ length: OPENERS }, () => opener(file)));
      try {
        for (const o of openers) o.worker.postMessage("go");
        for (const answer of await Promise.all(openers.map((o) => o.answer)))
          if (answer !== "ok") failures.push(`round ${round}: ${answer}`);
      } finally {
        await Promise.all(openers.map((o) => o.worker.terminate()));
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
