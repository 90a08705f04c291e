// A ledger thread entry that starts like the real one, then ends the thread on its first request:
// what a crash of the engine's thread looks like to the client.
import { parentPort } from "node:worker_threads";

parentPort.once("message", () => process.exit(7));
parentPort.postMessage({ kind: "ready" });
