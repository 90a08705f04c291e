// The engine's side of src/ledger/thread.ts: opens the embedded engine on this worker thread and
// runs the requests posted to it, in order, answering each with its result or its error.
import { parentPort, workerData } from "node:worker_threads";
import { assert } from "../lib/assert.ts";
import { openEmbeddedEngine, type RequestName } from "./embedded.ts";
import { toWire, type Answer, type ThreadReply, type ThreadRequest } from "./thread.ts";
import { buffersOf, packAnswer, unpackInput } from "./wire.ts";

const port = parentPort;
assert(port !== null, "src/ledger/thread-main.ts runs on a worker thread");
const options = workerData as { path: string; lockWaitMs?: number; pageCacheKib?: number };
const post = (reply: ThreadReply, buffers: ArrayBuffer[] = []) => port.postMessage(reply, buffers);

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
    const requests = message.requests.map((r) => ({ ...r, input: unpackInput(r.name, r.input) }));
    void engine.executeAll(requests).then((outcomes) => {
      assert(outcomes.length === requests.length, "one outcome per request");
      const answers = outcomes.map((o, i): Answer => {
        const { id, name } = requests[i] as { id: number; name: RequestName };
        return o.ok
          ? { id, ok: true, value: packAnswer(name, o.value) }
          : { id, ok: false, error: toWire(o.error) };
      });
      post({ kind: "answers", answers }, buffersOf(answers.map((a) => (a.ok ? a.value : null))));
    });
  });
  post({ kind: "ready" });
} catch (error) {
  post({ kind: "failed", error: toWire(error) });
  port.close();
}
