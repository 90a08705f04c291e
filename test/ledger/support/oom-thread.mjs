// A ledger thread entry that starts like the real one, then keeps everything it allocates on its
// first request until its isolate reaches the heap limits the client gave the thread.
import { parentPort } from "node:worker_threads";

const kept = [];
parentPort.once("message", () => {
  for (;;) kept.push(new Array(1024).fill({ kept: kept.length }));
});
parentPort.postMessage({ kind: "ready" });
