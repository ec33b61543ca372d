/**
 * Streams the managed devices of a tenant through the duplicate rule, the
 * normaliser and the filters, one Graph page at a time. Shared by the
 * `intune-devices` node (full `$select`, pages passed on) and the editor's
 * preview (minimal `$select`, only counted), so both decide identically.
 *
 * Memory: one Graph page of records, plus the duplicate index (see
 * device-duplicates.ts: one entry per serial during its pass, then only the
 * serials that occur twice) and the bounded user cache (deleted-users.ts).
 *
 * Requests per run: pages of the duplicate pass (if on) + pages of the
 * device pass + one $batch per 20 primary users not looked up in the last
 * hour. An incremental run whose window holds at most
 * INCREMENTAL_BUFFER_RECORDS records makes no duplicate pass: it reads the
 * window once, holds it, and judges duplicates from the window itself (exact:
 * the newest twin of a record in the window is in the window too). Only a
 * larger window falls back to the two passes, having read it once already.
 */
import type { Device } from '../contracts';
import type { GraphClient, StatsSink } from '../graph/graph-client';
import type { GraphVersion } from '../graph/graph-schema';
import { DuplicateIndex, syncMs } from './device-duplicates';
import { splitListing } from './split-listing';
import { DUPLICATE_SELECT, USER_ADDRESS_SELECT, checkedSelect, userAddressOf, normaliseDevice, platformOf, serialKey, type ManagedDeviceRecord, type NormaliseOptions, type Platform, PLATFORMS } from './device-normaliser';
import { emptySkipCounts, skipReason, type DeviceFilterSettings, type SkipReason } from './device-filters';
import { DeletedUserCheck } from './deleted-users';

export const MANAGED_DEVICES_PATH = '/deviceManagement/managedDevices';

export interface ScanTally {
  /** Records read in the device pass. */
  read: number;
  /** Records passed on. */
  kept: number;
  skipped: Record<SkipReason, number>;
  platforms: Record<Platform, { read: number; kept: number }>;
  /** Graph pages of the device pass / of the duplicate pass. */
  pages: number;
  duplicatePages: number;
  /** Newest lastSyncDateTime seen (ms, 0 = none): the next incremental watermark. */
  newestSyncMs: number;
}

export function emptyTally(): ScanTally {
  return {
    read: 0,
    kept: 0,
    skipped: emptySkipCounts(),
    platforms: Object.fromEntries(PLATFORMS.map((p) => [p, { read: 0, kept: 0 }])) as ScanTally['platforms'],
    pages: 0,
    duplicatePages: 0,
    newestSyncMs: 0,
  };
}

export interface DeviceScanOptions {
  graph: Pick<GraphClient, 'pages'>;
  version: GraphVersion;
  /** `$select` of the device pass (checked against the schema). */
  select: readonly string[];
  /** Incremental: only devices whose last sync is after this instant (ISO). */
  since?: string;
  collapseDuplicates: boolean;
  filters: DeviceFilterSettings;
  normalise: NormaliseOptions;
  /** Decides which primary users were deleted (asks the directory once per unknown user). */
  users: DeletedUserCheck;
  /** Reference time of the stale rule (ms). */
  now: number;
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Counters, updated as pages go by (the caller owns it, so it survives an abort). */
  tally: ScanTally;
  /** Called before each Graph page is processed (for status dots). */
  onPage?: (pass: 'duplicates' | 'devices', page: number) => void;
  /** Graph refused the duplicate pass's enrolment ranges; it was read as one listing (split-listing.ts). */
  onSplitRefused?: (err: Error) => void;
  /**
   * Given: the duplicate pass of a full run also reads the user principal
   * names and hands them over, lower case and each once, before the first
   * device page (SyncEnvelope.userPrincipalNames).
   */
  onUserPrincipalNames?: (upns: string[]) => void;
}

/** OData `$filter` of an incremental run. `lastSyncDateTime` supports only gt/lt. */
export function sinceFilter(since: string | undefined): string | undefined {
  if (!since) return undefined;
  const ms = Date.parse(since);
  if (!Number.isFinite(ms)) throw new Error(`The incremental watermark "${since}" is not a date`);
  return `lastSyncDateTime gt ${new Date(ms).toISOString()}`;
}

/**
 * The most records an incremental run holds to judge duplicates without a
 * second pass: five Graph pages (a few MB of records), far above the 1 % a
 * run every few minutes or hours sees on a large tenant.
 */
export const INCREMENTAL_BUFFER_RECORDS = 5_000;

/** Yields, per Graph page of the device pass, the devices that pass (possibly none). */
export async function* scanDevices(o: DeviceScanOptions): AsyncGenerator<{ page: number; devices: Device[] }> {
  const filter = sinceFilter(o.since);
  const select = checkedSelect(o.version, o.select);
  let dupes: DuplicateIndex | undefined;
  if (o.collapseDuplicates && filter) {
    // One pass over the window; the pages stay in memory until it is known whole.
    const held: ManagedDeviceRecord[][] = [];
    let records = 0;
    dupes = new DuplicateIndex();
    for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
      version: o.version,
      select,
      filter,
      signal: o.signal,
      stats: o.stats,
    })) {
      for (const r of items) dupes.learn(serialKey(o.normalise.placeholders.clean(r.serialNumber)), syncMs(r.lastSyncDateTime));
      records += items.length;
      if (records <= INCREMENTAL_BUFFER_RECORDS) held.push(items);
      else {
        // Too large to hold: what was read so far served as the duplicate pass; go on as one.
        held.length = 0;
        o.onPage?.('duplicates', page);
        o.tally.duplicatePages = page;
      }
    }
    dupes.seal();
    if (records <= INCREMENTAL_BUFFER_RECORDS) {
      let page = 0;
      while (held.length) {
        const items = held.shift()!;
        o.onPage?.('devices', ++page);
        o.tally.pages = page;
        yield { page, devices: await judgePage(items, o, dupes) };
      }
      return;
    }
  } else if (o.collapseDuplicates) {
    dupes = new DuplicateIndex();
    // With the directory in use, the pass also reads the user fields, so a cold run's user listing starts during it.
    const anticipate = o.users.anticipating;
    const upns = o.onUserPrincipalNames ? new Set<string>() : undefined;
    const dupSelect = checkedSelect(o.version, [
      ...new Set([...DUPLICATE_SELECT, ...(anticipate ? DeletedUserCheck.ANTICIPATE_SELECT : []), ...(upns ? USER_ADDRESS_SELECT : [])]),
    ]);
    // The whole tenant: several listings side by side (split-listing.ts).
    for await (const { items, page } of splitListing<ManagedDeviceRecord>(o.graph, MANAGED_DEVICES_PATH, {
      version: o.version,
      select: dupSelect,
      signal: o.signal,
      stats: o.stats,
      onFallback: o.onSplitRefused,
    })) {
      o.onPage?.('duplicates', page);
      o.tally.duplicatePages = page;
      for (const r of items) dupes.learn(serialKey(o.normalise.placeholders.clean(r.serialNumber)), syncMs(r.lastSyncDateTime));
      if (anticipate) o.users.anticipate(items);
      if (upns) {
        for (const r of items) {
          const a = userAddressOf(r);
          if (a) upns.add(a);
        }
      }
    }
    dupes.seal();
    if (upns) o.onUserPrincipalNames!([...upns]);
  }
  for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
    version: o.version,
    select,
    filter,
    signal: o.signal,
    stats: o.stats,
  })) {
    o.onPage?.('devices', page);
    o.tally.pages = page;
    yield { page, devices: await judgePage(items, o, dupes) };
  }
}

/**
 * One record normalised and counted as read (platform, newest last sync);
 * null for a record without an id. Shared with the Preview (device-preview.ts).
 */
export function readRecord(r: ManagedDeviceRecord, o: Pick<DeviceScanOptions, 'normalise' | 'users' | 'tally'>): { d: Device; p: Platform; ms: number } | null {
  if (!r || typeof r.id !== 'string' || !r.id) return null;
  const t = o.tally;
  const d = normaliseDevice(r, o.normalise, o.users.isDeleted(r));
  const p = platformOf(d.os.name);
  t.read++;
  t.platforms[p].read++;
  const ms = syncMs(r.lastSyncDateTime);
  if (ms > t.newestSyncMs) t.newestSyncMs = ms;
  return { d, p, ms };
}

/** One page of records through the duplicate rule, the normaliser and the filters, counted in the tally. */
async function judgePage(items: ManagedDeviceRecord[], o: DeviceScanOptions, dupes: DuplicateIndex | undefined): Promise<Device[]> {
  const t = o.tally;
  const out: Device[] = [];
  await o.users.prepare(items);
  for (const r of items) {
    const read = readRecord(r, o);
    if (!read) continue;
    const { d, p, ms } = read;
    let reason: SkipReason | null = null;
    if (dupes && !dupes.keep(serialKey(d.serialNumber), ms)) reason = 'duplicate';
    else reason = skipReason(d, o.filters, o.now);
    if (reason) {
      t.skipped[reason]++;
      continue;
    }
    t.kept++;
    t.platforms[p].kept++;
    out.push(d);
  }
  return out;
}
