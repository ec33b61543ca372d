/**
 * The "Use proxy" field of the intune-config dialog in a real browser:
 * hidden until ticked, then Node-RED's http proxy configurations to pick
 * from, and "Verify connection" going through a real proxy (Debian's
 * tinyproxy with Basic authentication on loopback) to the simulated tenant,
 * naming the proxy when its password is wrong, in English and German.
 */
import { expect } from 'chai';
import { browserStack, onFailure, FLOW_TAB, TLS_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { text, type Lang } from './support/catalog';
import { pressVerify } from './support/verify';
import { startTinyproxy, type Tinyproxy } from '../support/tinyproxy';

const T = 'intune-config';
const tr = (lang: Lang, key: string, params?: Record<string, string | number>) => text(T, lang, `${T}.${key}`, params);
const AUTH = { user: 'svc-browser', password: 'Browser-proxy-2026' };

describe('browser: intune-config "Use proxy" through a real proxy', function () {
  this.timeout(90_000);
  let stack: Stack;
  let proxy: Tinyproxy;
  let ed: Editor | undefined;
  onFailure(() => ed);

  const field = (prop: string) => ed!.page.locator(`#node-config-input-${prop}`);
  const port = (url: string) => new URL(url).port;

  before(async () => {
    stack = await browserStack();
    proxy = await startTinyproxy({ auth: AUTH });
    // Two deployed http proxy configurations (global, as the editor creates them): one with the right password.
    const flows = [
      { id: FLOW_TAB, type: 'tab', label: 'Intune', disabled: false, info: '' },
      { id: TLS_ID, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: stack.env.caFile, verifyservercert: true },
      { id: 'px-good', type: 'http proxy', name: 'corp proxy', url: proxy.url, noproxy: [], credentials: { username: AUTH.user, password: AUTH.password } },
      { id: 'px-bad', type: 'http proxy', name: 'corp proxy, old password', url: proxy.url, noproxy: [], credentials: { username: AUTH.user, password: 'old-password' } },
    ];
    const mark = stack.red.mark();
    const res = await stack.red.admin.post('/flows', { flows }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
    expect(res.status, JSON.stringify(res.data)).to.equal(200);
    await stack.red.waitForLog(/Started flows/, 30_000, mark);
  });
  after(async () => {
    await ed?.close();
    await proxy?.stop();
  });

  for (const lang of ['en-US', 'de'] as Lang[]) {
    it(`${lang}: the proxy select shows only with "Use proxy"; Verify names a wrong proxy password, then passes through the proxy`, async () => {
      ed = await stack.editor({ language: lang });
      const host = await ed.addFromPalette('intune-devices', { x: 300, y: 100 });
      await ed.openNode(host);
      await ed.addConfigFrom('intune');
      await field('cloud').selectOption('custom');
      await field('authorityHost').fill(stack.env.identity.url);
      await field('graphBaseUrl').fill(stack.env.graph.url);
      await field('tls').selectOption(TLS_ID);
      await field('tenantId').fill(stack.env.tenantId);
      await field('clientId').fill(stack.env.secretApp.clientId);
      await field('clientSecret').fill(stack.env.secretApp.secret);

      expect(await ed.page.locator('#intune-config-proxy-row').isVisible(), 'proxy select before ticking').to.equal(false);
      await field('useProxy').check();
      expect(await field('proxy').isVisible(), 'proxy select after ticking').to.equal(true);

      await field('proxy').selectOption('px-bad');
      const verify = () => pressVerify(ed!, '#intune-config-verify', '#intune-config-verify-result', '.intune-config-line');
      const bad = await verify();
      expect(bad.kind).to.equal('error');
      expect(bad.text).to.include(tr(lang, 'verify.proxyAuth', { proxy: `127.0.0.1:${proxy.port}`, reason: '401' }));
      expect(bad.text).to.not.include('old-password');

      const before = proxy.connects().length;
      await field('proxy').selectOption('px-good');
      const good = await verify();
      expect(good.kind, good.text).to.equal('ok');
      const ports = new Set(proxy.connects().slice(before).map((c) => c.split(':').pop()));
      expect([...ports].sort(), "CONNECTs in the proxy's log").to.deep.equal([port(stack.env.identity.url), port(stack.env.graph.url)].sort());
      expect(good.text).to.not.include(AUTH.password);
      await ed.closeAllDialogs();
      await ed.close();
      ed = undefined;
    });
  }
});
