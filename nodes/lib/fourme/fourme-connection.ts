/**
 * One 4me connection = validated settings + the shared FourMeClient + the
 * people cache. `intune-4me-config` owns exactly one; "Verify connection"
 * builds a short-lived one from the editor's form values.
 */
import type { Node } from 'node-red';
import type { HealthBoard } from '../node-red/config-health';
import { FourMeClient, FourMeError, isAbort, type FourMeAuth } from './fourme-client';
import { EndpointError, accountIdProblem, resolveEndpoints, type FourMeEndpoints } from './fourme-endpoints';
import { OPS } from './fourme-operations';
import { PeopleDirectory } from './fourme-people';
import { timeScale, timeScaleWarning } from '../shared/time-scale';
import { proxyPrecheck } from '../node-red/proxy-config';
import type { ProxySource } from '../shared/proxy-route';

export type FourMeAuthType = 'token' | 'oauth';

export interface FourMeSettings {
  accountId: string;
  authType: FourMeAuthType;
  clientId: string;
  endpoints: FourMeEndpoints;
  timeoutMs: number;
  requestsPer2s: number;
  requestReserve: number;
  costReserve: number;
  retryAfterFallbackMs: number;
  asyncTimeoutMs: number;
  asyncPollMs: number;
  personCacheMs: number;
  ca?: string | string[];
  /** Where the HTTP proxy comes from (proxy-config.ts); none: always direct. */
  proxy?: ProxySource;
}

export interface FourMeSecrets {
  token?: string;
  clientSecret?: string;
}

/** A configuration problem, naming the setting. */
export class FourMeConfigError extends Error {
  override name = 'FourMeConfigError';
  readonly code = 'invalidConfig';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    // "accountId is required", or a whole sentence as it is.
    super(/^[a-z]/.test(reason) ? `${field} ${reason}` : reason);
  }
}

function int(raw: unknown, fallback: number, min: number, max: number, field: string): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new FourMeConfigError(field, `must be a whole number from ${min} to ${max}`);
  return n;
}

/** Validates raw node properties (from the flow or the editor form). Throws FourMeConfigError. */
export function parseFourMeSettings(raw: Record<string, unknown>, ca?: string | string[]): FourMeSettings {
  const accountId = String(raw.accountId ?? '').trim();
  const ap = accountIdProblem(accountId);
  if (ap) throw new FourMeConfigError('accountId', ap);
  let endpoints: FourMeEndpoints;
  try {
    endpoints = resolveEndpoints({ environment: raw.environment, region: raw.region, brand: raw.brand, graphqlUrl: raw.graphqlUrl, tokenUrl: raw.tokenUrl });
  } catch (err) {
    if (err instanceof EndpointError) throw new FourMeConfigError(err.field, err.message);
    throw err;
  }
  const authType = (String(raw.authType ?? '').trim() || 'token') as FourMeAuthType;
  if (authType !== 'token' && authType !== 'oauth') throw new FourMeConfigError('authType', 'must be "token" (personal access token) or "oauth" (client credentials)');
  const clientId = String(raw.clientId ?? '').trim();
  if (authType === 'oauth') {
    if (!clientId) throw new FourMeConfigError('clientId', 'is required for OAuth client credentials');
    if (!endpoints.tokenUrl) throw new FourMeConfigError('tokenUrl', 'is required for OAuth client credentials with custom endpoints');
  }
  return {
    accountId,
    authType,
    clientId,
    endpoints,
    timeoutMs: int(raw.timeoutSec, 60, 1, 600, 'timeoutSec') * 1000,
    requestsPer2s: int(raw.requestsPer2s, 20, 1, 20, 'requestsPer2s'),
    requestReserve: int(raw.requestReserve, 20, 0, 100_000, 'requestReserve'),
    costReserve: int(raw.costReserve, 100, 0, 1_000_000, 'costReserve'),
    retryAfterFallbackMs: int(raw.retryAfterFallbackSec, 60, 1, 3600, 'retryAfterFallbackSec') * 1000,
    asyncTimeoutMs: int(raw.asyncTimeoutSec, 300, 5, 3600, 'asyncTimeoutSec') * 1000,
    asyncPollMs: int(raw.asyncPollMs, 1000, 50, 60_000, 'asyncPollMs'),
    personCacheMs: int(raw.personCacheMin, 60, 0, 10_080, 'personCacheMin') * 60_000,
    ca,
  };
}

/**
 * Where the connection's secrets go: the GraphQL endpoint (token) and the
 * OAuth token endpoint (client secret). A saved secret is used by "Verify
 * connection" only when the form names these.
 */
export function secretEndpoint(raw: Record<string, unknown>): string {
  const e = parseFourMeSettings(raw).endpoints;
  return e.tokenUrl ? `${e.graphqlUrl} + ${e.tokenUrl}` : e.graphqlUrl;
}

export function authOf(s: FourMeSettings, secrets: FourMeSecrets): FourMeAuth {
  if (s.authType === 'oauth') {
    if (!secrets.clientSecret) throw new FourMeConfigError('clientSecret', 'is required for OAuth client credentials');
    return { kind: 'oauth', clientId: s.clientId, clientSecret: secrets.clientSecret };
  }
  if (!secrets.token) throw new FourMeConfigError('token', 'is required: paste the personal access token');
  return { kind: 'token', token: secrets.token };
}

/** Test-only knobs a flow cannot set (the simulated 4me runs with small windows). */
export interface ClientOverrides {
  burstWindowMs?: number;
  maxRetries?: number;
}

export class FourMeConnection {
  readonly client: FourMeClient;
  readonly people: PeopleDirectory;

  constructor(
    readonly settings: FourMeSettings,
    secrets: FourMeSecrets,
    log?: { debug?(m: string): void; warn?(m: string): void },
    overrides: ClientOverrides = {},
  ) {
    // 1 unless a benchmark shrinks the limit windows (time-scale.ts).
    const scale = timeScale();
    if (scale !== 1) log?.warn?.(timeScaleWarning(scale));
    this.client = new FourMeClient({
      endpoints: settings.endpoints,
      accountId: settings.accountId,
      auth: authOf(settings, secrets),
      ca: settings.ca,
      proxy: settings.proxy,
      timeoutMs: settings.timeoutMs,
      burst: { requests: settings.requestsPer2s, windowMs: overrides.burstWindowMs ?? 2000 / scale },
      requestReserve: settings.requestReserve,
      costReserve: settings.costReserve,
      retryAfterFallbackMs: settings.retryAfterFallbackMs,
      asyncTimeoutMs: settings.asyncTimeoutMs,
      asyncPollMs: settings.asyncPollMs,
      maxRetries: overrides.maxRetries,
      log,
    });
    this.people = new PeopleDirectory(this.client, { ttlMs: settings.personCacheMs });
  }

  close(): void {
    this.client.close();
  }
}

/** What nodes using an `intune-4me-config` may rely on. */
export interface FourMeConfigNode extends Node<FourMeSecrets> {
  board: HealthBoard;
  /** The live connection; throws the configuration problem in plain words when there is none. */
  connection(): FourMeConnection;
}

export interface VerifyAnswer {
  ok: boolean;
  code: string;
  message: string;
  params: Record<string, unknown>;
}

/** The plain-word code of an error, for the editor and for node errors. */
export function errorCode(err: unknown): string {
  if (err instanceof FourMeConfigError) return 'invalidConfig';
  if (err instanceof FourMeError) {
    switch (err.kind) {
      case 'auth':
        return 'authFailed';
      case 'forbidden':
        return 'forbidden';
      case 'notFound':
        return 'notFound';
      case 'tls':
        return 'tlsError';
      case 'unreachable':
        return 'unreachable';
      case 'throttled':
        return 'throttled';
      case 'config':
        return 'invalidConfig';
      default:
        return 'unexpected';
    }
  }
  if (isAbort(err)) return 'aborted';
  return 'unexpected';
}

/**
 * "Verify connection": a token (OAuth), then `me` and `account` with the
 * account header. Plain words; never a secret, a token or a header.
 */
export async function verifyFourMe(
  raw: Record<string, unknown>,
  secrets: FourMeSecrets,
  opts: { ca?: string | string[]; proxy?: ProxySource; signal?: AbortSignal; overrides?: ClientOverrides } = {},
): Promise<VerifyAnswer> {
  let conn: FourMeConnection | undefined;
  try {
    const settings = { ...parseFourMeSettings(raw, opts.ca), proxy: opts.proxy };
    // The client reports a proxy failure only as "cannot be reached": ask the proxy first, to name it.
    const viaProxy = await proxyPrecheck([settings.endpoints.graphqlUrl, ...(settings.authType === 'oauth' && settings.endpoints.tokenUrl ? [settings.endpoints.tokenUrl] : [])], settings.proxy, {
      ca: settings.ca,
      timeoutMs: Math.min(settings.timeoutMs, 10_000),
    });
    if (viaProxy) return viaProxy;
    // One attempt and a short wait: the editor waits for the answer.
    conn = new FourMeConnection({ ...settings, retryAfterFallbackMs: Math.min(settings.retryAfterFallbackMs, 5000) }, secrets, undefined, {
      maxRetries: 1,
      ...(opts.overrides ?? {}),
    });
    const data = await conn.client.graphql<{ me: { id: string; name: string | null; primaryEmail: string | null } | null; account: { id: string; name: string | null } | null }>(
      OPS.verify,
      {},
      { signal: opts.signal },
    );
    const lim = conn.client.lastLimits;
    return {
      ok: true,
      code: 'ok',
      message: `Connected to 4me account ${data.account?.name ?? settings.accountId} as ${data.me?.name ?? 'the token\u2019s person'}`,
      params: {
        account: data.account?.id ?? settings.accountId,
        accountName: data.account?.name ?? null,
        person: data.me?.name ?? null,
        host: new URL(settings.endpoints.graphqlUrl).host,
        requestsRemaining: lim.requestsRemaining ?? null,
        requestsLimit: lim.requestsLimit ?? null,
        costRemaining: lim.costRemaining ?? null,
        costLimit: lim.costLimit ?? null,
      },
    };
  } catch (err) {
    const code = errorCode(err);
    const params: Record<string, unknown> = {};
    if (err instanceof FourMeConfigError) {
      params.field = err.field;
      params.reason = err.reason;
    }
    if (err instanceof FourMeError && err.status) params.status = err.status;
    return { ok: false, code, message: (err as Error)?.message ?? String(err), params: { ...params, message: (err as Error)?.message ?? String(err) } };
  } finally {
    conn?.close();
  }
}
