/**
 * The compliance services without Node-RED and without a network: report
 * parsing and paging, per-device policy states in $batches, the violation
 * rules, the policy selection and the settings parser. The Graph client is
 * replaced by fakes that record every call, so what is asked of Graph
 * (paths, bodies, buckets) is checked exactly.
 */
import { expect } from 'chai';
import type { BatchRequest, BatchResult, CallOptions } from '../nodes/lib/graph/graph-client';
import { GraphRequestError } from '../nodes/lib/graph/graph-errors';
import {
  DeviceGrouper,
  REPORT_PATH,
  REPORT_SELECT,
  emptyReportTally,
  parseReportPage,
  readNoncompliantReport,
  statusName,
  type ReportDevice,
} from '../nodes/lib/compliance/compliance-report';
import { failingSettings, parsePolicyStates, readPolicyStates } from '../nodes/lib/compliance/compliance-details';
import { PolicySelection, familyOf, listCompliancePolicies, platformOfODataType, POLICY_FAMILIES, type PolicyInfo } from '../nodes/lib/compliance/compliance-policies';
import { buildViolation, checkDevice, checkPolicy, needsDetail, COMPLIANCE_SKIP_REASONS, type Candidate } from '../nodes/lib/compliance/compliance-violations';
import { ComplianceSettingsError, parseComplianceSettings } from '../nodes/lib/compliance/compliance-settings';
import { noncompliantFilter } from '../nodes/lib/compliance/compliance-devices';
import type { DeviceVerdict } from '../nodes/lib/compliance/compliance-devices';

const SCHEMA = REPORT_SELECT.map((c) => ({ Column: c, PropertyType: 'String' }));

function row(deviceId: string, policyId: string, setting: string, status = 4, errorCode = 0): unknown[] {
  const r: Record<string, unknown> = {
    DeviceId: deviceId,
    DeviceName: `name-${deviceId}`,
    UPN: `${deviceId}@contoso.com`,
    OS: 'Windows',
    PolicyId: policyId,
    PolicyName: `policy ${policyId}`,
    SettingName: `Class.${setting}`,
    SettingNm: setting,
    SettingStatus: status,
    ErrorCode: errorCode,
  };
  return REPORT_SELECT.map((c) => r[c]);
}

/** A fake `post` serving `rows` with skip/top, recording each call. */
function reportServer(rows: unknown[][], o: { total?: boolean; failFirst?: GraphRequestError; ignoreSkip?: boolean } = {}) {
  const calls: Array<{ path: string; body: Record<string, unknown>; opts: CallOptions }> = [];
  let failed = false;
  return {
    calls,
    graph: {
      post: async <T>(path: string, body: unknown, opts: CallOptions = {}): Promise<T | undefined> => {
        calls.push({ path, body: body as Record<string, unknown>, opts });
        if (o.failFirst && !failed) {
          failed = true;
          throw o.failFirst;
        }
        const b = body as { skip: number; top: number };
        const start = o.ignoreSkip ? 0 : b.skip;
        return { TotalRowCount: o.total === false ? undefined : rows.length, Schema: SCHEMA, Values: rows.slice(start, start + b.top) } as T;
      },
    },
  };
}

async function collect(gen: AsyncGenerator<{ page: number; devices: ReportDevice[] }>) {
  const pages: ReportDevice[][] = [];
  for await (const p of gen) pages.push(p.devices);
  return pages;
}

describe('compliance services', () => {
  describe('report', () => {
    it('reads columns by their Schema names, maps SettingStatus to complianceStatus names and leaves out unkeyed rows', () => {
      const schema = [...SCHEMA].reverse();
      const values = [row('d1', 'p1', 'A', 4, 0).reverse(), row('d1', 'p1', 'B', 5, 65001).reverse(), row('', 'p1', 'C').reverse()];
      const { total, rows, unkeyed } = parseReportPage({ TotalRowCount: 3, Schema: schema, Values: values });
      expect(total).to.equal(3);
      expect(unkeyed).to.equal(1);
      expect(rows.map((r) => [r.deviceId, r.policyId, r.setting])).to.deep.equal([
        ['d1', 'p1', { setting: 'Class.A', name: 'A', state: 'nonCompliant', errorCode: 0 }],
        ['d1', 'p1', { setting: 'Class.B', name: 'B', state: 'error', errorCode: 65001 }],
      ]);
      expect(statusName(2)).to.equal('compliant');
      expect(statusName('4')).to.equal('nonCompliant');
      expect(statusName('nonCompliant')).to.equal('nonCompliant');
      expect(() => parseReportPage({ value: [] })).to.throw(/without "Schema" and "Values"/);
      expect(() => parseReportPage({ Schema: [{ Column: 'DeviceName' }], Values: [] })).to.throw(/no DeviceId column/);
    });

    it('pages with skip/top under the compliance bucket, and keeps a device whose rows cross a page boundary in one piece', async () => {
      // d1: 2 rows, d2: 3 rows (two policies), d3: 2 rows; pages of 3 rows split d2 and d3.
      const rows = [row('d1', 'p1', 'A'), row('d1', 'p1', 'B'), row('d2', 'p1', 'A'), row('d2', 'p2', 'X'), row('d2', 'p2', 'Y'), row('d3', 'p1', 'A'), row('d3', 'p1', 'B')];
      const srv = reportServer(rows);
      const tally = emptyReportTally();
      const pages = await collect(readNoncompliantReport({ graph: srv.graph, top: 3, tally, filter: "(PolicyId eq 'p1')" }));
      expect(srv.calls.map((c) => c.body.skip)).to.deep.equal([0, 3, 6]);
      for (const c of srv.calls) {
        expect(c.path).to.equal(REPORT_PATH);
        expect(c.opts.bucket).to.equal('compliance');
        expect(c.body).to.deep.include({ top: 3, filter: "(PolicyId eq 'p1')" });
        expect(c.body.select).to.deep.equal(REPORT_SELECT);
        expect(c.body.orderBy).to.deep.equal(['DeviceId']);
      }
      // page 1 completes d1 only (d2 continues); page 2 completes d2; the last page brings d3
      expect(pages.map((p) => p.map((d) => d.deviceId))).to.deep.equal([['d1'], ['d2'], ['d3']]);
      const d2 = pages[1][0];
      expect(d2.policies.map((p) => [p.policyId, p.settings.map((s) => s.name)])).to.deep.equal([
        ['p1', ['A']],
        ['p2', ['X', 'Y']],
      ]);
      expect(tally).to.deep.include({ pages: 3, rows: 7, total: 7, unkeyedRows: 0 });
    });

    it('ends on a short page when Graph gives no TotalRowCount, and stops a report that never ends', async () => {
      const rows = Array.from({ length: 5 }, (_, k) => row(`d${k}`, 'p', 'A'));
      const srv = reportServer(rows, { total: false });
      const pages = await collect(readNoncompliantReport({ graph: srv.graph, top: 2, tally: emptyReportTally() }));
      expect(srv.calls).to.have.length(3);
      expect(pages.flat().map((d) => d.deviceId)).to.deep.equal(['d0', 'd1', 'd2', 'd3', 'd4']);

      const loop = reportServer(rows, { ignoreSkip: true, total: false });
      let err: Error | undefined;
      try {
        await collect(readNoncompliantReport({ graph: loop.graph, top: 2, tally: emptyReportTally() }));
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(/kept returning full pages/);
      expect(loop.calls.length).to.equal(2);
    });

    it('sends the report call as a read-only POST (the client paces it as a read and repeats it safely); a refusal (400) ends the run', async () => {
      const rows = [row('d1', 'p', 'A')];
      const srv = reportServer(rows);
      await collect(readNoncompliantReport({ graph: srv.graph, tally: emptyReportTally() }));
      expect(srv.calls.map((c) => [c.opts.readOnly, c.opts.bucket])).to.deep.equal([[true, 'compliance']]);

      const bad = reportServer(rows, { failFirst: new GraphRequestError('bad column', { status: 400 }) });
      let err: Error | undefined;
      try {
        await collect(readNoncompliantReport({ graph: bad.graph, tally: emptyReportTally() }));
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.equal('bad column');
      expect(bad.calls).to.have.length(1);
    });

    it('merges rows of one policy that are not next to each other within a device', () => {
      const g = new DeviceGrouper();
      const parsed = parseReportPage({ Schema: SCHEMA, Values: [row('d', 'p1', 'A'), row('d', 'p2', 'X'), row('d', 'p1', 'B')] }).rows;
      expect(g.add(parsed)).to.deep.equal([]);
      const [d] = g.flush();
      expect(d.policies.map((p) => [p.policyId, p.settings.length])).to.deep.equal([
        ['p1', 2],
        ['p2', 1],
      ]);
    });
  });

  describe('per-device policy states', () => {
    it('reads them in $batches under the compliance bucket, once per device, with 404 and failures told apart', async () => {
      const seen: { requests: BatchRequest[]; opts: CallOptions }[] = [];
      const graph = {
        batch: async (requests: BatchRequest[], opts: CallOptions = {}) => {
          seen.push({ requests, opts });
          const out = new Map<string, BatchResult>();
          for (const r of requests) {
            if (r.url.includes('/gone/')) out.set(r.id, { status: 404, body: { error: { code: 'NotFound' } } });
            else if (r.url.includes('/sick/')) out.set(r.id, { status: 503, body: { error: { code: 'ServiceUnavailable', message: 'try later' } } });
            else
              out.set(r.id, {
                status: 200,
                body: {
                  value: [
                    {
                      id: 'p1',
                      displayName: 'P1',
                      platformType: 'windows10AndLater',
                      state: 'nonCompliant',
                      settingStates: [
                        { setting: 'C.A', settingName: 'A', state: 'compliant', currentValue: 'true', errorCode: 0, errorDescription: 'No error code' },
                        { setting: 'C.B', settingName: 'B', state: 'nonCompliant', currentValue: 'false', errorCode: 0, errorDescription: 'No error code' },
                        { setting: 'C.E', settingName: 'E', state: 'error', currentValue: null, errorCode: 65001, errorDescription: 'Remediation failed' },
                      ],
                    },
                  ],
                },
              });
          }
          return out;
        },
      };
      const res = await readPolicyStates(['ok1', 'gone', 'ok1', 'sick'], { graph });
      expect(seen).to.have.length(1);
      expect(seen[0].opts).to.deep.include({ bucket: 'compliance', version: 'v1.0' });
      expect(seen[0].requests.map((r) => [r.method, r.url])).to.deep.equal([
        ['GET', '/deviceManagement/managedDevices/ok1/deviceCompliancePolicyStates?$select=id,displayName,platformType,state,settingStates'],
        ['GET', '/deviceManagement/managedDevices/gone/deviceCompliancePolicyStates?$select=id,displayName,platformType,state,settingStates'],
        ['GET', '/deviceManagement/managedDevices/sick/deviceCompliancePolicyStates?$select=id,displayName,platformType,state,settingStates'],
      ]);
      expect(res.get('gone')).to.deep.equal({ status: 'notFound' });
      expect(res.get('sick')).to.deep.equal({ status: 'failed', httpStatus: 503, error: 'ServiceUnavailable: try later' });
      const ok = res.get('ok1');
      expect(ok?.status).to.equal('ok');
      const p1 = (ok as { policies: Map<string, ReturnType<typeof parsePolicyStates> extends Map<string, infer V> ? V : never> }).policies.get('p1')!;
      expect(failingSettings(p1, true).map((s) => s.settingName)).to.deep.equal(['B', 'E']);
      expect(failingSettings(p1, false).map((s) => s.settingName)).to.deep.equal(['B']);
      expect(await readPolicyStates([], { graph })).to.have.property('size', 0);
      expect(seen).to.have.length(1);
    });
  });

  describe('policies and selection', () => {
    it('names platforms from the derived type, and lists with $select under the compliance bucket', async () => {
      expect(platformOfODataType('#microsoft.graph.windows10CompliancePolicy')).to.equal('windows10AndLater');
      expect(platformOfODataType('#microsoft.graph.androidWorkProfileCompliancePolicy')).to.equal('androidForWork');
      expect(platformOfODataType('#microsoft.graph.somethingNewCompliancePolicy')).to.equal(null);
      expect(['windows10AndLater', 'iOS', 'macOS', 'android', 'androidForWork', 'all', 'linux', 'unknownFutureValue', null].map(familyOf)).to.deep.equal([
        'windows',
        'ios',
        'macos',
        'android',
        'android',
        'all',
        'linux',
        'other',
        'other',
      ]);
      const calls: { path: string; opts: CallOptions }[] = [];
      const graph = {
        async *pages<T>(path: string, opts: CallOptions = {}) {
          calls.push({ path, opts });
          yield { page: 1, more: true, items: [{ '@odata.type': '#microsoft.graph.iosCompliancePolicy', id: 'a', displayName: 'iOS' }] as unknown as T[] };
          yield { page: 2, more: false, items: [{ '@odata.type': '#microsoft.graph.fancyPolicy', id: 'b', displayName: 'New' }] as unknown as T[] };
        },
      };
      const cat = await listCompliancePolicies(graph);
      expect([...cat.values()]).to.deep.equal([
        { id: 'a', name: 'iOS', platform: 'iOS' },
        { id: 'b', name: 'New', platform: null },
      ]);
      expect(calls[0].path).to.equal('/deviceManagement/deviceCompliancePolicies');
      expect(calls[0].opts).to.deep.include({ bucket: 'compliance', entity: 'deviceCompliancePolicy', select: ['id', 'displayName'] });
    });

    it('matches by id or name without case, and filters the report server-side only for one listed policy', () => {
      const cat = new Map<string, PolicyInfo>([
        ['id-1', { id: 'id-1', name: 'Windows Baseline', platform: 'windows10AndLater' }],
        ['id-2', { id: 'id-2', name: "Bob's iOS", platform: 'iOS' }],
      ]);
      const byName = new PolicySelection(new Set(POLICY_FAMILIES), ["bob's ios"]);
      expect(byName.listed('id-2', "Bob's iOS")).to.equal(true);
      expect(byName.listed('id-1', 'Windows Baseline')).to.equal(false);
      expect(byName.reportFilter(cat)).to.equal("(PolicyId eq 'id-2')");
      expect(new PolicySelection(new Set(POLICY_FAMILIES), ['id-1', 'id-2']).reportFilter(cat)).to.equal(undefined);
      expect(new PolicySelection(new Set(POLICY_FAMILIES)).reportFilter(cat)).to.equal(undefined);
      const odd = new PolicySelection(new Set(POLICY_FAMILIES), ['Default Device Compliance Policy']);
      expect(odd.reportFilter(cat)).to.equal(undefined);
      expect(odd.unmatched(cat)).to.deep.equal(['Default Device Compliance Policy']);
      expect(noncompliantFilter()).to.equal("complianceState eq 'noncompliant' or complianceState eq 'inGracePeriod' or complianceState eq 'error'");
    });
  });

  describe('violations', () => {
    const cat = new Map<string, PolicyInfo>([['p1', { id: 'p1', name: 'Win', platform: 'windows10AndLater' }]]);
    const device: ReportDevice = {
      deviceId: 'd1',
      deviceName: 'PC-1',
      upn: 'a@b',
      os: 'Windows',
      policies: [
        { policyId: 'p1', policyName: 'Win', settings: [{ setting: 'C.A', name: 'A', state: 'nonCompliant', errorCode: 0 }, { setting: 'C.E', name: 'E', state: 'error', errorCode: 7 }] },
        { policyId: 'builtin', policyName: 'Default Device Compliance Policy', settings: [{ setting: 'C.R', name: 'RequireRemainContact', state: 'nonCompliant', errorCode: 0 }] },
      ],
    };
    const verdict: DeviceVerdict = {
      device: { id: 'd1', name: 'PC-1', serialNumber: 'S1', os: { name: 'Windows', version: '10', sku: null }, user: null },
      deepLink: 'https://intune.microsoft.com/t/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/compliance/mdmDeviceId/d1',
      inGrace: false,
      lastContactAt: '2025-01-01T00:00:00.000Z',
      reason: null,
    };
    const every = new PolicySelection(new Set(POLICY_FAMILIES));
    const opts = { selection: every, countGracePeriod: false, includeErrors: true, settingDetails: true };

    it('takes settings from the policy state when read, from the report rows otherwise', () => {
      const c = checkPolicy(device, device.policies[0], cat, every) as Candidate;
      expect(c).to.include({ key: 'd1:p1', platform: 'windows10AndLater' });
      expect(needsDetail(c, false)).to.equal(false);
      const fromRows = buildViolation(c, verdict, undefined, cat, opts);
      expect(fromRows).to.deep.equal({
        key: 'd1:p1',
        device: verdict.device,
        policy: { id: 'p1', name: 'Win', platform: 'windows10AndLater' },
        settings: [
          { name: 'A', state: 'nonCompliant', currentValue: null, errorCode: 0, errorDescription: null },
          { name: 'E', state: 'error', currentValue: null, errorCode: 7, errorDescription: null },
        ],
        detectedAt: '2025-01-01T00:00:00.000Z',
        deepLink: verdict.deepLink,
      });
      const state = {
        id: 'p1',
        displayName: 'Win',
        platformType: 'windows10AndLater',
        state: 'nonCompliant',
        settings: [{ setting: 'C.A', settingName: 'A', state: 'nonCompliant', currentValue: 'false', errorCode: 0, errorDescription: 'No error code' }],
      };
      const fromState = buildViolation(c, verdict, state, cat, opts) as { settings: unknown[] };
      expect(fromState.settings).to.deep.equal([{ name: 'A', state: 'nonCompliant', currentValue: 'false', errorCode: 0, errorDescription: 'No error code' }]);
      // the current state says the policy is no longer failing, or the device has it no more
      expect(buildViolation(c, verdict, { ...state, state: 'compliant' }, cat, opts)).to.equal('resolved');
      expect(buildViolation(c, verdict, null, cat, opts)).to.equal('resolved');
      // setting details off: the report's settings even when the state was read (for the platform), but a state that is no longer failing still counts
      expect((buildViolation(c, verdict, state, cat, { ...opts, settingDetails: false }) as { settings: unknown[] }).settings).to.deep.equal((fromRows as { settings: unknown[] }).settings);
      expect(buildViolation(c, verdict, { ...state, state: 'compliant' }, cat, { ...opts, settingDetails: false })).to.equal('resolved');
      // errors do not count: the error setting goes, a policy failing only by errors is skipped
      const noErr = { ...opts, includeErrors: false };
      expect((buildViolation(c, verdict, undefined, cat, noErr) as { settings: unknown[] }).settings).to.have.length(1);
      const onlyErr = { ...state, state: 'error', settings: [{ ...state.settings[0], state: 'error' }] };
      expect(buildViolation(c, verdict, onlyErr, cat, noErr)).to.equal('errors');
    });

    it('a policy the catalogue does not know needs the device states for its platform, checked after the device', () => {
      const winOnly = new PolicySelection(new Set(['windows'] as const));
      const c = checkPolicy(device, device.policies[1], cat, winOnly) as Candidate;
      expect(c.platform).to.equal(null);
      expect(needsDetail(c, false)).to.equal(true);
      const st = { id: 'builtin', displayName: 'Default Device Compliance Policy', platformType: 'all', state: 'nonCompliant', settings: [] };
      expect(buildViolation(c, verdict, st, cat, { ...opts, selection: winOnly })).to.equal('policy');
      const v = buildViolation(c, verdict, st, cat, opts) as { policy: unknown; settings: unknown[] };
      expect(v.policy).to.deep.equal({ id: 'builtin', name: 'Default Device Compliance Policy', platform: 'all' });
      // no failing setting in the state: the report's rows
      expect(v.settings).to.deep.equal([{ name: 'RequireRemainContact', state: 'nonCompliant', currentValue: null, errorCode: 0, errorDescription: null }]);
      expect(checkPolicy(device, device.policies[0], cat, new PolicySelection(new Set(['ios'] as const)))).to.equal('policy');
      expect(checkPolicy(device, device.policies[0], cat, new PolicySelection(new Set(POLICY_FAMILIES), ['other']))).to.equal('policy');
    });

    it('device checks in order: gone, device filters, grace period', () => {
      expect(checkDevice(null, opts)).to.equal('notFound');
      expect(checkDevice({ ...verdict, reason: 'duplicate', inGrace: true }, opts)).to.equal('duplicate');
      expect(checkDevice({ ...verdict, inGrace: true }, opts)).to.equal('gracePeriod');
      expect(checkDevice({ ...verdict, inGrace: true }, { ...opts, countGracePeriod: true })).to.equal(null);
      expect(COMPLIANCE_SKIP_REASONS).to.deep.equal(['policy', 'notFound', 'duplicate', 'platform', 'personal', 'userDeleted', 'noPrimaryUser', 'managementState', 'stale', 'gracePeriod', 'errors', 'resolved']);
    });
  });

  describe('settings', () => {
    function fails(raw: Record<string, unknown>): ComplianceSettingsError {
      try {
        parseComplianceSettings(raw);
      } catch (e) {
        expect(e).to.be.instanceOf(ComplianceSettingsError);
        return e as ComplianceSettingsError;
      }
      throw new Error('accepted');
    }

    it('defaults: every policy platform, grace period off, errors and details on, the device source defaults', () => {
      const s = parseComplianceSettings({});
      expect(s.selection.everyFamily).to.equal(true);
      expect(s.selection.everyPolicy).to.equal(true);
      expect(s).to.deep.include({ countGracePeriod: false, includeErrors: true, settingDetails: true, everyMs: 0, filtersFrom: '' });
      expect(s.device.collapseDuplicates).to.equal(true);
      expect(s.device.filters.platforms.windows).to.equal(true);
      expect(s.device.filters.includePersonal).to.equal(false);
      const t = parseComplianceSettings({ policyPlatforms: ['windows', 'all'], policies: 'A\nb;c', everyMinutes: '15', countGracePeriod: 'true' });
      expect([...t.selection.families]).to.deep.equal(['windows', 'all']);
      expect(t.selection.entries).to.deep.equal(['A', 'b', 'c']);
      expect(t.everyMs).to.equal(15 * 60_000);
      expect(t.countGracePeriod).to.equal(true);
    });

    it('says which field is wrong', () => {
      expect(fails({ policyPlatforms: [] })).to.include({ field: 'policyPlatforms' }).and.property('message').match(/No policy platform is selected/);
      expect(fails({ policyPlatforms: ['windows', 'blackberry'] }).message).to.match(/Unknown policy platform\(s\) "blackberry": use windows, macos/);
      expect(fails({ everyMinutes: -5 })).to.include({ field: 'everyMinutes' });
      expect(fails({ everyMinutes: 0.5 }).message).to.match(/at least 1 minute/);
      expect(fails({ filtersFrom: 42 })).to.include({ field: 'filtersFrom' });
      expect(fails({ policies: { a: 1 } })).to.include({ field: 'policies' });
      // the device source's own checks, unchanged
      const noPlatform = fails({ platformWindows: false, platformMacos: false, platformIos: false, platformAndroid: false, platformLinux: false, platformOther: false });
      expect(noPlatform).to.include({ field: 'platforms' });
      expect(noPlatform.message).to.match(/^No platform is selected/);
      expect(fails({ staleDays: 'soon' })).to.include({ field: 'staleDays' });
      expect(fails({ skipStates: ['retirePending', 'sleeping'] }).message).to.match(/Unknown management state\(s\) "sleeping"/);
    });
  });
});
