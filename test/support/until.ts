/**
 * Waits in end-to-end tests: polls `fn` until `ok` holds for its value, and
 * fails naming what it waited for and the last value seen (a timed-out run
 * then says where it stood, not only that it took too long).
 */
export async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 250));
    last = await fn();
  }
  return last;
}
