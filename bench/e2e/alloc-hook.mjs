// An allocation profile of a service process, for `bench/run.ts compare` (issue 13): every
// allocation V8's sampling heap profiler sees, including objects already collected (what
// `--heap-prof` leaves out, and what garbage collection costs), written when the process exits as
// <ALLOC_PROFILE_DIR>/alloc-<pid>.heapprofile (Chrome DevTools, Memory tab, opens it).
//
//   ALLOC_PROFILE_DIR=/tmp/alloc BENCH_REPS=1 BENCH_COUNT=30000 \
//     BENCH_ROOTS="alloc=$PWD --import=$PWD/bench/e2e/alloc-hook.mjs" npx tsx bench/run.ts compare
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.ALLOC_PROFILE_DIR ?? "/tmp";
const session = new Session();
session.connect();
session.post("HeapProfiler.enable");
session.post("HeapProfiler.startSampling", {
  samplingInterval: 8192,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
process.on("exit", () => {
  // An in-process session answers synchronously, so this runs before the process is gone.
  session.post("HeapProfiler.stopSampling", (error, result) => {
    if (error === null)
      writeFileSync(join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(result.profile));
  });
});
