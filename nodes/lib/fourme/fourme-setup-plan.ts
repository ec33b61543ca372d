/**
 * "Set up 4me", the dry run: reads what the 4me account has (the person's
 * roles, our UI extension, the products the sinks create) and works out what
 * the set-up would create or change. `planSetup` is pure; `readSetupState`
 * is the only part that talks to 4me (queries only).
 *
 * What it never does: delete anything, take a field away that an
 * administrator added, or move a product that an administrator linked to
 * another UI extension.
 */
import { createHash } from 'node:crypto';
import type { FourMeClient } from './fourme-client';
import {
  EXTENSION_CATEGORY,
  EXTENSION_NAME,
  EXTENSION_SOURCE,
  EXTENSION_SOURCE_ID,
  desiredHtml,
  extensionTitle,
  fieldIdsOf,
  type ExtensionField,
  type LabelLanguage,
} from './fourme-setup-extension';

/** Roles that may create UI extensions (whitepaper 5.2.2; help.4me.com/help/automation_rule). */
export const SETUP_ROLES = ['account_owner', 'account_administrator', 'account_designer'] as const;
const ROLE_WORDS: Record<string, string> = {
  account_owner: 'Account Owner',
  account_administrator: 'Account Administrator',
  account_designer: 'Account Designer',
  configuration_manager: 'Configuration Manager',
  specialist: 'Specialist',
  auditor: 'Auditor',
  service_desk_analyst: 'Service Desk Analyst',
  service_desk_manager: 'Service Desk Manager',
  key_contact: 'Key Contact',
};

/** "account_designer" → "Account Designer". */
export function roleWords(role: string): string {
  return ROLE_WORDS[role] ?? role.split('_').map((w) => (w ? w[0].toUpperCase() + w.slice(1) : w)).join(' ');
}

export const SETUP_OPS = {
  state: /* GraphQL */ `
    query IntuneSetupState($filter: UiExtensionFilter) {
      me { id name permissions(first: 100) { nodes { account { id } roles } } }
      account { id name }
      uiExtensions(first: 100, filter: $filter) {
        nodes { id name title category disabled source sourceID activeVersion { id html } }
      }
    }`,
  products: /* GraphQL */ `
    query IntuneSetupProducts($filter: ProductFilter, $after: String) {
      products(first: 100, filter: $filter, after: $after) {
        nodes { id name sourceID uiExtension { id name } }
        pageInfo { hasNextPage endCursor }
      }
    }`,
  create: /* GraphQL */ `
    mutation IntuneSetupCreateExtension($input: UiExtensionCreateInput!) {
      uiExtensionCreate(input: $input) {
        errors { path message }
        uiExtension { id name activeVersion { id } }
      }
    }`,
  update: /* GraphQL */ `
    mutation IntuneSetupUpdateExtension($input: UiExtensionUpdateInput!) {
      uiExtensionUpdate(input: $input) {
        errors { path message }
        uiExtension { id name activeVersion { id } }
      }
    }`,
  linkProduct: /* GraphQL */ `
    mutation IntuneSetupLinkProduct($input: ProductUpdateInput!) {
      productUpdate(input: $input) {
        errors { path message }
        product { id uiExtension { id } }
      }
    }`,
} as const;

export interface ExistingExtension {
  id: string;
  name: string;
  title: string | null;
  category: string;
  disabled: boolean;
  source: string | null;
  sourceID: string | null;
  html: string | null;
}

export interface ExistingProduct {
  id: string;
  name: string;
  uiExtension: { id: string; name: string | null } | null;
}

export interface SetupState {
  accountId: string;
  accountName: string | null;
  personName: string | null;
  roles: string[];
  extension: ExistingExtension | null;
  products: ExistingProduct[];
}

export interface SetupTarget {
  fields: ExtensionField[];
  /** `source` of the sinks' products and CIs. */
  sources: string[];
  language: LabelLanguage;
}

export type SetupStep =
  | { kind: 'createExtension'; name: string; fields: string[] }
  | { kind: 'updateExtension'; id: string; name: string; added: string[]; removed: string[]; kept: string[]; relabel: boolean }
  | { kind: 'linkProduct'; productId: string; product: string };

export interface SetupPlan {
  ok: boolean;
  /** 'ready' (steps to apply), 'upToDate' (nothing to do), 'missingRole'. */
  code: 'ready' | 'upToDate' | 'missingRole';
  message: string;
  steps: SetupStep[];
  extensionId: string | null;
  /** Field ids an administrator defined in the extension outside our block: kept as they are. */
  keptFields: string[];
  /** Products linked to another UI extension by an administrator: left alone. */
  otherExtension: Array<{ product: string; extension: string }>;
  roles: string[];
  /** Same steps → same id: the confirmation applies only the plan that was shown. */
  planId: string;
  /** What `apply` sends for the extension (not shown; recomputed on apply). */
  html: string;
}

function hasRole(roles: readonly string[]): boolean {
  return roles.some((r) => (SETUP_ROLES as readonly string[]).includes(r));
}

/** The plan for `state` and `target`. Pure. */
export function planSetup(state: SetupState, target: SetupTarget): SetupPlan {
  const base = { extensionId: state.extension?.id ?? null, keptFields: [] as string[], otherExtension: [] as SetupPlan['otherExtension'], roles: state.roles, html: '' };
  if (!hasRole(state.roles)) {
    const has = state.roles.length ? state.roles.map(roleWords).join(', ') : 'no role';
    return {
      ...base,
      ok: false,
      code: 'missingRole',
      message:
        `The 4me person of this connection (${state.personName ?? 'the token\u2019s person'}) needs the Account Designer, Account Administrator or Account Owner role ` +
        `in account ${state.accountName ?? state.accountId} to set up 4me; it has: ${has}. Ask a 4me account administrator to add the role, then try again.`,
      steps: [],
      planId: '',
    };
  }
  const steps: SetupStep[] = [];
  const ext = state.extension;
  const html = desiredHtml(ext?.html ?? null, target.fields, target.language);
  const ours = target.fields.map((f) => f.id);
  let keptFields: string[] = [];
  if (!ext) {
    steps.push({ kind: 'createExtension', name: EXTENSION_NAME, fields: ours });
  } else {
    const before = new Set(fieldIdsOf(ext.html ?? ''));
    const after = new Set(fieldIdsOf(html));
    keptFields = [...after].filter((id) => !ours.includes(id));
    const title = extensionTitle(target.language);
    const identity = ext.source !== EXTENSION_SOURCE || ext.sourceID !== EXTENSION_SOURCE_ID || ext.disabled || ext.title !== title;
    if (html !== (ext.html ?? '') || identity) {
      steps.push({
        kind: 'updateExtension',
        id: ext.id,
        name: ext.name,
        added: [...after].filter((id) => !before.has(id)),
        removed: [...before].filter((id) => !after.has(id)),
        kept: keptFields,
        relabel: [...after].every((id) => before.has(id)) && [...before].every((id) => after.has(id)),
      });
    }
  }
  const otherExtension: SetupPlan['otherExtension'] = [];
  for (const p of state.products) {
    if (!p.uiExtension) steps.push({ kind: 'linkProduct', productId: p.id, product: p.name });
    else if (!ext || p.uiExtension.id !== ext.id) otherExtension.push({ product: p.name, extension: p.uiExtension.name ?? p.uiExtension.id });
  }
  const planId = steps.length ? createHash('sha256').update(JSON.stringify([steps, html])).digest('hex').slice(0, 16) : '';
  return {
    ...base,
    ok: true,
    code: steps.length ? 'ready' : 'upToDate',
    message: steps.length ? `${steps.length} change(s) to make in 4me` : '4me is set up: nothing to change',
    steps,
    keptFields,
    otherExtension,
    planId,
    html,
  };
}

/** Reads what the plan needs. Queries only. */
export async function readSetupState(client: FourMeClient, target: SetupTarget, signal?: AbortSignal): Promise<SetupState> {
  type StateData = {
    me: { id: string; name: string | null; permissions: { nodes: Array<{ account: { id: string } | null; roles: string[] | null }> } | null } | null;
    account: { id: string; name: string | null } | null;
    uiExtensions: { nodes: Array<{ id: string; name: string; title: string | null; category: string; disabled: boolean | null; source: string | null; sourceID: string | null; activeVersion: { html: string | null } | null }> };
  };
  const d = await client.graphql<StateData>(SETUP_OPS.state, { filter: { category: { values: [EXTENSION_CATEGORY] } } }, { signal });
  const accountId = d.account?.id ?? client.accountId;
  const perms = d.me?.permissions?.nodes ?? [];
  const roles = [...new Set(perms.filter((p) => !p.account || p.account.id === accountId).flatMap((p) => p.roles ?? []))];
  const list = d.uiExtensions?.nodes ?? [];
  // Ours by source + source ID; else one an administrator made with our name (it is adopted, its fields kept).
  const found = list.find((e) => e.source === EXTENSION_SOURCE && e.sourceID === EXTENSION_SOURCE_ID) ?? list.find((e) => e.name === EXTENSION_NAME);
  const extension: ExistingExtension | null = found
    ? { id: found.id, name: found.name, title: found.title, category: found.category, disabled: !!found.disabled, source: found.source, sourceID: found.sourceID, html: found.activeVersion?.html ?? null }
    : null;
  const products: ExistingProduct[] = [];
  if (target.sources.length) {
    let after: string | null = null;
    for (let guard = 0; guard < 1000; guard++) {
      type Page = { products: { nodes: ExistingProduct[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
      const page: Page = await client.graphql<Page>(SETUP_OPS.products, { filter: { source: { values: target.sources } }, after }, { signal });
      products.push(...page.products.nodes.map((p) => ({ id: p.id, name: p.name, uiExtension: p.uiExtension ?? null })));
      if (!page.products.pageInfo.hasNextPage || !page.products.pageInfo.endCursor) break;
      after = page.products.pageInfo.endCursor;
    }
  }
  return { accountId, accountName: d.account?.name ?? null, personName: d.me?.name ?? null, roles, extension, products };
}
