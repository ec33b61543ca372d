/**
 * Discovered apps end to end, the way an integrator turns them on: the
 * package installed as `npm pack` ships it, an ACMP instance and a 4me
 * instance added by the shipped instance tool with READ_SOFTWARE=true (the
 * templates ship it off), and the first runs read Intune's discovered-apps
 * report export from the simulated Graph. The software must arrive in the
 * simulated ACMP server and in 4me exactly as the tenant has it; an
 * unchanged second run writes nothing anywhere; an uninstalled app and a
 * removed device are carried over on the next full run.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startNodeRed, type NodeRedProcess } from '../sim/node-red-runner';
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
const PAT = 'e2e-software-personal-access-token';
type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string; name?: string; label?: string };
interface RunsAnswer { instances: Array<{ name: string; nodes: Array<{ id: string; type: string; runs: Array<{ k: string; r: string; wr?: number }> }> }> }

describe('e2e: discovered apps through the shipped templates into ACMP and 4me', function () {
  this.timeout(300_000);
  const admin = { username: 'admin', password: 'e2e-software-admin' };
  let env: SimEnv;
  let acmp: AcmpEnv;
  let srv: AcmpServerSim;
  let fourme: FourMeSim;
  let red: NodeRedProcess;
  let kept: string[];

  before(async () => {
    env = await startSimEnv({ devices: 80, seed: 47 });
    acmp = await startAcmpEnv({ servers: 0 });
    srv = acmp.sics.addAcmpServer({ serverId: 'SRV1', jobsRoutingKey: 'IntuneConnector_1.jobs' });
    fourme = new FourMeSim({ tls: sharedTestCa().server, accounts: [{ id: ACCOUNT }], personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }] });
    await fourme.start();
    // The 4me administrator's part (docs/fourme-software.md): a software category with rule set Software.
    fourme.seedProductCategory({ name: 'Application', group: 'software', ruleSet: 'software' }, ACCOUNT);
    const people = [];
    for (const u of env.tenant.users.iterate()) people.push({ name: u.displayName, primaryEmail: u.userPrincipalName });
    fourme.seedPeople(people, ACCOUNT);
    red = await startNodeRed({ adminUser: admin, settings: { contextStorage: { default: { module: 'localfilesystem' } } } });
  });
  after(async () => {
    if (process.env.E2E_DUMP) (await import('node:fs')).writeFileSync(process.env.E2E_DUMP, red?.logs() ?? '');
    await red?.stop();
    await fourme?.stop();
    await acmp?.stop();
    await env?.stop();
  });

  async function tool(args: string[], secrets: Record<string, string>): Promise<string> {
    const bin = path.join(red.userDir, 'node_modules', ...MODULE.split('/'), 'dist', 'bin', 'node-red-intune-instance.js');
    const { stdout } = await run(process.execPath, [bin, ...args], { env: { ...process.env, ...secrets }, cwd: red.userDir });
    return stdout;
  }

  /** Finished runs recorded by the nodes of a type (GET /intune/runs, the sidebar's data). */
  async function runsOf(type: string): Promise<Array<{ k: string; r: string; wr?: number }>> {
    const res = await red.admin.get('/intune/runs?runs=200');
    expect(res.status).to.equal(200);
    return (res.data as RunsAnswer).instances.flatMap((i) => i.nodes.filter((n) => n.type === type).flatMap((n) => n.runs));
  }

  /** Presses a template's inject button by name and waits until both sinks have recorded one more run. */
  async function fullRunsNow(): Promise<void> {
    const flows = (await red.admin.get('/flows')).data.flows as FlowNode[];
    const before = [(await runsOf('intune-acmp')).length, (await runsOf('intune-4me')).filter((r) => r.k === 'cis').length];
    for (const name of ['full scan now', 'full run now']) {
      const inject = flows.find((n) => n.type === 'inject' && n.name === name);
      expect(inject, name).to.not.equal(undefined);
      expect((await red.admin.post(`/inject/${inject!.id}`, {})).status).to.equal(200);
    }
    await until(
      async () => [(await runsOf('intune-acmp')).length, (await runsOf('intune-4me')).filter((r) => r.k === 'cis').length],
      ([a, b]) => a > before[0] && b > before[1],
      120_000,
      'one more run of each sink',
    );
  }

  const expectedApps = (id: string) =>
    [...new Set(env.tenant.appsAt(env.tenant.indexOf(id)!).map((a) => `${a.name}|${a.version}`))].sort();
  const acmpApps = (id: string) => (srv.softwareOf(id) ?? []).map((a) => `${a.name}|${a.version}`).sort();
  const account = () => fourme.account(ACCOUNT);
  /** The software CIs 4me relates to a device's CI, as "name|version" from the software CI's product and name. */
  const fourmeApps = (id: string) => {
    const acc = account();
    const ci = acc.configurationItems.find((c) => c.sourceID === id);
    if (!ci) return undefined;
    const byId = new Map(acc.configurationItems.map((c) => [c.id, c]));
    return ci.childRelations.map((r) => byId.get(r.childId)!).map((c) => c.name).sort();
  };

  it('turned on through the instance tool, the first runs carry every device\'s apps into ACMP and 4me', async () => {
    const secrets = { NR_PW: admin.password, SICS_PW: SICS_PASSWORD, SECRET: env.secretApp.secret, PAT };
    const login = ['--url', red.url, '--user', admin.username, '--password-env', 'NR_PW'];
    const intune = [
      '--tenant-id', env.tenantId, '--cloud', 'custom', '--authority-host', env.identity.url, '--graph-url', env.graph.url,
      '--portal-url', 'https://intune.microsoft.com', '--ca', env.caFile, '--client-id', env.secretApp.clientId, '--auth', 'secret', '--client-secret-env', 'SECRET',
    ];
    await tool(['--template', 'acmp', '--instance', '1', ...login, ...intune, '--env', 'READ_SOFTWARE=true',
      '--sics-host', '127.0.0.1', '--sics-port', String(acmp.sics.port), '--sics-user', SICS_USER, '--sics-password-env', 'SICS_PW', '--acmp-server', 'SRV1', '--acmp-target', 'SRV1'], secrets);
    await tool(['--template', '4me', '--instance', '1', ...login, ...intune, '--env', 'READ_SOFTWARE=true',
      '--fourme-account', ACCOUNT, '--fourme-graphql-url', fourme.graphqlUrl, '--fourme-token-env', 'PAT', '--platforms', 'windows,macos,ios,android,linux',
      '--set', 'intune-4me.maxNewPerRun=1000'], secrets);

    const flows = (await red.admin.get('/flows')).data.flows as FlowNode[];
    const devicesNode = flows.find((n) => n.type === 'intune-devices' && n.readSoftware === '${READ_SOFTWARE}');
    expect(devicesNode, 'the template wires READ_SOFTWARE into the device source').to.not.equal(undefined);
    kept = [...deviceGroundTruth(env.tenant, parseFilterSettings(devicesNode!), Date.now()).kept].sort();
    const withApps = kept.filter((id) => expectedApps(id).length > 0);
    expect(withApps.length, 'the tenant has devices with apps').to.be.greaterThan(kept.length / 2);

    // The first runs start by themselves shortly after the deploy.
    await until(() => kept.every((id) => srv.softwareOf(id) !== undefined), (ok) => ok, 150_000, 'software of every device in ACMP');
    for (const id of kept) expect(acmpApps(id), `ACMP: apps of ${id}`).to.deep.equal(expectedApps(id));
    await until(() => kept.every((id) => fourmeApps(id)?.length === expectedApps(id).length), (ok) => ok, 150_000, 'software relations in 4me');
    // Software CIs are per title and version, written in bulk: far fewer calls than devices or installations.
    const installations = kept.reduce((n, id) => n + expectedApps(id).length, 0);
    expect(fourme.stats.mutations.discoveredConfigurationItems, 'bulk uploads').to.be.lessThan(kept.length);
    expect(installations).to.be.greaterThan(kept.length * 10);
    // The export job was asked for with the instance's own app, through the reports endpoint, a handful of times.
    const exportCalls = env.graph.requestLog.filter((e) => /reports\/exportJobs/.test(e.url));
    expect(exportCalls.length, 'export job requests').to.be.within(2, 40);
  });

  it('an unchanged second run writes nothing to ACMP or 4me', async () => {
    // Wait for both sinks to have recorded their first run, then count writes across one more.
    await until(async () => [(await runsOf('intune-acmp')).length, (await runsOf('intune-4me')).filter((r) => r.k === 'cis').length], ([a, b]) => a > 0 && b > 0, 60_000, 'first runs recorded');
    const publishes = acmp.sics.stats.publishes;
    const uploads = fourme.stats.mutations.discoveredConfigurationItems ?? 0;
    const updates = fourme.stats.mutations.configurationItemUpdate ?? 0;
    await fullRunsNow();
    expect(acmp.sics.stats.publishes - publishes, 'ACMP publishes').to.equal(0);
    expect((fourme.stats.mutations.discoveredConfigurationItems ?? 0) - uploads, '4me uploads').to.equal(0);
    expect((fourme.stats.mutations.configurationItemUpdate ?? 0) - updates, '4me updates').to.equal(0);
  });

  it('the Intune sidebar\'s data and the metrics are read from what the nodes know: no request to Intune, 4me or SICS', async () => {
    const graph = env.graph.requestLog.length;
    const fourmeRequests = fourme.requestLog.length;
    // The ACMP query-action intake polls SICS on its own (Consume, session renewal); nothing else may move.
    const sicsOther = () => Object.entries(acmp.sics.stats.byPath).filter(([p]) => !/ \/(Consume|Session)$/.test(p)).reduce((n, [, c]) => n + c, 0);
    const sics = sicsOther();
    for (let i = 0; i < 10; i++) {
      const runs = await red.admin.get('/intune/runs?runs=200');
      const metrics = await red.admin.get('/intune/metrics');
      expect([runs.status, metrics.status]).to.deep.equal([200, 200]);
      expect((runs.data as RunsAnswer).instances.length, 'instances listed').to.equal(2);
      expect(String(metrics.data)).to.match(/^intune_/m);
    }
    expect(env.graph.requestLog.length - graph, 'Graph requests').to.equal(0);
    expect(fourme.requestLog.length - fourmeRequests, '4me requests').to.equal(0);
    expect(sicsOther() - sics, 'SICS requests other than the intake\'s polling').to.equal(0);
  });

  it('an uninstalled app disappears from its device, and a removed device is handled, in both services', async () => {
    const originals = new Set<number>();
    for (let i = 0; i < env.tenant.positions; i++) {
      const d = env.tenant.metaAt(i)?.duplicateOf;
      if (d !== null && d !== undefined) originals.add(d);
    }
    const candidates = kept.filter((id) => !originals.has(env.tenant.indexOf(id)!) && expectedApps(id).length >= 3);
    const [changed, removed] = candidates;
    const gone = expectedApps(changed)[1].split('|')[0];
    env.tenant.removeApp(changed, gone);
    env.tenant.touchDevice(changed);
    env.tenant.removeDevice(removed);
    const removedCi = account().configurationItems.find((c) => c.sourceID === removed)!;

    await fullRunsNow();
    expect(acmpApps(changed)).to.deep.equal(expectedApps(changed));
    expect(acmpApps(changed).some((a) => a.startsWith(`${gone}|`)), 'ACMP no longer lists the app').to.equal(false);
    expect(srv.storedDevices().map((d) => d.id), 'ACMP: the removed device is gone').to.not.include(removed);
    expect(fourmeApps(changed)!.length, '4me: one relation fewer').to.equal(expectedApps(changed).length);
    expect(account().configurationItems.find((c) => c.id === removedCi.id)!.status, '4me: the removed device\'s CI is archived, not deleted').to.equal('archived');
  });
});
