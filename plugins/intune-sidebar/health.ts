/**
 * A connection's health as the sidebar shows it, from what its config node
 * already knows: the health board its nodes follow (config-health.ts), and
 * for Intune the certificate it loaded and the claims of the last token it
 * got (roles → missing permissions, expiry). Nothing is requested here: a
 * connection that has not signed in yet says so instead.
 *
 * Only plain facts leave this module: levels, message keys and texts the
 * config nodes already show in status dots (never a secret), dates, counts
 * and permission names.
 */
import type { Health } from '../../nodes/lib/node-red/config-health';
import { checkPermissions } from '../../nodes/lib/intune/permissions';
import { daysLeft } from '../../nodes/lib/intune/certificate';
import { CONFIG_TYPES } from './instances';

export interface ConnectionHealth {
  id: string;
  type: string;
  name: string;
  service: string;
  /** ok, warn, error; 'unknown' when the connection is not deployed. */
  level: Health['level'] | 'unknown';
  /** Catalog key (the config node's namespace) and its English, as in the status dots. */
  key?: string;
  text?: string;
  params?: Record<string, string | number>;
  /** `text` is an error's own message (shown as it is). */
  literal?: boolean;
  /** Intune: how the app signs in. */
  auth?: string;
  /** Intune with a certificate: when it expires. */
  certificate?: { notAfter: string; daysLeft: number };
  /** Intune: the current token's expiry, when one was issued since the start. */
  token?: { expiresAt: string };
  /** Intune: permissions the last token lacks (required ones stop the device source). */
  missing?: { required: string[]; optional: string[] };
}

interface BoardHolder {
  board?: { health?: Health };
  connection?: () => {
    settings?: { authType?: string };
    certificate?: { notAfter: Date };
    tokens?: { claims?: { roles?: string[]; exp?: number } };
  };
}

export function connectionHealth(cfg: { id: string; type: string; name: string }, node: unknown, now = new Date()): ConnectionHealth {
  const out: ConnectionHealth = { id: cfg.id, type: cfg.type, name: cfg.name, service: CONFIG_TYPES[cfg.type]?.service ?? '', level: 'unknown' };
  const n = node as BoardHolder | null;
  if (!n) return out;
  const h = n.board?.health;
  if (h) {
    out.level = h.level;
    if (h.key) out.key = h.key;
    if (h.text) out.text = h.text;
    if (h.params) out.params = h.params;
    if (h.literal) out.literal = true;
  }
  if (cfg.type === 'intune-config' && typeof n.connection === 'function') {
    let conn: ReturnType<NonNullable<BoardHolder['connection']>> | undefined;
    try {
      conn = n.connection();
    } catch {
      conn = undefined; // its problem is on the board already
    }
    if (conn) {
      out.auth = conn.settings?.authType;
      if (conn.certificate) out.certificate = { notAfter: conn.certificate.notAfter.toISOString(), daysLeft: daysLeft(conn.certificate, now) };
      const claims = conn.tokens?.claims;
      if (claims?.exp) out.token = { expiresAt: new Date(claims.exp * 1000).toISOString() };
      if (Array.isArray(claims?.roles)) {
        const p = checkPermissions(claims.roles);
        out.missing = { required: p.missingRequired, optional: p.missingOptional };
      }
    }
  }
  return out;
}
