/**
 * `npm run demo`: the simulated tenant and a Node-RED with this package,
 * wired together, on loopback only.
 *
 *   identity platform  https://127.0.0.1:18441   (DEMO_IDENTITY_PORT)
 *   Microsoft Graph    https://127.0.0.1:18442   (DEMO_GRAPH_PORT)
 *   Node-RED editor    http://127.0.0.1:1880     (DEMO_PORT)
 *
 * The tenant, the app registrations and their secrets are derived from a
 * fixed seed, so the flows saved in .demo/ keep working across restarts. The
 * CA is made anew at each start and written to .demo/ca.pem, which the
 * flow's TLS configuration reads. Ctrl-C stops everything.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sharedTestCa, makeClientCertificate } from './pki';
import { IdentitySim } from './identity';
import { GraphSim } from './graph';
import { SimTenant } from './tenant';
import { startNodeRed, repoRoot, type NodeRedProcess } from './node-red-runner';
import { demoFlow } from './demo-flow';

const ROLES = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.ReadWrite.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementConfiguration.Read.All',
  'User.Read.All',
];

/** A GUID derived from a name, so the demo's ids are the same at every start. */
function stableGuid(name: string): string {
  const h = crypto.createHash('sha256').update(`intune-demo:${name}`).digest('hex');
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
}

export function demoIdentity(): DemoIdentity {
  return {
    tenantId: stableGuid('tenant'),
    secretClientId: stableGuid('secret-app'),
    secret: `demo~${crypto.createHash('sha256').update('intune-demo:secret').digest('base64url').slice(0, 32)}`,
    certClientId: stableGuid('certificate-app'),
    certPassword: 'demo-pfx-password',
  };
}

async function main(): Promise<void> {
  const dir = path.join(repoRoot, '.demo');
  const userDir = path.join(dir, 'node-red');
  fs.mkdirSync(userDir, { recursive: true });
  const ids = demoIdentity();
  const devices = Number(process.env.DEMO_DEVICES ?? 2000);

  const pki = sharedTestCa();
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, pki.certPem);

  // The certificate app's .pfx is kept, so the uploaded credential stays valid across restarts.
  const certFile = path.join(dir, 'certificate-app.json');
  let cert: { certPem: string; pfxBase64: string };
  if (fs.existsSync(certFile)) cert = JSON.parse(fs.readFileSync(certFile, 'utf8'));
  else {
    const made = makeClientCertificate({ commonName: 'intune-connector-demo', password: ids.certPassword });
    cert = { certPem: made.certPem, pfxBase64: made.pfxBase64 };
    fs.writeFileSync(certFile, JSON.stringify(cert), { mode: 0o600 });
  }

  const identity = new IdentitySim({
    tls: pki.server,
    tenants: [{ id: ids.tenantId, domains: ['contoso-demo.onmicrosoft.com'] }],
    apps: [
      { clientId: ids.secretClientId, tenantId: ids.tenantId, displayName: 'Intune connector (secret)', secrets: [{ value: ids.secret }], roles: ROLES },
      { clientId: ids.certClientId, tenantId: ids.tenantId, displayName: 'Intune connector (certificate)', certificates: [cert.certPem], roles: ROLES },
    ],
  });
  await identity.start(port('DEMO_IDENTITY_PORT', 18441));
  const tenant = new SimTenant({ seed: 'demo', devices, tenantId: ids.tenantId });
  const graph = new GraphSim({ tls: pki.server, tenant, verifyToken: (t, aud) => identity.verifyAccessToken(t, aud) });
  await graph.start(port('DEMO_GRAPH_PORT', 18442));

  const firstRun = !fs.existsSync(path.join(userDir, 'flows.json'));
  let red: NodeRedProcess | undefined;
  const stop = async (code = 0) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await red?.stop().catch(() => undefined);
    await graph.stop().catch(() => undefined);
    await identity.stop().catch(() => undefined);
    process.exit(code);
  };
  const onSignal = () => {
    console.log('\nStopping the demo…');
    void stop(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  red = await startNodeRed({
    install: 'link',
    userDir,
    port: port('DEMO_PORT', 1880),
    echo: process.env.DEMO_QUIET ? false : true,
    env: { INTUNE_DEMO_AUTHORITY: identity.url, INTUNE_DEMO_GRAPH: graph.url, INTUNE_DEMO_CA: caFile },
    settings: { contextStorage: { default: { module: 'localfilesystem' }, memory: { module: 'memory' } } },
  });
  if (firstRun) {
    const mark = red.mark();
    const res = await red.admin.post('/flows', { flows: demoFlow(ids, cert.pfxBase64, [0, 1, 2].map((i) => tenant.deviceIdAt(i))) }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
    if (res.status !== 200) throw new Error(`could not deploy the demo flow: HTTP ${res.status} ${JSON.stringify(res.data)}`);
    await red.waitForLog(/Started flows/, 30_000, mark);
  }
  console.log(
    [
      '',
      '  Intune connector demo is running.',
      `  Node-RED editor:        ${red.url}/`,
      `  Simulated tenant:       ${ids.tenantId} (${devices} devices)`,
      `  Simulated sign-in:      ${identity.url}`,
      `  Simulated Graph:        ${graph.url}/v1.0/deviceManagement/managedDevices`,
      `  State and flows:        ${path.relative(process.cwd(), dir) || '.'}/ (delete it to start over)`,
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`demo failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
