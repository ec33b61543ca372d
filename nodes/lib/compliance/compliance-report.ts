/**
 * Reads the tenant-wide `NoncompliantDevicesAndSettings` report
 * (POST /deviceManagement/reports/getNoncompliantDevicesAndSettingsReport)
 * page by page and hands its rows on grouped per device, and per policy
 * within a device.
 *
 * - The report is an action that returns a stream: `{TotalRowCount, Schema:
 *   [{Column, PropertyType}], Values: [[…], …]}`. Columns are read by the
 *   names in `Schema`, never by position, and only the selectable columns
 *   of graph-schema.ts are asked for.
 * - Paging is `skip`/`top` (at most 1 000 rows per call); the rows are asked
 *   for in DeviceId order, so a device's rows are contiguous (its policies
 *   are gathered whatever their order). A
 *   device whose rows run across a page boundary is held back until the
 *   next page shows the next device, so memory holds one report page plus
 *   one device, never the tenant.
 * - It is a read, but an HTTP POST: it is sent `readOnly`, so the shared
 *   client paces it as a read of the compliance bucket and repeats it after
 *   a 504 or a dropped connection like any GET.
 * - `SettingStatus` is the numeric complianceStatus (4 = nonCompliant,
 *   5 = error); it becomes the enum name.
 */
import type { GraphClient, StatsSink } from '../graph/graph-client';
import { GraphRequestError } from '../graph/graph-errors';
import { V1_ENUMS, NONCOMPLIANT_REPORT_COLUMNS } from '../graph/graph-schema';

export const REPORT_PATH = '/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport';
/** Graph's largest `top` for the report. */
export const REPORT_MAX_TOP = 1000;
/** Loop guard when Graph gives no TotalRowCount (10 million rows). */
const MAX_PAGES = 10_000;

/** Columns asked for (all selectable, checked at load against graph-schema). */
export const REPORT_SELECT: readonly string[] = ['DeviceId', 'DeviceName', 'UPN', 'OS', 'PolicyId', 'PolicyName', 'SettingName', 'SettingNm', 'SettingStatus', 'ErrorCode'];
for (const c of REPORT_SELECT) {
  if (!NONCOMPLIANT_REPORT_COLUMNS.some((d) => d.column === c && d.selectable)) throw new Error(`internal: report column ${c} is not selectable`);
}

/** One failing setting as the report shows it. */
export interface ReportSetting {
  /** `<Class>.<Property>` (the report's SettingName, settingState.setting). */
  setting: string;
  /** The setting's name (the report's SettingNm, settingState.settingName). */
  name: string;
  /** complianceStatus name ("nonCompliant", "error", …). */
  state: string;
  errorCode: number | null;
}

export interface ReportPolicy {
  policyId: string;
  policyName: string;
  settings: ReportSetting[];
}

/** Every report row of one device, per policy (in the order the report gave them). */
export interface ReportDevice {
  deviceId: string;
  deviceName: string;
  upn: string;
  os: string;
  policies: ReportPolicy[];
}

export interface ReportTally {
  pages: number;
  rows: number;
  /** Rows without a device or policy id (cannot be keyed; left out). */
  unkeyedRows: number;
  /** TotalRowCount of the last page (null when Graph did not say). */
  total: number | null;
}

export function emptyReportTally(): ReportTally {
  return { pages: 0, rows: 0, unkeyedRows: 0, total: null };
}

export interface ReportReadOptions {
  graph: Pick<GraphClient, 'post'>;
  /** Report `filter` (e.g. one PolicyId), or undefined for the whole report. */
  filter?: string;
  /** Rows per call (default and maximum 1 000). */
  top?: number;
  signal?: AbortSignal;
  stats?: StatsSink;
  tally: ReportTally;
  onPage?: (page: number) => void;
}

const STATUS_NAMES = new Map(V1_ENUMS.complianceStatus.map((m) => [m.value, m.name]));

/** complianceStatus value → name (a name stays as it is; unknown numbers become "unknown"). */
export function statusName(v: unknown): string {
  if (typeof v === 'number') return STATUS_NAMES.get(v) ?? 'unknown';
  if (typeof v === 'string' && v.trim()) {
    const n = Number(v);
    if (Number.isInteger(n) && String(n) === v.trim()) return STATUS_NAMES.get(n) ?? 'unknown';
    return v.trim();
  }
  return 'unknown';
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

function int(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() && Number.isFinite(Number(v))) return Number(v);
  return null;
}

export interface ReportRow {
  deviceId: string;
  deviceName: string;
  upn: string;
  os: string;
  policyId: string;
  policyName: string;
  setting: ReportSetting;
}

/** One report answer → rows. Throws a GraphRequestError('invalidResponse') for a body of another shape. */
export function parseReportPage(body: unknown): { total: number | null; rows: ReportRow[]; unkeyed: number } {
  const b = body as { TotalRowCount?: unknown; Schema?: unknown; Values?: unknown } | undefined;
  if (!b || typeof b !== 'object' || !Array.isArray(b.Schema) || !Array.isArray(b.Values)) {
    throw new GraphRequestError('Microsoft Graph answered the non-compliance report without "Schema" and "Values"', { code: 'invalidResponse' });
  }
  const col = new Map<string, number>();
  (b.Schema as Array<{ Column?: unknown }>).forEach((c, k) => {
    if (c && typeof c.Column === 'string') col.set(c.Column, k);
  });
  for (const need of ['DeviceId', 'PolicyId']) {
    if (!col.has(need)) throw new GraphRequestError(`The non-compliance report has no ${need} column`, { code: 'invalidResponse' });
  }
  const at = (row: unknown[], name: string) => (col.has(name) ? row[col.get(name)!] : undefined);
  const rows: ReportRow[] = [];
  let unkeyed = 0;
  for (const raw of b.Values as unknown[]) {
    if (!Array.isArray(raw)) {
      unkeyed++;
      continue;
    }
    const deviceId = text(at(raw, 'DeviceId')).trim();
    const policyId = text(at(raw, 'PolicyId')).trim();
    if (!deviceId || !policyId) {
      unkeyed++;
      continue;
    }
    const setting = text(at(raw, 'SettingName'));
    rows.push({
      deviceId,
      deviceName: text(at(raw, 'DeviceName')),
      upn: text(at(raw, 'UPN')),
      os: text(at(raw, 'OS')),
      policyId,
      policyName: text(at(raw, 'PolicyName')),
      setting: { setting, name: text(at(raw, 'SettingNm')) || setting, state: statusName(at(raw, 'SettingStatus')), errorCode: int(at(raw, 'ErrorCode')) },
    });
  }
  const total = int(b.TotalRowCount);
  return { total, rows, unkeyed };
}

/** Groups rows into devices as they stream by; a device is complete when the next one starts. */
export class DeviceGrouper {
  private current?: ReportDevice;
  private policies = new Map<string, ReportPolicy>();

  /** Adds rows; returns the devices they completed. */
  add(rows: readonly ReportRow[]): ReportDevice[] {
    const done: ReportDevice[] = [];
    for (const r of rows) {
      if (!this.current || this.current.deviceId !== r.deviceId) {
        if (this.current) done.push(this.current);
        this.current = { deviceId: r.deviceId, deviceName: r.deviceName, upn: r.upn, os: r.os, policies: [] };
        this.policies = new Map();
      }
      let p = this.policies.get(r.policyId);
      if (!p) {
        p = { policyId: r.policyId, policyName: r.policyName, settings: [] };
        this.policies.set(r.policyId, p);
        this.current.policies.push(p);
      }
      if (!p.policyName && r.policyName) p.policyName = r.policyName;
      p.settings.push(r.setting);
    }
    return done;
  }

  /** The device still held (end of the report). */
  flush(): ReportDevice[] {
    const d = this.current;
    this.current = undefined;
    this.policies = new Map();
    return d ? [d] : [];
  }
}


/**
 * Yields, per report page, the devices completed by it (the last device of
 * the report comes with the last page). Stops on a short page, at
 * TotalRowCount, or on an empty page.
 */
export async function* readNoncompliantReport(o: ReportReadOptions): AsyncGenerator<{ page: number; devices: ReportDevice[] }> {
  const top = Math.max(1, Math.min(REPORT_MAX_TOP, Math.floor(o.top ?? REPORT_MAX_TOP)));
  const grouper = new DeviceGrouper();
  let skip = 0;
  let page = 0;
  let lastSig = '';
  for (;;) {
    const body: Record<string, unknown> = { select: [...REPORT_SELECT], orderBy: ['DeviceId'], skip, top };
    if (o.filter) body.filter = o.filter;
    const answer = await o.graph.post<unknown>(REPORT_PATH, body, { version: 'v1.0', bucket: 'compliance', readOnly: true, signal: o.signal, stats: o.stats });
    page++;
    o.onPage?.(page);
    const { total, rows, unkeyed } = parseReportPage(answer);
    const t = o.tally;
    t.pages = page;
    t.total = total;
    t.rows += rows.length + unkeyed;
    t.unkeyedRows += unkeyed;
    const got = rows.length + unkeyed;
    skip += got;
    const end = got < top || got === 0 || (total !== null && skip >= total);
    // A report that ignores `skip` gives the same page again: stop instead of reading forever.
    const sig = rows.length ? JSON.stringify([rows[0], rows[rows.length - 1]]) : '';
    if (!end && (sig === lastSig || page >= (total !== null ? Math.ceil(total / top) + 2 : MAX_PAGES))) {
      throw new GraphRequestError(`The non-compliance report kept returning full pages (${page} pages of ${top} rows, skip ${skip - got}); stopped to avoid an endless loop`, {
        code: 'reportLoop',
      });
    }
    lastSig = sig;
    const devices = grouper.add(rows);
    if (end) {
      devices.push(...grouper.flush());
      yield { page, devices };
      return;
    }
    yield { page, devices };
  }
}
