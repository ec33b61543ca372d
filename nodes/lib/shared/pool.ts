/** A small worker pool: several requests in flight without a queue library. */

/**
 * Runs `work` over `items` in order with at most `n` holding a slot at a
 * time; stops starting new ones after a fatal error and rethrows it once
 * every started one has ended.
 *
 * A worker holds its slot until it ends or calls `release()`, whichever is
 * first. Why release: a 4me upload's share of the limit is its request; the
 * asynchronous result it then waits for (half a second or more) is fetched
 * from a pre-signed link outside the GraphQL limits, so holding the slot
 * through that wait would leave the limit idle (fourme-ci-sync.ts).
 */
export async function pool<T>(items: T[], n: number, work: (item: T, i: number, release: () => void) => Promise<void>): Promise<void> {
  const limit = Math.max(1, n);
  let free = limit;
  const waiting: Array<() => void> = [];
  const take = () => (free > 0 ? (free--, Promise.resolve()) : new Promise<void>((resolve) => waiting.push(resolve)));
  const give = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  let fatal: unknown;
  const running: Array<Promise<void>> = [];
  for (let i = 0; i < items.length; i++) {
    await take();
    if (fatal !== undefined) {
      give();
      break;
    }
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      give();
    };
    running.push(
      (async () => {
        try {
          await work(items[i], i, release);
        } catch (err) {
          if (fatal === undefined) fatal = err;
        } finally {
          release();
        }
      })(),
    );
  }
  await Promise.all(running);
  if (fatal !== undefined) throw fatal;
}
