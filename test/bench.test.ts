/**
 * The benchmark (bench/), small and fast, so its code cannot rot: every
 * scenario of `npm run bench` on a 300-device tenant at a large time scale,
 * through a real Node-RED. Asserts request counts — deterministic — and zero
 * writes for the unchanged run; never wall time.
 */
import { expect } from 'chai';
import { DEFAULT_CONFIG, runBench, type BenchResults, type ScenarioResult } from '../bench/scenarios';
import { renderReport } from '../bench/report';
import { machine } from '../bench/proc';
import { fourmeCiFloor, graphActionFloor, scheduleMs } from '../bench/floor';
import { num } from '../bench/report-targets';

describe('bench (small version of npm run bench)', function () {
  this.timeout(180_000);
  let r: BenchResults;
  const scenario = (name: string): ScenarioResult => {
    const s = r.main.find((x) => x.name === name);
    if (!s) throw new Error(`no scenario ${name}`);
    return s;
  };

  before(async () => {
    r = await runBench({
      ...DEFAULT_CONFIG,
      sizes: [300],
      mainSize: 300,
      scale: 10,
      complianceScale: 20,
      latencyMs: 20,
      lockDevices: 40,
      naiveDevices: 15,
      store: '',
      log: () => undefined,
    });
  });

  it('heap-capped rerun of the initial sync: a fresh process with the V8 options, the same requests', () => {
    const s = scenario('initial full sync');
    const c = r.capped!;
    expect(c.nodeOptions).to.equal(DEFAULT_CONFIG.cappedNodeOptions);
    expect(c.facts.emitted).to.equal(s.facts.emitted);
    expect(c.services.fourme.graphql).to.equal(s.services.fourme.graphql);
    expect(c.services.acmp.publishes).to.equal(s.services.acmp.publishes);
    expect(c.peakRssMb).to.be.above(0);
    // Then the unchanged sync in the same capped process: nothing written, every device compared.
    const u = r.cappedUnchanged!;
    expect(u, 'the unchanged sync after the capped one').to.exist;
    expect(u.facts.emitted).to.equal(s.facts.emitted);
    expect(u.services.fourme.writeRequests + u.services.acmp.publishes + u.services.graph.writes).to.equal(0);
    expect(renderReport({ machine: machine(), ...r })).to.include('Unchanged: heap capped').and.include('unchanged full sync, heap capped');
  });

  it('initial full sync: one upload per 100 devices, one look-up, one ACMP message per 200, nothing throttled', () => {
    const s = scenario('initial full sync');
    const emitted = Number(s.facts.emitted);
    expect(emitted).to.be.within(250, 300);
    const uploads = Math.ceil(emitted / 100);
    expect(s.services.graph.pages, 'duplicate pass + device pass').to.equal(2);
    expect(s.services.fourme.byRootField['mutation.discoveredConfigurationItems']).to.equal(uploads);
    expect(s.services.fourme.graphql, 'uploads + one look-up of every address').to.equal(uploads + 1);
    expect(s.services.fourme.resultPolls).to.equal(uploads);
    expect(s.services.acmp.publishes).to.equal(Math.ceil(emitted / 200));
    expect(s.services.acmp.devicesReceived).to.equal(emitted);
    expect(s.services.fourme.throttled + s.services.graph.throttled).to.equal(0);
    expect(s.floor.fourme!.requests).to.equal(uploads + 1);
    expect(s.peakRssMb).to.be.above(0);
    expect(s.cpuMs).to.be.above(0);
    // the scaling table holds the main tenant's initial sync
    expect(r.scaling.map((x) => x.tenantDevices)).to.deep.equal([300]);
  });

  it('incremental sync: writes exactly the changed devices, looks nobody up again', () => {
    const s = scenario('incremental sync');
    const changed = Number(s.facts.changedDevices);
    expect(changed, 'every 100th device but skipped ones').to.be.within(2, 3);
    expect(s.services.graph.pages, 'one listing of the window: duplicates judged from it, no second pass').to.equal(1);
    expect(s.services.fourme.graphql).to.equal(1);
    expect(s.services.fourme.recordsWritten).to.equal(changed);
    expect(s.services.acmp.publishes).to.equal(1);
    expect(s.services.acmp.devicesReceived).to.equal(changed);
  });

  it('unchanged full sync: zero writes on every service', () => {
    const s = scenario('unchanged full sync');
    expect(s.services.graph.writes).to.equal(0);
    expect(s.services.fourme.writeRequests).to.equal(0);
    expect(s.services.fourme.recordsWritten).to.equal(0);
    expect(s.services.fourme.graphql, 'people cached: no look-ups either').to.equal(0);
    expect(s.services.acmp.publishes).to.equal(0);
    expect(s.services.graph.pages).to.equal(2);
  });

  it('bulk lock: one write per device, 20 per $batch', () => {
    const s = scenario('bulk action: lock');
    expect(s.services.graph.writes).to.equal(40);
    expect(s.services.graph.requests).to.equal(2);
    expect(s.facts.outcomes).to.deep.equal({ accepted: 40 });
  });

  it('deleted-user check: one directory $batch item per distinct user', () => {
    const s = scenario('deleted-user check (devices source only)');
    const users = Number(s.facts.userLookups);
    expect(users).to.be.above(100);
    expect(s.services.graph.batchItems).to.equal(users);
    expect(s.services.graph.byRoute['POST /$batch']).to.equal(Math.ceil(users / 20));
  });

  it('compliance: one incident per violation passed on, one requestCreate each', () => {
    const s = r.compliance!;
    expect(s.scale).to.equal(20);
    const emitted = Number(s.facts.emitted);
    const inc = s.facts.incidents as Record<string, number>;
    expect(emitted).to.be.above(0);
    expect(inc.raised).to.equal(emitted);
    expect(s.services.fourme.byRootField['mutation.requestCreate']).to.equal(emitted);
    expect(s.services.fourme.throttled).to.equal(0);
  });

  it('compliance, nothing changed: no incident, no policy-state read, no tenant-wide duplicate pass, Graph within 3× the floor', () => {
    const s = r.complianceUnchanged!;
    const first = r.compliance!;
    expect(s.facts.emitted).to.equal(first.facts.emitted);
    expect((s.facts.incidents as Record<string, number>).raised).to.equal(0);
    expect(s.services.fourme.byRootField['mutation.requestCreate'] ?? 0).to.equal(0);
    const routes = s.services.graph.byRoute;
    expect(Object.keys(routes).some((k) => k.endsWith('/deviceCompliancePolicyStates')), JSON.stringify(routes)).to.equal(false);
    expect((s.facts.details as Record<string, unknown>).duplicatePages ?? 0, 'no tenant-wide serial pass').to.equal(0);
    expect(s.services.graph.requests).to.be.at.most(3 * s.floor.graph!.requests);
  });

  it('shipped 4me template: its Preview asks the directory nothing; its first run writes every device it passes on', () => {
    const t = r.template!;
    expect(t.preview.answer.ok).to.equal(true);
    expect(t.preview.answer.total).to.equal(300);
    expect(Object.keys(t.preview.graphRoutes).filter((k) => k.includes('/users') || k.includes('$batch')), JSON.stringify(t.preview.graphRoutes)).to.deep.equal([]);
    expect(t.preview.graphRoutes['GET /deviceManagement/managedDevices']).to.equal(num(t.preview.answer.requests));
    const emitted = Number(t.cold.facts.emitted);
    expect(emitted).to.be.within(1, 300);
    expect(t.cold.services.fourme.byRootField['mutation.discoveredConfigurationItems']).to.equal(Math.ceil(emitted / 100));
    expect(t.cold.floor.fourme!.writes).to.equal(Math.ceil(emitted / 100));
    expect(t.cold.heap?.atPeak.rss, 'the heap sampler ran in the Node-RED process').to.be.above(0);
  });

  it('naive way: look-ups and a write per device on every run; ours writes nothing the second time', () => {
    const n = r.naive!;
    expect(n.devices).to.equal(15);
    expect(n.naive.initial.fourme.creates + n.naive.initial.fourme.failed).to.be.at.least(n.naive.initial.devices - 1);
    expect(n.naive.unchanged.fourme.updates).to.equal(n.naive.initial.fourme.creates - n.naive.initial.fourme.failed);
    expect(n.naive.initial.acmp.messages).to.equal(n.naive.initial.devices);
    expect(n.naive.unchanged.acmp.messages).to.equal(n.naive.initial.devices);
    expect(n.ours.unchanged.services.fourme.writeRequests + n.ours.unchanged.services.acmp.publishes).to.equal(0);
    expect(n.ours.initial.services.fourme.graphql).to.equal(2);
  });

  it('renders the report with every section', () => {
    const md = renderReport({ machine: machine(), ...r });
    for (const h of ['## Targets', '## Machine', '## 1. Initial full sync', '## 2. Incremental sync', '## 3. Unchanged full sync', '## 4. Compliance run', '## 5. Bulk action', '## 6. Scaling', '## The shipped 4me template', '## The naive way', '## How each floor is computed', '## Method']) {
      expect(md, h).to.include(h);
    }
    expect(md).to.not.match(/NaN|undefined/);
  });

  it('floors: the schedule honours sliding windows', () => {
    // 45 requests at 20 per 2 s: 20 at 0, 20 at 2 s, 5 at 4 s
    expect(scheduleMs(Array.from({ length: 45 }, () => ({ counts: { w: 1 } })), { w: { limit: 20, ms: 2000 } })).to.equal(4000);
    // 1,000 writes at 200 per 20 s: the last batch goes out at 80 s
    expect(graphActionFloor(1000, 1, 0).timeMs).to.equal(80_000);
    expect(graphActionFloor(1000, 4, 0).timeMs).to.equal(20_000);
    // 100,000 CIs: 1,000 uploads + 1 look-up, cost 2,000 + 542
    const f = fourmeCiFloor(100_000, 54_179, 1, 0);
    expect([f.requests, f.writes, f.cost]).to.deep.equal([1001, 1000, 2542]);
    expect(f.timeMs).to.equal(100_000);
  });
});
