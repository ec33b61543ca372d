/**
 * Flow control between a source that emits a sync run page by page and the
 * sinks that write those pages, inside one Node-RED process.
 *
 * Node-RED delivers messages as fast as they are sent: a source that reads
 * Graph faster than 4me accepts writes would pile the whole tenant up in
 * the sink's queue (memory growing with the tenant). So sinks report here
 * which pages of which run they have received and finished, and the source
 * waits before reading further until every sink that consumes the run is
 * at most `ahead` pages behind.
 *
 * - Keyed by run id (msg.sync.runId), so it works whatever lies between
 *   source and sink (link nodes, switches, other tabs) and for any number
 *   of sinks.
 * - Only our sinks take part; other nodes are not waited for. A run nobody
 *   reports on is never held back.
 * - A sink that stops (redeploy) or fails a page still releases: it reports
 *   the page finished either way, and leaves the run on its last page or
 *   when it closes.
 * - The source never waits longer than `maxWaitMs` for one page (a sink
 *   paused for an hourly budget must not leave a Graph paging link unused
 *   for that long); it then reads on and says so once.
 */

interface Waiter {
  page: number;
  resolve: () => void;
}

interface RunEntry {
  /** Consumer id → last page it finished (pages are finished in order per consumer). */
  consumers: Map<string, number>;
  waiters: Waiter[];
  /** The source has not ended the run yet. */
  open: boolean;
  touched: number;
}

/** Most runs remembered at once (stale ones — a source that died mid-run — are dropped oldest first). */
const MAX_RUNS = 200;

export class RunProgress {
  private readonly runs = new Map<string, RunEntry>();

  private entry(runId: string): RunEntry {
    let e = this.runs.get(runId);
    if (!e) {
      e = { consumers: new Map(), waiters: [], open: false, touched: Date.now() };
      this.runs.set(runId, e);
      if (this.runs.size > MAX_RUNS) {
        const oldest = [...this.runs.entries()].sort((a, b) => a[1].touched - b[1].touched)[0];
        this.drop(oldest[0]);
      }
    }
    e.touched = Date.now();
    return e;
  }

  private drop(runId: string): void {
    const e = this.runs.get(runId);
    if (!e) return;
    this.runs.delete(runId);
    for (const w of e.waiters.splice(0)) w.resolve();
  }

  private settle(runId: string, e: RunEntry): void {
    const slowest = e.consumers.size ? Math.min(...e.consumers.values()) : Infinity;
    const still: Waiter[] = [];
    for (const w of e.waiters) (slowest >= w.page ? w.resolve() : still.push(w));
    e.waiters = still;
    if (!e.open && !e.consumers.size) this.drop(runId);
  }

  // ----------------------------------------------------------------- source

  /** The source starts a run. */
  begin(runId: string): void {
    this.entry(runId).open = true;
  }

  /** The source's run is over (however it ended). */
  end(runId: string): void {
    const e = this.runs.get(runId);
    if (!e) return;
    e.open = false;
    for (const w of e.waiters.splice(0)) w.resolve();
    if (!e.consumers.size) this.runs.delete(runId);
  }

  /** Sinks consuming the run, with the last page each finished (for status and tests). */
  consumers(runId: string): Record<string, number> {
    return Object.fromEntries(this.runs.get(runId)?.consumers ?? []);
  }

  /**
   * Resolves once every sink that consumes `runId` has finished `page`
   * (at once when none does, or page < 1), after `maxWaitMs` at the latest
   * (`timedOut` then), or rejects when `signal` aborts.
   */
  async waitFor(runId: string, page: number, o: { signal?: AbortSignal; maxWaitMs: number }): Promise<{ waitedMs: number; timedOut: boolean }> {
    const started = Date.now();
    const e = this.runs.get(runId);
    if (page < 1 || !e || !e.consumers.size || Math.min(...e.consumers.values()) >= page) return { waitedMs: 0, timedOut: false };
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
    let timedOut = false;
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = { page, resolve: () => finish() };
      const timer = setTimeout(() => {
        timedOut = true;
        finish();
      }, o.maxWaitMs);
      const onAbort = () => {
        cleanup();
        reject(o.signal!.reason ?? new Error('aborted'));
      };
      const cleanup = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        e.waiters = e.waiters.filter((x) => x !== w);
      };
      const finish = () => {
        cleanup();
        resolve();
      };
      o.signal?.addEventListener('abort', onAbort, { once: true });
      e.waiters.push(w);
    });
    return { waitedMs: Date.now() - started, timedOut };
  }

  // ------------------------------------------------------------------ sinks

  /** A sink received page `page` of the run (call at once, before queueing it). */
  received(runId: string, consumer: string, page: number): void {
    const e = this.entry(runId);
    if (!e.consumers.has(consumer)) e.consumers.set(consumer, Math.max(0, page - 1));
  }

  /** A sink is done with page `page` (written or failed). */
  finished(runId: string, consumer: string, page: number): void {
    const e = this.runs.get(runId);
    if (!e || !e.consumers.has(consumer)) return;
    e.consumers.set(consumer, Math.max(e.consumers.get(consumer)!, page));
    this.settle(runId, e);
  }

  /** A sink leaves the run (its last page is done, or it closes). */
  release(runId: string, consumer: string): void {
    const e = this.runs.get(runId);
    if (!e) return;
    e.consumers.delete(consumer);
    this.settle(runId, e);
  }

  /** A sink closes: it leaves every run. */
  releaseAll(consumer: string): void {
    for (const [runId, e] of [...this.runs]) {
      if (!e.consumers.delete(consumer)) continue;
      this.settle(runId, e);
    }
  }
}

/** The one instance of the Node-RED process (every node loads this module from the same place). */
export const runProgress = new RunProgress();
