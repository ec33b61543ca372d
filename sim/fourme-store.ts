/**
 * In-memory records of the simulated 4me (see sim/fourme.ts): accounts and
 * their people, teams, product categories, products, configuration items,
 * requests with notes, and asynchronous queries.
 *
 * Records are plain objects that tests read directly
 * (`sim.account('acme').configurationItems`). Treat them as read-only: the
 * indexes (source+sourceID, serial number, e-mail) are kept by the store
 * methods, so change records through the seed/update helpers.
 *
 * Node IDs look like the real service's opaque ids: base64 (no padding) of
 * "<host>/<Type>/<n>", with one counter per type across all accounts.
 */

import { dropCiRelations } from './fourme-ci-relations';

export const NODE_ID_HOST = '4me-sim.test';

/** Value of a custom field, as stored and as returned by `customFields { id value }`. */
export interface FourMeCustomField {
  id: string;
  value: unknown;
}

interface BaseRecord {
  /** Node ID (opaque, base64). */
  id: string;
  /** Account that holds the record. */
  accountId: string;
  createdAt: string;
  updatedAt: string;
}

export interface FourMePerson extends BaseRecord {
  name: string;
  primaryEmail: string | null;
  disabled: boolean;
  employeeID: string | null;
  authenticationID: string | null;
  jobTitle: string | null;
  source: string | null;
  sourceID: string | null;
}

export interface FourMeTeam extends BaseRecord {
  name: string;
  disabled: boolean;
}

export interface FourMeProductCategory extends BaseRecord {
  name: string;
  /** First part of the reference, e.g. "computer". */
  group: string;
  /** "<group>/<name>" in lower case with "_" for spaces, e.g. "computer/laptop_pc". */
  reference: string;
  ruleSet: string;
  disabled: boolean;
  source: string | null;
  sourceID: string | null;
}

export interface FourMeProduct extends BaseRecord {
  name: string;
  brand: string;
  model: string | null;
  productID: string | null;
  /** Node ID of the product category. */
  categoryId: string;
  disabled: boolean;
  source: string | null;
  sourceID: string | null;
  supportTeamId: string | null;
  uiExtensionId: string | null;
  customFields: FourMeCustomField[];
}

export interface FourMeConfigurationItem extends BaseRecord {
  name: string;
  label: string | null;
  serialNr: string | null;
  systemID: string | null;
  assetID: string | null;
  /** CiStatus value, e.g. "in_production", "archived". */
  status: string;
  source: string | null;
  sourceID: string | null;
  /** Node ID of the product. */
  productId: string;
  supportTeamId: string | null;
  customFields: FourMeCustomField[];
  /** Node IDs of the related people ("Users" relation). */
  userIds: string[];
  lastSeenAt: string | null;
  inUseSince: string | null;
  warrantyExpiryDate: string | null;
  endOfSupportDate: string | null;
  location: string | null;
  remarks: string | null;
  ramAmount: number | null;
  nrOfCores: number | null;
  nrOfProcessors: number | null;
  operatingSystemId: string | null;
  alternateNames: string[];
  /** The CIs related as "child" (software installed on it, …) and the source that wrote each relation; fourme-ci-relations.ts. */
  childRelations: FourMeChildRelation[];
}

export interface FourMeChildRelation {
  /** Node ID of the child CI. */
  childId: string;
  /** Source of the relation (the upload's source), null when made by hand. */
  source: string | null;
}

export interface FourMeNote {
  id: string;
  accountId: string;
  /** Node ID of the record the note belongs to (a request). */
  ownerId: string;
  text: string;
  internal: boolean;
  /** Author (the token's person for API notes). */
  personId: string | null;
  medium: string;
  createdAt: string;
}

export interface FourMeRequest extends BaseRecord {
  /** Record number shown in the UI ("12345"), per account. */
  requestId: string;
  subject: string;
  /** RequestCategory value, e.g. "incident". */
  category: string;
  impact: string | null;
  /** RequestStatus value, e.g. "assigned", "completed". */
  status: string;
  completionReason: string | null;
  completedAt: string | null;
  source: string | null;
  sourceID: string | null;
  configurationItemIds: string[];
  requestedForId: string | null;
  requestedById: string | null;
  createdById: string | null;
  teamId: string | null;
  urgent: boolean;
  customFields: FourMeCustomField[];
  /** Notes in creation order (internal ones included). */
  notes: FourMeNote[];
}

export interface FourMeAsyncQuery extends BaseRecord {
  status: 'queued' | 'in_progress' | 'completed';
  resultUrl: string;
  errorCount: number | null;
  resultCount: number | null;
  startedAt: string | null;
  completedAt: string | null;
  personId: string | null;
}

export type FourMeRecord =
  | FourMePerson
  | FourMeTeam
  | FourMeProductCategory
  | FourMeProduct
  | FourMeConfigurationItem
  | FourMeRequest
  | FourMeNote
  | FourMeAsyncQuery;

export type FourMeTypeName =
  | 'Person'
  | 'Team'
  | 'ProductCategory'
  | 'Product'
  | 'ConfigurationItem'
  | 'Request'
  | 'Note'
  | 'AsyncQuery'
  | 'UiExtension'
  | 'UiExtensionVersion';

/** CI statuses that 4me treats as inactive. */
export const INACTIVE_CI_STATUSES: ReadonlySet<string> = new Set(['archived', 'to_be_removed', 'lost_or_stolen', 'removed']);

export const nowIso = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export function encodeNodeId(type: FourMeTypeName, n: number): string {
  return Buffer.from(`${NODE_ID_HOST}/${type}/${n}`, 'utf8').toString('base64').replace(/=+$/, '');
}

export function decodeNodeId(id: string): { type: string; n: number } | null {
  if (typeof id !== 'string' || !/^[A-Za-z0-9+/]+$/.test(id)) return null;
  const text = Buffer.from(id, 'base64').toString('utf8');
  const m = /^([^/]+)\/([A-Za-z]+)\/(\d+)$/.exec(text);
  if (!m || m[1] !== NODE_ID_HOST) return null;
  return { type: m[2], n: Number(m[3]) };
}

/** "Laptop PC" in group "Computer" → "computer/laptop_pc". */
export function categoryReference(group: string, name: string): string {
  const norm = (s: string) => s.trim().toLowerCase().replace(/\s+/g, '_');
  return `${norm(group)}/${norm(name)}`;
}

const lc = (s: string | null | undefined): string => (s ?? '').trim().toLowerCase();

/** Records of one 4me account, with the indexes the simulator needs. */
export class FourMeAccountStore {
  readonly id: string;
  readonly name: string;
  /** Account whose people are visible with `people(view: all)` and can be CI users. */
  readonly directoryAccountId: string | null;
  /**
   * Custom field ids the CI UI extension defines. `null` (default) accepts any id;
   * a list makes unknown ids a validation error (per item in discoveredConfigurationItems).
   */
  ciCustomFieldIds: Set<string> | null = null;

  /** @internal */ readonly _people = new Map<string, FourMePerson>();
  /** @internal */ readonly _teams = new Map<string, FourMeTeam>();
  /** @internal */ readonly _categories = new Map<string, FourMeProductCategory>();
  /** @internal */ readonly _products = new Map<string, FourMeProduct>();
  /** @internal */ readonly _cis = new Map<string, FourMeConfigurationItem>();
  /** @internal */ readonly _requests = new Map<string, FourMeRequest>();
  /** @internal */ readonly _asyncQueries = new Map<string, FourMeAsyncQuery>();
  private readonly emailIndex = new Map<string, Set<string>>();
  private readonly ciSourceIndex = new Map<string, string>();
  private readonly ciSerialIndex = new Map<string, Set<string>>();
  private readonly productSourceIndex = new Map<string, string>();
  private readonly categoryRefIndex = new Map<string, string>();
  /** @internal */ nextRequestNumber = 70001;

  constructor(id: string, name: string, directoryAccountId: string | null) {
    this.id = id;
    this.name = name;
    this.directoryAccountId = directoryAccountId;
  }

  // ---- read access (snapshots in creation order) ----
  get people(): FourMePerson[] {
    return [...this._people.values()];
  }
  get teams(): FourMeTeam[] {
    return [...this._teams.values()];
  }
  get productCategories(): FourMeProductCategory[] {
    return [...this._categories.values()];
  }
  get products(): FourMeProduct[] {
    return [...this._products.values()];
  }
  get configurationItems(): FourMeConfigurationItem[] {
    return [...this._cis.values()];
  }
  get requests(): FourMeRequest[] {
    return [...this._requests.values()];
  }
  get asyncQueries(): FourMeAsyncQuery[] {
    return [...this._asyncQueries.values()];
  }

  person(id: string): FourMePerson | undefined {
    return this._people.get(id);
  }
  team(id: string): FourMeTeam | undefined {
    return this._teams.get(id);
  }
  productCategory(id: string): FourMeProductCategory | undefined {
    return this._categories.get(id);
  }
  product(id: string): FourMeProduct | undefined {
    return this._products.get(id);
  }
  configurationItem(id: string): FourMeConfigurationItem | undefined {
    return this._cis.get(id);
  }
  request(id: string): FourMeRequest | undefined {
    return this._requests.get(id);
  }

  /** People of this account whose primary e-mail equals `email` (case-insensitive). */
  peopleByEmail(email: string): FourMePerson[] {
    return [...(this.emailIndex.get(lc(email)) ?? [])].map((id) => this._people.get(id)!).filter(Boolean);
  }
  ciBySource(source: string, sourceID: string): FourMeConfigurationItem | undefined {
    const id = this.ciSourceIndex.get(`${lc(source)}\u0000${sourceID}`);
    return id ? this._cis.get(id) : undefined;
  }
  /** CIs with this serial number (trimmed, case-insensitive), oldest first. */
  cisBySerial(serialNr: string): FourMeConfigurationItem[] {
    return [...(this.ciSerialIndex.get(lc(serialNr)) ?? [])].map((id) => this._cis.get(id)!).filter(Boolean);
  }
  productBySource(source: string, sourceID: string): FourMeProduct | undefined {
    const id = this.productSourceIndex.get(`${lc(source)}\u0000${sourceID}`);
    return id ? this._products.get(id) : undefined;
  }
  categoryByReference(reference: string): FourMeProductCategory | undefined {
    const id = this.categoryRefIndex.get(lc(reference));
    return id ? this._categories.get(id) : undefined;
  }
  requestsBySourceID(sourceID: string): FourMeRequest[] {
    return this.requests.filter((r) => r.sourceID === sourceID);
  }
  teamByName(name: string): FourMeTeam | undefined {
    return this.teams.find((t) => lc(t.name) === lc(name));
  }

  // ---- index maintenance (called by FourMeData) ----
  /** @internal */ indexPerson(p: FourMePerson, old?: { primaryEmail: string | null }): void {
    if (old && old.primaryEmail) this.emailIndex.get(lc(old.primaryEmail))?.delete(p.id);
    if (p.primaryEmail) {
      const k = lc(p.primaryEmail);
      if (!this.emailIndex.has(k)) this.emailIndex.set(k, new Set());
      this.emailIndex.get(k)!.add(p.id);
    }
  }
  /** @internal */ indexCi(ci: FourMeConfigurationItem, old?: { source: string | null; sourceID: string | null; serialNr: string | null }): void {
    if (old) {
      if (old.source && old.sourceID) {
        const k = `${lc(old.source)}\u0000${old.sourceID}`;
        if (this.ciSourceIndex.get(k) === ci.id) this.ciSourceIndex.delete(k);
      }
      if (old.serialNr) this.ciSerialIndex.get(lc(old.serialNr))?.delete(ci.id);
    }
    if (ci.source && ci.sourceID) this.ciSourceIndex.set(`${lc(ci.source)}\u0000${ci.sourceID}`, ci.id);
    if (ci.serialNr && ci.serialNr.trim()) {
      const k = lc(ci.serialNr);
      if (!this.ciSerialIndex.has(k)) this.ciSerialIndex.set(k, new Set());
      this.ciSerialIndex.get(k)!.add(ci.id);
    }
  }
  /** @internal */ indexProduct(p: FourMeProduct, old?: { source: string | null; sourceID: string | null }): void {
    if (old && old.source && old.sourceID) {
      const k = `${lc(old.source)}\u0000${old.sourceID}`;
      if (this.productSourceIndex.get(k) === p.id) this.productSourceIndex.delete(k);
    }
    if (p.source && p.sourceID) this.productSourceIndex.set(`${lc(p.source)}\u0000${p.sourceID}`, p.id);
  }
  /** @internal */ indexCategory(c: FourMeProductCategory): void {
    this.categoryRefIndex.set(lc(c.reference), c.id);
  }
}

// ---------------------------------------------------------------------------
// Seed inputs

export interface SeedPerson {
  name: string;
  primaryEmail?: string | null;
  disabled?: boolean;
  employeeID?: string | null;
  authenticationID?: string | null;
  jobTitle?: string | null;
  source?: string | null;
  sourceID?: string | null;
}

export interface SeedProductCategory {
  name: string;
  /** Default "computer". */
  group?: string;
  /** Default derived from group and name, e.g. "computer/laptop_pc". */
  reference?: string;
  /** Default "physical_asset". */
  ruleSet?: string;
  disabled?: boolean;
  source?: string | null;
  sourceID?: string | null;
}

export interface SeedProduct {
  name?: string;
  brand: string;
  model?: string | null;
  productID?: string | null;
  /** Node ID or reference of an existing category. */
  category: string;
  source?: string | null;
  sourceID?: string | null;
  supportTeamId?: string | null;
  disabled?: boolean;
  customFields?: FourMeCustomField[];
}

export interface SeedConfigurationItem {
  name: string;
  /** Node ID of an existing product. */
  productId: string;
  label?: string | null;
  serialNr?: string | null;
  systemID?: string | null;
  assetID?: string | null;
  /** Default "in_production". */
  status?: string;
  source?: string | null;
  sourceID?: string | null;
  supportTeamId?: string | null;
  customFields?: FourMeCustomField[];
  userIds?: string[];
  lastSeenAt?: string | null;
}

export interface SeedRequest {
  subject: string;
  category?: string;
  impact?: string | null;
  status?: string;
  source?: string | null;
  sourceID?: string | null;
  configurationItemIds?: string[];
  requestedForId?: string | null;
  completionReason?: string | null;
  notes?: string[];
}

/** The simulator's whole data set: accounts plus a global node index. */
export class FourMeData {
  private readonly stores = new Map<string, FourMeAccountStore>();
  private readonly nodes = new Map<string, { type: FourMeTypeName; accountId: string; rec: FourMeRecord }>();
  private readonly counters = new Map<FourMeTypeName, number>();

  addAccount(id: string, name: string, directoryAccountId: string | null): FourMeAccountStore {
    if (this.stores.has(id)) throw new Error(`FourMeData: account ${id} already exists`);
    const s = new FourMeAccountStore(id, name, directoryAccountId);
    this.stores.set(id, s);
    return s;
  }

  account(id: string): FourMeAccountStore {
    const s = this.stores.get(id);
    if (!s) throw new Error(`FourMe sim: unknown account '${id}'`);
    return s;
  }

  hasAccount(id: string): boolean {
    return this.stores.has(id);
  }

  get accountIds(): string[] {
    return [...this.stores.keys()];
  }

  newId(type: FourMeTypeName): string {
    const n = (this.counters.get(type) ?? 0) + 1;
    this.counters.set(type, n);
    return encodeNodeId(type, n);
  }

  /** Any record by node ID, with its type. */
  node(id: string): { type: FourMeTypeName; accountId: string; rec: FourMeRecord } | undefined {
    return this.nodes.get(id);
  }

  nodeOf<T extends FourMeRecord>(id: string | null | undefined, type: FourMeTypeName): T | undefined {
    if (!id) return undefined;
    const n = this.nodes.get(id);
    return n && n.type === type ? (n.rec as T) : undefined;
  }

  /** Is `personId` usable from `accountId` (same account or its directory account)? */
  personVisibleFrom(personId: string, accountId: string): FourMePerson | undefined {
    const n = this.nodes.get(personId);
    if (!n || n.type !== 'Person') return undefined;
    const acc = this.account(accountId);
    return n.accountId === accountId || n.accountId === acc.directoryAccountId ? (n.rec as FourMePerson) : undefined;
  }

  register(type: FourMeTypeName, accountId: string, rec: FourMeRecord): void {
    this.nodes.set(rec.id, { type, accountId, rec });
  }

  // ---- creation ----

  addPerson(accountId: string, p: SeedPerson): FourMePerson {
    const s = this.account(accountId);
    const t = nowIso();
    const rec: FourMePerson = {
      id: this.newId('Person'),
      accountId,
      name: p.name,
      primaryEmail: p.primaryEmail ?? null,
      disabled: p.disabled ?? false,
      employeeID: p.employeeID ?? null,
      authenticationID: p.authenticationID ?? null,
      jobTitle: p.jobTitle ?? null,
      source: p.source ?? null,
      sourceID: p.sourceID ?? null,
      createdAt: t,
      updatedAt: t,
    };
    s._people.set(rec.id, rec);
    s.indexPerson(rec);
    this.register('Person', accountId, rec);
    return rec;
  }

  addTeam(accountId: string, name: string): FourMeTeam {
    const s = this.account(accountId);
    const t = nowIso();
    const rec: FourMeTeam = { id: this.newId('Team'), accountId, name, disabled: false, createdAt: t, updatedAt: t };
    s._teams.set(rec.id, rec);
    this.register('Team', accountId, rec);
    return rec;
  }

  addProductCategory(accountId: string, c: SeedProductCategory): FourMeProductCategory {
    const s = this.account(accountId);
    const group = c.group ?? (c.reference ? c.reference.split('/')[0] : 'computer');
    const reference = c.reference ?? categoryReference(group, c.name);
    if (s.categoryByReference(reference)) throw new Error(`FourMe sim: product category '${reference}' already exists`);
    const t = nowIso();
    const rec: FourMeProductCategory = {
      id: this.newId('ProductCategory'),
      accountId,
      name: c.name,
      group,
      reference,
      ruleSet: c.ruleSet ?? 'physical_asset',
      disabled: c.disabled ?? false,
      source: c.source ?? null,
      sourceID: c.sourceID ?? null,
      createdAt: t,
      updatedAt: t,
    };
    s._categories.set(rec.id, rec);
    s.indexCategory(rec);
    this.register('ProductCategory', accountId, rec);
    return rec;
  }

  resolveCategory(accountId: string, idOrReference: string): FourMeProductCategory | undefined {
    const s = this.account(accountId);
    return s.productCategory(idOrReference) ?? s.categoryByReference(idOrReference);
  }

  addProduct(accountId: string, p: SeedProduct): FourMeProduct {
    const s = this.account(accountId);
    const cat = this.resolveCategory(accountId, p.category);
    if (!cat) throw new Error(`FourMe sim: unknown product category '${p.category}'`);
    const t = nowIso();
    const rec: FourMeProduct = {
      id: this.newId('Product'),
      accountId,
      name: p.name ?? [p.brand, p.model].filter(Boolean).join(' '),
      brand: p.brand,
      model: p.model ?? null,
      productID: p.productID ?? null,
      categoryId: cat.id,
      disabled: p.disabled ?? false,
      source: p.source ?? null,
      sourceID: p.sourceID ?? null,
      supportTeamId: p.supportTeamId ?? null,
      uiExtensionId: null,
      customFields: (p.customFields ?? []).map((f) => ({ ...f })),
      createdAt: t,
      updatedAt: t,
    };
    s._products.set(rec.id, rec);
    s.indexProduct(rec);
    this.register('Product', accountId, rec);
    return rec;
  }

  addConfigurationItem(accountId: string, c: SeedConfigurationItem): FourMeConfigurationItem {
    const s = this.account(accountId);
    if (!s.product(c.productId)) throw new Error(`FourMe sim: unknown product '${c.productId}' in account ${accountId}`);
    const t = nowIso();
    const rec: FourMeConfigurationItem = {
      id: this.newId('ConfigurationItem'),
      accountId,
      name: c.name,
      label: c.label ?? null,
      serialNr: c.serialNr ?? null,
      systemID: c.systemID ?? null,
      assetID: c.assetID ?? null,
      status: c.status ?? 'in_production',
      source: c.source ?? null,
      sourceID: c.sourceID ?? null,
      productId: c.productId,
      supportTeamId: c.supportTeamId ?? null,
      customFields: (c.customFields ?? []).map((f) => ({ ...f })),
      userIds: [...(c.userIds ?? [])],
      lastSeenAt: c.lastSeenAt ?? null,
      inUseSince: null,
      warrantyExpiryDate: null,
      endOfSupportDate: null,
      location: null,
      remarks: null,
      ramAmount: null,
      nrOfCores: null,
      nrOfProcessors: null,
      operatingSystemId: null,
      alternateNames: [],
      childRelations: [],
      createdAt: t,
      updatedAt: t,
    };
    s._cis.set(rec.id, rec);
    s.indexCi(rec);
    this.register('ConfigurationItem', accountId, rec);
    return rec;
  }

  /** Applies `patch` to a CI, keeping the indexes right; bumps updatedAt. Returns whether anything changed. */
  updateConfigurationItem(ci: FourMeConfigurationItem, patch: Partial<Omit<FourMeConfigurationItem, 'id' | 'accountId' | 'createdAt'>>): boolean {
    const s = this.account(ci.accountId);
    const old = { source: ci.source, sourceID: ci.sourceID, serialNr: ci.serialNr };
    let changed = false;
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || k === 'updatedAt') continue;
      const cur = (ci as unknown as Record<string, unknown>)[k];
      if (JSON.stringify(cur) !== JSON.stringify(v)) {
        (ci as unknown as Record<string, unknown>)[k] = Array.isArray(v) ? [...v] : v;
        changed = true;
      }
    }
    if (ci.status === 'removed' && ci.userIds.length) {
      ci.userIds = []; // setting "removed" drops the user relations
      changed = true;
    }
    if (ci.status === 'removed' && dropCiRelations(this, ci)) changed = true; // … and its CI relations
    if (changed) {
      ci.updatedAt = nowIso();
      s.indexCi(ci, old);
    }
    return changed;
  }

  updateProduct(p: FourMeProduct, patch: Partial<Omit<FourMeProduct, 'id' | 'accountId' | 'createdAt'>>): boolean {
    const s = this.account(p.accountId);
    const old = { source: p.source, sourceID: p.sourceID };
    let changed = false;
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || k === 'updatedAt') continue;
      const cur = (p as unknown as Record<string, unknown>)[k];
      if (JSON.stringify(cur) !== JSON.stringify(v)) {
        (p as unknown as Record<string, unknown>)[k] = v;
        changed = true;
      }
    }
    if (changed) {
      p.updatedAt = nowIso();
      s.indexProduct(p, old);
    }
    return changed;
  }

  updatePerson(p: FourMePerson, patch: Partial<Omit<FourMePerson, 'id' | 'accountId' | 'createdAt'>>): void {
    const old = { primaryEmail: p.primaryEmail };
    Object.assign(p, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
    p.updatedAt = nowIso();
    this.account(p.accountId).indexPerson(p, old);
  }

  addRequest(accountId: string, r: SeedRequest & { createdById?: string | null; requestedById?: string | null; teamId?: string | null; urgent?: boolean; customFields?: FourMeCustomField[] }): FourMeRequest {
    const s = this.account(accountId);
    const t = nowIso();
    const status = r.status ?? 'assigned';
    const rec: FourMeRequest = {
      id: this.newId('Request'),
      accountId,
      requestId: String(s.nextRequestNumber++),
      subject: r.subject,
      category: r.category ?? 'other',
      impact: r.impact ?? null,
      status,
      completionReason: r.completionReason ?? null,
      completedAt: status === 'completed' ? t : null,
      source: r.source ?? null,
      sourceID: r.sourceID ?? null,
      configurationItemIds: [...(r.configurationItemIds ?? [])],
      requestedForId: r.requestedForId ?? null,
      requestedById: r.requestedById ?? null,
      createdById: r.createdById ?? null,
      teamId: r.teamId ?? null,
      urgent: r.urgent ?? false,
      customFields: (r.customFields ?? []).map((f) => ({ ...f })),
      notes: [],
      createdAt: t,
      updatedAt: t,
    };
    s._requests.set(rec.id, rec);
    this.register('Request', accountId, rec);
    for (const text of r.notes ?? []) this.addNote(rec, { text, internal: false, personId: r.createdById ?? null });
    return rec;
  }

  addNote(owner: FourMeRequest, n: { text: string; internal: boolean; personId: string | null; medium?: string }): FourMeNote {
    const rec: FourMeNote = {
      id: this.newId('Note'),
      accountId: owner.accountId,
      ownerId: owner.id,
      text: n.text,
      internal: n.internal,
      personId: n.personId,
      medium: n.medium ?? 'default',
      createdAt: nowIso(),
    };
    owner.notes.push(rec);
    owner.updatedAt = rec.createdAt;
    this.register('Note', owner.accountId, rec);
    return rec;
  }

  addAsyncQuery(accountId: string, resultUrl: string, personId: string | null): FourMeAsyncQuery {
    const s = this.account(accountId);
    const t = nowIso();
    const rec: FourMeAsyncQuery = {
      id: this.newId('AsyncQuery'),
      accountId,
      status: 'queued',
      resultUrl,
      errorCount: null,
      resultCount: null,
      startedAt: null,
      completedAt: null,
      personId,
      createdAt: t,
      updatedAt: t,
    };
    s._asyncQueries.set(rec.id, rec);
    this.register('AsyncQuery', accountId, rec);
    return rec;
  }
}
