/**
 * National clouds: where to get tokens, where Graph lives, and where the
 * Intune admin center is (for deep links). `custom` takes both URLs from the
 * config node, for proxies and for the simulated tenant.
 */
import { echo } from '../shared/echo';
export type CloudName = 'global' | 'usgov' | 'usgovdod' | 'china' | 'custom';

export interface CloudEndpoints {
  /** Authority host, e.g. https://login.microsoftonline.com (no tenant, no trailing slash). */
  authorityHost: string;
  /** Graph service root without version, e.g. https://graph.microsoft.com. */
  graphBaseUrl: string;
  /** Intune admin center, for deep links shown to people. */
  portalUrl: string;
}

export const CLOUDS: Record<Exclude<CloudName, 'custom'>, CloudEndpoints> = {
  global: {
    authorityHost: 'https://login.microsoftonline.com',
    graphBaseUrl: 'https://graph.microsoft.com',
    portalUrl: 'https://intune.microsoft.com',
  },
  usgov: {
    authorityHost: 'https://login.microsoftonline.us',
    graphBaseUrl: 'https://graph.microsoft.us',
    portalUrl: 'https://intune.microsoft.us',
  },
  usgovdod: {
    authorityHost: 'https://login.microsoftonline.us',
    graphBaseUrl: 'https://dod-graph.microsoft.us',
    portalUrl: 'https://intune.microsoft.us',
  },
  china: {
    authorityHost: 'https://login.chinacloudapi.cn',
    graphBaseUrl: 'https://microsoftgraph.chinacloudapi.cn',
    portalUrl: 'https://intune.microsoftonline.cn',
  },
};

export function isCloudName(v: unknown): v is CloudName {
  return v === 'custom' || (typeof v === 'string' && Object.prototype.hasOwnProperty.call(CLOUDS, v));
}

function normaliseHttpsUrl(raw: string, what: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new Error(`${what} is not a valid URL: ${echo(raw)}`);
  }
  if (u.protocol !== 'https:') throw new Error(`${what} must use https:// (got ${u.protocol})`);
  if (u.search || u.hash) throw new Error(`${what} must not contain a query or fragment`);
  return u.toString().replace(/\/+$/, '');
}

/** Resolves the endpoints of a cloud; for `custom`, validates the given URLs. */
export function resolveCloud(
  cloud: CloudName,
  custom?: { authorityHost?: string; graphBaseUrl?: string; portalUrl?: string },
): CloudEndpoints {
  if (cloud !== 'custom') return CLOUDS[cloud];
  if (!custom?.authorityHost) throw new Error('Custom cloud needs an authority host');
  if (!custom?.graphBaseUrl) throw new Error('Custom cloud needs a Graph base URL');
  const graphBaseUrl = normaliseHttpsUrl(custom.graphBaseUrl, 'Graph base URL');
  if (/\/(v1\.0|beta)$/.test(graphBaseUrl)) {
    throw new Error('Graph base URL must be the service root without /v1.0 or /beta');
  }
  return {
    authorityHost: normaliseHttpsUrl(custom.authorityHost, 'Authority host'),
    graphBaseUrl,
    portalUrl: custom.portalUrl ? normaliseHttpsUrl(custom.portalUrl, 'Portal URL') : CLOUDS.global.portalUrl,
  };
}
