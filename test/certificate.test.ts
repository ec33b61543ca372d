/**
 * certificate.ts: a certificate and its private key as PEM (the forms
 * enterprise PKIs hand out), with the same checks as a .pfx, each error
 * naming the part that is wrong.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import forge from 'node-forge';
import { makeClientCertificate, type ClientCertificate } from '../sim/pki';
import { CertificateError, assertUsable, loadPem, loadPfx } from '../nodes/lib/intune/certificate';
import { loadCertificate } from '../nodes/lib/intune/intune-connection';

const DAY = 86_400_000;
const PASS = 'Pem-Passphrase-1';

/** The key in the encodings OpenSSL and Windows CAs write. */
function keyAs(c: ClientCertificate, form: 'pkcs8' | 'pkcs8-encrypted' | 'traditional' | 'traditional-encrypted', passphrase = PASS): string {
  const key = crypto.createPrivateKey(c.keyPem);
  switch (form) {
    case 'pkcs8':
      return key.export({ type: 'pkcs8', format: 'pem' }).toString();
    case 'pkcs8-encrypted':
      return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
    case 'traditional':
      return key.export({ type: 'pkcs1', format: 'pem' }).toString();
    case 'traditional-encrypted':
      return key.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
  }
}

function failure(fn: () => unknown): CertificateError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CertificateError);
    return err as CertificateError;
  }
  throw new Error('expected a CertificateError');
}

describe('certificate.ts: PEM certificate and key', function () {
  this.timeout(20_000);
  let c: ClientCertificate;
  let other: ClientCertificate;

  before(() => {
    c = makeClientCertificate({ commonName: 'pem-test', password: 'unused' });
    other = makeClientCertificate({ commonName: 'someone-else', password: 'unused' });
  });

  for (const form of ['pkcs8', 'pkcs8-encrypted', 'traditional', 'traditional-encrypted'] as const) {
    it(`reads a ${form} key with its certificate, with the same details as the .pfx`, () => {
      const loaded = loadPem(c.certPem, keyAs(c, form), form.endsWith('encrypted') ? PASS : '');
      const fromPfx = loadPfx(c.pfxBase64, c.password);
      expect(loaded.thumbprintSha256).to.equal(c.thumbprintSha256Hex);
      expect(loaded.thumbprintSha1).to.equal(c.thumbprintSha1Hex);
      expect(loaded.subject).to.equal(fromPfx.subject);
      expect(loaded.notAfter.getTime()).to.equal(fromPfx.notAfter.getTime());
      // msal-node gets a plain PKCS#8 key that signs what the certificate verifies.
      expect(loaded.privateKeyPem).to.match(/^-----BEGIN PRIVATE KEY-----/);
      const sig = crypto.sign('sha256', Buffer.from('assertion'), loaded.privateKeyPem);
      expect(crypto.verify('sha256', Buffer.from('assertion'), new crypto.X509Certificate(c.certPem).publicKey, sig)).to.equal(true);
    });
  }

  it('takes files as the editor uploads them (base64, data: URL) and a DER (.cer) certificate', () => {
    const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(c.certPem))).getBytes(), 'binary');
    const keyB64 = Buffer.from(keyAs(c, 'pkcs8-encrypted')).toString('base64');
    const a = loadPem(`data:application/x-x509-ca-cert;base64,${der.toString('base64')}`, `data:application/octet-stream;base64,${keyB64}`, PASS);
    expect(a.thumbprintSha256).to.equal(c.thumbprintSha256Hex);
    const b = loadPem(Buffer.from(c.certPem).toString('base64'), keyB64, PASS);
    expect(b.thumbprintSha256).to.equal(c.thumbprintSha256Hex);
  });

  it('picks the certificate of the key from a chain, and a key in the certificate file', () => {
    const chain = other.certPem + c.certPem;
    expect(loadPem(chain, c.keyPem).thumbprintSha256).to.equal(c.thumbprintSha256Hex);
    expect(loadPem(c.certPem + keyAs(c, 'traditional'), '').thumbprintSha256).to.equal(c.thumbprintSha256Hex);
  });

  it('names each part that is wrong', () => {
    const cases: Array<[string, () => unknown, string, RegExp]> = [
      ['certificate unreadable', () => loadPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', c.keyPem), 'certificateUnreadable', /certificate cannot be read/],
      ['no certificate at all', () => loadPem('hello', c.keyPem), 'certificateUnreadable', /certificate cannot be read/],
      ['key unreadable', () => loadPem(c.certPem, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'), 'keyUnreadable', /private key cannot be read/],
      ['key missing', () => loadPem(c.certPem, ''), 'keyUnreadable', /no private key was given/],
      ['encrypted key, no passphrase', () => loadPem(c.certPem, keyAs(c, 'pkcs8-encrypted')), 'passphraseRequired', /encrypted: enter its passphrase/],
      ['wrong passphrase (PKCS#8)', () => loadPem(c.certPem, keyAs(c, 'pkcs8-encrypted'), 'wrong'), 'wrongPassphrase', /Wrong passphrase/],
      ['wrong passphrase (traditional)', () => loadPem(c.certPem, keyAs(c, 'traditional-encrypted'), 'wrong'), 'wrongPassphrase', /Wrong passphrase/],
      ['key of another certificate', () => loadPem(c.certPem, other.keyPem), 'keyMismatch', /does not belong to the certificate/],
    ];
    for (const [what, fn, reason, re] of cases) {
      const e = failure(fn);
      expect([e.code, e.params.reason], what).to.deep.equal(['badCertificate', reason]);
      expect(e.message, what).to.match(re);
      // No error carries key material or the passphrase.
      expect(e.message + JSON.stringify(e.params), what).to.not.include(c.keyPem.split('\n')[1]).and.not.include(PASS);
    }
  });

  it('refuses a non-RSA key: Entra ID client assertions are RSA', () => {
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const e = failure(() => loadPem(c.certPem, ec));
    expect(e.params.reason).to.equal('keyUnreadable');
    expect(e.message).to.match(/ec key/);
  });

  it('expired and soon-expiring PEM certificates: the same checks as a .pfx', () => {
    const old = makeClientCertificate({ password: 'x', notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - 2 * DAY) });
    const expired = failure(() => assertUsable(loadPem(old.certPem, keyAs(old, 'pkcs8-encrypted'), PASS)));
    expect(expired.code).to.equal('expiredCertificate');
    expect(() => loadCertificate({ certificatePem: old.certPem, privateKeyPem: old.keyPem }, new Date(), 'certificatePem')).to.throw(
      new RegExp(`expired on ${old.notAfter.toISOString().slice(0, 10)}`),
    );
    const soon = makeClientCertificate({ password: 'x', notAfter: new Date(Date.now() + 10 * DAY + 3600_000) });
    const { warning } = loadCertificate({ certificatePem: soon.certPem, privateKeyPem: soon.keyPem }, new Date(), 'certificatePem');
    expect(warning?.code).to.equal('certificateExpiresSoon');
    expect(warning?.params.days).to.equal(10);
  });

  it('loadCertificate names the missing PEM part', () => {
    const noKey = (() => {
      try {
        loadCertificate({ certificatePem: c.certPem }, new Date(), 'certificatePem');
      } catch (err) {
        return err as Error & { code?: string; params?: Record<string, unknown> };
      }
      return undefined;
    })();
    expect([noKey?.code, noKey?.params?.field]).to.deep.equal(['invalidConfig', 'privateKeyPem']);
  });
});
