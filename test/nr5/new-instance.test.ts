/**
 * "New instance…" in Node-RED 5 (Node.js 22.9+, from scripts/node22.sh), with
 * the packed package (so the plugin is in what npm ships): the plugin loads,
 * its German catalog shows, the admin-consent link follows the tenant and
 * app, and a 4me instance is created from the template as Intune4me_1 and
 * deployed, its typed token in the new connection's credentials and not in
 * the flows.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../../sim/node-red-runner';
import { launchChromium, cleanupChromiumDirs } from '../browser/support/chromium';
import { Editor } from '../browser/support/editor';
import { screenshotDir } from '../browser/support/stack';

const cacheDir = process.env.INTUNE_NR5_CACHE || path.join(os.homedir(), '.cache', 'intune-connector', 'nr5');
const TENANT = '6f1c2d3e-4a5b-4c6d-8e7f-901234567890';
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
const TOKEN = 'pat-nr5-new-instance-5b1e77';
const de = JSON.parse(fs.readFileSync(path.join(repoRoot, 'locales', 'de', 'intune-new-instance.json'), 'utf8'));

describe('Node-RED 5: New instance…', function () {
  this.timeout(180_000);
  let red: NodeRedProcess | undefined;
  let browser: Browser | undefined;
  let ed: Editor | undefined;

  before(async () => {
    const file = path.join(cacheDir, 'env.json');
    if (!fs.existsSync(file)) throw new Error(`NODE-RED 5 TESTS CANNOT RUN: ${file} is missing; run bash scripts/node22.sh`);
    const env = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodeBinary: string; nodeRedHome: string };
    red = await startNodeRed({ install: 'pack', nodeBinary: env.nodeBinary, nodeRedHome: env.nodeRedHome });
    browser = await launchChromium();
  });
  after(async () => {
    await ed?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    cleanupChromiumDirs();
    await red?.stop();
  });

  it('opens in German, links to admin consent, creates and deploys Intune4me_1 with the token only in its credentials', async () => {
    const plugins = (await red!.admin.get('/plugins', { headers: { Accept: 'application/json' } })).data as Array<{ id: string }>;
    expect(plugins.map((p) => p.id)).to.include('@intune-connector/node-red-intune/intune-new-instance');
    ed = await Editor.open(browser!, red!.url, screenshotDir, { language: 'de' });
    await ed.page.evaluate(() => (window as any).RED.plugins.getPlugin('intune-new-instance').open());
    const f = (n: string) => ed!.page.locator(`#intune-ni-${n}`);
    await f('template').waitFor({ state: 'visible' });
    expect((await ed.page.locator('.intune-ni-step:visible h3').innerText()).trim()).to.equal(de.step1.title);
    await f('template').selectOption('4me');
    await f('tenantId').fill(TENANT);
    await f('clientId').fill(CLIENT);
    await ed.page.waitForFunction(() => !!document.querySelector('#intune-ni-consent')?.getAttribute('href'));
    expect(await f('consent').getAttribute('href')).to.equal(`https://login.microsoftonline.com/${TENANT}/adminconsent?client_id=${CLIENT}`);
    await f('cloud').selectOption('china');
    await ed.page.waitForFunction(() => (document.querySelector('#intune-ni-consent')?.getAttribute('href') ?? '').startsWith('https://login.chinacloudapi.cn/'));
    await f('cloud').selectOption('global');
    await f('next').click();
    await f('clientSecret').fill('nr5-client-secret-value-1');
    await f('next').click();
    await f('fourmeAccount').fill('contoso');
    await f('fourmeToken').fill(TOKEN);
    await f('next').click();
    await f('platform-android').check();
    await f('next').click();
    await ed.page.waitForFunction(() => !!document.querySelector('#intune-ni-summary')?.getAttribute('data-instance'));
    expect(await f('summary').innerText()).to.include(de.step5.tabs.replace('__n__', '1').replace('__tabs__', 'Intune4me_1'));
    await ed.screenshotTray('nr5-new-instance-create-de');
    await f('create').click();
    const notice = de.step5.deployed.replace('__tabs__', 'Intune4me_1');
    await ed.page.locator('.red-ui-notification', { hasText: notice }).first().waitFor({ state: 'visible', timeout: 60_000 });

    const flows = (await red!.admin.get('/flows')).data as { flows: Array<Record<string, unknown>> };
    const text = JSON.stringify(flows);
    expect(flows.flows.filter((n) => n.type === 'tab').map((n) => n.label)).to.include('Intune4me_1'); // beside the editor's empty "Flow 1"
    expect(flows.flows.find((n) => n.type === 'intune-devices')).to.include({ platformAndroid: true, platformWindows: false });
    expect(text).to.not.include(TOKEN);
    expect(text).to.not.include('nr5-client-secret-value-1');
    const fourme = flows.flows.find((n) => n.type === 'intune-4me-config')!;
    const creds = (await red!.admin.get(`/credentials/intune-4me-config/${fourme.id}`)).data;
    expect(creds).to.deep.include({ has_token: true });
    expect(JSON.stringify(creds)).to.not.include(TOKEN);
  });
});
