// Concurrency with a bound: many independent requests (direct gets, message gets) in flight at once,
// never more than a named limit.

/** Runs `work` over `items` with at most `limit` in flight; answers in order. */
export async function mapBounded<T, R>(
  items: ReadonlyArray<T>,
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
