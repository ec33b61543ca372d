/**
 * The naive way, as peers' scripts do it — implemented here only, for the
 * comparison. Per device: look up, then create or update; no batching, no
 * change detection, no pacing (a 429 is waited out as Retry-After says).
 *
 * Graph: the device list, paged (1,000 a page; everyone pages).
 * 4me, per device: the person by e-mail (when the device has a user), the
 *   CI by source + sourceID, then configurationItemCreate or
 *   configurationItemUpdate. Products are remembered in memory (one
 *   look-up, and productCreate when missing, per brand + model and run) —
 *   kinder to the naive way than most scripts are.
 * ACMP, per device: one inventory message with that device, waiting for
 *   ACMP's reply (through our SICS client, batch size 1).
 */
import https from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import { normaliseDevice, PlaceholderSerials, type ManagedDeviceRecord } from '../nodes/lib/devices/device-normaliser';
import type { Device } from '../nodes/lib/contracts';
import { SicsClient } from '../nodes/lib/acmp/sics-client';
import { parseSicsSettings } from '../nodes/lib/acmp/sics-settings';
import { header, type WireMessage } from '../nodes/lib/acmp/acmp-wire';
import { FOURME_ACCOUNT, FOURME_TOKEN, SICS_PASSWORD, SICS_USER, type World } from './world';
import { sharedTestCa } from '../sim/pki';

export const NAIVE_SOURCE = 'IntuneScript';

export interface NaiveResult {
  devices: number;
  graphRequests: number;
  fourme: { requests: number; throttled: number; lookups: number; creates: number; updates: number; productCreates: number; failed: number; errors: string[] };
  acmp: { messages: number; failed: number };
  wallMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POST with a naive retry: 429/503 → wait Retry-After (1 s when missing), try again. */
async function post(http: AxiosInstance, url: string, body: unknown, headers: Record<string, string>, onThrottle: () => void): Promise<{ status: number; data: unknown }> {
  for (;;) {
    const res = await http.post(url, body, { headers, validateStatus: () => true });
    if (res.status === 429 || res.status === 503) {
      onThrottle();
      await sleep(Number(res.headers['retry-after'] ?? 1) * 1000);
      continue;
    }
    return res;
  }
}

async function graphDevices(w: World, http: AxiosInstance, counter: { n: number }): Promise<Device[]> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: w.app.clientId, client_secret: w.app.secret, scope: `${w.graph.url}/.default` });
  const tok = await http.post(`${w.identity.url}/${w.tenantId}/oauth2/v2.0/token`, form.toString(), { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  const auth = { Authorization: `Bearer ${tok.data.access_token}` };
  const placeholders = new PlaceholderSerials();
  const out: Device[] = [];
  let url: string | undefined = `${w.graph.url}/v1.0/deviceManagement/managedDevices`;
  while (url) {
    counter.n++;
    const res: { status: number; headers: Record<string, unknown>; data: { value: ManagedDeviceRecord[]; "@odata.nextLink"?: string } } = await http.get(url, { headers: auth, validateStatus: () => true });
    if (res.status === 429) {
      await sleep(Number(res.headers['retry-after'] ?? 1) * 1000);
      continue;
    }
    if (res.status !== 200) throw new Error(`naive: Graph answered ${res.status}`);
    for (const r of res.data.value) out.push(normaliseDevice(r, { portalUrl: 'https://intune.microsoft.com', tenantId: w.tenantId, placeholders }));
    url = res.data['@odata.nextLink'];
  }
  return out;
}

const Q_PERSON = `query($e: [String!]) { people(first: 1, view: all, filter: { primaryEmail: { values: $e }, disabled: false }) { nodes { id } } }`;
const Q_CI = `query($s: [String!], $id: [String!]) { configurationItems(first: 1, filter: { source: { values: $s }, sourceID: { values: $id } }) { nodes { id } } }`;
const Q_PRODUCT = `query($s: [String!], $id: [String!]) { products(first: 1, filter: { source: { values: $s }, sourceID: { values: $id } }) { nodes { id } } }`;
const M_PRODUCT = `mutation($input: ProductCreateInput!) { productCreate(input: $input) { errors { path message } product { id } } }`;
const M_CREATE = `mutation($input: ConfigurationItemCreateInput!) { configurationItemCreate(input: $input) { errors { path message } configurationItem { id } } }`;
const M_UPDATE = `mutation($input: ConfigurationItemUpdateInput!) { configurationItemUpdate(input: $input) { errors { path message } configurationItem { id } } }`;

/** One naive sync of the whole tenant into 4me and ACMP (one after the other, as a script would). */
export async function naiveSync(w: World): Promise<NaiveResult> {
  const t0 = Date.now();
  const agent = new https.Agent({ keepAlive: true, ca: sharedTestCa().certPem });
  const http = axios.create({ httpsAgent: agent, timeout: 60_000 });
  const graph = { n: 0 };
  const devices = await graphDevices(w, http, graph);

  const fm = { requests: 0, throttled: 0, lookups: 0, creates: 0, updates: 0, productCreates: 0, failed: 0, errors: [] as string[] };
  const failed = (what: string) => {
    fm.failed++;
    if (fm.errors.length < 3) fm.errors.push(what.slice(0, 200));
  };
  const headers = { Authorization: `Bearer ${FOURME_TOKEN}`, 'X-4me-Account': FOURME_ACCOUNT, 'Content-Type': 'application/json' };
  const gql = async (query: string, variables: Record<string, unknown>) => {
    fm.requests++;
    const res = await post(http, w.fourme.graphqlUrl, { query, variables }, headers, () => fm.throttled++);
    const body = res.data as { data?: Record<string, unknown>; errors?: unknown[] };
    if (res.status !== 200 || body.errors) throw new Error(`naive 4me: HTTP ${res.status} ${JSON.stringify(body.errors ?? body).slice(0, 300)}`);
    return body.data!;
  };
  const products = new Map<string, string>();
  for (const d of devices) {
    try {
      let userIds: string[] = [];
      const email = d.user?.upn || d.user?.email;
      if (email) {
        fm.lookups++;
        const p = (await gql(Q_PERSON, { e: [email] })) as { people: { nodes: Array<{ id: string }> } };
        userIds = p.people.nodes.map((n) => n.id);
      }
      fm.lookups++;
      const c = (await gql(Q_CI, { s: [NAIVE_SOURCE], id: [d.id] })) as { configurationItems: { nodes: Array<{ id: string }> } };
      const brand = d.manufacturer || 'Unknown';
      const model = d.model || 'Unknown';
      const key = `${brand}|${model}`.slice(0, 128);
      let productId = products.get(key);
      if (!productId) {
        // Look up, then create: once per brand + model and run (remembered in memory).
        fm.lookups++;
        const found = (await gql(Q_PRODUCT, { s: [NAIVE_SOURCE], id: [key] })) as { products: { nodes: Array<{ id: string }> } };
        productId = found.products.nodes[0]?.id;
        if (!productId) {
          fm.productCreates++;
          const r = (await gql(M_PRODUCT, {
            input: { brand, model, name: `${brand} ${model}`.slice(0, 160), category: 'computer/other_device', source: NAIVE_SOURCE, sourceID: key },
          })) as { productCreate: { product: { id: string } | null; errors: unknown[] | null } };
          productId = r.productCreate.product?.id;
          if (!productId) throw new Error(`naive: product not created: ${JSON.stringify(r.productCreate.errors)}`);
        }
        products.set(key, productId);
      }
      const fields = { name: d.name, serialNr: d.serialNumber, systemID: d.deepLinks.overview, lastSeenAt: d.lastContactAt, status: 'in_production', userIds, productId };
      const existing = c.configurationItems.nodes[0]?.id;
      if (existing) {
        fm.updates++;
        const r = (await gql(M_UPDATE, { input: { id: existing, ...fields } })) as { configurationItemUpdate: { errors: unknown[] | null } };
        if (r.configurationItemUpdate.errors?.length) failed(JSON.stringify(r.configurationItemUpdate.errors));
      } else {
        fm.creates++;
        const r = (await gql(M_CREATE, { input: { ...fields, source: NAIVE_SOURCE, sourceID: d.id } })) as { configurationItemCreate: { errors: unknown[] | null } };
        if (r.configurationItemCreate.errors?.length) failed(JSON.stringify(r.configurationItemCreate.errors));
      }
    } catch (err) {
      failed((err as Error).message);
    }
  }

  const acmp = { messages: 0, failed: 0 };
  const settings = parseSicsSettings({ host: '127.0.0.1', port: w.sics.port, useTls: true, servers: [w.acmp.route] }, sharedTestCa().certPem);
  const sics = new SicsClient(settings, { user: SICS_USER, password: SICS_PASSWORD }, { warn: () => undefined }, { clientKey: 'naive' });
  try {
    for (const d of devices) {
      const message: WireMessage = { kind: 'inventory', header: header({ instance: 'naive' }), onDemandDefinition: 'IntuneMobileDevices_1', runId: 'naive', mode: 'full', page: 1, batch: ++acmp.messages, devices: [d] };
      try {
        await sics.call(w.acmp.route, message);
      } catch {
        acmp.failed++;
      }
    }
  } finally {
    await sics.close();
    agent.destroy();
  }
  return { devices: devices.length, graphRequests: graph.n, fourme: fm, acmp, wallMs: Date.now() - t0 };
}
