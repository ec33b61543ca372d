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
 * the dialog's current (undeployed) settings, what a run would pass on, and
 * GET /intune-devices/preview/progress/:id what it has counted so far.
 *
 * "Discovered apps" (readSoftware, lib/software): each device passed on
 * carries `software`, from Intune's discovered-apps report exported once per
 * run; the preview then also counts distinct apps and installations.
 */
import type { NodeAPI, Node, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import { TOPIC_DEVICES, type Device, type RunSummary, type SyncMode } from '../lib/contracts';
import { StatusTexts } from '../lib/node-red/status-text';
import { translator } from '../lib/node-red/i18n';
import { registerNode } from '../lib/node-red/register';
import { deviceSelect, FILTER_SELECT } from '../lib/devices/device-normaliser';
import { planRun, settingsFingerprint, stateAfterRun, type DeviceSyncState } from '../lib/devices/device-watermark';
import { emptyTally, scanDevices } from '../lib/devices/device-scan';
import { previewScan } from '../lib/devices/device-preview';
import { previewProgress, PROGRESS_ID_RE, soFarOf, type PreviewStage } from '../lib/devices/preview-progress';
import { DeletedUserCheck, userCacheFor } from '../lib/devices/deleted-users';
import { DeviceSettingsError, filterNodeSetting, parseDeviceSourceSettings, type DeviceSourceSettings } from '../lib/devices/device-source-settings';
import { RunRequestStats, type ActiveRun } from '../lib/run/sync-run';
import { firstDueAt } from '../lib/run/run-schedule';
import { runProgress } from '../lib/run/run-progress';
import { sourceExplainer, sourceNode, withDeployedConnection, type SourceContext } from '../lib/source/source-node';
import { echo } from '../lib/shared/echo';
import { RunSoftware } from '../lib/software/software-run';

interface IntuneDevicesDef extends NodeDef {
  intune: string;
  [prop: string]: unknown;
}

/** Context key of the state (no '.', which context reads as a path). */
const STATE_KEY = 'intuneDevicesSync';
const TYPE = 'intune-devices';
const TOPIC = TOPIC_DEVICES;
/** Devices per page message: one Graph page (managedDevices pages hold at most 1,000). */
const PAGE_SIZE = 1000;
/** Pages the slowest sink may be behind before the next Graph page is read (run-progress.ts). */
const PAGES_AHEAD = 4;
/** Longest wait for the sinks before one Graph page (a paging link must not sit unused for long). */
const SINK_WAIT_MS = 5 * 60_000;

/**
 * Added to the settings fingerprint when "Discovered apps" is on: switching it on makes the next
 * incremental run a full one, so every device gets its software, not only those synced since.
 */
const SOFTWARE_FINGERPRINT = '|software';

/** Primary users whose directory look-up failed in this run (summary details). */
function failedLookups(sum: RunSummary): number {
  const f = (sum.details as { userLookupFailures?: Array<{ users: number }> } | undefined)?.userLookupFailures;
  return Array.isArray(f) ? f.reduce((a, x) => a + x.users, 0) : 0;
}


const explain = sourceExplainer('grant the app DeviceManagementManagedDevices.Read.All (application permission) with admin consent');

export = function register(RED: NodeAPI): void {
  const t = translator(RED, TYPE);
  const texts = new StatusTexts(RED, TYPE);
  /** "full" / "incremental" in the editor's language. */
  const modeWord = (mode: SyncMode) => texts.msg(`status.mode.${mode}`, mode);

  /** One run: watermark in, devices page by page out, watermark saved. */
  async function work(run: ActiveRun<Device>, { node, settings: s, state, status, connection }: SourceContext<DeviceSourceSettings, DeviceSyncState>): Promise<void> {
    const conn = connection();
    const tenantId = conn.settings.tenantId;
    const fingerprint = settingsFingerprint(s, tenantId) + (s.readSoftware ? SOFTWARE_FINGERPRINT : '');
    const saved = await state.get();
    const plan = planRun(saved, run.requestedMode, { tenantId, fingerprint }, s.overlapMs);
    const since = plan.since;
    if (plan.fullBecause) {
      run.mode = 'full';
      node.log(
        plan.fullBecause === 'changed'
          ? 'Incremental run done as a full run: the tenant or the filter settings changed since the last run'
          : 'Incremental run done as a full run: no earlier run to continue from',
      );
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

    // "Discovered apps": the report is read before the devices, then each page carries its devices' apps.
    const software = s.readSoftware
      ? await RunSoftware.start({
          graph: conn.graph,
          agent: conn.agent,
          version: s.graphVersion,
          signal: run.signal,
          stats: run.requestStats,
          onStage: (stage) =>
            status.show(texts.status('blue', 'dot', texts.msg('status.software', '__mode__: discovered apps, __stage__', { mode: modeWord(run.mode), stage: texts.msg(`status.softwareStage.${stage}`, stage) }))),
        })
      : null;
    if (software?.error) node.warn(t('warn.software', 'Discovered apps not read in this run, devices go out without them (sinks keep what they have): __error__', { error: software.error }));

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
        onUserPrincipalNames: (upns) => run.hintFirstPage({ userPrincipalNames: upns }),
        onSplitRefused: (err) =>
          node.warn(t('warn.splitRefused', 'Microsoft Graph refused the duplicate pass read in enrolment-date ranges (__error__); read as one listing', { error: err.message })),
      })) {
        run.counts.items = tally.read;
        run.counts.pages = tally.pages;
        software?.attach(devices);
        run.page(devices);
        // Let the flow take the page before the next one is read.
        await new Promise<void>((r) => setImmediate(r));
        const waited = await runProgress.waitFor(run.runId, run.pagesSent - PAGES_AHEAD, { signal: run.signal, maxWaitMs: SINK_WAIT_MS });
        if (waited.timedOut && !waitWarned) {
          waitWarned = true;
          node.warn(
            t(
              'warn.sinkWait',
              'The nodes writing this run have not finished page __page__ after __minutes__ minutes: reading on without waiting for them (memory grows until they catch up)',
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
        userListingRequests: users.listingRequests,
        userLookupFailures: users.failures(),
        warnings,
        duplicatePages: tally.duplicatePages,
        ...(software ? { software: software.details() } : {}),
      };
    }
    if (run.aborted) return;
    await state.set(stateAfterRun(saved, plan.valid, { tenantId, fingerprint, mode: run.mode, startedMs: run.startedMs, startedAt: run.startedAt, newestSyncMs: tally.newestSyncMs }));
  }

  function IntuneDevices(this: Node, def: IntuneDevicesDef) {
    RED.nodes.createNode(this, def);
    sourceNode<Device, SyncMode, DeviceSourceSettings, DeviceSyncState>(RED, this, def, {
      topic: TOPIC,
      idPrefix: 'devices',
      // Full pages even when the filters drop devices: sinks write in fixed batches.
      fillPagesTo: PAGE_SIZE,
      stateKey: STATE_KEY,
      stateWhat: 'the watermark',
      runName: 'Device run',
      texts,
      t,
      explain,
      parse: parseDeviceSourceSettings,
      modeOf: (raw, s) => {
        if (raw === undefined || raw === null || raw === '') return s.triggerMode;
        if (raw === 'full' || raw === 'incremental') return raw;
        return new Error(`Unknown msg.mode ${echo(raw)}: use "full", "incremental" or "cancel", or leave msg.mode out for a ${s.triggerMode} run`);
      },
      overlap: 'A __mode__ run was requested (__trigger__) while run __runId__ (__active__) is still going: skipped, runs never overlap',
      starting: (mode) => texts.msg('status.starting', '__mode__: starting', { mode: modeWord(mode) }),
      completed: (sum) => {
        const time = sum.finishedAt.slice(11, 16);
        const skipped = Object.values(sum.stats.skipped).reduce((a, b) => a + b, 0);
        const done = texts.msg('status.done', '__mode__: __emitted__ devices, __skipped__ skipped · __time__ UTC', { mode: modeWord(sum.mode), emitted: sum.stats.emitted, skipped, time });
        const parts = [done];
        let fill: 'green' | 'yellow' = 'green';
        const sw = (sum.details as { software?: { read: boolean; installations: number } } | undefined)?.software;
        if (sw?.read) parts.push(texts.msg('status.softwareDone', ' · __installations__ installed apps', { installations: sw.installations }));
        // Done, but the discovered apps could not be read: yellow, so it is seen (the warning says why).
        if (sw && !sw.read) {
          fill = 'yellow';
          parts.push(texts.msg('status.softwareFailed', ' · discovered apps not read'));
        }
        const failed = failedLookups(sum);
        // Done, but some primary users went unchecked: yellow, so it is seen (the warnings say why).
        if (failed) {
          fill = 'yellow';
          parts.push(texts.msg('status.lookupsFailed', ' · __count__ user look-ups failed', { count: failed }));
        }
        return { fill, parts };
      },
      schedule: (s, saved, now) => [
        { mode: 'full', everyMs: s.fullEveryMs, firstDueAt: firstDueAt(saved?.lastFullAt, s.fullEveryMs, now) },
        { mode: 'incremental', everyMs: s.incrementalEveryMs, firstDueAt: firstDueAt(saved?.lastRunAt, s.incrementalEveryMs, now) },
      ],
      work,
    });
  }

  // The editor reads the filter defaults from RED.settings.intuneDevicesFilterDefaults: no copy in the HTML.
  registerNode(RED, TYPE, IntuneDevices, { settings: filterNodeSetting('intuneDevicesFilterDefaults') });

  // ------------------------------------------------------------- preview
  /**
   * Counts what a run with the dialog's current settings would pass on.
   * Streams the tenant with a minimal `$select` (FILTER_SELECT), so only the
   * counters grow with the tenant.
   *
   * With `progressId` (chosen by the editor) the counts so far are kept in the
   * progress registry after every page, for GET …/preview/progress/:id, until
   * this answers. A malformed id is refused (400) rather than ignored: it is an
   * editor's bug, and ignoring it would leave that editor asking for a progress
   * that never comes.
   */
  RED.httpAdmin.post('/intune-devices/preview', RED.auth.needsPermission('intune-devices.write'), async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const progressId = body.progressId;
    if (progressId !== undefined && (typeof progressId !== 'string' || !PROGRESS_ID_RE.test(progressId))) {
      res.status(400).json({ ok: false, code: 'invalidSettings', field: 'progressId', message: 'progressId must be 8 to 64 letters, digits, "_" or "-"' });
      return;
    }
    let s: DeviceSourceSettings;
    try {
      s = parseDeviceSourceSettings(body);
    } catch (err) {
      const e = err as DeviceSettingsError;
      res.status(400).json({ ok: false, code: 'invalidSettings', field: e.field, message: e.message });
      return;
    }
    await withDeployedConnection(
      RED,
      body.intune,
      res,
      { missing: 'Select an Intune connection that has been deployed: the preview reads the tenant through the deployed connection', explain },
      async (conn, signal) => {
        const tally = emptyTally();
        const stats = new RunRequestStats();
        const started = Date.now();
        const warnings: string[] = [];
        const users = new DeletedUserCheck({
          graph: conn.graph,
          cache: userCacheFor(`${conn.settings.endpoints.graphBaseUrl}|${conn.settings.tenantId}|${conn.settings.clientId}`),
          useDirectory: s.checkDeletedUsers,
          // The Preview never waits for the directory: cached answers and the record only.
          lookUp: false,
          signal,
          stats,
        });
        // Not tracked when the registry is full or the id is taken: the Preview still answers, only without progress.
        const soFar = (stage: PreviewStage) => soFarOf(tally, { stage, requests: stats.requests, userLookupsPending: users.pending });
        const tracked = typeof progressId === 'string' && previewProgress.begin(progressId, soFar(s.readSoftware ? 'software' : 'devices'));
        try {
          // "Discovered apps" on: the report is exported too (minutes on a real tenant), and counted for the devices that pass.
          const software = s.readSoftware
            ? await RunSoftware.start({ graph: conn.graph, agent: conn.agent, version: s.graphVersion, signal, stats })
            : null;
          if (software?.error) warnings.push(software.error);
          if (tracked) previewProgress.update(progressId, soFar('devices'));
          // One listing, duplicates judged after the fact (device-preview.ts): half the requests of a run's two passes.
          await previewScan({
            graph: conn.graph,
            version: 'v1.0',
            select: FILTER_SELECT,
            collapseDuplicates: s.collapseDuplicates,
            filters: s.filters,
            normalise: { portalUrl: conn.settings.endpoints.portalUrl, tenantId: conn.settings.tenantId, placeholders: s.placeholders },
            users,
            now: started,
            signal,
            stats,
            tally,
            onKept: software ? (id) => software.count(id) : undefined,
            // A copy per page: the tally is exact for the records read so far only at a page's end.
            onPage: tracked ? () => previewProgress.update(progressId, soFar('devices')) : undefined,
          });
          warnings.push(...users.warnings());
          // The editor says how many users the Preview left unchecked (preview.usersPending).
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
            userLookupsPending: users.pending,
            warnings,
            ...(software ? { software: software.details() } : {}),
          });
        } finally {
          // Answered, failed or aborted: no progress to ask for any more.
          if (tracked) previewProgress.end(progressId);
        }
      },
    );
  });

  /**
   * What the Preview started with `progressId` = :id has counted so far (provisional counts, the
   * final answer's names, plus elapsedMs); 404 when no such Preview is running (never started,
   * untracked, or already answered). Counts only: nothing of the settings or the connection.
   */
  RED.httpAdmin.get('/intune-devices/preview/progress/:id', RED.auth.needsPermission('intune-devices.write'), (req: Request, res: Response) => {
    const id = String(req.params.id ?? '');
    const p = PROGRESS_ID_RE.test(id) ? previewProgress.get(id) : undefined;
    if (!p) {
      res.status(404).json({ ok: false, code: 'unknown', message: 'No Preview with this progress id is running' });
      return;
    }
    res.json(p);
  });
};
