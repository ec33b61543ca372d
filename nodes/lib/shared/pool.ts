/** A small worker pool: several requests in flight without a queue library. */

/** Runs `work` over `items` with at most `n` at a time; stops starting new ones after a fatal error and rethrows it. */
export async function pool<T>(items: T[], n: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let fatal: unknown;
  const runners = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length && fatal === undefined) {
      const i = next++;
      try {
        await work(items[i], i);
      } catch (err) {
        if (fatal === undefined) fatal = err;
      }
    }
  });
  await Promise.all(runners);
  if (fatal !== undefined) throw fatal;
}
