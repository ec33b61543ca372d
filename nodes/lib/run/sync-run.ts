/**
 * The sync-run envelope (DESIGN.md "Sync run") for any source node: run ids,
 * page messages with `msg.sync`, the last page carrying the stats, one
 * summary per run, at most one run at a time, and cancellation.
 *
 * Paging: a page message is held back until the next non-empty page (or the
 * end) is known, so that the final message can say `last: true` without an
 * extra empty message. Pages whose items were all filtered out are not sent;
 * a run that passes nothing still sends one empty last page. At most one
 * page is held, so memory stays bounded by a page.
 *
 * Endings:
 * - completed: last page `last: true`, `stats` without `aborted`.
 * - cancelled (`cancel()`) or failed: the held page goes out as the last one
 *   with `stats.aborted: true` (and `stats.error` on failure), so sinks can
 *   close the run, and know not to reconcile removals.
 * - stopped (`stop()`, for a node's close handler): nothing more is sent; the
 *   flow is being torn down.
 * Every ending but `stop()` sends the summary.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { PageMessage, RunResult, RunStats, RunSummary, SummaryMessage, SyncEnvelope, SyncMode } from '../contracts';
import type { StatsSink } from '../graph/graph-client';

/** Counters the run's work keeps up to date (so they are right even when it fails). */
export interface RunCounts {
  items: number;
  skipped: Record<string, number>;
  pages: number;
  details?: Record<string, unknown>;
}

export interface RunnerOptions<T> {
  topic: string;
  /** Prefix of run ids, e.g. "devices". */
  idPrefix: string;
  send(msg: PageMessage<T>): void;
  sendSummary(msg: SummaryMessage): void;
  now?: () => number;
  /**
   * Pages of exactly this many items (the last one: the rest): items handed
   * over are gathered until a page is full. Default: one message per
   * `page()` call. A source whose filters drop items from the pages it
   * reads sends full pages this way, so sinks that write in fixed batches
   * (4me: 100 CIs per call) get no part-empty batches.
   */
  fillPagesTo?: number;
}

/** Graph request counters of a run, observable (for "throttled, waiting" status dots). */
type RequestCounter = 'requests' | 'retries' | 'throttled' | 'throttleWaitMs' | 'batches' | 'pacingWaitMs';

export class RunRequestStats implements StatsSink {
  private v: Record<RequestCounter, number> = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
  constructor(private readonly onChange?: (field: RequestCounter, value: number, delta: number) => void) {}
  private put(k: RequestCounter, n: number) {
    const d = n - this.v[k];
    this.v[k] = n;
    if (d) this.onChange?.(k, n, d);
  }
  get requests() { return this.v.requests; }
  set requests(n: number) { this.put('requests', n); }
  get retries() { return this.v.retries; }
  set retries(n: number) { this.put('retries', n); }
  get throttled() { return this.v.throttled; }
  set throttled(n: number) { this.put('throttled', n); }
  get throttleWaitMs() { return this.v.throttleWaitMs; }
  set throttleWaitMs(n: number) { this.put('throttleWaitMs', n); }
  get batches() { return this.v.batches; }
  set batches(n: number) { this.put('batches', n); }
  get pacingWaitMs() { return this.v.pacingWaitMs; }
  set pacingWaitMs(n: number) { this.put('pacingWaitMs', n); }
}

export function newRunId(prefix: string, now = Date.now()): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${prefix}-${stamp}-${randomBytes(3).toString('hex')}`;
}

type AbortKind = 'stop' | 'cancel';

/**
 * One run in progress. Events: `page` (n, when a page message is sent),
 * `throttled` (waitMs: Graph answered 429 and the client waits), `resumed`
 * (the next request after a throttling wait went out).
 */
export class ActiveRun<T> extends EventEmitter {
  readonly runId: string;
  readonly startedAt: string;
  readonly startedMs: number;
  readonly signal: AbortSignal;
  readonly requestStats: RunRequestStats;
  readonly counts: RunCounts = { items: 0, skipped: {}, pages: 0 };
  /** The mode the run really has; the work may turn an incremental into a full run before the first page. */
  mode: SyncMode;
  private held?: T[];
  private sentPages = 0;
  private emitted = 0;
  private waitingThrottle = false;
  private readonly controller = new AbortController();
  private abortKind?: AbortKind;

  constructor(
    private readonly opts: RunnerOptions<T>,
    readonly instance: string,
    readonly requestedMode: SyncMode,
    readonly trigger: string,
  ) {
    super();
    const now = (opts.now ?? Date.now)();
    this.runId = newRunId(opts.idPrefix, now);
    this.startedMs = now;
    this.startedAt = new Date(now).toISOString();
    this.mode = requestedMode;
    this.signal = this.controller.signal;
    this.requestStats = new RunRequestStats((field, _value, delta) => {
      if (field === 'throttleWaitMs' && delta > 0) {
        this.waitingThrottle = true;
        this.emit('throttled', delta);
      } else if (field === 'requests' && this.waitingThrottle) {
        this.waitingThrottle = false;
        this.emit('resumed');
      }
    });
  }

  get aborted(): boolean {
    return this.signal.aborted;
  }

  /** Page messages sent so far (the page held back for the `last` flag not counted). */
  get pagesSent(): number {
    return this.sentPages;
  }

  /** Why the run was aborted, if it was. */
  get abortedBy(): AbortKind | undefined {
    return this.abortKind;
  }

  private firstPageHints?: Pick<SyncEnvelope, 'userPrincipalNames'>;

  /** What the first page's `msg.sync` tells the sinks about the whole run (see SyncEnvelope); ignored once it is sent. */
  hintFirstPage(hints: Pick<SyncEnvelope, 'userPrincipalNames'>): void {
    if (this.sentPages === 0) this.firstPageHints = hints;
  }

  /** Hands over one page of items (gathered into full pages with `fillPagesTo`); empty pages are dropped. */
  page(items: T[]): void {
    if (this.aborted) return;
    if (!items.length) return;
    const fill = this.opts.fillPagesTo;
    if (!fill || fill < 1) {
      if (this.held) this.flush(false);
      this.held = items;
      return;
    }
    // The page held back is sent only when more items follow (it is then not the last).
    let rest = items;
    while (rest.length) {
      const held = this.held ?? [];
      if (held.length >= fill) {
        this.flush(false);
        continue;
      }
      const room = fill - held.length;
      this.held = held.length ? held.concat(rest.slice(0, room)) : rest.slice(0, room);
      rest = rest.length > room ? rest.slice(room) : [];
    }
  }

  abort(kind: AbortKind, reason: string): void {
    if (this.aborted) return;
    this.abortKind = kind;
    this.controller.abort(Object.assign(new Error(reason), { name: 'AbortError' }));
  }

  /** @internal */
  finish(result: RunResult, error?: string): RunSummary {
    const quiet = this.abortKind === 'stop';
    const now = (this.opts.now ?? Date.now)();
    const rs = this.requestStats;
    const stats: RunStats = {
      items: this.counts.items,
      emitted: this.emitted + (quiet ? 0 : (this.held?.length ?? 0)),
      skipped: { ...this.counts.skipped },
      pages: this.counts.pages,
      requests: rs.requests,
      retries: rs.retries,
      throttled: rs.throttled,
      throttleWaitMs: rs.throttleWaitMs,
      durationMs: Math.max(0, now - this.startedMs),
    };
    if (result !== 'completed') stats.aborted = true;
    if (error) stats.error = error;
    if (!quiet) this.flush(true, stats);
    const summary: RunSummary = {
      runId: this.runId,
      instance: this.instance,
      mode: this.mode,
      requestedMode: this.requestedMode,
      trigger: this.trigger,
      startedAt: this.startedAt,
      finishedAt: new Date(now).toISOString(),
      result,
      stats,
    };
    if (this.counts.details) summary.details = this.counts.details;
    if (!quiet) this.opts.sendSummary({ topic: `${this.opts.topic}/summary`, payload: summary });
    return summary;
  }

  private flush(last: boolean, stats?: RunStats): void {
    const items = this.held ?? [];
    this.held = undefined;
    this.sentPages++;
    this.emitted += items.length;
    const sync: SyncEnvelope = {
      runId: this.runId,
      instance: this.instance,
      mode: this.mode,
      page: this.sentPages,
      last,
      startedAt: this.startedAt,
    };
    if (last && stats) sync.stats = stats;
    if (this.sentPages === 1 && this.firstPageHints) Object.assign(sync, this.firstPageHints);
    this.firstPageHints = undefined;
    this.opts.send({ topic: this.opts.topic, payload: items, sync });
    this.emit('page', this.sentPages);
  }
}

/** Runs at most one run at a time. */
export class SyncRunner<T> {
  private current?: { run: ActiveRun<T>; finished: Promise<RunSummary> };

  constructor(private readonly opts: RunnerOptions<T>) {}

  get active(): ActiveRun<T> | undefined {
    return this.current?.run;
  }

  get busy(): boolean {
    return !!this.current;
  }

  /**
   * Starts a run, or returns undefined when one is running (the caller warns).
   * `work` reads and hands pages to `run.page()`, keeping `run.counts` up to
   * date; it should stop promptly when `run.signal` aborts. The promise
   * resolves with the summary of every ending; it rejects never: a failure
   * is a summary with result 'failed' and `stats.error`.
   */
  start(
    mode: SyncMode,
    instance: string,
    trigger: string,
    work: (run: ActiveRun<T>) => Promise<void>,
    prepare?: (run: ActiveRun<T>) => void,
  ): { run: ActiveRun<T>; finished: Promise<RunSummary & { cause?: unknown }> } | undefined {
    if (this.current) return undefined;
    const run = new ActiveRun<T>(this.opts, instance, mode, trigger);
    prepare?.(run);
    const finished = (async () => {
      try {
        await work(run);
        if (run.aborted) return run.finish('aborted', run.abortedBy === 'cancel' ? 'The run was cancelled' : undefined);
        return run.finish('completed');
      } catch (err) {
        if (run.aborted) return run.finish('aborted', run.abortedBy === 'cancel' ? 'The run was cancelled' : undefined);
        const message = (err as Error)?.message ?? String(err);
        return Object.assign(run.finish('failed', message), { cause: err });
      } finally {
        this.current = undefined;
      }
    })();
    this.current = { run, finished };
    return { run, finished };
  }

  /** Cancels the running run (sinks are told it was aborted); resolves with its summary. */
  async cancel(reason = 'cancelled'): Promise<RunSummary | undefined> {
    const c = this.current;
    if (!c) return undefined;
    c.run.abort('cancel', reason);
    return c.finished;
  }

  /** For close handlers: aborts the running run without sending anything more and waits for it to end. */
  async stop(reason = 'The node was stopped'): Promise<void> {
    const c = this.current;
    if (!c) return;
    c.run.abort('stop', reason);
    await c.finished;
  }
}
