/**
 * The settings of an `intune-devices` node, read from its properties (or
 * from the editor's form for the preview) and checked, with plain messages
 * that say what to change. One parser for the runtime and the preview, so a
 * setting the preview accepts is one a deployed node accepts.
 */
import type { SyncMode } from '../contracts';
import type { GraphVersion } from '../graph/graph-schema';
import { PlaceholderSerials, DEFAULT_PLACEHOLDER_SERIALS } from './device-normaliser';
import { DEFAULT_FILTERS, FilterSettingsError, PLATFORM_PROPERTIES, PLATFORMS, parseFilterSettings, type DeviceFilterSettings } from './device-filters';
import { enumMembers } from '../graph/graph-schema';
import { intervalMs } from '../run/run-schedule';
import { echo } from '../shared/echo';
import { strictBool } from '../shared/validation';

export interface DeviceSourceSettings {
  filters: DeviceFilterSettings;
  placeholderSerials: string[];
  placeholders: PlaceholderSerials;
  collapseDuplicates: boolean;
  /** Ask the directory which primary users were deleted (needs User.Read.All). */
  checkDeletedUsers: boolean;
  /** 'beta' adds the OS SKU and the join type (Graph beta only). */
  graphVersion: GraphVersion;
  /** "Discovered apps": every device passed on carries `software` (Intune's discovered-apps report; lib/software). */
  readSoftware: boolean;
  /** An incremental run reads devices synced after (watermark − overlap). */
  overlapMs: number;
  fullEveryMs: number;
  incrementalEveryMs: number;
  /** Mode of a run started by a message without `msg.mode`. */
  triggerMode: SyncMode;
  /** Name sinks use for what this source owns ('' = the tenant id). */
  instance: string;
  /** Context store for the watermark ('' = default store). */
  store: string;
}

export class DeviceSettingsError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'DeviceSettingsError';
  }
}

/**
 * A yes/no property, strictly (shared/validation): `READ_SOFTWARE=yes` in the
 * flow's environment is an error naming "Discovered apps", not a feature
 * silently left off.
 */
function bool(raw: Record<string, unknown>, field: string, label: string, fallback: boolean): boolean {
  return strictBool(raw[field], fallback, (reason) => new DeviceSettingsError(`${label} ${reason}`, field));
}

export const DEFAULT_OVERLAP_MINUTES = 30;

/** Duplicates are collapsed and the directory is asked about deleted users unless a node says otherwise. */
const DEFAULT_COLLAPSE_DUPLICATES = true;
const DEFAULT_CHECK_DELETED_USERS = true;
/** Off until the user opts in: the report export needs a ReadWrite permission (docs/graph-software.md). */
export const DEFAULT_READ_SOFTWARE = false;

/**
 * The device-filter properties of a node (intune-devices, intune-compliance)
 * with the value a node that lacks one runs with. The single source of these
 * defaults: `parseDeviceSourceSettings` fills them in for a missing property,
 * and the editor gets them from here (a node setting, see
 * `editorFilterSettings`), both for a node dragged from the palette and for
 * an imported node that lacks a property, so the dialog, its Preview and a
 * run all use the same values.
 */
export interface FilterPropertyDefaults {
  platformWindows: boolean;
  platformMacos: boolean;
  platformIos: boolean;
  platformAndroid: boolean;
  platformLinux: boolean;
  platformOther: boolean;
  includePersonal: boolean;
  onlyWithPrimaryUser: boolean;
  includeDeletedUser: boolean;
  staleDays: number;
  skipStates: string[];
  /** One entry per line, as the dialog's text box holds it. */
  placeholderSerials: string;
  collapseDuplicates: boolean;
  checkDeletedUsers: boolean;
}

export function filterPropertyDefaults(): FilterPropertyDefaults {
  const platforms = Object.fromEntries(PLATFORMS.map((p) => [PLATFORM_PROPERTIES[p], DEFAULT_FILTERS.platforms[p]])) as Pick<
    FilterPropertyDefaults,
    'platformWindows' | 'platformMacos' | 'platformIos' | 'platformAndroid' | 'platformLinux' | 'platformOther'
  >;
  return {
    ...platforms,
    includePersonal: DEFAULT_FILTERS.includePersonal,
    onlyWithPrimaryUser: DEFAULT_FILTERS.onlyWithPrimaryUser,
    includeDeletedUser: DEFAULT_FILTERS.includeDeletedUser,
    staleDays: DEFAULT_FILTERS.staleDays,
    skipStates: [...DEFAULT_FILTERS.skipManagementStates],
    placeholderSerials: DEFAULT_PLACEHOLDER_SERIALS.join('\n'),
    collapseDuplicates: DEFAULT_COLLAPSE_DUPLICATES,
    checkDeletedUsers: DEFAULT_CHECK_DELETED_USERS,
  };
}

/** What the editor of a node with device filters is given by the runtime (RED.settings.<setting>). */
export interface EditorFilterSettings {
  /** Property → default value (filterPropertyDefaults). */
  defaults: FilterPropertyDefaults;
  /** The management states the dialog offers as checkboxes (Graph v1.0, in Graph's order). */
  managementStates: readonly string[];
}

export function editorFilterSettings(): EditorFilterSettings {
  // unknownFutureValue is Graph's marker of an evolvable enum, never a device's state.
  return { defaults: filterPropertyDefaults(), managementStates: enumMembers('v1.0', 'managementState').filter((m) => m !== 'unknownFutureValue') };
}

/**
 * The `settings` option of `RED.nodes.registerType` that hands the filter
 * defaults to the editor: Node-RED exports an `exportable` node setting to
 * the editor as `RED.settings.<name>` before any node's HTML runs. The name
 * must start with the node type in camel case (intuneDevices…).
 */
export function filterNodeSetting(name: string): Record<string, { value: EditorFilterSettings; exportable: true }> {
  return { [name]: { value: editorFilterSettings(), exportable: true } };
}

/** Throws DeviceSettingsError (field + plain message). */
export function parseDeviceSourceSettings(raw: Record<string, unknown>): DeviceSourceSettings {
  let filters: DeviceFilterSettings;
  try {
    filters = parseFilterSettings(raw);
  } catch (e) {
    if (e instanceof FilterSettingsError) throw new DeviceSettingsError(e.message, e.field);
    throw e;
  }
  const placeholderSerials =
    raw.placeholderSerials === undefined || raw.placeholderSerials === null ? [...DEFAULT_PLACEHOLDER_SERIALS] : PlaceholderSerials.parseList(raw.placeholderSerials as string);
  let placeholders: PlaceholderSerials;
  try {
    placeholders = new PlaceholderSerials(placeholderSerials);
  } catch (e) {
    throw new DeviceSettingsError((e as Error).message, 'placeholderSerials');
  }
  const version = raw.graphVersion ?? 'v1.0';
  if (version !== 'v1.0' && version !== 'beta') throw new DeviceSettingsError(`Graph version must be "v1.0" or "beta", not ${echo(version)}`, 'graphVersion');
  const num = (field: string, unit: 'minutes' | 'hours', label: string, fallback: number) => {
    try {
      const v = raw[field];
      return v === undefined || v === null || v === '' ? fallback : intervalMs(v, unit, label);
    } catch (e) {
      throw new DeviceSettingsError((e as Error).message, field);
    }
  };
  let overlapMs = DEFAULT_OVERLAP_MINUTES * 60_000;
  if (raw.overlapMinutes !== undefined && raw.overlapMinutes !== null && raw.overlapMinutes !== '') {
    const n = Number(raw.overlapMinutes);
    if (!Number.isFinite(n) || n < 0 || n > 7 * 24 * 60) {
      throw new DeviceSettingsError(`The incremental overlap must be 0 to 10080 minutes, not ${echo(raw.overlapMinutes)}`, 'overlapMinutes');
    }
    overlapMs = Math.round(n * 60_000);
  }
  const triggerMode = raw.triggerMode ?? 'full';
  if (triggerMode !== 'full' && triggerMode !== 'incremental') {
    throw new DeviceSettingsError(`The mode of a triggered run must be "full" or "incremental", not ${echo(triggerMode)}`, 'triggerMode');
  }
  const collapseDuplicates = bool(raw, 'collapseDuplicates', '"Collapse re-enrolled duplicates"', DEFAULT_COLLAPSE_DUPLICATES);
  const checkDeletedUsers = bool(raw, 'checkDeletedUsers', '"Ask the directory which primary users were deleted"', DEFAULT_CHECK_DELETED_USERS);
  const readSoftware = bool(raw, 'readSoftware', '"Discovered apps"', DEFAULT_READ_SOFTWARE);
  const instance = typeof raw.instance === 'string' ? raw.instance.trim() : '';
  if (instance.length > 200) throw new DeviceSettingsError('The instance name must be at most 200 characters', 'instance');
  return {
    filters,
    placeholderSerials,
    placeholders,
    collapseDuplicates,
    checkDeletedUsers,
    graphVersion: version,
    readSoftware,
    overlapMs,
    fullEveryMs: num('fullEveryHours', 'hours', '"Full run every (hours)"', 0),
    incrementalEveryMs: num('incrementalEveryMinutes', 'minutes', '"Incremental run every (minutes)"', 0),
    triggerMode,
    instance,
    store: typeof raw.store === 'string' ? raw.store.trim() : '',
  };
}
