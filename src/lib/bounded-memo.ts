// A memo of computed values with a named bound: when it holds `entriesMax` entries it is cleared
// whole before the next one goes in (the cheapest bound: a miss only computes again, and every
// value here can be computed again from its key). Nothing else is kept; the owner says why.
import { assert } from "./assert.ts";

export class BoundedMemo<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly entriesMax: number) {
    assert(
      Number.isSafeInteger(entriesMax) && entriesMax > 0,
      `BoundedMemo: entriesMax is a positive integer, got ${entriesMax}`,
    );
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value remembered for `key`, or `compute()`'s, remembered. */
  get(key: K, compute: () => V): V {
    let value = this.entries.get(key);
    if (value === undefined) {
      value = compute();
      if (this.entries.size >= this.entriesMax) this.entries.clear();
      this.entries.set(key, value);
    }
    return value;
  }
}
