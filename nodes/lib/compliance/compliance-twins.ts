/**
 * Re-enrolled twins of the non-compliant devices' serial numbers, kept from
 * run to run so that the duplicate rule needs a pass over the whole tenant
 * only once a day (compliance-devices.ts says when and what it can miss).
 *
 * `TwinSet`: per serial key the records seen with it (id and last sync, in
 * the order first read). The device source keeps, per serial, the record
 * with the newest last sync (ties: the first listed); every other record of
 * that serial is a duplicate. Only the serials asked about are tracked, so
 * the set stays as small as the non-compliant devices' serials (≈ 5 000),
 * never the tenant.
 *
 * `TwinCache`: a `TwinSet` with when it was made, kept in the node's state
 * (like `KnownViolations`): `passAt` is the start of the run that made the
 * full pass, `seenTo` the start of the last run that brought the set up to
 * date (records enrolled before it, less the overlap, are in),
 * `tenantRecords` the records that pass read (its cost, to weigh against
 * serial look-ups), and `serials` one packed line per serial
 * (packed-state.ts): `<serial key>|<id>|<last sync>|<id>|<last sync>…`,
 * last syncs in base 36 (≈ 60 bytes per record, 300–400 KB for 5 000
 * serials). Anything unreadable is no cache (a full pass follows); a line
 * that does not read back whole is left out (its serial is looked up again).
 */
import { enc, forEachPacked } from '../run/packed-state';

/** How long a full duplicate pass serves (later runs read only new enrolments): a missed keeper flip lasts at most this long. */
export const TWIN_REFRESH_MS = 24 * 3_600_000;

/**
 * How far before `seenTo` the listing of new enrolments starts. Generous on
 * purpose (one page holds 1 000 records, so it costs nothing): it covers the
 * clock difference to Graph, a record that shows up some time after its
 * `enrolledDateTime` (the simulator models an hour), and a serial number
 * that a record reports only after its first inventory.
 */
export const ENROLLED_OVERLAP_MS = 6 * 3_600_000;

export interface TwinRecord {
  id: string;
  /** lastSyncDateTime in ms (0: never or unreadable). */
  ms: number;
}

export class TwinSet {
  private readonly bySerial = new Map<string, TwinRecord[]>();

  get size(): number {
    return this.bySerial.size;
  }

  /** Starts tracking a serial (no records yet); a tracked serial keeps what it has. */
  track(key: string): void {
    if (!this.bySerial.has(key)) this.bySerial.set(key, []);
  }

  /** Forgets what is known of a serial and tracks it afresh (before a look-up that returns all its records). */
  reset(key: string): void {
    this.bySerial.set(key, []);
  }

  tracks(key: string): boolean {
    return this.bySerial.has(key);
  }

  /** Is this record of a tracked serial known? */
  knows(key: string, id: string): boolean {
    return !!this.bySerial.get(key)?.some((r) => r.id === id);
  }

  /**
   * A record read now. Added to its serial if that is tracked (else
   * ignored); read before, it keeps its place and the newer last sync (a
   * last sync only moves forward, so the newer value is the fresher read).
   */
  learn(key: string | null, id: string, ms: number): void {
    if (!key) return;
    const list = this.bySerial.get(key);
    if (!list) return;
    const t = Number.isFinite(ms) ? ms : 0;
    const known = list.find((r) => r.id === id);
    if (known) known.ms = Math.max(known.ms, t);
    else list.push({ id, ms: t });
  }

  /** Is `id` an older twin (a duplicate the device source skips)? */
  isDuplicate(key: string | null, id: string): boolean {
    if (!key) return false;
    const list = this.bySerial.get(key);
    if (!list || list.length < 2) return false;
    let keeper = list[0];
    for (const r of list) if (r.ms > keeper.ms) keeper = r;
    return keeper.id !== id;
  }

  /** The records of these serials only (those tracked). */
  only(keys: Iterable<string>): TwinSet {
    const out = new TwinSet();
    for (const k of keys) {
      const list = this.bySerial.get(k);
      if (list) out.bySerial.set(k, list.map((r) => ({ ...r })));
    }
    return out;
  }

  entries(): IterableIterator<[string, readonly TwinRecord[]]> {
    return this.bySerial.entries();
  }
}

/** The stored form (JSON in the node's context). */
export interface StoredTwins {
  v: 1;
  passAt: number;
  seenTo: number;
  tenantRecords: number;
  serials: string;
}

export class TwinCache {
  constructor(
    /** Start (ms) of the run that made the full pass. */
    readonly passAt: number,
    /** Start (ms) of the last run that brought the set up to date. */
    readonly seenTo: number,
    /** Records the full pass read. */
    readonly tenantRecords: number,
    readonly twins: TwinSet,
  ) {}

  /** Reads what `pack()` wrote; null for anything else. */
  static parse(stored: unknown): TwinCache | null {
    if (!stored || typeof stored !== 'object') return null;
    const { v, passAt, seenTo, tenantRecords, serials } = stored as Partial<StoredTwins>;
    if (v !== 1 || typeof serials !== 'string') return null;
    if (![passAt, seenTo, tenantRecords].every(Number.isSafeInteger) || seenTo! < passAt! || tenantRecords! < 0) return null;
    const twins = new TwinSet();
    try {
      forEachPacked(serials, (key, fields) => {
        if (!fields.length || fields.length % 2) return;
        const records: TwinRecord[] = [];
        for (let k = 0; k < fields.length; k += 2) {
          const ms = /^-?[0-9a-z]+$/.test(fields[k + 1]) ? parseInt(fields[k + 1], 36) : NaN;
          if (!fields[k] || !Number.isSafeInteger(ms)) return;
          records.push({ id: fields[k], ms });
        }
        twins.reset(key);
        for (const r of records) twins.learn(key, r.id, r.ms);
      });
    } catch {
      return null;
    }
    return new TwinCache(passAt!, seenTo!, tenantRecords!, twins);
  }

  /** Can a run at `now` use it instead of a full pass? */
  fresh(now: number): boolean {
    return this.passAt <= now && this.seenTo <= now && now - this.passAt < TWIN_REFRESH_MS;
  }

  pack(): StoredTwins {
    const lines: string[] = [];
    for (const [key, records] of this.twins.entries()) {
      if (records.length) lines.push(enc(key) + records.map((r) => `|${enc(r.id)}|${r.ms.toString(36)}`).join(''));
    }
    return { v: 1, passAt: this.passAt, seenTo: this.seenTo, tenantRecords: this.tenantRecords, serials: lines.join('\n') };
  }
}
