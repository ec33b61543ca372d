/**
 * People of a 4me account (and of its directory account: `view: all`)
 * looked up by primary e-mail — 100 addresses per `people` connection, up
 * to PEOPLE_GROUPS_PER_REQUEST connections (1,000 addresses) per request —
 * with a cache that
 * remembers matches and misses for a while, so that an unchanged tenant
 * does not cost the look-ups again on every run.
 *
 * E-mail addresses are compared in lower case and sent in lower case (the
 * case sensitivity of the GraphQL filter is not documented). Disabled
 * people are not matched.
 */
import type { CallOptions, FourMeClient } from './fourme-client';
import { OPS, PEOPLE_GROUPS_PER_REQUEST, peopleByEmailGroups, type Connection } from './fourme-operations';

export const PEOPLE_BATCH = 100;

type PeopleConnection = Connection<{ id: string; primaryEmail: string | null; disabled: boolean | null }>;

interface Cached {
  id: string | null;
  at: number;
}

export function normaliseEmail(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const s = v.trim().toLowerCase();
  return s && s.includes('@') && !/\s/.test(s) ? s : null;
}

export class PeopleDirectory {
  private cache = new Map<string, Cached>();
  /** GraphQL requests made for look-ups (all runs). */
  lookups = 0;

  constructor(
    private readonly client: FourMeClient,
    private readonly o: { ttlMs: number; now?: () => number } = { ttlMs: 3600_000 },
  ) {}

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Forgets everything (e.g. when the account changes). */
  clear(): void {
    this.cache.clear();
  }

  /**
   * Person node ids for the given e-mail addresses (lower-cased keys; null =
   * no such active person). Addresses that are not e-mail addresses map to null
   * without a look-up.
   */
  async resolve(emails: Iterable<string | null | undefined>, co: CallOptions = {}): Promise<{ ids: Map<string, string | null>; requests: number }> {
    const out = new Map<string, string | null>();
    const todo: string[] = [];
    const now = this.now;
    for (const raw of emails) {
      const e = normaliseEmail(raw);
      if (!e || out.has(e)) continue;
      const c = this.cache.get(e);
      if (c && now - c.at < this.o.ttlMs) out.set(e, c.id);
      else {
        out.set(e, null);
        todo.push(e);
      }
    }
    let requests = 0;
    const perRequest = PEOPLE_BATCH * PEOPLE_GROUPS_PER_REQUEST;
    for (let i = 0; i < todo.length; i += perRequest) {
      const groups: string[][] = [];
      for (let j = i; j < Math.min(todo.length, i + perRequest); j += PEOPLE_BATCH) groups.push(todo.slice(j, Math.min(j + PEOPLE_BATCH, todo.length)));
      const found = new Map<string, string>();
      const take = (conn: PeopleConnection | undefined) => {
        for (const p of conn?.nodes ?? []) {
          if (!p || p.disabled) continue;
          const e = normaliseEmail(p.primaryEmail);
          if (e && !found.has(e)) found.set(e, p.id);
        }
      };
      const filter = (batch: string[]) => ({ primaryEmail: { values: batch }, disabled: false });
      requests++;
      this.lookups++;
      const variables: Record<string, unknown> = {};
      groups.forEach((g, k) => (variables[`f${k}`] = filter(g)));
      const data: Record<string, PeopleConnection | undefined> = await this.client.graphql(peopleByEmailGroups(groups.length), variables, co);
      // A group with more matches than one page (several people per address) is followed on its own.
      for (let k = 0; k < groups.length; k++) {
        let conn = data[`p${k}`];
        take(conn);
        for (let page = 1; page < 50 && conn?.pageInfo?.hasNextPage && conn.pageInfo.endCursor; page++) {
          requests++;
          this.lookups++;
          const next: { people: PeopleConnection } = await this.client.graphql(OPS.peopleByEmail, { filter: filter(groups[k]), after: conn.pageInfo.endCursor }, co);
          conn = next.people;
          take(conn);
        }
      }
      const at = this.now;
      for (const g of groups) {
        for (const e of g) {
          const id = found.get(e) ?? null;
          out.set(e, id);
          this.cache.set(e, { id, at });
        }
      }
    }
    return { ids: out, requests };
  }
}
