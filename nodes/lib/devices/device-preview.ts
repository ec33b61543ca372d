/**
 * The editor's Preview: how many devices a run with these settings would
 * pass on, by platform and by skip reason — counted in ONE Graph listing.
 *
 * Why not scanDevices (device-scan.ts), which a run uses: a run must pass on
 * each page as it arrives, so it learns the serial numbers' newest records in
 * a first pass before it can judge any page. The Preview only counts, so it
 * can judge a re-enrolled duplicate after the fact: per serial number it
 * keeps the record that would win (the newest last sync, ties to the first
 * read) with its own verdict, counts every loser as `duplicate` at once, and
 * counts the winners at the end. The counts are the run's (same rule, same
 * order of reasons: a duplicate is a duplicate whatever else it is), for half
 * the requests and half the time.
 *
 * Memory: one small entry per distinct serial number (≈ 100 bytes; 10 MB
 * for 100,000 devices), as the run's duplicate pass holds, never the records.
 */
import { checkedSelect, serialKey, type ManagedDeviceRecord, PLATFORMS } from './device-normaliser';
import { skipReason, SKIP_REASONS, type SkipReason } from './device-filters';
import { MANAGED_DEVICES_PATH, readRecord, type DeviceScanOptions } from './device-scan';

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
}

/** Counts into `o.tally` what a full run with these settings would pass on. */
export async function previewScan(o: PreviewScanOptions): Promise<void> {
  const t = o.tally;
  const keepers = new Map<string, Keeper>();
  const count = (platform: number, reason: number, id: string) => {
    if (reason >= 0) {
      t.skipped[SKIP_REASONS[reason]]++;
      return;
    }
    t.kept++;
    t.platforms[PLATFORMS[platform]].kept++;
    o.onKept?.(id);
  };
  for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
    version: o.version,
    select: checkedSelect(o.version, o.select),
    signal: o.signal,
    stats: o.stats,
  })) {
    t.pages = page;
    await o.users.prepare(items);
    for (const r of items) {
      const read = readRecord(r, o);
      if (!read) continue;
      const { d, p, ms } = read;
      const why: SkipReason | null = skipReason(d, o.filters, o.now);
      const me: Keeper = { ms, platform: PLATFORMS.indexOf(p), reason: why ? SKIP_REASONS.indexOf(why) : -1, id: d.id };
      const key = o.collapseDuplicates ? serialKey(d.serialNumber) : null;
      if (!key) {
        count(me.platform, me.reason, me.id);
        continue;
      }
      const held = keepers.get(key);
      if (!held) keepers.set(key, me);
      else {
        // The older of the two is the duplicate; on a tie the one read first stays.
        t.skipped.duplicate++;
        if (ms > held.ms) keepers.set(key, me);
      }
    }
  }
  for (const k of keepers.values()) count(k.platform, k.reason, k.id);
}
