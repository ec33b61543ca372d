/**
 * Prometheus metrics of the connector (prom-client, in a registry of its
 * own so that nothing else in the Node-RED process is mixed in):
 *
 * - counters, counted as runs finish (run-history.ts's 'run' event): runs,
 *   items by what became of them, skipped items by reason, requests,
 *   throttled answers, incidents raised/resolved, action jobs by outcome;
 * - gauges, read when scraped from what the runtime knows (`snapshot`): the
 *   last run (time, duration, success, items), the next scheduled run, open
 *   incidents, each connection's health and certificate expiry.
 *
 * Labels: instance, node (name, else id), node_id, service (intune, 4me,
 * acmp); runs also by kind and result. Counters start at 0 with the process
 * (Prometheus' rate() handles restarts).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { runEvents, type RunEntry } from '../run/run-history';

export interface NodeLabels {
  instance: string;
  node: string;
  node_id: string;
  service: string;
}

export interface MetricsSnapshot {
  nodes: Array<NodeLabels & { last?: RunEntry; nextAt?: number; openIncidents?: number }>;
  connections: Array<{ instance: string; connection: string; connection_id: string; service: string; up: boolean; certificateNotAfter?: string }>;
}

export interface RunMetrics {
  registry: Registry;
  /** Stops counting (the plugin's runtime goes away only with the process; tests call it). */
  close(): void;
}

const NODE = ['instance', 'node', 'node_id', 'service'] as const;

export function createRunMetrics(o: { labelsOf(nodeId: string): NodeLabels | undefined; snapshot(): Promise<MetricsSnapshot>; prefix?: string }): RunMetrics {
  const p = o.prefix ?? 'intune_connector_';
  const registry = new Registry();
  const reg = { registers: [registry] };
  const runs = new Counter({ name: `${p}runs_total`, help: 'Finished runs and action jobs', labelNames: [...NODE, 'kind', 'result'], ...reg });
  const items = new Counter({ name: `${p}items_total`, help: 'Items by what became of them (read, passed, written, unchanged, removed, failed)', labelNames: [...NODE, 'kind', 'what'], ...reg });
  const skipped = new Counter({ name: `${p}skipped_items_total`, help: 'Items a source skipped, by reason', labelNames: [...NODE, 'reason'], ...reg });
  const requests = new Counter({ name: `${p}requests_total`, help: 'Requests to the service', labelNames: [...NODE], ...reg });
  const throttled = new Counter({ name: `${p}throttled_total`, help: 'Answers that asked to slow down (429 and the like)', labelNames: [...NODE], ...reg });
  const incidents = new Counter({ name: `${p}incidents_total`, help: 'Compliance incidents raised and resolved', labelNames: [...NODE, 'change'], ...reg });
  const jobs = new Counter({ name: `${p}action_jobs_total`, help: 'Action jobs received, by outcome (executed, refused, replayed, …)', labelNames: [...NODE, 'outcome'], ...reg });

  const lastAt = new Gauge({ name: `${p}last_run_timestamp_seconds`, help: 'Start of the last run', labelNames: [...NODE, 'kind'], registers: [registry] });
  const lastDuration = new Gauge({ name: `${p}last_run_duration_seconds`, help: 'Duration of the last run', labelNames: [...NODE, 'kind'], registers: [registry] });
  const lastOk = new Gauge({ name: `${p}last_run_success`, help: '1 when the last run completed (ok or with item warnings), 0 when it failed or was cancelled', labelNames: [...NODE, 'kind'], registers: [registry] });
  const lastItems = new Gauge({ name: `${p}last_run_items`, help: 'Items the last run read or received', labelNames: [...NODE, 'kind'], registers: [registry] });
  const nextAt = new Gauge({ name: `${p}next_run_timestamp_seconds`, help: 'When the next scheduled run is due', labelNames: [...NODE], registers: [registry] });
  const open = new Gauge({ name: `${p}open_incidents`, help: 'Compliance incidents open after the last run', labelNames: [...NODE], registers: [registry] });
  const up = new Gauge({ name: `${p}connection_up`, help: '1 when the connection is usable (ok or warning), 0 on error', labelNames: ['instance', 'connection', 'connection_id', 'service'], registers: [registry] });
  const certExpiry = new Gauge({ name: `${p}certificate_expiry_timestamp_seconds`, help: 'When the Intune app certificate expires', labelNames: ['instance', 'connection', 'connection_id'], registers: [registry] });

  // All gauges are filled together, once per scrape, from one snapshot.
  let filling: Promise<void> | undefined;
  async function fill(): Promise<void> {
    const s = await o.snapshot();
    for (const g of [lastAt, lastDuration, lastOk, lastItems, nextAt, open, up, certExpiry]) g.reset();
    for (const n of s.nodes) {
      const l = { instance: n.instance, node: n.node, node_id: n.node_id, service: n.service };
      if (n.last) {
        const lk = { ...l, kind: n.last.k };
        lastAt.set(lk, n.last.at / 1000);
        lastDuration.set(lk, (n.last.ms ?? 0) / 1000);
        lastOk.set(lk, n.last.r === 'ok' || n.last.r === 'warn' ? 1 : 0);
        lastItems.set(lk, n.last.read ?? 0);
      }
      if (n.nextAt) nextAt.set(l, n.nextAt / 1000);
      if (n.openIncidents !== undefined) open.set(l, n.openIncidents);
    }
    for (const c of s.connections) {
      up.set({ instance: c.instance, connection: c.connection, connection_id: c.connection_id, service: c.service }, c.up ? 1 : 0);
      if (c.certificateNotAfter) certExpiry.set({ instance: c.instance, connection: c.connection, connection_id: c.connection_id }, Date.parse(c.certificateNotAfter) / 1000);
    }
  }
  // prom-client awaits collect() of every gauge; the first one fills, the others wait for it.
  const collectAll = () => {
    filling ??= fill().finally(() => {
      setImmediate(() => (filling = undefined));
    });
    return filling;
  };
  for (const g of [lastAt, lastDuration, lastOk, lastItems, nextAt, open, up, certExpiry]) {
    (g as unknown as { collect: () => Promise<void> }).collect = collectAll;
  }

  const onRun = (nodeId: string, e: RunEntry) => {
    const l = o.labelsOf(nodeId);
    if (!l) return;
    runs.inc({ ...l, kind: e.k, result: e.r });
    const add = (what: string, v: number | undefined) => {
      if (v) items.inc({ ...l, kind: e.k, what }, v);
    };
    add('read', e.read);
    add('passed', e.pass);
    add('written', e.wr);
    add('unchanged', e.un);
    add('removed', e.rm);
    add('failed', e.fail);
    for (const [reason, n] of Object.entries(e.skip ?? {})) if (n) skipped.inc({ ...l, reason }, n);
    if (e.req) requests.inc(l, e.req);
    if (e.thr) throttled.inc(l, e.thr);
    if (e.raised) incidents.inc({ ...l, change: 'raised' }, e.raised);
    if (e.resolved) incidents.inc({ ...l, change: 'resolved' }, e.resolved);
    if (e.job) jobs.inc({ ...l, outcome: e.job });
  };
  runEvents.on('run', onRun);
  return { registry, close: () => runEvents.off('run', onRun) };
}
