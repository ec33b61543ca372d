/**
 * Where a 4me (or Xurrent) account lives: environment × region × brand
 * domain → the GraphQL endpoint and the OAuth token endpoint, or both URLs
 * given by hand ("custom": proxies, private endpoints, the simulated 4me).
 *
 * Host pattern (see ../shared/reference/4me/limits.md): GraphQL at
 * `https://graphql.<domain>`, OAuth at `https://oauth.<domain>/token`, where
 * <domain> is e.g. `4me.com`, `au.4me.com`, `4me.qa`, `uk.4me.qa`,
 * `4me-demo.com`, and the same with `xurrent` in place of `4me`. The demo
 * environment has no regional variants.
 */

export type FourMeEnvironment = 'production' | 'qa' | 'demo' | 'custom';
export type FourMeRegion = 'global' | 'au' | 'uk' | 'ch' | 'us';
export type FourMeBrand = '4me' | 'xurrent';

export const ENVIRONMENTS: readonly FourMeEnvironment[] = ['production', 'qa', 'demo', 'custom'];
export const REGIONS: readonly FourMeRegion[] = ['global', 'au', 'uk', 'ch', 'us'];
export const BRANDS: readonly FourMeBrand[] = ['4me', 'xurrent'];

export interface FourMeEndpoints {
  /** GraphQL endpoint, e.g. https://graphql.4me.com (no trailing slash). */
  graphqlUrl: string;
  /** OAuth token endpoint, e.g. https://oauth.4me.com/token. */
  tokenUrl: string;
  /** Name of the header that selects the account. */
  accountHeader: string;
  /** The domain the endpoints were derived from ('' for custom URLs). */
  domain: string;
}

/** A problem with the endpoint settings, naming the setting (for the editor and for errors). */
export class EndpointError extends Error {
  override name = 'EndpointError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const TLD: Record<Exclude<FourMeEnvironment, 'custom'>, Record<FourMeBrand, string>> = {
  production: { '4me': '4me.com', xurrent: 'xurrent.com' },
  qa: { '4me': '4me.qa', xurrent: 'xurrent.qa' },
  demo: { '4me': '4me-demo.com', xurrent: 'xurrent-demo.com' },
};

/** The domain of an environment, region and brand, e.g. ('production', 'au', '4me') → "au.4me.com". */
export function fourMeDomain(env: Exclude<FourMeEnvironment, 'custom'>, region: FourMeRegion, brand: FourMeBrand): string {
  const base = TLD[env][brand];
  if (region === 'global') return base;
  if (env === 'demo') throw new EndpointError('region', 'The demo environment exists only in the global region');
  return `${region}.${base}`;
}

/** An https URL without query or fragment, trailing slashes removed. */
export function httpsUrl(raw: unknown, field: string, what: string): string {
  const s = typeof raw === 'string' ? raw.trim() : '';
  if (!s) throw new EndpointError(field, `${what} is required for custom endpoints`);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new EndpointError(field, `${what} is not a complete URL (e.g. https://graphql.example.com)`);
  }
  if (u.protocol !== 'https:') throw new EndpointError(field, `${what} must start with https://`);
  if (u.search || u.hash) throw new EndpointError(field, `${what} must not contain a query (?…) or a fragment (#…)`);
  if (u.username || u.password) throw new EndpointError(field, `${what} must not contain a user name or password`);
  return u.toString().replace(/\/+$/, '');
}

export interface EndpointSettings {
  environment?: unknown;
  region?: unknown;
  brand?: unknown;
  graphqlUrl?: unknown;
  tokenUrl?: unknown;
}

/** Resolves the endpoint settings of an `intune-4me-config`. Throws EndpointError with plain words. */
export function resolveEndpoints(s: EndpointSettings): FourMeEndpoints {
  const env = (s.environment ?? 'production') as FourMeEnvironment;
  if (!ENVIRONMENTS.includes(env)) throw new EndpointError('environment', 'must be one of production, qa, demo, custom');
  const brand = ((s.brand as string) || '4me') as FourMeBrand;
  if (!BRANDS.includes(brand)) throw new EndpointError('brand', 'must be "4me" or "xurrent"');
  if (env === 'custom') {
    const graphqlUrl = httpsUrl(s.graphqlUrl, 'graphqlUrl', 'The GraphQL URL');
    // The token URL is only needed for OAuth; the caller checks that it is there when it is.
    const tokenUrl = s.tokenUrl && String(s.tokenUrl).trim() ? httpsUrl(s.tokenUrl, 'tokenUrl', 'The OAuth token URL') : '';
    return { graphqlUrl, tokenUrl, accountHeader: accountHeaderFor(brand), domain: '' };
  }
  const region = ((s.region as string) || 'global') as FourMeRegion;
  if (!REGIONS.includes(region)) throw new EndpointError('region', 'must be one of global, au, uk, ch, us');
  const domain = fourMeDomain(env, region, brand);
  return { graphqlUrl: `https://graphql.${domain}`, tokenUrl: `https://oauth.${domain}/token`, accountHeader: accountHeaderFor(brand), domain };
}

/** 4me documents X-4me-Account, Xurrent X-Xurrent-Account; both select the account. */
export function accountHeaderFor(brand: FourMeBrand): string {
  return brand === 'xurrent' ? 'X-Xurrent-Account' : 'X-4me-Account';
}

/** 4me account ids are short lower-case words, e.g. "widget" or "widget-it" (letters, digits, hyphens). */
export function accountIdProblem(v: unknown): string | null {
  const s = typeof v === 'string' ? v.trim() : '';
  if (!s) return 'is required';
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(s)) return 'must be the account id as shown in 4me under Settings › Account overview (letters, digits and hyphens), e.g. "widget"';
  return null;
}
