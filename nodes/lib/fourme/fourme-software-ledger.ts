/**
 * What the 4me sink remembers about software (sink-fingerprints.ts
 * `software`), per instance:
 *
 * - `apps`: per software CI sourceID the fingerprint last CONFIRMED by 4me,
 *   the CI's node id (needed: a device relates its software by id,
 *   `ciRelations.childIds`), its product key, its name, and the inactive
 *   status it was given ('' while active). The keys are this instance's
 *   ownership record of software: only these are ever set inactive.
 * - `devices`: per Intune device id the fingerprint of the software
 *   relations last confirmed (the sorted child ids sent), so a device whose
 *   software did not change sends nothing.
 *
 * Held like the CI ledger (ci-ledger.ts): one flat string per entry; stored
 * packed (one line per entry). A lost ledger costs one re-upload, never a
 * duplicate (discovery upserts by source + sourceID).
 */
import { dec, enc, flat, forEachPacked, packPairs } from '../run/packed-state';

export interface AppEntry {
  /** Fingerprint of the software CI last confirmed active ('' after it was set inactive). */
  f: string;
  /** CI node id, when 4me returned it. */
  id?: string;
  /** Product key (products map). */
  p: string;
  /** CI name last written. */
  n: string;
  /** The inactive status it was set to; '' while active. */
  st: string;
}

export interface PackedSoftware {
  /** One `sourceID|p|f|id|n|st` line per software CI. */
  apps: string;
  /** One `deviceId|fingerprint` line per device. */
  devices: string;
}

export class SoftwareLedger {
  private readonly apps = new Map<string, string>();
  readonly devices = new Map<string, string>();
  /** Uploads in progress per software sourceID (pages handled side by side wait for each other, not upload twice). */
  readonly inFlight = new Map<string, Promise<void>>();

  static fromPacked(p: PackedSoftware | undefined | null): SoftwareLedger {
    const l = new SoftwareLedger();
    if (!p) return l;
    if (typeof p.apps !== 'string' || typeof p.devices !== 'string') throw new Error('packed state: not a software ledger');
    forEachPacked(p.apps, (k, [pk, f, id, n, st]) => l.setApp(k, { p: pk ?? '', f: f ?? '', id: id || undefined, n: n ?? '', st: st ?? '' }));
    forEachPacked(p.devices, (k, [f]) => l.devices.set(k, flat(f ?? '')));
    return l;
  }

  get size(): number {
    return this.apps.size;
  }

  app(sourceID: string): AppEntry | undefined {
    const row = this.apps.get(sourceID);
    if (row === undefined) return undefined;
    const [p, f, id, n, st] = row.split('|').map(dec);
    const e: AppEntry = { p, f, n, st };
    if (id) e.id = id;
    return e;
  }

  setApp(sourceID: string, e: AppEntry): void {
    this.apps.set(flat(sourceID), flat([e.p, e.f, e.id, e.n, e.st].map(enc).join('|')));
  }

  appKeys(): IterableIterator<string> {
    return this.apps.keys();
  }

  toPacked(): PackedSoftware {
    const lines: string[] = [];
    for (const [k, row] of this.apps) lines.push(`${enc(k)}|${row}`);
    return { apps: lines.join('\n'), devices: packPairs(this.devices) };
  }
}
