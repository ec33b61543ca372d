/**
 * Plain-word classification of what goes wrong when connecting to Intune.
 * The codes are the ones the editor translates ("Verify connection") and the
 * ones nodes put into errors; messages never contain a secret.
 */
import { findProxyError, type ProxyError } from './proxy-agent';

export type ConnectionCode =
  | 'invalidConfig'
  | 'wrongTenant'
  | 'unknownClient'
  | 'wrongSecret'
  | 'expiredSecret'
  | 'unregisteredCertificate'
  | 'badCertificate'
  | 'expiredCertificate'
  | 'missingPermission'
  | 'unreachable'
  | 'tlsError'
  | 'proxyUnreachable'
  | 'proxyAuth'
  | 'proxyRefused'
  | 'unexpected';

export class ConnectionError extends Error {
  constructor(
    readonly code: ConnectionCode,
    message: string,
    readonly params: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ConnectionError';
  }
}

/** AADSTS numbers (Entra ID error codes) we turn into advice. */
const AADSTS: Record<string, { code: ConnectionCode; message: string }> = {
  '90002': { code: 'wrongTenant', message: 'The directory (tenant) was not found: check the tenant id or domain and the national cloud' },
  '90023': { code: 'wrongTenant', message: 'The directory (tenant) id is not valid' },
  '900023': { code: 'wrongTenant', message: 'The directory (tenant) id is not valid' },
  '700016': { code: 'unknownClient', message: 'No application with this client id exists in the tenant: check the application (client) id, or grant admin consent in this tenant' },
  '7000215': { code: 'wrongSecret', message: 'The client secret is wrong: copy the secret value (not its id) from the app registration' },
  '7000222': { code: 'expiredSecret', message: 'The client secret has expired: create a new one in the app registration' },
  '700027': { code: 'unregisteredCertificate', message: 'The certificate is not registered for this application (or its signature did not verify): upload the certificate (.cer) to the app registration' },
  '700024': { code: 'unregisteredCertificate', message: 'The signed client assertion was rejected as outside its valid time: check the clock of the Node-RED host' },
  '50012': { code: 'unregisteredCertificate', message: 'The client assertion was rejected: check the certificate registered for this application' },
};

/** Finds an AADSTS number in a msal error or in an Entra error body. */
export function aadstsNumber(...sources: unknown[]): string | null {
  for (const s of sources) {
    if (!s) continue;
    if (typeof s === 'object') {
      const o = s as { errorNo?: unknown; error_codes?: unknown; errorMessage?: unknown; error_description?: unknown; message?: unknown };
      if (o.errorNo) return String(o.errorNo);
      if (Array.isArray(o.error_codes) && o.error_codes.length) return String(o.error_codes[0]);
      const text = [o.errorMessage, o.error_description, o.message].filter((x) => typeof x === 'string').join(' ');
      const m = /AADSTS(\d+)/.exec(text);
      if (m) return m[1];
    } else if (typeof s === 'string') {
      const m = /AADSTS(\d+)/.exec(s);
      if (m) return m[1];
    }
  }
  return null;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|ERR_TLS|EPROTO|HOSTNAME|ALTNAME/i;
const NET_CODES = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ECONNABORTED|EHOSTUNREACH|ENETUNREACH|ERR_SOCKET|socket hang up|timeout/i;

/** The editor's code for each way a proxy fails (proxy-agent.ts). */
const PROXY_CODES: Record<ProxyError['kind'], ConnectionCode> = {
  ERR_PROXY_UNREACHABLE: 'proxyUnreachable',
  ERR_PROXY_AUTH: 'proxyAuth',
  ERR_PROXY_REFUSED: 'proxyRefused',
};

/** A proxy failure in plain words; params name the proxy and the server it was for (never credentials). */
export function fromProxyError(pe: ProxyError): ConnectionError {
  return new ConnectionError(PROXY_CODES[pe.kind], pe.message, { proxy: pe.proxy, target: pe.target, reason: pe.reason });
}

/** Classifies a low-level transport error (axios/Node) for `host`. */
export function classifyTransportError(err: unknown, host: string): ConnectionError | null {
  // The proxy first: its failures would otherwise read as the server being unreachable.
  const pe = findProxyError(err);
  if (pe) return fromProxyError(pe);
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  const text = `${code} ${e?.message ?? ''}`;
  if (TLS_CODES.test(text)) {
    return new ConnectionError('tlsError', `The TLS certificate of ${host} is not trusted (${code || e?.message}): for a proxy or private endpoint, add its CA in a TLS configuration`, { host, reason: code || String(e?.message) });
  }
  if (NET_CODES.test(text)) {
    return new ConnectionError('unreachable', `${host} cannot be reached (${code || e?.message})`, { host, reason: code || String(e?.message) });
  }
  return null;
}

export function fromAadsts(num: string | null, fallbackText?: string): ConnectionError | null {
  if (!num) return null;
  const known = AADSTS[num];
  if (known) return new ConnectionError(known.code, `${known.message} (AADSTS${num})`, { aadsts: num });
  return new ConnectionError('unexpected', `Sign-in failed with AADSTS${num}${fallbackText ? `: ${firstLine(fallbackText)}` : ''}`, { aadsts: num });
}

export function firstLine(s: string): string {
  return s.split(/\r?\n/)[0].slice(0, 300);
}
