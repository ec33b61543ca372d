/**
 * The integrator's path end to end, in a real Node-RED process with the
 * package installed as `npm pack` ships it: the instance templates come
 * from Import > Examples; the shipped instance tool adds two ACMP instances
 * (one signing in with a client secret, one with a certificate, each for its
 * own ACMP server) and a 4me instance through the Admin API with admin auth
 * on; the first syncs fill the simulated ACMP servers and 4me; ACMP query
 * actions reach Intune and their results come back; and what one instance
 * does never shows in the other's server.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startNodeRed, repoRoot, type NodeRedProcess } from '../sim/node-red-runner';
import { FourMeSim } from '../sim/fourme';
import { sharedTestCa } from '../sim/pki';
import type { AcmpServerSim } from '../sim/sics';
import { parseFilterSettings } from '../nodes/lib/devices/device-filters';
import { startSimEnv, type SimEnv } from './support/sim-env';
import { startAcmpEnv, SICS_PASSWORD, SICS_USER, type AcmpEnv } from './support/acmp-fixtures';
import { deviceGroundTruth } from './support/device-fixtures';
import { until } from './support/until';

const run = promisify(execFile);
const MODULE = '@intune-connector/node-red-intune';
const ACCOUNT = 'acme';
const PAT = 'e2e-4me-personal-access-token';
type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string };

describe('e2e: instances from the templates and the instance tool, side by side', function () {
  this.timeout(240_000);
  const admin = { username: 'admin', password: 'e2e-instances-admin' };
  let env: SimEnv;
  let acmp: AcmpEnv;
  let srv1: AcmpServerSim;
  let srv2: AcmpServerSim;
  let fourme: FourMeSim;
  let red: NodeRedProcess;
  let work: string;
  let kept: Set<string>;
  let devicesNode: FlowNode;

  before(async () => {
    env = await startSimEnv({ devices: 120, seed: 21 });
    acmp = await startAcmpEnv({ servers: 0 });
    // Each ACMP server publishes query actions for "its" instance, addressed by the instance's name.
    srv1 = acmp.sics.addAcmpServer({ serverId: 'SRV1', jobsRoutingKey: 'IntuneConnector_1.jobs' });
    srv2 = acmp.sics.addAcmpServer({ serverId: 'SRV2', jobsRoutingKey: 'IntuneConnector_2.jobs' });
    fourme = new FourMeSim({ tls: sharedTestCa().server, accounts: [{ id: ACCOUNT }], personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }] });
    await fourme.start();
    const people = [];
    for (const u of env.tenant.users.iterate()) people.push({ name: u.displayName, primaryEmail: u.userPrincipalName });
    fourme.seedPeople(people, ACCOUNT);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-instances-'));
    red = await startNodeRed({ adminUser: admin, settings: { contextStorage: { default: { module: 'localfilesystem' } } } });
    const template = JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', 'ACMP instance (IntuneConnector_1).json'), 'utf8')) as FlowNode[];
    devicesNode = template.find((n) => n.type === 'intune-devices')!;
    kept = deviceGroundTruth(env.tenant, parseFilterSettings(devicesNode), Date.now()).kept;
  });
  after(async () => {
    if (process.env.E2E_DUMP) fs.writeFileSync(process.env.E2E_DUMP, red?.logs() ?? '');
    await red?.stop();
    await fourme?.stop();
    await acmp?.stop();
    await env?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('each instance template is offered under Import > Examples and deploys as imported', async () => {
    for (const name of ['ACMP instance (IntuneConnector_1)', '4me instance (Intune4me_1)']) {
      const res = await red.admin.get(`/library/examples/flows/${MODULE}/${encodeURIComponent(name)}`);
      expect(res.status, `${name}: ${JSON.stringify(res.data).slice(0, 200)}`).to.equal(200);
      const nodes = res.data as FlowNode[];
      expect(nodes).to.deep.equal(JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', `${name}.json`), 'utf8')));
      const mark = red.mark();
      const dep = await red.admin.post('/flows', { flows: nodes }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
      expect(dep.status, JSON.stringify(dep.data)).to.equal(200);
      await red.waitForLog(/Started flows/, 30_000, mark);
      const log = red.logs().slice(mark - (red.mark() - red.logs().length));
      expect(log, name).to.not.match(/Waiting for missing types|Unknown type|\[link (in|out|call)[^\]]*\].*[Ee]rror/);
    }
    // Start the instances below from an empty workspace.
    const cleared = await red.admin.post('/flows', { flows: [] }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
    expect(cleared.status).to.equal(200);
  });

  /** Runs the instance tool shipped in the installed package, as `npx node-red-intune-instance` would. */
  async function tool(args: string[], secrets: Record<string, string>): Promise<string> {
    const bin = path.join(red.userDir, 'node_modules', ...MODULE.split('/'), 'dist', 'bin', 'node-red-intune-instance.js');
    const { stdout } = await run(process.execPath, [bin, ...args], { env: { ...process.env, ...secrets }, cwd: red.userDir });
    return stdout;
  }

  const intuneFlags = () => [
    '--tenant-id', env.tenantId, '--cloud', 'custom', '--authority-host', env.identity.url, '--graph-url', env.graph.url,
    '--portal-url', 'https://intune.microsoft.com', '--ca', env.caFile,
  ];
  const acmpFlags = (target: string) => [
    '--sics-host', '127.0.0.1', '--sics-port', String(acmp.sics.port), '--sics-user', SICS_USER, '--sics-password-env', 'SICS_PW',
    '--acmp-server', 'SRV1', '--acmp-server', 'SRV2', '--acmp-target', target,
  ];
  const login = ['--url', '', '--user', admin.username, '--password-env', 'NR_PW'];
  const withUrl = (a: string[]) => a.map((x, i) => (a[i - 1] === '--url' ? red.url : x));

  it('the instance tool adds two ACMP instances and a 4me instance; the first syncs fill every server with exactly the tenant\'s devices', async () => {
    const pfx = path.join(work, 'connector.pfx');
    fs.writeFileSync(pfx, Buffer.from(env.certApp.cert.pfxBase64, 'base64'));
    const secrets = { NR_PW: admin.password, SICS_PW: SICS_PASSWORD, SECRET: env.secretApp.secret, PFX_PW: env.certApp.cert.password, PAT };
    const mark = red.mark();
    const said1 = await tool(withUrl(['--template', 'acmp', '--instance', '1', ...login, ...intuneFlags(), '--client-id', env.secretApp.clientId, '--auth', 'secret', '--client-secret-env', 'SECRET', ...acmpFlags('SRV1')]), secrets);
    expect(said1).to.match(/Added IntuneConnector_1, IntuneWorkflowEngine_1, IntuneMobileDevices_1/);
    // Instance 2 with an Admin API token instead of a user, as `node-red admin login` would give.
    const tok = await red.admin.post('/auth/token', { client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: admin.username, password: admin.password });
    expect(tok.status).to.equal(200);
    const said2 = await tool(
      withUrl(['--template', 'acmp', '--instance', '2', '--url', '', '--token', tok.data.access_token as string, ...intuneFlags(), '--client-id', env.certApp.clientId, '--auth', 'certificate', '--pfx', pfx, '--pfx-passphrase-env', 'PFX_PW', ...acmpFlags('SRV2')]),
      secrets,
    );
    expect(said2).to.match(/Added IntuneConnector_2/);
    await tool(
      withUrl([
        '--template', '4me', '--instance', '1', ...login, ...intuneFlags(), '--client-id', env.secretApp.clientId, '--auth', 'secret', '--client-secret-env', 'SECRET',
        '--fourme-account', ACCOUNT, '--fourme-graphql-url', fourme.graphqlUrl, '--fourme-token-env', 'PAT', '--platforms', 'windows,macos,ios,android,linux',
        '--set', 'intune-4me.maxNewPerRun=1000',
      ]),
      secrets,
    );
    // Adding instance 2 again is refused (its flows exist), and nothing changes.
    const again = await tool(withUrl(['--template', 'acmp', '--instance', '2', ...login]), secrets).catch((e: Error & { stderr?: string }) => e.stderr ?? e.message);
    expect(again).to.match(/IntuneConnector_2 exists already/);

    const flows = (await red.admin.get('/flows')).data.flows as FlowNode[];
    expect(flows.filter((n) => n.type === 'tab').map((n) => n.label)).to.deep.equal([
      'IntuneConnector_1', 'IntuneWorkflowEngine_1', 'IntuneMobileDevices_1', 'IntuneConnector_2', 'IntuneWorkflowEngine_2', 'IntuneMobileDevices_2', 'Intune4me_1',
    ]);
    // No secret went into the flows.
    const text = JSON.stringify(flows) + fs.readFileSync(path.join(red.userDir, 'flows.json'), 'utf8');
    for (const s of Object.values(secrets)) expect(text.includes(s), 'a secret in the flows').to.equal(false);

    // The first runs start by themselves, about 10 s after the deploy.
    const ids = [...kept].sort();
    const stored = (srv: AcmpServerSim, instance: string) => srv.storedDevices(instance).map((d) => d.id);
    await until(() => [stored(srv1, 'IntuneConnector_1').length, stored(srv2, 'IntuneConnector_2').length], ([a, b]) => a === ids.length && b === ids.length, 90_000, 'both ACMP servers filled');
    expect(stored(srv1, 'IntuneConnector_1')).to.deep.equal(ids);
    expect(stored(srv2, 'IntuneConnector_2')).to.deep.equal(ids);
    expect(srv1.storedDevices().length, 'SRV1 holds instance 1\'s devices only').to.equal(ids.length);
    expect(srv2.storedDevices().length, 'SRV2 holds instance 2\'s devices only').to.equal(ids.length);
    expect([...srv1.devices.values()].every((d) => d.onDemandDefinition === 'IntuneMobileDevices_1')).to.equal(true);
    expect([...srv2.devices.values()].every((d) => d.onDemandDefinition === 'IntuneMobileDevices_2')).to.equal(true);

    // 4me: one CI per device, one incident per violation of those devices.
    const account = fourme.account(ACCOUNT);
    await until(() => account.configurationItems.length, (n) => n === ids.length, 90_000, '4me CIs');
    expect(account.configurationItems.map((c) => c.sourceID).sort()).to.deep.equal(ids);
    // Every policy platform is watched and grace periods are respected, as the template is set up.
    const violations = [...env.tenant.groundTruthViolations()].filter((v) => kept.has(v.deviceId) && !v.inGracePeriod).map((v) => v.key).sort();
    expect(violations.length).to.be.greaterThan(0);
    await until(() => account.requests.filter((r) => r.category === 'incident').length, (n) => n >= violations.length, 90_000, '4me incidents');
    expect(account.requests.filter((r) => r.category === 'incident').map((r) => r.sourceID).sort()).to.deep.equal(violations);

    // Each instance signed in with its own app registration.
    const apps = new Set(env.graph.requestLog.filter((e) => e.at >= new Date(Date.now() - 300_000).toISOString()).map((e) => e.appid));
    expect([...apps].sort()).to.deep.equal([env.certApp.clientId, env.secretApp.clientId].sort());
    expect(red.logs().slice(mark - (red.mark() - red.logs().length))).to.not.match(/\[error\]/);
  });

  it('an ACMP query action reaches Intune through the instance of the server that sent it, and its result goes back there', async () => {
    const devices = [...kept].sort().slice(0, 2);
    const fromSrv2 = env.graph.requestLog.length;
    const job2 = srv2.emitJob({ action: 'sync', requestedBy: 'ACME\\j.doe', clients: devices.map((id, i) => ({ acmpClientId: `CL-${i}`, intuneId: id })) });
    const status2 = await srv2.waitForJobStatus(job2, 60_000);
    expect(status2.state).to.equal('finished');
    expect(status2.clients.map((c) => [c.acmpClientId, c.outcome])).to.deep.equal([['CL-0', 'accepted'], ['CL-1', 'accepted']]);
    const calls2 = env.graph.requestLog.slice(fromSrv2).filter((e) => /syncDevice/.test(e.url));
    expect(calls2.length, 'sync calls').to.be.greaterThan(0);
    expect(new Set(calls2.map((e) => e.appid)), 'instance 2 (certificate app) executed it').to.deep.equal(new Set([env.certApp.clientId]));
    expect(srv1.jobs.has(job2)).to.equal(false);

    const fromSrv1 = env.graph.requestLog.length;
    const job1 = srv1.emitJob({ action: 'lock', clients: [{ acmpClientId: 'CL-9', intuneId: devices[0] }] });
    const status1 = await srv1.waitForJobStatus(job1, 60_000);
    expect([status1.state, status1.clients[0].outcome]).to.deep.equal(['finished', 'accepted']);
    const calls1 = env.graph.requestLog.slice(fromSrv1).filter((e) => /remoteLock/.test(e.url));
    expect(new Set(calls1.map((e) => e.appid)), 'instance 1 (secret app) executed it').to.deep.equal(new Set([env.secretApp.clientId]));
    expect(env.tenant.actionLog.filter((a) => a.deviceId === devices[0]).map((a) => a.action)).to.include.members(['syncDevice', 'remoteLock']);
  });

  it('a scan of instance 1 changes what instance 1 owns on its server, and nothing of instance 2', async () => {
    const flows = (await red.admin.get('/flows')).data.flows as FlowNode[];
    const engine1 = flows.find((n) => n.type === 'tab' && n.label === 'IntuneWorkflowEngine_1')!;
    const fullScan = flows.find((n) => n.z === engine1.id && n.type === 'inject' && n.name === 'full scan now')!;
    // A device that is no re-enrolment's original, so removing it brings no older record back.
    const originals = new Set<number>();
    for (let i = 0; i < env.tenant.positions; i++) {
      const d = env.tenant.metaAt(i)?.duplicateOf;
      if (d !== null && d !== undefined) originals.add(d);
    }
    const [renamed, removed] = [...kept].sort().filter((id) => !originals.has(env.tenant.indexOf(id)!)).slice(5, 7);
    env.tenant.patchDevice(renamed, { deviceName: 'RENAMED-IN-INTUNE' });
    env.tenant.touchDevice(renamed);
    env.tenant.removeDevice(removed);
    const before2 = JSON.stringify(srv2.storedDevices('IntuneConnector_2'));

    const res = await red.admin.post(`/inject/${fullScan.id}`, {});
    expect(res.status).to.equal(200);
    await until(() => srv1.storedDevices('IntuneConnector_1'), (ds) => !ds.some((d) => d.id === removed) && ds.some((d) => d.id === renamed && d.name === 'RENAMED-IN-INTUNE'), 60_000, 'instance 1 applying the change');
    const now = deviceGroundTruth(env.tenant, parseFilterSettings(devicesNode), Date.now()).kept;
    expect(srv1.storedDevices().map((d) => d.id)).to.deep.equal([...now].sort());
    expect(JSON.stringify(srv2.storedDevices('IntuneConnector_2')), 'instance 2\'s server untouched').to.equal(before2);
  });
});
