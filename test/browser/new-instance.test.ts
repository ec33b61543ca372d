/**
 * "New instance…" in a real browser against the demo (sim/demo.ts, started
 * as `npm run demo` starts it, in a temporary directory): a second ACMP
 * instance in English and a 4me instance in German, each through the five
 * steps (permissions and admin-consent link, Intune connection with Verify,
 * SICS or 4me with Verify, scans and filters with Preview, create and
 * deploy). The new instances then run: their devices reach the simulated
 * ACMP server (owned by IntuneConnector_2) and the simulated 4me account.
 * The deployed flows (GET /flows and flows.json) hold no secret and no
 * credentials property, yet the credentials work (the runs sign in to Graph,
 * SICS and 4me with them); no secret shows in an admin answer or the log.
 *
 * The demo's own instances are disabled right after it starts, before their
 * first sync (10 s after the flows start): the simulated ACMP server keeps
 * each device for the instance that wrote it first, and the simulated 4me
 * account is shared, so only then do the sims show what the new instances did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { freePort, repoRoot } from '../../sim/node-red-runner';
import { demoIdentity } from '../../sim/demo';
import { SimTenant } from '../../sim/tenant';
import { parseFilterSettings } from '../../nodes/lib/devices/device-filters';
import { PERMISSION_NEEDS } from '../../nodes/lib/intune/permissions';
import { deviceGroundTruth } from '../support/device-fixtures';
import { cleanupChromiumDirs, launchChromium } from './support/chromium';
import { Editor } from './support/editor';
import { screenshotDir } from './support/stack';
import { text as nodeText, type Lang } from './support/catalog';
import { leaked, pressVerify, recordResponses } from './support/verify';

const DEVICES = 120;
const P = '#intune-ni';
// The admin answers the set-up gets: Verify, Preview, its own endpoints, and the credentials Node-RED sends back.
const ADMIN_ANSWERS = /\/(intune-config|intune-acmp-config|intune-4me-config)\/verify$|\/intune-new-instance\/|\/intune-devices\/preview$|\/credentials\//;

function wizardText(lang: Lang, key: string, params: Record<string, string | number> = {}): string {
  const cat = JSON.parse(fs.readFileSync(path.join(repoRoot, 'locales', lang, 'intune-new-instance.json'), 'utf8'));
  let v: unknown = cat;
  for (const k of key.split('.')) v = (v as Record<string, unknown>)?.[k];
  if (typeof v !== 'string') throw new Error(`no ${key} in the ${lang} catalog`);
  return v.replace(/__(\w+)__/g, (_, k) => String(params[k] ?? `__${k}__`));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('browser: New instance… against the demo', function () {
  this.timeout(300_000);
  const ids = demoIdentity();
  const SECRETS = [ids.secret, ids.sicsPassword, ids.fourmeToken, ids.certPassword, 'wrong-secret-typed-0000'];
  const ports: Record<string, number> = {};
  let dir = '';
  let child: ChildProcess | undefined;
  let out = '';
  let editorUrl = '';
  let sims = '';
  let browser: Browser | undefined;
  let ed: Editor | undefined;
  const recorded: string[][] = [];
  const tenant = new SimTenant({ seed: 'demo', devices: DEVICES });
  const template = (name: string) => JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', name), 'utf8')) as Array<Record<string, unknown>>;

  const pfxB64 = () => (JSON.parse(fs.readFileSync(path.join(dir, 'certificate-app.json'), 'utf8')) as { pfxBase64: string }).pfxBase64;
  const get = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
  const field = (name: string) => ed!.page.locator(`${P}-${name}`);
  const next = () => ed!.page.locator(`${P}-next`).click();
  // The set-up closes, Node-RED deploys, and the set-up says what now runs.
  const deployedNotice = async (lang: Lang, tabs: string) => {
    const want = wizardText(lang, 'step5.deployed', { tabs });
    await ed!.page.locator('.red-ui-notification', { hasText: want }).first().waitFor({ state: 'visible', timeout: 60_000 });
    expect(await ed!.page.locator('#red-ui-header-button-deploy').evaluate((el) => el.classList.contains('disabled')), 'nothing left to deploy').to.equal(true);
  };
  const visibleStepTitle = async () => (await ed!.page.locator('.intune-ni-step:visible h3').innerText()).trim();

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && ed) {
      await ed.screenshot(`FAILED-new-instance-${this.currentTest.title}`.slice(0, 100)).catch(() => undefined);
      console.log(`--- demo output (tail) ---\n${out.slice(-3000)}\nbrowser errors: ${ed.errors.join('\n')}`);
    }
  });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-new-instance-'));
    for (const k of ['DEMO_PORT', 'DEMO_CONSOLE_PORT', 'DEMO_IDENTITY_PORT', 'DEMO_GRAPH_PORT', 'DEMO_SICS_PORT', 'DEMO_4ME_PORT']) ports[k] = await freePort();
    const env: Record<string, string> = { ...(process.env as Record<string, string>), DEMO_DIR: dir, DEMO_DEVICES: String(DEVICES) };
    for (const [k, v] of Object.entries(ports)) env[k] = String(v);
    child = spawn(process.execPath, [path.join(repoRoot, 'build', 'sim', 'demo.js')], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const until = Date.now() + 120_000;
    while (!/Intune connector demo is running/.test(out)) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`the demo did not come up:\n${out.slice(-3000)}`);
      await sleep(200);
    }
    editorUrl = `http://127.0.0.1:${ports.DEMO_PORT}`;
    sims = `http://127.0.0.1:${ports.DEMO_CONSOLE_PORT}`;
    // Disable the demo's instances before their first sync (see the top of the file).
    const headers = { 'Content-Type': 'application/json', 'Node-RED-API-Version': 'v2' };
    const flows = (await (await fetch(`${editorUrl}/flows`, { headers })).json()) as { rev: string; flows: Array<Record<string, unknown>> };
    for (const n of flows.flows) if (n.type === 'tab') n.disabled = true;
    const res = await fetch(`${editorUrl}/flows`, { method: 'POST', headers: { ...headers, 'Node-RED-Deployment-Type': 'full' }, body: JSON.stringify(flows) });
    expect(res.status, await res.text()).to.equal(200);
    browser = await launchChromium();
  });

  after(async () => {
    await ed?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    cleanupChromiumDirs();
    if (child?.pid) {
      try {
        process.kill(child.pid, 'SIGINT');
      } catch {
        /* gone */
      }
      const until = Date.now() + 20_000;
      while (child.exitCode === null && Date.now() < until) await sleep(200);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the demo\u2019s own instances wrote nothing (so what the sims hold later is the new instances\u2019 work)', async () => {
    await sleep(12_000); // past the first-run delay of the disabled instances
    const s = await get<{ acmp: Record<string, { devices: number }>; fourme: { configurationItems: number } }>(`${sims}/api/summary`);
    expect(s.acmp.ACMP01.devices).to.equal(0);
    expect(s.fourme.configurationItems).to.equal(0);
  });

  it('ACMP, step 1: the permissions and the admin-consent link for the entered tenant and app', async () => {
    ed = await Editor.open(browser!, editorUrl, screenshotDir);
    recorded.push(recordResponses(ed, ADMIN_ANSWERS));
    // From the main menu, as a user opens it (the Intune sidebar's button calls the same open()).
    await ed.page.locator('#red-ui-header-button-sidemenu').click();
    await ed.page.locator('#menu-item-intune-new-instance').click();
    await field('template').waitFor({ state: 'visible' });
    expect(await visibleStepTitle()).to.equal(wizardText('en-US', 'step1.title'));
    const perms = await ed.page.locator(`${P}-permissions li`).allInnerTexts();
    expect(perms).to.have.length(PERMISSION_NEEDS.length);
    PERMISSION_NEEDS.forEach((need, i) => need.anyOf.forEach((role) => expect(perms[i]).to.include(role)));
    expect(await field('consent').isVisible(), 'no link before tenant and app are entered').to.equal(false);

    await field('template').selectOption('acmp');
    await field('cloud').selectOption('custom');
    await field('authorityHost').fill(`https://127.0.0.1:${ports.DEMO_IDENTITY_PORT}`);
    await field('graphBaseUrl').fill(`https://127.0.0.1:${ports.DEMO_GRAPH_PORT}`);
    await field('portalUrl').fill('https://intune.microsoft.com');
    await field('tenantId').fill(ids.tenantId);
    await field('clientId').fill(ids.secretClientId);
    await ed.page.waitForFunction((sel) => !!document.querySelector(sel)?.getAttribute('href'), `${P}-consent`);
    expect(await field('consent').getAttribute('href')).to.equal(`https://127.0.0.1:${ports.DEMO_IDENTITY_PORT}/${ids.tenantId}/adminconsent?client_id=${ids.secretClientId}`);
    // The national cloud decides the sign-in host of the link.
    await field('cloud').selectOption('usgov');
    await ed.page.waitForFunction((sel) => (document.querySelector(sel)?.getAttribute('href') ?? '').startsWith('https://login.microsoftonline.us/'), `${P}-consent`);
    await ed.screenshotTray('new-instance-1-permissions');
    await field('cloud').selectOption('custom');
    await next();
  });

  it('ACMP, step 2: Verify the Intune connection (a wrong secret is refused, the right one connects)', async () => {
    expect(await visibleStepTitle()).to.equal(wizardText('en-US', 'step2.title'));
    await field('authType').selectOption('secret');
    await field('tls').selectOption({ label: 'CA (IntuneConnector_1)' });
    await field('clientSecret').fill('wrong-secret-typed-0000');
    let r = await pressVerify(ed!, `${P}-verify-intune`, `${P}-verify-intune-result`, '.intune-ni-line');
    expect(r.kind, r.text).to.equal('error');
    const wrong = nodeText('intune-config', 'en-US', 'intune-config.verify.wrongSecret', { message: '@@' }).split('@@')[0];
    expect(r.lines[0].startsWith(wrong), `"${r.lines[0]}" starts with "${wrong}"`).to.equal(true);
    await field('clientSecret').fill(ids.secret);
    r = await pressVerify(ed!, `${P}-verify-intune`, `${P}-verify-intune-result`, '.intune-ni-line');
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(nodeText('intune-config', 'en-US', 'intune-config.verify.ok', { tenantId: ids.tenantId, deviceCount: DEVICES }));
    expect(await field('clientSecret').getAttribute('type')).to.equal('password');
    await ed!.screenshotTray('new-instance-2-intune-verified');
    await next();
  });

  it('ACMP, step 3: the SICS connection and the ACMP server, verified', async () => {
    expect(await visibleStepTitle()).to.equal(wizardText('en-US', 'step3.title'));
    expect(await field('fourmeAccount').isVisible(), 'no 4me fields for an ACMP instance').to.equal(false);
    await field('sicsHost').fill('127.0.0.1');
    await field('sicsPort').fill(String(ports.DEMO_SICS_PORT));
    await field('sicsUser').fill(ids.sicsUser);
    await field('sicsPassword').fill(ids.sicsPassword);
    await field('servers').fill('ACMP01');
    const r = await pressVerify(ed!, `${P}-verify-acmp`, `${P}-verify-acmp-result`, '.intune-ni-line');
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(nodeText('intune-acmp-config', 'en-US', 'intune-acmp-config.verify.ok', { host: '127.0.0.1', port: String(ports.DEMO_SICS_PORT), servers: 1 }));
    expect(r.lines[1]).to.match(new RegExp(`^${nodeText('intune-acmp-config', 'en-US', 'intune-acmp-config.verify.serverOk', { id: 'ACMP01', ms: 999 }).replace('999', '\\d+').replace(/[.()]/g, '\\$&')}$`));
    await ed!.screenshotTray('new-instance-3-acmp-verified');
    await next();
  });

  it('ACMP, step 4: the template\u2019s schedule and filters, and a Preview that counts what a run passes on', async () => {
    expect(await visibleStepTitle()).to.equal(wizardText('en-US', 'step4.title'));
    const tmpl = template('ACMP instance (IntuneConnector_1).json');
    const env = Object.fromEntries((tmpl.find((n) => n.type === 'tab')!.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
    expect(await field('fullHours').inputValue()).to.equal(env.FULL_SCAN_HOURS);
    expect(await field('platform-windows').isChecked()).to.equal(true);
    expect(await field('platform-other').isChecked()).to.equal(false);
    // The Graph slowed (pages of 20 at 700 ms each, through the demo console): the Preview reads for about four
    // seconds, and its busy line gives the running counts meanwhile.
    const pace = async (latencyMs: number, pageSize: number) => {
      const r = await fetch(`${sims}/api/graph/pace`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ latencyMs, pageSize }) });
      expect(r.status, await r.text()).to.equal(200);
    };
    await field('preview-result').evaluate((el) => {
      const lines: string[] = [];
      (window as any).__previewLines = lines;
      new MutationObserver(() => {
        const l = (el.querySelector('.intune-ni-busy') as HTMLElement | null)?.innerText.trim();
        if (l && lines[lines.length - 1] !== l) lines.push(l);
      }).observe(el, { childList: true, subtree: true, characterData: true });
    });
    await pace(700, 20);
    try {
      await field('preview').click();
      await ed!.page.waitForFunction((sel) => !!document.querySelector(sel)?.getAttribute('data-imported'), `${P}-preview-result`, { timeout: 60_000 });
    } finally {
      await pace(0, 1000);
    }
    const busy = (await ed!.page.evaluate(() => (window as any).__previewLines)) as string[];
    expect(busy[0]).to.equal(wizardText('en-US', 'step4.previewRunning'));
    const soFar = new RegExp(`^${wizardText('en-US', 'step4.previewSoFar', { imported: '§', devices: '§', pages: '§', seconds: '§' }).replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/§/g, '(\\d+)')}$`);
    const counts = busy.slice(1).map((l) => l.match(soFar)?.slice(1).map(Number));
    expect(counts.every(Boolean), `busy lines: ${JSON.stringify(busy)}`).to.equal(true);
    expect(counts.length, `busy lines: ${JSON.stringify(busy)}`).to.be.at.least(2);
    expect(counts.some((c) => c![1] > 0 && c![1] < DEVICES && c![2] * 20 === c![1] && c![0] <= c![1]), `running counts: ${JSON.stringify(counts)}`).to.equal(true);
    // The Preview does not wait for the directory: with nothing cached, a deleted user's device is known only by its record.
    const kept = deviceGroundTruth(tenant, parseFilterSettings(tmpl.find((n) => n.type === 'intune-devices')!), Date.now(), undefined, true).kept.size;
    expect(Number(await field('preview-result').getAttribute('data-imported'))).to.equal(kept);
    const pending = Number(await field('preview-result').getAttribute('data-users-pending'));
    expect(pending, 'users the Preview left to the run').to.be.greaterThan(0);
    expect(await field('preview-result').innerText()).to.include(wizardText('en-US', 'step4.previewUsersPending', { count: pending }));
    expect(Number(await field('preview-result').getAttribute('data-total'))).to.equal(DEVICES);
    expect(await field('preview-result').locator('.intune-ni-line').first().innerText()).to.equal(wizardText('en-US', 'step4.previewResult', { imported: kept, total: DEVICES }));
    await ed!.screenshotTray('new-instance-4-preview');
    await next();
  });

  it('ACMP, step 5: IntuneConnector_2 and its tabs, created and deployed; its devices reach the simulated ACMP server', async () => {
    await ed!.page.waitForFunction((sel) => !!document.querySelector(sel)?.getAttribute('data-instance'), `${P}-summary`);
    expect(await field('summary').innerText()).to.include(wizardText('en-US', 'step5.tabs', { n: 2, tabs: 'IntuneConnector_2, IntuneWorkflowEngine_2, IntuneMobileDevices_2' }));
    await ed!.screenshotTray('new-instance-5-create');
    await field('create').click();
    await deployedNotice('en-US', 'IntuneConnector_2, IntuneWorkflowEngine_2, IntuneMobileDevices_2');
    await ed!.screenshot('new-instance-5-deployed');
    const tabs = await ed!.page.evaluate(() => {
      const l: string[] = [];
      (window as any).RED.nodes.eachWorkspace((w: any) => l.push(w.label));
      return l;
    });
    expect(tabs).to.include.members(['IntuneConnector_2', 'IntuneWorkflowEngine_2', 'IntuneMobileDevices_2']);

    const tmpl = template('ACMP instance (IntuneConnector_1).json');
    const kept = deviceGroundTruth(tenant, parseFilterSettings(tmpl.find((n) => n.type === 'intune-devices')!), Date.now()).kept;
    // Only IntuneConnector_2 runs (the demo's instances are disabled, and ACMP01 held nothing before).
    let stored: Array<{ id: string }> = [];
    const until = Date.now() + 120_000;
    while (stored.length < kept.size) {
      if (Date.now() > until) throw new Error(`ACMP01 holds ${stored.length} of ${kept.size} devices\n${out.slice(-2000)}`);
      await sleep(1000);
      stored = await get<Array<{ id: string }>>(`${sims}/api/acmp/ACMP01/devices`);
    }
    expect(stored.map((d) => d.id).sort()).to.deep.equal([...kept].sort());
    await ed!.close();
    ed = undefined;
  });

  it('4me in German: the steps in German, a certificate uploaded, Verify, a chosen platform, deploy; the CIs reach the simulated 4me account', async () => {
    ed = await Editor.open(browser!, editorUrl, screenshotDir, { language: 'de' });
    recorded.push(recordResponses(ed, ADMIN_ANSWERS));
    await ed.page.evaluate(() => (window as any).RED.plugins.getPlugin('intune-new-instance').open());
    await field('template').waitFor({ state: 'visible' });
    expect(await visibleStepTitle()).to.equal(wizardText('de', 'step1.title'));
    expect(await ed.page.locator(`label[for="intune-ni-tenantId"]`).innerText()).to.equal(wizardText('de', 'label.tenantId'));
    await field('template').selectOption('4me');
    await field('cloud').selectOption('custom');
    await field('authorityHost').fill(`https://127.0.0.1:${ports.DEMO_IDENTITY_PORT}`);
    await field('graphBaseUrl').fill(`https://127.0.0.1:${ports.DEMO_GRAPH_PORT}`);
    await field('tenantId').fill(ids.tenantId);
    // The demo's certificate app: its .pfx (kept by the demo) uploaded as a user picks a file.
    await field('clientId').fill(ids.certClientId);
    await ed.screenshotTray('new-instance-1-permissions-de');
    await next();
    expect(await visibleStepTitle()).to.equal(wizardText('de', 'step2.title'));
    await field('tls').selectOption({ label: 'CA (Intune4me_1)' });
    await field('authType').selectOption('certificate');
    expect(await field('clientSecret').isVisible(), 'no secret field for a certificate').to.equal(false);
    const pfxFile = path.join(dir, 'intune-connector-demo.pfx');
    fs.writeFileSync(pfxFile, Buffer.from((JSON.parse(fs.readFileSync(path.join(dir, 'certificate-app.json'), 'utf8')) as { pfxBase64: string }).pfxBase64, 'base64'));
    await field('pfx').setInputFiles(pfxFile);
    await field('passphrase').fill(ids.certPassword);
    let r = await pressVerify(ed, `${P}-verify-intune`, `${P}-verify-intune-result`, '.intune-ni-line');
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(nodeText('intune-config', 'de', 'intune-config.verify.ok', { tenantId: ids.tenantId, deviceCount: DEVICES }));
    await ed.screenshotTray('new-instance-2-intune-verified-de');
    await next();
    expect(await visibleStepTitle()).to.equal(wizardText('de', 'step3.title'));
    expect(await field('sicsHost').isVisible(), 'no SICS fields for a 4me instance').to.equal(false);
    await field('fourmeAccount').fill(ids.fourmeAccount);
    await field('fourmeEnvironment').selectOption('custom');
    await field('fourmeGraphqlUrl').fill(`https://127.0.0.1:${ports.DEMO_4ME_PORT}/graphql`);
    await field('fourmeToken').fill(ids.fourmeToken);
    r = await pressVerify(ed, `${P}-verify-4me`, `${P}-verify-4me-result`, '.intune-ni-line');
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(nodeText('intune-4me-config', 'de', 'intune-4me-config.verify.ok', { accountName: 'Contoso (demo)', account: ids.fourmeAccount, host: `127.0.0.1:${ports.DEMO_4ME_PORT}`, person: 'Intune connector' }));
    await ed.screenshotTray('new-instance-3-4me-verified-de');
    await next();
    expect(await visibleStepTitle()).to.equal(wizardText('de', 'step4.title'));
    for (const p of ['windows', 'macos', 'ios', 'android', 'linux', 'other']) expect(await field(`platform-${p}`).isChecked(), p).to.equal(false);
    await field('platform-ios').check();
    await field('complianceMinutes').fill('0');
    await next();
    await ed.page.waitForFunction((sel) => !!document.querySelector(sel)?.getAttribute('data-instance'), `${P}-summary`);
    expect(await field('summary').innerText()).to.include(wizardText('de', 'step5.tabs', { n: 2, tabs: 'Intune4me_2' }));
    await ed.screenshotTray('new-instance-5-create-de');
    await field('create').click();
    await deployedNotice('de', 'Intune4me_2');
    await ed.screenshot('new-instance-5-deployed-de');

    const tmpl = template('4me instance (Intune4me_1).json');
    const filters = parseFilterSettings({ ...tmpl.find((n) => n.type === 'intune-devices')!, platformIos: true });
    const kept = deviceGroundTruth(tenant, filters, Date.now()).kept;
    expect(kept.size).to.be.greaterThan(0);
    let cis: Array<{ sourceID: string | null }> = [];
    const until = Date.now() + 120_000;
    while (cis.length < kept.size) {
      if (Date.now() > until) throw new Error(`4me holds ${cis.length} of ${kept.size} CIs\n${out.slice(-2000)}`);
      await sleep(1000);
      cis = await get<Array<{ sourceID: string | null }>>(`${sims}/api/4me/cis`);
    }
    expect(cis.map((c) => c.sourceID).sort()).to.deep.equal([...kept].sort());
  });

  it('the deployed flows hold no secret and no credentials, in GET /flows and in flows.json; no admin answer or log line shows one', async () => {
    const flowsText = await (await fetch(`${editorUrl}/flows`)).text();
    const flows = JSON.parse(flowsText) as Array<Record<string, unknown>>;
    expect(flows.filter((n) => n.type === 'tab').map((n) => n.label)).to.include.members(['IntuneConnector_2', 'IntuneWorkflowEngine_2', 'IntuneMobileDevices_2', 'Intune4me_2']);
    expect(flows.some((n) => 'credentials' in n)).to.equal(false);
    expect(leaked(flowsText, [...SECRETS, pfxB64().slice(0, 40)])).to.deep.equal([]);
    const file = fs.readFileSync(path.join(dir, 'node-red', 'flows.json'), 'utf8');
    expect(file).to.include('Intune4me_2');
    expect(leaked(file, SECRETS)).to.deep.equal([]);
    const cred = fs.readFileSync(path.join(dir, 'node-red', 'flows_cred.json'), 'utf8');
    expect(leaked(cred, SECRETS), 'the credentials file is encrypted').to.deep.equal([]);
    // What Node-RED gives the editor for the new connections: whether a secret is set, never the secret.
    const conn = flows.find((n) => n.type === 'intune-config' && String(n.name).includes('Intune4me_2'))!;
    expect(conn).to.include({ authType: 'certificate', clientId: ids.certClientId });
    const sent = await (await fetch(`${editorUrl}/credentials/intune-config/${conn.id}`)).json();
    expect(sent).to.deep.include({ has_pfx: true, has_passphrase: true, pfxName: 'intune-connector-demo.pfx' });
    expect(JSON.stringify(sent)).to.not.include(pfxB64().slice(0, 40));
    expect(leaked(JSON.stringify(sent), SECRETS)).to.deep.equal([]);
    const answers = recorded.flat();
    expect(answers.length, 'admin answers were recorded').to.be.greaterThan(6);
    expect(leaked(answers.join('\n'), SECRETS)).to.deep.equal([]);
    expect(leaked(out, SECRETS), 'the demo and Node-RED log').to.deep.equal([]);
  });
});
