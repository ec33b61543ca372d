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
import { SourceStatus } from '../lib/node-red/source-status';
import { StatusTexts, shorten, type IntuneNodeStatus } from '../lib/node-red/status-text';
import type { NodeAPI, Node, NodeDef, NodeMessage, NodeMessageInFlow, NodeStatus } from 'node-red';
import type { Request, Response } from 'express';
import type { ComplianceViolation } from '../lib/contracts';
import type { IntuneConfigNode } from '../lib/intune/intune-config-api';
import { DeletedUserCheck, userCacheFor } from '../lib/devices/deleted-users';
import { SyncRunner, type ActiveRun, type RunSummary, type PageMessage, type SummaryMessage } from '../lib/run/sync-run';
import { RunSchedule, firstDueAt } from '../lib/run/run-schedule';
import { ContextValue, storeInfo, type ContextLike, type ContextStorageSetting } from '../lib/node-red/context-state';
import { isAbortError } from '../lib/graph/graph-errors';
import { filterNodeSetting } from '../lib/devices/device-source-settings';
import { ComplianceSettingsError, parseComplianceSettings, parseDeviceSettings, type ComplianceDeviceSettings, type ComplianceSettings } from '../lib/compliance/compliance-settings';
import { emptyComplianceTally, scanCompliance, type ScanPhase } from '../lib/compliance/compliance-scan';
import { familyOf, listCompliancePolicies } from '../lib/compliance/compliance-policies';
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
}

const STATE_KEY = 'intuneComplianceRuns';
const TOPIC = 'intune/compliance';
const DEVICES_TYPE = 'intune-devices';

/** A Graph failure in words an admin can act on. */
function explain(err: unknown): string {
  const e = err as { message?: string; status?: number };
  const msg = e?.message ?? String(err);
  if (e?.status === 403) {
    return `${msg} — grant the app DeviceManagementConfiguration.Read.All and DeviceManagementManagedDevices.Read.All (application permissions) with admin consent`;
  }
  return msg;
}

export = function register(RED: NodeAPI): void {
  const t = (key: string, en: string, params?: Record<string, string | number>): string => {
    const id = `intune-compliance.${key}`;
    let s: string | undefined;
    try {
      s = RED._(id, params);
    } catch {
      s = undefined;
    }
    return s && s !== id ? s : en;
  };

  const texts = new StatusTexts(RED, 'intune-compliance');

  /** The deployed configuration of a node (env references as they are). */
  function deployedDef(id: string): Record<string, unknown> | undefined {
    let found: Record<string, unknown> | undefined;
    RED.nodes.eachNode((n) => {
      if (n.id === id) found = n as unknown as Record<string, unknown>;
    });
    return found;
  }

  function IntuneCompliance(this: Node, def: IntuneComplianceDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    let settings: ComplianceSettings | undefined;
    let problem: Error | undefined;
    try {
      settings = parseComplianceSettings(def as Record<string, unknown>);
    } catch (err) {
      problem = err as Error;
    }
    const cfg = def.intune ? (RED.nodes.getNode(def.intune) as IntuneConfigNode | null) : null;
    if (!problem && !cfg) problem = new ComplianceSettingsError('No Intune connection is selected: pick an intune-config node in this node\u2019s settings', 'intune');

    /** The device filters that apply now: own, or read afresh from the chosen intune-devices node. */
    function deviceSettings(): ComplianceDeviceSettings {
      const s = settings!;
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
    if (!problem && settings!.filtersFrom) {
      try {
        deviceSettings();
      } catch (err) {
        problem = err as Error;
      }
    }

    const contextStorage = (RED.settings as unknown as { contextStorage?: ContextStorageSetting }).contextStorage;
    const store = storeInfo(contextStorage, settings?.store);
    if (store.unknown) node.warn(`The context store "${settings?.store}" does not exist; the time of the last run is kept in the default store "${store.name}"`);
    const state = new ContextValue<ComplianceRunState>(node.context() as unknown as ContextLike, STATE_KEY, store.unknown ? undefined : settings?.store || undefined);

    const status = new SourceStatus(node, texts, store.persistent, () => runner.busy);

    const runner = new SyncRunner<ComplianceViolation>({
      topic: TOPIC,
      idPrefix: 'compliance',
      send: (m: PageMessage<ComplianceViolation>) => node.send([m as unknown as NodeMessage, null]),
      sendSummary: (m: SummaryMessage) => node.send([null, m as unknown as NodeMessage]),
    });

    if (problem) status.problem(problem);

    const unwatch = !problem && cfg?.board ? status.watch(cfg.board) : undefined;
    if (!problem) status.idle();

    function instanceName(): string {
      if (settings!.instance) return settings!.instance;
      try {
        return cfg!.connection().settings.tenantId;
      } catch {
        return cfg?.id ?? node.id;
      }
    }

    async function work(run: ActiveRun<ComplianceViolation>): Promise<void> {
      const s = settings!;
      const device = deviceSettings();
      const conn = cfg!.connection();
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
      const details = () => ({
        filtersFrom: s.filtersFrom || null,
        reportFilter: tally.reportFilter || null,
        reportRows: tally.report.rows,
        reportPages: tally.report.pages,
        noncompliantDevices: tally.devices.listed,
        devicePages: tally.devices.listPages,
        duplicatePages: tally.devices.duplicatePages,
        devicesReadById: tally.devices.readById,
        devicesGone: tally.devices.gone,
        twinLookups: tally.devices.twinLookups,
        detailReads: tally.detailReads,
        detailFailures: tally.detailFailures,
        repeatedPairs: tally.repeatedPairs,
        userLookups: users.lookups,
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
      await state.set({ v: 1, tenantId, lastRunAt: run.startedAt });
    }

    function resultStatus(sum: RunSummary): IntuneNodeStatus {
      const time = sum.finishedAt.slice(11, 16);
      const skipped = Object.values(sum.stats.skipped).reduce((a, b) => a + b, 0);
      if (sum.result === 'completed') {
        const done = texts.msg('status.done', '__emitted__ violations, __skipped__ skipped · __time__ UTC', { emitted: sum.stats.emitted, skipped, time });
        return texts.status('green', 'dot', done, ...status.memoryNote);
      }
      if (sum.result === 'aborted') return texts.status('yellow', 'ring', texts.msg('status.cancelled', 'cancelled · __time__ UTC', { time }), ...status.memoryNote);
      // The error itself stays in the runtime's language, as in the log.
      return texts.status('red', 'ring', texts.msg('status.failed', 'failed: __error__', { error: shorten(sum.stats.error ?? '', 70) }));
    }

    function runError(sum: RunSummary & { cause?: unknown }): Error {
      const err = new Error(`Compliance run ${sum.runId} failed: ${explain(sum.cause ?? sum.stats.error)}`);
      (err as Error & { cause?: unknown }).cause = sum.cause;
      return err;
    }

    function startRun(trigger: 'message' | 'schedule') {
      const started = runner.start('full', instanceName(), trigger, work, () => {
        status.show(texts.status('blue', 'dot', texts.msg('status.starting', 'full: starting')));
      });
      if (!started) {
        const active = runner.active!;
        node.warn(
          t('warn.overlap', `A run was requested (${trigger}) while run ${active.runId} is still going: skipped, runs never overlap`, {
            trigger,
            runId: active.runId,
          }),
        );
        return undefined;
      }
      started.finished.then((sum) => {
        if (status.isClosed) return;
        status.result(resultStatus(sum));
        if (sum.result === 'completed' && schedule) schedule.ranAt('full', started.run.startedMs);
      });
      return started;
    }

    // ---------------------------------------------------------------- input
    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      if (problem) {
        done(new Error(problem.message));
        return;
      }
      const raw = (msg as { mode?: unknown }).mode;
      if (raw === 'cancel') {
        if (!runner.busy) {
          done();
          return;
        }
        runner.cancel('Cancelled by a message').then(() => done(), done);
        return;
      }
      if (raw === 'incremental') {
        done(
          new Error(
            'intune-compliance makes full runs only (sinks resolve violations that disappeared only after a complete full run): leave msg.mode out, or use "full" or "cancel"',
          ),
        );
        return;
      }
      if (!(raw === undefined || raw === null || raw === '' || raw === 'full')) {
        done(new Error(`Unknown msg.mode ${echo(raw)}: use "full" or "cancel", or leave msg.mode out for a full run`));
        return;
      }
      const started = startRun('message');
      if (!started) {
        done();
        return;
      }
      started.finished.then((sum) => {
        if (sum.result === 'failed') done(runError(sum));
        else done();
      });
    });

    // ------------------------------------------------------------- schedule
    let schedule: RunSchedule<'full'> | undefined;
    if (!problem && settings!.everyMs > 0) {
      const every = settings!.everyMs;
      state
        .get()
        .catch(() => undefined)
        .then((saved) => {
          if (status.isClosed) return;
          const due = firstDueAt(saved && saved.v === 1 ? saved.lastRunAt : undefined, every);
          schedule = new RunSchedule<'full'>([{ mode: 'full', everyMs: every, firstDueAt: due }], () => {
            const started = startRun('schedule');
            started?.finished.then((sum) => {
              if (sum.result !== 'failed' || status.isClosed) return;
              const err = runError(sum);
              // With a message, Catch nodes see it: there is no input message for a scheduled run.
              node.error(err, { topic: TOPIC, payload: sum, _msgid: RED.util.generateId() } as unknown as NodeMessage);
            });
          });
          schedule.start();
        });
    }

    // ---------------------------------------------------------------- close
    node.on('close', (_removed: boolean, done: () => void) => {
      status.close();
      schedule?.stop();
      unwatch?.();
      runner.stop('The flow was redeployed or stopped').then(
        () => done(),
        () => done(),
      );
    });
  }

  // The editor reads the device-filter defaults from RED.settings.intuneComplianceFilterDefaults (the same values intune-devices gets).
  RED.nodes.registerType('intune-compliance', IntuneCompliance as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    settings: filterNodeSetting('intuneComplianceFilterDefaults'),
  } as Parameters<NodeAPI['nodes']['registerType']>[2]);

  // ------------------------------------------------------------- policies
  /** The tenant's compliance policies, for the editor's policy picker (through a deployed connection). */
  RED.httpAdmin.get('/intune-compliance/policies', RED.auth.needsPermission('intune-compliance.read'), async (req: Request, res: Response) => {
    const id = typeof req.query.intune === 'string' ? req.query.intune : '';
    const cfg = id ? (RED.nodes.getNode(id) as IntuneConfigNode | null) : null;
    if (!cfg || typeof cfg.connection !== 'function') {
      res.status(400).json({ ok: false, code: 'noConnection', message: 'Select an Intune connection that has been deployed: the policies are read through the deployed connection' });
      return;
    }
    let conn;
    try {
      conn = cfg.connection();
    } catch (err) {
      res.status(400).json({ ok: false, code: 'connection', message: (err as Error).message });
      return;
    }
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableEnded) abort.abort();
    });
    try {
      const list = await listCompliancePolicies(conn.graph, { signal: abort.signal });
      const policies = [...list.values()]
        .map((p) => ({ id: p.id, name: p.name, platform: p.platform, family: familyOf(p.platform) }))
        .sort((a, b) => a.name.localeCompare(b.name));
      res.json({ ok: true, policies });
    } catch (err) {
      if (abort.signal.aborted || isAbortError(err)) return;
      res.status(502).json({ ok: false, code: 'graph', message: explain(err) });
    }
  });
};
