/**
 * `npm run demo`: the simulated services and a Node-RED with this package,
 * with one ACMP instance and one 4me instance made from the shipped
 * templates by the instance tool, on loopback only.
 *
 *   demo console (browse the sims)  http://127.0.0.1:18440   (DEMO_CONSOLE_PORT)
 *   identity platform               https://127.0.0.1:18441  (DEMO_IDENTITY_PORT)
 *   Microsoft Graph                 https://127.0.0.1:18442  (DEMO_GRAPH_PORT)
 *   SICS bus with ACMP01, ACMP02    https://127.0.0.1:18443  (DEMO_SICS_PORT)
 *   4me GraphQL                     https://127.0.0.1:18444  (DEMO_4ME_PORT)
 *   Node-RED editor                 http://127.0.0.1:1880    (DEMO_PORT)
 *
 * Tenant, app registrations and secrets derive from a fixed seed, so the
 * flows saved in .demo/ (DEMO_DIR) keep working across restarts; the
 * connections read URLs and the CA file from environment variables the
 * demo sets. The simulated services start empty each time, so the demo
 * also clears what the connector remembers having written (its context),
 * and the first sync writes everything again. Ctrl-C stops everything.
 *
 * Stopping from a script: `npm run demo` runs this file under `sh -c`, and
 * npm passes SIGINT/SIGTERM to that shell only. The shell dies of SIGTERM
 * (this process then notices that its parent is gone and stops), but it
 * holds SIGINT back until its child exits, so SIGINT sent to npm's pid stops
 * nothing. The demo's own pid is therefore written to `<DEMO_DIR>/demo.pid`:
 * SIGINT or SIGTERM sent to it stops the demo, Node-RED included.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sharedTestCa, makeClientCertificate } from './pki';
import { IdentitySim } from './identity';
import { GraphSim } from './graph';
import { SimTenant } from './tenant';
import { SicsSim } from './sics';
import { FourMeSim } from './fourme';
import { DemoConsole } from './demo-console';
import { startNodeRed, repoRoot, type NodeRedProcess } from './node-red-runner';
import { loadTemplate, makeInstance } from '../bin/instance-template';
import { addInstance } from '../bin/instance-admin';

const ROLES = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.ReadWrite.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementConfiguration.Read.All',
  'User.Read.All',
];

/** A value derived from a name, so the demo's ids and secrets are the same at every start. */
function derived(name: string): string {
  return crypto.createHash('sha256').update(`intune-demo:${name}`).digest('hex');
}
function stableGuid(name: string): string {
  const h = derived(name);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function port(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw new Error(`${name} must be a TCP port`);
  return v;
}

export interface DemoIdentity {
  tenantId: string;
  secretClientId: string;
  secret: string;
  certClientId: string;
  certPassword: string;
  sicsUser: string;
  sicsPassword: string;
  fourmeAccount: string;
  fourmeToken: string;
}

export function demoIdentity(): DemoIdentity {
  return {
    tenantId: stableGuid('tenant'),
    secretClientId: stableGuid('secret-app'),
    secret: `demo~${derived('secret').slice(0, 32)}`,
    certClientId: stableGuid('certificate-app'),
    certPassword: 'demo-pfx-password',
    sicsUser: 'intune',
    sicsPassword: `sics-${derived('sics').slice(0, 16)}`,
    fourmeAccount: 'contoso-demo',
    fourmeToken: `pat-${derived('4me').slice(0, 40)}`,
  };
}

async function main(): Promise<void> {
  const dir = path.resolve(process.env.DEMO_DIR ?? path.join(repoRoot, '.demo'));
  const userDir = path.join(dir, 'node-red');
  fs.mkdirSync(userDir, { recursive: true });
  const ids = demoIdentity();
  const devices = Number(process.env.DEMO_DEVICES ?? 2000);

  const pki = sharedTestCa();
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, pki.certPem);
  // The certificate app's .pfx is kept, so the credential stored in Node-RED stays valid across restarts.
  const certFile = path.join(dir, 'certificate-app.json');
  let cert: { certPem: string; pfxBase64: string };
  if (fs.existsSync(certFile)) cert = JSON.parse(fs.readFileSync(certFile, 'utf8'));
  else {
    const made = makeClientCertificate({ commonName: 'intune-connector-demo', password: ids.certPassword });
    cert = { certPem: made.certPem, pfxBase64: made.pfxBase64 };
    fs.writeFileSync(certFile, JSON.stringify(cert), { mode: 0o600 });
  }

  const stoppers: Array<() => Promise<unknown>> = [];
  let red: NodeRedProcess | undefined;
  let stopping = false;
  const pidFile = path.join(dir, 'demo.pid');
  let orphanWatch: NodeJS.Timeout | undefined;
  const stop = async (code = 0) => {
    if (stopping) return;
    stopping = true;
    clearInterval(orphanWatch);
    await red?.stop().catch(() => undefined);
    for (const s of stoppers.reverse()) await s().catch(() => undefined);
    // Only our own pid file: a second demo on the same directory may have written its own since.
    if (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() === String(process.pid)) fs.rmSync(pidFile, { force: true });
    process.exit(code);
  };
  const onSignal = () => {
    console.log('\nStopping the demo…');
    void stop(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  fs.writeFileSync(pidFile, `${process.pid}\n`);
  // The shell npm runs us in dies of a SIGTERM sent to npm without passing it on: we are then
  // re-parented. Checked once a second (unref'd: it keeps nothing alive).
  const parent = process.ppid;
  orphanWatch = setInterval(() => {
    if (process.ppid !== parent) {
      console.log('\nThe process that started the demo has gone: stopping the demo…');
      void stop(0);
    }
  }, 1000);
  orphanWatch.unref();

  try {
    const identity = new IdentitySim({
      tls: pki.server,
      tenants: [{ id: ids.tenantId, domains: ['contoso-demo.onmicrosoft.com'] }],
      apps: [
        { clientId: ids.secretClientId, tenantId: ids.tenantId, displayName: 'Intune connector (secret)', secrets: [{ value: ids.secret }], roles: ROLES },
        { clientId: ids.certClientId, tenantId: ids.tenantId, displayName: 'Intune connector (certificate)', certificates: [cert.certPem], roles: ROLES },
      ],
    });
    await identity.start(port('DEMO_IDENTITY_PORT', 18441));
    stoppers.push(() => identity.stop());
    const tenant = new SimTenant({ seed: 'demo', devices, tenantId: ids.tenantId });
    const graph = new GraphSim({ tls: pki.server, tenant, verifyToken: (t, aud) => identity.verifyAccessToken(t, aud) });
    await graph.start(port('DEMO_GRAPH_PORT', 18442));
    stoppers.push(() => graph.stop());

    const sics = new SicsSim({ tls: pki.server, users: { [ids.sicsUser]: ids.sicsPassword }, port: port('DEMO_SICS_PORT', 18443) });
    await sics.start();
    stoppers.push(() => sics.stop());
    // ACMP publishes each instance's query-action jobs with the instance's own routing key.
    const acmpServers = ['ACMP01', 'ACMP02'].map((serverId) => sics.addAcmpServer({ serverId, jobsRoutingKey: 'IntuneConnector_1.jobs' }));

    const fourme = new FourMeSim({
      tls: pki.server,
      accounts: [{ id: ids.fourmeAccount, name: 'Contoso (demo)' }],
      personalAccessTokens: [{ token: ids.fourmeToken, personName: 'Intune connector' }],
    });
    await fourme.start(port('DEMO_4ME_PORT', 18444));
    stoppers.push(() => fourme.stop());
    // The tenant's users are people in 4me, so CIs get their users and incidents their requester.
    const people = [];
    for (const u of tenant.users.iterate()) people.push({ name: u.displayName, primaryEmail: u.userPrincipalName });
    fourme.seedPeople(people, ids.fourmeAccount);

    const demoConsole = new DemoConsole({ tenant, graph, acmpServers, fourme, fourmeAccount: ids.fourmeAccount, incidents: incidentPace() });
    await demoConsole.start(port('DEMO_CONSOLE_PORT', 18440));
    stoppers.push(() => demoConsole.stop());

    const firstRun = !fs.existsSync(path.join(userDir, 'flows.json'));
    fs.rmSync(path.join(userDir, 'context'), { recursive: true, force: true });
    red = await startNodeRed({
      install: 'link',
      userDir,
      port: port('DEMO_PORT', 1880),
      echo: !process.env.DEMO_QUIET,
      env: {
        INTUNE_DEMO_AUTHORITY: identity.url,
        INTUNE_DEMO_GRAPH: graph.url,
        INTUNE_DEMO_CA: caFile,
        INTUNE_DEMO_SICS_PORT: String(sics.port),
        INTUNE_DEMO_4ME: fourme.graphqlUrl,
      },
      // Run state, fingerprints and open incidents survive restarts, as in production.
      settings: { contextStorage: { default: { module: 'localfilesystem' }, memory: { module: 'memory' } } },
    });
    if (firstRun) {
      const mark = red.mark();
      for (const nodes of demoInstances(ids, cert.pfxBase64)) await addInstance(red.admin, nodes);
      await red.waitForLog(/Started (modified )?flows/, 30_000, mark);
    }
    console.log(
      [
        '',
        '  Intune connector demo is running.',
        `  Node-RED editor:        ${red.url}/`,
        `  Simulated services:     ${demoConsole.url}/  (ACMP devices, 4me CIs and incidents; send ACMP query actions)`,
        `  Simulated tenant:       ${ids.tenantId} (${devices} devices)`,
        '  Instances:              IntuneConnector_1 / IntuneWorkflowEngine_1 / IntuneMobileDevices_1 (ACMP, client secret)',
        '                          Intune4me_1 (4me, certificate)',
        '  The first sync starts about 10 seconds after the flows.',
        `  State and flows:        ${path.relative(process.cwd(), dir) || '.'}/ (delete it to start over)`,
        `  Ctrl-C stops everything; from a script: kill -INT $(cat ${path.relative(process.cwd(), pidFile)}).`,
        '',
      ].join('\n'),
    );
  } catch (err) {
    console.error(`demo failed: ${(err as Error).message}`);
    await stop(1);
  }
}

/** The compliance interval the demo gives the 4me instance (minutes). */
const COMPLIANCE_EVERY_MINUTES = 60;

/** The 4me instance's cap on new incidents per run (from the shipped template) and how often it runs. */
export function incidentPace(): { maxNewPerRun: number; everyMinutes: number } {
  const sink = loadTemplate('4me').find((n) => n.type === 'intune-4me');
  return { maxNewPerRun: Number(sink?.maxNewPerRun ?? 0), everyMinutes: COMPLIANCE_EVERY_MINUTES };
}

/** The demo's two instances, made from the shipped templates as `node-red-intune-instance` makes them. */
export function demoInstances(ids: DemoIdentity, pfxBase64: string): Array<ReturnType<typeof makeInstance>> {
  const intune = {
    tenantId: ids.tenantId,
    cloud: 'custom',
    authorityHost: '${INTUNE_DEMO_AUTHORITY}',
    graphBaseUrl: '${INTUNE_DEMO_GRAPH}',
    portalUrl: 'https://intune.microsoft.com',
  };
  const acmp = makeInstance(loadTemplate('acmp'), {
    instance: 1,
    caFile: '${INTUNE_DEMO_CA}',
    env: { ACMP_SERVER_ID: '*', FULL_SCAN_HOURS: '24', INCREMENTAL_SCAN_MINUTES: '15' },
    nodeProps: {
      'intune-config': { ...intune, name: 'Intune demo tenant (IntuneConnector_1)', clientId: ids.secretClientId, authType: 'secret' },
      'intune-acmp-config': {
        name: 'Simulated SICS (IntuneConnector_1)',
        host: '127.0.0.1',
        port: '${INTUNE_DEMO_SICS_PORT}',
        servers: ['ACMP01', 'ACMP02'].map((serverId) => ({ serverId, name: `ACMP server ${serverId}`, virtualRouter: 'ACMP', routingKey: `acmp.${serverId}` })),
      },
    },
    credentials: { 'intune-config': { clientSecret: ids.secret }, 'intune-acmp-config': { user: ids.sicsUser, password: ids.sicsPassword } },
  });
  const fourme = makeInstance(loadTemplate('4me'), {
    instance: 1,
    caFile: '${INTUNE_DEMO_CA}',
    env: { COMPLIANCE_EVERY_MINUTES: String(COMPLIANCE_EVERY_MINUTES) },
    nodeProps: {
      'intune-config': { ...intune, name: 'Intune demo tenant (Intune4me_1)', clientId: ids.certClientId, authType: 'certificate' },
      'intune-4me-config': { name: 'Simulated 4me (Intune4me_1)', accountId: ids.fourmeAccount, environment: 'custom', graphqlUrl: '${INTUNE_DEMO_4ME}' },
      // The demo imports every platform at once; a new 4me instance imports none until they are chosen.
      'intune-devices': { platformWindows: true, platformMacos: true, platformIos: true, platformAndroid: true, platformLinux: true },
    },
    credentials: {
      'intune-config': { pfx: pfxBase64, pfxName: 'intune-connector-demo.pfx', passphrase: ids.certPassword },
      'intune-4me-config': { token: ids.fourmeToken },
    },
  });
  return [acmp, fourme];
}

if (require.main === module) void main();
