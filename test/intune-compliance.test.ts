/**
 * intune-compliance in Node-RED (node-red-node-test-helper) against the
 * simulated identity platform and Graph. What a run emits is compared with
 * the generator's own ground truth (SimTenant.groundTruthViolations and
 * metaAt: platform, ownership, user, deleted user, re-enrolment, grace
 * period), not with our own parsing of Graph's answers.
 */
import path from 'node:path';
import { expect } from 'chai';
import helper from 'node-red-node-test-helper';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';
import type { ComplianceViolation, RunSummary, SyncEnvelope } from '../nodes/lib/contracts';
import { DEFAULT_SKIP_STATES, parseFilterSettings, type DeviceFilterSettings } from '../nodes/lib/devices/device-filters';
import { DELETED_USER_DEVICE_NAME, PlaceholderSerials } from '../nodes/lib/devices/device-normaliser';
import { familyOf, POLICY_FAMILIES } from '../nodes/lib/compliance/compliance-policies';
import { emptyComplianceSkips, type ComplianceSkipReason } from '../nodes/lib/compliance/compliance-violations';
import type { SimTenant, GroundTruthViolation } from '../sim/tenant';
import { SIM_FAMILY } from './support/device-fixtures';

helper.init(require.resolve('node-red'));
const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [nodeRedDir] }));
// The compiled nodes of the same build as this test file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const configNode = require(path.join(__dirname, '..', 'nodes', 'intune-config', 'intune-config.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const complianceNode = require(path.join(__dirname, '..', 'nodes', 'intune-compliance', 'intune-compliance.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const devicesNode = require(path.join(__dirname, '..', 'nodes', 'intune-devices', 'intune-devices.js'));

const DAY = 86_400_000;
const REPORT_ROUTE = 'POST /deviceManagement/reports/getNoncompliantDevicesAndSettingsReport';
const STATES_ROUTE = 'GET /deviceManagement/managedDevices/{id}/deviceCompliancePolicyStates';

type Msg = { topic?: string; payload: unknown; sync?: SyncEnvelope; error?: { message: string } };
interface TestNode {
  on(ev: string, fn: (m: Msg) => void): void;
  receive(m: Record<string, unknown>): void;
  context(): { get(k: string): unknown };
  warn: { args: unknown[][] };
  /** text: the form the editor translates (status-text.ts); runtimeText: the runtime's language. */
  status: { args: Array<[{ fill?: string; shape?: string; text?: string; runtimeText?: string }]> };
}

async function waitFor(cond: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const FAMILY = SIM_FAMILY;

const DEFAULT_PROPS = {
  policyPlatforms: [...POLICY_FAMILIES],
  policies: [] as string[],
  countGracePeriod: false,
  includeErrors: true,
  settingDetails: true,
  filtersFrom: '',
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
  checkDeletedUsers: true,
  everyMinutes: 0,
  instance: '',
  store: '',
};
type Props = typeof DEFAULT_PROPS;

/** Why the device source would not import position i (from the generator's own decisions), or null. */
function deviceReason(tenant: SimTenant, i: number, s: DeviceFilterSettings, collapse: boolean, now: number): string | null {
  const dev = tenant.deviceAt(i)!;
  const meta = tenant.metaAt(i)!;
  const family = FAMILY[meta.platform];
  const computer = family === 'windows' || family === 'macos' || family === 'linux';
  const last = Date.parse(dev.lastSyncDateTime);
  if (collapse && meta.duplicateOf !== null && !tenant.metaAt(meta.duplicateOf)!.placeholderSerial) return 'duplicate';
  if (!s.platforms[family]) return 'platform';
  if (!s.includePersonal && meta.ownership === 'personal' && computer) return 'personal';
  if (meta.userDeleted && (!s.includeDeletedUser || s.onlyWithPrimaryUser)) return 'userDeleted';
  if (s.onlyWithPrimaryUser && meta.userIndex === null) return 'noPrimaryUser';
  if (s.skipManagementStates.some((m) => m.toLowerCase() === dev.managementState.toLowerCase())) return 'managementState';
  if (s.staleDays > 0 && now - last > s.staleDays * DAY) return 'stale';
  return null;
}

interface Truth {
  items: number;
  skipped: Record<ComplianceSkipReason, number>;
  emitted: Map<string, GroundTruthViolation>;
}

/**
 * What a run must emit, from the generator. `only`: the policy the report
 * was narrowed to server-side (its other violations are never read);
 * `devicesKept`: the ids an intune-devices run emitted (instead of the
 * device rules from the generator's meta).
 */
function groundTruth(tenant: SimTenant, p: Props, now: number, o: { only?: string; devicesKept?: Set<string>; filters?: DeviceFilterSettings; collapse?: boolean } = {}): Truth {
  const filters = o.filters ?? parseFilterSettings(p);
  const collapse = o.collapse ?? p.collapseDuplicates;
  const listed = new Set(p.policies.map((x) => x.toLowerCase()));
  const fams = new Set(p.policyPlatforms);
  const out: Truth = { items: 0, skipped: emptyComplianceSkips(), emitted: new Map() };
  for (let i = 0; i < tenant.positions; i++) {
    const vs = tenant.violationsAt(i);
    if (!vs.length) continue;
    let reason: string | null | undefined;
    for (const v of vs) {
      if (o.only && v.policyId !== o.only) continue;
      out.items++;
      const skip = (r: ComplianceSkipReason) => out.skipped[r]++;
      if (listed.size && !listed.has(v.policyId.toLowerCase()) && !listed.has(v.policyName.toLowerCase())) {
        skip('policy');
        continue;
      }
      const famOk = fams.has(familyOf(v.platformType));
      // the built-in policy is not in Graph's policy list: its platform is checked after the device
      if (!v.builtInPolicy && !famOk) {
        skip('policy');
        continue;
      }
      if (reason === undefined) {
        reason = o.devicesKept ? (o.devicesKept.has(v.deviceId) ? null : 'filtered') : deviceReason(tenant, i, filters, collapse, now);
      }
      if (reason) {
        if (reason !== 'filtered') skip(reason as ComplianceSkipReason);
        continue;
      }
      if (v.inGracePeriod && !p.countGracePeriod) {
        skip('gracePeriod');
        continue;
      }
      if (!famOk) {
        skip('policy');
        continue;
      }
      if (v.state === 'error' && !p.includeErrors) {
        skip('errors');
        continue;
      }
      out.emitted.set(v.key, v);
    }
  }
  return out;
}

const placeholders = new PlaceholderSerials();

/** Compares one emitted violation with the generator's. */
/** `reportOnly`: passed on unchanged since an earlier run, so with the report's settings (no policy-state read). */
function expectViolation(env: SimEnv, got: ComplianceViolation, want: GroundTruthViolation, p: Props, reportOnly = false) {
  const i = env.tenant.indexOf(want.deviceId)!;
  const meta = env.tenant.metaAt(i)!;
  const raw = env.tenant.deviceAt(i)!;
  expect(got.key).to.equal(want.key);
  expect(got.policy, want.key).to.deep.equal({ id: want.policyId, name: want.policyName, platform: want.platformType });
  const settings = want.settings
    .filter((s) => p.includeErrors || s.state !== 'error')
    .map((s) => ({
      name: s.name,
      state: s.state,
      currentValue: p.settingDetails && !reportOnly ? s.currentValue : null,
      errorCode: s.errorCode,
      errorDescription: p.settingDetails && !reportOnly ? s.errorDescription : null,
    }));
  expect(got.settings, want.key).to.deep.equal(settings);
  expect(got.device.id).to.equal(want.deviceId);
  expect(got.device.name, want.key).to.equal(meta.userDeleted ? DELETED_USER_DEVICE_NAME : want.deviceName);
  expect(got.device.serialNumber, want.key).to.equal(placeholders.clean(want.serialNumber));
  if (meta.duplicateOf === null) expect(got.device.serialNumber === null).to.equal(meta.placeholderSerial);
  expect(got.device.os).to.deep.equal({ name: want.operatingSystem, version: raw.osVersion, sku: null });
  if (meta.userDeleted || meta.userIndex === null) expect(got.device.user, want.key).to.equal(null);
  else expect(got.device.user!.id, want.key).to.equal(raw.userId);
  expect(got.detectedAt).to.equal(new Date(raw.lastSyncDateTime).toISOString());
  expect(got.deepLink).to.equal(`https://intune.microsoft.com/${env.tenantId}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/compliance/mdmDeviceId/${want.deviceId}`);
}

describe('intune-compliance', function () {
  this.timeout(90_000);
  let env: SimEnv;
  let small: SimEnv;

  before(async () => {
    [env, small] = await Promise.all([startSimEnv({ devices: 10_000, seed: 11 }), startSimEnv({ devices: 2_000, seed: 3 })]);
    // The sims' Intune limits are per 20 s; back-to-back runs of a test suite would hit them. Pacing is the client's job, tested there.
    const lots = { appRequests: 1_000_000, tenantRequests: 1_000_000, appWrites: 1_000_000, tenantWrites: 1_000_000 };
    for (const e of [env, small]) e.graph.setLimits({ devices: lots, configuration: lots, reports: lots, directory: { S: 1_000_000, M: 1_000_000, L: 1_000_000 } });
  });
  after(async () => {
    await Promise.all([env?.stop(), small?.stop()]);
  });
  afterEach(async () => {
    for (const e of [env, small]) e?.graph.clearFaults();
    await helper.unload();
  });

  function flowFor(
    e: SimEnv,
    props: Partial<Props> = {},
    o: { withoutConfig?: boolean; credentials?: Record<string, unknown>; devices?: Record<string, unknown>; env?: Record<string, string> } = {},
  ) {
    const { nodes, credentials } = configFlow(e, { overrides: { requestsPer20s: 100_000, writesPer20s: 10_000 }, credentials: o.credentials });
    const flow: Record<string, unknown>[] = [
      { id: 'f1', type: 'tab', label: 'compliance', env: Object.entries(o.env ?? {}).map(([name, value]) => ({ name, value, type: 'str' })) },
      // Node-RED's tls-config reads n.cert/n.key unconditionally.
      ...nodes.map((n) => (n.type === 'tls-config' ? { cert: '', key: '', ...n } : n)),
      { id: 'comp', type: 'intune-compliance', z: 'f1', name: '', intune: o.withoutConfig ? '' : 'cfg1', ...DEFAULT_PROPS, ...props, wires: [['out'], ['sum']] },
      { id: 'out', type: 'helper', z: 'f1' },
      { id: 'sum', type: 'helper', z: 'f1' },
      { id: 'c1', type: 'catch', z: 'f1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f1' },
    ];
    if (o.devices) {
      flow.push(
        { id: 'dev', type: 'intune-devices', z: 'f1', name: 'CMDB import', intune: 'cfg1', ...o.devices, wires: [['devOut'], ['devSum']] },
        { id: 'devOut', type: 'helper', z: 'f1' },
        { id: 'devSum', type: 'helper', z: 'f1' },
      );
    }
    return { flow, credentials };
  }

  async function deploy(e: SimEnv, props: Partial<Props> = {}, o: Parameters<typeof flowFor>[2] = {}) {
    const { flow, credentials } = flowFor(e, props, o);
    await helper.load([tlsNode, configNode, complianceNode, devicesNode], flow as never, credentials as never);
    const node = helper.getNode('comp') as unknown as TestNode;
    const pages: Msg[] = [];
    const summaries: Msg[] = [];
    const errors: Msg[] = [];
    (helper.getNode('out') as unknown as TestNode).on('input', (m) => pages.push(m));
    (helper.getNode('sum') as unknown as TestNode).on('input', (m) => summaries.push(m));
    (helper.getNode('caught') as unknown as TestNode).on('input', (m) => errors.push(m));
    return {
      node,
      pages,
      summaries,
      errors,
      /** Sends a trigger and waits for the run's summary. */
      async run(msg: Record<string, unknown> = {}): Promise<{ pages: Msg[]; summary: RunSummary; violations: ComplianceViolation[] }> {
        const p0 = pages.length;
        const s0 = summaries.length;
        node.receive({ payload: 'go', ...msg });
        await waitFor(() => summaries.length > s0, 80_000, 'the run summary');
        await new Promise((r) => setImmediate(r));
        const mine = pages.slice(p0);
        return { pages: mine, summary: summaries[s0].payload as RunSummary, violations: mine.flatMap((p) => p.payload as ComplianceViolation[]) };
      },
    };
  }

  function expectEnvelope(pages: Msg[], summary: RunSummary) {
    expect(pages.length, 'pages').to.be.greaterThan(0);
    pages.forEach((p, k) => {
      expect(p.topic).to.equal('intune/compliance');
      expect(p.sync).to.deep.include({ runId: summary.runId, instance: summary.instance, mode: 'full', page: k + 1, last: k === pages.length - 1, startedAt: summary.startedAt });
      // at most one report page (1000 rows) per message
      expect((p.payload as unknown[]).length).to.be.at.most(1000);
      if (k < pages.length - 1) expect(p.sync!.stats).to.equal(undefined);
    });
    expect(pages[pages.length - 1].sync!.stats).to.deep.equal(summary.stats);
    expect(summary.stats.aborted).to.equal(undefined);
  }

  function expectTruth(e: SimEnv, run: { summary: RunSummary; violations: ComplianceViolation[] }, truth: Truth, p: Props, known: ReadonlySet<string> = new Set()) {
    const keys = run.violations.map((v) => v.key);
    expect(new Set(keys).size, 'no violation twice').to.equal(keys.length);
    expect(keys.filter((k) => !truth.emitted.has(k)), 'emitted but not in the ground truth').to.deep.equal([]);
    expect([...truth.emitted.keys()].filter((k) => !keys.includes(k)), 'in the ground truth but not emitted').to.deep.equal([]);
    for (const v of run.violations) expectViolation(e, v, truth.emitted.get(v.key)!, p, known.has(v.key));
    expect(run.summary.stats.items).to.equal(truth.items);
    expect(run.summary.stats.emitted).to.equal(truth.emitted.size);
    expect(run.summary.stats.items).to.equal(run.summary.stats.emitted + Object.values(run.summary.stats.skipped).reduce((a, b) => a + b, 0));
  }

  describe('full runs against the 10,000-device tenant equal the generator\u2019s ground truth', () => {
    it('defaults: every policy, grace period off, errors on, setting details, device-source default filters', async () => {
      const t = await deploy(env);
      const run = await t.run();
      expect(run.summary.result, run.summary.stats.error).to.equal('completed');
      expect(run.summary.instance).to.equal(env.tenantId);
      expectEnvelope(run.pages, run.summary);
      const truth = groundTruth(env.tenant, DEFAULT_PROPS, Date.parse(run.summary.startedAt));
      expectTruth(env, run, truth, DEFAULT_PROPS);
      expect(run.summary.stats.skipped).to.deep.equal(truth.skipped);
      // the tenant exercises every rule
      expect(truth.emitted.size).to.be.greaterThan(1000);
      for (const r of ['duplicate', 'personal', 'userDeleted', 'gracePeriod'] as const) expect(truth.skipped[r], r).to.be.greaterThan(10);
      const policies = new Set(run.violations.map((v) => v.policy.id));
      expect(policies.size, 'several policies per platform, and the built-in one').to.equal(env.tenant.policies.length + 1);
      expect(run.violations.some((v) => v.settings.some((s) => s.state === 'error'))).to.equal(true);
      expect(run.pages.length).to.equal(run.summary.stats.pages);
      expect(run.summary.stats.pages).to.be.at.least(3);
    });

    it('Windows and built-in policies only, grace period counts, errors do not, personal computers in, only devices with a user, stale after 90 days, duplicates kept', async () => {
      const p: Props = {
        ...DEFAULT_PROPS,
        policyPlatforms: ['windows', 'all'],
        countGracePeriod: true,
        includeErrors: false,
        includePersonal: true,
        onlyWithPrimaryUser: true,
        staleDays: 90,
        collapseDuplicates: false,
      };
      const t = await deploy(env, p);
      env.graph.resetStats();
      const run = await t.run();
      expect(run.summary.result, run.summary.stats.error).to.equal('completed');
      expectEnvelope(run.pages, run.summary);
      const truth = groundTruth(env.tenant, p, Date.parse(run.summary.startedAt));
      expectTruth(env, run, truth, p);
      expect(run.summary.stats.skipped).to.deep.equal(truth.skipped);
      expect(truth.skipped.errors).to.be.greaterThan(10);
      expect(run.violations.some((v) => v.device.user === null)).to.equal(false);
      expect(new Set(run.violations.map((v) => familyOf(v.policy.platform)))).to.deep.equal(new Set(['windows', 'all']));
      // no duplicate pass without collapsing: one listing of the non-compliant devices only
      expect(env.graph.stats.byRoute['GET /deviceManagement/managedDevices']).to.equal(run.summary.details!.devicePages);
      expect(run.summary.details!.duplicatePages).to.equal(0);
    });

    it('one policy by name (the report is narrowed to it), without setting details, deleted users in, no management state skipped', async () => {
      const byod = env.tenant.policies.find((x) => x.displayName === 'iOS/iPadOS – BYOD')!;
      const p: Props = { ...DEFAULT_PROPS, policies: ['ios/ipados – byod'], settingDetails: false, includeDeletedUser: true, skipStates: [] };
      const t = await deploy(env, p);
      env.graph.resetStats();
      const run = await t.run();
      expect(run.summary.result, run.summary.stats.error).to.equal('completed');
      expectEnvelope(run.pages, run.summary);
      const truth = groundTruth(env.tenant, p, Date.parse(run.summary.startedAt), { only: byod.id });
      expectTruth(env, run, truth, p);
      expect(run.summary.stats.skipped).to.deep.equal(truth.skipped);
      expect(truth.emitted.size).to.be.greaterThan(5);
      expect(run.summary.details!.reportFilter).to.equal(`(PolicyId eq '${byod.id}')`);
      const filters = env.graph.requestLog.filter((r) => r.route === REPORT_ROUTE);
      expect(filters.length).to.equal(1);
      // the report's rows carried everything: not one per-device request
      expect(env.graph.stats.byRoute[STATES_ROUTE] ?? 0).to.equal(0);
      expect(run.summary.details!.detailReads).to.equal(0);
      expect(run.violations.every((v) => v.settings.every((s) => s.currentValue === null && s.errorDescription === null))).to.equal(true);
    });
  });

  describe('device filters of an intune-devices node (2,000 devices)', () => {
    it('only devices that node imports raise violations, whatever this node\u2019s own filters say; policy states read only where the report lacks the platform', async () => {
      const devProps = {
        platformWindows: true,
        platformMacos: true,
        platformIos: false,
        platformAndroid: false,
        platformLinux: false,
        platformOther: false,
        includePersonal: true,
        onlyWithPrimaryUser: false,
        includeDeletedUser: false,
        staleDays: 60,
        skipStates: ['retirePending', 'wipePending'],
        collapseDuplicates: true,
        checkDeletedUsers: true,
        graphVersion: 'v1.0',
        fullEveryHours: 0,
        incrementalEveryMinutes: 0,
        triggerMode: 'full',
        instance: '',
        store: '',
      };
      // the node's own filters say something else entirely: they must not apply
      const p: Props = { ...DEFAULT_PROPS, filtersFrom: 'dev', platformWindows: false, platformMacos: false, platformLinux: false, settingDetails: false, policyPlatforms: ['windows', 'macos', 'all'] };
      const t = await deploy(small, p, { devices: devProps });
      const devSums: Msg[] = [];
      const devPages: Msg[] = [];
      (helper.getNode('devSum') as unknown as TestNode).on('input', (m) => devSums.push(m));
      (helper.getNode('devOut') as unknown as TestNode).on('input', (m) => devPages.push(m));
      (helper.getNode('dev') as unknown as TestNode).receive({ payload: 'import' });
      await waitFor(() => devSums.length === 1, 60_000, 'the device run');
      const imported = new Set(devPages.flatMap((m) => (m.payload as Array<{ id: string }>).map((d) => d.id)));
      small.graph.resetStats();
      const run = await t.run();
      expect(run.summary.result, run.summary.stats.error).to.equal('completed');
      expect(run.summary.details!.filtersFrom).to.equal('dev');
      const now = Date.parse(run.summary.startedAt);
      const byMeta = groundTruth(small.tenant, p, now, { filters: parseFilterSettings(devProps), collapse: true });
      expectTruth(small, run, byMeta, p);
      expect(run.summary.stats.skipped).to.deep.equal(byMeta.skipped);
      // and against what the device source really emitted
      const byImport = groundTruth(small.tenant, p, now, { devicesKept: imported });
      expect(new Set(run.violations.map((v) => v.key))).to.deep.equal(new Set(byImport.emitted.keys()));
      expect(run.violations.every((v) => imported.has(v.device.id))).to.equal(true);
      // setting details off: policy states read only for devices with a violation of the built-in policy (Graph does not list it)
      const builtInDevices = new Set(run.violations.filter((v) => v.policy.platform === 'all').map((v) => v.device.id));
      expect(builtInDevices.size).to.be.greaterThan(10);
      expect(small.graph.stats.byRoute[STATES_ROUTE]).to.equal(builtInDevices.size);
    });
  });

  describe('Graph requests grow with report pages and non-compliant devices, not with the tenant', () => {
    /**
     * Requests the run may make, from the tenant alone: the non-compliant
     * devices, the report's rows, the devices the report names although
     * their compliance state is not a non-compliant one (co-managed devices
     * failing only the built-in policy: read by id), the devices with a
     * violation passed on. Nothing in it counts compliant devices.
     */
    function expected(e: SimEnv, violations: ComplianceViolation[]) {
      let nc = 0;
      let rows = 0;
      let byId = 0;
      for (let i = 0; i < e.tenant.positions; i++) {
        const d = e.tenant.deviceAt(i);
        if (!d) continue;
        const listed = ['noncompliant', 'inGracePeriod', 'error'].includes(d.complianceState);
        if (listed) nc++;
        const r = e.tenant.reportRowsAt(i).length;
        rows += r;
        if (r && !listed) byId++;
      }
      const devicesWithViolations = new Set(violations.map((v) => v.device.id)).size;
      const byRoute: Record<string, number> = {
        'GET /deviceManagement/deviceCompliancePolicies': 1,
        'GET /deviceManagement/managedDevices': Math.max(1, Math.ceil(nc / 1000)),
        [REPORT_ROUTE]: Math.max(1, Math.ceil(rows / 1000)),
        [STATES_ROUTE]: devicesWithViolations,
      };
      if (byId) byRoute['GET /deviceManagement/managedDevices/{id}'] = byId;
      return { nc, rows, byId, byRoute };
    }

    function innerRoutes(e: SimEnv): Record<string, number> {
      const out = { ...e.graph.stats.byRoute };
      delete out['POST /$batch'];
      return out;
    }

    it('on 2,000 and 10,000 devices the requests are exactly: 1 policy list + non-compliant device pages + report pages + one read per device the report names outside the listing + one policy-state read per device with a violation', async () => {
      const p: Props = { ...DEFAULT_PROPS, collapseDuplicates: false, checkDeletedUsers: false };
      const seen: Array<{ size: number; requests: number; nc: number; rows: number }> = [];
      for (const e of [small, env]) {
        const t = await deploy(e, p);
        e.graph.resetStats();
        const run = await t.run();
        expect(run.summary.result, run.summary.stats.error).to.equal('completed');
        const want = expected(e, run.violations);
        expect(innerRoutes(e)).to.deep.equal(want.byRoute);
        expect(run.summary.details!.devicesReadById).to.equal(want.byId);
        const total = Object.values(want.byRoute).reduce((a, b) => a + b, 0);
        // the run counts as Intune does ($batch items one by one)
        expect(run.summary.stats.requests).to.equal(total);
        // per-device reads went in $batches of 20 (per report page)
        const perDevice = want.byRoute[STATES_ROUTE] + want.byId;
        expect(e.graph.stats.batches).to.be.at.least(Math.ceil(perDevice / 20));
        expect(e.graph.stats.batches).to.be.at.most(Math.ceil(perDevice / 20) + 2 * want.byRoute[REPORT_ROUTE]);
        seen.push({ size: e.tenant.size, requests: total, nc: want.nc, rows: want.rows });
        await helper.unload();
      }
      // far fewer requests than devices, and none for a compliant device
      for (const s of seen) expect(s.requests).to.be.below(s.nc + 10);
      expect(seen[1].requests / seen[1].size).to.be.below(0.25);
    });

    it('collapsing duplicates adds one cheap serial-number page per 1,000 devices, and serial look-ups only for devices read by id', async () => {
      const t = await deploy(small, DEFAULT_PROPS);
      small.graph.resetStats();
      const run = await t.run();
      expect(run.summary.result, run.summary.stats.error).to.equal('completed');
      const want = expected(small, run.violations);
      const d = run.summary.details!;
      expect(d.duplicatePages).to.equal(2);
      expect(want.byId, 'devices the report names outside the listing').to.be.greaterThan(0);
      expect(d.twinLookups as number).to.be.greaterThan(0);
      expect(d.twinLookups as number).to.be.at.most(Math.ceil(want.byId / 15) + want.byRoute[REPORT_ROUTE]);
      const listings = small.graph.requestLog.filter((r) => r.route === 'GET /deviceManagement/managedDevices').map((r) => decodeURIComponent(r.url));
      expect(listings.length).to.equal(want.byRoute['GET /deviceManagement/managedDevices'] + 2 + (d.twinLookups as number));
      expect(listings.filter((u) => /\$select=id,serialNumber,lastSyncDateTime$/.test(u) || /\$select=id,serialNumber,lastSyncDateTime&\$skiptoken/.test(u)).length).to.equal(2);
      expect(listings.filter((u) => /serialNumber eq '/.test(u)).length).to.equal(d.twinLookups);
      expect(small.graph.stats.byRoute['GET /deviceManagement/managedDevices/{id}'] ?? 0).to.equal(want.byId);
      // and the result is still exactly the ground truth
      expectTruth(small, run, groundTruth(small.tenant, DEFAULT_PROPS, Date.parse(run.summary.startedAt)), DEFAULT_PROPS);
    });
  });

  describe('between runs', () => {
    it('a device that becomes compliant disappears from the next run; one that becomes non-compliant appears', async () => {
      const tn = small.tenant;
      const t = await deploy(small);
      const first = await t.run();
      expect(first.summary.result).to.equal('completed');
      const before = new Set(first.violations.map((v) => v.key));
      // a violation of a listed policy goes away …
      const gone = first.violations.find((v) => v.policy.platform !== 'all')!;
      tn.setPolicyCompliance(gone.device.id, gone.policy.id, true);
      // … and a compliant, imported, not-in-grace device fails a policy assigned to it
      const now = Date.parse(first.summary.startedAt);
      const filters = parseFilterSettings(DEFAULT_PROPS);
      let fresh: { id: string; policyId: string } | undefined;
      for (let i = 0; i < tn.positions && !fresh; i++) {
        const d = tn.deviceAt(i)!;
        if (d.complianceState !== 'compliant' || tn.metaAt(i)!.inGrace || deviceReason(tn, i, filters, true, now)) continue;
        const st = tn.policyStatesFor(d.id)!.find((s) => s.state === 'compliant' && s.platformType !== 'all');
        if (st) fresh = { id: d.id, policyId: st.id };
      }
      expect(fresh, 'a compliant device to break').to.not.equal(undefined);
      tn.setPolicyCompliance(fresh!.id, fresh!.policyId, false);
      try {
        small.graph.resetStats();
        const second = await t.run();
        expect(second.summary.result).to.equal('completed');
        const after = new Set(second.violations.map((v) => v.key));
        expect(after.has(gone.key)).to.equal(false);
        expect(after.has(`${fresh!.id}:${fresh!.policyId}`)).to.equal(true);
        const expectedKeys = new Set([...before].filter((k) => k !== gone.key));
        expectedKeys.add(`${fresh!.id}:${fresh!.policyId}`);
        expect(after).to.deep.equal(expectedKeys);
        const truth = groundTruth(tn, DEFAULT_PROPS, Date.parse(second.summary.startedAt));
        // Violations passed on before with the same failing settings are not read again:
        // the only policy-state read is the new violation's device.
        expect(small.graph.stats.byRoute[STATES_ROUTE], 'policy-state reads of the second run').to.equal(1);
        expect(second.summary.details!.detailReads).to.equal(1);
        expect(second.summary.details!.detailsKnown).to.equal(after.size - 1);
        expectTruth(small, second, truth, DEFAULT_PROPS, new Set([...after].filter((k) => k !== `${fresh!.id}:${fresh!.policyId}`)));
        const appeared = second.violations.find((v) => v.key === `${fresh!.id}:${fresh!.policyId}`)!;
        expect(appeared.settings).to.have.length(1);
        expect(appeared.settings[0].state).to.equal('nonCompliant');
        // A third run, nothing changed: no policy state is read at all.
        small.graph.resetStats();
        const third = await t.run();
        expect(third.summary.result).to.equal('completed');
        expect(new Set(third.violations.map((v) => v.key))).to.deep.equal(after);
        expect(small.graph.stats.byRoute[STATES_ROUTE] ?? 0, 'policy-state reads of an unchanged run').to.equal(0);
      } finally {
        tn.setPolicyCompliance(gone.device.id, gone.policy.id, false);
        tn.setPolicyCompliance(fresh!.id, fresh!.policyId, true);
      }
    });
  });

  describe('re-enrolled twins kept between runs (compliance-twins.ts): the tenant-wide duplicate pass once a day only', () => {
    const LISTING = 'GET /deviceManagement/managedDevices';
    /** The device listings of the last run, by kind (the full pass, pages included, has no $filter). */
    function listings(e: SimEnv) {
      const urls = e.graph.requestLog.filter((r) => r.route === LISTING).map((r) => decodeURIComponent(r.url));
      return {
        noncompliant: urls.filter((u) => u.includes("complianceState eq 'noncompliant'")).length,
        enrolled: urls.filter((u) => /\$filter=enrolledDateTime gt \d{4}-/.test(u)).length,
        serialLookups: urls.filter((u) => u.includes('serialNumber eq ')).length,
        fullPass: urls.filter((u) => /\$select=id,serialNumber,lastSyncDateTime/.test(u) && !u.includes('$filter=')).length,
        all: urls.length,
      };
    }
    const keysOf = (vs: ComplianceViolation[]) => vs.map((v) => v.key).sort();
    const stateOf = (t: { node: TestNode }) => t.node.context().get('intuneComplianceRuns') as { twins?: { passAt: number; tenantRecords: number; serials: string } } | undefined;
    /** Is this serial among the kept twins? */
    const keeps = (t: { node: TestNode }, serial: string) => stateOf(t)!.twins!.serials.split('\n').some((l) => l.startsWith(serial.toUpperCase() + '|'));

    it('an unchanged tenant: the second run reads the records enrolled since (one page) instead of the 10 serial-number pages, and passes on the same violations', async () => {
      const t = await deploy(env);
      env.graph.resetStats();
      const first = await t.run();
      expect(first.summary.result, first.summary.stats.error).to.equal('completed');
      const d1 = first.summary.details!;
      expect(d1.duplicatePass).to.equal('noCache');
      expect(d1.duplicatePages).to.equal(10);
      expect(env.graph.stats.byRoute[LISTING]).to.equal((d1.devicePages as number) + 10 + (d1.twinLookups as number));
      const kept = stateOf(t)!.twins!;
      expect(kept).to.include({ passAt: Date.parse(first.summary.startedAt), tenantRecords: 10_000 });
      // only the serials of the judged (non-compliant) devices are kept, not the tenant's
      expect(kept.serials.split('\n').length).to.be.within(100, (d1.noncompliantDevices as number) + (d1.devicesReadById as number));

      env.graph.resetStats();
      const second = await t.run();
      expect(second.summary.result, second.summary.stats.error).to.equal('completed');
      const d2 = second.summary.details!;
      const kinds = listings(env);
      const byRoute = { ...env.graph.stats.byRoute };
      // The figure for the lead: Graph requests of an unchanged second run, per route.
      console.log(`      unchanged second run (10,000 devices): ${second.summary.stats.requests} requests, by route ${JSON.stringify(byRoute)}, device listings ${JSON.stringify(kinds)}`);
      expect(kinds.fullPass, 'serial-number pages of a full pass').to.equal(0);
      expect(kinds.enrolled, 'listing of the records enrolled since').to.equal(1);
      expect(kinds.noncompliant).to.equal(d2.devicePages);
      expect(kinds.serialLookups, 'nothing new to look up').to.equal(0);
      expect(kinds.all).to.equal(kinds.noncompliant + 1);
      expect(d2).to.include({ duplicatePass: null, duplicatePages: 0, enrolledPages: 1, twinLookups: 0 });
      // the run's only listings: the non-compliant devices and the new enrolments
      expect(byRoute[LISTING]).to.equal((d2.devicePages as number) + 1);
      expect(byRoute['GET /deviceManagement/deviceCompliancePolicies']).to.equal(1);
      expect(byRoute[REPORT_ROUTE]).to.equal(d2.reportPages);
      expect(byRoute[STATES_ROUTE] ?? 0, 'no policy states: nothing new').to.equal(0);
      // the same violations, the same skips (the duplicates among them)
      expect(keysOf(second.violations)).to.deep.equal(keysOf(first.violations));
      expect(second.summary.stats.skipped).to.deep.equal(first.summary.stats.skipped);
      expect(second.summary.stats.skipped.duplicate).to.be.greaterThan(10);
      expectTruth(env, second, groundTruth(env.tenant, DEFAULT_PROPS, Date.parse(second.summary.startedAt)), DEFAULT_PROPS, new Set(keysOf(first.violations)));
    });

    it('a re-enrolment between runs (a new record with the serial and a newer sync): the old record\u2019s violations are no longer passed on, without a full pass', async () => {
      const tn = small.tenant;
      const t = await deploy(small);
      const first = await t.run();
      expect(first.summary.result, first.summary.stats.error).to.equal('completed');
      const serialCount = new Map<string, number>();
      for (let i = 0; i < tn.positions; i++) {
        const s = tn.deviceAt(i)?.serialNumber;
        if (s) serialCount.set(s.toUpperCase(), (serialCount.get(s.toUpperCase()) ?? 0) + 1);
      }
      // a device with violations passed on, whose serial no other record has
      const old = first.violations.find((v) => v.device.serialNumber && serialCount.get(v.device.serialNumber.toUpperCase()) === 1)!;
      expect(old, 'a violating device with a serial of its own').to.not.equal(undefined);
      const oldKeys = first.violations.filter((v) => v.device.id === old.device.id).map((v) => v.key);
      const renewed = tn.addDevice({ serialNumber: old.device.serialNumber!, complianceState: 'compliant' });
      try {
        expect(Date.parse(renewed.lastSyncDateTime)).to.be.greaterThan(Date.parse(tn.deviceAt(tn.indexOf(old.device.id)!)!.lastSyncDateTime));
        small.graph.resetStats();
        const second = await t.run();
        expect(second.summary.result, second.summary.stats.error).to.equal('completed');
        const kinds = listings(small);
        expect(kinds.fullPass).to.equal(0);
        expect(kinds.enrolled).to.equal(1);
        expect(second.summary.details).to.include({ duplicatePass: null, twinLookups: 0 });
        const after = keysOf(second.violations.filter((v) => v.device.id !== renewed.id));
        expect(after).to.deep.equal(keysOf(first.violations).filter((k) => !oldKeys.includes(k)));
        // (its items skipped for another reason before are duplicates now too: the device rule comes first)
        expect(second.summary.stats.skipped.duplicate).to.be.at.least(first.summary.stats.skipped.duplicate + oldKeys.length);
      } finally {
        tn.removeDevice(renewed.id);
      }
    });

    it('a new violation whose serial is not kept: its twins are looked up by serial number, the older twin is a duplicate, the newer is passed on', async () => {
      // the 10,000-device tenant: re-enrolled pairs are mostly non-compliant (old records stop checking in); it has two compliant ones
      const tn = env.tenant;
      const t = await deploy(env);
      const first = await t.run();
      expect(first.summary.result, first.summary.stats.error).to.equal('completed');
      // a re-enrolled pair, both compliant and unnamed by the report, so its serial is not kept
      let pair: { older: string; newer: string; serial: string; policy: string; newerPolicy: string } | undefined;
      for (let i = 0; i < tn.size && !pair; i++) {
        const meta = tn.metaAt(i)!;
        if (meta.duplicateOf === null || tn.metaAt(meta.duplicateOf)!.placeholderSerial) continue;
        const [o, n] = [tn.deviceAt(i)!, tn.deviceAt(meta.duplicateOf)!];
        if (o.complianceState !== 'compliant' || n.complianceState !== 'compliant' || tn.reportRowsAt(i).length || tn.reportRowsAt(meta.duplicateOf).length) continue;
        if (tn.metaAt(meta.duplicateOf)!.inGrace || deviceReason(tn, meta.duplicateOf, parseFilterSettings(DEFAULT_PROPS), true, Date.now()) !== null) continue;
        const ps = tn.policyStatesFor(o.id)!.find((s) => s.state === 'compliant' && s.platformType !== 'all');
        const pn = tn.policyStatesFor(n.id)!.find((s) => s.state === 'compliant' && s.platformType !== 'all');
        if (ps && pn) pair = { older: o.id, newer: n.id, serial: o.serialNumber, policy: ps.id, newerPolicy: pn.id };
      }
      expect(pair, 'a compliant re-enrolled pair').to.not.equal(undefined);
      expect(keeps(t, pair!.serial)).to.equal(false);
      tn.setPolicyCompliance(pair!.older, pair!.policy, false);
      tn.setPolicyCompliance(pair!.newer, pair!.newerPolicy, false);
      try {
        env.graph.resetStats();
        const second = await t.run();
        expect(second.summary.result, second.summary.stats.error).to.equal('completed');
        const kinds = listings(env);
        expect(kinds.fullPass).to.equal(0);
        expect(kinds.serialLookups).to.equal(1);
        expect(second.summary.details).to.include({ duplicatePass: null, twinLookups: 1 });
        const lookup = env.graph.requestLog.find((r) => decodeURIComponent(r.url).includes('serialNumber eq '))!;
        expect(decodeURIComponent(lookup.url)).to.include(`serialNumber eq '${pair!.serial}'`);
        const keys = new Set(keysOf(second.violations));
        expect(keys.has(`${pair!.older}:${pair!.policy}`), 'the older twin is a duplicate').to.equal(false);
        expect(keys.has(`${pair!.newer}:${pair!.newerPolicy}`), 'the newer twin is passed on').to.equal(true);
        expect(second.summary.stats.skipped.duplicate).to.equal(first.summary.stats.skipped.duplicate + 1);
        expectTruth(env, second, groundTruth(tn, DEFAULT_PROPS, Date.parse(second.summary.startedAt)), DEFAULT_PROPS, new Set(keysOf(first.violations)));
        // and the serial is kept from now on
        expect(keeps(t, pair!.serial)).to.equal(true);
      } finally {
        tn.setPolicyCompliance(pair!.older, pair!.policy, true);
        tn.setPolicyCompliance(pair!.newer, pair!.newerPolicy, true);
      }
    });

    it('garbage in the stored twins, or twins of another tenant: a full pass, no failure', async () => {
      const t = await deploy(small);
      const first = await t.run();
      expect(first.summary.result, first.summary.stats.error).to.equal('completed');
      const ctx = t.node.context() as unknown as { get(k: string): Record<string, unknown>; set(k: string, v: unknown): void };
      const good = stateOf(t)!.twins!;
      for (const twins of ['garbage', 42, { passAt: 1 }, { ...good, serials: 'A|%E0%A4%A|1' }, { ...good, v: 2 }, { ...good, seenTo: good.passAt - 1 }]) {
        ctx.set('intuneComplianceRuns', { ...ctx.get('intuneComplianceRuns'), twins });
        small.graph.resetStats();
        const run = await t.run();
        expect(run.summary.result, `${JSON.stringify(twins)}: ${run.summary.stats.error}`).to.equal('completed');
        expect(run.summary.details!.duplicatePass, JSON.stringify(twins)).to.equal('noCache');
        expect(listings(small).fullPass).to.equal(2);
        expect(keysOf(run.violations)).to.deep.equal(keysOf(first.violations));
        expect(stateOf(t)!.twins).to.include({ v: 1 });
      }
      ctx.set('intuneComplianceRuns', { ...ctx.get('intuneComplianceRuns'), tenantId: 'another-tenant' });
      small.graph.resetStats();
      const other = await t.run();
      expect(other.summary.details!.duplicatePass).to.equal('noCache');
      // collapsing switched off: no twins read, none kept
      await helper.unload();
      const off = await deploy(small, { collapseDuplicates: false });
      small.graph.resetStats();
      const run = await off.run();
      expect(run.summary.details).to.include({ duplicatePass: null, duplicatePages: 0, enrolledPages: 0 });
      expect(stateOf(off)!.twins).to.equal(undefined);
    });
  });

  describe('one run at a time, cancel and close', () => {
    it('a second trigger during a run does not start a second run', async () => {
      const t = await deploy(small);
      small.graph.resetStats();
      small.graph.delayNext(1, 800, { path: 'getNoncompliantDevicesAndSettingsReport' });
      t.node.receive({ payload: 'first' });
      await waitFor(() => (small.graph.stats.byRoute[REPORT_ROUTE] ?? 0) > 0 || small.graph.stats.requests > 3, 20_000, 'the run to start');
      t.node.receive({ payload: 'second' });
      t.node.receive({ payload: 'third', mode: 'full' });
      await waitFor(() => t.summaries.length === 1, 30_000, 'the summary');
      await new Promise((r) => setTimeout(r, 300));
      expect(t.summaries).to.have.length(1);
      const warnings = t.node.warn.args.map((a) => String(a[0])).filter((w) => /never overlap/.test(w));
      expect(warnings).to.have.length(2);
      expect(warnings[0]).to.match(/^A run was requested \(message\) while run compliance-\S+ is still going/);
      expect(small.graph.stats.byRoute['GET /deviceManagement/deviceCompliancePolicies']).to.equal(1);
      expect(new Set(t.pages.map((p) => p.sync!.runId)).size).to.equal(1);
    });

    it('msg.mode "cancel" aborts the running run and tells the sinks', async () => {
      const t = await deploy(small);
      small.graph.delayNext(1, 1500, { path: 'getNoncompliantDevicesAndSettingsReport' });
      t.node.receive({ payload: 'go' });
      await new Promise((r) => setTimeout(r, 400));
      t.node.receive({ mode: 'cancel' });
      await waitFor(() => t.summaries.length === 1, 10_000, 'the summary');
      const sum = t.summaries[0].payload as RunSummary;
      expect(sum.result).to.equal('aborted');
      const last = t.pages[t.pages.length - 1];
      expect(last.sync!.last).to.equal(true);
      expect(last.sync!.stats!.aborted).to.equal(true);
      expect(t.errors).to.have.length(0);
      await new Promise((r) => setTimeout(r, 1200));
    });

    it('a redeploy mid-run stops it: no more requests, no last page, no summary', async () => {
      const t = await deploy(env);
      env.graph.delayNext(40, 250, { path: '$batch' });
      t.node.receive({ payload: 'go' });
      await waitFor(() => (env.graph.stats.byRoute[STATES_ROUTE] ?? 0) > 0, 30_000, 'the first policy-state reads');
      const { flow, credentials } = flowFor(env, { staleDays: 1 });
      const t0 = Date.now();
      await helper.setFlows(flow as never, 'nodes', credentials as never);
      expect(Date.now() - t0, 'close waited for the run to stop').to.be.below(3000);
      const after = env.graph.stats.requests;
      await new Promise((r) => setTimeout(r, 1000));
      expect(env.graph.stats.requests - after, 'requests after the redeploy').to.equal(0);
      expect(t.pages.some((p) => p.sync!.last), 'a last page after a stop').to.equal(false);
      expect(t.summaries).to.have.length(0);
      expect(t.errors).to.have.length(0);
    });
  });

  describe('errors through done(err)', () => {
    async function firstError(props: Partial<Props> & Record<string, unknown>, msg: Record<string, unknown> = {}, o: Parameters<typeof flowFor>[2] = {}) {
      const t = await deploy(small, props as Partial<Props>, o);
      t.node.receive({ payload: 'go', ...msg });
      await waitFor(() => t.errors.length > 0, 20_000, 'a caught error');
      return { t, message: t.errors[0].error!.message };
    }

    it('bad configuration: no policy platform, an unknown one, a negative schedule, no device platform, no connection, a missing intune-devices node', async () => {
      const a = await firstError({ policyPlatforms: [] });
      expect(a.message).to.match(/^Error: No policy platform is selected/);
      expect(a.t.node.status.args[a.t.node.status.args.length - 1][0]).to.include({ fill: 'red', shape: 'ring' });
      expect(a.t.pages).to.have.length(0);
      await helper.unload();
      expect((await firstError({ policyPlatforms: ['windows', 'symbian'] as never })).message).to.match(/Unknown policy platform\(s\) "symbian"/);
      await helper.unload();
      expect((await firstError({ everyMinutes: -10 } as never)).message).to.match(/"Full run every \(minutes\)" must be 0 \(off\) or a positive number of minutes, not -10/);
      await helper.unload();
      expect((await firstError({ platformWindows: false, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false })).message).to.match(
        /^Error: No platform is selected: switch on at least one/,
      );
      await helper.unload();
      expect((await firstError({}, {}, { withoutConfig: true })).message).to.match(/^Error: No Intune connection is selected/);
      await helper.unload();
      expect((await firstError({ filtersFrom: 'no-such-node' })).message).to.match(/intune-devices node no-such-node whose device filters this node uses is not deployed/);
      await helper.unload();
      const bad = await firstError({ filtersFrom: 'dev' }, {}, { devices: { platformWindows: false, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, platformOther: false } });
      expect(bad.message).to.match(/^Error: The filters of intune-devices "CMDB import": No platform is selected/);
      await helper.unload();
      // the chosen node's environment references are resolved as the runtime does for that node
      const viaEnv = await firstError({ filtersFrom: 'dev' }, {}, { devices: { staleDays: '${STALE_DAYS}' }, env: { STALE_DAYS: 'soon' } });
      expect(viaEnv.message).to.match(/"Skip devices not seen for more than N days" must be a whole number of days, 0 or more \(0 = keep all\), not "soon"/);
    });

    it('bad input: msg.mode "incremental" and unknown modes', async () => {
      const inc = await firstError({}, { mode: 'incremental' });
      expect(inc.message).to.match(/^Error: intune-compliance makes full runs only/);
      expect(inc.t.summaries).to.have.length(0);
      await helper.unload();
      const odd = await firstError({}, { mode: { full: true } });
      expect(odd.message).to.equal('Error: Unknown msg.mode {"full":true}: use "full" or "cancel", or leave msg.mode out for a full run');
    });

    it('a misconfigured connection: red status with its reason, and runs fail with it', async () => {
      const t = await deploy(small, {}, { credentials: { clientSecret: '' } });
      const first = t.node.status.args[0][0];
      expect(first).to.include({ fill: 'red', shape: 'ring' });
      expect(first.runtimeText).to.match(/^connection: .*client secret is missing/i);
      expect(first.text).to.match(/^intune-compliance\.status\.connection \{"text":".*client secret is missing.*"\}$/i);
      t.node.receive({ payload: 'go' });
      await waitFor(() => t.errors.length > 0, 10_000, 'a caught error');
      expect(t.errors[0].error!.message).to.match(/^Error: Compliance run compliance-\S+ failed: The client secret is missing/);
      expect((t.summaries[0].payload as RunSummary).result).to.equal('failed');
    });

    it('Graph refusing the report: the run fails, sinks are told, the error says what to grant', async () => {
      const t = await deploy(small);
      small.graph.failNext(1, { status: 403, path: 'getNoncompliantDevicesAndSettingsReport' });
      t.node.receive({ payload: 'go' });
      await waitFor(() => t.errors.length > 0, 20_000, 'a caught error');
      expect(t.errors[0].error!.message).to.match(/^Error: Compliance run compliance-\S+ failed: .*HTTP 403.*grant the app DeviceManagementConfiguration\.Read\.All/);
      const sum = t.summaries[0].payload as RunSummary;
      expect(sum.result).to.equal('failed');
      const last = t.pages[t.pages.length - 1];
      expect(last.sync).to.deep.include({ last: true });
      expect(last.sync!.stats!.aborted).to.equal(true);
    });
  });

  describe('policy states that cannot be read', () => {
    it('settings fall back to the report\u2019s rows (with a warning); a policy whose platform only those states tell fails the run', async () => {
      const t = await deploy(small);
      small.graph.failNext(3, { status: 500, path: 'deviceCompliancePolicyStates', scope: 'batchItem' });
      const run = await t.run();
      expect(run.summary.result, run.summary.stats.error).to.equal('completed');
      expect(run.summary.details!.detailFailures).to.equal(3);
      const warned = t.node.warn.args.map((a) => String(a[0])).find((w) => /policy states of 3 device\(s\) could not be read/.test(w));
      expect(warned, 'a warning').to.be.a('string');
      const truth = groundTruth(small.tenant, DEFAULT_PROPS, Date.parse(run.summary.startedAt));
      expect(new Set(run.violations.map((v) => v.key))).to.deep.equal(new Set(truth.emitted.keys()));
      const bare = run.violations.filter((v) => v.settings.every((x) => x.currentValue === null && x.errorDescription === null));
      expect(bare.length).to.be.greaterThan(0);
      for (const v of bare) expect(v.settings.map((x) => x.name)).to.deep.equal(truth.emitted.get(v.key)!.settings.map((x) => x.name));
      await helper.unload();

      const strict = await deploy(small, { settingDetails: false, policyPlatforms: ['windows', 'all'] });
      small.graph.failNext(1, { status: 500, path: 'deviceCompliancePolicyStates', scope: 'batchItem' });
      strict.node.receive({ payload: 'go' });
      await waitFor(() => strict.errors.length > 0, 20_000, 'a caught error');
      expect(strict.errors[0].error!.message).to.match(/could not be read .*so the platform of their policy "Default Device Compliance Policy" is unknown/);
      expect((strict.summaries[0].payload as RunSummary).result).to.equal('failed');
    });
  });

  describe('schedule and editor', () => {
    it('runs on its own schedule (first run 10 s after the deploy) and remembers when', async () => {
      const t = await deploy(small, { everyMinutes: 1 } as Partial<Props>);
      await waitFor(() => t.summaries.length === 1, 25_000, 'the scheduled run');
      const sum = t.summaries[0].payload as RunSummary;
      expect(sum).to.deep.include({ trigger: 'schedule', mode: 'full', result: 'completed' });
      expect(t.pages[t.pages.length - 1].sync).to.deep.include({ last: true, runId: sum.runId });
      expect(t.node.context().get('intuneComplianceRuns')).to.deep.include({ v: 1, lastRunAt: sum.startedAt, tenantId: small.tenantId });
    });

    it('lists the tenant’s policies for the policy picker, through a deployed connection only', async () => {
      await deploy(small);
      const res = await helper.request().get('/intune-compliance/policies').query({ intune: 'cfg1' }).expect(200);
      expect(res.body.ok).to.equal(true);
      const want = small.tenant.policies.map((x) => ({ id: x.id, name: x.displayName, platform: x.platformType, family: familyOf(x.platformType) }));
      expect(res.body.policies).to.have.deep.members(want);
      const bad = await helper.request().get('/intune-compliance/policies').query({ intune: 'nope' }).expect(400);
      expect(bad.body).to.deep.include({ ok: false, code: 'noConnection' });
    });
  });

  describe('status', () => {
    it('shows the phases, throttling and the result; says when the state is only in memory', async () => {
      const t = await deploy(small);
      small.graph.throttleNext(1, { path: 'getNoncompliantDevicesAndSettingsReport', retryAfter: 1 });
      const { summary } = await t.run();
      expect(summary.stats.throttled).to.equal(1);
      const texts = t.node.status.args.map((a) => `${a[0].fill}/${a[0].shape}: ${a[0].runtimeText}`);
      expect(texts[0]).to.equal('grey/ring: idle · state in memory only');
      const keys = t.node.status.args.map((a) => String(a[0].text));
      expect(keys[0], 'what the editor translates').to.equal('intune-compliance.status.idle {"$+":[{"$t":"intune-compliance.status.notPersistent"}]}');
      expect(keys).to.include('intune-compliance.status.policies');
      expect(keys).to.include('intune-compliance.status.throttled {"seconds":1}');
      expect(texts).to.include('blue/dot: full: starting');
      expect(texts).to.include('blue/dot: full: policies');
      expect(texts).to.include('blue/dot: full: non-compliant devices, page 1');
      expect(texts).to.include('blue/dot: full: duplicates, page 1');
      expect(texts).to.include('yellow/ring: throttled, waiting 1 s');
      expect(texts).to.include('blue/dot: full: report page 1');
      const skipped = Object.values(summary.stats.skipped).reduce((a, b) => a + b, 0);
      expect(texts[texts.length - 1]).to.match(new RegExp(`^green/dot: ${summary.stats.emitted} violations, ${skipped} skipped · \\d\\d:\\d\\d UTC · state in memory only$`));
      expect(t.node.context().get('intuneComplianceRuns')).to.deep.include({ v: 1, lastRunAt: summary.startedAt });
    });
  });
});
