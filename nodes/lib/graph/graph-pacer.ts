/**
 * Client-side pacing under Intune's Graph limits (per app, per tenant, per
 * 20 s window): a "devices" bucket (managedDevice: 2000 requests, 200
 * writes) and a "compliance" bucket (device configuration, which covers the
 * compliance types: half of that). Each bucket keeps two exact sliding
 * windows (nodes/lib/shared/sliding-window.ts), one for all requests and one
 * for writes; a write counts in both, a $batch counts each inner request.
 *
 * Each request occupies its windows from its send until 20 s after its
 * answer, and goes out only while its units fit: Graph counts a request when
 * it arrives, which lies in between, so no 20 s window of Graph's — however
 * placed — sees more than the limit, and in steady state a long run gets the
 * whole limit but the latency's share. (The token bucket this replaced had
 * to keep about a quarter of the limit back to prove the same bound.)
 *
 * Waiters of a bucket are served in arrival order: a $batch of 20 that waits
 * for room is not overtaken by single requests that would starve it.
 *
 * A 429 with Retry-After pauses the whole bucket until then, so concurrent
 * calls of the same client do not keep hitting a limit Graph has already
 * told us about.
 */
import { setMaxListeners } from 'node:events';
import { abortReason, throwIfAborted } from './graph-errors';
import { raceAbort, sleep } from '../shared/abort';
import { SlidingWindow, type WindowTicket } from '../shared/sliding-window';

/**
 * "directory" is for Entra ID reads (users): not Intune's limits but the
 * identity service's, per app and tenant, in resource units per 10 s
 * (docs/graph-users.md): 3,500 for tenants under 50 users, 5,000 up to 500,
 * 8,000 above. `GET /users/{id}?$select=id` costs 1 unit. We pace at 5,000
 * per 10 s: a tenant under 50 users has too few users for us to ever ask
 * 3,500 of them within an hour (answers are cached that long), and 5,000 is
 * within every larger tenant's limit. Kept separate so that user look-ups
 * never eat the Intune device budget.
 */
export type Bucket = 'devices' | 'compliance' | 'directory';

export interface PacingLimits {
  requestsPer20s?: number;
  writesPer20s?: number;
  complianceRequestsPer20s?: number;
  complianceWritesPer20s?: number;
  /** Directory reads per directory window (half the Intune window: 10 s). */
  directoryRequestsPer10s?: number;
  /**
   * Length of the limit window in ms (default 20 000, as Intune). Only for
   * tests and simulations: the limits above are then per this window, and
   * the directory's per half of it.
   */
  windowMs?: number;
}

export const DEFAULT_LIMITS = {
  requestsPer20s: 2000,
  writesPer20s: 200,
  complianceRequestsPer20s: 1000,
  complianceWritesPer20s: 100,
  directoryRequestsPer10s: 5000,
  windowMs: 20_000,
} as const;

/** Largest number of inner requests in one $batch (Graph's limit). */
export const MAX_BATCH = 20;

export interface AcquireResult {
  /** Time spent waiting for room or for a pause to end, in ms. */
  waitedMs: number;
  /** Call once the answer (or the failure) is in: from then the request leaves the windows after one window length. */
  done(): void;
}

interface BucketWindows {
  requests: SlidingWindow;
  writes: SlidingWindow;
  pausedUntil: number;
  /** The waiter whose turn it is resolves this chain's tail (arrival order). */
  line: Promise<void>;
}

/** The pacer of one Graph client: its buckets, each with a request and a write window. */
export class GraphPacer {
  private readonly buckets: Record<Bucket, BucketWindows>;
  private stopped = false;
  private readonly stopper = new AbortController();

  constructor(limits: PacingLimits = {}, now: () => number = Date.now) {
    const w = limits.windowMs ?? DEFAULT_LIMITS.windowMs;
    if (!Number.isFinite(w) || w < 100) throw new RangeError(`The rate-limit window must be at least 100 ms (got ${w})`);
    const make = (req: number, wr: number, win = w): BucketWindows => ({
      requests: new SlidingWindow(req, win, now),
      writes: new SlidingWindow(wr, win, now),
      pausedUntil: 0,
      line: Promise.resolve(),
    });
    this.buckets = {
      devices: make(limits.requestsPer20s ?? DEFAULT_LIMITS.requestsPer20s, limits.writesPer20s ?? DEFAULT_LIMITS.writesPer20s),
      compliance: make(
        limits.complianceRequestsPer20s ?? DEFAULT_LIMITS.complianceRequestsPer20s,
        limits.complianceWritesPer20s ?? DEFAULT_LIMITS.complianceWritesPer20s,
      ),
      // The connector never writes to the directory; a small write budget keeps the shape uniform.
      directory: make(limits.directoryRequestsPer10s ?? DEFAULT_LIMITS.directoryRequestsPer10s, 100, w / 2),
    };
    this.now = now;
    // Every waiter listens for stop().
    setMaxListeners(0, this.stopper.signal);
  }

  private readonly now: () => number;

  /** The limits of `bucket`, per window. */
  plan(bucket: Bucket): { requests: { limit: number; windowMs: number }; writes: { limit: number; windowMs: number } } {
    const b = this.buckets[bucket];
    return {
      requests: { limit: b.requests.limit, windowMs: b.requests.windowMs },
      writes: { limit: b.writes.limit, windowMs: b.writes.windowMs },
    };
  }

  /** The most inner requests (and writes) one $batch may carry in `bucket`: at most 20, and never above a limit. */
  maxBatch(bucket: Bucket): { requests: number; writes: number } {
    const b = this.buckets[bucket];
    return { requests: Math.min(MAX_BATCH, b.requests.limit), writes: Math.min(MAX_BATCH, b.writes.limit) };
  }

  /**
   * Waits until `requests` requests and `writes` writes of `bucket` fit its
   * windows, then counts them as sent. Rejects with an AbortError within
   * moments of `signal` aborting. The caller must call `done()` of the result
   * when the answer is in.
   */
  async acquire(bucket: Bucket, requests: number, writes: number, signal?: AbortSignal): Promise<AcquireResult> {
    if (this.stopped) throw abortReason(signal);
    throwIfAborted(signal);
    const b = this.buckets[bucket];
    if (requests > b.requests.limit || writes > b.writes.limit) {
      throw new RangeError(`A request of ${requests} (${writes} writes) can never fit a limit of ${b.requests.limit} (${b.writes.limit} writes) per window`);
    }
    const started = Date.now();
    const prev = b.line;
    let release!: () => void;
    b.line = new Promise<void>((r) => (release = r));
    // One signal for the caller's abort and stop(); its listeners go when this wait ends.
    const linked = new AbortController();
    const cut = () => linked.abort();
    signal?.addEventListener('abort', cut, { once: true });
    this.stopper.signal.addEventListener('abort', cut, { once: true });
    const link = linked.signal;
    let ahead = true;
    try {
      await raceAbort(prev, link, () => abortReason(signal));
      ahead = false;
      for (;;) {
        if (link.aborted) throw abortReason(signal);
        const now = this.now();
        if (b.pausedUntil > now) {
          await sleep(b.pausedUntil - now, link, () => abortReason(signal));
          continue;
        }
        const dr = b.requests.delay(requests, now);
        const dw = writes > 0 ? b.writes.delay(writes, now) : 0;
        if (dr === 0 && dw === 0) break;
        if (dr === undefined || dw === undefined) {
          // Room comes only with an answer; a pause may start meanwhile, so look again then.
          const answer = dr === undefined ? b.requests.nextAnswer() : b.writes.nextAnswer();
          await raceAbort(answer, link, () => abortReason(signal));
        } else {
          await sleep(Math.max(dr, dw), link, () => abortReason(signal));
        }
      }
      const tickets: WindowTicket[] = [b.requests.take(requests)];
      if (writes > 0) tickets.push(b.writes.take(writes));
      const windows = [b.requests, b.writes];
      return {
        waitedMs: Date.now() - started,
        done: () => tickets.forEach((t, i) => windows[i].settle(t)),
      };
    } finally {
      signal?.removeEventListener('abort', cut);
      this.stopper.signal.removeEventListener('abort', cut);
      // An aborted waiter leaves the line at once but hands its turn on only
      // when the one before it is done, so the order holds.
      if (ahead) void prev.then(release);
      else release();
    }
  }

  /** Holds back every request of `bucket` for `ms` (after a 429 that said how long). */
  pause(bucket: Bucket, ms: number): void {
    if (ms <= 0) return;
    const b = this.buckets[bucket];
    b.pausedUntil = Math.max(b.pausedUntil, this.now() + ms);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopper.abort();
  }
}
