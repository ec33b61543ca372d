/**
 * `npm run bench`: runs every scenario (bench/scenarios.ts) against the
 * simulated services and writes the figures:
 *
 *   bench/out/bench-<timestamp>.json   raw results (not committed)
 *   bench/REPORT.md                    the report (committed)
 *
 * Options (flags or environment variables):
 *   --sizes=1000,10000,100000,500000  BENCH_SIZES  tenant sizes of the scaling runs (item 6)
 *   --main=100000               BENCH_MAIN         the main tenant (items 1–5, compliance, template)
 *   --large-scale=24            BENCH_LARGE_SCALE  time scale of scaling runs above the main tenant
 *   --no-template                                  skip the shipped 4me template (cold run, Preview)
 *   --latency=50                BENCH_LATENCY_MS   per-request latency at scale 1 (ms)
 *   --scale=1                   BENCH_SCALE        time scale of the sync scenarios
 *   --compliance-scale=24       BENCH_COMPLIANCE_SCALE
 *   --lock=1000                 BENCH_LOCK         devices of the bulk action
 *   --naive=400                 BENCH_NAIVE        tenant size of the naive comparison (0 = skip)
 *   --no-compliance --no-deleted-users
 *   --store=file                BENCH_STORE        context store of the nodes ('' = memory)
 *   --capped="--max-old-space-size=128 --max-semi-space-size=2"
 *                               BENCH_CAPPED       V8 options of a heap-capped rerun of the initial sync ('' = skip)
 *   --report=bench/REPORT.md    BENCH_REPORT       where the report goes ('-' = none)
 *   --echo                                         Node-RED's output on the console
 *   --render=bench/out/bench-….json               only rewrite the report from earlier raw results
 *   --only=lock                 BENCH_ONLY         only the bulk action (item 5) on the main tenant; prints its
 *                                                  figures and writes the raw results, leaves the report alone
 *   --only=software                                discovered apps (bench/software.ts) on the largest size: writes
 *                                                  bench/out/software-….json and its block of the report
 *   --only=template                                the shipped 4me template alone (like lock: prints, leaves the report)
 *   --per-device=10000          BENCH_PER_DEVICE   with --only=software: also measure the per-device way
 *                                                  (detectedApps, 20 per $batch) on a tenant of that size (0 = skip)
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../sim/node-red-runner';
import { DEFAULT_CONFIG, runBench, type BenchConfig } from './scenarios';
import { renderReport } from './report';
import { machine } from './proc';
import { runSoftwareBench, spliceSoftwareSection, renderSoftwareSection } from './software';

function option(name: string, env: string): string | undefined {
  const flag = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (flag) return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : 'true';
  return process.env[env];
}

function numberOption(name: string, env: string, fallback: number): number {
  const v = option(name, env);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number (got ${v})`);
  return n;
}

async function main(): Promise<void> {
  // --render=<results.json>: only (re)write the report from the raw results of an earlier run.
  const render = option('render', 'BENCH_RENDER');
  if (render) {
    const saved = JSON.parse(fs.readFileSync(path.resolve(render), 'utf8'));
    const file = path.resolve(repoRoot, option('report', 'BENCH_REPORT') ?? path.join('bench', 'REPORT.md'));
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (saved.kind === 'software') fs.writeFileSync(file, spliceSoftwareSection(old, renderSoftwareSection(saved)));
    else fs.writeFileSync(file, spliceSoftwareSection(renderReport(saved), old));
    console.log(`report: ${path.relative(process.cwd(), file)} (from ${render})`);
    return;
  }
  const sizes = option('sizes', 'BENCH_SIZES');
  const c: BenchConfig = {
    ...DEFAULT_CONFIG,
    sizes: sizes ? sizes.split(',').map((s) => Number(s.trim())) : DEFAULT_CONFIG.sizes,
    mainSize: numberOption('main', 'BENCH_MAIN', DEFAULT_CONFIG.mainSize),
    largeScale: numberOption('large-scale', 'BENCH_LARGE_SCALE', DEFAULT_CONFIG.largeScale),
    template: !process.argv.includes('--no-template'),
    latencyMs: numberOption('latency', 'BENCH_LATENCY_MS', DEFAULT_CONFIG.latencyMs),
    scale: numberOption('scale', 'BENCH_SCALE', DEFAULT_CONFIG.scale),
    complianceScale: numberOption('compliance-scale', 'BENCH_COMPLIANCE_SCALE', DEFAULT_CONFIG.complianceScale),
    lockDevices: numberOption('lock', 'BENCH_LOCK', DEFAULT_CONFIG.lockDevices),
    naiveDevices: numberOption('naive', 'BENCH_NAIVE', DEFAULT_CONFIG.naiveDevices),
    compliance: !process.argv.includes('--no-compliance'),
    deletedUsers: !process.argv.includes('--no-deleted-users'),
    store: option('store', 'BENCH_STORE') ?? DEFAULT_CONFIG.store,
    cappedNodeOptions: option('capped', 'BENCH_CAPPED') ?? DEFAULT_CONFIG.cappedNodeOptions,
    echo: process.argv.includes('--echo'),
  };
  const only = option('only', 'BENCH_ONLY');
  if (only !== undefined && only !== 'lock' && only !== 'software' && only !== 'template') throw new Error(`--only: "lock", "template" or "software" (got ${only})`);
  if (only === 'lock' || only === 'template') c.only = only;
  c.naive = c.naiveDevices > 0;
  if ([...c.sizes, c.mainSize].some((n) => !Number.isInteger(n) || n < 10 || n > 1_000_000)) throw new Error('--sizes, --main: whole numbers from 10 to 1000000');
  if (!(c.largeScale >= 1)) throw new Error('--large-scale: a number from 1');
  const reportPath = option('report', 'BENCH_REPORT') ?? path.join('bench', 'REPORT.md');

  const m = machine();
  console.log(`bench on ${m.cpu} (${m.cores} cores, ${m.memoryGb} GB), Node.js ${m.node}`);
  if (only === 'software') return softwareOnly(c, m, reportPath);
  const results = await runBench(c);
  const out = path.join(repoRoot, 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  const jsonFile = path.join(out, `bench-${stamp}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify({ machine: m, ...results }, null, 2));
  console.log(`raw results: ${path.relative(process.cwd(), jsonFile)}`);
  if (reportPath !== '-' && !c.only) {
    const file = path.resolve(repoRoot, reportPath);
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    // The discovered-apps block (--only=software) is kept as it was.
    fs.writeFileSync(file, spliceSoftwareSection(renderReport({ machine: m, ...results }), old));
    console.log(`report: ${path.relative(process.cwd(), file)}`);
  }
  console.log(`bench finished in ${((results.durationMs ?? 0) / 60_000).toFixed(1)} min`);
}

/** --only=software: the discovered-apps scenario on the largest size; its block of the report is rewritten. */
async function softwareOnly(c: BenchConfig, m: ReturnType<typeof machine>, reportPath: string): Promise<void> {
  const perDevice = numberOption('per-device', 'BENCH_PER_DEVICE', 0);
  const results = { kind: 'software', machine: m, ...(await runSoftwareBench(c, c.mainSize, perDevice)) };
  const out = path.join(repoRoot, 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  const jsonFile = path.join(out, `software-${results.startedAt.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify(results, null, 2));
  console.log(`raw results: ${path.relative(process.cwd(), jsonFile)}`);
  if (reportPath !== '-') {
    const file = path.resolve(repoRoot, reportPath);
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    fs.writeFileSync(file, spliceSoftwareSection(old, renderSoftwareSection(results)));
    console.log(`report: ${path.relative(process.cwd(), file)} (discovered-apps block)`);
  }
  console.log(`bench finished in ${(results.durationMs / 60_000).toFixed(1)} min`);
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
