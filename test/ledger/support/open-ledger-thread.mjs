// Opens (creating when new) the ledger named in workerData, as `billing start` does, when the parent says go,
// and answers "ok" or the error's message: many of these at once race on one fresh file.
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { openLedger } = await import("../../../src/ledger/index.ts");
parentPort.once("message", async () => {
  try {
    (await openLedger({ driver: "embedded", path: workerData.file })).destroy();
    parentPort.postMessage("ok");
  } catch (error) {
    parentPort.postMessage(error instanceof Error ? error.message : String(error));
  }
});
parentPort.postMessage("ready");
