/**
 * App-only access tokens for Graph through msal-node's client-credentials
 * flow. One provider per connection: msal keeps the token in its in-memory
 * cache and renews it shortly before expiry, so callers simply ask every time.
 */
import https from 'node:https';
import {
  ConfidentialClientApplication,
  LogLevel,
  type Configuration,
  type INetworkModule,
  type NetworkRequestOptions,
} from '@azure/msal-node';
import { createMsalNetworkClient } from '../shared/http-transport';
import type { CloudEndpoints } from './clouds';
import type { LoadedCertificate } from './certificate';
import { abortError, raceAbort } from '../shared/abort';
import { ConnectionError, aadstsNumber, classifyTransportError, firstLine, fromAadsts } from '../shared/connection-errors';

export type AuthType = 'secret' | 'certificate';

export interface AppIdentity {
  tenantId: string;
  clientId: string;
  authType: AuthType;
  clientSecret?: string;
  certificate?: LoadedCertificate;
}

export interface TokenProviderOptions {
  identity: AppIdentity;
  endpoints: CloudEndpoints;
  agent: https.Agent;
  timeoutMs?: number;
  /** True when the authority is not one of Microsoft's (custom cloud): msal must not run instance discovery. */
  customAuthority?: boolean;
  log?: { warn(m: string): void; debug?(m: string): void };
}

export interface TokenClaims {
  tid?: string;
  appid?: string;
  aud?: string;
  roles?: string[];
  exp?: number;
}

/** Reads (does not verify) the claims of a JWT access token: we only want its roles and tenant. */
export function readTokenClaims(token: string): TokenClaims {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    return {};
  }
}

interface LastExchange {
  url?: string;
  status?: number;
  body?: unknown;
  error?: unknown;
}

/** Wraps the network module to remember the last answer, so errors msal summarises can still be explained. */
function recordingNetworkClient(inner: INetworkModule, last: LastExchange): INetworkModule {
  const wrap =
    (fn: INetworkModule['sendGetRequestAsync']) =>
    async <T>(url: string, options?: NetworkRequestOptions) => {
      last.url = url;
      last.status = undefined;
      last.body = undefined;
      last.error = undefined;
      try {
        const res = await fn<T>(url, options);
        last.status = res.status;
        last.body = res.body;
        return res;
      } catch (err) {
        last.error = err;
        throw err;
      }
    };
  return {
    sendGetRequestAsync: wrap(inner.sendGetRequestAsync.bind(inner)),
    sendPostRequestAsync: wrap(inner.sendPostRequestAsync.bind(inner)),
  };
}

export class TokenProvider {
  private readonly cca: ConfidentialClientApplication;
  private readonly scope: string;
  private readonly last: LastExchange = {};
  private readonly authorityHost: string;
  /** Claims of the most recent token (roles, tenant) for status and verification. */
  claims: TokenClaims = {};

  constructor(private readonly opts: TokenProviderOptions) {
    const { identity, endpoints } = opts;
    this.authorityHost = new URL(endpoints.authorityHost).host;
    this.scope = `${endpoints.graphBaseUrl}/.default`;
    const auth: Configuration['auth'] = {
      clientId: identity.clientId,
      authority: `${endpoints.authorityHost}/${identity.tenantId}`,
    };
    if (opts.customAuthority) auth.knownAuthorities = [this.authorityHost];
    if (identity.authType === 'secret') {
      if (!identity.clientSecret) throw new ConnectionError('invalidConfig', 'The client secret is missing', { field: 'clientSecret', reason: 'required' });
      auth.clientSecret = identity.clientSecret;
    } else {
      if (!identity.certificate) throw new ConnectionError('invalidConfig', 'The certificate (.pfx) is missing', { field: 'pfx', reason: 'required' });
      auth.clientCertificate = {
        thumbprintSha256: identity.certificate.thumbprintSha256,
        privateKey: identity.certificate.privateKeyPem,
      };
    }
    this.cca = new ConfidentialClientApplication({
      auth,
      system: {
        networkClient: recordingNetworkClient(createMsalNetworkClient(opts.agent, opts.timeoutMs), this.last),
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: LogLevel.Warning,
          // msal's own warnings carry no secrets (PII logging is off); pass them on at debug level.
          loggerCallback: (_level, message) => opts.log?.debug?.(`msal: ${message}`),
        },
      },
    });
  }

  /** An access token for Graph; cached by msal until shortly before expiry. */
  async getToken(signal?: AbortSignal, opts: { forceRefresh?: boolean } = {}): Promise<string> {
    if (signal?.aborted) throw abortError();
    // forceRefresh: Graph rejected the cached token (e.g. revoked roles); ask the identity platform again.
    const attempt = this.cca.acquireTokenByClientCredential({ scopes: [this.scope], skipCache: opts.forceRefresh === true });
    let result;
    try {
      result = signal ? await raceAbort(attempt, signal) : await attempt;
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw this.explain(err);
    }
    if (!result?.accessToken) throw new ConnectionError('unexpected', 'The identity platform returned no access token');
    this.claims = readTokenClaims(result.accessToken);
    return result.accessToken;
  }

  /** Turns a msal failure into a ConnectionError in plain words. */
  private explain(err: unknown): ConnectionError {
    const transport = this.last.error ? classifyTransportError(this.last.error, this.authorityHost) : null;
    if (transport) return transport;
    const num = aadstsNumber(err, this.last.body);
    const e = err as { errorCode?: string; errorMessage?: string; message?: string };
    const known = fromAadsts(num, e?.errorMessage ?? e?.message);
    if (known) return known;
    if (this.last.status && this.last.status >= 500) {
      return new ConnectionError('unreachable', `The identity platform at ${this.authorityHost} answered HTTP ${this.last.status}`, { host: this.authorityHost, reason: `HTTP ${this.last.status}` });
    }
    return new ConnectionError('unexpected', `Sign-in failed: ${e?.errorCode ?? ''} ${firstLine(String(e?.errorMessage ?? e?.message ?? err))}`.trim(), { message: firstLine(String(e?.errorMessage ?? e?.message ?? err)) });
  }
}

