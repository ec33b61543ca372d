/**
 * The simulated world a benchmark runs against, on 127.0.0.1: identity
 * platform, Microsoft Graph over a seeded tenant, 4me (one account with a
 * directory account holding the people) and a SICS bus with one ACMP
 * server. Every service has its real limits, windows shrunk by the time
 * scale k, and a per-request latency (also divided by k).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sharedTestCa } from '../sim/pki';
import { IdentitySim } from '../sim/identity';
import { GraphSim, DEFAULT_LIMITS as GRAPH_LIMITS } from '../sim/graph';
import { SimTenant } from '../sim/tenant';
import { FourMeSim, FOURME_DEFAULT_LIMITS } from '../sim/fourme';
import { SicsSim, type AcmpServerSim } from '../sim/sics';

export const ROLES = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.ReadWrite.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementConfiguration.Read.All',
  'User.Read.All',
];

export const FOURME_ACCOUNT = 'acme';
export const FOURME_DIRECTORY = 'acme-dir';
export const FOURME_TOKEN = 'bench-pat-0123456789abcdef0123456789';
export const SICS_USER = 'intune';
export const SICS_PASSWORD = 'bench-sics-password';
export const ACMP_SERVER = 'SRV1';

export interface WorldOptions {
  devices: number;
  seed: number;
  /** Per-request latency at time scale 1 (ms). */
  latencyMs: number;
  /** Time scale k: limit windows and latency divided by k. */
  scale: number;
  /** Share of non-compliant devices (tenant option). */
  nonCompliantShare?: number;
}

export interface World {
  readonly o: WorldOptions;
  tenantId: string;
  tenant: SimTenant;
  identity: IdentitySim;
  graph: GraphSim;
  fourme: FourMeSim;
  sics: SicsSim;
  acmp: AcmpServerSim;
  app: { clientId: string; secret: string };
  caFile: string;
  /** People seeded in the 4me directory account (one per tenant user but every 10th). */
  people: number;
  /** Current time scale. */
  scale: number;
  /** Shrinks every limit window and the latency by k (from the scale-1 values), and forgets what the windows held. */
  setScale(k: number): void;
  /** Empties every throttling window (a scenario starts with full budgets). */
  resetThrottling(): void;
  stop(): Promise<void>;
}

export async function startWorld(o: WorldOptions): Promise<World> {
  const pki = sharedTestCa();
  const tenantId = crypto.randomUUID();
  const app = { clientId: crypto.randomUUID(), secret: `bench~${crypto.randomBytes(18).toString('base64url')}` };
  const identity = new IdentitySim({
    tls: pki.server,
    tenants: [{ id: tenantId, domains: ['contoso-bench.onmicrosoft.com'] }],
    apps: [{ clientId: app.clientId, tenantId, secrets: [{ value: app.secret }], roles: ROLES }],
  });
  await identity.start();
  const tenant = new SimTenant({ seed: o.seed, devices: o.devices, tenantId, nonCompliantShare: o.nonCompliantShare });
  // The simulated Graph's indexes of lastSyncDateTime and enrolledDateTime are built once, here, not inside a measured run.
  tenant.dateIndex('enrolledDateTime');
  const graph = new GraphSim({ tls: pki.server, tenant, verifyToken: (t, aud) => identity.verifyAccessToken(t, aud) });
  await graph.start();

  const fourme = new FourMeSim({
    tls: pki.server,
    accounts: [
      { id: FOURME_ACCOUNT, name: 'Acme Corp', directoryAccountId: FOURME_DIRECTORY },
      { id: FOURME_DIRECTORY, name: 'Acme Directory' },
    ],
    personalAccessTokens: [{ token: FOURME_TOKEN, personName: 'Intune connector' }],
  });
  await fourme.start();
  // People live in the directory account; every 10th user has no person in 4me.
  let u = 0;
  const batch: Array<{ name: string; primaryEmail: string }> = [];
  for (const user of tenant.users.iterate()) {
    if (++u % 10 === 0) continue;
    batch.push({ name: user.displayName, primaryEmail: user.userPrincipalName });
  }
  fourme.seedPeople(batch, FOURME_DIRECTORY);

  const sics = new SicsSim({ tls: pki.server, users: { [SICS_USER]: SICS_PASSWORD } });
  await sics.start();
  const acmp = sics.addAcmpServer({ serverId: ACMP_SERVER });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-bench-ca-'));
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, pki.certPem);

  const world: World = {
    o,
    tenantId,
    tenant,
    identity,
    graph,
    fourme,
    sics,
    acmp,
    app,
    caFile,
    people: batch.length,
    scale: 1,
    setScale(k: number) {
      world.scale = k;
      graph.setLimits({ windowMs: GRAPH_LIMITS.windowMs / k });
      graph.setLatency(o.latencyMs / k);
      fourme.setLimits({
        burstWindowMs: FOURME_DEFAULT_LIMITS.burstWindowMs / k,
        hourlyWindowMs: FOURME_DEFAULT_LIMITS.hourlyWindowMs / k,
        costWindowMs: FOURME_DEFAULT_LIMITS.costWindowMs / k,
      });
      fourme.setLatency(o.latencyMs / k);
      sics.latencyMs = o.latencyMs / k;
      world.resetThrottling();
    },
    resetThrottling() {
      graph.resetThrottling();
      fourme.resetThrottling();
    },
    stop: async () => {
      await graph.stop();
      await identity.stop();
      await fourme.stop();
      await sics.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  world.setScale(o.scale);
  return world;
}
