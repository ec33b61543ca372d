/**
 * The discovered apps of a tenant, grouped per device, kept compact: one
 * interned catalogue of the distinct apps (title + version + publisher +
 * platform), and per device a run of catalogue indexes in one shared
 * Uint32Array. Built from the report rows in any order (the export is not
 * grouped by device), then sealed: sealing sorts the catalogue by name, then
 * version (the order `Device.software` promises) and each device's run by
 * that order, dropping a device's repeated rows.
 *
 * Size while building: 8 bytes per row (device index + app index, in
 * growable Uint32Arrays) plus the catalogue and the device-id map. After
 * sealing: 4 bytes per installation plus 4 per device, the catalogue and the
 * map. For 100,000 devices × 40 apps (4 M rows) and ~10,000 distinct apps:
 * 32 MB while building, ~16 MB of indexes after, the map of 100,000 ids
 * (~10 MB) and the catalogue (~2-3 MB): see docs/graph-software.md.
 */
import type { InstalledApp } from '../contracts';

/** One row of the report, as far as the index needs it. */
export interface AppRow {
  deviceId: string;
  key: string;
  name: string;
  version: string | null;
  publisher: string | null;
  platform: string | null;
}

/** Grows by doubling; `view()` is the filled part. */
class GrowableU32 {
  private buf = new Uint32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Uint32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  view(): Uint32Array {
    return this.buf.subarray(0, this.length);
  }
}

function compareText(a: string | null, b: string | null): number {
  const x = a ?? '';
  const y = b ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Name, then version, then the key (so equal titles from two publishers still sort the same way every run). */
export function compareApps(a: InstalledApp, b: InstalledApp): number {
  return compareText(a.name, b.name) || compareText(a.version, b.version) || compareText(a.key, b.key);
}

export class SoftwareIndexBuilder {
  private readonly catalogue: InstalledApp[] = [];
  private readonly appIndex = new Map<string, number>();
  private readonly deviceIndex = new Map<string, number>();
  private rowDevice = new GrowableU32();
  private rowApp = new GrowableU32();
  /** Rows without a device id or an app name: skipped, counted. */
  skippedRows = 0;

  add(row: AppRow): void {
    if (!row.deviceId || !row.name) {
      this.skippedRows++;
      return;
    }
    let a = this.appIndex.get(row.key);
    if (a === undefined) {
      a = this.catalogue.length;
      this.catalogue.push(Object.freeze({ key: row.key, name: row.name, version: row.version, publisher: row.publisher, platform: row.platform, sizeBytes: null }));
      this.appIndex.set(row.key, a);
    }
    // Device ids are GUIDs in any letter case; Graph's managedDevice ids are lower case.
    const id = row.deviceId.toLowerCase();
    let d = this.deviceIndex.get(id);
    if (d === undefined) {
      d = this.deviceIndex.size;
      this.deviceIndex.set(id, d);
    }
    this.rowDevice.push(d);
    this.rowApp.push(a);
  }

  get rows(): number {
    return this.rowDevice.length;
  }

  /** Groups the rows per device (a counting sort) and sorts each device's apps. The builder is spent afterwards. */
  seal(): SoftwareIndex {
    const order = this.catalogue.map((_, i) => i).sort((i, j) => compareApps(this.catalogue[i], this.catalogue[j]));
    const sorted = order.map((i) => this.catalogue[i]);
    const rank = new Uint32Array(this.catalogue.length);
    order.forEach((i, r) => (rank[i] = r));
    const devices = this.deviceIndex.size;
    const offsets = new Uint32Array(devices + 1);
    const dev = this.rowDevice.view();
    const app = this.rowApp.view();
    for (let k = 0; k < dev.length; k++) offsets[dev[k] + 1]++;
    for (let d = 0; d < devices; d++) offsets[d + 1] += offsets[d];
    const fill = offsets.slice(0, devices);
    const apps = new Uint32Array(dev.length);
    for (let k = 0; k < dev.length; k++) apps[fill[dev[k]]++] = rank[app[k]];
    // Sort each device's run and squeeze out repeats (the same app reported twice on one device).
    const ends = new Uint32Array(devices);
    for (let d = 0; d < devices; d++) {
      const run = apps.subarray(offsets[d], offsets[d + 1]).sort();
      let w = 0;
      for (let k = 0; k < run.length; k++) if (k === 0 || run[k] !== run[k - 1]) run[w++] = run[k];
      ends[d] = offsets[d] + w;
    }
    // The row arrays (8 bytes a row) are not needed any more: let them go before the run starts sending.
    this.rowDevice = new GrowableU32();
    this.rowApp = new GrowableU32();
    return new SoftwareIndex(sorted, this.deviceIndex, offsets, ends, apps, this.skippedRows);
  }
}

export class SoftwareIndex {
  /** Installations (device × app, repeats removed). */
  readonly installations: number;

  constructor(
    private readonly catalogue: readonly InstalledApp[],
    private readonly devices: ReadonlyMap<string, number>,
    private readonly starts: Uint32Array,
    private readonly ends: Uint32Array,
    private readonly apps: Uint32Array,
    readonly skippedRows: number,
  ) {
    let n = 0;
    for (let d = 0; d < ends.length; d++) n += ends[d] - starts[d];
    this.installations = n;
  }

  /** Distinct apps (title + version + publisher + platform) in the report. */
  get distinctApps(): number {
    return this.catalogue.length;
  }

  /** Devices with at least one row in the report. */
  get deviceCount(): number {
    return this.devices.size;
  }

  /** Catalogue indexes of one device's apps, sorted; empty when the report has none for it. */
  indexesOf(deviceId: string): Uint32Array {
    const d = this.devices.get(deviceId.toLowerCase());
    return d === undefined ? new Uint32Array(0) : this.apps.subarray(this.starts[d], this.ends[d]);
  }

  /** The apps of one device, sorted by name then version; `[]` when the report lists none. Fresh objects: a sink may change them. */
  appsOf(deviceId: string): InstalledApp[] {
    return Array.from(this.indexesOf(deviceId), (i) => ({ ...this.catalogue[i] }));
  }
}
