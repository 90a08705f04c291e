// A binary min-heap: the smallest key first. Used for hold deadlines.
export class MinHeap<T> {
  private readonly items: Array<{ key: bigint; value: T }> = [];

  get size(): number {
    return this.items.length;
  }

  peekKey(): bigint | undefined {
    return this.items[0]?.key;
  }

  peek(): T | undefined {
    return this.items[0]?.value;
  }

  push(key: bigint, value: T): void {
    const items = this.items;
    items.push({ key, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as { key: bigint }).key <= key) break;
      [items[i], items[parent]] = [items[parent] as { key: bigint; value: T }, items[i] as { key: bigint; value: T }];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top?.value;
    items[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && (items[l] as { key: bigint }).key < (items[m] as { key: bigint }).key) m = l;
      if (r < items.length && (items[r] as { key: bigint }).key < (items[m] as { key: bigint }).key) m = r;
      if (m === i) break;
      [items[i], items[m]] = [items[m] as { key: bigint; value: T }, items[i] as { key: bigint; value: T }];
      i = m;
    }
    return top.value;
  }
}
