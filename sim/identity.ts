/**
 * A simulated Microsoft identity platform (Entra ID) for tests and the demo:
 * HTTPS on 127.0.0.1, good enough for the real @azure/msal-node
 * ConfidentialClientApplication doing client-credentials flows against a
 * custom authority (`${sim.url}/${tenant}` with knownAuthorities).
 *
 * It serves OpenID discovery, instance discovery, the signing keys, and the
 * v2.0 token endpoint, and it really checks what it is given: client
 * secrets (and their expiry) or signed client assertions (RS256 + x5t or
 * PS256 + x5t#S256, thumbprint registered on the app, signature, audience,
 * issuer/subject, lifetime). Failures answer with Entra's JSON error shape
 * and status codes. Access tokens are RS256 JWTs signed by this sim's own
 * key and can be checked by the Graph simulator with verifyAccessToken().
 *
 * Nothing secret is ever logged: the request log holds method, path,
 * status and timing only; tokenRequests holds ids and outcomes.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { KeyPairPem } from './pki';

export interface SimApp {
  clientId: string;
  tenantId: string;
  displayName?: string;
  secrets?: Array<{ value: string; expiresAt?: Date }>;
  /** Registered certificate PEMs (the app registration's "Certificates"). */
  certificates?: string[];
  /** Application permissions granted (and consented) to the app, e.g. DeviceManagementManagedDevices.Read.All. */
  roles: string[];
}

export interface IdentitySimOptions {
  tls: KeyPairPem;
  tenants: Array<{ id: string; domains?: string[] }>;
  apps: SimApp[];
  /** Access-token lifetime, default 3599 s (as Entra answers). */
  tokenLifetimeSec?: number;
}

export interface TokenRequestRecord {
  /** ISO time of the request. */
  at: string;
  /** Resolved tenant id, or the path segment as sent when it is not a known tenant. */
  tenant: string;
  clientId: string;
  method: 'secret' | 'certificate';
  /** 'success' or 'AADSTSnnnn'. */
  outcome: string;
  /** For certificate requests: the assertion's alg (RS256 / PS256). */
  assertionAlg?: string;
  /** For certificate requests: which thumbprint header identified the key. */
  thumbprintHeader?: 'x5t' | 'x5t#S256';
  /** Requested scope (never a credential). */
  scope?: string;
}

export interface RequestLogEntry {
  at: string;
  method: string;
  /** Path without the query string. */
  path: string;
  status: number;
  ms: number;
}

export interface VerifiedAccessToken {
  tid: string;
  appid: string;
  roles: string[];
  exp: number;
}

/** Error thrown by verifyAccessToken; `code` is what Graph puts in error.code. */
export class AccessTokenError extends Error {
  readonly code = 'InvalidAuthenticationToken';
  constructor(message: string) {
    super(message);
    this.name = 'AccessTokenError';
  }
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const LOG_LIMIT = 500;
const TOKEN_LOG_LIMIT = 1000;
const BODY_LIMIT = 64 * 1024;
/** Tolerated clock skew for nbf/iat of client assertions and access tokens. */
const SKEW_SEC = 300;
const RESERVED_TENANTS = new Set(['common', 'organizations', 'consumers']);

interface AadErrorSpec {
  status: number;
  error: string;
  code: number;
  text: string;
}

class AadFailure extends Error {
  constructor(readonly spec: AadErrorSpec) {
    super(spec.text);
  }
}

function fail(status: number, error: string, code: number, text: string): never {
  throw new AadFailure({ status, error, code, text });
}

function b64url(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/** Entra's timestamp style: "2025-01-31 12:34:56Z". */
function aadTimestamp(d = new Date()): string {
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function isoSec(sec: number): string {
  return new Date(sec * 1000).toISOString().replace(/\.\d+Z$/, '.0000000Z');
}

/** Deterministic UUID-shaped id (object id of an app's service principal in a tenant). */
function stableUuid(seed: string): string {
  const h = crypto.createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function normAudience(a: string): string {
  return a.trim().replace(/\/+$/, '').toLowerCase();
}

interface RegisteredCert {
  pem: string;
  sha1: Buffer;
  sha256: Buffer;
  publicKey: crypto.KeyObject;
  notAfterMs: number;
  notBeforeMs: number;
}

function registerCert(pem: string): RegisteredCert {
  const x = new crypto.X509Certificate(pem);
  return {
    pem,
    sha1: crypto.createHash('sha1').update(x.raw).digest(),
    sha256: crypto.createHash('sha256').update(x.raw).digest(),
    publicKey: x.publicKey,
    notAfterMs: Date.parse(x.validTo),
    notBeforeMs: Date.parse(x.validFrom),
  };
}

interface AppState {
  app: SimApp;
  certs: RegisteredCert[];
}

interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

function decodeJwt(token: string): DecodedJwt | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)) || !parts[0] || !parts[1]) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (!header || typeof header !== 'object' || !payload || typeof payload !== 'object') return null;
    return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], 'base64url') };
  } catch {
    return null;
  }
}

function verifyRsa(alg: string, signingInput: string, signature: Buffer, key: crypto.KeyObject): boolean {
  try {
    if (alg === 'RS256') {
      return crypto.verify('sha256', Buffer.from(signingInput), { key, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
    }
    if (alg === 'PS256') {
      return crypto.verify(
        'sha256',
        Buffer.from(signingInput),
        { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST },
        signature,
      );
    }
  } catch {
    /* malformed signature → invalid */
  }
  return false;
}

export class IdentitySim {
  readonly tokenRequests: TokenRequestRecord[] = [];
  readonly requestLog: RequestLogEntry[] = [];

  private readonly tls: KeyPairPem;
  private readonly tenants: Array<{ id: string; domains: string[] }>;
  private readonly apps = new Map<string, AppState>(); // key: tenantId|clientId (lower case)
  private readonly tokenLifetimeSec: number;
  private readonly signingKey: crypto.KeyObject;
  private readonly verifyKey: crypto.KeyObject;
  private readonly kid: string;
  private readonly jwk: crypto.JsonWebKey;
  private server: https.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private unavailable = false;
  private retryAfterSec = 1;

  constructor(opts: IdentitySimOptions) {
    this.tls = opts.tls;
    this.tenants = opts.tenants.map((t) => ({ id: t.id.toLowerCase(), domains: (t.domains ?? []).map((d) => d.toLowerCase()) }));
    this.tokenLifetimeSec = opts.tokenLifetimeSec ?? 3599;
    for (const app of opts.apps) this.addApp(app);
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.signingKey = privateKey;
    this.verifyKey = publicKey;
    this.kid = b64url(crypto.createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest());
    this.jwk = publicKey.export({ format: 'jwk' });
  }

  /** Authority host, e.g. https://127.0.0.1:PORT (no trailing slash). */
  get url(): string {
    if (!this.port) throw new Error('IdentitySim is not started');
    return `https://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    if (this.server) throw new Error('IdentitySim already started');
    const server = https.createServer({ key: this.tls.keyPem, cert: this.tls.certPem }, (req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`identity sim internal error: ${(e as Error).message}`);
        } else res.destroy();
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening and closes every open connection at once (keep-alive included). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
    this.port = 0;
  }

  /** Replaces the roles (application permissions) of every registration of this client id. */
  setRoles(clientId: string, roles: string[]): void {
    let found = false;
    for (const st of this.apps.values()) {
      if (st.app.clientId.toLowerCase() === clientId.toLowerCase()) {
        st.app.roles = [...roles];
        found = true;
      }
    }
    if (!found) throw new Error(`IdentitySim.setRoles: unknown client id ${clientId}`);
  }

  /** Registers (or replaces) an app in its tenant. */
  addApp(app: SimApp): void {
    const copy: SimApp = {
      ...app,
      secrets: (app.secrets ?? []).map((s) => ({ ...s })),
      certificates: [...(app.certificates ?? [])],
      roles: [...app.roles],
    };
    this.apps.set(`${app.tenantId.toLowerCase()}|${app.clientId.toLowerCase()}`, {
      app: copy,
      certs: copy.certificates!.map(registerCert),
    });
  }

  /**
   * While on, every request answers 503 temporarily_unavailable (AADSTS90033)
   * with Retry-After (default 1 s; msal-node throttles an identical request
   * for that long, or 60 s when Retry-After is missing).
   */
  setUnavailable(on: boolean, retryAfterSec = 1): void {
    this.unavailable = on;
    this.retryAfterSec = Math.max(1, Math.floor(retryAfterSec));
  }

  /**
   * Checks a bearer token issued by this sim: signature (our key), issuer,
   * lifetime and audience (case-insensitive, trailing slash ignored).
   * Throws AccessTokenError (code 'InvalidAuthenticationToken') otherwise.
   */
  verifyAccessToken(token: string, expectedAudience: string | string[]): VerifiedAccessToken {
    const jwt = decodeJwt(String(token ?? '').replace(/^Bearer\s+/i, ''));
    if (!jwt) throw new AccessTokenError('Access token is not a well-formed JWT.');
    const { header, payload } = jwt;
    if (header.alg !== 'RS256') throw new AccessTokenError(`Access token uses an unsupported signing algorithm '${String(header.alg)}'.`);
    if (header.kid !== this.kid) throw new AccessTokenError('Access token was signed by an unknown key (not issued by this identity platform).');
    if (!verifyRsa('RS256', jwt.signingInput, jwt.signature, this.verifyKey)) {
      throw new AccessTokenError('Access token signature is invalid.');
    }
    const iss = String(payload.iss ?? '');
    if (!this.port || !iss.startsWith(`${this.url}/`)) throw new AccessTokenError(`Access token issuer '${iss}' is not trusted.`);
    const now = nowSec();
    const exp = Number(payload.exp);
    const nbf = Number(payload.nbf ?? payload.iat);
    if (!Number.isFinite(exp) || now >= exp) throw new AccessTokenError('Access token has expired.');
    if (Number.isFinite(nbf) && nbf > now + SKEW_SEC) throw new AccessTokenError('Access token is not yet valid.');
    const wanted = (Array.isArray(expectedAudience) ? expectedAudience : [expectedAudience]).map(normAudience);
    const aud = String(payload.aud ?? '');
    if (!wanted.includes(normAudience(aud))) {
      throw new AccessTokenError(`Access token audience '${aud}' is not valid for this resource.`);
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.map(String) : [];
    return { tid: String(payload.tid), appid: String(payload.appid), roles, exp };
  }

  /**
   * Mints an access token directly (no HTTP, no credential), for tests of
   * token consumers. Roles default to the app's roles when it is registered.
   */
  issueAccessToken(opts: {
    tenantId: string;
    clientId: string;
    resource: string;
    roles?: string[];
    lifetimeSec?: number;
    /** Issue time (unix seconds), default now; use the past to mint an expired token. */
    issuedAt?: number;
    method?: 'secret' | 'certificate';
  }): string {
    const st = this.apps.get(`${opts.tenantId.toLowerCase()}|${opts.clientId.toLowerCase()}`);
    const app: SimApp = st?.app ?? { clientId: opts.clientId, tenantId: opts.tenantId, roles: opts.roles ?? [] };
    return this.signAccessToken(opts.tenantId.toLowerCase(), app, opts.resource, opts.method ?? 'secret', {
      roles: opts.roles,
      lifetimeSec: opts.lifetimeSec,
      issuedAt: opts.issuedAt,
    });
  }

  // -------------------------------------------------------------------------
  // HTTP
  // -------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const u = new URL(req.url ?? '/', 'https://sim.invalid');
    res.on('finish', () => {
      this.requestLog.push({
        at: new Date(started).toISOString(),
        method: req.method ?? '',
        path: u.pathname,
        status: res.statusCode,
        ms: Date.now() - started,
      });
      if (this.requestLog.length > LOG_LIMIT) this.requestLog.splice(0, this.requestLog.length - LOG_LIMIT);
    });
    const correlationId = String(req.headers['client-request-id'] ?? '') || crypto.randomUUID();

    if (this.unavailable) {
      // Drain the body so keep-alive stays sane.
      await this.readBody(req).catch(() => undefined);
      this.sendAadError(res, correlationId, {
        status: 503,
        error: 'temporarily_unavailable',
        code: 90033,
        text: 'A transient error has occurred. Please try again.',
      }, { 'retry-after': String(this.retryAfterSec) });
      return;
    }

    const seg = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const rest = seg.slice(1).join('/');

    try {
      // Instance discovery (msal asks only when the host is not in knownAuthorities).
      if (method === 'GET' && seg.length === 3 && rest === 'discovery/instance') {
        return this.sendJson(res, 200, this.instanceDiscovery(u), correlationId);
      }
      if (method === 'GET' && (rest === 'v2.0/.well-known/openid-configuration' || rest === '.well-known/openid-configuration')) {
        return this.sendJson(res, 200, this.openIdConfiguration(seg[0]), correlationId);
      }
      if (method === 'GET' && (rest === 'discovery/v2.0/keys' || rest === 'discovery/keys')) {
        if (!RESERVED_TENANTS.has(seg[0].toLowerCase())) this.resolveTenant(seg[0]);
        return this.sendJson(res, 200, this.jwks(), correlationId);
      }
      if (rest === 'oauth2/v2.0/token') {
        if (method !== 'POST') {
          res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' });
          res.end('Method Not Allowed');
          return;
        }
        const body = await this.readBody(req);
        return this.tokenEndpoint(seg[0], req, body, res, correlationId);
      }
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Not Found');
    } catch (e) {
      if (e instanceof AadFailure) return this.sendAadError(res, correlationId, e.spec);
      throw e;
    }
  }

  private readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > BODY_LIMIT) {
          reject(new AadFailure({ status: 413, error: 'invalid_request', code: 90010, text: 'The request body is too large.' }));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, correlationId: string, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store, no-cache',
      pragma: 'no-cache',
      'client-request-id': correlationId,
      'x-ms-request-id': crypto.randomUUID(),
      'content-length': Buffer.byteLength(text),
      ...extra,
    });
    res.end(text);
  }

  private sendAadError(res: ServerResponse, correlationId: string, spec: AadErrorSpec, extra: Record<string, string> = {}): void {
    const traceId = crypto.randomUUID();
    const ts = aadTimestamp();
    this.sendJson(
      res,
      spec.status,
      {
        error: spec.error,
        error_description: `AADSTS${spec.code}: ${spec.text}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${ts}`,
        error_codes: [spec.code],
        timestamp: ts,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `https://login.microsoftonline.com/error?code=${spec.code}`,
      },
      correlationId,
      { 'x-ms-request-id': traceId, ...extra },
    );
  }

  // -------------------------------------------------------------------------
  // Discovery
  // -------------------------------------------------------------------------

  private resolveTenant(segment: string): { id: string; domains: string[] } {
    const s = segment.toLowerCase();
    const t = this.tenants.find((x) => x.id === s || x.domains.includes(s));
    if (!t) {
      fail(400, 'invalid_tenant', 90002,
        `Tenant '${segment}' not found. Check the tenant ID and that you are signing in to the right cloud; ` +
        'this also happens when the tenant has no active subscription.');
    }
    return t;
  }

  private instanceDiscovery(u: URL): unknown {
    const host = `127.0.0.1:${this.port}`;
    return {
      tenant_discovery_endpoint: `${this.url}/common/v2.0/.well-known/openid-configuration`,
      'api-version': u.searchParams.get('api-version') ?? '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    };
  }

  private openIdConfiguration(segment: string): unknown {
    const reserved = RESERVED_TENANTS.has(segment.toLowerCase());
    const tid = reserved ? segment.toLowerCase() : this.resolveTenant(segment).id;
    const base = `${this.url}/${tid}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: reserved ? `${this.url}/{tenantid}/v2.0` : `${base}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${this.url}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name',
        'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver',
        'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: reserved ? null : 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  private jwks(): unknown {
    return {
      keys: [{ kty: 'RSA', use: 'sig', alg: 'RS256', kid: this.kid, x5t: this.kid, n: this.jwk.n, e: this.jwk.e }],
    };
  }

  // -------------------------------------------------------------------------
  // Token endpoint
  // -------------------------------------------------------------------------

  private tokenEndpoint(segment: string, req: IncomingMessage, body: string, res: ServerResponse, correlationId: string): void {
    const contentType = String(req.headers['content-type'] ?? '').toLowerCase();
    const form = contentType.startsWith('application/x-www-form-urlencoded') ? new URLSearchParams(body) : new URLSearchParams();
    const clientId = form.get('client_id') ?? '';
    const hasAssertion = form.has('client_assertion') || form.has('client_assertion_type');
    const method: 'secret' | 'certificate' | undefined = hasAssertion ? 'certificate' : form.has('client_secret') ? 'secret' : undefined;
    const record: TokenRequestRecord = {
      at: new Date().toISOString(),
      tenant: segment,
      clientId,
      method: method ?? 'secret',
      outcome: 'success',
      scope: form.get('scope') ?? undefined,
    };
    try {
      const result = this.issueFromForm(segment, form, record);
      if (method) this.recordTokenRequest(record);
      this.sendJson(res, 200, result, correlationId);
    } catch (e) {
      if (e instanceof AadFailure) {
        record.outcome = `AADSTS${e.spec.code}`;
        if (method) this.recordTokenRequest(record);
      }
      throw e;
    }
  }

  private recordTokenRequest(r: TokenRequestRecord): void {
    this.tokenRequests.push(r);
    if (this.tokenRequests.length > TOKEN_LOG_LIMIT) this.tokenRequests.splice(0, this.tokenRequests.length - TOKEN_LOG_LIMIT);
  }

  private issueFromForm(segment: string, form: URLSearchParams, record: TokenRequestRecord): unknown {
    const missing: (name: string) => never = (name) =>
      fail(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`);

    if (RESERVED_TENANTS.has(segment.toLowerCase())) {
      fail(400, 'invalid_request', 50059,
        'No tenant-identifying information found in either the request or implied by any provided credentials. ' +
        'Client credential requests must name a tenant (id or verified domain).');
    }
    const tenant = this.resolveTenant(segment);
    record.tenant = tenant.id;

    const grantType = form.get('grant_type');
    if (!grantType) missing('grant_type');
    if (grantType !== 'client_credentials') {
      fail(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    const clientId = form.get('client_id');
    if (!clientId) missing('client_id');
    const scope = form.get('scope');
    if (!scope) missing('scope');
    const scopes = scope!.split(/\s+/).filter((s) => s && !['openid', 'profile', 'offline_access'].includes(s));
    if (scopes.length !== 1 || !/^\S+\/\.default$/.test(scopes[0])) {
      fail(400, 'invalid_scope', 1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value ` +
        'with /.default suffixed to the resource identifier (application ID URI).');
    }
    const resource = scopes[0].slice(0, -'/.default'.length);

    const st = this.apps.get(`${tenant.id}|${clientId!.toLowerCase()}`);
    if (!st) {
      fail(400, 'unauthorized_client', 700016,
        `Application with identifier '${clientId}' was not found in the directory '${segment}'. ` +
        'The app may not be registered or consented in this tenant, or the request went to the wrong tenant.');
    }

    let method: 'secret' | 'certificate';
    if (form.has('client_assertion') || form.has('client_assertion_type')) {
      method = 'certificate';
      this.checkAssertion(tenant, st.app.clientId, st, form, record);
    } else if (form.has('client_secret')) {
      method = 'secret';
      this.checkSecret(st.app, form.get('client_secret') ?? '');
    } else {
      fail(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }

    const accessToken = this.signAccessToken(tenant.id, st.app, resource, method);
    return {
      token_type: 'Bearer',
      expires_in: this.tokenLifetimeSec,
      ext_expires_in: this.tokenLifetimeSec,
      access_token: accessToken,
    };
  }

  private checkSecret(app: SimApp, given: string): void {
    const g = Buffer.from(given, 'utf8');
    const match = (app.secrets ?? []).find((s) => {
      const v = Buffer.from(s.value, 'utf8');
      return v.length === g.length && crypto.timingSafeEqual(v, g);
    });
    if (!match) {
      fail(401, 'invalid_client', 7000215,
        `Invalid client secret provided. Send the secret's value, not its secret ID, for a secret added to app '${app.clientId}'.`);
    }
    if (match.expiresAt && match.expiresAt.getTime() <= Date.now()) {
      fail(401, 'invalid_client', 7000222,
        `The provided client secret keys for app '${app.clientId}' are expired. Create a new secret for the app ` +
        'or use certificate credentials.');
    }
  }

  private checkAssertion(
    tenant: { id: string; domains: string[] },
    clientId: string,
    st: AppState,
    form: URLSearchParams,
    record: TokenRequestRecord,
  ): void {
    const type = form.get('client_assertion_type');
    if (type !== JWT_BEARER) {
      fail(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_assertion_type'.");
    }
    const assertion = form.get('client_assertion');
    if (!assertion) fail(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_assertion'.");
    const jwt = decodeJwt(assertion);
    if (!jwt) fail(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    const { header, payload } = jwt;
    const alg = String(header.alg ?? '');
    record.assertionAlg = alg;
    if (alg !== 'RS256' && alg !== 'PS256') {
      fail(400, 'invalid_request', 5002730, `Invalid JWT token. Unsupported key for the signing algorithm '${alg}'.`);
    }

    const x5tS256 = typeof header['x5t#S256'] === 'string' ? (header['x5t#S256'] as string) : undefined;
    const x5t = typeof header.x5t === 'string' ? (header.x5t as string) : undefined;
    const useSha256 = x5tS256 !== undefined;
    const thumbB64 = x5tS256 ?? x5t;
    record.thumbprintHeader = useSha256 ? 'x5t#S256' : x5t !== undefined ? 'x5t' : undefined;
    const thumb = thumbB64 ? Buffer.from(thumbB64, 'base64url') : Buffer.alloc(0);
    const thumbHex = thumb.toString('hex').toUpperCase();
    const keyNotFound: (reason: string) => never = (reason) =>
      fail(401, 'invalid_client', 700027,
        `The certificate with identifier used to sign the client assertion is not registered on application. ` +
        `[Reason - ${reason}, Thumbprint of key used by client: '${thumbHex}', check the keys configured for app Id '${clientId}'.]`);
    if (!thumbB64) keyNotFound('The assertion header carries neither x5t nor x5t#S256.');
    const cert = st.certs.find((c) => (useSha256 ? c.sha256 : c.sha1).equals(thumb));
    if (!cert) keyNotFound('The key was not found.');
    const nowMs = Date.now();
    if (cert.notAfterMs <= nowMs || cert.notBeforeMs > nowMs + SKEW_SEC * 1000) keyNotFound('The key used is expired or not yet valid.');

    if (!verifyRsa(alg, jwt.signingInput, jwt.signature, cert.publicKey)) {
      fail(401, 'invalid_client', 700027,
        `Client assertion failed signature validation. [Reason - The provided signature value did not match the expected ` +
        `signature value., Thumbprint of key used by client: '${thumbHex}']`);
    }

    if (payload.iss !== clientId) {
      fail(401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter.");
    }
    if (payload.sub !== payload.iss) {
      fail(401, 'invalid_client', 50048, 'Subject must match the issuer claim in the client assertion.');
    }
    if (typeof payload.aud !== 'string') fail(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    const validAudiences = [tenant.id, ...tenant.domains].map((t) => `${this.url}/${t}/oauth2/v2.0/token`.toLowerCase());
    if (!validAudiences.includes(String(payload.aud).toLowerCase())) {
      fail(401, 'invalid_client', 700023,
        `Client assertion audience claim does not match Realm issuer. Expected the token endpoint, got '${String(payload.aud)}'.`);
    }
    const now = nowSec();
    const exp = Number(payload.exp);
    const nbf = payload.nbf === undefined ? undefined : Number(payload.nbf);
    if (!Number.isFinite(exp) || exp <= now || (nbf !== undefined && (!Number.isFinite(nbf) || nbf > now + SKEW_SEC))) {
      fail(401, 'invalid_client', 700024,
        `Client assertion is not within its valid time range. Current time: ${isoSec(now)}, assertion valid from ` +
        `${isoSec(Number.isFinite(nbf) ? nbf! : 0)}, expiry time of assertion ${isoSec(Number.isFinite(exp) ? exp : 0)}.`);
    }
    if (typeof payload.jti !== 'string' || !payload.jti) {
      fail(400, 'invalid_request', 50027, "JWT token is invalid or malformed: the client assertion has no 'jti' claim.");
    }
  }

  private signAccessToken(
    tid: string,
    app: SimApp,
    resource: string,
    method: 'secret' | 'certificate',
    o: { roles?: string[]; lifetimeSec?: number; issuedAt?: number } = {},
  ): string {
    const iat = o.issuedAt ?? nowSec();
    const lifetime = o.lifetimeSec ?? this.tokenLifetimeSec;
    const oid = stableUuid(`${tid}|${app.clientId.toLowerCase()}`);
    const roles = o.roles ?? app.roles;
    const iss = `${this.url}/${tid}/`;
    const payload: Record<string, unknown> = {
      aud: resource,
      iss,
      iat,
      nbf: iat,
      exp: iat + lifetime,
      aio: b64url(crypto.randomBytes(24)),
      app_displayname: app.displayName ?? app.clientId,
      appid: app.clientId,
      appidacr: method === 'certificate' ? '2' : '1',
      azp: app.clientId,
      azpacr: method === 'certificate' ? '2' : '1',
      idp: iss,
      idtyp: 'app',
      oid,
      rh: `0.${b64url(crypto.randomBytes(18))}.`,
      ...(roles.length ? { roles: [...roles] } : {}),
      sub: oid,
      tenant_region_scope: 'EU',
      tid,
      uti: b64url(crypto.randomBytes(16)),
      ver: '1.0',
    };
    const header = { typ: 'JWT', alg: 'RS256', x5t: this.kid, kid: this.kid };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const sig = crypto.sign('sha256', Buffer.from(signingInput), { key: this.signingKey, padding: crypto.constants.RSA_PKCS1_PADDING });
    return `${signingInput}.${b64url(sig)}`;
  }
}
