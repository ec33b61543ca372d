/**
 * The one module that talks to 4me (or Xurrent): GraphQL over HTTPS, with
 *
 * - authentication by personal access token, or by OAuth client
 *   credentials (token fetched once, shared by concurrent calls, renewed
 *   before it expires and once more after a 401);
 * - the account header on every GraphQL call (never on result URLs, and the
 *   bearer token never either: those are pre-signed links, possibly on
 *   another host);
 * - pacing: at most `burst.requests` calls in ANY window of
 *   `burst.windowMs`, as 4me counts them (on arrival): a call occupies the
 *   window from its send until `windowMs` after its answer, and goes out
 *   only when fewer than `burst.requests` calls occupy it — so the bound
 *   holds for every window, not only for aligned ones, whatever the
 *   latency; at most `maxConcurrent` calls in flight; and the hourly request
 *   and cost budgets read from the `x-ratelimit-*` / `x-costlimit-*`
 *   headers: when what is left falls to the reserve, calls wait for the
 *   reset the headers announce;
 * - 429 and 503: wait for `Retry-After` (seconds or HTTP date), or
 *   `retryAfterFallbackMs` (60 s) when it is absent or unreadable, holding
 *   back every call of this client meanwhile, then try again;
 * - GraphQL `errors` → FourMeError('graphql'); mutation payload `errors
 *   {path message}` are data for the caller (see `payloadErrors`), so that
 *   they can be reported per item;
 * - asynchronous results (`asyncQuery.resultUrl`): polled until the JSON is
 *   there, within a time limit;
 * - abort: every wait and request ends promptly on the caller's signal or
 *   on `close()`.
 *
 * Messages are plain sentences; they never contain a token, a secret or a
 * request body.
 */
import type https from 'node:https';
import { setMaxListeners } from 'node:events';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { jsonBytes } from '../shared/json-bytes';
import { createAxios, createHttpsAgent } from '../shared/http-transport';
import type { ProxySource } from '../shared/proxy-route';
import type { FourMeEndpoints } from './fourme-endpoints';
import { raceAbort, sleep } from '../shared/abort';
import { parseRetryAfter } from '../shared/retry-after';
import { SlidingWindow, type WindowTicket } from '../shared/sliding-window';

export type FourMeAuth =
  | { kind: 'token'; token: string }
  | { kind: 'oauth'; clientId: string; clientSecret: string };

export type FourMeErrorKind =
  | 'config'
  | 'auth'
  | 'forbidden'
  | 'notFound'
  | 'graphql'
  | 'http'
  | 'throttled'
  | 'unreachable'
  | 'tls'
  | 'asyncTimeout'
  | 'asyncFailed'
  | 'badResponse';

export class FourMeError extends Error {
  override name = 'FourMeError';
  constructor(
    readonly kind: FourMeErrorKind,
    message: string,
    readonly init: { status?: number; requestId?: string; retryable?: boolean; messages?: string[]; code?: string } = {},
  ) {
    super(message);
  }
  get status(): number | undefined {
    return this.init.status;
  }
  get retryable(): boolean {
    return !!this.init.retryable;
  }
}

export class FourMeAbortError extends Error {
  override name = 'AbortError';
  constructor(message = 'The 4me request was aborted') {
    super(message);
  }
}

export function isAbort(err: unknown): boolean {
  return !!err && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError';
}

function abortError(signal?: AbortSignal): FourMeAbortError {
  const r = signal?.reason;
  return r instanceof FourMeAbortError ? r : new FourMeAbortError(typeof r?.message === 'string' && r.message ? r.message : undefined);
}

/** Counters of the calls made for one piece of work (a run), with hooks for status dots. */
export class FourMeStats {
  /** GraphQL POSTs sent (retries included). */
  requests = 0;
  /** GETs of asynchronous result URLs. */
  polls = 0;
  retries = 0;
  /** Waits caused by 429/503 or by an exhausted hourly budget. */
  throttled = 0;
  throttleWaitMs = 0;
  /** Sum of x-costlimit-cost. */
  cost = 0;
  byOperation: Record<string, number> = {};
  constructor(
    private readonly hooks: { onWait?: (ms: number, reason: WaitReason) => void; onResume?: () => void } = {},
  ) {}
  wait(ms: number, reason: WaitReason): void {
    this.throttled++;
    this.throttleWaitMs += ms;
    this.hooks.onWait?.(ms, reason);
  }
  resumed(): void {
    this.hooks.onResume?.();
  }
  toJSON(): Record<string, unknown> {
    return {
      requests: this.requests,
      polls: this.polls,
      retries: this.retries,
      throttled: this.throttled,
      throttleWaitMs: this.throttleWaitMs,
      cost: this.cost,
      byOperation: { ...this.byOperation },
    };
  }
}

export type WaitReason = 'retryAfter' | 'requestBudget' | 'costBudget';

export interface FourMeClientOptions {
  endpoints: FourMeEndpoints;
  accountId: string;
  auth: FourMeAuth;
  /** Extra trusted CA (PEM), e.g. from a TLS config node. */
  ca?: string | string[];
  /** Where the HTTP proxy comes from (proxy-config.ts); none: always direct. */
  proxy?: ProxySource;
  timeoutMs?: number;
  /**
   * Sliding-window bound. 4me allows 20 requests per 2 s, counted on arrival.
   * The default is the full 20: a call counts from its send until 2 s after
   * its answer, and its arrival lies in between, so no window of 4me's can
   * see more than we allow (no clocks are compared). Other integrations on
   * the same token need a lower value.
   */
  burst?: { requests: number; windowMs: number };
  maxConcurrent?: number;
  /** Requests of the hourly budget left unused (for other integrations using the same token). */
  requestReserve?: number;
  /** Cost points of the hourly cost budget left unused. */
  costReserve?: number;
  /** Wait after a 429/503 without a usable Retry-After. */
  retryAfterFallbackMs?: number;
  /** Retries of one call after 429/503 (and, for calls safe to repeat, 5xx and resets). */
  maxRetries?: number;
  asyncPollMs?: number;
  asyncTimeoutMs?: number;
  /** Renew an OAuth token this long before it expires (at most half its lifetime). */
  tokenRenewBeforeMs?: number;
  now?: () => number;
  log?: { debug?(m: string): void; warn?(m: string): void };
}

export interface CallOptions {
  signal?: AbortSignal;
  stats?: FourMeStats;
  /**
   * Whether sending the same call twice is harmless. Queries and upserts
   * are; `requestCreate` is not: it is repeated only after 429/503 (the
   * request was refused, not processed), never after a lost answer.
   */
  idempotent?: boolean;
}

export interface GraphQLErrorItem {
  message: string;
  path?: Array<string | number>;
  extensions?: Record<string, unknown>;
}

/** `errors {path message}` of a mutation payload, normalised (path as strings). */
export interface PayloadError {
  path: string[];
  message: string;
}

export function payloadErrors(payload: unknown): PayloadError[] {
  const errs = (payload as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errs)) return [];
  return errs.map((e) => ({
    message: typeof e?.message === 'string' ? e.message : String(e?.message ?? e),
    path: Array.isArray(e?.path) ? e.path.map((p: unknown) => String(p)) : [],
  }));
}

export const DEFAULTS = {
  timeoutMs: 60_000,
  burst: { requests: 20, windowMs: 2_000 },
  maxConcurrent: 4,
  requestReserve: 20,
  costReserve: 100,
  retryAfterFallbackMs: 60_000,
  maxRetries: 6,
  asyncPollMs: 1_000,
  asyncTimeoutMs: 300_000,
  tokenRenewBeforeMs: 5 * 60_000,
} as const;

interface Budget {
  remaining?: number;
  limit?: number;
  resetAt?: number;
}

const NOT_SENT = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);
const MAYBE_SENT = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNABORTED', 'EPIPE', 'ERR_SOCKET_CONNECTION_TIMEOUT', 'ESOCKETTIMEDOUT']);
const TLS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|ERR_TLS|EPROTO|HOSTNAME|ALTNAME/i;

function headerOf(res: AxiosResponse, name: string): string | undefined {
  const h = res.headers as Record<string, unknown> & { get?: (n: string) => unknown };
  const v = typeof h.get === 'function' ? h.get(name) : h[name];
  return v === undefined || v === null ? undefined : String(v);
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** The first line of what 4me said, without anything that could be a secret. */
function serverMessage(data: unknown): string {
  if (!data) return '';
  if (typeof data === 'string') return data.split(/\r?\n/)[0].slice(0, 200);
  const d = data as { message?: unknown; error?: unknown; error_description?: unknown; errors?: unknown };
  if (typeof d.error_description === 'string') return d.error_description.slice(0, 200);
  if (typeof d.message === 'string') return d.message.slice(0, 200);
  if (Array.isArray(d.errors) && d.errors.length) {
    return d.errors.map((e: { message?: unknown }) => String(e?.message ?? e)).join('; ').slice(0, 300);
  }
  if (typeof d.error === 'string') return d.error.slice(0, 200);
  return '';
}

export class FourMeClient {
  readonly agent: https.Agent;
  private readonly http: AxiosInstance;
  private readonly o: Required<Omit<FourMeClientOptions, 'ca' | 'proxy' | 'log' | 'now' | 'auth' | 'endpoints' | 'accountId' | 'burst'>> & {
    burst: { requests: number; windowMs: number };
  };
  private readonly now: () => number;
  private readonly closer = new AbortController();
  /** The burst limit as 4me counts it: each call from its send until `burst.windowMs` after its answer. */
  private readonly window: SlidingWindow;
  private gateChain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private slotWaiters: Array<() => void> = [];
  private pausedUntil = 0;
  private rate: Budget = {};
  private costBudget: Budget & { lastCost?: number } = {};
  private token?: { value: string; renewAt: number; expiresAt: number };
  private tokenFetch?: Promise<string>;
  /** The last rate and cost headers seen (for "Verify connection" and the summary). */
  lastLimits: { requestsRemaining?: number; requestsLimit?: number; costRemaining?: number; costLimit?: number } = {};
  tokenRequests = 0;

  constructor(private readonly opts: FourMeClientOptions) {
    if (!opts.accountId) throw new FourMeError('config', 'The 4me account id is missing');
    if (opts.auth.kind === 'token' && !opts.auth.token) throw new FourMeError('config', 'The personal access token is missing');
    if (opts.auth.kind === 'oauth') {
      if (!opts.auth.clientId) throw new FourMeError('config', 'The OAuth client id is missing');
      if (!opts.auth.clientSecret) throw new FourMeError('config', 'The OAuth client secret is missing');
      if (!opts.endpoints.tokenUrl) throw new FourMeError('config', 'The OAuth token URL is missing');
    }
    const burst = opts.burst ?? DEFAULTS.burst;
    if (!(burst.requests >= 1) || !(burst.windowMs >= 10)) throw new FourMeError('config', 'The burst limit must allow at least one request per window');
    this.o = {
      timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
      burst: { requests: Math.floor(burst.requests), windowMs: burst.windowMs },
      maxConcurrent: Math.max(1, opts.maxConcurrent ?? DEFAULTS.maxConcurrent),
      requestReserve: Math.max(0, opts.requestReserve ?? DEFAULTS.requestReserve),
      costReserve: Math.max(0, opts.costReserve ?? DEFAULTS.costReserve),
      retryAfterFallbackMs: Math.max(0, opts.retryAfterFallbackMs ?? DEFAULTS.retryAfterFallbackMs),
      maxRetries: Math.max(0, opts.maxRetries ?? DEFAULTS.maxRetries),
      asyncPollMs: Math.max(10, opts.asyncPollMs ?? DEFAULTS.asyncPollMs),
      asyncTimeoutMs: Math.max(100, opts.asyncTimeoutMs ?? DEFAULTS.asyncTimeoutMs),
      tokenRenewBeforeMs: Math.max(0, opts.tokenRenewBeforeMs ?? DEFAULTS.tokenRenewBeforeMs),
    };
    this.now = opts.now ?? Date.now;
    this.window = new SlidingWindow(this.o.burst.requests, this.o.burst.windowMs, () => this.now());
    // Every call in flight listens for close().
    setMaxListeners(0, this.closer.signal);
    this.agent = createHttpsAgent({ ca: opts.ca, proxy: opts.proxy });
    this.http = createAxios(this.agent, this.o.timeoutMs);
  }

  get endpoints(): FourMeEndpoints {
    return this.opts.endpoints;
  }

  get accountId(): string {
    return this.opts.accountId;
  }

  get authKind(): FourMeAuth['kind'] {
    return this.opts.auth.kind;
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  /** Ends every wait and request of this client; later calls fail at once. */
  close(): void {
    if (!this.closer.signal.aborted) this.closer.abort(new FourMeAbortError('The 4me connection was closed'));
    for (const w of this.slotWaiters.splice(0)) w();
    this.agent.destroy();
  }

  /**
   * A signal that aborts with the caller's or on close(); `dispose` removes
   * the listeners again (long-lived caller signals must not collect them).
   */
  private link(signal?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
    if (!signal) return { signal: this.closer.signal, dispose: () => undefined };
    const ctl = new AbortController();
    const fromCaller = () => ctl.abort(signal.reason);
    const fromClose = () => ctl.abort(this.closer.signal.reason);
    if (signal.aborted) fromCaller();
    else if (this.closer.signal.aborted) fromClose();
    else {
      signal.addEventListener('abort', fromCaller, { once: true });
      this.closer.signal.addEventListener('abort', fromClose, { once: true });
    }
    return {
      signal: ctl.signal,
      dispose: () => {
        signal.removeEventListener('abort', fromCaller);
        this.closer.signal.removeEventListener('abort', fromClose);
      },
    };
  }

  // ------------------------------------------------------------------ auth

  /** The bearer token to use; fetched (OAuth) when missing or due for renewal. */
  async accessToken(signal?: AbortSignal, force = false): Promise<string> {
    const auth = this.opts.auth;
    if (auth.kind === 'token') return auth.token;
    const now = this.now();
    if (!force && this.token && now < this.token.renewAt) return this.token.value;
    if (!this.tokenFetch) {
      // Shared by concurrent callers: only close() aborts it.
      this.tokenFetch = this.fetchToken(auth, this.closer.signal).finally(() => {
        this.tokenFetch = undefined;
      });
    }
    if (signal?.aborted) throw abortError(signal);
    return this.tokenFetch;
  }

  private async fetchToken(auth: Extract<FourMeAuth, { kind: 'oauth' }>, signal: AbortSignal): Promise<string> {
    const url = this.opts.endpoints.tokenUrl;
    const host = new URL(url).host;
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: auth.clientId, client_secret: auth.clientSecret }).toString();
    for (let attempt = 0; ; attempt++) {
      let res: AxiosResponse;
      try {
        this.tokenRequests++;
        res = await this.http.post(url, body, {
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
          signal,
        });
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        const t = this.transportProblem(err, host);
        if (attempt < this.o.maxRetries && t.init.retryable) {
          await sleep(Math.min(30_000, 1000 * 2 ** attempt), signal, abortError);
          continue;
        }
        throw t;
      }
      if (res.status === 429 || res.status === 503) {
        if (attempt >= this.o.maxRetries) throw new FourMeError('throttled', `The 4me token endpoint kept answering HTTP ${res.status}`, { status: res.status, retryable: true });
        await sleep(parseRetryAfter(headerOf(res, 'retry-after'), this.now()) ?? this.o.retryAfterFallbackMs, signal, abortError);
        continue;
      }
      const data = (res.data ?? {}) as { access_token?: unknown; expires_in?: unknown; error?: unknown };
      if (res.status === 200 && typeof data.access_token === 'string' && data.access_token) {
        const lifeMs = typeof data.expires_in === 'number' && data.expires_in > 0 ? data.expires_in * 1000 : 3600_000;
        const now = this.now();
        const renewIn = Math.max(lifeMs / 2, lifeMs - this.o.tokenRenewBeforeMs);
        this.token = { value: data.access_token, renewAt: now + renewIn, expiresAt: now + lifeMs };
        return data.access_token;
      }
      if (res.status === 400 || res.status === 401) {
        const why = serverMessage(data);
        throw new FourMeError(
          'auth',
          `4me refused the OAuth client credentials${why ? ` (${why})` : ''}: check the client id and secret of the application in 4me, and that the application is enabled`,
          { status: res.status, code: typeof data.error === 'string' ? data.error : undefined },
        );
      }
      if (res.status >= 500 && attempt < 2) {
        await sleep(1000 * 2 ** attempt, signal, abortError);
        continue;
      }
      throw new FourMeError('http', `The 4me token endpoint answered HTTP ${res.status}${serverMessage(data) ? `: ${serverMessage(data)}` : ''}`, { status: res.status });
    }
  }

  // --------------------------------------------------------------- pacing

  /** Waits for a send slot: concurrency, pauses, hourly budgets, the sliding burst window. */
  private async acquire(signal: AbortSignal, stats?: FourMeStats): Promise<WindowTicket> {
    // Concurrency first, so a slow call does not hold a burst slot it does not use yet.
    while (this.inFlight >= this.o.maxConcurrent) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.slotWaiters = this.slotWaiters.filter((w) => w !== wake);
          reject(abortError(signal));
        };
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        this.slotWaiters.push(wake);
      });
    }
    this.inFlight++;
    try {
      // One waiter at a time decides on the window, in arrival order. A
      // waiter that is aborted leaves the line at once but hands its turn on
      // only when the one before it is done, so the order holds.
      const prev = this.gateChain;
      let release!: () => void;
      this.gateChain = new Promise<void>((r) => (release = r));
      let ahead = true;
      try {
        await raceAbort(prev, signal, abortError);
        ahead = false;
        let waited = false;
        for (;;) {
          if (signal.aborted) throw abortError(signal);
          const now = this.now();
          const { ms, reason } = this.nextSendDelay(now);
          if (ms <= 0) break;
          if (reason !== 'burst') {
            stats?.wait(ms, reason);
            waited = true;
            this.opts.log?.debug?.(`4me: waiting ${Math.ceil(ms / 1000)} s (${reason})`);
          }
          await sleep(ms, signal, abortError);
        }
        if (waited) stats?.resumed();
        if (this.rate.remaining !== undefined) this.rate.remaining--;
        return this.window.take(1);
      } finally {
        if (ahead) void prev.then(release);
        else release();
      }
    } catch (err) {
      this.releaseSlot();
      throw err;
    }
  }

  /** A sent call got its answer (or failed): it leaves the window `burst.windowMs` from now. */
  private settle(ticket: WindowTicket): void {
    this.window.settle(ticket);
  }

  private releaseSlot(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const w = this.slotWaiters.shift();
    if (w) w();
  }

  private nextSendDelay(now: number): { ms: number; reason: WaitReason | 'burst' } {
    if (this.pausedUntil > now) return { ms: this.pausedUntil - now, reason: 'retryAfter' };
    const r = this.rate;
    if (r.resetAt !== undefined && now >= r.resetAt) this.rate = {};
    else if (r.remaining !== undefined && r.resetAt !== undefined && r.remaining <= this.o.requestReserve) {
      return { ms: r.resetAt - now + 1000, reason: 'requestBudget' };
    }
    const c = this.costBudget;
    if (c.resetAt !== undefined && now >= c.resetAt) this.costBudget = { lastCost: c.lastCost };
    else if (c.remaining !== undefined && c.resetAt !== undefined && c.remaining - (c.lastCost ?? 1) < this.o.costReserve) {
      return { ms: c.resetAt - now + 1000, reason: 'costBudget' };
    }
    // 4me counts a call when it arrives, some time between our send and its
    // answer: the shared sliding window (nodes/lib/shared/sliding-window.ts)
    // counts each call from its send until `windowMs` after its answer, which
    // covers every arrival window. All in flight: look again shortly.
    const ms = this.window.delay(1, now);
    return { ms: ms ?? 20, reason: 'burst' };
  }

  private readLimits(res: AxiosResponse, stats?: FourMeStats): void {
    const now = this.now();
    const rl = num(headerOf(res, 'x-ratelimit-limit'));
    const rr = num(headerOf(res, 'x-ratelimit-remaining'));
    const rs = num(headerOf(res, 'x-ratelimit-reset'));
    if (rr !== undefined) {
      this.rate = { remaining: rr, limit: rl, resetAt: rs !== undefined ? rs * 1000 : now + 3600_000 };
      this.lastLimits.requestsRemaining = rr;
      this.lastLimits.requestsLimit = rl;
    }
    const cl = num(headerOf(res, 'x-costlimit-limit'));
    const cr = num(headerOf(res, 'x-costlimit-remaining'));
    const cs = num(headerOf(res, 'x-costlimit-reset'));
    const cc = num(headerOf(res, 'x-costlimit-cost'));
    if (cc !== undefined) {
      this.costBudget.lastCost = Math.max(1, cc);
      if (stats) stats.cost += cc;
    }
    if (cr !== undefined) {
      this.costBudget = { remaining: cr, limit: cl, resetAt: cs !== undefined ? cs * 1000 : now + 3600_000, lastCost: this.costBudget.lastCost };
      this.lastLimits.costRemaining = cr;
      this.lastLimits.costLimit = cl;
    }
  }

  private pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  // -------------------------------------------------------------- GraphQL

  private transportProblem(err: unknown, host: string): FourMeError {
    const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
    const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : '';
    const text = `${code} ${typeof e?.message === 'string' ? e.message : ''}`;
    if (TLS.test(text)) {
      return new FourMeError('tls', `The TLS certificate of ${host} is not trusted (${code || 'TLS error'}): for a proxy or private endpoint, add its CA in a TLS configuration`, { code });
    }
    const notSent = NOT_SENT.has(code);
    return new FourMeError('unreachable', `${host} cannot be reached (${code || (typeof e?.message === 'string' ? e.message : 'network error')})`, {
      code,
      retryable: notSent || MAYBE_SENT.has(code) || /timeout/i.test(text),
    });
  }

  /**
   * Sends one GraphQL operation and returns `data`. Throws FourMeError for
   * HTTP problems and for GraphQL `errors`; retries as described above.
   */
  async graphql<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}, co: CallOptions = {}): Promise<T> {
    if (this.closed) throw abortError(this.closer.signal);
    const linked = this.link(co.signal);
    try {
      return await this.graphqlOnce<T>(query, variables, co, linked.signal);
    } finally {
      linked.dispose();
    }
  }

  private async graphqlOnce<T>(query: string, variables: Record<string, unknown>, co: CallOptions, signal: AbortSignal): Promise<T> {
    const idempotent = co.idempotent ?? true;
    const url = this.opts.endpoints.graphqlUrl;
    const host = new URL(url).host;
    const op = /^\s*(?:query|mutation)\s+(\w+)/.exec(query)?.[1] ?? 'anonymous';
    let renewedAfter401 = false;
    let serverErrors = 0;
    let transportFailures = 0;
    // The body as bytes, written once for every attempt: an upload of 100 CIs is ~200 KB of JSON,
    // which axios would make a string and then a Buffer each time (shared/json-bytes.ts).
    const requestBody = jsonBytes({ query, variables });
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken(signal);
      const ticket = await this.acquire(signal, co.stats);
      let res: AxiosResponse | undefined;
      let failure: unknown;
      try {
        if (co.stats) {
          co.stats.requests++;
          co.stats.byOperation[op] = (co.stats.byOperation[op] ?? 0) + 1;
          if (attempt > 0) co.stats.retries++;
        }
        res = await this.http.post(url, requestBody, {
          headers: {
            Authorization: `Bearer ${token}`,
            [this.opts.endpoints.accountHeader]: this.opts.accountId,
            'Content-Type': 'application/json',
            Accept: 'application/json',
          },
          signal,
        });
      } catch (err) {
        failure = err;
      } finally {
        this.settle(ticket);
        this.releaseSlot();
      }
      if (!res) {
        if (signal.aborted) throw abortError(signal);
        const t = this.transportProblem(failure, host);
        const code = t.init.code ?? '';
        const mayRepeat = NOT_SENT.has(code) || (idempotent && t.init.retryable);
        if (mayRepeat && attempt < this.o.maxRetries) {
          // A reset on the first try is most often a kept-alive connection the server had just
          // closed: try again at once (on a new connection); back off from the second failure on.
          const firstReset = code === 'ECONNRESET' && transportFailures === 0;
          transportFailures++;
          if (!firstReset) await sleep(Math.min(30_000, 1000 * 2 ** attempt), signal, abortError);
          continue;
        }
        throw t;
      }
      this.readLimits(res, co.stats);
      const requestId = headerOf(res, 'x-request-id');
      const status = res.status;
      if (status === 429 || status === 503) {
        if (attempt >= this.o.maxRetries) {
          throw new FourMeError('throttled', `4me kept answering HTTP ${status} after ${attempt + 1} attempts`, { status, requestId, retryable: true });
        }
        const wait = parseRetryAfter(headerOf(res, 'retry-after'), this.now()) ?? this.o.retryAfterFallbackMs;
        this.pause(wait);
        this.opts.log?.debug?.(`4me answered HTTP ${status}: waiting ${Math.ceil(wait / 1000)} s`);
        continue;
      }
      if (status === 401) {
        if (this.opts.auth.kind === 'oauth' && !renewedAfter401) {
          renewedAfter401 = true;
          this.token = undefined;
          continue;
        }
        const why = serverMessage(res.data).replace(/[.\s]+$/, '');
        throw new FourMeError(
          'auth',
          (this.opts.auth.kind === 'oauth'
            ? '4me did not accept the OAuth access token (HTTP 401)'
            : '4me did not accept the personal access token (HTTP 401)') +
            (why ? `: ${why}` : '') +
            `. Check the token, that it may be used for account "${this.opts.accountId}", and the account id`,
          { status, requestId },
        );
      }
      if (status === 403) {
        const why = serverMessage(res.data).replace(/[.\s]+$/, '');
        throw new FourMeError('forbidden', `4me refused the request (HTTP 403)${why ? `: ${why}` : ''}. Check the token's scopes and the account id "${this.opts.accountId}"`, { status, requestId });
      }
      if (status === 404) {
        throw new FourMeError('notFound', `4me answered HTTP 404 for ${url}: check the environment, region and account id`, { status, requestId });
      }
      if (status >= 500) {
        if (idempotent && serverErrors < 2 && attempt < this.o.maxRetries) {
          serverErrors++;
          await sleep(1000 * 2 ** serverErrors, signal, abortError);
          continue;
        }
        throw new FourMeError('http', `4me answered HTTP ${status}${serverMessage(res.data) ? `: ${serverMessage(res.data)}` : ''}`, { status, requestId, retryable: true });
      }
      const body = res.data as { data?: T | null; errors?: GraphQLErrorItem[] } | string | undefined;
      if (!body || typeof body !== 'object') {
        throw new FourMeError('badResponse', `4me answered HTTP ${status} without a JSON body`, { status, requestId });
      }
      if (Array.isArray(body.errors) && body.errors.length) {
        const messages = body.errors.map((e) => String(e?.message ?? e));
        throw new FourMeError('graphql', `4me rejected the ${op} operation: ${messages.join('; ').slice(0, 500)}`, { status, requestId, messages });
      }
      if (status !== 200 || body.data === undefined || body.data === null) {
        throw new FourMeError('badResponse', `4me answered HTTP ${status} without data`, { status, requestId });
      }
      return body.data;
    }
  }

  /**
   * Follows an `asyncQuery.resultUrl` until the result is there and returns
   * the JSON (`{data: …}` as a GraphQL answer). The link is fetched without
   * the token or account header.
   */
  async asyncResult<T = Record<string, unknown>>(resultUrl: string, co: CallOptions & { timeoutMs?: number } = {}): Promise<T> {
    if (this.closed) throw abortError(this.closer.signal);
    const linked = this.link(co.signal);
    try {
      return await this.pollResult<T>(resultUrl, co, linked.signal);
    } finally {
      linked.dispose();
    }
  }

  private async pollResult<T>(resultUrl: string, co: CallOptions & { timeoutMs?: number }, signal: AbortSignal): Promise<T> {
    let u: URL;
    try {
      u = new URL(resultUrl);
    } catch {
      throw new FourMeError('asyncFailed', '4me gave an asynchronous result link that is not a URL');
    }
    if (u.protocol !== 'https:') throw new FourMeError('asyncFailed', '4me gave an asynchronous result link that is not https');
    const deadline = this.now() + (co.timeoutMs ?? this.o.asyncTimeoutMs);
    // First looks at 100, 250 and 500 ms, then every asyncPollMs: a small upload's result is often
    // ready within the first half second (a small incremental run then ends sooner), and polls of the
    // pre-signed link are outside the GraphQL limits (three early looks cost no request budget).
    // 4me's own Lansweeper app polls every 501 ms.
    const early = [100, 150, 250];
    for (let attempt = 0; ; attempt++) {
      await sleep(Math.min(this.o.asyncPollMs, early[attempt] ?? this.o.asyncPollMs), signal, abortError);
      let res: AxiosResponse;
      try {
        if (co.stats) co.stats.polls++;
        res = await this.http.get(resultUrl, { headers: { Accept: 'application/json' }, signal });
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        const t = this.transportProblem(err, u.host);
        if (!t.init.retryable || this.now() > deadline) throw t;
        continue;
      }
      if (res.status === 429 || res.status === 503) {
        const wait = parseRetryAfter(headerOf(res, 'retry-after'), this.now()) ?? this.o.retryAfterFallbackMs;
        if (this.now() + wait > deadline) throw new FourMeError('asyncTimeout', `The asynchronous 4me result was not ready within ${Math.round((co.timeoutMs ?? this.o.asyncTimeoutMs) / 1000)} s`);
        co.stats?.wait(wait, 'retryAfter');
        await sleep(wait, signal, abortError);
        co.stats?.resumed();
        continue;
      }
      if (res.status !== 200) {
        throw new FourMeError('asyncFailed', `The asynchronous 4me result could not be fetched (HTTP ${res.status}; the link may have expired)`, { status: res.status });
      }
      let body: unknown = res.data;
      if (typeof body === 'string') {
        const s = body.trim();
        if (!s) body = {};
        else {
          try {
            body = JSON.parse(s);
          } catch {
            throw new FourMeError('badResponse', 'The asynchronous 4me result is not JSON');
          }
        }
      }
      const b = (body ?? {}) as { data?: unknown; errors?: GraphQLErrorItem[] };
      if (b.data !== undefined || (Array.isArray(b.errors) && b.errors.length)) {
        if (Array.isArray(b.errors) && b.errors.length && (b.data === undefined || b.data === null)) {
          const messages = b.errors.map((e) => String(e?.message ?? e));
          throw new FourMeError('graphql', `4me could not process the asynchronous request: ${messages.join('; ').slice(0, 500)}`, { messages });
        }
        return b as T;
      }
      if (this.now() >= deadline) {
        throw new FourMeError('asyncTimeout', `The asynchronous 4me result was not ready within ${Math.round((co.timeoutMs ?? this.o.asyncTimeoutMs) / 1000)} s`);
      }
    }
  }
}
