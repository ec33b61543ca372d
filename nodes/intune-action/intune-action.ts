/**
 * intune-action: the executor. Takes an action request in `msg.payload`
 * (notify / retire / wipe / lock / sync for one or many devices), checks it
 * against the node's guards, sends it to Intune through the shared Graph
 * client of its `intune-config`, and answers with one result message
 * (output 1) and, when enabled, one message per device (output 2).
 *
 * Errors: a refused request (guards, malformed payload, replayed job id),
 * a request that could not run, and a request in which any device did not
 * get the action (failed, notFound, unsupported, rejected) are ALSO reported
 * with done(err), so Catch nodes see them, after the result message went
 * out: a flow that reports back to ACMP always gets its result, whatever
 * happened, and the devices that did get the action stay in it (a partial
 * result is a result message plus an error, not an error instead of it).
 */
import type { NodeAPI, Node, NodeDef, NodeMessageInFlow } from 'node-red';
import type { ActionName } from '../lib/contracts';
import type { IntuneConfigNode } from '../lib/intune/intune-config-api';
import { healthPart } from '../lib/node-red/config-health';
import { StatusDot } from '../lib/node-red/status-dot';
import { configNode, contextOf, contextStorageOf, registerNode } from '../lib/node-red/register';
import { StatusTexts, type IntuneNodeStatus, type StatusParam } from '../lib/node-red/status-text';
import type { RequestStats } from '../lib/graph/graph-client';
import { storeInfo } from '../lib/node-red/context-state';
import { parseActionSettings, ACTION_DEFAULTS, type ActionNodeProperties, type ActionSettings } from '../lib/actions/action-settings';
import { auditLines, type AuditContext } from '../lib/actions/action-audit';
import {
  ActionRequestError,
  checkPolicy,
  checkRequest,
  echoOf,
  type CheckedRequest,
  type RequestEcho,
} from '../lib/actions/action-request';
import { ActionMemory, fingerprintOf } from '../lib/actions/action-journal';
import {
  dryRunReport,
  executeAction,
  failedReport,
  rejectedReport,
  type ActionReport,
  type DeviceResult,
  type Progress,
} from '../lib/actions/action-executor';

interface IntuneActionDef extends NodeDef, ActionNodeProperties {
  intune: string;
}

type Send = (msg: NodeMessageInFlow | Array<NodeMessageInFlow | null>) => void;
type Done = (err?: Error) => void;

interface Job {
  action: ActionName;
  progress: Progress;
  stats: RequestStats;
  lastThrottled: number;
  throttledAt: number;
  finished: Promise<void>;
}

const STATUS_TICK_MS = 500;
/** How long the status stays "throttled" after the last 429. */
const THROTTLED_SHOWN_MS = 3000;

export = function register(RED: NodeAPI): void {
  const texts = new StatusTexts(RED, 'intune-action');
  const say = (key: string, en: string, params?: Record<string, StatusParam>) => texts.msg(`status.${key}`, en, params);

  function IntuneAction(this: Node, def: IntuneActionDef) {
    RED.nodes.createNode(this, def);
    const node = this;

    let settings: ActionSettings | undefined;
    let settingsProblem: string | undefined;
    try {
      settings = parseActionSettings(def);
    } catch (err) {
      settingsProblem = (err as Error).message;
      node.error(`intune-action is misconfigured: ${settingsProblem}`);
    }

    const cfg = configNode<IntuneConfigNode>(RED, def.intune);
    const dot = new StatusDot(node, texts);
    const closer = new AbortController();
    let closing = false;
    const jobs = new Set<Job>();
    const running = new Set<string>();
    let last: IntuneNodeStatus | undefined;
    let ticker: NodeJS.Timeout | undefined;

    const store = storeInfo(contextStorageOf(RED), settings?.store);
    const memory = new ActionMemory<ActionReport>({
      context: contextOf(node),
      // Intune counts notifications per device, whoever sends: one ledger per connection.
      ledgerContext: cfg ? contextOf(cfg) : undefined,
      store: settings?.store || undefined,
      retentionMs: settings?.retentionMs ?? ACTION_DEFAULTS.retentionHours * 3_600_000,
    });
    if (!store.persistent) {
      node.warn(
        `Executed job ids are remembered in the non-persistent context store "${store.name}": after a restart a replayed job would run again. Choose a persistent store (e.g. localfilesystem) in the node.`,
      );
    } else if (store.unknown) {
      node.warn(`The context store "${settings?.store}" does not exist; the default store "${store.name}" is used`);
    }

    // ------------------------------------------------------------ status

    function idleStatus(): IntuneNodeStatus {
      const health = dot.health;
      if (settingsProblem) return texts.status('red', 'ring', say('misconfigured', 'misconfigured'));
      if (!cfg) return texts.status('red', 'ring', say('noConfig', 'no Intune connection selected'));
      if (health && health.level === 'error') return texts.status('red', 'ring', healthPart(health));
      // A connection warning (e.g. the certificate expires soon) shows on the node admins look at.
      if (health && health.level === 'warn') return texts.status('yellow', 'ring', healthPart(health));
      if (settings?.dryRun) return texts.status('yellow', 'ring', say('idleDryRun', 'idle (dry run)'));
      if (!store.persistent) return texts.status('yellow', 'ring', say('idleMemory', 'idle (job memory not persistent: __store__)', { store: store.name }));
      return texts.status('grey', 'ring', say('idle', 'idle'));
    }

    function render() {
      if (dot.isClosed) return;
      if (jobs.size) {
        let done = 0;
        let total = 0;
        let throttled = false;
        let phase: Progress['phase'] = 'sending';
        let action: ActionName | undefined;
        const now = Date.now();
        for (const j of jobs) {
          if (j.stats.throttled > j.lastThrottled) {
            j.lastThrottled = j.stats.throttled;
            j.throttledAt = now;
          }
          if (now - j.throttledAt < THROTTLED_SHOWN_MS) throttled = true;
          done += j.progress.done;
          total += j.progress.total;
          phase = j.progress.phase;
          action = j.action;
        }
        const params = { done, total, action: jobs.size === 1 ? (action ?? '') : say('jobs', '__jobs__ jobs', { jobs: jobs.size }) };
        if (throttled) dot.paint('yellow', 'dot', say('throttled', 'throttled: __done__ of __total__', params));
        else if (phase === 'following') dot.paint('blue', 'ring', say('following', 'following up: __done__ of __total__ done', params));
        else if (phase === 'checking') dot.paint('blue', 'ring', say('checking', '__action__: checking __done__ of __total__', params));
        else dot.paint('blue', 'dot', say('running', '__action__: __done__ of __total__', params));
        return;
      }
      dot.show(last ?? idleStatus());
    }

    function showResult(report: ActionReport, replayed = false) {
      const c = report.counts;
      const params = { accepted: c.accepted, failed: c.failed, notFound: c.notFound, unsupported: c.unsupported, rejected: c.rejected, total: report.results.length, jobId: report.jobId };
      if (replayed) last = texts.status('yellow', 'ring', say('replayed', 'replayed job __jobId__', { jobId: params.jobId }));
      else if (report.dryRun) last = texts.status('yellow', 'ring', say('dryRun', 'dry run: __accepted__ of __total__ would be sent', { accepted: params.accepted, total: params.total }));
      else if (report.status === 'finished') last = texts.status('green', 'dot', say('finished', 'finished: __accepted__ of __total__ accepted', { accepted: params.accepted, total: params.total }));
      else if (report.status === 'partial') last = texts.status('yellow', 'dot', say('partial', 'partial: __accepted__ of __total__ accepted', { accepted: params.accepted, total: params.total }));
      else if (report.status === 'rejected') last = texts.status('red', 'ring', say('rejected', 'rejected: __reason__', { reason: report.code ?? '' }));
      else last = texts.status('red', 'dot', say('failed', 'failed: __failed__ failed, __notFound__ not found, __unsupported__ unsupported', { failed: params.failed, notFound: params.notFound, unsupported: params.unsupported }));
      render();
    }

    const unwatch = dot.watch(cfg?.board, render);
    render();

    // ------------------------------------------------------------ output

    function carry(msg: NodeMessageInFlow): Record<string, unknown> {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(msg)) if (k !== 'payload' && k !== '_msgid') out[k] = v;
      return out;
    }

    function deviceMessage(msg: NodeMessageInFlow, report: Pick<ActionReport, 'jobId' | 'action' | 'requestedBy'>, r: DeviceResult, total: number, extra: Record<string, unknown> = {}) {
      return {
        ...carry(msg),
        topic: 'intune/action/device',
        payload: { jobId: report.jobId, action: report.action, requestedBy: report.requestedBy, total, ...r, ...extra },
      } as NodeMessageInFlow;
    }

    function emit(send: Send, msg: NodeMessageInFlow, report: ActionReport, perDeviceAlreadySent: boolean) {
      if (closing) return;
      if (settings?.perDevice && !perDeviceAlreadySent) {
        const extra = report.replayed ? { replayed: true } : report.dryRun ? { dryRun: true } : {};
        for (const r of report.results) send([null, deviceMessage(msg, report, r, report.results.length, extra)]);
      }
      msg.payload = report;
      if (msg.topic === undefined || msg.topic === '') msg.topic = 'intune/action';
      send(settings?.perDevice ? [msg, null] : msg);
    }

    /**
     * The error for Catch nodes when any device did not get the action (failed, notFound,
     * unsupported, or rejected by the notification limit), also when others did: the result
     * message has already gone out with every device's outcome (so a flow reporting back to ACMP
     * gets it), and the error tells whoever watches with a Catch node that the request was not
     * carried out in full. undefined when every device accepted it.
     */
    function shortfallError(report: ActionReport): (Error & { code?: string }) | undefined {
      const missed = report.results.filter((r) => r.outcome !== 'accepted');
      if (!missed.length) return undefined;
      const c = report.counts;
      const parts = [
        c.failed ? `${c.failed} failed` : '',
        c.notFound ? `${c.notFound} not found` : '',
        c.unsupported ? `${c.unsupported} unsupported` : '',
        c.rejected ? `${c.rejected} rejected` : '',
      ].filter(Boolean);
      const first = missed[0];
      const e = new Error(
        `${report.action}: ${missed.length} of ${report.results.length} device(s) not carried out (job ${report.jobId}; ${parts.join(', ')}; ${c.accepted} accepted): ${first.deviceId}: ${first.error ?? first.outcome}`,
      ) as Error & { code?: string };
      e.code = report.status;
      return e;
    }

    function audit(report: ActionReport, extra: AuditContext) {
      for (const line of auditLines(report, extra)) node.log(line);
    }

    function reject(send: Send, done: Done, msg: NodeMessageInFlow, echo: RequestEcho, err: ActionRequestError | Error, startedAt: number) {
      const code = err instanceof ActionRequestError ? err.code : undefined;
      const report = rejectedReport(echo, { message: err.message, code }, startedAt, Date.now());
      audit(report, { rejected: true });
      emit(send, msg, report, false);
      showResult(report);
      const e = new Error(`Action request refused: ${err.message}`) as Error & { code?: string };
      if (code) e.code = code;
      done(e);
    }

    // ------------------------------------------------------------ input

    async function handle(msg: NodeMessageInFlow, send: Send, done: Done): Promise<void> {
      const startedAt = Date.now();
      const echo = echoOf(msg.payload);
      let req: CheckedRequest;
      try {
        if (settingsProblem || !settings) throw new ActionRequestError('misconfigured', `The node is misconfigured: ${settingsProblem}`);
        req = checkRequest(msg.payload);
        checkPolicy(req, settings.policy);
      } catch (err) {
        reject(send, done, msg, echo, err as Error, startedAt);
        return;
      }

      if (req.jobIdGiven) {
        // Marked before the first await: a second message with the same job id arriving meanwhile is refused.
        if (running.has(req.jobId)) {
          reject(send, done, msg, echo, new ActionRequestError('alreadyRunning', `Job ${req.jobId} is being executed right now; it is not started a second time`), startedAt);
          return;
        }
        running.add(req.jobId);
      }
      try {
        await proceed(msg, send, done, req, echo, settings, startedAt);
      } finally {
        if (req.jobIdGiven) running.delete(req.jobId);
      }
    }

    async function proceed(msg: NodeMessageInFlow, send: Send, done: Done, req: CheckedRequest, echo: RequestEcho, conf: ActionSettings, startedAt: number): Promise<void> {
      // replay protection
      if (req.jobIdGiven) {
        let entry;
        try {
          entry = await memory.lookup(req.jobId);
        } catch (err) {
          // Without the journal a replay cannot be recognised: do not run (a wipe must never run twice).
          const report = failedReport(req, `The journal of executed jobs cannot be read (${(err as Error).message}); nothing was sent`, startedAt, Date.now());
          emit(send, msg, report, false);
          showResult(report);
          done(new Error(report.error));
          return;
        }
        if (entry) {
          if (entry.fingerprint !== fingerprintOf(req.action, req.deviceIds)) {
            reject(
              send,
              done,
              msg,
              echo,
              new ActionRequestError('jobIdReused', `Job ${req.jobId} was already used on ${new Date(entry.at).toISOString()} for a different request (${entry.action} on ${entry.devices} device(s)); use a new job id`),
              startedAt,
            );
            return;
          }
          if (entry.state === 'started' || !entry.result) {
            reject(
              send,
              done,
              msg,
              echo,
              new ActionRequestError(
                'interrupted',
                `Job ${req.jobId} was started on ${new Date(entry.at).toISOString()} but never finished (Node-RED stopped while it ran); some devices may have been actioned, so it is not run again – check the devices in Intune and send a new job for the rest`,
              ),
              startedAt,
            );
            return;
          }
          const earlier: ActionReport = { ...entry.result, replayed: true };
          audit(earlier, { replayed: true });
          emit(send, msg, earlier, false);
          showResult(earlier, true);
          const e = new Error(`Action request refused: job ${req.jobId} was already executed on ${earlier.startedAt} (${earlier.status}); not executed again, the earlier result was sent again`) as Error & { code?: string };
          e.code = 'replayed';
          done(e);
          return;
        }
      }

      // dry run: guards passed, nothing is sent
      if (conf.dryRun || req.dryRun) {
        const report = dryRunReport(req, startedAt, Date.now());
        audit(report, { dryRun: true, notification: req.notification });
        emit(send, msg, report, false);
        showResult(report);
        done();
        return;
      }

      // connection
      let graph;
      try {
        if (!cfg) throw new Error('no Intune connection (intune-config) is selected in the node');
        graph = cfg.connection().graph;
      } catch (err) {
        const report = failedReport(req, `Nothing was sent: ${(err as Error).message}`, startedAt, Date.now());
        audit(report, { notification: req.notification });
        emit(send, msg, report, false);
        showResult(report);
        done(new Error(report.error));
        return;
      }

      const stats: RequestStats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
      let release!: () => void;
      const job: Job = {
        action: req.action,
        progress: { phase: 'sending', done: 0, total: req.deviceIds.length },
        stats,
        lastThrottled: 0,
        throttledAt: 0,
        finished: new Promise<void>((r) => (release = r)),
      };
      jobs.add(job);
      if (!ticker) ticker = setInterval(render, STATUS_TICK_MS);
      render();

      let wrote = false;
      try {
        const meta = { fingerprint: fingerprintOf(req.action, req.deviceIds), action: req.action, devices: req.deviceIds.length, requestedBy: req.requestedBy };
        const report = await executeAction(req, {
          graph,
          signal: closer.signal,
          stats,
          followUp: conf.followUp,
          notifications: memory,
          beforeWrite: async () => {
            wrote = true;
            if (req.jobIdGiven) await memory.start(req.jobId, meta);
          },
          onProgress: (p) => {
            job.progress = p;
          },
          onDevice: (r) => {
            if (conf.perDevice && !closing) send([null, deviceMessage(msg, req, r, req.deviceIds.length)]);
          },
        });
        // Remember the outcome: also when nothing was written (a replay then gets the same answer),
        // but not when the node stopped before anything was written (a redelivery may run it then).
        if (req.jobIdGiven && (wrote || !report.aborted)) {
          if (!wrote) await memory.start(req.jobId, meta);
          await memory.finish(req.jobId, report);
        }
        audit(report, { notification: req.notification });
        if (closing) return done();
        emit(send, msg, report, true);
        jobs.delete(job);
        showResult(report);
        const err = shortfallError(report);
        if (err) done(err);
        else done();
      } catch (err) {
        // Not a per-device failure (those are in the report): the journal or the ledger failed, or a bug.
        const report = failedReport(
          req,
          `The request stopped with an error${wrote ? ' after sending had begun; some devices may have been actioned – check them in Intune' : '; nothing was sent'}: ${(err as Error)?.message ?? String(err)}`,
          startedAt,
          Date.now(),
        );
        audit(report, { notification: req.notification });
        jobs.delete(job);
        if (!closing) {
          emit(send, msg, report, false);
          showResult(report);
        }
        done(new Error(report.error));
      } finally {
        jobs.delete(job);
        if (!jobs.size && ticker) {
          clearInterval(ticker);
          ticker = undefined;
        }
        release();
        render();
      }
    }

    node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
      handle(msg, send, done).catch((err) => {
        dot.paint('red', 'dot', say('error', 'error'));
        done(err instanceof Error ? err : new Error(String(err)));
      });
    });

    node.on('close', (removed: boolean, done: () => void) => {
      closing = true;
      dot.close();
      closer.abort();
      if (ticker) clearInterval(ticker);
      ticker = undefined;
      unwatch?.();
      const waits = [...jobs].map((j) => j.finished);
      Promise.allSettled(waits).then(() => {
        dot.clear();
        done();
      });
    });
  }

  registerNode(RED, 'intune-action', IntuneAction);
};
