/**
 * Graph `managedDevice` → our `Device` (contracts.ts). Pure functions, no I/O.
 *
 * What it decides, and why:
 * - `$select`: only the properties the Device contract needs. The SKU and
 *   the join type exist only on Graph /beta (skuFamily, skuNumber,
 *   joinType); in v1.0 mode they are not asked for and stay null, never
 *   guessed from other fields. Both lists are checked with `assertSelect`.
 * - Serial numbers: blank values and placeholders that firmware vendors
 *   leave in (a configurable list) become null; `rawSerialNumber` keeps what
 *   Graph sent, so nothing is lost.
 * - Users: a device whose primary user was deleted from the directory is
 *   named "User deleted for this device" (as the 4me connector does and as
 *   Intune shows it), has no user and is flagged `userDeleted`; the rest of
 *   its data is what Intune still has. Android Enterprise enrolments may
 *   carry a UPN with a GUID glued in front of the real one; it is cut off
 *   so sinks can match the person.
 * - Configuration Manager: devices managed through the ConfigMgr client
 *   (co-management) are kept and flagged `coManaged`.
 * - Graph's "no value" spellings (empty strings, the all-zero GUID, the
 *   year-1 date, a total storage of 0) become null.
 * - Deep links open the device in the Intune admin center of the cloud the
 *   connection uses, in the right directory (tenant segment).
 */
import type { Device, DeviceUser, Ownership, TriState } from '../contracts';
import { assertSelect, type GraphVersion } from '../graph/graph-schema';

/** The managedDevice properties we read (a LIST record; every field may be missing). */
export interface ManagedDeviceRecord {
  id?: string;
  azureADDeviceId?: string | null;
  deviceName?: string | null;
  managedDeviceName?: string | null;
  serialNumber?: string | null;
  manufacturer?: string | null;
  model?: string | null;
  operatingSystem?: string | null;
  osVersion?: string | null;
  skuFamily?: string | null;
  skuNumber?: number | null;
  totalStorageSpaceInBytes?: number | null;
  freeStorageSpaceInBytes?: number | null;
  enrolledDateTime?: string | null;
  lastSyncDateTime?: string | null;
  azureADRegistered?: boolean | null;
  joinType?: string | null;
  managedDeviceOwnerType?: string | null;
  complianceState?: string | null;
  isEncrypted?: boolean | null;
  jailBroken?: string | null;
  managementAgent?: string | null;
  managementState?: string | null;
  deviceEnrollmentType?: string | null;
  userId?: string | null;
  userPrincipalName?: string | null;
  emailAddress?: string | null;
  userDisplayName?: string | null;
  imei?: string | null;
  meid?: string | null;
  phoneNumber?: string | null;
  wiFiMacAddress?: string | null;
}

/** v1.0 properties the Device contract is built from. */
export const DEVICE_SELECT_V1: readonly string[] = [
  'id',
  'azureADDeviceId',
  'deviceName',
  'serialNumber',
  'manufacturer',
  'model',
  'operatingSystem',
  'osVersion',
  'totalStorageSpaceInBytes',
  'freeStorageSpaceInBytes',
  'enrolledDateTime',
  'lastSyncDateTime',
  'azureADRegistered',
  'managedDeviceOwnerType',
  'complianceState',
  'isEncrypted',
  'jailBroken',
  'managementAgent',
  'managementState',
  'userId',
  'userPrincipalName',
  'emailAddress',
  'userDisplayName',
  'imei',
  'meid',
  'phoneNumber',
  'wiFiMacAddress',
];

/** What /beta adds for the contract: the OS SKU and the Entra join type. */
export const DEVICE_SELECT_BETA_EXTRA: readonly string[] = ['skuFamily', 'skuNumber', 'joinType'];

/**
 * The smallest `$select` that still lets the filters decide exactly as on a
 * full record (used by the editor's preview and the duplicate pass): every
 * property a filter or the duplicate rule looks at, nothing else.
 */
export const FILTER_SELECT: readonly string[] = [
  'id',
  'deviceName',
  'serialNumber',
  'operatingSystem',
  'lastSyncDateTime',
  'managedDeviceOwnerType',
  'managementState',
  'userId',
  'userPrincipalName',
];

/** Just what the duplicate pass needs. */
export const DUPLICATE_SELECT: readonly string[] = ['serialNumber', 'lastSyncDateTime', 'enrolledDateTime'];

/** The full `$select` for a Graph version, checked against the schema. */
export function deviceSelect(version: GraphVersion): string[] {
  const props = version === 'beta' ? [...DEVICE_SELECT_V1, ...DEVICE_SELECT_BETA_EXTRA] : [...DEVICE_SELECT_V1];
  assertSelect(version, 'managedDevice', props);
  return props;
}

/** A `$select` list checked against the schema (throws GraphSchemaError naming the bad property). */
export function checkedSelect(version: GraphVersion, props: readonly string[]): string[] {
  assertSelect(version, 'managedDevice', props);
  return [...props];
}

// ------------------------------------------------------------------ serials

/**
 * Placeholder serial numbers seen in the field: SMBIOS defaults that board
 * vendors never filled in, and virtual machines' stand-ins. Compared
 * case-insensitively with surrounding and repeated blanks ignored. An entry
 * written as /pattern/ is a regular expression (case-insensitive).
 */
export const DEFAULT_PLACEHOLDER_SERIALS: readonly string[] = [
  'Default string',
  'To be filled by O.E.M.',
  'System Serial Number',
  'Chassis Serial Number',
  'Base Board Serial Number',
  'Serial Number',
  'SerialNumber',
  'Not Specified',
  'Not Applicable',
  'Not Available',
  'None',
  'N/A',
  'NA',
  'Unknown',
  'Default',
  'Invalid',
  '123456789',
  '0123456789',
  '/^0+$/',
];

export class PlaceholderSerials {
  private readonly exact = new Set<string>();
  private readonly patterns: RegExp[] = [];

  /** Throws with a plain message when a /pattern/ entry is not a valid regular expression. */
  constructor(entries: readonly string[] = DEFAULT_PLACEHOLDER_SERIALS) {
    for (const raw of entries) {
      const e = String(raw ?? '').trim();
      if (!e) continue;
      const re = /^\/(.+)\/$/.exec(e);
      if (re) {
        try {
          this.patterns.push(new RegExp(re[1], 'i'));
        } catch {
          throw new Error(`The placeholder serial pattern ${e} is not a valid regular expression`);
        }
      } else {
        this.exact.add(squash(e));
      }
    }
  }

  /** True for a value that names no real device. Blank values count as placeholders. */
  matches(serial: string | null | undefined): boolean {
    const s = squash(serial ?? '');
    if (!s) return true;
    if (this.exact.has(s)) return true;
    return this.patterns.some((p) => p.test(s));
  }

  /** The usable serial number, or null. */
  clean(serial: string | null | undefined): string | null {
    if (typeof serial !== 'string' || this.matches(serial)) return null;
    return serial.trim();
  }

  /** Parses the editor's text (one entry per line) into a list. */
  static parseList(text: string | readonly string[] | undefined | null): string[] {
    if (Array.isArray(text)) return text.map((t) => String(t).trim()).filter(Boolean);
    if (typeof text !== 'string') return [...DEFAULT_PLACEHOLDER_SERIALS];
    return text
      .split(/\r?\n/)
      .map((t) => t.trim())
      .filter(Boolean);
  }
}

function squash(s: string): string {
  return s.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** The key under which two records count as the same hardware (null: no usable serial). */
export function serialKey(serial: string | null): string | null {
  return serial ? serial.trim().toUpperCase() : null;
}

// -------------------------------------------------------------------- users

/** The name Intune gives a device whose primary user was deleted from the directory. */
export const DELETED_USER_DEVICE_NAME = 'User deleted for this device';

/** Intune itself gave the device the deleted-user name. */
export function isDeletedUserRecord(r: Pick<ManagedDeviceRecord, 'deviceName' | 'managedDeviceName'>): boolean {
  const n = (r.deviceName ?? '').trim().toLowerCase();
  return n === DELETED_USER_DEVICE_NAME.toLowerCase();
}

/**
 * What a record alone says about a deleted primary user: the deleted-user
 * name, or a user id without a UPN. A deleted user whose stale UPN is still
 * on the device needs the directory (deleted-users.ts).
 */
export function looksLikeDeletedUser(r: Pick<ManagedDeviceRecord, 'deviceName' | 'managedDeviceName' | 'userId' | 'userPrincipalName'>): boolean {
  if (isDeletedUserRecord(r)) return true;
  return !!nonBlank(r.userId) && !nonBlank(r.userPrincipalName);
}

const GUID_PREFIX = /^(?:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})[_.#-]?(?=[^@\s]+@[^@\s]+$)/i;

/**
 * Android Enterprise work profiles and dedicated/fully managed enrolments
 * can report the user principal name with a GUID in front (for instance
 * `3f2a…e91b_jane@contoso.com`). Cuts that prefix so the UPN matches the
 * person's sign-in name. Other values are returned unchanged (trimmed).
 */
export function cleanAndroidEnterpriseUpn(upn: string | null | undefined): string | null {
  const u = nonBlank(upn);
  if (!u) return null;
  return u.replace(GUID_PREFIX, '');
}

// ---------------------------------------------------------------- platforms

export type Platform = 'windows' | 'macos' | 'ios' | 'android' | 'linux' | 'other';
export const PLATFORMS: readonly Platform[] = ['windows', 'macos', 'ios', 'android', 'linux', 'other'];

/** Platform family of Graph's `operatingSystem` text ("Windows", "iPadOS", "AndroidForWork", "Ubuntu" …). */
export function platformOf(operatingSystem: string | null | undefined): Platform {
  const os = (operatingSystem ?? '').trim().toLowerCase();
  if (!os) return 'other';
  if (os.startsWith('windows')) return 'windows';
  if (os === 'macos' || os.startsWith('mac os') || os.startsWith('macos') || os === 'osx' || os === 'os x') return 'macos';
  if (os === 'ios' || os === 'ipados' || os.startsWith('ios ') || os.startsWith('ipados ')) return 'ios';
  if (os.startsWith('android')) return 'android';
  if (os === 'linux' || os.startsWith('linux') || os.startsWith('ubuntu') || os.startsWith('red hat') || os.startsWith('rhel')) return 'linux';
  return 'other';
}

/** Computers (as opposed to phones and tablets): the personal-device switch applies to these. */
export function isComputerPlatform(p: Platform): boolean {
  return p === 'windows' || p === 'macos' || p === 'linux';
}

// ------------------------------------------------------------------ mapping

export interface NormaliseOptions {
  /** Intune admin center base URL (clouds.ts `portalUrl`). */
  portalUrl: string;
  /** Directory id for the tenant segment of deep links (optional). */
  tenantId?: string;
  placeholders: PlaceholderSerials;
}

const ZERO_GUID = /^0{8}-0{4}-0{4}-0{4}-0{12}$/;
const CO_MANAGED_AGENTS = new Set(['configurationmanagerclient', 'configurationmanagerclientmdm', 'configurationmanagerclientmdmeas']);

function nonBlank(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t ? t : null;
}

function dateOrNull(v: unknown): string | null {
  const s = nonBlank(v);
  if (!s) return null;
  const ms = Date.parse(s);
  // Graph's "never" is 0001-01-01T00:00:00Z.
  if (!Number.isFinite(ms) || ms <= Date.UTC(1970, 0, 2)) return null;
  return new Date(ms).toISOString();
}

function bytesOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
}

export function ownershipOf(v: unknown): Ownership {
  const s = typeof v === 'string' ? v.toLowerCase() : '';
  return s === 'company' ? 'company' : s === 'personal' ? 'personal' : 'unknown';
}

/** `jailBroken` is a string in Graph ("True", "False", "Unknown", ""), never a Boolean. */
export function jailbrokenOf(v: unknown): TriState {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  return s === 'true' ? 'true' : s === 'false' ? 'false' : 'unknown';
}

export function isCoManaged(agent: unknown): boolean {
  return typeof agent === 'string' && CO_MANAGED_AGENTS.has(agent.toLowerCase());
}

function skuOf(r: ManagedDeviceRecord): string | null {
  const family = nonBlank(r.skuFamily);
  const num = typeof r.skuNumber === 'number' && Number.isInteger(r.skuNumber) && r.skuNumber > 0 ? r.skuNumber : null;
  if (family && num !== null) return `${family} (${num})`;
  return family;
}

/** Admin-center links for a managed device id. */
export function deepLinks(id: string, portalUrl: string, tenantId?: string): Device['deepLinks'] {
  const base = portalUrl.replace(/\/+$/, '') + (tenantId ? `/${encodeURIComponent(tenantId)}` : '');
  const blade = `${base}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~`;
  const dev = encodeURIComponent(id);
  return { overview: `${blade}/overview/mdmDeviceId/${dev}`, compliance: `${blade}/compliance/mdmDeviceId/${dev}` };
}

/** What `userAddressOf` reads of a record. */
export const USER_ADDRESS_SELECT: readonly string[] = ['userPrincipalName', 'emailAddress', 'operatingSystem'];

/**
 * The address a sink matches the record's primary user by, as the device
 * passed on will carry it: the UPN (cleaned as userOf cleans it) or else the
 * e-mail address, lower case; null when there is none. For the user names
 * page 1 announces (SyncEnvelope.userPrincipalNames).
 */
export function userAddressOf(r: Pick<ManagedDeviceRecord, 'userPrincipalName' | 'emailAddress' | 'operatingSystem'>): string | null {
  const rawUpn = nonBlank(r.userPrincipalName);
  const upn = platformOf(r.operatingSystem) === 'android' ? cleanAndroidEnterpriseUpn(rawUpn) : rawUpn;
  const a = (upn || nonBlank(r.emailAddress) || '').trim().toLowerCase();
  return a.includes('@') ? a : null;
}

function userOf(r: ManagedDeviceRecord, deleted: boolean, platform: Platform): DeviceUser | null {
  if (deleted) return null;
  const id = nonBlank(r.userId);
  const rawUpn = nonBlank(r.userPrincipalName);
  const upn = platform === 'android' ? cleanAndroidEnterpriseUpn(rawUpn) : rawUpn;
  if (!id && !upn) return null;
  return { id, upn, email: nonBlank(r.emailAddress), displayName: nonBlank(r.userDisplayName) };
}

/**
 * One managedDevice LIST record → Device. `userDeleted` is the directory's
 * answer when known (deleted-users.ts); without it the record alone decides.
 * Never throws on missing or odd fields (only on a record without id).
 */
export function normaliseDevice(r: ManagedDeviceRecord, o: NormaliseOptions, userDeleted?: boolean): Device {
  const id = nonBlank(r.id);
  if (!id) throw new Error('A managed device record without an id cannot be normalised');
  const deleted = userDeleted ?? looksLikeDeletedUser(r);
  const osName = nonBlank(r.operatingSystem);
  const platform = platformOf(osName);
  const aad = nonBlank(r.azureADDeviceId);
  const total = bytesOrNull(r.totalStorageSpaceInBytes);
  const rawSerial = typeof r.serialNumber === 'string' && r.serialNumber.length ? r.serialNumber : null;
  return {
    id,
    azureAdDeviceId: aad && !ZERO_GUID.test(aad) ? aad : null,
    name: deleted ? DELETED_USER_DEVICE_NAME : nonBlank(r.deviceName) ?? nonBlank(r.managedDeviceName) ?? id,
    serialNumber: o.placeholders.clean(rawSerial),
    rawSerialNumber: rawSerial,
    manufacturer: nonBlank(r.manufacturer),
    model: nonBlank(r.model),
    os: { name: osName, version: nonBlank(r.osVersion), sku: skuOf(r) },
    // A total of 0 means "not reported"; free space is only meaningful next to a total.
    storage: { totalBytes: total ? total : null, freeBytes: total ? bytesOrNull(r.freeStorageSpaceInBytes) : null },
    enrolledAt: dateOrNull(r.enrolledDateTime),
    lastContactAt: dateOrNull(r.lastSyncDateTime),
    azureAdRegistered: typeof r.azureADRegistered === 'boolean' ? r.azureADRegistered : null,
    joinType: nonBlank(r.joinType),
    ownership: ownershipOf(r.managedDeviceOwnerType),
    complianceState: nonBlank(r.complianceState),
    encrypted: typeof r.isEncrypted === 'boolean' ? r.isEncrypted : null,
    jailbroken: jailbrokenOf(r.jailBroken),
    managementAgent: nonBlank(r.managementAgent),
    coManaged: isCoManaged(r.managementAgent),
    managementState: nonBlank(r.managementState),
    user: userOf(r, deleted, platform),
    userDeleted: deleted,
    imei: nonBlank(r.imei),
    meid: nonBlank(r.meid),
    phoneNumber: nonBlank(r.phoneNumber),
    wifiMac: nonBlank(r.wiFiMacAddress),
    deepLinks: deepLinks(id, o.portalUrl, o.tenantId),
  };
}
