/**
 * intune-acmp-config: one SICS connection (Aagon AESB) and the ACMP servers
 * reachable through it. Owns the SicsClient (session, TLS, reply target)
 * that the ACMP nodes share, and serves "Verify connection" to the editor.
 */
import { caFromTlsConfig } from '../lib/node-red/editor-form';
import { isRefusal, readForm, rememberDeployed, type SecretRules } from '../lib/node-red/saved-secrets';
import { formProxy, proxyPrecheck, proxySource } from '../lib/node-red/proxy-config';
import type { ProxySource } from '../lib/shared/proxy-route';
import type { NodeAPI, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import { HealthBoard } from '../lib/node-red/config-health';
import { defRecord, registerNode } from '../lib/node-red/register';
import { secretEndpoint, type AcmpConfigCredentials, type AcmpConfigNode } from '../lib/acmp/acmp-config-api';
import { translator } from '../lib/node-red/i18n';
import { SicsClient } from '../lib/acmp/sics-client';
import { SicsError } from '../lib/acmp/sics-errors';
import { parseSicsSettings, type AcmpServerRoute } from '../lib/acmp/sics-settings';
import { verifySicsConnection } from '../lib/acmp/sics-verify';

interface AcmpConfigDef extends NodeDef {
  host: string;
  port?: string | number;
  useTls?: boolean | string;
  /** Id of a tls-config node (extra CA). */
  tls?: string;
  allowUnencrypted?: boolean | string;
  timeoutSec?: string | number;
  replyVirtualRouter?: string;
  servers?: unknown;
  /** Id of a core `http proxy` node; empty: HTTP(S)_PROXY / NO_PROXY of the environment. */
  proxy?: string;
}



export = function register(RED: NodeAPI): void {
  const t = translator(RED, 'intune-acmp-config');

  function AcmpConfig(this: AcmpConfigNode, def: AcmpConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    // "Verify connection" compares forms with what this node was deployed with (saved-secrets.ts).
    rememberDeployed(node, def);
    node.board = new HealthBoard();
    let client: SicsClient | undefined;
    let servers: AcmpServerRoute[] = [];
    let problem: Error | undefined;

    try {
      const settings = parseSicsSettings(defRecord(def), caFromTlsConfig(RED, def.tls));
      // proxy: the chosen http proxy node, else the environment
      settings.proxy = proxySource(RED, def.proxy);
      servers = settings.servers;
      const creds = (node.credentials ?? {}) as AcmpConfigCredentials;
      client = new SicsClient(settings, { user: creds.user, password: creds.password }, { warn: (m) => node.warn(m), debug: (m) => node.debug(m) }, { clientKey: node.id });
      node.board.set({ level: 'ok', key: 'intune-acmp-config.status.ready', text: 'ready' });
      client.on('health', (h: { level: 'ok' | 'warn' | 'error'; code: string; text: string }) => {
        node.board.set({ level: h.level, key: `intune-acmp-config.status.${h.code}`, text: h.text });
      });
      if (!settings.tls) node.warn(t('log.plainHttp', 'SICS at __host__:__port__ is used over plain HTTP: user name, password and all messages travel unencrypted', { host: settings.host, port: settings.port }));
    } catch (err) {
      problem = err as Error;
      node.board.set({ level: 'error', key: 'intune-acmp-config.status.invalidConfig', text: problem.message, literal: true });
      // Only the plain message: SicsError never carries a secret.
      node.error(t('log.notUsable', 'SICS connection not usable: __message__', { message: problem.message }));
    }

    node.client = () => {
      if (client) return client;
      throw problem ?? new SicsError('invalidConfig', 'The SICS connection is not configured');
    };
    // A broken configuration's server list means nothing: its users get the configuration problem instead.
    node.servers = () => {
      if (problem) throw problem;
      return [...servers];
    };

    node.on('close', (done: () => void) => {
      const c = client;
      client = undefined;
      problem = new SicsError('closed', 'The SICS connection is being redeployed');
      node.board.removeAllListeners();
      (c ? c.close() : Promise.resolve()).then(
        () => done(),
        () => done(),
      );
    });
  }

  registerNode(RED, 'intune-acmp-config', AcmpConfig, {
    credentials: {
      user: { type: 'text' },
      password: { type: 'password' },
    },
  });

  // ---------------------------------------------------------------- verify (saved secrets: saved-secrets.ts)
  const verifyRules: SecretRules<keyof AcmpConfigCredentials> = {
    type: 'intune-acmp-config',
    keys: ['user', 'password'],
    endpointOf: secretEndpoint,
  };



  const guard = RED.auth.needsPermission('intune-acmp-config.write');

  RED.httpAdmin.post('/intune-acmp-config/verify', guard, async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    try {
      const form = readForm(RED, body, verifyRules);
      if (isRefusal(form)) {
        res.json({ ...form, servers: [], warnings: [] });
        return;
      }
      const ca = caFromTlsConfig(RED, typeof form.raw.tls === 'string' ? form.raw.tls : undefined);
      // proxy: a SicsError only says "cannot be reached", so the proxy is asked first, to name it
      const { proxy, problem } = formProxy(RED, form.raw);
      const viaProxy = problem ?? (await precheckSics(form.raw, proxy, ca));
      if (viaProxy) {
        res.json({ ...viaProxy, servers: [], warnings: [] });
        return;
      }
      const answer = await verifySicsConnection(form.raw, form.secrets, {
        ca,
        proxy,
        log: { warn: (m) => RED.log.warn(`intune-acmp-config verify: ${m}`) },
      });
      res.json(answer);
    } catch (err) {
      // verifySicsConnection answers every expected failure itself; this is a bug path. No details leak.
      RED.log.error(`intune-acmp-config verify failed unexpectedly: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, code: 'unexpected', message: 'Verification failed unexpectedly', params: {}, servers: [], warnings: [] });
    }
  });

  /** The proxy's answer for the form's SICS address (the scheme it tries first); null when it lets through or the form is invalid. */
  async function precheckSics(raw: Record<string, unknown>, proxy: ProxySource | undefined, ca: string | undefined) {
    let settings;
    try {
      settings = parseSicsSettings(raw, ca);
    } catch {
      return null; // verifySicsConnection names the field
    }
    const host = settings.host.includes(':') && !settings.host.startsWith('[') ? `[${settings.host}]` : settings.host;
    return proxyPrecheck([`${settings.tls ? 'https' : 'http'}://${host}:${settings.port}`], proxy, { ca, timeoutMs: Math.min(settings.timeoutMs, 10_000) });
  }
};
