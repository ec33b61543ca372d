/**
 * People of a 4me account (and of its directory account: `view: all`)
 * looked up by primary e-mail — 100 addresses per `people` connection, up
 * to PEOPLE_GROUPS_PER_REQUEST connections (5,000 addresses) per request —
 * with a cache that
 * remembers matches and misses for a while, so that an unchanged tenant
 * does not cost the look-ups again on every run.
 *
 * Look-ahead: a page waiting in the sink's queue announces its addresses
 * (`expect`), and page 1 of a full run those of the whole run; the next
 * look-up fills the room left in its last request with them, so a page that
 * starts later finds its people cached. A page of
 * 1,000 devices has a few hundred new addresses: without look-ahead every
 * page costs one request that is mostly empty, with it one request serves
 * several pages. The request count is what 4me's burst window and hourly
 * budget charge; the cost points (one per 100 addresses) are the same.
 * An address already being looked up is awaited, not asked for again.
 *
 * The cache holds one entry per address of the tenant for as long as the
 * node runs, so an entry is one flat string, `<time in base 36>|<person id>`
 * (empty id: no such person), not an object with a number and a string:
 * half the memory, which at 60,000 users is a few MB.
 *
 * E-mail addresses are compared in lower case and sent in lower case (the
 * case sensitivity of the GraphQL filter is not documented). Disabled
 * people are not matched.
 */
import type { CallOptions, FourMeClient } from './fourme-client';
import { flat } from '../run/packed-state';
import { OPS, PEOPLE_GROUPS_PER_REQUEST, peopleByEmailGroups, type Connection } from './fourme-operations';

export const PEOPLE_BATCH = 100;
/**
 * Announced addresses kept for the look-ahead at most: a whole run's users,
 * as page 1 of a full run announces them (SyncEnvelope.userPrincipalNames);
 * more are simply looked up when their page comes (≈ 7 MB at the cap).
 */
export const MAX_EXPECTED = 100_000;

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
  /** Address → `at|id` (see above). */
  private cache = new Map<string, string>();
  /** Addresses announced by queued pages (look-ahead), in arrival order. */
  private expected = new Set<string>();
  /** Addresses of look-ups in flight → that look-up (settles when the cache holds them, or failed). */
  private inFlight = new Map<string, Promise<void>>();
  /** GraphQL requests made for look-ups (all runs). */
  lookups = 0;

  constructor(
    private readonly client: FourMeClient,
    private readonly o: { ttlMs: number; now?: () => number } = { ttlMs: 3600_000 },
  ) {}

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The cache entry of an address, whatever its age. */
  private entry(e: string): Cached | undefined {
    const c = this.cache.get(e);
    if (c === undefined) return undefined;
    const bar = c.indexOf('|');
    return { id: c.slice(bar + 1) || null, at: parseInt(c.slice(0, bar), 36) };
  }

  private cached(e: string, now: number): Cached | undefined {
    const c = this.entry(e);
    return c && now - c.at < this.o.ttlMs ? c : undefined;
  }

  /** Drops the addresses announced so far (a new run announces its own). */
  forgetExpected(): void {
    this.expected.clear();
  }

  /** Forgets everything (e.g. when the account changes). */
  clear(): void {
    this.cache.clear();
    this.expected.clear();
  }

  /**
   * Addresses a later `resolve` will ask for (a page waiting in the queue):
   * the next look-up takes them along where its last request has room.
   * Never a request of its own.
   */
  expect(emails: Iterable<string | null | undefined>): void {
    const now = this.now;
    for (const raw of emails) {
      if (this.expected.size >= MAX_EXPECTED) return;
      const e = normaliseEmail(raw);
      if (e && !this.cached(e, now) && !this.inFlight.has(e)) this.expected.add(e);
    }
  }

  /**
   * Person node ids for the given e-mail addresses (lower-cased keys; null =
   * no such active person). Addresses that are not e-mail addresses map to null
   * without a look-up.
   */
  async resolve(emails: Iterable<string | null | undefined>, co: CallOptions = {}): Promise<{ ids: Map<string, string | null>; requests: number }> {
    const wanted = new Set<string>();
    for (const raw of emails) {
      const e = normaliseEmail(raw);
      if (e) wanted.add(e);
    }
    let requests = 0;
    // Twice at most: an address another page's look-up was fetching is asked for
    // again only when that look-up failed.
    for (let round = 0; round < 2; round++) {
      const now = this.now;
      const todo: string[] = [];
      const waits = new Set<Promise<void>>();
      for (const e of wanted) {
        if (this.cached(e, now)) continue;
        const w = this.inFlight.get(e);
        if (w && round === 0) waits.add(w);
        else todo.push(e);
      }
      if (todo.length) requests += await this.lookUp(todo, co);
      if (!waits.size) break;
      await Promise.allSettled(waits);
    }
    const out = new Map<string, string | null>();
    for (const e of wanted) out.set(e, this.entry(e)?.id ?? null);
    return { ids: out, requests };
  }

  /** Looks `todo` up (plus announced addresses where the last request has room); returns the requests made. */
  private async lookUp(todo: string[], co: CallOptions): Promise<number> {
    const perRequest = PEOPLE_BATCH * PEOPLE_GROUPS_PER_REQUEST;
    for (const e of todo) this.expected.delete(e);
    const now = this.now;
    const room = Math.ceil(todo.length / perRequest) * perRequest - todo.length;
    const ahead: string[] = [];
    for (const e of this.expected) {
      if (ahead.length >= room) break;
      this.expected.delete(e);
      if (!this.cached(e, now) && !this.inFlight.has(e)) ahead.push(e);
    }
    const all = todo.concat(ahead);
    let requests = 0;
    for (let i = 0; i < all.length; i += perRequest) {
      const chunk = all.slice(i, i + perRequest);
      const done = this.lookUpChunk(chunk, co, () => requests++);
      const settled = done.catch(() => undefined);
      for (const e of chunk) this.inFlight.set(e, settled);
      try {
        await done;
      } finally {
        for (const e of chunk) if (this.inFlight.get(e) === settled) this.inFlight.delete(e);
      }
    }
    return requests;
  }

  /** One request for up to PEOPLE_GROUPS_PER_REQUEST groups (plus follow-ups for a group with more matches than a page). */
  private async lookUpChunk(chunk: string[], co: CallOptions, counted: () => void): Promise<void> {
    const groups: string[][] = [];
    for (let j = 0; j < chunk.length; j += PEOPLE_BATCH) groups.push(chunk.slice(j, j + PEOPLE_BATCH));
    const found = new Map<string, string>();
    const take = (conn: PeopleConnection | undefined) => {
      for (const p of conn?.nodes ?? []) {
        if (!p || p.disabled) continue;
        const e = normaliseEmail(p.primaryEmail);
        if (e && !found.has(e)) found.set(e, p.id);
      }
    };
    const filter = (batch: string[]) => ({ primaryEmail: { values: batch }, disabled: false });
    counted();
    this.lookups++;
    const variables: Record<string, unknown> = {};
    groups.forEach((g, k) => (variables[`f${k}`] = filter(g)));
    const data: Record<string, PeopleConnection | undefined> = await this.client.graphql(peopleByEmailGroups(groups.length), variables, co);
    // A group with more matches than one page (several people per address) is followed on its own.
    for (let k = 0; k < groups.length; k++) {
      let conn = data[`p${k}`];
      take(conn);
      for (let page = 1; page < 50 && conn?.pageInfo?.hasNextPage && conn.pageInfo.endCursor; page++) {
        counted();
        this.lookups++;
        const next: { people: PeopleConnection } = await this.client.graphql(OPS.peopleByEmail, { filter: filter(groups[k]), after: conn.pageInfo.endCursor }, co);
        conn = next.people;
        take(conn);
      }
    }
    const at = Math.max(0, Math.floor(this.now)).toString(36);
    for (const e of chunk) this.cache.set(e, flat(`${at}|${found.get(e) ?? ''}`));
  }
}
