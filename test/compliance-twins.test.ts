/**
 * The re-enrolled twins a compliance run keeps for the next (compliance-
 * twins.ts) and how NoncompliantDeviceIndex uses them: the keeper rule, the
 * packed form and its tolerance of garbage, and — against the simulated
 * Graph, with the run's time injected — when the tenant-wide duplicate pass
 * is made (no kept set, older than the refresh interval, more look-ups than
 * the pass costs) and what a run makes instead, counted at the simulator.
 */
import type https from 'node:https';
import { expect } from 'chai';
import { sharedTestCa } from '../sim/pki';
import { GraphSim } from '../sim/graph';
import { SimTenant } from '../sim/tenant';
import { createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { GraphClient } from '../nodes/lib/graph/graph-client';
import { DeletedUserCheck, UserExistenceCache } from '../nodes/lib/devices/deleted-users';
import { NoncompliantDeviceIndex } from '../nodes/lib/compliance/compliance-devices';
import { parseDeviceSettings } from '../nodes/lib/compliance/compliance-settings';
import { ENROLLED_OVERLAP_MS, TWIN_REFRESH_MS, TwinCache, TwinSet } from '../nodes/lib/compliance/compliance-twins';

const HOUR = 3_600_000;

describe('compliance twins (kept between runs)', () => {
  describe('TwinSet', () => {
    it('the keeper is the newest record, ties go to the first read; a record read again keeps its place and its newest sync', () => {
      const s = new TwinSet();
      s.track('S1');
      s.learn('S1', 'a', 100);
      s.learn('S1', 'b', 200);
      expect(s.isDuplicate('S1', 'a')).to.equal(true);
      expect(s.isDuplicate('S1', 'b')).to.equal(false);
      s.learn('S1', 'a', 300);
      expect([s.isDuplicate('S1', 'a'), s.isDuplicate('S1', 'b')]).to.deep.equal([false, true]);
      // an older read does not move a last sync back
      s.learn('S1', 'a', 50);
      expect(s.isDuplicate('S1', 'b')).to.equal(true);
      // a tie with the first read: the first stays
      s.learn('S1', 'b', 300);
      expect([s.isDuplicate('S1', 'a'), s.isDuplicate('S1', 'b')]).to.deep.equal([false, true]);
      expect([...s.entries()][0][1]).to.have.length(2);
      // untracked serials and records without a serial are ignored; a single record is never a duplicate
      s.learn('S2', 'c', 1);
      s.learn(null, 'd', 1);
      expect(s.tracks('S2')).to.equal(false);
      s.track('S3');
      s.learn('S3', 'e', 1);
      expect(s.isDuplicate('S3', 'e')).to.equal(false);
      expect(s.isDuplicate('S3', 'x')).to.equal(false);
      expect(s.knows('S3', 'e')).to.equal(true);
      expect(s.knows('S3', 'x')).to.equal(false);
      // reset: tracked afresh, nothing known
      s.reset('S1');
      expect(s.knows('S1', 'a')).to.equal(false);
      expect(s.only(['S1', 'S3', 'S9']).size).to.equal(2);
    });
  });

  describe('TwinCache', () => {
    it('packs and reads back times, order and odd serials and ids; fresh only within the refresh interval', () => {
      const s = new TwinSet();
      for (const [key, recs] of [
        ['C02XK0AAJG5H', [['id-1', 1_700_000_000_000], ['id-2', 1_700_000_100_000]]],
        ['A|B:C\nÄ%', [['odd|id', 0], ['id-4', -62_135_596_800_000]]],
      ] as Array<[string, Array<[string, number]>]>) {
        s.track(key);
        for (const [id, ms] of recs) s.learn(key, id, ms);
      }
      s.track('EMPTY');
      const c = new TwinCache(1_000, 2_000, 100_000, s);
      const stored = JSON.parse(JSON.stringify(c.pack()));
      expect(stored.serials.split('\n')).to.have.length(2);
      expect(stored.serials).to.match(/^[\x20-\x7e\n]+$/);
      const back = TwinCache.parse(stored)!;
      expect(back).to.not.equal(null);
      expect([back.passAt, back.seenTo, back.tenantRecords]).to.deep.equal([1_000, 2_000, 100_000]);
      expect(back.twins.size, 'serials without records are not kept').to.equal(2);
      expect([...back.twins.entries()]).to.deep.equal([...s.entries()].filter(([, r]) => r.length));
      expect(back.fresh(1_000)).to.equal(false); // seenTo lies ahead of now
      expect(back.fresh(2_000)).to.equal(true);
      expect(back.fresh(1_000 + TWIN_REFRESH_MS - 1)).to.equal(true);
      expect(back.fresh(1_000 + TWIN_REFRESH_MS)).to.equal(false);
    });

    it('reads garbage as no cache, and leaves out a line that does not read back whole', () => {
      const ok = { v: 1, passAt: 1, seenTo: 2, tenantRecords: 3, serials: '' };
      for (const g of [
        undefined,
        null,
        42,
        'garbage',
        {},
        { ...ok, v: 2 },
        { ...ok, serials: 7 },
        { ...ok, passAt: '1' },
        { ...ok, seenTo: 0 },
        { ...ok, tenantRecords: -3 },
        { ...ok, passAt: 1.5 },
        { ...ok, passAt: 1e30, seenTo: 1e30 },
        { ...ok, serials: 'A|a|1\n%E0%A4%A|a|1' },
      ]) {
        expect(TwinCache.parse(g), JSON.stringify(g)).to.equal(null);
      }
      expect(TwinCache.parse(ok)!.twins.size).to.equal(0);
      const c = TwinCache.parse({ ...ok, serials: ['GOOD|a|1|b|2', 'BAD|a|1|b', 'BAD2|a|zz!', 'BAD3||1', 'NOREC', 'GOOD2|c|-5'].join('\n') })!;
      expect([...c.twins.entries()].map(([k, r]) => [k, r.length])).to.deep.equal([
        ['GOOD', 2],
        ['GOOD2', 1],
      ]);
      expect(c.twins.isDuplicate('GOOD', 'a')).to.equal(true);
    });
  });

  describe('NoncompliantDeviceIndex against the simulated Graph, with the run time injected', function () {
    this.timeout(120_000);
    let agent: https.Agent;
    let sim: GraphSim;
    let tenant: SimTenant;
    const device = parseDeviceSettings({ collapseDuplicates: true, checkDeletedUsers: false });

    before(async () => {
      agent = createHttpsAgent({ ca: sharedTestCa().certPem });
      tenant = new SimTenant({ seed: 7, devices: 3_000 });
      sim = new GraphSim({ tls: sharedTestCa().server, tenant, pageSize: 1000, verifyToken: () => ({ tid: tenant.tenantId, roles: ['DeviceManagementManagedDevices.Read.All'], appid: 'twins-test' }) });
      await sim.start();
      sim.setLimits({ devices: { appRequests: 1_000_000, tenantRequests: 1_000_000 } });
    });
    after(async () => {
      await sim?.stop();
      agent?.destroy();
    });

    /** One index load at `now` with `twins` kept: its tally, the twins it would keep, and the device listings by kind. */
    async function load(now: number, twins: TwinCache | null) {
      const graph = new GraphClient({ baseUrl: sim.url, agent, getToken: async () => 'tok', retry: { maxRetries: 2, baseDelayMs: 10, maxDelayMs: 20 } });
      const index = new NoncompliantDeviceIndex({
        graph,
        filters: device.filters,
        collapseDuplicates: true,
        normalise: { portalUrl: 'https://intune.microsoft.com', tenantId: tenant.tenantId, placeholders: device.placeholders },
        users: new DeletedUserCheck({ graph, cache: new UserExistenceCache(), useDirectory: false }),
        now,
        twins,
      });
      sim.resetStats();
      await index.load();
      const urls = sim.requestLog.filter((r) => r.route === 'GET /deviceManagement/managedDevices').map((r) => decodeURIComponent(r.url));
      const enrolled = urls.filter((u) => u.includes('$filter=enrolledDateTime gt '));
      return {
        index,
        tally: { ...index.tally },
        next: index.nextTwins(),
        fullPass: urls.filter((u) => !u.includes('$filter=')).length,
        enrolled,
        lookups: urls.filter((u) => u.includes('serialNumber eq ')).length,
      };
    }

    /** The duplicate verdicts of the listed devices. */
    function duplicates(index: NoncompliantDeviceIndex): string[] {
      const out: string[] = [];
      for (let i = 0; i < tenant.positions; i++) {
        const d = tenant.deviceAt(i);
        if (d && index.get(d.id)?.reason === 'duplicate') out.push(d.id);
      }
      return out.sort();
    }

    it('makes the full pass without kept twins, uses them (one listing of new enrolments) within the refresh interval, and again makes it once they are older', async () => {
      const t0 = Date.now();
      const a = await load(t0, null);
      expect(a.tally).to.include({ duplicatePass: 'noCache', duplicatePages: 3, enrolledPages: 0 });
      expect(a.fullPass).to.equal(3);
      expect(a.next!.passAt).to.equal(t0);
      expect(a.next!.tenantRecords).to.equal(3_000);
      const dupes = duplicates(a.index);
      expect(dupes.length, 'the tenant has non-compliant older twins').to.be.greaterThan(0);

      const b = await load(t0 + 23 * HOUR, TwinCache.parse(JSON.parse(JSON.stringify(a.next!.pack()))));
      expect(b.tally).to.include({ duplicatePass: null, duplicatePages: 0, enrolledPages: 1, twinLookups: 0 });
      expect([b.fullPass, b.enrolled.length, b.lookups]).to.deep.equal([0, 1, 0]);
      expect(b.enrolled[0]).to.include(`enrolledDateTime gt ${new Date(t0 - ENROLLED_OVERLAP_MS).toISOString()}`);
      expect(duplicates(b.index)).to.deep.equal(dupes);
      // the pass time stays, the set is up to date as of this run
      expect([b.next!.passAt, b.next!.seenTo]).to.deep.equal([t0, t0 + 23 * HOUR]);

      const c = await load(t0 + TWIN_REFRESH_MS + 1, b.next);
      expect(c.tally).to.include({ duplicatePass: 'expired', duplicatePages: 3, enrolledPages: 0 });
      expect(c.fullPass).to.equal(3);
      expect(c.next!.passAt).to.equal(t0 + TWIN_REFRESH_MS + 1);
      expect(duplicates(c.index)).to.deep.equal(dupes);
    });

    it('makes the full pass when the serials it would look up cost more than the pass', async () => {
      const t0 = Date.now();
      const empty = new TwinCache(t0 - HOUR, t0 - HOUR, 3_000, new TwinSet());
      const r = await load(t0, empty);
      expect(r.tally).to.include({ duplicatePass: 'manyNewSerials', duplicatePages: 3, twinLookups: 0 });
      expect([r.fullPass, r.enrolled.length, r.lookups]).to.deep.equal([3, 0, 0]);
    });
  });
});
