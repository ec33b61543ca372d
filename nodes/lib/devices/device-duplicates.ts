/**
 * Re-enrolled duplicates: several Intune records with the same serial
 * number. Only the record with the newest last sync is passed on; the
 * others are counted as `duplicate`.
 *
 * Pages stream, so when a record arrives we cannot know whether a newer one
 * with the same serial is still to come. Choice: a first pass over the same
 * collection with `$select=serialNumber,lastSyncDateTime` (and the same
 * `$filter`) learns, per serial, the newest last sync. Cost and bounds:
 *
 * - requests: one extra listing, ceil(N / page size) GETs (10 for 10 000
 *   devices at Graph's 1 000 per page, 100 for 100 000): small next to the
 *   2 000 requests per 20 s Intune allows, and cheap pages (two short fields).
 * - memory: during that pass, one Map entry per distinct serial (≈ 100 bytes:
 *   the serial string and a number; ≈ 10 MB for 100 000 devices), never the
 *   records. When the pass ends every serial seen once is dropped, so while
 *   the full records stream the index holds only the serials that really
 *   occur more than once: a handful.
 * - exactness: the record kept is the one with the newest last sync at the
 *   time of the first pass. Ties go to the first one read. A record that
 *   synced between the two passes is kept if it is now the newest and its
 *   twin was not already passed on (then the twin, read first, stays and
 *   this one counts as the duplicate: one record per serial either way).
 *
 * An incremental run uses the same `$filter` for both passes; that is exact
 * too, because the newest twin of any record in the window is in the window.
 * For the same reason a small window needs no second pass at all: the
 * device scan reads it once, learns from the records it holds, then judges
 * them (device-scan.ts, INCREMENTAL_BUFFER_RECORDS).
 */
export class DuplicateIndex {
  private newest = new Map<string, number>();
  private repeated = new Set<string>();
  private sealed = false;

  /** First pass: one record. `key` from `serialKey()` (null = no usable serial: ignored). */
  learn(key: string | null, lastSyncMs: number): void {
    if (this.sealed) throw new Error('DuplicateIndex.learn() after seal()');
    if (!key) return;
    const t = Number.isFinite(lastSyncMs) ? lastSyncMs : 0;
    const prev = this.newest.get(key);
    if (prev === undefined) {
      this.newest.set(key, t);
      return;
    }
    this.repeated.add(key);
    if (t > prev) this.newest.set(key, t);
  }

  /** Ends the first pass: forgets every serial seen once. */
  seal(): void {
    if (this.sealed) return;
    for (const key of this.newest.keys()) if (!this.repeated.has(key)) this.newest.delete(key);
    this.repeated = new Set();
    this.sealed = true;
  }

  /** Serials that occur more than once (after seal). */
  get duplicatedSerials(): number {
    return this.newest.size;
  }

  /**
   * Second pass: is this record the one to keep? The first record kept for a
   * serial claims it, so any later one with that serial is a duplicate.
   */
  keep(key: string | null, lastSyncMs: number): boolean {
    if (!this.sealed) throw new Error('DuplicateIndex.keep() before seal()');
    if (!key) return true;
    const newest = this.newest.get(key);
    if (newest === undefined) return true;
    const t = Number.isFinite(lastSyncMs) ? lastSyncMs : 0;
    if (t < newest) return false;
    this.newest.set(key, Number.POSITIVE_INFINITY);
    return true;
  }
}

/** `lastSyncDateTime` text → ms (0 when absent or unreadable, i.e. "oldest"). */
export function syncMs(v: string | null | undefined): number {
  if (!v) return 0;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : 0;
}
