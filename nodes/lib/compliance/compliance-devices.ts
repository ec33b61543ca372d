/**
 * Which of the report's devices would `intune-devices` import, and what a
 * violation says about each: the device filters of the device source
 * (device-filters.ts, deleted-users.ts, the duplicate rule), applied to the
 * non-compliant devices only.
 *
 * Reading (requests grow with the non-compliant devices, not the tenant):
 * - one listing of the devices whose `complianceState` is noncompliant,
 *   inGracePeriod or error (the `or` Graph allows within one property),
 *   with just the properties the filters and the violation need; each
 *   record is normalised and judged as it arrives, and only a small verdict
 *   per device is kept (≈ 200 bytes; 10 MB for 50 000 non-compliant
 *   devices), never the records;
 * - primary users are checked against the directory as the device source
 *   does (cached for an hour, shared with it);
 * - a device the report names that the listing did not have (its state
 *   changed in between) is read by id, in `$batch`es;
 * - re-enrolled duplicates, when collapsed: the device source keeps, per
 *   serial number, the record with the newest last sync (ties: the first
 *   listed). Whether a non-compliant record is an older twin depends on
 *   records that may be compliant, so one pass over the tenant's serial
 *   numbers (`$select=id,serialNumber,lastSyncDateTime`, 1 000 per page)
 *   finds the twins of the non-compliant serials. That pass is the only
 *   part of a run that grows with the tenant (one cheap request per 1 000
 *   devices); without duplicate collapsing it is not made. Twins of devices
 *   read by id are looked up by serial number (`serialNumber eq … or …`).
 */
import type { ComplianceViolation, Device } from '../contracts';
import type { GraphClient, StatsSink } from '../graph/graph-client';
import { checkedSelect, normaliseDevice, serialKey, type ManagedDeviceRecord, type NormaliseOptions } from '../devices/device-normaliser';
import { skipReason, type DeviceFilterSettings, type SkipReason } from '../devices/device-filters';
import { syncMs } from '../devices/device-duplicates';
import type { DeletedUserCheck } from '../devices/deleted-users';
import { MANAGED_DEVICES_PATH } from '../devices/device-scan';

/** Device compliance states of devices that can have failing policies (Graph spells it `noncompliant` here). */
export const NONCOMPLIANT_DEVICE_STATES: readonly string[] = ['noncompliant', 'inGracePeriod', 'error'];

/** What the filters and a violation need of a managedDevice. */
export const COMPLIANCE_DEVICE_SELECT: readonly string[] = [
  'id',
  'deviceName',
  'serialNumber',
  'operatingSystem',
  'osVersion',
  'lastSyncDateTime',
  'managedDeviceOwnerType',
  'managementState',
  'complianceState',
  'userId',
  'userPrincipalName',
  'emailAddress',
  'userDisplayName',
];

const TWIN_SELECT: readonly string[] = ['id', 'serialNumber', 'lastSyncDateTime'];
/** Serial numbers or-ed into one look-up (keeps the URL short). */
const SERIALS_PER_LOOKUP = 15;

export function noncompliantFilter(): string {
  return NONCOMPLIANT_DEVICE_STATES.map((s) => `complianceState eq '${s}'`).join(' or ');
}

/** The judgement on one device. */
export interface DeviceVerdict {
  device: ComplianceViolation['device'];
  deepLink: string;
  /** complianceState is inGracePeriod. */
  inGrace: boolean;
  lastContactAt: string | null;
  /** Why the device source would not import it (null: it would). */
  reason: SkipReason | null;
}

interface Pending {
  verdict: DeviceVerdict;
  key: string | null;
}

export interface DeviceIndexTally {
  /** Non-compliant devices listed. */
  listed: number;
  listPages: number;
  duplicatePages: number;
  /** Devices read by id because the listing lacked them, and those Graph no longer had. */
  readById: number;
  gone: number;
  /** Serial-number look-ups (requests) for twins of devices read by id. */
  twinLookups: number;
}

export interface DeviceIndexOptions {
  graph: Pick<GraphClient, 'pages' | 'batch'>;
  filters: DeviceFilterSettings;
  collapseDuplicates: boolean;
  normalise: NormaliseOptions;
  users: DeletedUserCheck;
  /** Reference time of the stale rule (ms). */
  now: number;
  signal?: AbortSignal;
  stats?: StatsSink;
  onPage?: (pass: 'devices' | 'duplicates', page: number) => void;
}

function violationDevice(d: Device): ComplianceViolation['device'] {
  return { id: d.id, name: d.name, serialNumber: d.serialNumber, os: d.os, user: d.user };
}

/** Per serial: how many records, and the first with the newest last sync (the device source's keeper). */
class TwinTracker {
  private readonly seen = new Map<string, { n: number; ms: number; id: string }>();
  constructor(keys: Iterable<string>) {
    for (const k of keys) this.seen.set(k, { n: 0, ms: -1, id: '' });
  }
  get size(): number {
    return this.seen.size;
  }
  learn(key: string | null, id: string, ms: number): void {
    if (!key) return;
    const e = this.seen.get(key);
    if (!e) return;
    e.n++;
    if (ms > e.ms) {
      e.ms = ms;
      e.id = id;
    }
  }
  /** Is `id` an older twin (a duplicate the device source skips)? */
  isDuplicate(key: string | null, id: string): boolean {
    if (!key) return false;
    const e = this.seen.get(key);
    return !!e && e.n > 1 && e.id !== id;
  }
}

export class NoncompliantDeviceIndex {
  readonly tally: DeviceIndexTally = { listed: 0, listPages: 0, duplicatePages: 0, readById: 0, gone: 0, twinLookups: 0 };
  private readonly verdicts = new Map<string, DeviceVerdict | null>();

  constructor(private readonly o: DeviceIndexOptions) {}

  /** Lists the non-compliant devices and judges them (and runs the duplicate pass when collapsing). */
  async load(): Promise<void> {
    const o = this.o;
    const pending: Pending[] = [];
    for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
      version: 'v1.0',
      select: checkedSelect('v1.0', COMPLIANCE_DEVICE_SELECT),
      filter: noncompliantFilter(),
      signal: o.signal,
      stats: o.stats,
    })) {
      o.onPage?.('devices', page);
      this.tally.listPages = page;
      for (const p of await this.judge(items)) {
        this.tally.listed++;
        pending.push(p);
      }
    }
    if (o.collapseDuplicates) {
      const keys = new Set(pending.map((p) => p.key).filter((k): k is string => !!k));
      if (keys.size) {
        const twins = new TwinTracker(keys);
        for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
          version: 'v1.0',
          select: checkedSelect('v1.0', TWIN_SELECT),
          signal: o.signal,
          stats: o.stats,
        })) {
          o.onPage?.('duplicates', page);
          this.tally.duplicatePages = page;
          for (const r of items) {
            if (r && typeof r.id === 'string') twins.learn(serialKey(o.normalise.placeholders.clean(r.serialNumber)), r.id, syncMs(r.lastSyncDateTime));
          }
        }
        for (const p of pending) if (twins.isDuplicate(p.key, p.verdict.device.id)) p.verdict.reason = 'duplicate';
      }
    }
    for (const p of pending) this.verdicts.set(p.verdict.device.id, p.verdict);
  }

  /** The verdict on a device; undefined: not known yet (see `readMissing`); null: Graph no longer has it. */
  get(id: string): DeviceVerdict | null | undefined {
    return this.verdicts.get(id);
  }

  /** Reads by id, in $batches, the devices of this list the index does not know yet. */
  async readMissing(ids: readonly string[]): Promise<void> {
    const o = this.o;
    const missing = [...new Set(ids)].filter((id) => !this.verdicts.has(id));
    if (!missing.length) return;
    const select = checkedSelect('v1.0', COMPLIANCE_DEVICE_SELECT).join(',');
    const answers = await o.graph.batch(
      missing.map((id, k) => ({ id: String(k), method: 'GET' as const, url: `${MANAGED_DEVICES_PATH}/${encodeURIComponent(id)}?$select=${select}` })),
      { version: 'v1.0', signal: o.signal, stats: o.stats },
    );
    const records: ManagedDeviceRecord[] = [];
    missing.forEach((id, k) => {
      const a = answers.get(String(k));
      this.tally.readById++;
      if (a && a.status === 404) {
        this.tally.gone++;
        this.verdicts.set(id, null);
      } else if (a && a.status >= 200 && a.status < 300 && a.body && typeof a.body === 'object') records.push(a.body as ManagedDeviceRecord);
      else {
        const e = (a?.body as { error?: { message?: string } })?.error?.message;
        throw new Error(`Microsoft Graph did not return device ${id} (HTTP ${a?.status ?? 0}${e ? `: ${e}` : ''})`);
      }
    });
    const judged = await this.judge(records);
    if (o.collapseDuplicates) await this.twinsBySerial(judged);
    for (const p of judged) this.verdicts.set(p.verdict.device.id, p.verdict);
  }

  /**
   * Duplicate rule for devices read by id: their twins, by serial number
   * (`serialNumber eq … or …`, up to 15 serials a request, in a $batch).
   */
  private async twinsBySerial(judged: Pending[]): Promise<void> {
    const o = this.o;
    const withKey = judged.filter((p) => p.key);
    if (!withKey.length) return;
    const raw = new Map<string, string>();
    for (const p of withKey) raw.set(p.key!, p.verdict.device.serialNumber ?? p.key!);
    const keys = [...raw.keys()];
    const chunks: string[][] = [];
    for (let k = 0; k < keys.length; k += SERIALS_PER_LOOKUP) chunks.push(keys.slice(k, k + SERIALS_PER_LOOKUP));
    const answers = await o.graph.batch(
      chunks.map((chunk, n) => ({
        id: String(n),
        method: 'GET' as const,
        url: `${MANAGED_DEVICES_PATH}?$select=${TWIN_SELECT.join(',')}&$filter=${encodeURIComponent(
          chunk.map((k) => `serialNumber eq '${raw.get(k)!.replace(/'/g, "''")}'`).join(' or '),
        )}`,
      })),
      { version: 'v1.0', signal: o.signal, stats: o.stats },
    );
    this.tally.twinLookups += chunks.length;
    const twins = new TwinTracker(keys);
    chunks.forEach((_, n) => {
      const a = answers.get(String(n));
      const list = (a?.body as { value?: ManagedDeviceRecord[] })?.value;
      if (!a || a.status < 200 || a.status >= 300 || !Array.isArray(list)) {
        throw new Error(`Microsoft Graph did not answer the serial-number look-up for re-enrolled duplicates (HTTP ${a?.status ?? 0})`);
      }
      if ((a.body as { '@odata.nextLink'?: string })['@odata.nextLink']) {
        throw new Error('Microsoft Graph paged a serial-number look-up for re-enrolled duplicates, which this connector does not expect');
      }
      for (const r of list) if (r && typeof r.id === 'string') twins.learn(serialKey(o.normalise.placeholders.clean(r.serialNumber)), r.id, syncMs(r.lastSyncDateTime));
    });
    for (const p of withKey) if (twins.isDuplicate(p.key, p.verdict.device.id)) p.verdict.reason = 'duplicate';
  }

  private async judge(records: readonly ManagedDeviceRecord[]): Promise<Pending[]> {
    const o = this.o;
    const ok = records.filter((r) => r && typeof r.id === 'string' && r.id);
    await o.users.prepare(ok);
    return ok.map((r) => {
      const d = normaliseDevice(r, o.normalise, o.users.isDeleted(r));
      return {
        verdict: {
          device: violationDevice(d),
          deepLink: d.deepLinks.compliance,
          inGrace: d.complianceState === 'inGracePeriod',
          lastContactAt: d.lastContactAt,
          reason: skipReason(d, o.filters, o.now),
        },
        key: serialKey(d.serialNumber),
      };
    });
  }
}
