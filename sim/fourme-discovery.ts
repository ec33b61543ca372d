/**
 * Record validation shared by the simulated 4me mutations, and the upsert
 * behind `discoveredConfigurationItems` (applied when the asynchronous job
 * runs, not when the mutation is submitted).
 *
 * Upsert rules (DiscoveredConfigurationItemsInput → stores):
 *  - categories match on `reference`, products on source + product sourceID,
 *    CIs on source + CI sourceID (the input `source`, or one of
 *    `alternativeSources`);
 *  - a CI not found that way is adopted by serial number ("first upload"): an
 *    existing CI with the same serial (trimmed, case-insensitive) whose
 *    source is empty or one of `alternativeSources` gets this source and
 *    sourceID and is updated. A CI of the *same* source with another sourceID
 *    is never adopted; if its product has the same brand the item fails
 *    (brand + serial number must be unique per account);
 *  - `meta.strategy`: absent or UPDATE = create or update; CREATE = create
 *    only, an existing record is left as it is; DEFAULT = like CREATE, and
 *    the records inside it are linked to it only when they are created;
 *  - `referenceStrategies.ciUserIds.strategy`: REPLACE (default) or APPEND;
 *  - per-item failures become `errors { path message }` with a path of
 *    string segments, e.g. ["physicalAssets","0","products","1",
 *    "configurationItems","7","serialNr"]; the failed item is skipped, the
 *    rest of the call is applied.
 */
import { applyCiRelations, type PendingRelations } from './fourme-ci-relations';
import { productFieldErrors } from './fourme-ui-extensions';
import type { FourMeAccountStore, FourMeConfigurationItem, FourMeCustomField, FourMeData, FourMeProduct } from './fourme-store';

export interface ValidationError {
  path: string[];
  message: string;
}

/** Field length limits of CIs (REST field reference; same records as GraphQL). */
export const CI_FIELD_LIMITS: Readonly<Record<string, number>> = {
  name: 160,
  label: 160,
  serialNr: 50,
  systemID: 255,
  assetID: 50,
  location: 128,
  remarks: 65_535,
  sourceID: 128,
};
export const SOURCE_MAX = 30;
export const SOURCE_ID_MAX = 128;

const HUMAN: Record<string, string> = {
  name: 'Name',
  label: 'Label',
  serialNr: 'Serial number',
  systemID: 'System ID',
  assetID: 'Asset ID',
  location: 'Location',
  remarks: 'Remarks',
  sourceID: 'Source ID',
  source: 'Source',
  subject: 'Subject',
  text: 'Text',
  brand: 'Brand',
  model: 'Model',
  reference: 'Reference',
};

export const tooLong = (field: string, max: number): string => `${HUMAN[field] ?? field} is too long (maximum is ${max} characters)`;
export const blank = (field: string): string => `${HUMAN[field] ?? field} can't be blank`;

const isBlank = (v: unknown): boolean => v === null || v === undefined || (typeof v === 'string' && v.trim() === '');

/** Length checks of the CI fields present in `input`. */
export function ciFieldErrors(input: Record<string, unknown>, path: string[]): ValidationError[] {
  const out: ValidationError[] = [];
  for (const [field, max] of Object.entries(CI_FIELD_LIMITS)) {
    const v = input[field];
    if (typeof v === 'string' && v.length > max) out.push({ path: [...path, field], message: tooLong(field, max) });
  }
  return out;
}

/** Unknown custom field ids (when the account's CI UI extension is defined). */
export function customFieldErrors(store: FourMeAccountStore, fields: unknown, path: string[], byProduct?: ValidationError[] | null): ValidationError[] {
  // The UI extension of the CI's product decides when it has one (fourme-ui-extensions.ts).
  if (byProduct) return byProduct;
  if (!Array.isArray(fields) || !store.ciCustomFieldIds) return [];
  const out: ValidationError[] = [];
  for (const f of fields as FourMeCustomField[]) {
    if (!store.ciCustomFieldIds.has(f.id)) {
      out.push({ path: [...path, 'customFields'], message: `Custom field '${f.id}' is not defined in the UI extension of this configuration item` });
    }
  }
  return out;
}

/** Person node IDs that are not visible from the account. */
export function userIdErrors(data: FourMeData, accountId: string, userIds: unknown, path: string[]): ValidationError[] {
  if (!Array.isArray(userIds)) return [];
  return (userIds as string[])
    .filter((id) => !data.personVisibleFrom(id, accountId))
    .map((id) => ({ path: [...path, 'userIds'], message: `Person with ID '${id}' was not found` }));
}

/** Brand + serial number must be unique per account. */
export function serialConflict(
  data: FourMeData,
  store: FourMeAccountStore,
  serialNr: unknown,
  brand: string,
  self: FourMeConfigurationItem | undefined,
): FourMeConfigurationItem | undefined {
  if (typeof serialNr !== 'string' || !serialNr.trim()) return undefined;
  const b = brand.trim().toLowerCase();
  return store
    .cisBySerial(serialNr)
    .find((c) => c !== self && (data.nodeOf<FourMeProduct>(c.productId, 'Product')?.brand ?? '').trim().toLowerCase() === b);
}

/** Merges custom fields by id (given ids overwrite, others stay). */
export function mergeCustomFields(cur: FourMeCustomField[], given: FourMeCustomField[] | undefined): FourMeCustomField[] {
  if (!given) return cur;
  const out = cur.map((f) => ({ ...f }));
  for (const g of given) {
    const i = out.findIndex((f) => f.id === g.id);
    if (i >= 0) out[i] = { id: g.id, value: g.value ?? null };
    else out.push({ id: g.id, value: g.value ?? null });
  }
  return out;
}

/** Copies the CI attributes present in a discovered/create/update input into a patch. */
export function ciPatchFrom(input: Record<string, unknown>): Partial<FourMeConfigurationItem> {
  const keys = [
    'name',
    'label',
    'serialNr',
    'systemID',
    'assetID',
    'status',
    'lastSeenAt',
    'inUseSince',
    'warrantyExpiryDate',
    'endOfSupportDate',
    'location',
    'remarks',
    'ramAmount',
    'nrOfCores',
    'nrOfProcessors',
    'operatingSystemId',
    'alternateNames',
  ] as const;
  const patch: Record<string, unknown> = {};
  for (const k of keys) if (input[k] !== undefined) patch[k] = input[k];
  return patch as Partial<FourMeConfigurationItem>;
}

export interface CiWriteEvent {
  ciId: string;
  sourceID: string | null;
  via: 'discoveredConfigurationItems' | 'configurationItemCreate' | 'configurationItemUpdate';
  created: boolean;
  adopted: boolean;
  /** Whether any stored value changed. */
  changed: boolean;
}

export interface DiscoveredOutcome {
  /** CIs created, updated or matched, in input order (failed items absent). */
  cis: FourMeConfigurationItem[];
  errors: ValidationError[];
  productsCreated: number;
  categoriesCreated: number;
}

type Strategy = 'CREATE' | 'DEFAULT' | 'UPDATE';
const strategyOf = (x: unknown): Strategy => {
  const s = (x as { meta?: { strategy?: string } } | undefined)?.meta?.strategy;
  return s === 'CREATE' || s === 'DEFAULT' ? s : 'UPDATE';
};

/** Counts the CIs of a DiscoveredConfigurationItemsInput. */
export function countDiscoveredCis(input: { physicalAssets?: unknown }): number {
  let n = 0;
  for (const cat of (input.physicalAssets as Array<{ products?: Array<{ configurationItems?: unknown[] }> }>) ?? []) {
    for (const p of cat.products ?? []) n += (p.configurationItems ?? []).length;
  }
  return n;
}

/** Applies one discoveredConfigurationItems input to an account. */
export function applyDiscovered(
  data: FourMeData,
  accountId: string,
  input: Record<string, any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  onCiWrite: (e: CiWriteEvent) => void,
): DiscoveredOutcome {
  const store = data.account(accountId);
  const source: string = String(input.source ?? '').trim();
  const sources = [source, ...((input.alternativeSources as string[] | undefined) ?? [])].filter(Boolean);
  const alternatives = new Set(((input.alternativeSources as string[] | undefined) ?? []).map((s) => s.toLowerCase()));
  const appendUsers = input.referenceStrategies?.ciUserIds?.strategy === 'APPEND';
  const supportTeam = input.supportTeam ? store.team(String(input.supportTeam)) ?? store.teamByName(String(input.supportTeam)) : undefined;
  const out: DiscoveredOutcome = { cis: [], errors: [], productsCreated: 0, categoriesCreated: 0 };
  // ciRelations are applied once all CIs of the call are written (children of the same call resolve).
  const relations: PendingRelations[] = [];
  const relate = (ci: FourMeConfigurationItem, item: Record<string, any>, path: string[]) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (item.ciRelations !== undefined && item.ciRelations !== null) relations.push({ ci, path, input: item.ciRelations });
  };

  (input.physicalAssets ?? []).forEach((cat: Record<string, any>, ci: number) => {
    const catPath = ['physicalAssets', String(ci)];
    if (isBlank(cat.reference) || !/^[a-z0-9_]+\/[a-z0-9_]+$/.test(String(cat.reference))) {
      out.errors.push({
        path: [...catPath, 'reference'],
        message: isBlank(cat.reference) ? blank('reference') : `Reference '${cat.reference}' is invalid (expected "<group>/<name>" in lower case)`,
      });
      return;
    }
    if (isBlank(cat.name)) {
      out.errors.push({ path: [...catPath, 'name'], message: blank('name') });
      return;
    }
    const catStrategy = strategyOf(cat);
    let category = store.categoryByReference(cat.reference);
    let categoryCreated = false;
    if (!category) {
      category = data.addProductCategory(accountId, {
        name: cat.name,
        reference: cat.reference,
        source,
        sourceID: cat.sourceID ?? null,
      });
      categoryCreated = true;
      out.categoriesCreated++;
    } else if (catStrategy === 'UPDATE' && category.name !== cat.name) {
      category.name = cat.name;
    }

    (cat.products ?? []).forEach((p: Record<string, any>, pi: number) => {
      const pPath = [...catPath, 'products', String(pi)];
      const pErrors: ValidationError[] = [];
      for (const f of ['sourceID', 'name', 'brand', 'model']) if (isBlank(p[f])) pErrors.push({ path: [...pPath, f], message: blank(f) });
      if (typeof p.sourceID === 'string' && p.sourceID.length > SOURCE_ID_MAX) {
        pErrors.push({ path: [...pPath, 'sourceID'], message: tooLong('sourceID', SOURCE_ID_MAX) });
      }
      if (pErrors.length) {
        out.errors.push(...pErrors);
        return;
      }
      const pStrategy = strategyOf(p);
      let product: FourMeProduct | undefined;
      for (const s of sources) product ??= store.productBySource(s, p.sourceID);
      let productCreated = false;
      if (!product) {
        product = data.addProduct(accountId, {
          name: p.name,
          brand: p.brand,
          model: p.model,
          productID: p.productID ?? null,
          category: category!.id,
          source,
          sourceID: p.sourceID,
          supportTeamId: supportTeam?.id ?? null,
        });
        if (p.uiExtensionId) product.uiExtensionId = String(p.uiExtensionId);
        productCreated = true;
        out.productsCreated++;
      } else if (pStrategy === 'UPDATE') {
        data.updateProduct(product, {
          name: p.name,
          brand: p.brand,
          model: p.model,
          productID: p.productID ?? undefined,
          uiExtensionId: p.uiExtensionId ?? undefined,
          categoryId: catStrategy === 'DEFAULT' && !categoryCreated ? undefined : category!.id,
        });
      }

      (p.configurationItems ?? []).forEach((item: Record<string, any>, ii: number) => {
        const path = [...pPath, 'configurationItems', String(ii)];
        const errs: ValidationError[] = [];
        if (isBlank(item.sourceID)) errs.push({ path: [...path, 'sourceID'], message: blank('sourceID') });
        if (isBlank(item.name)) errs.push({ path: [...path, 'name'], message: blank('name') });
        errs.push(...ciFieldErrors(item, path));
        errs.push(...userIdErrors(data, accountId, item.userIds, path));
        errs.push(...customFieldErrors(store, item.customFields, path, productFieldErrors(data, product, item.customFields, path)));
        if (errs.length) {
          out.errors.push(...errs);
          return;
        }
        let existing: FourMeConfigurationItem | undefined;
        for (const s of sources) existing ??= store.ciBySource(s, item.sourceID);
        let adopted = false;
        if (!existing && typeof item.serialNr === 'string' && item.serialNr.trim()) {
          existing = store
            .cisBySerial(item.serialNr)
            .find((c) => !c.source || !c.sourceID || alternatives.has(c.source.toLowerCase()));
          adopted = !!existing;
        }
        const conflict = serialConflict(data, store, item.serialNr, product!.brand, existing);
        if (conflict) {
          out.errors.push({
            path: [...path, 'serialNr'],
            message: `Serial number '${item.serialNr}' has already been taken for brand '${product!.brand}' (configuration item ${conflict.name})`,
          });
          return;
        }
        const ciStrategy = strategyOf(item);
        if (!existing) {
          const status = item.status ?? 'in_production';
          const teamId = supportTeam?.id ?? product!.supportTeamId;
          const created = data.addConfigurationItem(accountId, {
            name: item.name,
            productId: product!.id,
            source,
            sourceID: item.sourceID,
            status,
            supportTeamId: teamId,
            customFields: (item.customFields ?? []).map((f: FourMeCustomField) => ({ id: f.id, value: f.value ?? null })),
            userIds: status === 'removed' ? [] : [...new Set<string>(item.userIds ?? [])],
          });
          data.updateConfigurationItem(created, ciPatchFrom(item));
          relate(created, item, path);
          out.cis.push(created);
          onCiWrite({ ciId: created.id, sourceID: created.sourceID, via: 'discoveredConfigurationItems', created: true, adopted: false, changed: true });
          return;
        }
        if (ciStrategy !== 'UPDATE' && !adopted) {
          out.cis.push(existing);
          onCiWrite({ ciId: existing.id, sourceID: existing.sourceID, via: 'discoveredConfigurationItems', created: false, adopted: false, changed: false });
          return;
        }
        const patch: Partial<FourMeConfigurationItem> = ciPatchFrom(item);
        if (adopted) {
          patch.source = source;
          patch.sourceID = item.sourceID;
        }
        if (!(pStrategy === 'DEFAULT' && !productCreated)) patch.productId = product!.id;
        if (item.userIds !== undefined) {
          const given = [...new Set<string>(item.userIds ?? [])];
          patch.userIds = appendUsers ? [...new Set([...existing.userIds, ...given])] : given;
        }
        if (item.customFields !== undefined) patch.customFields = mergeCustomFields(existing.customFields, item.customFields);
        const changed = data.updateConfigurationItem(existing, patch);
        relate(existing, item, path);
        out.cis.push(existing);
        onCiWrite({ ciId: existing.id, sourceID: existing.sourceID, via: 'discoveredConfigurationItems', created: false, adopted, changed });
      });
    });
  });
  out.errors.push(...applyCiRelations(data, accountId, source, relations));
  return out;
}
