/**
 * Fixtures for the ACMP tests: normalised devices of a simulated tenant,
 * sync-run page messages, a simulated SICS with ACMP servers, the flow
 * nodes of an intune-acmp-config pointing at it, and a Node-RED test-helper
 * setup that loads the compiled nodes next to this file (so the tests run
 * from any build folder, not only from dist/).
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import crypto from 'node:crypto';
import helper from 'node-red-node-test-helper';
import type { Device, SyncEnvelope, SyncMode } from '../../nodes/lib/contracts';
import { PlaceholderSerials, normaliseDevice, type ManagedDeviceRecord } from '../../nodes/lib/devices/device-normaliser';
import type { SimTenant } from '../../sim/tenant';
import { SicsSim, type AcmpServerSim, type SicsSimOptions } from '../../sim/sics';
import { sharedTestCa } from '../../sim/pki';

helper.init(require.resolve('node-red'));
export { helper };

/** Node-RED's core tls-config node (resolved from the installed node-red). */
export const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [path.dirname(require.resolve('node-red/package.json'))] }));

export const PORTAL = 'https://intune.microsoft.com';

/** Every device of the tenant, normalised as intune-devices does, sorted by id. */
export function tenantDevices(tenant: SimTenant, tenantId?: string): Device[] {
  const placeholders = new PlaceholderSerials();
  const out: Device[] = [];
  for (let i = 0; i < tenant.positions; i++) {
    const r = tenant.deviceAt(i);
    if (r) out.push(normaliseDevice(r as unknown as ManagedDeviceRecord, { portalUrl: PORTAL, tenantId, placeholders }));
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A small hand-made device. */
export function makeDevice(overrides: Partial<Device> = {}): Device {
  const id = overrides.id ?? crypto.randomUUID();
  return {
    id,
    azureAdDeviceId: crypto.randomUUID(),
    name: `DEV-${id.slice(0, 6)}`,
    serialNumber: `SN${id.slice(0, 8).toUpperCase()}`,
    rawSerialNumber: `SN${id.slice(0, 8).toUpperCase()}`,
    manufacturer: 'Apple',
    model: 'iPhone 15',
    os: { name: 'iOS', version: '18.1', sku: null },
    storage: { totalBytes: 128_000_000_000, freeBytes: 64_000_000_000 },
    enrolledAt: '2024-01-02T03:04:05.000Z',
    lastContactAt: '2025-01-02T03:04:05.000Z',
    azureAdRegistered: true,
    joinType: null,
    ownership: 'company',
    complianceState: 'compliant',
    encrypted: true,
    jailbroken: 'false',
    managementAgent: 'mdm',
    coManaged: false,
    managementState: 'managed',
    user: { id: crypto.randomUUID(), upn: 'ada@contoso.com', email: 'ada@contoso.com', displayName: 'Ada Lovelace' },
    userDeleted: false,
    imei: '356938035643809',
    meid: null,
    phoneNumber: '+49 5251 000000',
    wifiMac: 'aabbccddeeff',
    deepLinks: { overview: `${PORTAL}/#view/x/${id}`, compliance: `${PORTAL}/#view/y/${id}` },
    ...overrides,
  };
}

export interface PageMsg {
  topic: string;
  payload: Device[];
  sync: SyncEnvelope;
}

/** The page messages of one sync run over `devices`. */
export function syncPages(devices: Device[], o: { instance: string; mode?: SyncMode; pageSize?: number; runId?: string; aborted?: boolean }): PageMsg[] {
  const size = o.pageSize ?? 1000;
  const runId = o.runId ?? `devices-${crypto.randomBytes(4).toString('hex')}`;
  const startedAt = new Date().toISOString();
  const pages: PageMsg[] = [];
  const n = Math.max(1, Math.ceil(devices.length / size));
  for (let p = 0; p < n; p++) {
    const last = p === n - 1;
    const sync: SyncEnvelope = { runId, instance: o.instance, mode: o.mode ?? 'full', page: p + 1, last, startedAt };
    if (last) {
      sync.stats = { items: devices.length, emitted: devices.length, skipped: {}, pages: n, requests: n, retries: 0, throttled: 0, throttleWaitMs: 0, durationMs: 1, ...(o.aborted ? { aborted: true, error: 'cancelled' } : {}) };
    }
    pages.push({ topic: 'intune/devices', payload: devices.slice(p * size, (p + 1) * size), sync });
  }
  return pages;
}

export const SICS_USER = 'intune';
export const SICS_PASSWORD = 'S1cs&<"pa55>';

export interface AcmpEnv {
  sics: SicsSim;
  servers: AcmpServerSim[];
  caPem: string;
  caFile: string;
  stop(): Promise<void>;
}

/** A SICS simulator (HTTPS + HTTP on one port by default) with ACMP servers SRV1, SRV2, … */
export async function startAcmpEnv(o: { servers?: number; sics?: SicsSimOptions; serverOptions?: Record<string, unknown> } = {}): Promise<AcmpEnv> {
  const pki = sharedTestCa();
  const sics = new SicsSim({ tls: pki.server, users: { [SICS_USER]: SICS_PASSWORD }, ...(o.sics ?? {}) });
  await sics.start();
  const servers: AcmpServerSim[] = [];
  for (let i = 1; i <= (o.servers ?? 2); i++) servers.push(sics.addAcmpServer({ serverId: `SRV${i}`, ...(o.serverOptions ?? {}) }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acmp-ca-'));
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, pki.certPem);
  return {
    sics,
    servers,
    caPem: pki.certPem,
    caFile,
    stop: async () => {
      await sics.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Flow nodes + credentials of an intune-acmp-config (and its tls-config) pointing at the simulator. */
export function acmpConfigFlow(
  env: AcmpEnv,
  o: { id?: string; servers?: AcmpServerSim[]; withCa?: boolean; overrides?: Record<string, unknown>; credentials?: Record<string, unknown> } = {},
): { nodes: Record<string, unknown>[]; credentials: Record<string, Record<string, unknown>> } {
  const id = o.id ?? 'acmpcfg';
  const tlsId = `${id}-tls`;
  const withCa = o.withCa !== false;
  const nodes: Record<string, unknown>[] = [];
  if (withCa) nodes.push({ id: tlsId, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: env.caFile, verifyservercert: true });
  nodes.push({
    id,
    type: 'intune-acmp-config',
    name: 'sim SICS',
    host: '127.0.0.1',
    port: env.sics.port,
    useTls: true,
    tls: withCa ? tlsId : '',
    allowUnencrypted: false,
    timeoutSec: 10,
    retryBaseMs: 20,
    consumeWaitMs: 500,
    replyVirtualRouter: 'IntuneConnector',
    servers: (o.servers ?? env.servers).map((s) => s.route),
    ...(o.overrides ?? {}),
  });
  return { nodes, credentials: { [id]: { user: SICS_USER, password: SICS_PASSWORD, ...(o.credentials ?? {}) } } };
}

export function loadFlow(nodes: unknown[], flow: unknown[], credentials: Record<string, unknown> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      helper.load(nodes as never, flow as never, credentials as never, (err?: unknown) => (err ? reject(err) : resolve()));
    } catch (err) {
      reject(err);
    }
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `fn` returns a truthy value (polling), or fails after `timeoutMs`. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
