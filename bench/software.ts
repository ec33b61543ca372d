/**
 * Discovered apps (issue #20): the initial and the unchanged full sync of a
 * tenant with the device source's "Discovered apps" option on (Intune's
 * AppInvRawData report export, nodes/lib/software/), into 4me (software CIs
 * + relations) and one ACMP server — against the floor the services' limits
 * allow and against the per-device way (managedDevices/{id}/detectedApps),
 * with peak memory of the Node-RED process.
 *
 * Runs alone: `npm run bench -- --only=software [--main=100000]`. Its report
 * section is a block of bench/REPORT.md between two markers that the full
 * report keeps (spliceSoftwareSection).
 *
 * The per-device way is computed, not measured: the simulator has no
 * detectedApps endpoint (its floor is what Graph's Intune limits allow).
 */
import fs from 'node:fs';
import https from 'node:https';
import axios from 'axios';
import { sharedTestCa } from '../sim/pki';
import { startWorld, FOURME_ACCOUNT, type World } from './world';
import { startBenchRed, measure, type BenchRed, type Json, type Measured } from './harness';
import { benchFlow, REPORT_CODE } from './flow';
import { acmpFloor, fourmeWindows, graphReadFloor, graphWindows, scheduleMs, type FloorRequest, type ServiceFloor } from './floor';
import { figures, type BenchConfig, type ServiceFigures } from './scenarios';

// ------------------------------------------------------------------ floors

/**
 * Graph, the report export: one job create, the status polls until the file
 * is ready (at least one), one download (Azure storage, not Graph) — plus
 * the device pages, which the export does not replace.
 */
export function graphSoftwareFloor(devices: number, scale: number, latencyMs: number): ServiceFloor {
  const read = graphReadFloor(devices, scale, latencyMs);
  // create → poll → download, one after the other; the pages go meanwhile (other bucket).
  const exportMs = (3 * latencyMs) / scale;
  return {
    requests: read.requests + 2,
    writes: 0,
    timeMs: Math.max(read.timeMs, exportMs),
    how: `${read.requests} device pages (as without software) + 1 export-job create + ≥ 1 status read (reports bucket, 1,000 / 20 s) + 1 download from storage (not a Graph request); how long Intune takes to build the file is not documented and not counted`,
  };
}

/**
 * 4me, an initial sync with software: ceil(software CIs / 100) +
 * ceil(device CIs / 100) discovered-CI uploads (100 per call; cost 2 each)
 * + one look-up request for every address, under 20 / 2 s, 3,600 / h and
 * 5,000 points / h.
 */
export function fourmeSoftwareFloor(softwareCis: number, deviceCis: number, emails: number, scale: number, latencyMs: number): ServiceFloor {
  const sw = Math.ceil(softwareCis / 100);
  const dev = Math.ceil(deviceCis / 100);
  const lookups = emails > 0 ? Math.ceil(emails / 500_000) : 0;
  const reqs: FloorRequest[] = [];
  for (let i = 0; i < lookups; i++) reqs.push({ counts: { burst: 1, hourly: 1, cost: Math.ceil(Math.min(emails, 500_000) / 100) } });
  for (let i = 0; i < sw + dev; i++) reqs.push({ counts: { burst: 1, hourly: 1, cost: 2 } });
  return {
    requests: reqs.length,
    writes: sw + dev,
    cost: reqs.reduce((a, r) => a + r.counts.cost, 0),
    timeMs: reqs.length ? scheduleMs(reqs, fourmeWindows(scale)) + latencyMs / scale : 0,
    how: `ceil(${softwareCis} software CIs / 100) = ${sw} + ceil(${deviceCis} device CIs / 100) = ${dev} uploads (cost 2 each) + ${lookups} look-up request${lookups === 1 ? '' : 's'}; sent as early as 20 / 2 s, 3,600 / h and 5,000 points / h allow`,
  };
}

/**
 * The per-device way: the device pages, then GET managedDevices/{id}/detectedApps
 * for every device (one page each: ~40 apps), 20 to a $batch at best. Every
 * request inside a $batch counts in Intune's devices bucket (2,000 / 20 s
 * per app), the same bucket as the device pages.
 */
export function perDeviceFloor(devices: number, scale: number, latencyMs: number): ServiceFloor & { batches: number; innerRequests: number } {
  const pages = Math.max(1, Math.ceil(devices / 1000));
  const batches = Math.ceil(devices / 20);
  const reqs: FloorRequest[] = Array.from({ length: pages }, () => ({ counts: { devices: 1 } }));
  for (let b = 0; b < batches; b++) reqs.push({ counts: { devices: Math.min(20, devices - b * 20) } });
  return {
    requests: pages + batches,
    writes: 0,
    batches,
    innerRequests: devices,
    timeMs: scheduleMs(reqs, graphWindows(scale)) + latencyMs / scale,
    how: `${pages} device pages + ${devices} detectedApps requests (one per device) in ceil(${devices} / 20) = ${batches} $batch requests; every inner request counts in the devices bucket (2,000 / 20 s per app), as the pages do`,
  };
}

// ------------------------------------------------------------------ the per-device way, measured

export interface PerDeviceMeasured {
  devices: number;
  wallMs: number;
  pages: number;
  batches: number;
  innerRequests: number;
  throttledItems: number;
  apps: number;
  floor: ReturnType<typeof perDeviceFloor>;
  load: { before: string; after: string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The per-device way as a script does it, in the bench process: the device
 * ids page by page, then GET managedDevices/{id}/detectedApps for each, 20
 * to a $batch, one $batch after the other; throttled items are sent again
 * after their Retry-After (1 s when missing), as Graph asks.
 */
export async function perDeviceRead(w: World): Promise<Omit<PerDeviceMeasured, 'floor' | 'load'>> {
  const t0 = Date.now();
  const agent = new https.Agent({ keepAlive: true, ca: sharedTestCa().certPem });
  const http = axios.create({ httpsAgent: agent, timeout: 120_000, validateStatus: () => true });
  try {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: w.app.clientId, client_secret: w.app.secret, scope: `${w.graph.url}/.default` });
    const tok = await http.post(`${w.identity.url}/${w.tenantId}/oauth2/v2.0/token`, form.toString(), { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    const headers = { Authorization: `Bearer ${tok.data.access_token}` };
    const out = { devices: 0, wallMs: 0, pages: 0, batches: 0, innerRequests: 0, throttledItems: 0, apps: 0 };
    const ids: string[] = [];
    let url: string | undefined = `${w.graph.url}/v1.0/deviceManagement/managedDevices?$select=id`;
    while (url) {
      out.pages++;
      const res: { status: number; headers: Record<string, unknown>; data: { value: Array<{ id: string }>; '@odata.nextLink'?: string } } = await http.get(url, { headers });
      if (res.status === 429) {
        await sleep(Number(res.headers['retry-after'] ?? 1) * 1000);
        continue;
      }
      if (res.status !== 200) throw new Error(`per-device: Graph answered ${res.status}`);
      for (const d of res.data.value) ids.push(d.id);
      url = res.data['@odata.nextLink'];
    }
    out.devices = ids.length;
    let todo = ids;
    while (todo.length) {
      const retry: string[] = [];
      let waitS = 0;
      for (let k = 0; k < todo.length; k += 20) {
        const part = todo.slice(k, k + 20);
        out.batches++;
        out.innerRequests += part.length;
        const res = await http.post(
          `${w.graph.url}/v1.0/$batch`,
          { requests: part.map((id, n) => ({ id: String(n), method: 'GET', url: `/deviceManagement/managedDevices/${id}/detectedApps` })) },
          { headers: { ...headers, 'Content-Type': 'application/json' } },
        );
        if (res.status === 429) {
          retry.push(...part);
          waitS = Math.max(waitS, Number(res.headers['retry-after'] ?? 1));
          continue;
        }
        if (res.status !== 200) throw new Error(`per-device: $batch answered ${res.status}`);
        for (const r of res.data.responses as Array<{ id: string; status: number; headers?: Record<string, string>; body?: { value?: unknown[] } }>) {
          if (r.status === 429) {
            out.throttledItems++;
            retry.push(part[Number(r.id)]);
            waitS = Math.max(waitS, Number(r.headers?.['Retry-After'] ?? r.headers?.['retry-after'] ?? 1));
          } else if (r.status === 200) out.apps += r.body?.value?.length ?? 0;
          else throw new Error(`per-device: detectedApps answered ${r.status}`);
        }
        // Throttled: wait as asked before the next $batch (a script that keeps sending only collects more 429s).
        if (retry.length && waitS) {
          await sleep(waitS * 1000);
          waitS = 0;
        }
      }
      if (waitS) await sleep(waitS * 1000);
      todo = retry;
    }
    out.wallMs = Date.now() - t0;
    return out;
  } finally {
    agent.destroy();
  }
}

/** The per-device way on its own tenant of `devices` (a fresh world, no Node-RED). */
export async function runPerDevice(c: BenchConfig, devices: number): Promise<PerDeviceMeasured> {
  c.log(`per-device way: ${devices} devices`);
  const w = await startWorld({ devices, seed: c.seed, latencyMs: c.latencyMs, scale: c.scale });
  try {
    const before = loadavg();
    const m = await perDeviceRead(w);
    const after = loadavg();
    const floor = perDeviceFloor(m.devices, w.scale, c.latencyMs);
    c.log(`  per-device: ${(m.wallMs / 1000).toFixed(1)} s (floor ${(floor.timeMs / 1000).toFixed(1)} s), ${m.pages} pages + ${m.batches} $batch (${m.innerRequests} detectedApps, ${m.throttledItems} throttled), ${m.apps} apps; load ${before} → ${after}`);
    return { ...m, floor, load: { before, after } };
  } finally {
    await w.stop();
  }
}

// ------------------------------------------------------------------ scenario

export interface SoftwareRun {
  name: string;
  wallMs: number;
  cpuMs: number;
  simCpuMs: number;
  peakRssMb: number;
  peakReset: boolean;
  services: ServiceFigures;
  graph: { exportCreates: number; exportPolls: number; devicePages: number; downloads: number; rows: number; csvBytes: number; zipBytes: number };
  fourme: { softwareUploads: number; deviceUploads: number; softwareCisSent: number; deviceCisSent: number; summary: Json };
  acmp: { publishes: number; publishedBytes: number; devicesReceived: number };
  emitted: number;
  /** When each run ended, ms after the trigger; the 4me run's first page (its start) likewise. */
  timeline: { devicesEndMs: number; fourmeFirstPageMs: number; fourmeEndMs: number; acmpEndMs: number };
  /** /proc/loadavg before and after (the machine is shared). */
  load: { before: string; after: string };
}

export interface SoftwareResults {
  devices: number;
  seed: number;
  scale: number;
  latencyMs: number;
  startedAt: string;
  durationMs: number;
  /** Apps per device in the simulated tenant, by platform (sim/tenant-apps.ts). */
  mix: { devices: number; withApps: number; rows: number; distinctApps: number; byPlatform: Record<string, { devices: number; apps: number }> };
  baselineRssMb: number;
  initial: SoftwareRun;
  unchanged: SoftwareRun;
  floor: { graph: ServiceFloor; fourme: ServiceFloor; acmp: ServiceFloor; timeMs: number };
  perDevice: ReturnType<typeof perDeviceFloor>;
  /** How the timeline was obtained, when not from the report lines (said under it). */
  timelineNote?: string;
  /** The per-device way measured on a smaller tenant of its own (--per-device=N). */
  perDeviceMeasured?: PerDeviceMeasured;
}

const num = (v: unknown) => (typeof v === 'number' ? v : 0);
const loadavg = () => {
  try {
    return fs.readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
};

/** The tenant's app mix as the report export lists it (every device, duplicates included). */
function appMix(w: World): SoftwareResults['mix'] {
  const byPlatform: Record<string, { devices: number; apps: number }> = {};
  const keys = new Set<string>();
  let devices = 0;
  let withApps = 0;
  let rows = 0;
  for (let i = 0; i < w.tenant.positions; i++) {
    const meta = w.tenant.metaAt(i);
    if (!meta || !w.tenant.deviceAt(i)) continue;
    const apps = w.tenant.appsAt(i);
    devices++;
    if (apps.length) withApps++;
    rows += apps.length;
    const p = (byPlatform[meta.platform] ??= { devices: 0, apps: 0 });
    p.devices++;
    p.apps += apps.length;
    for (const a of apps) keys.add(a.key);
  }
  return { devices, withApps, rows, distinctApps: keys.size, byPlatform };
}

/**
 * Counts the 4me uploads by kind: an upload whose CIs all carry a software
 * sourceID (`app:<instance>:…`, docs/fourme-software.md) is a software
 * upload. The simulator counts both as discoveredConfigurationItems, so the
 * bench looks into each submission (bench only; the simulator is unchanged).
 */
function countUploads(w: World): { software: number; devices: number; softwareCis: number; deviceCis: number } {
  const tally = { software: 0, devices: 0, softwareCis: 0, deviceCis: 0 };
  const sim = w.fourme as unknown as { submitAsync: (s: { input: Record<string, unknown> }) => unknown };
  const original = sim.submitAsync.bind(w.fourme);
  sim.submitAsync = (s) => {
    const ids: string[] = [];
    for (const cat of (s.input.physicalAssets as Array<{ products?: Array<{ configurationItems?: Array<{ sourceID?: string }> }> }>) ?? []) {
      for (const p of cat.products ?? []) for (const ci of p.configurationItems ?? []) ids.push(String(ci.sourceID ?? ''));
    }
    const sw = ids.filter((id) => id.startsWith('app:')).length;
    if (ids.length && sw === ids.length) tally.software++;
    else tally.devices++;
    tally.softwareCis += sw;
    tally.deviceCis += ids.length - sw;
    return original(s);
  };
  return tally;
}

/** The bench flow with the device source reading discovered apps and the 4me report line carrying the software summary. */
function softwareFlow(w: World, c: BenchConfig): Array<Record<string, unknown>> {
  const flow = benchFlow(w, { store: c.store, fourmeConcurrency: c.fourmeConcurrency, asyncPollMs: c.asyncPollMs, lockIds: [], instance: 'bench' });
  for (const n of flow) {
    if (n.id === 'bench-devices') n.readSoftware = true;
    if (n.id === 'bench-rep-4me') n.func = REPORT_CODE.fourme.replace('errors: (p.errors', 'software: p.software, softwareNotInactivated: p.softwareNotInactivated, errors: (p.errors');
  }
  return flow;
}

/** The runs' ends (and the 4me run's start: its first page) relative to the trigger, from the report lines. */
function timeline(m: Measured): SoftwareRun['timeline'] {
  const at = (t: string) => num((m.runs[t] as Json | undefined)?.at);
  const t0 = Math.max(at('devices'), at('fourme'), at('acmp')) - m.wallMs;
  return {
    devicesEndMs: at('devices') - t0,
    fourmeFirstPageMs: at('fourme') - num((m.runs.fourme as Json | undefined)?.durationMs) - t0,
    fourmeEndMs: at('fourme') - t0,
    acmpEndMs: at('acmp') - t0,
  };
}

async function softwareRun(name: string, c: BenchConfig, w: World, b: BenchRed, uploads: ReturnType<typeof countUploads>): Promise<SoftwareRun> {
  const before = { ...uploads };
  const reports0 = { ...w.graph.reports.stats };
  const load0 = loadavg();
  const m: Measured = await measure(b, w, 'bench-inj-full', ['devices', 'fourme', 'acmp'], c.timeoutMs);
  const load1 = loadavg();
  const dev = m.runs.devices as { result?: string; stats?: Json };
  if (dev.result !== 'completed') throw new Error(`bench software: ${name}: the device run ended ${dev.result}: ${JSON.stringify(dev.stats)}`);
  const fm = m.runs.fourme as Json;
  if (num(fm.errorCount) !== 0) throw new Error(`bench software: ${name}: 4me reported errors: ${JSON.stringify(fm.errors)}`);
  const services = figures(m);
  const r = w.graph.reports.stats;
  const route = services.graph.byRoute;
  const run: SoftwareRun = {
    name,
    wallMs: m.wallMs,
    cpuMs: m.cpuMs,
    simCpuMs: m.simCpuMs,
    peakRssMb: m.peakRssMb,
    peakReset: m.peakReset,
    services,
    graph: {
      exportCreates: num(route['POST /deviceManagement/reports/exportJobs']),
      exportPolls: num(route['GET /deviceManagement/reports/exportJobs/{id}']),
      devicePages: services.graph.pages,
      downloads: r.downloads - reports0.downloads,
      rows: r.rowsServed - reports0.rowsServed,
      csvBytes: r.csvBytes - reports0.csvBytes,
      zipBytes: r.zipBytes - reports0.zipBytes,
    },
    fourme: {
      softwareUploads: uploads.software - before.software,
      deviceUploads: uploads.devices - before.devices,
      softwareCisSent: uploads.softwareCis - before.softwareCis,
      deviceCisSent: uploads.deviceCis - before.deviceCis,
      summary: { software: fm.software ?? null, cis: fm.cis ?? null, requests: fm.requests ?? null, softwareNotInactivated: fm.softwareNotInactivated ?? null },
    },
    acmp: {
      publishes: services.acmp.publishes,
      publishedBytes: num((m.sims.sics as Json | undefined)?.publishedBytes),
      devicesReceived: services.acmp.devicesReceived,
    },
    emitted: num(dev.stats?.emitted),
    timeline: timeline(m),
    load: { before: load0, after: load1 },
  };
  c.log(
    `  ${name}: ${(run.wallMs / 1000).toFixed(1)} s, ${run.emitted} devices; Graph ${Object.values(services.graph.byRoute).reduce((n, v) => n + v, 0)} req (${run.graph.devicePages} pages, ${run.graph.exportCreates} export + ${run.graph.exportPolls} polls, ${run.graph.rows} rows, ${(run.graph.zipBytes / 1e6).toFixed(1)} MB zip); ` +
      `4me ${services.fourme.graphql} req (${run.fourme.softwareUploads} software + ${run.fourme.deviceUploads} device uploads); ACMP ${run.acmp.publishes} publishes, ${(run.acmp.publishedBytes / 1e6).toFixed(1)} MB; ` +
      `peak RSS ${run.peakRssMb.toFixed(0)} MB; load ${load0} → ${load1}`,
  );
  return run;
}

/** The software scenario on a tenant of `devices` (the main tenant, --main). */
export async function runSoftwareBench(c: BenchConfig, devices: number, perDeviceDevices = 0): Promise<SoftwareResults> {
  const started = Date.now();
  c.log(`software: ${devices} devices, discovered apps on`);
  const result = await softwareScenario(c, devices, started);
  // The per-device way afterwards, in its own world, once the sync's Node-RED and world are gone.
  if (perDeviceDevices > 0) result.perDeviceMeasured = await runPerDevice(c, perDeviceDevices);
  result.durationMs = Date.now() - started;
  return result;
}

async function softwareScenario(c: BenchConfig, devices: number, started: number): Promise<SoftwareResults> {
  const w = await startWorld({ devices, seed: c.seed, latencyMs: c.latencyMs, scale: c.scale });
  try {
    // The 4me administrator's part (docs/fourme-software.md): a software category with rule set Software.
    w.fourme.seedProductCategory({ name: 'Application', group: 'software', ruleSet: 'software' }, FOURME_ACCOUNT);
    // The simulated job is ready after 1 s at scale 1 (Intune's build time is not documented); shrink it with the scale.
    w.graph.reports.setTiming({ startMs: 300 / c.scale, readyMs: 1000 / c.scale });
    const mix = appMix(w);
    c.log(`  app mix: ${mix.rows} rows on ${mix.devices} devices (${(mix.rows / Math.max(1, mix.devices)).toFixed(1)} per device), ${mix.distinctApps} distinct apps`);
    const uploads = countUploads(w);
    const b = await startBenchRedWith(w, c);
    try {
      const initial = await softwareRun('initial sync with software', c, w, b, uploads);
      const unchanged = await softwareRun('unchanged sync with software', c, w, b, uploads);
      const sw = (initial.fourme.summary.software ?? {}) as Json;
      // Distinct software CIs of the run's devices (a CI seen on several pages counts once).
      const softwareCis = num(sw.received);
      const emails = num(((initial.fourme.summary.requests ?? {}) as Json).personLookups) > 0 ? countEmails(w) : 0;
      const graph = graphSoftwareFloor(devices, w.scale, c.latencyMs);
      const fourme = fourmeSoftwareFloor(softwareCis, initial.emitted, emails, w.scale, c.latencyMs);
      const acmp = acmpFloor(initial.emitted, 200);
      return {
        devices,
        seed: c.seed,
        scale: w.scale,
        latencyMs: c.latencyMs,
        startedAt: new Date(started).toISOString(),
        durationMs: Date.now() - started,
        mix,
        baselineRssMb: b.baselineRssMb,
        initial,
        unchanged,
        floor: { graph, fourme, acmp, timeMs: Math.max(graph.timeMs, fourme.timeMs, acmp.timeMs) },
        perDevice: perDeviceFloor(devices, w.scale, c.latencyMs),
      };
    } finally {
      await b.stop();
    }
  } finally {
    await w.stop();
  }
}

async function startBenchRedWith(w: World, c: BenchConfig): Promise<BenchRed> {
  // startBenchRed deploys benchFlow; the software flow replaces it right after.
  const b = await startBenchRed(w, { store: c.store, fourmeConcurrency: c.fourmeConcurrency, asyncPollMs: c.asyncPollMs, lockIds: [], instance: 'bench' }, { echo: c.echo });
  const mark = b.red.mark();
  const res = await b.red.admin.post('/flows', { flows: softwareFlow(w, c) }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
  if (res.status !== 200) {
    await b.stop();
    throw new Error(`could not deploy the software flow: HTTP ${res.status} ${JSON.stringify(res.data)}`);
  }
  await b.red.waitForLog(/Started flows/, 60_000, mark);
  await new Promise((r) => setTimeout(r, 1000));
  return b;
}

/** Distinct primary-user addresses of the tenant's devices (what the 4me sink looks people up by). */
function countEmails(w: World): number {
  const set = new Set<string>();
  for (const d of w.tenant.iterate()) {
    const e = (d.userPrincipalName || d.emailAddress || '').trim().toLowerCase();
    if (e.includes('@')) set.add(e);
  }
  return set.size;
}

// ------------------------------------------------------------------ report block

export const SOFTWARE_BEGIN = '<!-- bench:software begin (npm run bench -- --only=software; bench/software.ts) -->';
export const SOFTWARE_END = '<!-- bench:software end -->';

/**
 * Puts the discovered-apps block found in `from` (a whole report or just
 * the block) into `report`: in place of the block there, else before
 * "## Memory" (after the last numbered section), else at the end. `report`
 * is returned unchanged when `from` holds no block.
 */
export function spliceSoftwareSection(report: string, from: string): string {
  const a = from.indexOf(SOFTWARE_BEGIN);
  const z = from.indexOf(SOFTWARE_END);
  if (a < 0 || z < a) return report;
  const block = from.slice(a, z + SOFTWARE_END.length);
  const ra = report.indexOf(SOFTWARE_BEGIN);
  const rz = report.indexOf(SOFTWARE_END);
  if (ra >= 0 && rz > ra) return report.slice(0, ra) + block + report.slice(rz + SOFTWARE_END.length);
  const at = report.indexOf('\n## Memory');
  if (at >= 0) return `${report.slice(0, at + 1)}${block}\n\n${report.slice(at + 1)}`;
  return `${report.replace(/\s*$/, '')}\n\n${block}\n`;
}

const int = (n: number) => Math.round(n).toLocaleString('en');
const sec = (ms: number) => (ms >= 100_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(1)} s`);
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : '');

/** The report's "Discovered apps (software)" section, between its markers. */
export function renderSoftwareSection(r: SoftwareResults & { machine?: { cpu: string; cores: number } }): string {
  const i = r.initial;
  const u = r.unchanged;
  const f = r.floor;
  const mix = r.mix;
  const perDev = (mix.rows / Math.max(1, mix.devices)).toFixed(1);
  const platforms = Object.entries(mix.byPlatform)
    .sort((a, b) => b[1].devices - a[1].devices)
    .map(([p, x]) => `${p} ${int(x.devices)} × ${(x.apps / Math.max(1, x.devices)).toFixed(1)}`)
    .join(', ');
  const sw = (i.fourme.summary.software ?? {}) as Record<string, number>;
  const swU = (u.fourme.summary.software ?? {}) as Record<string, number>;
  // Graph requests by route (the simulator's total also counts the storage download, served on the same port).
  const graphReq = (x: SoftwareRun) => Object.values(x.services.graph.byRoute).reduce((n, v) => n + v, 0);
  const pd = r.perDevice;
  const out: string[] = [];
  out.push(SOFTWARE_BEGIN);
  out.push(`## Discovered apps (software): ${int(r.devices)} devices`);
  out.push('');
  out.push(
    `The device source with "Discovered apps" on (Intune's AppInvRawData report export, docs/graph-software.md) into 4me (software CIs + relations, docs/fourme-software.md) and one ACMP server, in a real Node-RED process, at time scale ${r.scale}, ${r.latencyMs} ms per request; measured ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC with \`npm run bench -- --only=software --main=${r.devices}\`. ` +
      `**The machine was shared with other work during the run** (${r.machine ? `${r.machine.cores} cores; ` : ''}load average before → after: initial ${i.load.before.split(' ').slice(0, 3).join(' ')} → ${i.load.after.split(' ').slice(0, 3).join(' ')}, unchanged ${u.load.before.split(' ').slice(0, 3).join(' ')} → ${u.load.after.split(' ').slice(0, 3).join(' ')}): wall and CPU times are upper bounds; request counts are exact.`,
  );
  out.push('');
  out.push(
    `App mix of the simulated tenant (sim/tenant-apps.ts, unchanged for the bench): ${int(mix.rows)} report rows on ${int(mix.devices)} devices, **${perDev} apps per device** on average (${int(mix.withApps)} devices with any; by platform, devices × apps: ${platforms}); ${int(mix.distinctApps)} distinct title + version keys.`,
  );
  out.push('');
  out.push('|  | Initial | Unchanged | Floor (initial) | Ratio |');
  out.push('| --- | --- | --- | --- | --- |');
  out.push(`| Wall time (trigger → both sinks done) | ${sec(i.wallMs)} | ${sec(u.wallMs)} | ${sec(f.timeMs)} | ${ratio(i.wallMs, f.timeMs)} |`);
  out.push(`| Devices passed on | ${int(i.emitted)} | ${int(u.emitted)} |  |  |`);
  out.push(`| Graph requests | ${int(graphReq(i))} (${i.graph.devicePages} pages, ${i.graph.exportCreates} export create + ${i.graph.exportPolls} status reads) | ${int(graphReq(u))} (${u.graph.devicePages} pages, ${u.graph.exportCreates} + ${u.graph.exportPolls}) | ${f.graph.requests} | ${ratio(graphReq(i), f.graph.requests)} |`);
  out.push(`| Report downloads (storage, not Graph) | ${i.graph.downloads} | ${u.graph.downloads} | 1 |  |`);
  out.push(`| Report rows / CSV / zip as sent | ${int(i.graph.rows)} / ${mb(i.graph.csvBytes)} / ${mb(i.graph.zipBytes)} | ${int(u.graph.rows)} / ${mb(u.graph.csvBytes)} / ${mb(u.graph.zipBytes)} |  |  |`);
  out.push(`| 4me GraphQL requests | ${int(i.services.fourme.graphql)} | ${int(u.services.fourme.graphql)} | ${int(f.fourme.requests)} | ${ratio(i.services.fourme.graphql, f.fourme.requests)} |`);
  out.push(`| 4me software uploads (software CIs sent) | ${int(i.fourme.softwareUploads)} (${int(i.fourme.softwareCisSent)}) | ${int(u.fourme.softwareUploads)} (${int(u.fourme.softwareCisSent)}) | ${int(Math.ceil(i.fourme.softwareCisSent / 100))} |  |`);
  out.push(`| 4me device uploads (device CIs sent) | ${int(i.fourme.deviceUploads)} (${int(i.fourme.deviceCisSent)}) | ${int(u.fourme.deviceUploads)} (${int(u.fourme.deviceCisSent)}) | ${int(Math.ceil(i.emitted / 100))} |  |`);
  out.push(`| 4me cost points (simulator model) | ${int(i.services.fourme.cost)} | ${int(u.services.fourme.cost)} | ${int(f.fourme.cost ?? 0)} |  |`);
  out.push(`| 4me throttled | ${i.services.fourme.throttled} | ${u.services.fourme.throttled} |  |  |`);
  out.push(`| ACMP publishes / devices / bytes sent | ${int(i.acmp.publishes)} / ${int(i.acmp.devicesReceived)} / ${mb(i.acmp.publishedBytes)} | ${int(u.acmp.publishes)} / ${int(u.acmp.devicesReceived)} / ${mb(u.acmp.publishedBytes)} | ${int(f.acmp.requests)} |  |`);
  out.push(`| CPU time, Node-RED process | ${sec(i.cpuMs)} | ${sec(u.cpuMs)} |  |  |`);
  out.push(`| CPU time, simulators (same cores) | ${sec(i.simCpuMs)} | ${sec(u.simCpuMs)} |  |  |`);
  out.push(`| Peak RSS, Node-RED process | ${i.peakRssMb.toFixed(0)} MB | ${u.peakRssMb.toFixed(0)} MB |  | (${r.baselineRssMb.toFixed(0)} MB after start) |`);
  out.push('');
  out.push(
    `4me software summary, initial: ${JSON.stringify(sw)}; unchanged: ${JSON.stringify(swU)}. ` +
      `The unchanged run writes ${u.fourme.softwareUploads + u.fourme.deviceUploads === 0 && u.acmp.publishes === 0 ? '**nothing**' : `**${u.fourme.softwareUploads + u.fourme.deviceUploads} 4me uploads and ${u.acmp.publishes} ACMP publishes**`} to 4me and ACMP; it still reads the device pages and exports the report once more (Graph ${int(graphReq(u))} requests)${u.services.fourme.graphql ? `; its ${u.services.fourme.graphql} 4me request${u.services.fourme.graphql === 1 ? ' is' : 's are'} a read (${Object.keys(u.services.fourme.byRootField).join(', ')}: the software category check)` : ''}.`,
  );
  out.push('');
  out.push('Where the time above the floor goes (initial run):');
  out.push('');
  const tl = i.timeline;
  if (tl) {
    out.push(
      `- **The report before the first page: ${sec(tl.fourmeFirstPageMs)}** from the trigger until 4me received the first device page — export job, download of the ${mb(i.graph.zipBytes)} zip (${mb(i.graph.csvBytes)} of CSV, built by the simulator while it streams: simulator CPU on the same cores), reading ${int(i.graph.rows)} rows into the per-device index. The source needs the whole report before it can hand any page its apps, so nothing overlaps with it. The floor counts none of it (how long Intune takes to build the file, and how fast storage serves it, is not documented).`,
    );
    out.push(
      `- **The pages: ${sec(tl.devicesEndMs - tl.fourmeFirstPageMs)}** from the first page until the source's run ended, and ${sec(tl.fourmeEndMs - tl.fourmeFirstPageMs)} until 4me's, ${sec(tl.acmpEndMs - tl.fourmeFirstPageMs)} until ACMP's (the source sends a page when the sinks have taken the last). 4me's ${int(i.services.fourme.graphql)} requests need ≥ ${sec(i.services.fourme.graphql * 100)} at its 10 per second; software uploads are per page (${int(i.fourme.softwareUploads)} uploads for ${int(i.fourme.softwareCisSent)} software CIs against ${int(Math.ceil(i.fourme.softwareCisSent / 100))} at best: every page uploads the apps first seen on it, mostly fewer than 100). ACMP received ${mb(i.acmp.publishedBytes)} in ${int(i.acmp.publishes)} messages (${(i.acmp.publishedBytes / Math.max(1, i.acmp.devicesReceived) / 1000).toFixed(1)} kB per device, the software list in every device's message), which the simulated bus and server parse in the bench process — on the same 2 cores.`,
    );
  }
  out.push(`- **Graph: the duplicate pass.** ${int(i.graph.devicePages / 2)} of the ${int(graphReq(i))} Graph requests are the serial-number pass that collapses re-enrolled duplicates (as in item 1); the export itself took ${i.graph.exportCreates + i.graph.exportPolls}.`);
  if (r.timelineNote) out.push(`  (${r.timelineNote})`);
  const fr = (i.fourme.summary.requests ?? {}) as Record<string, number>;
  if (fr.retries) out.push(`- **Retries.** The 4me client reported ${int(fr.retries)} retried requests (it counts ${int(fr.graphql)} GraphQL requests, the simulator answered ${int(i.services.fourme.graphql)}).`);
  out.push(
    `- **CPU, not limits.** The Node-RED process used ${sec(i.cpuMs)} of CPU and the simulators ${sec(i.simCpuMs)}, ${sec(i.cpuMs + i.simCpuMs)} together in ${sec(i.wallMs)} on 2 cores shared with other work (load averages above): the run was bound by CPU, the services' limits left most of their budget unused (4me throttled ${i.services.fourme.throttled} times, Graph ${i.services.graph.throttled}).`,
  );
  out.push('');
  out.push(`**The per-device way** (\`GET managedDevices/{id}/detectedApps\`): computed for ${int(r.devices)} devices${r.perDeviceMeasured ? `, measured on ${int(r.perDeviceMeasured.devices)}` : ' (not measured: --per-device=0)'}:`);
  out.push('');
  out.push('|  | Report export (ours, floor) | Per device (floor) |');
  out.push('| --- | --- | --- |');
  out.push(`| Graph requests | ${f.graph.requests} | ${int(pd.requests)} (${int(pd.innerRequests)} detectedApps in ${int(pd.batches)} $batch + ${int(pd.requests - pd.batches)} pages) |`);
  out.push(`| Least time Graph's limits impose | ${sec(f.graph.timeMs)} | ${sec(pd.timeMs)} |`);
  out.push(`| Share of the devices bucket (2,000 / 20 s) used | the pages only | all of it for ${sec(pd.timeMs)}: every other device read of the app waits |`);
  out.push('');
  const pm = r.perDeviceMeasured;
  if (pm) {
    out.push(
      `Measured on a tenant of ${int(pm.devices)} devices (the simulator's \`GET managedDevices/{id}/detectedApps\`, bench/software.ts \`perDeviceRead\`: device ids page by page, then one $batch of 20 after the other, throttled items sent again after Retry-After): ` +
        `**${sec(pm.wallMs)}** against its floor of ${sec(pm.floor.timeMs)}; ${int(pm.pages)} pages + ${int(pm.batches)} $batch requests holding ${int(pm.innerRequests)} detectedApps requests (${int(pm.throttledItems)} of them throttled and sent again), ${int(pm.apps)} apps read; load average ${pm.load.before.split(' ').slice(0, 3).join(' ')} → ${pm.load.after.split(' ').slice(0, 3).join(' ')}. ` +
        `For comparison, the report export of ${int(r.devices)} devices took ${r.initial.graph.exportCreates + r.initial.graph.exportPolls} Graph requests.`,
    );
    out.push('');
  }
  out.push(`- Per device: ${pd.how}.`);
  out.push(`- Graph floor (ours): ${f.graph.how}.`);
  out.push(`- 4me floor: ${f.fourme.how}.`);
  out.push(`- ACMP floor: ${f.acmp.how}.`);
  out.push(SOFTWARE_END);
  return out.join('\n');
}
