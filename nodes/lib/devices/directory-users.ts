/**
 * The tenant's users listed in bulk (`GET /users?$select=id&$top=999`, following
 * @odata.nextLink), kept as a compact set of ids.
 *
 * Why: on a cold cache a full run asks about tens of thousands of users, one
 * `$batch` item each (20 per request); the listing answers them all with one
 * request per 999 users (docs/graph-users.md). Deleted users are not listed
 * (they sit in /directory/deletedItems), so a user absent from a complete
 * listing was deleted.
 *
 * Memory: each id is a GUID, kept as two 64-bit halves in sorted
 * BigUint64Arrays: 16 bytes per user (500,000 users: 8 MB), against ~100
 * bytes per id in a Set of strings. Lookup is a binary search.
 */
import type { GraphClient, StatsSink } from '../graph/graph-client';

/** Graph's largest page of /users. */
export const USERS_PAGE_MAX = 999;

const GUID = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i;

/** The two 64-bit halves of a GUID (null: not a GUID). */
function halves(id: string): [bigint, bigint] | null {
  const m = GUID.exec(id.trim());
  if (!m) return null;
  return [BigInt(`0x${m[1]}${m[2]}${m[3]}`), BigInt(`0x${m[4]}${m[5]}`)];
}

/** A sorted, immutable set of GUIDs. */
export class UserIdSet {
  private constructor(
    private readonly hi: BigUint64Array,
    private readonly lo: BigUint64Array,
  ) {}

  /** Ids that are not GUIDs are left out (the check only ever asks about GUIDs). */
  static from(ids: Iterable<string>): UserIdSet {
    const b = UserIdSet.builder();
    for (const id of ids) b.add(id);
    return b.build();
  }

  /** Adds ids one by one (a listing page at a time: no list of strings kept meanwhile), then sorts them once. */
  static builder(): { add(id: string): void; build(): UserIdSet } {
    let hi = new BigUint64Array(1024);
    let lo = new BigUint64Array(1024);
    let n = 0;
    return {
      add(id: string): void {
        const h = halves(id);
        if (!h) return;
        if (n === hi.length) {
          const h2 = new BigUint64Array(n * 2);
          const l2 = new BigUint64Array(n * 2);
          h2.set(hi);
          l2.set(lo);
          hi = h2;
          lo = l2;
        }
        hi[n] = h[0];
        lo[n] = h[1];
        n++;
      },
      build(): UserIdSet {
        const order = new Uint32Array(n);
        for (let i = 0; i < n; i++) order[i] = i;
        order.sort((a, b) => (hi[a] < hi[b] ? -1 : hi[a] > hi[b] ? 1 : lo[a] < lo[b] ? -1 : lo[a] > lo[b] ? 1 : 0));
        const sh = new BigUint64Array(n);
        const sl = new BigUint64Array(n);
        for (let i = 0; i < n; i++) {
          sh[i] = hi[order[i]];
          sl[i] = lo[order[i]];
        }
        return new UserIdSet(sh, sl);
      },
    };
  }

  get size(): number {
    return this.hi.length;
  }

  /** Bytes held by the ids. */
  get bytes(): number {
    return this.hi.byteLength + this.lo.byteLength;
  }

  has(id: string): boolean {
    const h = halves(id);
    if (!h) return false;
    let a = 0;
    let b = this.hi.length - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const c = this.hi[m] < h[0] ? -1 : this.hi[m] > h[0] ? 1 : this.lo[m] < h[1] ? -1 : this.lo[m] > h[1] ? 1 : 0;
      if (c === 0) return true;
      if (c < 0) a = m + 1;
      else b = m - 1;
    }
    return false;
  }
}

export interface ListUsersOptions {
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Told after each page (listing requests so far). */
  onPage?: (page: number) => void;
}

/**
 * Every user of the tenant, or an error (thrown by the client after its
 * retries): only a listing that reached its last page is returned, so a
 * partial listing can never make a live user look deleted.
 */
export async function listDirectoryUsers(graph: Pick<GraphClient, 'pages'>, o: ListUsersOptions = {}): Promise<{ ids: UserIdSet; pages: number }> {
  const ids = UserIdSet.builder();
  let pages = 0;
  for await (const { items, page } of graph.pages<{ id?: unknown }>('/users', {
    version: 'v1.0',
    // Directory bucket: the listing must not eat the Intune device budget.
    bucket: 'directory',
    select: ['id'],
    top: USERS_PAGE_MAX,
    signal: o.signal,
    stats: o.stats,
  })) {
    pages = page;
    for (const u of items) if (u && typeof u.id === 'string') ids.add(u.id);
    o.onPage?.(page);
  }
  return { ids: ids.build(), pages };
}
