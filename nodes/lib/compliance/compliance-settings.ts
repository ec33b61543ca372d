/**
 * The settings of an `intune-compliance` node, read from its properties and
 * checked, with plain messages that name the field to fix.
 *
 * Device filters: the node either has its own (the very same properties and
 * parser as `intune-devices`: platforms, personal computers, primary user,
 * deleted users, stale days, management states, placeholder serials,
 * duplicates, directory check), or takes them from an `intune-devices` node
 * (`filtersFrom`), so that only devices that source imports can raise
 * violations. Either way `parseDeviceSourceSettings` decides; nothing here
 * re-implements a filter.
 */
import { DeviceSettingsError, parseDeviceSourceSettings, type DeviceSourceSettings } from '../devices/device-source-settings';
import { intervalMs } from '../run/run-schedule';
import { strictBool } from '../shared/validation';
import { POLICY_FAMILIES, PolicySelection, type PolicyFamily } from './compliance-policies';

/** The part of the device source's settings that decides which devices count. */
export type ComplianceDeviceSettings = Pick<DeviceSourceSettings, 'filters' | 'placeholders' | 'placeholderSerials' | 'collapseDuplicates' | 'checkDeletedUsers'>;

export interface ComplianceSettings {
  /** Own filters; replaced at run time by those of `filtersFrom` when that is set. */
  device: ComplianceDeviceSettings;
  /** Id of an intune-devices node whose filters apply ('' = the node's own). */
  filtersFrom: string;
  selection: PolicySelection;
  /** Devices in their grace period raise violations too. */
  countGracePeriod: boolean;
  /** Settings Intune could not evaluate (state "error") count as violations. */
  includeErrors: boolean;
  /** Read current values and error descriptions per device (one request per non-compliant device, in $batches). */
  settingDetails: boolean;
  /** Full run every … (0 = only on a message). */
  everyMs: number;
  instance: string;
  store: string;
}

export class ComplianceSettingsError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'ComplianceSettingsError';
  }
}

/** A yes/no property, strictly (shared/validation): "yes" or a typo is an error naming the setting, not "off". */
function bool(raw: Record<string, unknown>, field: string, label: string, fallback: boolean): boolean {
  return strictBool(raw[field], fallback, (reason) => new ComplianceSettingsError(`${label} ${reason}`, field));
}

/** Device-filter settings from a node's (or the editor's) properties; throws ComplianceSettingsError. */
export function parseDeviceSettings(raw: Record<string, unknown>, owner?: string): ComplianceDeviceSettings {
  let s: DeviceSourceSettings;
  try {
    // Only the filter-related properties: the device source's schedule and mode fields are not ours.
    const rest: Record<string, unknown> = { ...raw };
    for (const k of ['fullEveryHours', 'incrementalEveryMinutes', 'triggerMode', 'overlapMinutes', 'graphVersion']) delete rest[k];
    s = parseDeviceSourceSettings(rest);
  } catch (e) {
    if (e instanceof DeviceSettingsError) throw new ComplianceSettingsError(owner ? `${owner}: ${e.message}` : e.message, e.field);
    throw e;
  }
  return {
    filters: s.filters,
    placeholders: s.placeholders,
    placeholderSerials: s.placeholderSerials,
    collapseDuplicates: s.collapseDuplicates,
    checkDeletedUsers: s.checkDeletedUsers,
  };
}

function list(v: unknown, field: string, what: string): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v.map((x) => String(x ?? '').trim()).filter(Boolean);
  if (typeof v === 'string') return v.split(/[\r\n,;]+/).map((x) => x.trim()).filter(Boolean);
  throw new ComplianceSettingsError(`${what} must be a list`, field);
}

/** Throws ComplianceSettingsError (field + plain message). */
export function parseComplianceSettings(raw: Record<string, unknown>): ComplianceSettings {
  const filtersFrom = typeof raw.filtersFrom === 'string' ? raw.filtersFrom.trim() : '';
  if (raw.filtersFrom !== undefined && raw.filtersFrom !== null && typeof raw.filtersFrom !== 'string') {
    throw new ComplianceSettingsError('"Device filters from" must name an intune-devices node (or be empty for the filters set here)', 'filtersFrom');
  }
  const device = parseDeviceSettings(raw);

  const families = raw.policyPlatforms === undefined || raw.policyPlatforms === null ? [...POLICY_FAMILIES] : list(raw.policyPlatforms, 'policyPlatforms', 'The policy platforms');
  const unknown = families.filter((f) => !(POLICY_FAMILIES as readonly string[]).includes(f));
  if (unknown.length) {
    throw new ComplianceSettingsError(`Unknown policy platform(s) ${unknown.map((u) => `"${u}"`).join(', ')}: use ${POLICY_FAMILIES.join(', ')}`, 'policyPlatforms');
  }
  if (!families.length) throw new ComplianceSettingsError('No policy platform is selected: switch on at least one platform whose policies are watched', 'policyPlatforms');
  const policies = list(raw.policies, 'policies', 'The policies to watch');
  if (policies.length > 500) throw new ComplianceSettingsError('At most 500 policies can be listed; leave the list empty to watch every policy', 'policies');
  if (policies.some((p) => p.length > 256)) throw new ComplianceSettingsError('A policy id or name is longer than 256 characters', 'policies');

  let everyMs: number;
  try {
    everyMs = intervalMs(raw.everyMinutes, 'minutes', '"Full run every (minutes)"');
  } catch (e) {
    throw new ComplianceSettingsError((e as Error).message, 'everyMinutes');
  }
  const instance = typeof raw.instance === 'string' ? raw.instance.trim() : '';
  if (instance.length > 200) throw new ComplianceSettingsError('The instance name must be at most 200 characters', 'instance');
  return {
    device,
    filtersFrom,
    selection: new PolicySelection(new Set(families as PolicyFamily[]), policies),
    countGracePeriod: bool(raw, 'countGracePeriod', '"Devices in their grace period count"', false),
    includeErrors: bool(raw, 'includeErrors', '"Settings Intune could not evaluate (error) count"', true),
    settingDetails: bool(raw, 'settingDetails', '"Read current values and error descriptions"', true),
    everyMs,
    instance,
    store: typeof raw.store === 'string' ? raw.store.trim() : '',
  };
}
