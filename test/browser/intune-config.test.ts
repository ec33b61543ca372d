/**
 * The intune-config dialog in a real browser, against the simulated identity
 * platform and Graph: wizard order, fields that hide when they do not apply,
 * validation while typing, "Verify connection" answers in plain words, the
 * .pfx upload with its certificate details, a PEM certificate and key,
 * secrets that never come back to the browser, and saved secrets that go only
 * to the endpoint they were saved for.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import type { Locator, Response } from 'playwright-core';
import { browserStack, onFailure, TENANT_DEVICES, TLS_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { longDate, number, squash, text } from './support/catalog';

const T = 'intune-config';
const en = (key: string, params?: Record<string, string | number>) => text(T, 'en-US', `${T}.${key}`, params);

describe('browser: intune-config dialog', function () {
  this.timeout(90_000);
  let stack: Stack;
  let ed: Editor | undefined;
  let hostId = '';
  let dialog: Locator;
  const credentialResponses: string[] = [];
  onFailure(() => ed);

  const field = (prop: string) => ed!.page.locator(`#node-config-input-${prop}`);
  const verifyBox = () => ed!.page.locator('#intune-config-verify-result');
  const certBox = () => ed!.page.locator('#intune-config-cert-info');

  /** Labels of the visible form fields, top to bottom. */
  async function visibleFieldOrder(): Promise<string[]> {
    return dialog.evaluate((root) =>
      Array.from(root.querySelectorAll('input[id^="node-config-input-"], select[id^="node-config-input-"]'))
        .filter((el) => {
          const row = (el as HTMLElement).closest('.form-row') as HTMLElement | null;
          return !!row && row.offsetParent !== null && (el as HTMLElement).getAttribute('type') !== 'hidden';
        })
        .map((el) => ({ id: el.id.replace('node-config-input-', ''), y: el.closest('.form-row')!.getBoundingClientRect().top }))
        .sort((a, b) => a.y - b.y)
        .map((e) => e.id)
        .filter((id, i, all) => all.indexOf(id) === i && id !== 'pfxfile'),
    );
  }

  /** Every text the verify result box shows from now on (progress included), in order. */
  async function recordVerifyBox(): Promise<void> {
    await verifyBox().evaluate((box) => {
      const seen: string[] = [];
      (window as any).__verifySeen = seen;
      new MutationObserver(() => {
        const t = (box as HTMLElement).innerText.replace(/\s+/g, ' ').trim();
        if (t && seen[seen.length - 1] !== t) seen.push(t);
      }).observe(box, { childList: true, subtree: true, characterData: true });
    });
  }

  async function verify(): Promise<{ cls: string; text: string; seen: string[] }> {
    await recordVerifyBox();
    await ed!.page.locator('#intune-config-verify').click();
    await ed!.page.waitForFunction(() => {
      const b = document.getElementById('intune-config-verify-result')!;
      return /is-(ok|error|warning)/.test(b.className) && b.style.display !== 'none';
    }, undefined, { timeout: 30_000 });
    return {
      cls: (await verifyBox().getAttribute('class')) ?? '',
      text: squash(await verifyBox().innerText()),
      seen: await ed!.page.evaluate(() => (window as any).__verifySeen as string[]),
    };
  }

  async function fillSimEndpoints(): Promise<void> {
    await field('cloud').selectOption('custom');
    await field('authorityHost').fill(stack.env.identity.url);
    await field('graphBaseUrl').fill(stack.env.graph.url);
    await field('tls').selectOption(TLS_ID);
    await field('tenantId').fill(stack.env.tenantId);
  }

  before(async () => {
    stack = await browserStack();
    await stack.reset([]);
    ed = await stack.editor();
    ed.page.on('response', (r: Response) => {
      if (/\/credentials\/intune-config\//.test(r.url())) void r.text().then((b) => credentialResponses.push(b)).catch(() => undefined);
    });
    hostId = await ed.addFromPalette('intune-devices', { x: 300, y: 100 });
    await ed.openNode(hostId);
    dialog = await ed.addConfigFrom('intune');
  });
  after(async () => {
    await ed?.close();
  });

  it('asks in the order a user fills it in, and hides what does not apply', async () => {
    // Global cloud + secret: no endpoint fields, no certificate fields.
    expect(await field('cloud').inputValue()).to.equal('global');
    expect(await field('authType').inputValue()).to.equal('secret');
    expect(await visibleFieldOrder()).to.deep.equal(['name', 'cloud', 'tenantId', 'clientId', 'authType', 'clientSecret', 'useProxy']);
    expect(await ed!.page.locator('#intune-config-cloud-hosts').innerText()).to.include('login.microsoftonline.com');

    await field('cloud').selectOption('custom');
    expect(await visibleFieldOrder()).to.deep.equal(
      ['name', 'cloud', 'authorityHost', 'graphBaseUrl', 'portalUrl', 'tls', 'tenantId', 'clientId', 'authType', 'clientSecret', 'useProxy'],
    );
    await field('authType').selectOption('certificate');
    expect(await visibleFieldOrder()).to.deep.equal(
      ['name', 'cloud', 'authorityHost', 'graphBaseUrl', 'portalUrl', 'tls', 'tenantId', 'clientId', 'authType', 'passphrase', 'useProxy'],
    );
    expect(await ed!.page.locator('label[for="node-config-input-pfxfile"]').isVisible(), 'upload button').to.equal(true);
    await certBox().filter({ hasText: en('cert.none') }).waitFor({ state: 'visible', timeout: 5000 });
    await field('authType').selectOption('secret');
    await field('cloud').selectOption('global');
    expect(await visibleFieldOrder()).to.deep.equal(['name', 'cloud', 'tenantId', 'clientId', 'authType', 'clientSecret', 'useProxy']);
    // Secrets are masked.
    expect(await field('clientSecret').getAttribute('type')).to.equal('password');
    await ed!.screenshotTray('dialog-intune-config-secret-global');
  });

  it('validates the tenant and client id as they are typed, with the reason on hover', async () => {
    const tenant = field('tenantId');
    await tenant.fill('');
    await tenant.pressSequentially('common');
    expect(await tenant.getAttribute('class') ?? '').to.include('input-error');
    await tenant.hover();
    const tip = ed!.page.locator('.red-ui-popover').filter({ hasText: 'common' }).first();
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    expect(squash(await tip.innerText())).to.equal(en('validation.tenantIdMultiTenant', { value: 'common' }));
    await tenant.fill('');
    await tenant.pressSequentially(stack.env.tenantId);
    expect(await tenant.getAttribute('class') ?? '').to.not.include('input-error');

    const client = field('clientId');
    await client.pressSequentially('1234');
    expect(await client.getAttribute('class') ?? '').to.include('input-error');
    await client.fill('');
    await client.pressSequentially(stack.env.secretApp.clientId);
    expect(await client.getAttribute('class') ?? '').to.not.include('input-error');
    await ed!.page.mouse.move(5, 5);
  });

  it('Verify with a wrong client secret: progress, then what is wrong in plain words', async () => {
    await fillSimEndpoints();
    await field('clientId').fill(stack.env.secretApp.clientId);
    await field('clientSecret').fill('not-the-secret');
    const r = await verify();
    expect(r.seen[0], 'progress shown while verifying').to.equal(en('verify.running'));
    expect(r.cls).to.include('is-error');
    expect(r.text).to.include(en('verify.wrongSecret'));
    await ed!.screenshotTray('dialog-intune-config-verify-wrong-secret');
  });

  it('Verify with the right secret: connected, with the tenant and its device count', async () => {
    await field('clientSecret').fill(stack.env.secretApp.secret);
    expect(await verifyBox().isVisible(), 'a changed field hides the old answer').to.equal(false);
    const r = await verify();
    expect(r.cls).to.include('is-ok');
    expect(r.text).to.include(en('verify.ok', { tenantId: stack.env.tenantId, deviceCount: number(TENANT_DEVICES, 'en-US') }));
    expect(r.text).to.include('DeviceManagementManagedDevices.Read.All');
    expect(r.text, 'the secret is never shown').to.not.include(stack.env.secretApp.secret);
    await ed!.screenshotTray('dialog-intune-config-verify-ok');
  });

  it('certificate: the uploaded .pfx shows its file name, subject and expiry', async () => {
    const cert = stack.env.certApp.cert;
    await field('clientId').fill(stack.env.certApp.clientId);
    await field('authType').selectOption('certificate');
    await field('passphrase').fill(cert.password);
    await ed!.page.locator('#node-config-input-pfxfile').setInputFiles({
      name: 'intune-connector-e2e.pfx',
      mimeType: 'application/x-pkcs12',
      buffer: Buffer.from(cert.pfxBase64, 'base64'),
    });
    await ed!.page.waitForFunction(() => /is-(ok|warning|error)/.test(document.getElementById('intune-config-cert-info')!.className));
    expect(await certBox().getAttribute('class')).to.include('is-ok');
    expect(squash(await ed!.page.locator('#intune-config-pfx-filename').innerText())).to.equal('intune-connector-e2e.pfx');
    const kv = await certBox().locator('.intune-config-kv > div').allInnerTexts();
    const pairs: Record<string, string> = {};
    for (let i = 0; i + 1 < kv.length; i += 2) pairs[squash(kv[i])] = squash(kv[i + 1]);
    expect(pairs[en('cert.file')]).to.equal('intune-connector-e2e.pfx');
    expect(pairs[en('cert.subject')]).to.equal(cert.subject);
    const days = Math.floor((cert.notAfter.getTime() - Date.now()) / 86_400_000);
    expect(pairs[en('cert.expires')]).to.equal(en('cert.validUntil', { date: longDate(cert.notAfter, 'en-US'), days: number(days, 'en-US') }));
    expect(pairs[en('cert.thumbprintSha1')]).to.equal(cert.thumbprintSha1Hex);
    await ed!.screenshotTray('dialog-intune-config-certificate');
  });

  it('certificate: a wrong password is named as such, and the right one verifies', async () => {
    await field('passphrase').fill('wrong-password');
    await ed!.page.waitForFunction(() => document.getElementById('intune-config-cert-info')!.className.includes('is-error'), undefined, { timeout: 10_000 });
    expect(squash(await certBox().innerText())).to.include(en('reason.wrongPassword'));
    await field('passphrase').fill(stack.env.certApp.cert.password);
    await ed!.page.waitForFunction(() => document.getElementById('intune-config-cert-info')!.className.includes('is-ok'), undefined, { timeout: 10_000 });
    const r = await verify();
    expect(r.cls).to.include('is-ok');
    expect(r.text).to.include(en('verify.ok', { tenantId: stack.env.tenantId, deviceCount: number(TENANT_DEVICES, 'en-US') }));
  });

  it('once deployed, the .pfx and its password stay on the server; the dialog shows the stored file', async () => {
    await field('name').fill('sim certificate');
    await ed!.configDone();
    await ed!.dialogDone();
    await ed!.deploy();
    const cfgId = (await ed!.idsOfType('intune-config'))[0];
    expect(cfgId, 'config node').to.be.a('string');
    // Open it again, as a user checking what is stored.
    credentialResponses.length = 0;
    await ed!.openNode(hostId);
    await ed!.editConfigFrom('intune');
    expect(squash(await ed!.page.locator('#intune-config-pfx-filename').innerText())).to.equal('intune-connector-e2e.pfx');
    expect(await field('passphrase').getAttribute('type')).to.equal('password');
    await ed!.page.waitForFunction(() => /is-(ok|warning|error)/.test(document.getElementById('intune-config-cert-info')!.className));
    expect(await certBox().getAttribute('class'), 'the stored certificate is checked on the server').to.include('is-ok');
    await ed!.screenshotTray('dialog-intune-config-stored-certificate');
    const sent = credentialResponses.join('\n');
    expect(credentialResponses.length, 'the editor fetched the credentials').to.be.greaterThan(0);
    expect(sent, 'pfx sent to the browser').to.not.include(stack.env.certApp.cert.pfxBase64.slice(0, 64));
    expect(sent, 'pfx password sent to the browser').to.not.include(stack.env.certApp.cert.password);
    await ed!.closeAllDialogs();
  });

  it('a saved certificate goes only to its saved endpoint: another Graph URL asks for it again, next to Verify', async () => {
    await ed!.openNode(hostId);
    await ed!.editConfigFrom('intune');
    await field('graphBaseUrl').fill('https://127.0.0.1:9');
    const r = await verify();
    expect(r.cls).to.include('is-error');
    expect(r.text).to.include(
      en('verify.savedSecretOtherEndpoint', { field: en('label.pfx'), endpoint: `${stack.env.identity.url}/${stack.env.tenantId.toLowerCase()} + ${stack.env.graph.url}` }),
    );
    await ed!.screenshotTray('dialog-intune-config-saved-secret-other-endpoint');
    await ed!.closeAllDialogs();
  });

  it('PEM: certificate and encrypted key upload, each part checked, and the pair verifies', async () => {
    const cert = stack.env.certApp.cert;
    const keyPem = crypto.createPrivateKey(cert.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pem-pass-7' }).toString();
    await ed!.openNode(hostId);
    await ed!.editConfigFrom('intune');
    await field('authType').selectOption('certificatePem');
    expect(await visibleFieldOrder()).to.include.members(['keyPassphrase']);
    await ed!.page.locator('#node-config-input-certificatefile').setInputFiles({ name: 'connector.crt', mimeType: 'application/x-pem-file', buffer: Buffer.from(cert.certPem) });
    await ed!.page.locator('#node-config-input-keyfile').setInputFiles({ name: 'connector.key', mimeType: 'application/x-pem-file', buffer: Buffer.from(keyPem) });
    // The box is already red after the certificate alone (no key yet): wait for the key's own verdict, not the colour.
    const needsPassphrase = en('reason.passphraseRequired');
    await ed!.page
      .waitForFunction(
        (want) => {
          const box = document.getElementById('intune-config-cert-info')!;
          return box.className.includes('is-error') && box.innerText.replace(/\s+/g, ' ').includes(want);
        },
        needsPassphrase,
        { timeout: 10_000 },
      )
      .catch(() => undefined);
    expect(squash(await certBox().innerText())).to.include(needsPassphrase);
    await field('keyPassphrase').fill('wrong');
    await ed!.page.waitForFunction(() => /wrong passphrase/i.test(document.getElementById('intune-config-cert-info')!.innerText), undefined, { timeout: 10_000 });
    await field('keyPassphrase').fill('pem-pass-7');
    await ed!.page.waitForFunction(() => document.getElementById('intune-config-cert-info')!.className.includes('is-ok'), undefined, { timeout: 10_000 });
    expect(squash(await ed!.page.locator('#intune-config-certificate-filename').innerText())).to.equal('connector.crt');
    expect(squash(await certBox().innerText())).to.include(cert.subject);
    const r = await verify();
    expect(r.cls).to.include('is-ok');
    expect(r.text).to.include(en('verify.ok', { tenantId: stack.env.tenantId, deviceCount: number(TENANT_DEVICES, 'en-US') }));
    await ed!.screenshotTray('dialog-intune-config-pem');
    await ed!.closeAllDialogs();
  });
});
