/**
 * A simulated Intune tenant for tests: test PKI, identity platform and Graph
 * on loopback HTTPS, plus two registered apps (one with a client secret, one
 * with a certificate) and the Node-RED config nodes that point at them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { sharedTestCa, makeClientCertificate, type ClientCertificate } from '../../sim/pki';
import { IdentitySim } from '../../sim/identity';
import { GraphSim } from '../../sim/graph';
import { SimTenant } from '../../sim/tenant';

export const ALL_ROLES = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.ReadWrite.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementConfiguration.Read.All',
  'User.Read.All',
];

export interface SimEnv {
  tenantId: string;
  domain: string;
  tenant: SimTenant;
  identity: IdentitySim;
  graph: GraphSim;
  caPem: string;
  caFile: string;
  secretApp: { clientId: string; secret: string };
  certApp: { clientId: string; cert: ClientCertificate };
  stop(): Promise<void>;
}

export interface SimEnvOptions {
  devices?: number;
  seed?: number;
  roles?: string[];
  graphOptions?: Record<string, unknown>;
}

export async function startSimEnv(opts: SimEnvOptions = {}): Promise<SimEnv> {
  const pki = sharedTestCa();
  const tenantId = crypto.randomUUID();
  const domain = 'contoso-sim.onmicrosoft.com';
  const secretApp = { clientId: crypto.randomUUID(), secret: `sim~${crypto.randomBytes(18).toString('base64url')}` };
  const cert = makeClientCertificate({ commonName: 'intune-connector-e2e', password: 'pfx-pass-123' });
  const certApp = { clientId: crypto.randomUUID(), cert };
  const roles = opts.roles ?? ALL_ROLES;
  const identity = new IdentitySim({
    tls: pki.server,
    tenants: [{ id: tenantId, domains: [domain] }],
    apps: [
      { clientId: secretApp.clientId, tenantId, secrets: [{ value: secretApp.secret }], roles },
      { clientId: certApp.clientId, tenantId, certificates: [cert.certPem], roles },
    ],
  });
  await identity.start();
  const tenant = new SimTenant({ seed: opts.seed ?? 1, devices: opts.devices ?? 200, tenantId });
  const graph = new GraphSim({
    tls: pki.server,
    tenant,
    verifyToken: (token: string, audience: string) => identity.verifyAccessToken(token, audience),
    ...(opts.graphOptions ?? {}),
  });
  await graph.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-ca-'));
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, pki.certPem);
  return {
    tenantId,
    domain,
    tenant,
    identity,
    graph,
    caPem: pki.certPem,
    caFile,
    secretApp,
    certApp,
    stop: async () => {
      await graph.stop();
      await identity.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Flow nodes + credentials for an intune-config (and its tls-config) pointing at the sims. */
export function configFlow(
  env: SimEnv,
  o: { id?: string; auth?: 'secret' | 'certificate'; z?: string; overrides?: Record<string, unknown>; credentials?: Record<string, unknown> } = {},
): { nodes: Record<string, unknown>[]; credentials: Record<string, Record<string, unknown>> } {
  const id = o.id ?? 'cfg1';
  const tlsId = `${id}-tls`;
  const auth = o.auth ?? 'secret';
  const nodes = [
    { id: tlsId, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: env.caFile, verifyservercert: true },
    {
      id,
      type: 'intune-config',
      name: `sim ${auth}`,
      tenantId: env.tenantId,
      clientId: auth === 'secret' ? env.secretApp.clientId : env.certApp.clientId,
      authType: auth,
      cloud: 'custom',
      authorityHost: env.identity.url,
      graphBaseUrl: env.graph.url,
      portalUrl: 'https://intune.microsoft.com',
      tls: tlsId,
      requestsPer20s: 2000,
      writesPer20s: 200,
      timeoutSec: 30,
      ...(o.overrides ?? {}),
    },
  ];
  const credentials: Record<string, Record<string, unknown>> = {
    [id]:
      auth === 'secret'
        ? { clientSecret: env.secretApp.secret, ...(o.credentials ?? {}) }
        : { pfx: env.certApp.cert.pfxBase64, pfxName: 'connector.pfx', passphrase: env.certApp.cert.password, ...(o.credentials ?? {}) },
  };
  return { nodes, credentials };
}
