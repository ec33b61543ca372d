/**
 * The way of one action request through an `intune-action` node, from
 * `msg.payload` to its outcome: the report that goes out, what the audit log
 * says about it, and the error Catch nodes see. The node only carries the
 * outcome out (messages, status dot, done) — it decides nothing here.
 *
 * Replay protection, in this order:
 * 1. a job id that is running in this node right now is refused
 *    (`alreadyRunning`), decided before the first await, so two messages
 *    arriving together cannot both start;
 * 2. a job id in the journal (action-journal.ts) is not run again: the same
 *    request answers with its earlier result (`replayed`), another request
 *    under that id is refused (`jobIdReused`), one that started and never
 *    finished is refused (`interrupted`: some devices may have been actioned);
 * 3. a journal that cannot be read runs nothing (a wipe must never run twice).
 * The journal entry is written right before the first write to Intune and
 * completed with the report after it — also when nothing was written (a
 * replay then gets the same answer), but not when the node stopped before
 * anything was written (a redelivery may run it then).
 *
 * A request without a job id (the node made one up) has no replay protection.
 */
import type { RequestStats } from '../graph/graph-client';
import type { AuditContext } from './action-audit';
import type { ActionMemory, JournalEntry } from './action-journal';
import { fingerprintOf } from './action-journal';
import type { ActionSettings } from './action-settings';
import { ActionRequestError, checkPolicy, checkRequest, echoOf, type CheckedRequest, type RequestEcho } from './action-request';
import {
  dryRunReport,
  executeAction,
  failedReport,
  rejectedReport,
  type ActionReport,
  type BatchClient,
  type DeviceResult,
  type Progress,
} from './action-executor';

export type ActionError = Error & { code?: string };

/**
 * How a request ended:
 * - refused: the guards, the payload, or replay protection said no (nothing sent);
 * - unreadable: the journal could not be read (nothing sent);
 * - replayed: the job ran before; its earlier result is the answer;
 * - dryRun: the guards passed, nothing was sent;
 * - unsent: there was no connection to send with;
 * - executed: it ran (in full, in part, or stopped by the node closing);
 * - broken: it stopped with an error that is not a device's (journal, ledger, a bug).
 */
export type JobKind = 'refused' | 'unreadable' | 'replayed' | 'dryRun' | 'unsent' | 'executed' | 'broken';

export interface JobOutcome {
  kind: JobKind;
  /** The result message payload. */
  report: ActionReport;
  /** What the audit log says; undefined: not audited (nothing is known to have been asked of Intune). */
  audit?: AuditContext;
  /** For done(err); undefined when every device got the action (or a dry run). */
  error?: ActionError;
}

export interface JobHooks {
  /** The Graph client to send with; throws when there is no connection. */
  connect(): BatchClient;
  signal?: AbortSignal;
  /** Right before the devices are checked and sent to: the request is now running. */
  onExecute?(req: CheckedRequest, stats: RequestStats): void;
  onProgress?(p: Progress): void;
  /** One device's final outcome, while the request runs. */
  onDevice?(r: DeviceResult, req: CheckedRequest): void;
}

/** What the node was configured with: its settings, or why they could not be read. */
export type NodeSettings = { settings: ActionSettings; problem?: undefined } | { settings?: undefined; problem: string };

/**
 * The error for Catch nodes when any device did not get the action (failed, notFound,
 * unsupported, or rejected by the notification limit), also when others did: the result
 * message has already gone out with every device's outcome (so a flow reporting back to ACMP
 * gets it), and the error tells whoever watches with a Catch node that the request was not
 * carried out in full. undefined when every device accepted it.
 */
export function shortfallError(report: ActionReport): ActionError | undefined {
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
  const e: ActionError = new Error(
    `${report.action}: ${missed.length} of ${report.results.length} device(s) not carried out (job ${report.jobId}; ${parts.join(', ')}; ${c.accepted} accepted): ${first.deviceId}: ${first.error ?? first.outcome}`,
  );
  e.code = report.status;
  return e;
}

/**
 * What a journal entry for the request's job id means: undefined = run it; a refusal
 * (another request under this id, or one that never finished); or the earlier report.
 */
export function replayDecision(
  req: Pick<CheckedRequest, 'jobId' | 'action' | 'deviceIds'>,
  entry: JournalEntry<ActionReport> | undefined,
): undefined | { refuse: ActionRequestError } | { replay: ActionReport } {
  if (!entry) return undefined;
  if (entry.fingerprint !== fingerprintOf(req.action, req.deviceIds)) {
    return {
      refuse: new ActionRequestError(
        'jobIdReused',
        `Job ${req.jobId} was already used on ${new Date(entry.at).toISOString()} for a different request (${entry.action} on ${entry.devices} device(s)); use a new job id`,
      ),
    };
  }
  if (entry.state === 'started' || !entry.result) {
    return {
      refuse: new ActionRequestError(
        'interrupted',
        `Job ${req.jobId} was started on ${new Date(entry.at).toISOString()} but never finished (Node-RED stopped while it ran); some devices may have been actioned, so it is not run again – check the devices in Intune and send a new job for the rest`,
      ),
    };
  }
  return { replay: { ...entry.result, replayed: true } };
}

/** Carries the requests of one node: its journal, and the job ids running in it now. */
export class ActionJobs {
  private readonly running = new Set<string>();

  constructor(
    private readonly memory: ActionMemory<ActionReport>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Checks and (unless refused, replayed or a dry run) executes the request in `payload`. Never rejects for a request's sake. */
  async handle(payload: unknown, node: NodeSettings, hooks: JobHooks): Promise<JobOutcome> {
    const startedAt = this.now();
    const echo = echoOf(payload);
    let req: CheckedRequest;
    try {
      if (node.problem !== undefined || !node.settings) throw new ActionRequestError('misconfigured', `The node is misconfigured: ${node.problem}`);
      req = checkRequest(payload);
      checkPolicy(req, node.settings.policy);
    } catch (err) {
      return this.refused(echo, err as Error, startedAt);
    }
    if (!req.jobIdGiven) return this.proceed(req, echo, node.settings, hooks, startedAt);
    // Marked before the first await: a second message with the same job id arriving meanwhile is refused.
    if (this.running.has(req.jobId)) {
      return this.refused(echo, new ActionRequestError('alreadyRunning', `Job ${req.jobId} is being executed right now; it is not started a second time`), startedAt);
    }
    this.running.add(req.jobId);
    try {
      return await this.proceed(req, echo, node.settings, hooks, startedAt);
    } finally {
      this.running.delete(req.jobId);
    }
  }

  private refused(echo: RequestEcho, err: ActionRequestError | Error, startedAt: number): JobOutcome {
    const code = err instanceof ActionRequestError ? err.code : undefined;
    const report = rejectedReport(echo, { message: err.message, code }, startedAt, this.now());
    const error: ActionError = new Error(`Action request refused: ${err.message}`);
    if (code) error.code = code;
    return { kind: 'refused', report, audit: { rejected: true }, error };
  }

  private async proceed(req: CheckedRequest, echo: RequestEcho, conf: ActionSettings, hooks: JobHooks, startedAt: number): Promise<JobOutcome> {
    // replay protection
    if (req.jobIdGiven) {
      let entry;
      try {
        entry = await this.memory.lookup(req.jobId);
      } catch (err) {
        // Without the journal a replay cannot be recognised: do not run (a wipe must never run twice).
        const report = failedReport(req, `The journal of executed jobs cannot be read (${(err as Error).message}); nothing was sent`, startedAt, this.now());
        return { kind: 'unreadable', report, error: new Error(report.error) };
      }
      const decision = replayDecision(req, entry);
      if (decision && 'refuse' in decision) return this.refused(echo, decision.refuse, startedAt);
      if (decision) {
        const earlier = decision.replay;
        const error: ActionError = new Error(
          `Action request refused: job ${req.jobId} was already executed on ${earlier.startedAt} (${earlier.status}); not executed again, the earlier result was sent again`,
        );
        error.code = 'replayed';
        return { kind: 'replayed', report: earlier, audit: { replayed: true }, error };
      }
    }

    // dry run: guards passed, nothing is sent
    if (conf.dryRun || req.dryRun) {
      return { kind: 'dryRun', report: dryRunReport(req, startedAt, this.now()), audit: { dryRun: true, notification: req.notification } };
    }

    // connection
    let graph: BatchClient;
    try {
      graph = hooks.connect();
    } catch (err) {
      const report = failedReport(req, `Nothing was sent: ${(err as Error).message}`, startedAt, this.now());
      return { kind: 'unsent', report, audit: { notification: req.notification }, error: new Error(report.error) };
    }

    const stats: RequestStats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
    hooks.onExecute?.(req, stats);
    let wrote = false;
    try {
      const meta = { fingerprint: fingerprintOf(req.action, req.deviceIds), action: req.action, devices: req.deviceIds.length, requestedBy: req.requestedBy };
      const report = await executeAction(req, {
        graph,
        signal: hooks.signal,
        stats,
        followUp: conf.followUp,
        notifications: this.memory,
        beforeWrite: async () => {
          wrote = true;
          if (req.jobIdGiven) await this.memory.start(req.jobId, meta);
        },
        onProgress: hooks.onProgress,
        onDevice: hooks.onDevice && ((r) => hooks.onDevice!(r, req)),
      });
      // Remember the outcome: also when nothing was written (a replay then gets the same answer),
      // but not when the node stopped before anything was written (a redelivery may run it then).
      if (req.jobIdGiven && (wrote || !report.aborted)) {
        if (!wrote) await this.memory.start(req.jobId, meta);
        await this.memory.finish(req.jobId, report);
      }
      return { kind: 'executed', report, audit: { notification: req.notification }, error: shortfallError(report) };
    } catch (err) {
      // Not a per-device failure (those are in the report): the journal or the ledger failed, or a bug.
      const report = failedReport(
        req,
        `The request stopped with an error${wrote ? ' after sending had begun; some devices may have been actioned – check them in Intune' : '; nothing was sent'}: ${(err as Error)?.message ?? String(err)}`,
        startedAt,
        this.now(),
      );
      return { kind: 'broken', report, audit: { notification: req.notification }, error: new Error(report.error) };
    }
  }
}
