/**
 * Run history (nodes/lib/run/run-history.ts), the sidebar's overview
 * (plugins/intune-sidebar/) and the Prometheus metrics: what a run leaves
 * behind, bounded and compact, survives a new process through the context
 * store, groups into instances the way the templates lay them out, stays
 * small for 40 instances × 200 runs, and parses as Prometheus text.
 */
import { expect } from 'chai';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the parser ships no types
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => unknown;
import {
  HISTORY_KEY,
  HISTORY_LIMIT,
  actionJobEntry,
  clearRunCache,
  fourMeRunEntry,
  jobIntakeEntry,
  readRuns,
  recordRun,
  recordSinkPage,
  sourceRunEntry,
  type RunEntry,
} from '../nodes/lib/run/run-history';
import { createRunMetrics } from '../nodes/lib/metrics/run-metrics';
import { groupInstances, type FlowEntry } from '../plugins/intune-sidebar/instances';
import { buildOverview, InstanceIndex } from '../plugins/intune-sidebar/overview';
import { HealthBoard } from '../nodes/lib/node-red/config-health';
import type { RunSummary } from '../nodes/lib/contracts';

/** A context store like Node-RED's: kept as JSON text (what the file store writes; read back as a copy). */
function fakeStore() {
  const data = new Map<string, unknown>();
  return {
    data,
    context(nodeId: string) {
      return {
        get: (key: string, store: string | undefined, cb: (e: null, v?: unknown) => void) => {
          const raw = data.get(`${store ?? 'default'}/${nodeId}/${key}`);
          cb(null, raw === undefined ? undefined : JSON.parse(JSON.stringify(raw)));
        },
        set: (key: string, value: unknown, store: string | undefined, cb: () => void) => {
          // By reference, as the memory store does (the file store serialises later, once per flush).
          data.set(`${store ?? 'default'}/${nodeId}/${key}`, value);
          cb();
        },
      };
    },
  };
}

function fakeNode(store: ReturnType<typeof fakeStore>, id: string, type = 'intune-devices') {
  return { id, type, context: () => store.context(id) };
}

function summary(i: number, result: RunSummary['result'] = 'completed'): RunSummary {
  return {
    runId: `devices-${i}`,
    instance: 'A',
    mode: 'full',
    requestedMode: 'full',
    trigger: 'schedule',
    startedAt: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
    finishedAt: new Date(Date.UTC(2026, 0, 1) + i * 60_000 + 1500).toISOString(),
    result,
    stats: { items: 2000 + i, emitted: 1900, skipped: { personal: 60, duplicate: 40, none: 0 }, pages: 2, requests: 21, retries: 0, throttled: i % 3, throttleWaitMs: 0, durationMs: 1500, ...(result === 'failed' ? { error: 'Graph answered 503' } : {}) },
  };
}

describe('run history', () => {
  beforeEach(() => clearRunCache());

  it('a source run becomes a compact entry: zero counts and empty reasons left out', () => {
    const e = sourceRunEntry('intune/devices', summary(3));
    expect(e).to.include({ k: 'devices', r: 'ok', m: 'f', tr: 'schedule', read: 2003, pass: 1900, req: 21 });
    const stored = JSON.parse(JSON.stringify(e));
    expect(stored.skip).to.deep.equal({ personal: 60, duplicate: 40, none: 0 });
    const f = sourceRunEntry('intune/compliance', summary(1, 'failed'));
    expect(f).to.include({ k: 'compliance', r: 'failed', err: 'Graph answered 503' });
  });

  it('keeps the last HISTORY_LIMIT runs per node in its context store, and a new process reads them back', async () => {
    const store = fakeStore();
    const node = fakeNode(store, 'n1');
    for (let i = 0; i < HISTORY_LIMIT + 25; i++) void recordRun(node, sourceRunEntry('intune/devices', summary(i)), 'disk');
    await recordRun(node, sourceRunEntry('intune/devices', summary(999, 'failed')), 'disk');
    const saved = JSON.parse(JSON.stringify(store.data.get(`disk/n1/${HISTORY_KEY}`))) as RunEntry[];
    expect(saved).to.have.length(HISTORY_LIMIT);
    expect(saved[saved.length - 1]).to.include({ id: 'devices-999', r: 'failed' });
    expect(saved[0].id, 'the oldest were dropped').to.equal('devices-26');
    expect(saved.every((e) => !('skip' in e) || !('none' in e.skip!)), 'zero skip reasons are not stored').to.equal(true);
    clearRunCache(); // a restart: memory gone, the store remains
    const back = await readRuns(fakeNode(store, 'n1'), 'disk');
    expect(back).to.deep.equal(saved);
  });

  it('4me summaries, ACMP pages and action jobs become entries', async () => {
    const cis = fourMeRunEntry({ runId: 'r', topic: 'intune/devices', mode: 'full', startedAt: '2026-01-01T00:00:00Z', durationMs: 900, cis: { created: 3, updated: 2, unchanged: 10, archived: 1, received: 15 }, requests: { graphql: 7, throttled: 1 }, errorCount: 0, errors: [] });
    expect(cis).to.include({ k: 'cis', read: 15, wr: 5, un: 10, rm: 1, req: 7, thr: 1, r: 'ok' });
    const inc = fourMeRunEntry({ runId: 'c', topic: 'intune/compliance', mode: 'full', startedAt: '2026-01-01T00:00:00Z', durationMs: 900, incidents: { raised: 4, adopted: 1, open: 6, resolved: 2, received: 11 }, requests: { graphql: 9 }, errorCount: 1, errors: [{ sourceID: 'dev:pol', error: 'rate limited' }] });
    expect(inc).to.include({ k: 'incidents', raised: 4, resolved: 2, open: 11, fail: 1, r: 'warn', err: 'dev:pol rate limited' });

    const store = fakeStore();
    const acmp = fakeNode(store, 'a1', 'intune-acmp');
    const env = { runId: 'devices-x', instance: 'A', mode: 'full' as const, startedAt: '', page: 1, last: false };
    await recordSinkPage(acmp, env, { read: 100, written: 30, unchanged: 70, failed: 0 }, undefined, 1000);
    await recordSinkPage(acmp, { ...env, page: 2, last: true }, { read: 50, written: 5, unchanged: 40, failed: 5, removed: 2, problem: 'ACMP01 batch 3: code 500' }, undefined, 4000);
    const [run] = await readRuns(acmp);
    expect(run).to.include({ k: 'acmp', read: 150, wr: 35, un: 110, fail: 5, rm: 2, ms: 3000, r: 'warn', err: 'ACMP01 batch 3: code 500' });
    await recordSinkPage(acmp, { ...env, runId: 'one-page', startedAt: new Date(500).toISOString(), last: true }, { read: 1, written: 1, unchanged: 0, failed: 0 }, undefined, 2000);
    expect((await readRuns(acmp))[1]).to.include({ id: 'one-page', at: 500, ms: 1500, r: 'ok' });

    const job = actionJobEntry('executed', { jobId: 'J1', status: 'partial', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:02Z', results: [1, 2, 3], counts: { accepted: 2, failed: 1 } }, 4);
    expect(job).to.include({ k: 'job', job: 'executed', read: 3, wr: 2, fail: 1, req: 4, ms: 2000, r: 'warn' });
    expect(actionJobEntry('refused', { jobId: 'J2', status: 'rejected', code: 'guard' })).to.include({ r: 'failed', job: 'refused', err: 'guard' });
    expect(jobIntakeEntry('J3', 'refused', 'no device ids', 5)).to.deep.equal({ k: 'job', id: 'J3', at: 5, ms: 0, r: 'failed', job: 'refused', read: 1, err: 'no device ids' });
  });
});

// ------------------------------------------------------------------ instances and the overview

function templateFlows(n: number): FlowEntry[] {
  // The ACMP template's three tabs (INSTANCE_NAME on the connector tab only) and a 4me tab.
  return [
    { id: `c${n}`, type: 'tab', label: `IntuneConnector_${n}`, env: [{ name: 'INSTANCE_NAME', value: `IntuneConnector_${n}`, type: 'str' }] },
    { id: `w${n}`, type: 'tab', label: `IntuneWorkflowEngine_${n}` },
    { id: `m${n}`, type: 'tab', label: `IntuneMobileDevices_${n}` },
    { id: `cfg${n}`, type: 'intune-config', name: `Intune ${n}` },
    { id: `sics${n}`, type: 'intune-acmp-config', name: `SICS ${n}` },
    { id: `dev${n}`, type: 'intune-devices', z: `c${n}`, name: 'device scanner', intune: `cfg${n}`, instance: '${INSTANCE_NAME}', store: 'disk' },
    { id: `act${n}`, type: 'intune-action', z: `c${n}`, intune: `cfg${n}` },
    { id: `jobs${n}`, type: 'intune-acmp-actions', z: `w${n}`, acmp: `sics${n}` },
    { id: `acmp${n}`, type: 'intune-acmp', z: `m${n}`, acmp: `sics${n}` },
  ];
}

describe('instances in the flows', () => {
  it('the AESB tab family is one instance; a 4me tab by its INSTANCE_NAME; a node elsewhere is loose, by tab', () => {
    const flows: FlowEntry[] = [
      ...templateFlows(1),
      { id: 'fm', type: 'tab', label: 'Intune4me_1', env: [{ name: 'INSTANCE_NAME', value: 'Intune4me_1', type: 'str' }] },
      { id: 'fcfg', type: 'intune-4me-config', name: '4me' },
      { id: 'fdev', type: 'intune-devices', z: 'fm', intune: 'cfg1' },
      { id: 'fsink', type: 'intune-4me', z: 'fm', fourme: 'fcfg' },
      { id: 'own', type: 'tab', label: 'My flow' },
      { id: 'loose', type: 'intune-compliance', z: 'own', intune: 'cfg9' },
      { id: 'off', type: 'intune-compliance', z: 'own', d: true },
      { id: 'secretEnv', type: 'tab', label: 'x', env: [{ name: 'INSTANCE_NAME', value: 'hidden', type: 'cred' }] },
    ];
    const groups = groupInstances(flows);
    expect(groups.map((g) => [g.name, g.loose, g.nodes.map((n) => n.id).sort()])).to.deep.equal([
      ['Intune4me_1', false, ['fdev', 'fsink']],
      ['IntuneConnector_1', false, ['acmp1', 'act1', 'dev1', 'jobs1']],
      ['My flow', true, ['loose']],
    ]);
    expect(groups[1].tabs.map((t) => t.label)).to.deep.equal(['IntuneConnector_1', 'IntuneWorkflowEngine_1', 'IntuneMobileDevices_1']);
    expect(groups[1].configs.map((c) => c.id).sort()).to.deep.equal(['cfg1', 'sics1']);
  });

  it('40 instances × 200 runs: the overview stays small (default 30 runs per node), all 200 on request, no secret in it', async () => {
    clearRunCache();
    const store = fakeStore();
    const flows: FlowEntry[] = [];
    for (let n = 1; n <= 40; n++) flows.push(...templateFlows(n));
    const secret = 'demo~s3cr3t-value-that-must-not-leak';
    const live = new Map<string, unknown>();
    for (const f of flows) {
      if (f.type === 'tab') continue;
      if (f.type.endsWith('config')) {
        const board = new HealthBoard();
        board.set({ level: 'ok', key: `${f.type}.status.ready`, text: 'ready' });
        live.set(f.id, { id: f.id, type: f.type, board, credentials: { clientSecret: secret, password: secret } });
        continue;
      }
      const node = fakeNode(store, f.id, f.type);
      live.set(f.id, node);
      for (let i = 0; i < HISTORY_LIMIT; i++) {
        const e = f.type === 'intune-acmp' ? { ...sourceRunEntry('intune/devices', summary(i)), k: 'acmp' as const, wr: 12, un: 1988 } : sourceRunEntry('intune/devices', summary(i));
        void recordRun(node, e, f.type === 'intune-devices' ? 'disk' : undefined);
      }
    }
    await recordRun(fakeNode(store, 'dev40', 'intune-devices'), sourceRunEntry('intune/devices', summary(500)), 'disk');
    const nodes = { eachNode: (cb: (n: FlowEntry) => void) => flows.forEach((f) => cb({ ...f, credentials: { clientSecret: secret } } as FlowEntry)), getNode: (id: string) => live.get(id) ?? null };
    const index = new InstanceIndex(nodes);
    const def = JSON.stringify(await buildOverview(index, nodes));
    const all = JSON.stringify(await buildOverview(index, nodes, { runs: HISTORY_LIMIT }));
    const parsed = JSON.parse(all);
    expect(parsed.instances).to.have.length(40);
    expect(parsed.instances[0].nodes[0].runs).to.have.length(HISTORY_LIMIT);
    expect(JSON.parse(def).instances[0].nodes[0].runs).to.have.length(30);
    // 160 nodes: by default 30 runs each, under 200 bytes a run (run ids as the sources make them are ~30 characters).
    expect(def.length, 'default answer').to.be.below(160 * 30 * 200);
    expect(all.length, 'all 200 runs').to.be.below(160 * 200 * 200);
    expect(all).to.not.include(secret);
    // The stored history itself: compact, under 200 bytes a run (40 KB a node at most).
    const one = JSON.stringify(store.data.get(`disk/dev1/${HISTORY_KEY}`));
    expect(one.length / HISTORY_LIMIT).to.be.below(200);
  });
});

// ------------------------------------------------------------------ metrics

describe('Prometheus metrics', () => {
  it('counts finished runs per instance, node and service, and reads gauges at scrape time; parses as Prometheus text', async () => {
    clearRunCache();
    const store = fakeStore();
    const node = fakeNode(store, 'dev1');
    const m = createRunMetrics({
      labelsOf: (id) => (id === 'dev1' ? { instance: 'IntuneConnector_1', node: 'device scanner', node_id: 'dev1', service: 'intune' } : undefined),
      snapshot: async () => ({
        nodes: [{ instance: 'IntuneConnector_1', node: 'device scanner', node_id: 'dev1', service: 'intune', last: (await readRuns(node)).slice(-1)[0], nextAt: 1_800_000_000_000 }],
        connections: [{ instance: 'IntuneConnector_1', connection: 'Intune', connection_id: 'cfg1', service: 'intune', up: false, certificateNotAfter: '2027-01-01T00:00:00.000Z' }],
      }),
    });
    try {
      await recordRun(node, sourceRunEntry('intune/devices', summary(1)));
      await recordRun(node, sourceRunEntry('intune/devices', summary(2, 'failed')));
      await recordRun(fakeNode(store, 'elsewhere'), sourceRunEntry('intune/devices', summary(3)));
      const text = await m.registry.metrics();
      const families = parsePrometheusTextFormat(text) as Array<{ name: string; type: string; metrics: Array<{ value: string; labels?: Record<string, string> }> }>;
      const fam = (name: string) => families.find((f) => f.name === name)!;
      const runs = fam('intune_connector_runs_total');
      expect(runs.type).to.equal('COUNTER');
      const byResult = Object.fromEntries(runs.metrics.map((x) => [x.labels!.result, Number(x.value)]));
      expect(byResult).to.deep.equal({ ok: 1, failed: 1 });
      expect(runs.metrics[0].labels).to.include({ instance: 'IntuneConnector_1', node: 'device scanner', service: 'intune', kind: 'devices' });
      const read = fam('intune_connector_items_total').metrics.find((x) => x.labels!.what === 'read')!;
      expect(Number(read.value)).to.equal(2001 + 2002);
      expect(Number(fam('intune_connector_skipped_items_total').metrics.find((x) => x.labels!.reason === 'personal')!.value)).to.equal(120);
      expect(Number(fam('intune_connector_last_run_success').metrics[0].value)).to.equal(0);
      expect(Number(fam('intune_connector_next_run_timestamp_seconds').metrics[0].value)).to.equal(1_800_000_000);
      expect(fam('intune_connector_connection_up').metrics[0]).to.deep.include({ value: '0' });
      expect(Number(fam('intune_connector_certificate_expiry_timestamp_seconds').metrics[0].value)).to.equal(Date.parse('2027-01-01T00:00:00Z') / 1000);
    } finally {
      m.close();
    }
  });
});
