/**
 * The seeded tenant generator and the simulated Graph: determinism, the mix
 * and quirks a connector has to survive, bounded memory, and Graph behaviour
 * (paging, $select/$filter rules, GET-by-id-only, actions, $batch,
 * throttling, faults, permissions, compliance endpoints and the report).
 */
import { expect } from 'chai';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { createAxios, createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { sharedTestCa } from '../sim/pki';
import { GraphSim, type GraphSimOptions, type TokenClaims } from '../sim/graph';
import { PLACEHOLDER_SERIALS, SimTenant, SimTenantError, type ManagedDeviceRecord } from '../sim/tenant';

const NOW = '2024-09-01T12:00:00Z';
const ALL = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.ReadWrite.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementConfiguration.Read.All',
  'User.Read.All',
];
const READ = ['DeviceManagementManagedDevices.Read.All'];
const JSON_TYPE = { 'Content-Type': 'application/json' };

/** Stub verifier: tokens look like test:<tid>:<appid>:<role,role>; "expired:…" fails like Entra. */
function stubVerifier(expectedAudience: () => string): GraphSimOptions['verifyToken'] {
  return (token: string, audience: string): TokenClaims => {
    if (audience !== expectedAudience()) throw Object.assign(new Error(`Invalid audience ${audience}`), { code: 'InvalidAuthenticationToken' });
    if (token.startsWith('expired:')) throw Object.assign(new Error('Lifetime validation failed, the token is expired.'), { code: 'InvalidAuthenticationToken' });
    const m = /^test:([^:]+):([^:]+):(.*)$/.exec(token);
    if (!m) throw Object.assign(new Error('Access token validation failure.'), { code: 'InvalidAuthenticationToken' });
    return { tid: m[1], appid: m[2], roles: m[3] ? m[3].split(',') : [] };
  };
}

const isoMs = (s: string) => Date.parse(s);

// ---------------------------------------------------------------------------

describe('SimTenant (seeded generator)', function () {
  this.timeout(60_000);
  const t5 = new SimTenant({ seed: 7, devices: 5000, now: NOW });
  const all: ManagedDeviceRecord[] = [...t5.iterate()];

  it('is deterministic: same seed and now give the same devices, another seed does not', () => {
    const again = new SimTenant({ seed: 7, devices: 5000, now: NOW });
    for (const i of [0, 1, 17, 999, 2500, 4999]) expect(again.deviceAt(i)).to.deep.equal(t5.deviceAt(i));
    expect(again.tenantId).to.equal(t5.tenantId);
    expect(again.policies).to.deep.equal(t5.policies);
    const other = new SimTenant({ seed: 8, devices: 5000, now: NOW });
    expect(other.deviceAt(0)!.id).to.not.equal(t5.deviceAt(0)!.id);
    // reading in a different order changes nothing
    const backwards = new SimTenant({ seed: 7, devices: 5000, now: NOW });
    const b = [4999, 3, 4999, 3].map((i) => backwards.deviceAt(i));
    expect(b[0]).to.deep.equal(t5.deviceAt(4999));
    expect(b[1]).to.deep.equal(t5.deviceAt(3));
  });

  it('gives every device a unique GUID that maps back to its position', () => {
    const ids = new Set(all.map((d) => d.id));
    expect(ids.size).to.equal(5000);
    for (const [k, d] of all.entries()) {
      expect(d.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      if (k % 97 === 0) expect(t5.indexOf(d.id)).to.equal(k);
    }
    expect(t5.getDevice('00000000-0000-4000-8000-000000000000')).to.equal(null);
    const foreign = new SimTenant({ seed: 99, devices: 5000, now: NOW }).deviceAt(5)!.id;
    expect(t5.getDevice(foreign)).to.equal(null);
  });

  it('has a realistic platform and ownership mix', () => {
    const by = (f: (d: ManagedDeviceRecord) => string) => all.reduce<Record<string, number>>((a, d) => ((a[f(d)] = (a[f(d)] ?? 0) + 1), a), {});
    const os = by((d) => d.operatingSystem);
    expect(os.Windows / 5000).to.be.within(0.45, 0.65);
    for (const p of ['iOS', 'iPadOS', 'Android', 'macOS', 'Linux']) expect(os[p], p).to.be.greaterThan(50);
    const own = by((d) => d.managedDeviceOwnerType);
    expect(own.company).to.be.greaterThan(own.personal);
    expect(own.personal).to.be.greaterThan(300);
    const agents = by((d) => d.managementAgent);
    expect(agents.configurationManagerClientMdm).to.be.greaterThan(100);
    expect(agents.mdm).to.be.greaterThan(2000);
    const ms = by((d) => d.managementState);
    expect(ms.retirePending).to.be.greaterThan(5);
    expect(ms.wipePending).to.be.greaterThan(2);
    // enrolment/join/sku data the 4me CI attributes need
    const win = all.filter((d) => d.operatingSystem === 'Windows');
    expect([...new Set(win.map((d) => d.joinType))]).to.include.members(['azureADJoined', 'hybridAzureADJoined']);
    expect([...new Set(win.map((d) => d.skuFamily))]).to.include.members(['Enterprise', 'Professional']);
    expect(win.every((d) => typeof d.totalStorageSpaceInBytes === 'number' && (d.freeStorageSpaceInBytes as number) <= (d.totalStorageSpaceInBytes as number))).to.equal(true);
  });

  it('contains the quirks a connector must handle', () => {
    const serials = new Set(all.map((d) => d.serialNumber));
    for (const p of PLACEHOLDER_SERIALS) expect(serials.has(p), `placeholder serial ${JSON.stringify(p)}`).to.equal(true);
    // jailBroken is always a string
    const jb = new Set(all.map((d) => d.jailBroken));
    expect([...jb].every((v) => typeof v === 'string')).to.equal(true);
    expect([...jb]).to.include.members(['True', 'False', 'Unknown', '']);
    // unregistered devices carry the zero GUID
    expect(all.some((d) => d.azureADDeviceId === '00000000-0000-0000-0000-000000000000')).to.equal(true);
    // Unicode names
    expect(all.some((d) => /[äöüßÄÖÜ]/.test(d.deviceName))).to.equal(true);
    expect(all.some((d) => /[\u4e00-\u9fff]/.test(d.deviceName))).to.equal(true);
    expect(all.some((d) => /\p{Extended_Pictographic}/u.test(d.deviceName))).to.equal(true);
    // Android Enterprise names as Intune makes them
    expect(all.some((d) => /^[a-z.0-9]+_AndroidForWork_\d+\/\d+\/\d{4}_\d+:\d\d [AP]M$/.test(d.deviceName))).to.equal(true);
    const dedicated = all.filter((d) => d.deviceName.endsWith('M') && d.deviceName.startsWith(d.id.slice(0, 8) + '_AndroidEnterprise_'));
    expect(dedicated.length).to.be.greaterThan(0);
    expect(dedicated.every((d) => d.userId === '' && d.userPrincipalName === '')).to.equal(true);
    // Android Enterprise UPNs with a GUID prefix, flagged in the generator's ground truth
    const prefixed = all.filter((d) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_[^@]+@/.test(d.userPrincipalName));
    expect(prefixed.length).to.be.greaterThan(10);
    for (const d of prefixed) {
      const meta = t5.metaAt(t5.indexOf(d.id)!)!;
      expect([meta.guidPrefixedUpn, ['android-wp', 'android-fm'].includes(meta.platform)]).to.deep.equal([true, true]);
      // (a deleted user's stale UPN can be prefixed too; the directory no longer knows it)
      const user = t5.users.get(d.userId);
      if (user) expect(d.userPrincipalName.slice(37)).to.equal(user.userPrincipalName);
    }
    expect(prefixed.filter((d) => t5.users.get(d.userId)).length).to.be.greaterThan(10);
    // lastSync spread over months, some stale
    const syncs = all.map((d) => isoMs(d.lastSyncDateTime));
    const now = isoMs(NOW);
    expect(Math.max(...syncs)).to.be.at.most(now);
    expect(syncs.filter((s) => now - s > 90 * 86_400_000).length).to.be.greaterThan(50);
    expect(syncs.filter((s) => now - s < 7 * 86_400_000).length).to.be.greaterThan(2500);
    expect(all.every((d) => isoMs(d.enrolledDateTime) < isoMs(d.lastSyncDateTime))).to.equal(true);
    // beta-only properties are generated
    expect(all.every((d) => typeof d.joinType === 'string' && typeof d.ownerType === 'string' && typeof d.skuNumber === 'number')).to.equal(true);
  });

  it('has re-enrolled duplicates, deleted users and userless devices', () => {
    let dups = 0;
    for (let i = 0; i < 5000; i++) {
      const m = t5.metaAt(i)!;
      if (m.duplicateOf === null) continue;
      dups++;
      const d = t5.deviceAt(i)!;
      const base = t5.deviceAt(m.duplicateOf)!;
      expect(d.serialNumber).to.equal(base.serialNumber);
      expect(d.userId).to.equal(base.userId);
      expect(d.id).to.not.equal(base.id);
      expect(isoMs(d.lastSyncDateTime)).to.be.lessThan(isoMs(base.lastSyncDateTime));
    }
    expect(dups).to.be.greaterThan(20);
    const deleted = all.filter((d) => d.userId && !t5.users.get(d.userId));
    expect(deleted.length).to.be.greaterThan(20);
    expect(deleted.some((d) => d.userPrincipalName === '')).to.equal(true);
    expect(deleted.some((d) => d.userPrincipalName !== '')).to.equal(true, 'stale UPN of a deleted user');
    const live = all.find((d) => d.userId && t5.users.get(d.userId))!;
    expect(t5.users.get(live.userId)!.userPrincipalName).to.equal(live.userPrincipalName);
    expect(all.filter((d) => d.userId === '').length).to.be.greaterThan(50);
    expect([...t5.users.iterate()].some((u) => /[^\x00-\x7f]/.test(u.displayName))).to.equal(true);
  });

  it('derives complianceState from per-policy states with failing settings', () => {
    const types = new Set(t5.policies.map((p) => p['@odata.type']));
    expect([...types]).to.include.members(['#microsoft.graph.windows10CompliancePolicy', '#microsoft.graph.iosCompliancePolicy', '#microsoft.graph.androidWorkProfileCompliancePolicy', '#microsoft.graph.macOSCompliancePolicy']);
    expect(t5.policies.filter((p) => p.platformType === 'windows10AndLater').length).to.be.at.least(2);
    const seen: Record<string, number> = {};
    for (const d of all.slice(0, 1500)) {
      seen[d.complianceState] = (seen[d.complianceState] ?? 0) + 1;
      const states = t5.policyStatesFor(d.id)!;
      expect(states.length).to.be.at.least(1);
      const failing = states.filter((s) => s.state === 'nonCompliant');
      if (d.complianceState === 'noncompliant' || d.complianceState === 'inGracePeriod') {
        expect(failing.length, d.id).to.be.greaterThan(0);
        for (const f of failing) {
          const bad = f.settingStates.filter((s) => s.state === 'nonCompliant');
          expect(bad.length).to.be.greaterThan(0);
          for (const s of bad) {
            expect(s).to.include.keys('setting', 'settingName', 'currentValue', 'errorCode', 'errorDescription');
            expect(s.setting).to.contain('.');
          }
        }
      }
      if (d.complianceState === 'compliant') expect(failing.length).to.equal(0);
      if (d.complianceState === 'inGracePeriod') expect(isoMs(d.complianceGracePeriodExpirationDateTime as string)).to.be.greaterThan(isoMs(NOW));
      else expect(d.complianceGracePeriodExpirationDateTime).to.equal('9999-12-31T23:59:59Z');
    }
    for (const s of ['compliant', 'noncompliant', 'inGracePeriod', 'configManager']) expect(seen[s], s).to.be.greaterThan(0);
    // ground truth = every device × failing policy
    let n = 0;
    let expected = 0;
    for (const v of t5.groundTruthViolations()) {
      n++;
      expect(v.key).to.equal(`${v.deviceId}:${v.policyId}`);
      expect(v.settings.length).to.be.greaterThan(0);
    }
    for (const d of all) expected += t5.policyStatesFor(d.id)!.filter((s) => s.state === 'nonCompliant' || s.state === 'error').length;
    expect(n).to.equal(expected);
    expect(n).to.be.greaterThan(300);
  });

  it('the built-in policy flags stale devices and deleted users; touching a device clears it', () => {
    const t = new SimTenant({ seed: 7, devices: 5000, now: NOW, clock: () => isoMs(NOW) });
    const stale = [...t.iterate()].find((d) => isoMs(NOW) - isoMs(d.lastSyncDateTime) > 40 * 86_400_000 && !t.metaAt(t.indexOf(d.id)!)!.userDeleted)!;
    const builtIn = t.policyStatesFor(stale.id)!.find((s) => s.id === t.builtInPolicy.id)!;
    expect(builtIn.displayName).to.equal('Default Device Compliance Policy');
    expect(builtIn.state).to.equal('nonCompliant');
    expect(builtIn.settingStates.find((s) => s.settingName === 'RequireRemainContact')!.state).to.equal('nonCompliant');
    expect(t.policies.some((p) => p.id === t.builtInPolicy.id)).to.equal(false);
    t.touchDevice(stale.id);
    expect(t.policyStatesFor(stale.id)!.find((s) => s.id === t.builtInPolicy.id)!.state).to.equal('compliant');
    const gone = [...t.iterate()].find((d) => t.metaAt(t.indexOf(d.id)!)!.userDeleted)!;
    expect(t.policyStatesFor(gone.id)!.find((s) => s.id === t.builtInPolicy.id)!.settingStates.find((s) => s.settingName === 'RequireUserExistence')!.state).to.equal('nonCompliant');
  });

  it('keeps mutations in overrides: actions, compliance, removal, new devices, notifications', () => {
    let clock = isoMs(NOW);
    const t = new SimTenant({ seed: 3, devices: 300, now: NOW, clock: () => clock });
    expect(t.heldOverrides).to.equal(0);
    const d = [...t.iterate()].find((x) => x.managementState === 'managed' && x.operatingSystem === 'Windows')!;
    t.applyAction(d.id, 'retire');
    const after = t.getDevice(d.id)!;
    expect(after.managementState).to.equal('retirePending');
    expect(after.deviceActionResults.at(-1)).to.include({ actionName: 'retire', actionState: 'pending' });
    t.applyAction(d.id, 'remoteLock');
    expect(t.getDevice(d.id)!.deviceActionResults.at(-1)).to.include({ actionName: 'remoteLock', actionState: 'notSupported' });
    expect(t.actionLog.map((a) => a.action)).to.deep.equal(['retire', 'remoteLock']);
    // compliance flip
    const nc = [...t.iterate()].find((x) => x.complianceState === 'noncompliant')!;
    for (const s of t.policyStatesFor(nc.id)!) t.setPolicyCompliance(nc.id, s.id, true);
    expect(t.getDevice(nc.id)!.complianceState).to.equal('compliant');
    const p = t.policyStatesFor(d.id)![0];
    t.setPolicyCompliance(d.id, p.id, false);
    expect(['noncompliant', 'inGracePeriod']).to.include(t.getDevice(d.id)!.complianceState);
    // removal and addition
    const before = t.liveCount;
    expect(t.removeDevice(nc.id)).to.equal(true);
    expect(t.getDevice(nc.id)).to.equal(null);
    expect([...t.iterate()].some((x) => x.id === nc.id)).to.equal(false);
    const added = t.addDevice({ deviceName: 'NEU-Gerät-001' });
    expect(t.liveCount).to.equal(before);
    expect(t.getDevice(added.id)!.deviceName).to.equal('NEU-Gerät-001');
    expect(isoMs(added.lastSyncDateTime)).to.equal(clock);
    // notifications: platform, length and rate limits
    const ios = [...t.iterate()].find((x) => x.operatingSystem === 'iOS')!;
    expect(() => t.sendNotification(d.id, 'Hallo', 'Bitte synchronisieren')).to.throw(SimTenantError, /supported/);
    expect(() => t.sendNotification(ios.id, 'x'.repeat(51), 'b')).to.throw(/50/);
    expect(() => t.sendNotification(ios.id, 't', 'y'.repeat(501))).to.throw(/500/);
    for (let k = 0; k < 10; k++) t.sendNotification(ios.id, 'Hinweis ✅', 'Bitte Gerät aktualisieren');
    try {
      t.sendNotification(ios.id, 'Hinweis', 'eins zu viel');
      expect.fail('11th notification accepted');
    } catch (e) {
      expect((e as SimTenantError).status).to.equal(429);
      expect((e as SimTenantError).retryAfterSeconds).to.be.within(1, 3600);
    }
    clock += 3_600_001;
    expect(() => t.sendNotification(ios.id, 'Hinweis', 'wieder erlaubt')).to.not.throw();
  });

  it('iterates a 200,000-device tenant without materialising it', function () {
    this.timeout(60_000);
    const big = new SimTenant({ seed: 2024, devices: 200_000, now: NOW });
    const heapBefore = process.memoryUsage().heapUsed;
    let n = 0;
    let maxHeap = heapBefore;
    const ids = new Set<string>();
    for (const d of big.iterate()) {
      n++;
      if (n % 1000 === 0) ids.add(d.id);
      if (n % 20_000 === 0) maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed);
    }
    expect(n).to.equal(200_000);
    expect(ids.size).to.equal(200);
    expect(big.heldOverrides).to.equal(0);
    // 200k materialised devices would be > 600 MB; streaming stays far below (garbage not yet
    // collected counts too, so the bound leaves room for the collector's timing).
    expect(maxHeap - heapBefore).to.be.lessThan(300 * 1024 * 1024);
    // random access at the far end is O(1)
    const last = big.deviceAt(199_999)!;
    expect(big.indexOf(last.id)).to.equal(199_999);
  });
});

// ---------------------------------------------------------------------------

describe('GraphSim (simulated Microsoft Graph)', function () {
  this.timeout(60_000);
  const pki = sharedTestCa();
  let tenant: SimTenant;
  let sim: GraphSim;
  let http: AxiosInstance;
  let agent: ReturnType<typeof createHttpsAgent>;
  let TID: string;

  const token = (roles: string[] = ALL, appid = 'app-1', tid = TID) => `test:${tid}:${appid}:${roles.join(',')}`;
  const get = (path: string, roles?: string[], appid?: string) =>
    http.get(path.startsWith('https:') ? path : `${sim.url}${path}`, { headers: { Authorization: `Bearer ${token(roles, appid)}` } });
  const post = (path: string, body?: unknown, roles?: string[], headers: Record<string, string> = {}) =>
    http.post(`${sim.url}${path}`, body, { headers: { Authorization: `Bearer ${token(roles)}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers } });
  const expectGraphError = (r: AxiosResponse, status: number, code?: string | RegExp) => {
    expect(r.status, JSON.stringify(r.data)).to.equal(status);
    expect(r.data).to.have.property('error');
    expect(r.data.error).to.have.keys('code', 'message', 'innerError');
    expect(r.data.error.innerError).to.have.keys('date', 'request-id', 'client-request-id');
    if (typeof code === 'string') expect(r.data.error.code).to.equal(code);
    else if (code) expect(r.data.error.code).to.match(code);
  };

  before(async () => {
    tenant = new SimTenant({ seed: 11, devices: 5000, now: NOW });
    TID = tenant.tenantId;
    sim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => sim.url) });
    await sim.start();
    agent = createHttpsAgent({ ca: pki.certPem });
    http = createAxios(agent);
  });
  after(async () => {
    agent.destroy();
    await sim.stop();
  });
  beforeEach(() => {
    sim.clearFaults();
    sim.resetThrottling();
    sim.setRetryAfter(true);
  });

  describe('managedDevices listing', () => {
    it('pages 5,000 devices via @odata.nextLink, each exactly once, keeping every query option', async () => {
      sim.resetStats();
      let url = `/v1.0/deviceManagement/managedDevices?$select=id,deviceName,serialNumber&$count=true`;
      const seen: string[] = [];
      let pages = 0;
      for (;;) {
        const r = await get(url);
        expect(r.status).to.equal(200);
        pages++;
        expect(r.data['@odata.count']).to.equal(5000);
        expect(r.data.value.length).to.be.at.most(1000);
        for (const d of r.data.value) {
          expect(Object.keys(d).sort()).to.deep.equal(['deviceName', 'id', 'serialNumber']);
          seen.push(d.id);
        }
        const next = r.data['@odata.nextLink'];
        if (!next) break;
        expect(next.startsWith(`${sim.url}/v1.0/deviceManagement/managedDevices?`)).to.equal(true);
        expect(next).to.contain('$select=id,deviceName,serialNumber').and.contain('$count=true').and.contain('$skiptoken=');
        url = next;
      }
      expect(pages).to.equal(5);
      expect(seen.length).to.equal(5000);
      expect(new Set(seen)).to.deep.equal(new Set([...tenant.iterate()].map((d) => d.id)));
      expect(sim.stats.byRoute['GET /deviceManagement/managedDevices']).to.equal(5);
    });

    it('honours $top as the page size and carries it in nextLink', async () => {
      const r = await get('/v1.0/deviceManagement/managedDevices?$top=250&$select=id');
      expect(r.data.value).to.have.length(250);
      expect(r.data['@odata.nextLink']).to.contain('$top=250');
      const r2 = await get(r.data['@odata.nextLink']);
      expect(r2.data.value).to.have.length(250);
      expect(r2.data.value[0].id).to.not.equal(r.data.value[0].id);
    });

    it('rejects a tampered, re-targeted or foreign $skiptoken', async () => {
      const r = await get('/v1.0/deviceManagement/managedDevices?$select=id');
      const next: string = r.data['@odata.nextLink'];
      const tok = /\$skiptoken=([^&]+)/.exec(next)![1];
      const flipped = tok.slice(0, 20) + (tok[20] === 'A' ? 'B' : 'A') + tok.slice(21);
      expectGraphError(await get(next.replace(tok, flipped)), 400, 'BadRequest');
      expectGraphError(await get(next.replace('$select=id', '$select=id,deviceName')), 400, 'BadRequest');
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$select=id&$skiptoken=${Buffer.from('{"p":1000}').toString('base64url')}`), 400);
      // a token minted by another Graph instance
      const other: GraphSim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => other.url) });
      await other.start();
      try {
        const o = await http.get(`${other.url}/v1.0/deviceManagement/managedDevices?$select=id`, { headers: { Authorization: `Bearer ${token()}` } });
        const foreign = /\$skiptoken=([^&]+)/.exec(o.data['@odata.nextLink'])![1];
        expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$select=id&$skiptoken=${foreign}`), 400);
      } finally {
        await other.stop();
      }
      // beta token not valid on v1.0
      const b = await get('/beta/deviceManagement/managedDevices?$select=id');
      expectGraphError(await get(b.data['@odata.nextLink'].replace('/beta/', '/v1.0/')), 400);
    });

    it('refuses a nextLink the client rebuilt: options re-ordered, re-encoded or dropped', async () => {
      const r = await get('/v1.0/deviceManagement/managedDevices?$select=id,deviceName&$top=100&$count=true');
      const next: string = r.data['@odata.nextLink'];
      expect((await get(next)).status, 'the link as returned').to.equal(200);
      expect((await get(next)).status, 'the same link again (a retry)').to.equal(200);
      const u = new URL(next);
      const parts = u.search.slice(1).split('&');
      const token = parts.find((p) => p.startsWith('$skiptoken='))!;
      const options = parts.filter((p) => p !== token);
      const base = `${u.origin}${u.pathname}?`;
      const reordered = await get(base + [...options].reverse().concat(token).join('&'));
      expectGraphError(reordered, 400, 'BadRequest');
      expect(reordered.data.error.message).to.contain('Follow @odata.nextLink exactly as returned');
      expectGraphError(await get(base + options.map((p) => p.replace('$', '%24').replace(',', '%2C')).concat(token).join('&')), 400, 'BadRequest');
      expectGraphError(await get(base + token), 400, 'BadRequest');
    });

    it('never pages more than 1,000 devices, whatever page size it is given', async () => {
      const big: GraphSim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => big.url), pageSize: 5000 });
      await big.start();
      try {
        const r = await http.get(`${big.url}/v1.0/deviceManagement/managedDevices?$select=id&$top=3000`, { headers: { Authorization: `Bearer ${token()}` } });
        expect(r.data.value).to.have.length(1000);
        big.setPageSize(2500);
        const r2 = await http.get(`${big.url}/v1.0/deviceManagement/managedDevices?$select=id`, { headers: { Authorization: `Bearer ${token()}` } });
        expect(r2.data.value).to.have.length(1000);
        expect(r2.data['@odata.nextLink']).to.be.a('string');
      } finally {
        await big.stop();
      }
    });

    it('validates $select against the schema (beta-only names only on /beta)', async () => {
      const bad = await get('/v1.0/deviceManagement/managedDevices?$select=id,fooBar');
      expectGraphError(bad, 400, 'BadRequest');
      expect(bad.data.error.message).to.contain("'fooBar'");
      const betaOnly = await get('/v1.0/deviceManagement/managedDevices?$select=id,joinType');
      expectGraphError(betaOnly, 400);
      expect(betaOnly.data.error.message).to.contain("'joinType'");
      const ok = await get('/beta/deviceManagement/managedDevices?$select=id,joinType,skuFamily,ownerType&$top=5');
      expect(ok.status).to.equal(200);
      expect(ok.data.value[0]).to.have.keys('id', 'joinType', 'skuFamily', 'ownerType');
      // without $select v1.0 has no beta properties, beta has them
      const v1 = await get('/v1.0/deviceManagement/managedDevices?$top=1');
      expect(v1.data.value[0]).to.include.keys('jailBroken', 'managedDeviceOwnerType').and.not.have.property('joinType');
      const beta = await get('/beta/deviceManagement/managedDevices?$top=1');
      expect(beta.data.value[0]).to.include.keys('joinType', 'skuFamily', 'chassisType');
      expectGraphError(await get('/v1.0/deviceManagement/managedDevices?$orderby=deviceName'), 400);
      expectGraphError(await get('/v1.0/deviceManagement/managedDevices?$top=0'), 400);
    });

    it('returns placeholders for GET-by-id-only properties in lists and real values by id with $select', async () => {
      const win = [...tenant.iterate()].find((d) => d.operatingSystem === 'Windows' && (d.physicalMemoryInBytes as number) > 0 && d.ethernetMacAddress)!;
      const ios = [...tenant.iterate()].find((d) => d.operatingSystem === 'iOS' && d.udid)!;
      const list = await get(`/v1.0/deviceManagement/managedDevices?$filter=deviceName eq '${win.deviceName}'&$select=id,physicalMemoryInBytes,ethernetMacAddress,udid,notes`);
      const row = list.data.value.find((d: { id: string }) => d.id === win.id);
      expect(row).to.deep.include({ physicalMemoryInBytes: 0, ethernetMacAddress: null, udid: '' });
      const one = await get(`/v1.0/deviceManagement/managedDevices/${win.id}?$select=id,physicalMemoryInBytes,ethernetMacAddress`);
      expect(one.status).to.equal(200);
      expect(one.data.physicalMemoryInBytes).to.equal(win.physicalMemoryInBytes);
      expect(one.data.ethernetMacAddress).to.equal(win.ethernetMacAddress);
      expect(one.data['@odata.context']).to.contain('/$entity');
      const noSelect = await get(`/v1.0/deviceManagement/managedDevices/${ios.id}`);
      expect(noSelect.data.udid).to.equal('');
      expect(noSelect.data.deviceName).to.equal(ios.deviceName);
      const withSelect = await get(`/v1.0/deviceManagement/managedDevices/${ios.id}?$select=udid`);
      expect(withSelect.data.udid).to.equal(ios.udid).and.not.equal('');
    });

    it('answers an unknown device id with 404 and a Graph error body carrying Intune\u2019s message', async () => {
      const r = await get('/v1.0/deviceManagement/managedDevices/4a2c2c2e-1111-4222-8333-444455556666');
      expectGraphError(r, 404, 'ResourceNotFound');
      expect(JSON.parse(r.data.error.message)).to.have.property('Message').that.contains('Resource not found');
      expect(r.headers['request-id']).to.equal(r.data.error.innerError['request-id']);
    });
  });

  describe('$filter', () => {
    const ids = async (filter: string, version = 'v1.0') => {
      const out: string[] = [];
      let url: string | undefined = `/${version}/deviceManagement/managedDevices?$select=id&$filter=${encodeURIComponent(filter)}`;
      while (url) {
        const r: AxiosResponse = await get(url);
        expect(r.status, JSON.stringify(r.data)).to.equal(200);
        out.push(...r.data.value.map((d: { id: string }) => d.id));
        url = r.data['@odata.nextLink'];
      }
      return out.sort();
    };
    const expected = (f: (d: ManagedDeviceRecord) => boolean) => [...tenant.iterate()].filter(f).map((d) => d.id).sort();

    it('lastSyncDateTime gt/lt (unquoted DateTimeOffset) for incremental syncs', async () => {
      const since = '2024-08-20T00:00:00Z';
      const got = await ids(`lastSyncDateTime gt ${since}`);
      expect(got).to.deep.equal(expected((d) => isoMs(d.lastSyncDateTime) > isoMs(since)));
      expect(got.length).to.be.within(100, 4900);
      const old = await ids(`lastSyncDateTime lt 2024-05-01T00:00:00Z`);
      expect(old).to.deep.equal(expected((d) => isoMs(d.lastSyncDateTime) < isoMs('2024-05-01T00:00:00Z')));
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=lastSyncDateTime ge ${since}`), 400);
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=lastSyncDateTime gt '${since}'`), 400);
    });

    it('answers lastSyncDateTime from an index that follows every mutation (patch, sync action, removal, new device)', async () => {
      const t2 = new SimTenant({ seed: 12, devices: 1500, now: NOW });
      const s2: GraphSim = new GraphSim({ tls: pki.server, tenant: t2, verifyToken: stubVerifier(() => s2.url) });
      await s2.start();
      try {
        const since = new Date(Date.parse(NOW) - 3 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        const list = async () => {
          const out: string[] = [];
          let url: string | undefined = `${s2.url}/v1.0/deviceManagement/managedDevices?$select=id&$filter=${encodeURIComponent(`lastSyncDateTime gt ${since}`)}`;
          while (url) {
            const r: AxiosResponse = await http.get(url, { headers: { Authorization: `Bearer ${token(ALL, 'app-1', t2.tenantId)}` } });
            expect(r.status, JSON.stringify(r.data)).to.equal(200);
            out.push(...r.data.value.map((d: { id: string }) => d.id));
            url = r.data['@odata.nextLink'];
          }
          return out.sort();
        };
        const truth = () => [...t2.iterate()].filter((d) => isoMs(d.lastSyncDateTime) > isoMs(since)).map((d) => d.id).sort();
        expect(await list()).to.deep.equal(truth()); // builds the index
        const all = [...t2.iterate()];
        const old = all.filter((d) => isoMs(d.lastSyncDateTime) < isoMs(since));
        const recent = all.filter((d) => isoMs(d.lastSyncDateTime) > isoMs(since));
        t2.touchDevice(old[0].id, NOW);
        t2.patchDevice(recent[0].id, { lastSyncDateTime: '2020-01-01T00:00:00Z' });
        t2.applyAction(old[1].id, 'syncDevice');
        t2.removeDevice(recent[1].id);
        const added = t2.addDevice();
        const after = await list();
        expect(after).to.deep.equal(truth());
        expect(after).to.include.members([old[0].id, added.id]);
        expect(after).to.not.include.members([recent[0].id, recent[1].id]);
      } finally {
        await s2.stop();
      }
    });

    it('enrolledDateTime gt/lt as the reference documents (new enrolments for the compliance twins), other operators refused', async () => {
      const since = '2024-06-01T00:00:00Z';
      const got = await ids(`enrolledDateTime gt ${since}`);
      expect(got).to.deep.equal(expected((d) => isoMs(d.enrolledDateTime) > isoMs(since)));
      expect(got.length).to.be.within(1, tenant.positions - 1);
      expect(await ids(`enrolledDateTime lt ${since}`)).to.deep.equal(expected((d) => isoMs(d.enrolledDateTime) < isoMs(since)));
      for (const op of ['ge', 'le', 'eq']) expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=${encodeURIComponent(`enrolledDateTime ${op} ${since}`)}`), 400);
    });

    it('eq on operatingSystem, managementAgent, complianceState, deviceName and serialNumber, combined with and', async () => {
      expect(await ids("operatingSystem eq 'iOS' and complianceState eq 'noncompliant'")).to.deep.equal(
        expected((d) => d.operatingSystem === 'iOS' && d.complianceState === 'noncompliant'),
      );
      expect(await ids("managementAgent eq 'configurationManagerClientMdm'")).to.deep.equal(expected((d) => d.managementAgent === 'configurationManagerClientMdm'));
      expect(await ids("serialNumber eq 'Default string'")).to.deep.equal(expected((d) => d.serialNumber === 'Default string'));
      const someone = [...tenant.iterate()].find((d) => /ü/.test(d.deviceName))!;
      expect(await ids(`deviceName eq '${someone.deviceName.toUpperCase()}'`)).to.include(someone.id);
      const quote = "O'Brien's PC";
      expect(await ids(`deviceName eq '${quote.replace(/'/g, "''")}'`)).to.deep.equal([]);
      expect(await ids("complianceState eq 'noncompliant' or complianceState eq 'inGracePeriod'")).to.deep.equal(
        expected((d) => d.complianceState === 'noncompliant' || d.complianceState === 'inGracePeriod'),
      );
    });

    it("refuses 'or' across properties, bad enum members and unknown properties like Graph", async () => {
      const r = await get(`/v1.0/deviceManagement/managedDevices?$filter=${encodeURIComponent("operatingSystem eq 'iOS' or complianceState eq 'noncompliant'")}`);
      expectGraphError(r, 400, 'BadRequest');
      expect(r.data.error.message).to.match(/'or'/);
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=${encodeURIComponent("complianceState eq 'nonCompliant'")}`), 400);
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=${encodeURIComponent("noSuchProp eq 'x'")}`), 400);
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=${encodeURIComponent("joinType eq 'azureADJoined'")}`), 400);
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices?$filter=${encodeURIComponent("deviceName eq 'unterminated")}`), 400);
    });

    it('refuses clauses on properties the CSDL does not mark filterable (only listed ones may be used); ignoring them is an opt-in', async () => {
      const d = [...tenant.iterate()].find((x) => x.userId)!;
      const r = await get(`/v1.0/deviceManagement/managedDevices?$select=id&$count=true&$filter=${encodeURIComponent(`userId eq '${d.userId}'`)}`);
      expectGraphError(r, 400, 'BadRequest');
      expect(r.data.error.message).to.contain("'userId' does not support $filter");
      const lax: GraphSim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => lax.url), ignoreUnsupportedFilter: true });
      await lax.start();
      try {
        const s = await http.get(`${lax.url}/v1.0/deviceManagement/managedDevices?$select=id&$count=true&$filter=${encodeURIComponent(`userId eq '${d.userId}'`)}`, {
          headers: { Authorization: `Bearer ${token()}` },
        });
        expect(s.status).to.equal(200);
        expect(s.data['@odata.count']).to.equal(5000);
      } finally {
        await lax.stop();
      }
    });
  });

  describe('device actions', () => {
    it('accepts actions with 204 and reflects them in managementState and deviceActionResults', async () => {
      sim.resetStats();
      const d = [...tenant.iterate()].find((x) => x.operatingSystem === 'Windows' && x.managementState === 'managed')!;
      const r = await post(`/v1.0/deviceManagement/managedDevices/${d.id}/retire`);
      expect(r.status).to.equal(204);
      expect(r.data).to.equal('');
      const after = await get(`/v1.0/deviceManagement/managedDevices/${d.id}?$select=managementState,deviceActionResults`);
      expect(after.data.managementState).to.equal('retirePending');
      expect(after.data.deviceActionResults.at(-1)).to.include({ actionName: 'retire', actionState: 'pending' });
      const w = await post(`/v1.0/deviceManagement/managedDevices/${d.id}/wipe`, { keepEnrollmentData: false, keepUserData: true });
      expect(w.status).to.equal(204);
      expect(tenant.getDevice(d.id)!.managementState).to.equal('wipePending');
      expect((await post(`/v1.0/deviceManagement/managedDevices/${d.id}/syncDevice`)).status).to.equal(204);
      expect(sim.stats.actions).to.deep.include({ retire: 1, wipe: 1, syncDevice: 1 });
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/${d.id}/wipe`, { keepUserData: 'yes' }), 400);
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/${d.id}/wipe`, { wipeEverything: true }), 400);
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/${d.id}/selfDestruct`), 400);
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/00000000-aaaa-4bbb-8ccc-000000000000/retire`), 404);
      expect((await get(`/v1.0/deviceManagement/managedDevices/${d.id}/retire`)).status).to.equal(405);
    });

    it('sends Company Portal notifications on beta only, with the product limits', async () => {
      const ios = [...tenant.iterate()].find((x) => x.operatingSystem === 'iOS')!;
      const win = [...tenant.iterate()].find((x) => x.operatingSystem === 'Windows')!;
      const body = { notificationTitle: 'IT-Hinweis', notificationBody: 'Bitte starte dein Gerät neu. 🙏' };
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/${ios.id}/sendCustomNotificationToCompanyPortal`, body), 400);
      expect((await post(`/beta/deviceManagement/managedDevices/${ios.id}/sendCustomNotificationToCompanyPortal`, body)).status).to.equal(204);
      expectGraphError(await post(`/beta/deviceManagement/managedDevices/${win.id}/sendCustomNotificationToCompanyPortal`, body), 400);
      expectGraphError(await post(`/beta/deviceManagement/managedDevices/${ios.id}/sendCustomNotificationToCompanyPortal`, { ...body, notificationTitle: 'T'.repeat(51) }), 400);
      for (let k = 0; k < 9; k++) expect((await post(`/beta/deviceManagement/managedDevices/${ios.id}/sendCustomNotificationToCompanyPortal`, body)).status).to.equal(204);
      const over = await post(`/beta/deviceManagement/managedDevices/${ios.id}/sendCustomNotificationToCompanyPortal`, body);
      expectGraphError(over, 429, 'TooManyRequests');
      expect(Number(over.headers['retry-after'])).to.be.within(1, 3600);
    });

    it('runs beta executeAction in bulk with per-device outcome lists', async () => {
      const devs = [...tenant.iterate()].filter((x) => x.managementState === 'managed').slice(100, 103);
      const r = await post('/beta/deviceManagement/managedDevices/executeAction', { actionName: 'syncDevice', deviceIds: [...devs.map((d) => d.id), '0badf00d-0000-4000-8000-000000000000'] });
      expect(r.status).to.equal(200);
      expect(r.data.value.successfulDeviceIds).to.have.members(devs.map((d) => d.id));
      expect(r.data.value.notFoundDeviceIds).to.deep.equal(['0badf00d-0000-4000-8000-000000000000']);
      const v1 = await post('/v1.0/deviceManagement/managedDevices/executeAction', { actionName: 'syncDevice', deviceIds: [] });
      expect(v1.status, 'executeAction is beta-only').to.equal(405);
      expect(v1.data.error.code).to.equal('BadRequest');
    });
  });

  describe('authentication and permissions', () => {
    it('401 InvalidAuthenticationToken for a missing, bad, expired or foreign-tenant token', async () => {
      const path = `${'/v1.0/deviceManagement/managedDevices?$top=1'}`;
      const none = await http.get(`${sim.url}${path}`);
      expectGraphError(none, 401, 'InvalidAuthenticationToken');
      expect(none.headers['www-authenticate']).to.match(/^Bearer/);
      expectGraphError(await http.get(`${sim.url}${path}`, { headers: { Authorization: 'Bearer garbage' } }), 401, 'InvalidAuthenticationToken');
      const exp = await http.get(`${sim.url}${path}`, { headers: { Authorization: `Bearer expired:${TID}` } });
      expectGraphError(exp, 401, 'InvalidAuthenticationToken');
      expect(exp.data.error.message).to.contain('expired');
      expectGraphError(await http.get(`${sim.url}${path}`, { headers: { Authorization: `Bearer ${token(ALL, 'app-1', 'other-tenant')}` } }), 401);
    });

    it('403 when the app lacks the role: read, privileged actions, compliance', async () => {
      const d = tenant.deviceAt(10)!;
      const noRead = await get('/v1.0/deviceManagement/managedDevices?$top=1', ['User.Read.All']);
      expectGraphError(noRead, 403, 'Forbidden');
      expect(JSON.parse(noRead.data.error.message).Message).to.contain('DeviceManagementManagedDevices.Read.All');
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1', READ)).status).to.equal(200);
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/${d.id}/remoteLock`, undefined, READ), 403);
      expectGraphError(await post(`/v1.0/deviceManagement/managedDevices/${d.id}/remoteLock`, undefined, ['DeviceManagementManagedDevices.ReadWrite.All']), 403);
      expect((await post(`/v1.0/deviceManagement/managedDevices/${d.id}/remoteLock`, undefined, ['DeviceManagementManagedDevices.PrivilegedOperations.All'])).status).to.equal(204);
      expectGraphError(await get('/v1.0/deviceManagement/deviceCompliancePolicies', READ), 403);
      expectGraphError(await get(`/v1.0/deviceManagement/managedDevices/${d.id}/deviceCompliancePolicyStates`, READ), 403);
      expect((await get('/v1.0/deviceManagement/deviceCompliancePolicies', ['DeviceManagementConfiguration.Read.All'])).status).to.equal(200);
      // lenient mode accepts ReadWrite.All for actions
      const lenient: GraphSim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => lenient.url), actionPermissions: 'lenient' });
      await lenient.start();
      try {
        const r = await http.post(`${lenient.url}/v1.0/deviceManagement/managedDevices/${d.id}/syncDevice`, undefined, {
          headers: { Authorization: `Bearer ${token(['DeviceManagementManagedDevices.ReadWrite.All'])}` },
        });
        expect(r.status).to.equal(204);
      } finally {
        await lenient.stop();
      }
    });
  });

  describe('$batch', () => {
    it('answers each item with its own status, in shuffled order, with 424 for failed dependencies', async () => {
      sim.resetStats();
      const [a, b] = [tenant.deviceAt(20)!, tenant.deviceAt(21)!];
      const requests = [
        { id: '1', method: 'GET', url: `/deviceManagement/managedDevices/${a.id}?$select=id,deviceName` },
        { id: '2', method: 'POST', url: `/deviceManagement/managedDevices/${b.id}/syncDevice`, body: {}, headers: JSON_TYPE },
        { id: '3', method: 'GET', url: '/deviceManagement/managedDevices/11111111-2222-4333-8444-555555555555' },
        { id: '4', method: 'POST', url: `/deviceManagement/managedDevices/${a.id}/wipe`, body: { keepUserData: 'yes' }, headers: JSON_TYPE },
        { id: '5', method: 'GET', url: `deviceManagement/managedDevices/${b.id}?$select=id`, dependsOn: ['3'] },
        { id: '6', method: 'GET', url: '/deviceManagement/managedDevices?$select=id,bogus' },
        { id: '7', method: 'GET', url: `/deviceManagement/managedDevices/${b.id}?$select=managementState`, dependsOn: ['2'] },
      ];
      const r = await post('/v1.0/$batch', { requests });
      expect(r.status).to.equal(200);
      const byId = new Map<string, { status: number; body: any; headers: Record<string, string> }>(r.data.responses.map((x: any) => [x.id, x]));
      expect(byId.get('1')!.status).to.equal(200);
      expect(byId.get('1')!.body.deviceName).to.equal(a.deviceName);
      expect(byId.get('2')!.status).to.equal(204);
      expect(byId.get('2')!.body).to.equal(undefined);
      expect(byId.get('3')!.status).to.equal(404);
      expect(byId.get('3')!.body.error.code).to.equal('ResourceNotFound');
      expect(byId.get('4')!.status).to.equal(400, 'a parameter of the wrong type');
      expect(byId.get('5')!.status).to.equal(424);
      expect(byId.get('6')!.status).to.equal(400);
      expect(byId.get('7')!.status).to.equal(200);
      expect(r.data.responses.map((x: any) => x.id)).to.not.deep.equal(requests.map((q) => q.id));
      expect(sim.stats.batches).to.equal(1);
      expect(sim.stats.batchInner).to.equal(7);
      expect(sim.stats.actions.syncDevice).to.equal(1);
      expect(tenant.getDevice(a.id)!.managementState).to.not.equal('wipePending');
    });

    it('refuses the WHOLE batch (outer 400, no item runs) when a write item lacks its body or its Content-Type, as Graph does', async () => {
      sim.resetStats();
      const [a, b] = [tenant.deviceAt(30)!, tenant.deviceAt(31)!];
      const before = [a, b].map((d) => tenant.getDevice(d.id)!.deviceActionResults.length);
      const sync = { id: '1', method: 'POST', url: `/deviceManagement/managedDevices/${b.id}/syncDevice`, body: {}, headers: JSON_TYPE };
      const read = { id: '2', method: 'GET', url: `/deviceManagement/managedDevices/${a.id}?$select=id` };
      const lock = { id: '7', method: 'POST', url: `/deviceManagement/managedDevices/${a.id}/remoteLock` };
      const bare = await post('/v1.0/$batch', { requests: [sync, read, lock] });
      expectGraphError(bare, 400, 'BadRequest');
      expect(bare.data.error.message).to.equal('Write request id : 7 does not contain Content-Type header or body.');
      expect(bare.data).to.not.have.property('responses');
      const noType = await post('/v1.0/$batch', { requests: [sync, { ...lock, body: {} }] });
      expectGraphError(noType, 400, 'BadRequest');
      expect(noType.data.error.message).to.equal("Write request with id '7' does not contain a Content-Type header.");
      const noBody = await post('/beta/$batch', { requests: [sync, { ...lock, headers: JSON_TYPE }] });
      expectGraphError(noBody, 400, 'BadRequest');
      expect(noBody.data.error.message).to.equal('Write request id : 7 does not contain Content-Type header or body.');
      // nothing ran: not the good items before the bad one either
      expect(sim.stats.batchInner).to.equal(0);
      expect(sim.stats.actions).to.deep.equal({});
      expect([a, b].map((d) => tenant.getDevice(d.id)!.deviceActionResults.length)).to.deep.equal(before);
      // the same requests with `{}` and Content-Type run
      const fixed = await post('/v1.0/$batch', { requests: [sync, read, { ...lock, body: {}, headers: { 'content-type': 'application/json' } }] });
      expect(fixed.status).to.equal(200);
      expect(Object.fromEntries(fixed.data.responses.map((x: any) => [x.id, x.status]))).to.deep.equal({ 1: 204, 2: 200, 7: 204 });
      expect(sim.stats.actions).to.deep.equal({ syncDevice: 1, remoteLock: 1 });
    });

    it('rejects more than 20 items, duplicate ids and unknown dependsOn with an outer 400', async () => {
      const many = Array.from({ length: 21 }, (_, k) => ({ id: String(k), method: 'GET', url: '/deviceManagement/managedDevices?$top=1' }));
      expectGraphError(await post('/v1.0/$batch', { requests: many }), 400);
      expect((await post('/v1.0/$batch', { requests: many.slice(0, 20) })).status).to.equal(200);
      expectGraphError(await post('/beta/$batch', { requests: [many[0], { ...many[1], id: '0' }] }), 400);
      expectGraphError(await post('/beta/$batch', { requests: [{ ...many[0], dependsOn: ['9'] }] }), 400);
      expectGraphError(await post('/beta/$batch', {}), 400);
    });

    it('throttles batch items one by one, each 429 with its own Retry-After', async () => {
      sim.setLimits({ devices: { appRequests: 3 } });
      try {
        const requests = Array.from({ length: 5 }, (_, k) => ({ id: `r${k}`, method: 'GET', url: `/deviceManagement/managedDevices/${tenant.deviceAt(k)!.id}?$select=id` }));
        const r = await post('/v1.0/$batch', { requests });
        const statuses = r.data.responses.map((x: any) => x.status).sort();
        expect(statuses).to.deep.equal([200, 200, 200, 429, 429]);
        for (const x of r.data.responses.filter((y: any) => y.status === 429)) {
          expect(Number(x.headers['Retry-After'])).to.be.within(1, 20);
          expect(x.body.error.code).to.equal('TooManyRequests');
        }
        expect(sim.stats.throttledBatchItems).to.be.at.least(2);
      } finally {
        sim.setLimits({ devices: { appRequests: 2000 } });
      }
    });
  });

  describe('throttling', () => {
    it('throttles per app per tenant in a sliding window, with Retry-After, and recovers', async () => {
      sim.setLimits({ windowMs: 1500, devices: { appRequests: 5 } });
      try {
        for (let k = 0; k < 5; k++) expect((await get('/v1.0/deviceManagement/managedDevices?$top=1&$select=id')).status).to.equal(200);
        const r = await get('/v1.0/deviceManagement/managedDevices?$top=1&$select=id');
        expectGraphError(r, 429, 'TooManyRequests');
        expect(Number(r.headers['retry-after'])).to.be.within(1, 2);
        // another app has its own bucket
        expect((await get('/v1.0/deviceManagement/managedDevices?$top=1&$select=id', ALL, 'app-2')).status).to.equal(200);
        // the compliance bucket is separate
        expect((await get('/v1.0/deviceManagement/deviceCompliancePolicies')).status).to.equal(200);
        sim.setRetryAfter(false);
        const noHeader = await get('/v1.0/deviceManagement/managedDevices?$top=1&$select=id');
        expect(noHeader.status).to.equal(429);
        expect(noHeader.headers).to.not.have.property('retry-after');
        await new Promise((res) => setTimeout(res, 1600));
        expect((await get('/v1.0/deviceManagement/managedDevices?$top=1&$select=id')).status).to.equal(200);
      } finally {
        sim.setLimits({ windowMs: 20_000, devices: { appRequests: 2000 } });
      }
    });

    it('limits writes separately from reads, and the tenant across apps', async () => {
      sim.setLimits({ devices: { appWrites: 2, tenantRequests: 5 } });
      try {
        const d = tenant.deviceAt(30)!;
        expect((await post(`/v1.0/deviceManagement/managedDevices/${d.id}/syncDevice`)).status).to.equal(204);
        expect((await post(`/v1.0/deviceManagement/managedDevices/${d.id}/syncDevice`)).status).to.equal(204);
        expect((await post(`/v1.0/deviceManagement/managedDevices/${d.id}/syncDevice`)).status).to.equal(429);
        expect((await get(`/v1.0/deviceManagement/managedDevices/${d.id}?$select=id`)).status).to.equal(200);
        expect((await get(`/v1.0/deviceManagement/managedDevices/${d.id}?$select=id`, ALL, 'app-3')).status).to.equal(200);
        expect((await get(`/v1.0/deviceManagement/managedDevices/${d.id}?$select=id`, ALL, 'app-4')).status).to.equal(200);
        expect((await get(`/v1.0/deviceManagement/managedDevices/${d.id}?$select=id`, ALL, 'app-5')).status).to.equal(429, 'tenant-wide limit');
      } finally {
        sim.setLimits({ devices: { appWrites: 200, tenantRequests: 4000 } });
      }
    });

    it('by default leaves Retry-After out of every third throttling 429, as Graph does at times', async () => {
      const quiet: GraphSim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => quiet.url), limits: { devices: { appRequests: 1 } } });
      await quiet.start();
      try {
        const headers: Array<string | undefined> = [];
        const first = await http.get(`${quiet.url}/v1.0/deviceManagement/managedDevices?$top=1`, { headers: { Authorization: `Bearer ${token()}` } });
        expect(first.status).to.equal(200);
        for (let k = 0; k < 6; k++) {
          const r = await http.get(`${quiet.url}/v1.0/deviceManagement/managedDevices?$top=1`, { headers: { Authorization: `Bearer ${token()}` } });
          expectGraphError(r, 429, 'TooManyRequests');
          headers.push(r.headers['retry-after']);
        }
        expect(headers.filter((h) => h === undefined)).to.have.length(2);
        for (const h of headers.filter((x) => x !== undefined)) expect(Number(h)).to.be.within(1, 20);
        quiet.setRetryAfter(true);
        const always = await http.get(`${quiet.url}/v1.0/deviceManagement/managedDevices?$top=1`, { headers: { Authorization: `Bearer ${token()}` } });
        expect(always.headers['retry-after']).to.match(/^\d+$/);
      } finally {
        await quiet.stop();
      }
    });

    it('throttleNext forces 429s with or without Retry-After', async () => {
      sim.throttleNext(1, { retryAfter: 7 });
      const r = await get('/v1.0/deviceManagement/managedDevices?$top=1');
      expect(r.status).to.equal(429);
      expect(r.headers['retry-after']).to.equal('7');
      sim.throttleNext(1, { retryAfter: null });
      const n = await get('/v1.0/deviceManagement/managedDevices?$top=1');
      expect(n.status).to.equal(429);
      expect(n.headers).to.not.have.property('retry-after');
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1')).status).to.equal(200);
    });
  });

  describe('fault injection', () => {
    it('answers 503/504 with or without Retry-After, only for matching paths', async () => {
      sim.failNext(1, { status: 503, retryAfter: 3, path: /deviceCompliancePolicies/ });
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1')).status).to.equal(200);
      const r = await get('/v1.0/deviceManagement/deviceCompliancePolicies');
      expectGraphError(r, 503, 'ServiceUnavailable');
      expect(r.headers['retry-after']).to.equal('3');
      sim.failNext(2, { status: 504 });
      const g1 = await get('/v1.0/deviceManagement/managedDevices?$top=1');
      expectGraphError(g1, 504, 'GatewayTimeout');
      expect(g1.headers).to.not.have.property('retry-after');
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1')).status).to.equal(504);
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1')).status).to.equal(200);
    });

    it('drops connections before or in the middle of the response', async () => {
      sim.dropNext(1);
      let err: any = null;
      await get('/v1.0/deviceManagement/managedDevices?$top=1').catch((e) => (err = e));
      expect(err, 'request should fail').to.not.equal(null);
      expect(err.code).to.match(/ECONNRESET|ERR_SOCKET|EPIPE|ECONNABORTED|ERR_BAD_RESPONSE/);
      sim.dropNext(1, { phase: 'midResponse' });
      err = null;
      await get('/v1.0/deviceManagement/managedDevices?$top=1').catch((e) => (err = e));
      expect(err, 'mid-response drop should fail').to.not.equal(null);
      expect(sim.stats.faults.dropped).to.be.at.least(2);
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1')).status).to.equal(200);
    });

    it('adds latency and fails batch items when asked', async () => {
      sim.delayNext(1, 300);
      const t0 = Date.now();
      expect((await get('/v1.0/deviceManagement/managedDevices?$top=1')).status).to.equal(200);
      expect(Date.now() - t0).to.be.at.least(290);
      sim.failNext(1, { status: 503, retryAfter: 2, scope: 'batchItem', path: 'syncDevice' });
      const d = tenant.deviceAt(40)!;
      const r = await post('/v1.0/$batch', {
        requests: [
          { id: 'a', method: 'POST', url: `/deviceManagement/managedDevices/${d.id}/syncDevice`, body: {}, headers: JSON_TYPE },
          { id: 'b', method: 'GET', url: `/deviceManagement/managedDevices/${d.id}?$select=id` },
        ],
      });
      const byId = Object.fromEntries(r.data.responses.map((x: any) => [x.id, x]));
      expect(byId.a.status).to.equal(503);
      expect(byId.a.headers['Retry-After']).to.equal('2');
      expect(byId.b.status).to.equal(200);
    });
  });

  describe('compliance', () => {
    it('lists policies with their derived @odata.type and serves per-device states with settingStates', async () => {
      const p = await get('/v1.0/deviceManagement/deviceCompliancePolicies');
      expect(p.status).to.equal(200);
      expect(p.data.value).to.have.length(tenant.policies.length);
      for (const x of p.data.value) expect(x['@odata.type']).to.match(/^#microsoft\.graph\.\w+CompliancePolicy$/);
      expectGraphError(await get('/v1.0/deviceManagement/deviceCompliancePolicies?$select=displayName,roleScopeTagIds'), 400);
      expect((await get('/beta/deviceManagement/deviceCompliancePolicies?$select=displayName,roleScopeTagIds')).status).to.equal(200);
      const d = [...tenant.iterate()].find((x) => x.complianceState === 'noncompliant')!;
      const s = await get(`/v1.0/deviceManagement/managedDevices/${d.id}/deviceCompliancePolicyStates`, ['DeviceManagementConfiguration.Read.All']);
      expect(s.status).to.equal(200);
      const failing = s.data.value.filter((x: any) => x.state === 'nonCompliant');
      expect(failing.length).to.be.greaterThan(0);
      const st = failing[0].settingStates.find((x: any) => x.state === 'nonCompliant');
      expect(st).to.include.keys('setting', 'settingName', 'currentValue', 'errorCode', 'errorDescription', 'sources');
      expect(st).to.not.have.property('settingInstanceId');
      expect(s.data.value[0]).to.not.have.property('userPrincipalName');
      const sb = await get(`/beta/deviceManagement/managedDevices/${d.id}/deviceCompliancePolicyStates`);
      expect(sb.data.value[0]).to.have.property('userPrincipalName');
      expect(sb.data.value[0].settingStates[0]).to.have.property('settingInstanceId');
    });

    it('pages a policy\u2019s deviceStatuses and filters them by status', async () => {
      const policy = tenant.policies[0];
      let url: string | undefined = `/v1.0/deviceManagement/deviceCompliancePolicies/${policy.id}/deviceStatuses?$top=400`;
      const seen = new Set<string>();
      while (url) {
        const r: AxiosResponse = await get(url);
        expect(r.status).to.equal(200);
        for (const x of r.data.value) seen.add(x.id);
        url = r.data['@odata.nextLink'];
      }
      const assigned = [...tenant.iterate()].filter((d) => tenant.policyStatesFor(d.id)!.some((s) => s.id === policy.id));
      expect(seen.size).to.equal(assigned.length);
      const nc = await get(`/v1.0/deviceManagement/deviceCompliancePolicies/${policy.id}/deviceStatuses?$filter=${encodeURIComponent("status eq 'nonCompliant'")}`);
      expect(nc.data.value.every((x: any) => x.status === 'nonCompliant')).to.equal(true);
      expect(nc.data.value.length).to.be.greaterThan(0);
      expectGraphError(await get(`/v1.0/deviceManagement/deviceCompliancePolicies/00000000-0000-4000-8000-000000000000/deviceStatuses`), 404);
    });

    it('serves getNoncompliantDevicesAndSettingsReport with TotalRowCount/Schema/Values, paged by skip/top', async () => {
      const truth: string[] = [];
      for (let i = 0; i < tenant.positions; i++) for (const row of tenant.reportRowsAt(i)) truth.push(`${row.DeviceId}|${row.PolicyId}|${row.SettingName}`);
      const first = await post('/v1.0/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { select: [], top: 500, skip: 0 });
      expect(first.status).to.equal(200);
      expect(first.headers['content-type']).to.equal('application/octet-stream');
      const body = typeof first.data === 'string' ? JSON.parse(first.data) : first.data;
      expect(body.TotalRowCount).to.equal(truth.length);
      const cols = body.Schema.map((c: any) => c.Column);
      expect(cols).to.include.members(['DeviceId', 'DeviceName', 'UPN', 'OS', 'PolicyId', 'PolicyName', 'SettingName', 'SettingNm', 'SettingNm_loc', 'SettingStatus', 'ErrorCode']);
      expect(body.Schema.find((c: any) => c.Column === 'SettingStatus').PropertyType).to.equal('Int32');
      const got: string[] = [];
      for (let skip = 0; skip < truth.length; skip += 500) {
        const r = await post('/v1.0/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', {
          select: ['DeviceId', 'PolicyId', 'SettingName', 'SettingStatus'],
          skip,
          top: 500,
        });
        const b = typeof r.data === 'string' ? JSON.parse(r.data) : r.data;
        expect(b.Schema.map((c: any) => c.Column)).to.deep.equal(['DeviceId', 'PolicyId', 'SettingName', 'SettingStatus']);
        for (const v of b.Values) {
          expect([4, 5]).to.include(v[3]);
          got.push(`${v[0]}|${v[1]}|${v[2]}`);
        }
      }
      expect(got).to.deep.equal(truth);
      const oneDevice = truth[0].split('|')[0];
      const f = await post('/v1.0/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { filter: `(DeviceId eq '${oneDevice}')`, top: 100 });
      const fb = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
      expect(fb.TotalRowCount).to.equal(truth.filter((x) => x.startsWith(oneDevice)).length);
      expectGraphError(await post('/v1.0/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { select: ['SettingNm_loc'] }), 400);
      expectGraphError(await post('/v1.0/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { filter: "UPN eq 'x'" }), 400);
      expectGraphError(await post('/v1.0/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { wat: 1 }), 400);
    });
  });

  describe('lifecycle and stats', () => {
    it('counts requests by method, route and status and logs them', async () => {
      sim.resetStats();
      await get('/v1.0/deviceManagement/managedDevices?$top=1');
      await get(`/beta/users/${[...tenant.users.iterate()][0].id}`);
      await get('/v1.0/nothingHere');
      await get('/v2.0/deviceManagement/managedDevices');
      expect(sim.stats.requests).to.equal(4);
      expect(sim.stats.byMethod.GET).to.equal(4);
      expect(sim.stats.byRoute['GET /deviceManagement/managedDevices']).to.equal(1);
      expect(sim.stats.byRoute['GET /users/{id}']).to.equal(1);
      expect(sim.stats.byStatus['400']).to.equal(2);
      expect(sim.stats.byVersion).to.deep.equal({ 'v1.0': 2, beta: 1 });
      expect(sim.requestLog.map((e) => e.status)).to.deep.equal([200, 200, 400, 400]);
    });

    it('stops promptly even with keep-alive connections open', async () => {
      const s: GraphSim = new GraphSim({ tls: pki.server, tenant, verifyToken: stubVerifier(() => s.url) });
      await s.start();
      const a = createHttpsAgent({ ca: pki.certPem });
      const h = createAxios(a);
      expect((await h.get(`${s.url}/v1.0/deviceManagement/managedDevices?$top=1`, { headers: { Authorization: `Bearer ${token()}` } })).status).to.equal(200);
      const t0 = Date.now();
      await s.stop();
      expect(Date.now() - t0).to.be.lessThan(1000);
      a.destroy();
    });
  });
});
