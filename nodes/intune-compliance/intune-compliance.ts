/**
 * intune-compliance: emits the tenant's current compliance violations (one
 * item per device × failing policy, with its failing settings) as a full
 * sync run on output 1, and one summary per run on output 2. Runs on an
 * input message and/or the node's own schedule, never two at a time.
 *
 * Only full runs: a sink resolves what disappeared (an incident whose
 * violation is gone) only after the last page of a complete full run, so
 * every run states the whole current picture.
 *
 * Device filters are those of intune-devices (own settings, or those of a
 * chosen intune-devices node, read afresh at every run), so only devices
 * that are imported can raise violations.
 *
 * Also serves the editor: GET /intune-compliance/policies lists the
 * tenant's compliance policies for the policy picker.
 */
import type { NodeAPI, Node, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import { TOPIC_COMPLIANCE, type ComplianceViolation } from '../lib/contracts';
import { StatusTexts } from '../lib/node-red/status-text';
import { translator } from '../lib/node-red/i18n';
import { defRecord, registerNode } from '../lib/node-red/register';
import { DeletedUserCheck, userCacheFor } from '../lib/devices/deleted-users';
import { filterNodeSetting } from '../lib/devices/device-source-settings';
import type { ActiveRun } from '../lib/run/sync-run';
import { firstDueAt } from '../lib/run/run-schedule';
import { ComplianceSettingsError, parseComplianceSettings, parseDeviceSettings, type ComplianceDeviceSettings, type ComplianceSettings } from '../lib/compliance/compliance-settings';
import { emptyComplianceTally, scanCompliance, type ScanPhase } from '../lib/compliance/compliance-scan';
import { KnownViolations } from '../lib/compliance/compliance-known';
import { TwinCache, type StoredTwins } from '../lib/compliance/compliance-twins';
import { familyOf, listCompliancePolicies } from '../lib/compliance/compliance-policies';
import { sourceExplainer, sourceNode, withDeployedConnection, type SourceContext } from '../lib/source/source-node';
import { echo } from '../lib/shared/echo';

interface IntuneComplianceDef extends NodeDef {
  intune: string;
  [prop: string]: unknown;
}

/** Kept in context (per node): when the last run completed, so a redeploy does not push the schedule back. */
interface ComplianceRunState {
  v: 1;
  tenantId: string;
  lastRunAt: string;
  /** Violations the last complete run passed on with their policy states read (compliance-known.ts). */
  known?: string;
  /** Twins of the non-compliant devices' serials, when collapsing duplicates (compliance-twins.ts). */
  twins?: StoredTwins;
}

const TYPE = 'intune-compliance';
const STATE_KEY = 'intuneComplianceRuns';
const TOPIC = TOPIC_COMPLIANCE;
const DEVICES_TYPE = 'intune-devices';

const explain = sourceExplainer('grant the app DeviceManagementConfiguration.Read.All and DeviceManagementManagedDevices.Read.All (application permissions) with admin consent');

export = function register(RED: NodeAPI): void {
  const t = translator(RED, TYPE);
  const texts = new StatusTexts(RED, TYPE);

  /** The deployed configuration of a node (env references as they are). */
  function deployedDef(id: string): Record<string, unknown> | undefined {
    let found: Record<string, unknown> | undefined;
    RED.nodes.eachNode((n) => {
      if (n.id === id) found = defRecord(n);
    });
    return found;
  }

  /** The device filters that apply now: own, or read afresh from the chosen intune-devices node. */
  function deviceSettings(s: ComplianceSettings, node: Node): ComplianceDeviceSettings {
    if (!s.filtersFrom) return s.device;
    const d = deployedDef(s.filtersFrom);
    if (!d || d.type !== DEVICES_TYPE) {
      throw new ComplianceSettingsError(
        `The intune-devices node ${s.filtersFrom} whose device filters this node uses is not deployed: deploy it, or pick another one (or none) under "Device filters from"`,
        'filtersFrom',
      );
    }
    const resolved: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(d)) {
      const m = typeof v === 'string' ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v.trim()) : null;
      resolved[k] = m ? RED.util.evaluateNodeProperty(m[1], 'env', node, {} as never) : v;
    }
    const label = typeof d.name === 'string' && d.name ? `"${d.name}"` : String(d.id);
    return parseDeviceSettings(resolved, `The filters of intune-devices ${label}`);
  }

  /** One run: the whole current picture of violations, page by page. */
  async function work(run: ActiveRun<ComplianceViolation>, { node, settings: s, state, status, connection }: SourceContext<ComplianceSettings, ComplianceRunState>): Promise<void> {
    const device = deviceSettings(s, node);
    const conn = connection();
    const tenantId = conn.settings.tenantId;
    const tally = emptyComplianceTally();
    const users = new DeletedUserCheck({
      graph: conn.graph,
      cache: userCacheFor(`${conn.settings.endpoints.graphBaseUrl}|${tenantId}|${conn.settings.clientId}`),
      useDirectory: device.checkDeletedUsers,
      signal: run.signal,
      stats: run.requestStats,
      warn: (m) => node.warn(m),
    });
    run.counts.skipped = tally.skipped;
    const saved = await state.get();
    const known = KnownViolations.parse(saved?.tenantId === tenantId ? saved.known : undefined);
    const remember = new KnownViolations();
    // Kept twins serve only the same tenant, and only while collapsing (not kept otherwise, so switching it on starts with a full pass).
    const twins = device.collapseDuplicates && saved?.tenantId === tenantId ? TwinCache.parse(saved.twins) : null;
    const next: { twins: TwinCache | null } = { twins: null };
    const details = () => ({
      filtersFrom: s.filtersFrom || null,
      reportFilter: tally.reportFilter || null,
      reportRows: tally.report.rows,
      reportPages: tally.report.pages,
      noncompliantDevices: tally.devices.listed,
      devicePages: tally.devices.listPages,
      duplicatePages: tally.devices.duplicatePages,
      duplicatePass: tally.devices.duplicatePass,
      enrolledPages: tally.devices.enrolledPages,
      devicesReadById: tally.devices.readById,
      devicesGone: tally.devices.gone,
      twinLookups: tally.devices.twinLookups,
      detailReads: tally.detailReads,
      detailFailures: tally.detailFailures,
      detailsKnown: tally.detailsKnown,
      repeatedPairs: tally.repeatedPairs,
      userLookups: users.lookups,
      userListingRequests: users.listingRequests,
      unmatchedPolicies: tally.unmatchedPolicies,
      policies: tally.policies,
    });
    run.counts.details = details();
    const phaseText = (phase: ScanPhase, page: number) => {
      switch (phase) {
        case 'policies':
          return texts.status('blue', 'dot', texts.msg('status.policies', 'full: policies'));
        case 'devices':
          return texts.status('blue', 'dot', texts.msg('status.devices', 'full: non-compliant devices, page __page__', { page }));
        case 'duplicates':
          return texts.status('blue', 'dot', texts.msg('status.duplicates', 'full: duplicates, page __page__', { page }));
        default:
          return texts.status('blue', 'dot', texts.msg('status.report', 'full: report page __page__', { page }));
      }
    };
    let current = phaseText('policies', 1);
    run.on('throttled', (ms: number) =>
      status.show(texts.status('yellow', 'ring', texts.msg('status.throttled', 'throttled, waiting __seconds__ s', { seconds: Math.ceil(ms / 1000) }))),
    );
    run.on('resumed', () => status.show(current));
    try {
      for await (const { violations } of scanCompliance({
        graph: conn.graph,
        device,
        selection: s.selection,
        countGracePeriod: s.countGracePeriod,
        includeErrors: s.includeErrors,
        settingDetails: s.settingDetails,
        normalise: { portalUrl: conn.settings.endpoints.portalUrl, tenantId, placeholders: device.placeholders },
        users,
        now: run.startedMs,
        signal: run.signal,
        stats: run.requestStats,
        tally,
        known,
        remember,
        twins,
        rememberTwins: (kept) => (next.twins = kept),
        warn: (m) => node.warn(m),
        onPhase: (phase, page) => {
          current = phaseText(phase, page);
          status.show(current);
        },
      })) {
        run.counts.items = tally.items;
        run.counts.pages = tally.report.pages;
        run.page(violations);
        // Let the flow take the page before the next report page is read.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      run.counts.items = tally.items;
      run.counts.pages = tally.report.pages;
      run.counts.details = details();
    }
    if (run.aborted) return;
    await state.set({ v: 1, tenantId, lastRunAt: run.startedAt, known: remember.pack(), ...(next.twins ? { twins: next.twins.pack() } : {}) });
  }

  function IntuneCompliance(this: Node, def: IntuneComplianceDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    sourceNode<ComplianceViolation, 'full', ComplianceSettings, ComplianceRunState>(RED, node, def, {
      topic: TOPIC,
      idPrefix: 'compliance',
      stateKey: STATE_KEY,
      stateWhat: 'the time of the last run',
      runName: 'Compliance run',
      texts,
      t,
      explain,
      parse: parseComplianceSettings,
      check: (s) => {
        if (s.filtersFrom) deviceSettings(s, node);
      },
      modeOf: (raw) => {
        if (raw === 'incremental') {
          return new Error(
            'intune-compliance makes full runs only (sinks resolve violations that disappeared only after a complete full run): leave msg.mode out, or use "full" or "cancel"',
          );
        }
        if (raw === undefined || raw === null || raw === '' || raw === 'full') return 'full';
        return new Error(`Unknown msg.mode ${echo(raw)}: use "full" or "cancel", or leave msg.mode out for a full run`);
      },
      overlap: 'A run was requested (__trigger__) while run __runId__ is still going: skipped, runs never overlap',
      starting: () => texts.msg('status.starting', 'full: starting'),
      completed: (sum) => {
        const time = sum.finishedAt.slice(11, 16);
        const skipped = Object.values(sum.stats.skipped).reduce((a, b) => a + b, 0);
        return { fill: 'green', parts: [texts.msg('status.done', '__emitted__ violations, __skipped__ skipped · __time__ UTC', { emitted: sum.stats.emitted, skipped, time })] };
      },
      schedule: (s, saved, now) => [{ mode: 'full', everyMs: s.everyMs, firstDueAt: firstDueAt(saved && saved.v === 1 ? saved.lastRunAt : undefined, s.everyMs, now) }],
      work,
    });
  }

  // The editor reads the device-filter defaults from RED.settings.intuneComplianceFilterDefaults (the same values intune-devices gets).
  registerNode(RED, TYPE, IntuneCompliance, { settings: filterNodeSetting('intuneComplianceFilterDefaults') });

  // ------------------------------------------------------------- policies
  /** The tenant's compliance policies, for the editor's policy picker (through a deployed connection). */
  RED.httpAdmin.get('/intune-compliance/policies', RED.auth.needsPermission('intune-compliance.read'), async (req: Request, res: Response) => {
    await withDeployedConnection(
      RED,
      req.query.intune,
      res,
      { missing: 'Select an Intune connection that has been deployed: the policies are read through the deployed connection', explain },
      async (conn, signal) => {
        const list = await listCompliancePolicies(conn.graph, { signal });
        const policies = [...list.values()]
          .map((p) => ({ id: p.id, name: p.name, platform: p.platform, family: familyOf(p.platform) }))
          .sort((a, b) => a.name.localeCompare(b.name));
        res.json({ ok: true, policies });
      },
    );
  });
};
