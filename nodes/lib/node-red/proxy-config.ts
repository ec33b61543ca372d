/**
 * Where a connection config node takes its proxy from: the core `http proxy`
 * configuration node it names (with that node's user and password), else the
 * process environment, with Node-RED's `proxyOptions` runtime setting.
 */
import type { NodeAPI } from 'node-red';
import { fromProxyError } from '../shared/connection-errors';
import { checkProxyPath } from '../shared/proxy-agent';
import type { ProxyOptions, ProxySource } from '../shared/proxy-route';

/** The core `http proxy` node as the runtime holds it (@node-red/nodes core/network/06-httpproxy.js). */
type HttpProxyNode = { type?: string; url?: string; noproxy?: string[]; credentials?: { username?: string; password?: string } };

/** Node-RED's `proxyOptions` setting, when the runtime has one. */
function runtimeProxyOptions(RED: NodeAPI): ProxyOptions | undefined {
  try {
    const o = (RED.settings as unknown as { proxyOptions?: ProxyOptions }).proxyOptions;
    return o && typeof o === 'object' ? { favourUpperCase: !!o.favourUpperCase, lowerCaseOnly: !!o.lowerCaseOnly, excludeNpm: !!o.excludeNpm } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The proxy source for a config node whose `proxy` property is `id` (empty:
 * the environment). Throws a plain-word Error when the named node is not
 * deployed, rather than silently going direct.
 */
export function proxySource(RED: NodeAPI, id?: unknown): ProxySource {
  const options = runtimeProxyOptions(RED);
  const ref = typeof id === 'string' ? id.trim() : '';
  if (!ref || ref === '_ADD_') return { options };
  const n = RED.nodes.getNode(ref) as unknown as HttpProxyNode | null;
  if (!n || (n.type && n.type !== 'http proxy')) {
    throw new Error('The chosen proxy configuration is not deployed: deploy it first, or choose none to use the HTTP_PROXY / HTTPS_PROXY environment');
  }
  if (!n.url) throw new Error('The chosen proxy configuration has no URL');
  return {
    node: {
      url: String(n.url),
      noProxy: Array.isArray(n.noproxy) ? n.noproxy.map(String) : [],
      username: n.credentials?.username || undefined,
      password: n.credentials?.password || undefined,
    },
    options,
  };
}

/** What a "Verify connection" endpoint answers when the proxy is the problem. */
export interface ProxyVerifyProblem {
  ok: false;
  code: string;
  message: string;
  params: Record<string, unknown>;
}

/**
 * The proxy source of a "Verify connection" form (its `proxy` field names a
 * deployed `http proxy` node, or none for the environment), or the answer
 * to give when that node cannot be used.
 */
export function formProxy(RED: NodeAPI, body: Record<string, unknown>): { proxy?: ProxySource; problem?: ProxyVerifyProblem } {
  try {
    return { proxy: proxySource(RED, body.proxy) };
  } catch (err) {
    const message = (err as Error).message;
    return { problem: { ok: false, code: 'proxyConfig', message, params: { field: 'proxy', message } } };
  }
}

/**
 * Opens a tunnel to each target through the proxy it would take, for
 * "Verify connection" of services whose clients report only "cannot be
 * reached": the answer names the proxy as the problem (unreachable, 407,
 * refused CONNECT), or null when the proxy lets the connection through.
 */
export async function proxyPrecheck(targets: string[], proxy: ProxySource | undefined, opts: { ca?: string | string[]; timeoutMs?: number } = {}): Promise<ProxyVerifyProblem | null> {
  for (const target of targets) {
    const pe = await checkProxyPath(target, proxy, opts);
    if (pe) {
      const ce = fromProxyError(pe);
      return { ok: false, code: ce.code, message: ce.message, params: { ...ce.params, message: ce.message } };
    }
  }
  return null;
}
