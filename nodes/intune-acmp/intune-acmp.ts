/**
 * intune-acmp: the ACMP sink. Takes
 * - device sync runs (msg.topic "intune/devices", msg.sync, msg.payload =
 *   Device[]) and publishes the mobile devices to the ACMP server set in the
 *   node, or to every server of the SICS connection for "*": only what
 *   changed, in batches, removals after a complete full run (acmp-sync.ts);
 * - action results of intune-action (msg.payload = result with jobId,
 *   msg.acmp from intune-acmp-actions) and publishes the job status back to
 *   the server the job came from;
 * - msg.topic "acmp/resend" (msg.instance) to forget what was published, so
 *   the next run sends every device again.
 *
 * Messages are written in the wire format set in the node (2, the command
 * framing, by default; 1 for an ACMP side that reads only the old
 * envelope). A job's status is written in the format the job came in, and
 * goes to the job's callback routing key when the job named one.
 *
 * One report message per input (output 1), in the order the inputs came.
 * Device pages of runs are published ACMP_PAGES_IN_FLIGHT at a time (each
 * page's messages go out MESSAGES_IN_FLIGHT at a time, acmp-sync.ts); a
 * run's end (state written, removals) and every other message is handled
 * alone, after what came before it. A batch or status that failed is reported in the message AND
 * with done(err), after the message went out; so is the last page of a run
 * in which an earlier page failed (the run ends red, not "run done").
 */
import type { NodeAPI, Node, NodeDef, NodeMessageInFlow } from 'node-red';
import { readSyncEnvelope, syncEnvelopeIn, type Device, type SyncEnvelope } from '../lib/contracts';
import { healthPart } from '../lib/node-red/config-health';
import { StatusText, StatusTexts, type StatusParam } from '../lib/node-red/status-text';
import { StatusDot, type DotFill, type DotShape } from '../lib/node-red/status-dot';
import { resolveServers, type AcmpConfigNode } from '../lib/acmp/acmp-config-api';
import { translator } from '../lib/node-red/i18n';
import { ContextValue, storeInfo } from '../lib/node-red/context-state';
import { configNode, contextOf, contextStorageOf, registerNode } from '../lib/node-red/register';
import { ACMP_PAGES_IN_FLIGHT, InventoryPublisher, pageProblems, type PageReport, type StateStore } from '../lib/acmp/acmp-sync';
import { PageScheduler, type Settled } from '../lib/shared/page-scheduler';
import { isActionResult, jobStatusMessage, statusFromResult, statusRoute, type ResultLike } from '../lib/acmp/acmp-jobs';
import type { JobClient, WireFormat } from '../lib/acmp/acmp-wire';
import { parseSinkSettings, type AcmpSinkProperties, type SinkSettings } from '../lib/acmp/acmp-sink-settings';
import { SicsError } from '../lib/acmp/sics-errors';
import type { AcmpServerRoute } from '../lib/acmp/sics-settings';
import { runProgress } from '../lib/run/run-progress';
import { recordSinkPage } from '../lib/run/run-history';

interface AcmpSinkDef extends NodeDef, AcmpSinkProperties {
  acmp: string;
}

type Send = (msg: NodeMessageInFlow | NodeMessageInFlow[]) => void;
type Done = (err?: Error) => void;
type Status = { fill: DotFill; shape: DotShape; text: StatusText };

export = function register(RED: NodeAPI): void {
  function AcmpSink(this: Node, def: AcmpSinkDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'intune-acmp');
    const texts = new StatusTexts(RED, 'intune-acmp');
    const say = (key: string, en: string, params?: Record<string, StatusParam>) => StatusText.of(texts.msg(`status.${key}`, en, params));

    let settings: SinkSettings | undefined;
    let problem: string | undefined;
    try {
      settings = parseSinkSettings(def);
    } catch (err) {
      problem = (err as Error).message;
      node.error(t('log.misconfigured', 'intune-acmp is misconfigured: __message__', { message: problem }));
    }
    const cfg = configNode<AcmpConfigNode>(RED, def.acmp);
    const dot = new StatusDot(node, texts);
    const closer = new AbortController();
    let closing = false;
    const pages = new PageScheduler(ACMP_PAGES_IN_FLIGHT);
    let last: Status | undefined;

    const store = storeInfo(contextStorageOf(RED), settings?.store);
    // Said once, with the first device page: a node that only reports job statuses keeps no state worth warning about.
    let memoryWarned = store.persistent;
    const warnMemory = () => {
      if (memoryWarned) return;
      memoryWarned = true;
      node.warn(t('log.memoryStore', "What was published is remembered in the non-persistent context store \"__store__\": after a restart every device is sent again (no duplicates in ACMP, but more traffic). Choose a persistent store (e.g. localfilesystem) in the node.", { store: store.name }));
    };
    if (store.unknown) node.warn(t('log.unknownStore', "The context store \"__store__\" does not exist; the store \"__used__\" is used", { store: settings?.store ?? '', used: store.name }));

    const context = contextOf(node);
    const stateStore: StateStore = {
      get: (key) => new ContextValue<unknown>(context, key, settings?.store).get(),
      set: (key, value) => new ContextValue<unknown>(context, key, settings?.store).set(value),
    };

    let publisher: InventoryPublisher | undefined;
    const getPublisher = (): InventoryPublisher => {
      if (!publisher) {
        const client = cfg!.client();
        publisher = new InventoryPublisher({
          caller: client,
          onDemandDefinition: settings!.onDemandDefinition,
          batchSize: settings!.batchSize,
          maxMessageBytes: settings!.maxMessageBytes,
          reconcile: settings!.reconcile,
          removalLimitPercent: settings!.removalLimitPercent,
          store: stateStore,
          replyTimeoutMs: settings!.replyTimeoutMs,
          format: settings!.format,
          log: { warn: (m) => node.warn(m), debug: (m) => node.debug(m) },
        });
      }
      return publisher;
    };

    // ------------------------------------------------------------ status

    function idle(): Status {
      const health = dot.health;
      if (problem) return { fill: 'red', shape: 'ring', text: say('misconfigured', 'misconfigured') };
      if (!cfg) return { fill: 'red', shape: 'ring', text: say('noConfig', 'no SICS connection selected') };
      if (health?.level === 'error') return { fill: 'red', shape: 'ring', text: StatusText.of(healthPart(health)) };
      if (health?.level === 'warn') return { fill: 'yellow', shape: 'ring', text: say('unencrypted', 'unencrypted') };
      if (!store.persistent) return { fill: 'yellow', shape: 'ring', text: say('idleMemory', 'idle (state not persistent: __store__)', { store: store.name }) };
      return { fill: 'grey', shape: 'ring', text: say('idle', 'idle → __server__', { server: settings?.serverId ?? '' }) };
    }

    function show(s?: Status) {
      if (closing) return;
      if (s) last = s;
      const h = dot.health?.level === 'warn' && last ? { ...last, text: last.text.plus(' · ', say('unencrypted', 'unencrypted')) } : last;
      const shown = h ?? idle();
      dot.paint(shown.fill, shown.shape, shown.text);
    }

    const unwatch = dot.watch(cfg?.board, () => show());
    show();

    // ------------------------------------------------------------ inventory

    /** A device page this node can publish (settings, connection, envelope and devices all valid), or undefined: then handle() says what is wrong. */
    function devicePageOf(msg: NodeMessageInFlow): { sync: SyncEnvelope; devices: Device[] } | undefined {
      if (problem || !settings || !cfg) return undefined;
      const m = msg as { sync?: unknown; payload?: unknown };
      if (m.sync === undefined) return undefined;
      let sync: SyncEnvelope;
      try {
        sync = readSyncEnvelope(m.sync);
      } catch {
        return undefined;
      }
      const devices = m.payload;
      if (!Array.isArray(devices) || devices.some((d) => !d || typeof d !== 'object' || typeof d.id !== 'string' || !d.id)) return undefined;
      return { sync, devices: devices as Device[] };
    }

    /**
     * Queues a device page: its publish shares the page slots; a run's last
     * page is finished (state, removals) alone, once every page before it
     * is published and before anything after it starts.
     */
    function submitPage(msg: NodeMessageInFlow, page: { sync: SyncEnvelope; devices: Device[] }, send: Send, done: Done) {
      const { sync, devices } = page;
      let servers: AcmpServerRoute[] = [];
      // async: a throw (an unknown server id) becomes this page's rejection, which the run's end reports.
      const publish = async () => {
        servers = resolveServers(cfg!.servers(), settings!.serverId);
        warnMemory();
        show({ fill: 'blue', shape: 'dot', text: say('publishing', 'page __page__: __devices__ devices → __servers__ server(s)', { page: sync.page, devices: devices.length, servers: servers.length }) });
        return getPublisher().publishPage(sync, devices, servers, closer.signal);
      };
      const report = (r: Settled<PageReport>) => reportPage(msg, page, r, send, done);
      if (!sync.last) {
        pages.submit(true, publish, report);
        return;
      }
      let published: Promise<PageReport> | undefined;
      pages.submit(
        true,
        () => (published = publish()),
        () => undefined, // reported with the run's end
      );
      pages.submit(false, async () => getPublisher().finishRun(sync, servers, await published!, closer.signal), report);
    }

    /** The page's report message, status and done(), in arrival order (after the pages before it reported). */
    function reportPage(msg: NodeMessageInFlow, page: { sync: SyncEnvelope; devices: Device[] }, r: Settled<PageReport>, send: Send, done: Done) {
      const { sync, devices } = page;
      if ('error' in r) {
        const err = r.error;
        if ((err as SicsError)?.code === 'aborted' || closing) return done();
        show({ fill: 'red', shape: 'dot', text: say('error', 'error') });
        return done(err instanceof Error ? err : new Error(String(err)));
      }
      const report = r.value;
      if (closing) return done();
      const problems = pageProblems(report);
      const changed = report.servers.reduce((a, s) => a + s.changed, 0);
      const failed = report.servers.reduce((a, s) => a + s.failed, 0);
      const removed = (report.removals ?? []).reduce((a, r) => a + r.removed + r.notThere, 0);
      send({ ...msg, topic: 'acmp/devices', payload: report } as unknown as NodeMessageInFlow);
      void recordSinkPage(node, sync, { read: devices.length, written: changed, unchanged: report.servers.reduce((a, s) => a + s.unchanged, 0), removed, failed, problem: problems[0] }, settings?.store);
      if (problems.length) {
        const heldBack = failed === 0 && (report.removals ?? []).some((r) => r.heldBack);
        if (heldBack) show({ fill: 'yellow', shape: 'dot', text: say('heldBack', 'run done: __changed__ sent, removals held back (limit)', { changed }) });
        else show({ fill: 'red', shape: 'dot', text: say('failed', 'page __page__: __failed__ device(s) failed', { page: sync.page, failed }) });
        done(new Error(t('errors.publishFailed', '__count__ problem(s) while publishing; first: __first__', { count: problems.length, first: problems[0] })));
        return;
      }
      const run = report.run;
      if (sync.last && run && run.failed > 0) {
        // This page went through, an earlier one of the run did not: the run as a whole did not do what was asked.
        show({ fill: 'red', shape: 'dot', text: say('runFailed', 'run done: __sent__ sent, __failed__ failed', { sent: run.sent, failed: run.failed }) });
        done(new Error(t('errors.runFailed', 'Run __runId__ ended with __failed__ device(s) not published to ACMP (__sent__ sent); first: __first__', { runId: sync.runId, failed: run.failed, sent: run.sent, first: run.firstProblem ?? '' })));
        return;
      }
      if (sync.last) {
        show({
          fill: report.removalSkipped && report.complete === false && sync.mode === 'full' ? 'yellow' : 'green',
          shape: 'dot',
          text: report.removals ? say('runDone', 'run done: __changed__ sent, __removed__ removed', { changed, removed }) : say('runDoneNoRemoval', 'run done: __changed__ sent', { changed }),
        });
      } else {
        show({ fill: 'green', shape: 'ring', text: say('page', 'page __page__: __changed__ sent', { page: sync.page, changed }) });
      }
      done();
    }

    // ------------------------------------------------------------ job status

    async function handleResult(msg: NodeMessageInFlow, send: Send, done: Done) {
      const r = msg.payload as ResultLike;
      const ctx = (msg as { acmp?: { serverId?: unknown; jobId?: unknown; clients?: unknown; callback?: { virtualRouter?: unknown; routingKey?: unknown }; format?: unknown } }).acmp;
      const all = cfg!.servers();
      let server: AcmpServerRoute | undefined;
      const fromJob = ctx && typeof ctx.serverId === 'string' ? ctx.serverId : undefined;
      if (fromJob) server = resolveServers(all, fromJob)[0];
      else if (settings!.serverId !== '*') server = resolveServers(all, settings!.serverId)[0];
      if (!server) {
        done(new Error(t('errors.noJobServer', "Cannot tell which ACMP server job __jobId__ came from: msg.acmp.serverId is missing and the node is set to \"*\"", { jobId: r.jobId })));
        return;
      }
      const clients = Array.isArray(ctx?.clients) ? (ctx!.clients as JobClient[]).filter((c) => c && typeof c.intuneId === 'string') : undefined;
      const route = statusRoute(server, ctx?.callback);
      // Answer in the language the job spoke.
      const format: WireFormat = ctx?.format === 1 || ctx?.format === 2 ? ctx.format : settings!.format;
      const parts = statusFromResult(r, clients);
      show({ fill: 'blue', shape: 'dot', text: say('sendingStatus', 'job __jobId__: sending status', { jobId: r.jobId }) });
      const out = { jobId: r.jobId, serverId: server.serverId, state: parts.state, ...(parts.reason ? { reason: parts.reason } : {}) };
      try {
        const { reply, attempts } = await cfg!.client().call(
          route,
          jobStatusMessage(parts),
          { signal: closer.signal, replyTimeoutMs: settings!.replyTimeoutMs, format },
        );
        if (closing) return done();
        send({ ...msg, topic: 'acmp/jobStatus', payload: { ...out, sent: true, code: reply.code, attempts } } as unknown as NodeMessageInFlow);
        show({ fill: parts.state === 'finished' ? 'green' : 'yellow', shape: 'dot', text: say('statusSent', 'job __jobId__: __state__', { jobId: r.jobId, state: parts.state }) });
        done();
      } catch (err) {
        if ((err as SicsError).code === 'aborted' || closing) return done();
        const e = err as SicsError;
        send({ ...msg, topic: 'acmp/jobStatus', payload: { ...out, sent: false, ...(typeof e.resultCode === 'number' ? { code: e.resultCode } : {}), error: e.message } } as unknown as NodeMessageInFlow);
        show({ fill: 'red', shape: 'dot', text: say('statusFailed', 'job __jobId__: status not sent', { jobId: r.jobId }) });
        done(new Error(t('errors.statusFailed', 'The status of job __jobId__ could not be sent to ACMP server __server__: __message__', { jobId: r.jobId, server: server.serverId, message: e.message })));
      }
    }

    // ------------------------------------------------------------ input

    async function handle(msg: NodeMessageInFlow, send: Send, done: Done) {
      if (closing) return done();
      if (problem || !settings) return done(new Error(t('errors.misconfigured', 'The node is misconfigured: __message__', { message: problem ?? '' })));
      if (!cfg) return done(new Error(t('errors.noConfig', 'No SICS connection (intune-acmp-config) is selected in the node')));
      const m = msg as NodeMessageInFlow & { sync?: unknown; instance?: unknown };
      if (m.sync !== undefined) {
        try {
          readSyncEnvelope(m.sync);
        } catch (err) {
          return done(new Error(`${t('errors.badSync', 'msg.sync is not a sync-run envelope (runId, instance, mode, page, last)')}: ${(err as Error).message}`));
        }
        // A page with a valid envelope gets here only when its payload is not a list of devices (devicePageOf).
        return done(new Error(t('errors.notDevices', 'msg.payload must be a list of devices (a page of a device sync run)')));
      }
      if (isActionResult(msg.payload)) return handleResult(msg, send, done);
      if (msg.topic === 'acmp/resend') {
        const instance = typeof m.instance === 'string' ? m.instance : typeof msg.payload === 'string' ? msg.payload : '';
        if (!instance) return done(new Error(t('errors.resendInstance', 'acmp/resend needs the instance in msg.instance')));
        await getPublisher().reset(instance, resolveServers(cfg.servers(), settings.serverId));
        show({ fill: 'grey', shape: 'dot', text: say('reset', 'forgot what was sent for __instance__', { instance }) });
        send({ ...msg, topic: 'acmp/resend', payload: { instance, reset: true } } as unknown as NodeMessageInFlow);
        return done();
      }
      if (typeof msg.topic === 'string' && msg.topic.endsWith('/summary')) return done(); // run summaries of a source: nothing to do
      done(new Error(t('errors.unknownMessage', "Unrecognised message: expected a page of a device sync run (msg.sync), an action result (msg.payload.jobId) or the topic \"acmp/resend\"")));
    }

    node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
      // The source's flow control (run-progress.ts): this page is queued here until done.
      const sync = (msg as { sync?: unknown }).sync;
      const pg = syncEnvelopeIn(sync);
      if (pg) runProgress.received(pg.runId, node.id, pg.page);
      let finished = false;
      const finish: Done = (err) => {
        if (pg && !finished) {
          finished = true;
          runProgress.finished(pg.runId, node.id, pg.page);
          if (pg.last) runProgress.release(pg.runId, node.id);
        }
        done(err);
      };
      const page = devicePageOf(msg);
      if (page) return submitPage(msg, page, send, finish);
      // Everything else is handled alone, in arrival order.
      pages.submit(
        false,
        () =>
          handle(msg, send, finish).catch((err) => {
            if ((err as SicsError)?.code === 'aborted' || closing) return finish();
            show({ fill: 'red', shape: 'dot', text: say('error', 'error') });
            finish(err instanceof Error ? err : new Error(String(err)));
          }),
        () => undefined,
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      dot.close();
      runProgress.releaseAll(node.id);
      closer.abort();
      unwatch?.();
      // What has started runs to its end (aborted); what has not, does not start.
      pages.stop();
      pages
        .drained()
        .catch(() => undefined)
        .finally(() => publisher?.saveAllChanged())
        .finally(() => {
          dot.clear();
          done();
        });
    });
  }

  registerNode(RED, 'intune-acmp', AcmpSink);
};
