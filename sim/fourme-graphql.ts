/**
 * The GraphQL side of the simulated 4me: the schema subset (loaded from
 * sim/fourme-schema.graphql at run time), validation, the node-count and cost
 * estimate, and resolvers backed by the in-memory stores (sim/fourme-store.ts).
 *
 * Execution uses graphql-js against that SDL, so an operation the subset does
 * not allow (unknown field, wrong argument type, missing required input
 * field) fails validation with GraphQL's own `errors` answer, as on the real
 * service. Mutation validation problems come back in the payload's
 * `errors { path message }`.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  buildSchema,
  execute,
  GraphQLError,
  GraphQLScalarType,
  Kind,
  parse,
  specifiedRules,
  validate,
  getNamedType,
  isCompositeType,
  valueFromASTUntyped,
  type ASTVisitor,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLFieldResolver,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type GraphQLTypeResolver,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type TypeNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';
import {
  decodeNodeId,
  INACTIVE_CI_STATUSES,
  nowIso,
  type FourMeAccountStore,
  type FourMeAsyncQuery,
  type FourMeConfigurationItem,
  type FourMeCustomField,
  type FourMeData,
  type FourMeNote,
  type FourMePerson,
  type FourMeProduct,
  type FourMeProductCategory,
  type FourMeRecord,
  type FourMeRequest,
  type FourMeTeam,
} from './fourme-store';
import {
  blank,
  ciFieldErrors,
  ciPatchFrom,
  countDiscoveredCis,
  customFieldErrors,
  mergeCustomFields,
  serialConflict,
  SOURCE_ID_MAX,
  SOURCE_MAX,
  tooLong,
  userIdErrors,
  type CiWriteEvent,
  type ValidationError,
} from './fourme-discovery';
import { ciRelationsOf } from './fourme-ci-relations';
import { uiExtensionResolvers } from './fourme-ui-extensions';

/** Names the reference marks as placeholders (not known on the live schema). */
export const PLACEHOLDER_INPUT_TYPES: ReadonlySet<string> = new Set([
  'StringFilter',
  'IDFilter',
  'ISO8601TimestampFilter',
  'ISO8601DateFilter',
  'NumberFilter',
]);

export const MAX_PAGE_SIZE = 100;
export const DISCOVERED_MAX_CIS = 100;
const NODE_LIMIT_MESSAGE = 'Individual calls cannot request more than 500,000 total nodes.';

// ---------------------------------------------------------------------------
// Schema

/** Where sim/fourme-schema.graphql is looked for (source tree, build/sim, the repo root from cwd). */
export function schemaCandidates(explicit?: string): string[] {
  return [
    ...(explicit ? [explicit] : []),
    path.join(__dirname, 'fourme-schema.graphql'),
    path.resolve(__dirname, '../../sim/fourme-schema.graphql'),
    path.resolve(process.cwd(), 'sim/fourme-schema.graphql'),
  ];
}

const ISO_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

function patchScalar(schema: GraphQLSchema, name: string, check: (v: unknown) => unknown): void {
  const t = schema.getType(name) as GraphQLScalarType | undefined;
  if (!t) return;
  const m = t as unknown as { parseValue: (v: unknown) => unknown; parseLiteral: (n: ValueNode, vars?: Record<string, unknown> | null) => unknown };
  m.parseValue = check;
  m.parseLiteral = (node, vars) => check(valueFromASTUntyped(node, vars ?? undefined));
}

export function loadFourMeSchema(explicitPath?: string): { schema: GraphQLSchema; path: string } {
  const file = schemaCandidates(explicitPath).find((p) => fs.existsSync(p));
  if (!file) throw new Error(`FourMe sim: fourme-schema.graphql not found (looked in ${schemaCandidates(explicitPath).join(', ')})`);
  const schema = buildSchema(fs.readFileSync(file, 'utf8'));
  patchScalar(schema, 'ISO8601Timestamp', (v) => {
    if (typeof v !== 'string' || !ISO_TS.test(v) || Number.isNaN(Date.parse(v))) {
      throw new GraphQLError(`${JSON.stringify(v)} is not a valid ISO 8601 timestamp`);
    }
    return v;
  });
  patchScalar(schema, 'ISO8601Date', (v) => {
    if (typeof v !== 'string' || !ISO_DATE.test(v) || Number.isNaN(Date.parse(v))) {
      throw new GraphQLError(`${JSON.stringify(v)} is not a valid ISO 8601 date`);
    }
    return v;
  });
  patchScalar(schema, 'MonetaryAmount', (v) => {
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new GraphQLError(`${JSON.stringify(v)} is not a valid monetary amount`);
    return n;
  });
  return { schema, path: file };
}

function innermostType(t: TypeNode): string {
  return t.kind === Kind.NAMED_TYPE ? t.name.value : innermostType(t.type);
}

/** Rejects variable declarations of the placeholder filter value types. */
export function noPlaceholderVariableTypes(context: ValidationContext): ASTVisitor {
  return {
    VariableDefinition(node) {
      const name = innermostType(node.type);
      if (PLACEHOLDER_INPUT_TYPES.has(name)) {
        context.reportError(
          new GraphQLError(
            `Variable "$${node.variable.name.value}" is declared with type "${name}", a placeholder name that the live 4me schema may not have. ` +
              'Declare the top-level filter type (e.g. PersonFilter) or write the values inline.',
            { nodes: node },
          ),
        );
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Node count / cost estimate

/** Potential nodes of an operation: for each connection, the product of first/last along its path. */
export function estimateNodes(
  schema: GraphQLSchema,
  doc: DocumentNode,
  op: OperationDefinitionNode,
  variables: Record<string, unknown>,
  defaultPageSize: number,
): number {
  const frags = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) frags.set(d.name.value, d);
  const argNum = (f: FieldNode, name: string): number | undefined => {
    const a = f.arguments?.find((x) => x.name.value === name);
    if (!a) return undefined;
    const v = a.value.kind === Kind.VARIABLE ? variables[a.value.name.value] : valueFromASTUntyped(a.value);
    return typeof v === 'number' && Number.isFinite(v) ? Math.max(0, v) : undefined;
  };
  const seen = new Set<string>();
  const walk = (sel: SelectionSetNode, typeName: string, mult: number): number => {
    const type = schema.getType(typeName);
    if (!type || !isCompositeType(type) || !('getFields' in type)) return 0;
    const fields = type.getFields();
    let total = 0;
    for (const s of sel.selections) {
      if (s.kind === Kind.FIELD) {
        const def = fields[s.name.value];
        if (!def) continue;
        const named = getNamedType(def.type);
        let m = mult;
        if (named.name.endsWith('Connection')) {
          m = mult * (argNum(s, 'first') ?? argNum(s, 'last') ?? defaultPageSize);
          total += m;
        }
        if (s.selectionSet) total += walk(s.selectionSet, named.name, m);
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        total += walk(s.selectionSet, s.typeCondition?.name.value ?? typeName, mult);
      } else {
        const f = frags.get(s.name.value);
        if (f && !seen.has(f.name.value)) {
          seen.add(f.name.value);
          total += walk(f.selectionSet, f.typeCondition.name.value, mult);
          seen.delete(f.name.value);
        }
      }
    }
    return total;
  };
  const root = op.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType();
  return root ? walk(op.selectionSet, root.name, 1) : 0;
}

// ---------------------------------------------------------------------------
// Execution context

export interface AsyncSubmission {
  accountId: string;
  personId: string;
  input: Record<string, unknown>;
  document: DocumentNode;
  operationName: string | null;
  variables: Record<string, unknown>;
  /** Alias (response key) of the mutation field in the document. */
  responseKey: string;
  clientMutationId: string | null;
}

export interface ExecContext {
  account: FourMeAccountStore;
  me: FourMePerson;
  /** Set when re-running a discoveredConfigurationItems document to build its async result. */
  replay?: { responseKey: string; payload: Record<string, unknown> };
  /** Registers an asynchronous discoveredConfigurationItems job; returns its AsyncQuery. */
  submitAsync: (s: AsyncSubmission) => FourMeAsyncQuery;
  onMutation: (name: string) => void;
  onCiWrite: (e: CiWriteEvent) => void;
  /** For the async submission: the request's document and variables. */
  document: DocumentNode;
  operationName: string | null;
  variables: Record<string, unknown>;
}

export interface PreparedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | null;
  variables: Record<string, unknown>;
  /** "query.people", "mutation.discoveredConfigurationItems", … */
  rootFields: string[];
  nodes: number;
  cost: number;
}

export interface FourMeEngineOptions {
  schemaPath?: string;
  /** Page size when neither first nor last is given (default 25). */
  defaultPageSize?: number;
  /** Reject variables typed with placeholder filter value types (default true). */
  strictPlaceholderTypes?: boolean;
  /** Max potential nodes per request (default 500,000). */
  maxNodes?: number;
  /** Case-insensitive primaryEmail filter (default true). */
  caseInsensitiveEmailFilter?: boolean;
}

type Args = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Resolver = (source: any, args: Args, ctx: ExecContext, info: GraphQLResolveInfo) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
type StringFilterValue = { values?: Array<string | null> | null; negate?: boolean | null };
type TsFilterValue = StringFilterValue & {
  greaterThan?: string;
  greaterThanOrEqualTo?: string;
  lessThan?: string;
  lessThanOrEqualTo?: string;
};

interface Conn<T> {
  nodes: T[];
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: number;
}

const cursorOf = (pos: number): string => Buffer.from(String(pos), 'utf8').toString('base64');
function positionOf(cursor: string, arg: string): number {
  const n = Number(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!/^[A-Za-z0-9+/=]+$/.test(cursor) || !Number.isInteger(n) || n < 0) {
    throw new GraphQLError(`Invalid cursor given for '${arg}': ${JSON.stringify(cursor)}`);
  }
  return n;
}

/** Normalised value sets of filter objects (one filter is applied to every record of a list). */
const valueSets = new WeakMap<object, { exact?: Set<string>; folded?: Set<string> }>();

function matchString(value: string | null | undefined, f: StringFilterValue | null | undefined, ci = false): boolean {
  if (!f || f.values === undefined || f.values === null) return true;
  const norm = (s: string | null | undefined) => (s === null || s === undefined ? '' : ci ? s.trim().toLowerCase() : s);
  const v = norm(value);
  let hit: boolean;
  if (f.values.length === 0) hit = v === '';
  else {
    let cached = valueSets.get(f);
    if (!cached) valueSets.set(f, (cached = {}));
    const key = ci ? 'folded' : 'exact';
    const set = (cached[key] ??= new Set(f.values.map(norm)));
    hit = set.has(v);
  }
  return f.negate ? !hit : hit;
}

function matchAny(values: string[], f: StringFilterValue | null | undefined): boolean {
  if (!f || !f.values) return true;
  const hit = f.values.length === 0 ? values.length === 0 : values.some((v) => f.values!.includes(v));
  return f.negate ? !hit : hit;
}

function matchTime(value: string | null | undefined, f: TsFilterValue | null | undefined): boolean {
  if (!f) return true;
  const t = value ? Date.parse(value) : NaN;
  let ok = true;
  if (f.values) ok = f.values.length === 0 ? !value : f.values.some((x) => x !== null && Date.parse(x) === t);
  if (f.greaterThan !== undefined) ok = ok && t > Date.parse(f.greaterThan);
  if (f.greaterThanOrEqualTo !== undefined) ok = ok && t >= Date.parse(f.greaterThanOrEqualTo);
  if (f.lessThan !== undefined) ok = ok && t < Date.parse(f.lessThan);
  if (f.lessThanOrEqualTo !== undefined) ok = ok && t <= Date.parse(f.lessThanOrEqualTo);
  return f.negate ? !ok : ok;
}

type FilterFn<T> = (rec: T, value: any, ctx: ExecContext) => boolean; // eslint-disable-line @typescript-eslint/no-explicit-any

// ---------------------------------------------------------------------------

/** Schema + resolvers over a FourMeData. One per simulator. */
export class FourMeEngine {
  readonly schema: GraphQLSchema;
  readonly schemaPath: string;
  defaultPageSize: number;
  strictPlaceholderTypes: boolean;
  maxNodes: number;
  caseInsensitiveEmailFilter: boolean;
  private readonly resolvers: Record<string, Record<string, Resolver>>;
  private readonly fieldResolver: GraphQLFieldResolver<unknown, ExecContext>;
  private readonly typeResolver: GraphQLTypeResolver<unknown, ExecContext>;
  /** Parsed and validated documents by query text (validation does not depend on variables). */
  private readonly documents = new Map<string, { document?: DocumentNode; errors: GraphQLError[] }>();

  constructor(
    private readonly data: FourMeData,
    opts: FourMeEngineOptions = {},
  ) {
    const loaded = loadFourMeSchema(opts.schemaPath);
    this.schema = loaded.schema;
    this.schemaPath = loaded.path;
    this.defaultPageSize = opts.defaultPageSize ?? 25;
    this.strictPlaceholderTypes = opts.strictPlaceholderTypes ?? true;
    this.maxNodes = opts.maxNodes ?? 500_000;
    this.caseInsensitiveEmailFilter = opts.caseInsensitiveEmailFilter ?? true;
    this.resolvers = this.buildResolvers();
    this.fieldResolver = (source, args, ctx, info) => {
      const r = this.resolvers[info.parentType.name]?.[info.fieldName];
      if (r) return r(source, args, ctx, info);
      const v = (source as Record<string, unknown> | null)?.[info.fieldName];
      return v === undefined ? null : v;
    };
    this.typeResolver = (value) => {
      const v = value as { __typename?: string; id?: string };
      if (v.__typename) return v.__typename;
      return v.id ? this.data.node(v.id)?.type : undefined;
    };
  }

  /** Parses and validates a request body. Throws {errors} (GraphQL error list) when it cannot run. */
  prepare(body: unknown): PreparedOperation | { errors: GraphQLError[] } {
    const b = (body ?? {}) as { query?: unknown; variables?: unknown; operationName?: unknown };
    if (typeof b.query !== 'string' || !b.query.trim()) return { errors: [new GraphQLError('No query string was present')] };
    let variables: Record<string, unknown> = {};
    if (b.variables !== undefined && b.variables !== null) {
      if (typeof b.variables === 'string') {
        try {
          variables = JSON.parse(b.variables);
        } catch {
          return { errors: [new GraphQLError('Variables are invalid JSON.')] };
        }
      } else if (typeof b.variables === 'object' && !Array.isArray(b.variables)) variables = b.variables as Record<string, unknown>;
      else return { errors: [new GraphQLError('Variables must be a JSON object.')] };
    }
    const cacheKey = `${this.strictPlaceholderTypes ? 1 : 0}${b.query}`;
    let checked = this.documents.get(cacheKey);
    if (!checked) {
      try {
        const document = parse(b.query);
        const rules = this.strictPlaceholderTypes ? [...specifiedRules, noPlaceholderVariableTypes] : specifiedRules;
        checked = { document, errors: [...validate(this.schema, document, rules)] };
      } catch (e) {
        checked = { errors: [e as GraphQLError] };
      }
      if (this.documents.size >= 500) this.documents.delete(this.documents.keys().next().value!);
      this.documents.set(cacheKey, checked);
    }
    if (checked.errors.length || !checked.document) return { errors: checked.errors };
    const document = checked.document;
    const ops = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const operationName = typeof b.operationName === 'string' && b.operationName ? b.operationName : null;
    const operation = operationName ? ops.find((o) => o.name?.value === operationName) : ops.length === 1 ? ops[0] : undefined;
    if (!operation) {
      return {
        errors: [new GraphQLError(operationName ? `Unknown operation named "${operationName}".` : 'Must provide operation name if query contains multiple operations.')],
      };
    }
    if (operation.operation === 'subscription') return { errors: [new GraphQLError('Subscriptions are not supported.')] };
    const rootFields = operation.selectionSet.selections
      .filter((s): s is FieldNode => s.kind === Kind.FIELD && !s.name.value.startsWith('__'))
      .map((s) => `${operation.operation}.${s.name.value}`);
    const nodes = estimateNodes(this.schema, document, operation, variables, this.defaultPageSize);
    if (nodes > this.maxNodes) return { errors: [new GraphQLError(NODE_LIMIT_MESSAGE)] };
    const cost = Math.max(1, Math.ceil(nodes / 100)) + rootFields.filter((f) => f.startsWith('mutation.')).length;
    return { document, operation, operationName: operation.name?.value ?? operationName, variables, rootFields, nodes, cost };
  }

  /** Executes a prepared operation. All resolvers are synchronous, so the result is too. */
  run(p: PreparedOperation, ctx: Omit<ExecContext, 'document' | 'operationName' | 'variables'>): ExecutionResult {
    const r = execute({
      schema: this.schema,
      document: p.document,
      operationName: p.operation.name?.value,
      variableValues: p.variables,
      contextValue: { ...ctx, document: p.document, operationName: p.operationName, variables: p.variables },
      fieldResolver: this.fieldResolver as GraphQLFieldResolver<unknown, unknown>,
      typeResolver: this.typeResolver as GraphQLTypeResolver<unknown, unknown>,
    });
    if (r instanceof Promise) throw new Error('FourMe sim: a resolver returned a promise');
    return r;
  }

  // -------------------------------------------------------------------------
  // Helpers

  private connection<T>(items: T[], args: Args, info: GraphQLResolveInfo): Conn<T> {
    for (const a of ['first', 'last'] as const) {
      const v = args[a];
      if (v !== undefined && v !== null && (v < 1 || v > MAX_PAGE_SIZE)) {
        throw new GraphQLError(`Argument '${a}' on Field '${info.fieldName}' must be between 1 and ${MAX_PAGE_SIZE}, got ${v}.`);
      }
    }
    let start = 0;
    let end = items.length;
    if (args.after) start = Math.min(items.length, positionOf(String(args.after), 'after'));
    if (args.before) end = Math.max(start, Math.min(items.length, positionOf(String(args.before), 'before') - 1));
    let from = start;
    let to = end;
    if (args.first) to = Math.min(end, start + args.first);
    if (args.last) from = Math.max(from, to - args.last);
    if (!args.first && !args.last) to = Math.min(end, start + this.defaultPageSize);
    const slice = items.slice(from, to);
    const edges = slice.map((node, i) => ({ cursor: cursorOf(from + i + 1), node }));
    return {
      nodes: slice,
      edges,
      pageInfo: {
        hasNextPage: to < end,
        hasPreviousPage: from > 0,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges[edges.length - 1]?.cursor ?? null,
      },
      totalCount: items.length,
    };
  }

  private applyFilter<T>(items: T[], filter: Args | null | undefined, fns: Record<string, FilterFn<T>>, typeName: string, ctx: ExecContext): T[] {
    if (!filter) return items;
    const active = Object.entries(filter).filter(([, v]) => v !== undefined && v !== null);
    for (const [k] of active) {
      if (!fns[k]) throw new GraphQLError(`The 4me simulator does not implement the '${k}' field of ${typeName}.`);
    }
    return items.filter((rec) => active.every(([k, v]) => fns[k](rec, v, ctx)));
  }

  private applyOrder<T extends object>(items: T[], order: Array<{ field?: string; direction?: string }> | null | undefined, supported: string[], typeName: string): T[] {
    if (!order || !order.length) return items;
    for (const o of order) {
      if (o.field && !supported.includes(o.field)) throw new GraphQLError(`The 4me simulator does not implement ordering ${typeName} by '${o.field}'.`);
    }
    const out = [...items];
    out.sort((a, b) => {
      for (const o of order) {
        if (!o.field) continue;
        const av = (a as Record<string, unknown>)[o.field];
        const bv = (b as Record<string, unknown>)[o.field];
        const an = o.field === 'requestId' ? Number(av) : av;
        const bn = o.field === 'requestId' ? Number(bv) : bv;
        const c = an === bn ? 0 : an === null || an === undefined ? -1 : bn === null || bn === undefined ? 1 : an! < bn! ? -1 : 1;
        if (c) return o.direction === 'desc' ? -c : c;
      }
      return 0;
    });
    return out;
  }

  private accountView(id: string | null | undefined): Record<string, unknown> | null {
    if (!id || !this.data.hasAccount(id)) return null;
    const s = this.data.account(id);
    return {
      id: s.id,
      name: s.name,
      disabled: false,
      directory: this.data.accountIds.some((a) => this.data.account(a).directoryAccountId === s.id),
      directoryAccountId: s.directoryAccountId,
      url: `https://${s.id}.${'4me-sim.test'}`,
    };
  }

  /** Resolves a CI for request links: must be in the account. */
  private ciIn(ctx: ExecContext, id: string): FourMeConfigurationItem | undefined {
    return ctx.account.configurationItem(id);
  }

  private static errs(errors: ValidationError[]): { errors: ValidationError[] } {
    return { errors };
  }

  private q(value: unknown): string {
    return typeof value === 'string' ? value : '';
  }

  // -------------------------------------------------------------------------
  // Resolvers

  private buildResolvers(): Record<string, Record<string, Resolver>> {
    const data = this.data;
    const ciEmail = () => this.caseInsensitiveEmailFilter;
    const empty = (_s: unknown, args: Args, _c: ExecContext, info: GraphQLResolveInfo) => this.connection([], args, info);
    const account = (rec: { accountId: string }) => this.accountView(rec.accountId);
    const life = () => 'active';

    const personFilters: Record<string, FilterFn<FourMePerson>> = {
      id: (r, v) => matchString(r.id, v),
      primaryEmail: (r, v) => matchString(r.primaryEmail, v, ciEmail()),
      name: (r, v) => matchString(r.name, v),
      disabled: (r, v) => r.disabled === v,
      source: (r, v) => matchString(r.source, v),
      sourceID: (r, v) => matchString(r.sourceID, v),
      employeeID: (r, v) => matchString(r.employeeID, v),
      authenticationID: (r, v) => matchString(r.authenticationID, v),
      createdAt: (r, v) => matchTime(r.createdAt, v),
      updatedAt: (r, v) => matchTime(r.updatedAt, v),
      account: (r, v) => matchString(r.accountId, v),
      query: (r, v) => `${r.name} ${r.primaryEmail ?? ''}`.toLowerCase().includes(String(v).toLowerCase()),
    };
    const productOf = (ci: FourMeConfigurationItem) => data.nodeOf<FourMeProduct>(ci.productId, 'Product');
    const ciFilters: Record<string, FilterFn<FourMeConfigurationItem>> = {
      id: (r, v) => matchString(r.id, v),
      source: (r, v) => matchString(r.source, v),
      sourceID: (r, v) => matchString(r.sourceID, v),
      serialNr: (r, v) => matchString(r.serialNr, v),
      name: (r, v) => matchString(r.name, v),
      label: (r, v) => matchString(r.label, v),
      systemID: (r, v) => matchString(r.systemID, v),
      assetID: (r, v) => matchString(r.assetID, v),
      status: (r, v) => matchString(r.status, v),
      active: (r, v) => !INACTIVE_CI_STATUSES.has(r.status) === v,
      product: (r, v) => matchString(r.productId, v),
      productBrand: (r, v) => matchString(productOf(r)?.brand, v),
      productModel: (r, v) => matchString(productOf(r)?.model, v),
      productCategory: (r, v) => matchString(data.nodeOf<FourMeProductCategory>(productOf(r)?.categoryId, 'ProductCategory')?.reference, v),
      user: (r, v) => matchAny(r.userIds, v),
      supportTeam: (r, v) => matchString(r.supportTeamId, v),
      lastSeenAt: (r, v) => matchTime(r.lastSeenAt, v),
      createdAt: (r, v) => matchTime(r.createdAt, v),
      updatedAt: (r, v) => matchTime(r.updatedAt, v),
      query: (r, v) => `${r.name} ${r.label ?? ''} ${r.serialNr ?? ''}`.toLowerCase().includes(String(v).toLowerCase()),
      customFilters: (r, v: Array<{ name: string; values: Array<string | null>; negate?: boolean }>) =>
        v.every((cf) => {
          const field = r.customFields.find((f) => f.id === cf.name);
          const val = field?.value === undefined || field?.value === null ? null : String(field.value);
          return matchString(val, { values: cf.values, negate: cf.negate });
        }),
    };
    const productFilters: Record<string, FilterFn<FourMeProduct>> = {
      id: (r, v) => matchString(r.id, v),
      name: (r, v) => matchString(r.name, v),
      model: (r, v) => matchString(r.model, v),
      productBrand: (r, v) => matchString(r.brand, v),
      productCategory: (r, v) => matchString(data.nodeOf<FourMeProductCategory>(r.categoryId, 'ProductCategory')?.reference, v),
      productID: (r, v) => matchString(r.productID, v),
      source: (r, v) => matchString(r.source, v),
      sourceID: (r, v) => matchString(r.sourceID, v),
      disabled: (r, v) => r.disabled === v,
      supportTeam: (r, v) => matchString(r.supportTeamId, v),
      createdAt: (r, v) => matchTime(r.createdAt, v),
      updatedAt: (r, v) => matchTime(r.updatedAt, v),
      query: (r, v) => `${r.name} ${r.brand} ${r.model ?? ''}`.toLowerCase().includes(String(v).toLowerCase()),
    };
    const categoryFilters: Record<string, FilterFn<FourMeProductCategory>> = {
      id: (r, v) => matchString(r.id, v),
      name: (r, v) => matchString(r.name, v),
      group: (r, v) => matchString(r.group, v),
      reference: (r, v) => matchString(r.reference, v),
      ruleSet: (r, v) => matchString(r.ruleSet, v),
      source: (r, v) => matchString(r.source, v),
      sourceID: (r, v) => matchString(r.sourceID, v),
      disabled: (r, v) => r.disabled === v,
      query: (r, v) => `${r.name} ${r.reference}`.toLowerCase().includes(String(v).toLowerCase()),
    };
    const requestFilters: Record<string, FilterFn<FourMeRequest>> = {
      id: (r, v) => matchString(r.id, v),
      requestId: (r, v) => matchString(r.requestId, { ...v, values: v.values?.map((x: unknown) => (x === null ? null : String(x))) }),
      source: (r, v) => matchString(r.source, v),
      sourceID: (r, v) => matchString(r.sourceID, v),
      status: (r, v) => matchString(r.status, v),
      category: (r, v) => matchString(r.category, v),
      impact: (r, v) => matchString(r.impact, v),
      subject: (r, v) => matchString(r.subject, v),
      ci: (r, v) => matchAny(r.configurationItemIds, v),
      requestedFor: (r, v) => matchString(r.requestedForId, v),
      requestedBy: (r, v) => matchString(r.requestedById, v),
      createdBy: (r, v) => matchString(r.createdById, v),
      team: (r, v) => matchString(r.teamId, v),
      completedAt: (r, v) => matchTime(r.completedAt, v),
      createdAt: (r, v) => matchTime(r.createdAt, v),
      updatedAt: (r, v) => matchTime(r.updatedAt, v),
      urgent: (r, v) => r.urgent === v,
      query: (r, v) => `${r.subject} ${r.requestId}`.toLowerCase().includes(String(v).toLowerCase()),
    };

    const peopleOf = (ctx: ExecContext, view: string | undefined): FourMePerson[] => {
      if (view === 'archive' || view === 'trash') return [];
      const own = ctx.account.people;
      if ((view === 'all' || view === 'all_with_roles') && ctx.account.directoryAccountId && data.hasAccount(ctx.account.directoryAccountId)) {
        return [...own, ...data.account(ctx.account.directoryAccountId).people];
      }
      return own;
    };

    const cisWithUser = (personId: string): FourMeConfigurationItem[] =>
      data.accountIds.flatMap((a) => data.account(a).configurationItems.filter((c) => c.userIds.includes(personId)));

    const Query: Record<string, Resolver> = {
      account: (_s, _a, ctx) => this.accountView(ctx.account.id),
      me: (_s, _a, ctx) => ctx.me,
      node: (_s, args, ctx) => {
        const n = data.node(String(args.id));
        if (!n) return null;
        const visible = n.accountId === ctx.account.id || (n.type === 'Person' && n.accountId === ctx.account.directoryAccountId);
        return visible ? n.rec : null;
      },
      people: (_s, args, ctx, info) => {
        let base = peopleOf(ctx, args.view);
        const pe = args.filter?.primaryEmail as StringFilterValue | undefined;
        if (pe?.values?.length && !pe.negate) {
          // Narrow through the e-mail indexes first (the full filter still runs on the candidates).
          const stores = [ctx.account.id, ctx.account.directoryAccountId].filter((a): a is string => !!a && data.hasAccount(a)).map((a) => data.account(a));
          const ids = new Set(pe.values.flatMap((v) => (v ? stores.flatMap((st) => st.peopleByEmail(v)).map((p) => p.id) : [])));
          base = base.filter((p) => ids.has(p.id));
        }
        const list = this.applyOrder(this.applyFilter(base, args.filter, personFilters, 'PersonFilter', ctx), args.order, ['name', 'createdAt', 'updatedAt', 'employeeID', 'authenticationID'], 'people');
        return this.connection(list, args, info);
      },
      configurationItems: (_s, args, ctx, info) => {
        const base = args.view === 'archive' || args.view === 'trash' ? [] : args.view === 'spare_cis' ? ctx.account.configurationItems.filter((c) => c.status === 'in_stock') : ctx.account.configurationItems;
        const list = this.applyOrder(this.applyFilter(base, args.filter, ciFilters, 'ConfigurationItemFilter', ctx), args.order, ['name', 'label', 'status', 'createdAt', 'updatedAt'], 'configurationItems');
        return this.connection(list, args, info);
      },
      products: (_s, args, ctx, info) => {
        const list = this.applyOrder(this.applyFilter(ctx.account.products, args.filter, productFilters, 'ProductFilter', ctx), args.order, ['name', 'createdAt', 'updatedAt', 'disabled'], 'products');
        return this.connection(list, args, info);
      },
      productCategories: (_s, args, ctx, info) => {
        const list = this.applyOrder(this.applyFilter(ctx.account.productCategories, args.filter, categoryFilters, 'ProductCategoryFilter', ctx), args.order, ['name', 'group', 'createdAt', 'updatedAt', 'disabled'], 'productCategories');
        return this.connection(list, args, info);
      },
      requests: (_s, args, ctx, info) => {
        const base = args.view === 'archive' || args.view === 'trash' ? [] : ctx.account.requests;
        const list = this.applyOrder(this.applyFilter(base, args.filter, requestFilters, 'RequestFilter', ctx), args.order, ['requestId', 'subject', 'status', 'category', 'impact', 'createdAt', 'updatedAt', 'completedAt'], 'requests');
        return this.connection(list, args, info);
      },
    };

    const Account: Record<string, Resolver> = {
      directoryAccount: (a: { directoryAccountId: string | null }) => this.accountView(a.directoryAccountId),
      organization: () => null,
    };

    const ConfigurationItem: Record<string, Resolver> = {
      account,
      lifeCycleState: life,
      product: (ci: FourMeConfigurationItem) => data.nodeOf(ci.productId, 'Product') ?? null,
      supportTeam: (ci: FourMeConfigurationItem) => data.nodeOf(ci.supportTeamId, 'Team') ?? null,
      operatingSystem: (ci: FourMeConfigurationItem) => data.nodeOf(ci.operatingSystemId, 'ConfigurationItem') ?? null,
      users: (ci: FourMeConfigurationItem, args, _c, info) =>
        this.connection(ci.userIds.map((id) => data.nodeOf<FourMePerson>(id, 'Person')).filter(Boolean), args, info),
      requests: (ci: FourMeConfigurationItem, args, _c, info) =>
        this.connection(data.account(ci.accountId).requests.filter((r) => r.configurationItemIds.includes(ci.id)), args, info),
      ruleSet: (ci: FourMeConfigurationItem) => {
        const p = data.nodeOf<FourMeProduct>(ci.productId, 'Product');
        return data.nodeOf<FourMeProductCategory>(p?.categoryId, 'ProductCategory')?.ruleSet ?? null;
      },
      ciRelations: (ci: FourMeConfigurationItem, args, _c, info) => this.connection(ciRelationsOf(data, ci), args, info),
      serviceInstances: empty,
    };

    const Person: Record<string, Resolver> = {
      account,
      lifeCycleState: life,
      configurationItems: (p: FourMePerson, args, _c, info) => this.connection(cisWithUser(p.id), args, info),
      customFields: () => [],
    };

    const Product: Record<string, Resolver> = {
      account,
      productCategory: (p: FourMeProduct) => data.nodeOf(p.categoryId, 'ProductCategory') ?? null,
      supportTeam: (p: FourMeProduct) => data.nodeOf(p.supportTeamId, 'Team') ?? null,
      ruleSet: (p: FourMeProduct) => data.nodeOf<FourMeProductCategory>(p.categoryId, 'ProductCategory')?.ruleSet ?? null,
      configurationItems: (p: FourMeProduct, args, _c, info) =>
        this.connection(data.account(p.accountId).configurationItems.filter((c) => c.productId === p.id), args, info),
    };

    const ProductCategory: Record<string, Resolver> = {
      account,
      products: (c: FourMeProductCategory, args, _c, info) =>
        this.connection(data.account(c.accountId).products.filter((p) => p.categoryId === c.id), args, info),
    };

    const Request: Record<string, Resolver> = {
      account,
      lifeCycleState: life,
      configurationItems: (r: FourMeRequest, args, _c, info) =>
        this.connection(r.configurationItemIds.map((id) => data.nodeOf<FourMeConfigurationItem>(id, 'ConfigurationItem')).filter(Boolean), args, info),
      notes: (r: FourMeRequest, args, _c, info) => this.connection(r.notes, args, info),
      requestedFor: (r: FourMeRequest) => data.nodeOf(r.requestedForId, 'Person') ?? null,
      requestedBy: (r: FourMeRequest) => data.nodeOf(r.requestedById, 'Person') ?? null,
      createdBy: (r: FourMeRequest) => data.nodeOf(r.createdById, 'Person') ?? null,
      team: (r: FourMeRequest) => data.nodeOf(r.teamId, 'Team') ?? null,
      tags: empty,
      grouping: () => 'none',
    };

    const Note: Record<string, Resolver> = {
      account,
      person: (n: FourMeNote) => data.nodeOf(n.personId, 'Person') ?? null,
      visibility: (n: FourMeNote) => (n.internal ? 'specialist' : 'end_user'),
    };

    const AsyncQuery: Record<string, Resolver> = {
      account,
      person: (a: FourMeAsyncQuery) => data.nodeOf(a.personId, 'Person') ?? null,
    };

    const Team: Record<string, Resolver> = { account };

    const ui = uiExtensionResolvers(data, { connection: (items, args, info) => this.connection(items, args, info), accountView: (id) => this.accountView(id) });
    return {
      Query: { ...Query, ...ui.Query },
      Mutation: { ...this.mutationResolvers(), ...ui.Mutation },
      Account,
      ConfigurationItem,
      Person: { ...Person, ...ui.Person },
      Product: { ...Product, ...ui.Product },
      ProductCategory,
      Request,
      Note,
      AsyncQuery,
      Team,
      UiExtension: ui.UiExtension,
    };
  }

  // -------------------------------------------------------------------------
  // Mutations

  private mutationResolvers(): Record<string, Resolver> {
    const data = this.data;
    const guard = (name: string, fn: (input: Args, ctx: ExecContext, info: GraphQLResolveInfo) => Record<string, unknown>): Resolver => {
      return (_s, args, ctx, info) => {
        if (ctx.replay) {
          // Re-running a discoveredConfigurationItems document for its async result: nothing else runs again.
          return name === 'discoveredConfigurationItems' && info.path.key === ctx.replay.responseKey ? ctx.replay.payload : null;
        }
        ctx.onMutation(name);
        const input = (args.input ?? {}) as Args;
        const out = fn(input, ctx, info);
        return { clientMutationId: input.clientMutationId ?? null, errors: [], ...out };
      };
    };

    const requestCiErrors = (ctx: ExecContext, ids: unknown): ValidationError[] => {
      if (!Array.isArray(ids)) return [];
      const out: ValidationError[] = [];
      for (const id of ids as string[]) {
        const ci = this.ciIn(ctx, id);
        if (!ci) out.push({ path: ['configurationItemIds'], message: `Configuration item with ID '${id}' was not found` });
        else if (ci.status === 'removed') out.push({ path: ['configurationItemIds'], message: `Configuration item '${ci.name}' has the status Removed and cannot be linked` });
      }
      return out;
    };
    const personErrors = (ctx: ExecContext, field: string, id: unknown): ValidationError[] =>
      id === undefined || id === null || data.personVisibleFrom(String(id), ctx.account.id) ? [] : [{ path: [field], message: `Person with ID '${id}' was not found` }];
    const sourceErrors = (input: Args): ValidationError[] => {
      const out: ValidationError[] = [];
      if (typeof input.source === 'string' && input.source.length > SOURCE_MAX) out.push({ path: ['source'], message: tooLong('source', SOURCE_MAX) });
      if (typeof input.sourceID === 'string' && input.sourceID.length > SOURCE_ID_MAX) out.push({ path: ['sourceID'], message: tooLong('sourceID', SOURCE_ID_MAX) });
      return out;
    };

    return {
      discoveredConfigurationItems: guard('discoveredConfigurationItems', (input, ctx, info) => {
        const errors: ValidationError[] = [];
        const source = typeof input.source === 'string' ? input.source.trim() : '';
        if (!source) errors.push({ path: ['source'], message: blank('source') });
        else if (source.length > SOURCE_MAX) errors.push({ path: ['source'], message: tooLong('source', SOURCE_MAX) });
        const count = countDiscoveredCis(input);
        if (count > DISCOVERED_MAX_CIS) {
          errors.push({ path: ['physicalAssets'], message: `At most ${DISCOVERED_MAX_CIS} configuration items can be discovered in one call (got ${count})` });
        }
        if (errors.length) return { asyncQuery: null, configurationItems: null, errors };
        const asyncQuery = ctx.submitAsync({
          accountId: ctx.account.id,
          personId: ctx.me.id,
          input: JSON.parse(JSON.stringify(input)),
          document: ctx.document,
          operationName: ctx.operationName,
          variables: ctx.variables,
          responseKey: String(info.path.key),
          clientMutationId: input.clientMutationId ?? null,
        });
        return { asyncQuery, configurationItems: null };
      }),

      configurationItemCreate: guard('configurationItemCreate', (input, ctx) => {
        const product = ctx.account.product(String(input.productId));
        const errors: ValidationError[] = [];
        if (!product) errors.push({ path: ['productId'], message: `Product with ID '${input.productId}' was not found` });
        if (input.name !== undefined && (input.name === null || String(input.name).trim() === '')) errors.push({ path: ['name'], message: blank('name') });
        errors.push(...ciFieldErrors(input, []), ...sourceErrors(input), ...userIdErrors(data, ctx.account.id, input.userIds, []));
        errors.push(...customFieldErrors(ctx.account, input.customFields, []));
        if (product && serialConflict(data, ctx.account, input.serialNr, product.brand, undefined)) {
          errors.push({ path: ['serialNr'], message: `Serial number '${input.serialNr}' has already been taken for brand '${product.brand}'` });
        }
        if (errors.length) return { configurationItem: null, errors };
        const ci = data.addConfigurationItem(ctx.account.id, {
          name: input.name ?? product!.name,
          productId: product!.id,
          status: input.status,
          source: input.source ?? '4me API',
          sourceID: input.sourceID ?? null,
          supportTeamId: input.supportTeamId ?? product!.supportTeamId,
          customFields: (input.customFields ?? []).map((f: FourMeCustomField) => ({ id: f.id, value: f.value ?? null })),
          userIds: input.status === 'removed' ? [] : [...new Set<string>(input.userIds ?? [])],
        });
        data.updateConfigurationItem(ci, ciPatchFrom(input));
        ctx.onCiWrite({ ciId: ci.id, sourceID: ci.sourceID, via: 'configurationItemCreate', created: true, adopted: false, changed: true });
        return { configurationItem: ci, pendingCiReconciliation: false };
      }),

      configurationItemUpdate: guard('configurationItemUpdate', (input, ctx) => {
        const ci = ctx.account.configurationItem(String(input.id));
        if (!ci) return FourMeEngine.errs([{ path: ['id'], message: `Configuration item with ID '${input.id}' was not found` }]);
        const errors: ValidationError[] = [];
        let product = data.nodeOf<FourMeProduct>(ci.productId, 'Product');
        if (input.productId !== undefined && input.productId !== null) {
          product = ctx.account.product(String(input.productId));
          if (!product) errors.push({ path: ['productId'], message: `Product with ID '${input.productId}' was not found` });
        }
        if (input.name !== undefined && (input.name === null || String(input.name).trim() === '')) errors.push({ path: ['name'], message: blank('name') });
        errors.push(...ciFieldErrors(input, []), ...sourceErrors(input), ...userIdErrors(data, ctx.account.id, input.userIds, []));
        errors.push(...customFieldErrors(ctx.account, input.customFields, []));
        if (product && input.serialNr !== undefined && serialConflict(data, ctx.account, input.serialNr, product.brand, ci)) {
          errors.push({ path: ['serialNr'], message: `Serial number '${input.serialNr}' has already been taken for brand '${product.brand}'` });
        }
        if (errors.length) return { configurationItem: null, errors };
        const patch: Partial<FourMeConfigurationItem> = ciPatchFrom(input);
        if (product) patch.productId = product.id;
        if (input.userIds !== undefined) patch.userIds = [...new Set<string>(input.userIds ?? [])];
        if (input.customFields !== undefined) patch.customFields = mergeCustomFields(ci.customFields, input.customFields ?? []);
        if (input.supportTeamId !== undefined) patch.supportTeamId = input.supportTeamId;
        if (input.source !== undefined) patch.source = input.source;
        if (input.sourceID !== undefined) patch.sourceID = input.sourceID;
        const changed = data.updateConfigurationItem(ci, patch);
        ctx.onCiWrite({ ciId: ci.id, sourceID: ci.sourceID, via: 'configurationItemUpdate', created: false, adopted: false, changed });
        return { configurationItem: ci, pendingCiReconciliation: false };
      }),

      productCreate: guard('productCreate', (input, ctx) => {
        const errors: ValidationError[] = [];
        for (const f of ['brand', 'name']) if (!this.q(input[f]).trim()) errors.push({ path: [f], message: blank(f) });
        const cat = data.resolveCategory(ctx.account.id, String(input.category ?? ''));
        if (!cat) errors.push({ path: ['category'], message: `Product category '${input.category}' was not found` });
        errors.push(...sourceErrors(input));
        if (input.source && input.sourceID && ctx.account.productBySource(input.source, input.sourceID)) {
          errors.push({ path: ['sourceID'], message: `Source ID '${input.sourceID}' has already been taken for source '${input.source}'` });
        }
        if (errors.length) return { product: null, errors };
        const product = data.addProduct(ctx.account.id, {
          name: input.name,
          brand: input.brand,
          model: input.model ?? null,
          productID: input.productID ?? null,
          category: cat!.id,
          source: input.source ?? '4me API',
          sourceID: input.sourceID ?? null,
          supportTeamId: input.supportTeamId ?? null,
          disabled: input.disabled ?? false,
          customFields: input.customFields,
        });
        return { product };
      }),

      requestCreate: guard('requestCreate', (input, ctx) => {
        const errors: ValidationError[] = [];
        if (!this.q(input.subject).trim()) errors.push({ path: ['subject'], message: blank('subject') });
        const category = input.category ?? 'other';
        if (category === 'incident' && !input.impact) errors.push({ path: ['impact'], message: "Impact can't be blank for an incident" });
        const status = input.status ?? 'assigned';
        if (status === 'completed' && !input.completionReason) errors.push({ path: ['completionReason'], message: "Completion reason can't be blank when the status is Completed" });
        errors.push(...requestCiErrors(ctx, input.configurationItemIds), ...sourceErrors(input));
        errors.push(...personErrors(ctx, 'requestedForId', input.requestedForId), ...personErrors(ctx, 'requestedById', input.requestedById));
        if (input.teamId && !ctx.account.team(String(input.teamId))) errors.push({ path: ['teamId'], message: `Team with ID '${input.teamId}' was not found` });
        if (errors.length) return { request: null, errors };
        const requestedById = input.requestedById ?? ctx.me.id;
        const request = data.addRequest(ctx.account.id, {
          subject: input.subject,
          category,
          impact: input.impact ?? null,
          status,
          completionReason: input.completionReason ?? null,
          source: input.source ?? '4me API',
          sourceID: input.sourceID ?? null,
          configurationItemIds: [...new Set<string>(input.configurationItemIds ?? [])],
          requestedForId: input.requestedForId ?? requestedById,
          requestedById,
          createdById: ctx.me.id,
          teamId: input.teamId ?? null,
          urgent: input.urgent ?? false,
          customFields: input.customFields,
        });
        if (this.q(input.note).trim()) data.addNote(request, { text: input.note, internal: false, personId: ctx.me.id });
        if (this.q(input.internalNote).trim()) data.addNote(request, { text: input.internalNote, internal: true, personId: ctx.me.id });
        return { request };
      }),

      requestUpdate: guard('requestUpdate', (input, ctx) => {
        const request = ctx.account.request(String(input.id));
        if (!request) return { request: null, errors: [{ path: ['id'], message: `Request with ID '${input.id}' was not found` }] };
        const errors: ValidationError[] = [];
        if (input.subject !== undefined && !this.q(input.subject).trim()) errors.push({ path: ['subject'], message: blank('subject') });
        const category = input.category ?? request.category;
        const impact = input.impact !== undefined ? input.impact : request.impact;
        if (category === 'incident' && !impact) errors.push({ path: ['impact'], message: "Impact can't be blank for an incident" });
        const status = input.status ?? request.status;
        const reason = input.completionReason !== undefined ? input.completionReason : request.completionReason;
        if (status === 'completed' && !reason) errors.push({ path: ['completionReason'], message: "Completion reason can't be blank when the status is Completed" });
        errors.push(...requestCiErrors(ctx, input.configurationItemIds), ...sourceErrors(input));
        errors.push(...personErrors(ctx, 'requestedForId', input.requestedForId));
        if (input.teamId && !ctx.account.team(String(input.teamId))) errors.push({ path: ['teamId'], message: `Team with ID '${input.teamId}' was not found` });
        if (errors.length) return { request: null, errors };
        const wasCompleted = request.status === 'completed';
        for (const k of ['subject', 'category', 'impact', 'status', 'completionReason', 'source', 'sourceID', 'requestedForId', 'teamId', 'urgent'] as const) {
          if (input[k] !== undefined) (request as unknown as Record<string, unknown>)[k] = input[k];
        }
        if (input.configurationItemIds !== undefined) request.configurationItemIds = [...new Set<string>(input.configurationItemIds ?? [])];
        if (input.customFields !== undefined) request.customFields = mergeCustomFields(request.customFields, input.customFields ?? []);
        if (request.status === 'completed' && !wasCompleted) request.completedAt = nowIso();
        if (request.status !== 'completed') request.completedAt = null;
        request.updatedAt = nowIso();
        if (this.q(input.note).trim()) data.addNote(request, { text: input.note, internal: false, personId: ctx.me.id });
        if (this.q(input.internalNote).trim()) data.addNote(request, { text: input.internalNote, internal: true, personId: ctx.me.id });
        return { request };
      }),

      noteCreate: guard('noteCreate', (input, ctx) => {
        const owner = ctx.account.request(String(input.ownerId));
        const errors: ValidationError[] = [];
        if (!owner) errors.push({ path: ['ownerId'], message: `Record with ID '${input.ownerId}' was not found or does not accept notes` });
        if (!this.q(input.text).trim()) errors.push({ path: ['text'], message: blank('text') });
        if (errors.length) return { note: null, errors };
        const note = data.addNote(owner!, { text: input.text, internal: input.internal ?? false, personId: ctx.me.id });
        return { note };
      }),
    };
  }
}

/** Payload object served at the resultUrl of a discoveredConfigurationItems job. */
export function discoveredResultPayload(
  asyncQuery: FourMeAsyncQuery,
  cis: FourMeConfigurationItem[],
  errors: ValidationError[],
  clientMutationId: string | null,
): Record<string, unknown> {
  return { clientMutationId, asyncQuery, configurationItems: cis, errors, pendingCiReconciliationCount: 0 };
}

export type { FourMeRecord, FourMeTeam };
