/**
 * A simulated 4me (Xurrent) GraphQL service over HTTPS on 127.0.0.1, for the
 * 4me sink's tests and the demo.
 *
 *   const sim = new FourMeSim({ tls, accounts: [{ id: 'acme' }], personalAccessTokens: [{ token: 'pat-1' }] });
 *   await sim.start();      // sim.graphqlUrl, sim.tokenUrl, sim.url
 *   …
 *   await sim.stop();       // closes every socket at once
 *
 * Routes:
 *   POST /graphql (and POST /)  GraphQL over JSON {query, variables, operationName}; executed with
 *                               graphql-js against sim/fourme-schema.graphql (the MIT SDK-derived
 *                               subset), resolvers over in-memory stores. Invalid operations answer
 *                               200 with GraphQL `errors`; mutation validation problems come back in
 *                               the payload's `errors { path message }`.
 *   POST /token                 OAuth 2 client credentials (form or JSON body, or HTTP Basic client
 *                               auth): 200 {access_token, token_type:"Bearer", expires_in, created_at};
 *                               400 {error:"invalid_request"|"unsupported_grant_type"}; 401 {error:"invalid_client"}.
 *   GET  /async/<key>           resultUrl of discoveredConfigurationItems: `{}` until the job is done
 *                               (and `asyncPollsBeforeResult` polls have been answered), then the JSON
 *                               result of the mutation ({"data":{…}}: the submitted document re-run over
 *                               the finished job). No auth (a pre-signed link). Expired or unknown → 404.
 *
 * Auth on /graphql: `Authorization: Bearer <token>` (a personal access token from the options or one
 * issued by /token, which expires) and `X-4me-Account` (or `X-Xurrent-Account`) naming a configured
 * account the token may use. Otherwise 401 {"errors":[{"message":…}]} (the sim's wording).
 *
 * Limits, per credential (a PAT, or an OAuth client — renewed tokens share the client's budget):
 * burst 20 requests / 2 s, 3600 requests / hour and 5000 cost points / hour (rolling windows), all
 * configurable. Every answer after authentication carries x-ratelimit-limit/remaining/reset and
 * x-costlimit-limit/remaining/reset/cost (reset = Unix epoch seconds); every answer carries
 * x-request-id. Over a limit → 429 with Retry-After (seconds) unless setRetryAfter(false).
 * Cost (the sim's own model): max(1, ceil(potential nodes / 100)) + 1 per mutation field, where
 * potential nodes multiplies first/last along nested connections (> 500,000 → GraphQL error).
 *
 * Controls: failNext, dropNext, delayNext, throttleNext, clearFaults, setLimits, resetThrottling,
 * setLatency (also the `latencyMs` option: every request), setRetryAfter, expireTokens, revokeToken, setClientDisabled, setAsyncOptions, expireAsyncResults,
 * completeAsyncJobs, resetStats. Stats: see FourMeSimStats. Stores: sim.account(id).
 */
import crypto from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Kind, parse, type GraphQLError, type OperationDefinitionNode } from 'graphql';
import {
  FourMeData,
  nowIso,
  type FourMeAccountStore,
  type FourMeAsyncQuery,
  type FourMeConfigurationItem,
  type FourMePerson,
  type FourMeProduct,
  type FourMeProductCategory,
  type FourMeRequest,
  type FourMeTeam,
  type SeedConfigurationItem,
  type SeedPerson,
  type SeedProduct,
  type SeedProductCategory,
  type SeedRequest,
} from './fourme-store';
import { applyDiscovered, countDiscoveredCis, type CiWriteEvent } from './fourme-discovery';
import { FourMeEngine, discoveredResultPayload, type AsyncSubmission, type PreparedOperation } from './fourme-graphql';

export * from './fourme-store';
export type { CiWriteEvent, ValidationError } from './fourme-discovery';

// ---------------------------------------------------------------------------
// Public types

export interface FourMeSimAccount {
  id: string;
  name?: string;
  /** Id of another configured account acting as this account's directory (its people are visible with view: all). */
  directoryAccountId?: string;
  /** CI custom field ids the CI UI extension defines; unknown ids then fail validation. Default: any id accepted. */
  ciCustomFieldIds?: string[];
}

export interface FourMeSimPat {
  token: string;
  /** Name of the token's person (what `me` returns). Default "API user". */
  personName?: string;
  personEmail?: string;
  /** Accounts the token may use (default all). */
  accounts?: string[];
}

export interface FourMeSimOAuthClient {
  clientId: string;
  clientSecret: string;
  personName?: string;
  personEmail?: string;
  accounts?: string[];
  disabled?: boolean;
}

export interface FourMeLimits {
  burstRequests: number;
  burstWindowMs: number;
  hourlyRequests: number;
  hourlyWindowMs: number;
  costPoints: number;
  costWindowMs: number;
}

export const FOURME_DEFAULT_LIMITS: FourMeLimits = {
  burstRequests: 20,
  burstWindowMs: 2000,
  hourlyRequests: 3600,
  hourlyWindowMs: 3_600_000,
  costPoints: 5000,
  costWindowMs: 3_600_000,
};

export interface FourMeAsyncOptions {
  /** Time from submission until the job is processed (default 0). */
  delayMs: number;
  /** Polls answered `{}` after the job is done, before the result is served (default 0). */
  pollsBeforeResult: number;
  /** Lifetime of a resultUrl from submission (default 15 min); later → 404. */
  ttlMs: number;
}

export interface FourMeSimOptions {
  tls: { certPem: string; keyPem: string };
  accounts: FourMeSimAccount[];
  personalAccessTokens?: FourMeSimPat[];
  oauthClients?: FourMeSimOAuthClient[];
  /** Lifetime of OAuth access tokens (default 3600 s). */
  tokenLifetimeSec?: number;
  limits?: Partial<FourMeLimits>;
  async?: Partial<FourMeAsyncOptions>;
  /** Page size when neither first nor last is given (default 25). */
  defaultPageSize?: number;
  /** Reject variables declared with the placeholder filter value types (default true). */
  strictPlaceholderTypes?: boolean;
  /** primaryEmail filter ignores case (default true). */
  caseInsensitiveEmailFilter?: boolean;
  /** Explicit path of fourme-schema.graphql (default: found next to this file or in <repo>/sim). */
  schemaPath?: string;
  /** Latency added to every HTTP request (any route) before it is handled (default 0), for benchmarks. */
  latencyMs?: number;
}

export type FourMeRoute = 'graphql' | 'token' | 'async';

/** Which requests a fault applies to (all given conditions must hold). */
export interface FourMeFaultMatch {
  route?: FourMeRoute;
  /** A root field ("discoveredConfigurationItems", "people") or operation name of the GraphQL request. */
  operation?: string;
}

export interface FourMeSimStats {
  /** HTTP requests of any route. */
  requests: number;
  byRoute: Record<FourMeRoute | 'other', number>;
  byStatus: Record<string, number>;
  /** GraphQL requests that were executed (after auth and limits), by operation name ("(anonymous)" when none). */
  byOperation: Record<string, number>;
  /** Executed root fields, e.g. "query.people": 12, "mutation.discoveredConfigurationItems": 100. */
  byRootField: Record<string, number>;
  /** Mutations run, by field name (validation failures included). */
  mutations: Record<string, number>;
  /** GraphQL requests rejected by parse/validation (200 with errors). */
  invalidOperations: number;
  /** CI writes (created + updated/matched) by any mutation. */
  cisWritten: number;
  cisCreated: number;
  cisUpdated: number;
  /** Existing CIs adopted by serial number. */
  cisAdopted: number;
  /** Writes that changed no stored value. */
  cisUnchanged: number;
  /** CIs received in discoveredConfigurationItems inputs (accepted calls). */
  discoveredItemsReceived: number;
  /** Per-item errors reported in async results. */
  discoveredItemErrors: number;
  asyncJobs: number;
  asyncPolls: number;
  /** Polls answered `{}`. */
  asyncPollsPending: number;
  asyncExpiredPolls: number;
  tokenRequests: number;
  tokensIssued: number;
  unauthorized: number;
  /** 429 answers (limits and throttleNext). */
  throttled: number;
  throttledBy: { burst: number; hourly: number; cost: number; injected: number };
  faults: { status: number; dropped: number; delayed: number };
  /** Cost points charged. */
  cost: number;
}

export interface FourMeRequestLogEntry {
  at: string;
  method: string;
  path: string;
  route: FourMeRoute | 'other';
  status: number;
  ms: number;
  account?: string;
  operationName?: string | null;
  rootFields?: string[];
  cost?: number;
}

/** Executed GraphQL operations (bounded), for assertions on what a client sent. */
export interface FourMeOperationLogEntry {
  at: string;
  account: string;
  operationName: string | null;
  rootFields: string[];
  query: string;
  variables: Record<string, unknown>;
  errors: number;
}

export interface FourMeCiWriteLogEntry extends CiWriteEvent {
  at: string;
  accountId: string;
}

// ---------------------------------------------------------------------------
// Internal types

interface Credential {
  key: string; // "pat:<token>" or "oauth:<clientId>"
  personIds: Map<string, string>; // accountId → person id
  personName: string;
  personEmail: string | null;
  accounts: Set<string> | null;
}

interface IssuedToken {
  credential: Credential;
  expiresAt: number | null; // ms; null = no expiry (PAT)
  revoked: boolean;
  oauth: boolean;
}

interface LimiterState {
  burst: number[];
  hourly: number[];
  cost: Array<{ t: number; c: number }>;
}

interface Fault {
  kind: 'status' | 'drop' | 'delay' | 'throttle';
  remaining: number;
  match: FourMeFaultMatch;
  status?: number;
  retryAfter?: number | null;
  ms?: number;
  html?: boolean;
}

interface AsyncJob {
  key: string;
  submission: AsyncSubmission;
  asyncQuery: FourMeAsyncQuery;
  submittedAt: number;
  readyAt: number;
  expiresAt: number;
  pollsBeforeResult: number;
  donePolls: number;
  processed: boolean;
  result: string | null;
  timer: NodeJS.Timeout | null;
}

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

const BODY_LIMIT = 16 * 1024 * 1024;
const LOG_LIMIT = 1000;
const OP_LOG_LIMIT = 500;
const CI_LOG_LIMIT = 100_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const bump = (rec: Record<string, number>, key: string, n = 1) => {
  rec[key] = (rec[key] ?? 0) + n;
};

function emptyStats(): FourMeSimStats {
  return {
    requests: 0,
    byRoute: { graphql: 0, token: 0, async: 0, other: 0 },
    byStatus: {},
    byOperation: {},
    byRootField: {},
    mutations: {},
    invalidOperations: 0,
    cisWritten: 0,
    cisCreated: 0,
    cisUpdated: 0,
    cisAdopted: 0,
    cisUnchanged: 0,
    discoveredItemsReceived: 0,
    discoveredItemErrors: 0,
    asyncJobs: 0,
    asyncPolls: 0,
    asyncPollsPending: 0,
    asyncExpiredPolls: 0,
    tokenRequests: 0,
    tokensIssued: 0,
    unauthorized: 0,
    throttled: 0,
    throttledBy: { burst: 0, hourly: 0, cost: 0, injected: 0 },
    faults: { status: 0, dropped: 0, delayed: 0 },
    cost: 0,
  };
}

const gqlErrorBody = (message: string) => ({ errors: [{ message }] });

// ---------------------------------------------------------------------------

export class FourMeSim {
  /** Last 1000 HTTP requests (no credentials, no bodies). */
  readonly requestLog: FourMeRequestLogEntry[] = [];
  /** Last 500 executed GraphQL operations with their variables. */
  readonly operationLog: FourMeOperationLogEntry[] = [];
  /** Last 100,000 CI writes (created, updated, adopted, matched). */
  readonly ciWriteLog: FourMeCiWriteLogEntry[] = [];
  readonly engine: FourMeEngine;

  private readonly data = new FourMeData();
  private readonly tls: { certPem: string; keyPem: string };
  private readonly defaultAccount: string;
  private readonly credentials = new Map<string, Credential>();
  private readonly clients = new Map<string, { secret: string; disabled: boolean; credential: Credential }>();
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly limiters = new Map<string, LimiterState>();
  private readonly jobs = new Map<string, AsyncJob>();
  private readonly sockets = new Set<Socket>();
  private server: https.Server | undefined;
  private port = 0;
  private limits: FourMeLimits;
  private asyncOpts: FourMeAsyncOptions;
  private tokenLifetimeSec: number;
  private sendRetryAfter = true;
  private faults: Fault[] = [];
  private latencyMs: number;
  private _stats: FourMeSimStats = emptyStats();

  constructor(opts: FourMeSimOptions) {
    if (!opts.accounts.length) throw new Error('FourMeSim: at least one account is required');
    this.tls = opts.tls;
    this.limits = { ...FOURME_DEFAULT_LIMITS, ...(opts.limits ?? {}) };
    this.asyncOpts = { delayMs: 0, pollsBeforeResult: 0, ttlMs: 15 * 60_000, ...(opts.async ?? {}) };
    this.tokenLifetimeSec = opts.tokenLifetimeSec ?? 3600;
    this.latencyMs = Math.max(0, opts.latencyMs ?? 0);
    for (const a of opts.accounts) {
      const store = this.data.addAccount(a.id, a.name ?? a.id, a.directoryAccountId ?? null);
      if (a.ciCustomFieldIds) store.ciCustomFieldIds = new Set(a.ciCustomFieldIds);
    }
    for (const a of opts.accounts) {
      if (a.directoryAccountId && !this.data.hasAccount(a.directoryAccountId)) {
        throw new Error(`FourMeSim: directory account '${a.directoryAccountId}' of '${a.id}' is not configured`);
      }
    }
    this.defaultAccount = opts.accounts[0].id;
    this.engine = new FourMeEngine(this.data, {
      schemaPath: opts.schemaPath,
      defaultPageSize: opts.defaultPageSize,
      strictPlaceholderTypes: opts.strictPlaceholderTypes,
      caseInsensitiveEmailFilter: opts.caseInsensitiveEmailFilter,
    });
    for (const p of opts.personalAccessTokens ?? []) this.addPersonalAccessToken(p);
    for (const c of opts.oauthClients ?? []) this.addOAuthClient(c);
  }

  // -------------------------------------------------------------------------
  // Lifecycle

  /** https://127.0.0.1:PORT (no trailing slash). */
  get url(): string {
    if (!this.port) throw new Error('FourMeSim is not started');
    return `https://127.0.0.1:${this.port}`;
  }
  get graphqlUrl(): string {
    return `${this.url}/graphql`;
  }
  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  async start(port = 0): Promise<void> {
    if (this.server) throw new Error('FourMeSim already started');
    const server = https.createServer({ key: this.tls.keyPem, cert: this.tls.certPem }, (req, res) => {
      this.onRequest(req, res).catch((e) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify(gqlErrorBody(`4me sim internal error: ${(e as Error).message}`)));
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

  /** Stops listening, cancels pending async timers and closes every open connection at once. */
  async stop(): Promise<void> {
    for (const j of this.jobs.values()) if (j.timer) clearTimeout(j.timer);
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

  // -------------------------------------------------------------------------
  // Stores and seeding

  /** Records of an account (default: the first configured account). */
  account(id: string = this.defaultAccount): FourMeAccountStore {
    return this.data.account(id);
  }
  get accountIds(): string[] {
    return this.data.accountIds;
  }
  /** Any record by node ID. */
  node(id: string): { type: string; accountId: string; rec: unknown } | undefined {
    return this.data.node(id);
  }

  seedPeople(people: SeedPerson[], accountId: string = this.defaultAccount): FourMePerson[] {
    return people.map((p) => this.data.addPerson(accountId, p));
  }
  seedTeam(name: string, accountId: string = this.defaultAccount): FourMeTeam {
    return this.data.addTeam(accountId, name);
  }
  seedProductCategory(c: SeedProductCategory, accountId: string = this.defaultAccount): FourMeProductCategory {
    return this.data.addProductCategory(accountId, c);
  }
  seedProduct(p: SeedProduct, accountId: string = this.defaultAccount): FourMeProduct {
    return this.data.addProduct(accountId, p);
  }
  seedConfigurationItem(c: SeedConfigurationItem, accountId: string = this.defaultAccount): FourMeConfigurationItem {
    return this.data.addConfigurationItem(accountId, c);
  }
  seedRequest(r: SeedRequest, accountId: string = this.defaultAccount): FourMeRequest {
    return this.data.addRequest(accountId, r);
  }
  /** Defines the CI custom field ids (the CI UI extension); null accepts any id. */
  seedCiCustomFields(ids: string[] | null, accountId: string = this.defaultAccount): void {
    this.data.account(accountId).ciCustomFieldIds = ids ? new Set(ids) : null;
  }
  /** Changes a CI as a 4me user would (indexes kept). */
  updateConfigurationItem(id: string, patch: Partial<Omit<FourMeConfigurationItem, 'id' | 'accountId' | 'createdAt'>>): FourMeConfigurationItem {
    const n = this.data.node(id);
    if (!n || n.type !== 'ConfigurationItem') throw new Error(`FourMeSim: unknown CI ${id}`);
    this.data.updateConfigurationItem(n.rec as FourMeConfigurationItem, patch);
    return n.rec as FourMeConfigurationItem;
  }
  updatePerson(id: string, patch: Partial<Omit<FourMePerson, 'id' | 'accountId' | 'createdAt'>>): FourMePerson {
    const n = this.data.node(id);
    if (!n || n.type !== 'Person') throw new Error(`FourMeSim: unknown person ${id}`);
    this.data.updatePerson(n.rec as FourMePerson, patch);
    return n.rec as FourMePerson;
  }

  // -------------------------------------------------------------------------
  // Credentials

  addPersonalAccessToken(p: FourMeSimPat): void {
    const cred = this.newCredential(`pat:${p.token}`, p.personName, p.personEmail, p.accounts);
    this.tokens.set(p.token, { credential: cred, expiresAt: null, revoked: false, oauth: false });
  }

  addOAuthClient(c: FourMeSimOAuthClient): void {
    const cred = this.newCredential(`oauth:${c.clientId}`, c.personName, c.personEmail, c.accounts);
    this.clients.set(c.clientId, { secret: c.clientSecret, disabled: c.disabled ?? false, credential: cred });
  }

  /** A disabled client gets invalid_client and its issued tokens stop working. */
  setClientDisabled(clientId: string, disabled: boolean): void {
    const c = this.clients.get(clientId);
    if (!c) throw new Error(`FourMeSim: unknown OAuth client ${clientId}`);
    c.disabled = disabled;
  }

  /** Makes every OAuth-issued access token expired now (and personal access tokens too with `personal`). */
  expireTokens(opts: { personal?: boolean } = {}): void {
    const now = Date.now();
    for (const t of this.tokens.values()) {
      if (t.oauth) t.expiresAt = Math.min(t.expiresAt ?? now, now - 1);
      else if (opts.personal) t.revoked = true;
    }
  }

  revokeToken(token: string): void {
    const t = this.tokens.get(token);
    if (t) t.revoked = true;
  }

  /** Mints an OAuth access token directly (no HTTP), e.g. an already expired one with lifetimeSec <= 0. */
  issueToken(clientId: string, lifetimeSec = this.tokenLifetimeSec): string {
    const c = this.clients.get(clientId);
    if (!c) throw new Error(`FourMeSim: unknown OAuth client ${clientId}`);
    const token = crypto.randomBytes(24).toString('hex');
    this.tokens.set(token, { credential: c.credential, expiresAt: Date.now() + lifetimeSec * 1000, revoked: false, oauth: true });
    return token;
  }

  /** The person `me` returns for a token in an account. */
  personOf(token: string, accountId: string = this.defaultAccount): FourMePerson | undefined {
    const t = this.tokens.get(token);
    return t ? this.personFor(t.credential, accountId) : undefined;
  }

  private newCredential(key: string, name?: string, email?: string, accounts?: string[]): Credential {
    for (const a of accounts ?? []) if (!this.data.hasAccount(a)) throw new Error(`FourMeSim: unknown account ${a}`);
    const cred: Credential = {
      key,
      personIds: new Map(),
      personName: name ?? 'API user',
      personEmail: email ?? null,
      accounts: accounts ? new Set(accounts) : null,
    };
    this.credentials.set(key, cred);
    for (const a of accounts ?? this.data.accountIds) this.personFor(cred, a);
    return cred;
  }

  private personFor(cred: Credential, accountId: string): FourMePerson {
    let id = cred.personIds.get(accountId);
    if (!id) {
      id = this.data.addPerson(accountId, { name: cred.personName, primaryEmail: cred.personEmail }).id;
      cred.personIds.set(accountId, id);
    }
    return this.data.node(id)!.rec as FourMePerson;
  }

  // -------------------------------------------------------------------------
  // Controls

  /** Answer the next `count` matching requests with `status` (default 503), Retry-After when `retryAfter` is a number. */
  failNext(count: number, opts: FourMeFaultMatch & { status?: number; retryAfter?: number | null; html?: boolean } = {}): void {
    this.faults.push({ kind: 'status', remaining: count, match: opts, status: opts.status ?? 503, retryAfter: opts.retryAfter ?? null, html: opts.html });
  }
  /** Destroy the connection of the next `count` matching requests before any answer. */
  dropNext(count: number, opts: FourMeFaultMatch = {}): void {
    this.faults.push({ kind: 'drop', remaining: count, match: opts });
  }
  /** Add `ms` of latency to the next `count` matching requests. */
  delayNext(count: number, ms: number, opts: FourMeFaultMatch = {}): void {
    this.faults.push({ kind: 'delay', remaining: count, match: opts, ms });
  }
  /** Answer the next `count` matching requests 429 (Retry-After default 1 s; null omits it). Not counted against limits. */
  throttleNext(count: number, opts: FourMeFaultMatch & { retryAfter?: number | null } = {}): void {
    this.faults.push({ kind: 'throttle', remaining: count, match: opts, retryAfter: opts.retryAfter === undefined ? 1 : opts.retryAfter });
  }
  clearFaults(): void {
    this.faults = [];
  }
  /** Whether 429s from the limits carry Retry-After (default true). */
  setRetryAfter(send: boolean): void {
    this.sendRetryAfter = send;
  }
  /** Latency added to every request from now on (ms, 0 = none). */
  setLatency(ms: number): void {
    this.latencyMs = Math.max(0, ms);
  }
  setLimits(l: Partial<FourMeLimits>): void {
    this.limits = { ...this.limits, ...l };
  }
  get currentLimits(): FourMeLimits {
    return { ...this.limits };
  }
  /** Forget all request and cost history (fresh budgets). */
  resetThrottling(): void {
    this.limiters.clear();
  }
  setAsyncOptions(o: Partial<FourMeAsyncOptions>): void {
    this.asyncOpts = { ...this.asyncOpts, ...o };
  }
  get asyncOptions(): FourMeAsyncOptions {
    return { ...this.asyncOpts };
  }
  /** Every current resultUrl answers 404 from now on. */
  expireAsyncResults(): void {
    const now = Date.now();
    for (const j of this.jobs.values()) j.expiresAt = Math.min(j.expiresAt, now - 1);
  }
  /** Processes every pending job now (ignores delayMs). Returns how many ran. */
  completeAsyncJobs(): number {
    let n = 0;
    for (const j of this.jobs.values()) {
      if (!j.processed) {
        this.processJob(j);
        n++;
      }
    }
    return n;
  }
  /** Jobs not processed yet. */
  get pendingAsyncJobs(): number {
    return [...this.jobs.values()].filter((j) => !j.processed).length;
  }

  get stats(): FourMeSimStats {
    return this._stats;
  }
  resetStats(): void {
    this._stats = emptyStats();
    this.requestLog.length = 0;
    this.operationLog.length = 0;
    this.ciWriteLog.length = 0;
  }

  // -------------------------------------------------------------------------
  // HTTP

  private route(path: string): FourMeRoute | 'other' {
    if (path === '/graphql' || path === '/') return 'graphql';
    if (path === '/token') return 'token';
    if (path.startsWith('/async/')) return 'async';
    return 'other';
  }

  private takeFault(kinds: Fault['kind'][], route: FourMeRoute | 'other', operations: string[]): Fault | null {
    for (const f of this.faults) {
      if (f.remaining <= 0 || !kinds.includes(f.kind)) continue;
      if (f.match.route && f.match.route !== route) continue;
      if (f.match.operation && !operations.includes(f.match.operation)) continue;
      f.remaining--;
      return f;
    }
    return null;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const u = new URL(req.url ?? '/', 'https://sim.invalid');
    const route = this.route(u.pathname);
    const method = (req.method ?? 'GET').toUpperCase();
    const requestId = crypto.randomUUID();
    const entry: FourMeRequestLogEntry = { at: new Date(started).toISOString(), method, path: u.pathname, route, status: 0, ms: 0 };
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.ms = Date.now() - started;
      this.log(entry);
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size <= BODY_LIMIT) chunks.push(c as Buffer);
    }
    const raw = Buffer.concat(chunks).toString('utf8');
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const st = this._stats;
    st.requests++;
    st.byRoute[route]++;

    // Operation names for fault matching (cheap: root field names and operationName).
    let body: unknown;
    let operations: string[] = [];
    if (route === 'graphql' && method === 'POST') {
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        body = undefined;
      }
      if (this.faults.some((f) => f.remaining > 0 && f.match.operation)) operations = this.operationsOf(body);
    }

    const delay = this.takeFault(['delay'], route, operations);
    if (delay) {
      st.faults.delayed++;
      await sleep(delay.ms ?? 0);
    }
    if (this.takeFault(['drop'], route, operations)) {
      st.faults.dropped++;
      entry.status = 0;
      this.log(entry);
      req.socket.destroy();
      return;
    }
    const fail = this.takeFault(['status'], route, operations);
    if (fail) {
      st.faults.status++;
      const headers: Record<string, string> = { 'x-request-id': requestId };
      if (typeof fail.retryAfter === 'number') headers['retry-after'] = String(fail.retryAfter);
      if (fail.html) {
        res.writeHead(fail.status!, { ...headers, 'content-type': 'text/html' });
        res.end(`<html><body><h1>${fail.status} Service Unavailable</h1></body></html>`);
      } else this.sendJson(res, fail.status!, gqlErrorBody(fail.status === 503 ? 'Service Unavailable' : `Error ${fail.status}`), headers);
      return;
    }

    try {
      if (route === 'token') {
        if (method !== 'POST') throw new HttpFailure(405, { error: 'invalid_request', error_description: 'Use POST.' });
        this.handleToken(req, raw, res, requestId);
      } else if (route === 'async') {
        if (method !== 'GET') throw new HttpFailure(405, {});
        this.handleAsync(u.pathname.slice('/async/'.length), res, requestId);
      } else if (route === 'graphql') {
        if (method !== 'POST') throw new HttpFailure(405, gqlErrorBody('Use POST with a JSON body {query, variables}.'));
        this.handleGraphql(req, body, raw, res, requestId, entry);
      } else {
        throw new HttpFailure(404, gqlErrorBody('Not Found'));
      }
    } catch (e) {
      if (e instanceof HttpFailure) this.sendJson(res, e.status, e.body, { 'x-request-id': requestId, ...e.headers });
      else throw e;
    }
  }

  /** Operation name and root field names of a GraphQL body (for fault matching); [] when it does not parse. */
  private operationsOf(body: unknown): string[] {
    const b = body as { query?: unknown; operationName?: unknown } | undefined;
    if (!b || typeof b.query !== 'string') return [];
    try {
      const doc = parse(b.query);
      const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
      const name = typeof b.operationName === 'string' ? b.operationName : undefined;
      const op = name ? ops.find((o) => o.name?.value === name) : ops[0];
      if (!op) return [];
      const out = op.selectionSet.selections.flatMap((s) => (s.kind === Kind.FIELD ? [s.name.value] : []));
      if (op.name) out.push(op.name.value);
      return out;
    } catch {
      return [];
    }
  }

  private log(e: FourMeRequestLogEntry): void {
    if (this.requestLog.includes(e)) return;
    this.requestLog.push(e);
    if (this.requestLog.length > LOG_LIMIT) this.requestLog.splice(0, this.requestLog.length - LOG_LIMIT);
    bump(this._stats.byStatus, String(e.status));
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(text);
  }

  // ---- /token ----

  private handleToken(req: IncomingMessage, raw: string, res: ServerResponse, requestId: string): void {
    this._stats.tokenRequests++;
    const ct = String(req.headers['content-type'] ?? '').toLowerCase();
    let params: Record<string, string> = {};
    if (ct.includes('application/json')) {
      try {
        const j = JSON.parse(raw || '{}');
        if (j && typeof j === 'object') params = Object.fromEntries(Object.entries(j).map(([k, v]) => [k, String(v)]));
      } catch {
        throw new HttpFailure(400, { error: 'invalid_request', error_description: 'The request body is not valid JSON.' });
      }
    } else {
      params = Object.fromEntries(new URLSearchParams(raw));
    }
    const auth = String(req.headers.authorization ?? '');
    if (/^basic\s+/i.test(auth)) {
      const [id, ...rest] = Buffer.from(auth.replace(/^basic\s+/i, ''), 'base64').toString('utf8').split(':');
      params.client_id ??= decodeURIComponent(id ?? '');
      params.client_secret ??= decodeURIComponent(rest.join(':'));
    }
    const bad = (description: string): never => {
      throw new HttpFailure(400, { error: 'invalid_request', error_description: description });
    };
    if (!params.grant_type) bad("The request is missing the required parameter 'grant_type'.");
    if (params.grant_type !== 'client_credentials') {
      throw new HttpFailure(400, { error: 'unsupported_grant_type', error_description: `The grant type '${params.grant_type}' is not supported by the authorization server.` });
    }
    if (!params.client_id) bad("The request is missing the required parameter 'client_id'.");
    const client = this.clients.get(params.client_id);
    const given = Buffer.from(params.client_secret ?? '', 'utf8');
    const want = Buffer.from(client?.secret ?? '', 'utf8');
    const ok = !!client && given.length === want.length && crypto.timingSafeEqual(given, want);
    if (!ok || client!.disabled) {
      throw new HttpFailure(401, {
        error: 'invalid_client',
        error_description: client?.disabled
          ? 'The client application is disabled.'
          : 'Client authentication failed: unknown client, missing or wrong client secret.',
      });
    }
    const lifetime = this.tokenLifetimeSec;
    const token = this.issueToken(params.client_id, lifetime);
    this._stats.tokensIssued++;
    this.sendJson(
      res,
      200,
      { access_token: token, token_type: 'Bearer', expires_in: lifetime, created_at: Math.floor(Date.now() / 1000) },
      { 'x-request-id': requestId },
    );
  }

  // ---- /async/<key> ----

  private handleAsync(key: string, res: ServerResponse, requestId: string): void {
    const st = this._stats;
    st.asyncPolls++;
    const job = this.jobs.get(key);
    const headers = { 'x-request-id': requestId };
    if (!job || Date.now() >= job.expiresAt) {
      if (job) st.asyncExpiredPolls++;
      this.sendJson(res, 404, { error: 'not_found', error_description: 'The result link is unknown or has expired.' }, headers);
      return;
    }
    if (!job.processed && Date.now() >= job.readyAt) this.processJob(job);
    if (!job.processed || job.donePolls < job.pollsBeforeResult) {
      if (job.processed) job.donePolls++;
      st.asyncPollsPending++;
      this.sendJson(res, 200, {}, headers);
      return;
    }
    this.sendJson(res, 200, job.result ?? '{}', headers);
  }

  private submitAsync(s: AsyncSubmission): FourMeAsyncQuery {
    const key = crypto.randomBytes(18).toString('base64url');
    const aq = this.data.addAsyncQuery(s.accountId, `${this.url}/async/${key}`, s.personId);
    const now = Date.now();
    const job: AsyncJob = {
      key,
      submission: s,
      asyncQuery: aq,
      submittedAt: now,
      readyAt: now + this.asyncOpts.delayMs,
      expiresAt: now + this.asyncOpts.ttlMs,
      pollsBeforeResult: this.asyncOpts.pollsBeforeResult,
      donePolls: 0,
      processed: false,
      result: null,
      timer: null,
    };
    this.jobs.set(key, job);
    this._stats.asyncJobs++;
    job.timer = setTimeout(() => {
      job.timer = null;
      if (!job.processed && this.server) this.processJob(job);
    }, this.asyncOpts.delayMs);
    job.timer.unref?.();
    return aq;
  }

  private processJob(job: AsyncJob): void {
    if (job.processed) return;
    if (job.timer) {
      clearTimeout(job.timer);
      job.timer = null;
    }
    job.processed = true;
    const s = job.submission;
    const aq = job.asyncQuery;
    aq.status = 'in_progress';
    aq.startedAt = nowIso();
    const outcome = applyDiscovered(this.data, s.accountId, s.input as Record<string, unknown>, (e) => this.recordCiWrite(s.accountId, e));
    this._stats.discoveredItemErrors += outcome.errors.length;
    aq.status = 'completed';
    aq.completedAt = nowIso();
    aq.updatedAt = aq.completedAt;
    aq.errorCount = outcome.errors.length;
    aq.resultCount = outcome.cis.length;
    const payload = discoveredResultPayload(aq, outcome.cis, outcome.errors, s.clientMutationId);
    // Re-run the submitted document over the finished job: the result has the client's own selection.
    const account = this.data.account(s.accountId);
    const me = this.data.node(s.personId)!.rec as FourMePerson;
    const prepared: PreparedOperation = {
      document: s.document,
      operation: s.document.definitions.find(
        (d) => d.kind === Kind.OPERATION_DEFINITION && (!s.operationName || d.name?.value === s.operationName),
      ) as PreparedOperation['operation'],
      operationName: s.operationName,
      variables: s.variables,
      rootFields: [],
      nodes: 0,
      cost: 0,
    };
    try {
      const r = this.engine.run(prepared, {
        account,
        me,
        replay: { responseKey: s.responseKey, payload },
        submitAsync: () => {
          throw new Error('not during replay');
        },
        onMutation: () => undefined,
        onCiWrite: () => undefined,
      });
      job.result = JSON.stringify(r.errors ? { data: r.data ?? null, errors: r.errors.map((e) => e.toJSON()) } : { data: r.data });
    } catch (e) {
      job.result = JSON.stringify(gqlErrorBody(`4me sim: async result failed: ${(e as Error).message}`));
    }
  }

  private recordCiWrite(accountId: string, e: CiWriteEvent): void {
    const st = this._stats;
    st.cisWritten++;
    if (e.created) st.cisCreated++;
    else st.cisUpdated++;
    if (e.adopted) st.cisAdopted++;
    if (!e.changed) st.cisUnchanged++;
    this.ciWriteLog.push({ ...e, at: nowIso(), accountId });
    if (this.ciWriteLog.length > CI_LOG_LIMIT) this.ciWriteLog.splice(0, this.ciWriteLog.length - CI_LOG_LIMIT);
  }

  // ---- /graphql ----

  private unauthorized(message: string): never {
    this._stats.unauthorized++;
    throw new HttpFailure(401, gqlErrorBody(message), { 'www-authenticate': 'Bearer realm="4me"' });
  }

  private authenticate(req: IncomingMessage): { token: IssuedToken; accountId: string } {
    const auth = String(req.headers.authorization ?? '');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) this.unauthorized('Missing access token: send an Authorization: Bearer header.');
    const token = this.tokens.get(m[1]);
    if (!token || token.revoked) this.unauthorized('The access token is invalid.');
    if (token.expiresAt !== null && Date.now() >= token.expiresAt) this.unauthorized('The access token has expired.');
    if (token.oauth) {
      const clientId = token.credential.key.slice('oauth:'.length);
      if (this.clients.get(clientId)?.disabled) this.unauthorized('The access token is invalid: the client application is disabled.');
    }
    const accountHeader = String(req.headers['x-4me-account'] ?? req.headers['x-xurrent-account'] ?? '').trim();
    if (!accountHeader) this.unauthorized('Missing account: send the X-4me-Account (or X-Xurrent-Account) header.');
    if (!this.data.hasAccount(accountHeader)) this.unauthorized(`Unknown account '${accountHeader}'.`);
    if (token.credential.accounts && !token.credential.accounts.has(accountHeader)) {
      this.unauthorized(`The access token is not valid for account '${accountHeader}'.`);
    }
    return { token, accountId: accountHeader };
  }

  private limiterOf(key: string): LimiterState {
    let l = this.limiters.get(key);
    if (!l) {
      l = { burst: [], hourly: [], cost: [] };
      this.limiters.set(key, l);
    }
    return l;
  }

  private limitHeaders(l: LimiterState, now: number, cost: number): Record<string, string> {
    const lim = this.limits;
    const used = l.cost.reduce((a, x) => a + x.c, 0);
    const rateReset = (l.hourly.length ? l.hourly[0] + lim.hourlyWindowMs : now + lim.hourlyWindowMs) / 1000;
    const costReset = (l.cost.length ? l.cost[0].t + lim.costWindowMs : now + lim.costWindowMs) / 1000;
    return {
      'x-ratelimit-limit': String(lim.hourlyRequests),
      'x-ratelimit-remaining': String(Math.max(0, lim.hourlyRequests - l.hourly.length)),
      'x-ratelimit-reset': String(Math.ceil(rateReset)),
      'x-costlimit-limit': String(lim.costPoints),
      'x-costlimit-remaining': String(Math.max(0, lim.costPoints - used)),
      'x-costlimit-reset': String(Math.ceil(costReset)),
      'x-costlimit-cost': String(cost),
    };
  }

  private prune(l: LimiterState, now: number): void {
    const lim = this.limits;
    while (l.burst.length && l.burst[0] <= now - lim.burstWindowMs) l.burst.shift();
    while (l.hourly.length && l.hourly[0] <= now - lim.hourlyWindowMs) l.hourly.shift();
    while (l.cost.length && l.cost[0].t <= now - lim.costWindowMs) l.cost.shift();
  }

  private handleGraphql(req: IncomingMessage, body: unknown, raw: string, res: ServerResponse, requestId: string, entry: FourMeRequestLogEntry): void {
    const st = this._stats;
    const { token, accountId } = this.authenticate(req);
    entry.account = accountId;
    const l = this.limiterOf(token.credential.key);
    const now = Date.now();
    this.prune(l, now);
    const lim = this.limits;

    const tooMany = (kind: 'burst' | 'hourly' | 'cost' | 'injected', retryAfterSec: number | null): never => {
      st.throttled++;
      st.throttledBy[kind]++;
      const headers: Record<string, string> = { ...this.limitHeaders(l, now, 0), 'x-request-id': requestId };
      if (retryAfterSec !== null) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterSec)));
      throw new HttpFailure(429, gqlErrorBody('Too Many Requests'), headers);
    };
    const injected = this.faults.some((f) => f.kind === 'throttle' && f.remaining > 0)
      ? this.takeFault(['throttle'], 'graphql', this.operationsOf(body))
      : null;
    if (injected) tooMany('injected', injected.retryAfter ?? null);
    const ra = (sec: number) => (this.sendRetryAfter ? sec : null);
    if (l.burst.length >= lim.burstRequests) tooMany('burst', ra((l.burst[l.burst.length - lim.burstRequests] + lim.burstWindowMs - now) / 1000));
    if (l.hourly.length >= lim.hourlyRequests) tooMany('hourly', ra((l.hourly[l.hourly.length - lim.hourlyRequests] + lim.hourlyWindowMs - now) / 1000));
    const used = l.cost.reduce((a, x) => a + x.c, 0);
    if (used >= lim.costPoints) {
      // Wait until enough points leave the window to get below the limit again.
      let free = used - lim.costPoints + 1;
      let until = now + lim.costWindowMs;
      for (const x of l.cost) {
        free -= x.c;
        if (free <= 0) {
          until = x.t + lim.costWindowMs;
          break;
        }
      }
      tooMany('cost', ra((until - now) / 1000));
    }
    l.burst.push(now);
    l.hourly.push(now);

    if (body === undefined) {
      st.invalidOperations++;
      this.charge(l, now, 1);
      this.sendJson(res, 200, gqlErrorBody(raw.trim() ? 'The request body is not valid JSON.' : 'No query string was present'), {
        ...this.limitHeaders(l, now, 1),
        'x-request-id': requestId,
      });
      return;
    }
    const prepared = this.engine.prepare(body);
    if ('errors' in prepared) {
      st.invalidOperations++;
      this.charge(l, now, 1);
      this.sendJson(res, 200, { errors: prepared.errors.map((e: GraphQLError) => e.toJSON()) }, { ...this.limitHeaders(l, now, 1), 'x-request-id': requestId });
      return;
    }
    entry.operationName = prepared.operationName;
    entry.rootFields = prepared.rootFields;
    entry.cost = prepared.cost;
    const account = this.data.account(accountId);
    const me = this.personFor(token.credential, accountId);
    const result = this.engine.run(prepared, {
      account,
      me,
      submitAsync: (s) => {
        st.discoveredItemsReceived += countDiscoveredCis(s.input);
        return this.submitAsync(s);
      },
      onMutation: (name) => bump(st.mutations, name),
      onCiWrite: (e) => this.recordCiWrite(accountId, e),
    });
    this.charge(l, now, prepared.cost);
    const limitHeaders = { ...this.limitHeaders(l, now, prepared.cost), 'x-request-id': requestId };
    if (result.data === undefined) {
      // Request error (e.g. variables that do not match their declared types): nothing ran.
      st.invalidOperations++;
      this.sendJson(res, 200, { errors: (result.errors ?? []).map((e) => e.toJSON()) }, limitHeaders);
      return;
    }
    bump(st.byOperation, prepared.operationName ?? '(anonymous)');
    for (const f of prepared.rootFields) bump(st.byRootField, f);
    this.operationLog.push({
      at: new Date(now).toISOString(),
      account: accountId,
      operationName: prepared.operationName,
      rootFields: prepared.rootFields,
      query: (body as { query: string }).query,
      variables: prepared.variables,
      errors: result.errors?.length ?? 0,
    });
    if (this.operationLog.length > OP_LOG_LIMIT) this.operationLog.splice(0, this.operationLog.length - OP_LOG_LIMIT);
    const out = result.errors ? { errors: result.errors.map((e) => e.toJSON()), data: result.data } : { data: result.data };
    this.sendJson(res, 200, out, limitHeaders);
  }

  private charge(l: LimiterState, now: number, cost: number): void {
    l.cost.push({ t: now, c: cost });
    this._stats.cost += cost;
  }
}
