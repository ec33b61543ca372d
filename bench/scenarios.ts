/**
 * The benchmark's scenarios, shared by `npm run bench` (bench/run.ts) and
 * the small version inside `npm test` (test/bench.test.ts):
 *
 *   scaling     initial full sync of tenants of each size, fresh Node-RED each
 *   main        on the largest tenant, one Node-RED: initial full sync,
 *               incremental sync after a share of the devices changed,
 *               unchanged full sync, bulk lock, (deleted-user check)
 *   compliance  compliance run over the same tenant (5 % non-compliant) into
 *               the same 4me, in a fresh Node-RED at its own time scale
 *   naive       the naive way and ours on a small tenant, each twice
 *               (initial, unchanged), in separate worlds
 *
 * Every scenario records wall time, requests per service (the simulators'
 * counters), CPU time and peak RSS of the Node-RED process, and its floor.
 */
import { isoSeconds } from '../sim/tenant';
import { DEFAULT_SKIP_STATES } from '../nodes/lib/devices/device-filters';
import { startWorld, FOURME_ACCOUNT, type World } from './world';
import { startBenchRed, measure, snapshot, diff, type BenchRed, type Json, type Measured } from './harness';
import { acmpFloor, fourmeCiFloor, fourmeIncidentFloor, graphActionFloor, graphComplianceFloor, graphReadFloor, type ServiceFloor } from './floor';
import { naiveSync, type NaiveResult } from './naive';
import { templateFlow, templateFullRun, templatePreview, type PreviewProgressSeen } from './template';

export interface BenchConfig {
  /** Tenant sizes of the scaling runs (item 6); the main tenant's size is one of them or added. */
  sizes: number[];
  /** The main tenant (items 1–5, the template, compliance). */
  mainSize: number;
  /** Time scale of scaling runs above the main tenant's size: 4me's hourly budgets bind there (500,000 devices: 2 h at scale 1). */
  largeScale: number;
  /** Run the shipped 4me template (first run with a cold directory cache, and its Preview). */
  template: boolean;
  seed: number;
  /** Per-request latency of every simulated service at time scale 1 (ms). */
  latencyMs: number;
  /** Time scale of the scaling and main scenarios. */
  scale: number;
  /** Time scale of the compliance scenario (its 4me budgets are hourly). */
  complianceScale: number;
  nonCompliantShare: number;
  /** Share of the main tenant changed before the incremental run. */
  changedShare: number;
  lockDevices: number;
  naiveDevices: number;
  /** Measure the devices source with the deleted-user check on (main tenant). */
  deletedUsers: boolean;
  /** Skip the compliance / naive scenarios. */
  compliance: boolean;
  naive: boolean;
  /** Context store of the nodes: '' memory, 'file' localfilesystem. */
  store: string;
  fourmeConcurrency: number;
  asyncPollMs: number;
  /**
   * V8 options of a second initial full sync of the main tenant, in a fresh
   * Node-RED process: the heap capped as on a small machine ('' = skip).
   */
  cappedNodeOptions: string;
  timeoutMs: number;
  log: (m: string) => void;
  echo?: boolean;
  /**
   * 'template': only the shipped 4me template (Preview, cold first run).
   * 'lock': only the bulk action on the main tenant, in a fresh Node-RED
   * (to re-measure item 5 without the 23-minute run; the report is then
   * not rewritten, its figures are printed).
   */
  only?: 'lock' | 'template';
}

export const DEFAULT_CONFIG: BenchConfig = {
  sizes: [1000, 10_000, 100_000, 500_000],
  mainSize: 100_000,
  largeScale: 24,
  template: true,
  seed: 20_240_901,
  latencyMs: 50,
  scale: 1,
  complianceScale: 24,
  nonCompliantShare: 0.05,
  changedShare: 0.01,
  lockDevices: 1000,
  naiveDevices: 200,
  deletedUsers: true,
  compliance: true,
  naive: true,
  store: 'file',
  fourmeConcurrency: 8,
  asyncPollMs: 1000,
  cappedNodeOptions: '--max-old-space-size=128 --max-semi-space-size=2',
  timeoutMs: 3 * 3600_000,
  log: (m) => console.log(m),
};

export interface ServiceFigures {
  graph: { requests: number; batchItems: number; pages: number; writes: number; throttled: number; byRoute: Record<string, number> };
  fourme: { graphql: number; resultPolls: number; tokenRequests: number; cost: number; writeRequests: number; recordsWritten: number; throttled: number; byRootField: Record<string, number> };
  acmp: { sicsRequests: number; publishes: number; inventoryMessages: number; removalMessages: number; devicesReceived: number; consumes: number };
}

export interface ScenarioResult {
  name: string;
  tenantDevices: number;
  scale: number;
  wallMs: number;
  cpuMs: number;
  simCpuMs: number;
  peakRssMb: number;
  peakReset: boolean;
  baselineRssMb: number;
  services: ServiceFigures;
  floor: { graph?: ServiceFloor; fourme?: ServiceFloor; acmp?: ServiceFloor; timeMs: number };
  /** Figures the report shows for this scenario. */
  facts: Json;
  /** 4me's answer times during the scenario (ms). */
  fourmeAnswerMs?: { p50: number; p90: number; n: number };
  /** First and last 4me GraphQL request of the scenario (ms after the trigger) and their number (harness.ts). */
  fourmeSpan?: { firstMs: number; lastMs: number; requests: number };
  /** Memory by kind at the scenario's peak RSS (bench/heap-sampler.ts). */
  heap?: Measured['heap'];
  runs: Record<string, Json>;
}

export interface BenchResults {
  config: Omit<BenchConfig, 'log'>;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  world: { people: number; mainTenant: number };
  scaling: ScenarioResult[];
  main: ScenarioResult[];
  /** The initial full sync of the main tenant again, heap capped (cappedNodeOptions). */
  capped?: ScenarioResult & { nodeOptions: string };
  /** The unchanged full sync after it, in the same heap-capped process. */
  cappedUnchanged?: ScenarioResult;
  compliance?: ScenarioResult;
  /** The compliance run again with nothing changed: what an hourly run costs between changes. */
  complianceUnchanged?: ScenarioResult;
  /** The shipped 4me template: its first full run with the directory cache cold, and its Preview. */
  template?: { cold: ScenarioResult; preview: { ms: number; answer: Json; graphRoutes: Record<string, number>; progress?: PreviewProgressSeen } };
  naive?: {
    devices: number;
    naive: { initial: NaiveResult & { sims: ServiceFigures }; unchanged: NaiveResult & { sims: ServiceFigures } };
    ours: { initial: ScenarioResult; unchanged: ScenarioResult };
  };
}

const num = (v: unknown) => (typeof v === 'number' ? v : 0);

export function figures(m: Measured): ServiceFigures {
  const g = (m.sims.graph ?? {}) as Json;
  const f = (m.sims.fourme ?? {}) as Json;
  const s = (m.sims.sics ?? {}) as Json;
  const a = (m.sims.acmp ?? {}) as Json;
  const byRoute = (g.byRoute ?? {}) as Record<string, number>;
  const fRoute = (f.byRoute ?? {}) as Record<string, number>;
  const mutations = (f.mutations ?? {}) as Record<string, number>;
  const messages = (a.messages ?? {}) as Record<string, number>;
  const graphWrites = Object.entries(byRoute)
    .filter(([k]) => /^(POST|PATCH|PUT|DELETE) /.test(k) && k !== 'POST /$batch' && !k.includes('/reports/'))
    .reduce((n, [, v]) => n + v, 0);
  return {
    graph: {
      requests: num(g.requests),
      batchItems: num(g.batchInner),
      pages: num(byRoute['GET /deviceManagement/managedDevices']),
      writes: graphWrites,
      throttled: num(g.throttled),
      byRoute,
    },
    fourme: {
      graphql: num(fRoute.graphql),
      resultPolls: num(fRoute.async),
      tokenRequests: num(fRoute.token),
      cost: num(f.cost),
      writeRequests: Object.values(mutations).reduce((n, v) => n + v, 0),
      recordsWritten: num(f.cisWritten) + num(mutations.requestCreate) + num(mutations.requestUpdate) + num(mutations.noteCreate),
      throttled: num(f.throttled),
      byRootField: (f.byRootField ?? {}) as Record<string, number>,
    },
    acmp: {
      sicsRequests: num(s.requests),
      publishes: num(s.publishes),
      inventoryMessages: num(messages.inventory),
      removalMessages: num(messages.removal),
      devicesReceived: num(a.devicesReceived),
      consumes: num(s.consumes),
    },
  };
}

function result(name: string, w: World, b: BenchRed, m: Measured, floor: ScenarioResult['floor'], facts: Json): ScenarioResult {
  return {
    name,
    tenantDevices: w.tenant.liveCount,
    scale: w.scale,
    wallMs: m.wallMs,
    cpuMs: m.cpuMs,
    simCpuMs: m.simCpuMs,
    peakRssMb: m.peakRssMb,
    peakReset: m.peakReset,
    baselineRssMb: b.baselineRssMb,
    services: figures(m),
    floor,
    facts,
    fourmeAnswerMs: m.fourmeAnswerMs,
    fourmeSpan: m.fourmeSpan,
    heap: m.heap,
    runs: m.runs,
  };
}

function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(`bench: ${what}`);
}

/** The memory by kind at the peak, for the console. */
export function heapLine(h: ScenarioResult['heap']): string {
  if (!h) return '';
  const a = h.atPeak;
  const sp = Object.entries(a.spaces).filter(([, v]) => v >= 1).map(([k, v]) => `${k} ${v}`).join(', ');
  return ` (at peak: heap ${a.heapTotal} MB committed, ${a.heapUsed} used [${sp}], external ${a.external}, array buffers ${a.arrayBuffers})`;
}

/** Distinct primary-user addresses of the devices a run passed on — what the 4me sink looks people up by. */
function distinctEmails(w: World, ids?: Set<string>): number {
  const set = new Set<string>();
  for (const d of w.tenant.iterate()) {
    if (ids && !ids.has(d.id)) continue;
    const e = (d.userPrincipalName || d.emailAddress || '').trim().toLowerCase();
    if (e.includes('@')) set.add(e);
  }
  return set.size;
}

function flowOptions(c: BenchConfig, lockIds: string[]) {
  return { store: c.store, fourmeConcurrency: c.fourmeConcurrency, asyncPollMs: c.asyncPollMs, lockIds, instance: 'bench' };
}

const SYNC_TAGS = ['devices', 'fourme', 'acmp'];

/** Initial full sync (or any full/incremental run) of the device flow, with its floor. */
async function syncScenario(
  name: string,
  c: BenchConfig,
  w: World,
  b: BenchRed,
  inject: string,
  o: { changed: number | 'all'; emails: number | 'all'; graphDevices: number },
): Promise<ScenarioResult> {
  const m = await measure(b, w, inject, SYNC_TAGS, c.timeoutMs);
  const dev = m.runs.devices as { result?: string; stats?: Json };
  check(dev.result === 'completed', `${name}: the device run ended ${dev.result}: ${JSON.stringify(dev.stats)}`);
  const fm = m.runs.fourme as Json;
  check(num(fm.errorCount) === 0, `${name}: 4me reported errors: ${JSON.stringify(fm.errors)}`);
  const emitted = num(dev.stats?.emitted);
  // An initial sync writes every device passed on and looks up every primary user.
  const changed = o.changed === 'all' ? emitted : o.changed;
  const emails = o.emails === 'all' ? distinctEmails(w) : o.emails;
  const graph = graphReadFloor(o.graphDevices, w.scale, c.latencyMs);
  const fourme = fourmeCiFloor(changed, emails, w.scale, c.latencyMs);
  const acmp = acmpFloor(changed, 200);
  const r = result(name, w, b, m, { graph, fourme, acmp, timeMs: Math.max(graph.timeMs, fourme.timeMs, acmp.timeMs) }, { emitted, changed, emails });
  const f = r.services;
  c.log(
    `  ${name}: ${(r.wallMs / 1000).toFixed(1)} s (floor ${(r.floor.timeMs / 1000).toFixed(1)} s), ${emitted} devices passed on; ` +
      `Graph ${f.graph.requests} req, 4me ${f.fourme.graphql} req (${f.fourme.writeRequests} writes, ${f.fourme.resultPolls} polls), ACMP ${f.acmp.publishes} publishes; ` +
      `CPU ${(r.cpuMs / 1000).toFixed(1)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB${heapLine(r.heap)}`,
  );
  return r;
}

/** Scaling: one initial full sync per tenant size, each in a fresh world and Node-RED. */
async function scalingRun(c: BenchConfig, size: number, nodeOptions?: string, scale = c.scale, then?: (w: World, b: BenchRed) => Promise<void>): Promise<ScenarioResult> {
  const w = await startWorld({ devices: size, seed: c.seed, latencyMs: c.latencyMs, scale });
  const b = await startBenchRed(w, flowOptions(c, []), { echo: c.echo, nodeOptions });
  try {
    const r = await syncScenario(`initial full sync, ${size.toLocaleString('en')} devices`, c, w, b, 'bench-inj-full', { changed: 'all', emails: 'all', graphDevices: size });
    await then?.(w, b);
    return r;
  } finally {
    await b.stop();
    await w.stop();
  }
}

/** Picks `share` of the devices (every k-th, never a stale duplicate) and changes them as Intune would report a change. */
function changeDevices(w: World, share: number): string[] {
  const every = Math.max(1, Math.round(1 / share));
  const ids: string[] = [];
  const at = Date.now();
  for (let i = Math.floor(every / 2); i < w.tenant.positions; i += every) {
    const meta = w.tenant.metaAt(i);
    const d = w.tenant.deviceAt(i);
    // Never a stale duplicate or a device the source skips (pending retire/wipe): every change must reach the sinks.
    if (!meta || !d || meta.duplicateOf !== null || DEFAULT_SKIP_STATES.includes(d.managementState)) continue;
    w.tenant.patchDevice(d.id, { osVersion: `${d.osVersion}.1`, lastSyncDateTime: isoSeconds(at) });
    ids.push(d.id);
  }
  return ids;
}

/** Bulk action: one intune-action request locking `lockIds`, with its floor. */
async function lockScenario(c: BenchConfig, w: World, b: BenchRed, lockIds: string[]): Promise<ScenarioResult> {
  const m = await measure(b, w, 'bench-inj-lock', ['action'], c.timeoutMs);
  const graph = graphActionFloor(lockIds.length, w.scale, c.latencyMs);
  const r = result('bulk action: lock', w, b, m, { graph, timeMs: graph.timeMs }, { devices: lockIds.length, outcomes: (m.runs.action as Json).outcomes, status: (m.runs.action as Json).status });
  c.log(`  lock ${lockIds.length}: ${(r.wallMs / 1000).toFixed(1)} s (floor ${(graph.timeMs / 1000).toFixed(1)} s), Graph ${r.services.graph.requests} req, ${r.services.graph.writes} writes, throttled ${r.services.graph.throttled}, outcomes ${JSON.stringify(r.facts.outcomes)}`);
  return r;
}

/** The shipped 4me template in a fresh world and Node-RED: its Preview, then its first full run (directory cache cold). */
async function templateScenario(c: BenchConfig, mainSize: number): Promise<NonNullable<BenchResults['template']>> {
  c.log(`shipped 4me template: ${mainSize} devices, directory cache cold`);
  const tw = await startWorld({ devices: mainSize, seed: c.seed, latencyMs: c.latencyMs, scale: c.scale });
  try {
    const flow = templateFlow(tw);
    const b = await startBenchRed(tw, { ...flowOptions(c, []), store: '' }, { echo: c.echo, nodes: flow });
    try {
      // The Preview first, as an integrator opens the dialog before the first run: nothing cached yet.
      const preview = await templatePreview(tw, b, flow);
      c.log(`  Preview: ${(preview.ms / 1000).toFixed(1)} s, ${JSON.stringify({ imported: preview.answer.imported, requests: preview.answer.requests, userLookupsPending: preview.answer.userLookupsPending, progress: preview.progress })}`);
      const run = await templateFullRun(tw, b, flow, c.timeoutMs);
      const emails = distinctEmails(tw);
      const graphFloor = graphReadFloor(mainSize, tw.scale, c.latencyMs);
      const fourme = fourmeCiFloor(run.emitted, emails, tw.scale, c.latencyMs);
      const cold = result('shipped 4me template, first full run', tw, b, run.m, { graph: graphFloor, fourme, timeMs: Math.max(graphFloor.timeMs, fourme.timeMs) }, { emitted: run.emitted, emails, details: run.details });
      c.log(
        `  cold run: ${(cold.wallMs / 1000).toFixed(1)} s (4me floor ${(fourme.timeMs / 1000).toFixed(1)} s), ${run.emitted} devices; Graph ${cold.services.graph.requests} req ${JSON.stringify(cold.services.graph.byRoute)}, 4me ${cold.services.fourme.graphql} req; peak RSS ${cold.peakRssMb.toFixed(0)} MB${heapLine(cold.heap)}`,
      );
      return { cold, preview };
    } finally {
      await b.stop();
    }
  } finally {
    await tw.stop();
  }
}

export async function runBench(c: BenchConfig): Promise<BenchResults> {
  const started = Date.now();
  const sizes = [...c.sizes].sort((a, b) => a - b);
  const mainSize = c.mainSize;
  const results: BenchResults = {
    config: { ...c, log: undefined } as unknown as BenchResults['config'],
    startedAt: new Date(started).toISOString(),
    world: { people: 0, mainTenant: mainSize },
    scaling: [],
    main: [],
  };
  delete (results.config as Partial<BenchConfig>).log;

  // ---------------------------------------------------------------- scaling
  for (const size of c.only ? [] : sizes.filter((n) => n < mainSize)) {
    c.log(`scaling: ${size} devices`);
    results.scaling.push(await scalingRun(c, size));
  }

  // ---------------------------------------------------------------- main tenant
  c.log(`main tenant: ${mainSize} devices`);
  const w = await startWorld({ devices: mainSize, seed: c.seed, latencyMs: c.latencyMs, scale: c.scale, nonCompliantShare: c.nonCompliantShare });
  results.world.people = w.people;
  const lockIds: string[] = [];
  for (let i = 0; lockIds.length < c.lockDevices && i < w.tenant.positions; i++) {
    const d = w.tenant.deviceAt(i);
    if (d) lockIds.push(d.id);
  }
  if (c.only === 'template') {
    await w.stop();
    results.template = await templateScenario(c, mainSize);
    results.finishedAt = new Date().toISOString();
    results.durationMs = Date.now() - started;
    return results;
  }
  if (c.only === 'lock') {
    try {
      const b = await startBenchRed(w, flowOptions(c, lockIds), { echo: c.echo });
      try {
        results.main.push(await lockScenario(c, w, b, lockIds));
      } finally {
        await b.stop();
      }
    } finally {
      await w.stop();
    }
    results.finishedAt = new Date().toISOString();
    results.durationMs = Date.now() - started;
    return results;
  }
  try {
    let b = await startBenchRed(w, flowOptions(c, lockIds), { echo: c.echo });
    try {
      const initial = await syncScenario('initial full sync', c, w, b, 'bench-inj-full', { changed: 'all', emails: 'all', graphDevices: mainSize });
      results.main.push(initial);
      results.scaling.push({ ...initial, name: `initial full sync, ${mainSize.toLocaleString('en')} devices` });

      const changed = changeDevices(w, c.changedShare);
      const changedSet = new Set(changed);
      c.log(`  changed ${changed.length} devices`);
      // The 4me people cache holds every address after the initial run: the floor needs no look-up either.
      const incr = await syncScenario('incremental sync', c, w, b, 'bench-inj-incr', { changed: changed.length, emails: 0, graphDevices: changed.length });
      incr.facts.changedDevices = changed.length;
      incr.facts.emailsOfChanged = distinctEmails(w, changedSet);
      results.main.push(incr);

      const unchanged = await syncScenario('unchanged full sync', c, w, b, 'bench-inj-full', { changed: 0, emails: 0, graphDevices: mainSize });
      results.main.push(unchanged);

      if (c.lockDevices > 0) results.main.push(await lockScenario(c, w, b, lockIds));

      if (c.deletedUsers) {
        const m = await measure(b, w, 'bench-inj-users', ['users'], c.timeoutMs);
        const run = m.runs.users as { result?: string; stats?: Json; details?: Json };
        check(run.result === 'completed', `deleted-user check: the run ended ${run.result}`);
        const lookups = num(run.details?.userLookups);
        const graph = graphReadFloor(mainSize, w.scale, c.latencyMs);
        // Directory look-ups: Graph's identity limits are far higher than Intune's; the floor is the $batch count.
        const r = result('deleted-user check (devices source only)', w, b, m, { graph, timeMs: graph.timeMs }, { userLookups: lookups, emitted: num(run.stats?.emitted) });
        c.log(`  deleted-user check: ${(r.wallMs / 1000).toFixed(1)} s, ${lookups} users looked up, Graph ${r.services.graph.requests} req (${r.services.graph.batchItems} batch items)`);
        results.main.push(r);
      }
    } finally {
      await b.stop();
    }

    // ---------------------------------------------------------------- capped heap
    if (c.cappedNodeOptions) {
      c.log(`capped heap: ${mainSize} devices, NODE_OPTIONS=${c.cappedNodeOptions}`);
      // Then the unchanged full sync in the same capped process: the default-heap run's higher peak
      // there is garbage V8 has not collected yet, if the capped one is as fast with far less.
      let unchangedCapped: ScenarioResult | undefined;
      const capped = await scalingRun(c, mainSize, c.cappedNodeOptions, c.scale, async (cw, cb) => {
        unchangedCapped = await syncScenario('unchanged full sync, heap capped', c, cw, cb, 'bench-inj-full', { changed: 0, emails: 0, graphDevices: mainSize });
      });
      results.capped = { ...capped, name: `initial full sync, heap capped`, nodeOptions: c.cappedNodeOptions };
      if (unchangedCapped) results.cappedUnchanged = unchangedCapped;
    }

    // ---------------------------------------------------------------- compliance
    if (c.compliance) {
      c.log(`compliance: ${mainSize} devices, time scale ${c.complianceScale}`);
      w.setScale(c.complianceScale);
      b = await startBenchRed(w, flowOptions(c, []), { echo: c.echo });
      try {
        const m = await measure(b, w, 'bench-inj-comp', ['compliance', 'fourme'], c.timeoutMs);
        const comp = m.runs.compliance as { result?: string; stats?: Json; details?: Json };
        check(comp.result === 'completed', `compliance: the run ended ${comp.result}: ${JSON.stringify(comp.stats)}`);
        const fm = m.runs.fourme as { incidents?: Record<string, number>; errorCount?: number; errors?: unknown };
        check(num(fm.errorCount) === 0, `compliance: 4me reported errors: ${JSON.stringify(fm.errors)}`);
        let violations = 0;
        let nonCompliantDevices = 0;
        let reportRows = 0;
        for (let i = 0; i < w.tenant.positions; i++) {
          const v = w.tenant.violationsAt(i);
          if (!v.length) continue;
          nonCompliantDevices++;
          violations += v.length;
          for (const x of v) reportRows += x.settings.length;
        }
        const raised = num(fm.incidents?.raised);
        const emitted = num(comp.stats?.emitted);
        const graph = graphComplianceFloor(reportRows, w.scale, c.latencyMs);
        // One request holds every look-up: the CIs and people of the devices, and open requests by key.
        const fourme = fourmeIncidentFloor(raised, 3 * Math.max(emitted, 1), w.scale, c.latencyMs);
        const r = result('compliance run', w, b, m, { graph, fourme, timeMs: Math.max(graph.timeMs, fourme.timeMs) }, {
          nonCompliantDevices,
          violations,
          reportRows,
          emitted,
          incidents: fm.incidents,
          realFloorMs: fourmeIncidentFloor(raised, 3 * Math.max(emitted, 1), 1, c.latencyMs).timeMs,
        });
        c.log(`  compliance: ${(r.wallMs / 1000).toFixed(1)} s at scale ${w.scale} (floor ${(r.floor.timeMs / 1000).toFixed(1)} s), ${raised} incidents, Graph ${r.services.graph.requests} req, 4me ${r.services.fourme.graphql} req (cost ${r.services.fourme.cost})`);
        results.compliance = r;

        // The same run again, nothing changed: every violation is known (no policy-state read, no incident),
        // the serial numbers' twins are kept from the first run (compliance-twins.ts).
        const again = await measure(b, w, 'bench-inj-comp', ['compliance', 'fourme'], c.timeoutMs);
        const comp2 = again.runs.compliance as { result?: string; stats?: Json; details?: Json };
        check(comp2.result === 'completed', `compliance, unchanged: the run ended ${comp2.result}`);
        const fm2 = again.runs.fourme as { incidents?: Record<string, number> };
        const r2 = result('compliance run, nothing changed', w, b, again, { graph, timeMs: graph.timeMs }, { emitted: num(comp2.stats?.emitted), incidents: fm2.incidents, details: comp2.details ?? {} });
        c.log(`  compliance, unchanged: ${(r2.wallMs / 1000).toFixed(1)} s at scale ${w.scale}, Graph ${r2.services.graph.requests} req (floor ${graph.requests}), ${num(fm2.incidents?.raised)} raised, routes ${JSON.stringify(r2.services.graph.byRoute)}`);
        results.complianceUnchanged = r2;
      } finally {
        await b.stop();
      }
    }
  } finally {
    await w.stop();
  }

  // ---------------------------------------------------------------- the shipped 4me template
  if (c.template) results.template = await templateScenario(c, mainSize);

  // ---------------------------------------------------------------- naive
  if (c.naive && c.naiveDevices > 0) {
    c.log(`naive vs ours: ${c.naiveDevices} devices`);
    const nw = await startWorld({ devices: c.naiveDevices, seed: c.seed, latencyMs: c.latencyMs, scale: c.scale });
    let naive: NonNullable<BenchResults['naive']>['naive'];
    try {
      nw.fourme.seedProductCategory({ name: 'Other device', group: 'computer', reference: 'computer/other_device' }, FOURME_ACCOUNT);
      const s0 = snapshot(nw);
      const initial = await naiveSync(nw);
      const s1 = snapshot(nw);
      nw.resetThrottling();
      const unchanged = await naiveSync(nw);
      const s2 = snapshot(nw);
      naive = {
        initial: { ...initial, sims: figures({ sims: diff(s0, s1) } as Measured) },
        unchanged: { ...unchanged, sims: figures({ sims: diff(s1, s2) } as Measured) },
      };
      c.log(`  naive: ${(initial.wallMs / 1000).toFixed(1)} s, 4me ${initial.fourme.requests} req; unchanged: ${(unchanged.wallMs / 1000).toFixed(1)} s, ${unchanged.fourme.updates} updates`);
    } finally {
      await nw.stop();
    }
    const ow = await startWorld({ devices: c.naiveDevices, seed: c.seed, latencyMs: c.latencyMs, scale: c.scale });
    try {
      const b = await startBenchRed(ow, flowOptions(c, []), { echo: c.echo });
      try {
        const initial = await syncScenario('ours, initial', c, ow, b, 'bench-inj-full', { changed: 'all', emails: 'all', graphDevices: c.naiveDevices });
        const unchanged = await syncScenario('ours, unchanged', c, ow, b, 'bench-inj-full', { changed: 0, emails: 0, graphDevices: c.naiveDevices });
        results.naive = { devices: c.naiveDevices, naive, ours: { initial, unchanged } };
      } finally {
        await b.stop();
      }
    } finally {
      await ow.stop();
    }
  }
  // ---------------------------------------------------------------- scaling above the main tenant
  for (const size of sizes.filter((n) => n > mainSize)) {
    c.log(`scaling: ${size} devices, time scale ${c.largeScale}`);
    results.scaling.push(await scalingRun(c, size, undefined, c.largeScale));
  }
  results.finishedAt = new Date().toISOString();
  results.durationMs = Date.now() - started;
  return results;
}
