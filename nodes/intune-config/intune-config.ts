/**
 * intune-config: one Intune tenant + app registration. Owns the token cache
 * and the shared Graph client that every Intune node using it goes through,
 * and serves "Verify connection" / certificate info to the editor.
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import { ConnectionError } from '../lib/connection-errors';
import { HealthBoard } from '../lib/config-health';
import { caFromTlsConfig, expandEnvReferences, formCredentials } from '../lib/editor-form';
import { formProxy, proxySource } from '../lib/proxy-config';
import type { IntuneConfigCredentials, IntuneConfigNode } from '../lib/intune-config-api';
import { EXPIRY_WARNING_DAYS, daysLeft, loadPfx, CertificateError } from '../lib/certificate';
import {
  IntuneConnection,
  parseSettings,
  verifyConnection,
  type ConnectionSecrets,
} from '../lib/intune-connection';

interface IntuneConfigDef extends NodeDef {
  tenantId: string;
  clientId: string;
  authType: 'secret' | 'certificate';
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
      const settings = parseSettings(def as unknown as Record<string, unknown>, caFromTlsConfig(RED, def.tls));
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

  RED.nodes.registerType('intune-config', IntuneConfig as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: {
      clientSecret: { type: 'password' },
      // 'password' so that Node-RED never sends the key material back to the editor (it gets has_pfx).
      pfx: { type: 'password' },
      pfxName: { type: 'text' },
      passphrase: { type: 'password' },
    },
  });

  const SECRET_KEYS = ['clientSecret', 'pfx', 'passphrase'] as const;
  const formSecrets = (body: { id?: string; credentials?: Credentials }): ConnectionSecrets => formCredentials(RED, body, SECRET_KEYS);

  const guard = RED.auth.needsPermission('intune-config.write');

  RED.httpAdmin.post('/intune-config/verify', guard, async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown> & { id?: string; credentials?: Credentials; tls?: string; proxy?: string };
    try {
      const { proxy, problem } = formProxy(RED, body);
      if (problem) {
        res.json({ ...problem, warnings: [] });
        return;
      }
      const answer = await verifyConnection(expandEnvReferences(body), formSecrets(body), { ca: caFromTlsConfig(RED, body.tls), proxy });
      res.json(answer);
    } catch (err) {
      // verifyConnection answers every expected failure itself; this is a bug path. No details leak.
      RED.log.error(`intune-config verify failed unexpectedly: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, code: 'unexpected', message: 'Verification failed unexpectedly', params: {} });
    }
  });

  RED.httpAdmin.post('/intune-config/certificate', guard, (req: Request, res: Response) => {
    const body = (req.body ?? {}) as { id?: string; pfx?: string; passphrase?: string };
    const secrets = formSecrets({ id: body.id, credentials: { pfx: body.pfx, passphrase: body.passphrase } });
    if (!secrets.pfx) {
      res.json({ ok: false, code: 'invalidConfig', message: 'No certificate (.pfx) has been uploaded', params: { field: 'pfx', reason: 'required' } });
      return;
    }
    try {
      const c = loadPfx(secrets.pfx, secrets.passphrase ?? '');
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
