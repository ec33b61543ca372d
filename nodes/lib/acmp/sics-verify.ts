/**
 * "Verify connection" of the SICS config node: signs in and pings every
 * configured ACMP server, answering in plain words.
 */
import type { ProxySource } from '../shared/proxy-route';
import { newMessageId, WireError } from './acmp-wire';
import { SicsClient, type SicsLog } from './sics-client';
import { SicsError } from './sics-errors';
import { parseSicsSettings, type SicsSecrets, type SicsSettings } from './sics-settings';

// ------------------------------------------------------------------ verify

export interface VerifyServer {
  serverId: string;
  ok: boolean;
  code: string;
  message: string;
  ms?: number;
}

export interface SicsVerifyAnswer {
  ok: boolean;
  code: string;
  message: string;
  params: Record<string, unknown>;
  transport: 'https' | 'http' | 'http-fallback' | null;
  servers: VerifyServer[];
  warnings: Array<{ code: string; message: string }>;
}

/**
 * "Verify connection": sign in, create a reply target, ping every
 * configured ACMP server. Plain words; never a password or token.
 */
export async function verifySicsConnection(
  raw: Record<string, unknown>,
  secrets: SicsSecrets,
  opts: { ca?: string | string[]; proxy?: ProxySource; signal?: AbortSignal; log?: SicsLog; pingTimeoutMs?: number } = {},
): Promise<SicsVerifyAnswer> {
  let client: SicsClient | undefined;
  const warnings: SicsVerifyAnswer['warnings'] = [];
  try {
    const settings = parseSicsSettings(raw, opts.ca);
    const quick: SicsSettings = { ...settings, retries: Math.min(settings.retries, 1), proxy: opts.proxy };
    client = new SicsClient(quick, secrets, { warn: (m) => opts.log?.warn(m), debug: (m) => opts.log?.debug?.(m) }, { clientKey: 'verify' });
    await client.login(opts.signal);
    const transport = client.transport;
    if (transport === 'http-fallback') warnings.push({ code: 'unencrypted', message: 'TLS failed; the connection works only unencrypted (allowed by the setting). Passwords and data travel in clear text.' });
    if (transport === 'http') warnings.push({ code: 'plainHttp', message: 'The connection uses plain HTTP: passwords and data travel in clear text.' });
    const servers: VerifyServer[] = [];
    for (const s of settings.servers) {
      const t0 = Date.now();
      try {
        await client.call(s, { kind: 'ping', header: { messageId: newMessageId(), sentAt: new Date().toISOString() } }, { signal: opts.signal, replyTimeoutMs: opts.pingTimeoutMs ?? Math.min(settings.timeoutMs, 10_000) });
        servers.push({ serverId: s.serverId, ok: true, code: 'ok', message: 'answers', ms: Date.now() - t0 });
      } catch (err) {
        const e = err as SicsError;
        servers.push({ serverId: s.serverId, ok: false, code: e.code ?? 'unexpected', message: e.message });
      }
    }
    const bad = servers.filter((s) => !s.ok);
    if (!settings.servers.length) warnings.push({ code: 'noServers', message: 'No ACMP server is configured yet: add at least one with its server id and routing.' });
    return {
      ok: bad.length === 0,
      code: bad.length ? 'serverUnanswered' : 'ok',
      message: bad.length
        ? `Signed in to SICS, but ${bad.length} of ${servers.length} ACMP server(s) did not answer: ${bad.map((b) => `${b.serverId}: ${b.message}`).join('; ')}`
        : `Signed in to SICS at ${settings.host}:${settings.port}${servers.length ? `; ${servers.length} ACMP server(s) answer` : ''}`,
      params: { host: settings.host, port: settings.port, servers: servers.length, failed: bad.length },
      transport,
      servers,
      warnings,
    };
  } catch (err) {
    const e = err instanceof SicsError ? err : err instanceof WireError ? new SicsError('invalidRequest', err.message) : new SicsError('httpError', (err as Error)?.message ?? String(err));
    return { ok: false, code: e.code, message: e.message, params: e.params, transport: client?.transport ?? null, servers: [], warnings };
  } finally {
    await client?.close();
  }
}
