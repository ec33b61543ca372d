/**
 * Which proxy a request takes, decided the way Node-RED's own http request
 * node decides it (@node-red/nodes core/network/lib/proxyHelper.js, "strict"
 * mode): a chosen `http proxy` configuration node wins and then the process
 * environment is not read at all; otherwise `https_proxy` / `http_proxy`
 * (either case, lower case first), then `all_proxy`, and `no_proxy` (either
 * case) lists hosts that go direct. Like Node-RED, loopback is NOT exempt by
 * default: only what NO_PROXY (or the node's "ignore hosts") names goes direct.
 *
 * Kept here rather than required from @node-red/nodes, which is Node-RED's
 * internal file and not a dependency of this package; test/proxy-route.test
 * compares the two on the same cases.
 */

/** Settings of a core `http proxy` configuration node, with its credentials. */
export interface ProxyNodeSettings {
  url: string;
  /** Hosts that go direct ("ignore hosts" in the node's dialog). */
  noProxy?: string[];
  username?: string;
  password?: string;
}

/** Node-RED's `proxyOptions` runtime setting (settings.js), the parts that apply here. */
export interface ProxyOptions {
  favourUpperCase?: boolean;
  lowerCaseOnly?: boolean;
  excludeNpm?: boolean;
}

/** Where a connection takes its proxy from. */
export interface ProxySource {
  /** A chosen `http proxy` node: wins over the environment. */
  node?: ProxyNodeSettings;
  /** The environment to read; process.env when absent. */
  env?: Record<string, string | undefined>;
  options?: ProxyOptions;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** The environment the decision reads: the node's settings dressed as variables, as Node-RED does. */
function effectiveEnv(src: ProxySource): Record<string, string | undefined> {
  if (src.node) {
    return { no_proxy: (src.node.noProxy ?? []).join(','), http_proxy: src.node.url, https_proxy: src.node.url };
  }
  return src.env ?? process.env;
}

function getEnv(env: Record<string, string | undefined>, key: string, o: ProxyOptions): string {
  if (o.excludeNpm && key.startsWith('npm_config_')) return '';
  if (o.lowerCaseOnly) return env[key.toLowerCase()] || '';
  if (o.favourUpperCase) return env[key.toUpperCase()] || env[key.toLowerCase()] || '';
  return env[key.toLowerCase()] || env[key.toUpperCase()] || '';
}

/** The proxy URL text for requests of `protocol` ('http' | 'https'), before NO_PROXY; '' for none. */
export function proxyUrlFor(protocol: 'http' | 'https', src: ProxySource): string {
  const env = effectiveEnv(src);
  const o = src.options ?? {};
  let proxy = getEnv(env, `npm_config_${protocol}_proxy`, o) || getEnv(env, `${protocol}_proxy`, o) || getEnv(env, 'npm_config_proxy', o) || getEnv(env, 'all_proxy', o);
  if (proxy && !proxy.includes('://')) proxy = `${protocol}://${proxy}`;
  return proxy;
}

/**
 * Whether `hostname:port` goes direct by NO_PROXY: exact names, `.suffix` and
 * `*.suffix` for subdomains, `host:port` for one port, `*` for everything.
 * `hostname` keeps the brackets of an IPv6 address, as in a URL's host.
 */
export function bypassesProxy(hostname: string, port: number, src: ProxySource): boolean {
  const env = effectiveEnv(src);
  const o = src.options ?? {};
  const list = (getEnv(env, 'npm_config_no_proxy', o) || getEnv(env, 'no_proxy', o)).toLowerCase();
  if (!list) return false;
  if (list === '*') return true;
  const host = hostname.toLowerCase();
  return list.split(/[,\s]/).some((entry) => {
    if (!entry) return false;
    const m = /^(.+):(\d+)$/.exec(entry);
    let name = m ? m[1] : entry;
    const entryPort = m ? parseInt(m[2], 10) : 0;
    if (entryPort && entryPort !== port) return false;
    if (!/^[.*]/.test(name)) return host === name;
    if (name.startsWith('*')) name = name.slice(1);
    return host.endsWith(name);
  });
}

/** The proxy URL `target` goes through (credentials of the node filled in), or null to go direct. */
export function proxyForUrl(target: string | URL, src: ProxySource): URL | null {
  let u: URL;
  try {
    u = typeof target === 'string' ? new URL(target) : target;
  } catch {
    return null;
  }
  const protocol = u.protocol.replace(/:$/, '');
  if (protocol !== 'http' && protocol !== 'https') return null;
  const port = parseInt(u.port, 10) || DEFAULT_PORTS[protocol];
  if (bypassesProxy(u.host.replace(/:\d*$/, ''), port, src)) return null;
  return parseProxyUrl(proxyUrlFor(protocol, src), src.node);
}

/**
 * The proxy URL as the agent needs it: the node's user and password win over
 * any in the URL (as in Node-RED). Throws a plain-word Error for a URL that
 * is not http(s)://host:port.
 */
export function parseProxyUrl(text: string, node?: ProxyNodeSettings): URL | null {
  if (!text) return null;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`The proxy URL "${redactProxyText(text)}" is not a valid URL: write it as http://host:port`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`The proxy URL "${proxyLabel(u)}" must start with http:// or https://`);
  if (!u.hostname) throw new Error('The proxy URL names no host');
  if (node && (node.username || node.password)) {
    u.username = encodeURIComponent(node.username ?? '');
    u.password = encodeURIComponent(node.password ?? '');
  }
  return u;
}

/** host:port of a proxy, for messages: never its user or password. */
export function proxyLabel(u: URL): string {
  return `${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

/** A proxy URL text with any user:password@ removed, for messages. */
export function redactProxyText(text: string): string {
  return text.replace(/\/\/[^/@]*@/, '//').slice(0, 200);
}
