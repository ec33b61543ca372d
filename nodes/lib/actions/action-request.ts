/**
 * Checking an action request (DESIGN.md "Action request") before anything
 * is sent to Intune: first its shape (types, ids, texts), then the node's
 * policy (allowed actions, confirmation, device limit). Every refusal is an
 * `ActionRequestError` with a stable `code` and one plain sentence that says
 * what is wrong and how to fix it.
 *
 * Strictness, on purpose:
 * - `deviceIds` must be a non-empty list of Intune device ids (GUIDs), with
 *   no duplicates. A GUID check also keeps anything but an id out of the
 *   Graph URL the id is put into.
 * - Inside `notification` and `wipe` an unknown key is refused: a typo such
 *   as `keepUserdata` must not silently wipe the user's data.
 * - Unknown top-level keys are ignored (the request may travel with extra
 *   fields of the system it came from); a misspelt required key is still
 *   caught because the required one is then missing.
 * - A request can ask for a dry run (`dryRun: true`) but never switch off a
 *   dry run the node is set to.
 */
import { randomUUID } from 'node:crypto';
import type { ActionName, ActionRequest } from '../contracts';
import { isGuid } from '../shared/validation';

export const ACTION_NAMES: readonly ActionName[] = ['notify', 'retire', 'wipe', 'lock', 'sync'];

/** Actions that remove company data or the whole device: they need `confirm: true`. */
export const DESTRUCTIVE_ACTIONS: readonly ActionName[] = ['retire', 'wipe'];

/** Product limits of the Company Portal custom notification. */
export const NOTIFICATION_LIMITS = { titleMaxChars: 50, bodyMaxChars: 500 } as const;

export const MAX_JOB_ID_CHARS = 200;
export const MAX_REQUESTED_BY_CHARS = 256;

export type ActionRequestErrorCode =
  | 'malformed'
  | 'unknownAction'
  | 'noDevices'
  | 'badDeviceId'
  | 'duplicateDevices'
  | 'textMissing'
  | 'textTooLong'
  | 'notAllowed'
  | 'confirmMissing'
  | 'tooManyDevices'
  | 'replayed'
  | 'jobIdReused'
  | 'alreadyRunning'
  | 'interrupted'
  | 'misconfigured';

export class ActionRequestError extends Error {
  override name = 'ActionRequestError';
  constructor(
    readonly code: ActionRequestErrorCode,
    message: string,
    readonly params: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface WipeOptions {
  keepEnrollmentData?: boolean;
  keepUserData?: boolean;
  macOsUnlockCode?: string;
  persistEsimDataPlan?: boolean;
}

/** A request that passed the shape checks. */
export interface CheckedRequest {
  action: ActionName;
  deviceIds: string[];
  notification?: { title: string; body: string };
  wipe?: WipeOptions;
  confirm: boolean;
  jobId: string;
  /** False when the node made the id up (no replay protection then). */
  jobIdGiven: boolean;
  requestedBy: string | null;
  /** The request asked for a dry run. */
  dryRun: boolean;
}

export interface ActionPolicy {
  allowed: readonly ActionName[];
  maxDevices: number;
}

/** What can be told about a request even when it is refused (to answer it with a "rejected" result). */
export interface RequestEcho {
  jobId: string;
  jobIdGiven: boolean;
  action: ActionName | null;
  deviceIds: string[];
  requestedBy: string | null;
}

const WIPE_KEYS: Record<keyof WipeOptions, 'boolean' | 'string'> = {
  keepEnrollmentData: 'boolean',
  keepUserData: 'boolean',
  macOsUnlockCode: 'string',
  persistEsimDataPlan: 'boolean',
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (Buffer.isBuffer(v)) return 'a buffer';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Characters as people count them (code points, so an emoji is one). */
export function charCount(s: string): number {
  return [...s].length;
}

export function newJobId(): string {
  return `intune-${randomUUID()}`;
}

function readJobId(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.trim()) return v.trim();
  return undefined;
}

/**
 * The parts of a (possibly malformed) payload that can be echoed in a
 * rejected result: jobId, action, the device ids that are strings,
 * requestedBy. Never throws.
 */
export function echoOf(payload: unknown): RequestEcho {
  const p = isPlainObject(payload) ? payload : {};
  const given = readJobId(p.jobId);
  const jobId = given && given.length <= MAX_JOB_ID_CHARS ? given : newJobId();
  const action = typeof p.action === 'string' && (ACTION_NAMES as readonly string[]).includes(p.action) ? (p.action as ActionName) : null;
  const ids = Array.isArray(p.deviceIds) ? p.deviceIds.filter((x): x is string => typeof x === 'string').map((x) => x.trim()) : [];
  const requestedBy = typeof p.requestedBy === 'string' ? p.requestedBy.slice(0, MAX_REQUESTED_BY_CHARS) : null;
  return { jobId, jobIdGiven: jobId === given, action, deviceIds: ids, requestedBy };
}

/** Checks the shape of `msg.payload`. Throws ActionRequestError. */
export function checkRequest(payload: unknown): CheckedRequest {
  if (!isPlainObject(payload)) {
    const hint = typeof payload === 'string' ? ' (a JSON text must be parsed first, e.g. with a JSON node)' : '';
    throw new ActionRequestError('malformed', `msg.payload must be an action request object, not ${typeName(payload)}${hint}`, { field: 'payload' });
  }
  const p = payload as Partial<Record<keyof ActionRequest | 'dryRun', unknown>>;

  // action
  if (p.action === undefined || p.action === null || p.action === '') {
    throw new ActionRequestError('unknownAction', `The request has no action: give one of ${ACTION_NAMES.join(', ')}`, { field: 'action' });
  }
  if (typeof p.action !== 'string') {
    throw new ActionRequestError('malformed', `action must be a text (one of ${ACTION_NAMES.join(', ')}), not ${typeName(p.action)}`, { field: 'action' });
  }
  if (!(ACTION_NAMES as readonly string[]).includes(p.action)) {
    throw new ActionRequestError('unknownAction', `Unknown action "${p.action.slice(0, 40)}": use one of ${ACTION_NAMES.join(', ')}`, {
      field: 'action',
      action: p.action.slice(0, 40),
    });
  }
  const action = p.action as ActionName;

  // deviceIds
  if (p.deviceIds === undefined || p.deviceIds === null) {
    throw new ActionRequestError('noDevices', 'The request has no deviceIds: give a list of Intune device ids', { field: 'deviceIds' });
  }
  if (!Array.isArray(p.deviceIds)) {
    throw new ActionRequestError('malformed', `deviceIds must be a list of Intune device ids, not ${typeName(p.deviceIds)}`, { field: 'deviceIds' });
  }
  if (p.deviceIds.length === 0) {
    throw new ActionRequestError('noDevices', 'deviceIds is empty: give at least one Intune device id', { field: 'deviceIds' });
  }
  const deviceIds: string[] = [];
  const seen = new Map<string, number>();
  const duplicates = new Set<string>();
  p.deviceIds.forEach((raw, i) => {
    if (typeof raw !== 'string') {
      throw new ActionRequestError('badDeviceId', `deviceIds[${i}] must be a text (an Intune device id), not ${typeName(raw)}`, { field: 'deviceIds', index: i });
    }
    const id = raw.trim();
    if (!isGuid(id)) {
      throw new ActionRequestError('badDeviceId', `deviceIds[${i}] "${(id as string).slice(0, 60)}" is not an Intune device id (a GUID such as 0f8c5c9e-…)`, {
        field: 'deviceIds',
        index: i,
      });
    }
    const key = id.toLowerCase();
    if (seen.has(key)) duplicates.add(id);
    else seen.set(key, i);
    deviceIds.push(id);
  });
  if (duplicates.size) {
    const list = [...duplicates];
    throw new ActionRequestError(
      'duplicateDevices',
      `deviceIds lists ${list.length === 1 ? 'a device' : `${list.length} devices`} more than once (${list.slice(0, 3).join(', ')}${list.length > 3 ? ', …' : ''}): send each device once`,
      { field: 'deviceIds', duplicates: list },
    );
  }

  // notification
  let notification: CheckedRequest['notification'];
  if (action === 'notify') {
    const n = p.notification;
    if (n === undefined || n === null) {
      throw new ActionRequestError('textMissing', 'A notification needs notification.title and notification.body', { field: 'notification' });
    }
    if (!isPlainObject(n)) {
      throw new ActionRequestError('malformed', `notification must be an object with title and body, not ${typeName(n)}`, { field: 'notification' });
    }
    for (const k of Object.keys(n)) {
      if (k !== 'title' && k !== 'body') {
        throw new ActionRequestError('malformed', `notification has an unknown field "${k.slice(0, 40)}": only title and body are allowed`, { field: `notification.${k}` });
      }
    }
    const text = (k: 'title' | 'body', max: number): string => {
      const v = n[k];
      if (v === undefined || v === null || (typeof v === 'string' && !v.trim())) {
        throw new ActionRequestError('textMissing', `notification.${k} is empty: a notification needs a title and a body`, { field: `notification.${k}` });
      }
      if (typeof v !== 'string') {
        throw new ActionRequestError('malformed', `notification.${k} must be a text, not ${typeName(v)}`, { field: `notification.${k}` });
      }
      const len = charCount(v);
      if (len > max) {
        throw new ActionRequestError('textTooLong', `notification.${k} has ${len} characters; Intune allows at most ${max}`, {
          field: `notification.${k}`,
          length: len,
          max,
        });
      }
      return v;
    };
    notification = { title: text('title', NOTIFICATION_LIMITS.titleMaxChars), body: text('body', NOTIFICATION_LIMITS.bodyMaxChars) };
  } else if (p.notification !== undefined && p.notification !== null) {
    throw new ActionRequestError('malformed', `notification belongs to the notify action only, not to ${action}`, { field: 'notification' });
  }

  // wipe options
  let wipe: WipeOptions | undefined;
  if (p.wipe !== undefined && p.wipe !== null) {
    if (action !== 'wipe') {
      throw new ActionRequestError('malformed', `wipe options belong to the wipe action only, not to ${action}`, { field: 'wipe' });
    }
    if (!isPlainObject(p.wipe)) {
      throw new ActionRequestError('malformed', `wipe must be an object of wipe options, not ${typeName(p.wipe)}`, { field: 'wipe' });
    }
    wipe = {};
    for (const [k, v] of Object.entries(p.wipe)) {
      const want = (WIPE_KEYS as Record<string, string>)[k];
      if (!want) {
        throw new ActionRequestError('malformed', `wipe has an unknown option "${k.slice(0, 40)}": use ${Object.keys(WIPE_KEYS).join(', ')}`, { field: `wipe.${k}` });
      }
      if (v === undefined || v === null) continue;
      if (typeof v !== want) {
        throw new ActionRequestError('malformed', `wipe.${k} must be ${want === 'boolean' ? 'true or false' : 'a text'}, not ${typeName(v)}`, { field: `wipe.${k}` });
      }
      if (k === 'macOsUnlockCode' && !/^\d{6}$/.test(v as string)) {
        // Never echo the value: it unlocks a Mac.
        throw new ActionRequestError('malformed', 'wipe.macOsUnlockCode must be a six-digit PIN', { field: 'wipe.macOsUnlockCode' });
      }
      (wipe as Record<string, unknown>)[k] = v;
    }
  }

  // confirm, jobId, requestedBy, dryRun
  if (p.confirm !== undefined && p.confirm !== null && typeof p.confirm !== 'boolean') {
    throw new ActionRequestError('malformed', `confirm must be true or false, not ${typeName(p.confirm)}`, { field: 'confirm' });
  }
  let jobId: string;
  let jobIdGiven = false;
  if (p.jobId === undefined || p.jobId === null || p.jobId === '') {
    jobId = newJobId();
  } else {
    const j = readJobId(p.jobId);
    if (j === undefined) {
      throw new ActionRequestError('malformed', `jobId must be a text or a number, not ${typeName(p.jobId)}`, { field: 'jobId' });
    }
    if (j.length > MAX_JOB_ID_CHARS) {
      throw new ActionRequestError('malformed', `jobId is too long (${j.length} characters, at most ${MAX_JOB_ID_CHARS})`, { field: 'jobId' });
    }
    jobId = j;
    jobIdGiven = true;
  }
  let requestedBy: string | null = null;
  if (p.requestedBy !== undefined && p.requestedBy !== null) {
    if (typeof p.requestedBy !== 'string') {
      throw new ActionRequestError('malformed', `requestedBy must be a text, not ${typeName(p.requestedBy)}`, { field: 'requestedBy' });
    }
    if (p.requestedBy.length > MAX_REQUESTED_BY_CHARS) {
      throw new ActionRequestError('malformed', `requestedBy is too long (at most ${MAX_REQUESTED_BY_CHARS} characters)`, { field: 'requestedBy' });
    }
    requestedBy = p.requestedBy;
  }
  if (p.dryRun !== undefined && p.dryRun !== null && typeof p.dryRun !== 'boolean') {
    throw new ActionRequestError('malformed', `dryRun must be true or false, not ${typeName(p.dryRun)}`, { field: 'dryRun' });
  }

  return {
    action,
    deviceIds,
    ...(notification ? { notification } : {}),
    ...(wipe ? { wipe } : {}),
    confirm: p.confirm === true,
    jobId,
    jobIdGiven,
    requestedBy,
    dryRun: p.dryRun === true,
  };
}

/** Checks a well-formed request against the node's policy. Throws ActionRequestError. */
export function checkPolicy(req: CheckedRequest, policy: ActionPolicy): void {
  if (!policy.allowed.includes(req.action)) {
    throw new ActionRequestError(
      'notAllowed',
      `This node does not allow the action "${req.action}" (allowed: ${policy.allowed.length ? policy.allowed.join(', ') : 'none'}); tick it in the node to allow it`,
      { action: req.action, allowed: [...policy.allowed] },
    );
  }
  if (DESTRUCTIVE_ACTIONS.includes(req.action) && req.confirm !== true) {
    throw new ActionRequestError(
      'confirmMissing',
      `${req.action === 'wipe' ? 'A wipe' : 'A retire'} needs "confirm": true in the request, confirming that the operator meant it`,
      { action: req.action },
    );
  }
  if (req.deviceIds.length > policy.maxDevices) {
    throw new ActionRequestError(
      'tooManyDevices',
      `The request lists ${req.deviceIds.length} devices; this node accepts at most ${policy.maxDevices} per request (nothing was sent: split the request or raise the limit)`,
      { count: req.deviceIds.length, max: policy.maxDevices },
    );
  }
}
