/**
 * The HTTPS plumbing every outside call goes through: one keep-alive agent
 * per connection (carrying an extra CA for proxies and the simulated
 * services), and the network module msal-node uses, so that token requests
 * travel the same agent as Graph requests.
 */
import https from 'node:https';
import axios, { AxiosInstance } from 'axios';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

export interface TransportOptions {
  /** Extra trusted CA certificates (PEM). Added to, not replacing, Node's defaults. */
  ca?: string | string[];
  /** Per-request timeout in ms. */
  timeoutMs?: number;
}

export function createHttpsAgent(opts: TransportOptions = {}): https.Agent {
  const extra = opts.ca ? (Array.isArray(opts.ca) ? opts.ca : [opts.ca]) : [];
  const ca = extra.length ? [...require('node:tls').rootCertificates, ...extra] : undefined;
  return new https.Agent({ keepAlive: true, maxSockets: 16, ca });
}

export function createAxios(agent: https.Agent, timeoutMs = 30_000): AxiosInstance {
  return axios.create({
    httpsAgent: agent,
    timeout: timeoutMs,
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
