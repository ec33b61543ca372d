/**
 * The settings of a SICS connection: the list of ACMP servers and the
 * config node's properties, validated (SicsError 'invalidConfig' otherwise).
 */
import type { ProxySource } from '../shared/proxy-route';
import { invalidConfig } from './sics-errors';
import { strictBool } from '../shared/validation';

// ------------------------------------------------------------------ settings

export interface AcmpServerRoute {
  /** The ACMP server id, as ACMP shows it. */
  serverId: string;
  /** Display name (optional). */
  name?: string;
  /** The virtual router in SICS through which this server is reached. */
  virtualRouter: string;
  /** The routing key this server's messages are published with. */
  routingKey: string;
}

export interface SicsSettings {
  host: string;
  port: number;
  tls: boolean;
  ca?: string | string[];
  allowUnencrypted: boolean;
  timeoutMs: number;
  retries: number;
  retryBaseMs: number;
  /** How long one consume call waits for messages. */
  consumeWaitMs: number;
  /** Virtual router of this connection's reply target. */
  replyVirtualRouter: string;
  servers: AcmpServerRoute[];
  /** Where the HTTP proxy comes from (proxy-config.ts); none: always direct. */
  proxy?: ProxySource;
}

export interface SicsSecrets {
  user?: string;
  password?: string;
}

export const SICS_DEFAULTS = {
  port: 3900,
  timeoutSec: 30,
  retries: 3,
  retryBaseMs: 250,
  consumeWaitMs: 10_000,
  replyVirtualRouter: 'IntuneConnector',
} as const;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:{}\-]{0,127}$/;
const ROUTE = /^[A-Za-z0-9_.:#*{}\-]{1,200}$/;

/** A yes/no property, strictly (shared/validation): "yes" or a typo is invalidConfig naming the property, not "off". */
function flag(raw: Record<string, unknown>, field: string, fallback: boolean): boolean {
  return strictBool(raw[field], fallback, (reason) => invalidConfig(field, reason));
}

function int(v: unknown, fallback: number, field: string, min: number, max: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw invalidConfig(field, `must be a whole number from ${min} to ${max}`);
  return n;
}

/** Reads the list of ACMP servers (an array, or its JSON text). Throws SicsError('invalidConfig'). */
export function parseServers(raw: unknown): AcmpServerRoute[] {
  let list = raw;
  if (typeof raw === 'string') {
    if (!raw.trim()) list = [];
    else {
      try {
        list = JSON.parse(raw);
      } catch {
        throw invalidConfig('servers', 'is not a valid list of ACMP servers');
      }
    }
  }
  if (list === undefined || list === null) list = [];
  if (!Array.isArray(list)) throw invalidConfig('servers', 'must be a list of ACMP servers');
  const seen = new Set<string>();
  return list.map((s: unknown, i: number) => {
    const o = (s && typeof s === 'object' ? s : {}) as Record<string, unknown>;
    const serverId = String(o.serverId ?? '').trim();
    const label = `ACMP server ${i + 1}${serverId ? ` (${serverId})` : ''}`;
    if (!serverId) throw invalidConfig('servers', `: ${label} has no server id`);
    if (serverId === '*') throw invalidConfig('servers', `: "*" is not a server id (it means "all servers" in the ACMP node)`);
    if (!ID.test(serverId)) throw invalidConfig('servers', `: the server id of ${label} may use letters, digits and _ . : - { } only`);
    if (seen.has(serverId.toLowerCase())) throw invalidConfig('servers', `: the server id ${serverId} is listed twice`);
    seen.add(serverId.toLowerCase());
    const virtualRouter = String(o.virtualRouter ?? '').trim();
    const routingKey = String(o.routingKey ?? '').trim();
    if (!virtualRouter || !ROUTE.test(virtualRouter)) throw invalidConfig('servers', `: ${label} needs a virtual router (letters, digits and _ . : - only)`);
    if (!routingKey || !ROUTE.test(routingKey)) throw invalidConfig('servers', `: ${label} needs a routing key (letters, digits and _ . : # * - only)`);
    const name = String(o.name ?? '').trim();
    return { serverId, virtualRouter, routingKey, ...(name ? { name } : {}) };
  });
}

/** Validates raw config-node properties (from the flow or the editor form). Throws SicsError('invalidConfig'). */
export function parseSicsSettings(raw: Record<string, unknown>, ca?: string | string[]): SicsSettings {
  const host = String(raw.host ?? '').trim();
  if (!host) throw invalidConfig('host', 'is required');
  if (/^[a-z]+:\/\//i.test(host) || /[/\s]/.test(host)) throw invalidConfig('host', 'must be a host name or IP address only, without https:// or a path');
  if (/^[^[\]]*:\d+$/.test(host)) throw invalidConfig('host', 'must not contain the port: enter the port in its own field');
  const port = int(raw.port, SICS_DEFAULTS.port, 'port', 1, 65535);
  const tls = flag(raw, 'useTls', true);
  // Checked even without TLS: a misspelt value is reported when written, not when TLS is switched on later.
  const allowUnencrypted = flag(raw, 'allowUnencrypted', false);
  const replyVirtualRouter = String(raw.replyVirtualRouter ?? '').trim() || SICS_DEFAULTS.replyVirtualRouter;
  if (!ROUTE.test(replyVirtualRouter)) throw invalidConfig('replyVirtualRouter', 'may use letters, digits and _ . : - only');
  return {
    host,
    port,
    tls,
    ca: tls ? ca : undefined,
    allowUnencrypted: tls && allowUnencrypted,
    timeoutMs: int(raw.timeoutSec, SICS_DEFAULTS.timeoutSec, 'timeoutSec', 1, 600) * 1000,
    retries: int(raw.retries, SICS_DEFAULTS.retries, 'retries', 0, 10),
    retryBaseMs: int(raw.retryBaseMs, SICS_DEFAULTS.retryBaseMs, 'retryBaseMs', 1, 60_000),
    consumeWaitMs: int(raw.consumeWaitMs, SICS_DEFAULTS.consumeWaitMs, 'consumeWaitMs', 10, 60_000),
    replyVirtualRouter,
    servers: parseServers(raw.servers),
  };
}
