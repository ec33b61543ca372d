/**
 * Intune device → 4me discovered configuration item.
 *
 * - CI: name, serial number, system ID = the device's page in the Intune
 *   admin center, status (default in production), last seen = last contact,
 *   sourceID = Intune device id (the remote idempotency key together with
 *   `source`), the "Intune data attributes" as custom fields (ids
 *   configurable, defaults in DEFAULT_CUSTOM_FIELDS), and the user whose
 *   primary e-mail is the device user's UPN.
 * - Product: one simple product per brand + model ("Microsoft Corporation
 *   Surface Pro 4"), in a product category chosen per platform. Both are
 *   created when missing and otherwise left as the 4me users made them, and
 *   a CI is put under the product only when it is created (strategy
 *   DEFAULT): the product is a first home, and a CI a 4me user has moved to
 *   the right product stays there.
 * - Batches: at most 100 CIs per `discoveredConfigurationItems` call,
 *   grouped category → product → CIs, with an index that maps an error path
 *   back to the devices it concerns.
 *
 * Everything here is pure: no I/O.
 */
import type { Device } from '../contracts';
import { fingerprint, type CiEntry, type ProductEntry } from './sink-fingerprints';
import { strictBool } from '../shared/validation';

export const MAX_CIS_PER_CALL = 100;

export type PlatformKey = 'windows' | 'macos' | 'linux' | 'ios' | 'ipados' | 'android' | 'other';
export const PLATFORM_KEYS: readonly PlatformKey[] = ['windows', 'macos', 'linux', 'ios', 'ipados', 'android', 'other'];

export interface CategoryRef {
  reference: string;
  name: string;
}

/** Product categories used when none are configured ("<group>/<name>", created in 4me when missing). */
export const DEFAULT_CATEGORIES: Record<PlatformKey, CategoryRef> = {
  windows: { reference: 'computer/windows_pc', name: 'Windows PC' },
  macos: { reference: 'computer/mac', name: 'Mac' },
  linux: { reference: 'computer/linux_pc', name: 'Linux PC' },
  ios: { reference: 'mobile_device/iphone', name: 'iPhone' },
  ipados: { reference: 'mobile_device/ipad', name: 'iPad' },
  android: { reference: 'mobile_device/android_device', name: 'Android Device' },
  other: { reference: 'computer/other_device', name: 'Other Device' },
};

export type AttributeKey =
  | 'os'
  | 'osVersion'
  | 'osSku'
  | 'storageTotal'
  | 'storageFree'
  | 'enrolled'
  | 'lastContact'
  | 'aadRegistered'
  | 'joinType'
  | 'ownership'
  | 'compliance'
  | 'encrypted'
  | 'jailbroken';

export const ATTRIBUTE_KEYS: readonly AttributeKey[] = [
  'os',
  'osVersion',
  'osSku',
  'storageTotal',
  'storageFree',
  'enrolled',
  'lastContact',
  'aadRegistered',
  'joinType',
  'ownership',
  'compliance',
  'encrypted',
  'jailbroken',
];

/** Default custom field ids of the "Intune data attributes" (the UI extension of the products must define them). */
export const DEFAULT_CUSTOM_FIELDS: Record<AttributeKey, string> = {
  os: 'intune_operating_system',
  osVersion: 'intune_os_version',
  osSku: 'intune_os_sku',
  storageTotal: 'intune_total_storage_gb',
  storageFree: 'intune_free_storage_gb',
  enrolled: 'intune_enrolled_date',
  lastContact: 'intune_last_contact',
  aadRegistered: 'intune_azure_ad_registered',
  joinType: 'intune_join_type',
  ownership: 'intune_ownership',
  compliance: 'intune_compliance',
  encrypted: 'intune_encrypted',
  jailbroken: 'intune_jailbroken',
};

export const CI_STATUSES = [
  'archived',
  'being_built',
  'being_repaired',
  'being_tested',
  'broken_down',
  'in_production',
  'in_stock',
  'in_transit',
  'installed',
  'lent_out',
  'lost_or_stolen',
  'ordered',
  'removed',
  'reserved',
  'standby_for_continuity',
  'to_be_removed',
  'undergoing_maintenance',
] as const;
export type CiStatus = (typeof CI_STATUSES)[number];
export const INACTIVE_STATUSES: readonly CiStatus[] = ['archived', 'to_be_removed', 'lost_or_stolen', 'removed'];

export interface CiMappingSettings {
  /** `source` of every CI (max 30 characters), e.g. "Intune". */
  source: string;
  /** Status of CIs of devices present in Intune. */
  ciStatus: CiStatus;
  categories: Record<PlatformKey, CategoryRef>;
  /** Custom field id per attribute; '' = not sent. */
  customFields: Record<AttributeKey, string>;
  /** UI extension for newly created products (holds the custom fields). */
  uiExtensionId: string;
  /** Support team of new products and CIs (name or id, as 4me accepts it), '' = none given. */
  supportTeam: string;
  /** How the person relation is written: REPLACE (default) makes Intune's user the only one, APPEND keeps users added in 4me. */
  userStrategy: 'APPEND' | 'REPLACE';
  /** Sources of CIs that may be taken over (e.g. of an earlier connector), besides CIs without a source. */
  alternativeSources: string[];
}

export class MappingSettingsError extends Error {
  override name = 'MappingSettingsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const CATEGORY_REF = /^[a-z0-9_]+\/[a-z0-9_]+$/;
const FIELD_ID = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$/;

function str(v: unknown): string {
  return v === undefined || v === null ? '' : String(v).trim();
}

/**
 * Reads the mapping part of a sink's properties. Accepts flat properties
 * (`category_windows_ref`, `category_windows_name`, `cf_os`, …) as the
 * editor saves them. Throws MappingSettingsError in plain words.
 */
export function parseCiMappingSettings(raw: Record<string, unknown>): CiMappingSettings {
  const source = str(raw.source) || 'Intune';
  if (source.length > 30) throw new MappingSettingsError('source', `The source "${source}" is longer than the 30 characters 4me allows`);
  const ciStatus = (str(raw.ciStatus) || 'in_production') as CiStatus;
  if (!CI_STATUSES.includes(ciStatus)) throw new MappingSettingsError('ciStatus', `"${ciStatus}" is not a 4me CI status`);
  if (INACTIVE_STATUSES.includes(ciStatus)) {
    throw new MappingSettingsError('ciStatus', `The status of present devices must be an active one, not "${ciStatus}"`);
  }
  const categories = {} as Record<PlatformKey, CategoryRef>;
  for (const p of PLATFORM_KEYS) {
    const reference = (str(raw[`category_${p}_ref`]) || DEFAULT_CATEGORIES[p].reference).toLowerCase();
    const name = str(raw[`category_${p}_name`]) || (str(raw[`category_${p}_ref`]) ? nameFromReference(reference) : DEFAULT_CATEGORIES[p].name);
    if (!CATEGORY_REF.test(reference)) {
      throw new MappingSettingsError(`category_${p}_ref`, `The product category reference "${reference}" (${p}) must look like "group/name" in lower case with "_" for spaces, e.g. "computer/laptop_pc"`);
    }
    categories[p] = { reference, name };
  }
  const customFields = {} as Record<AttributeKey, string>;
  const sendCustomFields = strictBool(raw.sendCustomFields, true, (reason) => new MappingSettingsError('sendCustomFields', `"Send the Intune data attributes as custom fields" ${reason}`));
  for (const k of ATTRIBUTE_KEYS) {
    const given = raw[`cf_${k}`];
    const id = !sendCustomFields ? '' : given === undefined || given === null ? DEFAULT_CUSTOM_FIELDS[k] : str(given);
    if (id && !FIELD_ID.test(id)) throw new MappingSettingsError(`cf_${k}`, `The custom field id "${id}" may only contain letters, digits, "_" and "-"`);
    customFields[k] = id;
  }
  const userStrategy = (str(raw.userStrategy) || 'REPLACE').toUpperCase();
  if (userStrategy !== 'APPEND' && userStrategy !== 'REPLACE') throw new MappingSettingsError('userStrategy', 'The person relation must be "append" or "replace"');
  const alternativeSources = str(raw.alternativeSources)
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter((x) => x && x !== source);
  for (const a of alternativeSources) {
    if (a.length > 30) throw new MappingSettingsError('alternativeSources', `The other source "${a}" is longer than the 30 characters 4me allows`);
  }
  return {
    source,
    ciStatus,
    categories,
    customFields,
    uiExtensionId: str(raw.uiExtensionId),
    supportTeam: str(raw.supportTeam),
    userStrategy: userStrategy as 'APPEND' | 'REPLACE',
    alternativeSources: [...new Set(alternativeSources)],
  };
}

function nameFromReference(ref: string): string {
  const n = ref.split('/')[1] ?? ref;
  return n
    .split('_')
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join(' ');
}

export function defaultMappingSettings(): CiMappingSettings {
  return parseCiMappingSettings({});
}

/** Platform of a device from its operating system name. */
export function platformKey(d: Pick<Device, 'os'>): PlatformKey {
  const os = (d.os?.name ?? '').trim().toLowerCase();
  if (!os) return 'other';
  if (os.startsWith('windows')) return 'windows';
  if (os.startsWith('mac') || os === 'osx' || os === 'os x') return 'macos';
  if (os.startsWith('ipados')) return 'ipados';
  if (os === 'ios' || os.startsWith('ios ')) return 'ios';
  if (os.startsWith('android')) return 'android';
  if (os.startsWith('linux') || os.startsWith('ubuntu') || os.startsWith('red hat') || os.startsWith('rhel')) return 'linux';
  return 'other';
}

// ------------------------------------------------------------------ values

const GIB = 1024 ** 3;
const cap = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);
const display = (s: string | null): string | null => (s ? s[0].toUpperCase() + s.slice(1) : null);

/** Whole GB (1024³ bytes, as the Intune admin center shows them). */
export function gigabytes(bytes: number | null): number | null {
  return bytes === null || bytes === undefined || !Number.isFinite(bytes) ? null : Math.round(bytes / GIB);
}

function dateOnly(iso: string | null): string | null {
  return iso && /^\d{4}-\d{2}-\d{2}/.test(iso) ? iso.slice(0, 10) : null;
}

/** The value of each "Intune data attribute" as it goes into the custom field. */
export function attributeValues(d: Device): Record<AttributeKey, unknown> {
  return {
    os: d.os?.name ?? null,
    osVersion: d.os?.version ?? null,
    osSku: d.os?.sku ?? null,
    storageTotal: gigabytes(d.storage?.totalBytes ?? null),
    storageFree: gigabytes(d.storage?.freeBytes ?? null),
    enrolled: dateOnly(d.enrolledAt),
    lastContact: dateOnly(d.lastContactAt),
    aadRegistered: d.azureAdRegistered,
    joinType: d.joinType ? display(d.joinType) : null,
    ownership: display(d.ownership ?? 'unknown'),
    compliance: display(d.complianceState),
    encrypted: d.encrypted,
    jailbroken: display(d.jailbroken ?? 'unknown'),
  };
}

// ----------------------------------------------------------------- mapping

export interface DiscoveredCi {
  sourceID: string;
  name: string;
  serialNr?: string;
  systemID?: string;
  status: CiStatus;
  lastSeenAt?: string;
  customFields?: Array<{ id: string; value: unknown }>;
  userIds?: string[];
  /** The device's software CIs as children (replaces its child relations; absent leaves them). */
  ciRelations?: { childIds: string[] };
}

export interface MappedCi {
  sourceID: string;
  ci: DiscoveredCi;
  productKey: string;
  product: ProductEntry;
  fingerprint: string;
  /** The user's e-mail looked up (lower case), or null when the device has no user. */
  email: string | null;
  /** Whether a person was found for `email` (null when there was nothing to look up). */
  personMatched: boolean | null;
  /** Notes about fields left out (too long for 4me). */
  notes: string[];
}

/** The e-mail the person relation is looked up by: the user's UPN (falls back to the mail address). */
export function userEmailOf(d: Pick<Device, 'user'>): string | null {
  const u = d.user;
  const e = (u?.upn || u?.email || '').trim().toLowerCase();
  return e && e.includes('@') ? e : null;
}

export function productOf(d: Device, s: CiMappingSettings): { key: string; product: ProductEntry } {
  const brand = cap(d.manufacturer?.trim() || 'Unknown', 100);
  const model = cap(d.model?.trim() || 'Unknown', 100);
  const cat = s.categories[platformKey(d)];
  const name = cap(model.toLowerCase().startsWith(brand.toLowerCase()) ? model : `${brand} ${model}`, 160);
  // One product per brand + model (case-insensitive), whatever the category.
  let sid = `${brand}|${model}`.toLowerCase();
  if (sid.length > 128) sid = `${sid.slice(0, 100)}#${fingerprint(sid)}`;
  return { key: sid, product: { c: cat.reference, cn: cat.name, b: brand, m: model, n: name, s: sid } };
}

/**
 * Maps one device. `personId`: the person found for the user's e-mail
 * (null: looked up, or no user, and nobody found; undefined: people are
 * not matched).
 */
export function mapDevice(d: Device, s: CiMappingSettings, personId: string | null | undefined): MappedCi {
  const notes: string[] = [];
  const ci: DiscoveredCi = { sourceID: d.id, name: cap(d.name || d.id, 160), status: s.ciStatus };
  if (d.serialNumber) {
    if (d.serialNumber.length <= 50) ci.serialNr = d.serialNumber;
    else notes.push('serial number longer than 50 characters, not sent');
  }
  const link = d.deepLinks?.overview;
  if (link) {
    if (link.length <= 255) ci.systemID = link;
    else notes.push('Intune link longer than 255 characters, not sent as system ID');
  }
  if (d.lastContactAt) ci.lastSeenAt = d.lastContactAt;
  const values = attributeValues(d);
  const cfs: Array<{ id: string; value: unknown }> = [];
  for (const k of ATTRIBUTE_KEYS) {
    const id = s.customFields[k];
    if (id) cfs.push({ id, value: values[k] ?? null });
  }
  if (cfs.length) ci.customFields = cfs;
  if (personId) ci.userIds = [personId];
  // Looked up and nobody found: with REPLACE the CI's users are cleared, with APPEND left alone.
  else if (personId === null && s.userStrategy === 'REPLACE') ci.userIds = [];
  const { key, product } = productOf(d, s);
  const email = userEmailOf(d);
  const fp = fingerprint([ci, product, s.uiExtensionId, s.supportTeam, s.userStrategy]);
  return {
    sourceID: d.id,
    ci,
    productKey: key,
    product,
    fingerprint: fp,
    email,
    personMatched: email ? !!personId : null,
    notes,
  };
}

// ------------------------------------------------------------------ batches

export interface BatchItem {
  sourceID: string;
  ci: DiscoveredCi;
  product: ProductEntry;
}

export interface Batch {
  input: Record<string, unknown>;
  /** sourceIDs in the order they were placed. */
  sourceIDs: string[];
  /** [category][product][ci] → sourceID */
  index: string[][][];
}

/** Groups ≤100 items into a DiscoveredConfigurationItemsInput (category → product → CIs). */
export function buildBatch(items: BatchItem[], s: CiMappingSettings): Batch {
  if (items.length > MAX_CIS_PER_CALL) throw new RangeError(`A discovered-CI call takes at most ${MAX_CIS_PER_CALL} CIs (got ${items.length})`);
  const cats = new Map<string, { input: Record<string, unknown>; products: Map<string, { input: Record<string, unknown>; cis: DiscoveredCi[]; ids: string[] }> }>();
  for (const it of items) {
    let c = cats.get(it.product.c);
    if (!c) {
      c = { input: { meta: { strategy: 'DEFAULT' }, reference: it.product.c, name: it.product.cn, products: [] }, products: new Map() };
      cats.set(it.product.c, c);
    }
    let p = c.products.get(it.product.s);
    if (!p) {
      const pin: Record<string, unknown> = {
        meta: { strategy: 'DEFAULT' },
        sourceID: it.product.s,
        brand: it.product.b,
        model: it.product.m,
        name: it.product.n,
        configurationItems: [],
      };
      if (s.uiExtensionId) pin.uiExtensionId = s.uiExtensionId;
      p = { input: pin, cis: [], ids: [] };
      c.products.set(it.product.s, p);
    }
    p.cis.push(it.ci);
    p.ids.push(it.sourceID);
  }
  const physicalAssets: Record<string, unknown>[] = [];
  const index: string[][][] = [];
  const sourceIDs: string[] = [];
  for (const c of cats.values()) {
    const prods: Record<string, unknown>[] = [];
    const ci: string[][] = [];
    for (const p of c.products.values()) {
      prods.push({ ...p.input, configurationItems: p.cis });
      ci.push(p.ids);
      sourceIDs.push(...p.ids);
    }
    physicalAssets.push({ ...c.input, products: prods });
    index.push(ci);
  }
  const input: Record<string, unknown> = {
    source: s.source,
    referenceStrategies: { ciUserIds: { strategy: s.userStrategy } },
    physicalAssets,
  };
  if (s.supportTeam) input.supportTeam = s.supportTeam;
  if (s.alternativeSources.length) input.alternativeSources = s.alternativeSources;
  return { input, sourceIDs, index };
}

/**
 * The devices an error path concerns: a CI path (…configurationItems/3…)
 * names one, a product or category path all under it, anything else all of
 * the batch.
 */
export function locateError(batch: Batch, path: string[]): string[] {
  const at = (name: string) => {
    const i = path.indexOf(name);
    if (i < 0 || i + 1 >= path.length) return undefined;
    const n = Number(path[i + 1]);
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  };
  const c = at('physicalAssets');
  if (c === undefined || !batch.index[c]) return [...batch.sourceIDs];
  const p = at('products');
  if (p === undefined || !batch.index[c][p]) return batch.index[c].flat();
  const i = at('configurationItems');
  if (i === undefined || batch.index[c][p][i] === undefined) return [...batch.index[c][p]];
  return [batch.index[c][p][i]];
}

/**
 * A CI to be set inactive: only its status (and the name it has) is sent,
 * under the product it was written with. Discovery has no "update only"
 * strategy; 4me CIs cannot be deleted, so the CI is there to be found.
 */
export function archiveItem(sourceID: string, entry: CiEntry, product: ProductEntry, status: CiStatus): BatchItem {
  return { sourceID, ci: { sourceID, name: entry.n, status }, product };
}

// -------------------------------------------------------------- validation

/** Why a payload item is not a Device (null when it is one). */
export function deviceProblem(d: unknown): string | null {
  if (!d || typeof d !== 'object' || Array.isArray(d)) return 'is not an object';
  const o = d as Partial<Device>;
  if (typeof o.id !== 'string' || !o.id.trim()) return 'has no id';
  if (o.id.length > 128) return 'has an id longer than 128 characters';
  if (typeof o.name !== 'string') return 'has no name';
  if (!o.os || typeof o.os !== 'object') return 'has no os';
  if (!o.deepLinks || typeof o.deepLinks !== 'object') return 'has no deepLinks';
  if (o.storage !== undefined && (o.storage === null || typeof o.storage !== 'object')) return 'has an invalid storage';
  return null;
}
