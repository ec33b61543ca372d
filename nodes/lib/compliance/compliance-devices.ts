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
 *   records that may be compliant. Once a day (TWIN_REFRESH_MS) one pass
 *   over the tenant's serial numbers (`$select=id,serialNumber,
 *   lastSyncDateTime`, 1 000 per page: the only read that grows with the
 *   tenant) finds every record of the non-compliant serials; they are kept
 *   in the node's state (compliance-twins.ts). The runs in between read
 *   only the records enrolled since the last run, less an overlap
 *   (`enrolledDateTime gt …`, ENROLLED_OVERLAP_MS; usually one page), and
 *   learn new twins of the kept serials from them. A serial that is not
 *   kept, or that has a listed record the cache does not know, is looked up
 *   by serial number (`serialNumber eq … or …`, 15 a request, in `$batch`es),
 *   as are the twins of devices read by id; a full pass comes instead when
 *   those look-ups would cost more than it. The last syncs of the listed
 *   records are those of this run's listing. A full pass is also made
 *   without a kept set (first run, another tenant, collapsing just switched
 *   on, unreadable state) or when the set is older than the refresh
 *   interval. Without duplicate collapsing none of this is read.
 *
 *   What the kept set can miss until the next full pass (at most 24 h): a
 *   change of keeper between two records that both existed at the pass. A
 *   twin that is not listed (compliant) keeps the last sync it had at the
 *   pass, so if the older of two records syncs again the run may take the
 *   wrong one as newest; a newest twin deleted since still counts; and a
 *   record that reported its serial number later than the overlap after its
 *   enrolment is not seen as a twin. Acceptable because twins come from
 *   re-enrolment: the old record no longer syncs (the hardware reports
 *   under its new record), so its last sync stays behind and the keeper
 *   does not change; a new record is seen by its enrolment. New twins,
 *   new non-compliant serials and the listed records' own syncs are exact
 *   at every run.
 *   Every other device filter is judged afresh at every run.
 */
import type { ComplianceViolation, Device } from '../contracts';
import type { GraphClient, StatsSink } from '../graph/graph-client';
import { checkedSelect, normaliseDevice, serialKey, type ManagedDeviceRecord, type NormaliseOptions } from '../devices/device-normaliser';
import { skipReason, type DeviceFilterSettings, type SkipReason } from '../devices/device-filters';
import { syncMs } from '../devices/device-duplicates';
import { ENROLLED_OVERLAP_MS, TwinCache, TwinSet } from './compliance-twins';
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
  /** lastSyncDateTime (ms) as read now. */
  ms: number;
}

/** Why a run made the full duplicate pass: no usable kept set, the set older than the refresh interval, more look-ups than the pass costs. */
export type DuplicatePassReason = 'noCache' | 'expired' | 'manyNewSerials';

export interface DeviceIndexTally {
  /** Non-compliant devices listed. */
  listed: number;
  listPages: number;
  /** Pages of the full duplicate pass (0: the kept twins served), and why it was made (null: not made). */
  duplicatePages: number;
  duplicatePass: DuplicatePassReason | null;
  /** Pages of the records enrolled since the kept twins were last brought up to date. */
  enrolledPages: number;
  /** Devices read by id because the listing lacked them, and those Graph no longer had. */
  readById: number;
  gone: number;
  /** Serial-number look-ups (requests) for serials the kept twins did not answer. */
  twinLookups: number;
}

export interface DeviceIndexOptions {
  graph: Pick<GraphClient, 'pages' | 'batch'>;
  filters: DeviceFilterSettings;
  collapseDuplicates: boolean;
  normalise: NormaliseOptions;
  users: DeletedUserCheck;
  /** Reference time of the stale rule and of the kept twins (ms; the run's start). */
  now: number;
  /** Twins kept by an earlier run (compliance-twins.ts), when collapsing. */
  twins?: TwinCache | null;
  signal?: AbortSignal;
  stats?: StatsSink;
  onPage?: (pass: 'devices' | 'duplicates', page: number) => void;
}

export function emptyDeviceIndexTally(): DeviceIndexTally {
  return { listed: 0, listPages: 0, duplicatePages: 0, duplicatePass: null, enrolledPages: 0, readById: 0, gone: 0, twinLookups: 0 };
}

function violationDevice(d: Device): ComplianceViolation['device'] {
  return { id: d.id, name: d.name, serialNumber: d.serialNumber, os: d.os, user: d.user };
}

export class NoncompliantDeviceIndex {
  readonly tally: DeviceIndexTally = emptyDeviceIndexTally();
  private readonly verdicts = new Map<string, DeviceVerdict | null>();
  /** What this run knows of the twins (collapsing only), and the serials it judged. */
  private twins: TwinSet | null = null;
  private readonly judgedKeys = new Set<string>();
  /** passAt and tenantRecords of the kept set this run builds on (or made); null: none to keep. */
  private basis: { passAt: number; tenantRecords: number } | null = null;

  constructor(private readonly o: DeviceIndexOptions) {}

  /** Lists the non-compliant devices and judges them (with the twins of their serials when collapsing). */
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
      this.twins = await this.twinsOf(pending);
      await this.markDuplicates(pending);
    }
    for (const p of pending) this.verdicts.set(p.verdict.device.id, p.verdict);
  }

  /**
   * The twins of the listed serials: from the kept set and the records
   * enrolled since, or from a full pass over the tenant (see the header).
   */
  private async twinsOf(pending: readonly Pending[]): Promise<TwinSet> {
    const o = this.o;
    const keys = new Set(pending.map((p) => p.key).filter((k): k is string => !!k));
    const cache = o.twins ?? null;
    let why: DuplicatePassReason | null = null;
    if (!cache) why = 'noCache';
    else if (!cache.fresh(o.now)) why = 'expired';
    else {
      const unknown = new Set(pending.filter((p) => p.key && !cache.twins.knows(p.key, p.verdict.device.id)).map((p) => p.key!));
      if (Math.ceil(unknown.size / SERIALS_PER_LOOKUP) >= Math.max(1, Math.ceil(cache.tenantRecords / 1000))) why = 'manyNewSerials';
    }
    if (!why) {
      this.basis = { passAt: cache!.passAt, tenantRecords: cache!.tenantRecords };
      // Nothing listed: devices read by id are looked up (their twins then complete as of now).
      if (!keys.size) return new TwinSet();
      // Kept set + new enrolments (the overlap repeats some: learn() knows them by id).
      const twins = cache!.twins;
      const since = new Date(cache!.seenTo - ENROLLED_OVERLAP_MS).toISOString();
      for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
        version: 'v1.0',
        select: checkedSelect('v1.0', TWIN_SELECT),
        filter: `enrolledDateTime gt ${since}`,
        signal: o.signal,
        stats: o.stats,
      })) {
        o.onPage?.('duplicates', page);
        this.tally.enrolledPages = page;
        this.learnAll(twins, items);
      }
      return twins;
    }
    const twins = new TwinSet();
    if (!keys.size) return twins;
    this.tally.duplicatePass = why;
    for (const k of keys) twins.track(k);
    let records = 0;
    for await (const { items, page } of o.graph.pages<ManagedDeviceRecord>(MANAGED_DEVICES_PATH, {
      version: 'v1.0',
      select: checkedSelect('v1.0', TWIN_SELECT),
      signal: o.signal,
      stats: o.stats,
    })) {
      o.onPage?.('duplicates', page);
      this.tally.duplicatePages = page;
      records += items.length;
      this.learnAll(twins, items);
    }
    this.basis = { passAt: o.now, tenantRecords: records };
    return twins;
  }

  private learnAll(twins: TwinSet, records: readonly ManagedDeviceRecord[]): void {
    const clean = this.o.normalise.placeholders;
    for (const r of records) if (r && typeof r.id === 'string') twins.learn(serialKey(clean.clean(r.serialNumber)), r.id, syncMs(r.lastSyncDateTime));
  }

  /**
   * The duplicate rule for judged records: serials the twins do not answer
   * (not tracked, or a record of it not known) are looked up first; the
   * records' own last syncs are those just read.
   */
  private async markDuplicates(judged: readonly Pending[]): Promise<void> {
    const twins = this.twins!;
    const unknown = new Map<string, string>();
    for (const p of judged) {
      if (!p.key) continue;
      this.judgedKeys.add(p.key);
      if (!twins.knows(p.key, p.verdict.device.id)) unknown.set(p.key, p.verdict.device.serialNumber ?? p.key);
    }
    await this.twinsBySerial(unknown, twins);
    for (const p of judged) twins.learn(p.key, p.verdict.device.id, p.ms);
    for (const p of judged) if (twins.isDuplicate(p.key, p.verdict.device.id)) p.verdict.reason = 'duplicate';
  }

  /** The twins to keep for the next run (after a complete run), or null when this run has none to build on. */
  nextTwins(): TwinCache | null {
    if (!this.twins || !this.basis) return null;
    return new TwinCache(this.basis.passAt, this.o.now, this.basis.tenantRecords, this.twins.only(this.judgedKeys));
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
    if (o.collapseDuplicates) {
      this.twins ??= new TwinSet();
      await this.markDuplicates(judged);
    }
    for (const p of judged) this.verdicts.set(p.verdict.device.id, p.verdict);
  }

  /**
   * All records of these serials (key → serial as the device has it), by
   * serial number (`serialNumber eq … or …`, up to 15 serials a request, in
   * a $batch); what `twins` knew of them is replaced.
   */
  private async twinsBySerial(raw: ReadonlyMap<string, string>, twins: TwinSet): Promise<void> {
    const o = this.o;
    if (!raw.size) return;
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
    for (const k of keys) twins.reset(k);
    chunks.forEach((_, n) => {
      const a = answers.get(String(n));
      const list = (a?.body as { value?: ManagedDeviceRecord[] })?.value;
      if (!a || a.status < 200 || a.status >= 300 || !Array.isArray(list)) {
        throw new Error(`Microsoft Graph did not answer the serial-number look-up for re-enrolled duplicates (HTTP ${a?.status ?? 0})`);
      }
      if ((a.body as { '@odata.nextLink'?: string })['@odata.nextLink']) {
        throw new Error('Microsoft Graph paged a serial-number look-up for re-enrolled duplicates, which this connector does not expect');
      }
      this.learnAll(twins, list);
    });
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
        ms: syncMs(r.lastSyncDateTime),
      };
    });
  }
}
