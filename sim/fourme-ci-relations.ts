/**
 * CI relations of the simulated 4me, as far as discovery writes them:
 * `DiscoveredCiInput.ciRelations { childIds childSourceRefs }` and what a
 * CI's `ciRelations` connection shows (docs/fourme-software.md).
 *
 * Rules (docs/fourme-software.md says which are documented, which assumed):
 *  - a relation is stored once, on the parent, with the source that wrote
 *    it (`FourMeConfigurationItem.childRelations`); the child shows it as
 *    "parent";
 *  - `ciRelations` given on a discovered CI REPLACES that CI's child
 *    relations of the upload's source with the ones listed (`childIds: []`
 *    removes them); relations of other sources or made by hand stay.
 *    Documented for relation import files with a Source
 *    (https://developer.4me.com/v1/import/discovery_tools/); assumed for
 *    discovery. `ciRelations` absent leaves them all as they are [assumed];
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
    if (p.ci.status === 'removed') continue; // a removed CI keeps no CI relations
    const kept = p.ci.childRelations.filter((r) => r.source !== source);
    const next = [...kept, ...[...new Set(wanted)].filter((id) => !kept.some((r) => r.childId === id)).map((childId) => ({ childId, source }))];
    if (JSON.stringify(next) !== JSON.stringify(p.ci.childRelations)) data.updateConfigurationItem(p.ci, { childRelations: next });
  }
  return errors;
}

/** Drops every CI relation of `ci` (its children, and it as the child of others). Returns whether any existed. */
export function dropCiRelations(data: FourMeData, ci: FourMeConfigurationItem): boolean {
  let any = ci.childRelations.length > 0;
  ci.childRelations = [];
  for (const other of data.account(ci.accountId).configurationItems) {
    if (other.childRelations.some((r) => r.childId === ci.id)) {
      other.childRelations = other.childRelations.filter((r) => r.childId !== ci.id);
      any = true;
    }
  }
  return any;
}

export interface CiRelationView {
  id: string;
  relationType: 'child' | 'parent';
  configurationItem: FourMeConfigurationItem;
  source: string | null;
}

/** What a CI's `ciRelations` connection lists: its children, then the CIs it is a child of. */
export function ciRelationsOf(data: FourMeData, ci: FourMeConfigurationItem): CiRelationView[] {
  const out: CiRelationView[] = [];
  for (const r of ci.childRelations) {
    const child = data.nodeOf<FourMeConfigurationItem>(r.childId, 'ConfigurationItem');
    if (child) out.push({ id: relationId(ci.id, child.id), relationType: 'child', configurationItem: child, source: r.source });
  }
  for (const other of data.account(ci.accountId).configurationItems) {
    const r = other.childRelations.find((x) => x.childId === ci.id);
    if (r) out.push({ id: relationId(other.id, ci.id), relationType: 'parent', configurationItem: other, source: r.source });
  }
  return out;
}

function relationId(parent: string, child: string): string {
  return Buffer.from(`4me-sim.test/ConfigurationItemRelation/${parent}>${child}`).toString('base64').replace(/=+$/, '');
}
