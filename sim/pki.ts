/**
 * A throw-away PKI for tests and the demo, made at run time so that no key
 * material is ever committed: a self-signed CA, HTTPS server certificates
 * issued by it (for the simulated services on 127.0.0.1), and self-signed
 * client certificates packed as .pfx files the way Windows exports them.
 *
 * RSA keys come from Node's native generator (fast); X.509 and PKCS#12 are
 * assembled with node-forge. The .pfx writer is our own (on forge's ASN.1
 * and cipher primitives) because forge's toPkcs12Asn1 never encrypts the
 * certificate bag, and real exports do:
 *   - modern (Windows Server 2019+, OpenSSL 3): key and certificates under
 *     PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, MAC with HMAC-SHA256;
 *   - legacy (older Windows, OpenSSL 1.x): key under
 *     pbeWithSHAAnd3-KeyTripleDES-CBC, certificates under
 *     pbeWithSHAAnd40BitRC2-CBC, MAC with HMAC-SHA1.
 */
import crypto from 'node:crypto';
import forge from 'node-forge';

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface TestCa extends KeyPairPem {}

export interface ClientCertificate {
  certPem: string;
  /** PKCS#8 PEM. Present even for `withoutKey` (only the .pfx lacks the key). */
  keyPem: string;
  pfxBase64: string;
  password: string;
  /** Upper-case hex SHA-1 of the DER certificate (what the Entra portal shows). */
  thumbprintSha1Hex: string;
  /** Upper-case hex SHA-256 of the DER certificate. */
  thumbprintSha256Hex: string;
  /** e.g. "CN=intune-connector-test" */
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

export interface MakeClientCertificateOptions {
  commonName?: string;
  password: string;
  notBefore?: Date;
  notAfter?: Date;
  /** .pfx encrypted with 3DES (key) and RC2-40 (certificates), SHA-1 MAC, like old Windows exports. Default: AES-256 / SHA-256. */
  legacy?: boolean;
  /** .pfx holding only the certificate (no key bag). */
  withoutKey?: boolean;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const PFX_ITERATIONS = 2048;

interface RsaPair {
  keyPem: string;
  forgePublic: forge.pki.rsa.PublicKey;
  forgePrivate: forge.pki.rsa.PrivateKey;
}

function newRsaPair(): RsaPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    keyPem,
    forgePublic: forge.pki.publicKeyFromPem(pubPem),
    forgePrivate: forge.pki.privateKeyFromPem(keyPem),
  };
}

/** Positive, non-zero serial of 16 random bytes, as hex. */
function randomSerial(): string {
  const b = crypto.randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x01;
  return b.toString('hex');
}

function certDer(cert: forge.pki.Certificate): Buffer {
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** Self-signed CA certificate (10 years, back-dated an hour for clock skew). */
export function createTestCa(commonName = 'Intune Connector Test CA'): TestCa {
  const pair = newRsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = pair.forgePublic;
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - HOUR);
  cert.validity.notAfter = new Date(now + 3650 * DAY);
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'Intune Connector tests' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(pair.forgePrivate, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: pair.keyPem };
}

/**
 * Server certificate issued by `ca`. DNS names become DNS SANs, IPv4/IPv6
 * literals become IP SANs. The first host is the subject CN.
 */
export function issueServerCert(ca: TestCa, hosts: string[] = ['localhost', '127.0.0.1', '::1']): KeyPairPem {
  if (!hosts.length) throw new Error('issueServerCert: at least one host is required');
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const pair = newRsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = pair.forgePublic;
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - HOUR);
  cert.validity.notAfter = new Date(now + 397 * DAY);
  cert.setSubject([{ name: 'commonName', value: hosts[0] }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = hosts.map((h) => (isIp(h) ? { type: 7, ip: h } : { type: 2, value: h }));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: pair.keyPem };
}

/**
 * A self-signed client-authentication certificate (what
 * New-SelfSignedCertificate or the Entra docs produce), its PEM key, and a
 * password-protected .pfx of both.
 */
export function makeClientCertificate(opts: MakeClientCertificateOptions): ClientCertificate {
  if (typeof opts.password !== 'string') throw new Error('makeClientCertificate: password is required');
  const cn = opts.commonName ?? 'intune-connector-test';
  const notBefore = opts.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + 365 * DAY);
  const pair = newRsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = pair.forgePublic;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer([{ name: 'commonName', value: cn }]);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true, serverAuth: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(pair.forgePrivate, forge.md.sha256.create());
  const der = certDer(cert);
  const certPem = forge.pki.certificateToPem(cert);
  const pfx = buildPfx({
    cert,
    key: opts.withoutKey ? undefined : pair.forgePrivate,
    password: opts.password,
    legacy: !!opts.legacy,
    friendlyName: cn,
  });
  return {
    certPem,
    keyPem: pair.keyPem,
    pfxBase64: pfx.toString('base64'),
    password: opts.password,
    thumbprintSha1Hex: crypto.createHash('sha1').update(der).digest('hex').toUpperCase(),
    thumbprintSha256Hex: crypto.createHash('sha256').update(der).digest('hex').toUpperCase(),
    subject: `CN=${cn}`,
    // X.509 keeps whole seconds only; report what the certificate says.
    notBefore: new Date(cert.validity.notBefore.getTime()),
    notAfter: new Date(cert.validity.notAfter.getTime()),
  };
}

export interface SharedTestPki extends TestCa {
  /** The CA (same as the top-level certPem/keyPem). */
  ca: TestCa;
  /** Server certificate for localhost, 127.0.0.1 and ::1, issued by the CA. */
  server: KeyPairPem;
}

let shared: SharedTestPki | undefined;

/** One CA and one loopback server certificate per process (key generation is not free). */
export function sharedTestCa(): SharedTestPki {
  if (!shared) {
    const ca = createTestCa();
    const server = issueServerCert(ca);
    shared = { certPem: ca.certPem, keyPem: ca.keyPem, ca, server };
  }
  return shared;
}

// ---------------------------------------------------------------------------
// PKCS#12 writer
// ---------------------------------------------------------------------------

const { asn1 } = forge;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;
const oids = forge.pki.oids as Record<string, string>;

function oid(o: string): forge.asn1.Asn1 {
  return asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
}
function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(U, T.SEQUENCE, true, items);
}
function octets(bytes: string): forge.asn1.Asn1 {
  return asn1.create(U, T.OCTETSTRING, false, bytes);
}
function int(n: number): forge.asn1.Asn1 {
  return asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
}
function explicit0(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  return asn1.create(CTX, 0, true, [inner]);
}
function der(obj: forge.asn1.Asn1): string {
  return asn1.toDer(obj).getBytes();
}
/** PKCS#7 ContentInfo of type data. */
function dataContentInfo(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(oids.data), explicit0(octets(der(inner)))]);
}

interface PbeResult {
  algorithm: forge.asn1.Asn1;
  encrypted: string;
}

/** PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC (forge's EncryptedPrivateKeyInfo works for any ASN.1 payload). */
function pbes2Aes256(payload: forge.asn1.Asn1, password: string): PbeResult {
  const epki = forge.pki.encryptPrivateKeyInfo(payload, password, {
    algorithm: 'aes256',
    prfAlgorithm: 'sha256',
    count: PFX_ITERATIONS,
    saltSize: 16,
  });
  const parts = epki.value as forge.asn1.Asn1[];
  return { algorithm: parts[0], encrypted: parts[1].value as string };
}

interface Rc2Cipher {
  start(iv: forge.util.ByteBuffer, output: null): void;
  update(input: forge.util.ByteBuffer): void;
  finish(): boolean;
  output: forge.util.ByteBuffer;
}

/** pbeWithSHAAnd40BitRC2-CBC (PKCS#12 key derivation, SHA-1). */
function pbeSha1Rc2_40(payload: forge.asn1.Asn1, password: string): PbeResult {
  const salt = forge.random.getBytesSync(8);
  const p12 = forge.pkcs12 as unknown as {
    generateKey(pw: string, salt: forge.util.ByteBuffer, id: number, iter: number, n: number): forge.util.ByteBuffer;
  };
  const key = p12.generateKey(password, forge.util.createBuffer(salt), 1, PFX_ITERATIONS, 5);
  const iv = p12.generateKey(password, forge.util.createBuffer(salt), 2, PFX_ITERATIONS, 8);
  const rc2 = (forge as unknown as { rc2: { createEncryptionCipher(k: unknown, bits: number): Rc2Cipher } }).rc2;
  const cipher = rc2.createEncryptionCipher(key, 40);
  cipher.start(iv, null);
  cipher.update(forge.util.createBuffer(der(payload)));
  if (!cipher.finish()) throw new Error('RC2 encryption failed');
  const algorithm = seq([oid(oids['pbewithSHAAnd40BitRC2-CBC']), seq([octets(salt), int(PFX_ITERATIONS)])]);
  return { algorithm, encrypted: cipher.output.getBytes() };
}

/** PKCS#7 ContentInfo of type encryptedData. */
function encryptedContentInfo(pbe: PbeResult): forge.asn1.Asn1 {
  const encryptedData = seq([
    int(0),
    seq([oid(oids.data), pbe.algorithm, asn1.create(CTX, 0, false, pbe.encrypted)]),
  ]);
  return seq([oid(oids.encryptedData), explicit0(encryptedData)]);
}

function bagAttributes(localKeyId: string, friendlyName: string): forge.asn1.Asn1 {
  return asn1.create(U, T.SET, true, [
    seq([oid(oids.localKeyId), asn1.create(U, T.SET, true, [octets(localKeyId)])]),
    seq([oid(oids.friendlyName), asn1.create(U, T.SET, true, [asn1.create(U, T.BMPSTRING, false, friendlyName)])]),
  ]);
}

function buildPfx(p: {
  cert: forge.pki.Certificate;
  key?: forge.pki.rsa.PrivateKey;
  password: string;
  legacy: boolean;
  friendlyName: string;
}): Buffer {
  const certBytes = der(forge.pki.certificateToAsn1(p.cert));
  const localKeyId = forge.md.sha1.create().update(certBytes).digest().getBytes();

  const certBag = seq([
    oid(oids.certBag),
    explicit0(seq([oid(oids.x509Certificate), explicit0(octets(certBytes))])),
    bagAttributes(localKeyId, p.friendlyName),
  ]);
  const certSafe = seq([certBag]);
  const contents: forge.asn1.Asn1[] = [
    encryptedContentInfo(p.legacy ? pbeSha1Rc2_40(certSafe, p.password) : pbes2Aes256(certSafe, p.password)),
  ];

  if (p.key) {
    const pkInfo = forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(p.key));
    const shrouded = p.legacy
      ? forge.pki.encryptPrivateKeyInfo(pkInfo, p.password, { algorithm: '3des', count: PFX_ITERATIONS })
      : forge.pki.encryptPrivateKeyInfo(pkInfo, p.password, {
          algorithm: 'aes256',
          prfAlgorithm: 'sha256',
          count: PFX_ITERATIONS,
          saltSize: 16,
        });
    const keyBag = seq([oid(oids.pkcs8ShroudedKeyBag), explicit0(shrouded), bagAttributes(localKeyId, p.friendlyName)]);
    contents.push(dataContentInfo(seq([keyBag])));
  }

  const authSafeDer = der(seq(contents));

  // MacData: HMAC over the AuthenticatedSafe with a PKCS#12-derived key.
  const macMd = p.legacy ? forge.md.sha1.create() : forge.md.sha256.create();
  const macLen = p.legacy ? 20 : 32;
  const macSalt = forge.random.getBytesSync(p.legacy ? 8 : 16);
  const p12 = forge.pkcs12 as unknown as {
    generateKey(pw: string, salt: forge.util.ByteBuffer, id: number, iter: number, n: number, md?: forge.md.MessageDigest): forge.util.ByteBuffer;
  };
  const macKey = p12.generateKey(p.password, forge.util.createBuffer(macSalt), 3, PFX_ITERATIONS, macLen, macMd);
  const hmac = forge.hmac.create();
  hmac.start(p.legacy ? 'sha1' : 'sha256', macKey.getBytes());
  hmac.update(authSafeDer);
  const macData = seq([
    seq([seq([oid(p.legacy ? oids.sha1 : oids.sha256), asn1.create(U, T.NULL, false, '')]), octets(hmac.digest().getBytes())]),
    octets(macSalt),
    int(PFX_ITERATIONS),
  ]);

  const pfx = seq([int(3), seq([oid(oids.data), explicit0(octets(authSafeDer))]), macData]);
  return Buffer.from(der(pfx), 'binary');
}
