/**
 * The discovered-apps bench (bench/software.ts), small: a 200-device tenant
 * through a real Node-RED at a large time scale. Asserts the figures'
 * fields and the request counts that follow from the design — one export
 * job, the device pages, 4me software uploads before device uploads, zero
 * writes on the unchanged run — never wall time.
 */
import { expect } from 'chai';
import { DEFAULT_CONFIG } from '../bench/scenarios';
import { startWorld } from '../bench/world';
import { fourmeSoftwareFloor, perDeviceFloor, perDeviceRead, renderSoftwareSection, runSoftwareBench, spliceSoftwareSection, SOFTWARE_BEGIN, SOFTWARE_END, type SoftwareResults } from '../bench/software';

describe('bench: discovered apps (small version of npm run bench -- --only=software)', function () {
  this.timeout(180_000);
  let r: SoftwareResults;

  before(async () => {
    r = await runSoftwareBench({ ...DEFAULT_CONFIG, scale: 10, latencyMs: 20, store: '', log: () => undefined }, 200);
  });

  it('the app mix is the simulator\'s: rows of the report = the apps of every listed device', () => {
    expect(r.mix.devices).to.equal(200);
    expect(r.mix.rows).to.be.above(r.mix.devices * 10);
    expect(r.initial.graph.rows, 'rows the export served').to.equal(r.mix.rows);
    expect(r.initial.graph.csvBytes).to.be.above(r.initial.graph.zipBytes);
    expect(r.initial.graph.zipBytes).to.be.above(0);
  });

  it('initial: one export job, the device pages, software CIs before devices, every device to ACMP', () => {
    const i = r.initial;
    expect(i.graph.exportCreates).to.equal(1);
    expect(i.graph.exportPolls).to.be.at.least(1);
    expect(i.graph.downloads).to.equal(1);
    expect(i.graph.devicePages, 'duplicate pass + device pass').to.equal(2);
    expect(i.emitted).to.be.within(150, 200);
    const sw = i.fourme.summary.software as Record<string, number>;
    expect(sw.created).to.be.above(100);
    expect(i.fourme.softwareCisSent).to.equal(sw.created);
    expect(i.fourme.deviceCisSent).to.equal(i.emitted);
    expect(i.fourme.deviceUploads).to.equal(Math.ceil(i.emitted / 100));
    expect(i.fourme.softwareUploads).to.be.at.least(Math.ceil(sw.created / 100));
    expect(i.acmp.devicesReceived).to.equal(i.emitted);
    expect(i.acmp.publishes).to.equal(Math.ceil(i.emitted / 200));
    expect(i.acmp.publishedBytes).to.be.above(0);
    expect(i.peakRssMb).to.be.above(0);
    expect(i.load.before).to.match(/^\d/);
  });

  it('unchanged: no write to 4me or ACMP; Graph = device pages + export job requests', () => {
    const u = r.unchanged;
    expect(u.fourme.softwareUploads + u.fourme.deviceUploads).to.equal(0);
    expect(u.services.fourme.writeRequests).to.equal(0);
    expect(u.acmp.publishes).to.equal(0);
    expect(u.graph.exportCreates).to.equal(1);
    expect(Object.values(u.services.graph.byRoute).reduce((n, v) => n + v, 0)).to.equal(u.graph.devicePages + u.graph.exportCreates + u.graph.exportPolls);
  });

  it('floors: 4me uploads per 100 of each kind; the per-device way is one request per device in the devices bucket', () => {
    const f = fourmeSoftwareFloor(25_000, 96_694, 54_179, 1, 0);
    expect([f.requests, f.writes, f.cost]).to.deep.equal([1 + 250 + 967, 1217, 542 + 2 * 1217]);
    const p = perDeviceFloor(100_000, 1, 0);
    expect([p.innerRequests, p.batches, p.requests]).to.deep.equal([100_000, 5000, 5100]);
    // 100,100 requests at 2,000 / 20 s: the last window opens at 50 × 20 s
    expect(p.timeMs).to.equal(1_000_000);
    expect(r.perDevice.innerRequests).to.equal(200);
  });

  it('renders its report block and splices it into a report without touching the rest', () => {
    const block = renderSoftwareSection(r);
    expect(block.startsWith(SOFTWARE_BEGIN) && block.endsWith(SOFTWARE_END)).to.equal(true);
    expect(block).to.include('## Discovered apps (software)');
    expect(block).to.not.match(/NaN|undefined/);
    const report = '# R\n\n## 6. Scaling\n\nx\n\n## Memory\n\ny\n';
    const once = spliceSoftwareSection(report, block);
    expect(once.indexOf('## 6. Scaling')).to.be.below(once.indexOf(SOFTWARE_BEGIN));
    expect(once.indexOf(SOFTWARE_END)).to.be.below(once.indexOf('## Memory'));
    // A regenerated report keeps the block; a second splice replaces it, never doubles it.
    expect(spliceSoftwareSection(report, once)).to.equal(once);
    expect(spliceSoftwareSection(once, block).split(SOFTWARE_BEGIN).length).to.equal(2);
    expect(spliceSoftwareSection(report, 'no block')).to.equal(report);
  });
});

describe('bench: the per-device way (detectedApps in the Graph simulator)', function () {
  this.timeout(60_000);

  it('reads every listed device\'s apps, one detectedApps request per device, 20 per $batch, all in the devices bucket', async () => {
    const w = await startWorld({ devices: 60, seed: 7, latencyMs: 0, scale: 1 });
    try {
      const m = await perDeviceRead(w);
      let apps = 0;
      for (let i = 0; i < w.tenant.positions; i++) if (w.tenant.deviceAt(i)) apps += w.tenant.appsAt(i).length;
      expect(m.devices).to.equal(60);
      expect(m.innerRequests).to.equal(60);
      expect(m.batches).to.equal(3);
      expect(m.apps).to.equal(apps);
      expect(w.graph.stats.byRoute['GET /deviceManagement/managedDevices/{id}/detectedApps']).to.equal(60);
      expect(w.graph.stats.batchInner).to.equal(60);
    } finally {
      await w.stop();
    }
  });
});
