/**
 * The deleted-user check with the shipped 4me template's device settings,
 * against the simulated Graph at its own directory limits: the device record
 * decides first, the directory is asked only about ambiguous users (a user
 * id with a UPN), once each, and the pacing never draws a 429.
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
import { DeletedUserCheck, UserExistenceCache } from '../nodes/lib/devices/deleted-users';
import { emptyTally, scanDevices } from '../nodes/lib/devices/device-scan';
import { FILTER_SELECT, isDeletedUserRecord } from '../nodes/lib/devices/device-normaliser';
import { parseDeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';

/** The repository's root (tests run from build/test). */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

describe('deleted-user check against the simulated directory (shipped 4me template settings)', function () {
  this.timeout(120_000);
  let sim: GraphSim;
  let tenant: SimTenant;
  let agent: https.Agent;

  before(async () => {
    tenant = new SimTenant({ seed: 5, devices: 3000 });
    sim = new GraphSim({
      tls: sharedTestCa().server,
      tenant,
      pageSize: 1000,
      verifyToken: () => ({ tid: tenant.tenantId, roles: ['DeviceManagementManagedDevices.Read.All', 'User.Read.All'], appid: 'deleted-users-test' }),
    });
    await sim.start();
    agent = createHttpsAgent({ ca: sharedTestCa().certPem });
  });
  after(async () => {
    agent?.destroy();
    await sim?.stop();
  });

  it('asks only about users the device record leaves open, each once, and is never throttled at the directory limit', async () => {
    const flow = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'flows', '4me - devices to configuration items.json'), 'utf8')) as Array<Record<string, unknown>>;
    const props = flow.find((n) => n.type === 'intune-devices')!;
    const s = parseDeviceSourceSettings(props);
    expect(s.checkDeletedUsers, 'the template checks deleted users').to.equal(true);

    // Time scaled down 10×: Intune's window 2 s, the directory's 1 s (the sim's and the client's).
    // The sim allows 150 resource units per 1 s to this (L) tenant, exactly what the client paces
    // at; every look-up (`GET /users/{id}?$select=id`) costs 1 unit. So any 429 is a pacing fault,
    // and 150 per window fills several windows with this tenant's look-ups.
    sim.setLimits({ windowMs: 2000, directory: { L: 150 } });
    sim.resetStats();
    const graph = new GraphClient({
      baseUrl: sim.url,
      agent,
      getToken: async () => 'tok',
      limits: { windowMs: 2000, directoryRequestsPer10s: 150 },
    });
    // The per-user look-ups themselves: listing the tenant instead (the default from 200 open users,
    // test/deleted-users-listing.test.ts) is switched off here.
    const users = new DeletedUserCheck({ graph, cache: new UserExistenceCache(), useDirectory: true, listFrom: Infinity });
    const tally = emptyTally();
    try {
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
        void page;
      }
    } finally {
      graph.close();
    }

    // The truth: users of devices with a user id and a UPN, not named as a deleted user's device.
    const ambiguous = new Set<string>();
    let decidedByRecord = 0;
    for (const d of tenant.iterate()) {
      const id = (d.userId ?? '').trim();
      if (!id) continue;
      if (isDeletedUserRecord(d) || !(d.userPrincipalName ?? '').trim()) decidedByRecord++;
      else ambiguous.add(id);
    }
    expect(decidedByRecord, 'the tenant has devices the record decides').to.be.above(0);
    expect(sim.stats.byRoute['GET /users/{id}'], 'one look-up per ambiguous user').to.equal(ambiguous.size);
    // The last look-ups the sim logged are all of ambiguous users (its log keeps the last 1,000 requests).
    const logged = sim.requestLog.filter((r) => r.batchItem && /\/users\//.test(r.url)).map((r) => r.url.split('/users/')[1].split('?')[0]);
    expect(logged.length).to.be.above(0);
    for (const id of logged) expect(ambiguous.has(id), id).to.equal(true);
    expect(users.lookups).to.equal(ambiguous.size);
    expect(ambiguous.size, 'enough look-ups to fill several directory windows').to.be.above(900);
    expect(sim.directoryBudget.tenantSize, 'the tenant is counted as L').to.equal('L');
    expect(sim.stats.directoryUnits, 'one resource unit per look-up').to.equal(ambiguous.size);
    expect(sim.stats.throttled, 'no 429 ridden').to.equal(0);
    expect(users.failedUsers).to.equal(0);
  });
});
