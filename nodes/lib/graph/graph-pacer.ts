/**
 * Client-side pacing under Intune's Graph limits (per app, per tenant, per
 * 20 s window): a "devices" bucket (managedDevice: 2000 requests, 200
 * writes) and a "compliance" bucket (device configuration, which covers the
 * compliance types: half of that). Each bucket is two bottleneck limiters,
 * one for all requests and one for writes; a write takes a token from both.
 *
 * Why the numbers are a true bound over ANY 20 s window, not just over
 * fixed ones: a limiter is a token bucket that starts full with B tokens
 * (burst) and gets `a` tokens every I ms, never above B (bottleneck's
 * reservoir + reservoirIncreaseAmount/Interval/Maximum). A request takes its
 * token when it is about to be sent. In any window of length W, the tokens
 * spent are at most what was in the bucket at the window's start (≤ B) plus
 * what was added during it. Bottleneck adds only when at least I ms have
 * passed since the last addition, so a closed window of length W sees at
 * most floor(W/I)+1 additions. We choose B, a and I so that
 *     B + (floor(W/I) + 1) · a ≤ limit
 * (with the defaults: B = 500, a = 75, I = 1001 ms → 500 + 20·75 = 2000).
 * which keeps every window, however placed, under the limit. (A plain
 * "refill to the limit every 20 s" reservoir does not: a burst at the end of
 * one period plus a burst at the start of the next puts 2× the limit into
 * one 20 s span.) The remaining imprecision is network latency between
 * taking the token and Graph counting the request.
 *
 * A 429 with Retry-After pauses the whole bucket until then, so concurrent
 * calls of the same client do not keep hitting a limit Graph has already
 * told us about.
 */
import Bottleneck from 'bottleneck';
import { abortReason, throwIfAborted } from './graph-errors';
import { raceAbort, sleep } from '../shared/abort';

/**
 * "directory" is for Entra ID reads (users): not Intune's limits but
 * Microsoft Graph's identity service, which allows far more (thousands of
 * resource units per 10 s per app and tenant); kept separate so that user
 * look-ups never eat the Intune device budget.
 */
export type Bucket = 'devices' | 'compliance' | 'directory';

export interface PacingLimits {
  requestsPer20s?: number;
  writesPer20s?: number;
  complianceRequestsPer20s?: number;
  complianceWritesPer20s?: number;
  directoryRequestsPer20s?: number;
  /**
   * Length of the limit window in ms (default 20 000, as Intune). Only for
   * tests and simulations: the limits above are then per this window.
   */
  windowMs?: number;
}

export const DEFAULT_LIMITS = {
  requestsPer20s: 2000,
  writesPer20s: 200,
  complianceRequestsPer20s: 1000,
  complianceWritesPer20s: 100,
  directoryRequestsPer20s: 6000,
  windowMs: 20_000,
} as const;

/** Largest number of inner requests in one $batch (Graph's limit). */
export const MAX_BATCH = 20;

export interface BucketPlan {
  limit: number;
  windowMs: number;
  /** Burst capacity B: tokens available at once. */
  burst: number;
  /** Tokens added per step (a). */
  increaseAmount: number;
  /** Step length I in ms. */
  increaseIntervalMs: number;
}

/**
 * B, a, I for `limit` requests per `windowMs`. About a quarter of the limit
 * is burst (but at least one full $batch when the limit allows), the rest is
 * spread evenly over up to 20 steps per window, so a long sync runs at
 * roughly 3/4 of the limit and never above it.
 */
export function planBucket(limit: number, windowMs: number = DEFAULT_LIMITS.windowMs): BucketPlan {
  if (!Number.isFinite(limit) || limit < 2) throw new RangeError(`A Graph rate limit must be at least 2 requests per window (got ${limit})`);
  if (!Number.isFinite(windowMs) || windowMs < 100) throw new RangeError(`The rate-limit window must be at least 100 ms (got ${windowMs})`);
  limit = Math.floor(limit);
  // burst ≤ limit/2, so at least half of the limit is left to spread (rest ≥ 1).
  const burst = Math.max(Math.floor(limit / 4), Math.min(MAX_BATCH, Math.floor(limit / 2)), 1);
  const rest = limit - burst;
  // Steps per window: as many as possible up to 20 (smooth), but no more
  // than hand out at least 90 % of `rest` (a = floor(rest/steps) ≥ 1 loses the remainder).
  let steps = Math.min(20, rest);
  while (steps > 1 && Math.floor(rest / steps) * steps < 0.9 * rest) steps--;
  // I slightly longer than W/steps, so that floor(W/I) + 1 ≤ steps.
  const increaseIntervalMs = Math.floor(windowMs / steps) + 1;
  const increaseAmount = Math.floor(rest / steps);
  const plan = { limit, windowMs, burst, increaseAmount, increaseIntervalMs };
  if (worstWindow(plan) > limit) throw new Error(`internal: pacing plan exceeds the limit (${JSON.stringify(plan)})`);
  return plan;
}

/** The most tokens a plan can hand out within any window of its length. */
export function worstWindow(p: BucketPlan): number {
  return p.burst + (Math.floor(p.windowMs / p.increaseIntervalMs) + 1) * p.increaseAmount;
}

/** One token bucket on top of bottleneck, with abortable waits. */
class TokenBucket {
  readonly limiter: Bottleneck;
  constructor(readonly plan: BucketPlan) {
    this.limiter = new Bottleneck({
      reservoir: plan.burst,
      reservoirIncreaseAmount: plan.increaseAmount,
      reservoirIncreaseInterval: plan.increaseIntervalMs,
      reservoirIncreaseMaximum: plan.burst,
      // Local-store option missing from bottleneck's typings: how often the
      // reservoir timer ticks (default 250 ms). Never slower than a step, so
      // small test windows refill at the planned rate.
      heartbeatInterval: Math.max(10, Math.min(250, plan.increaseIntervalMs)),
    } as Bottleneck.ConstructorOptions);
    // Bottleneck reports job failures as events; ours cannot fail, but keep
    // an "error" listener so nothing is ever thrown from its emitter.
    this.limiter.on('error', () => undefined);
  }

  /**
   * Takes `weight` tokens, waiting for them in bottleneck's queue. Bottleneck
   * cannot remove a queued job, so an aborted wait leaves a job behind that
   * gives its tokens straight back when it reaches the front.
   */
  async take(weight: number, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    if (weight <= 0) return;
    if (weight > this.plan.burst) {
      throw new RangeError(`A request of weight ${weight} can never fit a bucket of ${this.plan.burst} tokens`);
    }
    let abandoned = false;
    const job = this.limiter.schedule({ weight }, async () => {
      if (abandoned) await this.refund(weight);
    });
    job.catch(() => undefined); // rejected only by stop(); the waiter below has gone by then
    if (!signal) return job;
    // Aborted while queued: the job, when it runs, gives its tokens back.
    await raceAbort(job, signal, (s) => {
      abandoned = true;
      return abortReason(s);
    });
  }

  /** Gives back tokens that were taken but not used, never above the burst size. */
  async refund(weight: number): Promise<void> {
    const cur = (await this.limiter.currentReservoir()) ?? 0;
    const back = Math.min(weight, this.plan.burst - cur);
    if (back > 0) await this.limiter.incrementReservoir(back);
  }

  stop(): void {
    this.limiter.stop({ dropWaitingJobs: true }).catch(() => undefined);
    this.limiter.disconnect().catch(() => undefined);
  }
}

export interface AcquireResult {
  /** Time spent waiting for tokens or for a pause to end, in ms. */
  waitedMs: number;
}

/** The pacer of one Graph client: two buckets, each with request and write tokens. */
export class GraphPacer {
  private readonly buckets: Record<Bucket, { requests: TokenBucket; writes: TokenBucket; pausedUntil: number }>;
  private stopped = false;

  constructor(limits: PacingLimits = {}) {
    const w = limits.windowMs ?? DEFAULT_LIMITS.windowMs;
    const make = (req: number, wr: number) => ({
      requests: new TokenBucket(planBucket(req, w)),
      writes: new TokenBucket(planBucket(wr, w)),
      pausedUntil: 0,
    });
    this.buckets = {
      devices: make(limits.requestsPer20s ?? DEFAULT_LIMITS.requestsPer20s, limits.writesPer20s ?? DEFAULT_LIMITS.writesPer20s),
      compliance: make(
        limits.complianceRequestsPer20s ?? DEFAULT_LIMITS.complianceRequestsPer20s,
        limits.complianceWritesPer20s ?? DEFAULT_LIMITS.complianceWritesPer20s,
      ),
      // The connector never writes to the directory; a small write budget keeps the shape uniform.
      directory: make(limits.directoryRequestsPer20s ?? DEFAULT_LIMITS.directoryRequestsPer20s, 100),
    };
  }

  plan(bucket: Bucket): { requests: BucketPlan; writes: BucketPlan } {
    return { requests: this.buckets[bucket].requests.plan, writes: this.buckets[bucket].writes.plan };
  }

  /** The most inner requests (and writes) one $batch may carry in `bucket`: at most 20, and never above a burst. */
  maxBatch(bucket: Bucket): { requests: number; writes: number } {
    const b = this.buckets[bucket];
    return { requests: Math.min(MAX_BATCH, b.requests.plan.burst), writes: Math.min(MAX_BATCH, b.writes.plan.burst) };
  }

  /**
   * Waits until `requests` request tokens and `writes` write tokens of
   * `bucket` are free, then takes them. Rejects with an AbortError within
   * moments of `signal` aborting.
   */
  async acquire(bucket: Bucket, requests: number, writes: number, signal?: AbortSignal): Promise<AcquireResult> {
    if (this.stopped) throw abortReason(signal);
    const started = Date.now();
    const b = this.buckets[bucket];
    for (;;) {
      const pause = b.pausedUntil - Date.now();
      if (pause <= 0) break;
      await sleep(pause, signal, abortReason);
    }
    let tookWrites = false;
    try {
      if (writes > 0) {
        await b.writes.take(writes, signal);
        tookWrites = true;
      }
      await b.requests.take(requests, signal);
    } catch (e) {
      if (tookWrites) b.writes.refund(writes).catch(() => undefined);
      throw e;
    }
    return { waitedMs: Date.now() - started };
  }

  /** Holds back every request of `bucket` for `ms` (after a 429 that said how long). */
  pause(bucket: Bucket, ms: number): void {
    if (ms <= 0) return;
    const b = this.buckets[bucket];
    b.pausedUntil = Math.max(b.pausedUntil, Date.now() + ms);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const b of Object.values(this.buckets)) {
      b.requests.stop();
      b.writes.stop();
    }
  }
}
