/**
 * The test PKI and the simulated Entra ID, exercised with the real
 * @azure/msal-node ConfidentialClientApplication over the same HTTPS
 * transport the product uses.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import { expect } from 'chai';
import forge from 'node-forge';
import { ConfidentialClientApplication, ServerError, AuthError } from '@azure/msal-node';
import type { Configuration } from '@azure/msal-node';
import { createHttpsAgent, createMsalNetworkClient } from '../nodes/lib/shared/http-transport';
import { IdentitySim } from '../sim/identity';
import {
  ClientCertificate,
  createTestCa,
  issueServerCert,
  makeClientCertificate,
  sharedTestCa,
} from '../sim/pki';

const TENANT_A = '7b0e7c1a-3f0e-4a63-9d1e-2c5a9a0f1a01';
const TENANT_A_DOMAIN = 'contoso.example';
const TENANT_B = '0c6d2e4b-8a51-4b0e-b5c2-9e3f7d1a2b02';
const SECRET_APP = '5f1c0a9e-1111-4c3d-8e2f-0a1b2c3d4e01';
const CERT_APP = '5f1c0a9e-2222-4c3d-8e2f-0a1b2c3d4e02';
const APP_IN_B = '5f1c0a9e-3333-4c3d-8e2f-0a1b2c3d4e03';
const GOOD_SECRET = 'Q~good.Secret_value-0123456789abcdefABCDEF';
const OLD_SECRET = 'Q~expired.Secret_value-9876543210';
const GRAPH = 'https://graph.microsoft.com';
const GRAPH_SCOPE = `${GRAPH}/.default`;
const READ_ROLE = 'DeviceManagementManagedDevices.Read.All';
const PRIV_ROLE = 'DeviceManagementManagedDevices.PrivilegedOperations.All';
const PFX_PASSWORD = 'Export-Pa55word!';

function oidBytes(oid: string): Buffer {
  const body = Buffer.from(forge.asn1.oidToDer(oid).getBytes(), 'binary');
  return Buffer.concat([Buffer.from([0x06, body.length]), body]);
}
function hasOid(der: Buffer, oid: string): boolean {
  return der.indexOf(oidBytes(oid)) >= 0;
}
function decodePfx(c: ClientCertificate, password = c.password): forge.pkcs12.Pkcs12Pfx {
  const der = Buffer.from(c.pfxBase64, 'base64').toString('binary');
  return forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), password);
}
function bags(p12: forge.pkcs12.Pkcs12Pfx, type: string): forge.pkcs12.Bag[] {
  return p12.getBags({ bagType: type })[type] ?? [];
}
function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

describe('sim/pki', function () {
  this.timeout(20_000);
  const { oids } = forge.pki;

  it('creates a self-signed CA and a loopback server certificate issued by it', () => {
    const pki = sharedTestCa();
    expect(sharedTestCa()).to.equal(pki); // cached per process
    const ca = new crypto.X509Certificate(pki.certPem);
    expect(ca.ca).to.equal(true);
    expect(ca.verify(ca.publicKey)).to.equal(true);
    expect(pki.ca.certPem).to.equal(pki.certPem);

    const srv = new crypto.X509Certificate(pki.server.certPem);
    expect(srv.ca).to.equal(false);
    expect(srv.checkIssued(ca)).to.equal(true);
    expect(srv.verify(ca.publicKey)).to.equal(true);
    expect(srv.subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(srv.checkHost('localhost')).to.equal('localhost');
    expect(srv.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(srv.checkIP('::1')).to.equal('::1');
    // the key in keyPem belongs to the certificate
    expect(crypto.createPublicKey(pki.server.keyPem).export({ format: 'jwk' }).n).to.equal(srv.publicKey.export({ format: 'jwk' }).n);
  });

  it('issues server certificates for other names, DNS and IP SANs apart', () => {
    const ca = createTestCa('Other Test CA');
    const srv = new crypto.X509Certificate(issueServerCert(ca, ['sim.test', '10.1.2.3']).certPem);
    expect(srv.subjectAltName).to.equal('DNS:sim.test, IP Address:10.1.2.3');
    expect(srv.checkHost('sim.test')).to.equal('sim.test');
    expect(srv.checkHost('localhost')).to.equal(undefined);
    expect(srv.verify(new crypto.X509Certificate(ca.certPem).publicKey)).to.equal(true);
    expect(srv.verify(new crypto.X509Certificate(sharedTestCa().certPem).publicKey)).to.equal(false);
  });

  const notBefore = new Date('2024-03-01T10:00:00Z');
  const notAfter = new Date('2031-02-28T10:00:00Z');
  let modern: ClientCertificate;
  let legacy: ClientCertificate;

  before(() => {
    modern = makeClientCertificate({ commonName: 'intune-sync', password: PFX_PASSWORD, notBefore, notAfter });
    legacy = makeClientCertificate({ password: PFX_PASSWORD, legacy: true });
  });

  it('makes a client certificate with the requested subject, dates and thumbprints', () => {
    const x = new crypto.X509Certificate(modern.certPem);
    expect(modern.subject).to.equal('CN=intune-sync');
    expect(x.subject).to.equal('CN=intune-sync');
    expect(modern.notBefore.toISOString()).to.equal(notBefore.toISOString());
    expect(modern.notAfter.toISOString()).to.equal(notAfter.toISOString());
    expect(new Date(x.validFrom).toISOString()).to.equal(notBefore.toISOString());
    expect(new Date(x.validTo).toISOString()).to.equal(notAfter.toISOString());
    expect(modern.thumbprintSha1Hex).to.match(/^[0-9A-F]{40}$/);
    expect(modern.thumbprintSha256Hex).to.match(/^[0-9A-F]{64}$/);
    expect(modern.thumbprintSha1Hex).to.equal(x.fingerprint.replace(/:/g, ''));
    expect(modern.thumbprintSha256Hex).to.equal(x.fingerprint256.replace(/:/g, ''));
    expect(modern.password).to.equal(PFX_PASSWORD);
  });

  it('packs a modern .pfx (AES-256, SHA-256 MAC) that node-forge decodes to the same key and certificate', () => {
    const der = Buffer.from(modern.pfxBase64, 'base64');
    expect(hasOid(der, oids['aes256-CBC'])).to.equal(true);
    expect(hasOid(der, oids.pkcs5PBES2)).to.equal(true);
    expect(hasOid(der, oids.sha256)).to.equal(true);
    expect(hasOid(der, oids['pbeWithSHAAnd3-KeyTripleDES-CBC'])).to.equal(false);
    expect(hasOid(der, oids['pbewithSHAAnd40BitRC2-CBC'])).to.equal(false);

    const p12 = decodePfx(modern);
    const keyBags = bags(p12, oids.pkcs8ShroudedKeyBag);
    const certBags = bags(p12, oids.certBag);
    expect(keyBags).to.have.length(1);
    expect(certBags).to.have.length(1);
    expect(forge.pki.certificateToPem(certBags[0].cert!).replace(/\r/g, '')).to.equal(modern.certPem.replace(/\r/g, ''));
    const key = keyBags[0].key as forge.pki.rsa.PrivateKey;
    expect(key.n.equals((certBags[0].cert!.publicKey as forge.pki.rsa.PublicKey).n)).to.equal(true);
    // every safe is encrypted (the certificate bag too, like real exports)
    expect(p12.safeContents.find((s) => s.safeBags.some((b) => b.type === oids.certBag))!.encrypted).to.equal(true);
  });

  it('packs a legacy .pfx (3DES key, RC2-40 certificates, SHA-1 MAC) that node-forge still decodes', () => {
    const der = Buffer.from(legacy.pfxBase64, 'base64');
    expect(hasOid(der, oids['pbeWithSHAAnd3-KeyTripleDES-CBC'])).to.equal(true);
    expect(hasOid(der, oids['pbewithSHAAnd40BitRC2-CBC'])).to.equal(true);
    expect(hasOid(der, oids.sha1)).to.equal(true);
    expect(hasOid(der, oids['aes256-CBC'])).to.equal(false);

    const p12 = decodePfx(legacy);
    const keyBags = bags(p12, oids.pkcs8ShroudedKeyBag);
    const certBags = bags(p12, oids.certBag);
    expect(keyBags).to.have.length(1);
    expect(certBags).to.have.length(1);
    expect(certBags[0].cert!.subject.getField('CN').value).to.equal('intune-connector-test');
    const key = keyBags[0].key as forge.pki.rsa.PrivateKey;
    expect(key.n.equals((certBags[0].cert!.publicKey as forge.pki.rsa.PublicKey).n)).to.equal(true);
    // the PEM key handed back is that same key
    const pemKey = forge.pki.privateKeyFromPem(legacy.keyPem) as forge.pki.rsa.PrivateKey;
    expect(pemKey.n.equals(key.n)).to.equal(true);
  });

  it('rejects a wrong .pfx password (MAC check)', () => {
    expect(() => decodePfx(modern, 'not-the-password')).to.throw(/MAC could not be verified|Invalid password/i);
    expect(() => decodePfx(legacy, 'not-the-password')).to.throw(/MAC could not be verified|Invalid password/i);
  });

  it('withoutKey: the .pfx holds the certificate only', () => {
    const c = makeClientCertificate({ password: PFX_PASSWORD, withoutKey: true, commonName: 'cert-only' });
    const p12 = decodePfx(c);
    expect(bags(p12, oids.pkcs8ShroudedKeyBag)).to.have.length(0);
    expect(bags(p12, oids.keyBag)).to.have.length(0);
    const certBags = bags(p12, oids.certBag);
    expect(certBags).to.have.length(1);
    expect(certBags[0].cert!.subject.getField('CN').value).to.equal('cert-only');
  });
});

describe('sim/identity (simulated Entra ID) with real msal-node', function () {
  this.timeout(20_000);

  let pki: ReturnType<typeof sharedTestCa>;
  let agent: https.Agent;
  let networkClient: ReturnType<typeof createMsalNetworkClient>;
  let sim: IdentitySim;
  let registered: ClientCertificate; // registered on CERT_APP
  let stranger: ClientCertificate; // registered nowhere
  let expiredReg: ClientCertificate; // registered on CERT_APP, but expired

  before(() => {
    pki = sharedTestCa();
    agent = createHttpsAgent({ ca: pki.certPem });
    networkClient = createMsalNetworkClient(agent, 10_000);
    registered = makeClientCertificate({ commonName: 'intune-connector', password: PFX_PASSWORD });
    stranger = makeClientCertificate({ commonName: 'stranger', password: PFX_PASSWORD });
    expiredReg = makeClientCertificate({
      commonName: 'expired',
      password: PFX_PASSWORD,
      notBefore: new Date(Date.now() - 400 * 86400_000),
      notAfter: new Date(Date.now() - 35 * 86400_000),
    });
    sim = new IdentitySim({
      tls: pki.server,
      tenants: [{ id: TENANT_A, domains: [TENANT_A_DOMAIN] }, { id: TENANT_B }],
      apps: [
        {
          clientId: SECRET_APP,
          tenantId: TENANT_A,
          displayName: 'Intune connector (secret)',
          secrets: [{ value: GOOD_SECRET, expiresAt: new Date(Date.now() + 86400_000) }, { value: OLD_SECRET, expiresAt: new Date(Date.now() - 60_000) }],
          roles: [READ_ROLE],
        },
        {
          clientId: CERT_APP,
          tenantId: TENANT_A,
          certificates: [registered.certPem, expiredReg.certPem],
          roles: [READ_ROLE, PRIV_ROLE],
        },
        { clientId: APP_IN_B, tenantId: TENANT_B, secrets: [{ value: 'b-secret' }], roles: [] },
      ],
    });
    return sim.start();
  });

  after(async () => {
    await sim?.stop();
    agent?.destroy();
  });

  function cca(auth: Omit<Configuration['auth'], 'authority' | 'knownAuthorities'>, tenant = TENANT_A, extra: Partial<Configuration['auth']> = {}) {
    return new ConfidentialClientApplication({
      auth: { ...auth, authority: `${sim.url}/${tenant}`, knownAuthorities: [new URL(sim.url).host], ...extra },
      system: { networkClient },
    });
  }

  async function token(app: ConfidentialClientApplication, scopes = [GRAPH_SCOPE]) {
    const r = await app.acquireTokenByClientCredential({ scopes, skipCache: true });
    if (!r) throw new Error('no result');
    return r;
  }

  async function expectAadError(p: Promise<unknown>, code: number, errorCode: string): Promise<ServerError> {
    let err: unknown;
    try {
      await p;
    } catch (e) {
      err = e;
    }
    expect(err, `expected AADSTS${code}`).to.be.instanceOf(ServerError);
    const se = err as ServerError;
    expect(se.errorCode).to.equal(errorCode);
    expect(String(se.errorNo)).to.equal(String(code));
    expect(se.errorMessage).to.contain(`AADSTS${code}:`);
    expect(se.message).to.contain(`AADSTS${code}`);
    return se;
  }

  /** A client assertion signed with the registered certificate's key, with overrides. */
  function assertion(payload: Record<string, unknown>, header: Record<string, unknown> = {}, key = registered.keyPem): string {
    const x5t256 = Buffer.from(registered.thumbprintSha256Hex, 'hex').toString('base64url');
    const h = { alg: 'PS256', typ: 'JWT', 'x5t#S256': x5t256, ...header };
    const now = Math.floor(Date.now() / 1000);
    const p = {
      aud: `${sim.url}/${TENANT_A}/oauth2/v2.0/token`,
      iss: CERT_APP,
      sub: CERT_APP,
      jti: crypto.randomUUID(),
      nbf: now,
      exp: now + 600,
      ...payload,
    };
    for (const k of Object.keys(p)) if ((p as Record<string, unknown>)[k] === undefined) delete (p as Record<string, unknown>)[k];
    const input = `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(p)).toString('base64url')}`;
    const sig = crypto.sign('sha256', Buffer.from(input), {
      key,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
    });
    return `${input}.${sig.toString('base64url')}`;
  }

  function raw(method: 'GET' | 'POST', path: string, body?: string, headers: Record<string, string> = {}) {
    return new Promise<{ status: number; headers: Record<string, unknown>; json: any }>((resolve, reject) => {
      const form = body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {};
      const req = https.request(`${sim.url}${path}`, { method, agent, headers: { ...form, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('serves OpenID discovery and signing keys for a tenant id and for its domain', async () => {
    const byId = await raw('GET', `/${TENANT_A}/v2.0/.well-known/openid-configuration`);
    expect(byId.status).to.equal(200);
    expect(byId.json.token_endpoint).to.equal(`${sim.url}/${TENANT_A}/oauth2/v2.0/token`);
    expect(byId.json.issuer).to.equal(`${sim.url}/${TENANT_A}/v2.0`);
    expect(byId.json.authorization_endpoint).to.equal(`${sim.url}/${TENANT_A}/oauth2/v2.0/authorize`);
    expect(byId.json.jwks_uri).to.equal(`${sim.url}/${TENANT_A}/discovery/v2.0/keys`);
    const byDomain = await raw('GET', `/${TENANT_A_DOMAIN}/v2.0/.well-known/openid-configuration`);
    expect(byDomain.json.token_endpoint).to.equal(byId.json.token_endpoint);
    const keys = await raw('GET', `/${TENANT_A}/discovery/v2.0/keys`);
    expect(keys.json.keys).to.have.length(1);
    expect(keys.json.keys[0]).to.include({ kty: 'RSA', use: 'sig' });
    expect(keys.json.keys[0].kid).to.be.a('string').and.not.equal('');
    const inst = await raw('GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${sim.url}/common/oauth2/v2.0/authorize`)}`);
    expect(inst.status).to.equal(200);
    expect(inst.json.metadata[0].aliases).to.deep.equal([new URL(sim.url).host]);
  });

  it('secret: msal gets an app-only token that verifies and carries the roles', async () => {
    const before = sim.tokenRequests.length;
    const r = await token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }));
    expect(r.tokenType).to.equal('Bearer');
    const lifetime = (r.expiresOn!.getTime() - Date.now()) / 1000;
    expect(lifetime).to.be.within(3500, 3600);
    const v = sim.verifyAccessToken(r.accessToken, GRAPH);
    expect(v).to.deep.include({ tid: TENANT_A, appid: SECRET_APP, roles: [READ_ROLE] });
    expect(v.exp).to.be.within(Math.floor(Date.now() / 1000) + 3500, Math.floor(Date.now() / 1000) + 3600);
    const claims = jwtPayload(r.accessToken);
    expect(claims).to.include({ aud: GRAPH, tid: TENANT_A, appid: SECRET_APP, azp: SECRET_APP, idtyp: 'app', appidacr: '1', app_displayname: 'Intune connector (secret)' });
    expect(claims.oid).to.match(/^[0-9a-f-]{36}$/);
    expect(sim.tokenRequests.slice(before)).to.deep.equal([
      { ...sim.tokenRequests[before], tenant: TENANT_A, clientId: SECRET_APP, method: 'secret', outcome: 'success', scope: GRAPH_SCOPE },
    ]);
  });

  it('secret: the tenant may be addressed by its verified domain', async () => {
    const r = await token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }, TENANT_A_DOMAIN));
    expect(sim.verifyAccessToken(r.accessToken, GRAPH).tid).to.equal(TENANT_A);
  });

  it('certificate: PS256 assertion with x5t#S256 (thumbprintSha256)', async () => {
    const r = await token(cca({ clientId: CERT_APP, clientCertificate: { thumbprintSha256: registered.thumbprintSha256Hex, privateKey: registered.keyPem } }));
    const v = sim.verifyAccessToken(r.accessToken, `${GRAPH}/`);
    expect(v.roles).to.deep.equal([READ_ROLE, PRIV_ROLE]);
    expect(jwtPayload(r.accessToken).appidacr).to.equal('2');
    expect(sim.tokenRequests.at(-1)).to.include({ clientId: CERT_APP, method: 'certificate', outcome: 'success', assertionAlg: 'PS256', thumbprintHeader: 'x5t#S256' });
  });

  it('certificate: RS256 assertion with x5t (deprecated SHA-1 thumbprint) still works, also by domain', async () => {
    const r = await token(cca({ clientId: CERT_APP, clientCertificate: { thumbprint: registered.thumbprintSha1Hex, privateKey: registered.keyPem } }, TENANT_A_DOMAIN));
    expect(sim.verifyAccessToken(r.accessToken, GRAPH).appid).to.equal(CERT_APP);
    expect(sim.tokenRequests.at(-1)).to.include({ tenant: TENANT_A, method: 'certificate', outcome: 'success', assertionAlg: 'RS256', thumbprintHeader: 'x5t' });
  });

  it('wrong secret → AADSTS7000215 invalid_client', async () => {
    await expectAadError(token(cca({ clientId: SECRET_APP, clientSecret: 'Q~wrong' })), 7000215, 'invalid_client');
    expect(sim.tokenRequests.at(-1)).to.include({ method: 'secret', outcome: 'AADSTS7000215' });
  });

  it('expired secret → AADSTS7000222 invalid_client', async () => {
    await expectAadError(token(cca({ clientId: SECRET_APP, clientSecret: OLD_SECRET })), 7000222, 'invalid_client');
  });

  it('app not registered in the addressed tenant → AADSTS700016 unauthorized_client', async () => {
    const e = await expectAadError(token(cca({ clientId: APP_IN_B, clientSecret: 'b-secret' }, TENANT_A)), 700016, 'unauthorized_client');
    expect(e.errorMessage).to.contain(APP_IN_B);
    // the same app in its own tenant works
    const r = await token(cca({ clientId: APP_IN_B, clientSecret: 'b-secret' }, TENANT_B));
    expect(sim.verifyAccessToken(r.accessToken, GRAPH)).to.deep.include({ tid: TENANT_B, roles: [] });
  });

  it('unknown tenant: msal fails discovery; with authorityMetadata given the token endpoint answers AADSTS90002', async () => {
    const unknown = 'fabrikam.example';
    let err: unknown;
    try {
      await token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }, unknown));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(AuthError);
    expect((err as AuthError).errorCode).to.equal('endpoints_resolution_error');

    const disc = await raw('GET', `/${unknown}/v2.0/.well-known/openid-configuration`);
    expect(disc.status).to.equal(400);
    expect(disc.json.error).to.equal('invalid_tenant');
    expect(disc.json.error_codes).to.deep.equal([90002]);

    const metadata = JSON.stringify({
      token_endpoint: `${sim.url}/${unknown}/oauth2/v2.0/token`,
      issuer: `${sim.url}/${unknown}/v2.0`,
      authorization_endpoint: `${sim.url}/${unknown}/oauth2/v2.0/authorize`,
      jwks_uri: `${sim.url}/${unknown}/discovery/v2.0/keys`,
      end_session_endpoint: `${sim.url}/${unknown}/oauth2/v2.0/logout`,
    });
    const e = await expectAadError(
      token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }, unknown, { authorityMetadata: metadata })),
      90002,
      'invalid_tenant',
    );
    expect(e.errorMessage).to.contain(`Tenant '${unknown}' not found`);
  });

  it('certificate not registered on the app → AADSTS700027', async () => {
    const e = await expectAadError(
      token(cca({ clientId: CERT_APP, clientCertificate: { thumbprintSha256: stranger.thumbprintSha256Hex, privateKey: stranger.keyPem } })),
      700027,
      'invalid_client',
    );
    expect(e.errorMessage).to.contain('not registered').and.contain(stranger.thumbprintSha256Hex);
  });

  it('registered thumbprint but signed with another key → AADSTS700027 (signature)', async () => {
    const e = await expectAadError(
      token(cca({ clientId: CERT_APP, clientCertificate: { thumbprintSha256: registered.thumbprintSha256Hex, privateKey: stranger.keyPem } })),
      700027,
      'invalid_client',
    );
    expect(e.errorMessage).to.contain('signature validation');
  });

  it('registered certificate past its end date → AADSTS700027 (expired key)', async () => {
    const e = await expectAadError(
      token(cca({ clientId: CERT_APP, clientCertificate: { thumbprintSha256: expiredReg.thumbprintSha256Hex, privateKey: expiredReg.keyPem } })),
      700027,
      'invalid_client',
    );
    expect(e.errorMessage).to.contain('expired');
  });

  it('expired client assertion → AADSTS700024', async () => {
    const now = Math.floor(Date.now() / 1000);
    const e = await expectAadError(
      token(cca({ clientId: CERT_APP, clientAssertion: assertion({ nbf: now - 1200, exp: now - 600 }) })),
      700024,
      'invalid_client',
    );
    expect(e.errorMessage).to.contain('valid time range');
  });

  it('client assertion for the wrong audience → AADSTS700023', async () => {
    await expectAadError(
      token(cca({ clientId: CERT_APP, clientAssertion: assertion({ aud: `https://login.microsoftonline.com/${TENANT_A}/oauth2/v2.0/token` }) })),
      700023,
      'invalid_client',
    );
    // the callback form receives the real token endpoint from msal, which is accepted
    const r = await token(cca({ clientId: CERT_APP, clientAssertion: async (c) => assertion({ aud: c.tokenEndpoint }) }));
    expect(sim.verifyAccessToken(r.accessToken, GRAPH).appid).to.equal(CERT_APP);
  });

  it('client assertion without jti → AADSTS50027; sub ≠ iss → AADSTS50048', async () => {
    await expectAadError(token(cca({ clientId: CERT_APP, clientAssertion: assertion({ jti: undefined }) })), 50027, 'invalid_request');
    await expectAadError(token(cca({ clientId: CERT_APP, clientAssertion: assertion({ sub: 'someone-else' }) })), 50048, 'invalid_client');
  });

  it('scope without /.default → AADSTS1002012 invalid_scope', async () => {
    const e = await expectAadError(
      token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }), [`${GRAPH}/DeviceManagementManagedDevices.Read.All`]),
      1002012,
      'invalid_scope',
    );
    expect(e.errorMessage).to.contain('/.default');
  });

  it('answers malformed requests in Entra\'s error shape and status codes', async () => {
    const cid = crypto.randomUUID();
    const noGrant = await raw('POST', `/${TENANT_A}/oauth2/v2.0/token`, `client_id=${SECRET_APP}&scope=${encodeURIComponent(GRAPH_SCOPE)}`, { 'client-request-id': cid });
    expect(noGrant.status).to.equal(400);
    expect(noGrant.headers['content-type']).to.match(/^application\/json/);
    const b = noGrant.json;
    expect(Object.keys(b).sort()).to.deep.equal(['correlation_id', 'error', 'error_codes', 'error_description', 'error_uri', 'timestamp', 'trace_id']);
    expect(b.error).to.equal('invalid_request');
    expect(b.error_codes).to.deep.equal([900144]);
    expect(b.correlation_id).to.equal(cid);
    expect(b.trace_id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(b.timestamp).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    expect(b.error_uri).to.equal('https://login.microsoftonline.com/error?code=900144');
    expect(b.error_description).to.equal(
      `AADSTS900144: The request body must contain the following parameter: 'grant_type'.\r\nTrace ID: ${b.trace_id}\r\nCorrelation ID: ${cid}\r\nTimestamp: ${b.timestamp}`,
    );

    const base = `client_id=${SECRET_APP}&scope=${encodeURIComponent(GRAPH_SCOPE)}`;
    const cases: Array<[string, string, number, string, number]> = [
      [`/${TENANT_A}/oauth2/v2.0/token`, `${base}&grant_type=password&client_secret=${encodeURIComponent(GOOD_SECRET)}`, 400, 'unsupported_grant_type', 70003],
      [`/${TENANT_A}/oauth2/v2.0/token`, `${base}&grant_type=client_credentials`, 401, 'invalid_client', 7000218],
      [`/${TENANT_A}/oauth2/v2.0/token`, `scope=${encodeURIComponent(GRAPH_SCOPE)}&grant_type=client_credentials&client_secret=x`, 400, 'invalid_request', 900144],
      [`/${TENANT_A}/oauth2/v2.0/token`, `${base}&grant_type=client_credentials&client_secret=nope`, 401, 'invalid_client', 7000215],
      [`/${TENANT_A}/oauth2/v2.0/token`, `client_id=${APP_IN_B}&scope=${encodeURIComponent(GRAPH_SCOPE)}&grant_type=client_credentials&client_secret=b-secret`, 400, 'unauthorized_client', 700016],
      [`/nowhere.example/oauth2/v2.0/token`, `${base}&grant_type=client_credentials&client_secret=x`, 400, 'invalid_tenant', 90002],
      [`/common/oauth2/v2.0/token`, `${base}&grant_type=client_credentials&client_secret=x`, 400, 'invalid_request', 50059],
      [`/${TENANT_A}/oauth2/v2.0/token`, `${base}&grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=not.a.jwt`, 400, 'invalid_request', 50027],
    ];
    for (const [path, body, status, error, code] of cases) {
      const r = await raw('POST', path, body);
      expect({ path, code, status: r.status, error: r.json.error, codes: r.json.error_codes }).to.deep.equal({ path, code, status, error, codes: [code] });
      expect(r.json.error_description).to.match(new RegExp(`^AADSTS${code}: `));
    }
  });

  it('setRoles changes the roles in the next token', async () => {
    const app = cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET });
    sim.setRoles(SECRET_APP, [READ_ROLE, PRIV_ROLE]);
    try {
      const r = await token(app);
      expect(sim.verifyAccessToken(r.accessToken, GRAPH).roles).to.deep.equal([READ_ROLE, PRIV_ROLE]);
    } finally {
      sim.setRoles(SECRET_APP, [READ_ROLE]);
    }
    expect(sim.verifyAccessToken((await token(app)).accessToken, GRAPH).roles).to.deep.equal([READ_ROLE]);
  });

  it('verifyAccessToken rejects expired, wrong-audience, tampered and foreign tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = sim.issueAccessToken({ tenantId: TENANT_A, clientId: SECRET_APP, resource: GRAPH, issuedAt: now - 4000, lifetimeSec: 3599 });
    const fresh = sim.issueAccessToken({ tenantId: TENANT_A, clientId: SECRET_APP, resource: GRAPH });
    expect(sim.verifyAccessToken(fresh, GRAPH).roles).to.deep.equal([READ_ROLE]);

    const rejects = (t: string, aud: string, msg: RegExp) => {
      let err: any;
      try {
        sim.verifyAccessToken(t, aud);
      } catch (e) {
        err = e;
      }
      expect(err, String(msg)).to.be.instanceOf(Error);
      expect(err.code).to.equal('InvalidAuthenticationToken');
      expect(err.message).to.match(msg);
    };
    rejects(expired, GRAPH, /expired/);
    rejects(fresh, 'https://management.azure.com', /audience/);
    const [h, , s] = fresh.split('.');
    const forged = Buffer.from(JSON.stringify({ ...jwtPayload(fresh), roles: [PRIV_ROLE] })).toString('base64url');
    rejects(`${h}.${forged}.${s}`, GRAPH, /signature/);
    rejects('not-a-token', GRAPH, /well-formed/);

    const other = new IdentitySim({ tls: pki.server, tenants: [{ id: TENANT_A }], apps: [] });
    await other.start();
    try {
      const foreign = other.issueAccessToken({ tenantId: TENANT_A, clientId: SECRET_APP, resource: GRAPH, roles: [READ_ROLE] });
      rejects(foreign, GRAPH, /unknown key/);
      expect(other.verifyAccessToken(foreign, GRAPH).appid).to.equal(SECRET_APP);
    } finally {
      await other.stop();
    }
  });

  it('setUnavailable answers 503 temporarily_unavailable (AADSTS90033) until switched off', async () => {
    const app = cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET });
    await token(app); // discovery done, metadata cached in this client
    sim.setUnavailable(true);
    try {
      await expectAadError(token(app), 90033, 'temporarily_unavailable');
      const r = await raw('GET', `/${TENANT_A}/v2.0/.well-known/openid-configuration`);
      expect(r.status).to.equal(503);
      expect(r.headers['retry-after']).to.equal('1');
      let err: unknown;
      try {
        await token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }));
      } catch (e) {
        err = e;
      }
      expect((err as AuthError).errorCode).to.equal('endpoints_resolution_error');
    } finally {
      sim.setUnavailable(false);
    }
    const ok = await token(cca({ clientId: SECRET_APP, clientSecret: GOOD_SECRET }));
    expect(sim.verifyAccessToken(ok.accessToken, GRAPH).appid).to.equal(SECRET_APP);
  });

  it('logs requests without secrets and keeps the logs bounded', () => {
    expect(sim.requestLog.length).to.be.greaterThan(10);
    expect(sim.requestLog.some((e) => e.path === `/${TENANT_A}/oauth2/v2.0/token` && e.status === 200)).to.equal(true);
    const dump = JSON.stringify([sim.requestLog, sim.tokenRequests]);
    expect(dump).to.not.contain(GOOD_SECRET);
    expect(dump).to.not.contain(OLD_SECRET);
    expect(dump).to.not.contain('b-secret');
    expect(dump).to.not.match(/eyJ[A-Za-z0-9_-]{10,}\./); // no JWTs (assertions or tokens)
  });

  it('stop() closes keep-alive connections at once', async () => {
    const other = new IdentitySim({ tls: pki.server, tenants: [{ id: TENANT_B }], apps: [] });
    await other.start();
    const url = other.url;
    const keepAlive = createHttpsAgent({ ca: pki.certPem });
    try {
      const get = () =>
        new Promise<number>((resolve, reject) => {
          https.get(`${url}/${TENANT_B}/discovery/v2.0/keys`, { agent: keepAlive }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }).on('error', reject);
        });
      expect(await get()).to.equal(200);
      const t0 = Date.now();
      await other.stop();
      expect(Date.now() - t0).to.be.lessThan(1000);
      let err: any;
      try {
        await get();
      } catch (e) {
        err = e;
      }
      expect(err?.code).to.be.oneOf(['ECONNREFUSED', 'ECONNRESET']);
    } finally {
      keepAlive.destroy();
      await other.stop();
    }
  });
});
