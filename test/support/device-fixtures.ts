/**
 * Input for the 4me sink's tests, exactly as the Intune sources emit it
 * (nodes/lib/contracts.ts): Device and ComplianceViolation objects, and the
 * page messages of sync runs (msg.topic, msg.payload, msg.sync).
 *
 * Devices come from a SimTenant through the real normaliser (so names,
 * serial placeholders, users, deep links are what a run would carry), or are
 * made directly by `makeDevice` for small, fully controlled cases.
 */
import crypto from 'node:crypto';
import type { ComplianceViolation, Device, SyncEnvelope, SyncMode } from '../../nodes/lib/contracts';
import { PlaceholderSerials, isDeletedUserRecord, normaliseDevice, type Platform } from '../../nodes/lib/devices/device-normaliser';
import { emptySkipCounts, type DeviceFilterSettings, type SkipReason } from '../../nodes/lib/devices/device-filters';
import { SimTenant, type Platform as SimPlatform } from '../../sim/tenant';

export const PORTAL = 'https://intune.microsoft.com';

/** The devices a default device run passes on: every live device, re-enrolled duplicates collapsed. */
export function tenantDevices(tenant: SimTenant): Device[] {
  const placeholders = new PlaceholderSerials();
  const out: Device[] = [];
  for (let i = 0; i < tenant.positions; i++) {
    const rec = tenant.deviceAt(i);
    const meta = tenant.metaAt(i);
    if (!rec || !meta) continue;
    if (meta.duplicateOf !== null) continue;
    out.push(normaliseDevice(rec, { portalUrl: PORTAL, tenantId: tenant.tenantId, placeholders }, meta.userDeleted));
  }
  return out;
}

/** Compliance violations of the given devices, in the contract's shape. */
export function tenantViolations(tenant: SimTenant, devices: Device[]): ComplianceViolation[] {
  const out: ComplianceViolation[] = [];
  const byId = new Map(devices.map((d) => [d.id, d]));
  for (let i = 0; i < tenant.positions; i++) {
    for (const v of tenant.violationsAt(i)) {
      const d = byId.get(v.deviceId);
      if (!d) continue;
      out.push({
        key: v.key,
        device: { id: d.id, name: d.name, serialNumber: d.serialNumber, os: d.os, user: d.user },
        policy: { id: v.policyId, name: v.policyName, platform: v.platformType },
        settings: v.settings.map((s) => ({
          name: s.label,
          state: s.state,
          currentValue: s.currentValue,
          errorCode: s.errorCode || null,
          errorDescription: s.state === 'error' ? s.errorDescription : null,
        })),
        detectedAt: d.lastContactAt,
        deepLink: d.deepLinks.compliance,
      });
    }
  }
  return out;
}

const DAY = 86_400_000;

/** The device platform family of each simulated platform. */
export const SIM_FAMILY: Record<SimPlatform, Platform> = {
  windows: 'windows',
  ios: 'ios',
  ipados: 'ios',
  'android-wp': 'android',
  'android-fm': 'android',
  'android-ded': 'android',
  'android-da': 'android',
  macos: 'macos',
  linux: 'linux',
};

export interface DeviceTruth {
  read: number;
  kept: Set<string>;
  skipped: Record<SkipReason, number>;
}

/** What a run must emit, decided from the generator's own knowledge of each device. */
/**
 * What a run keeps and skips, from the tenant's own truth. `byRecordOnly`:
 * what the Preview keeps with nothing cached from the directory — a device
 * counts as a deleted user's only where its record says so (Intune's
 * deleted-user name, or a user id with a blank UPN); the Preview does not
 * wait for directory look-ups (it reports them as pending).
 */
export function deviceGroundTruth(tenant: SimTenant, s: DeviceFilterSettings, now: number, sinceMs?: number, byRecordOnly = false): DeviceTruth {
  const out: DeviceTruth = { read: 0, kept: new Set(), skipped: emptySkipCounts() };
  const skipStates = new Set(s.skipManagementStates.map((x) => x.toLowerCase()));
  for (let i = 0; i < tenant.positions; i++) {
    const dev = tenant.deviceAt(i);
    if (!dev) continue;
    const last = Date.parse(dev.lastSyncDateTime);
    if (sinceMs !== undefined && !(last > sinceMs)) continue;
    out.read++;
    const meta = tenant.metaAt(i)!;
    const family = SIM_FAMILY[meta.platform];
    const computer = family === 'windows' || family === 'macos' || family === 'linux';
    let reason: SkipReason | null = null;
    if (meta.duplicateOf !== null && !tenant.metaAt(meta.duplicateOf)!.placeholderSerial) reason = 'duplicate';
    else if (!s.platforms[family]) reason = 'platform';
    else if (!s.includePersonal && meta.ownership === 'personal' && computer) reason = 'personal';
    else if (userDeleted(dev, meta.userDeleted, byRecordOnly) && (!s.includeDeletedUser || s.onlyWithPrimaryUser)) reason = 'userDeleted';
    else if (s.onlyWithPrimaryUser && meta.userIndex === null) reason = 'noPrimaryUser';
    else if (skipStates.has(dev.managementState.toLowerCase())) reason = 'managementState';
    else if (s.staleDays > 0 && now - last > s.staleDays * DAY) reason = 'stale';
    if (reason) out.skipped[reason]++;
    else out.kept.add(dev.id);
  }
  return out;
}

function userDeleted(dev: { deviceName?: string | null; userId?: string | null; userPrincipalName?: string | null }, truth: boolean, byRecordOnly: boolean): boolean {
  if (!byRecordOnly) return truth;
  return isDeletedUserRecord({ deviceName: dev.deviceName ?? null, managedDeviceName: null }) || (!!dev.userId && !(dev.userPrincipalName ?? '').trim());
}

/** A small, fully controlled device. */
export function makeDevice(n: number, o: Partial<Device> = {}): Device {
  const id = o.id ?? uuidFrom(`device-${n}`);
  const upn = `user${n}@contoso.example`;
  const d: Device = {
    id,
    azureAdDeviceId: uuidFrom(`aad-${n}`),
    name: `DEVICE-${String(n).padStart(5, '0')}`,
    serialNumber: `SN${String(n).padStart(8, '0')}`,
    rawSerialNumber: `SN${String(n).padStart(8, '0')}`,
    manufacturer: n % 3 === 0 ? 'Apple' : 'Microsoft Corporation',
    model: n % 3 === 0 ? 'iPhone 15' : 'Surface Pro 9',
    os: n % 3 === 0 ? { name: 'iOS', version: '17.4.1', sku: null } : { name: 'Windows', version: '10.0.22631.3447', sku: 'Windows 11 Enterprise (4)' },
    storage: { totalBytes: 256 * 1024 ** 3, freeBytes: 100 * 1024 ** 3 },
    enrolledAt: '2024-01-15T08:00:00.000Z',
    lastContactAt: '2024-06-01T12:00:00.000Z',
    azureAdRegistered: true,
    joinType: n % 3 === 0 ? null : 'azureADJoined',
    ownership: 'company',
    complianceState: 'compliant',
    encrypted: true,
    jailbroken: n % 3 === 0 ? 'false' : 'unknown',
    managementAgent: 'mdm',
    coManaged: false,
    managementState: 'managed',
    user: { id: uuidFrom(`user-${n}`), upn, email: upn, displayName: `User ${n}` },
    userDeleted: false,
    imei: null,
    meid: null,
    phoneNumber: null,
    wifiMac: null,
    deepLinks: {
      overview: `${PORTAL}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/${id}`,
      compliance: `${PORTAL}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/compliance/mdmDeviceId/${id}`,
    },
    ...o,
  };
  return d;
}

export function makeViolation(d: Device, policy: { id: string; name: string; platform?: string }, settings: ComplianceViolation['settings'] = []): ComplianceViolation {
  return {
    key: `${d.id}:${policy.id}`,
    device: { id: d.id, name: d.name, serialNumber: d.serialNumber, os: d.os, user: d.user },
    policy: { id: policy.id, name: policy.name, platform: policy.platform ?? 'windows10AndLater' },
    settings: settings.length
      ? settings
      : [{ name: 'Firewall', state: 'nonCompliant', currentValue: 'Off', errorCode: null, errorDescription: null }],
    detectedAt: '2024-06-01T12:00:00.000Z',
    deepLink: d.deepLinks.compliance,
  };
}

export function uuidFrom(s: string): string {
  const h = crypto.createHash('sha1').update(s).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface RunOptions {
  topic?: 'intune/devices' | 'intune/compliance';
  mode?: SyncMode;
  instance?: string;
  runId?: string;
  pageSize?: number;
  /** Mark the last page as aborted (stats.aborted). */
  aborted?: boolean;
  /** Leave out these page numbers (1-based), e.g. to simulate a lost page. */
  dropPages?: number[];
}

export interface PageMsg {
  topic: string;
  payload: unknown[];
  sync: SyncEnvelope;
}

let runCounter = 0;

/** The page messages of one run over `items`. An empty run is one empty last page, as the sources send it. */
export function runPages(items: unknown[], o: RunOptions = {}): PageMsg[] {
  const size = o.pageSize ?? 1000;
  const runId = o.runId ?? `test-${Date.now()}-${++runCounter}`;
  const startedAt = new Date().toISOString();
  const pages: unknown[][] = [];
  for (let i = 0; i < items.length; i += size) pages.push(items.slice(i, i + size));
  if (!pages.length) pages.push([]);
  const out: PageMsg[] = pages.map((p, i) => ({
    topic: o.topic ?? 'intune/devices',
    payload: p,
    sync: {
      runId,
      instance: o.instance ?? 'tenant-a',
      mode: o.mode ?? 'full',
      page: i + 1,
      last: i === pages.length - 1,
      startedAt,
    },
  }));
  const last = out[out.length - 1];
  last.sync.stats = {
    items: items.length,
    emitted: items.length,
    skipped: {},
    pages: out.length,
    requests: 0,
    retries: 0,
    throttled: 0,
    throttleWaitMs: 0,
    durationMs: 0,
    ...(o.aborted ? { aborted: true, error: 'cancelled' } : {}),
  };
  return out.filter((p) => !(o.dropPages ?? []).includes(p.sync.page));
}
