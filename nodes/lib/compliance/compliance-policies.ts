/**
 * The tenant's compliance policies and which of them a node watches.
 *
 * - Catalogue: one listing of `deviceCompliancePolicies` per run (compliance
 *   throttling bucket) gives id, name and, from the derived `@odata.type`,
 *   the policy's platform. Graph does not list the built-in "Default Device
 *   Compliance Policy" (it shows up only in per-device policy states, with
 *   platform `all`), nor can it name the platform of a derived type this
 *   code does not know: for such policies the platform comes from the
 *   per-device policy states (compliance-details.ts).
 * - Platforms are Graph's `policyPlatformType` names (windows10AndLater,
 *   iOS, macOS, android, androidForWork …); a selection works on their
 *   families: windows, macos, ios, android, linux, all (built-in and
 *   cross-platform policies) and other.
 * - A policy entry in a selection is an id or a display name (no case), so
 *   a flow template can name policies without knowing each tenant's ids.
 */
import type { GraphClient, StatsSink } from '../graph/graph-client';

export const POLICIES_PATH = '/deviceManagement/deviceCompliancePolicies';

export type PolicyFamily = 'windows' | 'macos' | 'ios' | 'android' | 'linux' | 'all' | 'other';
export const POLICY_FAMILIES: readonly PolicyFamily[] = ['windows', 'macos', 'ios', 'android', 'linux', 'all', 'other'];

/** Graph derived type (without "#microsoft.graph.") → policyPlatformType. */
const PLATFORM_OF_TYPE: Readonly<Record<string, string>> = {
  windows10CompliancePolicy: 'windows10AndLater',
  windows10MobileCompliancePolicy: 'windows10AndLater',
  windows81CompliancePolicy: 'windows81AndLater',
  windowsPhone81CompliancePolicy: 'windowsPhone81',
  iosCompliancePolicy: 'iOS',
  macOSCompliancePolicy: 'macOS',
  androidCompliancePolicy: 'android',
  androidWorkProfileCompliancePolicy: 'androidForWork',
};

/** The platform of a policy from its `@odata.type`, or null when the type is unknown here. */
export function platformOfODataType(odataType: unknown): string | null {
  if (typeof odataType !== 'string') return null;
  const name = odataType.replace(/^#?microsoft\.graph\./, '');
  return PLATFORM_OF_TYPE[name] ?? null;
}

/** Family of a `policyPlatformType` value (unknown or future values → other). */
export function familyOf(platformType: string | null | undefined): PolicyFamily {
  const p = (platformType ?? '').trim().toLowerCase();
  if (!p) return 'other';
  if (p === 'all') return 'all';
  if (p.startsWith('windows')) return 'windows';
  if (p === 'ios' || p === 'ipados') return 'ios';
  if (p === 'macos') return 'macos';
  if (p.startsWith('android')) return 'android';
  if (p === 'linux') return 'linux';
  return 'other';
}

export interface PolicyInfo {
  id: string;
  name: string;
  /** policyPlatformType, null when the listing cannot tell. */
  platform: string | null;
}

/** The catalogue of one run: id → policy. */
export type PolicyCatalogue = ReadonlyMap<string, PolicyInfo>;

/** Lists the tenant's compliance policies (all pages), compliance bucket. */
export async function listCompliancePolicies(
  graph: Pick<GraphClient, 'pages'>,
  o: { signal?: AbortSignal; stats?: StatsSink } = {},
): Promise<Map<string, PolicyInfo>> {
  const out = new Map<string, PolicyInfo>();
  for await (const { items } of graph.pages<Record<string, unknown>>(POLICIES_PATH, {
    version: 'v1.0',
    bucket: 'compliance',
    entity: 'deviceCompliancePolicy',
    select: ['id', 'displayName'],
    signal: o.signal,
    stats: o.stats,
  })) {
    for (const p of items) {
      const id = typeof p?.id === 'string' ? p.id : '';
      if (!id) continue;
      out.set(id, { id, name: typeof p.displayName === 'string' ? p.displayName : '', platform: platformOfODataType(p['@odata.type']) });
    }
  }
  return out;
}

/** Which policies a node watches: platform families, and optionally a list of ids or names. */
export class PolicySelection {
  private readonly wanted: Set<string>;

  constructor(
    readonly families: ReadonlySet<PolicyFamily>,
    readonly entries: readonly string[] = [],
  ) {
    this.wanted = new Set(entries.map((e) => e.trim().toLowerCase()).filter(Boolean));
  }

  get everyPolicy(): boolean {
    return this.wanted.size === 0;
  }

  get everyFamily(): boolean {
    return POLICY_FAMILIES.every((f) => this.families.has(f));
  }

  /** Is the policy (by id or display name) one of those listed? (true when none are listed) */
  listed(id: string, name: string | null | undefined): boolean {
    if (!this.wanted.size) return true;
    return this.wanted.has(id.toLowerCase()) || (!!name && this.wanted.has(name.trim().toLowerCase()));
  }

  familyWatched(platformType: string | null | undefined): boolean {
    return this.families.has(familyOf(platformType));
  }

  /**
   * The report `filter` that narrows the report to the one listed policy,
   * when exactly one entry is listed and it names exactly one policy of the
   * catalogue; otherwise undefined (the rows are selected here).
   */
  reportFilter(catalogue: PolicyCatalogue): string | undefined {
    if (this.wanted.size !== 1) return undefined;
    const ids = [...catalogue.values()].filter((p) => this.listed(p.id, p.name)).map((p) => p.id);
    if (ids.length !== 1) return undefined;
    return `(PolicyId eq '${ids[0].replace(/'/g, "''")}')`;
  }

  /** Listed entries that name no policy of the catalogue (e.g. the built-in policy, or a typo). */
  unmatched(catalogue: PolicyCatalogue): string[] {
    const known = new Set<string>();
    for (const p of catalogue.values()) {
      known.add(p.id.toLowerCase());
      if (p.name) known.add(p.name.trim().toLowerCase());
    }
    return this.entries.filter((e) => !known.has(e.trim().toLowerCase()));
  }
}
