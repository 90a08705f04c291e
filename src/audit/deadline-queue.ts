// Open holds ordered by deadline (then creation timestamp, the ledger's own tie-break), so the
// audit's fold expires them in the order the ledger does, and can list the ones due by a time.

export type Deadlined = { expiresAt: bigint; timestamp: bigint };

function before(a: Deadlined, b: Deadlined): boolean {
  return a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.timestamp < b.timestamp);
}

export class DeadlineQueue<T extends Deadlined> {
  private readonly items: T[] = [];

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
      if (!before(item, p)) break;
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
      if (l < items.length && before(items[l] as T, items[m] as T)) m = l;
      if (r < items.length && before(items[r] as T, items[m] as T)) m = r;
      if (m === i) return top;
      const swap = items[i] as T;
      items[i] = items[m] as T;
      items[m] = swap;
      i = m;
    }
  }

  /** Every item due at or before `ts`, without removing any (walks only the heap's due part). */
  dueThrough(ts: bigint): T[] {
    const out: T[] = [];
    const stack = [0];
    while (stack.length > 0) {
      const i = stack.pop() as number;
      const item = this.items[i];
      if (item === undefined || item.expiresAt > ts) continue;
      out.push(item);
      stack.push(2 * i + 1, 2 * i + 2);
    }
    return out.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }
}
