/**
 * intune-4me-config: one 4me (or Xurrent) account and the credentials to
 * reach it (personal access token, or OAuth client credentials). Owns the
 * shared 4me client (pacing, token renewal) and the people cache that every
 * intune-4me node using it goes through, and serves "Verify connection" to
 * the editor.
 */
import { caFromTlsConfig } from '../lib/node-red/editor-form';
import { isRefusal, readForm, rememberDeployed, type SecretRules } from '../lib/node-red/saved-secrets';
import { formProxy, proxySource } from '../lib/node-red/proxy-config';
import type { NodeAPI, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import { HealthBoard } from '../lib/node-red/config-health';
import { defRecord, registerNode } from '../lib/node-red/register';
import {
  FourMeConnection,
  FourMeConfigError,
  parseFourMeSettings,
  secretEndpoint,
  verifyFourMe,
  type FourMeConfigNode,
  type FourMeSecrets,
} from '../lib/fourme/fourme-connection';
import { runSetup, type SinkInfo } from '../lib/fourme/fourme-setup-run';

interface FourMeConfigDef extends NodeDef {
  accountId: string;
  environment: string;
  region: string;
  brand: string;
  graphqlUrl?: string;
  tokenUrl?: string;
  tls?: string;
  authType: string;
  clientId?: string;
  /** Id of a core `http proxy` node; empty: HTTP(S)_PROXY / NO_PROXY of the environment. */
  proxy?: string;
  [prop: string]: unknown;
}



export = function register(RED: NodeAPI): void {
  function FourMeConfig(this: FourMeConfigNode, def: FourMeConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    // "Verify connection" compares forms with what this node was deployed with (saved-secrets.ts).
    rememberDeployed(node, def);
    node.board = new HealthBoard();
    let conn: FourMeConnection | undefined;
    let problem: Error | undefined;
    try {
      if (def.tls && !RED.nodes.getNode(def.tls)) throw new FourMeConfigError('tls', `refers to a TLS configuration (${def.tls}) that is not deployed`);
      const settings = parseFourMeSettings(defRecord(def), caFromTlsConfig(RED, def.tls));
      // proxy: the chosen http proxy node, else the environment
      settings.proxy = proxySource(RED, def.proxy);
      conn = new FourMeConnection(settings, node.credentials ?? {}, { debug: (m) => node.debug(m), warn: (m) => node.warn(m) });
      node.board.set({ level: 'ok', key: 'intune-4me-config.status.ready', text: 'ready' });
    } catch (err) {
      problem = err as Error;
      node.board.set({ level: 'error', key: 'intune-4me-config.status.error', text: problem.message, literal: true });
      // Only the plain message: settings errors never carry a secret.
      node.error(`4me connection not usable: ${problem.message}`);
    }

    node.connection = () => {
      if (conn) return conn;
      throw problem ?? new FourMeConfigError('accountId', 'is not configured');
    };

    node.on('close', (done: () => void) => {
      conn?.close();
      conn = undefined;
      problem = new Error('The 4me connection was closed');
      node.board.removeAllListeners();
      done();
    });
  }

  registerNode(RED, 'intune-4me-config', FourMeConfig, {
    credentials: {
      token: { type: 'password' },
      clientSecret: { type: 'password' },
    },
  });

  // ---------------------------------------------------------------- verify (saved secrets: saved-secrets.ts)
  const verifyRules: SecretRules<keyof FourMeSecrets> = {
    type: 'intune-4me-config',
    keys: ['token', 'clientSecret'],
    endpointOf: secretEndpoint,
    needed: (raw) => (raw.authType === 'oauth' ? ['clientSecret'] : ['token']),
  };

  /**
   * The connection an admin request describes (Verify and Set up share it): the form with the
   * saved secrets it may use, its proxy and CA; or the refusal to answer with instead.
   */
  function connectionOf(formBody: Record<string, unknown>) {
    const form = readForm(RED, formBody, verifyRules);
    if (isRefusal(form)) return { refusal: form };
    const { proxy, problem } = formProxy(RED, form.raw);
    if (problem) return { refusal: problem };
    const tls = typeof form.raw.tls === 'string' && form.raw.tls && form.raw.environment === 'custom' ? form.raw.tls : undefined;
    return { form, proxy, ca: caFromTlsConfig(RED, tls) };
  }

  /** An AbortController that fires when the editor gives up on the answer. */
  function abortOnClose(res: Response): AbortController {
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableEnded) abort.abort();
    });
    return abort;
  }

  RED.httpAdmin.post('/intune-4me-config/verify', RED.auth.needsPermission('intune-4me-config.write'), async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const abort = abortOnClose(res);
    try {
      const c = connectionOf(body);
      if (c.refusal) {
        res.json(c.refusal);
        return;
      }
      const answer = await verifyFourMe(c.form.raw, c.form.secrets, { ca: c.ca, proxy: c.proxy, signal: abort.signal });
      if (!abort.signal.aborted) res.json(answer);
    } catch (err) {
      // verifyFourMe answers every expected failure itself; this is a bug path. No details leak.
      RED.log.error(`intune-4me-config verify failed unexpectedly: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, code: 'unexpected', message: 'Verification failed unexpectedly', params: {} });
    }
  });

  // ---------------------------------------------------------------- set up 4me (same permission and secret rules as verify)
  /** The deployed 4me sinks that use config node `id`: the set-up defines the custom fields they write. */
  function sinksUsing(id: unknown): SinkInfo[] {
    const out: SinkInfo[] = [];
    if (typeof id !== 'string' || !id) return out;
    RED.nodes.eachNode((n: { id?: string; type?: string; name?: string; fourme?: string }) => {
      if (n.type === 'intune-4me' && n.fourme === id && n.id) out.push({ id: n.id, name: n.name || n.id, props: n as Record<string, unknown> });
    });
    return out;
  }

  RED.httpAdmin.post('/intune-4me-config/setup', RED.auth.needsPermission('intune-4me-config.write'), async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const abort = abortOnClose(res);
    try {
      // The dialog's own fields are not connection properties.
      const { apply, planId, language, ...formBody } = body;
      const c = connectionOf(formBody);
      if (c.refusal) {
        res.json(c.refusal);
        return;
      }
      const answer = await runSetup(c.form.raw, c.form.secrets, {
        sinks: sinksUsing(body.id),
        apply: apply === true,
        planId: typeof planId === 'string' ? planId : undefined,
        language,
        ca: c.ca,
        proxy: c.proxy,
        signal: abort.signal,
      });
      if (!abort.signal.aborted) res.json(answer);
    } catch (err) {
      RED.log.error(`intune-4me-config set-up failed unexpectedly: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, code: 'unexpected', message: 'The set-up failed unexpectedly', params: {} });
    }
  });
};
