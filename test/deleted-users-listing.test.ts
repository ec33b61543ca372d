/**
 * The deleted-user check on a cold cache lists the tenant's users in bulk
 * (GET /users?$select=id&$top=999) instead of asking per user, against the
 * simulated Graph: request counts at the sim, the same kept/skipped devices as
 * the tenant's truth, a failed listing falling back to per-user look-ups, and
 * the sim's /users route itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import type https from 'node:https';
import { expect } from 'chai';
import { sharedTestCa } from '../sim/pki';
import { GraphSim } from '../sim/graph';
import { SimTenant } from '../sim/tenant';
import { createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { GraphClient } from '../nodes/lib/graph/graph-client';
import { GraphRequestError } from '../nodes/lib/graph/graph-errors';
import { DeletedUserCheck, LIST_USERS_FROM, UserExistenceCache } from '../nodes/lib/devices/deleted-users';
import { UserIdSet } from '../nodes/lib/devices/directory-users';
import { emptyTally, scanDevices } from '../nodes/lib/devices/device-scan';
import { FILTER_SELECT, isDeletedUserRecord } from '../nodes/lib/devices/device-normaliser';
import { parseDeviceSourceSettings, type DeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';
import { deviceGroundTruth } from './support/device-fixtures';
import { SPLIT_PARTS } from '../nodes/lib/devices/split-listing';

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

function templateSettings(): DeviceSourceSettings {
  const flow = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'flows', '4me - devices to configuration items.json'), 'utf8')) as Array<Record<string, unknown>>;
  return parseDeviceSourceSettings(flow.find((n) => n.type === 'intune-devices')!);
}

const ALL = ['DeviceManagementManagedDevices.Read.All', 'User.Read.All'];

describe('deleted-user check: listing the directory instead of per-user look-ups', function () {
  this.timeout(120_000);
  let agent: https.Agent;
  const sims: GraphSim[] = [];
  const s = templateSettings();

  async function startSim(devices: number, seed: number, roles = ALL): Promise<{ sim: GraphSim; tenant: SimTenant }> {
    const tenant = new SimTenant({ seed, devices });
    const sim = new GraphSim({
      tls: sharedTestCa().server,
      tenant,
      pageSize: 1000,
      verifyToken: () => ({ tid: tenant.tenantId, roles, appid: 'users-list-test' }),
    });
    await sim.start();
    sim.setLimits({ directory: { S: 1_000_000, M: 1_000_000, L: 1_000_000 } });
    sims.push(sim);
    return { sim, tenant };
  }

  function client(sim: GraphSim): GraphClient {
    return new GraphClient({ baseUrl: sim.url, agent, getToken: async () => 'tok', retry: { maxRetries: 2, baseDelayMs: 10, maxDelayMs: 20 } });
  }

  /** One run of the device scan with the template's settings: kept ids and skip counts. */
  async function run(tenant: SimTenant, graph: GraphClient, users: DeletedUserCheck) {
    const tally = emptyTally();
    const kept = new Set<string>();
    for await (const page of scanDevices({
      graph,
      version: 'v1.0',
      select: FILTER_SELECT,
      collapseDuplicates: s.collapseDuplicates,
      filters: s.filters,
      normalise: { portalUrl: 'https://intune.example', tenantId: tenant.tenantId, placeholders: s.placeholders },
      users,
      now: Date.now(),
      tally,
    })) {
      for (const d of page.devices) kept.add(d.id);
    }
    return { kept, skipped: tally.skipped };
  }

  /** Users the device records leave open (a user id with a UPN, not named as a deleted user's device). */
  function openUsers(tenant: SimTenant): Set<string> {
    const ids = new Set<string>();
    for (const d of tenant.iterate()) {
      const id = (d.userId ?? '').trim();
      if (id && (d.userPrincipalName ?? '').trim() && !isDeletedUserRecord(d)) ids.add(id);
    }
    return ids;
  }

  const liveUsers = (tenant: SimTenant) => [...tenant.users.iterate()].length;

  before(() => {
    agent = createHttpsAgent({ ca: sharedTestCa().certPem });
  });
  after(async () => {
    agent?.destroy();
    await Promise.all(sims.map((x) => x.stop()));
  });

  it('a cold run of a few thousand devices lists the users (ceil(users/999) requests), asks nobody one by one, and keeps and skips exactly what the tenant\'s truth says', async () => {
    expect(s.checkDeletedUsers, 'the template checks deleted users').to.equal(true);
    const { sim, tenant } = await startSim(4000, 7);
    const open = openUsers(tenant);
    expect(open.size, 'more open users than the threshold').to.be.above(LIST_USERS_FROM);
    const graph = client(sim);
    const cache = new UserExistenceCache();
    const users = new DeletedUserCheck({ graph, cache, useDirectory: true });
    try {
      const r = await run(tenant, graph, users);
      const live = liveUsers(tenant);
      expect(live, 'several listing pages').to.be.above(999);
      expect(sim.stats.byRoute['GET /users'], 'listing requests').to.equal(Math.ceil(live / 999));
      expect(sim.stats.byRoute['GET /users/{id}'] ?? 0, 'per-user look-ups').to.equal(0);
      expect(users.lookups).to.equal(0);
      expect(users.listingRequests).to.equal(Math.ceil(live / 999));
      // The listing starts during the duplicate pass (which reads the user fields for it), not after the first device page.
      const urls = sim.requestLog.map((e) => e.url);
      const passStarts = urls.map((u, i) => (/managedDevices\?/.test(u) && !/skiptoken/i.test(u) ? i : -1)).filter((i) => i >= 0);
      // The duplicate pass: its first page (the sample), then its enrolment-date ranges side by side (split-listing.ts); then the device pass.
      expect(passStarts, 'duplicate pass, then device pass').to.have.length(2 + SPLIT_PARTS);
      expect(passStarts.map((i) => /filter=/i.test(urls[i])), 'ranges between the two unfiltered listings').to.deep.equal([false, ...Array(SPLIT_PARTS).fill(true), false]);
      passStarts.splice(1, SPLIT_PARTS);
      expect(decodeURIComponent(urls[passStarts[0]])).to.include('userPrincipalName');
      expect(urls.findIndex((u) => /\/users\?/.test(u)), 'first listing request before the device pass').to.be.within(passStarts[0] + 1, passStarts[1] - 1);
      const truth = deviceGroundTruth(tenant, s.filters, Date.now());
      expect(truth.skipped.userDeleted, 'the tenant has deleted-user devices').to.be.above(0);
      expect(r.skipped).to.deep.equal(truth.skipped);
      expect([...r.kept].sort()).to.deep.equal([...truth.kept].sort());
      expect(users.failedUsers).to.equal(0);
      expect(users.warnings()).to.deep.equal([]);

      // The next run (and a Preview) within the hour use the kept listing: no directory request at all.
      sim.resetStats();
      const again = await run(tenant, graph, new DeletedUserCheck({ graph, cache, useDirectory: true }));
      expect(again.skipped).to.deep.equal(truth.skipped);
      expect((sim.stats.byRoute['GET /users'] ?? 0) + (sim.stats.byRoute['GET /users/{id}'] ?? 0)).to.equal(0);
    } finally {
      graph.close();
    }
  });

  it('the same run with the per-user look-ups gives the same kept and skipped devices (what the listing replaces)', async () => {
    const { sim, tenant } = await startSim(4000, 7);
    const graph = client(sim);
    try {
      const users = new DeletedUserCheck({ graph, cache: new UserExistenceCache(), useDirectory: true, listFrom: Infinity });
      const r = await run(tenant, graph, users);
      expect(sim.stats.byRoute['GET /users'] ?? 0).to.equal(0);
      expect(sim.stats.byRoute['GET /users/{id}']).to.equal(openUsers(tenant).size);
      const truth = deviceGroundTruth(tenant, s.filters, Date.now());
      expect(r.skipped).to.deep.equal(truth.skipped);
      expect([...r.kept].sort()).to.deep.equal([...truth.kept].sort());
    } finally {
      graph.close();
    }
  });

  it('a small run (fewer open users than the threshold) still asks per user and never lists', async () => {
    const { sim, tenant } = await startSim(150, 11);
    const open = openUsers(tenant);
    expect(open.size).to.be.within(1, LIST_USERS_FROM - 1);
    const graph = client(sim);
    try {
      const users = new DeletedUserCheck({ graph, cache: new UserExistenceCache(), useDirectory: true });
      await run(tenant, graph, users);
      expect(sim.stats.byRoute['GET /users'] ?? 0).to.equal(0);
      expect(sim.stats.byRoute['GET /users/{id}']).to.equal(open.size);
    } finally {
      graph.close();
    }
  });

  it('a listing that fails on page 2 (500 to the end) falls back to per-user look-ups and marks no live user deleted', async () => {
    const { sim, tenant } = await startSim(4000, 7);
    const graph = client(sim);
    // Every attempt at page 2 (the link with a $skiptoken) fails, retries included.
    sim.failNext(3, { status: 500, path: /^\/v1\.0\/users\?.*skiptoken/ });
    try {
      const cache = new UserExistenceCache();
      const users = new DeletedUserCheck({ graph, cache, useDirectory: true });
      const r = await run(tenant, graph, users);
      expect(sim.stats.faults.status, 'the injected failure was served').to.be.at.least(1);
      sim.clearFaults();
      expect(users.listingFailure?.status).to.equal(500);
      expect(cache.listing(), 'a partial listing is not kept').to.equal(undefined);
      expect(sim.stats.byRoute['GET /users/{id}'], 'every open user looked up instead').to.equal(openUsers(tenant).size);
      const truth = deviceGroundTruth(tenant, s.filters, Date.now());
      expect(r.skipped).to.deep.equal(truth.skipped);
      expect([...r.kept].sort()).to.deep.equal([...truth.kept].sort());
      const w = users.warnings();
      expect(w).to.have.length(1);
      expect(w[0]).to.match(/^Listing the directory's users \(GET \/users\) failed after 2 requests \(500.*looked up one by one/);
    } finally {
      graph.close();
    }
  });

  it('a listing refused on page 2 (403) keeps no partial listing: the users are looked up and only the directory\'s own answers mark users deleted', async () => {
    const { sim, tenant } = await startSim(4000, 7);
    const real = client(sim);
    // The sim serves 403 only for missing roles; here the refusal of page 2 is put in by a wrapper around the client.
    const graph = {
      batch: real.batch.bind(real),
      async *pages<T>(p: string, o: Parameters<GraphClient['pages']>[1]) {
        let n = 0;
        for await (const page of real.pages<T>(p, o)) {
          if (++n === 2) throw new GraphRequestError('Microsoft Graph answered HTTP 403', { status: 403, code: 'Authorization_RequestDenied' });
          yield page;
        }
      },
    } as unknown as GraphClient;
    try {
      const cache = new UserExistenceCache();
      const users = new DeletedUserCheck({ graph, cache, useDirectory: true });
      const r = await run(tenant, real, users);
      expect(cache.listing()).to.equal(undefined);
      expect(sim.stats.byRoute['GET /users/{id}']).to.equal(openUsers(tenant).size);
      const truth = deviceGroundTruth(tenant, s.filters, Date.now());
      expect(r.skipped).to.deep.equal(truth.skipped);
      expect([...r.kept].sort()).to.deep.equal([...truth.kept].sort());
      expect(users.listingFailure?.status).to.equal(403);
      // The look-ups were answered, so the refused listing gets its own warning.
      expect(users.warnings()).to.have.length(1);
      expect(users.warnings()[0]).to.match(/^Listing the directory's users \(GET \/users\) failed after 2 requests \(403 Authorization_RequestDenied\)/);
    } finally {
      real.close();
    }
  });

  it('403 (no User.Read.All) behaves as before: the listing is refused, the look-ups are refused, one warning, devices judged by the record', async () => {
    const { sim, tenant } = await startSim(4000, 7, ['DeviceManagementManagedDevices.Read.All']);
    const graph = client(sim);
    try {
      const warned: string[] = [];
      const users = new DeletedUserCheck({ graph, cache: new UserExistenceCache(), useDirectory: true, warn: (m) => warned.push(m) });
      const r = await run(tenant, graph, users);
      expect(sim.stats.byRoute['GET /users'], 'the listing asked once').to.equal(1);
      expect(users.listingFailure?.status).to.equal(403);
      const open = openUsers(tenant);
      expect(users.failures().map((f) => [f.status, f.users])).to.deep.equal([[403, open.size]]);
      expect(users.warnings()).to.have.length(1);
      expect(users.warnings()[0]).to.match(/403.*User\.Read\.All/);
      expect(warned).to.have.length(1);
      const byRecord = deviceGroundTruth(tenant, s.filters, Date.now(), undefined, true);
      expect(r.skipped).to.deep.equal(byRecord.skipped);
    } finally {
      graph.close();
    }
  });

  it('a Preview (no waiting) uses a kept listing: listed users exist, unlisted ones stay pending (the listing may predate them)', async () => {
    const { sim, tenant } = await startSim(4000, 7);
    const graph = client(sim);
    try {
      const cache = new UserExistenceCache();
      const listingRun = new DeletedUserCheck({ graph, cache, useDirectory: true });
      const open = openUsers(tenant);
      // Only the listing: prepare with records of a few open users, above the threshold.
      const records = [...tenant.iterate()].filter((d) => open.has((d.userId ?? '').trim()));
      const some = new Set<string>();
      const firstRecords = records.filter((d) => some.size < LIST_USERS_FROM + 5 && (some.add(d.userId!.trim()), true));
      await listingRun.prepare(firstRecords);
      expect(cache.listing()).to.not.equal(undefined);
      sim.resetStats();
      const preview = new DeletedUserCheck({ graph, cache: (() => {
        const c = new UserExistenceCache();
        c.setListing(cache.listing()!.ids, cache.listing()!.at);
        return c;
      })(), useDirectory: true, lookUp: false });
      await preview.prepare(records);
      const unlisted = [...open].filter((id) => !tenant.users.get(id));
      expect(unlisted.length, 'some open users were deleted').to.be.above(0);
      expect(preview.pending).to.equal(unlisted.length);
      expect(sim.stats.requests).to.equal(0);
    } finally {
      graph.close();
    }
  });

  it('the sim lists users as Graph does: 100 per page by default, $top above 999 refused, deleted users left out', async () => {
    const { sim, tenant } = await startSim(300, 3);
    const graph = client(sim);
    try {
      const first = await graph.get<{ value: Array<{ id: string }>; '@odata.nextLink'?: string }>('/users', { bucket: 'directory', select: ['id'] });
      expect(first!.value).to.have.length(Math.min(100, liveUsers(tenant)));
      let err: GraphRequestError | undefined;
      try {
        await graph.get('/users', { bucket: 'directory', select: ['id'], top: 1000 });
      } catch (e) {
        err = e as GraphRequestError;
      }
      expect(err?.status).to.equal(400);
      expect(err?.message).to.match(/Must be between 1 and 999/);
      const listed = new Set<string>();
      for await (const p of graph.pages<{ id: string }>('/users', { bucket: 'directory', select: ['id'], top: 999 })) for (const u of p.items) listed.add(u.id);
      expect(listed.size).to.equal(liveUsers(tenant));
      const deletedIds = [...tenant.iterate()].map((d) => d.userId).filter((id): id is string => !!id && !tenant.users.get(id));
      expect(deletedIds.length).to.be.above(0);
      for (const id of deletedIds) expect(listed.has(id), id).to.equal(false);
      expect(sim.stats.byRoute['GET /users']).to.be.above(0);
    } finally {
      graph.close();
    }
  });

  it('UserIdSet: finds exactly the ids it holds, 16 bytes per id', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => {
      const h = (i * 2654435761 >>> 0).toString(16).padStart(8, '0');
      return `${h}-0000-4000-8000-${String(i).padStart(12, '0')}`;
    });
    const set = UserIdSet.from([...ids.slice(0, 4000), 'not-a-guid']);
    expect(set.size).to.equal(4000);
    expect(set.bytes).to.equal(4000 * 16);
    for (const id of ids.slice(0, 4000)) expect(set.has(id.toUpperCase()), id).to.equal(true);
    for (const id of ids.slice(4000)) expect(set.has(id), id).to.equal(false);
    expect(set.has('not-a-guid')).to.equal(false);
  });
});
