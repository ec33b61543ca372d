/**
 * `GET /users` of the simulated Graph: the tenant's users, as the directory lists them.
 *
 * What it enforces (docs/graph-users.md has the sources):
 *   - `$select`, `$top` and `$skiptoken` only (other options: 400, as the sim's other routes);
 *   - server paging: 100 users per page by default, `$top` 1–999; `$top` above 999 is refused
 *     ("Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.");
 *   - opaque `$skiptoken` bound to the query exactly as sent (the sim's own tokens);
 *   - deleted users are not listed (Graph keeps them in /directory/deletedItems).
 * The route sits in the directory throttling bucket (set where it is hooked in sim/graph.ts).
 *
 * The sim's helpers are private to GraphSim, so it hands them in (`UsersListKit`); `C` is its
 * request context.
 */
import type { SimUser } from './tenant';

/** Graph's default page of /users when no $top is given. */
export const USERS_DEFAULT_PAGE = 100;
/** The largest $top /users accepts. */
export const USERS_MAX_TOP = 999;

export interface UsersListKit<C> {
  /** The tenant's users, deleted ones answering null. */
  size: number;
  at(u: number): SimUser | null;
  checkOptions(ctx: C, allowed: string[]): void;
  select(ctx: C): string[] | null;
  top(ctx: C): number | null;
  readToken(ctx: C, route: string): number;
  nextLink(ctx: C, route: string, pos: number): string;
  context(ctx: C, select: string[] | null): string;
  project(ctx: C, user: SimUser, select: string[] | null): Record<string, unknown>;
  /** An HTTP error as the sim answers it. */
  error(status: number, code: string, message: string): Error;
}

const ROUTE = 'users';

export function listUsers<C>(ctx: C, kit: UsersListKit<C>): { status: number; headers: Record<string, string>; body: unknown } {
  kit.checkOptions(ctx, ['$select', '$top', '$skiptoken']);
  const select = kit.select(ctx);
  const top = kit.top(ctx);
  // The code is our assumption: Microsoft's answer quotes only the message.
  if (top !== null && top > USERS_MAX_TOP) {
    throw kit.error(400, 'Request_UnsupportedQuery', `Invalid page size specified: '${top}'. Must be between 1 and ${USERS_MAX_TOP} inclusive.`);
  }
  const page = top ?? USERS_DEFAULT_PAGE;
  const start = kit.readToken(ctx, ROUTE);
  const value: Record<string, unknown>[] = [];
  let next: number | null = null;
  for (let u = start; u < kit.size; u++) {
    const user = kit.at(u);
    if (!user) continue;
    if (value.length === page) {
      next = u;
      break;
    }
    value.push(kit.project(ctx, user, select));
  }
  const body: Record<string, unknown> = { '@odata.context': kit.context(ctx, select), value };
  if (next !== null) body['@odata.nextLink'] = kit.nextLink(ctx, ROUTE, next);
  return { status: 200, headers: {}, body };
}
