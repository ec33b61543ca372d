/**
 * What the benchmarks (bench/) add to the simulators and the clients: a
 * per-request latency in every simulated service, a tenant with a chosen
 * share of non-compliant devices, and the time scale the clients read from
 * INTUNE_CONNECTOR_TIME_SCALE. Defaults leave everything as it was.
 */
import { expect } from 'chai';
import { createAxios, createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { sharedTestCa } from '../sim/pki';
import { GraphSim } from '../sim/graph';
import { FourMeSim } from '../sim/fourme';
import { SicsSim } from '../sim/sics';
import { SimTenant } from '../sim/tenant';
import { MAX_TIME_SCALE, TIME_SCALE_ENV, timeScale } from '../nodes/lib/shared/time-scale';
import { FourMeConnection, parseFourMeSettings } from '../nodes/lib/fourme/fourme-connection';
import { IntuneConnection, parseSettings } from '../nodes/lib/intune/intune-connection';

const NOW = '2024-09-01T12:00:00Z';

describe('bench options of the simulators and clients', function () {
  this.timeout(30_000);
  const pki = sharedTestCa();
  const agent = createHttpsAgent({ ca: pki.certPem });
  const http = createAxios(agent, 10_000);
  after(() => agent.destroy());

  async function timed(f: () => Promise<unknown>): Promise<number> {
    const t0 = Date.now();
    await f();
    return Date.now() - t0;
  }

  it('GraphSim: latencyMs delays every request, setLatency changes it, default none', async () => {
    const tenant = new SimTenant({ seed: 1, devices: 20, now: NOW });
    const graph = new GraphSim({ tls: pki.server, tenant, verifyToken: () => ({ tid: tenant.tenantId, appid: 'a', roles: [] }), latencyMs: 150 });
    await graph.start();
    try {
      const get = () => http.get(`${graph.url}/v1.0/nowhere`, { validateStatus: () => true });
      expect(await timed(get)).to.be.at.least(145);
      graph.setLatency(0);
      expect(await timed(get)).to.be.below(145);
      expect(graph.stats.requests).to.equal(2);
    } finally {
      await graph.stop();
    }
  });

  it('FourMeSim: latencyMs delays every route', async () => {
    const sim = new FourMeSim({ tls: pki.server, accounts: [{ id: 'a' }], personalAccessTokens: [{ token: 't' }], latencyMs: 150 });
    await sim.start();
    try {
      const post = () =>
        http.post(sim.graphqlUrl, { query: '{ me { id } }' }, { headers: { Authorization: 'Bearer t', 'X-4me-Account': 'a' }, validateStatus: () => true });
      expect(await timed(post)).to.be.at.least(145);
      expect(await timed(() => http.get(`${sim.url}/async/none`, { validateStatus: () => true }))).to.be.at.least(145);
      sim.setLatency(0);
      expect(await timed(post)).to.be.below(145);
    } finally {
      await sim.stop();
    }
  });

  it('SicsSim: latencyMs delays every request', async () => {
    const sics = new SicsSim({ latencyMs: 150 });
    await sics.start();
    try {
      const login = () => http.post(`${sics.url('http')}/Session`, { UserName: 'intune', Password: 'sics-secret' }, { validateStatus: () => true });
      expect(await timed(login)).to.be.at.least(145);
      sics.latencyMs = 0;
      expect(await timed(login)).to.be.below(145);
    } finally {
      await sics.stop();
    }
  });

  it('SimTenant: nonCompliantShare makes about that share of the devices fail a policy, deterministically; unset changes nothing', () => {
    const count = (t: SimTenant) => {
      let failing = 0;
      for (let i = 0; i < t.positions; i++) if (t.violationsAt(i).length) failing++;
      return failing;
    };
    const plain = new SimTenant({ seed: 4, devices: 4000, now: NOW });
    const again = new SimTenant({ seed: 4, devices: 4000, now: NOW, nonCompliantShare: undefined });
    for (const i of [0, 5, 77, 3999]) expect(again.deviceAt(i)).to.deep.equal(plain.deviceAt(i));
    expect(count(plain) / 4000, 'the generator mix').to.be.above(0.15);

    const five = new SimTenant({ seed: 4, devices: 4000, now: NOW, nonCompliantShare: 0.05 });
    const n = count(five);
    expect(n / 4000).to.be.within(0.035, 0.065);
    expect(count(new SimTenant({ seed: 4, devices: 4000, now: NOW, nonCompliantShare: 0.05 }))).to.equal(n);
    // the device state agrees with the violations
    for (let i = 0; i < 4000; i++) {
      const d = five.deviceAt(i)!;
      const v = five.violationsAt(i);
      if (v.some((x) => x.state === 'nonCompliant')) expect(['noncompliant', 'inGracePeriod', 'configManager']).to.include(d.complianceState);
      else if (!v.length) expect(['compliant', 'configManager', 'conflict', 'unknown']).to.include(d.complianceState);
    }
    expect(count(new SimTenant({ seed: 4, devices: 4000, now: NOW, nonCompliantShare: 0 }))).to.equal(0);
    // policy overrides still win
    const id = five.deviceAt(1)!.id;
    five.setPolicyCompliance(id, five.builtInPolicy.id, false);
    expect(five.violationsAt(1).map((x) => x.policyId)).to.include(five.builtInPolicy.id);
    expect(() => new SimTenant({ seed: 1, devices: 10, nonCompliantShare: 2 })).to.throw(RangeError);
  });

  it(`timeScale(): ${TIME_SCALE_ENV} from 1 to ${MAX_TIME_SCALE}, anything else is 1`, () => {
    expect(timeScale({})).to.equal(1);
    expect(timeScale({ [TIME_SCALE_ENV]: '' })).to.equal(1);
    expect(timeScale({ [TIME_SCALE_ENV]: '12' })).to.equal(12);
    expect(timeScale({ [TIME_SCALE_ENV]: '2.5' })).to.equal(2.5);
    for (const bad of ['0', '0.5', '-3', 'fast', String(MAX_TIME_SCALE + 1), 'Infinity']) expect(timeScale({ [TIME_SCALE_ENV]: bad }), bad).to.equal(1);
  });

  it('the 4me connection paces in a window shrunk by the time scale, and warns about it', () => {
    const settings = parseFourMeSettings({ accountId: 'acme', environment: 'custom', graphqlUrl: 'https://127.0.0.1:1/graphql' });
    const windowOf = (c: FourMeConnection) => (c.client as unknown as { o: { burst: { windowMs: number } } }).o.burst.windowMs;
    const saved = process.env[TIME_SCALE_ENV];
    const warnings: string[] = [];
    try {
      delete process.env[TIME_SCALE_ENV];
      const plain = new FourMeConnection(settings, { token: 't' }, { warn: (m) => warnings.push(m) });
      expect(windowOf(plain)).to.equal(2000);
      plain.close();
      expect(warnings).to.deep.equal([]);
      process.env[TIME_SCALE_ENV] = '10';
      const fast = new FourMeConnection(settings, { token: 't' }, { warn: (m) => warnings.push(m) });
      expect(windowOf(fast)).to.equal(200);
      fast.close();
      expect(warnings.join()).to.match(/simulated services only/);
    } finally {
      if (saved === undefined) delete process.env[TIME_SCALE_ENV];
      else process.env[TIME_SCALE_ENV] = saved;
    }
  });

  it('the Graph connection paces in a 20 s window shrunk by the time scale', () => {
    const settings = parseSettings({
      tenantId: '11111111-2222-4333-8444-555555555555',
      clientId: '66666666-7777-4888-9999-000000000000',
      authType: 'secret',
      cloud: 'custom',
      authorityHost: 'https://127.0.0.1:1',
      graphBaseUrl: 'https://127.0.0.1:2',
    });
    const saved = process.env[TIME_SCALE_ENV];
    try {
      delete process.env[TIME_SCALE_ENV];
      const plain = new IntuneConnection(settings, { clientSecret: 's' });
      expect(plain.graph.pacer.plan('devices').writes).to.include({ limit: 200, windowMs: 20_000 });
      plain.close();
      process.env[TIME_SCALE_ENV] = '4';
      const warnings: string[] = [];
      const fast = new IntuneConnection(settings, { clientSecret: 's' }, { warn: (m) => warnings.push(m) });
      expect(fast.graph.pacer.plan('devices').writes).to.include({ limit: 200, windowMs: 5000 });
      expect(warnings).to.have.length(1);
      fast.close();
    } finally {
      if (saved === undefined) delete process.env[TIME_SCALE_ENV];
      else process.env[TIME_SCALE_ENV] = saved;
    }
  });
});
