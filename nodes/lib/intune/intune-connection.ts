/**
 * One Intune connection = validated settings + token provider + the shared
 * Graph client. `intune-config` owns exactly one; "Verify connection" builds
 * a short-lived one from the editor's form values.
 */
import type https from 'node:https';
import { resolveCloud, isCloudName, type CloudEndpoints, type CloudName } from './clouds';
import { CertificateError, EXPIRY_WARNING_DAYS, assertUsable, loadPem, loadPfx, type LoadedCertificate } from './certificate';
import { ConnectionError, classifyTransportError } from '../shared/connection-errors';
import { createHttpsAgent } from '../shared/http-transport';
import type { ProxySource } from '../shared/proxy-route';
import { GraphClient } from '../graph/graph-client';
import { checkPermissions } from './permissions';
import { TokenProvider, type AuthType } from './token-provider';
import { clientIdProblem, positiveInt, tenantProblem } from '../shared/validation';
import { timeScale, timeScaleWarning } from '../shared/time-scale';

/** How the app proves itself: a client secret, a .pfx, or a PEM certificate and key. */
export type IntuneAuthType = AuthType | 'certificatePem';
const AUTH_TYPES: readonly IntuneAuthType[] = ['secret', 'certificate', 'certificatePem'];

export interface ConnectionSettings {
  tenantId: string;
  clientId: string;
  authType: IntuneAuthType;
  cloud: CloudName;
  endpoints: CloudEndpoints;
  timeoutMs: number;
  requestsPer20s: number;
  writesPer20s: number;
  /** Extra trusted CA (PEM) from a TLS config node. */
  ca?: string | string[];
  /** Where the HTTP proxy comes from (proxy-config.ts); none: always direct. */
  proxy?: ProxySource;
}

export interface ConnectionSecrets {
  clientSecret?: string;
  pfx?: string;
  passphrase?: string;
  /** authType certificatePem: the certificate (PEM or DER, base64 when uploaded), its PEM key and the key's passphrase. */
  certificatePem?: string;
  privateKeyPem?: string;
  keyPassphrase?: string;
}

export interface Warning {
  code: 'certificateExpiresSoon' | 'missingOptionalPermission';
  message: string;
  params: Record<string, unknown>;
}

const invalid = (field: string, reason: string) =>
  new ConnectionError('invalidConfig', `${field} ${reason}`, { field, reason });

/** Validates raw node properties (from the flow or the editor form). Throws ConnectionError('invalidConfig'). */
export function parseSettings(raw: Record<string, unknown>, ca?: string | string[]): ConnectionSettings {
  const tenantId = String(raw.tenantId ?? '').trim();
  const clientId = String(raw.clientId ?? '').trim();
  const tp = tenantProblem(tenantId);
  if (tp) throw invalid('tenantId', tp);
  const cp = clientIdProblem(clientId);
  if (cp) throw invalid('clientId', cp);
  const authType = (raw.authType ?? 'secret') as IntuneAuthType;
  if (!AUTH_TYPES.includes(authType)) throw invalid('authType', 'must be "secret", "certificate" or "certificatePem"');
  const cloud = raw.cloud ?? 'global';
  if (!isCloudName(cloud)) throw invalid('cloud', 'must be one of global, usgov, usgovdod, china, custom');
  let endpoints: CloudEndpoints;
  try {
    endpoints = resolveCloud(cloud, {
      authorityHost: (raw.authorityHost as string) || undefined,
      graphBaseUrl: (raw.graphBaseUrl as string) || undefined,
      portalUrl: (raw.portalUrl as string) || undefined,
    });
  } catch (err) {
    throw invalid('cloud', (err as Error).message);
  }
  const num = (key: string, fallback: number, label: string, max?: number) => {
    try {
      return positiveInt(raw[key], fallback, label, max);
    } catch (err) {
      throw invalid(key, (err as Error).message);
    }
  };
  return {
    tenantId,
    clientId,
    authType,
    cloud,
    endpoints,
    timeoutMs: num('timeoutSec', 30, 'Timeout (s)', 600) * 1000,
    requestsPer20s: num('requestsPer20s', 2000, 'Requests per 20 s', 100_000),
    writesPer20s: num('writesPer20s', 200, 'Writes per 20 s', 10_000),
    ca,
  };
}

/**
 * Where the connection's secrets go: the authority with the tenant (client
 * secret, signed assertion) and the Graph root (bearer tokens). A saved
 * secret is used by "Verify connection" only when the form names these.
 */
export function secretEndpoint(raw: Record<string, unknown>): string {
  const s = parseSettings(raw);
  return `${s.endpoints.authorityHost}/${s.tenantId.toLowerCase()} + ${s.endpoints.graphBaseUrl}`;
}

/** Loads and checks the certificate; the second value carries an expiry warning when due. */
export function loadCertificate(secrets: ConnectionSecrets, now = new Date(), authType: IntuneAuthType = 'certificate'): { certificate: LoadedCertificate; warning?: Warning } {
  const pem = authType === 'certificatePem';
  if (pem && !secrets.certificatePem) throw new ConnectionError('invalidConfig', 'No certificate (PEM) has been given', { field: 'certificatePem', reason: 'required' });
  if (pem && !secrets.privateKeyPem) throw new ConnectionError('invalidConfig', 'No private key (PEM) has been given', { field: 'privateKeyPem', reason: 'required' });
  if (!pem && !secrets.pfx) throw new ConnectionError('invalidConfig', 'No certificate (.pfx) has been uploaded', { field: 'pfx', reason: 'required' });
  try {
    const certificate = pem ? loadPem(secrets.certificatePem!, secrets.privateKeyPem!, secrets.keyPassphrase ?? '') : loadPfx(secrets.pfx!, secrets.passphrase ?? '');
    const days = assertUsable(certificate, now);
    if (days < EXPIRY_WARNING_DAYS) {
      const notAfter = certificate.notAfter.toISOString();
      return {
        certificate,
        warning: {
          code: 'certificateExpiresSoon',
          message: `The certificate expires in ${days} day(s), on ${notAfter.slice(0, 10)}: renew it and upload the new one`,
          params: { days, notAfter },
        },
      };
    }
    return { certificate };
  } catch (err) {
    if (err instanceof CertificateError) throw new ConnectionError(err.code, err.message, err.params);
    throw err;
  }
}

export interface ConnectionLog {
  warn(m: string): void;
  debug?(m: string): void;
}

export class IntuneConnection {
  readonly agent: https.Agent;
  readonly tokens: TokenProvider;
  readonly graph: GraphClient;
  readonly certificate?: LoadedCertificate;
  readonly warnings: Warning[] = [];

  /** Throws ConnectionError for bad settings, secrets or certificates: nothing is contacted here. */
  constructor(
    readonly settings: ConnectionSettings,
    secrets: ConnectionSecrets,
    log?: ConnectionLog,
    now = new Date(),
  ) {
    if (settings.authType !== 'secret') {
      const { certificate, warning } = loadCertificate(secrets, now, settings.authType);
      this.certificate = certificate;
      if (warning) this.warnings.push(warning);
    } else if (!secrets.clientSecret) {
      throw new ConnectionError('invalidConfig', 'The client secret is missing', { field: 'clientSecret', reason: 'required' });
    }
    // Tokens and Graph share this agent, and so its proxy.
    this.agent = createHttpsAgent({ ca: settings.ca, proxy: settings.proxy });
    this.tokens = new TokenProvider({
      identity: {
        tenantId: settings.tenantId,
        clientId: settings.clientId,
        // msal-node knows secrets and certificates; a PEM pair is a certificate like a .pfx.
        authType: settings.authType === 'secret' ? 'secret' : 'certificate',
        clientSecret: secrets.clientSecret,
        certificate: this.certificate,
      },
      endpoints: settings.endpoints,
      agent: this.agent,
      timeoutMs: settings.timeoutMs,
      customAuthority: settings.cloud === 'custom',
      log,
    });
    // 1 unless a benchmark shrinks the limit windows (time-scale.ts).
    const scale = timeScale();
    if (scale !== 1) log?.warn(timeScaleWarning(scale));
    this.graph = new GraphClient({
      baseUrl: settings.endpoints.graphBaseUrl,
      getToken: (signal, opts) => this.tokens.getToken(signal, opts),
      agent: this.agent,
      timeoutMs: settings.timeoutMs,
      limits: {
        requestsPer20s: settings.requestsPer20s,
        writesPer20s: settings.writesPer20s,
        complianceRequestsPer20s: Math.max(1, Math.floor(settings.requestsPer20s / 2)),
        complianceWritesPer20s: Math.max(1, Math.floor(settings.writesPer20s / 2)),
        windowMs: 20_000 / scale,
      },
      log,
    });
  }

  close(): void {
    this.graph.close();
    this.agent.destroy();
  }
}

export interface VerifyAnswer {
  ok: boolean;
  code: string;
  message: string;
  params: Record<string, unknown>;
  warnings: Array<{ code: string; message: string; params: Record<string, unknown> }>;
}

/**
 * "Verify connection": token, roles, one cheap Graph call. Answers in plain
 * words and never includes a secret, a token or the key.
 */
export async function verifyConnection(
  raw: Record<string, unknown>,
  secrets: ConnectionSecrets,
  opts: { ca?: string | string[]; proxy?: ProxySource; log?: ConnectionLog; signal?: AbortSignal } = {},
): Promise<VerifyAnswer> {
  let conn: IntuneConnection | undefined;
  try {
    const settings = { ...parseSettings(raw, opts.ca), proxy: opts.proxy };
    conn = new IntuneConnection(settings, secrets, opts.log);
    const warnings: VerifyAnswer['warnings'] = [...conn.warnings];
    await conn.tokens.getToken(opts.signal);
    const roles = conn.tokens.claims.roles ?? [];
    const perms = checkPermissions(roles);
    if (perms.missingRequired.length) {
      return fail(new ConnectionError('missingPermission', `The app has no permission to read Intune devices: grant ${perms.missingRequired.join(', ')} (application permission) and admin consent`, { missing: perms.missingRequired }), warnings);
    }
    if (perms.missingOptional.length) {
      warnings.push({
        code: 'missingOptionalPermission',
        message: `Some features need more permissions: ${perms.missingOptional.join(', ')} (for ${perms.featuresLimited.join(', ')})`,
        params: { missing: perms.missingOptional, features: perms.featuresLimited },
      });
    }
    let deviceCount: number | null = null;
    try {
      const page = await conn.graph.get<{ '@odata.count'?: number; value?: unknown[] }>('/deviceManagement/managedDevices', {
        version: 'v1.0',
        select: ['id'],
        top: 1,
        query: { $count: 'true' },
        signal: opts.signal,
      });
      deviceCount = typeof page['@odata.count'] === 'number' ? page['@odata.count'] : null;
    } catch (err) {
      throw graphProblem(err, conn.settings.endpoints.graphBaseUrl);
    }
    const tenantId = conn.tokens.claims.tid ?? settings.tenantId;
    return {
      ok: true,
      code: 'ok',
      message: `Connected to tenant ${tenantId}${deviceCount === null ? '' : `: ${deviceCount} managed device(s)`}`,
      params: { tenantId, deviceCount, roles },
      warnings,
    };
  } catch (err) {
    return fail(err, conn?.warnings ?? []);
  } finally {
    conn?.close();
  }
}

function graphProblem(err: unknown, graphBaseUrl: string): ConnectionError {
  if (err instanceof ConnectionError) return err;
  const e = err as { status?: number; message?: string; cause?: unknown };
  const host = new URL(graphBaseUrl).host;
  if (e?.status === 403) {
    return new ConnectionError('missingPermission', 'Graph refused to list managed devices: grant DeviceManagementManagedDevices.Read.All (application permission) and admin consent', { missing: ['DeviceManagementManagedDevices.Read.All'] });
  }
  if (e?.status === 401) {
    return new ConnectionError('unexpected', 'Graph did not accept the access token: check that the Graph base URL belongs to the same cloud as the authority', { message: 'HTTP 401' });
  }
  const transport = classifyTransportError(e?.cause ?? err, host);
  if (transport) return transport;
  return new ConnectionError('unexpected', `Graph call failed: ${e?.message ?? String(err)}`, { message: e?.message ?? String(err) });
}

function fail(err: unknown, warnings: Warning[] | VerifyAnswer['warnings']): VerifyAnswer {
  const ce = err instanceof ConnectionError ? err : new ConnectionError('unexpected', (err as Error)?.message ?? String(err), { message: (err as Error)?.message ?? String(err) });
  return { ok: false, code: ce.code, message: ce.message, params: ce.params, warnings: [...warnings] };
}
