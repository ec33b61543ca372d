/**
 * Error types of the Graph client. Messages are plain sentences for people
 * (they end up in node status and logs); they never contain a token, a
 * header or a request body.
 */

export interface GraphRequestErrorInit {
  status?: number;
  code?: string;
  requestId?: string;
  retryable?: boolean;
  /** Attempts made (first try included) before giving up. */
  attempts?: number;
  /** Time spent waiting between attempts, in ms. */
  waitedMs?: number;
  /** A sanitised low-level error ({ code, message } only, never the request config). */
  cause?: unknown;
}

/** A Graph call that failed for good: an HTTP error, a transport failure, or retries exhausted. */
export class GraphRequestError extends Error {
  override name = 'GraphRequestError';
  /** HTTP status of the last answer; undefined when no answer came (connection failure). */
  status?: number;
  /** Graph's `error.code` (e.g. `Request_ResourceNotFound`) or a transport code (e.g. `ECONNRESET`). */
  code?: string;
  /** `request-id` of the last answer, for Microsoft support. */
  requestId?: string;
  /** True when trying the same call again later may well succeed (throttling, outages, resets). */
  retryable: boolean;
  attempts?: number;
  waitedMs?: number;

  constructor(message: string, init: GraphRequestErrorInit = {}) {
    super(message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.retryable = init.retryable ?? false;
    this.attempts = init.attempts;
    this.waitedMs = init.waitedMs;
  }
}

/**
 * A call cancelled through its `signal` or by `GraphClient.close()`. The
 * `name` is 'AbortError', as with fetch and the DOM, so callers can test
 * `err.name === 'AbortError'` whatever produced it.
 */
export class GraphAbortError extends Error {
  override name = 'AbortError';
  constructor(message = 'The Graph request was aborted') {
    super(message);
  }
}

export function isAbortError(err: unknown): boolean {
  return !!err && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError';
}

/** The reason carried by an aborted signal, as an AbortError (keeps our own message when we set one). */
export function abortReason(signal: AbortSignal | undefined): GraphAbortError {
  const r = signal?.reason;
  if (r instanceof GraphAbortError) return r;
  return new GraphAbortError();
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** A transport failure reduced to what is safe to keep: never the axios config (it holds the Authorization header). */
export function sanitiseTransportError(err: unknown): Error & { code?: string } {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  const out = new Error(typeof e?.message === 'string' ? e.message : String(err)) as Error & { code?: string };
  if (code) out.code = code;
  return out;
}
