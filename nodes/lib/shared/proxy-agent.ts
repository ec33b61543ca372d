/**
 * Keep-alive agents that reach hosts through an HTTP proxy (CONNECT tunnel,
 * Basic proxy authentication) unless NO_PROXY sends them direct. The tunnel
 * itself is hpagent's, the library Node-RED's http request node uses; this
 * module only picks direct or proxied per host and turns the proxy's
 * failures into ProxyError, so callers can say that the proxy is the problem.
 *
 * The origin's TLS (extra CA, server name) is set up by https.Agent on the
 * tunnelled socket, so a TLS configuration's CA still applies to the server
 * behind the proxy.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { HttpProxyAgent, HttpsProxyAgent } from 'hpagent';
import { bypassesProxy, proxyForUrl, proxyLabel, proxyUrlFor, parseProxyUrl, type ProxySource } from './proxy-route';

export type ProxyErrorCode = 'ERR_PROXY_UNREACHABLE' | 'ERR_PROXY_AUTH' | 'ERR_PROXY_REFUSED';

/**
 * The proxy, not the server behind it, failed. The message is plain words
 * and carries no credentials. Deliberately no `code` property: clients that
 * quote `code || message` of a transport error then quote these words.
 */
export class ProxyError extends Error {
  override name = 'ProxyError';
  constructor(
    readonly kind: ProxyErrorCode,
    message: string,
    /** host:port of the proxy, and of the server the tunnel was for. */
    readonly proxy: string,
    readonly target: string,
    /** The proxy's HTTP status for a refused CONNECT, or the socket error code. */
    readonly reason: string,
  ) {
    super(message);
  }
}

/** The ProxyError in an error or its causes (axios keeps the agent's error as `cause`). */
export function findProxyError(err: unknown): ProxyError | null {
  let e: unknown = err;
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    if (e instanceof ProxyError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

const SOCKET_CODES = /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE/;
/** TLS to an https:// proxy (before any CONNECT): the proxy's own certificate. */
const PROXY_TLS_CODES = /ERR_SSL|ERR_TLS|CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|EPROTO|HOSTNAME|ALTNAME/;

/** Turns hpagent's failure into a ProxyError; answers the error unchanged when it is not about the proxy. */
export function toProxyError(err: Error, proxy: URL, target: string): Error {
  const label = proxyLabel(proxy);
  const status = /^Bad response: (\d{3})/.exec(err?.message ?? '');
  if (status) {
    const n = Number(status[1]);
    // The answer to CONNECT is the proxy's own (the server never sees a CONNECT), so a 401 is about the
    // proxy's credentials too: tinyproxy answers 407 without credentials and 401 for wrong ones.
    if (n === 407 || n === 401) {
      return new ProxyError('ERR_PROXY_AUTH', `The proxy ${label} asks for authentication (HTTP ${n}): check the user and password of the proxy configuration`, label, target, String(n));
    }
    return new ProxyError('ERR_PROXY_REFUSED', `The proxy ${label} refused the connection to ${target} (HTTP ${n}): the proxy may block this host or port, or cannot reach it`, label, target, String(n));
  }
  const code = (err as { code?: string })?.code ?? '';
  if (err?.message === 'Proxy timeout' || SOCKET_CODES.test(code)) {
    const why = code || 'no answer';
    return new ProxyError('ERR_PROXY_UNREACHABLE', `The proxy ${label} cannot be reached (${why}): check the proxy URL and that the proxy runs`, label, target, why);
  }
  if (proxy.protocol === 'https:' && PROXY_TLS_CODES.test(code)) {
    return new ProxyError('ERR_PROXY_UNREACHABLE', `The proxy ${label} cannot be reached (${code}): its TLS certificate is not trusted; add its CA in the TLS configuration`, label, target, code);
  }
  return err;
}

type Callback = (err: Error | null, stream: Duplex) => void;
type ConnOptions = { host?: string | null; port?: number | string | null; timeout?: number };

function portOf(o: ConnOptions, fallback: number): number {
  return Number(o.port) || fallback;
}

function hostForMatch(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** HTTPS through the proxy, or direct for NO_PROXY hosts; keep-alive pools either way. */
class RoutingHttpsAgent extends HttpsProxyAgent {
  constructor(
    private readonly route: ProxySource,
    private readonly proxyUrl: URL,
    opts: https.AgentOptions,
    proxyCa: string[] | undefined,
  ) {
    super({ ...opts, proxy: proxyUrl, proxyRequestOptions: proxyCa ? { ca: proxyCa } : undefined });
  }

  override createConnection(options: https.RequestOptions, cb?: Callback): Duplex | null | undefined {
    const host = String(options.host ?? 'localhost');
    const port = portOf(options, 443);
    if (bypassesProxy(hostForMatch(host), port, this.route)) return https.Agent.prototype.createConnection.call(this, options, cb);
    const target = `${hostForMatch(host)}:${port}`;
    super.createConnection(options, (err, socket) => cb?.(err ? toProxyError(err, this.proxyUrl, target) : null, socket));
    return undefined;
  }
}

/** Plain HTTP through the proxy (a CONNECT tunnel, as Node-RED does), or direct for NO_PROXY hosts. */
class RoutingHttpAgent extends HttpProxyAgent {
  constructor(
    private readonly route: ProxySource,
    private readonly proxyUrl: URL,
    opts: http.AgentOptions & { ca?: string | string[] },
  ) {
    const { ca, ...rest } = opts;
    super({ ...rest, proxy: proxyUrl, proxyRequestOptions: ca ? { ca: ([] as string[]).concat(ca) } : undefined });
  }

  override createConnection(options: http.ClientRequestArgs, cb?: Callback): Duplex | null | undefined {
    const host = String(options.host ?? 'localhost');
    const port = portOf(options, 80);
    if (bypassesProxy(hostForMatch(host), port, this.route)) return http.Agent.prototype.createConnection.call(this, options, cb);
    const target = `${hostForMatch(host)}:${port}`;
    super.createConnection(options, (err, socket) => cb?.(err ? toProxyError(err, this.proxyUrl, target) : null, socket));
    return undefined;
  }
}

/**
 * An https.Agent for `opts`: through the proxy of `route` when one is set for https, else a plain one.
 * `proxyCa`: the CA certificates an https:// proxy is checked against (the origin's come in `opts`).
 */
export function proxiedHttpsAgent(route: ProxySource | undefined, opts: https.AgentOptions, proxyCa?: string[]): https.Agent {
  const url = route ? parseProxyUrl(proxyUrlFor('https', route), route.node) : null;
  return url && route ? new RoutingHttpsAgent(route, url, opts, proxyCa) : new https.Agent(opts);
}

/** An http.Agent for `opts`: through the proxy of `route` when one is set for http, else a plain one. */
export function proxiedHttpAgent(route: ProxySource | undefined, opts: http.AgentOptions & { ca?: string | string[] }): http.Agent {
  const url = route ? parseProxyUrl(proxyUrlFor('http', route), route.node) : null;
  if (url && route) return new RoutingHttpAgent(route, url, opts);
  const { ca: _ca, ...rest } = opts;
  return new http.Agent(rest);
}

/**
 * Opens (and closes) a CONNECT tunnel to `target` the way requests would,
 * for "Verify connection": null when no proxy applies or the tunnel opens,
 * the ProxyError when the proxy is the problem. Other failures (the server
 * itself) are left to the real check, which explains them better.
 */
export async function checkProxyPath(target: string, route: ProxySource | undefined, opts: { ca?: string | string[]; timeoutMs?: number } = {}): Promise<ProxyError | null> {
  if (!route) return null;
  const proxy = proxyForUrl(target, route);
  if (!proxy) return null;
  const u = new URL(target);
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  // Only the tunnel is wanted, not the origin's TLS: the plain agent's CONNECT does exactly that.
  const agent = new RoutingHttpAgent({ node: { url: proxy.href } }, proxy, { ca: opts.ca });
  try {
    const socket = await new Promise<Duplex | null | undefined>((resolve, reject) => {
      agent.createConnection({ host, port, timeout: opts.timeoutMs ?? 10_000 }, (err, s) => (err ? reject(err) : resolve(s)));
    });
    socket?.destroy();
    return null;
  } catch (err) {
    return findProxyError(err);
  } finally {
    agent.destroy();
  }
}
