/**
 * People of a 4me account (and of its directory account: `view: all`)
 * looked up by primary e-mail, 100 addresses per request, with a cache that
 * remembers matches and misses for a while, so that an unchanged tenant
 * does not cost the look-ups again on every run.
 *
 * E-mail addresses are compared in lower case and sent in lower case (the
 * case sensitivity of the GraphQL filter is not documented). Disabled
 * people are not matched.
 */
import type { CallOptions, FourMeClient } from './fourme-client';
import { OPS, type Connection } from './fourme-operations';

export const PEOPLE_BATCH = 100;

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
    for (let i = 0; i < todo.length; i += PEOPLE_BATCH) {
      const batch = todo.slice(i, i + PEOPLE_BATCH);
      const found = new Map<string, string>();
      let after: string | null = null;
      for (let page = 0; page < 50; page++) {
        requests++;
        this.lookups++;
        const data: { people: Connection<{ id: string; primaryEmail: string | null; disabled: boolean | null }> } = await this.client.graphql(
          OPS.peopleByEmail,
          { filter: { primaryEmail: { values: batch }, disabled: false }, after },
          co,
        );
        for (const p of data.people?.nodes ?? []) {
          if (!p || p.disabled) continue;
          const e = normaliseEmail(p.primaryEmail);
          if (e && !found.has(e)) found.set(e, p.id);
        }
        if (!data.people?.pageInfo?.hasNextPage || !data.people.pageInfo.endCursor) break;
        after = data.people.pageInfo.endCursor;
      }
      const at = this.now;
      for (const e of batch) {
        const id = found.get(e) ?? null;
        out.set(e, id);
        this.cache.set(e, { id, at });
      }
    }
    return { ids: out, requests };
  }
}
