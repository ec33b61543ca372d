/**
 * The duplicate pass read as several enrolment-date ranges side by side
 * (nodes/lib/devices/split-listing.ts), against the simulated Graph over TLS:
 * every record once, the ranges in flight together, the same duplicates
 * learned as from one listing; and the fallback when Graph refuses a range.
 */
import type https from 'node:https';
import { expect } from 'chai';
import { sharedTestCa } from '../sim/pki';
import { GraphSim } from '../sim/graph';
import { SimTenant } from '../sim/tenant';
import { createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { GraphClient } from '../nodes/lib/graph/graph-client';
import { GraphRequestError } from '../nodes/lib/graph/graph-errors';
import { SPLIT_PARTS, enrolledRanges, splitListing } from '../nodes/lib/devices/split-listing';
import { DuplicateIndex, syncMs } from '../nodes/lib/devices/device-duplicates';
import { DUPLICATE_SELECT, serialKey, type ManagedDeviceRecord } from '../nodes/lib/devices/device-normaliser';
import { MANAGED_DEVICES_PATH } from '../nodes/lib/devices/device-scan';

const ROLES = ['DeviceManagementManagedDevices.Read.All'];

describe('duplicate pass as enrolment-date ranges side by side', function () {
  this.timeout(60_000);
  const DEVICES = 4000;
  let tenant: SimTenant;
  let sim: GraphSim;
  let agent: https.Agent;
  let graph: GraphClient;

  before(async () => {
    tenant = new SimTenant({ seed: 23, devices: DEVICES });
    sim = new GraphSim({
      tls: sharedTestCa().server,
      tenant,
      pageSize: 250,
      verifyToken: () => ({ tid: tenant.tenantId, roles: ROLES, appid: 'split-listing-test' }),
    });
    await sim.start();
    agent = createHttpsAgent({ ca: sharedTestCa().certPem });
    graph = new GraphClient({ baseUrl: sim.url, agent, getToken: async () => 'tok', retry: { baseDelayMs: 20, maxDelayMs: 200, maxTotalWaitMs: 10_000 } });
  });
  after(async () => {
    graph?.close();
    agent?.destroy();
    await sim?.stop();
  });
  beforeEach(() => {
    sim.resetStats();
    sim.setLatency(0);
  });

  // With the id, so the test can tell the records apart (the pass itself does not need it).
  const select = ['id', ...DUPLICATE_SELECT];
  const liveIds = () => [...tenant.iterate()].map((d) => d.id).sort();

  it('reads every record of the tenant exactly once, in ranges of enrolledDateTime asked for side by side', async () => {
    // 100 ms per request: the parts' first pages are all asked for before any part's second page.
    sim.setLatency(100);
    const seen = new Map<string, number>();
    let pages = 0;
    for await (const p of splitListing<ManagedDeviceRecord>(graph, MANAGED_DEVICES_PATH, { version: 'v1.0', select })) {
      expect(p.page, 'pages numbered in the order they come').to.equal(++pages);
      for (const r of p.items) seen.set(r.id!, (seen.get(r.id!) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).to.deep.equal(liveIds());
    expect([...seen.values()].every((n) => n === 1), 'no record twice').to.equal(true);

    const listings = sim.requestLog.filter((e) => e.route !== null && e.url.includes('managedDevices'));
    const filters = listings.map((e) => new URL(e.url, 'https://x').searchParams.get('$filter'));
    expect(filters[0], 'the sample: the first page of the plain listing').to.equal(null);
    const distinct = [...new Set(filters.slice(1))];
    expect(distinct).to.have.length(SPLIT_PARTS);
    expect(distinct[0]).to.match(/^enrolledDateTime lt \S+Z$/);
    expect(distinct[SPLIT_PARTS - 1]).to.match(/^enrolledDateTime gt \S+Z$/);
    for (const f of distinct.slice(1, -1)) expect(f).to.match(/^enrolledDateTime gt \S+Z and enrolledDateTime lt \S+Z$/);
    const firstPages = listings.slice(1).map((e) => !new URL(e.url, 'https://x').searchParams.has('$skiptoken'));
    expect(firstPages.slice(0, SPLIT_PARTS), 'every part started before any part read on').to.deep.equal(Array(SPLIT_PARTS).fill(true));
    expect(listings.length - 1, 'each part pages on to its end').to.be.greaterThan(DEVICES / 250);
  });

  it('learns the same duplicates as one plain listing', async () => {
    const learn = async (pages: AsyncIterable<{ items: ManagedDeviceRecord[] }>) => {
      const ix = new DuplicateIndex();
      for await (const p of pages) for (const r of p.items) ix.learn(serialKey(r.serialNumber ?? null), syncMs(r.lastSyncDateTime));
      ix.seal();
      return ix;
    };
    const split = await learn(splitListing<ManagedDeviceRecord>(graph, MANAGED_DEVICES_PATH, { version: 'v1.0', select }));
    const plain = await learn(graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, { version: 'v1.0', select }));
    expect(plain.duplicatedSerials, 'the simulated tenant has re-enrolled twins').to.be.greaterThan(0);
    expect(split.duplicatedSerials).to.equal(plain.duplicatedSerials);
  });

  it('a tenant that fits in the first page is read with that one request', async () => {
    const small = new SimTenant({ seed: 5, devices: 30 });
    const s = new GraphSim({ tls: sharedTestCa().server, tenant: small, verifyToken: () => ({ tid: small.tenantId, roles: ROLES, appid: 't' }) });
    await s.start();
    const g = new GraphClient({ baseUrl: s.url, agent, getToken: async () => 'tok' });
    try {
      const ids: string[] = [];
      for await (const p of splitListing<ManagedDeviceRecord>(g, MANAGED_DEVICES_PATH, { version: 'v1.0', select })) ids.push(...p.items.map((r) => r.id!));
      expect(ids.sort()).to.deep.equal([...small.iterate()].map((d) => d.id).sort());
      expect(s.stats.requests).to.equal(1);
    } finally {
      g.close();
      await s.stop();
    }
  });

  it('when Graph refuses a range (HTTP 400), says so and reads the tenant as one listing', async () => {
    const refusing = {
      pages<T>(path: string, o: { filter?: string } & Record<string, unknown>) {
        if (o.filter) {
          return (async function* (): AsyncGenerator<never> {
            throw new GraphRequestError('Invalid filter clause', { status: 400, code: 'BadRequest' });
          })();
        }
        return graph.pages<T>(path, o as never);
      },
    };
    const refused: string[] = [];
    const ids: string[] = [];
    for await (const p of splitListing<ManagedDeviceRecord>(refusing as never, MANAGED_DEVICES_PATH, { version: 'v1.0', select, onFallback: (e) => refused.push(e.message) })) {
      ids.push(...p.items.map((r) => r.id!));
    }
    expect(refused).to.deep.equal(['Invalid filter clause']);
    expect(ids.sort()).to.deep.equal(liveIds());
  });

  it('another failure of a part stops the other parts and reaches the caller', async () => {
    let open = 0;
    let closed = 0;
    const failing = {
      pages<T>(path: string, o: { filter?: string; signal?: AbortSignal } & Record<string, unknown>) {
        if (!o.filter) return graph.pages<T>(path, o as never);
        const last = /gt \S+$/.test(o.filter) && !o.filter.includes(' and ');
        return (async function* () {
          open++;
          try {
            if (last) throw new GraphRequestError('Service unavailable', { status: 503 });
            yield* graph.pages<T>(path, o as never);
          } finally {
            closed++;
          }
        })();
      },
    };
    let err: unknown;
    try {
      for await (const p of splitListing<ManagedDeviceRecord>(failing as never, MANAGED_DEVICES_PATH, { version: 'v1.0', select })) void p;
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(GraphRequestError);
    expect((err as GraphRequestError).status).to.equal(503);
    expect(open).to.equal(SPLIT_PARTS);
    expect(closed, 'every part ended').to.equal(SPLIT_PARTS);
  });

  it('ranges: quantiles of the sample; one plain listing when the sample does not spread', () => {
    const t = (d: string) => Date.parse(d);
    const sample = ['2024-01-01', '2024-02-01', '2024-03-01', '2024-04-01', '2024-05-01', '2024-06-01', '2024-07-01', '2024-08-01'].map((d) => t(`${d}T00:00:00Z`));
    expect(enrolledRanges(sample, 4)).to.deep.equal([
      'enrolledDateTime lt 2024-03-01T00:00:00.000Z',
      'enrolledDateTime gt 2024-02-29T23:59:59.999Z and enrolledDateTime lt 2024-05-01T00:00:00.000Z',
      'enrolledDateTime gt 2024-04-30T23:59:59.999Z and enrolledDateTime lt 2024-07-01T00:00:00.000Z',
      'enrolledDateTime gt 2024-06-30T23:59:59.999Z',
    ]);
    expect(enrolledRanges(Array(50).fill(t('2024-01-01T00:00:00Z')), 4)).to.deep.equal([undefined]);
    expect(enrolledRanges([NaN, NaN], 4)).to.deep.equal([undefined]);
    // Repeated values make fewer, never empty, ranges.
    expect(enrolledRanges([1, 1, 1, 1, 1, 1, 2, 3].map((d) => t(`2024-0${d}-01T00:00:00Z`)), 4)).to.have.length(2);
  });
});
