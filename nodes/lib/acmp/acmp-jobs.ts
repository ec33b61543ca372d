/**
 * ACMP query-action jobs ↔ the action contract (DESIGN.md "Action request"
 * and "Action result").
 *
 * - `jobToRequest` turns an `<ActionJob>` into an action request for
 *   `intune-action`, with `jobId` (ACMP's job id: the executor's replay
 *   protection keys on it) and `requestedBy` (server and ACMP user). A job
 *   that cannot be executed as it stands is refused with a JobProblem (the
 *   source answers it as failed, with the reason, and executes nothing):
 *   no clients, a client without a valid Intune device id, a notification
 *   without title or body, a retire or wipe without the operator's
 *   confirmation, options that belong to another action.
 * - `statusFromResult` turns the executor's result into the job status ACMP's
 *   Job Monitor shows: finished when Intune accepted the action for every
 *   device, failed with the reason otherwise (partial when some were).
 * - `jobStatusMessage` and `statusRoute` say what is sent back for a job,
 *   and where: both ACMP nodes answer jobs (the source refuses, the sink
 *   reports results) the same way.
 */
import type { ActionName, ActionOutcome, ActionRequest } from '../contracts';
import { isGuid } from '../shared/validation';
import { header, type ActionJobMessage, type JobClient, type JobClientStatus, type JobState, type JobStatusMessage, type WireFormat } from './acmp-wire';

export class JobProblem extends Error {
  override name = 'JobProblem';
  constructor(
    readonly code: 'noClients' | 'badDeviceId' | 'textMissing' | 'confirmMissing' | 'wrongOptions',
    message: string,
  ) {
    super(message);
  }
}

/** What travels with the request (as msg.acmp) so the status can be sent back to the right server. */
export interface AcmpJobContext {
  serverId: string;
  jobId: string;
  action: ActionName;
  clients: JobClient[];
  receivedAt: string;
  /** Where the job wants its status (the Callback_* it was published with), when it named a place. */
  callback?: { virtualRouter: string; routingKey: string };
  /** The wire format the job came in: its status is written in the same. */
  format?: WireFormat;
}

const DESTRUCTIVE: readonly ActionName[] = ['retire', 'wipe'];
const MAX_REQUESTED_BY = 256;

export function jobToRequest(job: ActionJobMessage, serverId: string, now = new Date(), callback?: { virtualRouter: string; routingKey: string }): { request: ActionRequest; context: AcmpJobContext } {
  if (!job.clients.length) throw new JobProblem('noClients', 'The job lists no client');
  const ids: string[] = [];
  const seen = new Set<string>();
  for (const c of job.clients) {
    const id: string = c.intuneId.trim();
    if (!isGuid(id)) {
      throw new JobProblem('badDeviceId', `Client ${c.acmpClientId ?? c.name ?? '?'} has no valid Intune device id ("${String(c.intuneId).trim().slice(0, 60)}"): only clients inventoried from Intune can get Intune actions`);
    }
    const key = id.toLowerCase();
    if (seen.has(key)) continue; // the same device selected twice is one device
    seen.add(key);
    ids.push(id);
  }
  if (job.action === 'notify') {
    const n = job.notification;
    if (!n || !n.title.trim() || !n.body.trim()) throw new JobProblem('textMissing', 'A notification needs a title and a body text');
  } else if (job.notification) {
    throw new JobProblem('wrongOptions', `A notification text belongs to the notification action, not to ${job.action}`);
  }
  if (job.wipe && job.action !== 'wipe') throw new JobProblem('wrongOptions', `Wipe options belong to the wipe action, not to ${job.action}`);
  if (DESTRUCTIVE.includes(job.action) && !job.confirmed) {
    throw new JobProblem(
      'confirmMissing',
      `${job.action === 'wipe' ? 'A wipe' : 'A retire'} needs the operator's confirmation (confirmed="true" in the job); nothing was executed`,
    );
  }
  const by = `ACMP ${serverId}: ${job.requestedBy?.trim() || 'unknown user'}`.slice(0, MAX_REQUESTED_BY);
  const request: ActionRequest = {
    action: job.action,
    deviceIds: ids,
    ...(job.action === 'notify' && job.notification ? { notification: { title: job.notification.title, body: job.notification.body } } : {}),
    ...(job.action === 'wipe' && job.wipe ? { wipe: { ...job.wipe } } : {}),
    ...(DESTRUCTIVE.includes(job.action) ? { confirm: true } : {}),
    jobId: job.jobId,
    requestedBy: by,
  };
  return {
    request,
    context: { serverId, jobId: job.jobId, action: job.action, clients: job.clients, receivedAt: now.toISOString(), ...(callback ? { callback } : {}), ...(job.header.format ? { format: job.header.format } : {}) },
  };
}

/** The part of an action result (contract ActionResult, or the executor's report) a status is made from. */
export interface ResultLike {
  jobId: string;
  action?: ActionName | null;
  status: 'finished' | 'partial' | 'failed' | 'rejected';
  results: Array<{ deviceId: string; outcome: ActionOutcome; httpStatus?: number; error?: string }>;
  error?: string;
  dryRun?: boolean;
}

/** An action result (of intune-action) in a message: what intune-acmp answers a job with. */
export function isActionResult(v: unknown): v is ResultLike {
  const r = v as ResultLike;
  return !!r && typeof r === 'object' && typeof r.jobId === 'string' && typeof r.status === 'string' && Array.isArray(r.results);
}

export interface JobStatusParts {
  jobId: string;
  action?: ActionName;
  state: JobState;
  reason?: string;
  clients: JobClientStatus[];
}

function clientIdOf(clients: JobClient[] | undefined, intuneId: string): string | undefined {
  const c = clients?.find((x) => x.intuneId.toLowerCase() === intuneId.toLowerCase());
  return c?.acmpClientId;
}

const OUTCOME_TEXT: Record<ActionOutcome, string> = {
  accepted: 'accepted by Intune',
  failed: 'Intune did not accept the action',
  notFound: 'the device is not in Intune (any more)',
  unsupported: 'the device does not support this action',
  rejected: 'refused before anything was sent',
};

/** Job status for an action result. A dry run is never reported as finished: nothing was executed. */
export function statusFromResult(r: ResultLike, clients?: JobClient[]): JobStatusParts {
  const state: JobState = r.dryRun ? 'failed' : r.status === 'finished' ? 'finished' : r.status === 'partial' ? 'partial' : 'failed';
  const out: JobClientStatus[] = r.results.map((x) => {
    const acmpClientId = clientIdOf(clients, x.deviceId);
    const ok = x.outcome === 'accepted' && !r.dryRun;
    const error = ok ? undefined : r.dryRun ? 'dry run: nothing was sent to Intune' : x.error ?? OUTCOME_TEXT[x.outcome];
    return { intuneId: x.deviceId, ...(acmpClientId ? { acmpClientId } : {}), state: ok ? 'finished' : 'failed', outcome: x.outcome, ...(error ? { error } : {}) };
  });
  // A request refused as a whole may list no devices: every selected client failed for the same reason.
  if (!out.length && clients?.length) {
    for (const c of clients) out.push({ intuneId: c.intuneId, ...(c.acmpClientId ? { acmpClientId: c.acmpClientId } : {}), state: 'failed', outcome: 'rejected', ...(r.error ? { error: r.error } : {}) });
  }
  let reason: string | undefined;
  if (r.dryRun) reason = 'The action node is in dry-run mode: nothing was sent to Intune';
  else if (state !== 'finished') {
    const bad = out.filter((c) => c.state === 'failed');
    reason = r.error ?? (bad.length ? `${bad.length} of ${out.length} device(s) failed: ${bad[0].error ?? bad[0].outcome}` : 'The action failed');
  }
  return { jobId: r.jobId, ...(r.action ? { action: r.action } : {}), state, ...(reason ? { reason } : {}), clients: out };
}

/** Job status for a job that was refused before execution. */
export function failedStatus(jobId: string, reason: string, clients: JobClient[] = [], action?: ActionName): JobStatusParts {
  return {
    jobId,
    ...(action ? { action } : {}),
    state: 'failed',
    reason,
    clients: clients.map((c) => ({ intuneId: c.intuneId, ...(c.acmpClientId ? { acmpClientId: c.acmpClientId } : {}), state: 'failed' as const, outcome: 'rejected' as const, error: reason })),
  };
}

/** The job-status message for `parts`, finished at `finishedAt`. */
export function jobStatusMessage(parts: JobStatusParts, finishedAt = new Date()): JobStatusMessage {
  return {
    kind: 'jobStatus',
    header: header(),
    jobId: parts.jobId,
    ...(parts.action ? { action: parts.action } : {}),
    state: parts.state,
    finishedAt: finishedAt.toISOString(),
    ...(parts.reason ? { reason: parts.reason } : {}),
    clients: parts.clients,
  };
}

/**
 * Where a job's status goes: the place the job named (the Callback_* it was published with,
 * carried as `callback`), through the server's SICS; else the server's own routing key.
 * A callback without both names is no place.
 */
export function statusRoute<S extends { virtualRouter: string; routingKey: string }>(server: S, callback: unknown): S {
  const cb = callback as { virtualRouter?: unknown; routingKey?: unknown } | null | undefined;
  return cb && typeof cb.virtualRouter === 'string' && cb.virtualRouter && typeof cb.routingKey === 'string' && cb.routingKey
    ? { ...server, virtualRouter: cb.virtualRouter, routingKey: cb.routingKey }
    : server;
}
