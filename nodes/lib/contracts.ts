/**
 * Message contracts shared by every node: the one place that says what a
 * sync run, a device, a compliance violation and an action look like.
 * Sinks and sources import these types; nothing else defines them.
 */

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
