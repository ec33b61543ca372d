/**
 * intune-config: one Intune tenant + app registration. Owns the token cache
 * and the shared Graph client that every Intune node using it goes through,
 * and serves "Verify connection" / certificate info to the editor.
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import { ConnectionError } from '../lib/shared/connection-errors';
import { HealthBoard } from '../lib/node-red/config-health';
import { defRecord, registerNode } from '../lib/node-red/register';
import { caFromTlsConfig } from '../lib/node-red/editor-form';
import { isRefusal, readForm, rememberDeployed, type SecretRules } from '../lib/node-red/saved-secrets';
import { formProxy, proxySource } from '../lib/node-red/proxy-config';
import type { IntuneConfigCredentials, IntuneConfigNode } from '../lib/intune/intune-config-api';
import { EXPIRY_WARNING_DAYS, daysLeft, loadPem, loadPfx, CertificateError } from '../lib/intune/certificate';
import {
  IntuneConnection,
  parseSettings,
  secretEndpoint,
  verifyConnection,
  type IntuneAuthType,
} from '../lib/intune/intune-connection';

interface IntuneConfigDef extends NodeDef {
  tenantId: string;
  clientId: string;
  authType: IntuneAuthType;
  cloud: string;
  authorityHost?: string;
  graphBaseUrl?: string;
  portalUrl?: string;
  tls?: string;
  requestsPer20s?: string | number;
  writesPer20s?: string | number;
  timeoutSec?: string | number;
  /** Id of a core `http proxy` node; empty: HTTP(S)_PROXY / NO_PROXY of the environment. */
  proxy?: string;
}

type Credentials = IntuneConfigCredentials;

const CERT_RECHECK_MS = 12 * 3600 * 1000;


export = function register(RED: NodeAPI): void {
  function IntuneConfig(this: IntuneConfigNode, def: IntuneConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    // "Verify connection" compares forms with what this node was deployed with (saved-secrets.ts).
    rememberDeployed(node, def);
    node.board = new HealthBoard();
    let conn: IntuneConnection | undefined;
    let problem: Error | undefined;
    let recheck: NodeJS.Timeout | undefined;

    const log = { warn: (m: string) => node.warn(m), debug: (m: string) => node.debug(m) };

    function checkCertificateExpiry() {
      const cert = conn?.certificate;
      if (!cert) return;
      const days = daysLeft(cert);
      if (days < 0) {
        node.board.set({ level: 'error', key: 'intune-config.status.certExpired', text: 'certificate expired' });
        node.error(`The certificate expired on ${cert.notAfter.toISOString().slice(0, 10)}: upload a renewed one`);
      } else if (days < EXPIRY_WARNING_DAYS) {
        node.board.set({ level: 'warn', key: 'intune-config.status.certExpiresSoon', text: `certificate expires in ${days} d`, params: { days } });
        node.warn(`The certificate expires in ${days} day(s), on ${cert.notAfter.toISOString().slice(0, 10)}: renew it and upload the new one`);
      }
    }

    try {
      const settings = parseSettings(defRecord(def), caFromTlsConfig(RED, def.tls));
      // proxy: the chosen http proxy node, else the environment
      settings.proxy = proxySource(RED, def.proxy);
      conn = new IntuneConnection(settings, node.credentials ?? {}, log);
      node.board.set({ level: 'ok', key: 'intune-config.status.ready', text: 'ready' });
      checkCertificateExpiry();
      if (conn.certificate) recheck = setInterval(checkCertificateExpiry, CERT_RECHECK_MS);
    } catch (err) {
      problem = err as Error;
      node.board.set({ level: 'error', key: 'intune-config.status.error', text: problem.message, literal: true });
      // Only the plain message: ConnectionError never carries a secret.
      node.error(`Intune connection not usable: ${problem.message}`);
    }

    node.connection = () => {
      if (conn) return conn;
      throw problem ?? new ConnectionError('invalidConfig', 'The Intune connection is not configured');
    };

    node.on('close', (done: () => void) => {
      if (recheck) clearInterval(recheck);
      conn?.close();
      conn = undefined;
      node.board.removeAllListeners();
      done();
    });
  }

  registerNode(RED, 'intune-config', IntuneConfig, {
    credentials: {
      clientSecret: { type: 'password' },
      // 'password' so that Node-RED never sends the key material back to the editor (it gets has_pfx).
      pfx: { type: 'password' },
      pfxName: { type: 'text' },
      passphrase: { type: 'password' },
      // authType certificatePem: the certificate is public; the key and its passphrase are not.
      certificatePem: { type: 'text' },
      certificateName: { type: 'text' },
      privateKeyPem: { type: 'password' },
      privateKeyName: { type: 'text' },
      keyPassphrase: { type: 'password' },
    },
  });

  // ---------------------------------------------------------------- admin endpoints (saved secrets: saved-secrets.ts)
  const SECRET_KEYS = ['clientSecret', 'pfx', 'passphrase', 'certificatePem', 'privateKeyPem', 'keyPassphrase'] as const;
  type SecretKey = (typeof SECRET_KEYS)[number];
  const NEEDED: Record<IntuneAuthType, readonly SecretKey[]> = {
    secret: ['clientSecret'],
    certificate: ['pfx', 'passphrase'],
    certificatePem: ['certificatePem', 'privateKeyPem', 'keyPassphrase'],
  };
  const verifyRules: SecretRules<SecretKey> = {
    type: 'intune-config',
    keys: SECRET_KEYS,
    endpointOf: secretEndpoint,
    needed: (raw) => NEEDED[raw.authType as IntuneAuthType] ?? SECRET_KEYS,
    pairs: [
      ['pfx', 'passphrase'],
      ['privateKeyPem', 'keyPassphrase'],
    ],
  };
  // The certificate check contacts nobody: only the file/password pairing applies.
  const certificateRules: SecretRules<SecretKey> = { type: 'intune-config', keys: SECRET_KEYS, needed: () => [], pairs: verifyRules.pairs };

  const guard = RED.auth.needsPermission('intune-config.write');

  RED.httpAdmin.post('/intune-config/verify', guard, async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown> & { tls?: string };
    try {
      const form = readForm(RED, body, verifyRules);
      if (isRefusal(form)) {
        res.json({ ...form, warnings: [] });
        return;
      }
      const { proxy, problem } = formProxy(RED, form.raw);
      if (problem) {
        res.json({ ...problem, warnings: [] });
        return;
      }
      const answer = await verifyConnection(form.raw, form.secrets, { ca: caFromTlsConfig(RED, typeof form.raw.tls === 'string' ? form.raw.tls : undefined), proxy });
      res.json(answer);
    } catch (err) {
      // verifyConnection answers every expected failure itself; this is a bug path. No details leak.
      RED.log.error(`intune-config verify failed unexpectedly: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, code: 'unexpected', message: 'Verification failed unexpectedly', params: {} });
    }
  });

  /** Certificate details for the editor: a .pfx with its password, or (`format: 'pem'`) a PEM certificate and key. */
  RED.httpAdmin.post('/intune-config/certificate', guard, (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const pem = body.format === 'pem';
    const form = readForm(
      RED,
      {
        id: body.id,
        credentials: pem
          ? { certificatePem: body.certificatePem, privateKeyPem: body.privateKeyPem, keyPassphrase: body.keyPassphrase }
          : { pfx: body.pfx, passphrase: body.passphrase },
      },
      certificateRules,
    );
    if (isRefusal(form)) {
      res.json(form);
      return;
    }
    const secrets = form.secrets;
    if (pem ? !secrets.certificatePem : !secrets.pfx) {
      const field = pem ? 'certificatePem' : 'pfx';
      res.json({ ok: false, code: 'invalidConfig', message: pem ? 'No certificate (PEM) has been given' : 'No certificate (.pfx) has been uploaded', params: { field, reason: 'required' } });
      return;
    }
    try {
      const c = pem ? loadPem(secrets.certificatePem!, secrets.privateKeyPem ?? '', secrets.keyPassphrase ?? '') : loadPfx(secrets.pfx!, secrets.passphrase ?? '');
      const left = daysLeft(c);
      res.json({
        ok: left >= 0,
        code: left < 0 ? 'expiredCertificate' : 'ok',
        message: left < 0 ? `The certificate expired on ${c.notAfter.toISOString().slice(0, 10)}` : `Certificate ${c.subject}, valid until ${c.notAfter.toISOString().slice(0, 10)}`,
        params: {
          subject: c.subject,
          issuer: c.issuer,
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
          thumbprintSha256: c.thumbprintSha256,
          thumbprintSha1: c.thumbprintSha1,
          daysLeft: left,
        },
      });
    } catch (err) {
      const e = err instanceof CertificateError ? err : new CertificateError('badCertificate', 'The certificate file cannot be read', { reason: 'unreadable' });
      res.json({ ok: false, code: e.code, message: e.message, params: e.params });
    }
  });
};
