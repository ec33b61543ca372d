/**
 * The intune-4me-config dialog in a real browser, against the simulated 4me
 * (sim/fourme.ts) on loopback HTTPS: custom URLs with the sim's CA from a
 * tls-config, personal access token and OAuth client credentials, "Verify
 * connection" answering in plain words (a wrong token, a wrong client
 * secret, a missing CA, then success), and after Deploy a device page sent
 * from an inject node through intune-4me into the simulated account, with
 * the sink's status dot. Secrets stay masked in the dialog and never come
 * back in the answers, the credentials or the log. Once more in German.
 */
import { expect } from 'chai';
import { FourMeSim } from '../../sim/fourme';
import { sharedTestCa } from '../../sim/pki';
import { makeDevice } from '../support/device-fixtures';
import { browserStack, onFailure, redLogTail, TLS_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { text, type Lang } from './support/catalog';
import { leaked, pressVerify, recordResponses, unmaskedSecrets, type VerifyAnswer } from './support/verify';

const T = 'intune-4me-config';
const tr = (lang: Lang, key: string, params?: Record<string, string | number>) => text(T, lang, `${T}.${key}`, params);
const en = (key: string, params?: Record<string, string | number>) => tr('en-US', key, params);
const sinkText = (key: string, params?: Record<string, string | number>) => text('intune-4me', 'en-US', `intune-4me.${key}`, params);

const ACCOUNT = 'acme';
const ACCOUNT_NAME = 'Acme Corp';
const PAT = 'pat-browser-4me-7a1c0ffee2b94d1e';
const PAT_PERSON = 'Intune connector';
const CLIENT = { clientId: 'intune-connector-browser', clientSecret: 'oauth-browser-secret-5d2e8f1a9c', personName: 'OAuth connector' };
const INJECT = 'inj-4me-page';
const DEVICE = makeDevice(4711);

describe('browser: intune-4me-config Verify against the simulated 4me, and the sink after Deploy', function () {
  this.timeout(90_000);
  let stack: Stack;
  let sim: FourMeSim;
  let ed: Editor | undefined;
  let sinkId = '';
  let verifyBodies: string[] = [];
  let credentialBodies: string[] = [];
  const SECRETS = [PAT, CLIENT.clientSecret, 'pat-typed-wrong-0000000', 'wrong-client-secret-000'];
  onFailure(() => ed);

  const field = (prop: string) => ed!.page.locator(`#node-config-input-${prop}`);
  const verify = (): Promise<VerifyAnswer> => pressVerify(ed!, '#intune-4me-config-verify', '#intune-4me-config-verify-result', '.intune-4me-config-line');

  before(async () => {
    stack = await browserStack();
    sim = new FourMeSim({
      tls: sharedTestCa().server,
      accounts: [{ id: ACCOUNT, name: ACCOUNT_NAME }],
      personalAccessTokens: [{ token: PAT, personName: PAT_PERSON }],
      oauthClients: [CLIENT],
    });
    await sim.start();
    const sync = { runId: 'browser-4me-1', instance: 'browser', mode: 'full', page: 1, last: true, startedAt: new Date().toISOString() };
    await stack.reset([
      {
        id: INJECT, type: 'inject', name: 'one device page', topic: 'intune/devices',
        props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }, { p: 'sync', v: JSON.stringify(sync), vt: 'json' }],
        payload: JSON.stringify([DEVICE]), payloadType: 'json', repeat: '', once: false, x: 150, y: 100, wires: [[]],
      },
    ]);
    ed = await stack.editor();
    verifyBodies = recordResponses(ed, /\/intune-4me-config\/verify$/);
    credentialBodies = recordResponses(ed, /\/credentials\/intune-4me-config\//);
    sinkId = await ed.addFromPalette('intune-4me', { x: 420, y: 100 });
    await ed.openNode(sinkId);
    await ed.addConfigFrom('fourme');
  });
  after(async () => {
    await ed?.close();
    await sim?.stop();
  });

  it('a form with wrong fields: Verify and Set up both list them and send nothing to the runtime', async () => {
    await field('accountId').fill('');
    await field('authType').selectOption('token');
    await field('token').fill('');
    const before = verifyBodies.length;
    const r = await verify();
    expect(r.kind).to.equal('error');
    expect(r.lines[0]).to.equal(en('verify.fixFields'));
    expect(r.text).to.include(en('label.accountId'));
    expect(r.text).to.include(en('label.token'));
    await ed!.page.locator('#intune-4me-config-setup').click();
    const plan = ed!.page.locator('#intune-4me-config-setup-result');
    await plan.waitFor({ state: 'visible' });
    const planText = await plan.innerText();
    expect(planText).to.include(en('verify.fixFields'));
    expect(planText).to.include(en('label.accountId'));
    expect(verifyBodies.length, 'no Verify request').to.equal(before);
  });

  it('custom URLs without the CA: Verify names the TLS problem', async () => {
    await field('name').fill('sim 4me');
    await field('accountId').fill(ACCOUNT);
    await field('environment').selectOption('custom');
    expect(await field('region').isVisible(), 'region hidden for custom URLs').to.equal(false);
    await field('graphqlUrl').fill(sim.graphqlUrl);
    await field('tokenUrl').fill(sim.tokenUrl);
    await field('authType').selectOption('token');
    await field('token').fill(PAT);
    const r = await verify();
    expect(r.seen[0], 'progress while verifying').to.equal(en('verify.running'));
    expect(r.kind).to.equal('error');
    expect(r.lines[0]).to.match(new RegExp(`^${escape(en('verify.tlsError', { message: '@@' })).replace('@@', '.+')}$`));
  });

  it('a wrong personal access token: 4me did not accept it, said in plain words, the token not echoed', async () => {
    await field('tls').selectOption(TLS_ID);
    await field('token').fill('pat-typed-wrong-0000000');
    const r = await verify();
    expect(r.kind).to.equal('error');
    const prefix = en('verify.authFailed', { message: '' });
    expect(r.lines[0].startsWith(prefix), `"${r.lines[0]}" starts with "${prefix}"`).to.equal(true);
    expect(r.lines[0].length, 'with 4me\u2019s reason').to.be.greaterThan(prefix.length + 5);
    expect(leaked(r.text, SECRETS)).to.deep.equal([]);
    expect(await field('token').getAttribute('type'), 'the token is masked').to.equal('password');
    await ed!.screenshotTray('dialog-intune-4me-config-verify-wrong-token');
  });

  it('the right token: connected to the account as the token\u2019s person, with what is left of the budget', async () => {
    await field('token').fill(PAT);
    expect(await ed!.page.locator('#intune-4me-config-verify-result').isVisible(), 'a changed field hides the old answer').to.equal(false);
    const r = await verify();
    expect(r.kind, r.text).to.equal('ok');
    const host = new URL(sim.graphqlUrl).host;
    expect(r.lines[0]).to.equal(en('verify.ok', { accountName: ACCOUNT_NAME, account: ACCOUNT, host, person: PAT_PERSON }));
    expect(r.text).to.match(new RegExp(escape(en('verify.budget', { requests: '@1', requestsLimit: '3600', cost: '@2', costLimit: '5000' })).replace(/@\d/g, '\\d+')));
    expect(await unmaskedSecrets(ed!)).to.deep.equal([]);
    await ed!.screenshotTray('dialog-intune-4me-config-verify-ok');
  });

  it('OAuth client credentials: a wrong secret is refused, the right one connects as the client\u2019s person', async () => {
    await field('authType').selectOption('oauth');
    expect(await field('token').isVisible(), 'no token field for OAuth').to.equal(false);
    await field('clientId').fill(CLIENT.clientId);
    await field('clientSecret').fill('wrong-client-secret-000');
    let r = await verify();
    expect(r.kind).to.equal('error');
    expect(r.lines[0].startsWith(en('verify.authFailed', { message: '' })), r.lines[0]).to.equal(true);
    expect(leaked(r.text, SECRETS)).to.deep.equal([]);
    await ed!.screenshotTray('dialog-intune-4me-config-verify-oauth-wrong-secret');
    await field('clientSecret').fill(CLIENT.clientSecret);
    const issued = sim.stats.tokensIssued;
    r = await verify();
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(en('verify.ok', { accountName: ACCOUNT_NAME, account: ACCOUNT, host: new URL(sim.graphqlUrl).host, person: CLIENT.personName }));
    expect(sim.stats.tokensIssued - issued, 'an access token was fetched from the token URL').to.equal(1);
    expect(await field('clientSecret').getAttribute('type')).to.equal('password');
    await ed!.screenshotTray('dialog-intune-4me-config-verify-oauth-ok');
  });

  it('after Deploy, a device page from the inject node becomes a CI in 4me and the sink shows a green dot', async () => {
    await ed!.configDone();
    await ed!.dialogDone();
    await ed!.wire(INJECT, sinkId);
    await ed!.deploy();
    const idle = sinkText('status.idle') + sinkText('status.notPersistent');
    await ed!.waitForStatus(sinkId, { shape: 'ring-grey', text: new RegExp(`^${escape(idle)}$`) });
    await ed!.recordStatus(sinkId);
    // 4me answers in 400 ms during the run, so the editor, which redraws the canvas at its own pace, gets to draw
    // the blue dot (a fast write on a loaded machine can go from grey to green within one redraw).
    sim.setLatency(400);
    let done;
    try {
      await ed!.pressInject(INJECT);
      done = await ed!.waitForStatus(sinkId, { shape: /^(dot|ring)-(green|yellow|red)$/ }, 30_000);
    } finally {
      sim.setLatency(0);
    }
    const history = await ed!.statusHistory(sinkId);
    expect(done.shape, `status history ${JSON.stringify(history)}`).to.equal('dot-green');
    const want = escape(sinkText('status.doneDevices', { written: 1, unchanged: 0, archived: 0 })) + ' · \\d\\d:\\d\\d UTC' + escape(sinkText('status.notPersistent'));
    expect(done.text).to.match(new RegExp(`^${want}$`));
    expect(history.some((s) => s.shape === 'dot-blue'), `a blue dot while writing; seen ${JSON.stringify(history)}`).to.equal(true);
    const cis = sim.account(ACCOUNT).configurationItems.filter((c) => c.sourceID === DEVICE.id);
    expect(cis.map((c) => c.name), 'the CI in the simulated account').to.deep.equal([DEVICE.name]);
    await ed!.screenshot('canvas-intune-4me-after-run', ed!.page.locator('#red-ui-workspace-chart'));
  });

  it('the deployed secret stays on the server: masked in the dialog, not in the credentials sent back, the answers or the log', async () => {
    credentialBodies.length = 0;
    await ed!.openNode(sinkId);
    await ed!.editConfigFrom('fourme');
    expect(await field('authType').inputValue()).to.equal('oauth');
    expect(await field('clientSecret').getAttribute('type')).to.equal('password');
    // The stored secret verifies without being typed again (Node-RED's placeholder is sent).
    const r = await verify();
    expect(r.kind, r.text).to.equal('ok');
    expect(credentialBodies.length, 'the editor fetched the credentials').to.be.greaterThan(0);
    expect(leaked(credentialBodies.join('\n'), SECRETS), 'secrets in the credentials sent to the browser').to.deep.equal([]);
    expect(verifyBodies.length, 'verify answers seen').to.be.greaterThan(4);
    expect(leaked(verifyBodies.join('\n'), SECRETS), 'secrets in verify answers').to.deep.equal([]);
    expect(leaked(stack.red.logs(), SECRETS), `secrets in the Node-RED log: ${redLogTail(300)}`).to.deep.equal([]);
    await ed!.closeAllDialogs();
  });

  it('in German: the dialog answers Verify in German (screenshot)', async () => {
    await ed!.chooseLanguage('de');
    await ed!.openNode(sinkId);
    await ed!.editConfigFrom('fourme');
    const r = await verify();
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(tr('de', 'verify.ok', { accountName: ACCOUNT_NAME, account: ACCOUNT, host: new URL(sim.graphqlUrl).host, person: CLIENT.personName }));
    expect(r.lines[0]).to.not.equal(en('verify.ok', { accountName: ACCOUNT_NAME, account: ACCOUNT, host: new URL(sim.graphqlUrl).host, person: CLIENT.personName }));
    await ed!.screenshotTray('dialog-intune-4me-config-verify-ok-de');
    await ed!.closeAllDialogs();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
