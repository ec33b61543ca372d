/**
 * The examples of flows/ as they are, with only their connections pointed
 * at the simulated services (Intune/Graph, 4me, SICS with ACMP servers):
 * each one does what its comment says. The flow nodes keep every property
 * of the file; inject nodes are replaced by sending their message, debug
 * nodes by collectors, comment nodes are dropped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim } from '../sim/fourme';
import { distNode, helper, loadFlow, repoRoot, tlsNode } from './support/node-helper';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';
import { startAcmpEnv, SICS_USER, SICS_PASSWORD, until, type AcmpEnv } from './support/acmp-fixtures';

type Node = Record<string, unknown> & { id: string; type: string };
type Msg = Record<string, any>;

const NODES = ['intune-config', 'intune-devices', 'intune-compliance', 'intune-action', 'intune-4me-config', 'intune-4me', 'intune-acmp-config', 'intune-acmp', 'intune-acmp-actions'].map(distNode);
const PAT = 'pat-examples-0123456789abcdef';
const CA = 'examples-sim-ca';

function example(name: string): Node[] {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', `${name}.json`), 'utf8')) as Node[];
}

describe('examples against the simulated services', function () {
  this.timeout(120_000);
  let sim: SimEnv;
  let fourme: FourMeSim;
  let acmp: AcmpEnv;
  let caFile: string;

  before(async () => {
    sim = await startSimEnv({ devices: 200, seed: 11 });
    caFile = sim.caFile;
    fourme = new FourMeSim({ tls: sharedTestCa().server, accounts: [{ id: 'contoso', name: 'Contoso' }], personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }] });
    await fourme.start();
    acmp = await startAcmpEnv({ servers: 1 });
  });
  after(async () => {
    await helper.unload();
    await fourme?.stop();
    await acmp?.stop();
    await sim?.stop();
  });
  afterEach(async () => {
    await helper.unload();
  });

  /** Loads an example with its connections pointed at the sims; returns the collectors and the inject messages. */
  async function deploy(name: string) {
    const nodes = example(name);
    const intune = configFlow(sim).nodes[1];
    const credentials: Record<string, Record<string, unknown>> = {};
    const injects = new Map<string, { target: string; msg: Msg }>();
    const flow: Node[] = [{ id: CA, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: caFile, verifyservercert: true }];
    for (const n of nodes) {
      switch (n.type) {
        case 'comment':
          break;
        case 'inject': {
          const msg: Msg = {};
          for (const p of n.props as Array<{ p: string; v: string; vt: string }>) msg[p.p] = p.v;
          injects.set(n.name as string, { target: (n.wires as string[][])[0][0], msg });
          break;
        }
        case 'debug':
          flow.push({ id: n.id, type: 'helper', z: n.z as string });
          break;
        case 'intune-config':
          flow.push({ ...n, ...pick(intune, ['tenantId', 'clientId', 'cloud', 'authorityHost', 'graphBaseUrl', 'portalUrl']), tls: CA });
          credentials[n.id] = { clientSecret: sim.secretApp.secret };
          break;
        case 'intune-4me-config':
          flow.push({ ...n, environment: 'custom', graphqlUrl: fourme.graphqlUrl, tokenUrl: fourme.tokenUrl, tls: CA, asyncPollMs: 50 });
          credentials[n.id] = { token: PAT };
          break;
        case 'intune-acmp-config':
          flow.push({ ...n, host: '127.0.0.1', port: acmp.sics.port, tls: CA, consumeWaitMs: 500 });
          credentials[n.id] = { user: SICS_USER, password: SICS_PASSWORD };
          break;
        default:
          flow.push(n);
      }
    }
    await loadFlow([tlsNode, ...NODES], flow, credentials);
    const seen = new Map<string, Msg[]>();
    for (const n of nodes.filter((x) => x.type === 'debug')) {
      const list: Msg[] = [];
      seen.set(n.name as string, list);
      (helper.getNode(n.id) as unknown as { on(e: string, f: (m: Msg) => void): void }).on('input', (m) => list.push(m));
    }
    return {
      debug: (label: string) => seen.get(label) ?? expect.fail(`no debug node "${label}" in ${name}`),
      press: (label: string) => {
        const i = injects.get(label) ?? expect.fail(`no inject node "${label}" in ${name}`);
        (helper.getNode(i.target) as unknown as { receive(m: Msg): void }).receive({ ...i.msg });
      },
    };
  }

  it('"4me - devices to configuration items": a full run makes one CI per device the filters pass on', async () => {
    const ex = await deploy('4me - devices to configuration items');
    ex.press('full run');
    const [summary] = (await until(() => (ex.debug('4me run summary').length ? ex.debug('4me run summary') : undefined), 60_000, 'the 4me run summary'))!;
    const [devices] = ex.debug('device run summary');
    expect(devices.payload.result).to.equal('completed');
    const emitted = devices.payload.stats.emitted as number;
    expect(emitted).to.be.greaterThan(0);
    expect(summary.payload.errorCount, JSON.stringify(summary.payload.errors)).to.equal(0);
    expect(summary.payload.complete).to.equal(true);
    expect(summary.payload.cis.created).to.equal(emitted);
    expect(fourme.account('contoso').configurationItems.filter((c) => c.source === 'Intune').length).to.equal(emitted);
    // Custom fields are off in the example: nothing a fresh account's products lack is sent.
    expect(fourme.account('contoso').configurationItems.every((c) => c.customFields.length === 0)).to.equal(true);
  });

  it('"4me - compliance incidents": a run raises at most 10 new incidents and holds back the rest', async () => {
    const ex = await deploy('4me - compliance incidents');
    const before = fourme.account('contoso').requests.length;
    ex.press('run now');
    const [summary] = (await until(() => (ex.debug('4me run summary').length ? ex.debug('4me run summary') : undefined), 60_000, 'the 4me run summary'))!;
    const [compliance] = ex.debug('compliance run summary');
    expect(compliance.payload.result).to.equal('completed');
    const violations = compliance.payload.stats.emitted as number;
    expect(violations, 'violations in the simulated tenant').to.be.greaterThan(10);
    expect(summary.payload.errorCount, JSON.stringify(summary.payload.errors)).to.equal(0);
    expect(summary.payload.incidents.raised).to.equal(10);
    expect(summary.payload.incidents.capped).to.equal(violations - 10);
    expect(fourme.account('contoso').requests.length - before).to.equal(10);
  });

  it('"ACMP - devices to ACMP": a full run publishes every device the filters pass on to the listed server', async () => {
    const ex = await deploy('ACMP - devices to ACMP');
    ex.press('full run');
    const [devices] = (await until(() => (ex.debug('device run summary').length ? ex.debug('device run summary') : undefined), 60_000, 'the device run summary'))!;
    const reports = (await until(() => {
      const r = ex.debug('ACMP report');
      return r.length && r[r.length - 1].payload.last ? r : undefined;
    }, 60_000, 'the last ACMP report'))!;
    expect(devices.payload.result).to.equal('completed');
    expect(reports.every((r) => r.payload.servers.every((s: Msg) => s.failed === 0))).to.equal(true);
    expect(acmp.servers[0].serverId).to.equal('SRV1');
    expect(acmp.servers[0].storedDevices().length).to.equal(devices.payload.stats.emitted);
  });

  it('"ACMP - query actions": jobs come back to ACMP as failed: dry run, unconfirmed wipe, wipe not allowed; nothing reaches Intune', async () => {
    const ex = await deploy('ACMP - query actions');
    const srv = acmp.servers[0];
    await until(() => acmp.sics.targetNames('IntuneConnector').some((t) => t.startsWith('intune-jobs-')), 10_000, 'the jobs target');
    const device = sim.tenant.deviceAt(0)!.id;
    const graphBefore = sim.graph.stats.requests;

    const sync = srv.emitJob({ action: 'sync', clients: [{ acmpClientId: 'CL-1', intuneId: device }] });
    const s1 = await srv.waitForJobStatus(sync, 30_000);
    expect(s1.state).to.equal('failed');
    expect(s1.reason).to.match(/dry-run mode: nothing was sent to Intune/);

    const unconfirmed = srv.emitJob({ action: 'wipe', confirmed: false, clients: [{ acmpClientId: 'CL-2', intuneId: device }] });
    expect((await srv.waitForJobStatus(unconfirmed, 30_000)).reason).to.match(/needs the operator's confirmation/);

    const notAllowed = srv.emitJob({ action: 'wipe', confirmed: true, clients: [{ acmpClientId: 'CL-3', intuneId: device }] });
    expect((await srv.waitForJobStatus(notAllowed, 30_000)).reason).to.match(/does not allow the action "wipe"/);

    expect(sim.graph.stats.requests, 'requests to Graph').to.equal(graphBefore);
    expect(ex.debug('action requests').map((m) => m.payload.jobId)).to.deep.equal([sync, notAllowed]);
    await until(() => ex.debug('job status sent').length === 2 || undefined, 10_000, 'two job status reports');
    expect(ex.debug('job status sent').map((m) => [m.payload.jobId, m.payload.state, m.payload.sent])).to.deep.equal([
      [sync, 'failed', true],
      [notAllowed, 'failed', true],
    ]);
  });
});

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}
