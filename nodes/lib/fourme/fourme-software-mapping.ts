/**
 * Intune discovered app → 4me software (docs/fourme-software.md).
 *
 * - Software CI: one per app title + version (InstalledApp.key), named
 *   "[Brand] [Software Name] [Version]" as 4me's CI field guidelines advise,
 *   sourceID `app:<key>` (the prefix keeps it apart from device ids under
 *   the same source), status that of present devices. No users, serial
 *   number or label: the Software rule set hides them.
 * - Software product: one per publisher + name ("[Brand] [Software Name]"),
 *   brand = publisher; `model` is required by discovery and hidden by the
 *   Software rule set, so it carries the name.
 * - Both in one product category (default "software/application"), which
 *   should exist in 4me with rule set Software: discovery cannot choose the
 *   rule set of a category it creates.
 *
 * Everything here is pure: no I/O.
 */
import type { Device, InstalledApp } from '../contracts';
import type { SoftwareLedger } from './fourme-software-ledger';
import { fingerprint, type ProductEntry } from './sink-fingerprints';
import { strictBool } from '../shared/validation';
import type { CiMappingSettings, CiStatus, DiscoveredCi } from './fourme-ci-mapping';
import type { BatchItem } from './fourme-ci-mapping';

export interface SoftwareSettings {
  /** Write discovered software (when devices carry it). */
  enabled: boolean;
  /** Product category of software products: reference and name. */
  reference: string;
  name: string;
}

export const DEFAULT_SOFTWARE_CATEGORY = { reference: 'software/application', name: 'Application' } as const;

export class SoftwareSettingsError extends Error {
  override name = 'SoftwareSettingsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const CATEGORY_REF = /^[a-z0-9_]+\/[a-z0-9_]+$/;
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v).trim());

/** Reads the software part of a sink's properties. Throws SoftwareSettingsError in plain words. */
export function parseSoftwareSettings(raw: Record<string, unknown>): SoftwareSettings {
  const enabled = strictBool(raw.software, true, (reason) => new SoftwareSettingsError('software', `"Write the devices' discovered software" ${reason}`));
  const reference = (str(raw.softwareCategoryRef) || DEFAULT_SOFTWARE_CATEGORY.reference).toLowerCase();
  if (!CATEGORY_REF.test(reference)) {
    throw new SoftwareSettingsError('softwareCategoryRef', `The software product category reference "${reference}" must look like "group/name" in lower case with "_" for spaces, e.g. "software/application"`);
  }
  const name = str(raw.softwareCategoryName) || (str(raw.softwareCategoryRef) ? reference.split('/')[1].replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()) : DEFAULT_SOFTWARE_CATEGORY.name);
  return { enabled, reference, name };
}

const cap = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);
const clean = (s: string | null | undefined) => (s ?? '').replace(/\s+/g, ' ').trim();

/** A sourceID within 4me's 128 characters: as it is, or cut and made unique by a fingerprint. */
function sourceIdOf(raw: string): string {
  return raw.length <= 128 ? raw : `${raw.slice(0, 100)}#${fingerprint(raw)}`;
}

/**
 * The software CI's sourceID of an app for an instance (tenant). Per
 * instance, because each instance sets inactive what its own devices do not
 * have any more: two tenants sharing one software CI would take turns
 * archiving it.
 */
export function softwareSourceId(app: Pick<InstalledApp, 'key'>, instance: string): string {
  return sourceIdOf(`app:${instance}:${app.key}`);
}

export interface MappedSoftware {
  sourceID: string;
  ci: DiscoveredCi;
  productKey: string;
  product: ProductEntry;
  /** Fingerprint of what is written (active status). */
  fingerprint: string;
}

/** Why an item of Device.software is not an InstalledApp (null when it is one). */
export function appProblem(a: unknown): string | null {
  if (!a || typeof a !== 'object' || Array.isArray(a)) return 'is not an object';
  const o = a as Partial<InstalledApp>;
  if (typeof o.key !== 'string' || !o.key.trim()) return 'has no key';
  if (typeof o.name !== 'string' || !clean(o.name)) return 'has no name';
  return null;
}

export function mapApp(app: InstalledApp, instance: string, s: SoftwareSettings, m: CiMappingSettings): MappedSoftware {
  const name = clean(app.name);
  const brand = cap(clean(app.publisher) || 'Unknown', 100);
  const title = name.toLowerCase().startsWith(brand.toLowerCase()) ? name : `${brand} ${name}`;
  const version = clean(app.version);
  const productKey = sourceIdOf(`sw|${brand}|${name}`.toLowerCase());
  const product: ProductEntry = { c: s.reference, cn: s.name, b: brand, m: cap(name, 100), n: cap(title, 160), s: productKey };
  const ci: DiscoveredCi = { sourceID: softwareSourceId(app, instance), name: cap(version ? `${title} ${version}` : title, 160), status: m.ciStatus };
  return { sourceID: ci.sourceID, ci, productKey, product, fingerprint: fingerprint([ci, product, m.supportTeam]) };
}

/** A software CI to be set inactive (or active again): its name and status, under its product. */
export function softwareStatusItem(sourceID: string, name: string, product: ProductEntry, status: CiStatus): BatchItem {
  return { sourceID, ci: { sourceID, name, status }, product };
}

/** The valid apps of a device's software list (undefined: software not read for this device). */
export function appsOf(d: Pick<Device, 'software'>): InstalledApp[] | undefined {
  if (!Array.isArray(d.software)) return undefined;
  return d.software.filter((a) => !appProblem(a));
}

/**
 * The software relations a device's CI should have: the node ids of its
 * apps' software CIs (those 4me confirmed), sorted; undefined when the
 * device's software was not read (its relations are left as they are).
 */
export function childIdsOf(d: Pick<Device, 'software'>, ledger: SoftwareLedger, instance: string): string[] | undefined {
  const apps = appsOf(d);
  if (!apps) return undefined;
  const ids = new Set<string>();
  for (const app of apps) {
    const id = ledger.app(softwareSourceId(app, instance))?.id;
    if (id) ids.add(id);
  }
  return [...ids].sort();
}

/** Fingerprint of a device's software relations (compared with the ledger's). */
export const relationsFingerprint = (childIds: string[]): string => fingerprint(childIds);
