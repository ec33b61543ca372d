/**
 * intune-4me with devices that carry their discovered apps (Device.software):
 * software products and CIs in the simulated 4me, related to the device CIs
 * as children, written in bulk, set inactive when on no device any more.
 * Results are read from the sim's own records (a device CI's `childRelations`),
 * not from what the node says.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import helper from 'node-red-node-test-helper';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim } from '../sim/fourme';
import type { FourMeConfigurationItem } from '../sim/fourme-store';
import type { Device, InstalledApp } from '../nodes/lib/contracts';
import type { RunSummary4me } from '../nodes/lib/fourme/fourme-sink';
import { makeDevice, runPages, type RunOptions } from './support/device-fixtures';

helper.init(require.resolve('node-red'));
const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [nodeRedDir] }));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const configNode = require(path.join(__dirname, '..', 'nodes', 'intune-4me-config', 'intune-4me-config.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sinkNode = require(path.join(__dirname, '..', 'nodes', 'intune-4me', 'intune-4me.js'));

const PAT = 'pat-4me-software-test-0123456789';
const ACCOUNT = 'acme';
const INSTANCE = 'tenant-a';

type Msg = { topic?: string; payload: unknown; error?: { message: string } };
interface TestNode {
  on(ev: string, fn: (m: Msg) => void): void;
  receive(m: Record<string, unknown>): void;
  context(): { get(k: string): unknown; set(k: string, v: unknown): void; keys(): string[] };
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ------------------------------------------------------------ the tenant's software
// 120 titles from 12 publishers; device n has the 40 titles i with (i + n) % 3 === 0.
const TITLES = 120;
function app(i: number, version = `${1 + (i % 4)}.${i % 7}.0`): InstalledApp {
  return { key: `key-${i}-${version}`, name: `Tool ${String(i).padStart(3, '0')}`, version, publisher: `Vendor ${i % 12}`, platform: 'windows', sizeBytes: 1000 * i };
}
const sorted = (apps: InstalledApp[]) => apps.slice().sort((a, b) => a.name.localeCompare(b.name) || String(a.version).localeCompare(String(b.version)));
function softwareOf(n: number): InstalledApp[] {
  const out: InstalledApp[] = [];
  for (let i = 0; i < TITLES; i++) if ((i + n) % 3 === 0) out.push(app(i));
  return sorted(out);
}
const swSourceId = (a: InstalledApp, instance = INSTANCE) => `app:${instance}:${a.key}`;

describe('intune-4me: discovered software into the simulated 4me', function () {
  this.timeout(120_000);
  const pki = sharedTestCa();
  let sim: FourMeSim;
  let caDir: string;
  let caFile: string;
  let sink: TestNode;
  let sink2: TestNode;
  const out: Msg[] = [];
  const summaries: Msg[] = [];
  const summaries2: Msg[] = [];
  const summaries3: Msg[] = [];
  let sink3: TestNode;
  const errors: Msg[] = [];

  before(async () => {
    sim = new FourMeSim({ tls: pki.server, accounts: [{ id: ACCOUNT, name: 'Acme Corp' }], personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }] });
    await sim.start();
    // The software category exists with rule set Software, as docs/fourme-software.md asks of the 4me administrator.
    sim.seedProductCategory({ name: 'Application', group: 'software', ruleSet: 'software' }, ACCOUNT);
    caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-4me-sw-ca-'));
    caFile = path.join(caDir, 'ca.pem');
    fs.writeFileSync(caFile, pki.certPem);
    const cfg = {
      id: 'cfg', type: 'intune-4me-config', name: 'sim', accountId: ACCOUNT, environment: 'custom', region: 'global', brand: '4me',
      graphqlUrl: sim.graphqlUrl, tokenUrl: sim.tokenUrl, tls: 'tls1', authType: 'token', clientId: '', requestsPer2s: 19, asyncPollMs: 50, retryAfterFallbackSec: 1, asyncTimeoutSec: 30,
    };
    flow = [
      { id: 'f1', type: 'tab', label: '4me' },
      { id: 'tls1', type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: caFile, verifyservercert: true },
      cfg,
      { id: 's1', type: 'intune-4me', z: 'f1', name: '', fourme: 'cfg', matchPeople: false, wires: [['out'], ['sum']] },
      { id: 's2', type: 'intune-4me', z: 'f1', name: '', fourme: 'cfg', matchPeople: false, software: false, wires: [[], ['sum2']] },
      { id: 's3', type: 'intune-4me', z: 'f1', name: '', fourme: 'cfg', matchPeople: false, softwareCategoryRef: 'software/legacy_tools', wires: [[], ['sum3']] },
      { id: 'sum3', type: 'helper', z: 'f1' },
      { id: 'out', type: 'helper', z: 'f1' },
      { id: 'sum', type: 'helper', z: 'f1' },
      { id: 'sum2', type: 'helper', z: 'f1' },
      { id: 'c1', type: 'catch', z: 'f1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f1' },
    ];
    await deploy();
  });

  let flow: unknown[];
  async function deploy(): Promise<void> {
    await helper.load([tlsNode, configNode, sinkNode], flow as never, { cfg: { token: PAT } } as never);
    attach();
  }
  function attach(): void {
    sink = helper.getNode('s1') as unknown as TestNode;
    sink2 = helper.getNode('s2') as unknown as TestNode;
    (helper.getNode('out') as unknown as TestNode).on('input', (m) => out.push(m));
    (helper.getNode('sum') as unknown as TestNode).on('input', (m) => summaries.push(m));
    (helper.getNode('sum2') as unknown as TestNode).on('input', (m) => summaries2.push(m));
    sink3 = helper.getNode('s3') as unknown as TestNode;
    (helper.getNode('sum3') as unknown as TestNode).on('input', (m) => summaries3.push(m));
    (helper.getNode('caught') as unknown as TestNode).on('input', (m) => errors.push(m));
  }
  after(async () => {
    await helper.unload();
    await sim?.stop();
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  async function run(items: Device[], o: RunOptions = {}, node = sink, sums = summaries): Promise<RunSummary4me> {
    const s0 = sums.length;
    const e0 = errors.length;
    for (const p of runPages(items, { instance: INSTANCE, ...o })) node.receive(p as unknown as Record<string, unknown>);
    await waitFor(() => sums.length > s0 || errors.length > e0, 90_000, 'the run summary');
    if (errors.length > e0) throw new Error(`the run failed: ${errors[e0].error?.message}`);
    return sums[s0].payload as RunSummary4me;
  }

  const acc = () => sim.account(ACCOUNT);
  const calls = () => sim.stats.mutations.discoveredConfigurationItems ?? 0;
  const deviceCi = (d: Device) => acc().ciBySource('Intune', d.id)!;
  const swCi = (a: InstalledApp) => acc().ciBySource('Intune', swSourceId(a));
  /** The sourceIDs of a device CI's software children, as 4me holds them. */
  const childrenOf = (ci: FourMeConfigurationItem) => ci.childRelations.filter((r) => r.source === 'Intune').map((r) => acc().configurationItem(r.childId)!.sourceID).sort();
  const expectedChildren = (d: Device) => (d.software ?? []).map((a) => swSourceId(a)).sort();

  // 200 devices × 40 apps; device 7 also has an app no other device has.
  const ONLY7 = app(500, '9.9');
  let devices: Device[];

  it('creates software products and CIs and relates every device CI to its software CIs, in a handful of bulk calls', async () => {
    devices = Array.from({ length: 200 }, (_, i) => makeDevice(i + 1, { software: i + 1 === 7 ? sorted([...softwareOf(7), ONLY7]) : softwareOf(i + 1) }));
    sim.resetStats();
    const summary = await run(devices);
    expect(summary.complete).to.equal(true);
    expect(summary.software).to.include({ created: TITLES + 1, updated: 0, unchanged: 0, failed: 0, inactivated: 0, relationsChanged: 200 });
    expect(summary.cis).to.include({ created: 200, failed: 0 });
    // 121 software CIs: 2 calls; 200 device CIs: 2 calls — never one request per installation or device.
    expect(calls()).to.equal(4);
    expect(sim.stats.discoveredItemErrors).to.equal(0);

    for (const d of devices) expect(childrenOf(deviceCi(d)), `software of ${d.name}`).to.deep.equal(expectedChildren(d));
    const categoryOf = new Map(acc().productCategories.map((c) => [c.id, c]));
    for (const a of [...Array(TITLES).keys()].map((i) => app(i)).concat(ONLY7)) {
      const ci = swCi(a);
      expect(ci, `software CI of ${a.name}`).to.not.equal(undefined);
      const product = acc().product(ci!.productId)!;
      expect({ name: ci!.name, status: ci!.status, users: ci!.userIds }).to.deep.equal({ name: `${a.publisher} ${a.name} ${a.version}`, status: 'in_production', users: [] });
      expect({ brand: product.brand, name: product.name, source: product.source }).to.deep.equal({ brand: a.publisher, name: `${a.publisher} ${a.name}`, source: 'Intune' });
      expect(categoryOf.get(product.categoryId)).to.include({ reference: 'software/application', ruleSet: 'software' });
    }
    // one product per publisher + title, one CI per title + version
    expect(acc().products.filter((p) => categoryOf.get(p.categoryId)!.ruleSet === 'software')).to.have.length(TITLES + 1);
  });

  it('a second identical run writes nothing', async () => {
    const c0 = calls();
    const w0 = sim.ciWriteLog.length;
    const summary = await run(devices);
    expect(calls() - c0).to.equal(0);
    expect(sim.ciWriteLog.length - w0).to.equal(0);
    expect(summary.software).to.include({ created: 0, updated: 0, unchanged: TITLES + 1, relationsChanged: 0 });
    expect(summary.cis).to.include({ unchanged: 200 });
  });

  it('an app removed from one device removes that relation only; the software stays where other devices have it', async () => {
    const gone = devices[4].software![0];
    // a relation made by hand in 4me (no source) is not Intune's to replace
    const byHand = { childId: deviceCi(devices[9]).id, source: null };
    deviceCi(devices[4]).childRelations.push(byHand);
    devices[4] = { ...devices[4], software: devices[4].software!.slice(1) };
    const c0 = calls();
    const summary = await run(devices);
    expect(calls() - c0, 'one call: the changed device only').to.equal(1);
    expect(summary.software).to.include({ created: 0, updated: 0, inactivated: 0, relationsChanged: 1 });
    expect(summary.cis).to.include({ updated: 1, unchanged: 199 });
    expect(childrenOf(deviceCi(devices[4]))).to.deep.equal(expectedChildren(devices[4])).and.not.include(swSourceId(gone));
    expect(deviceCi(devices[4]).childRelations).to.deep.include(byHand);
    const others = devices.filter((d) => d.software!.some((a) => a.key === gone.key));
    expect(others.length).to.be.greaterThan(10);
    for (const d of others) expect(childrenOf(deviceCi(d))).to.include(swSourceId(gone));
    expect(swCi(gone)!.status).to.equal('in_production');
  });

  it('software on no device any more becomes inactive (archived, not deleted) after a complete full run, and comes back active', async () => {
    const title = 10;
    const x = app(title);
    const without = devices.map((d) => ({ ...d, software: d.software!.filter((a) => a.key !== x.key) }));
    const holders = devices.filter((d) => d.software!.some((a) => a.key === x.key));

    // incremental and aborted runs never set anything inactive
    let summary = await run(without, { mode: 'incremental' });
    expect(summary.software).to.include({ inactivated: 0, relationsChanged: holders.length });
    summary = await run(without, { aborted: true });
    expect(summary.software!.inactivated).to.equal(0);
    expect(swCi(x)!.status).to.equal('in_production');

    const n0 = acc().configurationItems.length;
    summary = await run(without);
    expect(summary.software).to.include({ inactivated: 1, relationsChanged: 0 });
    expect(swCi(x)!.status).to.equal('archived');
    expect(acc().configurationItems.length, 'nothing deleted').to.equal(n0);
    for (const d of holders) expect(childrenOf(deviceCi(d))).to.not.include(swSourceId(x));
    expect(swCi(app(11))!.status, 'the others stay active').to.equal('in_production');

    // a later complete run does not send it again
    const c0 = calls();
    summary = await run(without);
    expect(calls() - c0).to.equal(0);
    expect(summary.software!.inactivated).to.equal(0);

    // it comes back on one device (an incremental run is enough)
    const back = without.map((d, i) => (i === 0 ? { ...d, software: sorted([...d.software!, x]) } : d));
    summary = await run([back[0]], { mode: 'incremental' });
    expect(summary.software).to.include({ reactivated: 1, created: 0, relationsChanged: 1 });
    expect(swCi(x)!.status).to.equal('in_production');
    expect(childrenOf(deviceCi(back[0]))).to.include(swSourceId(x));
    devices = back;
  });

  it('devices whose software was not read leave their relations alone, and nothing is set inactive', async () => {
    const unread = devices.map((d) => {
      const { software: _s, ...rest } = d;
      return rest as Device;
    });
    unread[2] = { ...unread[2], name: 'RENAMED-00003' };
    const before = new Map(devices.map((d) => [d.id, childrenOf(deviceCi(d))]));
    const c0 = calls();
    const summary = await run(unread);
    expect(calls() - c0, 'the renamed device only').to.equal(1);
    expect(deviceCi(unread[2]).name).to.equal('RENAMED-00003');
    for (const d of devices) expect(childrenOf(deviceCi(d)), `software of ${d.name}`).to.deep.equal(before.get(d.id));
    expect(summary.software, 'no software read, none set inactive: no software counts').to.equal(undefined);
    expect(summary.softwareNotInactivated).to.match(/not read/);
    for (let i = 0; i < TITLES; i++) expect(swCi(app(i))!.status).to.equal('in_production', app(i).name);
    devices[2] = { ...devices[2], name: 'RENAMED-00003' };
  });

  it('a removed device is archived as before; software only it had becomes inactive, the rest stays', async () => {
    const rest = devices.filter((d) => d.name !== 'DEVICE-00007');
    const removed = devices.find((d) => d.name === 'DEVICE-00007')!;
    const summary = await run(rest);
    expect(summary.cis).to.include({ archived: 1 });
    expect(deviceCi(removed).status).to.equal('archived');
    expect(summary.software).to.include({ inactivated: 1 });
    expect(swCi(ONLY7)!.status).to.equal('archived');
    for (const a of removed.software!.filter((x) => x.key !== ONLY7.key)) expect(swCi(a)!.status).to.equal('in_production');
    devices = rest;
  });

  it('touches only the software this instance owns: another instance or source keeps its own', async () => {
    // Another tenant's instance writes the same titles as its own CIs, then loses them all.
    const other = [makeDevice(9001, { software: [app(0), app(3)] })];
    let summary = await run(other, { instance: 'tenant-b' });
    expect(summary.software).to.include({ created: 2 });
    expect(acc().ciBySource('Intune', swSourceId(app(0), 'tenant-b'))).to.not.equal(undefined);
    // a software CI of another source with a look-alike sourceID
    const foreign = acc().ciBySource('Intune', swSourceId(app(3)))!;
    sim.seedConfigurationItem({ name: 'SCCM copy', productId: foreign.productId, source: 'SCCM', sourceID: swSourceId(app(3), 'tenant-b'), status: 'in_production' }, ACCOUNT);
    summary = await run([{ ...other[0], software: [app(5)] }], { instance: 'tenant-b' });
    expect(summary.software).to.include({ inactivated: 2, created: 1 });
    expect(acc().ciBySource('Intune', swSourceId(app(0), 'tenant-b'))!.status).to.equal('archived');
    // tenant-a's CIs of the same titles are untouched
    expect(swCi(app(0))!.status).to.equal('in_production');
    expect(swCi(app(3))!.status).to.equal('in_production');
    expect(acc().ciBySource('SCCM', swSourceId(app(3), 'tenant-b'))!.status).to.equal('in_production');
  });

  it('a complete run in which no device reports any software sets nothing inactive (a source problem, not a clean sweep)', async () => {
    const summary = await run([makeDevice(9001, { software: [] })], { instance: 'tenant-b' });
    expect(summary.software).to.include({ inactivated: 0 });
    expect(summary.softwareNotInactivated).to.match(/no device/);
    expect(acc().ciBySource('Intune', swSourceId(app(5), 'tenant-b'))!.status).to.equal('in_production');
    expect(deviceCi(makeDevice(9001)).childRelations, '[] = read, none: its relations are removed').to.deep.equal([]);
  });

  it('after a restart with the cache kept nothing is sent again; with the cache lost the software is re-sent, never duplicated', async () => {
    // flows stopped and started, node context carried over as a serialising store would (JSON)
    const red = (helper as unknown as { _redNodes: { stopFlows(): Promise<void>; startFlows(): Promise<void> } })._redNodes;
    const ctx = () => (helper.getNode('s1') as unknown as TestNode).context();
    const saved = Object.fromEntries(ctx().keys().map((k) => [k, JSON.parse(JSON.stringify(ctx().get(k)))]));
    await red.stopFlows();
    await red.startFlows();
    for (const [k, v] of Object.entries(saved)) ctx().set(k, v);
    attach();
    let c0 = calls();
    let summary = await run(devices);
    expect(calls() - c0).to.equal(0);
    expect(summary.software).to.include({ created: 0, updated: 0, unchanged: TITLES, relationsChanged: 0 });

    await helper.unload(); // context cleaned: the cache is gone
    await deploy();
    const n0 = acc().configurationItems.length;
    const relations = new Map(devices.map((d) => [d.id, childrenOf(deviceCi(d))]));
    c0 = calls();
    summary = await run(devices);
    expect(summary.software).to.include({ created: TITLES, failed: 0, inactivated: 0 });
    expect(calls() - c0, 'software and devices, in bulk').to.equal(2 + Math.ceil(devices.length / 100));
    expect(acc().configurationItems.length, 'no duplicate').to.equal(n0);
    for (const d of devices) expect(childrenOf(deviceCi(d))).to.deep.equal(relations.get(d.id));
    c0 = calls();
    await run(devices);
    expect(calls() - c0).to.equal(0);
  });

  it('with software switched off in the node, devices are written without software relations', async () => {
    const d = makeDevice(7001, { software: [app(1)] });
    const summary = await run([d], { instance: 'tenant-c', mode: 'incremental' }, sink2, summaries2);
    expect(summary.software).to.equal(undefined);
    expect(deviceCi(d).childRelations).to.deep.equal([]);
    expect(acc().ciBySource('Intune', swSourceId(app(1), 'tenant-c'))).to.equal(undefined);
  });

  it('software is not written into a category that is missing or not of rule set Software; the devices keep their relations', async () => {
    const d = makeDevice(8001, { software: [app(2)] });
    // missing: discovery would create it with a rule set it cannot choose
    let summary = await run([d], { instance: 'tenant-d', mode: 'incremental' }, sink3, summaries3);
    expect(summary.errors.map((e) => e.error)).to.deep.include('The software product category "software/legacy_tools" does not exist in 4me: create it in 4me (Settings → Product Categories) with rule set "Software", or name an existing software category in the node. Software was not written');
    expect(acc().productCategories.map((c) => c.reference)).to.not.include('software/legacy_tools');
    expect(acc().ciBySource('Intune', swSourceId(app(2), 'tenant-d'))).to.equal(undefined);
    expect(deviceCi(d).childRelations).to.deep.equal([]);
    expect(summary.cis).to.include({ created: 1 });
    // present, but a physical-asset category
    sim.seedProductCategory({ name: 'Legacy Tools', group: 'software', ruleSet: 'physical_asset' }, ACCOUNT);
    summary = await run([d], { instance: 'tenant-d', mode: 'incremental' }, sink3, summaries3);
    expect(summary.errors[0].error).to.match(/rule set "physical_asset", not "software"/);
    expect(acc().ciBySource('Intune', swSourceId(app(2), 'tenant-d'))).to.equal(undefined);
  });
});
