/**
 * Which devices' primary users were deleted from the directory.
 *
 * Intune keeps the `userId` of a deleted primary user on the device; the
 * UPN is then blank or still the old one. A blank UPN next to a user id
 * gives it away, a stale UPN does not, so the directory is asked:
 * `GET /users/{id}?$select=id` per distinct user, in `$batch`es of 20 (404 =
 * deleted). Answers are cached per tenant and app registration for an hour,
 * up to 100 000 users (oldest dropped first), in memory, across redeploys:
 * a run pays one lookup per user it has not seen within the hour, later
 * runs and the editor's preview mostly none.
 *
 * Without the permission to read users (403) the check falls back, for the
 * rest of the run, to the blank-UPN rule, and says so once.
 * A device Intune itself renamed "User deleted for this device" counts as
 * deleted whatever the directory says.
 */
import type { GraphClient, StatsSink } from './graph-client';
import { isDeletedUserRecord, type ManagedDeviceRecord } from './device-normaliser';

export const USER_CACHE_TTL_MS = 3_600_000;
export const USER_CACHE_MAX = 100_000;

export class UserExistenceCache {
  private readonly entries = new Map<string, { exists: boolean; at: number }>();

  constructor(
    readonly maxEntries = USER_CACHE_MAX,
    readonly ttlMs = USER_CACHE_TTL_MS,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: string, now = Date.now()): boolean | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (now - e.at > this.ttlMs) {
      this.entries.delete(id);
      return undefined;
    }
    return e.exists;
  }

  set(id: string, exists: boolean, now = Date.now()): void {
    this.entries.delete(id);
    this.entries.set(id, { exists, at: now });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

const caches = new Map<string, UserExistenceCache>();

/** The cache shared by everything reading the same tenant with the same app (key: Graph URL | tenant | client id). */
export function userCacheFor(key: string): UserExistenceCache {
  let c = caches.get(key);
  if (!c) {
    c = new UserExistenceCache();
    caches.set(key, c);
  }
  return c;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface DeletedUserCheckOptions {
  graph: Pick<GraphClient, 'batch'>;
  cache: UserExistenceCache;
  /** false: only the blank-UPN rule (no directory calls). */
  useDirectory: boolean;
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Told once when the directory cannot be read. */
  warn?: (message: string) => void;
  now?: () => number;
}

export class DeletedUserCheck {
  /** The directory refused us (no User.Read.All): blank-UPN rule only from here on. */
  forbidden = false;
  /** Users looked up in the directory by this check. */
  lookups = 0;
  private warned = false;

  constructor(private readonly o: DeletedUserCheckOptions) {}

  /** Looks up, in the directory, the primary users of these records that the cache does not know. */
  async prepare(records: ReadonlyArray<Pick<ManagedDeviceRecord, 'userId'>>): Promise<void> {
    if (!this.o.useDirectory || this.forbidden) return;
    const now = (this.o.now ?? Date.now)();
    const wanted = new Set<string>();
    for (const r of records) {
      const id = typeof r.userId === 'string' ? r.userId.trim() : '';
      if (id && GUID.test(id) && this.o.cache.get(id, now) === undefined) wanted.add(id);
    }
    if (!wanted.size) return;
    const ids = [...wanted];
    const answers = await this.o.graph.batch(
      ids.map((id, k) => ({ id: String(k), method: 'GET' as const, url: `/users/${id}?$select=id` })),
      // Directory bucket: user reads must not eat the Intune device budget.
      { version: 'v1.0', bucket: 'directory', signal: this.o.signal, stats: this.o.stats },
    );
    this.lookups += ids.length;
    const at = (this.o.now ?? Date.now)();
    ids.forEach((id, k) => {
      const a = answers.get(String(k));
      if (!a) return;
      if (a.status >= 200 && a.status < 300) this.o.cache.set(id, true, at);
      else if (a.status === 404) this.o.cache.set(id, false, at);
      else if (a.status === 401 || a.status === 403) this.refuse();
      // Anything else (throttled to the end, outage): not decided, not cached; the blank-UPN rule applies.
    });
  }

  /** Was the primary user of this record deleted? Call `prepare()` for its page first. */
  isDeleted(r: Pick<ManagedDeviceRecord, 'userId' | 'userPrincipalName' | 'deviceName' | 'managedDeviceName'>): boolean {
    if (isDeletedUserRecord(r)) return true;
    const id = typeof r.userId === 'string' ? r.userId.trim() : '';
    if (!id) return false;
    if (this.o.useDirectory && !this.forbidden) {
      const known = this.o.cache.get(id, (this.o.now ?? Date.now)());
      if (known !== undefined) return !known;
    }
    return !(typeof r.userPrincipalName === 'string' && r.userPrincipalName.trim());
  }

  private refuse(): void {
    this.forbidden = true;
    if (this.warned) return;
    this.warned = true;
    this.o.warn?.(
      'The app may not read users (grant User.Read.All to it, with admin consent): devices whose primary user was deleted are recognised only by their blank user principal name',
    );
  }
}
