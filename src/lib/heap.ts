// The one binary heap: the item `before` puts first is on top. The expiry sweeper orders hold
// ids by deadline (MinHeap), the audit's fold orders open holds by deadline then timestamp.
export class Heap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as T;
      if (!this.before(item, p)) break;
      items[i] = p;
      items[parent] = item;
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && this.before(items[l] as T, items[m] as T)) m = l;
      if (r < items.length && this.before(items[r] as T, items[m] as T)) m = r;
      if (m === i) return top;
      const swap = items[i] as T;
      items[i] = items[m] as T;
      items[m] = swap;
      i = m;
    }
  }

  /**
   * Every item `inTop` accepts, without removing any, in no particular order. `inTop` must accept
   * an item's parent whenever it accepts the item (e.g. "due by t" on a deadline heap), so the walk
   * visits only the accepted part of the heap and the children of its edge.
   */
  topWhere(inTop: (item: T) => boolean): T[] {
    const out: T[] = [];
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop() as number;
      const item = this.items[i];
      if (item === undefined || !inTop(item)) continue;
      out.push(item);
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return out;
  }
}

type Keyed<T> = { key: bigint; value: T };

/** Values by a bigint key, the smallest key first. */
export class MinHeap<T> {
  private readonly heap = new Heap<Keyed<T>>((a, b) => a.key < b.key);

  get size(): number {
    return this.heap.size;
  }

  peekKey(): bigint | undefined {
    return this.heap.peek()?.key;
  }

  peek(): T | undefined {
    return this.heap.peek()?.value;
  }

  push(key: bigint, value: T): void {
    this.heap.push({ key, value });
  }

  pop(): T | undefined {
    return this.heap.pop()?.value;
  }
}
