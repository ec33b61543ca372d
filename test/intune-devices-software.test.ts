/**
 * intune-devices with "Discovered apps" (readSoftware) in Node-RED, against
 * the simulated identity platform and Graph (export jobs, storage download).
 * What each device carries is compared with the tenant generator's apps
 * (SimTenant.appsAt), not with our own parsing of the report.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import helper from 'node-red-node-test-helper';
import { startSimEnv, configFlow, ALL_ROLES, type SimEnv } from './support/sim-env';
import type { Device, InstalledApp, RunSummary } from '../nodes/lib/contracts';
import { DEFAULT_SKIP_STATES } from '../nodes/lib/devices/device-filters';
import { compareApps } from '../nodes/lib/software/software-index';
import { verifyConnection } from '../nodes/lib/intune/intune-connection';

helper.init(require.resolve('node-red'));
const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [nodeRedDir] }));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const configNode = require(path.join(__dirname, '..', 'nodes', 'intune-config', 'intune-config.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const devicesNode = require(path.join(__dirname, '..', 'nodes', 'intune-devices', 'intune-devices.js'));

type Msg = { payload: unknown; error?: { message: string } };
interface TestNode {
  on(ev: string, fn: (m: Msg) => void): void;
  receive(m: Record<string, unknown>): void;
  warn: { args: unknown[][] };
  /** Node.prototype.error as the test helper spies it: the calls of every node, each with its node as thisValue. */
  error: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
  status: { args: Array<[{ fill?: string; shape?: string; text?: string; runtimeText?: string }]> };
}

const PROPS = {
  platformWindows: true,
  platformMacos: true,
  platformIos: true,
  platformAndroid: true,
  platformLinux: true,
  platformOther: false,
  includePersonal: false,
  onlyWithPrimaryUser: false,
  includeDeletedUser: false,
  staleDays: 0,
  skipStates: [...DEFAULT_SKIP_STATES],
  collapseDuplicates: true,
  checkDeletedUsers: false,
  graphVersion: 'v1.0',
  overlapMinutes: 30,
  fullEveryHours: 0,
  incrementalEveryMinutes: 0,
  triggerMode: 'full',
  instance: '',
  store: '',
};

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The apps the generator put on a device, in the contract's shape and order. */
function truthOf(env: SimEnv, id: string): InstalledApp[] {
  const i = env.tenant.indexOf(id)!;
  return env.tenant
    .appsAt(i)
    .map((a) => ({ key: a.key, name: a.name, version: a.version, publisher: a.publisher, platform: a.platform, sizeBytes: null }))
    .sort(compareApps);
}

describe('intune-devices: discovered apps', function () {
  this.timeout(120_000);
  let env: SimEnv;
  let readOnly: SimEnv;

  before(async () => {
    [env, readOnly] = await Promise.all([
      startSimEnv({ devices: 1500, seed: 21 }),
      // Reads devices, but may not create a report export (Read.All only).
      startSimEnv({ devices: 200, seed: 22, roles: ['DeviceManagementManagedDevices.Read.All', 'DeviceManagementApps.Read.All'] }),
    ]);
    for (const e of [env, readOnly]) e.graph.reports.setTiming({ startMs: 100, readyMs: 400 });
  });
  after(async () => {
    await Promise.all([env?.stop(), readOnly?.stop()]);
  });
  afterEach(async () => {
    await helper.unload();
  });

  function flowOf(e: SimEnv, props: Record<string, unknown>, tabEnv?: Array<Record<string, string>>) {
    const { nodes, credentials } = configFlow(e, { overrides: { requestsPer20s: 100_000 } });
    const flow = [
      { id: 'f1', type: 'tab', label: 'devices', ...(tabEnv ? { env: tabEnv } : {}) },
      ...nodes.map((n) => (n.type === 'tls-config' ? { cert: '', key: '', ...n } : n)),
      { id: 'dev', type: 'intune-devices', z: 'f1', name: '', intune: 'cfg1', ...PROPS, ...props, wires: [['out'], ['sum']] },
      { id: 'out', type: 'helper', z: 'f1' },
      { id: 'sum', type: 'helper', z: 'f1' },
      { id: 'c1', type: 'catch', z: 'f1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f1' },
    ];
    return { flow, credentials };
  }

  /** The deployed flow's nodes, with a run() that triggers and waits for the summary. */
  function bind() {
    const dev = helper.getNode('dev') as unknown as TestNode;
    const pages: Msg[] = [];
    const summaries: Msg[] = [];
    const caught: Msg[] = [];
    (helper.getNode('out') as unknown as TestNode).on('input', (m) => pages.push(m));
    (helper.getNode('sum') as unknown as TestNode).on('input', (m) => summaries.push(m));
    (helper.getNode('caught') as unknown as TestNode).on('input', (m) => caught.push(m));
    return {
      dev,
      pages,
      summaries,
      caught,
      async run(msg: Record<string, unknown> = {}): Promise<{ devices: Device[]; summary: RunSummary }> {
        const p0 = pages.length;
        const s0 = summaries.length;
        dev.receive({ payload: 'go', ...msg });
        await waitFor(() => summaries.length > s0, 100_000, 'the run summary');
        await new Promise((r) => setImmediate(r));
        return { devices: pages.slice(p0).flatMap((p) => p.payload as Device[]), summary: summaries[s0].payload as RunSummary };
      },
    };
  }

  async function deploy(e: SimEnv, props: Record<string, unknown>, tabEnv?: Array<Record<string, string>>) {
    const { flow, credentials } = flowOf(e, props, tabEnv);
    await helper.load([tlsNode, configNode, devicesNode], flow as never, credentials as never);
    return bind();
  }

  type SoftwareDetails = { read: boolean; distinctApps: number; installations: number; exportRequests: number; devicesWithoutApps: number; error: string | null };
  const swOf = (s: RunSummary) => (s.details as { software?: SoftwareDetails }).software;

  it('on: every device passed on carries exactly the apps Intune lists for it; the summary counts them; the token never goes to storage', async () => {
    const created0 = env.graph.reports.stats.created;
    const reads0 = env.graph.reports.stats.statusReads;
    const t = await deploy(env, { readSoftware: true });
    const { devices, summary } = await t.run();
    expect(summary.result, summary.stats.error).to.equal('completed');
    expect(devices.length).to.be.greaterThan(500);
    const keys = new Set<string>();
    let installs = 0;
    let without = 0;
    for (const d of devices) {
      expect(d.software, d.id).to.deep.equal(truthOf(env, d.id));
      installs += d.software!.length;
      if (!d.software!.length) without++;
      for (const a of d.software!) keys.add(a.key);
    }
    expect(without, 'Linux devices have no discovered apps: []').to.be.greaterThan(0);
    const sw = swOf(summary)!;
    expect(sw).to.deep.include({ read: true, distinctApps: keys.size, installations: installs, devicesWithoutApps: without, error: null });
    expect(env.graph.reports.stats.created - created0).to.equal(1);
    // job creation + status checks, counted among the run's Graph requests (plus the device pages)
    expect(sw.exportRequests).to.equal(1 + env.graph.reports.stats.statusReads - reads0);
    expect(summary.stats.requests).to.be.at.least(summary.stats.pages + sw.exportRequests);
    expect(env.graph.reports.stats.downloads).to.be.greaterThan(0);
    expect(env.graph.reports.stats.downloadsWithAuthorization).to.equal(0);
    const last = t.dev.status.args[t.dev.status.args.length - 1][0];
    expect(last.fill).to.equal('green');
  });

  it('off (the default): no export job, and no device carries software (undefined, not [])', async () => {
    const created0 = env.graph.reports.stats.created;
    const t = await deploy(env, {});
    const { devices, summary } = await t.run();
    expect(summary.result).to.equal('completed');
    expect(devices.length).to.be.greaterThan(500);
    expect(devices.filter((d) => 'software' in d)).to.deep.equal([]);
    expect(swOf(summary)).to.equal(undefined);
    expect(env.graph.reports.stats.created).to.equal(created0);
  });

  it('the filters decide alike with and without software: the same devices, each with its apps', async () => {
    const windowsOnly = { platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, includePersonal: true };
    const off = await (await deploy(env, windowsOnly)).run();
    await helper.unload();
    const on = await (await deploy(env, { ...windowsOnly, readSoftware: true })).run();
    expect(on.devices.map((d) => d.id)).to.deep.equal(off.devices.map((d) => d.id));
    expect(on.devices.every((d) => Array.isArray(d.software) && d.software.length >= 20)).to.equal(true);
    const sw = swOf(on.summary)!;
    expect(sw.installations).to.equal(on.devices.reduce((n, d) => n + d.software!.length, 0));
  });

  it('an uninstalled app and an updated version show in the next run', async () => {
    const t = await deploy(env, { readSoftware: true, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false });
    const first = await t.run();
    const [a, b] = first.devices;
    const gone = a.software![0];
    const updated = b.software![1];
    env.tenant.removeApp(a.id, gone.name);
    env.tenant.setAppVersion(b.id, updated.name, '999.1.2');
    const second = await t.run();
    const a2 = second.devices.find((d) => d.id === a.id)!;
    const b2 = second.devices.find((d) => d.id === b.id)!;
    expect(a2.software!.map((x) => x.key)).to.not.include(gone.key);
    expect(a2.software!.length).to.equal(a.software!.length - 1);
    const now = b2.software!.find((x) => x.name === updated.name)!;
    expect(now.version).to.equal('999.1.2');
    expect(now.key).to.not.equal(updated.key);
    expect(b2.software).to.deep.equal(truthOf(env, b.id));
  });

  it('switching it on makes the next incremental run a full one (every device gets its apps); the one after is incremental again', async () => {
    const macOnly = { platformWindows: false, platformIos: false, platformAndroid: false, platformLinux: false };
    const t = await deploy(env, macOnly);
    const first = await t.run({ mode: 'full' });
    expect(first.summary.mode).to.equal('full');
    const { flow, credentials } = flowOf(env, { ...macOnly, readSoftware: true });
    await helper.setFlows(flow as never, 'nodes', credentials as never);
    const t2 = bind();
    const second = await t2.run({ mode: 'incremental' });
    expect(second.summary.mode).to.equal('full');
    expect(second.devices.length).to.equal(first.devices.length);
    expect(second.devices.every((d) => Array.isArray(d.software) && d.software.length > 0)).to.equal(true);
    const third = await t2.run({ mode: 'incremental' });
    expect(third.summary.mode).to.equal('incremental');
    expect(third.devices.every((d) => Array.isArray(d.software))).to.equal(true);
  });

  it('the preview counts distinct apps and installations of the devices a run would pass on', async () => {
    const t = await deploy(env, { readSoftware: true });
    const { devices } = await t.run();
    // With a progress id: while the report is exported (the sim takes 400 ms to make it ready), the progress says so.
    const progressId = 'software-progress-01';
    let answered = false;
    const post = helper
      .request()
      .post('/intune-devices/preview')
      .send({ ...PROPS, readSoftware: true, intune: 'cfg1', progressId })
      .then((r) => ((answered = true), r));
    const stages: string[] = [];
    while (!answered) {
      const look = await helper.request().get(`/intune-devices/preview/progress/${progressId}`);
      if (look.status === 200) {
        stages.push(look.body.stage);
        if (look.body.stage === 'software') expect(look.body, 'no device counted before the report').to.include({ total: 0, pages: 0 });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const res = await post.then((r) => (expect(r.status).to.equal(200), r));
    expect(stages, 'the report first').to.include('software');
    expect(stages.slice(stages.indexOf('devices') >= 0 ? stages.indexOf('devices') : stages.length), 'then only devices').to.not.include('software');
    expect(res.body.ok).to.equal(true);
    expect(res.body.imported).to.equal(devices.length);
    const keys = new Set(devices.flatMap((d) => d.software!.map((a) => a.key)));
    expect(res.body.software).to.deep.include({ read: true, distinctApps: keys.size, installations: devices.reduce((n, d) => n + d.software!.length, 0) });
    const off = await helper.request().post('/intune-devices/preview').send({ ...PROPS, intune: 'cfg1' }).expect(200);
    expect(off.body.software).to.equal(undefined);
  });

  it('without a ReadWrite permission: devices still go out, without software, the warning names the permission, the status is yellow', async () => {
    const t = await deploy(readOnly, { readSoftware: true });
    const { devices, summary } = await t.run();
    expect(summary.result).to.equal('completed');
    expect(devices.length).to.be.greaterThan(50);
    expect(devices.filter((d) => d.software !== undefined)).to.deep.equal([]);
    const sw = swOf(summary)!;
    expect(sw.read).to.equal(false);
    expect(sw.error).to.match(/DeviceManagementApps\.ReadWrite\.All/);
    expect(t.dev.warn.args.flat().join('\n')).to.match(/Discovered apps not read.*DeviceManagementApps\.ReadWrite\.All/);
    const last = t.dev.status.args[t.dev.status.args.length - 1][0];
    expect(last.fill).to.equal('yellow');
  });

  it('both instance templates wire READ_SOFTWARE (a flow variable, false until the user opts in) into the device source', async () => {
    const root = path.join(__dirname, '..', '..', 'flows');
    for (const name of ['ACMP instance (IntuneConnector_1).json', '4me instance (Intune4me_1).json']) {
      const nodes = JSON.parse(fs.readFileSync(path.join(root, name), 'utf8')) as Array<Record<string, unknown>>;
      const dev = nodes.find((n) => n.type === 'intune-devices')!;
      const tab = nodes.find((n) => n.id === dev.z)!;
      expect(dev.readSoftware, name).to.equal('${READ_SOFTWARE}');
      expect((tab.env as Array<Record<string, string>>).find((v) => v.name === 'READ_SOFTWARE'), name).to.deep.equal({ name: 'READ_SOFTWARE', value: 'false', type: 'bool' });
    }
    // The same wiring in a running Node-RED: the flow variable decides.
    const created0 = env.graph.reports.stats.created;
    const off = await (await deploy(env, { readSoftware: '${READ_SOFTWARE}', platformWindows: false, platformLinux: false }, [{ name: 'READ_SOFTWARE', value: 'false', type: 'bool' }])).run();
    expect(off.devices.length).to.be.greaterThan(50);
    expect(off.devices.filter((d) => d.software !== undefined)).to.deep.equal([]);
    expect(env.graph.reports.stats.created).to.equal(created0);
    await helper.unload();
    const on = await (await deploy(env, { readSoftware: '${READ_SOFTWARE}', platformWindows: false, platformLinux: false }, [{ name: 'READ_SOFTWARE', value: 'true', type: 'bool' }])).run();
    expect(on.devices.every((d) => Array.isArray(d.software))).to.equal(true);
    expect(env.graph.reports.stats.created).to.equal(created0 + 1);
  });

  describe('READ_SOFTWARE that is neither true nor false', () => {
    /** What the node logged with node.error (the helper spies the prototype: every node's calls). */
    const errorsOf = (dev: TestNode) => dev.error.getCalls().filter((c) => c.thisValue === dev).map((c) => String(c.args[0]));

    it('"yes" (a text flow variable) stops the node: red ring and an error naming "Discovered apps" and the value; a trigger fails with it and reads nothing', async () => {
      const requests0 = env.graph.stats.requests;
      const t = await deploy(env, { readSoftware: '${READ_SOFTWARE}' }, [{ name: 'READ_SOFTWARE', value: 'yes', type: 'str' }]);
      const first = t.dev.status.args[0][0];
      expect(first).to.include({ fill: 'red', shape: 'ring' });
      expect(first.runtimeText).to.equal('"Discovered apps" must be true or false, not "yes"');
      expect(errorsOf(t.dev)).to.deep.equal(['Not started: "Discovered apps" must be true or false, not "yes"']);
      t.dev.receive({ payload: 'go' });
      await waitFor(() => t.caught.length > 0, 10_000, 'a caught error');
      expect(t.caught[0].error!.message).to.equal('Error: "Discovered apps" must be true or false, not "yes"');
      expect(t.summaries).to.have.length(0);
      expect(env.graph.stats.requests, 'nothing asked of Graph').to.equal(requests0);
    });

    it('a variable that is not defined anywhere (Node-RED leaves ${READ_SOFTWARE} as it is) is named as unset', async () => {
      expect(process.env.READ_SOFTWARE, 'the test needs READ_SOFTWARE unset in its own environment').to.equal(undefined);
      const t = await deploy(env, { readSoftware: '${READ_SOFTWARE}' });
      expect(t.dev.status.args[0][0]).to.include({ fill: 'red', shape: 'ring' });
      expect(errorsOf(t.dev)[0]).to.equal('Not started: "Discovered apps" must be true or false, not "${READ_SOFTWARE}" (the environment variable READ_SOFTWARE is not set)');
    });

    it('"TRUE" (a text flow variable in capitals) is on: the devices carry their apps', async () => {
      const created0 = env.graph.reports.stats.created;
      const t = await deploy(env, { readSoftware: '${READ_SOFTWARE}', platformWindows: false, platformLinux: false }, [{ name: 'READ_SOFTWARE', value: 'TRUE', type: 'str' }]);
      expect(errorsOf(t.dev)).to.deep.equal([]);
      const { devices, summary } = await t.run();
      expect(summary.result, summary.stats.error).to.equal('completed');
      expect(devices.length).to.be.greaterThan(50);
      expect(devices.every((d) => Array.isArray(d.software))).to.equal(true);
      expect(env.graph.reports.stats.created).to.equal(created0 + 1);
    });
  });

  it('Verify connection names the permission the discovered apps need when the app lacks it', async () => {
    const form = (e: SimEnv) => {
      const { nodes, credentials } = configFlow(e);
      return { raw: nodes[1] as Record<string, unknown>, secrets: credentials.cfg1 as Record<string, string> };
    };
    const lacking = form(readOnly);
    const a = await verifyConnection(lacking.raw, lacking.secrets, { ca: readOnly.caPem });
    expect(a.ok, a.message).to.equal(true);
    const w = a.warnings.find((x) => x.code === 'missingOptionalPermission')!;
    expect(w.params.missing).to.include('DeviceManagementApps.ReadWrite.All');
    expect(w.params.features).to.include('discoveredApps');
    const full = form(env);
    const b = await verifyConnection(full.raw, full.secrets, { ca: env.caPem });
    const wb = b.warnings.find((x) => x.code === 'missingOptionalPermission');
    expect((wb?.params.missing as string[] | undefined) ?? []).to.not.include('DeviceManagementApps.ReadWrite.All');
    expect(ALL_ROLES).to.include('DeviceManagementManagedDevices.ReadWrite.All');
  });
});
