/**
 * CI relations of the simulated 4me, as far as discovery writes them:
 * `DiscoveredCiInput.ciRelations { childIds childSourceRefs }` and what a
 * CI's `ciRelations` connection shows (docs/fourme-software.md).
 *
 * Rules (docs/fourme-software.md says which are documented, which assumed):
 *  - a relation is stored once, on the parent, as the child's node ID
 *    (`FourMeConfigurationItem.childIds`); the child shows it as "parent";
 *  - `ciRelations` given on a discovered CI REPLACES that CI's child
 *    relations with the ones listed (`childIds: []` removes them all);
 *    `ciRelations` absent leaves them as they are [assumed];
 *  - `childIds` must be CIs of the same account, `childSourceRefs` must name
 *    a CI by source (default: the upload's source) + sourceID that exists
 *    once the call's CIs are written (children created in the same call
 *    count); a CI cannot be its own child. Any reference that does not
 *    resolve fails the item's relations (an error on its path), and its
 *    relations stay as they were [assumed: the docs say nothing];
 *  - setting a CI to `removed` removes its CI relations, both ways
 *    (https://www.4me.com/blog/relations-removed-from-removed-cis/).
 */
import type { FourMeConfigurationItem, FourMeData } from './fourme-store';

export interface RelationError {
  path: string[];
  message: string;
}

/** The relations asked for on one discovered CI, resolved after the call's CIs are written. */
export interface PendingRelations {
  ci: FourMeConfigurationItem;
  /** Path of the CI input, e.g. ["physicalAssets","0","products","1","configurationItems","7"]. */
  path: string[];
  input: { childIds?: unknown; childSourceRefs?: unknown };
}

/** Applies the relations asked for in one discoveredConfigurationItems call. */
export function applyCiRelations(data: FourMeData, accountId: string, source: string, pending: PendingRelations[]): RelationError[] {
  const store = data.account(accountId);
  const errors: RelationError[] = [];
  for (const p of pending) {
    const at = [...p.path, 'ciRelations'];
    const wanted: string[] = [];
    const errs: RelationError[] = [];
    const ids = p.input.childIds;
    if (ids !== undefined && ids !== null) {
      (Array.isArray(ids) ? ids : [ids]).forEach((id, i) => {
        const child = data.nodeOf<FourMeConfigurationItem>(String(id), 'ConfigurationItem');
        if (!child || child.accountId !== accountId) errs.push({ path: [...at, 'childIds', String(i)], message: `Configuration item with ID '${id}' was not found` });
        else wanted.push(child.id);
      });
    }
    const refs = p.input.childSourceRefs;
    if (refs !== undefined && refs !== null) {
      (Array.isArray(refs) ? refs : [refs]).forEach((r, i) => {
        const ref = (r ?? {}) as { source?: unknown; sourceID?: unknown };
        const src = typeof ref.source === 'string' && ref.source.trim() ? ref.source.trim() : source;
        const child = typeof ref.sourceID === 'string' ? store.ciBySource(src, ref.sourceID) : undefined;
        if (!child) errs.push({ path: [...at, 'childSourceRefs', String(i)], message: `Configuration item with source '${src}' and source ID '${String(ref.sourceID)}' was not found` });
        else wanted.push(child.id);
      });
    }
    if (wanted.includes(p.ci.id)) errs.push({ path: at, message: 'A configuration item cannot be related to itself' });
    if (errs.length) {
      errors.push(...errs);
      continue;
    }
    const next = [...new Set(wanted)];
    if (p.ci.status === 'removed') continue; // a removed CI keeps no CI relations
    if (JSON.stringify(next) !== JSON.stringify(p.ci.childIds)) data.updateConfigurationItem(p.ci, { childIds: next });
  }
  return errors;
}

/** Drops every CI relation of `ci` (its children, and it as the child of others). Returns whether any existed. */
export function dropCiRelations(data: FourMeData, ci: FourMeConfigurationItem): boolean {
  let any = ci.childIds.length > 0;
  ci.childIds = [];
  for (const other of data.account(ci.accountId).configurationItems) {
    if (other.childIds.includes(ci.id)) {
      other.childIds = other.childIds.filter((id) => id !== ci.id);
      any = true;
    }
  }
  return any;
}

export interface CiRelationView {
  id: string;
  relationType: 'child' | 'parent';
  configurationItem: FourMeConfigurationItem;
}

/** What a CI's `ciRelations` connection lists: its children, then the CIs it is a child of. */
export function ciRelationsOf(data: FourMeData, ci: FourMeConfigurationItem): CiRelationView[] {
  const out: CiRelationView[] = [];
  for (const id of ci.childIds) {
    const child = data.nodeOf<FourMeConfigurationItem>(id, 'ConfigurationItem');
    if (child) out.push({ id: relationId(ci.id, child.id), relationType: 'child', configurationItem: child });
  }
  for (const other of data.account(ci.accountId).configurationItems) {
    if (other.childIds.includes(ci.id)) out.push({ id: relationId(other.id, ci.id), relationType: 'parent', configurationItem: other });
  }
  return out;
}

/** The children of a CI (tests read a device's software this way). */
export function childrenOf(data: FourMeData, ci: FourMeConfigurationItem): FourMeConfigurationItem[] {
  return ci.childIds.map((id) => data.nodeOf<FourMeConfigurationItem>(id, 'ConfigurationItem')).filter((c): c is FourMeConfigurationItem => !!c);
}

function relationId(parent: string, child: string): string {
  return Buffer.from(`4me-sim.test/ConfigurationItemRelation/${parent}>${child}`).toString('base64').replace(/=+$/, '');
}
