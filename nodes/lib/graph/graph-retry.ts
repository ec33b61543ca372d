/**
 * Retry policy of the Graph client: what may be repeated, how long to wait,
 * and when to give up. Pure functions, so the policy
 * can be tested without a server.
 *
 * Choices:
 * - 429 (throttled) and 503 (unavailable) mean "not processed": Graph
 *   rejected the request before doing anything, so every method, POST
 *   actions included, may be sent again.
 * - 504 (gateway timeout) and a connection reset or timeout after the
 *   request left us mean "unknown": the request may have been carried out.
 *   Only requests that are safe to repeat (GET, HEAD, and a $batch made of
 *   GETs only) are retried then. A wipe or retire is never sent twice on a
 *   guess; the caller gets a clear error and decides.
 * - A connection that was refused, or a host name that could not be
 *   resolved for the moment, never carried the request: retried for every
 *   method.
 * - `Retry-After` (seconds or an HTTP date) is obeyed as given. Without it
 *   we back off exponentially with full jitter (random in [0, min(max,
 *   base·2^n)]), which spreads clients that were throttled together.
 * - Waiting is bounded twice: by a number of retries and by the total time
 *   spent sleeping. When Graph asks for a wait that would overrun the
 *   bound we give up at once with a message saying so, instead of sleeping
 *   only to fail.
 */

export interface RetryOptions {
  /** Retries after the first attempt (default 10). */
  maxRetries?: number;
  /** Upper bound of the time spent waiting between attempts of one call, in ms (default 120 000). */
  maxTotalWaitMs?: number;
  /** First backoff step when Graph gives no Retry-After, in ms (default 1 000). */
  baseDelayMs?: number;
  /** Largest single backoff step, in ms (default 30 000). */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 10,
  maxTotalWaitMs: 120_000,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
};

export function resolveRetry(o: RetryOptions = {}): RetryPolicy {
  const pick = (v: number | undefined, d: number, min: number) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min ? v : d;
  return {
    maxRetries: Math.floor(pick(o.maxRetries, DEFAULT_RETRY.maxRetries, 0)),
    maxTotalWaitMs: pick(o.maxTotalWaitMs, DEFAULT_RETRY.maxTotalWaitMs, 0),
    baseDelayMs: pick(o.baseDelayMs, DEFAULT_RETRY.baseDelayMs, 1),
    maxDelayMs: pick(o.maxDelayMs, DEFAULT_RETRY.maxDelayMs, 1),
  };
}

/** Full-jitter exponential backoff for retry number `retry` (0 for the first retry). */
export function backoffDelay(retry: number, p: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(retry, 30));
  return Math.floor(random() * cap);
}

export function isSafeMethod(method: string): boolean {
  const m = method.toUpperCase();
  return m === 'GET' || m === 'HEAD' || m === 'OPTIONS';
}

/** Statuses after which the same request may be sent again; 504 only when repeating is harmless. */
export function isRetryableStatus(status: number, safeToRepeat: boolean): boolean {
  if (status === 429 || status === 503) return true;
  if (status === 504) return safeToRepeat;
  return false;
}

/** Transport failures where the request surely never reached Graph. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);
/** Transport failures that are transient but leave open whether Graph got the request. */
const MAYBE_SENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNABORTED', 'EPIPE', 'ERR_SOCKET_CONNECTION_TIMEOUT', 'ESOCKETTIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE']);

export function isRetryableTransport(code: string | undefined, safeToRepeat: boolean): boolean {
  if (!code) return false;
  if (NOT_SENT_CODES.has(code)) return true;
  return safeToRepeat && MAYBE_SENT_CODES.has(code);
}

export function isTransientTransport(code: string | undefined): boolean {
  return !!code && (NOT_SENT_CODES.has(code) || MAYBE_SENT_CODES.has(code));
}

/**
 * What one call (or one $batch chunk) has used of its retry allowance. The
 * same budget is shared by the outer request and the inner retries of a
 * $batch chunk, so a chunk never waits longer than a single call would.
 */
export class RetryBudget {
  retries = 0;
  waitedMs = 0;
  constructor(readonly policy: RetryPolicy) {}

  get remainingMs(): number {
    return Math.max(0, this.policy.maxTotalWaitMs - this.waitedMs);
  }

  /**
   * The wait before the next retry, or a reason to stop. A server-given
   * Retry-After is taken as is (and ends the call when it does not fit); our
   * own backoff is shortened to what is left of the allowance.
   */
  plan(retryAfterMs: number | undefined, random: () => number = Math.random):
    | { ok: true; delayMs: number; fromServer: boolean }
    | { ok: false; reason: 'retries' | 'time'; requestedMs?: number } {
    if (this.retries >= this.policy.maxRetries) return { ok: false, reason: 'retries' };
    if (retryAfterMs !== undefined) {
      if (retryAfterMs > this.remainingMs) return { ok: false, reason: 'time', requestedMs: retryAfterMs };
      return { ok: true, delayMs: retryAfterMs, fromServer: true };
    }
    if (this.remainingMs <= 0 && this.policy.maxTotalWaitMs > 0) return { ok: false, reason: 'time' };
    const d = Math.min(backoffDelay(this.retries, this.policy, random), this.remainingMs);
    return { ok: true, delayMs: d, fromServer: false };
  }

  /** Records a retry about to happen after `delayMs`. */
  spend(delayMs: number): void {
    this.retries++;
    this.waitedMs += delayMs;
  }
}

/** Seconds for messages: "12 s", "1.5 s". */
export function fmtSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 || Number.isInteger(s) ? Math.round(s) : s.toFixed(1)} s`;
}
