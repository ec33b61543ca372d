/**
 * One compliance run: the tenant's current violations, page by page.
 *
 *   1. the policy catalogue (one listing, compliance bucket);
 *   2. the non-compliant devices, judged by the device filters
 *      (compliance-devices.ts; plus their twins when collapsing);
 *   3. the non-compliance report, page by page (compliance-report.ts); per
 *      page, for the devices it completed: the policy selection, devices
 *      the listing lacked (by id), the policy states of the devices whose
 *      violations need them (compliance-details.ts), and the violations.
 *
 * Requests: catalogue pages + non-compliant device pages (1 000 a page) +
 * report pages (1 000 rows a page) + one policy-state request per device
 * that has a violation passed on that is new or changed since the earlier
 * runs (compliance-known.ts; none per violation, none per compliant device;
 * in $batches of 20) + directory look-ups of users not seen within
 * the hour + (collapsing duplicates) the records enrolled since the last
 * run (usually one page) and serial-number look-ups for serials not seen
 * before, or once a day one serial-number page per 1 000 devices
 * (compliance-devices.ts). Memory: one report page, one held device, the
 * verdicts of the non-compliant devices, their serials' twins, and the keys
 * already seen (for a report whose rows of one device are not contiguous).
 */
import type { ComplianceViolation } from '../contracts';
import type { GraphClient, StatsSink } from '../graph/graph-client';
import type { NormaliseOptions } from '../devices/device-normaliser';
import type { DeletedUserCheck } from '../devices/deleted-users';
import { listCompliancePolicies, type PolicyCatalogue, type PolicyInfo } from './compliance-policies';
import { emptyReportTally, readNoncompliantReport, type ReportTally } from './compliance-report';
import { readPolicyStates, type DeviceDetail } from './compliance-details';
import { reportFingerprint, type KnownViolations } from './compliance-known';
import { NoncompliantDeviceIndex, emptyDeviceIndexTally, type DeviceIndexTally } from './compliance-devices';
import type { TwinCache } from './compliance-twins';
import { buildViolation, checkDevice, checkPolicy, emptyComplianceSkips, needsDetail, violationKey, type Candidate, type ComplianceSkipReason, type ViolationOptions } from './compliance-violations';
import type { ComplianceDeviceSettings } from './compliance-settings';

export interface ComplianceTally {
  /** Device × policy pairs the report named (each once). */
  items: number;
  emitted: number;
  skipped: Record<ComplianceSkipReason, number>;
  report: ReportTally;
  devices: DeviceIndexTally;
  /** Devices whose policy states were read; those that failed (their violations use the report's rows). */
  detailReads: number;
  detailFailures: number;
  /** Violations passed on unchanged since an earlier run: their policy states were not read again. */
  detailsKnown: number;
  /** Report rows of a device × policy already handled (a report not in device order). */
  repeatedPairs: number;
  /** Per policy id: name, platform, violations found and passed on. */
  policies: Record<string, { name: string; platform: string | null; found: number; emitted: number }>;
  /** Listed policies the tenant does not have (by id or name). */
  unmatchedPolicies: string[];
  /** The report filter used ('' = whole report). */
  reportFilter: string;
}

export function emptyComplianceTally(): ComplianceTally {
  return {
    items: 0,
    emitted: 0,
    skipped: emptyComplianceSkips(),
    report: emptyReportTally(),
    devices: emptyDeviceIndexTally(),
    detailReads: 0,
    detailFailures: 0,
    detailsKnown: 0,
    repeatedPairs: 0,
    policies: {},
    unmatchedPolicies: [],
    reportFilter: '',
  };
}

export type ScanPhase = 'policies' | 'devices' | 'duplicates' | 'report';

export interface ComplianceScanOptions extends ViolationOptions {
  graph: Pick<GraphClient, 'pages' | 'batch' | 'post'>;
  device: ComplianceDeviceSettings;
  normalise: NormaliseOptions;
  users: DeletedUserCheck;
  /** Reference time of the stale rule (ms). */
  now: number;
  signal?: AbortSignal;
  stats?: StatsSink;
  tally: ComplianceTally;
  onPhase?: (phase: ScanPhase, page: number) => void;
  /** Told once per run about failed detail reads and listed policies the tenant lacks. */
  warn?: (message: string) => void;
  /** Report rows per call (tests; default 1 000). */
  reportTop?: number;
  /** Violations passed on with their policy states by earlier runs: not read again while unchanged. */
  known?: KnownViolations;
  /** Filled with the violations this run passes on (for the next run's `known`). */
  remember?: KnownViolations;
  /** Twins of the non-compliant serials kept by an earlier run (compliance-twins.ts). */
  twins?: TwinCache | null;
  /** Told, after the last report page, the twins to keep for the next run (null: none). */
  rememberTwins?: (twins: TwinCache | null) => void;
}

/** Yields, per report page, the violations passed on (possibly none). */
export async function* scanCompliance(o: ComplianceScanOptions): AsyncGenerator<{ page: number; violations: ComplianceViolation[] }> {
  const t = o.tally;
  o.onPhase?.('policies', 1);
  const catalogue: PolicyCatalogue = await listCompliancePolicies(o.graph, { signal: o.signal, stats: o.stats });
  t.unmatchedPolicies = o.selection.unmatched(catalogue);
  if (t.unmatchedPolicies.length) {
    o.warn?.(
      `The watched policies ${t.unmatchedPolicies.map((p) => `"${p}"`).join(', ')} are not among the tenant's ${catalogue.size} compliance policies (the built-in default policy is not listed by Graph and is matched by its name in the report only)`,
    );
  }
  const index = new NoncompliantDeviceIndex({
    graph: o.graph,
    filters: o.device.filters,
    collapseDuplicates: o.device.collapseDuplicates,
    normalise: o.normalise,
    users: o.users,
    now: o.now,
    twins: o.twins,
    signal: o.signal,
    stats: o.stats,
    onPage: (pass, page) => o.onPhase?.(pass, page),
  });
  t.devices = index.tally;
  await index.load();

  const filter = o.selection.reportFilter(catalogue);
  t.reportFilter = filter ?? '';
  const seen = new Set<string>();
  let warnedDetails = false;
  const policyCount = (id: string, name: string, platform: string | null) => {
    let p = t.policies[id];
    if (!p) {
      const known: PolicyInfo | undefined = catalogue.get(id);
      p = t.policies[id] = { name: name || known?.name || '', platform: platform ?? known?.platform ?? null, found: 0, emitted: 0 };
    }
    return p;
  };
  const skip = (r: ComplianceSkipReason) => t.skipped[r]++;

  for await (const { page, devices } of readNoncompliantReport({
    graph: o.graph,
    filter,
    top: o.reportTop,
    signal: o.signal,
    stats: o.stats,
    tally: t.report,
    onPage: (p) => o.onPhase?.('report', p),
  })) {
    // 1. policy selection
    const candidates: Candidate[] = [];
    for (const d of devices) {
      for (const p of d.policies) {
        const c = checkPolicy(d, p, catalogue, o.selection);
        const key = c === 'policy' ? violationKey(d.deviceId, p.policyId) : c.key;
        if (seen.has(key)) {
          if (!t.repeatedPairs) {
            o.warn?.(`The non-compliance report named device ${d.deviceId} again after other devices (its rows were not in device order); rows of a device × policy already passed on are left out`);
          }
          t.repeatedPairs++;
          continue;
        }
        seen.add(key);
        t.items++;
        policyCount(p.policyId, p.policyName, c === 'policy' ? null : c.platform).found++;
        if (c === 'policy') skip('policy');
        else candidates.push(c);
      }
    }
    // 2. the devices
    await index.readMissing(candidates.map((c) => c.device.deviceId));
    const passed: Candidate[] = [];
    for (const c of candidates) {
      const why = checkDevice(index.get(c.device.deviceId) ?? null, o);
      if (why) skip(why);
      else passed.push(c);
    }
    // 3. policy states where needed: not for a violation passed on before with the same failing
    // settings (with the platform it had then, for the built-in policy whose platform only they tell)
    const prints = new Map(passed.map((c) => [c, reportFingerprint(c.policy)]));
    const knownPlatform = new Map<Candidate, string>();
    if (o.known?.size && o.settingDetails) {
      for (const c of passed) {
        const pf = o.known.platform(c.key, prints.get(c)!);
        if (pf !== undefined) knownPlatform.set(c, pf);
      }
    }
    const unchanged = (c: Candidate) => knownPlatform.has(c);
    for (let k = 0; k < passed.length; k++) {
      const c = passed[k];
      const pf = knownPlatform.get(c);
      if (pf === undefined || c.platform !== null) continue;
      const known = { ...c, platform: pf };
      prints.set(known, prints.get(c)!);
      knownPlatform.set(known, pf);
      passed[k] = known;
    }
    const wanted = [...new Set(passed.filter((c) => needsDetail(c, o.settingDetails) && !unchanged(c)).map((c) => c.device.deviceId))];
    const details: Map<string, DeviceDetail> = await readPolicyStates(wanted, { graph: o.graph, signal: o.signal, stats: o.stats });
    t.detailReads += wanted.length;
    // A policy whose platform only the device's states tell cannot be judged without them: the run is not complete.
    if (!o.selection.everyFamily) {
      const blind = passed.filter((c) => c.platform === null && details.get(c.device.deviceId)?.status === 'failed');
      if (blind.length) {
        const f = details.get(blind[0].device.deviceId) as Extract<DeviceDetail, { status: 'failed' }>;
        throw new Error(
          `The policy states of ${new Set(blind.map((c) => c.device.deviceId)).size} device(s) could not be read (${f.error}), so the platform of their policy "${blind[0].policy.policyName || blind[0].policy.policyId}" is unknown and the run cannot tell whether it is watched`,
        );
      }
    }
    // 4. the violations
    const out: ComplianceViolation[] = [];
    for (const c of passed) {
      const detail = details.get(c.device.deviceId);
      if (detail?.status === 'notFound') {
        skip('notFound');
        continue;
      }
      let state = undefined as Parameters<typeof buildViolation>[2];
      // A device read for another violation is read anyway: its states are used for every violation of it.
      if (detail?.status === 'ok') state = detail.policies.get(c.policy.policyId) ?? null;
      else if (unchanged(c) && o.settingDetails) t.detailsKnown++;
      if (unchanged(c) && state === undefined && !o.selection.familyWatched(c.platform)) {
        skip('policy');
        continue;
      }
      const v = buildViolation(c, index.get(c.device.deviceId)!, state, catalogue, o);
      if (typeof v === 'string') {
        skip(v);
        continue;
      }
      out.push(v);
      // Remembered only once its policy states were read (now or by an earlier run).
      if (o.settingDetails && (detail?.status === 'ok' || unchanged(c))) o.remember?.add(c.key, prints.get(c)!, v.policy.platform);
      t.emitted++;
      const pc = policyCount(c.policy.policyId, c.policy.policyName, v.policy.platform);
      if (pc.platform === null) pc.platform = v.policy.platform;
      pc.emitted++;
    }
    const failed = [...details.values()].filter((d) => d.status === 'failed');
    t.detailFailures += failed.length;
    if (failed.length && !warnedDetails) {
      warnedDetails = true;
      const f = failed[0] as Extract<DeviceDetail, { status: 'failed' }>;
      o.warn?.(
        `The policy states of ${failed.length} device(s) could not be read (${f.error}); their violations carry the report's settings without current values`,
      );
    }
    yield { page, violations: out };
  }
  o.rememberTwins?.(index.nextTwins());
}
