/**
 * UI extensions, the product → UI extension link and the token person's
 * roles in the simulated 4me (docs/fourme-setup.md has the facts and what is
 * assumed):
 *
 * - `uiExtensions` (filter id/name/category/source/sourceID/disabled),
 *   `uiExtensionCreate`, `uiExtensionUpdate` (html/css/javascript go to the
 *   prepared version; `activate: true` makes it the active one and archives
 *   the old), `productUpdate { uiExtensionId }`, `Product.uiExtension`,
 *   `Person.permissions { account roles }`.
 * - Roles: creating or changing a UI extension needs Account Owner,
 *   Administrator or Designer; linking a product also Configuration Manager.
 *   Without the role the mutation answers a GraphQL error and changes nothing.
 *   A person has ['account_administrator'] unless a test sets other roles.
 * - Custom fields: a CI under a product whose UI extension has an active
 *   version takes only the custom fields that version's HTML defines (the ids
 *   of its input, select and textarea elements); others are refused.
 *
 * Kept apart from fourme-graphql.ts, which only merges these resolvers in.
 */
import { GraphQLError, type GraphQLResolveInfo } from 'graphql';
import { nowIso, type FourMeCustomField, type FourMeData, type FourMePerson, type FourMeProduct, type FourMeRecord } from './fourme-store';

export interface FourMeUiExtensionVersion {
  id: string;
  html: string;
  css: string;
  javascript: string;
  status: 'active' | 'archived' | 'being_prepared';
  versionNr: number;
  createdAt: string;
  activatedAt: string | null;
}

export interface FourMeUiExtension {
  id: string;
  accountId: string;
  name: string;
  title: string | null;
  category: string;
  description: string | null;
  disabled: boolean;
  source: string | null;
  sourceID: string | null;
  createdAt: string;
  updatedAt: string;
  versions: FourMeUiExtensionVersion[];
}

/** Roles that may maintain UI extensions (whitepaper 5.2.2; help.4me.com/help/automation_rule). */
export const DESIGN_ROLES: readonly string[] = ['account_owner', 'account_administrator', 'account_designer'];
/** Roles that may change a product (assumed: the designer roles and the configuration manager). */
export const PRODUCT_ROLES: readonly string[] = [...DESIGN_ROLES, 'configuration_manager'];
const DEFAULT_ROLES = ['account_administrator'];
const NAME_MAX = 190;

interface UiState {
  extensions: FourMeUiExtension[];
  /** person id → roles in that person's account */
  roles: Map<string, string[]>;
}

const states = new WeakMap<FourMeData, UiState>();

function stateOf(data: FourMeData): UiState {
  let s = states.get(data);
  if (!s) states.set(data, (s = { extensions: [], roles: new Map() }));
  return s;
}

/** Test control: the roles of a person (e.g. `sim.personOf(token)`) in its account. */
export function setPersonRoles(data: FourMeData, personId: string, roles: string[]): void {
  stateOf(data).roles.set(personId, [...roles]);
}

export function personRoles(data: FourMeData, personId: string): string[] {
  return stateOf(data).roles.get(personId) ?? DEFAULT_ROLES;
}

export function uiExtensionsOf(data: FourMeData, accountId: string): FourMeUiExtension[] {
  return stateOf(data).extensions.filter((e) => e.accountId === accountId);
}

export function activeVersion(e: FourMeUiExtension): FourMeUiExtensionVersion | undefined {
  return e.versions.find((v) => v.status === 'active');
}

/** Field ids an extension's HTML defines: the id of every input, select and textarea element. */
export function fieldIdsOfHtml(html: string): Set<string> {
  const ids = new Set<string>();
  for (const m of html.matchAll(/<(?:input|select|textarea)\b[^>]*?\bid\s*=\s*(["'])([^"']+)\1/gi)) ids.add(m[2]);
  return ids;
}

/**
 * The custom field ids a CI under `product` may carry, or null when its
 * product has no UI extension with an active version (then the account-wide
 * rule of fourme-discovery.ts applies).
 */
export function definedCiFieldIds(data: FourMeData, product: FourMeProduct | undefined): Set<string> | null {
  if (!product?.uiExtensionId) return null;
  const ext = stateOf(data).extensions.find((e) => e.id === product.uiExtensionId);
  const v = ext && activeVersion(ext);
  return v ? fieldIdsOfHtml(v.html) : null;
}

/** Refusals for custom fields the product's UI extension does not define (null: no such extension). */
export function productFieldErrors(data: FourMeData, product: FourMeProduct | undefined, fields: unknown, path: string[]): Array<{ path: string[]; message: string }> | null {
  const ids = definedCiFieldIds(data, product);
  if (!ids) return null;
  if (!Array.isArray(fields)) return [];
  return (fields as FourMeCustomField[])
    .filter((f) => !ids.has(f.id))
    .map((f) => ({ path: [...path, 'customFields'], message: `Custom field '${f.id}' is not defined in the UI extension of this configuration item` }));
}

// ---------------------------------------------------------------------------
// Resolvers

type Args = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Ctx = { account: { id: string }; me: FourMePerson; replay?: unknown; onMutation: (name: string) => void };
type Resolver = (source: any, args: Args, ctx: any, info: GraphQLResolveInfo) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
type StringFilterValue = { values?: Array<string | null> | null; negate?: boolean | null };

export interface UiResolverTools {
  connection<T>(items: T[], args: Args, info: GraphQLResolveInfo): unknown;
  accountView(id: string): unknown;
}

function match(value: string | null | undefined, f: StringFilterValue | null | undefined): boolean {
  if (!f || !f.values) return true;
  const hit = f.values.length === 0 ? !value : f.values.includes(value ?? null);
  return f.negate ? !hit : hit;
}

function requireRole(data: FourMeData, ctx: Ctx, allowed: readonly string[]): void {
  const roles = personRoles(data, ctx.me.id);
  if (!roles.some((r) => allowed.includes(r))) {
    // Wording is the sim's own (nothing public shows 4me's): a top-level error, nothing changed.
    throw new GraphQLError(`Insufficient permissions: this requires one of the roles ${allowed.join(', ')} in account ${ctx.account.id}`);
  }
}

function newVersion(data: FourMeData, accountId: string, nr: number, input: Args, base?: FourMeUiExtensionVersion): FourMeUiExtensionVersion {
  const v: FourMeUiExtensionVersion = {
    id: data.newId('UiExtensionVersion'),
    html: input.html ?? base?.html ?? '',
    css: input.css ?? base?.css ?? '',
    javascript: input.javascript ?? base?.javascript ?? '',
    status: 'being_prepared',
    versionNr: nr,
    createdAt: nowIso(),
    activatedAt: null,
  };
  data.register('UiExtensionVersion', accountId, { ...v, accountId, updatedAt: v.createdAt } as unknown as FourMeRecord);
  return v;
}

function activate(e: FourMeUiExtension, v: FourMeUiExtensionVersion): void {
  for (const o of e.versions) if (o.status === 'active') o.status = 'archived';
  v.status = 'active';
  v.activatedAt = nowIso();
}

/** Resolvers merged into the engine's (fourme-graphql.ts). */
export function uiExtensionResolvers(data: FourMeData, tools: UiResolverTools): Record<string, Record<string, Resolver>> {
  const mutation = (name: string, fn: (input: Args, ctx: Ctx) => Record<string, unknown>): Resolver => {
    return (_s, args, ctx: Ctx) => {
      if (ctx.replay) return null;
      ctx.onMutation(name);
      const input = (args.input ?? {}) as Args;
      return { clientMutationId: input.clientMutationId ?? null, errors: [], ...fn(input, ctx) };
    };
  };
  const textErrors = (input: Args, creating: boolean) => {
    const errors: Array<{ path: string[]; message: string }> = [];
    if (creating || input.name !== undefined) {
      const name = typeof input.name === 'string' ? input.name.trim() : '';
      if (!name) errors.push({ path: ['name'], message: "Name can't be blank" });
      else if (name.length > NAME_MAX) errors.push({ path: ['name'], message: `Name is too long (maximum is ${NAME_MAX} characters)` });
    }
    for (const k of ['html', 'css', 'javascript']) {
      if (typeof input[k] === 'string' && Buffer.byteLength(input[k]) > 65_536) errors.push({ path: [k], message: `${k} is too long (maximum is 64KB)` });
    }
    return errors;
  };

  return {
    Query: {
      uiExtensions: (_s, args, ctx: Ctx, info) => {
        const f = (args.filter ?? {}) as Record<string, StringFilterValue & boolean>;
        const list = uiExtensionsOf(data, ctx.account.id).filter(
          (e) =>
            match(e.id, f.id) &&
            match(e.name, f.name) &&
            match(e.category, f.category) &&
            match(e.source, f.source) &&
            match(e.sourceID, f.sourceID) &&
            (f.disabled === undefined || f.disabled === null || e.disabled === (f.disabled as unknown as boolean)),
        );
        return tools.connection(list, args, info);
      },
    },
    Mutation: {
      uiExtensionCreate: mutation('uiExtensionCreate', (input, ctx) => {
        requireRole(data, ctx, DESIGN_ROLES);
        const errors = textErrors(input, true);
        if (errors.length) return { uiExtension: null, errors };
        const t = nowIso();
        const e: FourMeUiExtension = {
          id: data.newId('UiExtension'),
          accountId: ctx.account.id,
          name: String(input.name).trim(),
          title: input.title ?? null,
          category: input.category,
          description: input.description ?? null,
          disabled: input.disabled ?? false,
          source: input.source ?? '4me API',
          sourceID: input.sourceID ?? null,
          createdAt: t,
          updatedAt: t,
          versions: [],
        };
        const v = newVersion(data, e.accountId, 1, input);
        e.versions.push(v);
        if (input.activate) activate(e, v);
        stateOf(data).extensions.push(e);
        data.register('UiExtension', e.accountId, e as unknown as FourMeRecord);
        return { uiExtension: e };
      }),
      uiExtensionUpdate: mutation('uiExtensionUpdate', (input, ctx) => {
        requireRole(data, ctx, DESIGN_ROLES);
        const e = uiExtensionsOf(data, ctx.account.id).find((x) => x.id === input.id);
        if (!e) return { uiExtension: null, errors: [{ path: ['id'], message: `UI extension with ID '${input.id}' was not found` }] };
        const errors = textErrors(input, false);
        if (errors.length) return { uiExtension: null, errors };
        for (const k of ['name', 'title', 'description', 'disabled', 'source', 'sourceID'] as const) {
          if (input[k] !== undefined) (e as unknown as Record<string, unknown>)[k] = k === 'name' ? String(input[k]).trim() : input[k];
        }
        const code = ['html', 'css', 'javascript'].some((k) => input[k] !== undefined && input[k] !== null);
        let prepared = e.versions.find((v) => v.status === 'being_prepared');
        if (code) {
          if (!prepared) {
            prepared = newVersion(data, e.accountId, e.versions.length + 1, input, activeVersion(e));
            e.versions.push(prepared);
          } else {
            for (const k of ['html', 'css', 'javascript'] as const) if (typeof input[k] === 'string') prepared[k] = input[k];
          }
        }
        if (input.activate && prepared) activate(e, prepared);
        e.updatedAt = nowIso();
        return { uiExtension: e };
      }),
      productUpdate: mutation('productUpdate', (input, ctx) => {
        requireRole(data, ctx, PRODUCT_ROLES);
        const p = data.nodeOf<FourMeProduct>(String(input.id), 'Product');
        if (!p || p.accountId !== ctx.account.id) return { product: null, errors: [{ path: ['id'], message: `Product with ID '${input.id}' was not found` }] };
        if (input.uiExtensionId !== undefined) {
          const id = input.uiExtensionId === null ? null : String(input.uiExtensionId);
          const ext = id ? uiExtensionsOf(data, ctx.account.id).find((x) => x.id === id) : undefined;
          if (id && !ext) return { product: null, errors: [{ path: ['uiExtensionId'], message: `UI extension with ID '${id}' was not found` }] };
          // 4me offers a product only UI extensions of its category (help.4me.com/help/ui_extension_fields).
          if (ext && ext.category !== 'product') return { product: null, errors: [{ path: ['uiExtensionId'], message: `UI extension '${ext.name}' is not a product UI extension` }] };
          data.updateProduct(p, { uiExtensionId: id });
        }
        return { product: p };
      }),
    },
    Product: {
      uiExtension: (p: FourMeProduct) => stateOf(data).extensions.find((e) => e.id === p.uiExtensionId) ?? null,
    },
    Person: {
      permissions: (p: FourMePerson, args, _ctx, info) => tools.connection([{ account: tools.accountView(p.accountId), roles: personRoles(data, p.id) }], args, info),
    },
    UiExtension: {
      account: (e: FourMeUiExtension) => tools.accountView(e.accountId),
      activeVersion: (e: FourMeUiExtension) => activeVersion(e) ?? null,
    },
  };
}
