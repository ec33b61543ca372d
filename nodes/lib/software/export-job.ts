/**
 * Intune's report export (docs/graph-software.md): POST an export job for
 * the AppInvRawData report, then GET it until its status is `completed`
 * (and it carries the download `url`) or `failed`. A handful of requests for
 * a whole tenant, against one request per device for
 * managedDevices/{id}/detectedApps.
 */
import type { GraphClient, StatsSink } from '../graph/graph-client';
import type { GraphVersion } from '../graph/graph-schema';
import { GraphRequestError, throwIfAborted } from '../graph/graph-errors';
import { sleep } from '../shared/abort';
import { APP_REPORT_COLUMNS } from './app-rows';

export const EXPORT_JOBS_PATH = '/deviceManagement/reports/exportJobs';
export const APP_REPORT_NAME = 'AppInvRawData';

/** The fields of a deviceManagementExportJob we use. */
export interface ExportJob {
  id: string;
  reportName?: string;
  status: string;
  url: string | null;
  requestDateTime?: string;
  expirationDateTime?: string;
}

export interface PollOptions {
  /** First wait between status checks, ms (default 1 s); grows by half each time up to `maxPollMs`. */
  pollMs?: number;
  /** Longest wait between status checks (default 30 s). */
  maxPollMs?: number;
  /** Give up after this long (default 60 min): a job still not done by then is reported as failed. */
  maxWaitMs?: number;
}

export interface ExportJobOptions extends PollOptions {
  graph: Pick<GraphClient, 'get' | 'post'>;
  version: GraphVersion;
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Called after every status check (status dots). */
  onStatus?: (status: string, checks: number) => void;
}

export class ExportJobError extends Error {
  constructor(
    message: string,
    readonly code: 'jobFailed' | 'jobTimeout' | 'invalidJob',
  ) {
    super(message);
    this.name = 'ExportJobError';
  }
}

/** Requests made for the report: the job's creation and its status checks. */
export interface ExportJobResult {
  job: ExportJob;
  requests: number;
}

function asJob(body: unknown, what: string): ExportJob {
  // A GET by id answers the entity itself; the API page's sample wraps it in "value": accept both.
  const b = body as Record<string, unknown> | undefined;
  const j = (b && typeof b.value === 'object' && b.value !== null && !Array.isArray(b.value) ? b.value : b) as Partial<ExportJob> | undefined;
  if (!j || typeof j.id !== 'string' || !j.id || typeof j.status !== 'string') {
    throw new ExportJobError(`Microsoft Graph answered ${what} without an export job id and status`, 'invalidJob');
  }
  return { id: j.id, reportName: j.reportName, status: j.status, url: typeof j.url === 'string' && j.url ? j.url : null, requestDateTime: j.requestDateTime, expirationDateTime: j.expirationDateTime };
}

/** Creates the AppInvRawData export job and waits for it to complete. */
export async function runAppExportJob(o: ExportJobOptions): Promise<ExportJobResult> {
  const call = { version: o.version, bucket: 'compliance' as const, signal: o.signal, stats: o.stats };
  const created = await o.graph.post<unknown>(
    EXPORT_JOBS_PATH,
    { reportName: APP_REPORT_NAME, format: 'csv', localizationType: 'replaceLocalizableValues', select: [...APP_REPORT_COLUMNS] },
    call,
  );
  let requests = 1;
  let job = asJob(created, `POST ${EXPORT_JOBS_PATH}`);
  let wait = Math.max(1, o.pollMs ?? 1000);
  const maxPoll = Math.max(wait, o.maxPollMs ?? 30_000);
  const deadline = Date.now() + (o.maxWaitMs ?? 60 * 60_000);
  let checks = 0;
  for (;;) {
    if (job.status === 'completed') {
      if (!job.url) throw new ExportJobError(`The export job ${job.id} completed without a download link`, 'invalidJob');
      return { job, requests };
    }
    if (job.status === 'failed') throw new ExportJobError(`Intune could not build the discovered-apps report (export job ${job.id} failed)`, 'jobFailed');
    if (Date.now() + wait > deadline) {
      throw new ExportJobError(`The discovered-apps report was not ready after ${Math.round((o.maxWaitMs ?? 3_600_000) / 60_000)} minutes (export job ${job.id} is ${job.status})`, 'jobTimeout');
    }
    await sleep(wait, o.signal);
    throwIfAborted(o.signal);
    wait = Math.min(maxPoll, Math.ceil(wait * 1.5));
    const path = `${EXPORT_JOBS_PATH}/${encodeURIComponent(job.id)}`;
    job = asJob(await o.graph.get<unknown>(path, call), `GET ${EXPORT_JOBS_PATH}/{id}`);
    requests++;
    o.onStatus?.(job.status, ++checks);
  }
}

/** True for Graph's answer to a token without the permission the export needs. */
export function isPermissionError(err: unknown): boolean {
  return err instanceof GraphRequestError && err.status === 403;
}
