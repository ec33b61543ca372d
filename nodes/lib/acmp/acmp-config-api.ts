/** What nodes that use an `intune-acmp-config` may rely on (imported by node folders, never the other way). */
import type { Node } from 'node-red';
import type { HealthBoard } from '../node-red/config-health';
import type { SicsClient } from './sics-client';
import { parseSicsSettings, type AcmpServerRoute } from './sics-settings';

export interface AcmpConfigCredentials {
  user?: string;
  password?: string;
}

export interface AcmpConfigNode extends Node<AcmpConfigCredentials> {
  /** Health for the status dots of the nodes that use this connection (keys in the intune-acmp-config namespace). */
  board: HealthBoard;
  /** The live SICS client; throws the configuration problem in plain words when there is none. */
  client(): SicsClient;
  /** The ACMP servers reachable through this connection; throws the configuration problem when there is one. */
  servers(): AcmpServerRoute[];
}

/**
 * Where the user name and password go: scheme, host and port, and whether
 * they may fall back to plain HTTP. A saved password is used by "Verify
 * connection" only when the form names the same.
 */
export function secretEndpoint(raw: Record<string, unknown>): string {
  const s = parseSicsSettings(raw);
  // Over plain HTTP a proxy sees the password in clear, so there the chosen proxy is part of the endpoint.
  const proxy = (!s.tls || s.allowUnencrypted) && typeof raw.proxy === 'string' && raw.proxy ? ` via proxy node ${raw.proxy}` : '';
  return `${s.tls ? 'https' : 'http'}://${s.host.toLowerCase()}:${s.port}${s.allowUnencrypted ? ' (falls back to http)' : ''}${proxy}`;
}

/** The servers a node addresses: every configured one for '*', else the one with the id (case-insensitive). */
export function resolveServers(all: AcmpServerRoute[], serverId: string): AcmpServerRoute[] {
  const id = serverId.trim();
  // '*' over an empty list would publish to nobody and report success: say what is missing instead.
  if (id === '*' && !all.length) throw new Error('The SICS connection has no ACMP server configured: add the ACMP servers the devices go to');
  if (id === '*') return [...all];
  const s = all.find((x) => x.serverId.toLowerCase() === id.toLowerCase());
  if (!s) {
    throw new Error(
      all.length
        ? `The ACMP server id "${id}" is not configured in the SICS connection (configured: ${all.map((x) => x.serverId).join(', ')})`
        : `The SICS connection has no ACMP server configured; add "${id}" there`,
    );
  }
  return [s];
}
