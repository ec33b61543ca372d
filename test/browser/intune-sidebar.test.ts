/**
 * The "Intune" sidebar against the demo (sim/demo.ts, what `npm run demo`
 * starts: the sims, a Node-RED with the package linked, an ACMP and a 4me
 * instance): both instances with their connections and the first runs;
 * looking adds no request to the simulated Graph; a run started from the
 * sidebar appears when it finishes without a reload; a connection that does
 * not work shows red with its reason; a click on a node reveals it in the
 * workspace; German; no demo secret in the page or the JSON; the metrics
 * endpoint parses as Prometheus text. Screenshots: sidebar-intune-<lang>.png.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { freePort, repoRoot } from '../../sim/node-red-runner';
import { demoIdentity } from '../../sim/demo';
import { launchChromium, cleanupChromiumDirs } from './support/chromium';
import { Editor } from './support/editor';
import { screenshotDir } from './support/stack';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the parser ships no types
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => Array<{ name: string; metrics: Array<{ value: string; labels?: Record<string, string> }> }>;

const catalog = (lang: string) => JSON.parse(fs.readFileSync(path.join(repoRoot, 'locales', lang, 'intune-sidebar.json'), 'utf8'));

interface Overview {
  instances: Array<{ name: string; loose: boolean; connections: Array<{ id: string; level: string; text?: string }>; nodes: Array<{ id: string; type: string; tab: string; runs: Array<{ r: string }> }> }>;
}

describe('Intune sidebar (against the demo)', function () {
  this.timeout(300_000);
  let child: ChildProcess | undefined;
  let out = '';
  let dir: string;
  let browser: Browser;
  let ed: Editor | undefined;
  const ports: Record<string, number> = {};
  let base = '';

  const get = async (p: string) => {
    const res = await fetch(`${base}${p}`);
    if (!res.ok) throw new Error(`${p}: HTTP ${res.status}`);
    return res;
  };
  const overview = async (): Promise<Overview> => (await get('/intune/runs')).json() as Promise<Overview>;
  const graphRequests = async (): Promise<number> => ((await (await fetch(`http://127.0.0.1:${ports.DEMO_CONSOLE_PORT}/api/summary`)).json()) as { graph: { requests: number } }).graph.requests;
  async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  before(async () => {
    browser = await launchChromium();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-sidebar-demo-'));
    for (const k of ['DEMO_PORT', 'DEMO_CONSOLE_PORT', 'DEMO_IDENTITY_PORT', 'DEMO_GRAPH_PORT', 'DEMO_SICS_PORT', 'DEMO_4ME_PORT']) ports[k] = await freePort();
    const env: Record<string, string> = { ...(process.env as Record<string, string>), DEMO_DIR: dir, DEMO_DEVICES: '200', DEMO_QUIET: '1' };
    for (const [k, v] of Object.entries(ports)) env[k] = String(v);
    child = spawn(process.execPath, [path.join(repoRoot, 'build', 'sim', 'demo.js')], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await until('the demo', async () => /Intune connector demo is running/.test(out), 200_000);
    base = `http://127.0.0.1:${ports.DEMO_PORT}`;
  });

  after(async () => {
    await ed?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    cleanupChromiumDirs();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && ed) await ed.screenshot(`FAILED-${this.currentTest.title}`.slice(0, 100)).catch(() => undefined);
  });

  async function openSidebar(e: Editor) {
    const link = e.page.locator('#red-ui-tab-intune-link-button');
    if (await link.isVisible()) await link.click();
    // Many tabs: the rest sit in the tab bar's overflow; the View menu's entry does what this does.
    else await e.page.evaluate(() => (window as any).RED.sidebar.show('intune'));
    await e.page.locator('.intune-sb-instance').first().waitFor({ state: 'visible' });
    // Wider, as a user drags it to read the run tables.
    const sep = await e.page.locator('#red-ui-sidebar-separator').boundingBox();
    if (sep) {
      await e.page.mouse.move(sep.x + sep.width / 2, sep.y + 200);
      await e.page.mouse.down();
      await e.page.mouse.move(sep.x - 320, sep.y + 200, { steps: 5 });
      await e.page.mouse.up();
    }
  }

  const section = (e: Editor, name: string) => e.page.locator(`.intune-sb-instance[data-instance="${name}"]`);

  it('lists both demo instances with their connections and the first runs; looking makes no request to Graph', async () => {
    // The first sync of every source, and the sinks' part of it.
    await until('the first runs', async () => {
      const o = await overview();
      return o.instances.length === 2 && o.instances.every((i) => i.nodes.filter((n) => n.type !== 'intune-action' && n.type !== 'intune-acmp-actions').every((n) => n.runs.length > 0));
    });
    const before = await graphRequests();
    ed = await Editor.open(browser, base, screenshotDir);
    await openSidebar(ed);
    const en = catalog('en-US');
    for (const name of ['IntuneConnector_1', 'Intune4me_1']) {
      expect(await section(ed, name).locator('h3').innerText()).to.contain(name);
      expect(await section(ed, name).locator('.intune-sb-conn[data-level="ok"]').count(), `${name}: its connections are ok`).to.equal(2);
    }
    // The ACMP instance spans its three tabs: the ACMP sink (IntuneMobileDevices_1) is in it, with a run.
    const acmp = section(ed, 'IntuneConnector_1');
    expect(await acmp.locator('.intune-sb-node').count()).to.equal(4);
    const sinkRuns = acmp.locator('.intune-sb-node:has(.intune-sb-tag:text-is("intune-acmp")) tr.intune-sb-run');
    expect(await sinkRuns.count()).to.be.greaterThan(0);
    expect(await acmp.locator('th').first().innerText()).to.equal(en.cols.start);
    // Certificate expiry of the 4me instance's certificate app, the secret note of the ACMP one.
    expect(await section(ed, 'Intune4me_1').locator('.intune-sb-facts').first().innerText()).to.match(/certificate valid until \d{4}-\d\d-\d\d \(\d+ days\)/);
    expect(await acmp.locator('.intune-sb-facts').first().innerText()).to.contain(en.auth.secret);
    // The 4me sink's incidents, the charts.
    expect(await section(ed, 'Intune4me_1').locator('.intune-sb-incidents').innerText()).to.match(/incidents: \d+ open/);
    expect(await ed.page.locator('svg.intune-sb-chart rect').count()).to.be.greaterThan(0);
    await ed.page.locator('.intune-sb-refresh').click();
    await get('/intune/runs?runs=200');
    await get('/intune/metrics');
    await ed.page.waitForTimeout(1000);
    expect(await graphRequests(), 'Graph requests while the sidebar and the endpoints were read').to.equal(before);
    await ed.screenshot('sidebar-intune-en-US');
  });

  it('a run started from the sidebar appears when it finishes, without a reload', async () => {
    const node = ed!.page.locator('.intune-sb-instance[data-instance="IntuneConnector_1"] .intune-sb-node:has(.intune-sb-tag:text-is("intune-devices"))');
    const id = (await node.getAttribute('data-node'))!;
    const runsBefore = Number(await node.getAttribute('data-runs'));
    await node.locator('button.intune-sb-run').click();
    // Only the comms message of the finished run can bring it (the sidebar polls every 30 s; this waits 20 s at most).
    await ed!.page.waitForFunction(
      ([nodeId, n]) => Number(document.querySelector(`.intune-sb-node[data-node="${nodeId}"]`)?.getAttribute('data-runs')) > Number(n),
      [id, runsBefore],
      { timeout: 20_000 },
    );
    const first = node.locator('tr.intune-sb-run').first();
    expect(await first.getAttribute('data-result')).to.equal('ok');
    expect(Number((await first.locator('td[data-col="read"]').innerText()).replace(/\D/g, ''))).to.be.greaterThan(0);
  });

  it('an ACMP query action shows as a job received and executed, at the job source and at the executor', async () => {
    const acmp = ed!.page.locator('.intune-sb-instance[data-instance="IntuneConnector_1"]');
    const sent = await fetch(`http://127.0.0.1:${ports.DEMO_CONSOLE_PORT}/api/acmp/ACMP01/jobs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'sync', devices: 2 }) });
    expect(sent.status).to.be.below(300);
    const en = catalog('en-US');
    const fill = (t: string, p: Record<string, number>) => t.replace(/__(\w+)__/g, (_m, k: string) => String(p[k] ?? ''));
    await acmp.locator('.intune-sb-node:has(.intune-sb-tag:text-is("intune-action")) .intune-sb-jobs').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await acmp.locator('.intune-sb-node:has(.intune-sb-tag:text-is("intune-action")) .intune-sb-jobs').innerText()).to.equal(fill(en.jobs, { received: 1, executed: 1, refused: 0, replayed: 0 }));
    expect(await acmp.locator('.intune-sb-node:has(.intune-sb-tag:text-is("intune-acmp-actions")) .intune-sb-jobs').innerText()).to.equal(fill(en.jobsIn, { received: 1, forwarded: 1, refused: 0 }));
  });

  it('a click on a node reveals it in its tab of the workspace', async () => {
    const o = await overview();
    const sink = o.instances.find((i) => i.name === 'IntuneConnector_1')!.nodes.find((n) => n.type === 'intune-acmp')!;
    expect(await ed!.page.evaluate(() => (window as any).RED.workspaces.active())).to.not.equal(sink.tab);
    await ed!.page.locator(`.intune-sb-node[data-node="${sink.id}"] a.intune-sb-jump`).click();
    await ed!.page.waitForFunction((tab) => (window as any).RED.workspaces.active() === tab, sink.tab);
    expect(await ed!.page.locator(`g.red-ui-flow-node-group[id="${sink.id}"]`).isVisible()).to.equal(true);
  });

  it('a connection that does not work shows red with its reason, in a loose group of its own tab', async () => {
    // Deploy a tab outside the templates with a connection that has no client secret.
    const flows = (await (await fetch(`${base}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json()) as { rev: string; flows: unknown[] };
    const added = [
      { id: 'loose-tab', type: 'tab', label: 'My own flow' },
      { id: 'loose-cfg', type: 'intune-config', name: 'Broken Intune', tenantId: demoIdentity().tenantId, clientId: demoIdentity().secretClientId, authType: 'secret', cloud: 'global' },
      { id: 'loose-dev', type: 'intune-devices', z: 'loose-tab', name: 'loose scanner', intune: 'loose-cfg', x: 200, y: 100, wires: [[], []] },
    ];
    const res = await fetch(`${base}/flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'flows' },
      body: JSON.stringify({ rev: flows.rev, flows: [...flows.flows, ...added] }),
    });
    expect(res.status).to.equal(200);
    await ed!.page.reload();
    await ed!.waitUntilLoaded();
    await openSidebar(ed!);
    const loose = section(ed!, 'My own flow');
    await loose.waitFor({ state: 'visible' });
    expect(await loose.locator('h3').innerText()).to.contain(catalog('en-US').loose);
    const conn = loose.locator('.intune-sb-conn[data-config="loose-cfg"]');
    expect(await conn.getAttribute('data-level')).to.equal('error');
    expect(await conn.locator('.intune-sb-dot').first().evaluate((el) => getComputedStyle(el).backgroundColor)).to.equal('rgb(221, 51, 51)');
    expect(await conn.locator('.intune-sb-reason').innerText()).to.contain('The client secret is missing');
    await loose.scrollIntoViewIfNeeded();
    await ed!.screenshot('sidebar-intune-failing-connection');
  });

  it('in German; no demo secret in the page or the JSON; the metrics parse as Prometheus text', async () => {
    const de = catalog('de');
    const ger = await Editor.open(browser, base, screenshotDir, { language: 'de' });
    try {
      await openSidebar(ger);
      const acmp = section(ger, 'IntuneConnector_1');
      expect(await acmp.locator('th').nth(3).innerText()).to.equal(de.cols.read);
      expect(await ger.page.locator('.intune-sb-refresh').innerText()).to.contain(de.refresh);
      expect(await section(ger, 'Intune4me_1').locator('.intune-sb-facts').first().innerText()).to.match(/Zertifikat gültig bis/);
      await ger.screenshot('sidebar-intune-de');

      const ids = demoIdentity();
      const pfx = JSON.parse(fs.readFileSync(path.join(dir, 'certificate-app.json'), 'utf8')).pfxBase64 as string;
      const secrets = [ids.secret, ids.certPassword, ids.sicsPassword, ids.fourmeToken, pfx.slice(0, 40)];
      const page = await ger.page.locator('.intune-sb').innerHTML();
      const json = await (await get('/intune/runs?runs=200')).text();
      const metrics = await (await get('/intune/metrics')).text();
      for (const s of secrets) {
        expect(page.includes(s), 'secret in the sidebar').to.equal(false);
        expect(json.includes(s), 'secret in /intune/runs').to.equal(false);
        expect(metrics.includes(s), 'secret in /intune/metrics').to.equal(false);
      }

      const families = parsePrometheusTextFormat(metrics);
      const runs = families.find((f) => f.name === 'intune_connector_runs_total')!;
      expect(runs.metrics.some((m) => m.labels!.instance === 'IntuneConnector_1' && m.labels!.service === 'intune' && m.labels!.kind === 'devices' && Number(m.value) >= 1)).to.equal(true);
      const up = families.find((f) => f.name === 'intune_connector_connection_up')!;
      expect(up.metrics.find((m) => m.labels!.connection_id === 'loose-cfg')!.value).to.equal('0');
      expect(up.metrics.filter((m) => m.labels!.instance === 'Intune4me_1').map((m) => m.value)).to.deep.equal(['1', '1']);
      expect(families.find((f) => f.name === 'intune_connector_certificate_expiry_timestamp_seconds')!.metrics[0].labels!.instance).to.equal('Intune4me_1');
    } finally {
      await ger.close();
    }
  });
});
