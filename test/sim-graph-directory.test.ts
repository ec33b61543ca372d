/**
 * The simulated Graph's directory bucket (GET /users, /users/{id}, and $batch items to them)
 * throttles as Microsoft's identity and access service is documented to: resource units per
 * application + tenant pair per 10 s by the tenant's size (S 3,500, M 5,000, L 8,000), per
 * application 150,000 per 20 s, each request charged its documented cost (docs/graph-users.md).
 * The sim's throttling clock is injected, so no test sleeps through a window; the client tests at
 * the end run on the real clock with time scaled down 10×.
 */
import type https from 'node:https';
import { expect } from 'chai';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { createAxios, createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { sharedTestCa } from '../sim/pki';
import { DEFAULT_LIMITS, directoryCost, GraphSim, tenantSizeOf, type TenantSize } from '../sim/graph';
import { SimTenant } from '../sim/tenant';
import { GraphClient, type RequestStats } from '../nodes/lib/graph/graph-client';

const APP = 'dir-app';
const ROLES = ['User.Read.All', 'DeviceManagementManagedDevices.Read.All'];

interface Env {
  tenant: SimTenant;
  sim: GraphSim;
  /** The sim's throttling clock (ms); tests move it. */
  clock: { now: number };
  userIds: string[];
}

/** Tenants of each size class: the sim makes 0.75 users per device, about 3 % of them deleted. */
const DEVICES: Record<TenantSize, number> = { S: 40, M: 400, L: 1000 };

describe('simulated Graph: the directory throttles like the identity and access service', function () {
  this.timeout(60_000);
  const pki = sharedTestCa();
  let agent: https.Agent;
  let http: AxiosInstance;
  const envs = {} as Record<TenantSize, Env>;

  const auth = (env: Env, appid = APP) => ({ Authorization: `Bearer ${env.tenant.tenantId}|${appid}` });
  const get = (env: Env, path: string, appid?: string) => http.get(`${env.sim.url}/v1.0${path}`, { headers: auth(env, appid) });
  const batch = (env: Env, requests: Array<{ id: string; method: string; url: string }>) =>
    http.post(`${env.sim.url}/v1.0/$batch`, { requests }, { headers: { ...auth(env), 'Content-Type': 'application/json' } });
  const lookups = (env: Env, n: number, from = 0) =>
    Array.from({ length: n }, (_, k) => ({ id: String(k), method: 'GET', url: `/users/${env.userIds[(from + k) % env.userIds.length]}?$select=id` }));

  /** Spends `units` resource units with `GET /users/{id}?$select=id` (1 unit each), 20 to a $batch; every item must be admitted. */
  async function spend(env: Env, units: number): Promise<void> {
    for (let done = 0; done < units; ) {
      const n = Math.min(20, units - done);
      const r = await batch(env, lookups(env, n, done));
      expect(r.status).to.equal(200);
      const statuses = (r.data.responses as Array<{ status: number }>).map((x) => x.status);
      expect(statuses.filter((s) => s !== 200), `spent ${done} of ${units}`).to.deep.equal([]);
      done += n;
    }
  }

  const expectThrottled = (r: AxiosResponse, env: Env, retryAfter: number, scope = 'Tenant_Application') => {
    expect(r.status, JSON.stringify(r.data)).to.equal(429);
    expect(r.data.error.code).to.equal('TooManyRequests');
    expect(r.headers['retry-after']).to.equal(String(retryAfter));
    expect(r.headers['x-ms-throttle-scope']).to.equal(`${scope}/ReadWrite/${APP}/${env.tenant.tenantId}`);
    expect(r.headers['x-ms-throttle-information']).to.equal('ResourceUnitLimitExceeded');
    expect(r.headers).to.not.have.property('x-ms-resource-unit');
  };

  before(async () => {
    for (const size of ['S', 'M', 'L'] as TenantSize[]) {
      const tenant = new SimTenant({ seed: 21, devices: DEVICES[size] });
      const clock = { now: 1_700_000_000_000 };
      const sim: GraphSim = new GraphSim({
        tls: pki.server,
        tenant,
        clock: () => clock.now,
        verifyToken: (token) => {
          const [tid, appid] = token.split('|');
          return { tid, appid, roles: ROLES };
        },
      });
      await sim.start();
      envs[size] = { tenant, sim, clock, userIds: [...tenant.users.iterate()].map((u) => u.id) };
    }
    agent = createHttpsAgent({ ca: pki.certPem });
    http = createAxios(agent);
  });
  after(async () => {
    agent?.destroy();
    await Promise.all(Object.values(envs).map((e) => e.sim.stop()));
  });
  beforeEach(() => {
    for (const e of Object.values(envs)) {
      e.sim.resetThrottling();
      e.sim.resetStats();
      e.sim.setRetryAfter(true);
      e.sim.setLimits({ directory: DEFAULT_LIMITS.directory });
    }
  });

  it('sizes tenants as Microsoft does: S under 50 users, M 50 to 500, L above 500 (deleted users are not users)', () => {
    expect(DEFAULT_LIMITS.directory, "Microsoft's numbers").to.deep.equal({ S: 3500, M: 5000, L: 8000, perApp: 150_000, tenantSize: 'auto' });
    expect(DEFAULT_LIMITS.windowMs, 'the directory window is half of it: 10 s').to.equal(20_000);
    expect([0, 49, 50, 500, 501, 100_000].map(tenantSizeOf)).to.deep.equal(['S', 'S', 'M', 'M', 'L', 'L']);
    for (const size of ['S', 'M', 'L'] as TenantSize[]) {
      const { sim, userIds } = envs[size];
      const b = sim.directoryBudget;
      expect(b.tenantSize, size).to.equal(size);
      expect(b.users, size).to.equal(Math.min(userIds.length, 501));
      expect(b.unitsPerWindow).to.equal({ S: 3500, M: 5000, L: 8000 }[size]);
      expect(b.windowMs, 'half of the 20-s window').to.equal(10_000);
    }
    // The user count leaves the soft-deleted users out: the generator deletes some.
    expect(envs.M.userIds.length).to.be.below(envs.M.tenant.users.size);
  });

  for (const size of ['S', 'M', 'L'] as TenantSize[]) {
    it(`${size} tenant: admits exactly ${{ S: '3,500', M: '5,000', L: '8,000' }[size]} units in 10 s, refuses the next with 429 and Retry-After, and frees them 10 s later`, async () => {
      const env = envs[size];
      const cap = env.sim.directoryBudget.unitsPerWindow;
      await spend(env, cap - 1);
      const last = await get(env, `/users/${env.userIds[0]}?$select=id`);
      expect(last.status, 'the last unit of the window').to.equal(200);
      expect(last.headers['x-ms-resource-unit']).to.equal('1');
      expectThrottled(await get(env, `/users/${env.userIds[1]}?$select=id`), env, 10);
      expect(env.sim.stats.directoryUnits).to.equal(cap);
      expect(env.sim.stats.throttled).to.equal(1);
      // Still full 1 ms before the window has passed over the first admissions …
      env.clock.now += 9_999;
      expectThrottled(await get(env, `/users/${env.userIds[1]}?$select=id`), env, 1);
      // … and the whole budget is back once it has.
      env.clock.now += 1;
      await spend(env, cap);
      expectThrottled(await get(env, '/users?$select=id'), env, 10);
    });
  }

  it('slides: admissions leave the window one by one, 10 s after each', async () => {
    const env = envs.S;
    await spend(env, 2000);
    env.clock.now += 4_000;
    await spend(env, 1500);
    expectThrottled(await get(env, `/users/${env.userIds[0]}?$select=id`), env, 6);
    // 10 s after the first 2,000: those are free again, the later 1,500 are not.
    env.clock.now += 6_000;
    await spend(env, 2000);
    expectThrottled(await get(env, `/users/${env.userIds[0]}?$select=id`), env, 4);
    env.clock.now += 4_000;
    await spend(env, 1500);
    expectThrottled(await get(env, `/users/${env.userIds[0]}?$select=id`), env, 6);
  });

  it('charges each request its documented cost: listing 2, by id 1, $select -1, $expand +1, $top under 20 -1, never below 1', async () => {
    const env = envs.L;
    const id = env.userIds[3];
    const cases: Array<[string, number, number]> = [
      ['/users', 2, 200],
      ['/users?$select=id', 1, 200],
      ['/users?$top=5', 1, 200],
      ['/users?$top=19', 1, 200],
      ['/users?$top=20', 2, 200],
      ['/users?$select=id&$top=999', 1, 200],
      ['/users?$select=id&$top=5', 1, 200],
      [`/users/${id}`, 1, 200],
      [`/users/${id}?$select=id,userPrincipalName`, 1, 200],
      // A deleted or unknown user is answered 404, and charged like any other look-up.
      ['/users/00000000-0000-4000-8000-000000000000?$select=id', 1, 404],
      // $expand raises the cost even where the sim then refuses the option (400): Microsoft's own
      // batching example shows refused requests carrying x-ms-resource-unit.
      [`/users/${id}?$expand=manager`, 2, 400],
    ];
    let total = 0;
    for (const [path, cost, status] of cases) {
      const query = new Map(new URLSearchParams(path.split('?')[1] ?? ''));
      expect(directoryCost(path.includes('/users/') ? 'GET /users/{id}' : 'GET /users', query), path).to.equal(cost);
      const before = env.sim.stats.directoryUnits;
      const r = await get(env, path);
      expect(r.status, path).to.equal(status);
      expect(r.headers['x-ms-resource-unit'], path).to.equal(String(cost));
      expect(env.sim.stats.directoryUnits - before, path).to.equal(cost);
      total += cost;
    }
    // A listing's further pages cost what its first did: the nextLink keeps $select and $top.
    const first = await get(env, '/users?$select=id&$top=500');
    const next = await http.get(first.data['@odata.nextLink'], { headers: auth(env) });
    expect(next.status).to.equal(200);
    expect(next.headers['x-ms-resource-unit']).to.equal('1');
    total += 2;
    // Intune's routes are not the directory's: no units, no header.
    const devices = await get(env, '/deviceManagement/managedDevices?$top=1&$select=id');
    expect(devices.status).to.equal(200);
    expect(devices.headers).to.not.have.property('x-ms-resource-unit');
    expect(env.sim.stats.directoryUnits).to.equal(total);
  });

  it('charges each $batch item on its own (the $batch itself costs nothing), and the cost decides admission at the edge', async () => {
    const env = envs.M;
    const r = await batch(env, [
      { id: 'list', method: 'GET', url: '/users' },
      { id: 'listSelect', method: 'GET', url: '/users?$select=id' },
      { id: 'byId', method: 'GET', url: `/users/${env.userIds[0]}?$select=id` },
      { id: 'byIdFull', method: 'GET', url: `/users/${env.userIds[1]}` },
    ]);
    expect(r.status).to.equal(200);
    expect(r.headers).to.not.have.property('x-ms-resource-unit');
    const units = Object.fromEntries((r.data.responses as Array<{ id: string; headers: Record<string, string> }>).map((x) => [x.id, x.headers['x-ms-resource-unit']]));
    expect(units).to.deep.equal({ list: '2', listSelect: '1', byId: '1', byIdFull: '1' });
    expect(env.sim.stats.directoryUnits).to.equal(5);

    // One unit left: the 2-unit listing does not fit, the 1-unit one does.
    await spend(env, 5000 - 5 - 1);
    expectThrottled(await get(env, '/users'), env, 10);
    expect((await get(env, '/users?$select=id')).status).to.equal(200);
    expect(env.sim.stats.directoryUnits).to.equal(5000);
  });

  it('a $batch that crosses the limit gets 429 on exactly the items past it, each with its own Retry-After', async () => {
    const env = envs.L;
    await spend(env, 8000 - 5);
    const r = await batch(env, lookups(env, 20));
    const items = r.data.responses as Array<{ id: string; status: number; headers: Record<string, string> }>;
    // The sim runs items in order (it only shuffles the answers).
    const byId = items.sort((a, b) => Number(a.id) - Number(b.id));
    expect(byId.map((x) => x.status)).to.deep.equal([...Array(5).fill(200), ...Array(15).fill(429)]);
    for (const x of byId.slice(5)) {
      expect(x.headers['Retry-After']).to.equal('10');
      expect(x.headers['x-ms-throttle-scope']).to.equal(`Tenant_Application/ReadWrite/${APP}/${env.tenant.tenantId}`);
    }
    expect(env.sim.stats.throttledBatchItems).to.equal(15);
    expect(env.sim.stats.directoryUnits).to.equal(8000);
  });

  it('counts per application + tenant pair: another app of the same tenant has its own budget', async () => {
    const env = envs.S;
    await spend(env, 3500);
    expectThrottled(await get(env, `/users/${env.userIds[0]}?$select=id`), env, 10);
    const other = await get(env, `/users/${env.userIds[0]}?$select=id`, 'other-app');
    expect(other.status).to.equal(200);
  });

  it('also counts per application over 20 s (150,000 by default; lowered here so a test can reach it)', async () => {
    const env = envs.L;
    env.sim.setLimits({ directory: { L: 1000, perApp: 1500 } });
    await spend(env, 1000);
    expectThrottled(await get(env, `/users/${env.userIds[0]}?$select=id`), env, 10);
    env.clock.now += 10_000;
    // The pair's 10-s window is free again; the application's 20-s window holds 1,000 of its 1,500.
    await spend(env, 500);
    expectThrottled(await get(env, `/users/${env.userIds[0]}?$select=id`), env, 10, 'Application');
    env.clock.now += 10_000;
    await spend(env, 500);
  });

  it('keeps the sim\'s Retry-After convention: left out of every third 429 by default', async () => {
    const env = envs.S;
    env.sim.setRetryAfter('sometimes');
    await spend(env, 3500);
    const headers: Array<string | undefined> = [];
    for (let k = 0; k < 6; k++) {
      const r = await get(env, `/users/${env.userIds[0]}?$select=id`);
      expect(r.status).to.equal(429);
      expect(r.headers['x-ms-throttle-information']).to.equal('ResourceUnitLimitExceeded');
      headers.push(r.headers['retry-after']);
    }
    expect(headers.filter((h) => h === undefined)).to.have.length(2);
  });
});

describe('the connector\'s directory pacing (5,000 per 10 s) against the simulated directory', function () {
  this.timeout(120_000);
  const pki = sharedTestCa();

  /**
   * Looks up `n` users (`GET /users/{id}?$select=id`, 1 unit each) through the connector's Graph
   * client at its default directory pacing, time scaled down 10× on both sides (the client's and
   * the sim's directory window 1 s); the sim keeps Microsoft's capacities.
   */
  async function run(size: TenantSize, n: number): Promise<{ sim: GraphSim; stats: RequestStats; statuses: Map<number, number> }> {
    const tenant = new SimTenant({ seed: 22, devices: DEVICES[size] });
    const sim = new GraphSim({
      tls: pki.server,
      tenant,
      limits: { windowMs: 2000 },
      verifyToken: () => ({ tid: tenant.tenantId, appid: 'pacing-test', roles: ROLES }),
    });
    await sim.start();
    const agent = createHttpsAgent({ ca: pki.certPem });
    const graph = new GraphClient({ baseUrl: sim.url, agent, getToken: async () => 'tok', limits: { windowMs: 2000 } });
    try {
      expect(sim.directoryBudget.tenantSize).to.equal(size);
      const ids = [...tenant.users.iterate()].map((u) => u.id);
      const stats: RequestStats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
      const answers = await graph.batch(
        Array.from({ length: n }, (_, k) => ({ id: String(k), method: 'GET' as const, url: `/users/${ids[k % ids.length]}?$select=id` })),
        { bucket: 'directory', stats },
      );
      const statuses = new Map<number, number>();
      for (const a of answers.values()) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      return { sim, stats, statuses };
    } finally {
      graph.close();
      agent.destroy();
      await sim.stop();
    }
  }

  it('L tenant (8,000 per 10 s): 16,000 look-ups, not one 429', async () => {
    const { sim, stats, statuses } = await run('L', 16_000);
    expect([...statuses]).to.deep.equal([[200, 16_000]]);
    expect(sim.stats.directoryUnits).to.equal(16_000);
    expect(sim.stats.throttled).to.equal(0);
    expect(stats.throttled).to.equal(0);
  });

  it('M tenant (5,000 per 10 s, exactly our pacing): 16,000 look-ups, not one 429', async () => {
    const { sim, stats, statuses } = await run('M', 16_000);
    expect([...statuses]).to.deep.equal([[200, 16_000]]);
    expect(sim.stats.throttled).to.equal(0);
    expect(stats.throttled).to.equal(0);
    expect(stats.pacingWaitMs, 'the pacing, not the sim, held the look-ups back').to.be.above(0);
  });

  it('S tenant (3,500 per 10 s, below our pacing): the sim throttles, and the client still answers every look-up', async () => {
    // Our pacing assumes an S tenant (under 50 users) never has 3,500 users to ask; asked anyway,
    // the documented limit bites and the client rides it out on Retry-After and backoff.
    const { sim, stats, statuses } = await run('S', 8_000);
    expect([...statuses]).to.deep.equal([[200, 8_000]]);
    expect(sim.stats.throttled).to.be.above(0);
    expect(stats.throttled, 'every 429 the sim sent was seen').to.equal(sim.stats.throttled);
    expect(stats.retries).to.equal(stats.throttled);
  });
});
