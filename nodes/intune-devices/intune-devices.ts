/**
 * intune-devices: reads the managed devices of a tenant, filters and
 * normalises them, and emits them page by page as a sync run (output 1),
 * plus one summary per run (output 2). Runs on request (an input message,
 * `msg.mode` full | incremental | cancel) and/or on its own schedule.
 *
 * The incremental watermark lives in node context (the store chosen in the
 * node), with the tenant and a fingerprint of the settings: a change of
 * either makes the next incremental run a full one.
 *
 * Also serves the editor's preview: POST /intune-devices/preview counts, for
 * the dialog's current (undeployed) settings, what a run would pass on.
 */
import { SourceStatus } from '../lib/node-red/source-status';
import { StatusTexts, shorten, type IntuneNodeStatus } from '../lib/node-red/status-text';
import type { NodeAPI, Node, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { Request, Response } from 'express';
import type { Device, SyncMode } from '../lib/contracts';
import type { IntuneConfigNode } from '../lib/intune/intune-config-api';
import { deviceSelect, FILTER_SELECT } from '../lib/devices/device-normaliser';
import { filterFingerprint } from '../lib/devices/device-filters';
import { emptyTally, scanDevices } from '../lib/devices/device-scan';
import { DeletedUserCheck, userCacheFor } from '../lib/devices/deleted-users';
import { DeviceSettingsError, filterNodeSetting, parseDeviceSourceSettings, type DeviceSourceSettings } from '../lib/devices/device-source-settings';
import { SyncRunner, RunRequestStats, type ActiveRun, type RunSummary, type PageMessage, type SummaryMessage } from '../lib/run/sync-run';
import { RunSchedule, firstDueAt } from '../lib/run/run-schedule';
import { ContextValue, storeInfo, type ContextLike, type ContextStorageSetting } from '../lib/node-red/context-state';
import { isAbortError } from '../lib/graph/graph-errors';
import { runProgress } from '../lib/run/run-progress';
import { echo } from '../lib/shared/echo';

interface IntuneDevicesDef extends NodeDef {
  intune: string;
  [prop: string]: unknown;
}

/** What the node keeps in context, per node (context is per node id) and checked against tenant + settings. */
interface DeviceSyncState {
  v: 1;
  tenantId: string;
  fingerprint: string;
  /** Newest last sync (Graph's clock) covered by a completed run, capped at that run's start. */
  watermark?: string;
  lastFullAt?: string;
  lastRunAt?: string;
}

/** Context key of the state (no '.', which context reads as a path). */
const STATE_KEY = 'intuneDevicesSync';
const TOPIC = 'intune/devices';
/** Devices per page message: one Graph page (managedDevices pages hold at most 1,000). */
const PAGE_SIZE = 1000;
/** Pages the slowest sink may be behind before the next Graph page is read (run-progress.ts). */
const PAGES_AHEAD = 4;
/** Longest wait for the sinks before one Graph page (a paging link must not sit unused for long). */
const SINK_WAIT_MS = 5 * 60_000;
/** Delay of the first scheduled run when nothing says it is due later. */

function settingsFingerprint(s: DeviceSourceSettings, tenantId: string): string {
  return JSON.stringify([tenantId, filterFingerprint(s.filters), s.collapseDuplicates, s.checkDeletedUsers, s.placeholderSerials]);
}

/** Primary users whose directory look-up failed in this run (summary details). */
function failedLookups(sum: RunSummary): number {
  const f = (sum.details as { userLookupFailures?: Array<{ users: number }> } | undefined)?.userLookupFailures;
  return Array.isArray(f) ? f.reduce((a, x) => a + x.users, 0) : 0;
}

/** A Graph failure in words an admin can act on. */
function explain(err: unknown): string {
  const e = err as { message?: string; status?: number };
  const msg = e?.message ?? String(err);
  if (e?.status === 403) return `${msg} — grant the app DeviceManagementManagedDevices.Read.All (application permission) with admin consent`;
  return msg;
}

export = function register(RED: NodeAPI): void {
  const t = (key: string, en: string, params?: Record<string, string | number>): string => {
    const id = `intune-devices.${key}`;
    let s: string | undefined;
    try {
      s = RED._(id, params);
    } catch {
      s = undefined;
    }
    return s && s !== id ? s : en;
  };

  const texts = new StatusTexts(RED, 'intune-devices');
  /** "full" / "incremental" in the editor's language. */
  const modeWord = (mode: SyncMode) => texts.msg(`status.mode.${mode}`, mode);

  function IntuneDevices(this: Node, def: IntuneDevicesDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    let settings: DeviceSourceSettings | undefined;
    let problem: Error | undefined;
    try {
      settings = parseDeviceSourceSettings(def as Record<string, unknown>);
    } catch (err) {
      problem = err as Error;
    }
    const cfg = def.intune ? (RED.nodes.getNode(def.intune) as IntuneConfigNode | null) : null;
    if (!problem && !cfg) problem = new DeviceSettingsError('No Intune connection is selected: pick an intune-config node in this node\u2019s settings', 'intune');

    const contextStorage = (RED.settings as unknown as { contextStorage?: ContextStorageSetting }).contextStorage;
    const store = storeInfo(contextStorage, settings?.store);
    if (store.unknown) node.warn(`The context store "${settings?.store}" does not exist; the watermark is kept in the default store "${store.name}"`);
    const state = new ContextValue<DeviceSyncState>(node.context() as unknown as ContextLike, STATE_KEY, store.unknown ? undefined : settings?.store || undefined);

    const status = new SourceStatus(node, texts, store.persistent, () => runner.busy);

    const runner = new SyncRunner<Device>({
      topic: TOPIC,
      idPrefix: 'devices',
      // Full pages even when the filters drop devices: sinks write in fixed batches.
      fillPagesTo: PAGE_SIZE,
      send: (m: PageMessage<Device>) => node.send([m as unknown as NodeMessage, null]),
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

    async function work(run: ActiveRun<Device>): Promise<void> {
      const s = settings!;
      const conn = cfg!.connection();
      const tenantId = conn.settings.tenantId;
      const fingerprint = settingsFingerprint(s, tenantId);
      const saved = await state.get();
      const valid = !!saved && saved.v === 1 && saved.tenantId === tenantId && saved.fingerprint === fingerprint;
      let since: string | undefined;
      if (run.requestedMode === 'incremental') {
        if (valid && saved!.watermark) {
          since = new Date(Date.parse(saved!.watermark) - s.overlapMs).toISOString();
        } else {
          run.mode = 'full';
          node.log(
            saved && !valid
              ? 'Incremental run done as a full run: the tenant or the filter settings changed since the last run'
              : 'Incremental run done as a full run: no earlier run to continue from',
          );
        }
      }
      const tally = emptyTally();
      const users = new DeletedUserCheck({
        graph: conn.graph,
        cache: userCacheFor(`${conn.settings.endpoints.graphBaseUrl}|${conn.settings.tenantId}|${conn.settings.clientId}`),
        useDirectory: s.checkDeletedUsers,
        signal: run.signal,
        stats: run.requestStats,
      });
      run.counts.skipped = tally.skipped;
      run.counts.details = { platforms: tally.platforms, since: since ?? null, graphVersion: s.graphVersion };
      const pageText = (pass: 'duplicates' | 'devices', page: number) =>
        texts.status(
          'blue',
          'dot',
          pass === 'duplicates'
            ? texts.msg('status.duplicates', '__mode__: duplicates, page __page__', { mode: modeWord(run.mode), page })
            : texts.msg('status.running', '__mode__: page __page__', { mode: modeWord(run.mode), page }),
        );
      let current = pageText('devices', 0);
      run.on('throttled', (ms: number) =>
        status.show(texts.status('yellow', 'ring', texts.msg('status.throttled', 'throttled, waiting __seconds__ s', { seconds: Math.ceil(ms / 1000) }))),
      );
      run.on('resumed', () => status.show(current));

      // Sinks that consume this run say how far they are; reading waits for the slowest.
      runProgress.begin(run.runId);
      let waitWarned = false;
      try {
        for await (const { devices } of scanDevices({
          graph: conn.graph,
          version: s.graphVersion,
          select: deviceSelect(s.graphVersion),
          since,
          collapseDuplicates: s.collapseDuplicates,
          filters: s.filters,
          normalise: { portalUrl: conn.settings.endpoints.portalUrl, tenantId, placeholders: s.placeholders },
          users,
          now: run.startedMs,
          signal: run.signal,
          stats: run.requestStats,
          tally,
          onPage: (pass, page) => {
            current = pageText(pass, page);
            status.show(current);
          },
        })) {
          run.counts.items = tally.read;
          run.counts.pages = tally.pages;
          run.page(devices);
          // Let the flow take the page before the next one is read.
          await new Promise<void>((r) => setImmediate(r));
          const waited = await runProgress.waitFor(run.runId, run.pagesSent - PAGES_AHEAD, { signal: run.signal, maxWaitMs: SINK_WAIT_MS });
          if (waited.timedOut && !waitWarned) {
            waitWarned = true;
            node.warn(
              t(
                'warn.sinkWait',
                `The nodes writing this run have not finished page ${run.pagesSent - PAGES_AHEAD} after ${SINK_WAIT_MS / 60_000} minutes: reading on without waiting for them (memory grows until they catch up)`,
                { page: run.pagesSent - PAGES_AHEAD, minutes: SINK_WAIT_MS / 60_000 },
              ),
            );
          }
        }
      } finally {
        runProgress.end(run.runId);
        // Failed directory look-ups: counted in the summary and the status, and said once per run in words.
        const warnings = users.warnings();
        for (const w of warnings) node.warn(w);
        run.counts.details = {
          ...run.counts.details,
          userLookups: users.lookups,
          userLookupFailures: users.failures(),
          warnings,
          duplicatePages: tally.duplicatePages,
        };
      }
      if (run.aborted) return;
      const newest = tally.newestSyncMs ? Math.min(tally.newestSyncMs, run.startedMs) : run.mode === 'full' ? run.startedMs : 0;
      const prev = valid && saved!.watermark ? Date.parse(saved!.watermark) : 0;
      const mark = Math.max(prev, newest);
      await state.set({
        v: 1,
        tenantId,
        fingerprint,
        watermark: mark ? new Date(mark).toISOString() : undefined,
        lastFullAt: run.mode === 'full' ? run.startedAt : valid ? saved!.lastFullAt : undefined,
        lastRunAt: run.startedAt,
      });
    }

    function resultStatus(sum: RunSummary): IntuneNodeStatus {
      const time = sum.finishedAt.slice(11, 16);
      const skipped = Object.values(sum.stats.skipped).reduce((a, b) => a + b, 0);
      if (sum.result === 'completed') {
        const done = texts.msg('status.done', '__mode__: __emitted__ devices, __skipped__ skipped · __time__ UTC', { mode: modeWord(sum.mode), emitted: sum.stats.emitted, skipped, time });
        const failed = failedLookups(sum);
        if (failed) {
          // Done, but some primary users went unchecked: yellow, so it is seen (the warnings say why).
          return texts.status('yellow', 'dot', done, texts.msg('status.lookupsFailed', ' · __count__ user look-ups failed', { count: failed }), ...status.memoryNote);
        }
        return texts.status('green', 'dot', done, ...status.memoryNote);
      }
      if (sum.result === 'aborted') return texts.status('yellow', 'ring', texts.msg('status.cancelled', 'cancelled · __time__ UTC', { time }), ...status.memoryNote);
      // The error itself stays in the runtime's language, as in the log.
      return texts.status('red', 'ring', texts.msg('status.failed', 'failed: __error__', { error: shorten(sum.stats.error ?? '', 70) }));
    }

    function runError(sum: RunSummary & { cause?: unknown }): Error {
      const err = new Error(`Device run ${sum.runId} failed: ${explain(sum.cause ?? sum.stats.error)}`);
      (err as Error & { cause?: unknown }).cause = sum.cause;
      return err;
    }

    /** Starts a run; undefined when one is running (after warning). */
    function startRun(mode: SyncMode, trigger: 'message' | 'schedule') {
      const started = runner.start(mode, instanceName(), trigger, work, (run) => {
        status.show(texts.status('blue', 'dot', texts.msg('status.starting', '__mode__: starting', { mode: modeWord(mode) })));
        void run;
      });
      if (!started) {
        const active = runner.active!;
        node.warn(
          t(
            'warn.overlap',
            `A ${mode} run was requested (${trigger}) while run ${active.runId} (${active.mode}) is still going: skipped, runs never overlap`,
            { mode, trigger, runId: active.runId, active: active.mode },
          ),
        );
        return undefined;
      }
      started.finished.then((sum) => {
        if (status.isClosed) return;
        status.result(resultStatus(sum));
        if (sum.result === 'completed' && schedule) schedule.ranAt(sum.mode, started.run.startedMs);
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
      let mode: SyncMode;
      if (raw === undefined || raw === null || raw === '') mode = settings!.triggerMode;
      else if (raw === 'full' || raw === 'incremental') mode = raw;
      else {
        done(
          new Error(
            `Unknown msg.mode ${echo(raw)}: use "full", "incremental" or "cancel", or leave msg.mode out for a ${settings!.triggerMode} run`,
          ),
        );
        return;
      }
      const started = startRun(mode, 'message');
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
    let schedule: RunSchedule<SyncMode> | undefined;
    if (!problem && (settings!.fullEveryMs > 0 || settings!.incrementalEveryMs > 0)) {
      const s = settings!;
      state
        .get()
        .catch(() => undefined)
        .then((saved) => {
          if (status.isClosed) return;
          const now = Date.now();
          schedule = new RunSchedule<SyncMode>(
            [
              { mode: 'full', everyMs: s.fullEveryMs, firstDueAt: firstDueAt(saved?.lastFullAt, s.fullEveryMs, now) },
              { mode: 'incremental', everyMs: s.incrementalEveryMs, firstDueAt: firstDueAt(saved?.lastRunAt, s.incrementalEveryMs, now) },
            ],
            (mode) => {
              const started = startRun(mode, 'schedule');
              started?.finished.then((sum) => {
                if (sum.result !== 'failed' || status.isClosed) return;
                const err = runError(sum);
                // With a message, Catch nodes see it: there is no input message for a scheduled run.
                node.error(err, { topic: TOPIC, payload: sum, _msgid: RED.util.generateId() } as unknown as NodeMessage);
              });
            },
          );
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

  // The editor reads the filter defaults from RED.settings.intuneDevicesFilterDefaults: no copy in the HTML.
  RED.nodes.registerType('intune-devices', IntuneDevices as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    settings: filterNodeSetting('intuneDevicesFilterDefaults'),
  } as Parameters<NodeAPI['nodes']['registerType']>[2]);

  // ------------------------------------------------------------- preview
  /**
   * Counts what a run with the dialog's current settings would pass on.
   * Streams the tenant with a minimal `$select` (FILTER_SELECT), so only the
   * counters grow with the tenant.
   */
  RED.httpAdmin.post('/intune-devices/preview', RED.auth.needsPermission('intune-devices.write'), async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    let s: DeviceSourceSettings;
    try {
      s = parseDeviceSourceSettings(body);
    } catch (err) {
      const e = err as DeviceSettingsError;
      res.status(400).json({ ok: false, code: 'invalidSettings', field: e.field, message: e.message });
      return;
    }
    const cfg = typeof body.intune === 'string' && body.intune ? (RED.nodes.getNode(body.intune) as IntuneConfigNode | null) : null;
    if (!cfg || typeof cfg.connection !== 'function') {
      res.status(400).json({
        ok: false,
        code: 'noConnection',
        message: 'Select an Intune connection that has been deployed: the preview reads the tenant through the deployed connection',
      });
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
    const tally = emptyTally();
    const stats = new RunRequestStats();
    const started = Date.now();
    const warnings: string[] = [];
    const users = new DeletedUserCheck({
      graph: conn.graph,
      cache: userCacheFor(`${conn.settings.endpoints.graphBaseUrl}|${conn.settings.tenantId}|${conn.settings.clientId}`),
      useDirectory: s.checkDeletedUsers,
      signal: abort.signal,
      stats,
    });
    try {
      for await (const page of scanDevices({
        graph: conn.graph,
        version: 'v1.0',
        select: FILTER_SELECT,
        collapseDuplicates: s.collapseDuplicates,
        filters: s.filters,
        normalise: { portalUrl: conn.settings.endpoints.portalUrl, tenantId: conn.settings.tenantId, placeholders: s.placeholders },
        users,
        now: started,
        signal: abort.signal,
        stats,
        tally,
      })) {
        void page;
      }
      warnings.push(...users.warnings());
      res.json({
        ok: true,
        total: tally.read,
        imported: tally.kept,
        skipped: tally.skipped,
        platforms: tally.platforms,
        pages: tally.pages,
        requests: stats.requests,
        throttled: stats.throttled,
        durationMs: Date.now() - started,
        userLookupFailures: users.failures(),
        warnings,
      });
    } catch (err) {
      if (abort.signal.aborted || isAbortError(err)) return;
      res.status(502).json({ ok: false, code: 'graph', message: explain(err) });
    }
  });
};
