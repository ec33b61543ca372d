/**
 * The editor's Preview: how many devices a run with these settings would
 * pass on, by platform and by skip reason — counted in ONE Graph listing.
 *
 * Why not scanDevices (device-scan.ts), which a run uses: a run must pass on
 * each page as it arrives, so it learns the serial numbers' newest records in
 * a first pass before it can judge any page. The Preview only counts, so it
 * can judge a re-enrolled duplicate after the fact: per serial number it
 * keeps the record that would win (the newest last sync, ties to the first
 * read) with its own verdict, and counts every loser as `duplicate` at once.
 * The counts are the run's (same rule, same order of reasons: a duplicate is
 * a duplicate whatever else it is), for half the requests and half the time.
 *
 * The tally is live: a winner so far is counted by its verdict when it is
 * kept, and un-counted when a newer twin takes its place. So after every page
 * the tally is what the records read so far would give (`onPage`: the
 * editor's "so far" while a large tenant is read); after the last page it is
 * the final count. Only `onKept` waits for the end: a device's apps are
 * counted once it is sure to be passed on.
 *
 * Memory: one small entry per distinct serial number (≈ 100 bytes; 10 MB
 * for 100,000 devices), as the run's duplicate pass holds, never the records.
 */
import { checkedSelect, serialKey, type ManagedDeviceRecord, PLATFORMS } from './device-normaliser';
import { skipReason, SKIP_REASONS, type SkipReason } from './device-filters';
import { MANAGED_DEVICES_PATH, readRecord, type DeviceScanOptions, type ScanTally } from './device-scan';

/** The winner so far of one serial number: its last sync, platform and verdict (reason index, -1 = passed on). */
interface Keeper {
  ms: number;
  platform: number;
  reason: number;
  id: string;
}

export interface PreviewScanOptions extends Omit<DeviceScanOptions, 'since' | 'onPage'> {
  /** Each device the run would pass on (for counting its apps), once the count is final. */
  onKept?: (id: string) => void;
  /** After each Graph page is counted, with the tally as the records read so far give it (provisional, but exact for them). */
  onPage?: (tally: ScanTally) => void;
}

/** Counts into `o.tally` what a full run with these settings would pass on. */
export async function previewScan(o: PreviewScanOptions): Promise<void> {
  const t = o.tally;
  const keepers = new Map<string, Keeper>();
  /** Counts (+1) or un-counts (-1) a verdict: a winner so far is replaced by a newer twin. */
  const count = (k: Keeper, sign: 1 | -1) => {
    if (k.reason >= 0) {
      t.skipped[SKIP_REASONS[k.reason]] += sign;
      return;
    }
    t.kept += sign;
    t.platforms[PLATFORMS[k.platform]].kept += sign;
  };
  for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
    version: o.version,
    select: checkedSelect(o.version, o.select),
    signal: o.signal,
    stats: o.stats,
  })) {
    await o.users.prepare(items);
    for (const r of items) {
      const read = readRecord(r, o);
      if (!read) continue;
      const { d, p, ms } = read;
      const why: SkipReason | null = skipReason(d, o.filters, o.now);
      const me: Keeper = { ms, platform: PLATFORMS.indexOf(p), reason: why ? SKIP_REASONS.indexOf(why) : -1, id: d.id };
      const key = o.collapseDuplicates ? serialKey(d.serialNumber) : null;
      if (!key) {
        // No serial number (or a placeholder): never a duplicate, final at once.
        count(me, 1);
        if (me.reason < 0) o.onKept?.(me.id);
        continue;
      }
      const held = keepers.get(key);
      if (!held) {
        keepers.set(key, me);
        count(me, 1);
        continue;
      }
      // The older of the two is the duplicate; on a tie the one read first stays.
      t.skipped.duplicate++;
      if (ms > held.ms) {
        count(held, -1);
        count(me, 1);
        keepers.set(key, me);
      }
    }
    // Set after the page's records are counted: a snapshot never shows a page whose devices are missing.
    t.pages = page;
    o.onPage?.(t);
  }
  for (const k of keepers.values()) if (k.reason < 0) o.onKept?.(k.id);
}
