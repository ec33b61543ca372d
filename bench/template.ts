/**
 * The shipped 4me template as an integrator gets it (examples/4me instance
 * (Intune4me_1).json, the instance tool's settings for a tenant and 4me
 * account), not the bench flow: its defaults include the deleted-user check
 * (directory), two parallel uploads and personal devices left out. Two
 * figures the issue tracker asked for (#23):
 *
 *   - the first full run with the directory cache cold (fresh Node-RED),
 *     against the 4me floor of the devices it passes on;
 *   - the editor's Preview (POST /intune-devices/preview with the node's
 *     settings), timed from the request to the answer.
 *
 * The template is deployed unchanged but for the connections (pointed at
 * the simulated world), its schedules (off: the bench presses "full run
 * now"), and one function node that logs each run's summary for the bench
 * (wired to the sources' and the sink's summary outputs).
 */
import { instanceSettings, loadTemplate, makeInstance, type FlowNode } from '../bin/instance-template';
import { FOURME_ACCOUNT, FOURME_TOKEN, type World } from './world';
import { REPORT_CODE } from './flow';
import { diff, measure, snapshot, type BenchRed, type Json } from './harness';

/** The platforms an integrator picks with the instance tool (`--platforms`); the template ships with none. */
export const TEMPLATE_PLATFORMS = 'windows,macos,ios,android,linux';

/** The 4me template as instance 1, its connections pointed at the world, plus the bench's report nodes. */
export function templateFlow(w: World): FlowNode[] {
  const template = loadTemplate('4me');
  const answers = {
    'tenant-id': w.tenantId,
    'client-id': w.app.clientId,
    auth: 'secret',
    cloud: 'custom',
    'authority-host': w.identity.url,
    'graph-url': w.graph.url,
    'portal-url': 'https://intune.microsoft.com',
    'fourme-account': FOURME_ACCOUNT,
    'fourme-graphql-url': w.fourme.graphqlUrl,
    platforms: TEMPLATE_PLATFORMS,
    // Schedules off: the bench starts the run itself (a scheduled first run would start 10 s after the
    // deploy, during the Preview, and the compliance schedule would share 4me and Graph with it).
    'full-scan-hours': '0',
    'compliance-minutes': '0',
  };
  const { env, nodeProps } = instanceSettings(template, 1, answers);
  const nodes = makeInstance(template, {
    instance: 1,
    env,
    nodeProps,
    caFile: w.caFile,
    credentials: { 'intune-config': { clientSecret: w.app.secret }, 'intune-4me-config': { token: FOURME_TOKEN } },
  });
  const tab = nodes.find((n) => n.type === 'tab')!;
  const out: FlowNode[] = [...nodes];
  const report = (id: string, tag: keyof typeof REPORT_CODE) => ({ id, type: 'function', z: tab.id, name: `bench report ${tag}`, func: REPORT_CODE[tag], outputs: 1, x: 900, y: 500, wires: [[]] });
  out.push(report('bench-tpl-rep-devices', 'devices') as FlowNode, report('bench-tpl-rep-4me', 'fourme') as FlowNode);
  // The summary output of each source and of the sink (their last output) also feeds the bench's report node.
  const wireSummary = (type: string, target: string) => {
    for (const n of out.filter((x) => x.type === type)) {
      const wires = (n.wires as string[][] | undefined) ?? [];
      wires[wires.length - 1] = [...(wires[wires.length - 1] ?? []), target];
      n.wires = wires;
    }
  };
  wireSummary('intune-devices', 'bench-tpl-rep-devices');
  wireSummary('intune-4me', 'bench-tpl-rep-4me');
  return out;
}

export function templateNode(flow: FlowNode[], type: string): FlowNode {
  const n = flow.find((x) => x.type === type);
  if (!n) throw new Error(`bench: the 4me template has no ${type} node`);
  return n;
}

/** Presses the template's "full run now" and waits for the source's and the sink's summaries. */
export async function templateFullRun(w: World, b: BenchRed, flow: FlowNode[], timeoutMs: number) {
  const source = templateNode(flow, 'intune-devices').id;
  const inject = flow.find((n) => n.type === 'inject' && (n.wires as string[][] | undefined)?.[0]?.includes(source) && (n.props as Array<{ p: string; v: string }> | undefined)?.some((p) => p.p === 'mode' && p.v === 'full'));
  if (!inject) throw new Error('bench: the 4me template has no "full run now" inject node');
  const m = await measure(b, w, inject.id, ['devices', 'fourme'], timeoutMs);
  const dev = m.runs.devices as { result?: string; stats?: Json; details?: Json };
  if (dev.result !== 'completed') throw new Error(`template full run: the device run ended ${dev.result}: ${JSON.stringify(dev.stats)}`);
  return { m, emitted: Number(dev.stats?.emitted ?? 0), details: dev.details ?? {} };
}

/** What the editor saw of a Preview while it ran: its progress answers (GET …/preview/progress/:id, once a second). */
export interface PreviewProgressSeen {
  /** Answers with `running: true`. */
  looks: number;
  /** When the first answer with devices counted came (ms after the POST), if any. */
  firstCountMs?: number;
  /** Devices counted at each look, in order (they must grow). */
  totals: number[];
  /** The provisional "would import" at the last look before the answer. */
  lastImported?: number;
}

/** The editor's Preview with the template node's settings, timed at the Admin API, watched as the editor watches it. */
export async function templatePreview(w: World, b: BenchRed, flow: FlowNode[]): Promise<{ ms: number; answer: Json; graphRoutes: Record<string, number>; progress: PreviewProgressSeen }> {
  const node = templateNode(flow, 'intune-devices');
  const env = Object.fromEntries(((templateNode(flow, 'tab').env as Array<{ name: string; value: string }> | undefined) ?? []).map((e) => [e.name, e.value]));
  // The editor sends the dialog's values; ${VAR} properties as the tab resolves them.
  const body: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (['id', 'type', 'z', 'x', 'y', 'wires', 'name'].includes(k)) continue;
    body[k] = typeof v === 'string' ? v.replace(/^\$\{(\w+)\}$/, (_, name: string) => env[name] ?? '') : v;
  }
  // The editor's way (nodes/lib/editor/preview-progress.js): a random id with the POST, one look a second meanwhile.
  const progressId = `bench${Date.now().toString(36)}`;
  body.progressId = progressId;
  const before = snapshot(w);
  const t0 = Date.now();
  const seen: PreviewProgressSeen = { looks: 0, totals: [] };
  let answered = false;
  const post = b.red.admin.post('/intune-devices/preview', body).finally(() => (answered = true));
  const watch = (async () => {
    while (!answered) {
      await new Promise((r) => setTimeout(r, 1_000));
      if (answered) break;
      const p = await b.red.admin.get(`/intune-devices/preview/progress/${progressId}`);
      if (p.status !== 200 || answered) continue;
      const d = p.data as { running?: boolean; total?: number; imported?: number };
      if (!d.running) continue;
      seen.looks++;
      seen.totals.push(Number(d.total ?? 0));
      seen.lastImported = Number(d.imported ?? 0);
      if (seen.firstCountMs === undefined && Number(d.total) > 0) seen.firstCountMs = Date.now() - t0;
    }
  })();
  const res = await post;
  const ms = Date.now() - t0;
  await watch;
  if (res.status !== 200) throw new Error(`template Preview: HTTP ${res.status} ${JSON.stringify(res.data).slice(0, 300)}`);
  const graph = (diff(before, snapshot(w)) as { graph?: { byRoute?: Record<string, number> } }).graph;
  return { ms, answer: res.data as Json, graphRoutes: graph?.byRoute ?? {}, progress: seen };
}
