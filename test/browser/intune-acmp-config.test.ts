/**
 * The intune-acmp-config dialog in a real browser, against the simulated
 * SICS bus with two ACMP servers (sim/sics.ts) on one port that speaks HTTPS
 * and plain HTTP: servers entered in the list, "Verify connection" with a
 * wrong password, without the CA (TLS fails), with the unencrypted fallback
 * allowed, and with everything right. After Deploy, intune-acmp publishes a
 * device page from an inject node to both servers, and an ACMP query-action
 * job goes intune-acmp-actions → intune-action (simulated tenant) →
 * intune-acmp and comes back to the ACMP server as "finished"; each node's
 * status dot follows. The password stays masked and never comes back.
 * Verify once more in German.
 */
import { expect } from 'chai';
import { startAcmpEnv, SICS_PASSWORD, SICS_USER, type AcmpEnv } from '../support/acmp-fixtures';
import { makeDevice } from '../support/device-fixtures';
import { browserStack, onFailure, redLogTail, CONFIG_ID, TLS_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { text, type Lang } from './support/catalog';
import { leaked, pressVerify, recordResponses, unmaskedSecrets, type VerifyAnswer } from './support/verify';

const T = 'intune-acmp-config';
const tr = (lang: Lang, key: string, params?: Record<string, string | number>) => text(T, lang, `${T}.${key}`, params);
const en = (key: string, params?: Record<string, string | number>) => tr('en-US', key, params);
const say = (type: string, key: string, params?: Record<string, string | number>) => text(type, 'en-US', `${type}.${key}`, params);

const INJECT = 'inj-acmp-page';
const ACTION = 'act-acmp';
const DEVICE = makeDevice(815);
const WRONG = 'not-the-sics-password-1';

describe('browser: intune-acmp-config Verify against the simulated SICS, and the ACMP nodes after Deploy', function () {
  this.timeout(90_000);
  let stack: Stack;
  let env: AcmpEnv;
  let ed: Editor | undefined;
  let sinkId = '';
  let jobsId = '';
  let verifyBodies: string[] = [];
  let credentialBodies: string[] = [];
  const SECRETS = [SICS_PASSWORD, WRONG];
  onFailure(() => ed);

  const field = (prop: string) => ed!.page.locator(`#node-config-input-${prop}`);
  const verify = (): Promise<VerifyAnswer> => pressVerify(ed!, '#intune-acmp-verify', '#intune-acmp-verify-result', '.intune-acmp-line');
  const serverLines = (r: VerifyAnswer) => r.lines.filter((l) => /^ACMP server|^ACMP-Server/.test(l));

  before(async () => {
    stack = await browserStack();
    env = await startAcmpEnv({ servers: 2 });
    const sync = { runId: 'browser-acmp-1', instance: 'browser', mode: 'full', page: 1, last: true, startedAt: new Date().toISOString() };
    await stack.reset([
      ...stack.deployedConfig(),
      {
        id: INJECT, type: 'inject', name: 'one device page', topic: 'intune/devices',
        props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }, { p: 'sync', v: JSON.stringify(sync), vt: 'json' }],
        payload: JSON.stringify([DEVICE]), payloadType: 'json', repeat: '', once: false, x: 150, y: 100, wires: [[]],
      },
      { id: ACTION, type: 'intune-action', name: 'action', intune: CONFIG_ID, store: 'file', x: 420, y: 220, wires: [[]] },
    ]);
    ed = await stack.editor();
    verifyBodies = recordResponses(ed, /\/intune-acmp-config\/verify$/);
    credentialBodies = recordResponses(ed, /\/credentials\/intune-acmp-config\//);
    sinkId = await ed.addFromPalette('intune-acmp', { x: 680, y: 100 });
    await ed.openNode(sinkId);
    await ed.addConfigFrom('acmp');
  });
  after(async () => {
    await ed?.close();
    await env?.stop();
  });

  it('servers entered in the list; a wrong password: SICS refused the user or password, the password not echoed', async () => {
    await field('name').fill('sim SICS');
    await field('host').fill('127.0.0.1');
    await field('port').fill(String(env.sics.port));
    expect(await field('useTls').isChecked(), 'TLS on by default').to.equal(true);
    await field('tls').selectOption(TLS_ID);
    await field('user').fill(SICS_USER);
    await field('password').fill(WRONG);
    for (const srv of env.servers) {
      await ed!.page.locator('.node-input-servers-container-row .red-ui-editableList-addButton').click();
      const row = ed!.page.locator('#intune-acmp-servers .intune-acmp-server-row').last();
      await row.locator('.intune-acmp-serverId').fill(srv.serverId);
      expect(await row.locator('.intune-acmp-routingKey').inputValue(), 'routing key suggested from the server id').to.equal(srv.routingKey);
      expect(await row.locator('.intune-acmp-virtualRouter').inputValue()).to.equal(srv.virtualRouter);
    }
    const r = await verify();
    expect(r.seen[0], 'progress while verifying').to.equal(en('verify.running'));
    expect(r.kind).to.equal('error');
    expect(r.lines[0].startsWith(en('verify.wrongCredentials')), r.lines[0]).to.equal(true);
    expect(leaked(r.text, SECRETS)).to.deep.equal([]);
    expect(await field('password').getAttribute('type'), 'the password is masked').to.equal('password');
    await ed!.screenshotTray('dialog-intune-acmp-config-verify-wrong-password');
  });

  it('the right password: signed in, and each ACMP server answers', async () => {
    await field('password').fill(SICS_PASSWORD);
    const r = await verify();
    expect(r.kind, r.text).to.equal('ok');
    expect(r.lines[0]).to.equal(en('verify.ok', { host: '127.0.0.1', port: env.sics.port, servers: 2 }));
    const answered = serverLines(r).map((l) => l.replace(/\(\d+ ms\)/, '(N ms)'));
    expect(answered).to.deep.equal(env.servers.map((s) => en('verify.serverOk', { id: s.serverId, ms: 'N' })));
    expect(await unmaskedSecrets(ed!)).to.deep.equal([]);
    await ed!.screenshotTray('dialog-intune-acmp-config-verify-ok');
  });

  it('without the CA the TLS connection fails; with the unencrypted fallback allowed it works, with a warning', async () => {
    await field('tls').selectOption('_ADD_'); // "none" once a tls-config exists
    expect(await ed!.page.locator('#intune-acmp-fallback-warning').isVisible(), 'fallback warning before ticking').to.equal(false);
    let r = await verify();
    expect(r.kind).to.equal('error');
    expect(r.lines[0].startsWith(en('verify.tlsError')), r.lines[0]).to.equal(true);

    await field('allowUnencrypted').check();
    expect(await ed!.page.locator('#intune-acmp-fallback-warning').isVisible(), 'fallback warning after ticking').to.equal(true);
    const plain = env.sics.stats.plainConnections;
    r = await verify();
    expect(r.kind, r.text).to.equal('warning');
    expect(r.lines[0]).to.equal(en('verify.ok', { host: '127.0.0.1', port: env.sics.port, servers: 2 }));
    expect(r.lines[r.lines.length - 1]).to.equal(en('verify.unencrypted'));
    expect(env.sics.stats.plainConnections, 'the check really went unencrypted').to.be.greaterThan(plain);
    await ed!.screenshotTray('dialog-intune-acmp-config-verify-unencrypted');

    await field('allowUnencrypted').uncheck();
    await field('tls').selectOption(TLS_ID);
  });

  it('after Deploy: a device page reaches both ACMP servers, a query-action job comes back "finished", every status dot follows', async () => {
    await ed!.configDone();
    await ed!.page.locator('#node-input-store').selectOption('file');
    await ed!.dialogDone();
    jobsId = await ed!.addFromPalette('intune-acmp-actions', { x: 150, y: 220 });
    await ed!.openNode(jobsId);
    const acmpSelect = ed!.page.locator('#node-input-acmp');
    const cfgId = (await ed!.idsOfType(T))[0];
    await acmpSelect.selectOption(cfgId);
    await ed!.dialogDone();
    await ed!.wire(INJECT, sinkId);
    await ed!.wire(jobsId, ACTION);
    await ed!.wire(ACTION, sinkId);
    await ed!.deploy();

    await ed!.waitForStatus(sinkId, { shape: 'ring-grey', text: new RegExp(`^${escape(say('intune-acmp', 'status.idle', { server: '*' }))}$`) });
    await ed!.waitForStatus(jobsId, { shape: 'dot-green', text: new RegExp(`^${escape(say('intune-acmp-actions', 'status.listening', { routingKey: 'intune.jobs' }))}$`) });

    // the device page, to every server ("*")
    await ed!.recordStatus(sinkId);
    await ed!.pressInject(INJECT);
    const published = await ed!.waitForStatus(sinkId, { shape: /^dot-(green|yellow|red)$/ }, 30_000);
    const sent = [say('intune-acmp', 'status.runDone', { changed: 2, removed: 0 }), say('intune-acmp', 'status.runDoneNoRemoval', { changed: 2 })];
    expect(published.shape, `history ${JSON.stringify(await ed!.statusHistory(sinkId))}`).to.equal('dot-green');
    expect(sent, 'status after the run').to.include(published.text);
    for (const srv of env.servers) expect(srv.storedDevices().map((d) => d.id), `devices in ${srv.serverId}`).to.deep.equal([DEVICE.id]);

    // a job from SRV2: forwarded, executed against the tenant, its status sent back
    const deviceId = stack.env.tenant.deviceIdAt(0);
    const jobId = env.servers[1].emitJob({ action: 'sync', clients: [{ intuneId: deviceId, acmpClientId: 'ACMP-CLIENT-1', name: 'client 1' }] });
    const status = await env.servers[1].waitForJobStatus(jobId, 30_000);
    expect(status.state).to.equal('finished');
    await ed!.waitForStatus(jobsId, { shape: 'dot-green', text: new RegExp(`^${escape(say('intune-acmp-actions', 'status.counts', { received: 1, forwarded: 1, refused: 0 }))}$`) });
    await ed!.waitForStatus(ACTION, { shape: 'dot-green', text: new RegExp(`^${escape(say('intune-action', 'status.finished', { accepted: 1, total: 1 }))}$`) });
    await ed!.waitForStatus(sinkId, { shape: 'dot-green', text: new RegExp(`^${escape(say('intune-acmp', 'status.statusSent', { jobId, state: 'finished' }))}$`) });
    await ed!.screenshot('canvas-intune-acmp-after-job', ed!.page.locator('#red-ui-workspace-chart'));
  });

  it('the deployed password stays on the server: not in the credentials sent back, the answers or the log', async () => {
    credentialBodies.length = 0;
    await ed!.openNode(sinkId);
    await ed!.editConfigFrom('acmp');
    expect(await field('password').getAttribute('type')).to.equal('password');
    expect(await field('user').inputValue(), 'the user name is no secret').to.equal(SICS_USER);
    const r = await verify(); // with the stored password (Node-RED's placeholder is sent)
    expect(r.kind, r.text).to.equal('ok');
    expect(credentialBodies.length, 'the editor fetched the credentials').to.be.greaterThan(0);
    expect(leaked(credentialBodies.join('\n'), SECRETS), 'secrets in the credentials sent to the browser').to.deep.equal([]);
    expect(verifyBodies.length, 'verify answers seen').to.be.greaterThan(4);
    expect(leaked(verifyBodies.join('\n'), SECRETS), 'secrets in verify answers').to.deep.equal([]);
    expect(leaked(stack.red.logs(), SECRETS), `secrets in the Node-RED log: ${redLogTail(300)}`).to.deep.equal([]);
    await ed!.closeAllDialogs();
  });

  it('the deployed password is not sent over plain HTTP: Verify asks for it again, in the dialog language', async () => {
    await ed!.openNode(sinkId);
    await ed!.editConfigFrom('acmp');
    await field('useTls').uncheck();
    const r = await verify(); // the placeholder is sent for the password
    expect(r.kind, r.text).to.equal('error');
    const said = en('verify.savedSecretOtherEndpoint', { field: en('label.password'), endpoint: '@' });
    expect(r.lines[0]).to.include(said.slice(0, said.indexOf('@')));
    expect(r.lines[0]).to.include(`https://127.0.0.1:${env.sics.port}`);
    expect(leaked(verifyBodies.join('\n'), SECRETS), 'secrets in verify answers').to.deep.equal([]);
    await ed!.closeAllDialogs();
  });

  it('in German: the dialog answers Verify in German (screenshot)', async () => {
    await ed!.chooseLanguage('de');
    await ed!.openNode(sinkId);
    await ed!.editConfigFrom('acmp');
    const r = await verify();
    expect(r.kind, r.text).to.equal('ok');
    const want = tr('de', 'verify.ok', { host: '127.0.0.1', port: env.sics.port, servers: 2 });
    expect(want).to.not.equal(en('verify.ok', { host: '127.0.0.1', port: env.sics.port, servers: 2 }));
    expect(r.lines[0]).to.equal(want);
    await ed!.screenshotTray('dialog-intune-acmp-config-verify-ok-de');
    await ed!.closeAllDialogs();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
