/**
 * Which devices' primary users were deleted from the directory.
 *
 * The device record first: Intune names a device whose primary user was
 * deleted "User deleted for this device" (and keeps little else), and keeps
 * the `userId` of a deleted user with the UPN blank or still the old one. The
 * deleted-user name, or a user id next to a blank UPN, decides without the
 * directory. Only a user id WITH a UPN is ambiguous (a stale UPN looks like a
 * live one), so only those users are asked: `GET /users/{id}?$select=id` per
 * distinct user, in `$batch`es of 20, paced under the directory's own limits
 * (graph-pacer.ts, docs/graph-users.md).
 *
 * A Preview does not wait for the directory (`lookUp: false`): it judges
 * from the cache and the record, and counts the users it left unchecked
 * (`pending`).
 *
 * The answers, and what they mean:
 *   200                             the user exists
 *   404 Request_ResourceNotFound    the user is deleted (soft-deleted users
 *                                   are not readable through /users/{id};
 *                                   see docs/graph-users.md). An answer, not
 *                                   a failure.
 *   401/403                         the app may not read users (no
 *                                   User.Read.All): the directory is not
 *                                   asked again in this run
 *   any other 4xx (400 …, a 404 with another error code)
 *                                   Graph refused this look-up
 *   429/5xx, no answer              Graph was throttled or unavailable to the
 *                                   end (after the client's retries)
 *
 * Every answer is cached per tenant and app registration for an hour, up to
 * 100 000 users (oldest dropped first), in memory, across redeploys: a run
 * pays one look-up per user it has not asked within the hour, later runs and
 * the editor's preview mostly none. A refusal (401/403/4xx) is cached for the
 * same hour as a good answer, so a run does not repeat thousands of look-ups
 * that fail the same way; a passing outage (429/5xx) is not cached.
 *
 * Many open users (a cold run of a large tenant): the tenant's users are
 * listed instead (directory-users.ts, `GET /users?$select=id&$top=999`), one
 * request per 999 users instead of one `$batch` per 20 users. The listing is
 * started once a run has left `listFrom` (200) users open: the per-user
 * look-ups would cost ceil(open/20) requests, the listing ceil(users/999), so
 * the listing wins whenever the tenant has fewer than 50 users per open user
 * (at the threshold: under ~10,000 users, and more as the run goes on; a full
 * run leaves open most users that have a device). A small run (a filtered
 * source, an incremental run) stays below the threshold and asks per user.
 * The listing is kept for the same hour. A user absent from the listing made
 * in this run was deleted; absent from a listing kept from an earlier run, it
 * is looked up (it may have been created since). A listing that fails at any
 * page is dropped whole, and the users are looked up one by one as before:
 * a partial listing never marks a live user deleted.
 *
 * A user the directory gave no answer for is judged by the record alone (not deleted).
 * Each run counts those users per cause (`failures()`), and `warnings()` says
 * in words what caused them and what to do. A device Intune itself renamed
 * "User deleted for this device" counts as deleted whatever the directory
 * says.
 */
import type { GraphClient, StatsSink, BatchResult } from '../graph/graph-client';
import { isDeletedUserRecord, type ManagedDeviceRecord } from './device-normaliser';
import { listDirectoryUsers, type UserIdSet } from './directory-users';

export const USER_CACHE_TTL_MS = 3_600_000;
export const USER_CACHE_MAX = 100_000;
/** Open users of a run from which the tenant's users are listed instead of looked up one by one. */
export const LIST_USERS_FROM = 200;

/** A complete listing of the tenant's users, and when it was taken. */
export interface UserListing {
  ids: UserIdSet;
  at: number;
}

/** Why a look-up gave no answer: the HTTP status and Graph's error code ('' when none). */
export interface LookupFailure {
  status: number;
  code: string;
  /** Graph's error message, for the warning (never holds secrets: it names the user id at most). */
  message?: string;
}

/** What the directory said about one user. */
export type UserAnswer = { kind: 'exists' } | { kind: 'deleted' } | { kind: 'failed'; failure: LookupFailure };

export class UserExistenceCache {
  private readonly entries = new Map<string, { answer: UserAnswer; at: number }>();
  private listed?: UserListing;

  constructor(
    readonly maxEntries = USER_CACHE_MAX,
    readonly ttlMs = USER_CACHE_TTL_MS,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached answer (undefined: not asked within the time to live). */
  answer(id: string, now = Date.now()): UserAnswer | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (now - e.at > this.ttlMs) {
      this.entries.delete(id);
      return undefined;
    }
    return e.answer;
  }

  /** true: exists, false: deleted, undefined: not known (never asked, expired, or the look-up failed). */
  get(id: string, now = Date.now()): boolean | undefined {
    const a = this.answer(id, now);
    return a?.kind === 'exists' ? true : a?.kind === 'deleted' ? false : undefined;
  }

  /** `true`/`false`: the user exists / was deleted; or any answer, a failed look-up included. */
  set(id: string, answer: boolean | UserAnswer, now = Date.now()): void {
    const a: UserAnswer = typeof answer === 'boolean' ? { kind: answer ? 'exists' : 'deleted' } : answer;
    this.entries.delete(id);
    this.entries.set(id, { answer: a, at: now });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** The last complete listing of the tenant's users, while it is younger than the time to live. */
  listing(now = Date.now()): UserListing | undefined {
    if (this.listed && now - this.listed.at > this.ttlMs) this.listed = undefined;
    return this.listed;
  }

  setListing(ids: UserIdSet, now = Date.now()): void {
    this.listed = { ids, at: now };
  }

  clear(): void {
    this.entries.clear();
    this.listed = undefined;
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

/**
 * The record alone says the primary user was deleted: Intune's deleted-user
 * name, or a user id next to a blank UPN (Intune clears the UPN of a deleted
 * user; a live user always has one). Only a user id with a UPN needs the
 * directory.
 */
function recordDecides(r: Pick<ManagedDeviceRecord, 'userId' | 'userPrincipalName' | 'deviceName' | 'managedDeviceName'>): boolean {
  if (isDeletedUserRecord(r)) return true;
  return !(typeof r.userPrincipalName === 'string' && r.userPrincipalName.trim());
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Graph's answer for a directory object that does not exist (or is soft-deleted). */
const NOT_FOUND_CODE = 'Request_ResourceNotFound';

/** Reads one batch answer. */
export function classifyUserAnswer(a: BatchResult | undefined): UserAnswer {
  if (!a) return { kind: 'failed', failure: { status: 0, code: '', message: 'no answer in the $batch response' } };
  const err = (a.body && typeof a.body === 'object' ? (a.body as { error?: { code?: unknown; message?: unknown } }).error : undefined) ?? undefined;
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : undefined;
  if (a.status >= 200 && a.status < 300) return { kind: 'exists' };
  // Only the directory's own "no such object" means deleted; a 404 with another code (a route Graph does not know) is a failure.
  if (a.status === 404 && (code === '' || code === NOT_FOUND_CODE)) return { kind: 'deleted' };
  return { kind: 'failed', failure: { status: a.status, code, message } };
}

/** A failure that will come back the same way (cached like an answer), as opposed to a passing outage. */
function lasting(f: LookupFailure): boolean {
  return f.status >= 400 && f.status < 500 && f.status !== 408 && f.status !== 429;
}

function refused(f: LookupFailure): boolean {
  return f.status === 401 || f.status === 403;
}

/** Failed look-ups of one cause in one run. */
export interface LookupFailureCount extends LookupFailure {
  /** Distinct users. */
  users: number;
  /** Part of them answered from the cache (asked in an earlier run or preview). */
  cached: number;
}

export interface DeletedUserCheckOptions {
  graph: Pick<GraphClient, 'batch' | 'pages'>;
  cache: UserExistenceCache;
  /** false: only the blank-UPN rule (no directory calls). */
  useDirectory: boolean;
  /**
   * false: never wait for the directory (the editor's Preview): only cached
   * answers are used, and the users left unchecked are counted in `pending`.
   */
  lookUp?: boolean;
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Told once, at the first refusal, that the directory cannot be read. */
  warn?: (message: string) => void;
  now?: () => number;
  /** Open users of a run from which the tenant's users are listed (default LIST_USERS_FROM; Infinity: never). */
  listFrom?: number;
}

export class DeletedUserCheck {
  /** The directory refused us (no User.Read.All): not asked again in this run. */
  forbidden = false;
  /** Users looked up in the directory by this check. */
  lookups = 0;
  /** Requests (pages) this check spent listing the tenant's users. */
  listingRequests = 0;
  /** Users the record left open in this run and the cache did not answer (counted once per page they were open on). */
  private open = 0;
  /** The listing was tried in this run (once at most). */
  private listingTried = false;
  /** When this run's own listing was taken (a user absent from it was deleted). */
  private listedAt?: number;
  /** Why this run's listing failed (the users were then looked up one by one). */
  listingFailure?: LookupFailure;
  /** The listing started ahead of the device pages (see anticipate), awaited by prepare(). */
  private listingAhead?: Promise<void>;
  /** Open users counted by anticipate(), until the listing starts. */
  private readonly aheadOpen = new Set<string>();
  /** Ambiguous users left unchecked because this check does not look up (`lookUp: false`). */
  private readonly unchecked = new Set<string>();
  private warned = false;
  /** User ids of this run whose look-up failed, by cause ("403 Authorization_RequestDenied"). */
  private readonly failed = new Map<string, { failure: LookupFailure; ids: Set<string>; cached: Set<string> }>();
  /** The refusal that stopped the look-ups of this run. */
  private refusal?: LookupFailure;

  constructor(private readonly o: DeletedUserCheckOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private noteFailure(id: string, f: LookupFailure, fromCache: boolean): void {
    const key = `${f.status} ${f.code}`.trim();
    let e = this.failed.get(key);
    if (!e) {
      e = { failure: f, ids: new Set(), cached: new Set() };
      this.failed.set(key, e);
    }
    e.ids.add(id);
    if (fromCache) e.cached.add(id);
  }

  /** Users of this check left unchecked (a Preview): distinct ids. */
  get pending(): number {
    return this.unchecked.size;
  }

  /** Record fields anticipate() reads (added to the duplicate pass's `$select` while the directory is used). */
  static readonly ANTICIPATE_SELECT: readonly string[] = ['userId', 'userPrincipalName', 'deviceName'];

  /** Whether anticipate() can still start a listing in this run (the duplicate pass then reads the user fields). */
  get anticipating(): boolean {
    return this.o.useDirectory && this.o.lookUp !== false && !this.forbidden && !this.listingTried && !this.o.cache.listing(this.now());
  }

  /**
   * Records of the duplicate pass, read before any device is judged: counts
   * the users they leave open and, once there are listFrom of them, starts
   * the tenant's listing in the background. Why: a cold run's listing (73
   * requests for 100,000 devices) then goes on while the duplicate pass does,
   * in the directory's own bucket, instead of holding up the first device
   * page — during which the sinks have nothing to do.
   */
  anticipate(records: ReadonlyArray<Pick<ManagedDeviceRecord, 'userId' | 'userPrincipalName' | 'deviceName' | 'managedDeviceName'>>): void {
    if (!this.anticipating) return;
    const now = this.now();
    for (const r of records) {
      const id = typeof r.userId === 'string' ? r.userId.trim() : '';
      if (!id || !GUID.test(id) || recordDecides(r) || this.o.cache.answer(id, now)) continue;
      this.aheadOpen.add(id);
      if (this.aheadOpen.size >= (this.o.listFrom ?? LIST_USERS_FROM)) {
        this.aheadOpen.clear();
        // list() records its own failure; prepare() then looks users up one by one.
        this.listingAhead = this.list().catch(() => undefined);
        return;
      }
    }
  }

  /**
   * Looks up, in the directory, the primary users of these records that the
   * cache does not know and the record itself does not decide.
   */
  async prepare(records: ReadonlyArray<Pick<ManagedDeviceRecord, 'userId' | 'userPrincipalName' | 'deviceName' | 'managedDeviceName'>>): Promise<void> {
    if (!this.o.useDirectory) return;
    if (this.listingAhead) await this.listingAhead;
    const now = this.now();
    const wanted = new Set<string>();
    for (const r of records) {
      const id = typeof r.userId === 'string' ? r.userId.trim() : '';
      if (!id || !GUID.test(id)) continue;
      if (recordDecides(r)) continue;
      const known = this.o.cache.answer(id, now);
      if (known?.kind === 'failed') {
        this.noteFailure(id, known.failure, true);
        if (refused(known.failure)) this.refuse(known.failure);
      } else if (!known) wanted.add(id);
    }
    if (!wanted.size) return;
    this.fromListing(wanted, now);
    if (wanted.size && this.o.lookUp !== false && !this.forbidden && !this.listingTried) {
      this.open += wanted.size;
      if (this.open >= (this.o.listFrom ?? LIST_USERS_FROM)) {
        await this.list();
        this.fromListing(wanted, this.now());
      }
    }
    if (!wanted.size) return;
    const ids = [...wanted];
    if (this.o.lookUp === false) {
      for (const id of ids) this.unchecked.add(id);
      return;
    }
    if (this.forbidden) {
      // Refused once in this run: the same app is refused for every user, so the refusal is their answer too.
      for (const id of ids) {
        this.o.cache.set(id, { kind: 'failed', failure: this.refusal! }, now);
        this.noteFailure(id, this.refusal!, false);
      }
      return;
    }
    const answers = await this.o.graph.batch(
      ids.map((id, k) => ({ id: String(k), method: 'GET' as const, url: `/users/${id}?$select=id` })),
      // Directory bucket: user reads must not eat the Intune device budget.
      { version: 'v1.0', bucket: 'directory', signal: this.o.signal, stats: this.o.stats },
    );
    this.lookups += ids.length;
    const at = this.now();
    ids.forEach((id, k) => {
      const a = classifyUserAnswer(answers.get(String(k)));
      if (a.kind !== 'failed') {
        this.o.cache.set(id, a, at);
        return;
      }
      if (lasting(a.failure)) this.o.cache.set(id, a, at);
      this.noteFailure(id, a.failure, false);
      if (refused(a.failure)) this.refuse(a.failure);
    });
  }

  /**
   * Answers, from a kept listing, the users it can: a listed user exists; an
   * unlisted one was deleted only when the listing is this run's own (a user
   * created since an older listing is not in it). Answered users leave `wanted`.
   */
  private fromListing(wanted: Set<string>, now: number): void {
    const listing = this.o.cache.listing(now);
    if (!listing) return;
    const own = this.listedAt === listing.at;
    for (const id of wanted) {
      if (listing.ids.has(id)) this.o.cache.set(id, true, listing.at);
      else if (own) this.o.cache.set(id, false, listing.at);
      else continue;
      wanted.delete(id);
    }
  }

  /** Lists the tenant's users once in this run; a failure leaves the users to the per-user look-ups. */
  private async list(): Promise<void> {
    this.listingTried = true;
    try {
      const { ids } = await listDirectoryUsers(this.o.graph, {
        signal: this.o.signal,
        stats: this.o.stats,
        onPage: (page) => (this.listingRequests = page),
      });
      const at = this.now();
      this.o.cache.setListing(ids, at);
      this.listedAt = at;
    } catch (e) {
      if (this.o.signal?.aborted) throw e;
      const err = e as { status?: unknown; code?: unknown; message?: unknown };
      // The page that failed counts as a request too.
      this.listingRequests++;
      this.listingFailure = {
        status: typeof err.status === 'number' ? err.status : 0,
        code: typeof err.code === 'string' ? err.code : '',
        message: typeof err.message === 'string' ? err.message : undefined,
      };
    }
  }

  /** Was the primary user of this record deleted? Call `prepare()` for its page first. */
  isDeleted(r: Pick<ManagedDeviceRecord, 'userId' | 'userPrincipalName' | 'deviceName' | 'managedDeviceName'>): boolean {
    if (isDeletedUserRecord(r)) return true;
    const id = typeof r.userId === 'string' ? r.userId.trim() : '';
    if (!id) return false;
    if (recordDecides(r)) return true;
    if (this.o.useDirectory) {
      const known = this.o.cache.get(id, this.now());
      if (known !== undefined) return !known;
    }
    return false;
  }

  /** Users of this run whose look-up failed, per cause, most first. */
  failures(): LookupFailureCount[] {
    return [...this.failed.values()]
      .map((e) => ({ ...e.failure, users: e.ids.size, cached: e.cached.size }))
      .sort((a, b) => b.users - a.users);
  }

  /** Users of this run whose look-up failed (all causes). */
  get failedUsers(): number {
    let n = 0;
    for (const e of this.failed.values()) n += e.ids.size;
    return n;
  }

  /** One plain sentence per cause of failed look-ups in this run (empty: every look-up had an answer). */
  warnings(): string[] {
    const minutes = Math.round(this.o.cache.ttlMs / 60_000);
    const out: string[] = [];
    const lf = this.listingFailure;
    // A refusal the look-ups met too is told by their own warning.
    if (lf && !(refused(lf) && this.forbidden)) {
      out.push(
        `Listing the directory's users (GET /users) failed after ${this.listingRequests} request${this.listingRequests === 1 ? '' : 's'} (${lf.status || 'no answer'}${lf.code ? ` ${lf.code}` : ''}): the users were looked up one by one instead`,
      );
    }
    return out.concat(this.failures().map((f) => {
      const what = `${f.users} primary user${f.users === 1 ? '' : 's'} could not be looked up in the directory (GET /users/{id})`;
      const from = f.cached ? ` (${f.cached} of them from the answer kept since an earlier run or preview)` : '';
      const answer = `${f.status || 'no answer'}${f.code ? ` ${f.code}` : ''}`;
      const fallback = 'their devices count as deleted-user devices only when the user principal name is blank';
      if (refused(f)) {
        return `${what}${from}: Graph answered ${answer} — the app may not read users: grant it User.Read.All (application permission, with admin consent); until then ${fallback}. The answer is kept for ${minutes} minutes`;
      }
      if (lasting(f)) {
        return `${what}${from}: Graph answered ${answer}${f.message ? ` ("${f.message}")` : ''} — it refused the look-up itself; ${fallback}. The answer is kept for ${minutes} minutes`;
      }
      return `${what}: ${f.status ? `Graph answered ${answer} to the end` : 'Graph gave no answer'} (throttled or unavailable); ${fallback}. They are asked again in the next run`;
    }));
  }

  private refuse(f: LookupFailure): void {
    this.forbidden = true;
    this.refusal ??= f;
    if (this.warned) return;
    this.warned = true;
    this.o.warn?.(
      'The app may not read users (grant User.Read.All to it, with admin consent): devices whose primary user was deleted are recognised only by their blank user principal name',
    );
  }
}
