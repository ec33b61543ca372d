/**
 * Message contracts shared by every node: the one place that says what a
 * sync run, a device, a compliance violation and an action look like, the
 * topics the sources send on, and the one check of a sync-run envelope
 * (`readSyncEnvelope`) that every consumer uses. Sinks and sources import
 * these; nothing else defines them.
 */
import { echo } from './shared/echo';

/** The topic of the page messages of a device sync run (intune-devices). */
export const TOPIC_DEVICES = 'intune/devices';
/** The topic of the page messages of a compliance run (intune-compliance). */
export const TOPIC_COMPLIANCE = 'intune/compliance';
export type SourceTopic = typeof TOPIC_DEVICES | typeof TOPIC_COMPLIANCE;

export type SyncMode = 'full' | 'incremental';

export interface RunStats {
  items: number;
  emitted: number;
  skipped: Record<string, number>;
  pages: number;
  requests: number;
  retries: number;
  throttled: number;
  throttleWaitMs: number;
  durationMs: number;
  aborted?: boolean;
  error?: string;
}

/** `msg.sync` of every page message of a run. */
export interface SyncEnvelope {
  runId: string;
  instance: string;
  mode: SyncMode;
  page: number;
  last: boolean;
  startedAt: string;
  stats?: RunStats;
  /**
   * Page 1 of a full device run that made the duplicate pass: the user
   * principal names (or, where a device has none, its user's e-mail address;
   * lower case, each once) of the primary users of every device that pass
   * read, whether or not the filters pass the device on: the address a device
   * passed on carries as `user.upn` or else `user.email`.
   * A sink that looks people up may ask for them ahead, in few requests
   * (the 4me sink does); others ignore it.
   */
  userPrincipalNames?: string[];
}

/** A `msg.sync` that is not a sync-run envelope; the message says which field is wrong and how. */
export class SyncEnvelopeError extends Error {
  override name = 'SyncEnvelopeError';
  constructor(
    message: string,
    /** The field at fault (`runId`, `mode`, …), or undefined when msg.sync is not an object at all. */
    readonly field?: keyof SyncEnvelope,
  ) {
    super(message);
  }
}

/**
 * The one check of `msg.sync`: returns the envelope with its fields in their
 * contract types, or throws SyncEnvelopeError naming the wrong field.
 * Required: runId (a non-empty string), mode ("full" or "incremental"), page
 * (a whole number from 1) and last (true or false). `instance` may be left
 * out (then "default") but must be a string when given; a missing
 * `startedAt` becomes now; `stats` is kept as given.
 */
export function readSyncEnvelope(value: unknown, now: () => number = Date.now): SyncEnvelope {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SyncEnvelopeError(`msg.sync must be the run envelope of an Intune source ({runId, instance, mode, page, last, …}), got ${echo(value)}`);
  }
  const e = value as Partial<Record<keyof SyncEnvelope, unknown>>;
  const bad = (field: keyof SyncEnvelope, what: string) => new SyncEnvelopeError(`msg.sync.${field} ${what}`, field);
  if (typeof e.runId !== 'string' || !e.runId) throw bad('runId', `is missing (got ${echo(e.runId)})`);
  if (e.instance !== undefined && typeof e.instance !== 'string') throw bad('instance', `must be a string (got ${echo(e.instance)})`);
  if (e.mode !== 'full' && e.mode !== 'incremental') throw bad('mode', `must be "full" or "incremental" (got ${echo(e.mode)})`);
  if (typeof e.page !== 'number' || !Number.isInteger(e.page) || e.page < 1) throw bad('page', `must be a whole number from 1 (got ${echo(e.page)})`);
  if (typeof e.last !== 'boolean') throw bad('last', `must be true or false (got ${echo(e.last)})`);
  if (e.startedAt !== undefined && typeof e.startedAt !== 'string') throw bad('startedAt', `must be an ISO date text (got ${echo(e.startedAt)})`);
  if (e.stats !== undefined && (e.stats === null || typeof e.stats !== 'object' || Array.isArray(e.stats))) throw bad('stats', `must be the run's statistics object (got ${echo(e.stats)})`);
  const upns = e.userPrincipalNames;
  if (upns !== undefined && (!Array.isArray(upns) || upns.some((u) => typeof u !== 'string'))) {
    throw bad('userPrincipalNames', `must be a list of user principal names (got ${Array.isArray(upns) ? `a list holding ${echo(upns.find((u) => typeof u !== 'string'))}` : echo(upns)})`);
  }
  const env: SyncEnvelope = {
    runId: e.runId,
    instance: e.instance || 'default',
    mode: e.mode,
    page: e.page,
    last: e.last,
    startedAt: e.startedAt ?? new Date(now()).toISOString(),
  };
  if (e.stats !== undefined) env.stats = e.stats as RunStats;
  if (upns !== undefined) env.userPrincipalNames = upns as string[];
  return env;
}

/** `msg.sync` as an envelope, or undefined when it is none (for flow control, which must not throw). */
export function syncEnvelopeIn(value: unknown): SyncEnvelope | undefined {
  try {
    return readSyncEnvelope(value);
  } catch {
    return undefined;
  }
}

/** A page message of a sync run (`msg.topic`, `msg.payload` = the page's items, `msg.sync`). */
export interface PageMessage<T> {
  topic: string;
  payload: T[];
  sync: SyncEnvelope;
}

export type RunResult = 'completed' | 'aborted' | 'failed';

export interface RunSummary {
  runId: string;
  instance: string;
  mode: SyncMode;
  /** What the run was asked to be (an incremental run without a watermark runs as full). */
  requestedMode: SyncMode;
  trigger: string;
  startedAt: string;
  finishedAt: string;
  result: RunResult;
  stats: RunStats;
  /** Source-specific extras (e.g. counts per platform). */
  details?: Record<string, unknown>;
}

export interface SummaryMessage {
  topic: string;
  payload: RunSummary;
}

export interface DeviceUser {
  id: string | null;
  upn: string | null;
  email: string | null;
  displayName: string | null;
}

export type Ownership = 'company' | 'personal' | 'unknown';
export type TriState = 'true' | 'false' | 'unknown';

/** A managed device, normalised from Graph's managedDevice. Names are ours and stable. */
export interface Device {
  id: string;
  azureAdDeviceId: string | null;
  name: string;
  serialNumber: string | null;
  rawSerialNumber: string | null;
  manufacturer: string | null;
  model: string | null;
  os: { name: string | null; version: string | null; sku: string | null };
  storage: { totalBytes: number | null; freeBytes: number | null };
  enrolledAt: string | null;
  lastContactAt: string | null;
  azureAdRegistered: boolean | null;
  joinType: string | null;
  ownership: Ownership;
  complianceState: string | null;
  encrypted: boolean | null;
  jailbroken: TriState;
  managementAgent: string | null;
  coManaged: boolean;
  managementState: string | null;
  user: DeviceUser | null;
  userDeleted: boolean;
  imei: string | null;
  meid: string | null;
  phoneNumber: string | null;
  wifiMac: string | null;
  deepLinks: { overview: string; compliance: string };
  /**
   * The apps Intune discovered on the device (its discovered-apps report),
   * present only when the device source reads software ("Discovered apps" on).
   * `undefined` = not read in this run: a sink must leave the device's software
   * as it is. `[]` = read, and Intune reports none: a sink removes what it had.
   * Sorted by name, then version, so equal lists compare equal.
   */
  software?: InstalledApp[];
}

/**
 * One discovered app on one device (a row of Intune's discovered-apps
 * report). `key` identifies the app title+version across devices (Intune's
 * ApplicationKey where the report has one, else derived from name, publisher,
 * version and platform); sinks use it as the software's idempotency key.
 */
export interface InstalledApp {
  key: string;
  name: string;
  version: string | null;
  publisher: string | null;
  platform: string | null;
  sizeBytes: number | null;
}

export interface ViolationSetting {
  name: string;
  state: string;
  currentValue: string | null;
  errorCode: number | null;
  errorDescription: string | null;
}

export interface ComplianceViolation {
  key: string; // `${deviceId}:${policyId}`
  device: { id: string; name: string; serialNumber: string | null; os: Device['os']; user: DeviceUser | null };
  policy: { id: string; name: string; platform: string };
  settings: ViolationSetting[];
  detectedAt: string | null;
  deepLink: string;
}

export type ActionName = 'notify' | 'retire' | 'wipe' | 'lock' | 'sync';

export interface ActionRequest {
  action: ActionName;
  deviceIds: string[];
  notification?: { title: string; body: string };
  wipe?: {
    keepEnrollmentData?: boolean;
    keepUserData?: boolean;
    macOsUnlockCode?: string;
    persistEsimDataPlan?: boolean;
  };
  confirm?: boolean;
  jobId?: string;
  requestedBy?: string;
}

export type ActionOutcome = 'accepted' | 'failed' | 'notFound' | 'unsupported' | 'rejected';

/** One device's part of an action result. */
export interface ActionDeviceResult {
  deviceId: string;
  outcome: ActionOutcome;
  httpStatus?: number;
  error?: string;
  /** `alreadyPending`: a retire/wipe already pending in Intune was not sent again. `deviceRemoved`: gone from Intune after retire/wipe. */
  note?: 'alreadyPending' | 'deviceRemoved';
  /** Follow-up: Intune's actionState (pending, active, done, failed, notSupported, canceled) as last seen. */
  actionState?: string;
  /** Follow-up: when Intune last updated the state. */
  actionStateAt?: string;
  /** Follow-up: the state was not final when the timeout passed. */
  followUpTimedOut?: boolean;
  /** Dry run: what would have been sent. */
  request?: { method: 'POST'; url: string; body?: Record<string, unknown> };
}

export interface ActionResult {
  jobId: string;
  /** null only when a rejected request named no valid action. */
  action: ActionName | null;
  status: 'finished' | 'partial' | 'failed' | 'rejected';
  results: ActionDeviceResult[];
  // What intune-action adds (optional for other producers of results):
  requestedBy?: string | null;
  counts?: Record<ActionOutcome, number>;
  startedAt?: string;
  finishedAt?: string;
  /** Rejected requests: why, in plain words, and a stable code. */
  error?: string;
  code?: string;
  /** Nothing was sent: `results[].request` shows what would have been. */
  dryRun?: boolean;
  /** The job id had been executed before: this is that earlier result, sent again. */
  replayed?: boolean;
  /** The run was stopped (node closed) before it completed. */
  aborted?: boolean;
  /** Follow-up of Intune's action states: per-state counts, and whether all became final in time. */
  followUp?: { timeoutSec: number; complete: boolean; states: Record<string, number> };
}
