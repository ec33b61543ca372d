/**
 * The 4me sink's per-device record (sink-fingerprints.ts `cis`), held as
 * compactly as a JavaScript heap allows, because it is the one structure
 * that grows with the tenant: 100,000 devices, one entry each, for as long
 * as the node runs.
 *
 * As plain objects (`{ f, id, p, n }` in a dictionary-mode object) an entry
 * cost some 340 bytes: the object, four separate strings with their headers,
 * a product key repeated per device, and the dictionary slot. Here it is one
 * Map entry whose value is a single ASCII string `product|fingerprint|ciId|
 * name` (fields percent-encoded where needed, packed-state.ts), the product
 * given by its index in a small table of the distinct product keys: about
 * 150 bytes. Reads decode on demand into a short-lived CiEntry; only the
 * archival pass and incident creation read many, and each entry once.
 *
 * Serialised (toPacked) every device is the line `deviceId` + its row, and
 * the product table is stored next to the lines (`v: 3`). The `v: 2` text
 * (the product key in each line) still loads.
 */
import { dec, enc, flat, forEachPacked, packLines } from '../run/packed-state';

export interface CiEntry {
  /** Fingerprint of the mapped CI input last confirmed. */
  f: string;
  /** CI node id, when 4me returned it. */
  id?: string;
  /** Product key (products map). */
  p: string;
  /** CI name last written. */
  n: string;
}

/** What a serialising store writes (sink-fingerprints.ts `v: 3`). */
export interface PackedLedger {
  /** One `deviceId|product|f|id|n` line per device, the product an index into `productKeys`. */
  lines: string;
  productKeys: string[];
}

export class CiLedger {
  /** deviceId → `|product|f|id|n` (fields encoded; the leading bar makes `deviceId + row` the stored line). */
  private readonly rows = new Map<string, string>();
  private readonly productKeys: string[] = [];
  private readonly productIndex = new Map<string, number>();

  /** From the stored `v: 3` form. Throws on anything else. */
  static fromPacked(p: PackedLedger): CiLedger {
    if (typeof p?.lines !== 'string' || !Array.isArray(p.productKeys) || !p.productKeys.every((k) => typeof k === 'string')) throw new Error('packed state: not a CI ledger');
    const l = new CiLedger();
    p.productKeys.forEach((k) => l.product(k));
    if (!p.lines) return l;
    for (const line of p.lines.split('\n')) {
      const bar = line.indexOf('|');
      const fields = line.split('|');
      const n = Number(fields[1]);
      if (bar < 1 || fields.length !== 5 || !Number.isInteger(n) || n < 0 || n >= p.productKeys.length) throw new Error('packed state: not a CI ledger line');
      try {
        for (const f of fields) dec(f); // a broken %-escape fails the load here, not a later read
      } catch {
        throw new Error('packed state: a field is not validly encoded');
      }
      // Key and row copied flat: a slice would keep the whole stored text alive.
      l.rows.set(flat(dec(line.slice(0, bar))), flat(line.slice(bar)));
    }
    return l;
  }

  /** From the `v: 2` text (`deviceId|f|id|productKey|n` lines). Throws on text that is not packed state. */
  static fromLines(text: string): CiLedger {
    const l = new CiLedger();
    forEachPacked(text, (key, [f, id, p, n]) => l.set(key, { f, id: id || undefined, p, n }));
    return l;
  }

  /** From the plain object of a state saved before packing. */
  static fromRecord(rec: Record<string, CiEntry>): CiLedger {
    const l = new CiLedger();
    for (const [k, e] of Object.entries(rec)) if (e && typeof e === 'object') l.set(k, e);
    return l;
  }

  get size(): number {
    return this.rows.size;
  }

  has(deviceId: string): boolean {
    return this.rows.has(deviceId);
  }

  get(deviceId: string): CiEntry | undefined {
    const row = this.rows.get(deviceId);
    return row === undefined ? undefined : this.decode(row);
  }

  set(deviceId: string, e: CiEntry): void {
    // One flat string: a concatenation would keep its parts (and their headers) alive.
    this.rows.set(deviceId, flat(`|${this.product(e.p)}|${enc(e.f)}|${enc(e.id)}|${enc(e.n)}`));
  }

  delete(deviceId: string): boolean {
    return this.rows.delete(deviceId);
  }

  keys(): IterableIterator<string> {
    return this.rows.keys();
  }

  *entries(): IterableIterator<[string, CiEntry]> {
    for (const [k, row] of this.rows) yield [k, this.decode(row)];
  }

  /**
   * The stored form. Joined from the rows as they are, with no string per
   * line (packLines): at 100,000 devices the text is some 12 MB, and the
   * serialising store copies it once more, so nothing else large is built
   * on the way.
   */
  toPacked(): PackedLedger {
    // Rows start with their '|' already.
    return { lines: packLines(this.rows, '', (row) => row), productKeys: this.productKeys };
  }

  /** Plain object form (tests, diagnostics). */
  toRecord(): Record<string, CiEntry> {
    return Object.fromEntries(this.entries());
  }

  /** The index of a product key (added when new). */
  private product(key: string): number {
    let p = this.productIndex.get(key);
    if (p === undefined) {
      p = this.productKeys.push(key) - 1;
      this.productIndex.set(key, p);
    }
    return p;
  }

  private decode(row: string): CiEntry {
    const [, p, f, id, n] = row.split('|');
    const e: CiEntry = { f: dec(f), p: this.productKeys[Number(p)], n: dec(n) };
    if (id) e.id = dec(id);
    return e;
  }
}
