/**
 * The software part of one device run or preview, as the device source uses
 * it: read the report before the devices (`start`), then attach or count per
 * page. A report that cannot be read does not stop the device run: its
 * devices go out without `software` (undefined: "not read in this run", so
 * sinks leave their software as it is), and the reason is said once.
 */
import type { Device } from '../contracts';
import { isAbortError } from '../graph/graph-errors';
import { DISCOVERED_APPS_ROLES } from '../intune/permissions';
import { ExportJobError, isPermissionError } from './export-job';
import { ReportDownloadError } from './report-download';
import { readDiscoveredApps, SoftwareTally, type SoftwareRead, type SoftwareReadOptions } from './software-source';


export interface SoftwareDetails {
  /** True when the report was read and every device passed on carries `software`. */
  read: boolean;
  distinctApps: number;
  installations: number;
  devicesWithoutApps: number;
  /** Graph requests for the report (job creation + status checks), included in the run's request count. */
  exportRequests: number;
  reportRows: number;
  reportBytes: number;
  error: string | null;
}

/** Plain words for why the report could not be read (never the download link). */
export function softwareProblem(err: unknown): string {
  if (isPermissionError(err)) {
    return `Graph refused to export the discovered-apps report (HTTP 403): grant ${DISCOVERED_APPS_ROLES[0]} (application permission, or ${DISCOVERED_APPS_ROLES.slice(1).join(' or ')}) with admin consent`;
  }
  if (err instanceof ExportJobError || err instanceof ReportDownloadError) return err.message;
  return `Reading the discovered-apps report failed: ${(err as Error)?.message ?? String(err)}`;
}

export class RunSoftware {
  private constructor(
    private readonly read: SoftwareRead | null,
    private readonly tally: SoftwareTally | null,
    readonly error: string | null,
    private readonly requests: number,
  ) {}

  /** Reads the report. Rejects only on abort; any other failure gives a RunSoftware that attaches nothing. */
  static async start(o: SoftwareReadOptions): Promise<RunSoftware> {
    const before = o.stats?.requests ?? 0;
    try {
      const read = await readDiscoveredApps(o);
      return new RunSoftware(read, new SoftwareTally(read.index), null, read.exportRequests);
    } catch (err) {
      if (isAbortError(err) || o.signal?.aborted) throw err;
      return new RunSoftware(null, null, softwareProblem(err), (o.stats?.requests ?? before) - before);
    }
  }

  /** Sets `software` on each device of a page (nothing when the report could not be read). */
  attach(devices: Device[]): void {
    this.tally?.attach(devices);
  }

  /** Counts a device's apps without building them (the preview). */
  count(deviceId: string): void {
    this.tally?.count(deviceId);
  }

  details(): SoftwareDetails {
    const s = this.tally?.summary();
    return {
      read: !!this.read,
      distinctApps: s?.distinctApps ?? 0,
      installations: s?.installations ?? 0,
      devicesWithoutApps: s?.devicesWithoutApps ?? 0,
      exportRequests: this.requests,
      reportRows: this.read?.rows ?? 0,
      reportBytes: this.read?.bytes ?? 0,
      error: this.error,
    };
  }
}
