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
import { ActionMemory } from '../lib/actions/action-journal';
import { ActionJobs } from '../lib/actions/action-job';
import type { ActionReport, DeviceResult, Progress } from '../lib/actions/action-executor';
import { actionJobEntry, recordRun } from '../lib/run/run-history';

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
    const actions = new ActionJobs(memory);
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

    function audit(report: ActionReport, extra: AuditContext) {
      for (const line of auditLines(report, extra)) node.log(line);
    }

    // ------------------------------------------------------------ input

    async function handle(msg: NodeMessageInFlow, send: Send, done: Done): Promise<void> {
      // The job of a request that runs (for the status dot and for close to wait on).
      let job: Job | undefined;
      let release: (() => void) | undefined;
      try {
        const outcome = await actions.handle(msg.payload, settings ? { settings } : { problem: settingsProblem ?? '' }, {
          connect: () => {
            if (!cfg) throw new Error('no Intune connection (intune-config) is selected in the node');
            return cfg.connection().graph;
          },
          signal: closer.signal,
          onExecute: (req, stats) => {
            job = {
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
          },
          onProgress: (p) => {
            if (job) job.progress = p;
          },
          onDevice: (r, req) => {
            if (settings?.perDevice && !closing) send([null, deviceMessage(msg, req, r, req.deviceIds.length)]);
          },
        });
        if (outcome.audit) audit(outcome.report, outcome.audit);
        void recordRun(node, actionJobEntry(outcome.kind, outcome.report, job?.stats.requests), settings?.store);
        if (job) jobs.delete(job);
        // A request that ran while the node was closing ends quietly: its flow is gone.
        if (closing && outcome.kind === 'executed') return done();
        emit(send, msg, outcome.report, outcome.kind === 'executed');
        showResult(outcome.report, outcome.kind === 'replayed');
        if (outcome.error) done(outcome.error);
        else done();
      } finally {
        if (job) {
          jobs.delete(job);
          if (!jobs.size && ticker) {
            clearInterval(ticker);
            ticker = undefined;
          }
          release?.();
          render();
        }
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
