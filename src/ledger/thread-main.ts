// The engine's side of src/ledger/thread.ts: opens the embedded engine on this worker thread and
// runs the requests posted to it, in order, answering each with its result or its error.
import { parentPort, workerData } from "node:worker_threads";
import { assert } from "../lib/assert.ts";
import { openEmbeddedEngine } from "./embedded.ts";
import { toWire, type Answer, type ThreadReply, type ThreadRequest } from "./thread.ts";

const port = parentPort;
assert(port !== null, "src/ledger/thread-main.ts runs on a worker thread");
const options = workerData as { path: string; lockWaitMs?: number; pageCacheKib?: number };
const post = (reply: ThreadReply) => port.postMessage(reply);

try {
  const engine = await openEmbeddedEngine({
    path: options.path,
    ...(options.lockWaitMs !== undefined ? { lockWaitMs: options.lockWaitMs } : {}),
    ...(options.pageCacheKib !== undefined ? { pageCacheKib: options.pageCacheKib } : {}),
  });
  port.on("message", (message: ThreadRequest) => {
    if (message.kind === "close") {
      engine.destroy();
      port.close();
      return;
    }
    const { requests } = message;
    void engine.executeAll(requests).then((outcomes) => {
      assert(outcomes.length === requests.length, "one outcome per request");
      post({
        kind: "answers",
        answers: outcomes.map((o, i): Answer => {
          const id = (requests[i] as { id: number }).id;
          return o.ok
            ? { id, ok: true, value: o.value }
            : { id, ok: false, error: toWire(o.error) };
        }),
      });
    });
  });
  post({ kind: "ready" });
} catch (error) {
  post({ kind: "failed", error: toWire(error) });
  port.close();
}
