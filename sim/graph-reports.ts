/**
 * Intune's report export in the Graph simulator (docs/graph-software.md):
 *
 *  POST /deviceManagement/reports/exportJobs       {reportName, format, select, localizationType}
 *                                                   → 201 with the job, status notStarted
 *  GET  /deviceManagement/reports/exportJobs/{id}   (also exportJobs('{id}')) → the job; the status
 *                                                   moves notStarted → inProgress → completed (or failed)
 *                                                   with time, and a completed job carries `url` and
 *                                                   `expirationDateTime`
 *  GET  /deviceManagement/reports/exportJobs        the jobs of the tenant
 *  GET  /exportstorage/{tenant}/{job}.zip?…&se=…&sig=…   the download: NOT a Graph URL. It stands for
 *                                                   Azure blob storage with a SAS: no bearer token (a
 *                                                   request with an Authorization header is refused),
 *                                                   the signature must match, and after `se` (the
 *                                                   expiry) storage answers 403 AuthenticationFailed.
 *
 * Only AppInvRawData is served (the report the connector reads), as csv: a
 * zip holding one CSV file (UTF-8 with BOM, a header row, every value
 * quoted), columns as selected (all 13 documented columns when `select` is
 * absent). The zip is built while it is downloaded, from the tenant at that
 * moment (real exports are a snapshot of the time the job ran; the tests
 * change the tenant between runs, never during one).
 *
 * Permissions and throttling are the Graph sim's (graph.ts): creating a job
 * needs one of the three ReadWrite roles the API page lists, reading one any
 * of the six; requests count in the `reports` bucket (Intune reporting
 * limits).
 *
 * Controls: setTiming({startMs, readyMs, linkTtlMs}), failNextJobs(n), expireLinks().
 */
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import yazl from 'yazl';
import { SimTenantError, type SimTenant } from './tenant';

/** The columns of AppInvRawData (reports-export-graph-available-reports.md). */
export const APP_INV_RAW_DATA_COLUMNS = [
  'ApplicationKey',
  'ApplicationName',
  'ApplicationPublisher',
  'ApplicationShortVersion',
  'ApplicationVersion',
  'DeviceId',
  'DeviceName',
  'OSDescription',
  'OSVersion',
  'Platform',
  'UserId',
  'EmailAddress',
  'UserName',
] as const;

/** Roles per call (intune-reporting-devicemanagementexportjob-create.md / -get.md). */
export const EXPORT_JOB_ROLES = {
  create: ['DeviceManagementConfiguration.ReadWrite.All', 'DeviceManagementApps.ReadWrite.All', 'DeviceManagementManagedDevices.ReadWrite.All'],
  read: [
    'DeviceManagementConfiguration.Read.All',
    'DeviceManagementConfiguration.ReadWrite.All',
    'DeviceManagementApps.Read.All',
    'DeviceManagementApps.ReadWrite.All',
    'DeviceManagementManagedDevices.Read.All',
    'DeviceManagementManagedDevices.ReadWrite.All',
  ],
} as const;

/** The numeric Platform of localizedValuesAsAdditionalColumn (the OS example of reports-export-graph-apis.md; assumed for Platform). */
const PLATFORM_CODE: Record<string, string> = { Windows: '1', iOS: '2', Android: '3', macOS: '4' };

const DOWNLOAD_PREFIX = '/exportstorage/';

export interface ExportTiming {
  /** From creation until the job leaves notStarted. */
  startMs: number;
  /** From creation until the job is completed. */
  readyMs: number;
  /** How long the download link stays valid (the docs' example: about 6 hours). */
  linkTtlMs: number;
}

export interface ExportJobStats {
  created: number;
  statusReads: number;
  downloads: number;
  /** Downloads refused: expired link, bad signature, or an Authorization header. */
  downloadsRefused: number;
  /** Download requests that carried an Authorization header (the Graph token must never go there). */
  downloadsWithAuthorization: number;
  /** Rows and bytes served by downloads (the CSV before compression, the zip as sent): the bench's figures. */
  rowsServed: number;
  csvBytes: number;
  zipBytes: number;
}

interface Job {
  id: string;
  reportName: string;
  format: string;
  select: string[] | null;
  filter: string | null;
  localizationType: string;
  createdMs: number;
  fails: boolean;
  /** Fixed when the job is first seen completed. */
  expiresMs?: number;
}

export interface RouteAnswer {
  status: number;
  body?: unknown;
}

export class ExportJobSim {
  private readonly jobs = new Map<string, Job>();
  private readonly key = crypto.randomBytes(32);
  private timing: ExportTiming = { startMs: 300, readyMs: 1000, linkTtlMs: 6 * 3_600_000 };
  private failing = 0;
  readonly stats: ExportJobStats = { created: 0, statusReads: 0, downloads: 0, downloadsRefused: 0, downloadsWithAuthorization: 0, rowsServed: 0, csvBytes: 0, zipBytes: 0 };

  constructor(
    private readonly tenant: SimTenant,
    private readonly rootUrl: () => string,
  ) {}

  // ----------------------------------------------------------------- controls

  setTiming(t: Partial<ExportTiming>): void {
    this.timing = { ...this.timing, ...t };
  }

  /** The next `n` jobs end in status failed. */
  failNextJobs(n: number): void {
    this.failing += n;
  }

  /** Every download link handed out so far is expired from now on. */
  expireLinks(): void {
    for (const j of this.jobs.values()) if (j.expiresMs !== undefined) j.expiresMs = Math.min(j.expiresMs, Date.now() - 1);
  }

  // ------------------------------------------------------------------ routes

  /** The Graph route under /deviceManagement/reports/ (segments after 'reports'), or null when it is not an export-job path. */
  route(method: string, rest: string[]): { key: string; method: 'GET' | 'POST'; roles: readonly string[]; run: (body: unknown) => RouteAnswer } | null {
    if (rest[0] === 'exportJobs' && rest.length === 1) {
      if (method === 'GET') return { key: 'GET /deviceManagement/reports/exportJobs', method: 'GET', roles: EXPORT_JOB_ROLES.read, run: () => this.list() };
      return { key: 'POST /deviceManagement/reports/exportJobs', method: 'POST', roles: EXPORT_JOB_ROLES.create, run: (b) => this.create(b) };
    }
    const paren = rest.length === 1 ? /^exportJobs\('([^']+)'\)$/.exec(rest[0]) : null;
    const id = paren ? paren[1] : rest[0] === 'exportJobs' && rest.length === 2 ? rest[1] : null;
    if (id === null) return null;
    return { key: 'GET /deviceManagement/reports/exportJobs/{id}', method: 'GET', roles: EXPORT_JOB_ROLES.read, run: () => this.get(id) };
  }

  private create(body: unknown): RouteAnswer {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.reportName !== 'string' || !b.reportName) throw new SimTenantError(400, 'BadRequest', 'reportName is required.');
    if (b.reportName !== 'AppInvRawData') {
      throw new SimTenantError(400, 'BadRequest', `The simulator serves only the AppInvRawData report, not "${b.reportName}".`);
    }
    const format = b.format === undefined ? 'csv' : b.format;
    if (format !== 'csv') throw new SimTenantError(400, 'BadRequest', `The simulator exports csv only (format "${String(format)}").`);
    let select: string[] | null = null;
    if (b.select !== undefined && b.select !== null) {
      if (!Array.isArray(b.select) || b.select.some((c) => typeof c !== 'string')) throw new SimTenantError(400, 'BadRequest', 'select must be a list of column names.');
      const bad = (b.select as string[]).filter((c) => !(APP_INV_RAW_DATA_COLUMNS as readonly string[]).includes(c));
      if (bad.length) throw new SimTenantError(400, 'BadRequest', `Invalid select column(s) for AppInvRawData: ${bad.join(', ')}`);
      select = [...(b.select as string[])];
    }
    if (typeof b.filter === 'string' && b.filter.trim()) throw new SimTenantError(400, 'BadRequest', 'The AppInvRawData report has no filters.');
    const lt = String(b.localizationType ?? 'localizedValuesAsAdditionalColumn');
    const loc = lt.toLowerCase() === 'replacelocalizablevalues' ? 'replaceLocalizableValues' : lt.toLowerCase() === 'localizedvaluesasadditionalcolumn' ? 'localizedValuesAsAdditionalColumn' : null;
    if (!loc) throw new SimTenantError(400, 'BadRequest', `Invalid localizationType "${lt}".`);
    const job: Job = {
      id: `AppInvRawData_${crypto.randomUUID()}`,
      reportName: 'AppInvRawData',
      format: 'csv',
      select,
      filter: null,
      localizationType: loc,
      createdMs: Date.now(),
      fails: this.failing > 0,
    };
    if (this.failing > 0) this.failing--;
    this.jobs.set(job.id, job);
    this.stats.created++;
    return { status: 201, body: this.view(job) };
  }

  private get(id: string): RouteAnswer {
    const job = this.jobs.get(id);
    if (!job) throw new SimTenantError(404, 'ResourceNotFound', `Export job ${id} was not found.`);
    this.stats.statusReads++;
    return { status: 200, body: this.view(job) };
  }

  private list(): RouteAnswer {
    return { status: 200, body: { value: [...this.jobs.values()].map((j) => this.view(j)) } };
  }

  private statusOf(job: Job, now: number): string {
    if (now < job.createdMs + this.timing.startMs) return 'notStarted';
    if (now < job.createdMs + this.timing.readyMs) return 'inProgress';
    return job.fails ? 'failed' : 'completed';
  }

  private view(job: Job): Record<string, unknown> {
    const now = Date.now();
    const status = this.statusOf(job, now);
    let url: string | null = null;
    let expires = '0001-01-01T00:00:00Z';
    if (status === 'completed') {
      job.expiresMs ??= now + this.timing.linkTtlMs;
      url = this.link(job);
      expires = new Date(job.expiresMs).toISOString();
    }
    return {
      '@odata.context': `${this.rootUrl()}/beta/$metadata#deviceManagement/reports/exportJobs/$entity`,
      id: job.id,
      reportName: job.reportName,
      filter: job.filter,
      select: job.select ?? [],
      format: job.format,
      snapshotId: null,
      localizationType: job.localizationType,
      status,
      url,
      requestDateTime: new Date(job.createdMs).toISOString(),
      expirationDateTime: expires,
    };
  }

  private sign(pathname: string, se: string): string {
    return crypto.createHmac('sha256', this.key).update(`${pathname}\n${se}`).digest('base64');
  }

  private link(job: Job): string {
    const pathname = `${DOWNLOAD_PREFIX}${this.tenant.tenantId}/${job.id}.zip`;
    const se = new Date(job.expiresMs!).toISOString().slice(0, 19) + 'Z';
    const q = new URLSearchParams({ sv: '2019-02-02', sr: 'b', se, sp: 'r', sig: this.sign(pathname, se) });
    return `${this.rootUrl()}${pathname}?${q.toString()}`;
  }

  // ---------------------------------------------------------------- download

  isDownload(rawUrl: string): boolean {
    return rawUrl.startsWith(DOWNLOAD_PREFIX);
  }

  /** Answers a download request (storage, not Graph: its own error format, no Graph headers). */
  serveDownload(method: string, rawUrl: string, headers: IncomingHttpHeaders, res: ServerResponse): number {
    const u = new URL(rawUrl, 'https://storage.invalid');
    const refuse = (status: number, code: string, message: string) => {
      this.stats.downloadsRefused++;
      const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${crypto.randomUUID()}\nTime:${new Date().toISOString()}</Message></Error>`;
      res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': String(Buffer.byteLength(xml)), 'x-ms-error-code': code });
      res.end(xml);
      return status;
    };
    if (headers.authorization !== undefined) {
      this.stats.downloadsWithAuthorization++;
      // Assumed: storage tries the bearer token as its own credential, and a Graph token is not one.
      return refuse(403, 'AuthenticationFailed', 'Server failed to authenticate the request. The Authorization header is not valid for this resource.');
    }
    if (method !== 'GET') return refuse(405, 'UnsupportedHttpVerb', 'The resource does not support the specified HTTP verb.');
    const m = /^\/exportstorage\/([^/]+)\/([^/]+)\.zip$/.exec(u.pathname);
    const job = m ? this.jobs.get(decodeURIComponent(m[2])) : undefined;
    const se = u.searchParams.get('se') ?? '';
    const sig = u.searchParams.get('sig') ?? '';
    if (!m || !job || !sig || sig !== this.sign(u.pathname, se)) {
      return refuse(403, 'AuthenticationFailed', 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.');
    }
    const seMs = Date.parse(se);
    if (!Number.isFinite(seMs) || Date.now() > seMs || Date.now() > (job.expiresMs ?? 0)) {
      return refuse(403, 'AuthenticationFailed', `Server failed to authenticate the request. Signed expiry time [${se}] has passed.`);
    }
    this.stats.downloads++;
    const zip = new yazl.ZipFile();
    // Deflated like the real export, at the fastest level: a 100,000-device report is ~0.5 GB of CSV.
    zip.addReadStream(Readable.from(this.csv(job)), `${job.id}.csv`, { compressionLevel: 1 });
    zip.end();
    zip.outputStream.on('data', (b: Buffer) => (this.stats.zipBytes += b.length));
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'x-ms-blob-type': 'BlockBlob' });
    zip.outputStream.pipe(res);
    return 200;
  }

  /** The report's CSV text, device by device (never the whole file in memory). */
  private *csv(job: Job): Generator<string> {
    const base = job.select ?? [...APP_INV_RAW_DATA_COLUMNS];
    const split = job.localizationType === 'localizedValuesAsAdditionalColumn';
    const columns = base.flatMap((c) => (split && c === 'Platform' ? ['Platform', 'Platform_loc'] : [c]));
    const q = (v: string | null | undefined) => `"${(v ?? '').replace(/"/g, '""')}"`;
    yield '\ufeff' + columns.map((c) => q(c)).join(',') + '\r\n';
    const t = this.tenant;
    let chunk = '';
    for (let i = 0; i < t.positions; i++) {
      const dev = t.deviceAt(i);
      if (!dev) continue;
      for (const a of t.appsAt(i)) {
        const short = a.version.split('.').slice(0, 2).join('.');
        const value: Record<string, string | null> = {
          ApplicationKey: a.key,
          ApplicationName: a.name,
          ApplicationPublisher: a.publisher,
          ApplicationShortVersion: short,
          ApplicationVersion: a.version,
          DeviceId: dev.id,
          DeviceName: dev.deviceName,
          OSDescription: dev.operatingSystem,
          OSVersion: dev.osVersion,
          Platform: split ? (PLATFORM_CODE[a.platform] ?? '0') : a.platform,
          Platform_loc: a.platform,
          UserId: dev.userId,
          EmailAddress: dev.emailAddress,
          UserName: dev.userDisplayName,
        };
        chunk += columns.map((c) => q(value[c])).join(',') + '\r\n';
        this.stats.rowsServed++;
      }
      if (chunk.length > 64 * 1024) {
        this.stats.csvBytes += Buffer.byteLength(chunk);
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) {
      this.stats.csvBytes += Buffer.byteLength(chunk);
      yield chunk;
    }
  }
}
