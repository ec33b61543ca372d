/**
 * Node-RED 5 on Node.js 22.9+ (both from the npm registry, installed by
 * scripts/node22.sh into a cache outside the repository): the packed package
 * loads, a flow with a connection to the simulated tenant deploys, one
 * device sync completes end to end, and the instance tool adds an ACMP
 * instance whose first sync reaches a simulated ACMP server.
 *
 * Without the install the suite fails, loudly, with the command to run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../../sim/node-red-runner';
import { startSimEnv, configFlow, type SimEnv } from '../support/sim-env';
import { startAcmpEnv, SICS_PASSWORD, SICS_USER } from '../support/acmp-fixtures';
import { launchChromium, cleanupChromiumDirs } from '../browser/support/chromium';
import { Editor } from '../browser/support/editor';
import { text } from '../browser/support/catalog';

interface Nr5Env {
  nodeBinary: string;
  nodeVersion: string;
  nodeRedHome: string;
  nodeRedVersion: string;
}

const cacheDir = process.env.INTUNE_NR5_CACHE || path.join(os.homedir(), '.cache', 'intune-connector', 'nr5');
const DEVICES = 40;
const MODULE = '@intune-connector/node-red-intune';

function loud(reason: string): Error {
  const bar = '#'.repeat(78);
  return new Error(
    [
      '',
      bar,
      `#  NODE-RED 5 TESTS CANNOT RUN: ${reason}`,
      '#  Install Node.js 22 and Node-RED 5 (npm registry, into a cache) with:',
      '#      bash scripts/node22.sh',
      `#  Cache: ${cacheDir}  (override with INTUNE_NR5_CACHE)`,
      bar,
      '',
    ].join('\n'),
  );
}

function nr5Env(): Nr5Env {
  const file = path.join(cacheDir, 'env.json');
  if (!fs.existsSync(file)) throw loud(`${file} is missing`);
  const env = JSON.parse(fs.readFileSync(file, 'utf8')) as Nr5Env;
  if (!fs.existsSync(env.nodeBinary)) throw loud(`${env.nodeBinary} is missing`);
  if (!fs.existsSync(path.join(env.nodeRedHome, 'red.js'))) throw loud(`${env.nodeRedHome}/red.js is missing`);
  return env;
}

describe('Node-RED 5 on Node.js 22.9+', function () {
  this.timeout(120_000);
  let nr5: Nr5Env;
  let sims: SimEnv | undefined;
  let red: NodeRedProcess | undefined;

  before(async function () {
    this.timeout(180_000);
    nr5 = nr5Env();
    sims = await startSimEnv({ devices: DEVICES, seed: 11 });
    red = await startNodeRed({ install: 'pack', nodeBinary: nr5.nodeBinary, nodeRedHome: nr5.nodeRedHome });
  });
  after(async () => {
    await red?.stop();
    await sims?.stop();
  });

  it('runs Node-RED 5 under Node.js 22.9 or newer', async () => {
    const real = execFileSync(nr5.nodeBinary, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
    const [major, minor] = real.split('.').map(Number);
    expect(major > 22 || (major === 22 && minor >= 9), `Node.js ${real}`).to.equal(true);
    expect(red!.logs()).to.match(new RegExp(`Node\\.js\\s+version:\\s+v${real.replace(/\./g, '\\.')}`));
    const settings = await red!.admin.get('/settings');
    expect(settings.status).to.equal(200);
    expect(String(settings.data.version), 'Node-RED version').to.match(/^5\./);
  });

  it('loads every node of the packed package, without errors', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
    const want = Object.keys(pkg['node-red'].nodes).sort();
    const res = await red!.admin.get('/nodes', { headers: { Accept: 'application/json' } });
    expect(res.status).to.equal(200);
    const sets = (res.data as Array<{ module: string; types: string[]; enabled: boolean; err?: string }>).filter((s) => s.module === MODULE);
    expect(sets.flatMap((s) => s.types).sort(), 'registered types').to.deep.equal(want);
    for (const s of sets) expect({ types: s.types, enabled: s.enabled, err: s.err ?? null }).to.deep.equal({ types: s.types, enabled: true, err: null });
    // The editor side is served too (HTML + both catalogs).
    const html = await red!.admin.get('/nodes', { headers: { Accept: 'text/html' } });
    for (const t of want) expect(html.data, `editor HTML of ${t}`).to.include(`data-template-name="${t}"`);
    const de = await red!.admin.get('/nodes/messages', { params: { lng: 'de' } });
    for (const t of want) expect(de.data[`${MODULE}/${t}`], `German catalog of ${t}`).to.be.an('object');
  });

  it('deploys a flow and completes one device sync against the simulated tenant', async () => {
    const { nodes, credentials } = configFlow(sims!, { id: 'nr5-cfg' });
    const tab = 'nr5-tab';
    const count = `
      const n = (flow.get('delivered') || 0) + (Array.isArray(msg.payload) ? msg.payload.length : 0);
      flow.set('delivered', n);
      if (msg.sync && msg.sync.last) node.warn('NR5-DELIVERED ' + JSON.stringify({ delivered: n, pages: msg.sync.page, mode: msg.sync.mode }));
      return null;`;
    const summary = `
      const s = msg.payload;
      node.warn('NR5-SUMMARY ' + JSON.stringify({ result: s.result, mode: s.mode, emitted: s.stats.emitted, skipped: s.stats.skipped, items: s.stats.items }));
      return null;`;
    const flow = [
      { id: tab, type: 'tab', label: 'NR5' },
      ...nodes.map((n) => ({ ...n, ...(credentials[n.id as string] ? { credentials: credentials[n.id as string] } : {}) })),
      { id: 'nr5-inject', type: 'inject', z: tab, name: 'run', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', once: false, x: 100, y: 60, wires: [['nr5-devices']] },
      { id: 'nr5-devices', type: 'intune-devices', z: tab, name: 'devices', intune: 'nr5-cfg', x: 300, y: 60, wires: [['nr5-count'], ['nr5-summary']] },
      { id: 'nr5-count', type: 'function', z: tab, name: 'count', func: count, outputs: 1, x: 500, y: 40, wires: [[]] },
      { id: 'nr5-summary', type: 'function', z: tab, name: 'summary', func: summary, outputs: 1, x: 500, y: 80, wires: [[]] },
    ];
    let mark = red!.mark();
    const deployed = await red!.admin.post('/flows', { flows: flow }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
    expect(deployed.status, JSON.stringify(deployed.data)).to.equal(200);
    await red!.waitForLog(/Started flows/, 30_000, mark);
    const started = red!.logs().slice(mark - (red!.mark() - red!.logs().length));
    expect(started, 'errors while starting the flow').to.not.match(/\[error\]/);

    mark = red!.mark();
    const pressed = await red!.admin.post('/inject/nr5-inject');
    expect(pressed.status).to.equal(200);
    const sumLine = await red!.waitForLog(/NR5-SUMMARY (\{.*\})/, 60_000, mark);
    const delLine = await red!.waitForLog(/NR5-DELIVERED (\{.*\})/, 10_000, mark);
    const sum = JSON.parse(/NR5-SUMMARY (\{.*\})/.exec(sumLine)![1]) as { result: string; mode: string; emitted: number; skipped: Record<string, number>; items: number };
    const del = JSON.parse(/NR5-DELIVERED (\{.*\})/.exec(delLine)![1]) as { delivered: number; pages: number; mode: string };
    expect({ result: sum.result, mode: sum.mode }).to.deep.equal({ result: 'completed', mode: 'full' });
    const skipped = Object.values(sum.skipped).reduce((a, b) => a + b, 0);
    expect(sum.emitted + skipped, 'every device of the tenant passed on or skipped').to.equal(DEVICES);
    expect(sum.emitted).to.be.greaterThan(0);
    expect(del.delivered, 'devices that reached the next node').to.equal(sum.emitted);
    expect(del.mode).to.equal('full');
  });

  it('shows that run\u2019s status in the editor\u2019s language (a German editor in headless Chromium)', async () => {
    const browser = await launchChromium();
    try {
      const shots = path.join(process.env.TEST_OUTPUT_DIR || path.join(repoRoot, '.test-output'), 'screenshots');
      const ed = await Editor.open(browser, red!.url, shots, { language: 'de' });
      const de = (key: string, params?: Record<string, string | number>) => text('intune-devices', 'de', `intune-devices.${key}`, params);
      const want = de('status.done', { mode: de('status.mode.full'), emitted: '@N', skipped: '@N', time: '@T' }) + de('status.notPersistent');
      const re = new RegExp(`^${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/@N/g, '\\d+').replace(/@T/g, '\\d\\d:\\d\\d')}$`);
      await ed.waitForStatus('nr5-devices', { shape: 'dot-green', text: re });
      await ed.screenshot('canvas-node-red-5-status-de', ed.page.locator('#red-ui-workspace-chart'));
    } finally {
      await browser.close();
      cleanupChromiumDirs();
    }
  });

  it('an ACMP instance made by the shipped instance tool runs its first sync into a simulated ACMP server', async () => {
    const acmp = await startAcmpEnv({ servers: 1 });
    try {
      const bin = path.join(red!.userDir, 'node_modules', ...MODULE.split('/'), 'dist', 'bin', 'node-red-intune-instance.js');
      const args = [
        bin, '--template', 'acmp', '--instance', '5', '--url', red!.url,
        '--tenant-id', sims!.tenantId, '--client-id', sims!.secretApp.clientId, '--auth', 'secret', '--client-secret-env', 'NR5_SECRET',
        '--cloud', 'custom', '--authority-host', sims!.identity.url, '--graph-url', sims!.graph.url, '--portal-url', 'https://intune.microsoft.com', '--ca', sims!.caFile,
        '--sics-host', '127.0.0.1', '--sics-port', String(acmp.sics.port), '--sics-user', SICS_USER, '--sics-password-env', 'NR5_SICS',
        '--acmp-server', 'SRV1', '--acmp-target', 'SRV1',
      ];
      // The tool runs on the same Node.js as Node-RED 5.
      const said = execFileSync(nr5.nodeBinary, args, { encoding: 'utf8', env: { ...process.env, NR5_SECRET: sims!.secretApp.secret, NR5_SICS: SICS_PASSWORD } });
      expect(said).to.match(/Added IntuneConnector_5, IntuneWorkflowEngine_5, IntuneMobileDevices_5/);
      const srv = acmp.servers[0];
      const until = Date.now() + 60_000;
      while (srv.storedDevices('IntuneConnector_5').length === 0) {
        if (Date.now() > until) throw new Error(`no devices reached ACMP:\n${red!.logs().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(srv.storedDevices().every((d) => d.id && d.name !== undefined)).to.equal(true);
      expect([...srv.devices.values()].every((d) => d.onDemandDefinition === 'IntuneMobileDevices_5')).to.equal(true);
    } finally {
      await acmp.stop();
    }
  });
});
