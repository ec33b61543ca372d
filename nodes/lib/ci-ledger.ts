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
 * Serialised (toPacked) it is the `v: 2` text, `deviceId|f|id|p|n` per line,
 * so the stored form did not change.
 */
import { dec, enc, flat, forEachPacked } from './packed-state';

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

export class CiLedger {
  private readonly rows = new Map<string, string>();
  private readonly productKeys: string[] = [];
  private readonly productIndex = new Map<string, number>();

  /** From the stored text (`deviceId|f|id|p|n` lines). Throws on text that is not packed state. */
  static fromPacked(text: string): CiLedger {
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
    let p = this.productIndex.get(e.p);
    if (p === undefined) {
      p = this.productKeys.push(e.p) - 1;
      this.productIndex.set(e.p, p);
    }
    // One flat string: a concatenation would keep its parts (and their headers) alive.
    this.rows.set(deviceId, flat(`${p}|${enc(e.f)}|${enc(e.id)}|${enc(e.n)}`));
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

  /** The stored text: one `deviceId|f|id|p|n` line per device. */
  toPacked(): string {
    const lines: string[] = [];
    for (const [k, row] of this.rows) {
      const [p, f, id, n] = row.split('|'); // fields still encoded
      lines.push(`${enc(k)}|${f}|${id}|${enc(this.productKeys[Number(p)])}|${n}`);
    }
    return lines.join('\n');
  }

  /** Plain object form (tests, diagnostics). */
  toRecord(): Record<string, CiEntry> {
    return Object.fromEntries(this.entries());
  }

  private decode(row: string): CiEntry {
    const [p, f, id, n] = row.split('|');
    const e: CiEntry = { f: dec(f), p: this.productKeys[Number(p)], n: dec(n) };
    if (id) e.id = dec(id);
    return e;
  }
}

