/**
 * Which devices a source passes on, and why it skips the others. Pure
 * functions over a normalised Device, so the node, the editor's preview and
 * the tests share one rule book.
 *
 * A device is counted under exactly one reason, the first that applies, in
 * this order (the duplicate rule runs before these, see device-duplicates):
 *
 *   platform         its platform switch is off
 *   personal         a personally owned computer (Windows, macOS, Linux) while
 *                    personal devices are excluded; phones and tablets follow
 *                    only their platform switch
 *   userDeleted      its primary user was deleted, and such devices are not
 *                    included (or only devices with a primary user are wanted)
 *   noPrimaryUser    no primary user, and only devices with one are wanted
 *   managementState  its management state is in the skip list (retire/wipe
 *                    pending …)
 *   stale            last contact more than N days ago (or never)
 */
import type { Device } from '../contracts';
import { PLATFORMS, isComputerPlatform, platformOf, type Platform } from './device-normaliser';
import { enumMembers } from '../graph/graph-schema';
import { echo } from '../shared/echo';
import { strictBool } from '../shared/validation';

export type { Platform } from './device-normaliser';
export { PLATFORMS, platformOf } from './device-normaliser';

export type SkipReason = 'duplicate' | 'platform' | 'personal' | 'userDeleted' | 'noPrimaryUser' | 'managementState' | 'stale';

/** Every reason, in the order counters are shown. */
export const SKIP_REASONS: readonly SkipReason[] = ['duplicate', 'platform', 'personal', 'userDeleted', 'noPrimaryUser', 'managementState', 'stale'];

export interface DeviceFilterSettings {
  platforms: Record<Platform, boolean>;
  includePersonal: boolean;
  onlyWithPrimaryUser: boolean;
  includeDeletedUser: boolean;
  /** Skip devices whose last contact is older than this many days; 0 = keep all. */
  staleDays: number;
  /** managementState values to skip (exact Graph names, compared case-insensitively). */
  skipManagementStates: string[];
}

/** Management states that mean "on its way out of Intune". */
export const DEFAULT_SKIP_STATES: readonly string[] = ['retirePending', 'retireIssued', 'wipePending', 'wipeIssued', 'deletePending'];

export const DEFAULT_FILTERS: DeviceFilterSettings = {
  platforms: { windows: true, macos: true, ios: true, android: true, linux: true, other: false },
  includePersonal: false,
  onlyWithPrimaryUser: false,
  includeDeletedUser: false,
  staleDays: 0,
  skipManagementStates: [...DEFAULT_SKIP_STATES],
};

/** A setting the user has to fix; the message says what and how. */
export class FilterSettingsError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'FilterSettingsError';
  }
}

/** A yes/no property, strictly (shared/validation): "yes", "no" or a typo is an error naming the setting. */
function bool(raw: Record<string, unknown>, field: string, label: string, fallback: boolean): boolean {
  return strictBool(raw[field], fallback, (reason) => new FilterSettingsError(`${label} ${reason}`, field));
}

/** The platforms as the dialog names them (for messages). */
const PLATFORM_LABELS: Record<Platform, string> = { windows: 'Windows', macos: 'macOS', ios: 'iOS/iPadOS', android: 'Android', linux: 'Linux', other: 'Other' };

/** The node property that switches each platform on (intune-devices, intune-compliance, the instance tool). */
export const PLATFORM_PROPERTIES: Record<Platform, string> = {
  windows: 'platformWindows',
  macos: 'platformMacos',
  ios: 'platformIos',
  android: 'platformAndroid',
  linux: 'platformLinux',
  other: 'platformOther',
};

/**
 * Reads filter settings from node properties or the editor's form (flat:
 * platformWindows … platformOther, includePersonal, onlyWithPrimaryUser,
 * includeDeletedUser, staleDays, skipStates). Throws FilterSettingsError.
 */
export function parseFilterSettings(raw: Record<string, unknown>): DeviceFilterSettings {
  const platforms = {} as Record<Platform, boolean>;
  for (const p of PLATFORMS) platforms[p] = bool(raw, PLATFORM_PROPERTIES[p], `The platform switch "${PLATFORM_LABELS[p]}"`, DEFAULT_FILTERS.platforms[p]);
  if (!PLATFORMS.some((p) => platforms[p])) {
    throw new FilterSettingsError('No platform is selected: switch on at least one of Windows, macOS, iOS/iPadOS, Android, Linux', 'platforms');
  }
  const includePersonal = bool(raw, 'includePersonal', '"Include personally owned computers"', DEFAULT_FILTERS.includePersonal);
  const onlyWithPrimaryUser = bool(raw, 'onlyWithPrimaryUser', '"Only devices with a primary user"', DEFAULT_FILTERS.onlyWithPrimaryUser);
  const includeDeletedUser = bool(raw, 'includeDeletedUser', '"Include devices whose primary user was deleted"', DEFAULT_FILTERS.includeDeletedUser);
  let staleDays = DEFAULT_FILTERS.staleDays;
  const sd = raw.staleDays;
  if (sd !== undefined && sd !== null && sd !== '') {
    const n = Number(sd);
    if (!Number.isInteger(n) || n < 0) {
      throw new FilterSettingsError(`"Skip devices not seen for more than N days" must be a whole number of days, 0 or more (0 = keep all), not ${echo(sd)}`, 'staleDays');
    }
    if (n > 36500) throw new FilterSettingsError('"Skip devices not seen for more than N days" must be at most 36500', 'staleDays');
    staleDays = n;
  }
  let states: string[];
  const rs = raw.skipStates;
  if (rs === undefined || rs === null) states = [...DEFAULT_SKIP_STATES];
  else if (Array.isArray(rs)) states = rs.map((s) => String(s).trim()).filter(Boolean);
  else if (typeof rs === 'string') states = rs.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  else throw new FilterSettingsError('The management states to skip must be a list of names', 'skipStates');
  const known = enumMembers('beta', 'managementState');
  const unknown = states.filter((s) => !known.some((k) => k.toLowerCase() === s.toLowerCase()));
  if (unknown.length) {
    throw new FilterSettingsError(`Unknown management state(s) ${unknown.map((u) => `"${u}"`).join(', ')}: use names such as ${known.slice(0, 6).join(', ')}`, 'skipStates');
  }
  return {
    platforms,
    includePersonal,
    onlyWithPrimaryUser,
    includeDeletedUser,
    staleDays,
    skipManagementStates: states,
  };
}

/** The Device fields the filters read: the preview streams only what produces these. */
export type FilterableDevice = Pick<Device, 'os' | 'ownership' | 'user' | 'userDeleted' | 'managementState' | 'lastContactAt'>;

const DAY_MS = 86_400_000;

/** Why `d` is skipped (null: keep it). `now` in ms. */
export function skipReason(d: FilterableDevice, s: DeviceFilterSettings, now: number): Exclude<SkipReason, 'duplicate'> | null {
  const platform = platformOf(d.os.name);
  if (!s.platforms[platform]) return 'platform';
  if (!s.includePersonal && d.ownership === 'personal' && isComputerPlatform(platform)) return 'personal';
  if (d.userDeleted && (!s.includeDeletedUser || s.onlyWithPrimaryUser)) return 'userDeleted';
  if (s.onlyWithPrimaryUser && !d.user) return 'noPrimaryUser';
  if (d.managementState && s.skipManagementStates.some((m) => m.toLowerCase() === d.managementState!.toLowerCase())) return 'managementState';
  if (s.staleDays > 0) {
    const last = d.lastContactAt ? Date.parse(d.lastContactAt) : NaN;
    if (!Number.isFinite(last) || now - last > s.staleDays * DAY_MS) return 'stale';
  }
  return null;
}

/** Zeroed counters for every reason. */
export function emptySkipCounts(): Record<SkipReason, number> {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
}

/** A stable fingerprint of the settings (an incremental run after a change runs as full). */
export function filterFingerprint(s: DeviceFilterSettings): string {
  return JSON.stringify([
    PLATFORMS.map((p) => (s.platforms[p] ? 1 : 0)),
    s.includePersonal,
    s.onlyWithPrimaryUser,
    s.includeDeletedUser,
    s.staleDays,
    [...s.skipManagementStates].map((m) => m.toLowerCase()).sort(),
  ]);
}
