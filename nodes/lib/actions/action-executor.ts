/**
 * Carries out a checked action request against Microsoft Graph and reports
 * per device (DESIGN.md "Action result").
 *
 *   notify → POST /beta/deviceManagement/managedDevices/{id}/sendCustomNotificationToCompanyPortal
 *            {notificationTitle, notificationBody}   (beta only)
 *   retire → POST /v1.0/…/managedDevices/{id}/retire       {}
 *   wipe   → POST /v1.0/…/managedDevices/{id}/wipe         {keepEnrollmentData?, keepUserData?,
 *                                                           macOsUnlockCode?, persistEsimDataPlan?}
 *   lock   → POST /v1.0/…/managedDevices/{id}/remoteLock   {}
 *   sync   → POST /v1.0/…/managedDevices/{id}/syncDevice   {}
 * Each answers 204 without a body. The `{}` is not optional: in a $batch, Graph
 * refuses the whole batch when a POST item has no body.
 *
 * Steps:
 * 1. notify: devices that had 10 notifications in the last hour are refused
 *    (`rejected`) without a Graph call.
 * 2. notify, retire and wipe: the devices are read first (GETs in $batch):
 *    unknown ids end as `notFound`; notifications go only to iOS/iPadOS and
 *    Android Enterprise personally-owned work profile devices, the others
 *    are `unsupported`; a retire or wipe already pending in Intune is not
 *    sent a second time (`accepted`, note `alreadyPending`). Lock and sync
 *    are sent straight away (a 404 then means `notFound`).
 * 3. The writes go out in $batch slices through the shared Graph client,
 *    which paces them under the Intune write limit and retries only the
 *    inner requests that were throttled. A request still throttled after
 *    that ends as `failed` with HTTP 429: Intune did not carry it out.
 * 4. Optionally, the accepted devices are read again every interval until
 *    Intune's deviceActionResults show the action as done, failed, not
 *    supported or canceled, or the timeout passes.
 *
 * Aborting (the node is closing) stops at once: nothing more is written,
 * and the report says which devices were left unsent or in flight.
 */
import type { ActionDeviceResult, ActionName, ActionOutcome, ActionResult } from '../contracts';
import type { BatchRequest, BatchResult, CallOptions, StatsSink } from '../graph/graph-client';
import type { CheckedRequest, RequestEcho, WipeOptions } from './action-request';
import { sleep } from '../shared/abort';

/** The one Graph call this module needs. */
export interface BatchClient {
  batch(requests: BatchRequest[], o?: CallOptions): Promise<Map<string, BatchResult>>;
}

/** Intune's actionName in deviceActionResults, and the Graph action, per request action. */
export const GRAPH_ACTION: Record<ActionName, string> = {
  notify: 'sendCustomNotificationToCompanyPortal',
  retire: 'retire',
  wipe: 'wipe',
  lock: 'remoteLock',
  sync: 'syncDevice',
};

/** Graph version per action: the custom notification exists only in beta. */
export function versionOf(action: ActionName): 'v1.0' | 'beta' {
  return action === 'notify' ? 'beta' : 'v1.0';
}

/** Final actionState values of Intune's deviceActionResults. */
const FINAL_STATES = new Set(['done', 'failed', 'notSupported', 'canceled']);

export type DeviceResult = ActionDeviceResult;
export type PlannedRequest = NonNullable<ActionDeviceResult['request']>;

export type OverallStatus = 'finished' | 'partial' | 'failed' | 'rejected';

/** The result message payload: the contract's ActionResult with the fields intune-action always fills. */
export interface ActionReport extends ActionResult {
  results: DeviceResult[];
  requestedBy: string | null;
  counts: Record<ActionOutcome, number>;
  startedAt: string;
  finishedAt: string;
}

export interface Progress {
  phase: 'checking' | 'sending' | 'following';
  /** Devices whose outcome (or, while following, final state) is known. */
  done: number;
  total: number;
}

export interface NotificationLedger {
  /** Devices that may not get another notification yet, with the time (ms) from which they may. */
  notificationsExhausted(deviceIds: readonly string[]): Promise<Map<string, number>>;
  recordNotifications(deviceIds: readonly string[]): Promise<void>;
}

export interface ExecuteOptions {
  graph: BatchClient;
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Follow the action state of the accepted devices (not for notify: Intune does not track notifications). */
  followUp?: { timeoutMs: number; intervalMs: number } | null;
  notifications?: NotificationLedger;
  /** Called once, right before the first write to Intune (the journal's "started"). */
  beforeWrite?: () => Promise<void>;
  onProgress?: (p: Progress) => void;
  /** Called once per device when its outcome is final (after the follow-up when there is one). */
  onDevice?: (r: DeviceResult) => void;
  /** Devices per $batch() call between progress reports (default 80 = 4 parallel $batch requests of 20). */
  sliceSize?: number;
  now?: () => number;
}

const OUTCOMES: ActionOutcome[] = ['accepted', 'failed', 'notFound', 'unsupported', 'rejected'];

export function countOutcomes(results: readonly DeviceResult[]): Record<ActionOutcome, number> {
  const c = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<ActionOutcome, number>;
  for (const r of results) c[r.outcome]++;
  return c;
}

/** finished: every device accepted; failed: none; partial: some. All refused by a guard: rejected. */
export function overallStatus(results: readonly DeviceResult[]): OverallStatus {
  const c = countOutcomes(results);
  if (results.length && c.accepted === results.length) return 'finished';
  if (c.accepted > 0) return 'partial';
  if (results.length && c.rejected === results.length) return 'rejected';
  return 'failed';
}

function devicePath(id: string): string {
  return `/deviceManagement/managedDevices/${encodeURIComponent(id)}`;
}

/**
 * The JSON body of the action. Never absent: inside a $batch, Graph refuses the whole batch when a POST
 * item has no body, so an action without parameters (retire, remoteLock, syncDevice, a wipe without
 * options) sends `{}` (docs/graph-facts.md).
 */
function actionBody(req: CheckedRequest): Record<string, unknown> {
  if (req.action === 'notify' && req.notification) {
    return { notificationTitle: req.notification.title, notificationBody: req.notification.body };
  }
  if (req.action === 'wipe') {
    const w: WipeOptions = req.wipe ?? {};
    const body: Record<string, unknown> = {};
    for (const k of ['keepEnrollmentData', 'keepUserData', 'macOsUnlockCode', 'persistEsimDataPlan'] as const) {
      if (w[k] !== undefined) body[k] = w[k];
    }
    return body;
  }
  return {};
}

/** What would be sent for one device, with the macOS unlock code masked (for dry runs and logs). */
export function plannedRequest(req: CheckedRequest, deviceId: string): PlannedRequest {
  const body = actionBody(req);
  const out: PlannedRequest = { method: 'POST', url: `/${versionOf(req.action)}${devicePath(deviceId)}/${GRAPH_ACTION[req.action]}` };
  out.body = body.macOsUnlockCode !== undefined ? { ...body, macOsUnlockCode: '******' } : body;
  return out;
}

/** The plain error text of a Graph answer (Intune wraps its own JSON into error.message). */
export function graphErrorText(item: BatchResult | undefined): string | undefined {
  const err = (item?.body as { error?: { code?: string; message?: string } } | undefined)?.error;
  if (!err) return undefined;
  let msg = typeof err.message === 'string' ? err.message : '';
  if (msg.startsWith('{')) {
    try {
      const inner = JSON.parse(msg) as { Message?: string };
      if (typeof inner.Message === 'string') msg = inner.Message;
    } catch {
      /* not Intune's wrapper */
    }
  }
  // Intune appends support ids and its internal URL: not for people.
  msg = msg.replace(/\s+-\s+Operation ID \(for customer support\):[\s\S]*$/, '').trim();
  const text = [err.code, msg].filter(Boolean).join(': ');
  return text ? text.slice(0, 300) : undefined;
}

function failureText(action: ActionName, item: BatchResult | undefined, phase: 'send' | 'check'): string {
  const status = item?.status ?? 0;
  const graph = graphErrorText(item);
  const suffix = graph ? ` (${graph})` : '';
  const notSent = phase === 'check' ? '; nothing was sent to it' : '';
  if (status === 0) {
    return phase === 'check'
      ? `Microsoft Graph gave no answer when the device was checked${suffix}; nothing was sent to it`
      : `Microsoft Graph gave no answer${suffix}; the action may or may not have been carried out – check the device in Intune before sending it again`;
  }
  if (status === 429) {
    return `Intune kept throttling the request${phase === 'check' ? ' to check the device' : ''} (HTTP 429); it was not carried out – send it again later`;
  }
  if (status === 403) {
    const perm = action === 'notify' ? 'DeviceManagementManagedDevices.ReadWrite.All' : 'DeviceManagementManagedDevices.PrivilegedOperations.All';
    return phase === 'check'
      ? `Intune refused to read the device (HTTP 403): grant DeviceManagementManagedDevices.Read.All (application permission) and admin consent${notSent}`
      : `Intune refused the action (HTTP 403): grant ${perm} (application permission) and admin consent${suffix}`;
  }
  if (status === 504) return `Microsoft Graph timed out (HTTP 504)${suffix}; the action may or may not have been carried out – check the device in Intune before sending it again`;
  return `Intune answered HTTP ${status}${suffix}${notSent}`;
}

/** Can Intune deliver a Company Portal notification to this device? */
export function notificationSupported(dev: Record<string, unknown>): boolean {
  const os = String(dev.operatingSystem ?? '').toLowerCase();
  if (os === 'ios' || os === 'ipados') return true;
  if (os !== 'android') return false;
  // Android Enterprise personally-owned work profile: deviceType androidForWork (beta), not a
  // corporate-owned, fully managed or dedicated enrolment.
  const type = String(dev.deviceType ?? '');
  const enrolment = String(dev.deviceEnrollmentType ?? '');
  if (['androidEnterpriseCorporateWorkProfile', 'androidEnterpriseFullyManaged', 'androidEnterpriseDedicatedDevice'].includes(enrolment)) return false;
  return type === 'androidForWork';
}

const PENDING_STATE: Partial<Record<ActionName, string[]>> = {
  retire: ['retirePending', 'retireIssued'],
  wipe: ['wipePending', 'wipeIssued'],
};

const CHECK_SELECT: Partial<Record<ActionName, string>> = {
  notify: 'id,operatingSystem,deviceType,deviceEnrollmentType',
  retire: 'id,managementState',
  wipe: 'id,managementState',
};

function isAbort(e: unknown): boolean {
  return !!e && typeof e === 'object' && (e as { name?: unknown }).name === 'AbortError';
}

function hhmm(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16) + ' UTC';
}

/** The report for a dry run: every device that passed the guards, with the request it would get. Sends nothing. */
export function dryRunReport(req: CheckedRequest, startedAt: number, now: number): ActionReport {
  const results: DeviceResult[] = req.deviceIds.map((deviceId) => ({ deviceId, outcome: 'accepted', request: plannedRequest(req, deviceId) }));
  return {
    jobId: req.jobId,
    action: req.action,
    status: overallStatus(results),
    results,
    requestedBy: req.requestedBy,
    counts: countOutcomes(results),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(now).toISOString(),
    dryRun: true,
  };
}

/** The report for a request refused as a whole: every device it named is `rejected` with the reason. */
export function rejectedReport(echo: RequestEcho, err: { message: string; code?: string }, startedAt: number, now: number): ActionReport {
  const results: DeviceResult[] = echo.deviceIds.map((deviceId) => ({ deviceId, outcome: 'rejected', error: err.message }));
  return {
    jobId: echo.jobId,
    action: echo.action,
    status: 'rejected',
    results,
    requestedBy: echo.requestedBy,
    counts: countOutcomes(results),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(now).toISOString(),
    error: err.message,
    ...(err.code ? { code: err.code } : {}),
  };
}

/** The report when nothing could be sent at all (e.g. the connection is not configured). */
export function failedReport(req: CheckedRequest, message: string, startedAt: number, now: number): ActionReport {
  const results: DeviceResult[] = req.deviceIds.map((deviceId) => ({ deviceId, outcome: 'failed', error: message }));
  return {
    jobId: req.jobId,
    action: req.action,
    status: 'failed',
    results,
    requestedBy: req.requestedBy,
    counts: countOutcomes(results),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(now).toISOString(),
    error: message,
  };
}

/** Runs the request. Resolves with the report, also when stopped half-way (`aborted: true`). */
export async function executeAction(req: CheckedRequest, o: ExecuteOptions): Promise<ActionReport> {
  const now = o.now ?? Date.now;
  const started = now();
  const slice = Math.max(1, Math.floor(o.sliceSize ?? 80));
  const total = req.deviceIds.length;
  const results = new Map<string, DeviceResult>();
  const settled = new Set<string>(); // devices whose onDevice has been called
  const sentAt = new Map<string, number>();
  let aborted = false;

  const progress = (phase: Progress['phase'], done: number) => o.onProgress?.({ phase, done, total });
  const settle = (r: DeviceResult, final = true) => {
    results.set(r.deviceId, r);
    if (final && !settled.has(r.deviceId)) {
      settled.add(r.deviceId);
      o.onDevice?.(r);
    }
  };
  const callOpts = (version: 'v1.0' | 'beta'): CallOptions => ({ version, bucket: 'devices', signal: o.signal, stats: o.stats });

  let pending = [...req.deviceIds];

  try {
    // 1. notification budget per device
    if (req.action === 'notify' && o.notifications) {
      const exhausted = await o.notifications.notificationsExhausted(pending);
      for (const [id, from] of exhausted) {
        settle({
          deviceId: id,
          outcome: 'rejected',
          error: `The device already got 10 notifications within the last hour (Intune's limit); the next one is possible from ${hhmm(from)}`,
        });
      }
      pending = pending.filter((id) => !exhausted.has(id));
    }

    // 2. check the devices first where it matters
    const select = CHECK_SELECT[req.action];
    if (select && pending.length) {
      progress('checking', results.size);
      const version = versionOf(req.action);
      const keep: string[] = [];
      for (let i = 0; i < pending.length; i += slice) {
        const part = pending.slice(i, i + slice);
        const answers = await o.graph.batch(
          part.map((id, k) => ({ id: String(k), method: 'GET', url: `${devicePath(id)}?$select=${select}` })),
          callOpts(version),
        );
        part.forEach((id, k) => {
          const a = answers.get(String(k));
          const status = a?.status ?? 0;
          if (status === 200 && a?.body && typeof a.body === 'object') {
            const dev = a.body as Record<string, unknown>;
            if (req.action === 'notify' && !notificationSupported(dev)) {
              const os = String(dev.operatingSystem ?? 'unknown');
              settle({
                deviceId: id,
                outcome: 'unsupported',
                error: `Company Portal notifications reach only iOS/iPadOS and Android Enterprise personally-owned work profile devices; this device runs ${os}${os.toLowerCase() === 'android' ? ' with another kind of enrolment' : ''}; nothing was sent to it`,
              });
              return;
            }
            const pendingStates = PENDING_STATE[req.action];
            if (pendingStates && pendingStates.includes(String(dev.managementState))) {
              settle({ deviceId: id, outcome: 'accepted', note: 'alreadyPending', actionState: 'pending' });
              return;
            }
            keep.push(id);
          } else if (status === 404) {
            settle({ deviceId: id, outcome: 'notFound', httpStatus: 404, error: 'Intune has no managed device with this id; nothing was sent to it' });
          } else {
            settle({ deviceId: id, outcome: 'failed', httpStatus: status || undefined, error: failureText(req.action, a, 'check') });
          }
        });
        progress('checking', results.size);
      }
      pending = keep;
    }

    // 3. send
    if (pending.length) {
      await o.beforeWrite?.();
      const version = versionOf(req.action);
      const body = actionBody(req);
      const graphAction = GRAPH_ACTION[req.action];
      progress('sending', results.size);
      for (let i = 0; i < pending.length; i += slice) {
        const part = pending.slice(i, i + slice);
        const at = now();
        let answers: Map<string, BatchResult>;
        try {
          answers = await o.graph.batch(
            part.map((id, k) => ({ id: String(k), method: 'POST', url: `${devicePath(id)}/${graphAction}`, body })),
            callOpts(version),
          );
        } catch (e) {
          if (!isAbort(e)) throw e;
          aborted = true;
          for (const id of part) {
            settle({ deviceId: id, outcome: 'failed', error: 'Stopped while the request was on its way to Intune (the node was stopped); the outcome is unknown – check the device in Intune' });
          }
          for (const id of pending.slice(i + slice)) {
            settle({ deviceId: id, outcome: 'failed', error: 'Not sent: the node was stopped before this device was reached' });
          }
          break;
        }
        const notified: string[] = [];
        part.forEach((id, k) => {
          const a = answers.get(String(k));
          const status = a?.status ?? 0;
          if (status >= 200 && status < 300) {
            sentAt.set(id, at);
            if (req.action === 'notify') notified.push(id);
            // with a follow-up, the device is final only once its state is known
            settle({ deviceId: id, outcome: 'accepted', httpStatus: status }, !o.followUp || req.action === 'notify');
          } else if (status === 404) {
            settle({ deviceId: id, outcome: 'notFound', httpStatus: 404, error: 'Intune has no managed device with this id' });
          } else if (status === 400 && /support/i.test(graphErrorText(a) ?? '')) {
            settle({ deviceId: id, outcome: 'unsupported', httpStatus: 400, error: `Intune does not support this action on the device: ${graphErrorText(a)}` });
          } else {
            settle({ deviceId: id, outcome: 'failed', httpStatus: status || undefined, error: failureText(req.action, a, 'send') });
          }
        });
        if (notified.length && o.notifications) await o.notifications.recordNotifications(notified);
        progress('sending', results.size);
        if (o.signal?.aborted) {
          aborted = true;
          for (const id of pending.slice(i + slice)) {
            settle({ deviceId: id, outcome: 'failed', error: 'Not sent: the node was stopped before this device was reached' });
          }
          break;
        }
      }
    }

    // 4. follow up
    let followUp: ActionReport['followUp'];
    if (o.followUp && req.action !== 'notify' && !aborted) {
      const watch = [...sentAt.keys()];
      const r = await follow(req.action, watch, sentAt, results, o, settle, (done) => o.onProgress?.({ phase: 'following', done, total: watch.length }));
      aborted = r.aborted;
      followUp = { timeoutSec: Math.round(o.followUp.timeoutMs / 1000), complete: r.complete, states: r.states };
    }

    // every device must be accounted for
    for (const id of req.deviceIds) {
      if (!results.has(id)) settle({ deviceId: id, outcome: 'failed', error: 'Not sent: the node was stopped before this device was reached' });
      else if (!settled.has(id)) settle(results.get(id)!);
    }
    const list = req.deviceIds.map((id) => results.get(id)!);
    return {
      jobId: req.jobId,
      action: req.action,
      status: overallStatus(list),
      results: list,
      requestedBy: req.requestedBy,
      counts: countOutcomes(list),
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(now()).toISOString(),
      ...(aborted ? { aborted: true } : {}),
      ...(followUp ? { followUp } : {}),
    };
  } catch (e) {
    if (!isAbort(e)) throw e;
    // stopped before anything was written (while checking)
    for (const id of req.deviceIds) {
      if (!results.has(id)) settle({ deviceId: id, outcome: 'failed', error: 'Not sent: the node was stopped before this device was reached' });
    }
    const list = req.deviceIds.map((id) => results.get(id)!);
    return {
      jobId: req.jobId,
      action: req.action,
      status: overallStatus(list),
      results: list,
      requestedBy: req.requestedBy,
      counts: countOutcomes(list),
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(now()).toISOString(),
      aborted: true,
    };
  }
}

interface ActionResultEntry {
  actionName?: string;
  actionState?: string;
  startDateTime?: string;
  lastUpdatedDateTime?: string;
}

/** Intune's clock and ours may differ a little: an entry that started up to this much before we sent it counts. */
const CLOCK_SKEW_MS = 120_000;

async function follow(
  action: ActionName,
  watch: string[],
  sentAt: Map<string, number>,
  results: Map<string, DeviceResult>,
  o: ExecuteOptions,
  settle: (r: DeviceResult, final?: boolean) => void,
  progress: (done: number) => void,
): Promise<{ complete: boolean; aborted: boolean; states: Record<string, number> }> {
  const now = o.now ?? Date.now;
  const cfg = o.followUp!;
  const deadline = now() + cfg.timeoutMs;
  const open = new Set(watch);
  const graphAction = GRAPH_ACTION[action].toLowerCase();
  const slice = Math.max(1, Math.floor(o.sliceSize ?? 80));
  let aborted = false;
  const finalCount = () => watch.length - open.size;

  const apply = (id: string, state: string, at: string | undefined, final: boolean, extra: Partial<DeviceResult> = {}) => {
    const prev = results.get(id)!;
    const r: DeviceResult = { ...prev, actionState: state, ...(at ? { actionStateAt: at } : {}), ...extra };
    if (final) {
      if (state === 'notSupported') {
        r.outcome = 'unsupported';
        r.error = 'Intune accepted the action, but reports that the device does not support it';
      } else if (state === 'failed') {
        r.outcome = 'failed';
        r.error = 'Intune accepted the action, but reports that it failed on the device';
      } else if (state === 'canceled') {
        r.outcome = 'failed';
        r.error = 'Intune accepted the action, but it was canceled before the device carried it out';
      }
      open.delete(id);
    }
    settle(r, final);
  };

  progress(0);
  try {
    while (open.size && now() < deadline) {
      await sleep(Math.min(cfg.intervalMs, Math.max(0, deadline - now())), o.signal);
      const ids = [...open];
      for (let i = 0; i < ids.length; i += slice) {
        const part = ids.slice(i, i + slice);
        const answers = await o.graph.batch(
          part.map((id, k) => ({ id: String(k), method: 'GET', url: `${devicePath(id)}?$select=id,managementState,deviceActionResults` })),
          { version: 'v1.0', bucket: 'devices', signal: o.signal, stats: o.stats },
        );
        part.forEach((id, k) => {
          const a = answers.get(String(k));
          if (a?.status === 404) {
            if (action === 'retire' || action === 'wipe') apply(id, 'done', undefined, true, { note: 'deviceRemoved' });
            else apply(id, 'unknown', undefined, true, { error: 'The device is no longer in Intune, so its action state cannot be followed' });
            return;
          }
          if (a?.status !== 200 || !a.body || typeof a.body !== 'object') return; // try again next round
          const list = ((a.body as { deviceActionResults?: unknown }).deviceActionResults ?? []) as ActionResultEntry[];
          const since = (sentAt.get(id) ?? 0) - CLOCK_SKEW_MS;
          const mine = (Array.isArray(list) ? list : [])
            .filter((e) => String(e?.actionName ?? '').toLowerCase() === graphAction && Date.parse(String(e.startDateTime ?? '')) >= since)
            .sort((x, y) => Date.parse(String(y.startDateTime)) - Date.parse(String(x.startDateTime)))[0];
          if (!mine) return;
          const state = String(mine.actionState ?? 'unknown');
          apply(id, state, mine.lastUpdatedDateTime, FINAL_STATES.has(state));
        });
        progress(finalCount());
      }
    }
  } catch (e) {
    if (!isAbort(e)) throw e;
    aborted = true;
  }
  for (const id of open) {
    const prev = results.get(id)!;
    settle({ ...prev, actionState: prev.actionState ?? 'pending', ...(aborted ? {} : { followUpTimedOut: true }) }, true);
  }
  const states: Record<string, number> = {};
  for (const id of watch) {
    const s = results.get(id)?.actionState ?? 'pending';
    states[s] = (states[s] ?? 0) + 1;
  }
  return { complete: open.size === 0, aborted, states };
}
