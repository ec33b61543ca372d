/**
 * The HTTPS plumbing every outside call goes through: one keep-alive agent
 * per connection (carrying an extra CA for proxies and the simulated
 * services, and the connection's HTTP proxy), and the network module
 * msal-node uses, so that token requests travel the same agent (and proxy)
 * as Graph requests.
 */
import type http from 'node:http';
import type https from 'node:https';
import tls from 'node:tls';
import axios, { AxiosInstance } from 'axios';
import { proxiedHttpAgent, proxiedHttpsAgent } from './proxy-agent';
import type { ProxySource } from './proxy-route';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

export interface TransportOptions {
  /** Extra trusted CA certificates (PEM). Added to, not replacing, Node's defaults. */
  ca?: string | string[];
  /** Per-request timeout in ms. */
  timeoutMs?: number;
  /** Where the HTTP proxy comes from (proxy-config.ts); none: always direct. */
  proxy?: ProxySource;
}

/** Node's trusted roots plus the extra CA; undefined (Node's defaults) without one. */
function trusted(ca: TransportOptions['ca']): string[] | undefined {
  const extra = ca ? (Array.isArray(ca) ? ca : [ca]) : [];
  return extra.length ? [...tls.rootCertificates, ...extra] : undefined;
}

/**
 * The TLS context trusting those roots, built once per agent. Why not the
 * agent's `ca` option: Node's https.Agent makes the text of `ca` part of its
 * socket-pool key on every request (≈150 root certificates: a 200 KB string
 * each time) and builds a new context with every certificate for every new
 * socket — measured at a tenth of the CPU time of a 100,000-device sync.
 */
function trustedContext(ca: string[] | undefined): tls.SecureContext | undefined {
  return ca ? tls.createSecureContext({ ca }) : undefined;
}

export function createHttpsAgent(opts: TransportOptions = {}): https.Agent {
  const ca = trusted(opts.ca);
  return proxiedHttpsAgent(opts.proxy, { keepAlive: true, maxSockets: 16, secureContext: trustedContext(ca) }, ca);
}

/** The plain-HTTP counterpart (SICS without TLS), through the same proxy; the CA then only serves an https:// proxy. */
export function createHttpAgent(opts: TransportOptions = {}): http.Agent {
  return proxiedHttpAgent(opts.proxy, { keepAlive: true, maxSockets: 16, ca: trusted(opts.ca) });
}

export function createAxios(agent: https.Agent, timeoutMs = 30_000): AxiosInstance {
  return axios.create({
    httpsAgent: agent,
    timeout: timeoutMs,
    // The agent carries the proxy (proxy-agent.ts): axios' own proxy support would not tunnel HTTPS.
    proxy: false,
    maxRedirects: 0,
    // Callers inspect every status themselves (throttling, AADSTS errors).
    validateStatus: () => true,
    transitional: { clarifyTimeoutError: true },
  });
}

function headersOf(raw: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined && v !== null) out[k.toLowerCase()] = String(v);
  return out;
}

/**
 * msal-node's network module on top of axios. msal expects non-2xx answers to
 * be returned (not thrown) so it can read the AADSTS error body.
 */
export function createMsalNetworkClient(agent: https.Agent, timeoutMs = 30_000): INetworkModule {
  const http = createAxios(agent, timeoutMs);
  async function send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    const res = await http.request({
      method,
      url,
      headers: options?.headers,
      data: options?.body,
      responseType: 'text',
      transformResponse: (d) => d,
    });
    let body: unknown = res.data;
    try {
      body = JSON.parse(res.data as string);
    } catch {
      /* keep text; msal reports it as a parse failure */
    }
    return { headers: headersOf(res.headers as Record<string, unknown>), body: body as T, status: res.status };
  }
  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('GET', url, options),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('POST', url, options),
  };
}
