/**
 * Client certificates for app-only Graph access. msal-node signs its client
 * assertion with a PEM private key and names the certificate by its SHA-256
 * thumbprint; Windows hands admins a .pfx, enterprise PKIs often a PEM
 * certificate and key. node-forge reads both modern (AES) and legacy
 * (3DES/RC2) PKCS#12 files, which Node's crypto cannot; PEM keys (PKCS#8 or
 * traditional, encrypted or not) are read by Node's crypto, as msal-node
 * signs with it.
 */
import crypto from 'node:crypto';
import forge from 'node-forge';

export const EXPIRY_WARNING_DAYS = 30;

export interface LoadedCertificate {
  privateKeyPem: string;
  certificatePem: string;
  thumbprintSha256: string; // hex, upper case
  thumbprintSha1: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
}

/** A certificate problem an admin can fix; `code` matches the verify codes. */
export class CertificateError extends Error {
  constructor(
    readonly code: 'badCertificate' | 'expiredCertificate',
    message: string,
    readonly params: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'CertificateError';
  }
}

function dn(attrs: forge.pki.CertificateField[]): string {
  return attrs.map((a) => `${a.shortName ?? a.name}=${a.value}`).join(', ');
}

/** Accepts plain base64 or a data: URL, as browsers' FileReader produce either. */
function pfxBytes(pfxBase64: string): string {
  const b64 = pfxBase64.replace(/^data:[^,]*,/, '').replace(/\s+/g, '');
  if (!b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) {
    throw new CertificateError('badCertificate', 'The certificate file is not valid base64', { reason: 'notBase64' });
  }
  return forge.util.decode64(b64);
}

export function loadPfx(pfxBase64: string, password: string): LoadedCertificate {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(pfxBytes(pfxBase64));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password ?? '');
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    const msg = String((err as Error)?.message ?? err);
    // forge reports a wrong password as a MAC mismatch or as garbage it cannot parse.
    if (/mac|password|invalid password|decrypt/i.test(msg)) {
      throw new CertificateError('badCertificate', 'Wrong password for the certificate file', { reason: 'wrongPassword' });
    }
    if (/too few bytes|asn\.?1|der|unparsed/i.test(msg)) {
      throw new CertificateError(
        'badCertificate',
        'The file is not a PKCS#12 (.pfx/.p12) certificate, or its password is wrong',
        { reason: 'notPfx' },
      );
    }
    throw new CertificateError('badCertificate', `The certificate file cannot be read: ${msg}`, { reason: 'unreadable' });
  }

  const keyBags = [
    ...(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[forge.pki.oids.pkcs8ShroudedKeyBag] ?? []),
    ...(p12.getBags({ bagType: forge.pki.oids.keyBag })[forge.pki.oids.keyBag] ?? []),
  ].filter((b) => b.key);
  if (keyBags.length === 0) {
    throw new CertificateError(
      'badCertificate',
      'The .pfx holds no private key: export the certificate "with private key"',
      { reason: 'noPrivateKey' },
    );
  }
  const certBags = (p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag] ?? []).filter((b) => b.cert);
  if (certBags.length === 0) {
    throw new CertificateError('badCertificate', 'The .pfx holds no certificate', { reason: 'noCertificate' });
  }

  const key = keyBags[0].key as forge.pki.rsa.PrivateKey;
  // Pick the certificate that belongs to the key (a .pfx may carry its chain too).
  const cert =
    certBags.map((b) => b.cert as forge.pki.Certificate).find((c) => {
      const pub = c.publicKey as forge.pki.rsa.PublicKey;
      return pub.n && key.n && pub.n.equals(key.n);
    }) ?? null;
  if (!cert) {
    throw new CertificateError('badCertificate', 'The private key in the .pfx does not match its certificate', {
      reason: 'keyMismatch',
    });
  }

  return describe(cert, forge.pki.privateKeyToPem(key));
}

/** What msal-node and the editor need of a certificate and its (unencrypted) key. */
function describe(cert: forge.pki.Certificate, keyPem: string | crypto.KeyObject): LoadedCertificate {
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  // Re-encode the key through Node so msal gets a standard PKCS#8 PEM.
  const privateKeyPem = (typeof keyPem === 'string' ? crypto.createPrivateKey(keyPem) : keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    privateKeyPem,
    certificatePem: forge.pki.certificateToPem(cert),
    thumbprintSha256: crypto.createHash('sha256').update(der).digest('hex').toUpperCase(),
    thumbprintSha1: crypto.createHash('sha1').update(der).digest('hex').toUpperCase(),
    subject: dn(cert.subject.attributes),
    issuer: dn(cert.issuer.attributes),
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
  };
}

// ------------------------------------------------------------------ PEM

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const KEY_LABELS = /^(PRIVATE KEY|ENCRYPTED PRIVATE KEY|RSA PRIVATE KEY)$/;

/**
 * The text of an uploaded or pasted file. The editor sends files as base64
 * (or data: URLs, as FileReader makes them); pasted PEM arrives as it is.
 * A binary (DER) file comes back as bytes.
 */
function fileContent(input: string): { text?: string; der?: Buffer } {
  if (input.includes('-----BEGIN')) return { text: input };
  const b64 = input.replace(/^data:[^,]*,/, '').replace(/\s+/g, '');
  if (!b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return {};
  const bytes = Buffer.from(b64, 'base64');
  const text = bytes.toString('latin1');
  return text.includes('-----BEGIN') ? { text } : { der: bytes };
}

function pemBlocks(text: string): Array<{ label: string; pem: string }> {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], pem: m[0] }));
}

function readCertificates(input: string): forge.pki.Certificate[] {
  const unreadable = (detail: string) =>
    new CertificateError('badCertificate', `The certificate cannot be read: ${detail}`, { reason: 'certificateUnreadable' });
  const c = fileContent(input);
  try {
    if (c.der) return [forge.pki.certificateFromAsn1(forge.asn1.fromDer(c.der.toString('binary')))];
    const blocks = pemBlocks(c.text ?? '').filter((b) => b.label === 'CERTIFICATE');
    if (!blocks.length) throw unreadable('no "BEGIN CERTIFICATE" block (PEM) or DER certificate found');
    return blocks.map((b) => forge.pki.certificateFromPem(b.pem));
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    // forge reads RSA certificates only, which is also all that Entra ID signs assertions with.
    const msg = /not RSA/i.test(String((err as Error)?.message)) ? 'only RSA certificates can be used' : 'it is not an X.509 certificate in PEM or DER form';
    throw unreadable(msg);
  }
}

function readKey(keyInput: string, certInput: string, passphrase: string): crypto.KeyObject {
  const unreadable = (detail: string) =>
    new CertificateError('badCertificate', `The private key cannot be read: ${detail}`, { reason: 'keyUnreadable' });
  // A key may also come in the certificate's file (one PEM with both).
  const fromKey = pemBlocks(fileContent(keyInput).text ?? '').find((b) => KEY_LABELS.test(b.label));
  const block = fromKey ?? (keyInput.trim() ? undefined : pemBlocks(fileContent(certInput).text ?? '').find((b) => KEY_LABELS.test(b.label)));
  if (!block) throw unreadable(keyInput.trim() ? 'no "BEGIN PRIVATE KEY" block found (PEM, PKCS#8 or traditional RSA)' : 'no private key was given');
  // PKCS#8 "ENCRYPTED PRIVATE KEY", or a traditional key with "Proc-Type: 4,ENCRYPTED".
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/i.test(block.pem);
  if (encrypted && !passphrase) {
    throw new CertificateError('badCertificate', 'The private key is encrypted: enter its passphrase', { reason: 'passphraseRequired' });
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: block.pem, format: 'pem', passphrase: encrypted ? passphrase : undefined });
  } catch {
    // Node reports a wrong passphrase as a decryption or, by chance, an ASN.1 error.
    if (encrypted) throw new CertificateError('badCertificate', 'Wrong passphrase for the private key', { reason: 'wrongPassphrase' });
    throw unreadable('the PEM block is damaged');
  }
  if (key.asymmetricKeyType !== 'rsa') throw unreadable(`it is a ${key.asymmetricKeyType} key; Entra ID client certificates need RSA`);
  return key;
}

/**
 * A certificate and its private key as PEM, the way enterprise PKIs hand
 * them out (the key optionally encrypted: PKCS#8 or traditional OpenSSL).
 * Same checks as a .pfx; each error names the part that is wrong.
 */
export function loadPem(certificate: string, privateKey: string, passphrase = ''): LoadedCertificate {
  const certs = readCertificates(certificate ?? '');
  const key = readKey(privateKey ?? '', certificate ?? '', passphrase ?? '');
  // A PEM file may carry its chain too: take the certificate that belongs to the key.
  const cert = certs.find((c) => new crypto.X509Certificate(forge.pki.certificateToPem(c)).checkPrivateKey(key));
  if (!cert) {
    throw new CertificateError('badCertificate', 'The private key does not belong to the certificate', { reason: 'keyMismatch' });
  }
  return describe(cert, key);
}

export function daysLeft(cert: Pick<LoadedCertificate, 'notAfter'>, now = new Date()): number {
  return Math.floor((cert.notAfter.getTime() - now.getTime()) / 86_400_000);
}

/** Throws for an expired (or not yet valid) certificate; returns days left. */
export function assertUsable(cert: LoadedCertificate, now = new Date()): number {
  if (cert.notAfter.getTime() <= now.getTime()) {
    throw new CertificateError(
      'expiredCertificate',
      `The certificate expired on ${cert.notAfter.toISOString().slice(0, 10)}: upload a renewed one`,
      { notAfter: cert.notAfter.toISOString() },
    );
  }
  if (cert.notBefore.getTime() > now.getTime()) {
    throw new CertificateError(
      'badCertificate',
      `The certificate is not valid before ${cert.notBefore.toISOString()}`,
      { reason: 'notYetValid' },
    );
  }
  return daysLeft(cert, now);
}
