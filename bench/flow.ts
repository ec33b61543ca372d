/**
 * The Node-RED flow a benchmark deploys through the Admin API: the package's
 * own nodes, set up as an integrator would, wired to the simulated world.
 *
 *   [full] [incremental] ─▶ intune-devices ─┬─▶ intune-4me ──(summary)──▶ report
 *                                           ├─▶ intune-acmp ─(per page)─▶ report (sums pages)
 *                                           └─(summary)────────────────▶ report
 *   [compliance] ─▶ intune-compliance ─▶ intune-4me (same node)
 *   [lock] ─▶ intune-action ─▶ report
 *   [users] ─▶ intune-devices (deleted-user check on, no sinks) ─▶ report
 *
 * The report nodes are function nodes that log one line per finished run:
 * `BENCH <tag> <json>` with the run's figures and the time it ended
 * (`at`, ms since the epoch, from the Node-RED process's clock).
 */
import type { World } from './world';
import { ACMP_SERVER, FOURME_ACCOUNT, FOURME_TOKEN, SICS_PASSWORD, SICS_USER } from './world';

export interface FlowOptions {
  /** Context store of the sinks and sources ('' = default memory store; 'file' = localfilesystem). */
  store: string;
  /** Parallel discovered-CI uploads of the 4me sink (node setting, 1…8). */
  fourmeConcurrency: number;
  /** 4me async result poll interval (config setting, ms). */
  asyncPollMs: number;
  /** Device ids of the bulk action. */
  lockIds: string[];
  /** Instance name shared by sources and sinks. */
  instance: string;
}

/** Device source settings: every device of the tenant is imported (personal and "other" platforms too). */
export const DEVICE_FILTERS = {
  platformWindows: true,
  platformMacos: true,
  platformIos: true,
  platformAndroid: true,
  platformLinux: true,
  platformOther: true,
  includePersonal: true,
  onlyWithPrimaryUser: false,
  includeDeletedUser: true,
  staleDays: 0,
  collapseDuplicates: true,
};

const LOG_FN = (tag: string, body: string) => `const p = msg.payload || {};\n${body}\nnode.log('BENCH ${tag} ' + JSON.stringify(out));\nreturn null;`;

export const REPORT_CODE = {
  devices: LOG_FN('devices', `const out = { at: Date.now(), runId: p.runId, mode: p.mode, result: p.result, stats: p.stats, details: p.details };`),
  users: LOG_FN('users', `const out = { at: Date.now(), runId: p.runId, mode: p.mode, result: p.result, stats: p.stats, details: p.details };`),
  compliance: LOG_FN('compliance', `const out = { at: Date.now(), runId: p.runId, result: p.result, stats: p.stats, details: p.details };`),
  fourme: LOG_FN(
    'fourme',
    `const out = { at: Date.now(), runId: p.runId, topic: p.topic, mode: p.mode, complete: p.complete, reconciled: p.reconciled, reason: p.reason, durationMs: p.durationMs, pages: p.pages, cis: p.cis, incidents: p.incidents, people: p.people, requests: p.requests, errorCount: p.errorCount, errors: (p.errors || []).slice(0, 3) };`,
  ),
  action: LOG_FN(
    'action',
    `const outcomes = {};\nfor (const r of p.results || []) outcomes[r.outcome] = (outcomes[r.outcome] || 0) + 1;\nconst out = { at: Date.now(), jobId: p.jobId, action: p.action, status: p.status, devices: (p.results || []).length, outcomes, stats: p.stats };`,
  ),
  // intune-acmp reports per page: the figures of a run are summed here and logged with its last page.
  acmp: `const r = msg.payload || {};
const acc = context.get('acc') || {};
const a = acc[r.runId] || { pages: 0, devices: 0, changed: 0, unchanged: 0, sent: 0, failed: 0, messages: 0, attempts: 0 };
a.pages++; a.devices += r.devices || 0;
for (const s of r.servers || []) { a.changed += s.changed; a.unchanged += s.unchanged; a.sent += s.sent; a.failed += s.failed; a.messages += s.batches.length; for (const b of s.batches) a.attempts += b.attempts || 0; }
if (r.last) {
  delete acc[r.runId];
  const removals = (r.removals || []).reduce((n, x) => n + x.removed, 0);
  const out = Object.assign({ at: Date.now(), runId: r.runId, mode: r.mode, complete: r.complete, removals, warnings: r.warnings }, a);
  node.log('BENCH acmp ' + JSON.stringify(out));
} else acc[r.runId] = a;
context.set('acc', acc);
return null;`,
};

/** Flow nodes (with credentials inline, as the Admin API takes them). */
export function benchFlow(w: World, o: FlowOptions): Array<Record<string, unknown>> {
  const z = 'bench-tab';
  const fn = (id: string, tag: keyof typeof REPORT_CODE, y: number) => ({ id, type: 'function', z, name: `report ${tag}`, func: REPORT_CODE[tag], outputs: 1, x: 900, y, wires: [[]] });
  const inject = (id: string, name: string, props: Array<Record<string, unknown>>, target: string, y: number) => ({
    id,
    type: 'inject',
    z,
    name,
    props,
    repeat: '',
    crontab: '',
    once: false,
    x: 120,
    y,
    wires: [[target]],
  });
  const deviceSource = (id: string, name: string, checkDeletedUsers: boolean, wires: string[][], y: number) => ({
    id,
    type: 'intune-devices',
    z,
    name,
    intune: 'bench-intune',
    ...DEVICE_FILTERS,
    checkDeletedUsers,
    graphVersion: 'v1.0',
    triggerMode: 'full',
    fullEveryHours: 0,
    incrementalEveryMinutes: 0,
    overlapMinutes: 30,
    instance: o.instance,
    store: o.store,
    x: 350,
    y,
    wires,
  });
  return [
    { id: z, type: 'tab', label: 'Benchmark', info: 'Deployed by bench/ through the Admin API.' },
    { id: 'bench-tls', type: 'tls-config', name: 'simulated services CA', cert: '', key: '', ca: w.caFile, verifyservercert: true },
    {
      id: 'bench-intune',
      type: 'intune-config',
      name: 'simulated tenant',
      tenantId: w.tenantId,
      clientId: w.app.clientId,
      authType: 'secret',
      cloud: 'custom',
      authorityHost: w.identity.url,
      graphBaseUrl: w.graph.url,
      portalUrl: 'https://intune.microsoft.com',
      tls: 'bench-tls',
      requestsPer20s: 2000,
      writesPer20s: 200,
      timeoutSec: 60,
      credentials: { clientSecret: w.app.secret },
    },
    {
      id: 'bench-4me-cfg',
      type: 'intune-4me-config',
      name: 'simulated 4me',
      accountId: FOURME_ACCOUNT,
      environment: 'custom',
      region: 'global',
      brand: '4me',
      graphqlUrl: w.fourme.graphqlUrl,
      tokenUrl: w.fourme.tokenUrl,
      tls: 'bench-tls',
      authType: 'token',
      clientId: '',
      asyncPollMs: o.asyncPollMs,
      credentials: { token: FOURME_TOKEN },
    },
    {
      id: 'bench-acmp-cfg',
      type: 'intune-acmp-config',
      name: 'simulated SICS',
      host: '127.0.0.1',
      port: w.sics.port,
      useTls: true,
      tls: 'bench-tls',
      allowUnencrypted: false,
      timeoutSec: 60,
      replyVirtualRouter: 'IntuneConnector',
      servers: [w.acmp.route],
      credentials: { user: SICS_USER, password: SICS_PASSWORD },
    },
    inject('bench-inj-full', 'full run', [{ p: 'mode', v: 'full', vt: 'str' }], 'bench-devices', 60),
    inject('bench-inj-incr', 'incremental run', [{ p: 'mode', v: 'incremental', vt: 'str' }], 'bench-devices', 100),
    deviceSource('bench-devices', 'Intune devices', false, [['bench-4me', 'bench-acmp'], ['bench-rep-devices']], 80),
    {
      id: 'bench-4me',
      type: 'intune-4me',
      z,
      name: '4me',
      fourme: 'bench-4me-cfg',
      matchPeople: true,
      incidents: true,
      impact: 'medium',
      maxNewPerRun: 10_000,
      onResolve: 'complete',
      inactiveStatus: 'archived',
      archiveLimitPercent: 50,
      concurrency: o.fourmeConcurrency,
      maxErrorsListed: 20,
      store: o.store,
      x: 620,
      y: 60,
      wires: [[], ['bench-rep-4me']],
    },
    {
      id: 'bench-acmp',
      type: 'intune-acmp',
      z,
      name: 'ACMP',
      acmp: 'bench-acmp-cfg',
      serverId: ACMP_SERVER,
      onDemandDefinition: 'IntuneMobileDevices_1',
      batchSize: 200,
      reconcile: true,
      store: o.store,
      replyTimeoutSec: 60,
      x: 620,
      y: 120,
      wires: [['bench-rep-acmp']],
    },
    inject('bench-inj-comp', 'compliance run', [], 'bench-compliance', 200),
    {
      id: 'bench-compliance',
      type: 'intune-compliance',
      z,
      name: 'Intune compliance',
      intune: 'bench-intune',
      countGracePeriod: false,
      includeErrors: true,
      settingDetails: true,
      filtersFrom: '',
      ...DEVICE_FILTERS,
      checkDeletedUsers: false,
      everyMinutes: 0,
      instance: o.instance,
      store: o.store,
      x: 350,
      y: 200,
      wires: [['bench-4me'], ['bench-rep-compliance']],
    },
    inject(
      'bench-inj-lock',
      'lock devices',
      [{ p: 'payload', v: JSON.stringify({ action: 'lock', deviceIds: o.lockIds, jobId: 'bench-lock', requestedBy: 'bench' }), vt: 'json' }],
      'bench-action',
      260,
    ),
    {
      id: 'bench-action',
      type: 'intune-action',
      z,
      name: 'Intune action',
      intune: 'bench-intune',
      allowNotify: true,
      allowSync: true,
      allowLock: true,
      allowRetire: false,
      allowWipe: false,
      maxDevices: Math.max(1, o.lockIds.length),
      dryRun: false,
      followUp: false,
      perDevice: false,
      store: o.store,
      retentionHours: 168,
      outputs: 1,
      x: 350,
      y: 260,
      wires: [['bench-rep-action']],
    },
    inject('bench-inj-users', 'deleted-user check', [{ p: 'mode', v: 'full', vt: 'str' }], 'bench-users', 320),
    deviceSource('bench-users', 'devices with deleted-user check', true, [[], ['bench-rep-users']], 320),
    fn('bench-rep-devices', 'devices', 40),
    fn('bench-rep-4me', 'fourme', 80),
    fn('bench-rep-acmp', 'acmp', 120),
    fn('bench-rep-compliance', 'compliance', 200),
    fn('bench-rep-action', 'action', 260),
    fn('bench-rep-users', 'users', 320),
  ];
}
