/**
 * No admin endpoint of the package hands a saved secret to a host the caller
 * names. A capturing endpoint (HTTPS and HTTP on 127.0.0.1, trusted through
 * the deployed TLS configuration, recording everything it receives) stands
 * in for the caller's host; every admin endpoint is called with the id of a
 * deployed node and that foreign endpoint. The capture must receive nothing
 * secret: no client secret, no assertion signed with the saved key, no
 * bearer token, no 4me token, no SICS password.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { helper, distNode, tlsNode, loadFlow } from './support/node-helper';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';
import { makeClientCertificate, sharedTestCa } from '../sim/pki';

const NODES = ['intune-config', 'intune-devices', 'intune-compliance', 'intune-4me-config', 'intune-acmp-config'].map(distNode);
const PWRD = '__PWRD__';
const FOURME_TOKEN = `pat-${crypto.randomBytes(12).toString('hex')}`;
const FOURME_SECRET = `oauth-${crypto.randomBytes(12).toString('hex')}`;
const SICS_PASSWORD = `sics-${crypto.randomBytes(12).toString('hex')}`;
const ENV_SECRET = `env-${crypto.randomBytes(12).toString('hex')}`;

interface Captured {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A server that answers 404 to everything and keeps what it received. */
class Capture {
  readonly requests: Captured[] = [];
  private server!: http.Server;
  url = '';
  port = 0;

  async start(tls: boolean): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
      });
    };
    const pki = sharedTestCa();
    this.server = tls ? https.createServer({ key: pki.server.keyPem, cert: pki.server.certPem }, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    return this;
  }

  text(): string {
    return JSON.stringify(this.requests);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('admin endpoints keep saved secrets (capturing endpoint)', function () {
  this.timeout(30_000);
  let env: SimEnv;
  let capture: Capture; // the caller's host, HTTPS
  let plain: Capture; // the caller's host, plain HTTP
  let home4me: Capture; // the 4me endpoint the connection was saved with
  let homeSics: Capture; // the SICS endpoint the connection was saved with
  let caFile: string;

  before(async () => {
    env = await startSimEnv({ devices: 5, seed: 3 });
    capture = await new Capture().start(true);
    plain = await new Capture().start(false);
    home4me = await new Capture().start(true);
    homeSics = await new Capture().start(true);
    caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'admin-secrets-')), 'ca.pem');
    fs.writeFileSync(caFile, sharedTestCa().certPem);
  });
  after(async () => {
    await Promise.all([env?.stop(), capture?.stop(), plain?.stop(), home4me?.stop(), homeSics?.stop()]);
  });
  beforeEach(async () => {
    for (const c of [capture, plain, home4me, homeSics]) c.requests.length = 0;
    const intune = configFlow(env, { id: 'cfgSecret' });
    const cert = configFlow(env, { id: 'cfgCert', auth: 'certificate' });
    const flow = [
      ...intune.nodes,
      ...cert.nodes,
      { id: 'tls4me', type: 'tls-config', name: 'CA', cert: '', key: '', ca: caFile, verifyservercert: true },
      fourmeProps('cfg4me', { authType: 'token' }),
      fourmeProps('cfg4meOauth', { authType: 'oauth', clientId: 'connector' }),
      sicsProps(),
      { id: 'f1', type: 'tab', label: 'users' },
      { id: 'dev', type: 'intune-devices', z: 'f1', intune: 'cfgSecret', fullEveryHours: 0, incrementalEveryMinutes: 0, wires: [[], []] },
      { id: 'cmp', type: 'intune-compliance', z: 'f1', intune: 'cfgSecret', everyMinutes: 0, wires: [[], []] },
    ];
    await loadFlow([tlsNode, ...NODES], flow, {
      ...intune.credentials,
      ...cert.credentials,
      cfg4me: { token: FOURME_TOKEN },
      cfg4meOauth: { clientSecret: FOURME_SECRET },
      cfgSics: { user: 'intune', password: SICS_PASSWORD },
    });
  });
  afterEach(async () => {
    await helper.unload();
    delete process.env.ADMIN_SECRETS_TEST;
  });

  function fourmeProps(id: string, o: Record<string, unknown>) {
    return {
      id,
      type: 'intune-4me-config',
      accountId: 'acme',
      environment: 'custom',
      region: 'global',
      brand: '4me',
      graphqlUrl: `${home4me.url}/graphql`,
      tokenUrl: `${home4me.url}/token`,
      tls: 'tls4me',
      clientId: '',
      ...o,
    };
  }

  function sicsProps() {
    return { id: 'cfgSics', type: 'intune-acmp-config', host: '127.0.0.1', port: homeSics.port, useTls: true, tls: 'tls4me', allowUnencrypted: false, timeoutSec: 3, servers: [] };
  }

  /** Every form of every secret the deployed nodes hold. */
  function savedSecrets(): string[] {
    const c = env.certApp.cert;
    return [env.secretApp.secret, c.password, c.pfxBase64.slice(0, 40), c.keyPem.split('\n')[1], FOURME_TOKEN, FOURME_SECRET, SICS_PASSWORD, ENV_SECRET];
  }

  /** Nothing reached the caller's hosts, and no answer carries a secret. */
  function expectNothingCaptured(answer: unknown) {
    expect(capture.requests, 'HTTPS capture').to.deep.equal([]);
    expect(plain.requests, 'HTTP capture').to.deep.equal([]);
    const text = JSON.stringify(answer);
    for (const s of savedSecrets()) expect(text, 'a secret in the answer').to.not.include(s);
  }

  async function post(url: string, body: Record<string, unknown>) {
    const res = await helper.request().post(url).send(body);
    expect(res.status, JSON.stringify(res.body)).to.be.oneOf([200, 400, 502]);
    return res.body as { ok: boolean; code: string; message: string; params: Record<string, unknown> };
  }

  function intuneForm(id: string, overrides: Record<string, unknown>, credentials: Record<string, unknown>) {
    const { nodes } = configFlow(env, { id, auth: id === 'cfgCert' ? 'certificate' : 'secret' });
    return { ...(nodes[1] as Record<string, unknown>), id, ...overrides, credentials };
  }

  describe('intune-config/verify', () => {
    for (const field of ['graphBaseUrl', 'authorityHost'] as const) {
      it(`client secret: the saved one does not go to a foreign ${field}`, async () => {
        const a = await post('/intune-config/verify', intuneForm('cfgSecret', { [field]: capture.url }, { clientSecret: PWRD }));
        expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'savedSecretOtherEndpoint', 'clientSecret']);
        expectNothingCaptured(a);
      });
    }

    it('certificate: no assertion signed with the saved key goes to a foreign authority', async () => {
      const a = await post('/intune-config/verify', intuneForm('cfgCert', { authorityHost: capture.url }, { pfx: undefined, passphrase: PWRD }));
      expect([a.ok, a.code, a.params.fields]).to.deep.equal([false, 'savedSecretOtherEndpoint', ['pfx', 'passphrase']]);
      expectNothingCaptured(a);
    });

    it('another tenant on the same authority is another endpoint', async () => {
      const a = await post('/intune-config/verify', intuneForm('cfgSecret', { tenantId: 'fabrikam.onmicrosoft.com' }, { clientSecret: PWRD }));
      expect(a.code).to.equal('savedSecretOtherEndpoint');
      expect(env.identity.tokenRequests.filter((r) => JSON.stringify(r).includes('fabrikam'))).to.deep.equal([]);
    });

    it('the saved endpoint still gets the saved secret (the capture would have seen it)', async () => {
      const a = await post('/intune-config/verify', intuneForm('cfgSecret', {}, { clientSecret: PWRD }));
      expect(a.code, a.message).to.equal('ok');
    });

    it('${NAME} is not read from the process environment for a caller, nor sent anywhere', async () => {
      process.env.ADMIN_SECRETS_TEST = ENV_SECRET;
      const whole = await post('/intune-config/verify', intuneForm('cfgSecret', { clientId: '${ADMIN_SECRETS_TEST}' }, { clientSecret: PWRD }));
      expect([whole.code, whole.params.field]).to.deep.equal(['envNotDeployed', 'clientId']);
      // Node-RED does not resolve embedded references either: whatever the form does, the value stays in the environment.
      const embedded = await post('/intune-config/verify', intuneForm('cfgSecret', { authorityHost: `${capture.url}/x\${ADMIN_SECRETS_TEST}` }, { clientSecret: 'typed-by-the-caller' }));
      expect(embedded.ok).to.equal(false);
      expect(capture.text()).to.not.include(ENV_SECRET);
      expect(JSON.stringify(embedded)).to.not.include(ENV_SECRET);
    });

    it('intune-config/certificate: the saved password never unlocks a file the caller sends', async () => {
      // A file encrypted with the saved password would open, had the saved password been used with it.
      const bait = makeClientCertificate({ password: env.certApp.cert.password });
      const a = await post('/intune-config/certificate', { id: 'cfgCert', pfx: bait.pfxBase64, passphrase: PWRD });
      expect(a.ok).to.equal(false);
      expect(a.params.reason).to.be.oneOf(['wrongPassword', 'notPfx']);
      expect(a.params.subject).to.equal(undefined);
      // The saved file with its saved password still opens.
      const b = await post('/intune-config/certificate', { id: 'cfgCert', passphrase: PWRD });
      expect(b.ok, b.message).to.equal(true);
      expectNothingCaptured([a, b]);
    });
  });

  describe('intune-4me-config/verify', () => {
    it('the saved token does not go to a foreign GraphQL URL', async () => {
      const a = await post('/intune-4me-config/verify', { ...fourmeProps('cfg4me', { authType: 'token', graphqlUrl: `${capture.url}/graphql` }), credentials: { token: PWRD } });
      expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'savedSecretOtherEndpoint', 'token']);
      expectNothingCaptured(a);
    });

    it('the saved OAuth client secret does not go to a foreign token URL', async () => {
      const a = await post('/intune-4me-config/verify', { ...fourmeProps('cfg4meOauth', { authType: 'oauth', clientId: 'connector', tokenUrl: `${capture.url}/token` }), credentials: { clientSecret: PWRD } });
      expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'savedSecretOtherEndpoint', 'clientSecret']);
      expectNothingCaptured(a);
    });

    it("another node type's secret is never taken (the Intune client secret under a 4me form)", async () => {
      const a = await post('/intune-4me-config/verify', {
        ...fourmeProps('cfgSecret', { authType: 'oauth', clientId: 'connector', graphqlUrl: `${capture.url}/graphql`, tokenUrl: `${capture.url}/token` }),
        credentials: { clientSecret: PWRD },
      });
      expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'invalidConfig', 'clientSecret']);
      expectNothingCaptured(a);
    });

    it('controls: the capture records a typed token, and the saved endpoint receives the saved one', async () => {
      await post('/intune-4me-config/verify', { ...fourmeProps('cfg4me', { authType: 'token', graphqlUrl: `${capture.url}/graphql` }), credentials: { token: 'typed-token-123' } });
      expect(capture.text()).to.include('typed-token-123');
      capture.requests.length = 0;
      await post('/intune-4me-config/verify', { ...fourmeProps('cfg4me', { authType: 'token' }), credentials: { token: PWRD } });
      expect(home4me.text()).to.include(FOURME_TOKEN);
      expect(capture.requests).to.deep.equal([]);
    });
  });

  describe('intune-4me-config/setup', () => {
    it('the saved token does not go to a foreign GraphQL URL, for the dry run or the confirmed set-up', async () => {
      for (const extra of [{}, { apply: true, planId: 'x' }]) {
        const a = await post('/intune-4me-config/setup', { ...fourmeProps('cfg4me', { authType: 'token', graphqlUrl: `${capture.url}/graphql` }), credentials: { token: PWRD }, ...extra });
        expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'savedSecretOtherEndpoint', 'token']);
        expectNothingCaptured(a);
      }
    });

    it('control: the saved endpoint receives the saved token, and the answer carries none', async () => {
      home4me.requests.length = 0;
      const a = await post('/intune-4me-config/setup', { ...fourmeProps('cfg4me', { authType: 'token' }), credentials: { token: PWRD } });
      expect(home4me.text()).to.include(FOURME_TOKEN);
      expect(JSON.stringify(a)).to.not.include(FOURME_TOKEN);
      expect(capture.requests).to.deep.equal([]);
    });
  });

  describe('intune-acmp-config/verify', () => {
    it('the saved SICS password does not go to another host or port', async () => {
      const a = await post('/intune-acmp-config/verify', { ...sicsProps(), port: capture.port, credentials: { user: 'intune', password: PWRD } });
      expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'savedSecretOtherEndpoint', 'password']);
      expectNothingCaptured(a);
    });

    it('nor over plain HTTP to the saved host, nor to a plain-HTTP capture', async () => {
      const sameHostPlain = await post('/intune-acmp-config/verify', { ...sicsProps(), useTls: false, credentials: { user: 'intune', password: PWRD } });
      expect(sameHostPlain.code).to.equal('savedSecretOtherEndpoint');
      const fallback = await post('/intune-acmp-config/verify', { ...sicsProps(), allowUnencrypted: true, credentials: { user: 'intune', password: PWRD } });
      expect(fallback.code).to.equal('savedSecretOtherEndpoint');
      const foreign = await post('/intune-acmp-config/verify', { ...sicsProps(), useTls: false, port: plain.port, credentials: { user: 'intune', password: PWRD } });
      expect(foreign.code).to.equal('savedSecretOtherEndpoint');
      expect(homeSics.text()).to.not.include(SICS_PASSWORD);
      expectNothingCaptured([sameHostPlain, fallback, foreign]);
    });
  });

  describe('endpoints that read through a deployed connection', () => {
    it('intune-devices/preview and intune-compliance/policies ignore endpoints in the request', async () => {
      const foreign = { graphBaseUrl: capture.url, authorityHost: capture.url, cloud: 'custom', host: '127.0.0.1', port: plain.port };
      await post('/intune-devices/preview', { intune: 'cfgSecret', ...foreign });
      const res = await helper.request().get('/intune-compliance/policies').query({ intune: 'cfgSecret', ...foreign });
      expect(res.status).to.be.oneOf([200, 502]);
      expectNothingCaptured(res.body);
    });
  });
});

describe('admin endpoints: the proxy is part of a plain-HTTP SICS endpoint', () => {
  // Over plain HTTP the proxy reads the password, so another proxy is another endpoint.
  const { secretEndpoint } = require('../nodes/lib/acmp/acmp-config-api') as typeof import('../nodes/lib/acmp/acmp-config-api');
  const base = { host: 'aesb.contoso.local', port: 3900 };

  it('plain HTTP (or a fallback to it): another proxy node asks for the password again', () => {
    expect(secretEndpoint({ ...base, useTls: false, proxy: 'p1' })).to.not.equal(secretEndpoint({ ...base, useTls: false, proxy: 'p2' }));
    expect(secretEndpoint({ ...base, useTls: false, proxy: 'p1' })).to.not.equal(secretEndpoint({ ...base, useTls: false, proxy: '' }));
    expect(secretEndpoint({ ...base, useTls: true, allowUnencrypted: true, proxy: 'p1' })).to.not.equal(
      secretEndpoint({ ...base, useTls: true, allowUnencrypted: true }),
    );
  });

  it('HTTPS only: the proxy sees a tunnel, so the endpoint is the same with or without it', () => {
    expect(secretEndpoint({ ...base, useTls: true, proxy: 'p1' })).to.equal(secretEndpoint({ ...base, useTls: true }));
  });
});
