/**
 * A real Node-RED child process with this package installed (link), the
 * bench flow deployed through the Admin API, and one measured scenario at
 * a time: trigger an inject node, wait for the report lines of the runs it
 * starts, and take the figures — wall time, requests per service from the
 * simulators' own counters, CPU time and peak RSS of the Node-RED process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNodeRed, type NodeRedProcess } from '../sim/node-red-runner';
import { TIME_SCALE_ENV } from '../nodes/lib/shared/time-scale';
import { cpuMs, ownCpuMs, peakRssMb, resetPeak, rssMb } from './proc';
import { benchFlow, type FlowOptions } from './flow';
import type { World } from './world';

export type Json = Record<string, unknown>;

export interface BenchRed {
  red: NodeRedProcess;
  pid: number;
  /** RSS right after the flows started (MB). */
  baselineRssMb: number;
  /**
   * Wait after a run before the peak is read (ms): the `file` context store
   * (localfilesystem) writes 30 s after the last change, and that write of
   * the sinks' state belongs to the run's memory.
   */
  flushWaitMs: number;
  /** The heap sampler's file (bench/heap-sampler.ts), when it runs. */
  heapSamples?: string;
  stop(): Promise<void>;
}

/**
 * `nodeOptions`: NODE_OPTIONS of the Node-RED process (default: BENCH_RED_NODE_OPTIONS, else none).
 * `nodes`: deploy these flow nodes instead of the bench flow (the shipped template, bench/template.ts).
 * `heapSamples`: the process writes its memory by kind every 250 ms (bench/heap-sampler.ts; default on).
 */
export async function startBenchRed(
  w: World,
  flow: FlowOptions,
  o: { echo?: boolean; nodeOptions?: string; nodes?: Array<Record<string, unknown>>; heapSamples?: boolean } = {},
): Promise<BenchRed> {
  const samples = o.heapSamples === false ? undefined : path.join(os.tmpdir(), `intune-bench-heap-${process.pid}-${Date.now()}.jsonl`);
  const sampler = samples ? `--require ${path.join(__dirname, 'heap-sampler.js')}` : '';
  const nodeOptions = [o.nodeOptions ?? process.env.BENCH_RED_NODE_OPTIONS ?? '', sampler].filter(Boolean).join(' ');
  const red = await startNodeRed({
    install: 'link',
    echo: o.echo,
    env: { [TIME_SCALE_ENV]: String(w.scale), NODE_OPTIONS: nodeOptions, ...(samples ? { BENCH_HEAP_SAMPLES: samples } : {}) },
    // Info is enough (the report lines are info); debug lines would only cost time.
    settings: { logging: { console: { level: 'info', metrics: false, audit: false } } },
  });
  const mark = red.mark();
  const res = await red.admin.post('/flows', { flows: o.nodes ?? benchFlow(w, flow) }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
  if (res.status !== 200) {
    await red.stop();
    throw new Error(`could not deploy the bench flow: HTTP ${res.status} ${JSON.stringify(res.data)}`);
  }
  await red.waitForLog(/Started flows/, 60_000, mark);
  // Let the runtime settle before the baseline.
  await new Promise((r) => setTimeout(r, 1000));
  return { red, pid: red.pid, baselineRssMb: rssMb(red.pid), flushWaitMs: flow.store === 'file' ? 35_000 : 0, heapSamples: samples,
    stop: async () => {
      await red.stop();
      if (samples) fs.rmSync(samples, { force: true });
    },
  };
}

/** The report lines `BENCH <tag> {json}` logged after `since`. */
export function benchLines(red: NodeRedProcess, since: number): Array<{ tag: string; data: Json }> {
  const text = red.logs();
  const base = red.mark() - text.length;
  const out: Array<{ tag: string; data: Json }> = [];
  const re = /BENCH (\w+) (\{.*\})\s*$/gm;
  const slice = text.slice(Math.max(0, since - base));
  for (let m = re.exec(slice); m; m = re.exec(slice)) out.push({ tag: m[1], data: JSON.parse(m[2]) as Json });
  return out;
}

async function waitForLines(b: BenchRed, since: number, tags: string[], timeoutMs: number): Promise<Record<string, Json>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const lines = benchLines(b.red, since);
    const found: Record<string, Json> = {};
    for (const l of lines) if (tags.includes(l.tag) && !found[l.tag]) found[l.tag] = l.data;
    if (tags.every((t) => found[t])) return found;
    const fatal = /Error: .*(cannot|refused|failed)/.exec(b.red.logs().slice(-2000));
    if (Date.now() > until) throw new Error(`timed out waiting for ${tags.filter((t) => !found[t]).join(', ')}; log tail:\n${b.red.logs().slice(-3000)}${fatal ? '' : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A deep copy of the counters of every simulator. */
export function snapshot(w: World): Json {
  const g = w.graph.stats;
  const f = w.fourme.stats;
  return JSON.parse(
    JSON.stringify({
      graph: { requests: g.requests, byRoute: g.byRoute, byMethod: g.byMethod, batches: g.batches, batchInner: g.batchInner, throttled: g.throttled, actions: g.actions, byStatus: g.byStatus },
      fourme: {
        requests: f.requests,
        byRoute: f.byRoute,
        byRootField: f.byRootField,
        mutations: f.mutations,
        cost: f.cost,
        throttled: f.throttled,
        throttledBy: f.throttledBy,
        cisWritten: f.cisWritten,
        cisCreated: f.cisCreated,
        cisUpdated: f.cisUpdated,
        cisUnchanged: f.cisUnchanged,
        discoveredItemsReceived: f.discoveredItemsReceived,
        asyncPolls: f.asyncPolls,
      },
      sics: { requests: w.sics.stats.requests, byPath: w.sics.stats.byPath, publishes: w.sics.stats.publishes, publishedBytes: w.sics.stats.publishedBytes, consumes: w.sics.stats.consumes },
      acmp: { messages: w.acmp.stats.messages, devicesReceived: w.acmp.stats.devicesReceived, removalsReceived: w.acmp.stats.removalsReceived },
    }),
  );
}

/** b − a for every number in b (objects recursively; missing in a = 0). */
export function diff(a: unknown, b: unknown): unknown {
  if (typeof b === 'number') return b - (typeof a === 'number' ? a : 0);
  if (b && typeof b === 'object' && !Array.isArray(b)) {
    const out: Json = {};
    for (const [k, v] of Object.entries(b)) {
      const d = diff((a as Json | undefined)?.[k], v);
      if (d !== 0 && !(d && typeof d === 'object' && Object.keys(d).length === 0)) out[k] = d;
    }
    return out;
  }
  return b;
}

export interface Measured {
  /** From the trigger to the end of the last awaited run (ms). */
  wallMs: number;
  /** CPU time of the Node-RED process during the scenario (ms). */
  cpuMs: number;
  /** CPU time of the bench process (the simulators) during the scenario (ms). */
  simCpuMs: number;
  /** Peak RSS of the Node-RED process during the scenario (MB); the whole life when the peak cannot be reset. */
  peakRssMb: number;
  peakReset: boolean;
  /** Counters of the simulators: what this scenario added. */
  sims: Json;
  /** The report lines of the runs, by tag. */
  runs: Record<string, Json>;
  /** When the first and the last 4me GraphQL request of the scenario arrived (ms after the trigger, ±100 ms), and how many came. */
  fourmeSpan?: { firstMs: number; lastMs: number; requests: number };
  /** Time 4me took to answer GraphQL requests (ms, from the simulator's log of the last 1,000). */
  fourmeAnswerMs?: { p50: number; p90: number; n: number };
  /** With the heap sampler: the sample of the highest RSS in the scenario, and each figure's own maximum (MB). */
  heap?: { atPeak: HeapSample; max: Record<string, number>; samples: number };
}

/** One line of bench/heap-sampler.ts (MB). */
export interface HeapSample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, number>;
}

/** The samples of [from, to]: the one with the highest RSS and the maximum of every figure. */
export function heapFigures(file: string, from: number, to: number): Measured['heap'] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let atPeak: HeapSample | undefined;
  const max: Record<string, number> = {};
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const s = JSON.parse(line) as HeapSample;
    if (s.t < from || s.t > to) continue;
    n++;
    if (!atPeak || s.rss > atPeak.rss) atPeak = s;
    const flat: Record<string, number> = { rss: s.rss, heapTotal: s.heapTotal, heapUsed: s.heapUsed, external: s.external, arrayBuffers: s.arrayBuffers };
    for (const [k, v] of Object.entries(s.spaces)) flat[`space:${k}`] = v;
    for (const [k, v] of Object.entries(flat)) max[k] = Math.max(max[k] ?? 0, v);
  }
  return atPeak ? { atPeak, max, samples: n } : undefined;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0;
}

/**
 * Runs one scenario: budgets full (throttling windows emptied), peak reset,
 * inject node `injectId` pressed, report lines `tags` awaited.
 */
export async function measure(b: BenchRed, w: World, injectId: string, tags: string[], timeoutMs: number): Promise<Measured> {
  w.resetThrottling();
  // The simulators (this process, a heap of GBs at 100,000 devices) collect their garbage now, so that a pause
  // of their collector does not land inside a measured run: it is the test bed's, no service's (needs --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  // Let the Node-RED process collect what earlier scenarios left, then start the peak from here.
  await new Promise((r) => setTimeout(r, 500));
  const peakReset = resetPeak(b.pid);
  const before = snapshot(w);
  const cpu0 = cpuMs(b.pid);
  const own0 = ownCpuMs();
  const since = b.red.mark();
  const t0 = Date.now();
  // When the run's first and last 4me GraphQL requests arrived (a 100 ms look at the simulator's counter):
  // how long 4me waited for its first page, and the rate it then ran at.
  const gql0 = w.fourme.stats.byRoute.graphql ?? 0;
  let gqlSeen = gql0;
  let firstFourmeMs: number | undefined;
  let lastFourmeMs: number | undefined;
  const looking = setInterval(() => {
    const n = w.fourme.stats.byRoute.graphql ?? 0;
    if (n === gqlSeen) return;
    gqlSeen = n;
    lastFourmeMs = Date.now() - t0;
    firstFourmeMs ??= lastFourmeMs;
  }, 100);
  let runs: Record<string, Json>;
  try {
    const res = await b.red.admin.post(`/inject/${injectId}`);
    if (res.status !== 200) throw new Error(`inject ${injectId}: HTTP ${res.status}`);
    runs = await waitForLines(b, since, tags, timeoutMs);
  } finally {
    clearInterval(looking);
  }
  const end = Math.max(...tags.map((t) => Number(runs[t].at)));
  const answers = w.fourme.requestLog
    .filter((e) => e.route === 'graphql' && Date.parse(e.at) >= t0 && e.status === 200)
    .map((e) => e.ms)
    .sort((a, b) => a - b);
  const simCpu = ownCpuMs() - own0;
  const sims = diff(before, snapshot(w)) as Json;
  // The context store's write of the state (see flushWaitMs) counts in CPU time and peak RSS, not in wall time.
  if (b.flushWaitMs) await new Promise((r) => setTimeout(r, b.flushWaitMs));
  const heap = b.heapSamples ? heapFigures(b.heapSamples, t0, Date.now()) : undefined;
  return {
    heap,
    fourmeAnswerMs: answers.length ? { p50: percentile(answers, 0.5), p90: percentile(answers, 0.9), n: answers.length } : undefined,
    ...(firstFourmeMs !== undefined ? { fourmeSpan: { firstMs: firstFourmeMs, lastMs: lastFourmeMs!, requests: gqlSeen - gql0 } } : {}),
    wallMs: end - t0,
    cpuMs: cpuMs(b.pid) - cpu0,
    simCpuMs: simCpu,
    peakRssMb: peakRssMb(b.pid),
    peakReset,
    sims,
    runs,
  };
}
