/**
 * The properties of an `intune-action` node, checked once at deploy: which
 * actions it allows (notify, sync and lock by default; retire and wipe only
 * when ticked), the device limit, dry run, follow-up, per-device output,
 * and where and how long executed job ids are remembered.
 */
import type { ActionName } from '../contracts';
import type { ActionPolicy } from './action-request';
import { echo } from '../shared/echo';
import { strictBool } from '../shared/validation';

/** The node's properties as the editor saves them (flags may arrive as strings from hand-written flows). */
export interface ActionNodeProperties {
  allowNotify?: boolean | string;
  allowSync?: boolean | string;
  allowLock?: boolean | string;
  allowRetire?: boolean | string;
  allowWipe?: boolean | string;
  maxDevices?: string | number;
  dryRun?: boolean | string;
  followUp?: boolean | string;
  followUpTimeout?: string | number;
  followUpInterval?: string | number;
  perDevice?: boolean | string;
  store?: string;
  retentionHours?: string | number;
}

export interface ActionSettings {
  policy: ActionPolicy;
  dryRun: boolean;
  followUp: { timeoutMs: number; intervalMs: number } | null;
  perDevice: boolean;
  /** Context store name ('' = default store). */
  store: string;
  retentionMs: number;
}

export const ACTION_DEFAULTS = {
  maxDevices: 100,
  followUpTimeoutSec: 600,
  followUpIntervalSec: 30,
  retentionHours: 168,
} as const;

function num(v: unknown, fallback: number, what: string, min: number, max: number, integer = true): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new Error(`${what} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max} (got ${echo(v)})`);
  }
  return n;
}

/**
 * A yes/no property, strictly (shared/validation). Here above all: an
 * `allowWipe` of "yes" must not be read one way by one person and the other
 * way by the node, so anything but true or false stops the node.
 */
function flag(v: unknown, fallback: boolean, what: string): boolean {
  return strictBool(v, fallback, (reason) => new Error(`${what} ${reason}`));
}

/** Throws a plain-words Error naming the property. */
export function parseActionSettings(p: ActionNodeProperties): ActionSettings {
  const allowed: ActionName[] = [];
  if (flag(p.allowNotify, true, '"Allowed: notify"')) allowed.push('notify');
  if (flag(p.allowSync, true, '"Allowed: sync"')) allowed.push('sync');
  if (flag(p.allowLock, true, '"Allowed: lock"')) allowed.push('lock');
  if (flag(p.allowRetire, false, '"Allowed: retire"')) allowed.push('retire');
  if (flag(p.allowWipe, false, '"Allowed: wipe"')) allowed.push('wipe');
  return {
    policy: { allowed, maxDevices: num(p.maxDevices, ACTION_DEFAULTS.maxDevices, 'Max. devices per request', 1, 10_000) },
    dryRun: flag(p.dryRun, false, '"Dry run"'),
    followUp: flag(p.followUp, false, '"Follow up on the action state"')
      ? {
          timeoutMs: num(p.followUpTimeout, ACTION_DEFAULTS.followUpTimeoutSec, 'Follow-up timeout (s)', 1, 86_400) * 1000,
          intervalMs: num(p.followUpInterval, ACTION_DEFAULTS.followUpIntervalSec, 'Follow-up interval (s)', 1, 3600) * 1000,
        }
      : null,
    perDevice: flag(p.perDevice, false, '"Second output: one message per device"'),
    store: typeof p.store === 'string' ? p.store.trim() : '',
    retentionMs: num(p.retentionHours, ACTION_DEFAULTS.retentionHours, 'Remember job ids for (hours)', 0.0001, 8760, false) * 3_600_000,
  };
}
