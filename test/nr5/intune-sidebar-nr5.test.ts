/**
 * The Intune sidebar plugin in Node-RED 5 on Node.js 22.9+ with the packed
 * package: the plugin loads (runtime and editor side, both catalogs), a run
 * started through POST /intune/run/:id is in GET /intune/runs when it is
 * done, and a German editor shows it in the Intune tab.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../../sim/node-red-runner';
import { startSimEnv, configFlow, type SimEnv } from '../support/sim-env';
import { launchChromium, cleanupChromiumDirs } from '../browser/support/chromium';
import { Editor } from '../browser/support/editor';

const MODULE = '@intune-connector/node-red-intune';
const cacheDir = process.env.INTUNE_NR5_CACHE || path.join(os.homedir(), '.cache', 'intune-connector', 'nr5');

describe('Intune sidebar in Node-RED 5', function () {
  this.timeout(180_000);
  let sims: SimEnv | undefined;
  let red: NodeRedProcess | undefined;

  before(async () => {
    const file = path.join(cacheDir, 'env.json');
    if (!fs.existsSync(file)) throw new Error(`NODE-RED 5 TESTS CANNOT RUN: ${file} is missing — run bash scripts/node22.sh`);
    const nr5 = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodeBinary: string; nodeRedHome: string };
    sims = await startSimEnv({ devices: 30, seed: 21 });
    red = await startNodeRed({ install: 'pack', nodeBinary: nr5.nodeBinary, nodeRedHome: nr5.nodeRedHome });
  });
  after(async () => {
    await red?.stop();
    await sims?.stop();
  });

  it('loads the plugin with both catalogs; a run started from the sidebar endpoint is listed; a German editor shows it', async () => {
    const plugins = await red!.admin.get('/plugins', { headers: { Accept: 'application/json' } });
    const ours = (plugins.data as Array<{ id: string; enabled: boolean; err?: string; plugins: Array<{ id: string }> }>).find((p) => p.id === `${MODULE}/intune-sidebar`);
    expect(ours, 'plugin set').to.not.equal(undefined);
    expect({ enabled: ours!.enabled, err: ours!.err ?? null, ids: ours!.plugins.map((p) => p.id) }).to.deep.equal({ enabled: true, err: null, ids: ['intune-sidebar'] });
    const de = await red!.admin.get('/plugins/messages', { params: { lng: 'de' } });
    const want = JSON.parse(fs.readFileSync(path.join(repoRoot, 'locales', 'de', 'intune-sidebar.json'), 'utf8'));
    expect(de.data[`${MODULE}/intune-sidebar`].cols).to.deep.equal(want.cols);

    const { nodes, credentials } = configFlow(sims!, { id: 'sb-cfg' });
    const flow = [
      { id: 'sb-tab', type: 'tab', label: 'Sidebar NR5' },
      ...nodes.map((n) => ({ ...n, ...(credentials[n.id as string] ? { credentials: credentials[n.id as string] } : {}) })),
      { id: 'sb-devices', type: 'intune-devices', z: 'sb-tab', name: 'devices nr5', intune: 'sb-cfg', x: 300, y: 60, wires: [[], []] },
    ];
    const mark = red!.mark();
    const deployed = await red!.admin.post('/flows', { flows: flow }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
    expect(deployed.status).to.equal(200);
    await red!.waitForLog(/Started flows/, 30_000, mark);
    const started = await red!.admin.post('/intune/run/sb-devices', { mode: 'full' });
    expect(started.data).to.deep.equal({ ok: true });
    let runs: Array<{ r: string; read?: number }> = [];
    const end = Date.now() + 60_000;
    while (!runs.length && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 500));
      const o = (await red!.admin.get('/intune/runs')).data as { instances: Array<{ name: string; loose: boolean; nodes: Array<{ id: string; runs: typeof runs }> }> };
      runs = o.instances.find((i) => i.name === 'Sidebar NR5')?.nodes.find((n) => n.id === 'sb-devices')?.runs ?? [];
    }
    expect(runs).to.have.length(1);
    expect(runs[0]).to.include({ r: 'ok', read: 30 });

    const browser = await launchChromium();
    try {
      const shots = path.join(process.env.TEST_OUTPUT_DIR || path.join(repoRoot, '.test-output'), 'screenshots');
      const ed = await Editor.open(browser, red!.url, shots, { language: 'de' });
      const link = ed.page.locator('#red-ui-tab-intune-link-button');
      if (await link.isVisible()) await link.click();
      else await ed.page.evaluate(() => (window as any).RED.sidebar.show('intune'));
      const node = ed.page.locator('.intune-sb-node[data-node="sb-devices"]');
      await node.waitFor({ state: 'visible' });
      expect(await node.getAttribute('data-runs')).to.equal('1');
      expect(await ed.page.locator('.intune-sb-instance[data-instance="Sidebar NR5"] th').nth(3).innerText()).to.equal(want.cols.read);
      await ed.screenshot('sidebar-intune-node-red-5-de');
    } finally {
      await browser.close();
      cleanupChromiumDirs();
    }
  });
});
