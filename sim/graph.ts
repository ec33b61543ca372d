/**
 * A simulated Microsoft Graph (the Intune part) over HTTPS on 127.0.0.1.
 *
 *   const graph = new GraphSim({ tls, tenant, verifyToken, pageSize?, limits?, … });
 *   await graph.start();            // graph.url = "https://127.0.0.1:PORT" (service root, no version)
 *   …                               // the token audience the sim expects is graph.url
 *   await graph.stop();             // closes every socket at once
 *
 * Serves /v1.0 and /beta. Behaves like the real service, quirks included:
 *
 *  GET  /deviceManagement/managedDevices          $select (checked against graph-schema, beta-only
 *                                                  names refused on v1.0), $filter (the managedDevice
 *                                                  subset: per-property operators from the CSDL; `or`
 *                                                  only within one property; properties the CSDL
 *                                                  does not mark filterable are refused), $top,
 *                                                  $count=true, server paging (pageSize, default and
 *                                                  most 1000) with an opaque, encrypted $skiptoken bound
 *                                                  to the query exactly as sent (a rebuilt nextLink fails).
 *                                                  GET-by-id-only properties come back as placeholders.
 *  GET  /deviceManagement/managedDevices/{id}     real values of GET-by-id-only properties only when
 *                                                  they are named in $select.
 *  GET  …/managedDevices/{id}/deviceCompliancePolicyStates   (with settingStates)
 *  GET  …/managedDevices/{id}/users
 *  GET  …/managedDevices/{id}/detectedApps        the device's apps (sim/tenant-apps.ts), one page (bench only)
 *  POST …/managedDevices/{id}/{action}            the 18 v1.0 actions (+ beta
 *                                                  sendCustomNotificationToCompanyPortal) → 204
 *  POST /beta/deviceManagement/managedDevices/executeAction   bulk, 200 with the four id lists
 *  GET  /deviceManagement/deviceCompliancePolicies[/{id}[/deviceStatuses]]
 *  POST /deviceManagement/reports/getNoncompliantDevicesAndSettingsReport
 *                                                  {filter, select, skip, top, orderBy, search, sessionId}
 *                                                  → {TotalRowCount, Schema:[{Column,PropertyType}], Values}
 *                                                  as application/octet-stream (an Edm.Stream)
 *  POST/GET /deviceManagement/reports/exportJobs[/{id}]   report export jobs and their download
 *                                                  link (sim/graph-reports.ts: `graph.reports`)
 *  GET  /users                                    $select, $top ≤ 999, $skiptoken paging, no deleted users (sim/graph-users.ts)
 *  GET  /users/{id}
 *  POST /$batch                                    ≤ 20 items, per-item status, shuffled, dependsOn/424,
 *                                                  items throttled one by one (429 + their own Retry-After);
 *                                                  a write item (POST/PUT/PATCH) without body or without
 *                                                  Content-Type fails the WHOLE batch (outer 400, no item
 *                                                  runs), as Graph does (see checkWriteItem)
 *
 * Errors use Graph's body {error:{code,message,innerError:{date,request-id,client-request-id}}};
 * Intune routes put Intune's JSON-in-a-string into `message` for 403 and 404, as the live service does.
 * Throttling: Intune's routes per 20-s sliding window in requests (devices, configuration, reports
 * buckets); /users and /users/{id} in the identity service's resource units (the directory bucket:
 * per app + tenant per 10 s by the tenant's size, S 3,500 / M 5,000 / L 8,000; per app 150,000 per
 * 20 s; costs in directoryCost; each answer says its cost in x-ms-resource-unit). Throttling 429s
 * leave Retry-After out every third time by default (retryAfter: 'sometimes').
 * Controls: failNext, dropNext, delayNext, throttleNext, clearFaults, setLimits, resetThrottling,
 * setRetryAfter, setPageSize, setLatency (also the `latencyMs` option: every request), resetStats.
 * Stats: see GraphSimStats.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  assertSelect,
  entityPropertyNames,
  enumMembers,
  filterOperatorsOf,
  GraphSchemaError,
  isGetByIdOnly,
  listPlaceholder,
  managedDeviceActions,
  MANAGED_DEVICE_ACTIONS_BETA_ONLY,
  MANAGED_DEVICE_ACTIONS_V1,
  MANAGED_DEVICE_BETA_ONLY,
  NONCOMPLIANT_REPORT_COLUMNS,
  NONCOMPLIANT_REPORT_FILTER_COLUMNS,
  V1_COMPLEX_PROPERTIES,
  V1_ENTITY_PROPERTIES,
  V1_ENUMS,
  BETA_ONLY_PROPERTIES,
  type EntityName,
  type EnumName,
  type GraphVersion,
} from '../nodes/lib/graph/graph-schema';
import { ExportJobSim } from './graph-reports';
import { listUsers } from './graph-users';
import { INDEXED_DATES, SimTenant, SimTenantError, type IndexedDate, type ManagedDeviceRecord, type PolicyStateRecord, type ReportRow, type SimPolicy } from './tenant';

// ---------------------------------------------------------------------------
// Public types

export interface TokenClaims {
  tid: string;
  roles: string[];
  appid: string;
}

export type Bucket = 'devices' | 'configuration' | 'reports' | 'directory';

/** The buckets counted in requests per window, as Intune counts them. */
export type IntuneBucket = Exclude<Bucket, 'directory'>;
const INTUNE_BUCKETS: readonly IntuneBucket[] = ['devices', 'configuration', 'reports'];

export interface BucketLimits {
  /** Requests of any kind per window, per app per tenant. */
  appRequests: number;
  /** POST/PUT/PATCH/DELETE per window, per app per tenant. */
  appWrites: number;
  /** Requests of any kind per window, all apps of the tenant together. */
  tenantRequests: number;
  tenantWrites: number;
}

/** Microsoft's size classes of a tenant for the identity service's limits. */
export type TenantSize = 'S' | 'M' | 'L';

/**
 * The identity and access service's limits (the `directory` bucket: GET /users, /users/{id}),
 * counted in resource units, not requests (docs/graph-users.md has the sources and the costs).
 * Its windows follow the sim's time scale: the application + tenant pair's is half of `windowMs`
 * (10 s at Intune's 20 s, as nodes/lib/graph/graph-pacer.ts scales its directory window), the
 * application's is `windowMs` (20 s).
 */
export interface DirectoryLimits {
  /** Resource units per application + tenant pair per half window (10 s), for a tenant under 50 users. */
  S: number;
  /** … for a tenant of 50 to 500 users. */
  M: number;
  /** … for a tenant above 500 users. */
  L: number;
  /** Resource units per application across all tenants per window (20 s). */
  perApp: number;
  /** Size class the tenant is counted in: 'auto' (default) counts its users (deleted ones are not users). */
  tenantSize: TenantSize | 'auto';
}

export interface ThrottleLimits {
  /** Sliding window length (Intune: 20 s). The directory's windows follow it (see DirectoryLimits). */
  windowMs: number;
  devices: BucketLimits;
  configuration: BucketLimits;
  reports: BucketLimits;
  directory: DirectoryLimits;
}

export type ThrottleLimitsInput = { windowMs?: number } & { [B in IntuneBucket]?: Partial<BucketLimits> } & { directory?: Partial<DirectoryLimits> };

/**
 * Intune service limits (includes/throttling-intune-devices.md, …-device-configuration.md); the
 * directory's are the identity and access service's (concepts/throttling-limits.md, "Identity and
 * access service limits"). That service's write quotas (3,000 per 2 min 30 s per app + tenant,
 * 70,000 per 5 min per app, 18,000 per 5 min per tenant) are not modelled: the sim serves no
 * directory write (POST/PATCH/PUT/DELETE on /users is refused with 405 before any bucket).
 */
export const DEFAULT_LIMITS: ThrottleLimits = {
  windowMs: 20_000,
  devices: { appRequests: 2000, appWrites: 200, tenantRequests: 4000, tenantWrites: 400 },
  configuration: { appRequests: 1000, appWrites: 100, tenantRequests: 2000, tenantWrites: 200 },
  reports: { appRequests: 1000, appWrites: 100, tenantRequests: 2000, tenantWrites: 200 },
  directory: { S: 3500, M: 5000, L: 8000, perApp: 150_000, tenantSize: 'auto' },
};

/** Microsoft's tenant size classes: S under 50 users, M 50 to 500, L above 500. */
export function tenantSizeOf(users: number): TenantSize {
  return users < 50 ? 'S' : users <= 500 ? 'M' : 'L';
}

/**
 * Resource units one directory request costs (concepts/throttling-limits.md, "Identity and access
 * service limits"): base 2 for GET users (the listing), 1 for any identity GET not in Microsoft's
 * table (GET users/{id}); `$select` -1, `$expand` +1, `$top` below 20 -1; never below 1. A query
 * option counts as it is sent, whether or not the route then accepts it (a refused request is
 * charged too: Microsoft's batching example shows x-ms-resource-unit on 403 and 405 answers).
 */
export function directoryCost(route: 'GET /users' | 'GET /users/{id}', query: ReadonlyMap<string, string>): number {
  let cost = route === 'GET /users' ? 2 : 1;
  if (query.has('$select')) cost -= 1;
  if (query.has('$expand')) cost += 1;
  const top = query.get('$top');
  if (top !== undefined && /^\d+$/.test(top) && Number(top) < 20) cost -= 1;
  return Math.max(1, cost);
}

/** Application roles each kind of call accepts (any one is enough). */
export const GRAPH_SIM_PERMISSIONS = {
  readDevices: ['DeviceManagementManagedDevices.Read.All', 'DeviceManagementManagedDevices.ReadWrite.All'],
  /** Every managedDevice action page (retire, wipe, remoteLock, syncDevice …) lists only this role. */
  deviceActions: ['DeviceManagementManagedDevices.PrivilegedOperations.All'],
  /** sendCustomNotificationToCompanyPortal (docs disagree; both are accepted). */
  notification: ['DeviceManagementManagedDevices.ReadWrite.All', 'DeviceManagementServiceConfig.ReadWrite.All'],
  readCompliance: ['DeviceManagementConfiguration.Read.All', 'DeviceManagementConfiguration.ReadWrite.All'],
  readReports: [
    'DeviceManagementConfiguration.Read.All',
    'DeviceManagementConfiguration.ReadWrite.All',
    'DeviceManagementApps.Read.All',
    'DeviceManagementApps.ReadWrite.All',
    'DeviceManagementManagedDevices.Read.All',
    'DeviceManagementManagedDevices.ReadWrite.All',
  ],
  readUsers: ['User.Read.All', 'User.ReadWrite.All', 'Directory.Read.All', 'Directory.ReadWrite.All'],
} as const;

export type RetryAfterMode = 'always' | 'sometimes' | 'never';

/** Intune's managedDevices page size, and the most one page holds (docs/graph-facts.md: paging). */
export const MAX_PAGE_SIZE = 1000;

export interface GraphSimOptions {
  tls: { certPem: string; keyPem: string };
  tenant: SimTenant;
  /** Validates a bearer token for `audience` (= graph.url); throws an Error whose .code becomes error.code. */
  verifyToken: (token: string, audience: string) => TokenClaims;
  /** Server page size of managedDevices and deviceStatuses (default and most: 1000, Intune's page size). */
  pageSize?: number;
  limits?: ThrottleLimitsInput;
  /**
   * 'documented' (default): device actions need PrivilegedOperations.All, as each action's docs page says.
   * 'lenient': DeviceManagementManagedDevices.ReadWrite.All is accepted too.
   */
  actionPermissions?: 'documented' | 'lenient';
  /**
   * Ignore $filter clauses on properties the CSDL does not mark filterable instead of refusing them
   * (default false: the entity's description says only the listed properties may be used; that the
   * live service ignores the others is hearsay, no public source shows it).
   */
  ignoreUnsupportedFilter?: boolean;
  /**
   * Retry-After on throttling 429s: 'sometimes' (default: every third one goes without it, as Graph
   * does at times, so a client must back off on its own), 'always' or 'never'.
   */
  retryAfter?: RetryAfterMode;
  /** Rows of the report when `top` is absent (default 50); `top` is capped at 1000. */
  reportDefaultTop?: number;
  /**
   * The throttling windows' clock (default Date.now): tests move it instead of sleeping through a
   * window.
   */
  clock?: () => number;
  /**
   * Latency added to every HTTP request before it is handled (default 0):
   * network round trip plus service time, for benchmarks. A $batch waits
   * once, like any other request.
   */
  latencyMs?: number;
}

/** Which requests a fault applies to. */
export interface FaultMatch {
  /** Matched against "/<version>/<path>?<raw query>" (a string matches as a substring). */
  path?: RegExp | string;
  method?: string;
  /** 'request' (default): HTTP requests; 'batchItem': items inside $batch; 'any': both. */
  scope?: 'request' | 'batchItem' | 'any';
}

export interface GraphSimStats {
  /** HTTP requests received (a $batch counts once here). */
  requests: number;
  byMethod: Record<string, number>;
  /** "GET /deviceManagement/managedDevices", "POST /deviceManagement/managedDevices/{id}/retire" … (HTTP requests and batch items). */
  byRoute: Record<string, number>;
  byVersion: Record<string, number>;
  /** Final status of HTTP requests and batch items. */
  byStatus: Record<string, number>;
  /** 429 answers (throttling and throttleNext), HTTP requests and batch items. */
  throttled: number;
  throttledBatchItems: number;
  /** Resource units charged to the directory bucket (admitted directory requests and batch items). */
  directoryUnits: number;
  batches: number;
  batchInner: number;
  faults: { status: number; dropped: number; delayed: number; throttled: number };
  /** Accepted device actions by name (batch items included). */
  actions: Record<string, number>;
  unauthorized: number;
  forbidden: number;
}

export interface SimRequestLogEntry {
  at: string;
  method: string;
  /** "/v1.0/…?query" as received (batch items: as the item's url, prefixed with the version). */
  url: string;
  route: string | null;
  status: number;
  batchItem: boolean;
  appid?: string;
}

// ---------------------------------------------------------------------------
// Internal types

interface SimResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  contentType?: string;
}

interface Ctx {
  method: string;
  version: GraphVersion;
  segments: string[];
  rawQuery: string;
  query: Map<string, string>;
  headers: Record<string, string>;
  body: unknown;
  hasBody: boolean;
  claims: TokenClaims;
  requestId: string;
  clientRequestId: string;
  inBatch: boolean;
  url: string;
}

interface Fault {
  kind: 'status' | 'drop' | 'delay' | 'throttle';
  remaining: number;
  match: FaultMatch;
  status?: number;
  retryAfter?: number | null;
  phase?: 'beforeResponse' | 'midResponse';
  ms?: number;
}

interface Route {
  key: string;
  bucket: Bucket;
  roles: readonly string[];
  write: boolean;
  run: (ctx: Ctx) => SimResponse | Promise<SimResponse>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly intune = false,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const JSON_CT = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
const BODY_LIMIT = 8 * 1024 * 1024;
const LOG_LIMIT = 1000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function emptyStats(): GraphSimStats {
  return {
    requests: 0,
    byMethod: {},
    byRoute: {},
    byVersion: {},
    byStatus: {},
    throttled: 0,
    throttledBatchItems: 0,
    directoryUnits: 0,
    batches: 0,
    batchInner: 0,
    faults: { status: 0, dropped: 0, delayed: 0, throttled: 0 },
    actions: {},
    unauthorized: 0,
    forbidden: 0,
  };
}

const bump = (rec: Record<string, number>, key: string) => {
  rec[key] = (rec[key] ?? 0) + 1;
};

function mergeLimits(input?: ThrottleLimitsInput): ThrottleLimits {
  const out: ThrottleLimits = JSON.parse(JSON.stringify(DEFAULT_LIMITS));
  if (input) applyLimits(out, input);
  return out;
}

function applyLimits(cur: ThrottleLimits, input: ThrottleLimitsInput): void {
  if (input.windowMs !== undefined) cur.windowMs = input.windowMs;
  for (const b of INTUNE_BUCKETS) Object.assign(cur[b], input[b] ?? {});
  Object.assign(cur.directory, input.directory ?? {});
}

/**
 * A sliding log of admissions, each with its weight (1 for a request; a directory request weighs
 * its resource units), bounded by its limit.
 */
class Window {
  private t: number[] = [];
  private w: number[] = [];
  private start = 0;
  private sum = 0;
  /** Weight admitted within (now - windowMs, now]. */
  count(now: number, windowMs: number): number {
    while (this.start < this.t.length && this.t[this.start] <= now - windowMs) this.sum -= this.w[this.start++];
    if (this.start > 1024) {
      this.t = this.t.slice(this.start);
      this.w = this.w.slice(this.start);
      this.start = 0;
    }
    return this.sum;
  }
  /** When at least `need` of the weight counted now will have left the window. */
  freedAt(need: number, windowMs: number): number {
    let freed = 0;
    for (let k = this.start; k < this.t.length; k++) {
      freed += this.w[k];
      if (freed >= need) return this.t[k] + windowMs;
    }
    return this.t[this.t.length - 1] + windowMs;
  }
  add(now: number, weight = 1): void {
    this.t.push(now);
    this.w.push(weight);
    this.sum += weight;
  }
}

// ---------------------------------------------------------------------------
// $filter for managedDevice

type Lit = { t: 'string' | 'datetime' | 'number' | 'bool' | 'null'; v: string | number | boolean | null; raw: string };
type FNode =
  | { k: 'cmp'; prop: string; op: string; lit: Lit }
  | { k: 'fn'; fn: string; prop: string; lit: Lit }
  | { k: 'and' | 'or'; items: FNode[] }
  | { k: 'not'; item: FNode };

const TOKEN_RE =
  /\s*(?:(\()|(\))|(,)|'((?:[^']|'')*)'|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))|(-?\d+(?:\.\d+)?)(?![\w-])|([A-Za-z_][\w./]*))/y;

type Tok = { t: '(' | ')' | ',' | 'str' | 'dt' | 'num' | 'id'; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  TOKEN_RE.lastIndex = 0;
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    TOKEN_RE.lastIndex = pos;
    const m = TOKEN_RE.exec(src);
    if (!m) throw new HttpError(400, 'BadRequest', `Invalid filter clause: syntax error at position ${pos} in '${src}'.`);
    pos = TOKEN_RE.lastIndex;
    if (m[1]) out.push({ t: '(', v: '(' });
    else if (m[2]) out.push({ t: ')', v: ')' });
    else if (m[3]) out.push({ t: ',', v: ',' });
    else if (m[4] !== undefined) out.push({ t: 'str', v: m[4].replace(/''/g, "'") });
    else if (m[5]) out.push({ t: 'dt', v: m[5] });
    else if (m[6]) out.push({ t: 'num', v: m[6] });
    else out.push({ t: 'id', v: m[7] });
  }
  return out;
}

const OPS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);

function parseFilter(src: string): FNode {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const fail = (what: string): never => {
    throw new HttpError(400, 'BadRequest', `Invalid filter clause: ${what} in '${src}'.`);
  };
  const lit = (): Lit => {
    const t = toks[p++];
    if (!t) return fail('expected a value');
    if (t.t === 'str') return { t: 'string', v: t.v, raw: `'${t.v}'` };
    if (t.t === 'dt') return { t: 'datetime', v: Date.parse(t.v), raw: t.v };
    if (t.t === 'num') return { t: 'number', v: Number(t.v), raw: t.v };
    if (t.t === 'id' && (t.v === 'true' || t.v === 'false')) return { t: 'bool', v: t.v === 'true', raw: t.v };
    if (t.t === 'id' && t.v === 'null') return { t: 'null', v: null, raw: 'null' };
    return fail(`unexpected '${t.v}'`);
  };
  const primary = (): FNode => {
    const t = peek();
    if (!t) return fail('unexpected end');
    if (t.t === '(') {
      p++;
      const e = orExpr();
      if (peek()?.t !== ')') fail("expected ')'");
      p++;
      return e;
    }
    if (t.t !== 'id') return fail(`unexpected '${t.v}'`);
    if (t.v === 'not') {
      p++;
      return { k: 'not', item: primary() };
    }
    if (toks[p + 1]?.t === '(') {
      const fn = t.v.toLowerCase();
      p += 2;
      const prop = toks[p++];
      if (!prop || prop.t !== 'id') fail('expected a property name');
      if (toks[p++]?.t !== ',') fail("expected ','");
      const value = lit();
      if (toks[p++]?.t !== ')') fail("expected ')'");
      return { k: 'fn', fn, prop: prop.v, lit: value };
    }
    p++;
    const op = toks[p++];
    if (!op || op.t !== 'id' || !OPS.has(op.v)) return fail(`expected an operator after '${t.v}'`);
    return { k: 'cmp', prop: t.v, op: op.v, lit: lit() };
  };
  const andExpr = (): FNode => {
    const items = [primary()];
    while (peek()?.t === 'id' && peek().v === 'and') {
      p++;
      items.push(primary());
    }
    return items.length === 1 ? items[0] : { k: 'and', items };
  };
  const orExpr = (): FNode => {
    const items = [andExpr()];
    while (peek()?.t === 'id' && peek().v === 'or') {
      p++;
      items.push(andExpr());
    }
    return items.length === 1 ? items[0] : { k: 'or', items };
  };
  const root = orExpr();
  if (p < toks.length) fail(`unexpected '${toks[p].v}'`);
  return root;
}

const OP_KIND: Record<string, string> = { eq: 'Equal', ne: 'NotEqual', gt: 'GreaterThan', ge: 'GreaterThanOrEqual', lt: 'LessThan', le: 'LessThanOrEqual' };

function propType(version: GraphVersion, entity: EntityName, prop: string): string {
  const d = V1_ENTITY_PROPERTIES[entity].find((p) => p.name === prop);
  if (d) return d.type;
  if (version === 'beta' && entity === 'managedDevice') {
    const b = MANAGED_DEVICE_BETA_ONLY.find((p) => p.name === prop);
    if (b) return b.typeInDocs === 'Boolean' ? 'Edm.Boolean' : b.typeInDocs === 'Int32' ? 'Edm.Int32' : 'Edm.String';
  }
  return 'Edm.String';
}

function enumOf(type: string): EnumName | null {
  if (!type.startsWith('graph.')) return null;
  const n = type.slice(6) as EnumName;
  return (V1_ENUMS as Record<string, unknown>)[n] ? n : null;
}

type Pred = ((d: Record<string, unknown>) => boolean) & {
  /** `lastSyncDateTime`/`enrolledDateTime` `gt|lt` clauses every match must meet: the listing checks the tenant's index of them first. */
  dateBounds?: DateBound[];
};

type DateBound = { prop: IndexedDate; op: 'gt' | 'lt'; ms: number };

/** The indexed date clauses at the top of a filter (alone or and-ed). */
function dateBoundsOf(root: FNode): DateBound[] {
  const clauses = root.k === 'and' ? root.items : [root];
  const out: DateBound[] = [];
  for (const c of clauses) {
    if (c.k === 'cmp' && (INDEXED_DATES as readonly string[]).includes(c.prop) && (c.op === 'gt' || c.op === 'lt') && c.lit.t === 'datetime') {
      out.push({ prop: c.prop as IndexedDate, op: c.op, ms: c.lit.v as number });
    }
  }
  return out;
}

/** Compile a managedDevice $filter into a predicate, refusing what the live service refuses. */
function compileDeviceFilter(src: string, version: GraphVersion, ignoreUnsupported: boolean): Pred {
  const root = parseFilter(src);
  const pred: Pred = compileNode(root, version, ignoreUnsupported);
  pred.dateBounds = dateBoundsOf(root);
  return pred;
}

function compileNode(root: FNode, version: GraphVersion, ignoreUnsupported: boolean): Pred {
  const leafProps = (n: FNode): string[] =>
    n.k === 'cmp' || n.k === 'fn' ? [n.prop] : n.k === 'not' ? leafProps(n.item) : n.items.flatMap(leafProps);

  const compile = (n: FNode): Pred => {
    switch (n.k) {
      case 'and': {
        const ps = n.items.map(compile);
        return (d) => ps.every((f) => f(d));
      }
      case 'or': {
        const props = new Set(leafProps(n));
        if (props.size > 1) {
          throw new HttpError(400, 'BadRequest', `Filtering on different properties combined with 'or' is not supported (${[...props].join(', ')}); combine them with 'and'.`);
        }
        const prop = [...props][0];
        const ops = filterOperatorsOf(prop);
        if (ops.length && !ops.includes('or')) throw new HttpError(400, 'BadRequest', `The 'or' operator is not supported on property '${prop}'.`);
        const ps = n.items.map(compile);
        return (d) => ps.some((f) => f(d));
      }
      case 'not':
        throw new HttpError(400, 'BadRequest', "The 'not' operator is not supported for managedDevices.");
      case 'fn':
      case 'cmp': {
        const prop = n.prop;
        if (!entityPropertyNames(version, 'managedDevice').has(prop)) {
          throw new HttpError(400, 'BadRequest', `Could not find a property named '${prop}' on type 'microsoft.graph.managedDevice'.`);
        }
        const ops = filterOperatorsOf(prop);
        if (!ops.length) {
          if (ignoreUnsupported) return () => true;
          throw new HttpError(400, 'BadRequest', `Property '${prop}' does not support $filter.`);
        }
        const op = n.k === 'fn' ? n.fn : n.op;
        if (!(ops as readonly string[]).includes(op)) {
          throw new HttpError(400, 'BadRequest', `The operator '${op}' is not supported on property '${prop}'; supported: ${ops.filter((o) => o !== 'or').join(', ')}.`);
        }
        const type = propType(version, 'managedDevice', prop);
        const lit = n.lit;
        const mismatch = (): never => {
          throw new HttpError(
            400,
            'BadRequest',
            `A binary operator with incompatible types was detected. Found operand types '${type.replace('graph.', 'microsoft.graph.')}' and '${lit.t === 'datetime' ? 'Edm.DateTimeOffset' : lit.t === 'string' ? 'Edm.String' : lit.t === 'bool' ? 'Edm.Boolean' : 'Edm.Int32'}' for operator kind '${OP_KIND[op] ?? op}'.`,
          );
        };
        if (n.k === 'fn') {
          if (lit.t !== 'string') mismatch();
          const needle = String(lit.v).toLowerCase();
          return (d) => String(d[prop] ?? '').toLowerCase().includes(needle);
        }
        if (type === 'Edm.DateTimeOffset') {
          if (lit.t !== 'datetime' || Number.isNaN(lit.v)) mismatch();
          const v = lit.v as number;
          return (d) => {
            const x = Date.parse(String(d[prop]));
            return op === 'gt' ? x > v : op === 'lt' ? x < v : op === 'ge' ? x >= v : op === 'le' ? x <= v : op === 'eq' ? x === v : x !== v;
          };
        }
        const en = enumOf(type);
        if (en) {
          if (lit.t !== 'string') mismatch();
          if (!enumMembers(version, en).includes(String(lit.v))) {
            throw new HttpError(400, 'BadRequest', `The string '${String(lit.v)}' is not a valid enumeration type constant.`);
          }
          return op === 'ne' ? (d) => d[prop] !== lit.v : (d) => d[prop] === lit.v;
        }
        if (type === 'Edm.Boolean') {
          if (lit.t !== 'bool') mismatch();
          return op === 'ne' ? (d) => d[prop] !== lit.v : (d) => d[prop] === lit.v;
        }
        if (lit.t === 'null') return op === 'ne' ? (d) => d[prop] != null && d[prop] !== '' : (d) => d[prop] == null || d[prop] === '';
        if (lit.t !== 'string') mismatch();
        const want = String(lit.v).toLowerCase();
        return op === 'ne' ? (d) => String(d[prop] ?? '').toLowerCase() !== want : (d) => String(d[prop] ?? '').toLowerCase() === want;
      }
    }
  };
  return compile(root);
}

// ---------------------------------------------------------------------------

export class GraphSim {
  private readonly tenant: SimTenant;
  private readonly verifyToken: GraphSimOptions['verifyToken'];
  private readonly tls: { certPem: string; keyPem: string };
  private readonly server: https.Server;
  private readonly sockets = new Set<Socket>();
  private readonly tokenKey = crypto.randomBytes(32);
  private readonly windows = new Map<string, Window>();
  private faults: Fault[] = [];
  private limits: ThrottleLimits;
  private pageSize: number;
  private retryAfterMode: RetryAfterMode;
  /** Throttling 429s answered so far (for 'sometimes'). */
  private throttledAnswers = 0;
  private lenientActions: boolean;
  private ignoreUnsupportedFilter: boolean;
  private reportDefaultTop: number;
  private latencyMs: number;
  private readonly clock: () => number;
  /** Live users of the tenant, counted up to 501 (enough to tell S, M and L apart); null until asked. */
  private liveUsers: number | null = null;
  private port = 0;
  private shuffleSeed = 1;
  private countCache = new Map<string, { mv: number; count: number }>();
  private reportCache = new Map<string, { mv: number; total?: number; checkpoints: { row: number; pos: number }[] }>();
  private _stats: GraphSimStats = emptyStats();
  /** The last 1000 requests and batch items. */
  readonly requestLog: SimRequestLogEntry[] = [];
  /** Report export jobs and their downloads (graph-reports.ts). */
  readonly reports: ExportJobSim;

  constructor(opts: GraphSimOptions) {
    this.tenant = opts.tenant;
    this.verifyToken = opts.verifyToken;
    this.tls = opts.tls;
    this.pageSize = clampPage(opts.pageSize ?? MAX_PAGE_SIZE);
    this.retryAfterMode = opts.retryAfter ?? 'sometimes';
    this.limits = mergeLimits(opts.limits);
    this.lenientActions = opts.actionPermissions === 'lenient';
    this.ignoreUnsupportedFilter = opts.ignoreUnsupportedFilter ?? false;
    this.reportDefaultTop = opts.reportDefaultTop ?? 50;
    this.latencyMs = Math.max(0, opts.latencyMs ?? 0);
    this.clock = opts.clock ?? Date.now;
    this.reports = new ExportJobSim(this.tenant, () => this.url);
    this.server = https.createServer({ cert: this.tls.certPem, key: this.tls.keyPem }, (req, res) => {
      this.onRequest(req, res).catch(() => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        }
      });
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  // -------------------------------------------------------------------------
  // Lifecycle

  async start(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Service root without version, e.g. https://127.0.0.1:PORT. Also the token audience. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  // -------------------------------------------------------------------------
  // Controls

  /** Answer the next `count` matching requests with `status` (503 default; 500/502/503/504), with Retry-After when `retryAfter` is a number. */
  failNext(count: number, opts: FaultMatch & { status?: number; retryAfter?: number | null } = {}): void {
    this.faults.push({ kind: 'status', remaining: count, match: opts, status: opts.status ?? 503, retryAfter: opts.retryAfter ?? null });
  }

  /** Destroy the TCP connection of the next `count` matching requests: before any byte of the answer, or after the headers and part of the body. */
  dropNext(count: number, opts: Omit<FaultMatch, 'scope'> & { phase?: 'beforeResponse' | 'midResponse' } = {}): void {
    this.faults.push({ kind: 'drop', remaining: count, match: { ...opts, scope: 'request' }, phase: opts.phase ?? 'beforeResponse' });
  }

  /** Add `ms` of latency to the next `count` matching requests. */
  delayNext(count: number, ms: number, opts: Omit<FaultMatch, 'scope'> = {}): void {
    this.faults.push({ kind: 'delay', remaining: count, match: { ...opts, scope: 'request' }, ms });
  }

  /** Answer the next `count` matching requests 429 regardless of the buckets (Retry-After default 1 s; null = omit). */
  throttleNext(count: number, opts: FaultMatch & { retryAfter?: number | null } = {}): void {
    this.faults.push({ kind: 'throttle', remaining: count, match: opts, retryAfter: opts.retryAfter === undefined ? 1 : opts.retryAfter });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Whether throttling 429s carry Retry-After: true = always, false = never, or 'sometimes' (the default). */
  setRetryAfter(send: boolean | 'sometimes'): void {
    this.retryAfterMode = send === 'sometimes' ? 'sometimes' : send ? 'always' : 'never';
  }

  setLimits(input: ThrottleLimitsInput): void {
    applyLimits(this.limits, input);
  }

  get currentLimits(): ThrottleLimits {
    return JSON.parse(JSON.stringify(this.limits));
  }

  /**
   * The directory budget of an application + tenant pair as it stands: the tenant's size class,
   * its resource units per window and the window's length (half of `windowMs`).
   */
  get directoryBudget(): { tenantSize: TenantSize; users: number; unitsPerWindow: number; windowMs: number } {
    const d = this.limits.directory;
    const users = this.directoryUsers();
    const tenantSize = d.tenantSize === 'auto' ? tenantSizeOf(users) : d.tenantSize;
    return { tenantSize, users, unitsPerWindow: d[tenantSize], windowMs: this.limits.windowMs / 2 };
  }

  resetThrottling(): void {
    this.windows.clear();
  }

  /** Latency added to every request from now on (ms, 0 = none). */
  setLatency(ms: number): void {
    this.latencyMs = Math.max(0, ms);
  }

  /** Server page size, at most 1000 (Intune never pages more). */
  setPageSize(n: number): void {
    this.pageSize = clampPage(n);
  }

  get stats(): GraphSimStats {
    return this._stats;
  }

  resetStats(): void {
    this._stats = emptyStats();
    this.requestLog.length = 0;
  }

  // -------------------------------------------------------------------------
  // HTTP plumbing

  private takeFault(kinds: Fault['kind'][], method: string, url: string, batchItem: boolean): Fault | null {
    for (const f of this.faults) {
      if (f.remaining <= 0 || !kinds.includes(f.kind)) continue;
      const scope = f.match.scope ?? 'request';
      if (batchItem ? scope === 'request' : scope === 'batchItem') continue;
      if (f.match.method && f.match.method.toUpperCase() !== method) continue;
      if (f.match.path !== undefined) {
        const ok = typeof f.match.path === 'string' ? url.includes(f.match.path) : f.match.path.test(url);
        if (!ok) continue;
      }
      f.remaining--;
      return f;
    }
    return null;
  }

  private log(e: SimRequestLogEntry): void {
    this.requestLog.push(e);
    if (this.requestLog.length > LOG_LIMIT) this.requestLog.splice(0, this.requestLog.length - LOG_LIMIT);
    bump(this._stats.byStatus, String(e.status));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size <= BODY_LIMIT) chunks.push(c as Buffer);
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const st = this._stats;
    st.requests++;
    bump(st.byMethod, method);
    const requestId = crypto.randomUUID();
    const clientRequestId = (req.headers['client-request-id'] as string) || requestId;
    // A report download stands for Azure storage, not Graph: its own rules (graph-reports.ts).
    if (this.reports.isDownload(rawUrl)) {
      const status = this.reports.serveDownload(method, rawUrl, req.headers, res);
      this.log({ at: new Date().toISOString(), method, url: rawUrl.replace(/\?.*$/, '?…'), route: 'GET /exportstorage/{blob}', status, batchItem: false });
      return;
    }

    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const delay = this.takeFault(['delay'], method, rawUrl, false);
    if (delay) {
      st.faults.delayed++;
      await sleep(delay.ms ?? 0);
    }
    const drop = this.takeFault(['drop'], method, rawUrl, false);
    if (drop) {
      st.faults.dropped++;
      this.log({ at: new Date().toISOString(), method, url: rawUrl, route: null, status: 0, batchItem: false });
      if (drop.phase === 'midResponse') {
        res.writeHead(200, { 'Content-Type': JSON_CT, 'Content-Length': '1048576' });
        res.write('{"@odata.context":"' + this.url + '/v1.0/$metadata#deviceManagement/managedDevices","value":[{"id":"');
        setTimeout(() => req.socket.destroy(), 5);
      } else {
        req.socket.destroy();
      }
      return;
    }

    let resp: SimResponse;
    let route: string | null = null;
    let appid: string | undefined;
    if (size > BODY_LIMIT) {
      resp = this.error(413, 'RequestEntityTooLarge', 'The request body is too large.', requestId, clientRequestId);
    } else {
      const forced = this.takeFault(['status', 'throttle'], method, rawUrl, false);
      if (forced) {
        resp = this.forcedFault(forced, requestId, clientRequestId);
      } else {
        try {
          const r = await this.handleHttp(method, rawUrl, req.headers, Buffer.concat(chunks).toString('utf8'), requestId, clientRequestId);
          resp = r.resp;
          route = r.route;
          appid = r.appid;
        } catch (e) {
          resp = this.fromError(e, requestId, clientRequestId, rawUrl);
        }
      }
    }
    this.log({ at: new Date().toISOString(), method, url: rawUrl, route, status: resp.status, batchItem: false, appid });
    this.write(res, resp, requestId, clientRequestId);
  }

  private write(res: ServerResponse, resp: SimResponse, requestId: string, clientRequestId: string): void {
    const headers: Record<string, string> = {
      'request-id': requestId,
      'client-request-id': clientRequestId,
      'x-ms-ags-diagnostic': JSON.stringify({ ServerInfo: { DataCenter: 'Sim', Slice: 'E', Ring: '5', ScaleUnit: '000', RoleInstance: 'GRAPHSIM' } }),
      ...resp.headers,
    };
    if (resp.body === undefined) {
      res.writeHead(resp.status, headers);
      res.end();
      return;
    }
    const text = typeof resp.body === 'string' ? resp.body : JSON.stringify(resp.body);
    headers['Content-Type'] = resp.contentType ?? JSON_CT;
    headers['Content-Length'] = String(Buffer.byteLength(text));
    if ((resp.contentType ?? JSON_CT).startsWith('application/json')) headers['OData-Version'] = '4.0';
    res.writeHead(resp.status, headers);
    res.end(text);
  }

  private forcedFault(f: Fault, requestId: string, clientRequestId: string): SimResponse {
    if (f.kind === 'throttle') {
      this._stats.faults.throttled++;
      this._stats.throttled++;
      return this.tooMany(f.retryAfter ?? null, requestId, clientRequestId, true);
    }
    this._stats.faults.status++;
    const status = f.status ?? 503;
    const code = status === 504 ? 'GatewayTimeout' : status === 503 ? 'ServiceUnavailable' : status === 502 ? 'BadGateway' : 'InternalServerError';
    const msg =
      status === 504
        ? 'The gateway did not receive a timely response from the upstream service.'
        : status === 503
          ? 'The service is temporarily unavailable. Please retry later.'
          : 'An internal server error occurred.';
    const r = this.error(status, code, msg, requestId, clientRequestId);
    if (typeof f.retryAfter === 'number') r.headers['Retry-After'] = String(f.retryAfter);
    return r;
  }

  /** A throttling 429; `forced` (throttleNext) sends exactly the Retry-After it was given. */
  private tooMany(retryAfter: number | null, requestId: string, clientRequestId: string, forced = false): SimResponse {
    const send = retryAfter !== null && (forced || this.sendsRetryAfter());
    const r = this.error(429, 'TooManyRequests', `Too many requests. ${send ? `Retry after ${retryAfter} seconds.` : 'Retry later.'}`, requestId, clientRequestId);
    if (send) r.headers['Retry-After'] = String(retryAfter);
    return r;
  }

  /** Graph leaves Retry-After out of some 429s (docs/graph-facts.md: throttling): every third one here, by default. */
  private sendsRetryAfter(): boolean {
    if (this.retryAfterMode === 'always') return true;
    if (this.retryAfterMode === 'never') return false;
    return ++this.throttledAnswers % 3 !== 0;
  }

  private error(status: number, code: string, message: string, requestId: string, clientRequestId: string, headers: Record<string, string> = {}): SimResponse {
    return {
      status,
      headers: { ...headers },
      body: { error: { code, message, innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': requestId, 'client-request-id': clientRequestId } } },
    };
  }

  private fromError(e: unknown, requestId: string, clientRequestId: string, url: string): SimResponse {
    if (e instanceof HttpError) {
      const message = e.intune
        ? JSON.stringify({
            _version: 3,
            Message: `${e.message} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: ${clientRequestId} - Url: https://fef.msub02.manage.microsoft.com/DeviceFE/StatelessDeviceFEService${url.replace(/^\/(v1\.0|beta)/, '')}`,
            CustomApiErrorPhrase: '',
            RetryAfter: null,
            ErrorSourceService: '',
            HttpHeaders: '{}',
          })
        : e.message;
      return this.error(e.status, e.code, message, requestId, clientRequestId, e.headers);
    }
    if (e instanceof SimTenantError) {
      const r = this.error(e.status, e.code, e.message, requestId, clientRequestId);
      if (e.retryAfterSeconds !== undefined && this.retryAfterMode !== 'never') r.headers['Retry-After'] = String(e.retryAfterSeconds);
      return r;
    }
    if (e instanceof GraphSchemaError) return this.error(400, 'BadRequest', e.message, requestId, clientRequestId);
    return this.error(500, 'InternalServerError', `Simulator error: ${(e as Error)?.message ?? String(e)}`, requestId, clientRequestId);
  }

  private async handleHttp(
    method: string,
    rawUrl: string,
    headers: IncomingMessage['headers'],
    bodyText: string,
    requestId: string,
    clientRequestId: string,
  ): Promise<{ resp: SimResponse; route: string | null; appid?: string }> {
    const qi = rawUrl.indexOf('?');
    const pathname = qi < 0 ? rawUrl : rawUrl.slice(0, qi);
    const rawQuery = qi < 0 ? '' : rawUrl.slice(qi + 1);
    const segs = pathname.split('/').filter(Boolean).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    const version = segs.shift();
    if (version !== 'v1.0' && version !== 'beta') {
      throw new HttpError(400, 'BadRequest', `Invalid version: ${version ?? '(none)'}`);
    }
    bump(this._stats.byVersion, version);
    // authentication
    const auth = String(headers.authorization ?? '');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) {
      this._stats.unauthorized++;
      throw new HttpError(401, 'InvalidAuthenticationToken', 'Access token is empty.', false, this.wwwAuthenticate());
    }
    let claims: TokenClaims;
    try {
      claims = this.verifyToken(m[1], this.url);
    } catch (e) {
      this._stats.unauthorized++;
      const err = e as Error & { code?: string };
      throw new HttpError(401, err.code || 'InvalidAuthenticationToken', err.message || 'Access token validation failure.', false, this.wwwAuthenticate());
    }
    if (claims.tid !== this.tenant.tenantId) {
      this._stats.unauthorized++;
      throw new HttpError(401, 'InvalidAuthenticationToken', 'Access token validation failure. The token was issued for a different tenant.', false, this.wwwAuthenticate());
    }
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) lower[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    let body: unknown = undefined;
    if (bodyText.length) {
      try {
        body = JSON.parse(bodyText);
      } catch {
        throw new HttpError(400, 'BadRequest', 'The request body is not valid JSON.');
      }
    }
    const ctx: Ctx = {
      method,
      version,
      segments: segs,
      rawQuery,
      query: parseQuery(rawQuery),
      headers: lower,
      body,
      hasBody: bodyText.length > 0,
      claims,
      requestId,
      clientRequestId,
      inBatch: false,
      url: rawUrl,
    };
    if (segs.length === 1 && segs[0] === '$batch') {
      if (method !== 'POST') throw new HttpError(405, 'BadRequest', 'The $batch endpoint accepts POST only.');
      bump(this._stats.byRoute, 'POST /$batch');
      return { resp: await this.handleBatch(ctx), route: 'POST /$batch', appid: claims.appid };
    }
    const r = await this.dispatch(ctx);
    return { resp: r.resp, route: r.route, appid: claims.appid };
  }

  private wwwAuthenticate(): Record<string, string> {
    return {
      'WWW-Authenticate':
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
    };
  }

  /** Route, throttle, authorise and run one request (HTTP or batch item). Never throws. */
  private async dispatch(ctx: Ctx): Promise<{ resp: SimResponse; route: string | null }> {
    let route: Route | null = null;
    /** Resource units charged (directory only): every answer after admission says so, errors included. */
    let units = 0;
    const charged = (resp: SimResponse): SimResponse => {
      if (units) resp.headers['x-ms-resource-unit'] = String(units);
      return resp;
    };
    try {
      route = this.match(ctx);
      bump(this._stats.byRoute, route.key);
      if (ctx.inBatch) {
        const forced = this.takeFault(['status', 'throttle'], ctx.method, `/${ctx.version}${ctx.url}`, true);
        if (forced) {
          if (forced.kind === 'throttle') this._stats.throttledBatchItems++;
          return { resp: this.forcedFault(forced, ctx.requestId, ctx.clientRequestId), route: route.key };
        }
      }
      if (route.bucket === 'directory') {
        const cost = directoryCost(route.key as 'GET /users' | 'GET /users/{id}', ctx.query);
        const refused = this.throttleDirectory(ctx.claims, cost);
        if (refused) {
          this._stats.throttled++;
          if (ctx.inBatch) this._stats.throttledBatchItems++;
          const r = this.tooMany(refused.wait, ctx.requestId, ctx.clientRequestId);
          // The identity service's throttled-response headers (concepts/throttling-limits.md); the
          // limit part is "ReadWrite" because the resource-unit quota counts requests of any kind.
          r.headers['x-ms-throttle-scope'] = `${refused.scope}/ReadWrite/${ctx.claims.appid}/${ctx.claims.tid}`;
          r.headers['x-ms-throttle-information'] = 'ResourceUnitLimitExceeded';
          return { resp: r, route: route.key };
        }
        units = cost;
        this._stats.directoryUnits += cost;
      } else {
        const wait = this.throttle(ctx.claims, route.bucket, route.write);
        if (wait !== null) {
          this._stats.throttled++;
          if (ctx.inBatch) this._stats.throttledBatchItems++;
          return { resp: this.tooMany(wait, ctx.requestId, ctx.clientRequestId), route: route.key };
        }
      }
      if (!route.roles.some((r) => ctx.claims.roles.includes(r))) {
        this._stats.forbidden++;
        throw new HttpError(
          403,
          'Forbidden',
          `Application is not authorized to perform this operation. Application must have one of the following scopes: ${route.roles.join(', ')}`,
          true,
        );
      }
      return { resp: charged(await route.run(ctx)), route: route.key };
    } catch (e) {
      return { resp: charged(this.fromError(e, ctx.requestId, ctx.clientRequestId, ctx.inBatch ? `/${ctx.version}${ctx.url}` : ctx.url)), route: route?.key ?? null };
    }
  }

  /**
   * Admits `weight` into every window of `limits` or into none. Returns null when admitted (and
   * recorded), else the seconds until the binding window has room (at least 1) and its index.
   */
  private admit(limits: { key: string; limit: number; windowMs: number }[], weight: number): { wait: number; index: number } | null {
    const now = this.clock();
    let refused: { wait: number; index: number } | null = null;
    const ws: Window[] = [];
    limits.forEach(({ key, limit, windowMs }, index) => {
      let w = this.windows.get(key);
      if (!w) {
        w = new Window();
        this.windows.set(key, w);
      }
      ws.push(w);
      const used = w.count(now, windowMs);
      if (used + weight > limit) {
        // Room comes back as the oldest admissions leave the window; a request weighing more than the
        // limit never fits, and is told to wait one whole window.
        const at = used > 0 && weight <= limit ? w.freedAt(used + weight - limit, windowMs) : now + windowMs;
        const wait = Math.max(1, Math.ceil((at - now) / 1000));
        if (!refused || wait > refused.wait) refused = { wait, index };
      }
    });
    if (refused) return refused;
    for (const w of ws) w.add(now, weight);
    return null;
  }

  /** Intune's sliding windows (requests, writes; per app and per tenant); seconds to wait, or null when admitted. */
  private throttle(claims: TokenClaims, bucket: IntuneBucket, write: boolean): number | null {
    const lim = this.limits[bucket];
    const windowMs = this.limits.windowMs;
    const keys = [
      { key: `${claims.tid}|${claims.appid}|${bucket}|any`, limit: lim.appRequests, windowMs },
      { key: `${claims.tid}|*|${bucket}|any`, limit: lim.tenantRequests, windowMs },
    ];
    if (write) {
      keys.push({ key: `${claims.tid}|${claims.appid}|${bucket}|write`, limit: lim.appWrites, windowMs });
      keys.push({ key: `${claims.tid}|*|${bucket}|write`, limit: lim.tenantWrites, windowMs });
    }
    return this.admit(keys, 1)?.wait ?? null;
  }

  /**
   * The identity service's resource-unit quotas (docs/graph-users.md): the application + tenant
   * pair's by the tenant's size per half window (10 s), the application's across all tenants per
   * window (20 s; the sim serves one tenant, so it counts the same requests). Microsoft calls it a
   * token bucket without saying how it refills; the sim keeps its one mechanism, a sliding window of
   * the documented length and capacity: never more than the capacity in any 10 s, the strictest
   * reading of "per 10 seconds" (a bucket refilling as it drains would let more through).
   */
  private throttleDirectory(claims: TokenClaims, units: number): { wait: number; scope: 'Tenant_Application' | 'Application' } | null {
    const budget = this.directoryBudget;
    const refused = this.admit(
      [
        { key: `${claims.tid}|${claims.appid}|directory|units`, limit: budget.unitsPerWindow, windowMs: budget.windowMs },
        { key: `*|${claims.appid}|directory|units`, limit: this.limits.directory.perApp, windowMs: this.limits.windowMs },
      ],
      units,
    );
    return refused && { wait: refused.wait, scope: refused.index === 0 ? 'Tenant_Application' : 'Application' };
  }

  /** The tenant's live users, counted up to 501 (the size classes end at 500); the sim's users never change. */
  private directoryUsers(): number {
    if (this.liveUsers === null) {
      let n = 0;
      for (let u = 0; u < this.tenant.users.size && n <= 500; u++) if (this.tenant.users.at(u)) n++;
      this.liveUsers = n;
    }
    return this.liveUsers;
  }

  // -------------------------------------------------------------------------
  // Routing

  private match(ctx: Ctx): Route {
    const s = ctx.segments;
    const m = ctx.method;
    const P = GRAPH_SIM_PERMISSIONS;
    const notFound = (seg: string) => new HttpError(400, 'BadRequest', `Resource not found for the segment '${seg}'.`);
    const only = (method: string, r: Omit<Route, 'write'>): Route => {
      if (m !== method) throw new HttpError(405, 'BadRequest', `The HTTP method '${m}' is not allowed for ${r.key.slice(r.key.indexOf(' ') + 1)}.`);
      return { ...r, write: method !== 'GET' };
    };
    if (s[0] === 'users' && s.length === 1) {
      // sim/graph-users.ts: the tenant's users, paged, in the directory bucket.
      const kit = {
        size: this.tenant.users.size,
        at: (u: number) => this.tenant.users.at(u),
        checkOptions: (c: Ctx, a: string[]) => this.checkOptions(c, a),
        select: (c: Ctx) => this.selectOf(c, 'user'),
        top: (c: Ctx) => this.topOf(c),
        readToken: (c: Ctx, r: string) => this.readToken(c, r),
        nextLink: (c: Ctx, r: string, pos: number) => this.nextLink(c, r, pos),
        context: (c: Ctx, sel: string[] | null) => this.context(c, 'users', sel),
        project: (c: Ctx, user: object, sel: string[] | null) => this.projectRecord(user as Record<string, unknown>, c.version, 'user', sel),
        error: (st: number, code: string, msg: string) => new HttpError(st, code, msg),
      };
      return only('GET', { key: 'GET /users', bucket: 'directory', roles: P.readUsers, run: (c) => listUsers(c, kit) });
    }
    if (s[0] === 'users' && s.length === 2) {
      return only('GET', { key: 'GET /users/{id}', bucket: 'directory', roles: P.readUsers, run: (c) => this.getUser(c, s[1]) });
    }
    if (s[0] !== 'deviceManagement' || s.length < 2) throw notFound(s[0] ?? '');
    if (s[1] === 'managedDevices') {
      if (s.length === 2) {
        return only('GET', { key: 'GET /deviceManagement/managedDevices', bucket: 'devices', roles: P.readDevices, run: (c) => this.listDevices(c) });
      }
      if (s.length === 3 && s[2] === 'executeAction' && ctx.version === 'beta') {
        return only('POST', {
          key: 'POST /deviceManagement/managedDevices/executeAction',
          bucket: 'devices',
          roles: this.actionRoles('executeAction'),
          run: (c) => this.executeAction(c),
        });
      }
      const id = s[2];
      if (s.length === 3) {
        return only('GET', { key: 'GET /deviceManagement/managedDevices/{id}', bucket: 'devices', roles: P.readDevices, run: (c) => this.getDevice(c, id) });
      }
      if (s.length === 4) {
        const seg = s[3];
        if (seg === 'deviceCompliancePolicyStates') {
          return only('GET', {
            key: 'GET /deviceManagement/managedDevices/{id}/deviceCompliancePolicyStates',
            bucket: 'configuration',
            roles: P.readCompliance,
            run: (c) => this.policyStates(c, id),
          });
        }
        if (seg === 'users') {
          return only('GET', { key: 'GET /deviceManagement/managedDevices/{id}/users', bucket: 'devices', roles: P.readDevices, run: (c) => this.deviceUsers(c, id) });
        }
        if (seg === 'detectedApps') {
          // The per-device way to read discovered apps (docs/graph-software.md); only the bench uses it.
          return only('GET', { key: 'GET /deviceManagement/managedDevices/{id}/detectedApps', bucket: 'devices', roles: P.readDevices, run: (c) => this.detectedApps(c, id) });
        }
        if (managedDeviceActions(ctx.version).includes(seg)) {
          return only('POST', {
            key: `POST /deviceManagement/managedDevices/{id}/${seg}`,
            bucket: 'devices',
            roles: this.actionRoles(seg),
            run: (c) => this.deviceAction(c, id, seg),
          });
        }
        throw notFound(seg);
      }
      throw notFound(s[4]);
    }
    if (s[1] === 'deviceCompliancePolicies') {
      if (s.length === 2) {
        return only('GET', { key: 'GET /deviceManagement/deviceCompliancePolicies', bucket: 'configuration', roles: P.readCompliance, run: (c) => this.listPolicies(c) });
      }
      if (s.length === 3) {
        return only('GET', {
          key: 'GET /deviceManagement/deviceCompliancePolicies/{id}',
          bucket: 'configuration',
          roles: P.readCompliance,
          run: (c) => this.getPolicy(c, s[2]),
        });
      }
      if (s.length === 4 && s[3] === 'deviceStatuses') {
        return only('GET', {
          key: 'GET /deviceManagement/deviceCompliancePolicies/{id}/deviceStatuses',
          bucket: 'configuration',
          roles: P.readCompliance,
          run: (c) => this.deviceStatuses(c, s[2]),
        });
      }
      throw notFound(s[3] ?? s[2]);
    }
    const exportJob = s[1] === 'reports' ? this.reports.route(m, s.slice(2)) : null;
    if (exportJob) {
      return only(exportJob.method, { key: exportJob.key, bucket: 'reports', roles: exportJob.roles, run: (c) => ({ headers: {}, ...exportJob.run(c.body) }) });
    }
    if (s[1] === 'reports' && s.length === 3 && s[2] === 'getNoncompliantDevicesAndSettingsReport') {
      return only('POST', {
        key: 'POST /deviceManagement/reports/getNoncompliantDevicesAndSettingsReport',
        bucket: 'reports',
        roles: P.readReports,
        run: (c) => this.noncompliantReport(c),
      });
    }
    throw notFound(s[s.length - 1]);
  }

  private actionRoles(action: string): readonly string[] {
    if (action === 'sendCustomNotificationToCompanyPortal') return GRAPH_SIM_PERMISSIONS.notification;
    return this.lenientActions
      ? [...GRAPH_SIM_PERMISSIONS.deviceActions, 'DeviceManagementManagedDevices.ReadWrite.All']
      : GRAPH_SIM_PERMISSIONS.deviceActions;
  }

  // -------------------------------------------------------------------------
  // Query helpers

  private checkOptions(ctx: Ctx, allowed: string[]): void {
    for (const k of ctx.query.keys()) {
      if (!k.startsWith('$')) continue;
      if (!allowed.includes(k)) throw new HttpError(400, 'BadRequest', `Query option '${k}' is not supported on this resource.`);
    }
  }

  private selectOf(ctx: Ctx, entity: EntityName): string[] | null {
    const raw = ctx.query.get('$select');
    if (raw === undefined) return null;
    const props = raw.split(',').map((p) => p.trim()).filter(Boolean);
    if (!props.length) throw new HttpError(400, 'BadRequest', "The query specified in the URI is not valid. '$select' is empty.");
    assertSelect(ctx.version, entity, props);
    return [...new Set(props)];
  }

  private topOf(ctx: Ctx): number | null {
    const raw = ctx.query.get('$top');
    if (raw === undefined) return null;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new HttpError(400, 'BadRequest', `Invalid value '${raw}' for $top query option found. The $top query option requires a positive integer value.`);
    return Number(raw);
  }

  private countOf(ctx: Ctx): boolean {
    const raw = ctx.query.get('$count');
    if (raw === undefined) return false;
    if (raw !== 'true' && raw !== 'false') throw new HttpError(400, 'BadRequest', `Invalid value '${raw}' for $count query option found. Valid values are 'true' and 'false'.`);
    return raw === 'true';
  }

  private queryHash(ctx: Ctx): string {
    const parts = [...ctx.query.entries()].filter(([k]) => k !== '$skiptoken').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 16);
  }

  /**
   * The query options of a request except $skiptoken, byte for byte as received. A $skiptoken is
   * bound to them: Graph's nextLink must be followed exactly as returned (concepts/paging.md), so a
   * link rebuilt by the client (options re-ordered, re-encoded or dropped) is refused.
   */
  private keptQuery(ctx: Ctx): string {
    return ctx.rawQuery
      .split('&')
      .filter((p) => p && !/^(%24|\$)skiptoken=/i.test(p))
      .join('&');
  }

  private exactQueryHash(ctx: Ctx): string {
    return crypto.createHash('sha256').update(this.keptQuery(ctx)).digest('base64url').slice(0, 16);
  }

  private makeToken(ctx: Ctx, route: string, pos: number): string {
    const payload = JSON.stringify({ r: route, v: ctx.version, t: this.tenant.tenantId, q: this.queryHash(ctx), k: this.exactQueryHash(ctx), p: pos });
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.tokenKey, iv);
    const enc = Buffer.concat([c.update(payload, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), enc]).toString('base64url');
  }

  private readToken(ctx: Ctx, route: string): number {
    const raw = ctx.query.get('$skiptoken');
    if (raw === undefined) return 0;
    const bad = () => new HttpError(400, 'BadRequest', 'The $skiptoken is invalid or expired. Follow @odata.nextLink exactly as returned.');
    let payload: { r: string; v: string; t: string; q: string; k: string; p: number };
    try {
      const buf = Buffer.from(raw, 'base64url');
      if (buf.length < 29) throw bad();
      const d = crypto.createDecipheriv('aes-256-gcm', this.tokenKey, buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(12, 28));
      payload = JSON.parse(Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8'));
    } catch {
      throw bad();
    }
    if (payload.r !== route || payload.v !== ctx.version || payload.t !== this.tenant.tenantId || payload.q !== this.queryHash(ctx)) throw bad();
    if (payload.k !== this.exactQueryHash(ctx)) throw bad();
    if (!Number.isInteger(payload.p) || payload.p < 0) throw bad();
    return payload.p;
  }

  private nextLink(ctx: Ctx, route: string, pos: number): string {
    const kept = this.keptQuery(ctx);
    const path = '/' + ctx.segments.map((s) => encodeURIComponent(s)).join('/');
    return `${this.url}/${ctx.version}${path}?${kept ? kept + '&' : ''}$skiptoken=${this.makeToken(ctx, route, pos)}`;
  }

  private context(ctx: Ctx, what: string, select: string[] | null, entity = false): string {
    return `${this.url}/${ctx.version}/$metadata#${what}${select ? `(${select.join(',')})` : ''}${entity ? '/$entity' : ''}`;
  }

  // -------------------------------------------------------------------------
  // Projection

  private projectDevice(dev: ManagedDeviceRecord, version: GraphVersion, select: string[] | null, byId: boolean): Record<string, unknown> {
    const names = select ?? [...entityPropertyNames(version, 'managedDevice')];
    const out: Record<string, unknown> = {};
    for (const n of names) {
      let v: unknown = (dev as Record<string, unknown>)[n];
      if (v === undefined) v = null;
      if (isGetByIdOnly(version, n) && !(byId && select)) v = listPlaceholder(version, n);
      if (version === 'v1.0' && (n === 'deviceEnrollmentType' || n === 'managementAgent') && typeof v === 'string') {
        const en: EnumName = n === 'deviceEnrollmentType' ? 'deviceEnrollmentType' : 'managementAgentType';
        if (!enumMembers('v1.0', en).includes(v)) v = 'unknownFutureValue';
      }
      out[n] = v;
    }
    return out;
  }

  private projectRecord(rec: Record<string, unknown>, version: GraphVersion, entity: EntityName, select: string[] | null): Record<string, unknown> {
    const names = select ?? [...entityPropertyNames(version, entity)];
    const out: Record<string, unknown> = {};
    for (const n of names) out[n] = rec[n] === undefined ? null : rec[n];
    return out;
  }

  private projectPolicyState(st: PolicyStateRecord, version: GraphVersion, select: string[] | null): Record<string, unknown> {
    const out = this.projectRecord(st as unknown as Record<string, unknown>, version, 'deviceCompliancePolicyState', select);
    if ('settingStates' in out) {
      const keys = V1_COMPLEX_PROPERTIES.deviceCompliancePolicySettingState.map((p) => p.name);
      if (version === 'beta') keys.push(...(BETA_ONLY_PROPERTIES.deviceCompliancePolicySettingState ?? []));
      out.settingStates = st.settingStates.map((s) => {
        const o: Record<string, unknown> = {};
        for (const k of keys) o[k] = (s as unknown as Record<string, unknown>)[k] ?? null;
        return o;
      });
    }
    return out;
  }

  private projectPolicy(p: SimPolicy, version: GraphVersion, select: string[] | null): Record<string, unknown> {
    const rec: Record<string, unknown> = { ...p, roleScopeTagIds: ['0'] };
    return { '@odata.type': p['@odata.type'], ...this.projectRecord(rec, version, 'deviceCompliancePolicy', select) };
  }

  // -------------------------------------------------------------------------
  // Handlers: devices

  private deviceOr404(id: string): { i: number; dev: ManagedDeviceRecord } {
    const i = this.tenant.indexOf(id);
    const dev = i === null ? null : this.tenant.deviceAt(i);
    if (i === null || !dev) throw new HttpError(404, 'ResourceNotFound', `Resource not found for the segment 'managedDevices'.`, true);
    return { i, dev };
  }

  private listDevices(ctx: Ctx): SimResponse {
    this.checkOptions(ctx, ['$select', '$filter', '$top', '$count', '$skiptoken']);
    const select = this.selectOf(ctx, 'managedDevice');
    const filterSrc = ctx.query.get('$filter');
    const pred: Pred | null = filterSrc !== undefined && filterSrc.trim() ? compileDeviceFilter(filterSrc, ctx.version, this.ignoreUnsupportedFilter) : null;
    const top = this.topOf(ctx);
    const count = this.countOf(ctx);
    const routeKey = 'managedDevices';
    const start = this.readToken(ctx, routeKey);
    const page = Math.min(top ?? this.pageSize, this.pageSize);
    const value: Record<string, unknown>[] = [];
    let next: number | null = null;
    const t = this.tenant;
    const bounds = (pred?.dateBounds ?? []).map((b) => ({ ...b, index: t.dateIndex(b.prop) }));
    for (let pos = start; pos < t.positions; pos++) {
      if (bounds.length && !bounds.every((b) => (b.op === 'gt' ? b.index[pos] > b.ms : b.index[pos] < b.ms))) continue;
      const d = t.deviceAt(pos);
      if (!d || (pred && !pred(d))) continue;
      if (value.length === page) {
        next = pos;
        break;
      }
      value.push(this.projectDevice(d, ctx.version, select, false));
    }
    const body: Record<string, unknown> = { '@odata.context': this.context(ctx, 'deviceManagement/managedDevices', select) };
    if (count) body['@odata.count'] = this.countDevices(ctx.version, filterSrc ?? '', pred);
    body.value = value;
    if (next !== null) body['@odata.nextLink'] = this.nextLink(ctx, routeKey, next);
    return { status: 200, headers: {}, body };
  }

  private countDevices(version: GraphVersion, key: string, pred: Pred | null): number {
    const t = this.tenant;
    if (!pred) return t.liveCount;
    const ck = `${version}|${key}`;
    const c = this.countCache.get(ck);
    if (c && c.mv === t.mutationVersion) return c.count;
    let n = 0;
    for (let pos = 0; pos < t.positions; pos++) {
      const d = t.deviceAt(pos);
      if (d && pred(d)) n++;
    }
    this.countCache.set(ck, { mv: t.mutationVersion, count: n });
    return n;
  }

  private getDevice(ctx: Ctx, id: string): SimResponse {
    this.checkOptions(ctx, ['$select']);
    const select = this.selectOf(ctx, 'managedDevice');
    const { dev } = this.deviceOr404(id);
    return {
      status: 200,
      headers: {},
      body: { '@odata.context': this.context(ctx, 'deviceManagement/managedDevices', select, true), ...this.projectDevice(dev, ctx.version, select, true) },
    };
  }

  private deviceUsers(ctx: Ctx, id: string): SimResponse {
    this.checkOptions(ctx, ['$select']);
    const select = this.selectOf(ctx, 'user');
    const { dev } = this.deviceOr404(id);
    const user = dev.userId ? this.tenant.users.get(dev.userId) : null;
    return {
      status: 200,
      headers: {},
      body: {
        '@odata.context': this.context(ctx, 'users', select),
        value: user ? [{ '@odata.type': '#microsoft.graph.user', ...this.projectRecord(user as unknown as Record<string, unknown>, ctx.version, 'user', select) }] : [],
      },
    };
  }

  /** A device's discovered apps as detectedApp entities, in one page (docs/graph-software.md, "The simulator"). */
  private detectedApps(ctx: Ctx, id: string): SimResponse {
    this.checkOptions(ctx, []);
    const i = this.tenant.indexOf(id);
    this.deviceOr404(id);
    const value = (i === null ? [] : this.tenant.appsAt(i)).map((a) => ({
      id: a.key,
      displayName: a.name,
      version: a.version,
      sizeInByte: 0,
      deviceCount: 0,
      publisher: a.publisher,
      platform: a.platform === 'Windows' ? 'windows' : a.platform === 'macOS' ? 'macOS' : a.platform === 'iOS' ? 'ios' : 'androidWorkProfile',
    }));
    return { status: 200, headers: {}, body: { '@odata.context': `${this.url}/${ctx.version}/$metadata#deviceManagement/managedDevices('${id}')/detectedApps`, value } };
  }

  private getUser(ctx: Ctx, id: string): SimResponse {
    this.checkOptions(ctx, ['$select']);
    const select = this.selectOf(ctx, 'user');
    const user = this.tenant.users.get(id);
    if (!user) {
      throw new HttpError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    }
    return {
      status: 200,
      headers: {},
      body: { '@odata.context': this.context(ctx, 'users', select, true), ...this.projectRecord(user as unknown as Record<string, unknown>, ctx.version, 'user', select) },
    };
  }

  private deviceAction(ctx: Ctx, id: string, action: string): SimResponse {
    this.checkOptions(ctx, []);
    this.deviceOr404(id);
    const params = ctx.version === 'beta' ? { ...MANAGED_DEVICE_ACTIONS_V1, ...MANAGED_DEVICE_ACTIONS_BETA_ONLY }[action] : MANAGED_DEVICE_ACTIONS_V1[action];
    const body = ctx.body;
    if (ctx.hasBody && (typeof body !== 'object' || body === null || Array.isArray(body))) {
      throw new HttpError(400, 'BadRequest', 'The request body must be a JSON object.');
    }
    const args = (body ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(args)) {
      const p = params.find((x) => x.name === k);
      if (!p) throw new HttpError(400, 'BadRequest', `The parameter '${k}' in the request payload is not a valid parameter for the operation '${action}'.`);
      if (v === null) {
        if (!p.nullable) throw new HttpError(400, 'BadRequest', `The parameter '${k}' of operation '${action}' cannot be null.`);
        continue;
      }
      const want = p.type.endsWith('Boolean') ? 'boolean' : p.type.endsWith('String') ? 'string' : 'object';
      if (typeof v !== want) throw new HttpError(400, 'BadRequest', `Cannot convert the literal '${JSON.stringify(v)}' to the expected type '${p.type}'.`);
    }
    if (action === 'sendCustomNotificationToCompanyPortal') {
      this.tenant.sendNotification(id, args.notificationTitle as string, args.notificationBody as string);
    } else {
      this.tenant.applyAction(id, action, args);
    }
    bump(this._stats.actions, action);
    return { status: 204, headers: {} };
  }

  private executeAction(ctx: Ctx): SimResponse {
    this.checkOptions(ctx, []);
    const b = (ctx.body ?? {}) as Record<string, unknown>;
    const ids = b.deviceIds;
    const name = b.actionName;
    if (typeof name !== 'string' || !Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) {
      throw new HttpError(400, 'BadRequest', "executeAction needs 'actionName' and a 'deviceIds' string collection.");
    }
    if (ids.length > 100) throw new HttpError(400, 'BadRequest', 'No more than 100 devices per bulk action.');
    const out = { successfulDeviceIds: [] as string[], failedDeviceIds: [] as string[], notFoundDeviceIds: [] as string[], notSupportedDeviceIds: [] as string[] };
    const map: Record<string, string> = { retire: 'retire', wipe: 'wipe', syncDevice: 'syncDevice', rebootNow: 'rebootNow' };
    for (const id of ids as string[]) {
      const i = this.tenant.indexOf(id);
      if (i === null || !this.tenant.deviceAt(i)) {
        out.notFoundDeviceIds.push(id);
        continue;
      }
      try {
        if (name === 'customTextNotification') {
          this.tenant.sendNotification(id, b.notificationTitle as string, b.notificationBody as string);
          bump(this._stats.actions, 'sendCustomNotificationToCompanyPortal');
        } else if (name === 'delete') {
          this.tenant.removeDevice(id);
          bump(this._stats.actions, 'delete');
        } else if (map[name]) {
          const before = this.tenant.deviceAt(i)!.deviceActionResults.length;
          this.tenant.applyAction(id, map[name], { keepEnrollmentData: b.keepEnrollmentData, keepUserData: b.keepUserData });
          bump(this._stats.actions, map[name]);
          const res = this.tenant.deviceAt(i)!.deviceActionResults;
          if (res.length > before && res[res.length - 1].actionState === 'notSupported') {
            out.notSupportedDeviceIds.push(id);
            continue;
          }
        } else {
          out.notSupportedDeviceIds.push(id);
          continue;
        }
        out.successfulDeviceIds.push(id);
      } catch (e) {
        if (e instanceof SimTenantError && e.status === 400 && /supported/.test(e.message)) out.notSupportedDeviceIds.push(id);
        else out.failedDeviceIds.push(id);
      }
    }
    return {
      status: 200,
      headers: {},
      body: {
        '@odata.context': `${this.url}/beta/$metadata#microsoft.graph.bulkManagedDeviceActionResult`,
        value: { '@odata.type': 'microsoft.graph.bulkManagedDeviceActionResult', ...out },
      },
    };
  }

  // -------------------------------------------------------------------------
  // Handlers: compliance

  private policyStates(ctx: Ctx, id: string): SimResponse {
    this.checkOptions(ctx, ['$select']);
    const select = this.selectOf(ctx, 'deviceCompliancePolicyState');
    this.deviceOr404(id);
    const states = this.tenant.policyStatesFor(id) ?? [];
    return {
      status: 200,
      headers: {},
      body: {
        '@odata.context': this.context(ctx, `deviceManagement/managedDevices('${id}')/deviceCompliancePolicyStates`, select),
        value: states.map((s) => this.projectPolicyState(s, ctx.version, select)),
      },
    };
  }

  private listPolicies(ctx: Ctx): SimResponse {
    this.checkOptions(ctx, ['$select', '$top']);
    const select = this.selectOf(ctx, 'deviceCompliancePolicy');
    const top = this.topOf(ctx);
    const list = this.tenant.policies.slice(0, top ?? undefined);
    return {
      status: 200,
      headers: {},
      body: { '@odata.context': this.context(ctx, 'deviceManagement/deviceCompliancePolicies', select), value: list.map((p) => this.projectPolicy(p, ctx.version, select)) },
    };
  }

  private policyOr404(id: string): SimPolicy {
    const p = this.tenant.policies.find((x) => x.id === id);
    if (!p) throw new HttpError(404, 'ResourceNotFound', `Resource not found for the segment 'deviceCompliancePolicies'.`, true);
    return p;
  }

  private getPolicy(ctx: Ctx, id: string): SimResponse {
    this.checkOptions(ctx, ['$select']);
    const select = this.selectOf(ctx, 'deviceCompliancePolicy');
    const p = this.policyOr404(id);
    return { status: 200, headers: {}, body: { '@odata.context': this.context(ctx, 'deviceManagement/deviceCompliancePolicies', select, true), ...this.projectPolicy(p, ctx.version, select) } };
  }

  private deviceStatuses(ctx: Ctx, policyId: string): SimResponse {
    this.checkOptions(ctx, ['$select', '$top', '$filter', '$skiptoken']);
    const select = this.selectOf(ctx, 'deviceComplianceDeviceStatus');
    const policy = this.policyOr404(policyId);
    const top = this.topOf(ctx);
    let statusWanted: string | null = null;
    const f = ctx.query.get('$filter');
    if (f !== undefined && f.trim()) {
      const m = /^\s*status\s+eq\s+'(\w+)'\s*$/.exec(f);
      if (!m) throw new HttpError(400, 'BadRequest', "Only \"status eq '<complianceStatus>'\" is supported in $filter on deviceStatuses.");
      if (!enumMembers(ctx.version, 'complianceStatus').includes(m[1])) throw new HttpError(400, 'BadRequest', `The string '${m[1]}' is not a valid enumeration type constant.`);
      statusWanted = m[1];
    }
    const routeKey = `deviceStatuses:${policyId}`;
    const start = this.readToken(ctx, routeKey);
    const page = Math.min(top ?? this.pageSize, this.pageSize);
    const value: Record<string, unknown>[] = [];
    let next: number | null = null;
    const t = this.tenant;
    for (let pos = start; pos < t.positions; pos++) {
      const d = t.deviceAt(pos);
      if (!d) continue;
      const st = t.policyStatesFor(d.id)?.find((s) => s.id === policy.id);
      if (!st || (statusWanted && st.state !== statusWanted)) continue;
      if (value.length === page) {
        next = pos;
        break;
      }
      const rec: Record<string, unknown> = {
        id: `${policy.id}_${d.id}`,
        deviceDisplayName: d.deviceName,
        userName: d.userDisplayName,
        deviceModel: d.model,
        platform: 0,
        complianceGracePeriodExpirationDateTime: d.complianceGracePeriodExpirationDateTime,
        status: st.state,
        lastReportedDateTime: d.lastSyncDateTime,
        userPrincipalName: d.userPrincipalName,
      };
      value.push(this.projectRecord(rec, ctx.version, 'deviceComplianceDeviceStatus', select));
    }
    const body: Record<string, unknown> = {
      '@odata.context': this.context(ctx, `deviceManagement/deviceCompliancePolicies('${policyId}')/deviceStatuses`, select),
      value,
    };
    if (next !== null) body['@odata.nextLink'] = this.nextLink(ctx, routeKey, next);
    return { status: 200, headers: {}, body };
  }

  private noncompliantReport(ctx: Ctx): SimResponse {
    this.checkOptions(ctx, []);
    const b = ctx.body ?? {};
    if (typeof b !== 'object' || Array.isArray(b) || b === null) throw new HttpError(400, 'BadRequest', 'The request body must be a JSON object.');
    const body = b as Record<string, unknown>;
    const known = ['name', 'select', 'groupBy', 'orderBy', 'search', 'skip', 'top', 'sessionId', 'filter'];
    for (const k of Object.keys(body)) {
      if (!known.includes(k)) throw new HttpError(400, 'BadRequest', `The parameter '${k}' in the request payload is not a valid parameter for the operation 'getNoncompliantDevicesAndSettingsReport'.`);
    }
    const cols = NONCOMPLIANT_REPORT_COLUMNS;
    let columns = cols.map((c) => c.column);
    if (body.select !== undefined && body.select !== null) {
      if (!Array.isArray(body.select) || !body.select.every((x) => typeof x === 'string')) throw new HttpError(400, 'BadRequest', "'select' must be a string collection.");
      for (const c of body.select as string[]) {
        const def = cols.find((x) => x.column === c);
        if (!def || !def.selectable) throw new HttpError(400, 'BadRequest', `Invalid select column '${c}' for report NoncompliantDevicesAndSettings.`);
      }
      if ((body.select as string[]).length) columns = [...new Set(body.select as string[])];
    }
    if (Array.isArray(body.groupBy) && body.groupBy.length) throw new HttpError(400, 'BadRequest', 'groupBy is not supported for report NoncompliantDevicesAndSettings.');
    if (body.orderBy !== undefined && body.orderBy !== null) {
      if (!Array.isArray(body.orderBy)) throw new HttpError(400, 'BadRequest', "'orderBy' must be a string collection.");
      for (const o of body.orderBy as unknown[]) {
        const col = String(o).trim().split(/\s+/)[0];
        if (!cols.some((c) => c.column === col)) throw new HttpError(400, 'BadRequest', `Invalid orderBy column '${col}'.`);
      }
    }
    const num = (v: unknown, name: string, dflt: number) => {
      if (v === undefined || v === null) return dflt;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new HttpError(400, 'BadRequest', `'${name}' must be a non-negative integer.`);
      return v;
    };
    const skip = num(body.skip, 'skip', 0);
    const top = Math.min(num(body.top, 'top', this.reportDefaultTop), 1000);
    // filter: "(DeviceId eq 'x') and (PolicyId eq 'y')"
    const conds: [keyof ReportRow, string][] = [];
    const filter = typeof body.filter === 'string' ? body.filter.trim() : '';
    if (body.filter !== undefined && body.filter !== null && typeof body.filter !== 'string') throw new HttpError(400, 'BadRequest', "'filter' must be a string.");
    if (filter) {
      for (const part of filter.split(/\s+and\s+/i)) {
        const m = /^\(*\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*\)*$/.exec(part.trim());
        if (!m) throw new HttpError(400, 'BadRequest', `Invalid filter '${filter}' for report NoncompliantDevicesAndSettings.`);
        if (!NONCOMPLIANT_REPORT_FILTER_COLUMNS.includes(m[1])) throw new HttpError(400, 'BadRequest', `Column '${m[1]}' cannot be filtered in report NoncompliantDevicesAndSettings.`);
        conds.push([m[1] as keyof ReportRow, m[2].replace(/''/g, "'")]);
      }
    }
    const rowOk = (r: ReportRow) => conds.every(([k, v]) => String(r[k]).toLowerCase() === v.toLowerCase());
    const deviceId = conds.find(([k]) => k === 'DeviceId')?.[1];
    const { rows, total } = this.reportPage(filter, rowOk, deviceId, skip, top);
    const schema = columns.map((c) => ({ Column: c, PropertyType: cols.find((x) => x.column === c)!.propertyType }));
    const values = rows.map((r) => columns.map((c) => r[c as keyof ReportRow]));
    return {
      status: 200,
      headers: {},
      contentType: ctx.inBatch ? JSON_CT : 'application/octet-stream',
      body: { TotalRowCount: total, Schema: schema, Values: values, SessionId: typeof body.sessionId === 'string' ? body.sessionId : '' },
    };
  }

  private reportPage(key: string, rowOk: (r: ReportRow) => boolean, deviceId: string | undefined, skip: number, top: number): { rows: ReportRow[]; total: number } {
    const t = this.tenant;
    if (deviceId !== undefined) {
      const i = t.indexOf(deviceId);
      const all = i === null ? [] : t.reportRowsAt(i).filter(rowOk);
      return { rows: all.slice(skip, skip + top), total: all.length };
    }
    let cache = this.reportCache.get(key);
    if (!cache || cache.mv !== t.mutationVersion) {
      cache = { mv: t.mutationVersion, checkpoints: [{ row: 0, pos: 0 }] };
      this.reportCache.set(key, cache);
    }
    if (cache.total === undefined) {
      let row = 0;
      let last = 0;
      for (let pos = 0; pos < t.positions; pos++) {
        if (row - last >= 500) {
          cache.checkpoints.push({ row, pos });
          last = row;
        }
        const n = t.reportRowsAt(pos).filter(rowOk).length;
        row += n;
      }
      cache.total = row;
    }
    let cp = cache.checkpoints[0];
    for (const c of cache.checkpoints) if (c.row <= skip) cp = c;
    const rows: ReportRow[] = [];
    let row = cp.row;
    for (let pos = cp.pos; pos < t.positions && rows.length < top; pos++) {
      for (const r of t.reportRowsAt(pos)) {
        if (!rowOk(r)) continue;
        if (row >= skip && rows.length < top) rows.push(r);
        row++;
      }
    }
    return { rows, total: cache.total };
  }

  // -------------------------------------------------------------------------
  // $batch

  private async handleBatch(ctx: Ctx): Promise<SimResponse> {
    this._stats.batches++;
    const b = ctx.body as { requests?: unknown } | undefined;
    if (!b || typeof b !== 'object' || !Array.isArray(b.requests)) throw new HttpError(400, 'BadRequest', "Invalid batch payload format: a 'requests' array is required.");
    const items = b.requests as Record<string, unknown>[];
    if (items.length === 0) throw new HttpError(400, 'BadRequest', 'Invalid batch payload format: the batch contains no requests.');
    if (items.length > 20) throw new HttpError(400, 'BadRequest', `Invalid batch payload format: the number of batch requests (${items.length}) exceeds the maximum of 20.`);
    const ids = new Map<string, Record<string, unknown>>();
    for (const it of items) {
      if (!it || typeof it !== 'object') throw new HttpError(400, 'BadRequest', 'Invalid batch payload format: every request must be an object.');
      if (typeof it.id !== 'string' || !it.id) throw new HttpError(400, 'BadRequest', "Invalid batch payload format: every request needs a string 'id'.");
      if (typeof it.method !== 'string' || typeof it.url !== 'string') throw new HttpError(400, 'BadRequest', `Invalid batch payload format: request '${it.id}' needs 'method' and 'url'.`);
      const key = it.id.toLowerCase();
      if (ids.has(key)) throw new HttpError(400, 'BadRequest', `Invalid batch payload format: duplicate request id '${it.id}'.`);
      ids.set(key, it);
      checkWriteItem(it.id, it.method, it.headers, it.body);
    }
    for (const it of items) {
      if (it.dependsOn === undefined) continue;
      if (!Array.isArray(it.dependsOn) || !it.dependsOn.every((d) => typeof d === 'string' && ids.has(d.toLowerCase()) && d.toLowerCase() !== String(it.id).toLowerCase())) {
        throw new HttpError(400, 'BadRequest', `Invalid batch payload format: request '${String(it.id)}' depends on an unknown request.`);
      }
    }
    this._stats.batchInner += items.length;
    const status = new Map<string, number>();
    const responses: Record<string, unknown>[] = [];
    const pending = [...items];
    while (pending.length) {
      const idx = pending.findIndex((it) => ((it.dependsOn as string[] | undefined) ?? []).every((d) => status.has(d.toLowerCase())));
      if (idx < 0) throw new HttpError(400, 'BadRequest', 'Invalid batch payload format: dependsOn forms a cycle.');
      const it = pending.splice(idx, 1)[0];
      const id = String(it.id);
      const method = String(it.method).toUpperCase();
      const url = String(it.url);
      const failedDep = ((it.dependsOn as string[] | undefined) ?? []).find((d) => (status.get(d.toLowerCase()) ?? 0) >= 400);
      let resp: SimResponse;
      let route: string | null = null;
      const requestId = crypto.randomUUID();
      if (failedDep !== undefined) {
        resp = this.error(424, 'FailedDependency', `The request depends on request '${failedDep}', which failed.`, requestId, ctx.clientRequestId);
      } else {
        const r = await this.runItem(ctx, it, method, url, requestId);
        resp = r.resp;
        route = r.route;
      }
      status.set(id.toLowerCase(), resp.status);
      this.log({ at: new Date().toISOString(), method, url: `/${ctx.version}${url.startsWith('/') ? url : '/' + url}`, route, status: resp.status, batchItem: true, appid: ctx.claims.appid });
      const headers: Record<string, string> = { 'Cache-Control': 'no-cache', ...resp.headers };
      const out: Record<string, unknown> = { id, status: resp.status, headers };
      if (resp.body !== undefined) {
        headers['Content-Type'] = resp.contentType ?? JSON_CT;
        out.body = resp.body;
      }
      responses.push(out);
    }
    return { status: 200, headers: {}, body: { responses: this.shuffle(responses) } };
  }

  private async runItem(outer: Ctx, it: Record<string, unknown>, method: string, url: string, requestId: string): Promise<{ resp: SimResponse; route: string | null }> {
    const headers: Record<string, string> = {};
    if (it.headers !== undefined) {
      if (typeof it.headers !== 'object' || it.headers === null || Array.isArray(it.headers)) {
        return { resp: this.error(400, 'BadRequest', "The request 'headers' must be an object.", requestId, outer.clientRequestId), route: null };
      }
      for (const [k, v] of Object.entries(it.headers as Record<string, unknown>)) headers[k.toLowerCase()] = String(v);
    }
    const hasBody = it.body !== undefined;
    if (hasBody && !headers['content-type']) {
      return { resp: this.error(400, 'BadRequest', 'A Content-Type header is required for a batch request that has a body.', requestId, outer.clientRequestId), route: null };
    }
    if (/^https?:/i.test(url) || /^\/?(v1\.0|beta)\//.test(url)) {
      return { resp: this.error(400, 'BadRequest', `Invalid request URL '${url}': batch URLs are relative to the version root.`, requestId, outer.clientRequestId), route: null };
    }
    const rel = url.startsWith('/') ? url : `/${url}`;
    const qi = rel.indexOf('?');
    const pathname = qi < 0 ? rel : rel.slice(0, qi);
    const rawQuery = qi < 0 ? '' : rel.slice(qi + 1);
    const segments = pathname.split('/').filter(Boolean).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    if (segments[0] === '$batch') {
      return { resp: this.error(400, 'BadRequest', 'Nested $batch requests are not supported.', requestId, outer.clientRequestId), route: null };
    }
    let body: unknown = it.body;
    if (typeof body === 'string' && /json/i.test(headers['content-type'] ?? '')) {
      try {
        body = JSON.parse(body);
      } catch {
        /* keep string */
      }
    }
    let query: Map<string, string>;
    try {
      query = parseQuery(rawQuery);
    } catch (e) {
      return { resp: this.fromError(e, requestId, outer.clientRequestId, rel), route: null };
    }
    const ctx: Ctx = {
      method,
      version: outer.version,
      segments,
      rawQuery,
      query,
      headers,
      body,
      hasBody,
      claims: outer.claims,
      requestId,
      clientRequestId: outer.clientRequestId,
      inBatch: true,
      url: rel,
    };
    return this.dispatch(ctx);
  }

  /** Responses come back in an order different from the requests (as Graph allows). */
  private shuffle<T>(arr: T[]): T[] {
    if (arr.length < 2) return arr;
    const out = [...arr];
    let s = (this.shuffleSeed = (this.shuffleSeed * 1103515245 + 12345) >>> 0);
    for (let k = out.length - 1; k > 0; k--) {
      s = (s * 1664525 + 1013904223) >>> 0;
      const j = s % (k + 1);
      [out[k], out[j]] = [out[j], out[k]];
    }
    if (out.every((x, k) => x === arr[k])) out.reverse();
    return out;
  }
}

/**
 * Graph checks every write item (POST, PUT, PATCH) of a $batch before it runs any of them, and one
 * bad item fails the WHOLE batch with an outer 400 (docs/graph-facts.md):
 * - neither body nor Content-Type: "Write request id : <id> does not contain Content-Type header or body."
 *   (msgraph-sdk-dotnet #2628, Softeria/ms-365-mcp-server #677/#683; bites parameterless actions);
 * - a body without Content-Type: "Write request with id '<id>' does not contain a Content-Type header."
 *   (Softeria/ms-365-mcp-server #677: a batch-level failure, none of the items runs);
 * - a Content-Type without a body: no public report; the first message names both, so the sim
 *   refuses it with that one (our reading, the strict one).
 */
function checkWriteItem(id: string, method: string, headers: unknown, body: unknown): void {
  if (!['POST', 'PUT', 'PATCH'].includes(method.toUpperCase())) return;
  const hasType =
    !!headers && typeof headers === 'object' && Object.entries(headers as Record<string, unknown>).some(([k, v]) => k.toLowerCase() === 'content-type' && typeof v === 'string' && v.trim() !== '');
  const hasBody = body !== undefined && body !== null;
  if (hasBody && !hasType) throw new HttpError(400, 'BadRequest', `Write request with id '${id}' does not contain a Content-Type header.`);
  if (!hasBody || !hasType) throw new HttpError(400, 'BadRequest', `Write request id : ${id} does not contain Content-Type header or body.`);
}

function clampPage(n: number): number {
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(n)));
}

function parseQuery(raw: string): Map<string, string> {
  const q = new Map<string, string>();
  if (!raw) return q;
  for (const part of raw.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const kRaw = eq < 0 ? part : part.slice(0, eq);
    const vRaw = eq < 0 ? '' : part.slice(eq + 1);
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent(kRaw.replace(/\+/g, ' '));
      v = decodeURIComponent(vRaw.replace(/\+/g, ' '));
    } catch {
      throw new HttpError(400, 'BadRequest', 'The query string is not correctly encoded.');
    }
    if (q.has(k)) throw new HttpError(400, 'BadRequest', `Query option '${k}' was specified more than once, but it must be specified at most once.`);
    q.set(k, v);
  }
  return q;
}
