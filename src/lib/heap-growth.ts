// How far V8 lets a process's old generation grow past what its last full collection kept alive.
// Left to itself, V8 picks the factor from its collector's speed, up to 4× on a machine with
// memory to spare: a busy service process, whose batches live through several young collections
// and so die in the old generation, sat at ~110 MB of mostly dead old space over a live ~30 MB
// (bench/results/memory-round2.md). A fixed factor bounds that at a few more full collections.
// V8's flags are the process's, so the engine thread's isolate follows the same factor.
import { setFlagsFromString } from "node:v8";
import { HEAP_GROWING_PERCENT_MAX } from "../config/limits.ts";
import { assert } from "./assert.ts";

/**
 * Sets V8's old-generation growing factor to 1 + percent / 100; 0 leaves V8's own choice. Takes
 * effect from the next full collection, so it is set before the service allocates its working set.
 */
export function applyHeapGrowing(percent: number): void {
  assert(
    Number.isSafeInteger(percent) && percent >= 0 && percent <= HEAP_GROWING_PERCENT_MAX,
    `heap growing percent is an integer 0–${HEAP_GROWING_PERCENT_MAX}, got ${percent}`,
  );
  if (percent === 0) return;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
