/**
 * A network that is left only through an HTTP proxy: a real proxy server
 * (Debian's tinyproxy, with Basic authentication) on loopback between the
 * connector and the simulated Entra ID, Graph, 4me and SICS. What went
 * through the proxy is read from the proxy's own log, not from our code.
 * The shipped examples run as they are, with only their connections pointed
 * at the sims and at the proxy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim } from '../sim/fourme';
import { distNode, helper, loadFlow, loggedText, repoRoot, tlsNode } from './support/node-helper';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';
import { startAcmpEnv, SICS_USER, SICS_PASSWORD, until, type AcmpEnv } from './support/acmp-fixtures';
import { startTinyproxy, type Tinyproxy } from './support/tinyproxy';

type Node = Record<string, unknown> & { id: string; type: string };
type Msg = Record<string, any>;

const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// Node-RED's core `http proxy` configuration node, as users pick it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const httpProxyNode = require(require.resolve('@node-red/nodes/core/network/06-httpproxy.js', { paths: [nodeRedDir] }));
const NODES = ['intune-config', 'intune-devices', 'intune-4me-config', 'intune-4me', 'intune-acmp-config', 'intune-acmp'].map(distNode);
const PAT = 'pat-proxy-0123456789abcdef';
const CA = 'proxy-sim-ca';
const PX = 'corp-proxy';
const AUTH = { user: 'svc-intune', password: 'Pr0xy-pass_2026' };
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'npm_config_proxy', 'npm_config_https_proxy', 'npm_config_http_proxy', 'npm_config_no_proxy'];

function example(name: string): Node[] {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', `${name}.json`), 'utf8')) as Node[];
}

const portOf = (url: string) => new URL(url).port;

describe('corporate HTTP proxy (tinyproxy on loopback)', function () {
  this.timeout(120_000);
  let sim: SimEnv;
  let fourme: FourMeSim;
  let acmp: AcmpEnv;
  let proxy: Tinyproxy;
  let port443Only: Tinyproxy;
  const savedEnv: Record<string, string | undefined> = {};
  /** Proxy URL with the right credentials, for the environment. */
  let envProxy: string;

  before(async () => {
    for (const k of PROXY_VARS) {
      savedEnv[k] = process.env[k];
      delete process.env[k];
    }
    sim = await startSimEnv({ devices: 120, seed: 7 });
    fourme = new FourMeSim({ tls: sharedTestCa().server, accounts: [{ id: 'contoso', name: 'Contoso' }], personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }] });
    await fourme.start();
    acmp = await startAcmpEnv({ servers: 1 });
    proxy = await startTinyproxy({ auth: AUTH });
    // A proxy as strict as many corporate ones: CONNECT only to port 443.
    port443Only = await startTinyproxy({ connectPorts: [443] });
    envProxy = `http://${encodeURIComponent(AUTH.user)}:${encodeURIComponent(AUTH.password)}@127.0.0.1:${proxy.port}`;
  });
  after(async () => {
    await helper.unload();
    for (const k of PROXY_VARS) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
    await Promise.all([proxy?.stop(), port443Only?.stop(), fourme?.stop(), acmp?.stop(), sim?.stop()]);
  });
  afterEach(async () => {
    await helper.unload();
    for (const k of PROXY_VARS) delete process.env[k];
  });

  /**
   * Loads an example with its connections pointed at the sims; `proxyNode`
   * adds a core http proxy node that every connection picks.
   */
  async function deploy(name: string, o: { proxyNode?: { url: string; noproxy?: string[]; username?: string; password?: string }; sicsPlainHttp?: boolean } = {}) {
    const nodes = example(name);
    const intune = configFlow(sim).nodes[1];
    const credentials: Record<string, Record<string, unknown>> = {};
    const injects = new Map<string, { target: string; msg: Msg }>();
    const flow: Node[] = [{ id: CA, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: sim.caFile, verifyservercert: true }];
    const proxyProp = o.proxyNode ? { proxy: PX } : {};
    if (o.proxyNode) {
      flow.push({ id: PX, type: 'http proxy', name: 'corporate proxy', url: o.proxyNode.url, noproxy: o.proxyNode.noproxy ?? [] });
      credentials[PX] = { username: o.proxyNode.username ?? '', password: o.proxyNode.password ?? '' };
    }
    const tab = nodes.find((n) => n.type === 'tab')!.id;
    flow.push({ id: 'catch-all', type: 'catch', z: tab, scope: null, uncaught: false, wires: [['caught']] }, { id: 'caught', type: 'helper', z: tab });
    for (const n of nodes) {
      switch (n.type) {
        case 'comment':
          break;
        case 'inject': {
          const msg: Msg = {};
          for (const p of n.props as Array<{ p: string; v: string; vt: string }>) msg[p.p] = p.v;
          injects.set(n.name as string, { target: (n.wires as string[][])[0][0], msg });
          break;
        }
        case 'debug':
          flow.push({ id: n.id, type: 'helper', z: n.z as string });
          break;
        case 'intune-config':
          flow.push({ ...n, ...pick(intune, ['tenantId', 'clientId', 'cloud', 'authorityHost', 'graphBaseUrl', 'portalUrl']), tls: CA, ...proxyProp });
          credentials[n.id] = { clientSecret: sim.secretApp.secret };
          break;
        case 'intune-4me-config':
          flow.push({ ...n, environment: 'custom', graphqlUrl: fourme.graphqlUrl, tokenUrl: fourme.tokenUrl, tls: CA, asyncPollMs: 50, ...proxyProp });
          credentials[n.id] = { token: PAT };
          break;
        case 'intune-acmp-config':
          flow.push({ ...n, host: '127.0.0.1', port: acmp.sics.port, tls: CA, consumeWaitMs: 500, ...(o.sicsPlainHttp ? { useTls: false, tls: '' } : {}), ...proxyProp });
          credentials[n.id] = { user: SICS_USER, password: SICS_PASSWORD };
          break;
        default:
          flow.push(n);
      }
    }
    await loadFlow([tlsNode, httpProxyNode, ...NODES], flow, credentials);
    const seen = new Map<string, Msg[]>();
    for (const n of nodes.filter((x) => x.type === 'debug')) {
      const list: Msg[] = [];
      seen.set(n.name as string, list);
      (helper.getNode(n.id) as unknown as { on(e: string, f: (m: Msg) => void): void }).on('input', (m) => list.push(m));
    }
    const caught: Msg[] = [];
    (helper.getNode('caught') as unknown as { on(e: string, f: (m: Msg) => void): void }).on('input', (m) => caught.push(m));
    return {
      caught,
      debug: (label: string) => seen.get(label) ?? expect.fail(`no debug node "${label}" in ${name}`),
      press: (label: string) => {
        const i = injects.get(label) ?? expect.fail(`no inject node "${label}" in ${name}`);
        (helper.getNode(i.target) as unknown as { receive(m: Msg): void }).receive({ ...i.msg });
      },
    };
  }

  const cis = () => fourme.account('contoso').configurationItems.filter((c) => c.source === 'Intune').length;

  it('HTTPS_PROXY (with user and password): a full device run to 4me tunnels sign-in, Graph and 4me through the proxy', async () => {
    process.env.HTTPS_PROXY = envProxy;
    const before = proxy.connects().length;
    const ex = await deploy('4me - devices to configuration items');
    ex.press('full run');
    const [summary] = (await until(() => (ex.debug('4me run summary').length ? ex.debug('4me run summary') : undefined), 90_000, 'the 4me run summary'))!;
    const [devices] = ex.debug('device run summary');
    expect(devices.payload.result, JSON.stringify(ex.caught.map((m) => m.error?.message))).to.equal('completed');
    expect(summary.payload.errorCount, JSON.stringify(summary.payload.errors)).to.equal(0);
    expect(summary.payload.cis.created).to.equal(devices.payload.stats.emitted);
    expect(cis()).to.equal(devices.payload.stats.emitted);
    const ports = new Set(proxy.connects().slice(before).map((c) => c.split(':').pop()));
    expect([...ports].sort(), "CONNECT targets in the proxy's log").to.deep.equal([portOf(sim.identity.url), portOf(sim.graph.url), portOf(fourme.graphqlUrl)].sort());
    expect(loggedText(), 'Node-RED log').to.not.include(AUTH.password);
  });

  it('NO_PROXY sends the listed host:port direct and the rest through the proxy', async () => {
    process.env.HTTPS_PROXY = envProxy;
    process.env.no_proxy = `127.0.0.1:${portOf(sim.graph.url)}`;
    const before = proxy.connects().length;
    const graphBefore = sim.graph.stats.requests;
    const ex = await deploy('4me - devices to configuration items');
    ex.press('full run');
    await until(() => (ex.debug('4me run summary').length ? true : undefined), 90_000, 'the 4me run summary');
    const [devices] = ex.debug('device run summary');
    expect(devices.payload.result, JSON.stringify(ex.caught.map((m) => m.error?.message))).to.equal('completed');
    expect(sim.graph.stats.requests - graphBefore, 'Graph requests (direct)').to.be.greaterThan(0);
    const ports = new Set(proxy.connects().slice(before).map((c) => c.split(':').pop()));
    expect(ports.has(portOf(sim.graph.url)), 'Graph through the proxy').to.equal(false);
    expect(ports.has(portOf(sim.identity.url)), 'sign-in through the proxy').to.equal(true);
    expect(ports.has(portOf(fourme.graphqlUrl)), '4me through the proxy').to.equal(true);
  });

  it('the http proxy node (user and password) wins over the environment: a full device run to ACMP, SICS over plain HTTP', async () => {
    // The environment names a proxy that does not exist: only the node's proxy can work.
    process.env.HTTPS_PROXY = 'http://127.0.0.1:9';
    process.env.HTTP_PROXY = 'http://127.0.0.1:9';
    const before = proxy.connects().length;
    const srv = acmp.servers[0];
    const ex = await deploy('ACMP - devices to ACMP', { proxyNode: { url: proxy.url, username: AUTH.user, password: AUTH.password }, sicsPlainHttp: true });
    ex.press('full run');
    const [devices] = (await until(() => (ex.debug('device run summary').length ? ex.debug('device run summary') : undefined), 90_000, 'the device run summary'))!;
    const reports = (await until(() => {
      const r = ex.debug('ACMP report');
      return r.length && r[r.length - 1].payload.last ? r : undefined;
    }, 90_000, 'the last ACMP report'))!;
    expect(devices.payload.result, JSON.stringify(ex.caught.map((m) => m.error?.message))).to.equal('completed');
    expect(reports.every((r) => r.payload.servers.every((s: Msg) => s.failed === 0))).to.equal(true);
    expect(srv.storedDevices().length).to.equal(devices.payload.stats.emitted);
    const ports = new Set(proxy.connects().slice(before).map((c) => c.split(':').pop()));
    expect([...ports].sort(), "CONNECT targets in the proxy's log").to.deep.equal([portOf(sim.identity.url), portOf(sim.graph.url), String(acmp.sics.port)].sort());
    expect(acmp.sics.stats.plainConnections, 'SICS reached over plain HTTP').to.be.greaterThan(0);
  });

  it('a wrong proxy password: the run fails saying so, and nothing is written to 4me', async () => {
    const cisBefore = cis();
    const fourmeBefore = fourme.stats.requests;
    const ex = await deploy('4me - devices to configuration items', { proxyNode: { url: proxy.url, username: AUTH.user, password: 'wrong-password' } });
    ex.press('full run');
    const [devices] = (await until(() => (ex.debug('device run summary').length ? ex.debug('device run summary') : undefined), 60_000, 'the device run summary'))!;
    expect(devices.payload.result).to.not.equal('completed');
    const messages = ex.caught.map((m) => String(m.error?.message));
    expect(messages.length, 'errors caught').to.be.greaterThan(0);
    // tinyproxy answers a wrong password with 401 (407 when none is sent).
    expect(messages.join('\n')).to.match(new RegExp(`proxy 127\\.0\\.0\\.1:${proxy.port} asks for authentication \\(HTTP 401\\): check the user and password`));
    await new Promise((r) => setTimeout(r, 500));
    expect(cis(), 'CIs in 4me').to.equal(cisBefore);
    expect(fourme.stats.requests, 'requests that reached 4me').to.equal(fourmeBefore);
    expect(proxy.log()).to.match(/407|[Aa]uth/);
    expect(loggedText()).to.not.include('wrong-password');
  });

  describe('"Verify connection" names the proxy as the problem', () => {
    async function deployConfigs(proxyNode: { url: string; username?: string; password?: string }) {
      const intune = configFlow(sim).nodes[1];
      const flow = [
        { id: CA, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: sim.caFile, verifyservercert: true },
        { id: PX, type: 'http proxy', name: 'corporate proxy', url: proxyNode.url, noproxy: [] },
      ];
      await loadFlow([tlsNode, httpProxyNode, ...NODES], flow, { [PX]: { username: proxyNode.username ?? '', password: proxyNode.password ?? '' } });
      return {
        intune: { ...intune, tls: CA, proxy: PX, credentials: { clientSecret: sim.secretApp.secret } },
        fourme: { accountId: 'contoso', environment: 'custom', region: 'global', brand: '4me', graphqlUrl: fourme.graphqlUrl, tokenUrl: fourme.tokenUrl, tls: CA, authType: 'token', proxy: PX, credentials: { token: PAT } },
        acmp: {
          host: '127.0.0.1',
          port: acmp.sics.port,
          useTls: true,
          tls: CA,
          allowUnencrypted: false,
          timeoutSec: 10,
          replyVirtualRouter: 'IntuneConnector',
          servers: acmp.servers.slice(0, 1).map((s) => s.route),
          proxy: PX,
          credentials: { user: SICS_USER, password: SICS_PASSWORD },
        },
      };
    }

    async function verifyAll(forms: Awaited<ReturnType<typeof deployConfigs>>) {
      const out: Record<string, { code: string; message: string; params: Record<string, unknown> }> = {};
      out.intune = (await helper.request().post('/intune-config/verify').send(forms.intune).expect(200)).body;
      out.fourme = (await helper.request().post('/intune-4me-config/verify').send(forms.fourme).expect(200)).body;
      out.acmp = (await helper.request().post('/intune-acmp-config/verify').send(forms.acmp).expect(200)).body;
      return out;
    }

    it('all three pass through the proxy with the right password', async () => {
      const answers = await verifyAll(await deployConfigs({ url: proxy.url, username: AUTH.user, password: AUTH.password }));
      expect(answers.intune.code, answers.intune.message).to.equal('ok');
      expect(answers.fourme.code, answers.fourme.message).to.equal('ok');
      // The SICS sign-in got through; the ACMP server may or may not answer the verify ping here.
      expect(answers.acmp.code, answers.acmp.message).to.be.oneOf(['ok', 'serverUnanswered']);
      expect(JSON.stringify(answers), 'verify answers').to.not.include(AUTH.password);
    });

    it('407: no user and password for a proxy that needs them', async () => {
      const answers = await verifyAll(await deployConfigs({ url: proxy.url }));
      for (const [which, a] of Object.entries(answers)) {
        expect(a.code, `${which}: ${a.message}`).to.equal('proxyAuth');
        expect(a.message, which).to.match(/asks for authentication \(HTTP 407\)/);
        expect(a.params.reason, which).to.equal('407');
      }
    });

    it('wrong proxy password (tinyproxy answers 401 to the CONNECT)', async () => {
      const answers = await verifyAll(await deployConfigs({ url: proxy.url, username: AUTH.user, password: 'not-the-password' }));
      for (const [which, a] of Object.entries(answers)) {
        expect(a.code, `${which}: ${a.message}`).to.equal('proxyAuth');
        expect(a.message, which).to.match(/asks for authentication \(HTTP 401\)/);
        expect(a.params.proxy, which).to.equal(`127.0.0.1:${proxy.port}`);
        expect(JSON.stringify(a), which).to.not.include('not-the-password');
      }
    });

    it('proxy unreachable', async () => {
      const answers = await verifyAll(await deployConfigs({ url: 'http://127.0.0.1:9' }));
      for (const [which, a] of Object.entries(answers)) {
        expect(a.code, `${which}: ${a.message}`).to.equal('proxyUnreachable');
        expect(a.message, which).to.match(/The proxy 127\.0\.0\.1:9 cannot be reached \(ECONNREFUSED\)/);
      }
    });

    it('refused CONNECT (the proxy allows port 443 only)', async () => {
      const answers = await verifyAll(await deployConfigs({ url: port443Only.url }));
      for (const [which, a] of Object.entries(answers)) {
        expect(a.code, `${which}: ${a.message}`).to.equal('proxyRefused');
        expect(a.message, which).to.match(new RegExp(`The proxy 127\\.0\\.0\\.1:${port443Only.port} refused the connection to 127\\.0\\.0\\.1:\\d+ \\(HTTP 403\\)`));
      }
    });

    it('the TLS trust settings still apply to the server behind the proxy', async () => {
      const forms = await deployConfigs({ url: proxy.url, username: AUTH.user, password: AUTH.password });
      const before = proxy.connects().length;
      const res = await helper.request().post('/intune-config/verify').send({ ...forms.intune, tls: '' }).expect(200);
      expect(res.body.code, res.body.message).to.equal('tlsError');
      expect(proxy.connects().length, 'the tunnel was opened').to.be.greaterThan(before);
    });

    it('an http proxy node that is not deployed is named, not silently skipped', async () => {
      const forms = await deployConfigs({ url: proxy.url });
      const res = await helper.request().post('/intune-4me-config/verify').send({ ...forms.fourme, proxy: 'not-deployed' }).expect(200);
      expect(res.body.code).to.equal('proxyConfig');
      expect(res.body.message).to.match(/proxy configuration is not deployed/);
    });

    it('every new answer code has a text in English and German', () => {
      for (const ns of ['intune-config', 'intune-4me-config', 'intune-acmp-config']) {
        for (const lang of ['en-US', 'de']) {
          const cat = JSON.parse(fs.readFileSync(path.join(repoRoot, 'locales', lang, `${ns}.json`), 'utf8'));
          for (const code of ['proxyUnreachable', 'proxyAuth', 'proxyRefused', 'proxyConfig']) {
            expect(cat[ns]?.verify?.[code] ?? cat.verify?.[code], `${lang}/${ns}.json verify.${code}`).to.be.a('string').and.not.equal('');
          }
        }
      }
    });
  });
});

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}
