/**
 * intune-action against the simulated identity platform and Graph: every
 * action and every outcome, the guards (each refusing with a clear error and
 * no Graph call), replay protection, dry run, audit log, follow-up, status
 * dots, the per-device output, closing mid-run, and a 1,000-device lock
 * that meets Intune's write throttling and accounts for every device.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import { helper, distNode, tlsNode, loadFlow } from './support/node-helper';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';
import type { SimTenant, Platform } from '../sim/tenant';
import type { ActionReport, DeviceResult } from '../nodes/lib/actions/action-executor';

const configNode = distNode('intune-config');
const actionNode = distNode('intune-action');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type AnyNode = {
  receive(msg: unknown): void;
  on(ev: string, fn: (x: any) => void): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  context(): { get(k: string, cb: (e: unknown, v: unknown) => void): void; set(k: string, v: unknown, cb: (e?: unknown) => void): void };
};

/** Devices handed out already in this tenant: every test gets devices no other test touched. */
const used = new WeakMap<SimTenant, Set<string>>();

/** `n` fresh devices of `platform` (managed, not pending a retire/wipe, not a re-enrolled duplicate). */
function devicesOf(tenant: SimTenant, platform: Platform, n: number): string[] {
  const taken = used.get(tenant) ?? new Set<string>();
  used.set(tenant, taken);
  const out: string[] = [];
  for (let i = 0; i < tenant.positions && out.length < n; i++) {
    const m = tenant.metaAt(i);
    const d = tenant.deviceAt(i);
    if (!m || !d || taken.has(d.id) || m.platform !== platform || d.managementState !== 'managed' || m.duplicateOf !== null) continue;
    out.push(d.id);
  }
  if (out.length < n) throw new Error(`the sim tenant has too few unused ${platform} devices`);
  for (const id of out) taken.add(id);
  return out;
}

/** `n` fresh devices of any platform. */
function anyDevices(tenant: SimTenant, n: number): string[] {
  const taken = used.get(tenant) ?? new Set<string>();
  used.set(tenant, taken);
  const out: string[] = [];
  for (let i = 0; i < tenant.positions && out.length < n; i++) {
    const d = tenant.deviceAt(i);
    if (d && !taken.has(d.id)) out.push(d.id);
  }
  if (out.length < n) throw new Error('the sim tenant has too few unused devices');
  for (const id of out) taken.add(id);
  return out;
}

/**
 * Sets Intune's actionState of the newest `graphAction` entry of a device,
 * as Intune does once the device has carried the action out. Uses
 * SimTenant.setActionState when the sim has it.
 */
function setActionState(tenant: SimTenant, id: string, graphAction: string, state: string): void {
  const t = tenant as unknown as {
    setActionState?: (id: string, action: string, state: string) => void;
    overrides: Map<number, { actions?: Array<{ actionName: string; actionState: string; lastUpdatedDateTime: string }> }>;
    version: number;
  };
  if (typeof t.setActionState === 'function') return t.setActionState(id, graphAction, state);
  const i = tenant.indexOf(id);
  const list = i === null ? undefined : t.overrides.get(i)?.actions;
  const entry = list?.filter((a) => a.actionName === graphAction).pop();
  if (!entry) throw new Error(`no ${graphAction} recorded for ${id}`);
  entry.actionState = state;
  entry.lastUpdatedDateTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  t.version++;
}

const unknownId = () => crypto.randomUUID();

describe('intune-action', function () {
  this.timeout(60_000);
  let env: SimEnv;

  before(async () => {
    env = await startSimEnv({ devices: 400, seed: 11 });
  });
  after(async () => {
    await env?.stop();
  });
  afterEach(async () => {
    await helper.unload();
    env.graph.clearFaults();
    env.graph.resetThrottling();
  });

  interface Run {
    msg: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    report: ActionReport;
    errors: Array<Error & { code?: string }>;
    devices: Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    /** Order of arrival: 'device' or 'result'. */
    order: string[];
    graphRequests: number;
  }

  interface Deployed {
    act: AnyNode;
    run(payload: unknown, extra?: Record<string, unknown>): Promise<Run>;
    /** text: the form the editor translates (status-text.ts); runtimeText: the runtime's language. */
    statuses: Array<{ fill?: string; shape?: string; text?: string; runtimeText?: string }>;
    logs: string[];
    warnings: string[];
  }

  async function deploy(
    props: Record<string, unknown> = {},
    o: { cfg?: Parameters<typeof configFlow>[1]; secondAction?: Record<string, unknown>; withCatch?: boolean } = {},
  ): Promise<Deployed> {
    const { nodes: cfgNodes, credentials } = configFlow(env, o.cfg ?? {});
    // Node-RED's tls-config reads n.cert/n.key unconditionally: give them, in case configFlow leaves them out.
    const nodes = cfgNodes.map((n) => (n.type === 'tls-config' ? { cert: '', key: '', ...n } : n));
    const cfgId = (nodes[1] as { id: string }).id;
    const perDevice = props.perDevice === true;
    const flow: Record<string, unknown>[] = [
      { id: 'f1', type: 'tab', label: 'actions' },
      ...nodes,
      {
        id: 'act',
        z: 'f1',
        type: 'intune-action',
        name: 'actions',
        intune: cfgId,
        outputs: perDevice ? 2 : 1,
        wires: perDevice ? [['out'], ['dev']] : [['out']],
        ...props,
      },
      { id: 'out', z: 'f1', type: 'helper' },
      { id: 'dev', z: 'f1', type: 'helper' },
    ];
    // A Catch node for the whole tab, as a flow that watches for errors has it.
    if (o.withCatch) flow.push({ id: 'c1', z: 'f1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }, { id: 'caught', z: 'f1', type: 'helper' });
    if (o.secondAction) flow.push({ id: 'act2', z: 'f1', type: 'intune-action', intune: cfgId, wires: [['out2']], ...o.secondAction }, { id: 'out2', z: 'f1', type: 'helper' });
    await loadFlow([tlsNode, configNode, actionNode], flow, credentials);
    const act = helper.getNode('act') as unknown as AnyNode;
    // The helper spies on Node.prototype: calls made while the node was constructed are there too.
    const calls = (method: 'status' | 'log' | 'warn') =>
      ((act as unknown as Record<string, { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> }>)[method]
        .getCalls()
        .filter((c) => c.thisValue === act)
        .map((c) => c.args[0]));
    return {
      act,
      get statuses() {
        return calls('status') as Deployed['statuses'];
      },
      get logs() {
        return calls('log').map(String);
      },
      get warnings() {
        return calls('warn').map(String);
      },
      run: (payload, extra = {}) => runOn('act', 'out', payload, extra),
    };
  }

  function runOn(actId: string, outId: string, payload: unknown, extra: Record<string, unknown> = {}): Promise<Run> {
    const act = helper.getNode(actId) as unknown as AnyNode;
    const out = helper.getNode(outId) as unknown as AnyNode;
    const dev = helper.getNode('dev') as unknown as AnyNode | null;
    const errors: Run['errors'] = [];
    const devices: Run['devices'] = [];
    const order: string[] = [];
    const before = env.graph.stats.requests;
    type Emitter = { on(e: string, f: (x: any) => void): void; removeListener(e: string, f: (x: any) => void): void }; // eslint-disable-line @typescript-eslint/no-explicit-any
    return new Promise((resolve, reject) => {
      const onError = (c: { args: unknown[] }) => errors.push(c.args[0] as Error);
      const onDevice = (m: Record<string, unknown>) => {
        devices.push(m);
        order.push('device');
      };
      const onResult = async (m: Record<string, any>) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        order.push('result');
        clearTimeout(timer);
        await sleep(30); // done(err) comes right after the message
        (act as unknown as Emitter).removeListener('call:error', onError);
        (dev as unknown as Emitter | null)?.removeListener('input', onDevice);
        (out as unknown as Emitter).removeListener('input', onResult);
        resolve({ msg: m, report: m.payload, errors, devices, order, graphRequests: env.graph.stats.requests - before });
      };
      const timer = setTimeout(() => reject(new Error('no result message within 50 s')), 50_000);
      act.on('call:error', onError);
      dev?.on('input', onDevice);
      out.on('input', onResult);
      act.receive({ payload, ...extra });
    });
  }

  const byId = (r: ActionReport) => new Map<string, DeviceResult>(r.results.map((x) => [x.deviceId, x]));

  // ------------------------------------------------------------ actions and outcomes

  describe('actions and outcomes', () => {
    it('lock: accepted devices get remoteLock (v1.0, 204), an unknown id is notFound (404), status partial', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'ios', 3);
      const ghost = unknownId();
      const before = env.graph.stats.actions.remoteLock ?? 0;
      const r = await d.run({ action: 'lock', deviceIds: [...ids, ghost], jobId: 'lock-1', requestedBy: 'alice@contoso.com' });
      expect(r.report.jobId).to.equal('lock-1');
      expect(r.report.action).to.equal('lock');
      expect(r.report.status).to.equal('partial');
      expect(r.report.results.map((x) => x.deviceId), 'one result per device, in request order').to.deep.equal([...ids, ghost]);
      for (const id of ids) expect(byId(r.report).get(id)).to.include({ outcome: 'accepted', httpStatus: 204 });
      expect(byId(r.report).get(ghost)).to.include({ outcome: 'notFound', httpStatus: 404 });
      expect(byId(r.report).get(ghost)!.error).to.match(/no managed device with this id/);
      expect(r.report.counts).to.deep.equal({ accepted: 3, failed: 0, notFound: 1, unsupported: 0, rejected: 0 });
      expect((env.graph.stats.actions.remoteLock ?? 0) - before).to.equal(3);
      const recorded = env.tenant.getDevice(ids[0])!.deviceActionResults.map((a) => a.actionName);
      expect(recorded).to.include('remoteLock');
      expect(r.errors, 'a device that did not get the action reaches Catch nodes').to.have.length(1);
      expect(r.errors[0].message).to.match(/^lock: 1 of 4 device\(s\) not carried out \(job lock-1; 1 not found; 3 accepted\): /);
      expect(r.errors[0].code).to.equal('partial');
      const log = env.graph.requestLog.filter((e) => e.batchItem && e.method === 'POST');
      expect(log.slice(-4).every((e) => e.url.startsWith('/v1.0/deviceManagement/managedDevices/') && e.url.endsWith('/remoteLock'))).to.equal(true);
    });

    it('sync: syncDevice for every device, status finished', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'windows', 4);
      const before = env.graph.stats.actions.syncDevice ?? 0;
      const r = await d.run({ action: 'sync', deviceIds: ids, jobId: 'sync-1' });
      expect(r.report.status).to.equal('finished');
      expect(r.report.counts.accepted).to.equal(4);
      expect((env.graph.stats.actions.syncDevice ?? 0) - before).to.equal(4);
    });

    it('notify: beta sendCustomNotificationToCompanyPortal to iOS/iPadOS and Android work profile only; others unsupported without a write', async () => {
      const d = await deploy();
      const ios = devicesOf(env.tenant, 'ios', 1)[0];
      const ipad = devicesOf(env.tenant, 'ipados', 1)[0];
      const awp = devicesOf(env.tenant, 'android-wp', 1)[0];
      const win = devicesOf(env.tenant, 'windows', 1)[0];
      const mac = devicesOf(env.tenant, 'macos', 1)[0];
      const ded = devicesOf(env.tenant, 'android-ded', 1)[0];
      const ghost = unknownId();
      const logFrom = env.graph.requestLog.length;
      const sentBefore = env.tenant.actionLog.length;
      const r = await d.run({
        action: 'notify',
        deviceIds: [ios, ipad, awp, win, mac, ded, ghost],
        notification: { title: 'Bitte neu starten 🔄', body: 'Ihr Gerät braucht ein Update. Bitte heute neu starten.' },
        jobId: 'notify-1',
      });
      const res = byId(r.report);
      for (const id of [ios, ipad, awp]) expect(res.get(id)!.outcome, id).to.equal('accepted');
      for (const id of [win, mac, ded]) {
        expect(res.get(id)!.outcome, id).to.equal('unsupported');
        expect(res.get(id)!.error).to.match(/iOS\/iPadOS and Android Enterprise personally-owned work profile/);
      }
      expect(res.get(ghost)!.outcome).to.equal('notFound');
      expect(r.report.status).to.equal('partial');
      const posts = env.graph.requestLog.slice(logFrom).filter((e) => e.method === 'POST' && e.batchItem);
      expect(posts.map((e) => e.url).sort()).to.deep.equal(
        [ios, ipad, awp].map((id) => `/beta/deviceManagement/managedDevices/${id}/sendCustomNotificationToCompanyPortal`).sort(),
      );
      const sent = env.tenant.actionLog.slice(sentBefore);
      expect(sent.map((e) => e.deviceId).sort()).to.deep.equal([ios, ipad, awp].sort());
      expect(sent[0].params).to.deep.equal({ notificationTitle: 'Bitte neu starten 🔄', notificationBody: 'Ihr Gerät braucht ein Update. Bitte heute neu starten.' });
    });

    it('retire: sent with confirm; a device already pending retire is not sent again', async () => {
      const d = await deploy({ allowRetire: true });
      const [a, b] = devicesOf(env.tenant, 'android-fm', 2);
      const pendingDev = devicesOf(env.tenant, 'ios', 1)[0];
      env.tenant.patchDevice(pendingDev, { managementState: 'retirePending' });
      const logFrom = env.graph.requestLog.length;
      const r = await d.run({ action: 'retire', deviceIds: [a, b, pendingDev], confirm: true, jobId: 'retire-1' });
      expect(r.report.status).to.equal('finished');
      expect(byId(r.report).get(pendingDev)).to.include({ outcome: 'accepted', note: 'alreadyPending' });
      expect(env.tenant.getDevice(a)!.managementState).to.equal('retirePending');
      const posts = env.graph.requestLog.slice(logFrom).filter((e) => e.method === 'POST' && e.batchItem).map((e) => e.url);
      expect(posts.sort()).to.deep.equal([a, b].map((id) => `/v1.0/deviceManagement/managedDevices/${id}/retire`).sort());
    });

    it('wipe: sends the wipe options; the macOS unlock code never reaches the log or the result', async () => {
      const d = await deploy({ allowWipe: true });
      const mac = devicesOf(env.tenant, 'macos', 1)[0];
      const from = env.tenant.actionLog.length;
      const wipe = { keepEnrollmentData: false, keepUserData: true, macOsUnlockCode: '493817', persistEsimDataPlan: true };
      const r = await d.run({ action: 'wipe', deviceIds: [mac], confirm: true, wipe, jobId: 'wipe-1', requestedBy: 'bob' });
      expect(r.report.status).to.equal('finished');
      const entry = env.tenant.actionLog.slice(from).find((e) => e.action === 'wipe')!;
      expect(entry.deviceId).to.equal(mac);
      expect(entry.params).to.deep.equal(wipe);
      expect(env.tenant.getDevice(mac)!.managementState).to.equal('wipePending');
      expect(JSON.stringify(r.msg)).to.not.include('493817');
      expect(d.logs.join('\n')).to.not.include('493817');
    });

    it('sync, remoteLock and retire reach the devices through $batch: each write item carries {} and Content-Type, so Graph does not refuse the batch', async () => {
      const d = await deploy({ allowRetire: true });
      const cases: Array<[string, string, Record<string, unknown>]> = [
        ['sync', 'syncDevice', {}],
        ['lock', 'remoteLock', {}],
        ['retire', 'retire', { confirm: true }],
      ];
      for (const [action, graphAction, extra] of cases) {
        const ids = devicesOf(env.tenant, 'ios', 3);
        const logFrom = env.graph.requestLog.length;
        const actionsFrom = env.tenant.actionLog.length;
        const r = await d.run({ action, deviceIds: ids, jobId: `batch-${action}`, ...extra });
        expect(r.report.status, `${action}: ${JSON.stringify(r.report.results[0])}`).to.equal('finished');
        expect(r.errors, action).to.deep.equal([]);
        const log = env.graph.requestLog.slice(logFrom);
        // the writes went as items of a $batch that Graph accepted as a whole
        const writes = log.filter((e) => e.batchItem && e.method === 'POST');
        expect(writes.map((e) => [e.url, e.status]).sort(), action).to.deep.equal(ids.map((id) => [`/v1.0/deviceManagement/managedDevices/${id}/${graphAction}`, 204]).sort());
        expect(log.filter((e) => !e.batchItem && e.route === 'POST /$batch').map((e) => e.status), action).to.include(200).and.not.include(400);
        const done = env.tenant.actionLog.slice(actionsFrom).filter((e) => e.action === graphAction);
        expect(done.map((e) => e.deviceId).sort(), `${action} reached every device`).to.deep.equal([...ids].sort());
        for (const id of ids) expect(env.tenant.getDevice(id)!.deviceActionResults.map((a) => a.actionName), action).to.include(graphAction);
      }
    });

    it('failed: a device Graph answers with HTTP 500 is failed with the status and Graph\'s error; done(err) tells Catch nodes', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'ios', 3);
      env.graph.failNext(1, { scope: 'batchItem', status: 500, path: `${ids[1]}/syncDevice` });
      const r = await d.run({ action: 'sync', deviceIds: ids, jobId: 'sync-500' });
      expect(r.report.status).to.equal('partial');
      const f = byId(r.report).get(ids[1])!;
      expect(f).to.include({ outcome: 'failed', httpStatus: 500 });
      expect(f.error).to.match(/HTTP 500.*InternalServerError/);
      expect(r.errors).to.have.length(1);
      expect(r.errors[0].message).to.match(/1 of 3 device\(s\) not carried out \(job sync-500; 1 failed; 2 accepted\)/);
    });

    it('failed: without PrivilegedOperations.All Intune refuses (403) and the error says which permission to grant; status failed', async () => {
      const clientId = crypto.randomUUID();
      const secret = `sim~${crypto.randomBytes(12).toString('hex')}`;
      env.identity.addApp({ clientId, tenantId: env.tenantId, secrets: [{ value: secret }], roles: ['DeviceManagementManagedDevices.Read.All'] });
      const d = await deploy({}, { cfg: { overrides: { clientId }, credentials: { clientSecret: secret } } });
      const ids = devicesOf(env.tenant, 'android-fm', 2);
      const r = await d.run({ action: 'lock', deviceIds: ids, jobId: 'lock-403' });
      expect(r.report.status).to.equal('failed');
      for (const x of r.report.results) {
        expect(x).to.include({ outcome: 'failed', httpStatus: 403 });
        expect(x.error).to.match(/grant DeviceManagementManagedDevices\.PrivilegedOperations\.All/);
      }
      expect(r.errors).to.have.length(1);
      expect(d.statuses.at(-1)).to.include({ fill: 'red', shape: 'dot' });
    });

    it('failed: no usable connection: every device failed, nothing sent, error for Catch nodes', async () => {
      const d = await deploy({}, { cfg: { credentials: { clientSecret: '' } } });
      const ids = devicesOf(env.tenant, 'ios', 2);
      const r = await d.run({ action: 'sync', deviceIds: ids, jobId: 'no-conn' });
      expect(r.report.status).to.equal('failed');
      expect(r.report.results.every((x) => x.outcome === 'failed' && /client secret is missing/.test(x.error!))).to.equal(true);
      expect(r.graphRequests).to.equal(0);
      expect(r.errors[0].message).to.match(/client secret is missing/);
    });
  });

  // ------------------------------------------------------------ guards

  describe('guards refuse with a clear error and no Graph call', () => {
    async function expectRefused(d: Deployed, payload: unknown, code: string, re: RegExp, extra: Record<string, unknown> = {}): Promise<Run> {
      const writesBefore = env.tenant.actionLog.length;
      const r = await d.run(payload, extra);
      expect(r.report.status, JSON.stringify(r.report)).to.equal('rejected');
      expect(r.report.code).to.equal(code);
      expect(r.report.error).to.match(re);
      expect(r.graphRequests, 'no Graph request at all').to.equal(0);
      expect(env.tenant.actionLog.length, 'nothing carried out').to.equal(writesBefore);
      expect(r.errors, 'done(err) for Catch nodes').to.have.length(1);
      expect(r.errors[0].message).to.match(re);
      expect(r.errors[0].code).to.equal(code);
      for (const x of r.report.results) expect(x.outcome).to.equal('rejected');
      return r;
    }

    it('action not allowed: retire and wipe are off unless ticked', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'ios', 2);
      const r = await expectRefused(d, { action: 'wipe', deviceIds: ids, confirm: true, jobId: 'w-no' }, 'notAllowed', /does not allow the action "wipe".*tick it/);
      expect(r.report.results.map((x) => x.deviceId)).to.deep.equal(ids);
      await expectRefused(d, { action: 'retire', deviceIds: ids, confirm: true }, 'notAllowed', /does not allow the action "retire"/);
      const d2 = await (async () => {
        await helper.unload();
        return deploy({ allowLock: false });
      })();
      await expectRefused(d2, { action: 'lock', deviceIds: ids }, 'notAllowed', /does not allow the action "lock" \(allowed: notify, sync\)/);
    });

    it('retire and wipe need confirm: true', async () => {
      const d = await deploy({ allowRetire: true, allowWipe: true });
      const ids = devicesOf(env.tenant, 'ios', 1);
      await expectRefused(d, { action: 'wipe', deviceIds: ids }, 'confirmMissing', /A wipe needs "confirm": true/);
      await expectRefused(d, { action: 'retire', deviceIds: ids, confirm: false }, 'confirmMissing', /A retire needs "confirm": true/);
      await expectRefused(d, { action: 'retire', deviceIds: ids, confirm: 'yes' }, 'malformed', /confirm must be true or false/);
    });

    it('too many devices: rejected as a whole, not truncated', async () => {
      const d = await deploy({ maxDevices: 3 });
      const ids = anyDevices(env.tenant, 4);
      const r = await expectRefused(d, { action: 'sync', deviceIds: ids }, 'tooManyDevices', /lists 4 devices; this node accepts at most 3/);
      expect(r.report.results).to.have.length(4);
    });

    it('notification text too long (50 / 500 characters, emoji counted as one) or missing', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'ios', 1);
      const ok50 = '🔔'.repeat(50);
      await expectRefused(d, { action: 'notify', deviceIds: ids, notification: { title: ok50 + 'x', body: 'b' } }, 'textTooLong', /notification\.title has 51 characters; Intune allows at most 50/);
      await expectRefused(d, { action: 'notify', deviceIds: ids, notification: { title: 't', body: 'x'.repeat(501) } }, 'textTooLong', /notification\.body has 501 characters; Intune allows at most 500/);
      await expectRefused(d, { action: 'notify', deviceIds: ids, notification: { title: '  ', body: 'b' } }, 'textMissing', /notification\.title is empty/);
      await expectRefused(d, { action: 'notify', deviceIds: ids }, 'textMissing', /needs notification\.title and notification\.body/);
      // exactly at the limits passes
      const r = await d.run({ action: 'notify', deviceIds: ids, notification: { title: ok50, body: 'y'.repeat(500) } });
      expect(r.report.status).to.equal('finished');
    });

    it('unsupported platform: no write for devices that cannot receive notifications', async () => {
      const d = await deploy();
      const ids = [...devicesOf(env.tenant, 'windows', 2), ...devicesOf(env.tenant, 'android-da', 1)];
      const logFrom = env.graph.requestLog.length;
      const before = env.tenant.actionLog.length;
      const r = await d.run({ action: 'notify', deviceIds: ids, notification: { title: 'Hi', body: 'There' } });
      expect(r.report.results.map((x) => x.outcome)).to.deep.equal(['unsupported', 'unsupported', 'unsupported']);
      expect(r.report.status).to.equal('failed');
      expect(env.graph.requestLog.slice(logFrom).filter((e) => e.batchItem && e.method !== 'GET')).to.deep.equal([]);
      expect(env.tenant.actionLog.length).to.equal(before);
      expect(r.errors).to.have.length(1);
      expect(r.errors[0].message).to.match(/3 of 3 device\(s\) not carried out .*3 unsupported; 0 accepted/);
    });

    it('replayed jobId (same request) answers with the earlier result; a reused jobId for another request is refused', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'ipados', 2);
      const first = await d.run({ action: 'lock', deviceIds: ids, jobId: 'acmp-4712' });
      expect(first.report.status).to.equal('finished');
      const locks = env.tenant.actionLog.length;
      const again = await d.run({ action: 'lock', deviceIds: [...ids].reverse(), jobId: 'acmp-4712' });
      expect(again.report.replayed).to.equal(true);
      expect(again.report.status).to.equal('finished');
      expect(again.report.results).to.deep.equal(first.report.results);
      expect(again.graphRequests).to.equal(0);
      expect(env.tenant.actionLog.length).to.equal(locks);
      expect(again.errors[0].code).to.equal('replayed');
      expect(again.errors[0].message).to.match(/job acmp-4712 was already executed .*not executed again/);
      await expectRefused(d, { action: 'sync', deviceIds: ids, jobId: 'acmp-4712' }, 'jobIdReused', /already used .* for a different request \(lock on 2 device\(s\)\)/);
    });

    it('the same jobId arriving twice at once runs once; the second is refused as alreadyRunning', async () => {
      const d = await deploy({ allowWipe: true });
      const ids = devicesOf(env.tenant, 'android-fm', 3);
      const from = env.tenant.actionLog.length;
      const out = helper.getNode('out') as unknown as AnyNode;
      const results: ActionReport[] = [];
      const errors: Array<Error & { code?: string }> = [];
      d.act.on('call:error', (c) => errors.push(c.args[0]));
      const both = new Promise<void>((res) => out.on('input', (m) => results.push(m.payload) === 2 && res()));
      const payload = { action: 'wipe', deviceIds: ids, confirm: true, jobId: 'twice-1' };
      d.act.receive({ payload });
      d.act.receive({ payload: { ...payload } });
      await both;
      await sleep(30);
      const refused = results.find((r) => r.status === 'rejected')!;
      const ran = results.find((r) => r.status !== 'rejected')!;
      expect(refused.code).to.equal('alreadyRunning');
      expect(ran.status).to.equal('finished');
      const wipes = env.tenant.actionLog.slice(from).filter((e) => e.action === 'wipe').map((e) => e.deviceId);
      expect(wipes.sort(), 'each device wiped exactly once').to.deep.equal([...ids].sort());
      expect(errors.map((e) => e.code)).to.deep.equal(['alreadyRunning']);
    });

    const malformed: Array<[string, unknown, string, RegExp]> = [
      ['payload is a string', '{"action":"lock"}', 'malformed', /must be an action request object, not a string .*JSON node/],
      ['payload is a list', [1, 2], 'malformed', /not a list/],
      ['no action', { deviceIds: ['x'] }, 'unknownAction', /has no action/],
      ['unknown action', { action: 'reboot', deviceIds: [] }, 'unknownAction', /Unknown action "reboot": use one of notify, retire, wipe, lock, sync/],
      ['action not a string', { action: 5, deviceIds: [] }, 'malformed', /action must be a text/],
      ['deviceIds missing', { action: 'lock', deviceIds: undefined }, 'noDevices', /has no deviceIds/],
      ['deviceIds a string', { action: 'lock', deviceIds: 'abc' }, 'malformed', /deviceIds must be a list .*not a string/],
      ['empty list', { action: 'lock', deviceIds: [] }, 'noDevices', /deviceIds is empty/],
      ['id a number', { action: 'lock', deviceIds: [42] }, 'badDeviceId', /deviceIds\[0\] must be a text .*not a number/],
      ['id not a GUID', { action: 'lock', deviceIds: ['../../users'] }, 'badDeviceId', /is not an Intune device id/],
      ['notification not an object', { action: 'notify', notification: 'hi' }, 'malformed', /notification must be an object with title and body, not a string/],
      ['title a number', { action: 'notify', notification: { title: 5, body: 'b' } }, 'malformed', /notification\.title must be a text, not a number/],
      ['notification on lock', { action: 'lock', notification: { title: 'a', body: 'b' } }, 'malformed', /notification belongs to the notify action only/],
      ['wipe option wrong type', { action: 'wipe', confirm: true, wipe: { keepUserData: 'no' } }, 'malformed', /wipe\.keepUserData must be true or false/],
      ['wipe option misspelt', { action: 'wipe', confirm: true, wipe: { keepUserdata: true } }, 'malformed', /unknown option "keepUserdata"/],
      ['unlock code not 6 digits', { action: 'wipe', confirm: true, wipe: { macOsUnlockCode: '12ab' } }, 'malformed', /six-digit PIN/],
      ['jobId an object', { action: 'lock', jobId: { a: 1 } }, 'malformed', /jobId must be a text or a number/],
      ['requestedBy a number', { action: 'lock', requestedBy: 7 }, 'malformed', /requestedBy must be a text/],
      ['dryRun a string', { action: 'lock', dryRun: 'yes' }, 'malformed', /dryRun must be true or false/],
    ];
    for (const [what, payload, code, re] of malformed) {
      it(`malformed payload: ${what}`, async () => {
        const d = await deploy({ allowWipe: true });
        const ids = anyDevices(env.tenant, 2);
        const p = payload && typeof payload === 'object' && !Array.isArray(payload) && !('deviceIds' in payload) ? { ...payload, deviceIds: ids } : payload;
        await expectRefused(d, p, code, re);
      });
    }

    it('malformed payload: duplicate ids (also in other letter case)', async () => {
      const d = await deploy();
      const [a, b] = anyDevices(env.tenant, 2);
      const r = await expectRefused(d, { action: 'sync', deviceIds: [a, b, a.toUpperCase()], jobId: 'dup-1' }, 'duplicateDevices', /lists a device more than once/);
      expect(r.report.jobId, 'the job id is echoed for reporting back').to.equal('dup-1');
      expect(r.report.action).to.equal('sync');
    });

    it('a rejected request still produces its result message (for ACMP) and per-device "rejected" messages', async () => {
      const d = await deploy({ perDevice: true });
      const ids = anyDevices(env.tenant, 3);
      const r = await d.run({ action: 'wipe', deviceIds: ids, jobId: 'job-77', requestedBy: 'carol' });
      expect(r.report).to.include({ jobId: 'job-77', action: 'wipe', status: 'rejected', code: 'notAllowed', requestedBy: 'carol' });
      expect(r.devices.map((m) => [m.payload.deviceId, m.payload.outcome, m.payload.jobId])).to.deep.equal(ids.map((id) => [id, 'rejected', 'job-77']));
      expect(r.errors).to.have.length(1);
    });
  });

  // ------------------------------------------------------------ errors reach Catch nodes

  describe('Catch nodes', () => {
    interface Caught {
      payload: ActionReport;
      error: { message: string; code?: string; source: { id: string; type: string } };
      [k: string]: unknown;
    }
    const caughtBy = (): Caught[] => {
      const list: Caught[] = [];
      (helper.getNode('caught') as unknown as AnyNode).on('input', (m: Caught) => list.push(m));
      return list;
    };

    it('a request whose devices are all notFound or unsupported ends red and reaches Catch with the result message', async () => {
      const d = await deploy({}, { withCatch: true });
      const caught = caughtBy();
      const ghosts = [unknownId(), unknownId()];
      const r = await d.run({ action: 'sync', deviceIds: ghosts, jobId: 'all-ghosts', requestedBy: 'dora' }, { correlation: 'c-1' });
      expect(r.report.status).to.equal('failed');
      expect(r.report.counts).to.include({ accepted: 0, notFound: 2 });
      expect(d.statuses.at(-1)).to.include({ fill: 'red', shape: 'dot' });
      for (let i = 0; i < 40 && !caught.length; i++) await sleep(25);
      expect(caught).to.have.length(1);
      const c = caught[0];
      expect(c.error.message).to.match(/sync: 2 of 2 device\(s\) not carried out \(job all-ghosts; 2 not found; 0 accepted\): .*no managed device with this id/);
      expect(c.error.code).to.equal('failed');
      expect(c.error.source).to.include({ id: 'act', type: 'intune-action' });
      // the message that caused it: the request's own properties, with the result that says which devices
      expect(c.correlation).to.equal('c-1');
      expect(c.payload.jobId).to.equal('all-ghosts');
      expect(c.payload.results.map((x) => [x.deviceId, x.outcome])).to.deep.equal(ghosts.map((id) => [id, 'notFound']));

      // notifications to devices that cannot receive them: unsupported, red, Catch again
      const wins = devicesOf(env.tenant, 'windows', 2);
      const u = await d.run({ action: 'notify', deviceIds: wins, notification: { title: 'Hi', body: 'There' }, jobId: 'all-unsupported' });
      expect(u.report.status).to.equal('failed');
      expect(d.statuses.at(-1)).to.include({ fill: 'red', shape: 'dot' });
      for (let i = 0; i < 40 && caught.length < 2; i++) await sleep(25);
      expect(caught).to.have.length(2);
      expect(caught[1].error.message).to.match(/notify: 2 of 2 device\(s\) not carried out \(job all-unsupported; 2 unsupported; 0 accepted\)/);
    });

    it('a partial result: the result message (with the accepted devices) goes on, and Catch gets the same result with the error', async () => {
      const d = await deploy({ perDevice: true }, { withCatch: true });
      const caught = caughtBy();
      const ids = devicesOf(env.tenant, 'ios', 2);
      const ghost = unknownId();
      const r = await d.run({ action: 'lock', deviceIds: [ids[0], ghost, ids[1]], jobId: 'partial-1' });
      expect(r.report.status).to.equal('partial');
      expect(r.report.results.filter((x) => x.outcome === 'accepted').map((x) => x.deviceId)).to.deep.equal(ids);
      expect(r.devices.map((m) => m.payload.outcome)).to.have.members(['accepted', 'accepted', 'notFound']);
      expect(d.statuses.at(-1)).to.include({ fill: 'yellow', shape: 'dot' });
      for (let i = 0; i < 40 && !caught.length; i++) await sleep(25);
      expect(caught).to.have.length(1);
      expect(caught[0].error.message).to.match(/lock: 1 of 3 device\(s\) not carried out \(job partial-1; 1 not found; 2 accepted\): /);
      expect(caught[0].error.message).to.contain(ghost);
      expect(caught[0].error.code).to.equal('partial');
      expect(caught[0].payload.results).to.deep.equal(r.report.results);
    });

    it('a request where every device accepted reaches no Catch node', async () => {
      const d = await deploy({}, { withCatch: true });
      const caught = caughtBy();
      const r = await d.run({ action: 'sync', deviceIds: devicesOf(env.tenant, 'android-wp', 2), jobId: 'all-good' });
      expect(r.report.status).to.equal('finished');
      await sleep(100);
      expect(caught).to.deep.equal([]);
      expect(r.errors).to.deep.equal([]);
    });
  });

  // ------------------------------------------------------------ notification limit

  it('notify: the 11th notification to a device within an hour is rejected for that device without a Graph write', async () => {
    const d = await deploy();
    const [ios] = devicesOf(env.tenant, 'ios', 1);
    const [other] = devicesOf(env.tenant, 'ios', 1);
    for (let i = 0; i < 10; i++) {
      const r = await d.run({ action: 'notify', deviceIds: [ios], notification: { title: `n${i}`, body: 'b' } });
      expect(r.report.status, `notification ${i + 1}`).to.equal('finished');
    }
    const before = env.tenant.actionLog.length;
    const logFrom = env.graph.requestLog.length;
    const r = await d.run({ action: 'notify', deviceIds: [ios, other], notification: { title: 'eleven', body: 'b' } });
    expect(byId(r.report).get(ios)!.outcome).to.equal('rejected');
    expect(byId(r.report).get(ios)!.error).to.match(/already got 10 notifications within the last hour/);
    expect(byId(r.report).get(other)!.outcome).to.equal('accepted');
    expect(r.report.status).to.equal('partial');
    expect(env.tenant.actionLog.slice(before).map((e) => e.deviceId)).to.deep.equal([other]);
    expect(env.graph.requestLog.slice(logFrom).filter((e) => e.url.includes(ios))).to.deep.equal([]);
  });

  it('notify: two action nodes on one Intune connection count together (Intune counts per device, whoever sends)', async () => {
    await deploy({}, { secondAction: {} });
    const [ios] = devicesOf(env.tenant, 'ios', 1);
    for (let i = 0; i < 10; i++) {
      const r = await runOn(i % 2 ? 'act2' : 'act', i % 2 ? 'out2' : 'out', { action: 'notify', deviceIds: [ios], notification: { title: `n${i}`, body: 'b' } });
      expect(r.report.status, `notification ${i + 1}`).to.equal('finished');
    }
    const before = env.tenant.actionLog.length;
    for (const [act, out] of [['act', 'out'], ['act2', 'out2']]) {
      const r = await runOn(act, out, { action: 'notify', deviceIds: [ios], notification: { title: 'eleven', body: 'b' } });
      expect(byId(r.report).get(ios)!.outcome, act).to.equal('rejected');
    }
    expect(env.tenant.actionLog.length - before, 'no 11th notification reached Intune').to.equal(0);
  });

  // ------------------------------------------------------------ dry run

  describe('dry run', () => {
    it('node in dry-run mode: checks the guards, reports what would be sent, sends nothing, does not journal', async () => {
      const d = await deploy({ dryRun: true, allowWipe: true });
      const mac = devicesOf(env.tenant, 'macos', 1)[0];
      const before = env.tenant.actionLog.length;
      const r = await d.run({ action: 'wipe', deviceIds: [mac], confirm: true, wipe: { keepUserData: true, macOsUnlockCode: '112233' }, jobId: 'dry-1' });
      expect(r.report.dryRun).to.equal(true);
      expect(r.report.status).to.equal('finished');
      expect(r.report.results[0].request).to.deep.equal({
        method: 'POST',
        url: `/v1.0/deviceManagement/managedDevices/${mac}/wipe`,
        body: { keepUserData: true, macOsUnlockCode: '******' },
      });
      expect(r.graphRequests).to.equal(0);
      expect(env.tenant.actionLog.length).to.equal(before);
      expect(JSON.stringify(r.msg) + d.logs.join('\n')).to.not.include('112233');
      expect(d.logs.some((l) => l.startsWith('audit: DRY RUN action="wipe" jobId="dry-1"'))).to.equal(true);
      // guards still apply
      const refused = await d.run({ action: 'wipe', deviceIds: [mac], jobId: 'dry-2' });
      expect(refused.report.code).to.equal('confirmMissing');
    });

    it('a request can ask for a dry run (notify goes to beta), and the same jobId then runs for real', async () => {
      const d = await deploy();
      const ids = devicesOf(env.tenant, 'ios', 1);
      const n = { title: 'T', body: 'B' };
      const dry = await d.run({ action: 'notify', deviceIds: ids, notification: n, jobId: 'dry-3', dryRun: true });
      expect(dry.report.dryRun).to.equal(true);
      expect(dry.report.results[0].request).to.deep.equal({
        method: 'POST',
        url: `/beta/deviceManagement/managedDevices/${ids[0]}/sendCustomNotificationToCompanyPortal`,
        body: { notificationTitle: 'T', notificationBody: 'B' },
      });
      expect(dry.graphRequests).to.equal(0);
      const real = await d.run({ action: 'notify', deviceIds: ids, notification: n, jobId: 'dry-3' });
      expect(real.report.dryRun).to.equal(undefined);
      expect(real.report.replayed).to.equal(undefined);
      expect(real.report.status).to.equal('finished');
    });
  });

  // ------------------------------------------------------------ audit, status, journal

  it('audit log: one line per executed request with action, device ids, jobId, requestedBy and outcome; no secrets, no notification text', async () => {
    const d = await deploy();
    const ios = devicesOf(env.tenant, 'ios', 1)[0];
    const win = devicesOf(env.tenant, 'windows', 1)[0];
    await d.run({ action: 'notify', deviceIds: [ios, win], notification: { title: 'Secret project Falcon', body: 'Meet at 5' }, jobId: 'aud-1', requestedBy: 'ACMP\\dave' });
    const lines = d.logs.filter((l) => l.includes('jobId="aud-1"'));
    expect(lines[0]).to.equal('audit: EXECUTED action="notify" jobId="aud-1" requestedBy="ACMP\\\\dave" devices=2 status=partial accepted=1 unsupported=1 titleChars=21 bodyChars=9');
    expect(lines).to.include(`audit: jobId="aud-1" accepted: "${ios}"`);
    expect(lines).to.include(`audit: jobId="aud-1" unsupported: "${win}"`);
    const all = d.logs.join('\n');
    expect(all).to.not.include('Falcon');
    expect(all).to.not.include(env.secretApp.secret);
  });

  it('status: idle (says the journal is in memory), running, last result', async () => {
    const d = await deploy();
    // The editor gets the key and its parameters and shows them in its own language; Status nodes also get the runtime's text.
    expect(d.statuses[0]).to.deep.equal({ fill: 'yellow', shape: 'ring', text: 'intune-action.status.idleMemory {"store":"memory"}', runtimeText: 'idle (job memory not persistent: memory)' });
    expect(d.warnings.some((w) => /non-persistent context store "memory"/.test(w))).to.equal(true);
    const ids = devicesOf(env.tenant, 'ios', 2);
    await d.run({ action: 'sync', deviceIds: ids });
    await sleep(20);
    expect(d.statuses.some((s) => s.fill === 'blue' && s.text?.startsWith('intune-action.status.running {'))).to.equal(true);
    expect(d.statuses.at(-1)).to.deep.equal({ fill: 'green', shape: 'dot', text: 'intune-action.status.finished {"accepted":2,"total":2}', runtimeText: 'finished: 2 of 2 accepted' });
  });

  it('journal: namespaced per node (another node runs the same jobId), forgotten after the retention, and a started-but-unfinished job is refused', async () => {
    const d = await deploy({ retentionHours: 0.0015 }, { secondAction: {} });
    const ids = devicesOf(env.tenant, 'ios', 2);
    const first = await d.run({ action: 'sync', deviceIds: ids, jobId: 'ns-1' });
    expect(first.report.status).to.equal('finished');
    const other = await runOn('act2', 'out2', { action: 'sync', deviceIds: ids, jobId: 'ns-1' });
    expect(other.report.replayed, 'the second node has its own journal').to.equal(undefined);
    expect(other.report.status).to.equal('finished');
    const replay = await d.run({ action: 'sync', deviceIds: ids, jobId: 'ns-1' });
    expect(replay.report.replayed).to.equal(true);
    await sleep(5600); // retention 5.4 s (long enough for the three runs before it on a busy machine)
    const later = await d.run({ action: 'sync', deviceIds: ids, jobId: 'ns-1' });
    expect(later.report.replayed, 'forgotten after the retention').to.equal(undefined);
    // a job that started but never finished (crash) is not run again
    await new Promise<void>((res, rej) =>
      d.act.context().set(
        'intune-action-journal',
        { v: 1, jobs: { 'job:crashed-1': { at: Date.now(), state: 'started', fingerprint: `sync:${[...ids].map((x) => x.toLowerCase()).sort().join(',')}`, action: 'sync', devices: 2, requestedBy: null } } },
        (e) => (e ? rej(e) : res()),
      ),
    );
    const before = env.graph.stats.requests;
    const crashed = await d.run({ action: 'sync', deviceIds: ids, jobId: 'crashed-1' });
    expect(crashed.report.code).to.equal('interrupted');
    expect(crashed.report.error).to.match(/never finished .*not run again/);
    expect(env.graph.stats.requests).to.equal(before);
  });

  // ------------------------------------------------------------ follow-up

  describe('follow-up of the action state', () => {
    it('reports done, notSupported (as unsupported) and a timeout per device', async () => {
      const d = await deploy({ followUp: true, followUpInterval: 1, followUpTimeout: 4, perDevice: true });
      const [iosDone, iosPending] = devicesOf(env.tenant, 'ios', 2);
      const win = devicesOf(env.tenant, 'windows', 1)[0]; // remoteLock is not supported on Windows
      const p = d.run({ action: 'lock', deviceIds: [iosDone, iosPending, win], jobId: 'fu-1' });
      // Mark it done once Intune has taken the lock (a fixed sleep races on a busy machine).
      for (let i = 0; i < 200 && !env.tenant.actionLog.some((e) => e.deviceId === iosDone && e.action === 'remoteLock'); i++) await sleep(25);
      setActionState(env.tenant, iosDone, 'remoteLock', 'done');
      const r = await p;
      const res = byId(r.report);
      expect(res.get(iosDone)).to.include({ outcome: 'accepted', actionState: 'done' });
      expect(res.get(win)).to.include({ outcome: 'unsupported', actionState: 'notSupported' });
      expect(res.get(iosPending)).to.include({ outcome: 'accepted', actionState: 'pending', followUpTimedOut: true });
      expect(r.report.followUp).to.deep.equal({ timeoutSec: 4, complete: false, states: { done: 1, notSupported: 1, pending: 1 } });
      expect(r.report.status).to.equal('partial');
      // per-device messages come when each device is final, before the result
      expect(r.order).to.deep.equal(['device', 'device', 'device', 'result']);
      expect(r.devices.map((m) => m.payload.deviceId).slice(-1)).to.deep.equal([iosPending]);
      expect(d.statuses.some((s) => s.text?.startsWith('intune-action.status.following {'))).to.equal(true);
    });

    it('a retired device that disappears from Intune counts as done', async () => {
      const d = await deploy({ allowRetire: true, followUp: true, followUpInterval: 1, followUpTimeout: 10 });
      const [dev] = devicesOf(env.tenant, 'android-fm', 1);
      const p = d.run({ action: 'retire', deviceIds: [dev], confirm: true, jobId: 'fu-2' });
      // Remove the device only once Intune has taken the retire (a fixed sleep races on a busy machine).
      for (let i = 0; i < 100 && !env.tenant.actionLog.some((e) => e.deviceId === dev && e.action === 'retire'); i++) await sleep(50);
      env.tenant.removeDevice(dev);
      const r = await p;
      expect(r.report.results[0]).to.include({ outcome: 'accepted', actionState: 'done', note: 'deviceRemoved' });
      expect(r.report.followUp!.complete).to.equal(true);
      expect(r.report.status).to.equal('finished');
    });
  });

  // ------------------------------------------------------------ per-device output

  it('per-device output: one message per device with the job id, in addition to the one result', async () => {
    const d = await deploy({ perDevice: true });
    const ids = devicesOf(env.tenant, 'android-wp', 3);
    const ghost = unknownId();
    const r = await d.run({ action: 'sync', deviceIds: [...ids, ghost], jobId: 'pd-1', requestedBy: 'erin' }, { acmp: { server: 'A1' } });
    expect(r.devices).to.have.length(4);
    for (const m of r.devices) {
      expect(m.topic).to.equal('intune/action/device');
      expect(m.acmp, 'message properties are carried along').to.deep.equal({ server: 'A1' });
      expect(m.payload).to.include({ jobId: 'pd-1', action: 'sync', requestedBy: 'erin', total: 4 });
    }
    expect(r.devices.find((m) => m.payload.deviceId === ghost)!.payload.outcome).to.equal('notFound');
    expect(r.msg.acmp).to.deep.equal({ server: 'A1' });
    expect(r.order.filter((x) => x === 'result')).to.have.length(1);
  });

  // ------------------------------------------------------------ scale, throttling, close

  describe('many devices', function () {
    let big: SimEnv;
    let saved: SimEnv;
    before(async () => {
      saved = env;
      big = await startSimEnv({ devices: 1700, seed: 5 });
      env = big;
    });
    after(async () => {
      env = saved;
      await big?.stop();
    });

    it('a 1,000-device lock meets write throttling, retries only what was throttled, and accounts for every device once', async function () {
      this.timeout(90_000);
      // Intune's limit, scaled down: 50 writes per 1 s window, fewer than the 80 of the first four $batches
      // sent at once (also on a slow machine); the client is allowed more, so Graph throttles.
      env.graph.setLimits({ windowMs: 1000, devices: { appWrites: 50, tenantWrites: 100 } });
      const d = await deploy({ maxDevices: 1000 }, { cfg: { overrides: { writesPer20s: 10_000, requestsPer20s: 20_000 } } });
      const ids = anyDevices(env.tenant, 1000);
      const from = env.tenant.actionLog.length;
      env.graph.resetStats();
      const r = await d.run({ action: 'lock', deviceIds: ids, jobId: 'big-lock' });
      expect(env.graph.stats.throttledBatchItems, 'Graph throttled inner requests').to.be.greaterThan(0);
      expect(r.report.results).to.have.length(1000);
      expect(r.report.results.map((x) => x.deviceId)).to.deep.equal(ids);
      expect(r.report.counts.accepted).to.equal(1000);
      expect(r.report.status).to.equal('finished');
      const locks = env.tenant.actionLog.slice(from).filter((e) => e.action === 'remoteLock').map((e) => e.deviceId);
      expect(locks).to.have.length(1000);
      expect(new Set(locks).size, 'no device locked twice').to.equal(1000);
      expect(env.graph.stats.byStatus['204']).to.equal(1000);
      expect(d.statuses.some((s) => s.fill === 'yellow' && s.text?.startsWith('intune-action.status.throttled {')), 'status showed throttling').to.equal(true);
      expect(d.statuses.at(-1)).to.include({ fill: 'green', shape: 'dot', text: 'intune-action.status.finished {"accepted":1000,"total":1000}' });
    });

    it('closing the node aborts its running request: no write reaches Intune after close, no message', async () => {
      env.graph.setLimits({ windowMs: 1000, devices: { appWrites: 40, tenantWrites: 80 } });
      const d = await deploy({ maxDevices: 1000 }, { cfg: { overrides: { writesPer20s: 10_000, requestsPer20s: 20_000 } } });
      const ids = anyDevices(env.tenant, 600);
      const from = env.tenant.actionLog.length;
      let results = 0;
      (helper.getNode('out') as unknown as AnyNode).on('input', () => results++);
      d.act.receive({ payload: { action: 'sync', deviceIds: ids, jobId: 'closing-1' } });
      for (let i = 0; i < 100 && env.tenant.actionLog.length - from < 40; i++) await sleep(50);
      // Close only this node, as a "modified nodes" deploy does: the config node and its Graph client stay up.
      const started = Date.now();
      await (d.act as unknown as { close(removed: boolean): Promise<void> }).close(false);
      expect(Date.now() - started, 'close waits only for the abort').to.be.lessThan(5000);
      const atClose = env.tenant.actionLog.length - from;
      expect(atClose).to.be.greaterThan(0).and.lessThan(600);
      await sleep(2500);
      expect(env.tenant.actionLog.length - from, 'no write after close').to.equal(atClose);
      expect(results, 'no message after close').to.equal(0);
    });
  });
});
