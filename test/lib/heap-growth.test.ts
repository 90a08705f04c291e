// Proves the heap growing setting of `billing start` (src/lib/heap-growth.ts): a value outside
// 0–HEAP_GROWING_PERCENT_MAX is a programming error, and the V8 flag it sets exists in the Node
// that runs the tests (v8.setFlagsFromString ignores an unknown flag without a word, so a Node
// upgrade that dropped it would otherwise go unnoticed). Its effect on memory is measured in
// bench/results/memory-round2.md, not here.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { HEAP_GROWING_PERCENT_MAX } from "../../src/config/limits.ts";
import { AssertionError } from "../../src/lib/assert.ts";
import { applyHeapGrowing } from "../../src/lib/heap-growth.ts";

describe("heap growth", () => {
  it("a percent outside 0–HEAP_GROWING_PERCENT_MAX or not an integer is refused", () => {
    for (const percent of [-1, HEAP_GROWING_PERCENT_MAX + 1, 50.5, Number.NaN])
      expect(() => applyHeapGrowing(percent)).toThrow(AssertionError);
    expect(() => applyHeapGrowing(0)).not.toThrow();
  });

  it("the V8 flag it sets is one this Node knows", () => {
    const options = spawnSync(process.execPath, ["--v8-options"], { encoding: "utf8" });
    expect(options.status).toBe(0);
    expect(options.stdout).toContain("--heap-growing-percent");
  });
});
