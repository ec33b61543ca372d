/**
 * Unit tests of the services behind intune-devices: the normaliser, the
 * filters, the duplicate index, the settings parser, the sync-run envelope,
 * the schedule and the context-store helper. No servers.
 */
import { expect } from 'chai';
import { CLOUDS } from '../nodes/lib/intune/clouds';
import { assertSelect } from '../nodes/lib/graph/graph-schema';
import {
  DEFAULT_PLACEHOLDER_SERIALS,
  DELETED_USER_DEVICE_NAME,
  DEVICE_SELECT_BETA_EXTRA,
  DUPLICATE_SELECT,
  FILTER_SELECT,
  PlaceholderSerials,
  cleanAndroidEnterpriseUpn,
  deepLinks,
  deviceSelect,
  jailbrokenOf,
  normaliseDevice,
  platformOf,
  serialKey,
  type ManagedDeviceRecord,
} from '../nodes/lib/devices/device-normaliser';
import { DEFAULT_FILTERS, FilterSettingsError, filterFingerprint, parseFilterSettings, skipReason, type DeviceFilterSettings } from '../nodes/lib/devices/device-filters';
import { DuplicateIndex, syncMs } from '../nodes/lib/devices/device-duplicates';
import { DeviceSettingsError, parseDeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';
import { SyncRunner } from '../nodes/lib/run/sync-run';
import type { PageMessage, SummaryMessage } from '../nodes/lib/contracts';
import { RunSchedule, intervalMs, firstDueAt, FIRST_RUN_DELAY_MS, type ScheduleClock } from '../nodes/lib/run/run-schedule';
import { ContextValue, storeInfo, type ContextLike } from '../nodes/lib/node-red/context-state';
import { DeletedUserCheck, UserExistenceCache } from '../nodes/lib/devices/deleted-users';
import { emptyTally, scanDevices, sinceFilter, INCREMENTAL_BUFFER_RECORDS } from '../nodes/lib/devices/device-scan';
import { previewScan } from '../nodes/lib/devices/device-preview';
import { SimTenant } from '../sim/tenant';

const DAY = 86_400_000;
const NOW = Date.parse('2025-06-01T12:00:00Z');
const placeholders = new PlaceholderSerials();
const opts = { portalUrl: CLOUDS.global.portalUrl, tenantId: 'tenant-1', placeholders };

function rec(p: Partial<ManagedDeviceRecord> = {}): ManagedDeviceRecord {
  return {
    id: '11111111-2222-3333-4444-555555555555',
    deviceName: 'CONTOSO-NB-00001',
    serialNumber: 'PF3ABCDE',
    operatingSystem: 'Windows',
    osVersion: '10.0.22631.3007',
    manufacturer: 'LENOVO',
    model: '21HD003VGE',
    lastSyncDateTime: '2025-05-31T08:00:00Z',
    enrolledDateTime: '2024-01-10T09:00:00Z',
    managedDeviceOwnerType: 'company',
    managementState: 'managed',
    managementAgent: 'mdm',
    complianceState: 'compliant',
    userId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
    userPrincipalName: 'jane.doe@contoso.com',
    emailAddress: 'jane.doe@contoso.com',
    userDisplayName: 'Jane Doe',
    jailBroken: 'Unknown',
    isEncrypted: true,
    azureADRegistered: true,
    azureADDeviceId: '99999999-8888-4777-8666-555555555555',
    totalStorageSpaceInBytes: 254_721_032_192,
    freeStorageSpaceInBytes: 150_000_000_000,
    ...p,
  };
}

describe('intune-devices services', () => {
  describe('device-normaliser', () => {
    it('maps every contract field of a full record (the 4me CI attribute table included)', () => {
      const d = normaliseDevice(rec({ skuFamily: 'Professional', skuNumber: 48, joinType: 'azureADJoined', imei: '', meid: null, phoneNumber: '+49 151 1234567', wiFiMacAddress: 'a1b2c3d4e5f6' }), opts);
      expect(d).to.deep.include({
        id: '11111111-2222-3333-4444-555555555555',
        azureAdDeviceId: '99999999-8888-4777-8666-555555555555',
        name: 'CONTOSO-NB-00001',
        serialNumber: 'PF3ABCDE',
        rawSerialNumber: 'PF3ABCDE',
        manufacturer: 'LENOVO',
        model: '21HD003VGE',
        enrolledAt: '2024-01-10T09:00:00.000Z',
        lastContactAt: '2025-05-31T08:00:00.000Z',
        azureAdRegistered: true,
        joinType: 'azureADJoined',
        ownership: 'company',
        complianceState: 'compliant',
        encrypted: true,
        jailbroken: 'unknown',
        managementAgent: 'mdm',
        coManaged: false,
        managementState: 'managed',
        userDeleted: false,
        imei: null,
        meid: null,
        phoneNumber: '+49 151 1234567',
        wifiMac: 'a1b2c3d4e5f6',
      });
      expect(d.os).to.deep.equal({ name: 'Windows', version: '10.0.22631.3007', sku: 'Professional (48)' });
      expect(d.storage).to.deep.equal({ totalBytes: 254_721_032_192, freeBytes: 150_000_000_000 });
      expect(d.user).to.deep.equal({ id: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', upn: 'jane.doe@contoso.com', email: 'jane.doe@contoso.com', displayName: 'Jane Doe' });
    });

    it("turns Graph's empty spellings into null (zero GUID, year-1 dates, 0 bytes, blank strings) and never guesses beta-only fields", () => {
      const d = normaliseDevice(
        rec({ azureADDeviceId: '00000000-0000-0000-0000-000000000000', enrolledDateTime: '0001-01-01T00:00:00Z', totalStorageSpaceInBytes: 0, freeStorageSpaceInBytes: 0, model: '  ', azureADRegistered: null }),
        opts,
      );
      expect(d.azureAdDeviceId).to.equal(null);
      expect(d.enrolledAt).to.equal(null);
      expect(d.storage).to.deep.equal({ totalBytes: null, freeBytes: null });
      expect(d.model).to.equal(null);
      expect(d.azureAdRegistered).to.equal(null);
      // v1.0 record: no skuFamily/joinType → null, although deviceEnrollmentType would hint at a join type
      expect(normaliseDevice(rec({ deviceEnrollmentType: 'windowsAzureADJoin' }), opts)).to.deep.include({ joinType: null });
      expect(normaliseDevice(rec(), opts).os.sku).to.equal(null);
    });

    it('nulls placeholder serial numbers (defaults, custom list, /regex/) and keeps the raw value', () => {
      for (const raw of ['Default string', 'To be filled by O.E.M.', 'to be filled by o.e.m.', 'System Serial Number', '0', '0000000', '  ', '', 'None']) {
        const d = normaliseDevice(rec({ serialNumber: raw }), opts);
        expect(d.serialNumber, raw).to.equal(null);
        expect(d.rawSerialNumber, raw).to.equal(raw === '' ? null : raw);
      }
      expect(normaliseDevice(rec({ serialNumber: ' 5CG1234ABC ' }), opts).serialNumber).to.equal('5CG1234ABC');
      const custom = new PlaceholderSerials(['ABC123', '/^VMW-/']);
      expect(custom.clean('abc123')).to.equal(null);
      expect(custom.clean('VMW-42')).to.equal(null);
      expect(custom.clean('Default string')).to.equal('Default string');
      expect(() => new PlaceholderSerials(['/[unclosed/'])).to.throw(/not a valid regular expression/);
      expect(PlaceholderSerials.parseList('a\n\n b \r\nc')).to.deep.equal(['a', 'b', 'c']);
      expect(DEFAULT_PLACEHOLDER_SERIALS).to.include('Default string');
    });

    it('cleans the GUID prefix of Android Enterprise UPNs, only on Android', () => {
      const guid = '3f2a9c41-7d0e-4b6a-9e1f-2c3d4e5f6a7b';
      expect(cleanAndroidEnterpriseUpn(`${guid}_jane.doe@contoso.com`)).to.equal('jane.doe@contoso.com');
      expect(cleanAndroidEnterpriseUpn(`${guid.replace(/-/g, '')}jane.doe@contoso.com`)).to.equal('jane.doe@contoso.com');
      expect(cleanAndroidEnterpriseUpn('jane.doe@contoso.com')).to.equal('jane.doe@contoso.com');
      // a bare GUID local part is not a prefix: nothing left to match on, keep it
      expect(cleanAndroidEnterpriseUpn(`${guid}@contoso.com`)).to.equal(`${guid}@contoso.com`);
      const android = normaliseDevice(rec({ operatingSystem: 'Android', userPrincipalName: `${guid}_jane.doe@contoso.com` }), opts);
      expect(android.user!.upn).to.equal('jane.doe@contoso.com');
      const windows = normaliseDevice(rec({ userPrincipalName: `${guid}_jane.doe@contoso.com` }), opts);
      expect(windows.user!.upn).to.equal(`${guid}_jane.doe@contoso.com`);
    });

    it('flags Configuration Manager (co-managed) devices and keeps them', () => {
      for (const agent of ['configurationManagerClientMdm', 'configurationManagerClientMdmEas', 'configurationManagerClient']) {
        const d = normaliseDevice(rec({ managementAgent: agent }), opts);
        expect(d.coManaged, agent).to.equal(true);
        expect(skipReason(d, DEFAULT_FILTERS, NOW), agent).to.equal(null);
      }
      for (const agent of ['mdm', 'easMdm', 'intuneClient', 'jamf']) expect(normaliseDevice(rec({ managementAgent: agent }), opts).coManaged, agent).to.equal(false);
    });

    it('names a device whose primary user was deleted as the 4me connector does, without user data', () => {
      const byDirectory = normaliseDevice(rec(), opts, true);
      expect(byDirectory.name).to.equal(DELETED_USER_DEVICE_NAME);
      expect(byDirectory.user).to.equal(null);
      expect(byDirectory.userDeleted).to.equal(true);
      // without a directory answer: a user id without UPN gives it away
      expect(normaliseDevice(rec({ userPrincipalName: '' }), opts).userDeleted).to.equal(true);
      expect(normaliseDevice(rec({ deviceName: 'User deleted for this device' }), opts).userDeleted).to.equal(true);
      // a userless device is not a deleted-user device
      const userless = normaliseDevice(rec({ userId: '', userPrincipalName: '', emailAddress: '', userDisplayName: null }), opts);
      expect(userless.user).to.equal(null);
      expect(userless.userDeleted).to.equal(false);
    });

    it('reads ownership and the jailBroken STRING as tri-states', () => {
      expect(normaliseDevice(rec({ managedDeviceOwnerType: 'personal' }), opts).ownership).to.equal('personal');
      expect(normaliseDevice(rec({ managedDeviceOwnerType: 'unknownFutureValue' }), opts).ownership).to.equal('unknown');
      expect(['True', 'true', 'False', 'Unknown', '', null, undefined, 'garbage'].map((v) => jailbrokenOf(v))).to.deep.equal([
        'true',
        'true',
        'false',
        'unknown',
        'unknown',
        'unknown',
        'unknown',
        'unknown',
      ]);
      // a Boolean true is not how Graph spells it: not trusted
      expect(jailbrokenOf(true)).to.equal('unknown');
    });

    it('builds deep links into the admin center of the chosen cloud, in the tenant', () => {
      for (const cloud of ['global', 'usgov', 'china'] as const) {
        const d = normaliseDevice(rec(), { ...opts, portalUrl: CLOUDS[cloud].portalUrl });
        expect(d.deepLinks.overview).to.equal(
          `${CLOUDS[cloud].portalUrl}/tenant-1/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/11111111-2222-3333-4444-555555555555`,
        );
        expect(d.deepLinks.compliance).to.match(new RegExp(`^${CLOUDS[cloud].portalUrl.replace(/\./g, '\\.')}/tenant-1/#view/.+/~/compliance/mdmDeviceId/11111111-`));
      }
      expect(deepLinks('x y', 'https://intune.example/', undefined).overview).to.equal('https://intune.example/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/x%20y');
    });

    it('asks Graph only for what the contract needs: selects valid per version, beta fields only on beta', () => {
      expect(() => assertSelect('v1.0', 'managedDevice', deviceSelect('v1.0'))).to.not.throw();
      expect(() => assertSelect('beta', 'managedDevice', deviceSelect('beta'))).to.not.throw();
      expect(deviceSelect('v1.0')).to.not.include.members(['joinType']);
      expect(deviceSelect('beta')).to.include.members([...DEVICE_SELECT_BETA_EXTRA]);
      for (const b of DEVICE_SELECT_BETA_EXTRA) expect(() => assertSelect('v1.0', 'managedDevice', [b]), b).to.throw(/only in beta/);
      expect(() => assertSelect('v1.0', 'managedDevice', [...FILTER_SELECT, ...DUPLICATE_SELECT])).to.not.throw();
      // nothing the contract does not use
      expect(deviceSelect('v1.0')).to.not.include.members(['notes', 'udid', 'iccid', 'deviceActionResults', 'configurationManagerClientEnabledFeatures']);
    });

    it('classifies platforms from operatingSystem', () => {
      expect(['Windows', 'macOS', 'iOS', 'iPadOS', 'Android', 'AndroidForWork', 'AndroidEnterprise', 'Linux', 'ChromeOS', '', null].map((o) => platformOf(o))).to.deep.equal([
        'windows',
        'macos',
        'ios',
        'ios',
        'android',
        'android',
        'android',
        'linux',
        'other',
        'other',
        'other',
      ]);
    });

    it('normalises every device of a generated tenant; placeholders match the generator', () => {
      const tenant = new SimTenant({ seed: 5, devices: 2000, now: NOW });
      let placeholdersSeen = 0;
      for (let i = 0; i < tenant.size; i++) {
        const meta = tenant.metaAt(i)!;
        if (meta.duplicateOf !== null) continue; // a re-enrolment carries its original's serial
        const d = normaliseDevice(tenant.deviceAt(i) as unknown as ManagedDeviceRecord, opts);
        expect(d.serialNumber === null, `${i} ${JSON.stringify(d.rawSerialNumber)}`).to.equal(meta.placeholderSerial);
        expect(d.coManaged, `co-managed ${i}`).to.equal(meta.coManaged);
        expect(d.ownership).to.equal(meta.ownership);
        if (meta.placeholderSerial) placeholdersSeen++;
      }
      expect(placeholdersSeen).to.be.greaterThan(10);
    });
  });

  describe('device-filters', () => {
    const filters = (p: Record<string, unknown>): DeviceFilterSettings => parseFilterSettings(p);
    const dev = (p: Partial<ManagedDeviceRecord>, deleted?: boolean) => normaliseDevice(rec(p), opts, deleted);

    it('has the defaults of the seed: personal devices, userless-only rule and deleted users off', () => {
      expect(parseFilterSettings({})).to.deep.equal(DEFAULT_FILTERS);
      expect(DEFAULT_FILTERS.includePersonal).to.equal(false);
      expect(DEFAULT_FILTERS.onlyWithPrimaryUser).to.equal(false);
      expect(DEFAULT_FILTERS.includeDeletedUser).to.equal(false);
    });

    it('applies the platform switches', () => {
      const s = filters({ platformWindows: false });
      expect(skipReason(dev({}), s, NOW)).to.equal('platform');
      expect(skipReason(dev({ operatingSystem: 'iOS' }), s, NOW)).to.equal(null);
      expect(skipReason(dev({ operatingSystem: 'ChromeOS' }), DEFAULT_FILTERS, NOW)).to.equal('platform');
      expect(skipReason(dev({ operatingSystem: 'ChromeOS' }), filters({ platformOther: true }), NOW)).to.equal(null);
    });

    it('skips personal computers only; personal phones follow their platform switch', () => {
      for (const os of ['Windows', 'macOS', 'Linux']) expect(skipReason(dev({ operatingSystem: os, managedDeviceOwnerType: 'personal' }), DEFAULT_FILTERS, NOW), os).to.equal('personal');
      for (const os of ['iOS', 'iPadOS', 'Android']) expect(skipReason(dev({ operatingSystem: os, managedDeviceOwnerType: 'personal' }), DEFAULT_FILTERS, NOW), os).to.equal(null);
      expect(skipReason(dev({ managedDeviceOwnerType: 'personal' }), filters({ includePersonal: true }), NOW)).to.equal(null);
      expect(skipReason(dev({ operatingSystem: 'Android', managedDeviceOwnerType: 'personal' }), filters({ platformAndroid: false }), NOW)).to.equal('platform');
    });

    it('handles primary users: deleted ones off by default, "only with primary user" drops deleted ones too', () => {
      const deleted = dev({}, true);
      const userless = dev({ userId: '', userPrincipalName: '' }, false);
      expect(skipReason(deleted, DEFAULT_FILTERS, NOW)).to.equal('userDeleted');
      expect(skipReason(deleted, filters({ includeDeletedUser: true }), NOW)).to.equal(null);
      expect(skipReason(deleted, filters({ includeDeletedUser: true, onlyWithPrimaryUser: true }), NOW)).to.equal('userDeleted');
      expect(skipReason(userless, DEFAULT_FILTERS, NOW)).to.equal(null);
      expect(skipReason(userless, filters({ onlyWithPrimaryUser: true }), NOW)).to.equal('noPrimaryUser');
      expect(skipReason(dev({}), filters({ onlyWithPrimaryUser: true }), NOW)).to.equal(null);
    });

    it('skips stale devices and configured management states', () => {
      const s = filters({ staleDays: 30 });
      expect(skipReason(dev({ lastSyncDateTime: new Date(NOW - 31 * DAY).toISOString() }), s, NOW)).to.equal('stale');
      expect(skipReason(dev({ lastSyncDateTime: new Date(NOW - 29 * DAY).toISOString() }), s, NOW)).to.equal(null);
      expect(skipReason(dev({ lastSyncDateTime: '0001-01-01T00:00:00Z' }), s, NOW)).to.equal('stale');
      expect(skipReason(dev({ lastSyncDateTime: new Date(NOW - 900 * DAY).toISOString() }), DEFAULT_FILTERS, NOW)).to.equal(null);
      for (const st of ['retirePending', 'wipePending', 'deletePending', 'retireIssued', 'wipeIssued']) expect(skipReason(dev({ managementState: st }), DEFAULT_FILTERS, NOW), st).to.equal('managementState');
      expect(skipReason(dev({ managementState: 'retirePending' }), filters({ skipStates: [] }), NOW)).to.equal(null);
      expect(skipReason(dev({ managementState: 'unhealthy' }), filters({ skipStates: 'unhealthy, discovered' }), NOW)).to.equal('managementState');
    });

    it('counts a device under the first reason only (platform > personal > userDeleted > noPrimaryUser > state > stale)', () => {
      const all = dev({ managedDeviceOwnerType: 'personal', managementState: 'wipePending', lastSyncDateTime: '2020-01-01T00:00:00Z' }, true);
      expect(skipReason(all, filters({ platformWindows: false, staleDays: 5 }), NOW)).to.equal('platform');
      expect(skipReason(all, filters({ staleDays: 5 }), NOW)).to.equal('personal');
      expect(skipReason(all, filters({ staleDays: 5, includePersonal: true }), NOW)).to.equal('userDeleted');
      expect(skipReason(all, filters({ staleDays: 5, includePersonal: true, includeDeletedUser: true }), NOW)).to.equal('managementState');
      expect(skipReason(all, filters({ staleDays: 5, includePersonal: true, includeDeletedUser: true, skipStates: [] }), NOW)).to.equal('stale');
    });

    it('refuses settings that cannot work, in plain words', () => {
      const off = { platformWindows: false, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, platformOther: false };
      expect(() => parseFilterSettings(off)).to.throw(FilterSettingsError, /No platform is selected/);
      expect(() => parseFilterSettings({ staleDays: -3 })).to.throw(FilterSettingsError, /whole number of days, 0 or more/);
      expect(() => parseFilterSettings({ staleDays: '2.5' })).to.throw(FilterSettingsError, /whole number/);
      expect(() => parseFilterSettings({ skipStates: ['retirePending', 'gone'] })).to.throw(FilterSettingsError, /Unknown management state\(s\) "gone"/);
      expect(filterFingerprint(parseFilterSettings({ staleDays: 3 }))).to.not.equal(filterFingerprint(DEFAULT_FILTERS));
      expect(filterFingerprint(parseFilterSettings({ skipStates: 'wipePending,retirePending' }))).to.equal(filterFingerprint(parseFilterSettings({ skipStates: ['retirePending', 'wipePending'] })));
    });
  });

  describe('node settings', () => {
    it('parses and validates every setting of the node', () => {
      const s = parseDeviceSourceSettings({ fullEveryHours: '24', incrementalEveryMinutes: 15, overlapMinutes: 5, graphVersion: 'beta', triggerMode: 'incremental', store: ' file ' });
      expect(s).to.deep.include({ fullEveryMs: 24 * 3_600_000, incrementalEveryMs: 15 * 60_000, overlapMs: 300_000, graphVersion: 'beta', triggerMode: 'incremental', store: 'file', collapseDuplicates: true, checkDeletedUsers: true });
      expect(() => parseDeviceSourceSettings({ fullEveryHours: -1 })).to.throw(DeviceSettingsError, /0 \(off\) or a positive number of hours/);
      expect(() => parseDeviceSourceSettings({ graphVersion: 'v2' })).to.throw(DeviceSettingsError, /v1\.0" or "beta/);
      expect(() => parseDeviceSourceSettings({ triggerMode: 'delta' })).to.throw(DeviceSettingsError, /"full" or "incremental"/);
      expect(() => parseDeviceSourceSettings({ overlapMinutes: -1 })).to.throw(DeviceSettingsError, /overlap/);
      expect(() => parseDeviceSourceSettings({ placeholderSerials: '/(/' })).to.throw(DeviceSettingsError, /regular expression/);
      try {
        parseDeviceSourceSettings({ staleDays: -1 });
        expect.fail('no error');
      } catch (e) {
        expect((e as DeviceSettingsError).field).to.equal('staleDays');
      }
      expect(intervalMs(1.5, 'minutes', 'x')).to.equal(90_000);
      expect(() => intervalMs(0.001, 'minutes', 'X')).to.throw(/at least 1 minute/);
    });
  });

  describe('device-duplicates', () => {
    it('keeps only the newest record per serial, counts the others, forgets singletons', () => {
      const idx = new DuplicateIndex();
      const rows: Array<[string | null, number]> = [
        ['A', 100],
        ['B', 50],
        ['A', 300],
        [null, 1],
        ['C', 10],
        ['A', 200],
        ['C', 10],
      ];
      for (const [k, t] of rows) idx.learn(k, t);
      idx.seal();
      expect(idx.duplicatedSerials).to.equal(2); // A and C; B was seen once and dropped
      expect(rows.map(([k, t]) => idx.keep(k, t))).to.deep.equal([false, true, true, true, true, false, false]);
    });

    it('one record per serial even when a twin synced between the passes', () => {
      const idx = new DuplicateIndex();
      idx.learn('S', 100);
      idx.learn('S', 200);
      idx.seal();
      expect(idx.keep('S', 200)).to.equal(true);
      expect(idx.keep('S', 500)).to.equal(false);
      expect(() => idx.learn('X', 1)).to.throw(/after seal/);
    });
  });

  describe('deleted-users', () => {
    const USER = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    const GONE = 'bbbbbbbb-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    /** Graph's error codes of the answers used here (docs/graph-users.md). */
    const CODES: Record<number, string> = { 404: 'Request_ResourceNotFound', 403: 'Authorization_RequestDenied', 400: 'Request_BadRequest', 503: 'ServiceUnavailable' };
    function fakeGraph(status: (id: string) => number, code: (status: number) => string | undefined = (st) => CODES[st]) {
      const calls: string[][] = [];
      return {
        calls,
        batch: async (reqs: Array<{ id: string; url: string }>) => {
          calls.push(reqs.map((r) => r.url));
          return new Map(
            reqs.map((r) => {
              const st = status(r.url.split('/')[2].split('?')[0]);
              return [r.id, st < 300 ? { status: st, body: { id: 'x' } } : { status: st, body: { error: { code: code(st), message: `answer ${st}` } } }];
            }),
          );
        },
      };
    }
    const OTHER = 'cccccccc-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    /** A device of this user with a UPN: only such records are ambiguous, so only their users are asked. */
    const u = (userId: string) => ({ userId, userPrincipalName: 'someone@contoso.com' });

    it('the device record first: the deleted-user name and a blank UPN decide without the directory; only a user id with a UPN is asked', async () => {
      const g = fakeGraph(() => 200);
      const check = new DeletedUserCheck({ graph: g as never, cache: new UserExistenceCache(), useDirectory: true });
      const named = { userId: USER, userPrincipalName: 'jane@contoso.com', deviceName: 'User deleted for this device' };
      const blank = { userId: GONE, userPrincipalName: '' };
      const ambiguous = { userId: OTHER, userPrincipalName: 'old@contoso.com' };
      await check.prepare([named, blank, ambiguous, ambiguous, { userId: '' }]);
      expect(g.calls, 'one look-up, of the ambiguous user').to.deep.equal([[`/users/${OTHER}?$select=id`]]);
      expect(check.lookups).to.equal(1);
      expect(check.isDeleted(named)).to.equal(true);
      expect(check.isDeleted(blank)).to.equal(true);
      expect(check.isDeleted(ambiguous), 'the directory says the user exists').to.equal(false);
    });

    it('a Preview (lookUp: false) asks nobody: cached answers and the record only, the unchecked users counted', async () => {
      const g = fakeGraph((id) => (id === GONE ? 404 : 200));
      const cache = new UserExistenceCache();
      // A run asked about GONE earlier.
      await new DeletedUserCheck({ graph: g as never, cache, useDirectory: true }).prepare([u(GONE)]);
      const preview = new DeletedUserCheck({ graph: g as never, cache, useDirectory: true, lookUp: false });
      await preview.prepare([u(GONE), u(USER), u(OTHER), u(OTHER), { userId: USER, userPrincipalName: '' }]);
      expect(g.calls, 'no look-up by the preview').to.have.length(1);
      expect(preview.pending).to.equal(2);
      expect(preview.lookups).to.equal(0);
      expect(preview.isDeleted({ userId: GONE, userPrincipalName: 'stale@contoso.com' }), 'from the cache').to.equal(true);
      expect(preview.isDeleted({ userId: USER, userPrincipalName: 'jane@contoso.com' }), 'unchecked: the record says live').to.equal(false);
      expect(preview.isDeleted({ userId: USER, userPrincipalName: '' }), 'the record decides').to.equal(true);
    });

    it('asks the directory once per unknown user and caches the answer', async () => {
      const g = fakeGraph((id) => (id === GONE ? 404 : 200));
      const cache = new UserExistenceCache();
      const check = new DeletedUserCheck({ graph: g as never, cache, useDirectory: true });
      await check.prepare([u(USER), u(GONE), u(USER), { userId: '' }]);
      expect(g.calls).to.deep.equal([[`/users/${USER}?$select=id`, `/users/${GONE}?$select=id`]]);
      expect(check.isDeleted({ userId: GONE, userPrincipalName: 'stale@contoso.com' })).to.equal(true);
      expect(check.isDeleted({ userId: USER, userPrincipalName: 'jane@contoso.com' })).to.equal(false);
      expect(check.isDeleted({ userId: '', userPrincipalName: '' })).to.equal(false);
      await new DeletedUserCheck({ graph: g as never, cache, useDirectory: true }).prepare([u(USER), u(GONE)]);
      expect(g.calls.length).to.equal(1);
    });

    it('falls back to the blank-UPN rule without permission, and says so once', async () => {
      const g = fakeGraph(() => 403);
      const warnings: string[] = [];
      const check = new DeletedUserCheck({ graph: g as never, cache: new UserExistenceCache(), useDirectory: true, warn: (m) => warnings.push(m) });
      await check.prepare([u(USER), u(GONE)]);
      await check.prepare([u('cccccccc-bbbb-4ccc-8ddd-eeeeeeeeeeee')]);
      expect(g.calls.length).to.equal(1);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/User\.Read\.All/);
      expect(check.isDeleted({ userId: GONE, userPrincipalName: '' })).to.equal(true);
      expect(check.isDeleted({ userId: GONE, userPrincipalName: 'stale@contoso.com' })).to.equal(false);
    });

    it('a refusal (403) is kept for the hour like an answer: the next check asks nobody and still counts the users, with the cause', async () => {
      const g = fakeGraph(() => 403);
      const cache = new UserExistenceCache();
      const first = new DeletedUserCheck({ graph: g as never, cache, useDirectory: true });
      await first.prepare([u(USER), u(GONE)]);
      await first.prepare([u(OTHER)]);
      expect(first.failures().map((f) => [f.status, f.code, f.users, f.cached])).to.deep.equal([[403, 'Authorization_RequestDenied', 3, 0]]);
      expect(first.warnings()).to.have.length(1);
      expect(first.warnings()[0]).to.match(/^3 primary users could not be looked up .*403 Authorization_RequestDenied.*User\.Read\.All.*kept for 60 minutes$/);
      const second = new DeletedUserCheck({ graph: g as never, cache, useDirectory: true });
      await second.prepare([u(USER), u(GONE), u(OTHER)]);
      expect(g.calls.length, 'batches').to.equal(1);
      expect(second.failures().map((f) => [f.status, f.users, f.cached])).to.deep.equal([[403, 3, 3]]);
      expect(second.isDeleted({ userId: GONE, userPrincipalName: '' }), 'blank-UPN rule').to.equal(true);
      expect(second.isDeleted({ userId: GONE, userPrincipalName: 'old@contoso.com' })).to.equal(false);
    });

    it('404 Request_ResourceNotFound is the answer "deleted"; a 404 with another code and a 400 are failures, kept; 503 to the end is counted but asked again', async () => {
      const byId: Record<string, number> = { [USER]: 404, [GONE]: 400, [OTHER]: 503 };
      const cache = new UserExistenceCache();
      const g = fakeGraph((id) => byId[id]);
      const check = new DeletedUserCheck({ graph: g as never, cache, useDirectory: true });
      await check.prepare([u(USER), u(GONE), u(OTHER)]);
      expect(check.isDeleted({ userId: USER, userPrincipalName: 'stale@contoso.com' })).to.equal(true);
      expect(check.failures().map((f) => [f.status, f.code, f.users])).to.deep.equal([
        [400, 'Request_BadRequest', 1],
        [503, 'ServiceUnavailable', 1],
      ]);
      const w = check.warnings();
      expect(w[0]).to.match(/^1 primary user could not be looked up .*Graph answered 400 Request_BadRequest \("answer 400"\).*kept for 60 minutes$/);
      expect(w[1]).to.match(/503 ServiceUnavailable to the end .*asked again in the next run$/);
      const next = new DeletedUserCheck({ graph: g as never, cache, useDirectory: true });
      await next.prepare([u(USER), u(GONE), u(OTHER)]);
      expect(g.calls[1], 'only the 503 is asked again').to.deep.equal([`/users/${OTHER}?$select=id`]);

      // A 404 that is not the directory's "no such object" (a route Graph does not know) says nothing about the user.
      const odd = new DeletedUserCheck({ graph: fakeGraph(() => 404, () => 'UnknownError') as never, cache: new UserExistenceCache(), useDirectory: true });
      await odd.prepare([u(USER)]);
      expect(odd.failures().map((f) => [f.status, f.code])).to.deep.equal([[404, 'UnknownError']]);
      expect(odd.isDeleted({ userId: USER, userPrincipalName: 'jane@contoso.com' })).to.equal(false);
    });

    it('bounds the cache and lets answers expire', () => {
      let now = 0;
      const c = new UserExistenceCache(3, 1000);
      for (const id of ['a', 'b', 'c', 'd']) c.set(id, true, now);
      expect(c.size).to.equal(3);
      expect(c.get('a', now)).to.equal(undefined);
      now = 2000;
      expect(c.get('d', now)).to.equal(undefined);
    });
  });

  describe('device-scan', () => {
    it('builds the incremental $filter from the watermark (gt only, as Graph allows)', () => {
      expect(sinceFilter('2025-01-02T03:04:05Z')).to.equal('lastSyncDateTime gt 2025-01-02T03:04:05.000Z');
      expect(sinceFilter(undefined)).to.equal(undefined);
      expect(() => sinceFilter('yesterday')).to.throw(/not a date/);
    });

    it('preview: one listing counts what the two passes of a run decide — the newer twin wins wherever it is listed, ties go to the first, the winner keeps its own verdict', async () => {
      const pages = [
        [
          rec({ id: 'old1', serialNumber: 'S1', lastSyncDateTime: '2025-05-01T00:00:00Z' }),
          rec({ id: 'tieA', serialNumber: 'S2', lastSyncDateTime: '2025-05-10T00:00:00Z' }),
          rec({ id: 'winMac', serialNumber: 'S3', operatingSystem: 'macOS', lastSyncDateTime: '2025-05-30T00:00:00Z' }),
        ],
        [
          rec({ id: 'new1', serialNumber: 'S1', lastSyncDateTime: '2025-05-20T00:00:00Z' }),
          rec({ id: 'tieB', serialNumber: 'S2', lastSyncDateTime: '2025-05-10T00:00:00Z' }),
          rec({ id: 'oldWin', serialNumber: 'S3', lastSyncDateTime: '2025-05-02T00:00:00Z' }),
          rec({ id: 'p1', serialNumber: 'Default string' }),
          rec({ id: 'p2', serialNumber: 'Default string' }),
        ],
      ];
      const calls: string[][] = [];
      const graph = {
        async *pages(_p: string, o: { select: string[] }) {
          calls.push(o.select);
          let n = 0;
          for (const items of pages) yield { items: items.map((r) => ({ ...r })), page: ++n };
        },
      };
      const windowsOnly: DeviceFilterSettings = { ...DEFAULT_FILTERS, platforms: { windows: true, macos: false, ios: false, android: false, linux: false, other: false } };
      const run = async (fn: 'scan' | 'preview') => {
        const tally = emptyTally();
        const kept: string[] = [];
        const o = {
          graph: graph as never,
          version: 'v1.0' as const,
          select: deviceSelect('v1.0'),
          collapseDuplicates: true,
          filters: windowsOnly,
          normalise: opts,
          users: new DeletedUserCheck({ graph: { batch: async () => new Map() } as never, cache: new UserExistenceCache(), useDirectory: false }),
          now: NOW,
          tally,
        };
        if (fn === 'scan') for await (const p of scanDevices(o)) kept.push(...p.devices.map((d) => d.id));
        else await previewScan({ ...o, onKept: (id) => kept.push(id) });
        return { tally, kept: kept.sort() };
      };
      const scan = await run('scan');
      calls.length = 0;
      const preview = await run('preview');
      expect(calls, 'one listing').to.have.length(1);
      expect(preview.kept).to.deep.equal(['new1', 'p1', 'p2', 'tieA']);
      expect(preview.kept).to.deep.equal(scan.kept);
      expect(preview.tally.skipped).to.deep.equal(scan.tally.skipped);
      expect(preview.tally.skipped.duplicate).to.equal(3);
      expect(preview.tally.skipped.platform, 'the Mac wins its serial and is then left out by platform').to.equal(1);
      expect({ ...preview.tally, pages: 0, duplicatePages: 0 }).to.deep.equal({ ...scan.tally, pages: 0, duplicatePages: 0 });
    });

    it('preview: the tally after every page is what the records read so far give (winners so far), the last one is the run\'s, and apps wait for the end', async () => {
      // A generated tenant (re-enrolled twins, placeholder serials, every platform) in small pages, plus twins
      // placed so that a winner so far is replaced by a newer one with another verdict (kept ↔ skipped).
      const tenant = new SimTenant({ seed: 9, devices: 1500, now: NOW });
      const records: ManagedDeviceRecord[] = [];
      for (let i = 0; i < tenant.size; i++) {
        const r = tenant.deviceAt(i);
        if (r) records.push(r as unknown as ManagedDeviceRecord);
      }
      records.splice(100, 0, rec({ id: 'macOld', serialNumber: 'SWAP1', operatingSystem: 'macOS', lastSyncDateTime: '2025-05-01T00:00:00Z' }));
      records.splice(700, 0, rec({ id: 'winNew', serialNumber: 'SWAP1', lastSyncDateTime: '2025-05-20T00:00:00Z' }));
      records.splice(200, 0, rec({ id: 'winOld', serialNumber: 'SWAP2', lastSyncDateTime: '2025-05-01T00:00:00Z' }));
      records.splice(900, 0, rec({ id: 'macNew', serialNumber: 'SWAP2', operatingSystem: 'macOS', lastSyncDateTime: '2025-05-25T00:00:00Z' }));
      const pageSize = 137;
      const pages: ManagedDeviceRecord[][] = [];
      for (let i = 0; i < records.length; i += pageSize) pages.push(records.slice(i, i + pageSize));
      expect(pages.length).to.be.greaterThan(10);
      const filters: DeviceFilterSettings = { ...DEFAULT_FILTERS, staleDays: 60, platforms: { windows: true, macos: false, ios: true, android: true, linux: false, other: false } };
      const users = () => new DeletedUserCheck({ graph: { batch: async () => new Map() } as never, cache: new UserExistenceCache(), useDirectory: false });
      const listing = () => ({
        async *pages() {
          let n = 0;
          for (const items of pages) yield { items: items.map((r) => ({ ...r })), page: ++n };
        },
      });
      const keyed = new Set(records.filter((r) => serialKey(normaliseDevice(r, opts).serialNumber)).map((r) => r.id));

      /** The brute force: every record read so far judged again, the newest of each serial (first read on a tie) the winner. */
      function recount(read: ManagedDeviceRecord[]) {
        const t = emptyTally();
        const check = users();
        const all = read.filter((r) => r && r.id).map((r, i) => ({ i, r, d: normaliseDevice(r, opts, check.isDeleted(r)), ms: syncMs(r.lastSyncDateTime) }));
        const best = new Map<string, { i: number; ms: number }>();
        for (const x of all) {
          const k = serialKey(x.d.serialNumber);
          if (k && (!best.has(k) || x.ms > best.get(k)!.ms)) best.set(k, x);
        }
        const kept: string[] = [];
        for (const x of all) {
          const p = platformOf(x.d.os.name);
          t.read++;
          t.platforms[p].read++;
          t.newestSyncMs = Math.max(t.newestSyncMs, x.ms);
          const k = serialKey(x.d.serialNumber);
          const why = k && best.get(k)!.i !== x.i ? 'duplicate' : skipReason(x.d, filters, NOW);
          if (why) t.skipped[why]++;
          else {
            t.kept++;
            t.platforms[p].kept++;
            kept.push(x.d.id);
          }
        }
        return { tally: t, kept: kept.sort() };
      }

      const tally = emptyTally();
      const snapshots: Array<{ page: number; tally: string }> = [];
      const events: string[] = [];
      const kept: string[] = [];
      await previewScan({
        graph: listing() as never,
        version: 'v1.0',
        select: deviceSelect('v1.0'),
        collapseDuplicates: true,
        filters,
        normalise: opts,
        users: users(),
        now: NOW,
        tally,
        onPage: (t) => {
          snapshots.push({ page: t.pages, tally: JSON.stringify(t) });
          events.push('page');
        },
        onKept: (id) => {
          kept.push(id);
          events.push(keyed.has(id) ? 'keyed' : 'keyless');
        },
      });
      expect(snapshots.map((s) => s.page)).to.deep.equal(pages.map((_, k) => k + 1));
      for (const [k, snap] of snapshots.entries()) {
        const want = { ...recount(pages.slice(0, k + 1).flat()).tally, pages: k + 1 };
        expect(JSON.parse(snap.tally), `after page ${k + 1}`).to.deep.equal(want);
      }
      // The data swaps verdicts: a Windows winner so far (kept) loses to a newer Mac twin (skipped by platform), and the other way round.
      const pageOf = (id: string) => Math.floor(records.findIndex((r) => r.id === id) / pageSize) + 1;
      const keptAfter = (page: number) => recount(pages.slice(0, page).flat()).kept;
      expect(keptAfter(pageOf('macNew') - 1)).to.include('winOld');
      expect(keptAfter(pageOf('macNew'))).to.not.include('winOld').and.not.include('macNew');
      expect(keptAfter(pageOf('winNew') - 1)).to.not.include('macOld');
      expect(keptAfter(pageOf('winNew'))).to.include('winNew');

      // The final tally: the brute force over everything, and what a run (two passes, device-scan.ts) counts.
      const full = recount(records);
      expect({ ...tally, pages: 0 }).to.deep.equal({ ...full.tally, pages: 0 });
      const runTally = emptyTally();
      const runKept: string[] = [];
      for await (const p of scanDevices({ graph: listing() as never, version: 'v1.0', select: deviceSelect('v1.0'), collapseDuplicates: true, filters, normalise: opts, users: users(), now: NOW, tally: runTally })) {
        runKept.push(...p.devices.map((d) => d.id));
      }
      expect({ ...tally, pages: 0, duplicatePages: 0 }).to.deep.equal({ ...runTally, pages: 0, duplicatePages: 0 });
      // Apps are counted for the final winners only, once each: keyed devices after the last page.
      expect([...kept].sort()).to.deep.equal(full.kept).and.to.deep.equal(runKept.sort());
      expect(new Set(kept).size).to.equal(kept.length);
      const lastPage = events.lastIndexOf('page');
      expect(events.slice(0, lastPage).filter((e) => e === 'keyed'), 'no keyed device counted for its apps before the end').to.deep.equal([]);
      expect(events.slice(lastPage).filter((e) => e === 'keyed').length).to.be.greaterThan(100);
    });

    it('full run: the duplicate pass first with two fields, then the devices, counting every record once', async () => {
      const calls: Array<{ select: string[]; filter?: string }> = [];
      const pages = [
        [rec({ id: 'd1', serialNumber: 'S1', lastSyncDateTime: '2025-05-01T00:00:00Z' }), rec({ id: 'd2', serialNumber: 'S1', lastSyncDateTime: '2025-05-20T00:00:00Z' })],
        [rec({ id: 'd3', operatingSystem: 'ChromeOS' }), rec({ id: 'd4', serialNumber: 'Default string' }), rec({ id: 'd5', serialNumber: 'Default string' })],
      ];
      const graph = {
        async *pages(_p: string, o: { select: string[]; filter?: string }) {
          calls.push({ select: o.select, filter: o.filter });
          let n = 0;
          for (const items of pages) yield { items: items.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k === 'id' || o.select.includes(k)))), page: ++n };
        },
      };
      const tally = emptyTally();
      const out: string[][] = [];
      for await (const p of scanDevices({
        graph: graph as never,
        version: 'v1.0',
        select: deviceSelect('v1.0'),
        collapseDuplicates: true,
        filters: DEFAULT_FILTERS,
        normalise: opts,
        users: new DeletedUserCheck({ graph: { batch: async () => new Map() } as never, cache: new UserExistenceCache(), useDirectory: false }),
        now: NOW,
        tally,
      })) {
        out.push(p.devices.map((d) => d.id));
      }
      expect(calls.map((c) => c.select)).to.deep.equal([[...DUPLICATE_SELECT], deviceSelect('v1.0')]);
      expect(calls.every((c) => c.filter === undefined)).to.equal(true);
      expect(out).to.deep.equal([['d2'], ['d4', 'd5']]); // placeholder serials are never duplicates
      expect(tally.read).to.equal(5);
      expect(tally.kept).to.equal(3);
      expect(tally.skipped).to.include({ duplicate: 1, platform: 1 });
      expect(tally.platforms.windows).to.deep.equal({ read: 4, kept: 3 });
      expect(tally.newestSyncMs).to.equal(Date.parse('2025-05-31T08:00:00Z'));
    });

    /** A fake Graph that pages `pages` and records each listing it is asked for. */
    function pagedGraph(pages: ManagedDeviceRecord[][]) {
      const calls: Array<{ select: string[]; filter?: string }> = [];
      return {
        calls,
        async *pages(_p: string, o: { select: string[]; filter?: string }) {
          calls.push({ select: o.select, filter: o.filter });
          let n = 0;
          for (const items of pages) yield { items: items.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k === 'id' || o.select.includes(k)))), page: ++n };
        },
      };
    }

    async function scan(graph: ReturnType<typeof pagedGraph>, since?: string) {
      const tally = emptyTally();
      const out: string[][] = [];
      const passes: string[] = [];
      for await (const p of scanDevices({
        graph: graph as never,
        version: 'v1.0',
        select: deviceSelect('v1.0'),
        since,
        collapseDuplicates: true,
        filters: DEFAULT_FILTERS,
        normalise: opts,
        users: new DeletedUserCheck({ graph: { batch: async () => new Map() } as never, cache: new UserExistenceCache(), useDirectory: false }),
        now: NOW,
        tally,
        onPage: (pass, page) => passes.push(`${pass} ${page}`),
      })) {
        out.push(p.devices.map((d) => d.id));
      }
      return { tally, out, passes };
    }

    it('incremental run: ONE listing of the window, duplicates judged from the window itself', async () => {
      // The newer twin comes on the second page: the first page is held until the window is known whole.
      const graph = pagedGraph([
        [rec({ id: 'd1', serialNumber: 'S1', lastSyncDateTime: '2025-05-01T00:00:00Z' }), rec({ id: 'd3', operatingSystem: 'ChromeOS' })],
        [rec({ id: 'd2', serialNumber: 'S1', lastSyncDateTime: '2025-05-20T00:00:00Z' }), rec({ id: 'd4', serialNumber: 'Default string' }), rec({ id: 'd5', serialNumber: 'Default string' })],
      ]);
      const { tally, out, passes } = await scan(graph, '2025-04-01T00:00:00Z');
      expect(graph.calls, 'one listing, full $select, the window filter').to.deep.equal([{ select: deviceSelect('v1.0'), filter: 'lastSyncDateTime gt 2025-04-01T00:00:00.000Z' }]);
      expect(out).to.deep.equal([[], ['d2', 'd4', 'd5']]);
      expect(passes).to.deep.equal(['devices 1', 'devices 2']);
      expect(tally.skipped).to.include({ duplicate: 1, platform: 1 });
      expect(tally).to.include({ read: 5, kept: 3, pages: 2, duplicatePages: 0 });
    });

    it('incremental run with a window too large to hold: falls back to a second listing, still exact', async () => {
      const pageSize = 1000;
      const pageCount = Math.floor(INCREMENTAL_BUFFER_RECORDS / pageSize) + 1;
      const pages: ManagedDeviceRecord[][] = [];
      for (let p = 0; p < pageCount; p++) {
        pages.push(Array.from({ length: pageSize }, (_, i) => rec({ id: `p${p}-${i}`, serialNumber: `SER${p}X${i}`, lastSyncDateTime: '2025-05-01T00:00:00Z' })));
      }
      // A twin on the first page, its newer one on the last.
      pages[0][0] = rec({ id: 'old', serialNumber: 'TWIN1', lastSyncDateTime: '2025-05-01T00:00:00Z' });
      pages[pageCount - 1][0] = rec({ id: 'new', serialNumber: 'TWIN1', lastSyncDateTime: '2025-05-30T00:00:00Z' });
      const graph = pagedGraph(pages);
      const { tally, out } = await scan(graph, '2025-04-01T00:00:00Z');
      expect(graph.calls.map((c) => c.select)).to.deep.equal([deviceSelect('v1.0'), deviceSelect('v1.0')]);
      const ids = out.flat();
      expect(ids).to.include('new').and.not.include('old');
      expect(ids).to.have.length(pageCount * pageSize - 1);
      expect(tally).to.include({ read: pageCount * pageSize, duplicatePages: pageCount, pages: pageCount });
    });
  });

  describe('sync-run', () => {
    function harness() {
      const pages: PageMessage<number>[] = [];
      const summaries: SummaryMessage[] = [];
      const runner = new SyncRunner<number>({ topic: 't/x', idPrefix: 'x', send: (m) => pages.push(m), sendSummary: (m) => summaries.push(m) });
      return { pages, summaries, runner };
    }

    it('sends non-empty pages, the last one with last:true and the stats, then one summary', async () => {
      const h = harness();
      const started = h.runner.start('full', 'inst', 'message', async (run) => {
        run.counts.items = 7;
        run.counts.pages = 4;
        run.counts.skipped = { platform: 2 };
        run.page([1, 2]);
        run.page([]);
        run.page([3]);
        run.page([4, 5]);
      })!;
      const sum = await started.finished;
      expect(h.pages.map((p) => [p.payload, p.sync.page, p.sync.last])).to.deep.equal([
        [[1, 2], 1, false],
        [[3], 2, false],
        [[4, 5], 3, true],
      ]);
      expect(h.pages.every((p) => p.topic === 't/x' && p.sync.runId === sum.runId && p.sync.instance === 'inst' && p.sync.mode === 'full')).to.equal(true);
      expect(h.pages[0].sync.stats).to.equal(undefined);
      expect(h.pages[2].sync.stats).to.deep.include({ items: 7, emitted: 5, pages: 4, skipped: { platform: 2 } });
      expect(h.pages[2].sync.stats!.aborted).to.equal(undefined);
      expect(h.summaries).to.have.length(1);
      expect(h.summaries[0].topic).to.equal('t/x/summary');
      expect(h.summaries[0].payload).to.deep.include({ result: 'completed', mode: 'full', instance: 'inst' });
      expect(sum.runId).to.match(/^x-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    });

    it('fillPagesTo: pages gathered to exactly that size, the rest last; nothing held beyond one page', async () => {
      const pages: PageMessage<number>[] = [];
      const runner = new SyncRunner<number>({ topic: 't/x', idPrefix: 'x', send: (m) => pages.push(m), sendSummary: () => undefined, fillPagesTo: 3 });
      const sum = await runner.start('full', 'inst', 'message', async (run) => {
        run.page([1, 2]);
        expect(pages, 'a part page waits for more').to.have.length(0);
        run.page([]);
        run.page([3, 4, 5, 6, 7, 8, 9]);
        expect(pages.map((p) => p.payload), 'full pages go once more items follow').to.deep.equal([[1, 2, 3], [4, 5, 6]]);
        run.page([10]);
      })!.finished;
      expect(pages.map((p) => [p.payload, p.sync.page, p.sync.last])).to.deep.equal([
        [[1, 2, 3], 1, false],
        [[4, 5, 6], 2, false],
        [[7, 8, 9], 3, false],
        [[10], 4, true],
      ]);
      expect(sum.stats.emitted).to.equal(10);
      // exactly full at the end: the last full page carries last:true
      const exact: PageMessage<number>[] = [];
      const r2 = new SyncRunner<number>({ topic: 't/x', idPrefix: 'x', send: (m) => exact.push(m), sendSummary: () => undefined, fillPagesTo: 2 });
      await r2.start('full', 'inst', 'message', async (run) => {
        run.page([1]);
        run.page([2, 3, 4]);
      })!.finished;
      expect(exact.map((p) => [p.payload, p.sync.last])).to.deep.equal([
        [[1, 2], false],
        [[3, 4], true],
      ]);
    });

    it('a run that passes nothing still sends one empty last page', async () => {
      const h = harness();
      await h.runner.start('incremental', 'i', 'schedule', async (run) => run.page([]))!.finished;
      expect(h.pages.map((p) => [p.payload, p.sync.last, p.sync.mode])).to.deep.equal([[[], true, 'incremental']]);
    });

    it('never runs twice at once', async () => {
      const h = harness();
      let release!: () => void;
      const first = h.runner.start('full', 'i', 'message', () => new Promise<void>((r) => (release = r)))!;
      expect(h.runner.busy).to.equal(true);
      expect(h.runner.start('incremental', 'i', 'schedule', async () => undefined)).to.equal(undefined);
      release();
      await first.finished;
      expect(h.runner.busy).to.equal(false);
      expect(h.summaries).to.have.length(1);
    });

    it('a failure ends the run with aborted + error on the last page and a failed summary', async () => {
      const h = harness();
      const sum = await h.runner.start('full', 'i', 'message', async (run) => {
        run.page([1]);
        throw new Error('Graph said no');
      })!.finished;
      expect(sum.result).to.equal('failed');
      expect(h.pages).to.have.length(1);
      expect(h.pages[0].sync).to.deep.include({ last: true });
      expect(h.pages[0].sync.stats).to.deep.include({ aborted: true, error: 'Graph said no' });
      expect(h.summaries[0].payload.result).to.equal('failed');
    });

    it('cancel tells sinks the run was aborted; stop (close) sends nothing more', async () => {
      const h = harness();
      const work = (run: { page(i: number[]): void; signal: AbortSignal }) =>
        new Promise<void>((_r, reject) => {
          run.page([1]);
          run.signal.addEventListener('abort', () => reject(run.signal.reason));
        });
      const a = h.runner.start('full', 'i', 'message', work)!;
      await h.runner.cancel();
      expect((await a.finished).result).to.equal('aborted');
      expect(h.pages.map((p) => [p.sync.last, p.sync.stats?.aborted])).to.deep.equal([[true, true]]);
      expect(h.summaries).to.have.length(1);
      const b = h.runner.start('full', 'i', 'message', work)!;
      await h.runner.stop();
      expect((await b.finished).result).to.equal('aborted');
      expect(h.pages).to.have.length(1);
      expect(h.summaries).to.have.length(1);
    });

    it('reports throttling waits and the next request as events', async () => {
      const h = harness();
      const seen: string[] = [];
      await h.runner.start('full', 'i', 'message', async (run) => {
        run.on('throttled', (ms: number) => seen.push(`throttled ${ms}`));
        run.on('resumed', () => seen.push('resumed'));
        run.requestStats.requests += 1;
        run.requestStats.throttled += 1;
        run.requestStats.throttleWaitMs += 2000;
        run.requestStats.requests += 1;
      })!.finished;
      expect(seen).to.deep.equal(['throttled 2000', 'resumed']);
      expect(h.summaries[0].payload.stats).to.deep.include({ requests: 2, throttled: 1, throttleWaitMs: 2000 });
    });
  });

  describe('run-schedule', () => {
    it('first run: one interval after the saved last run, never sooner than the start delay, soon when there is none', () => {
      const now = Date.parse('2026-01-01T12:00:00Z');
      const hour = 3_600_000;
      expect(firstDueAt('2026-01-01T11:30:00Z', hour, now)).to.equal(now + 30 * 60_000);
      expect(firstDueAt('2026-01-01T09:00:00Z', hour, now), 'overdue').to.equal(now + FIRST_RUN_DELAY_MS);
      expect(firstDueAt(undefined, hour, now)).to.equal(now + FIRST_RUN_DELAY_MS);
      expect(firstDueAt('not a date', hour, now)).to.equal(now + FIRST_RUN_DELAY_MS);
    });

    function fakeClock(start = 0) {
      const c = {
        now: start,
        timers: [] as Array<{ at: number; fn: () => void; id: number }>,
        seq: 0,
        clock: null as unknown as ScheduleClock,
        advance(ms: number) {
          const end = c.now + ms;
          for (;;) {
            c.timers.sort((a, b) => a.at - b.at);
            const t = c.timers[0];
            if (!t || t.at > end) break;
            c.timers.shift();
            c.now = t.at;
            t.fn();
          }
          c.now = end;
        },
      };
      c.clock = {
        now: () => c.now,
        setTimeout: (fn, ms) => {
          const id = ++c.seq;
          c.timers.push({ at: c.now + ms, fn, id });
          return id;
        },
        clearTimeout: (id) => {
          c.timers = c.timers.filter((t) => t.id !== id);
        },
      };
      return c;
    }
    const H = 3_600_000;

    it('fires incremental every N minutes and full every N hours; full wins when both are due', () => {
      const c = fakeClock();
      const fired: string[] = [];
      const s = new RunSchedule(
        [
          { mode: 'full', everyMs: 1 * H },
          { mode: 'incremental', everyMs: 15 * 60_000 },
        ],
        (m) => fired.push(`${c.now / 60_000}:${m}`),
        c.clock,
      );
      s.start();
      c.advance(2 * H);
      expect(fired).to.deep.equal(['15:incremental', '30:incremental', '45:incremental', '60:full', '75:incremental', '90:incremental', '105:incremental', '120:full']);
    });

    it('starts from persisted state and is cleaned up by stop()', () => {
      const c = fakeClock(1000);
      const fired: string[] = [];
      const s = new RunSchedule([{ mode: 'full', everyMs: 24 * H, firstDueAt: 1000 + 5000 }], (m) => fired.push(m), c.clock);
      s.start();
      c.advance(6000);
      expect(fired).to.deep.equal(['full']);
      expect(s.next()!.at).to.equal(6000 + 24 * H);
      s.ranAt('full', 10 * H);
      expect(s.next()!.at).to.equal(34 * H);
      s.stop();
      expect(c.timers).to.have.length(0);
      c.advance(100 * H);
      expect(fired).to.deep.equal(['full']);
    });

    it('does nothing when no kind is scheduled', () => {
      const c = fakeClock();
      const s = new RunSchedule([{ mode: 'full', everyMs: 0 }], () => expect.fail('fired'), c.clock);
      s.start();
      expect(s.enabled).to.equal(false);
      expect(c.timers).to.have.length(0);
    });
  });

  describe('context-state', () => {
    it('tells persistent stores from memory ones, as the runtime resolves them', () => {
      expect(storeInfo(undefined)).to.deep.equal({ name: 'memory', persistent: false, unknown: false });
      expect(storeInfo({ default: { module: 'localfilesystem' } })).to.deep.equal({ name: 'default', persistent: true, unknown: false });
      const two = { default: { module: 'memory' }, file: { module: 'localfilesystem' } };
      expect(storeInfo(two)).to.include({ name: 'default', persistent: false });
      expect(storeInfo(two, 'file')).to.include({ name: 'file', persistent: true });
      expect(storeInfo(two, 'nope')).to.deep.equal({ name: 'default', persistent: false, unknown: true });
      expect(storeInfo({ default: 'file', file: { module: 'localfilesystem' } })).to.include({ name: 'file', persistent: true });
      expect(storeInfo({ redis: { module: {} } })).to.include({ name: 'redis', persistent: true });
    });

    it('reads and writes through the asynchronous context API in the chosen store', async () => {
      const calls: string[] = [];
      const data = new Map<string, unknown>();
      const ctx: ContextLike = {
        get: (k, s, cb) => {
          calls.push(`get ${k} ${s}`);
          cb(null, data.get(k));
        },
        set: (k, v, s, cb) => {
          calls.push(`set ${k} ${s}`);
          data.set(k, v);
          cb();
        },
      };
      const v = new ContextValue<{ a: number }>(ctx, 'key', 'file');
      expect(await v.get()).to.equal(undefined);
      await v.set({ a: 1 });
      expect(await v.get()).to.deep.equal({ a: 1 });
      expect(calls).to.deep.equal(['get key file', 'set key file', 'get key file']);
      expect(() => new ContextValue(ctx, 'a.b')).to.throw(/must not contain/);
    });
  });
});
