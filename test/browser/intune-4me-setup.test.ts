/**
 * "Set up 4me" in the intune-4me-config dialog, in a real browser against the
 * simulated 4me: the button shows the plan (nothing changes yet), "Make these
 * changes" creates the UI extension, the fill-in puts its id into the 4me
 * node, and a second set-up has nothing to do — in English and in German,
 * with screenshots. A person without the role gets the plain-words refusal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot } from '../../sim/node-red-runner';
import { FourMeSim } from '../../sim/fourme';
import type { FourMeData } from '../../sim/fourme-store';
import { setPersonRoles, uiExtensionsOf } from '../../sim/fourme-ui-extensions';
import { sharedTestCa } from '../../sim/pki';
import { browserStack, onFailure, TLS_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { text, type Lang } from './support/catalog';

const T = 'intune-4me-config';
const tr = (lang: Lang, key: string, params?: Record<string, string | number>) => text(T, lang, `${T}.${key}`, params);
const ACCOUNT = 'acme';
const ACCOUNT_NAME = 'Acme Corp';
const PAT = 'pat-browser-setup-3c9e1f7a2b';
const CONFIG = 'cfg-4me-setup';
const SINK = 'sink-4me-setup';
const templateSink = () =>
  (JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', '4me instance (Intune4me_1).json'), 'utf8')) as Array<Record<string, unknown> & { wires: unknown[] }>).find((n) => n.type === 'intune-4me')!;

describe('browser: Set up 4me (intune-4me-config)', function () {
  this.timeout(120_000);
  let stack: Stack;
  let sim: FourMeSim;
  let ed: Editor | undefined;
  onFailure(() => ed);

  const result = () => ed!.page.locator('#intune-4me-config-setup-result');
  const firstLine = async () => (await result().locator('.intune-4me-config-line').first().innerText()).trim();
  async function press(selector: string): Promise<void> {
    await ed!.page.locator(selector).click();
    await ed!.page.waitForFunction(() => {
      const b = document.querySelector('#intune-4me-config-setup');
      return b && b.getAttribute('aria-busy') === 'false' && !document.querySelector('#intune-4me-config-setup-result .fa-spinner');
    }, undefined, { timeout: 60_000 });
  }

  before(async () => {
    stack = await browserStack();
    sim = new FourMeSim({ tls: sharedTestCa().server, accounts: [{ id: ACCOUNT, name: ACCOUNT_NAME }], personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }] });
    await sim.start();
    await stack.reset([
      {
        id: CONFIG, type: 'intune-4me-config', name: 'sim 4me', accountId: ACCOUNT, environment: 'custom', region: 'global', brand: '4me',
        graphqlUrl: sim.graphqlUrl, tokenUrl: sim.tokenUrl, tls: TLS_ID, authType: 'token', clientId: '', credentials: { token: PAT },
      },
      // The shipped template's sink, with every property set as an integrator gets it.
      { ...templateSink(), id: SINK, z: undefined, name: '4me CIs', fourme: CONFIG, cf_os: 'intune_os', x: 300, y: 100, wires: templateSink().wires.map(() => []) },
    ]);
    ed = await stack.editor();
  });
  after(async () => {
    await ed?.close();
    await sim?.stop();
  });

  it('a token person without the role: the plan refuses in plain words and names the roles', async () => {
    const data = (sim as unknown as { data: FourMeData }).data;
    setPersonRoles(data, sim.personOf(PAT, ACCOUNT)!.id, ['specialist']);
    await ed!.openNode(SINK);
    await ed!.editConfigFrom('fourme');
    await press('#intune-4me-config-setup');
    expect(await firstLine()).to.equal(tr('en-US', 'setup.missingRole', { person: 'Intune connector', account: ACCOUNT_NAME, roles: 'Specialist' }));
    expect(await ed!.page.locator('#intune-4me-config-setup-apply').count(), 'nothing to confirm').to.equal(0);
    await ed!.screenshotTray('dialog-intune-4me-config-setup-missing-role');
    setPersonRoles(data, sim.personOf(PAT, ACCOUNT)!.id, ['account_designer']);
  });

  it('the plan first (nothing changes), then “Make these changes” creates the extension and the fill-in sets the 4me node\u2019s extension id', async () => {
    await press('#intune-4me-config-setup');
    expect(await firstLine()).to.equal(tr('en-US', 'setup.ready', { account: ACCOUNT_NAME }));
    const steps = await result().locator('.intune-4me-config-setup-steps li').allInnerTexts();
    expect(steps[0]).to.match(/^Create the UI extension “Intune data attributes” \(for products\) with 13 read-only fields: intune_os, /);
    expect(uiExtensionsOf((sim as unknown as { data: FourMeData }).data, ACCOUNT), 'the dry run changed nothing').to.deep.equal([]);
    await ed!.screenshotTray('dialog-intune-4me-config-setup-plan');

    await press('#intune-4me-config-setup-apply');
    expect(await firstLine()).to.match(/^Done: account “Acme Corp” has the UI extension “Intune data attributes” with the fields intune_os, /);
    const [ext] = uiExtensionsOf((sim as unknown as { data: FourMeData }).data, ACCOUNT);
    expect(ext.name).to.equal('Intune data attributes');
    await ed!.screenshotTray('dialog-intune-4me-config-setup-done');
    await ed!.page.locator('#intune-4me-config-setup-fill').click();
    expect(await result().innerText()).to.include(tr('en-US', 'setup.filled', { count: 1 }));
    await ed!.configDone();
    await ed!.dialogDone();
    expect((await ed!.nodeProps(SINK)).uiExtensionId).to.equal(ext.id);
    await ed!.deploy();
  });

  it('in German: a second set-up has nothing to do, said in German (screenshot)', async () => {
    await ed!.chooseLanguage('de');
    await ed!.openNode(SINK);
    await ed!.editConfigFrom('fourme');
    expect(await ed!.page.locator('#intune-4me-config-setup-language').inputValue(), 'labels in the editor\u2019s language').to.equal('de');
    await ed!.page.locator('#intune-4me-config-setup-language').selectOption('en');
    await press('#intune-4me-config-setup');
    expect(await firstLine()).to.equal(tr('de', 'setup.upToDate', { account: ACCOUNT_NAME }));
    expect(await ed!.untranslated(ed!.topTray(), T)).to.deep.equal([]);
    await ed!.screenshotTray('dialog-intune-4me-config-setup-uptodate-de');
    await ed!.closeAllDialogs();
  });
});
