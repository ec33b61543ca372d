/**
 * The skeleton of an Intune source node (intune-devices, intune-compliance):
 * everything but what it reads. Settings and the Intune connection in (a
 * problem with either: red ring, error in the log, every input fails with
 * it), run state in the node's context store, one run at a time
 * (SyncRunner) started by an input message (`msg.mode`, `"cancel"`) or the
 * node's own schedule, the status dot (SourceStatus: progress, the last
 * result, connection health), run failures through done(err) or, for
 * scheduled runs, node.error with a message so Catch nodes see them, and a
 * close handler that stops the run and the schedule.
 *
 * A node file gives the parts that differ (SourceSpec): how it reads its
 * settings, what a run does, how a completed run reads in its status, its
 * schedule. It sits above node-red/ (Node-RED edges), run/ (runs,
 * schedules) and intune/ (the connection), which is why it is a folder of
 * its own: node-red/ imports only shared/.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { Response } from 'express';
import type { RunSummary, SyncMode } from '../contracts';
import type { IntuneConfigNode } from '../intune/intune-config-api';
import type { IntuneConnection } from '../intune/intune-connection';
import { SourceStatus } from '../node-red/source-status';
import { shorten, type IntuneNodeStatus, type StatusMessage, type StatusPart, type StatusTexts } from '../node-red/status-text';
import type { Translate } from '../node-red/i18n';
import { ContextValue, storeInfo } from '../node-red/context-state';
import { asMessage, configNode, contextOf, contextStorageOf, defRecord } from '../node-red/register';
import { SyncRunner, type ActiveRun } from '../run/sync-run';
import { RunSchedule, type ScheduleEntry } from '../run/run-schedule';
import { isAbortError } from '../graph/graph-errors';
import { noteSchedule, recordRun, sourceRunEntry } from '../run/run-history';

/** The settings every source has. */
export interface SourceSettingsBase {
  /** Instance name in msg.sync ('' = the tenant id). */
  instance: string;
  /** Context store of the run state ('' = default store). */
  store: string;
}

/** What a source's own parts get to work with. */
export interface SourceContext<S, State> {
  node: Node;
  settings: S;
  /** The run state in the chosen context store. */
  state: ContextValue<State>;
  status: SourceStatus;
  /** The live Intune connection (throws its configuration problem). */
  connection(): IntuneConnection;
}

export interface SourceSpec<T, M extends SyncMode, S extends SourceSettingsBase, State> {
  /** Message topic of the pages (and of errors of scheduled runs). */
  topic: string;
  /** Prefix of run ids. */
  idPrefix: string;
  /** Fixed page size (SyncRunner's fillPagesTo). */
  fillPagesTo?: number;
  /** Context key of the run state (no '.'). */
  stateKey: string;
  /** What the state is, for the unknown-store warning ("the watermark"). */
  stateWhat: string;
  /** How a failed run's error starts ("Device run"). */
  runName: string;
  texts: StatusTexts;
  t: Translate;
  /** A Graph failure in words an admin can act on (sourceExplainer). */
  explain(err: unknown): string;
  /** The node's settings; throws a settings error (its message is the problem). */
  parse(def: Record<string, unknown>): S;
  /** Checks needing the settings and the connection; throws the problem. */
  check?(settings: S): void;
  /** The mode `msg.mode` asks for, or the error for done(). Never called with "cancel". */
  modeOf(raw: unknown, settings: S): M | Error;
  /** English of warn.overlap (placeholders: mode, trigger, runId, active). */
  overlap: string;
  /** Status text while a run starts. */
  starting(mode: M): StatusMessage;
  /** Status of a completed run, without the memory note (the skeleton appends it). */
  completed(sum: RunSummary): { fill: 'green' | 'yellow'; parts: StatusPart[] };
  /** The scheduled kinds of run, given the saved state; none (or only everyMs 0) = no schedule. */
  schedule(settings: S, saved: State | undefined, now: number): Array<ScheduleEntry<M>>;
  /** One run: reads, hands pages to run.page(), keeps run.counts and the state up to date. */
  work(run: ActiveRun<T>, ctx: SourceContext<S, State>): Promise<void>;
}

/** Builds the node: call in the node's constructor after RED.nodes.createNode. */
export function sourceNode<T, M extends SyncMode, S extends SourceSettingsBase, State>(
  RED: NodeAPI,
  node: Node,
  def: NodeDef & { intune?: string },
  spec: SourceSpec<T, M, S, State>,
): void {
  const { texts, t } = spec;
  let settings: S | undefined;
  let problem: Error | undefined;
  try {
    settings = spec.parse(defRecord(def));
  } catch (err) {
    problem = err as Error;
  }
  const cfg = configNode<IntuneConfigNode>(RED, def.intune);
  if (!problem && !cfg) problem = new Error('No Intune connection is selected: pick an intune-config node in this node\u2019s settings');
  if (!problem && spec.check) {
    try {
      spec.check(settings!);
    } catch (err) {
      problem = err as Error;
    }
  }

  const store = storeInfo(contextStorageOf(RED), settings?.store);
  if (store.unknown) node.warn(`The context store "${settings?.store}" does not exist; ${spec.stateWhat} is kept in the default store "${store.name}"`);
  const state = new ContextValue<State>(contextOf(node), spec.stateKey, store.unknown ? undefined : settings?.store || undefined);

  const status = new SourceStatus(node, texts, store.persistent, () => runner.busy);

  const runner = new SyncRunner<T>({
    topic: spec.topic,
    idPrefix: spec.idPrefix,
    ...(spec.fillPagesTo ? { fillPagesTo: spec.fillPagesTo } : {}),
    send: (m) => node.send([asMessage(m), null]),
    sendSummary: (m) => node.send([null, asMessage(m)]),
  });

  if (problem) status.problem(problem);

  const unwatch = !problem && cfg?.board ? status.follow(cfg.board) : undefined;
  if (!problem) status.idle();

  const ctx: SourceContext<S, State> = { node, settings: settings!, state, status, connection: () => cfg!.connection() };

  function instanceName(): string {
    if (settings!.instance) return settings!.instance;
    try {
      return cfg!.connection().settings.tenantId;
    } catch {
      return cfg?.id ?? node.id;
    }
  }

  function resultStatus(sum: RunSummary): IntuneNodeStatus {
    const time = sum.finishedAt.slice(11, 16);
    if (sum.result === 'completed') {
      const { fill, parts } = spec.completed(sum);
      return texts.status(fill, 'dot', ...parts, ...status.memoryNote);
    }
    if (sum.result === 'aborted') return texts.status('yellow', 'ring', texts.msg('status.cancelled', 'cancelled · __time__ UTC', { time }), ...status.memoryNote);
    // The error itself stays in the runtime's language, as in the log.
    return texts.status('red', 'ring', texts.msg('status.failed', 'failed: __error__', { error: shorten(sum.stats.error ?? '', 70) }));
  }

  function runError(sum: RunSummary & { cause?: unknown }): Error {
    const err = new Error(`${spec.runName} ${sum.runId} failed: ${spec.explain(sum.cause ?? sum.stats.error)}`);
    (err as Error & { cause?: unknown }).cause = sum.cause;
    return err;
  }

  let schedule: RunSchedule<M> | undefined;

  /** Starts a run; undefined when one is running (after warning). */
  function startRun(mode: M, trigger: 'message' | 'schedule') {
    const started = runner.start(mode, instanceName(), trigger, (run) => spec.work(run, ctx), () => {
      status.show(texts.status('blue', 'dot', spec.starting(mode)));
    });
    if (!started) {
      const active = runner.active!;
      node.warn(t('warn.overlap', spec.overlap, { mode, trigger, runId: active.runId, active: active.mode }));
      return undefined;
    }
    started.finished.then((sum) => {
      void recordRun(node, sourceRunEntry(spec.topic, sum), store.unknown ? undefined : settings?.store);
      if (status.isClosed) return;
      status.result(resultStatus(sum));
      if (sum.result === 'completed' && schedule) schedule.ranAt(sum.mode as M, started.run.startedMs);
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
    const mode = spec.modeOf(raw, settings!);
    if (mode instanceof Error) {
      done(mode);
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
  const s = settings;
  if (!problem && s && spec.schedule(s, undefined, Date.now()).some((e) => e.everyMs > 0)) {
    state
      .get()
      .catch(() => undefined)
      .then((saved) => {
        if (status.isClosed) return;
        schedule = new RunSchedule<M>(spec.schedule(s, saved, Date.now()), (mode) => {
          const started = startRun(mode, 'schedule');
          started?.finished.then((sum) => {
            if (sum.result !== 'failed' || status.isClosed) return;
            const err = runError(sum);
            // With a message, Catch nodes see it: there is no input message for a scheduled run.
            node.error(err, asMessage({ topic: spec.topic, payload: sum, _msgid: RED.util.generateId() }));
          });
        });
        schedule.start();
        noteSchedule(node, () => schedule?.next());
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

/**
 * A Graph failure in words an admin can act on: a 403 says which
 * application permissions the source needs (`grant`: "grant the app … with
 * admin consent").
 */
export function sourceExplainer(grant: string): (err: unknown) => string {
  return (err) => {
    const e = err as { message?: string; status?: number };
    const msg = e?.message ?? String(err);
    if (e?.status === 403) return `${msg} — ${grant}`;
    return msg;
  };
}

/**
 * An editor endpoint of a source that reads the tenant through a deployed
 * connection (the dialog's Preview, the policy picker): 400 noConnection
 * when the id names no deployed intune-config (`missing` says what the
 * endpoint needs it for), 400 connection when it is not usable, the work
 * stopped when the editor goes away, 502 graph (in plain words) when
 * Graph fails.
 */
export async function withDeployedConnection(
  RED: NodeAPI,
  id: unknown,
  res: Response,
  opts: { missing: string; explain: (err: unknown) => string },
  work: (conn: IntuneConnection, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const cfg = configNode<IntuneConfigNode>(RED, id);
  if (!cfg || typeof cfg.connection !== 'function') {
    res.status(400).json({ ok: false, code: 'noConnection', message: opts.missing });
    return;
  }
  let conn: IntuneConnection;
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
    await work(conn, abort.signal);
  } catch (err) {
    if (abort.signal.aborted || isAbortError(err)) return;
    res.status(502).json({ ok: false, code: 'graph', message: opts.explain(err) });
  }
}
