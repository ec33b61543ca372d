/**
 * intune-devices in Node-RED (node-red-node-test-helper) against the
 * simulated identity platform and Graph with a 10,000-device tenant. What a
 * run emits and skips is compared with the generator's ground truth
 * (SimTenant.metaAt: platform, ownership, user, deleted user, re-enrolment,
 * placeholder serial), not with our own parsing of the records.
 */
import path from 'node:path';
import { expect } from 'chai';
import helper from 'node-red-node-test-helper';
import { startSimEnv, configFlow, ALL_ROLES, type SimEnv } from './support/sim-env';
import type { Device, RunSummary, SyncEnvelope } from '../nodes/lib/contracts';
import { runProgress } from '../nodes/lib/run/run-progress';
import { DEFAULT_SKIP_STATES, SKIP_REASONS, parseFilterSettings } from '../nodes/lib/devices/device-filters';
import { DELETED_USER_DEVICE_NAME, deviceSelect } from '../nodes/lib/devices/device-normaliser';
import type { SimTenant } from '../sim/tenant';
import { deviceGroundTruth as groundTruth } from './support/device-fixtures';

helper.init(require.resolve('node-red'));
const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [nodeRedDir] }));
// The compiled nodes of the same build as this test file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const configNode = require(path.join(__dirname, '..', 'nodes', 'intune-config', 'intune-config.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const devicesNode = require(path.join(__dirname, '..', 'nodes', 'intune-devices', 'intune-devices.js'));

const STATE_KEY = 'intuneDevicesSync';

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

const DEFAULT_PROPS = {
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
  graphVersion: 'v1.0',
  overlapMinutes: 30,
  fullEveryHours: 0,
  incrementalEveryMinutes: 0,
  triggerMode: 'full',
  instance: '',
  store: '',
};

describe('intune-devices', function () {
  this.timeout(60_000);
  let env: SimEnv;
  let small: SimEnv;

  before(async () => {
    [env, small] = await Promise.all([startSimEnv({ devices: 10_000, seed: 11 }), startSimEnv({ devices: 300, seed: 3 })]);
    // Directory look-ups of deleted users: keep the sims' directory limits out of the way of back-to-back runs.
    for (const e of [env, small]) e.graph.setLimits({ directory: { S: 1_000_000, M: 1_000_000, L: 1_000_000 } });
  });
  after(async () => {
    await Promise.all([env?.stop(), small?.stop()]);
  });
  afterEach(async () => {
    for (const e of [env, small]) e?.graph.clearFaults();
    await helper.unload();
  });

  function flowFor(e: SimEnv, props: Record<string, unknown> = {}, o: { withoutConfig?: boolean; credentials?: Record<string, unknown> } = {}) {
    const { nodes, credentials } = configFlow(e, { overrides: { requestsPer20s: 100_000 }, credentials: o.credentials });
    const flow: Record<string, unknown>[] = [
      { id: 'f1', type: 'tab', label: 'devices' },
      // Node-RED's tls-config reads n.cert/n.key unconditionally: without them it cannot start (configFlow leaves them out).
      ...nodes.map((n) => (n.type === 'tls-config' ? { cert: '', key: '', ...n } : n)),
      { id: 'dev', type: 'intune-devices', z: 'f1', name: '', intune: o.withoutConfig ? '' : 'cfg1', ...DEFAULT_PROPS, ...props, wires: [['out'], ['sum']] },
      { id: 'out', type: 'helper', z: 'f1' },
      { id: 'sum', type: 'helper', z: 'f1' },
      { id: 'c1', type: 'catch', z: 'f1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f1' },
    ];
    return { flow, credentials };
  }

  async function deploy(e: SimEnv, props: Record<string, unknown> = {}, o: { withoutConfig?: boolean; credentials?: Record<string, unknown> } = {}) {
    const { flow, credentials } = flowFor(e, props, o);
    await helper.load([tlsNode, configNode, devicesNode], flow as never, credentials as never);
    const dev = helper.getNode('dev') as unknown as TestNode;
    const pages: Msg[] = [];
    const summaries: Msg[] = [];
    const errors: Msg[] = [];
    (helper.getNode('out') as unknown as TestNode).on('input', (m) => pages.push(m));
    (helper.getNode('sum') as unknown as TestNode).on('input', (m) => summaries.push(m));
    (helper.getNode('caught') as unknown as TestNode).on('input', (m) => errors.push(m));
    return {
      dev,
      pages,
      summaries,
      errors,
      /** Sends a trigger and waits for the run's summary. */
      async run(msg: Record<string, unknown> = {}): Promise<{ pages: Msg[]; summary: RunSummary }> {
        const p0 = pages.length;
        const s0 = summaries.length;
        dev.receive({ payload: 'go', ...msg });
        await waitFor(() => summaries.length > s0, 50_000, 'the run summary');
        await new Promise((r) => setImmediate(r));
        return { pages: pages.slice(p0), summary: summaries[s0].payload as RunSummary };
      },
    };
  }

  function devicesOf(pages: Msg[]): Device[] {
    return pages.flatMap((p) => p.payload as Device[]);
  }

  function expectEnvelope(pages: Msg[], summary: RunSummary) {
    expect(pages.length, 'pages').to.be.greaterThan(0);
    pages.forEach((p, k) => {
      expect(p.topic).to.equal('intune/devices');
      expect(p.sync).to.deep.include({ runId: summary.runId, instance: summary.instance, mode: summary.mode, page: k + 1, last: k === pages.length - 1, startedAt: summary.startedAt });
      // at most one Graph page (1000) per message: memory stays bounded by a page
      expect((p.payload as unknown[]).length).to.be.at.most(1000);
      if (k < pages.length - 1) expect(p.sync!.stats).to.equal(undefined);
    });
    expect(pages[pages.length - 1].sync!.stats).to.deep.equal(summary.stats);
  }

  describe('full runs against the 10,000-device tenant', () => {
    const combos: Array<{ title: string; props: Record<string, unknown> }> = [
      { title: 'defaults (every platform, company computers, deleted users out, retire/wipe pending out)', props: {} },
      {
        title: 'Windows only, personal included, only devices with a primary user, stale after 90 days',
        props: { platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, includePersonal: true, onlyWithPrimaryUser: true, staleDays: 90 },
      },
      {
        title: 'phones, tablets and Macs, deleted users included, no state skipped, stale after 30 days, beta',
        props: { platformWindows: false, platformLinux: false, includeDeletedUser: true, skipStates: [], staleDays: 30, graphVersion: 'beta' },
      },
    ];

    for (const c of combos) {
      it(`emits exactly the ground truth and counts every skip: ${c.title}; the preview agrees`, async () => {
        const props = { ...DEFAULT_PROPS, ...c.props };
        const t = await deploy(env, props);
        const { pages, summary } = await t.run();
        expect(summary.result, summary.stats.error).to.equal('completed');
        expect(summary.mode).to.equal('full');
        expectEnvelope(pages, summary);
        // Page 1 names the users of every device the duplicate pass read (filtered or not), for sinks that look people up ahead.
        const upns = new Set<string>();
        for (const r of env.tenant.iterate()) {
          // The address the device carries: its UPN (Android Enterprise's GUID prefix cut) or else its e-mail address.
          const upn = /android/i.test(r.operatingSystem ?? '') ? r.userPrincipalName?.replace(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}_/i, '') : r.userPrincipalName;
          const a = (upn?.trim() || r.emailAddress?.trim() || '').toLowerCase();
          if (a.includes('@')) upns.add(a);
        }
        expect([...(pages[0].sync!.userPrincipalNames ?? [])].sort()).to.deep.equal([...upns].sort());
        expect(pages.slice(1).filter((p) => p.sync!.userPrincipalNames !== undefined), 'only on page 1').to.deep.equal([]);
        const truth = groundTruth(env.tenant, parseFilterSettings(props), Date.parse(summary.startedAt));
        const devices = devicesOf(pages);
        const ids = devices.map((d) => d.id);
        expect(new Set(ids).size, 'no device twice').to.equal(ids.length);
        expect(ids.length).to.equal(truth.kept.size);
        expect(ids.filter((id) => !truth.kept.has(id)), 'emitted but not in the truth').to.deep.equal([]);
        expect(summary.stats.items).to.equal(truth.read);
        expect(summary.stats.emitted).to.equal(truth.kept.size);
        expect(summary.stats.skipped).to.deep.equal(truth.skipped);
        expect(truth.skipped.duplicate, 'the tenant has re-enrolled duplicates').to.be.greaterThan(20);
        expect(summary.stats.pages).to.equal(10);
        expect(summary.instance).to.equal(env.tenantId);

        // normalisation against the generator
        const byId = new Map<string, number>();
        for (let i = 0; i < env.tenant.positions; i++) byId.set(env.tenant.deviceIdAt(i), i);
        for (const d of devices) {
          const i = byId.get(d.id)!;
          const meta = env.tenant.metaAt(i)!;
          const raw = env.tenant.deviceAt(i)!;
          // a re-enrolment keeps its original's meta, but the record has its own agent
          expect(d.coManaged, d.id).to.equal(raw.managementAgent.startsWith('configurationManagerClient'));
          if (meta.duplicateOf === null) expect(d.coManaged, d.id).to.equal(meta.coManaged);
          expect(d.ownership, d.id).to.equal(meta.ownership);
          expect(d.userDeleted, d.id).to.equal(meta.userDeleted);
          if (meta.userDeleted) {
            expect(d.name).to.equal(DELETED_USER_DEVICE_NAME);
            expect(d.user).to.equal(null);
          } else if (meta.userIndex === null) expect(d.user).to.equal(null);
          else expect(d.user!.id).to.equal(env.tenant.deviceAt(i)!.userId);
          if (meta.duplicateOf === null) expect(d.serialNumber === null, d.rawSerialNumber ?? '').to.equal(meta.placeholderSerial);
          expect(d.deepLinks.overview).to.equal(`https://intune.microsoft.com/${env.tenantId}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/${d.id}`);
          if (props.graphVersion === 'beta') expect(d.joinType, d.id).to.be.a('string');
          else expect(d.joinType).to.equal(null);
        }
        if (props.includeDeletedUser) expect(devices.some((d) => d.userDeleted)).to.equal(true);

        // the editor's preview, for the same (undeployed) settings
        const res = await helper
          .request()
          .post('/intune-devices/preview')
          .send({ ...props, intune: 'cfg1' })
          .expect(200);
        expect(res.body).to.deep.include({ ok: true, total: truth.read, imported: truth.kept.size });
        expect(res.body.skipped).to.deep.equal(truth.skipped);
        const perPlatform = summary.details!.platforms as Record<string, { read: number; kept: number }>;
        expect(res.body.platforms).to.deep.equal(perPlatform);
      });
    }

    it('the preview makes one listing with a minimal $select (duplicates judged after the fact) and refuses settings a node would refuse', async () => {
      await deploy(env);
      env.graph.resetStats();
      const res = await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, intune: 'cfg1' }).expect(200);
      expect(res.body.ok).to.equal(true);
      const selects = env.graph.requestLog
        .filter((r) => /managedDevices\?/.test(r.url) && !/skiptoken/i.test(r.url))
        .map((r) => decodeURIComponent(new URL(r.url, 'https://x').searchParams.get('$select') ?? ''));
      expect(selects, 'no duplicate pass: one listing').to.have.length(1);
      expect(selects[0].split(',')).to.include.members(['serialNumber', 'lastSyncDateTime']);
      expect(selects[0].split(',').length).to.be.at.most(9);
      expect(selects[0].split(',')).to.not.include('model');
      expect(res.body.pages).to.equal(Math.ceil(env.tenant.liveCount / 1000));
      const bad = await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, platformWindows: false, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, intune: 'cfg1' }).expect(400);
      expect(bad.body).to.deep.include({ ok: false, field: 'platforms' });
      const noConn = await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, intune: 'nope' }).expect(400);
      expect(noConn.body.message).to.match(/deployed/);
    });
  });

  describe('preview progress (GET /intune-devices/preview/progress/:id)', () => {
    const PROGRESS_ID = 'node-test-progress-0001';

    it('while the Preview reads a slowed tenant page by page, answers what it has so far (growing, self-consistent, counts only); 404 once the Preview answered', async () => {
      await deploy(small);
      // 300 devices in pages of 25 with 150 ms per request: a dozen pages over about two seconds.
      small.graph.setPageSize(25);
      small.graph.setLatency(150);
      try {
        expect((await helper.request().get(`/intune-devices/preview/progress/${PROGRESS_ID}`).expect(404)).body).to.deep.include({ ok: false, code: 'unknown' });
        let answered = false;
        const post = helper
          .request()
          .post('/intune-devices/preview')
          .send({ ...DEFAULT_PROPS, intune: 'cfg1', progressId: PROGRESS_ID })
          .then((r) => {
            answered = true;
            return r;
          });
        const seen: Array<Record<string, any>> = [];
        while (!answered) {
          const r = await helper.request().get(`/intune-devices/preview/progress/${PROGRESS_ID}`);
          // 404 before the POST has begun, or after it answered; anything else is a failure.
          if (r.status === 200) seen.push(r.body);
          else expect(r.status, JSON.stringify(r.body)).to.equal(404);
          // Poll pace (not an assertion): about three looks per Graph page.
          await new Promise((res) => setTimeout(res, 50));
        }
        const res = await post;
        expect(res.status).to.equal(200);
        const final = res.body;
        expect(final.pages).to.equal(Math.ceil(small.tenant.liveCount / 25));

        const totals = seen.map((p) => p.total);
        expect(new Set(totals.filter((n) => n > 0 && n < final.total)).size, `partial totals seen: ${totals.join(',')}`).to.be.at.least(2);
        for (const [k, p] of seen.entries()) {
          expect(p, `look ${k}`).to.include({ ok: true, running: true, stage: 'devices' });
          expect(Object.keys(p).sort()).to.deep.equal(['elapsedMs', 'imported', 'ok', 'pages', 'platforms', 'requests', 'running', 'skipped', 'stage', 'total', 'userLookupsPending']);
          // Every device read so far has exactly one verdict: passed on, or skipped for one reason.
          const skipped = Object.values(p.skipped as Record<string, number>).reduce((a, b) => a + b, 0);
          expect(p.imported + skipped, `look ${k}: passed on + skipped = read`).to.equal(p.total);
          const perPlatform = Object.values(p.platforms as Record<string, { read: number; kept: number }>);
          expect(perPlatform.reduce((a, c) => a + c.read, 0)).to.equal(p.total);
          expect(perPlatform.reduce((a, c) => a + c.kept, 0)).to.equal(p.imported);
          expect(p.total).to.be.at.most(final.total);
          expect(p.pages).to.be.at.most(final.pages);
          if (p.pages < final.pages) expect(p.total, 'full pages so far').to.equal(p.pages * 25);
          if (k > 0) {
            expect(p.total, 'never shrinks').to.be.at.least(seen[k - 1].total);
            expect(p.elapsedMs).to.be.at.least(seen[k - 1].elapsedMs);
            expect(p.requests).to.be.at.least(seen[k - 1].requests);
          }
        }
        // Counts only: no secret, tenant or setting in any answer.
        const text = JSON.stringify(seen);
        expect(text).to.not.include(small.secretApp.secret);
        expect(text).to.not.include(small.tenantId);

        // Finished: removed when the POST answered.
        expect((await helper.request().get(`/intune-devices/preview/progress/${PROGRESS_ID}`).expect(404)).body).to.deep.include({ ok: false, code: 'unknown' });

        // The final answer is what it was without a progress id.
        small.graph.setLatency(0);
        const plain = (await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, intune: 'cfg1' }).expect(200)).body;
        for (const k of ['total', 'imported', 'skipped', 'platforms', 'pages', 'requests', 'userLookupsPending', 'warnings']) expect(final[k], k).to.deep.equal(plain[k]);
      } finally {
        small.graph.setLatency(0);
        small.graph.setPageSize(1000);
      }
    });

    it('refuses a malformed progress id (400 invalidSettings) before reading anything; the GET knows no such Preview', async () => {
      await deploy(small);
      small.graph.resetStats();
      for (const bad of ['short', 'x'.repeat(65), 'has space12', 'a/b/c/d/e/f', 42]) {
        const r = await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, intune: 'cfg1', progressId: bad }).expect(400);
        expect(r.body, JSON.stringify(bad)).to.deep.include({ ok: false, code: 'invalidSettings', field: 'progressId' });
      }
      expect(small.graph.requestLog.filter((r) => /managedDevices/.test(r.url)), 'no listing for a refused Preview').to.deep.equal([]);
      await helper.request().get('/intune-devices/preview/progress/short').expect(404);
    });
  });

  describe('incremental runs', () => {
    it('after changing 25 devices, emits those 25 and the overlap window, not the tenant', async () => {
      const t = await deploy(env);
      // no earlier run: an incremental request runs as full, and says so
      const first = await t.run({ mode: 'incremental' });
      expect(first.summary).to.deep.include({ mode: 'full', requestedMode: 'incremental', result: 'completed' });
      expect(first.pages.every((p) => p.sync!.mode === 'full')).to.equal(true);
      const state = t.dev.context().get(STATE_KEY) as { watermark: string; lastFullAt: string; tenantId: string };
      expect(state.tenantId).to.equal(env.tenantId);
      const watermark = Date.parse(state.watermark);
      expect(watermark).to.be.at.most(Date.parse(first.summary.startedAt));

      const keptIds = devicesOf(first.pages).map((d) => d.id);
      const changed: string[] = [];
      for (let k = 0; changed.length < 25; k += 97) {
        const id = keptIds[k % keptIds.length];
        if (!changed.includes(id) && env.tenant.metaAt(env.tenant.indexOf(id)!)!.duplicateOf === null) changed.push(id);
      }
      for (const id of changed) env.tenant.touchDevice(id);

      env.graph.resetStats();
      const second = await t.run({ mode: 'incremental' });
      expect(second.summary).to.deep.include({ mode: 'incremental', requestedMode: 'incremental', result: 'completed' });
      expectEnvelope(second.pages, second.summary);
      expect(second.pages.some((p) => p.sync!.userPrincipalNames !== undefined), 'no duplicate pass, no users named ahead').to.equal(false);
      const since = watermark - 30 * 60_000;
      expect(second.summary.details!.since).to.equal(new Date(since).toISOString());
      const truth = groundTruth(env.tenant, parseFilterSettings(DEFAULT_PROPS), Date.parse(second.summary.startedAt), since);
      const ids = devicesOf(second.pages).map((d) => d.id);
      expect(ids).to.include.members(changed);
      expect(new Set(ids)).to.deep.equal(truth.kept);
      expect(second.summary.stats.skipped).to.deep.equal(truth.skipped);
      expect(ids.length, 'the changed devices plus a small overlap, not the tenant').to.be.below(150);
      // Graph was asked for the window only (gt, the only operator lastSyncDateTime allows besides lt)
      const filters = env.graph.requestLog
        .filter((r) => /managedDevices\?/.test(r.url))
        .map((r) => new URL(r.url, 'https://x').searchParams.get('$filter'));
      // One listing of the window: duplicates are judged from the window itself, no second pass.
      expect(filters, 'Graph listings of the incremental run').to.have.length(1);
      expect(filters.every((f) => f === `lastSyncDateTime gt ${new Date(since).toISOString()}`)).to.equal(true);
      // the watermark moved to the changed devices
      const after = t.dev.context().get(STATE_KEY) as { watermark: string; lastFullAt: string };
      expect(Date.parse(after.watermark)).to.be.greaterThan(watermark);
      expect(after.lastFullAt).to.equal(first.summary.startedAt);
    });
  });

  describe('one run at a time, and redeploys', () => {
    it('a second trigger during a run does not start a second run', async () => {
      const t = await deploy(small);
      small.graph.resetStats();
      small.graph.delayNext(1, 800, { path: 'managedDevices' });
      t.dev.receive({ payload: 'first' });
      await waitFor(() => small.graph.stats.requests > 0 || t.dev.warn.args.length > 0, 10_000, 'the first run to start');
      t.dev.receive({ payload: 'second', mode: 'incremental' });
      t.dev.receive({ payload: 'third' });
      await waitFor(() => t.summaries.length === 1, 20_000, 'the summary');
      await new Promise((r) => setTimeout(r, 300));
      expect(t.summaries).to.have.length(1);
      const warnings = t.dev.warn.args.map((a) => String(a[0])).filter((w) => /never overlap/.test(w));
      expect(warnings).to.have.length(2);
      expect(warnings[0]).to.match(/incremental run was requested \(message\) while run devices-/);
      // one duplicate pass + one device pass: the skipped triggers reached Graph never
      expect(small.graph.stats.byRoute['GET /deviceManagement/managedDevices']).to.equal(2);
      expect(new Set(t.pages.map((p) => p.sync!.runId)).size).to.equal(1);
    });

    it('a redeploy mid-run stops it cleanly: no more requests, no last page, no watermark', async () => {
      const t = await deploy(env);
      // slow pages so that the run is surely mid-way when the flow is redeployed
      env.graph.delayNext(50, 150, { path: 'managedDevices' });
      t.dev.receive({ payload: 'go' });
      await waitFor(() => t.pages.length >= 1, 30_000, 'the first page');
      const before = env.graph.stats.requests;
      const t0 = Date.now();
      const { flow, credentials } = flowFor(env, { ...DEFAULT_PROPS, staleDays: 1 });
      await helper.setFlows(flow as never, 'nodes', credentials as never);
      const closeMs = Date.now() - t0;
      await new Promise((r) => setTimeout(r, 1500));
      expect(closeMs, 'close waited for the run to stop').to.be.below(2000);
      expect(env.graph.stats.requests - before, 'requests after the redeploy').to.be.at.most(1);
      expect(t.pages.some((p) => p.sync!.last), 'a last page after a stop').to.equal(false);
      expect(t.summaries).to.have.length(0);
      expect(t.errors).to.have.length(0);
      const fresh = helper.getNode('dev') as unknown as TestNode;
      expect(fresh.context().get(STATE_KEY)).to.equal(undefined);
    });

    it('msg.mode "cancel" aborts the running run and tells the sinks', async () => {
      const t = await deploy(small);
      small.graph.delayNext(3, 500, { path: 'managedDevices' });
      t.dev.receive({ payload: 'go' });
      await new Promise((r) => setTimeout(r, 200));
      t.dev.receive({ mode: 'cancel' });
      await waitFor(() => t.summaries.length === 1, 10_000, 'the summary');
      const sum = t.summaries[0].payload as RunSummary;
      expect(sum.result).to.equal('aborted');
      const last = t.pages[t.pages.length - 1];
      expect(last.sync!.last).to.equal(true);
      expect(last.sync!.stats!.aborted).to.equal(true);
      expect(t.dev.context().get(STATE_KEY)).to.equal(undefined);
      // let the sim finish the delayed request the cancelled run left behind
      await new Promise((r) => setTimeout(r, 600));
    });
  });

  describe('flow control (run-progress)', () => {
    it('reads Graph no further than 4 pages ahead of a sink that reports its progress, and on when it catches up', async () => {
      const t = await deploy(env, { includePersonal: true, checkDeletedUsers: false, collapseDuplicates: false });
      const out = helper.getNode('out') as unknown as TestNode;
      // A slow sink: takes part like intune-4me and intune-acmp do, finishing nothing for now.
      out.on('input', (m) => runProgress.received(m.sync!.runId, 'slow-sink', m.sync!.page));
      const s0 = t.summaries.length;
      t.dev.receive({ payload: 'go' });
      await waitFor(() => t.pages.length >= 5, 30_000, 'five pages');
      await new Promise((r) => setTimeout(r, 500));
      expect(t.pages.length, 'held back: page 5 is sent, page 6 waits for page 1').to.equal(5);
      const runId = t.pages[0].sync!.runId;
      const requests = env.graph.stats.byRoute['GET /deviceManagement/managedDevices'];
      runProgress.finished(runId, 'slow-sink', 1);
      await waitFor(() => t.pages.length >= 6, 10_000, 'page 6');
      await new Promise((r) => setTimeout(r, 300));
      expect(t.pages.length).to.equal(6);
      expect(env.graph.stats.byRoute['GET /deviceManagement/managedDevices']).to.be.above(requests);
      // the sink catches up and leaves on the last page
      for (let p = 2; ; p++) {
        runProgress.finished(runId, 'slow-sink', p);
        await new Promise((r) => setTimeout(r, 20));
        if (t.summaries.length > s0) break;
        if (p > 20) throw new Error('the run did not end');
      }
      runProgress.release(runId, 'slow-sink');
      const sum = t.summaries[s0].payload as RunSummary;
      expect(sum.result).to.equal('completed');
      // full pages (filters dropped some devices of each Graph page), the rest on the last
      const sizes = t.pages.map((p) => (p.payload as unknown[]).length);
      expect(sizes.slice(0, -1).every((n) => n === 1000), JSON.stringify(sizes)).to.equal(true);
      expect(sizes.reduce((a, b) => a + b, 0)).to.equal(sum.stats.emitted);
      expect(sum.stats.pages, 'Graph pages').to.equal(10);
    });
  });

  describe('errors through done(err)', () => {
    async function firstError(props: Record<string, unknown>, msg: Record<string, unknown> = {}, o: { withoutConfig?: boolean } = {}) {
      const t = await deploy(small, props, o);
      t.dev.receive({ payload: 'go', ...msg });
      await waitFor(() => t.errors.length > 0, 10_000, 'a caught error');
      return { t, message: t.errors[0].error!.message };
    }

    it('no platform selected', async () => {
      const { t, message } = await firstError({ platformWindows: false, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, platformOther: false });
      expect(message).to.match(/^Error: No platform is selected: switch on at least one/);
      const last = t.dev.status.args[t.dev.status.args.length - 1][0];
      expect(last).to.include({ fill: 'red', shape: 'ring' });
      expect(t.pages).to.have.length(0);
    });

    it('negative days', async () => {
      const { message } = await firstError({ staleDays: -7 });
      expect(message).to.match(/must be a whole number of days, 0 or more/);
      expect(message).to.include('-7');
    });

    it('unknown msg.mode', async () => {
      const { t, message } = await firstError({}, { mode: 'delta' });
      expect(message).to.equal('Error: Unknown msg.mode "delta": use "full", "incremental" or "cancel", or leave msg.mode out for a full run');
      expect(small.graph.stats.requests >= 0 && t.summaries.length).to.equal(0);
    });

    it('no Intune connection selected', async () => {
      const { message } = await firstError({}, {}, { withoutConfig: true });
      expect(message).to.match(/^Error: No Intune connection is selected/);
    });

    it('a misconfigured connection: red status with its reason, and runs fail with it', async () => {
      const t = await deploy(small, {}, { credentials: { clientSecret: '' } });
      const first = t.dev.status.args[0][0];
      expect(first).to.include({ fill: 'red', shape: 'ring' });
      expect(first.runtimeText).to.match(/^connection: .*client secret is missing/i);
      // The connection's own message stays in the runtime's language inside the translated frame.
      expect(first.text).to.match(/^intune-devices\.status\.connection \{"text":".*client secret is missing.*"\}$/i);
      t.dev.receive({ payload: 'go' });
      await waitFor(() => t.errors.length > 0, 10_000, 'a caught error');
      expect(t.errors[0].error!.message).to.match(/^Error: Device run devices-\S+ failed: The client secret is missing/);
      expect((t.summaries[0].payload as RunSummary).result).to.equal('failed');
    });

    it('a Graph failure during a run', async () => {
      const t = await deploy(small);
      small.graph.failNext(1, { status: 500, path: 'managedDevices' });
      t.dev.receive({ payload: 'go' });
      await waitFor(() => t.errors.length > 0, 20_000, 'a caught error');
      expect(t.errors[0].error!.message).to.match(/^Error: Device run devices-\S+ failed: .*HTTP 500/);
      expect((t.summaries[0].payload as RunSummary).result).to.equal('failed');
      expect(t.dev.context().get(STATE_KEY)).to.equal(undefined);
    });
  });

  describe('directory look-ups that fail (GET /users/{id})', () => {
    const USERS_ROUTE = 'GET /users/{id}';
    const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    let refused: SimEnv;
    let plain: SimEnv;

    before(async () => {
      [refused, plain] = await Promise.all([
        startSimEnv({ devices: 300, seed: 3, roles: ALL_ROLES.filter((r) => r !== 'User.Read.All') }),
        startSimEnv({ devices: 300, seed: 5 }),
      ]);
      for (const e of [refused, plain]) e.graph.setLimits({ directory: { S: 1_000_000, M: 1_000_000, L: 1_000_000 } });
    });
    after(async () => {
      await Promise.all([refused?.stop(), plain?.stop()]);
    });

    /**
     * Distinct primary users (user ids) the device records leave open — a user id WITH a UPN, not
     * named as a deleted user's device: what a run asks the directory about (the record decides the rest).
     */
    function primaryUsers(e: SimEnv): number {
      const ids = new Set<string>();
      for (let i = 0; i < e.tenant.positions; i++) {
        const d = e.tenant.deviceAt(i);
        const id = d?.userId;
        if (id && GUID.test(id) && (d.userPrincipalName ?? '').trim() && d.deviceName !== DELETED_USER_DEVICE_NAME) ids.add(id);
      }
      return ids.size;
    }
    const usersAsked = (e: SimEnv) => e.graph.stats.byRoute[USERS_ROUTE] ?? 0;
    type Failure = { status: number; code: string; users: number; cached: number };

    it('the Preview never waits for the directory: with nothing cached it asks nobody and says how many users it left unchecked', async () => {
      const users = primaryUsers(plain);
      await deploy(plain);
      const before = usersAsked(plain);
      const res = await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, intune: 'cfg1' }).expect(200);
      expect(usersAsked(plain), 'users asked by the Preview').to.equal(before);
      expect(res.body.userLookupsPending).to.equal(users);
      expect(res.body.total).to.be.greaterThan(0);
    });

    it('403 (no User.Read.All): every unchecked user is counted with its cause in the warnings and the status, and neither the next run nor the Preview asks again', async () => {
      const users = primaryUsers(refused);
      expect(users, 'primary users in the tenant').to.be.greaterThan(40);
      const t = await deploy(refused);
      const { summary } = await t.run();
      expect(summary.result).to.equal('completed');
      const failures = summary.details!.userLookupFailures as Failure[];
      expect(failures.map((f) => [f.status, f.users, f.cached])).to.deep.equal([[403, users, 0]]);
      // Each user at most once (the pages after a refusal are not asked at all).
      expect(usersAsked(refused), 'users asked in the first run').to.be.within(1, users);
      const warnings = summary.details!.warnings as string[];
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(new RegExp(`^${users} primary users could not be looked up .*403.*User\\.Read\\.All`));
      expect(t.dev.warn.args.map((a) => String(a[0]))).to.include(warnings[0]);
      const last = t.dev.status.args[t.dev.status.args.length - 1][0];
      expect(`${last.fill}/${last.shape}: ${last.runtimeText}`).to.match(
        new RegExp(`^yellow/dot: full: ${summary.stats.emitted} devices, \\d+ skipped · \\d\\d:\\d\\d UTC · ${users} user look-ups failed · state in memory only$`),
      );

      // The refusal is kept like an answer: the next run and a Preview say the same without asking again.
      const asked = usersAsked(refused);
      const again = (await t.run()).summary;
      expect(usersAsked(refused), 'users asked by the second run').to.equal(asked);
      expect((again.details!.userLookupFailures as Failure[]).map((f) => [f.status, f.users, f.cached])).to.deep.equal([[403, users, users]]);
      expect(again.stats.emitted).to.equal(summary.stats.emitted);
      const res = await helper.request().post('/intune-devices/preview').send({ ...DEFAULT_PROPS, intune: 'cfg1' }).expect(200);
      expect(usersAsked(refused), 'users asked by the Preview').to.equal(asked);
      expect(res.body.imported).to.equal(summary.stats.emitted);
      expect(res.body.warnings.some((w: string) => /403.*User\.Read\.All/.test(w))).to.equal(true);
    });

    it('400 inside the batch: counted with the answer, kept for the hour like a good answer; a deleted user (404 Request_ResourceNotFound) is no failure', async () => {
      const users = primaryUsers(plain);
      plain.graph.failNext(3, { status: 400, scope: 'batchItem', path: '/users/' });
      const t = await deploy(plain);
      const { summary } = await t.run();
      const failures = summary.details!.userLookupFailures as Failure[];
      expect(failures.map((f) => [f.status, f.users, f.cached])).to.deep.equal([[400, 3, 0]]);
      expect(summary.details!.userLookups, 'every user asked once').to.equal(users);
      expect(summary.details!.userListingRequests, 'a run this small asks per user and lists nobody').to.equal(0);
      expect(summary.stats.skipped.userDeleted, 'deleted users are still recognised (404 is their answer)').to.be.greaterThan(0);
      expect((summary.details!.warnings as string[])[0]).to.match(/^3 primary users could not be looked up .*Graph answered 400.*kept for 60 minutes/);
      const last = t.dev.status.args[t.dev.status.args.length - 1][0];
      expect(last.fill).to.equal('yellow');
      expect(last.runtimeText).to.match(/ · 3 user look-ups failed/);

      const asked = usersAsked(plain);
      const again = (await t.run()).summary;
      expect(usersAsked(plain), 'the next run asks nobody again, the failed three included').to.equal(asked);
      expect((again.details!.userLookupFailures as Failure[]).map((f) => [f.status, f.users, f.cached])).to.deep.equal([[400, 3, 3]]);
    });
  });

  describe('status, store and fields', () => {
    it('shows running pages, throttling and the last result; says when the state is only in memory', async () => {
      const t = await deploy(small);
      small.graph.throttleNext(1, { path: 'managedDevices', retryAfter: 1 });
      const { summary } = await t.run();
      expect(summary.stats.throttled, JSON.stringify([summary.stats, small.graph.stats.faults, summary.startedAt, small.graph.requestLog.slice(-6).map((r) => [r.at, r.url.slice(0, 60), r.status])])).to.equal(1);
      expect(summary.stats.throttleWaitMs).to.be.at.least(1000);
      const statuses = t.dev.status.args.map((a) => a[0]);
      const texts = statuses.map((s) => `${s.fill}/${s.shape}: ${s.runtimeText}`);
      expect(texts[0]).to.equal('grey/ring: idle · state in memory only');
      expect(statuses[0].text, 'what the editor translates').to.equal('intune-devices.status.idle {"$+":[{"$t":"intune-devices.status.notPersistent"}]}');
      expect(statuses[statuses.length - 1].text).to.match(
        /^intune-devices\.status\.done \{"mode":\{"\$t":"intune-devices\.status\.mode\.full"\},"emitted":\d+,"skipped":\d+,"time":"\d\d:\d\d","\$\+":\[\{"\$t":"intune-devices\.status\.notPersistent"\}\]\}$/,
      );
      expect(texts).to.include('yellow/ring: throttled, waiting 1 s');
      expect(texts).to.include('blue/dot: full: page 1');
      expect(texts.some((x) => x.startsWith('blue/dot: full: duplicates, page 1'))).to.equal(true);
      expect(texts[texts.length - 1]).to.match(new RegExp(`^green/dot: full: ${summary.stats.emitted} devices, \\d+ skipped · \\d\\d:\\d\\d UTC · state in memory only$`));
    });

    it('a persistent store is not flagged, and the state goes into the chosen store', async () => {
      helper.settings({ contextStorage: { default: { module: 'memory' }, file: { module: 'localfilesystem' } } });
      try {
        const t = await deploy(small, { store: 'file' });
        await t.run();
        const texts = t.dev.status.args.map((a) => `${a[0].text} | ${a[0].runtimeText}`);
        expect(texts.some((x) => /memory|notPersistent/.test(x)), texts.join('\n')).to.equal(false);
      } finally {
        helper.settings({ contextStorage: undefined });
      }
    });

    it('selects only the contract fields; beta adds SKU and join type; Android Enterprise UPNs are cleaned', async () => {
      const android = [...small.tenant.iterate()].find((d) => d.operatingSystem === 'Android' && d.userPrincipalName)!;
      const upn = android.userPrincipalName;
      small.tenant.patchDevice(android.id, { userPrincipalName: `4d1c7e2a-93b0-4f5e-a8c1-6b2d9e0f7a34_${upn}` });
      try {
        for (const version of ['v1.0', 'beta'] as const) {
          await helper.unload();
          const t = await deploy(small, { graphVersion: version });
          small.graph.resetStats();
          const { pages } = await t.run();
          const selects = small.graph.requestLog
            .filter((r) => /managedDevices\?/.test(r.url) && !/skiptoken/i.test(r.url))
            .map((r) => ({ version: r.url.split('/')[1], select: (new URL(r.url, 'https://x').searchParams.get('$select') ?? '').split(',') }));
          expect(selects[1].version).to.equal(version);
          expect(selects[1].select).to.have.members(deviceSelect(version));
          const devices = devicesOf(pages);
          const win = devices.filter((d) => d.os.name === 'Windows');
          expect(win.length).to.be.greaterThan(10);
          if (version === 'beta') {
            expect(win.every((d) => typeof d.os.sku === 'string' && typeof d.joinType === 'string')).to.equal(true);
          } else {
            expect(devices.every((d) => d.os.sku === null && d.joinType === null)).to.equal(true);
          }
          const a = devices.find((d) => d.id === android.id);
          if (a) expect(a.user!.upn).to.equal(upn);
        }
      } finally {
        small.tenant.patchDevice(android.id, { userPrincipalName: upn });
      }
    });

    it('every emitted device carries every field of the contract', async () => {
      const t = await deploy(small, { includeDeletedUser: true, includePersonal: true });
      const { pages } = await t.run();
      const keys = [
        'id', 'azureAdDeviceId', 'name', 'serialNumber', 'rawSerialNumber', 'manufacturer', 'model', 'os', 'storage', 'enrolledAt', 'lastContactAt',
        'azureAdRegistered', 'joinType', 'ownership', 'complianceState', 'encrypted', 'jailbroken', 'managementAgent', 'coManaged', 'managementState',
        'user', 'userDeleted', 'imei', 'meid', 'phoneNumber', 'wifiMac', 'deepLinks',
      ];
      for (const d of devicesOf(pages)) {
        expect(Object.keys(d)).to.have.members(keys);
        expect(['true', 'false', 'unknown']).to.include(d.jailbroken);
      }
      expect(SKIP_REASONS).to.have.length(7);
    });
  });
});
