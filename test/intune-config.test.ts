/**
 * intune-config against the simulated identity platform and Graph: real
 * msal-node token acquisition (secret, modern and legacy .pfx), the
 * "Verify connection" answers an admin sees, and no secret leaking anywhere.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import { helper, distNode, tlsNode, loadFlow, loggedText } from './support/node-helper';
import { startSimEnv, configFlow, ALL_ROLES, type SimEnv } from './support/sim-env';
import { makeClientCertificate } from '../sim/pki';
import { freePort } from '../sim/node-red-runner';
import { readTokenClaims } from '../nodes/lib/intune/token-provider';
import type { IntuneConfigNode } from '../nodes/lib/intune/intune-config-api';

const configNode = distNode('intune-config');
const devicesNode = distNode('intune-devices');
const actionNode = distNode('intune-action');
const complianceNode = distNode('intune-compliance');
const DAY = 86_400_000;

describe('intune-config', function () {
  this.timeout(30_000);
  let env: SimEnv;

  before(async () => {
    env = await startSimEnv({ devices: 120, seed: 7 });
  });
  after(async () => {
    await env?.stop();
  });
  afterEach(async () => {
    await helper.unload();
  });

  async function deploy(o: Parameters<typeof configFlow>[1] = {}): Promise<IntuneConfigNode> {
    const { nodes, credentials } = configFlow(env, o);
    await loadFlow([tlsNode, configNode], nodes, credentials);
    return helper.getNode(o.id ?? 'cfg1') as unknown as IntuneConfigNode;
  }

  /** Everything a secret of the sim apps could leak as. */
  function secrets(): string[] {
    return [env.secretApp.secret, env.certApp.cert.pfxBase64.slice(0, 40), env.certApp.cert.password, env.certApp.cert.keyPem.split('\n')[1]];
  }

  function expectNoSecret(text: string) {
    for (const s of secrets()) expect(text, 'a secret leaked').to.not.include(s);
  }

  describe('tokens through msal-node', () => {
    it('gets a token with a client secret, carrying the app roles, and caches it', async () => {
      const cfg = await deploy({ auth: 'secret' });
      const before = env.identity.tokenRequests.length;
      const token = await cfg.connection().tokens.getToken();
      const claims = readTokenClaims(token);
      expect(claims.tid).to.equal(env.tenantId);
      expect(claims.roles).to.have.members(ALL_ROLES);
      expect(env.identity.tokenRequests.slice(before).map((r) => [r.method, r.outcome])).to.deep.equal([['secret', 'success']]);
      const again = await cfg.connection().tokens.getToken();
      expect(again).to.equal(token);
      expect(env.identity.tokenRequests.length).to.equal(before + 1);
    });

    it('gets a token with a password-protected modern .pfx (signed assertion)', async () => {
      const cfg = await deploy({ auth: 'certificate', id: 'cfgCert' });
      const before = env.identity.tokenRequests.length;
      const token = await cfg.connection().tokens.getToken();
      expect(readTokenClaims(token).appid).to.equal(env.certApp.clientId);
      expect(env.identity.tokenRequests.slice(before).map((r) => [r.method, r.outcome])).to.deep.equal([['certificate', 'success']]);
      expect(cfg.connection().certificate!.thumbprintSha256).to.equal(env.certApp.cert.thumbprintSha256Hex);
    });

    it('gets a token with a legacy (3DES/RC2) .pfx', async () => {
      const legacy = makeClientCertificate({ commonName: 'legacy-export', password: 'old-windows', legacy: true });
      const clientId = crypto.randomUUID();
      env.identity.addApp({ clientId, tenantId: env.tenantId, certificates: [legacy.certPem], roles: ALL_ROLES });
      const cfg = await deploy({
        auth: 'certificate',
        id: 'cfgLegacy',
        overrides: { clientId },
        credentials: { pfx: legacy.pfxBase64, passphrase: legacy.password },
      });
      const token = await cfg.connection().tokens.getToken();
      expect(readTokenClaims(token).appid).to.equal(clientId);
    });

    it('gets a token with a PEM certificate and an encrypted PEM key (signed assertion)', async () => {
      const c = env.certApp.cert;
      const keyPem = crypto.createPrivateKey(c.keyPem).export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'key-pass-1' }).toString();
      const cfg = await deploy({
        auth: 'certificate',
        id: 'cfgPem',
        overrides: { authType: 'certificatePem' },
        credentials: { pfx: '', passphrase: '', certificatePem: c.certPem, privateKeyPem: keyPem, keyPassphrase: 'key-pass-1' },
      });
      const before = env.identity.tokenRequests.length;
      const token = await cfg.connection().tokens.getToken();
      expect(readTokenClaims(token).appid).to.equal(env.certApp.clientId);
      expect(env.identity.tokenRequests.slice(before).map((r) => [r.method, r.outcome])).to.deep.equal([['certificate', 'success']]);
      expect(cfg.connection().certificate!.thumbprintSha256).to.equal(c.thumbprintSha256Hex);
      // The same pair through "Verify connection" and the editor's certificate check; a wrong passphrase is named.
      const { nodes } = configFlow(env, { id: 'cfgPem', auth: 'certificate', overrides: { authType: 'certificatePem' } });
      const form = { ...(nodes[1] as Record<string, unknown>), id: 'cfgPem' };
      const ok = await helper.request().post('/intune-config/verify').send({ ...form, credentials: { certificatePem: c.certPem, privateKeyPem: '__PWRD__', keyPassphrase: '__PWRD__' } });
      expect(ok.body.code, ok.body.message).to.equal('ok');
      const wrong = await helper.request().post('/intune-config/verify').send({ ...form, credentials: { certificatePem: c.certPem, privateKeyPem: keyPem, keyPassphrase: 'nope' } });
      expect([wrong.body.code, wrong.body.params.reason]).to.deep.equal(['badCertificate', 'wrongPassphrase']);
      const info = await helper.request().post('/intune-config/certificate').send({ id: 'cfgPem', format: 'pem', certificatePem: c.certPem, keyPassphrase: '__PWRD__' });
      expect([info.body.ok, info.body.params.thumbprintSha256]).to.deep.equal([true, c.thumbprintSha256Hex]);
      expectNoSecret(JSON.stringify([ok.body, wrong.body, info.body]) + loggedText());
      expect(JSON.stringify([ok.body, wrong.body, info.body])).to.not.include('key-pass-1');
    });

    it('addresses the tenant by its verified domain too', async () => {
      const cfg = await deploy({ overrides: { tenantId: env.domain } });
      const token = await cfg.connection().tokens.getToken();
      expect(readTokenClaims(token).tid).to.equal(env.tenantId);
    });
  });

  describe('configuration problems are clear errors', () => {
    const cases: Array<[string, Parameters<typeof configFlow>[1], RegExp, string]> = [
      ['tenant "common"', { overrides: { tenantId: 'common' } }, /cannot be used for app-only access/, 'invalidConfig'],
      ['client id not a GUID', { overrides: { clientId: 'my-app' } }, /application \(client\) id, a GUID/, 'invalidConfig'],
      ['custom cloud over http', { overrides: { graphBaseUrl: 'http://127.0.0.1:1' } }, /must use https/, 'invalidConfig'],
      ['Graph URL with version', { overrides: { graphBaseUrl: 'https://127.0.0.1:1/v1.0' } }, /without \/v1\.0/, 'invalidConfig'],
      ['missing secret', { credentials: { clientSecret: '' } }, /client secret is missing/, 'invalidConfig'],
      ['wrong .pfx password', { auth: 'certificate', credentials: { passphrase: 'nope' } }, /Wrong password|password is wrong/, 'badCertificate'],
      ['rate limit not a number', { overrides: { requestsPer20s: 'lots' } }, /whole number/, 'invalidConfig'],
    ];
    for (const [what, o, re, code] of cases) {
      it(`${what} → ${code}`, async () => {
        const cfg = await deploy(o);
        let err: (Error & { code?: string }) | undefined;
        try {
          cfg.connection();
        } catch (e) {
          err = e as Error & { code?: string };
        }
        expect(err, 'connection() must throw').to.be.instanceOf(Error);
        expect(err!.message).to.match(re);
        expect(err!.code).to.equal(code);
        expect(cfg.board.health.level).to.equal('error');
        expectNoSecret(loggedText());
        expectNoSecret(JSON.stringify(cfg.board.health));
      });
    }

    it('refuses a .pfx without a private key', async () => {
      const noKey = makeClientCertificate({ password: 'x', withoutKey: true });
      const cfg = await deploy({ auth: 'certificate', credentials: { pfx: noKey.pfxBase64, passphrase: 'x' } });
      expect(() => cfg.connection()).to.throw(/no private key/);
    });

    it('refuses an expired certificate, naming the date', async () => {
      const old = makeClientCertificate({ password: 'x', notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - 2 * DAY) });
      const cfg = await deploy({ auth: 'certificate', credentials: { pfx: old.pfxBase64, passphrase: 'x' } });
      expect(() => cfg.connection()).to.throw(new RegExp(`expired on ${old.notAfter.toISOString().slice(0, 10)}`));
    });

    it('warns (log and health) when the certificate expires within 30 days, and still works', async () => {
      const soon = makeClientCertificate({ password: 'x', notAfter: new Date(Date.now() + 10 * DAY + 3600_000) });
      const clientId = crypto.randomUUID();
      env.identity.addApp({ clientId, tenantId: env.tenantId, certificates: [soon.certPem], roles: ALL_ROLES });
      const cfg = await deploy({ auth: 'certificate', overrides: { clientId }, credentials: { pfx: soon.pfxBase64, passphrase: 'x' } });
      expect(cfg.board.health.level).to.equal('warn');
      expect(cfg.board.health.params).to.deep.equal({ days: 10 });
      expect(loggedText()).to.match(/certificate expires in 10 day/);
      await cfg.connection().tokens.getToken();
    });
  });

  it('shows a soon-expiring certificate on the status of the nodes that use the connection', async () => {
    const soon = makeClientCertificate({ password: 'x', notAfter: new Date(Date.now() + 5 * DAY + 3600_000) });
    const clientId = crypto.randomUUID();
    env.identity.addApp({ clientId, tenantId: env.tenantId, certificates: [soon.certPem], roles: ALL_ROLES });
    const { nodes, credentials } = configFlow(env, { auth: 'certificate', overrides: { clientId }, credentials: { pfx: soon.pfxBase64, passphrase: 'x' } });
    const users = [
      { id: 'dev1', type: 'intune-devices', intune: 'cfg1', fullEveryHours: 0, incrementalEveryMinutes: 0, wires: [[], []] },
      { id: 'act1', type: 'intune-action', intune: 'cfg1', wires: [[]] },
      { id: 'cmp1', type: 'intune-compliance', intune: 'cfg1', everyMinutes: 0, wires: [[], []] },
    ];
    await loadFlow([tlsNode, configNode, devicesNode, actionNode, complianceNode], [...nodes, ...users], credentials);
    for (const id of ['dev1', 'act1', 'cmp1']) {
      const n = helper.getNode(id) as unknown as { status: (s: unknown) => void };
      const seen: Array<{ fill?: string; text?: string; runtimeText?: string }> = [];
      // Capture what the node shows when the connection announces its health again.
      const cfg = helper.getNode('cfg1') as unknown as IntuneConfigNode;
      const original = n.status.bind(n);
      n.status = (st: unknown) => {
        seen.push(st as { fill?: string; text?: string; runtimeText?: string });
        original(st);
      };
      cfg.board.set({ ...cfg.board.health });
      const last = seen[seen.length - 1];
      expect(last, id).to.include({ fill: 'yellow' });
      expect(last.runtimeText, id).to.match(/certificate expires in 5 d/);
      // The editor gets intune-config's own key with the days, and shows it in its language.
      expect(last.text, id).to.match(/(\{"\$t":"|^)intune-config\.status\.certExpiresSoon("?,"days":5\}| \{"days":5\}$)/);
    }
  });

  describe('"Verify connection" (admin endpoint)', () => {
    async function verify(body: Record<string, unknown>) {
      const res = await helper.request().post('/intune-config/verify').send(body);
      expect(res.status).to.equal(200);
      expectNoSecret(JSON.stringify(res.body));
      return res.body as { ok: boolean; code: string; message: string; params: Record<string, unknown>; warnings: Array<{ code: string; params: Record<string, unknown> }> };
    }

    function form(o: { auth?: 'secret' | 'certificate'; overrides?: Record<string, unknown>; credentials?: Record<string, unknown> } = {}) {
      // The form points at the deployed TLS config of cfg1 (verify can only use deployed config nodes).
      const { nodes, credentials } = configFlow(env, { id: 'formNode', ...o, overrides: { tls: 'cfg1-tls', ...(o.overrides ?? {}) } });
      return { ...(nodes[1] as Record<string, unknown>), id: 'formNode', credentials: credentials.formNode };
    }

    afterEach(() => {
      // Runs before the outer afterEach unloads the flow, so the log spy still holds this test's log.
      expectNoSecret(loggedText());
    });

    beforeEach(async () => {
      // A deployed tls-config (the CA) and one deployed config whose stored secret the form may fall back to.
      await deploy();
    });

    it('answers OK with the tenant and its device count (secret)', async () => {
      const a = await verify(form());
      expect(a.ok, a.message).to.equal(true);
      expect(a.code).to.equal('ok');
      expect(a.params.tenantId).to.equal(env.tenantId);
      expect(a.params.deviceCount).to.equal(env.tenant.size);
      expect(a.message).to.include(`${env.tenant.size} managed device`);
      expect(a.warnings).to.deep.equal([]);
    });

    it('answers OK for a certificate', async () => {
      const a = await verify(form({ auth: 'certificate' }));
      expect(a.code, a.message).to.equal('ok');
    });

    it('falls back to the stored secret when the editor sends the unchanged-password placeholder', async () => {
      const a = await verify({ ...form(), id: 'cfg1', credentials: { clientSecret: '__PWRD__' } });
      expect(a.code, a.message).to.equal('ok');
      const b = await verify({ ...form(), id: 'unknown-node', credentials: { clientSecret: '__PWRD__' } });
      expect([b.code, b.params.field]).to.deep.equal(['invalidConfig', 'clientSecret']);
    });

    it('resolves ${ENV} references only as the deployed node resolved them, in the same field', async () => {
      process.env.INTUNE_TEST_GRAPH_URL = env.graph.url;
      try {
        await helper.unload();
        await deploy({ overrides: { graphBaseUrl: '${INTUNE_TEST_GRAPH_URL}' } });
        // The deployed node has this reference in this field: the form gets the deployed value and the saved secret.
        const a = await verify({ ...form({ overrides: { graphBaseUrl: '${INTUNE_TEST_GRAPH_URL}' } }), id: 'cfg1', credentials: { clientSecret: '__PWRD__' } });
        expect(a.code, a.message).to.equal('ok');
        // The same reference in another field is not the deployed node's: nothing is read from the environment.
        const b = await verify({ ...form(), id: 'cfg1', portalUrl: '${INTUNE_TEST_GRAPH_URL}', credentials: { clientSecret: '__PWRD__' } });
        expect([b.code, b.params.field]).to.deep.equal(['envNotDeployed', 'portalUrl']);
      } finally {
        delete process.env.INTUNE_TEST_GRAPH_URL;
      }
      // A form of a node that is not deployed resolves nothing.
      process.env.INTUNE_TEST_GRAPH_URL = env.graph.url;
      try {
        const c = await verify(form({ overrides: { graphBaseUrl: '${INTUNE_TEST_GRAPH_URL}' } }));
        expect([c.code, c.params.field]).to.deep.equal(['envNotDeployed', 'graphBaseUrl']);
      } finally {
        delete process.env.INTUNE_TEST_GRAPH_URL;
      }
    });

    it('asks for the secret again when the form names another endpoint than the saved one', async () => {
      const other = `https://127.0.0.1:${await freePort()}`;
      const a = await verify({ ...form({ overrides: { graphBaseUrl: other } }), id: 'cfg1', credentials: { clientSecret: '__PWRD__' } });
      expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'savedSecretOtherEndpoint', 'clientSecret']);
      expect(a.params.endpoint).to.equal(`${env.identity.url}/${env.tenantId.toLowerCase()} + ${env.graph.url}`);
      // Another tenant is another endpoint too.
      const b = await verify({ ...form({ overrides: { tenantId: env.domain } }), id: 'cfg1', credentials: { clientSecret: '__PWRD__' } });
      expect(b.code).to.equal('savedSecretOtherEndpoint');
      // Typed again, the secret goes where the form says.
      const c = await verify({ ...form({ overrides: { tenantId: env.domain } }), id: 'cfg1', credentials: { clientSecret: env.secretApp.secret } });
      expect(c.code, c.message).to.equal('ok');
    });

    it('wrong tenant', async () => {
      const a = await verify(form({ overrides: { tenantId: crypto.randomUUID() } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'wrongTenant']);
      expect(a.message).to.match(/tenant\) was not found/);
    });

    it('unknown client', async () => {
      const a = await verify(form({ overrides: { clientId: crypto.randomUUID() } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'unknownClient']);
      expect(a.message).to.match(/No application with this client id/);
    });

    it('wrong secret', async () => {
      const a = await verify(form({ credentials: { clientSecret: 'not-the-secret' } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'wrongSecret']);
      expect(a.message).to.match(/client secret is wrong/);
    });

    it('expired secret', async () => {
      const clientId = crypto.randomUUID();
      env.identity.addApp({ clientId, tenantId: env.tenantId, secrets: [{ value: 'old-secret-value', expiresAt: new Date(Date.now() - DAY) }], roles: ALL_ROLES });
      const a = await verify(form({ overrides: { clientId }, credentials: { clientSecret: 'old-secret-value' } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'expiredSecret']);
      expect(a.message).to.match(/secret has expired/);
    });

    it('unregistered certificate', async () => {
      const other = makeClientCertificate({ commonName: 'not-registered', password: 'pw' });
      const a = await verify(form({ auth: 'certificate', credentials: { pfx: other.pfxBase64, passphrase: 'pw' } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'unregisteredCertificate']);
      expect(a.message).to.match(/not registered for this application/);
    });

    it('missing permission names the permission to grant', async () => {
      const clientId = crypto.randomUUID();
      env.identity.addApp({ clientId, tenantId: env.tenantId, secrets: [{ value: 'no-roles-secret' }], roles: ['User.Read.All'] });
      const a = await verify(form({ overrides: { clientId }, credentials: { clientSecret: 'no-roles-secret' } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'missingPermission']);
      expect(a.params.missing).to.deep.equal(['DeviceManagementManagedDevices.Read.All']);
    });

    it('OK but warns about optional permissions (read-only app)', async () => {
      const clientId = crypto.randomUUID();
      env.identity.addApp({ clientId, tenantId: env.tenantId, secrets: [{ value: 'read-only-secret' }], roles: ['DeviceManagementManagedDevices.Read.All'] });
      const a = await verify(form({ overrides: { clientId }, credentials: { clientSecret: 'read-only-secret' } }));
      expect(a.code).to.equal('ok');
      expect(a.warnings.map((w) => w.code)).to.deep.equal(['missingOptionalPermission']);
      expect(a.warnings[0].params.missing).to.include.members([
        'DeviceManagementConfiguration.Read.All',
        'DeviceManagementManagedDevices.ReadWrite.All',
        'DeviceManagementManagedDevices.PrivilegedOperations.All',
        'User.Read.All',
      ]);
    });

    it('unreachable host', async () => {
      const port = await freePort();
      const a = await verify(form({ overrides: { authorityHost: `https://127.0.0.1:${port}` } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'unreachable']);
      expect(a.message).to.match(new RegExp(`127\\.0\\.0\\.1:${port} cannot be reached`));
    });

    it('untrusted TLS certificate (no CA configured)', async () => {
      const a = await verify(form({ overrides: { tls: '' } }));
      expect([a.ok, a.code]).to.deep.equal([false, 'tlsError']);
    });

    it('invalid form values are named', async () => {
      const a = await verify(form({ overrides: { clientId: 'x' } }));
      expect([a.ok, a.code, a.params.field]).to.deep.equal([false, 'invalidConfig', 'clientId']);
    });

    it('certificate info for the editor: subject and expiry, wrong password explained', async () => {
      const c = env.certApp.cert;
      const ok = await helper.request().post('/intune-config/certificate').send({ pfx: c.pfxBase64, passphrase: c.password });
      expect(ok.body.ok).to.equal(true);
      expect(ok.body.params.subject).to.equal(c.subject);
      // X.509 keeps whole seconds.
      expect(Date.parse(ok.body.params.notAfter)).to.equal(Math.floor(c.notAfter.getTime() / 1000) * 1000);
      expect(ok.body.params.thumbprintSha256).to.equal(c.thumbprintSha256Hex);
      expectNoSecret(JSON.stringify(ok.body));
      const bad = await helper.request().post('/intune-config/certificate').send({ pfx: c.pfxBase64, passphrase: 'wrong' });
      expect([bad.body.ok, bad.body.code, bad.body.params.reason]).to.deep.equal([false, 'badCertificate', 'wrongPassword']);
    });
  });
});
