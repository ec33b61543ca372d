/**
 * The one client through which the package reaches Microsoft Graph. One
 * instance per `intune-config` node, shared by every node using it.
 *
 * Built on @microsoft/microsoft-graph-client (v3) with our own middleware
 * chain instead of the SDK's default one (whose retry handler knows neither
 * the Intune buckets, nor a bound on the total wait, nor which POSTs are
 * unsafe to repeat, and which sends through the global fetch):
 *
 *     retry  →  auth  →  pacing  →  axios transport
 *
 * - retry (outermost) decides per attempt: every attempt goes down the rest
 *   of the chain again, so each one gets a current token and takes its own
 *   pacing token; Intune counts every attempt, so must we.
 * - auth asks `getToken` on every attempt (the token provider caches), and
 *   for a fresh token once after a 401 InvalidAuthenticationToken.
 * - pacing comes after auth so the time spent getting a token does not sit
 *   between taking the pacing token and sending.
 * - the transport sends with axios over the connection's https agent (extra
 *   CA, keep-alive) and hands the SDK a WHATWG `Response`.
 *
 * Normal calls use the SDK's request builder; `$batch` uses the SDK's
 * BatchRequestContent / BatchResponseContent; `@odata.nextLink` is sent
 * through our chain directly (see `pages`).
 */
import type https from 'node:https';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import axios, { type AxiosInstance } from 'axios';
import {
  BatchRequestContent,
  BatchResponseContent,
  Client,
  GraphError,
  ResponseType,
  type BatchRequestStep,
  type BatchResponseBody,
  type Context,
  type FetchOptions,
  type Middleware,
} from '@microsoft/microsoft-graph-client';
import { createAxios } from '../shared/http-transport';
import { assertSelect, type EntityName, type GraphVersion } from './graph-schema';
import {
  GraphAbortError,
  GraphRequestError,
  abortReason,
  isAbortError,
  sanitiseTransportError,
  throwIfAborted,
} from './graph-errors';
import { GraphPacer, type Bucket, type PacingLimits } from './graph-pacer';
import {
  RetryBudget,
  fmtSeconds,
  isRetryableStatus,
  isRetryableTransport,
  isSafeMethod,
  isTransientTransport,
  resolveRetry,
  type RetryOptions,
  type RetryPolicy,
} from './graph-retry';
import { sleep } from '../shared/abort';
import { parseRetryAfter } from '../shared/retry-after';

export { GraphRequestError, GraphAbortError, isAbortError } from './graph-errors';
export type { Bucket, PacingLimits } from './graph-pacer';
export type { RetryOptions } from './graph-retry';

export type { GraphVersion, EntityName } from './graph-schema';

export interface GraphLog {
  warn(m: string): void;
  debug?(m: string): void;
}

/**
 * Checks a `$select` list against the schema of `entity` and throws when a
 * property does not exist in `version`. The client calls it for every call
 * that names an entity (explicitly, or a managedDevices path).
 */
export type SelectValidator = (version: GraphVersion, entity: EntityName, props: readonly string[]) => void;

export interface GraphClientOptions {
  /** Service root without version, e.g. https://graph.microsoft.com (a path prefix is allowed for proxies). */
  baseUrl: string;
  /**
   * An access token for Graph. Called before every attempt; expected to
   * cache. `forceRefresh` is set once after Graph rejected a token as
   * invalid (401 InvalidAuthenticationToken): the provider should then skip
   * its cache.
   */
  getToken: (signal?: AbortSignal, opts?: { forceRefresh?: boolean }) => Promise<string>;
  agent: https.Agent;
  /** Per-20-s limits (defaults 2000/200/1000/100). `windowMs` only for tests. */
  limits?: PacingLimits;
  retry?: RetryOptions;
  /** Per-request timeout in ms (default 30 000). */
  timeoutMs?: number;
  log?: GraphLog;
  /** `$select` checker; see `SelectValidator`. Defaults to graph-schema's `assertSelect` (CSDL-derived property lists). */
  validateSelect?: SelectValidator;
  /** How many $batch chunks of one `batch()` call run at once (default 4). */
  batchConcurrency?: number;
}

/**
 * Counters. `requests` counts Graph requests as Intune counts them: a
 * `$batch` counts as its inner requests (so it matches the pacing limits),
 * and `batches` counts the `$batch` HTTP requests themselves. `retries` are
 * requests sent again, `throttled` the 429 answers (inner ones included),
 * `throttleWaitMs` the time slept before retries, `pacingWaitMs` the time
 * spent waiting for our own pacing.
 */
export interface RequestStats {
  requests: number;
  retries: number;
  throttled: number;
  throttleWaitMs: number;
  batches: number;
  pacingWaitMs: number;
}

/** What a caller may pass as per-run accumulator: `batches`/`pacingWaitMs` are counted only when present. */
export type StatsSink = Pick<RequestStats, 'requests' | 'retries' | 'throttled' | 'throttleWaitMs'> &
  Partial<Pick<RequestStats, 'batches' | 'pacingWaitMs'>>;

export interface CallOptions {
  version?: GraphVersion;
  /** Intune throttling bucket: `devices` (managedDevice; default) or `compliance` (device configuration/compliance types). */
  bucket?: Bucket;
  signal?: AbortSignal;
  /** Per-run accumulator; everything is also counted in `GraphClient.stats`. */
  stats?: StatsSink;
  select?: string[];
  /** OData `$filter`, unencoded (the client encodes it). */
  filter?: string;
  top?: number;
  /** More query options (e.g. `{ $count: 'true' }`), unencoded. */
  query?: Record<string, string>;
  /** Entity type whose schema `select` is checked against; inferred for managedDevices paths. */
  entity?: EntityName;
  /** Extra request headers (e.g. ConsistencyLevel). */
  headers?: Record<string, string>;
  /**
   * A POST that only reads (Intune's report actions such as
   * getNoncompliantDevicesAndSettingsReport): paced as a read, not a write,
   * and safe to send again after a timeout or a dropped connection.
   */
  readOnly?: boolean;
}

export type BatchMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface BatchRequest {
  /** Unique within the call. */
  id: string;
  method: BatchMethod;
  /** Relative to the version root, e.g. `/deviceManagement/managedDevices/{id}/retire`. */
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface BatchResult {
  /** Final HTTP status of the item; 0 when no answer was obtained (see `body.error`). */
  status: number;
  body?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Response headers, lower-case names. */
  headers?: Record<string, string>;
}

export interface Page<T> {
  items: T[];
  /** 1 for the first page. */
  page: number;
  /** Whether Graph gave a next-page link (more pages follow). */
  more: boolean;
}

/** Key of our per-call state inside the SDK's fetch options (the SDK passes `.option()`s through to the middleware context). */
const CALL = 'intuneGraphCall';

interface CallState {
  method: string;
  /** "GET /v1.0/deviceManagement/managedDevices", for messages (never a query string). */
  label: string;
  bucket: Bucket;
  /** Pacing tokens: 1, or the inner request count of a $batch. */
  requests: number;
  writes: number;
  safeToRepeat: boolean;
  isBatch: boolean;
  signal: AbortSignal;
  stats?: StatsSink;
  budget: RetryBudget;
  forceRefresh?: boolean;
  /** The error our middleware threw: the SDK wraps thrown errors in a GraphError, this keeps the original. */
  failure?: unknown;
}

/** A transport failure that left no HTTP answer. */
class TransportFailure extends Error {
  constructor(readonly failure: Error & { code?: string }) {
    super(failure.message);
  }
  get code(): string | undefined {
    return this.failure.code;
  }
}

const BATCH_ORIGIN = 'https://batch.invalid';
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** $batch items Graph accepts only with a body and its Content-Type. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const SELECT_NAME = /^[A-Za-z_][A-Za-z0-9_.]*(\/[A-Za-z_][A-Za-z0-9_.]*)*$/;

function stateOf(ctx: Context): CallState {
  const st = (ctx.options as Record<string, unknown> | undefined)?.[CALL] as CallState | undefined;
  if (!st) throw new Error('internal: Graph request without call state');
  return st;
}

function headerRecord(h: HeadersInit | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  if (typeof (h as Headers).forEach === 'function' && !Array.isArray(h)) {
    (h as Headers).forEach((v, k) => (out[k] = v));
  } else if (Array.isArray(h)) {
    for (const [k, v] of h) out[k] = v;
  } else {
    for (const [k, v] of Object.entries(h)) if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

function hasHeader(h: Record<string, string>, name: string): boolean {
  const n = name.toLowerCase();
  return Object.keys(h).some((k) => k.toLowerCase() === n);
}

function lowerHeaders(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  h.forEach((v, k) => (out[k.toLowerCase()] = v));
  return out;
}

function pathLabel(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0];
  }
}

function parseJson(text: string, label: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new GraphRequestError(`Microsoft Graph answered ${label} with something that is not JSON`, { code: 'invalidResponse' });
  }
}

/** Builds the error for a final non-2xx answer from Graph's error body. */
async function httpError(res: Response, st: CallState, prefix?: string): Promise<GraphRequestError> {
  let code: string | undefined;
  let message: string | undefined;
  let requestId = res.headers.get('request-id') ?? res.headers.get('client-request-id') ?? undefined;
  try {
    const body = JSON.parse(await res.text()) as { error?: { code?: string; message?: string; innerError?: Record<string, string> } };
    code = body?.error?.code;
    message = body?.error?.message;
    requestId = body?.error?.innerError?.['request-id'] ?? requestId;
  } catch {
    /* not a Graph error body */
  }
  const detail = [code, message].filter(Boolean).join(': ').slice(0, 300);
  const text = prefix ?? `Microsoft Graph answered HTTP ${res.status} to ${st.label}`;
  return new GraphRequestError(detail ? `${text}: ${detail}` : text, {
    status: res.status,
    code,
    requestId,
    retryable: res.status === 429 || res.status >= 500,
    attempts: st.budget.retries + 1,
    waitedMs: st.budget.waitedMs,
  });
}

function statusWords(status: number): string {
  if (status === 429) return 'kept throttling';
  if (status === 503) return 'stayed unavailable for';
  return 'kept timing out (HTTP 504) on';
}

function gaveUpText(b: RetryBudget, d: { reason: 'retries' | 'time'; requestedMs?: number }): string {
  const tried = `${b.retries + 1} attempt${b.retries ? 's' : ''} and ${fmtSeconds(b.waitedMs)} of waiting`;
  if (d.reason === 'time' && d.requestedMs !== undefined) {
    return `Graph asked to wait ${fmtSeconds(d.requestedMs)} more, beyond the limit of ${fmtSeconds(b.policy.maxTotalWaitMs)} for waiting (gave up after ${tried})`;
  }
  if (d.reason === 'time') return `gave up after ${tried} (limit ${fmtSeconds(b.policy.maxTotalWaitMs)})`;
  return `gave up after ${tried} (at most ${b.policy.maxRetries} retries)`;
}

/** Links the caller's signal to the client's: aborted when either aborts. `dispose` unhooks. */
function linkSignals(client: AbortSignal, call?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  // One call's signal is listened to by its pacing wait, sleeps and the HTTP request; chunks of a $batch share one.
  setMaxListeners(0, ctl.signal);
  const fromClient = () => ctl.abort(abortReason(client));
  const fromCall = () => ctl.abort(call?.reason instanceof GraphAbortError ? call.reason : new GraphAbortError());
  if (client.aborted) fromClient();
  else if (call?.aborted) fromCall();
  else {
    client.addEventListener('abort', fromClient, { once: true });
    call?.addEventListener('abort', fromCall, { once: true });
  }
  return {
    signal: ctl.signal,
    dispose: () => {
      client.removeEventListener('abort', fromClient);
      call?.removeEventListener('abort', fromCall);
    },
  };
}

// ---------------------------------------------------------------- middleware

abstract class Link implements Middleware {
  protected next?: Middleware;
  setNext(m: Middleware): void {
    this.next = m;
  }
  protected async pass(ctx: Context): Promise<void> {
    if (!this.next) throw new Error('internal: Graph middleware chain is incomplete');
    await this.next.execute(ctx);
  }
  abstract execute(ctx: Context): Promise<void>;
}

class RetryLink extends Link {
  constructor(private readonly client: GraphClient) {
    super();
  }

  async execute(ctx: Context): Promise<void> {
    const st = stateOf(ctx);
    try {
      await this.run(ctx, st);
    } catch (e) {
      st.failure = e;
      throw e;
    }
  }

  private async run(ctx: Context, st: CallState): Promise<void> {
    let authRetried = false;
    for (;;) {
      throwIfAborted(st.signal);
      ctx.response = undefined;
      try {
        await this.pass(ctx);
      } catch (e) {
        if (isAbortError(e) || st.signal.aborted) throw abortReason(st.signal.aborted ? st.signal : undefined);
        if (!(e instanceof TransportFailure)) throw e;
        await this.afterTransportFailure(e, st);
        continue;
      }
      const res = ctx.response as Response | undefined;
      if (!res) throw new Error('internal: Graph transport gave no response');
      if (res.status === 401 && !authRetried && (await isInvalidToken(res))) {
        // Expired or revoked token: once, with a token fetched anew.
        authRetried = true;
        st.forceRefresh = true;
        this.client.count(st, 'retries', st.requests);
        this.client.debug(`Graph rejected the access token for ${st.label}; retrying once with a new token`);
        continue;
      }
      if (isRetryableStatus(res.status, st.safeToRepeat)) {
        const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
        if (res.status === 429) this.client.count(st, 'throttled', st.requests);
        const d = st.budget.plan(retryAfter);
        // Pause the whole bucket only for a wait we are going to sit out anyway: a
        // Retry-After beyond the budget (e.g. a per-device hourly limit) must not
        // stall every other call of this tenant.
        if (res.status === 429 && retryAfter !== undefined && d.ok) this.client.pauseBucket(st.bucket, retryAfter);
        if (!d.ok) {
          throw await httpError(res, st, `Microsoft Graph ${statusWords(res.status)} ${st.label} (HTTP ${res.status}): ${gaveUpText(st.budget, d)}`);
        }
        this.client.debug(
          `Graph answered ${res.status} to ${st.label}; retry ${st.budget.retries + 1} in ${fmtSeconds(d.delayMs)}${d.fromServer ? ' (Retry-After)' : ''}`,
        );
        await this.wait(st, d.delayMs);
        continue;
      }
      if (res.status === 504 && !st.safeToRepeat) {
        throw await httpError(res, st, `Microsoft Graph timed out (HTTP 504) on ${st.label}; not sent again, because it may already have been carried out`);
      }
      if (!res.ok) throw await httpError(res, st);
      return;
    }
  }

  private async afterTransportFailure(e: TransportFailure, st: CallState): Promise<void> {
    const code = e.code;
    if (!isRetryableTransport(code, st.safeToRepeat)) {
      const unsafe = isTransientTransport(code) && !st.safeToRepeat;
      throw new GraphRequestError(
        unsafe
          ? `The connection to Microsoft Graph failed (${code}) during ${st.label}; not sent again, because it may already have been carried out`
          : `Microsoft Graph could not be reached for ${st.label}: ${code ?? e.message}`,
        { code, retryable: !unsafe && isTransientTransport(code), attempts: st.budget.retries + 1, waitedMs: st.budget.waitedMs, cause: e.failure },
      );
    }
    const d = st.budget.plan(undefined);
    if (!d.ok) {
      throw new GraphRequestError(`Microsoft Graph could not be reached for ${st.label} (${code}): ${gaveUpText(st.budget, d)}`, {
        code,
        retryable: true,
        attempts: st.budget.retries + 1,
        waitedMs: st.budget.waitedMs,
        cause: e.failure,
      });
    }
    this.client.debug(`Connection to Graph failed (${code}) for ${st.label}; retry ${st.budget.retries + 1} in ${fmtSeconds(d.delayMs)}`);
    await this.wait(st, d.delayMs);
  }

  private async wait(st: CallState, ms: number): Promise<void> {
    st.budget.spend(ms);
    this.client.count(st, 'retries', st.requests);
    this.client.count(st, 'throttleWaitMs', ms);
    await sleep(ms, st.signal, abortReason);
  }
}

async function isInvalidToken(res: Response): Promise<boolean> {
  if ((res.headers.get('www-authenticate') ?? '').includes('invalid_token')) return true;
  try {
    const body = (await res.clone().json()) as { error?: { code?: string } };
    return body?.error?.code === 'InvalidAuthenticationToken';
  } catch {
    return false;
  }
}

class AuthLink extends Link {
  constructor(private readonly getToken: GraphClientOptions['getToken']) {
    super();
  }
  async execute(ctx: Context): Promise<void> {
    const st = stateOf(ctx);
    const forceRefresh = st.forceRefresh === true;
    st.forceRefresh = false;
    // Errors of the token provider (ConnectionError, AbortError) pass through unchanged: they are already plain.
    const token = await this.getToken(st.signal, forceRefresh ? { forceRefresh } : undefined);
    throwIfAborted(st.signal);
    const options = ctx.options as FetchOptions;
    options.headers = { ...headerRecord(options.headers), Authorization: `Bearer ${token}` };
    await this.pass(ctx);
  }
}

class PacingLink extends Link {
  constructor(private readonly client: GraphClient) {
    super();
  }
  async execute(ctx: Context): Promise<void> {
    const st = stateOf(ctx);
    const { waitedMs, done } = await this.client.pacer.acquire(st.bucket, st.requests, st.writes, st.signal);
    if (waitedMs > 0) this.client.count(st, 'pacingWaitMs', waitedMs);
    try {
      await this.pass(ctx);
    } finally {
      // Answered or failed: the request leaves the pacing windows one window from now.
      done();
    }
  }
}

/** Sends with axios and turns the answer into a WHATWG Response for the SDK. Never uses the global fetch. */
class AxiosTransportLink implements Middleware {
  constructor(
    private readonly http: AxiosInstance,
    private readonly client: GraphClient,
  ) {}

  async execute(ctx: Context): Promise<void> {
    const st = stateOf(ctx);
    const options = (ctx.options ?? {}) as FetchOptions;
    const url = typeof ctx.request === 'string' ? ctx.request : ctx.request.url;
    const headers = headerRecord(options.headers);
    if (!hasHeader(headers, 'Accept-Language')) headers['Accept-Language'] = 'en-US';
    if (!hasHeader(headers, 'Accept')) headers['Accept'] = 'application/json';
    if (!hasHeader(headers, 'client-request-id')) headers['client-request-id'] = randomUUID();
    throwIfAborted(st.signal);
    this.client.count(st, 'requests', st.requests);
    if (st.isBatch) this.client.count(st, 'batches', 1);
    let res;
    try {
      res = await this.http.request<Buffer>({
        method: options.method ?? 'GET',
        url,
        headers,
        data: options.body ?? undefined,
        responseType: 'arraybuffer',
        transformResponse: (d: unknown) => d,
        signal: st.signal,
      });
    } catch (e) {
      if (axios.isCancel(e) || st.signal.aborted) throw abortReason(st.signal);
      const failure = sanitiseTransportError(e);
      // axios reports a connection lost in the middle of the answer as ERR_BAD_RESPONSE "stream has been aborted".
      if (failure.code === 'ERR_BAD_RESPONSE' && /aborted/i.test(failure.message)) failure.code = 'ERR_STREAM_PREMATURE_CLOSE';
      throw new TransportFailure(failure);
    }
    const h = new Headers();
    for (const [k, v] of Object.entries((res.headers ?? {}) as Record<string, unknown>)) {
      if (v === undefined || v === null) continue;
      try {
        h.append(k, Array.isArray(v) ? v.join(', ') : String(v));
      } catch {
        /* a header value the Headers class refuses: not one we read */
      }
    }
    const status = res.status >= 200 && res.status <= 599 ? res.status : 502;
    // Buffer is a Uint8Array; the DOM typings want an ArrayBuffer-backed view.
    const body = NULL_BODY_STATUS.has(status) || !res.data ? null : (new Uint8Array(res.data) as Uint8Array<ArrayBuffer>);
    ctx.response = new Response(body, { status, statusText: res.statusText || '', headers: h });
  }
}

// ---------------------------------------------------------------- the client

function inferEntity(path: string): EntityName | undefined {
  const p = path.split('?')[0].replace(/\/+$/, '');
  if (/(^|\/)managedDevices(\/[^/]+)?$/.test(p) || /(^|\/)users\/[^/]+\/managedDevices(\/[^/]+)?$/.test(p)) return 'managedDevice';
  return undefined;
}

export class GraphClient {
  /** Lifetime totals of this client. */
  readonly stats: RequestStats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
  /** @internal */
  readonly pacer: GraphPacer;
  private readonly sdk: Client;
  private readonly head: Middleware;
  private readonly policy: RetryPolicy;
  private readonly base: URL;
  private readonly baseUrl: string;
  private readonly closer = new AbortController();
  private readonly log?: GraphLog;
  private readonly validateSelect: SelectValidator;
  private readonly batchConcurrency: number;

  constructor(private readonly opts: GraphClientOptions) {
    this.baseUrl = opts.baseUrl.trim().replace(/\/+$/, '');
    this.base = new URL(this.baseUrl);
    if (this.base.protocol !== 'https:') throw new Error(`The Graph URL must use https (got ${this.base.protocol})`);
    this.policy = resolveRetry(opts.retry);
    this.pacer = new GraphPacer(opts.limits);
    this.log = opts.log;
    this.validateSelect = opts.validateSelect ?? assertSelect;
    // Every call in flight listens to the client's signal (close()); there may be many.
    setMaxListeners(0, this.closer.signal);
    this.batchConcurrency = Math.max(1, Math.floor(opts.batchConcurrency ?? 4));
    const retry = new RetryLink(this);
    this.head = retry;
    this.sdk = Client.initWithMiddleware({
      baseUrl: this.baseUrl,
      defaultVersion: 'v1.0',
      middleware: [retry, new AuthLink(opts.getToken), new PacingLink(this), new AxiosTransportLink(createAxios(opts.agent, opts.timeoutMs ?? 30_000), this)],
    });
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  /** GET a single resource or one page (no paging). */
  async get<T>(path: string, o: CallOptions = {}): Promise<T> {
    return (await this.viaSdk('GET', path, undefined, o)) as T;
  }

  /** POST (a write: takes a write token). 204 and other empty answers give undefined. Not repeated after an ambiguous failure. */
  async post<T>(path: string, body: unknown, o: CallOptions = {}): Promise<T | undefined> {
    return (await this.viaSdk('POST', path, body, o)) as T | undefined;
  }

  /**
   * Every page of a collection. The first request is built from `path` and
   * the options; after that `@odata.nextLink` is followed exactly as Graph
   * returned it. It is sent through our middleware chain directly, not
   * through the SDK's request builder: the builder splits a URL's query
   * string on '&' and '=' and joins it again, which can re-order or alter
   * `$skiptoken` and the original query options, and Graph says to use the
   * link as is. A link seen before ends the run with an error (loop guard),
   * and a link to another host is not followed (our token would go there).
   */
  async *pages<T>(path: string, o: CallOptions = {}): AsyncGenerator<Page<T>> {
    const seen = new Set<string>();
    let page = 0;
    let body = (await this.get<ODataCollection<T>>(path, o)) ?? {};
    for (;;) {
      if (!Array.isArray(body.value)) {
        throw new GraphRequestError(`Microsoft Graph answered GET ${pathLabel(path)} without a "value" list (page ${page + 1})`, { code: 'invalidResponse' });
      }
      page++;
      const next = body['@odata.nextLink'];
      yield { items: body.value, page, more: !!next };
      if (!next) return;
      if (seen.has(next)) {
        throw new GraphRequestError(
          `Microsoft Graph returned the same next-page link twice while reading ${pathLabel(path)} (after page ${page}); stopped to avoid an endless loop`,
          { code: 'nextLinkLoop' },
        );
      }
      seen.add(next);
      let nextUrl: URL;
      try {
        nextUrl = new URL(next);
      } catch {
        throw new GraphRequestError(`Microsoft Graph returned a next-page link that is not a URL while reading ${pathLabel(path)}`, { code: 'invalidNextLink' });
      }
      if (nextUrl.origin !== this.base.origin) {
        throw new GraphRequestError(
          `Microsoft Graph returned a next-page link to another host (${nextUrl.host}) while reading ${pathLabel(path)}; not followed, so the access token is not sent there`,
          { code: 'invalidNextLink' },
        );
      }
      body = ((await this.direct('GET', next, undefined, o)) as ODataCollection<T>) ?? {};
    }
  }

  /**
   * JSON `$batch`: chunks of at most 20 (fewer when a pacing burst is
   * smaller), matched by id, with only the inner requests that failed with
   * 429/503 (and 504 for GETs) sent again, after the longest inner
   * Retry-After (backoff when none), within the same total-wait bound as a
   * single call. An outer failure (after its own retries) gives every item of
   * that chunk the outer status (0 when there was no answer) and the error in
   * `body.error`. Only an abort rejects the whole call.
   */
  async batch(requests: BatchRequest[], o: CallOptions = {}): Promise<Map<string, BatchResult>> {
    const out = new Map<string, BatchResult>();
    if (!requests.length) return out;
    const ids = new Set<string>();
    for (const r of requests) {
      if (typeof r.id !== 'string' || !r.id) throw new TypeError('Every $batch request needs a non-empty string id');
      if (ids.has(r.id)) throw new TypeError(`Duplicate $batch request id "${r.id}"`);
      ids.add(r.id);
      if (!['GET', 'POST', 'PATCH', 'DELETE'].includes(r.method)) throw new TypeError(`Unsupported $batch method "${r.method}"`);
      if (/^[a-z][a-z0-9+.-]*:/i.test(r.url)) throw new TypeError(`$batch request urls must be relative to the version root (got "${r.url}")`);
      if (r.method === 'GET' && r.body !== undefined) throw new TypeError(`$batch GET request "${r.id}" cannot have a body`);
      // Graph refuses the WHOLE $batch (outer 400 "Write request id : <id> does not contain Content-Type
      // header or body.", no item runs) when one POST/PATCH item comes without a body, even for actions
      // that take no parameters (syncDevice, remoteLock, retire …); there the body must be `{}`. The
      // client refuses such an item itself instead of filling in `{}`: only the caller knows that the
      // action takes no parameters, and a body made up here could turn a request Graph would refuse into
      // one that runs with defaults nobody chose. A body is always sent with Content-Type (toBatchStep).
      if (BODY_METHODS.has(r.method) && r.body === undefined) {
        throw new TypeError(`$batch ${r.method} request "${r.id}" needs a body (use {} for an action without parameters): Graph refuses the whole batch otherwise`);
      }
    }
    const bucket = o.bucket ?? 'devices';
    const max = this.pacer.maxBatch(bucket);
    const chunks: BatchRequest[][] = [];
    let cur: BatchRequest[] = [];
    let curWrites = 0;
    for (const r of requests) {
      const w = WRITE_METHODS.has(r.method) ? 1 : 0;
      if (cur.length >= max.requests || curWrites + w > max.writes) {
        chunks.push(cur);
        cur = [];
        curWrites = 0;
      }
      cur.push(r);
      curWrites += w;
    }
    if (cur.length) chunks.push(cur);

    const link = this.begin(o.signal);
    try {
      let nextChunk = 0;
      const worker = async () => {
        while (nextChunk < chunks.length) {
          const chunk = chunks[nextChunk++];
          await this.runChunk(chunk, o, bucket, link.signal, out);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.batchConcurrency, chunks.length) }, worker));
    } catch (e) {
      throw isAbortError(e) || link.signal.aborted ? abortReason(link.signal) : e;
    } finally {
      link.dispose();
    }
    return out;
  }

  /** Aborts everything of this client: in-flight requests, retry waits, pacing queues. Later calls reject with AbortError. */
  close(): void {
    if (this.closed) return;
    this.closer.abort(new GraphAbortError('The Graph client was closed'));
    this.pacer.stop();
  }

  // ------------------------------------------------------------ internals

  /** @internal */
  count(st: CallState, key: keyof RequestStats, n: number): void {
    if (!n) return;
    this.stats[key] += n;
    const s = st.stats as Partial<RequestStats> | undefined;
    if (!s) return;
    if (key === 'batches' || key === 'pacingWaitMs') {
      if (typeof s[key] === 'number') s[key] = (s[key] as number) + n;
    } else {
      s[key] = (s[key] ?? 0) + n;
    }
  }

  /** @internal */
  pauseBucket(bucket: Bucket, ms: number): void {
    this.pacer.pause(bucket, ms);
  }

  /** @internal */
  debug(m: string): void {
    this.log?.debug?.(m);
  }

  private begin(signal?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
    const link = linkSignals(this.closer.signal, signal);
    if (link.signal.aborted) {
      link.dispose();
      throw abortReason(link.signal);
    }
    return link;
  }

  private state(init: Omit<CallState, 'budget'> & { budget?: RetryBudget }): CallState {
    return { ...init, budget: init.budget ?? new RetryBudget(this.policy) };
  }

  private checkSelect(path: string, o: CallOptions): void {
    if (!o.select) return;
    if (!o.select.length) throw new TypeError('An empty $select list selects nothing; leave it out instead');
    for (const p of o.select) if (!SELECT_NAME.test(p)) throw new TypeError(`"${p}" is not a property name for $select`);
    const entity = o.entity ?? inferEntity(path);
    if (entity) this.validateSelect(o.version ?? 'v1.0', entity, o.select);
  }

  /** A call through the SDK's request builder. */
  private async viaSdk(method: 'GET' | 'POST', path: string, body: unknown, o: CallOptions): Promise<unknown> {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path)) throw new TypeError(`Graph paths must be relative to the version root (got "${path}")`);
    this.checkSelect(path, o);
    const link = this.begin(o.signal);
    const version = o.version ?? 'v1.0';
    const st = this.state({
      method,
      label: `${method} /${version}/${path.split('?')[0].replace(/^\/+/, '')}`,
      bucket: o.bucket ?? 'devices',
      requests: 1,
      writes: method === 'GET' || o.readOnly ? 0 : 1,
      safeToRepeat: isSafeMethod(method) || o.readOnly === true,
      isBatch: false,
      signal: link.signal,
      stats: o.stats,
    });
    try {
      let req = this.sdk.api(path).version(version).responseType(ResponseType.TEXT).option(CALL, st);
      if (o.headers) req = req.headers(o.headers);
      if (o.select) req = req.select(o.select);
      // The builder puts values into the query string as they are: encode them here.
      if (o.filter !== undefined) req = req.filter(encodeURIComponent(o.filter));
      if (o.top !== undefined) req = req.top(Math.floor(o.top));
      for (const [k, v] of Object.entries(o.query ?? {})) req = req.query({ [k]: encodeURIComponent(v) });
      const text = (method === 'GET' ? await req.get() : await req.post(body)) as string | undefined;
      return parseJson(text ?? '', st.label);
    } catch (e) {
      throw this.unwrap(e, st);
    } finally {
      link.dispose();
    }
  }

  /** A request sent through our middleware chain as is (nextLink, $batch). */
  private async direct(method: 'GET' | 'POST', url: string, body: string | undefined, o: CallOptions, st?: CallState): Promise<unknown> {
    const link = st ? undefined : this.begin(o.signal);
    const call =
      st ??
      this.state({
        method,
        label: `${method} ${pathLabel(url)}`,
        bucket: o.bucket ?? 'devices',
        requests: 1,
        writes: method === 'GET' ? 0 : 1,
        safeToRepeat: isSafeMethod(method),
        isBatch: false,
        signal: link!.signal,
        stats: o.stats,
      });
    try {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const options: FetchOptions & Record<string, unknown> = { method, headers, body, [CALL]: call };
      const ctx: Context = { request: url, options };
      await this.head.execute(ctx);
      const res = ctx.response as Response;
      if (res.status === 204) return undefined;
      return parseJson(await res.text(), call.label);
    } catch (e) {
      throw this.unwrap(e, call);
    } finally {
      link?.dispose();
    }
  }

  /** The error to give the caller: ours when our middleware threw it (the SDK wraps errors in GraphError). */
  private unwrap(e: unknown, st: CallState): unknown {
    if (st.signal.aborted) return abortReason(st.signal);
    const err = st.failure ?? e;
    if (isAbortError(err)) return err instanceof GraphAbortError ? err : new GraphAbortError();
    if (err instanceof GraphError) {
      return new GraphRequestError(`Microsoft Graph call ${st.label} failed: ${err.message || err.code || `HTTP ${err.statusCode}`}`, {
        status: err.statusCode > 0 ? err.statusCode : undefined,
        code: err.code ?? undefined,
        requestId: err.requestId ?? undefined,
        retryable: err.statusCode === 429 || err.statusCode >= 500,
      });
    }
    return err;
  }

  /** One $batch chunk until every item has a final answer or the retry allowance is used up. */
  private async runChunk(items: BatchRequest[], o: CallOptions, bucket: Bucket, signal: AbortSignal, out: Map<string, BatchResult>): Promise<void> {
    const version = o.version ?? 'v1.0';
    const url = `${this.baseUrl}/${version}/$batch`;
    const budget = new RetryBudget(this.policy);
    let pending = items;
    for (;;) {
      throwIfAborted(signal);
      const st = this.state({
        method: 'POST',
        label: `POST /${version}/$batch (${pending.length} request${pending.length === 1 ? '' : 's'})`,
        bucket,
        requests: pending.length,
        writes: pending.filter((r) => WRITE_METHODS.has(r.method)).length,
        // The outer request may be repeated after an ambiguous failure only when every inner one is a read.
        safeToRepeat: pending.every((r) => isSafeMethod(r.method)),
        isBatch: true,
        signal,
        stats: o.stats,
        budget,
      });
      let answer: BatchResponseBody;
      try {
        const content = new BatchRequestContent(pending.map(toBatchStep));
        const payload = JSON.stringify(await content.getContent());
        answer = (await this.direct('POST', url, payload, { ...o, headers: undefined }, st)) as BatchResponseBody;
        if (!answer || !Array.isArray(answer.responses)) {
          throw new GraphRequestError(`Microsoft Graph answered ${st.label} without a "responses" list`, { code: 'invalidResponse' });
        }
      } catch (e) {
        if (isAbortError(e) || signal.aborted) throw abortReason(signal);
        const err = e as GraphRequestError;
        for (const r of pending) {
          out.set(r.id, { status: err.status ?? 0, body: { error: { code: err.code ?? 'requestFailed', message: err.message } } });
        }
        this.log?.warn(`${err.message} (${pending.length} request${pending.length === 1 ? '' : 's'} of the $batch failed)`);
        return;
      }

      const responses = new BatchResponseContent(normaliseBatchAnswer(answer));
      const again: BatchRequest[] = [];
      let longestRetryAfter: number | undefined;
      let throttled = 0;
      for (const r of pending) {
        const res = responses.getResponseById(r.id);
        if (!res) {
          const item = { status: 0, body: { error: { code: 'noResponse', message: `Microsoft Graph's $batch answer had no response for request "${r.id}"` } } };
          out.set(r.id, item);
          if (isSafeMethod(r.method)) again.push(r);
          continue;
        }
        const item = await readBatchItem(res);
        out.set(r.id, item);
        if (isRetryableStatus(item.status, isSafeMethod(r.method))) {
          again.push(r);
          if (item.status === 429) throttled++;
          const ra = parseRetryAfter(item.headers?.['retry-after']);
          if (ra !== undefined) longestRetryAfter = Math.max(longestRetryAfter ?? 0, ra);
        }
      }
      if (throttled) this.count(st, 'throttled', throttled);
      if (!again.length) return;
      const d = budget.plan(longestRetryAfter);
      // As for single calls: pause the bucket only for a wait that fits the budget.
      if (throttled && longestRetryAfter !== undefined && d.ok) this.pauseBucket(bucket, longestRetryAfter);
      if (!d.ok) {
        this.log?.warn(
          `Microsoft Graph ${throttled ? 'kept throttling' : 'kept failing'} ${again.length} request${again.length === 1 ? '' : 's'} of ${st.label}: ${gaveUpText(budget, d)}; their last status is returned`,
        );
        return;
      }
      this.debug(`${again.length} of ${pending.length} requests in ${st.label} failed with 429/503/504; retrying them in ${fmtSeconds(d.delayMs)}`);
      budget.spend(d.delayMs);
      this.count(st, 'retries', again.length);
      this.count(st, 'throttleWaitMs', d.delayMs);
      await sleep(d.delayMs, signal, abortReason);
      pending = again;
    }
  }
}

interface ODataCollection<T> {
  value?: T[];
  '@odata.nextLink'?: string;
}

/** One inner request as the SDK's BatchRequestContent wants it: a WHATWG Request (the SDK keeps only path and query). */
function toBatchStep(r: BatchRequest): BatchRequestStep {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  let body: string | undefined;
  if (r.body !== undefined) {
    body = JSON.stringify(r.body);
    // Graph requires a Content-Type on every inner request with a body.
    if (!hasHeader(headers, 'Content-Type')) headers['Content-Type'] = 'application/json';
  }
  const rel = r.url.startsWith('/') ? r.url : `/${r.url}`;
  return { id: r.id, request: new Request(`${BATCH_ORIGIN}${rel}`, { method: r.method, headers, body }) };
}

/**
 * Makes Graph's $batch answer safe for BatchResponseContent, which builds
 * WHATWG Responses: it serialises a JSON body only when the header is spelt
 * exactly "Content-Type", and the Response constructor refuses a body on
 * 204 and a status outside 200–599.
 */
function normaliseBatchAnswer(answer: BatchResponseBody): BatchResponseBody {
  const responses = answer.responses.map((raw) => {
    const r = raw as { id?: unknown; status?: unknown; headers?: Record<string, string>; body?: unknown };
    let status = typeof r.status === 'number' ? r.status : Number(r.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) status = 502;
    const headers: Record<string, string> = {};
    let contentType: string | undefined;
    for (const [k, v] of Object.entries(r.headers ?? {})) {
      if (k.toLowerCase() === 'content-type') contentType = String(v);
      else headers[k] = String(v);
    }
    let body = r.body;
    if (NULL_BODY_STATUS.has(status)) {
      // no body and no Content-Type: with a JSON Content-Type the SDK would serialise even null into "null"
      body = undefined;
      contentType = undefined;
    }
    if (body !== null && body !== undefined && typeof body === 'object') contentType = contentType && /json/i.test(contentType) ? contentType : 'application/json';
    if (contentType) headers['Content-Type'] = contentType;
    return { id: String(r.id), status, headers, body };
  });
  return { responses };
}

async function readBatchItem(res: Response): Promise<BatchResult> {
  const headers = lowerHeaders(res.headers);
  const text = await res.text();
  let body: unknown = undefined;
  if (text) {
    if (/json/i.test(headers['content-type'] ?? '')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    } else body = text;
  }
  const out: BatchResult = { status: res.status, headers };
  if (body !== undefined) out.body = body;
  return out;
}
