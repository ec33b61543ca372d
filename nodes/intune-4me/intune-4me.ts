/**
 * intune-4me: writes the sync runs of the Intune sources into 4me.
 *
 * Input: page messages of `intune/devices` runs (→ configuration items,
 * products, person relations; CIs of devices gone after a complete full run
 * become inactive) and `intune/compliance` runs (→ incidents raised once,
 * resolved when the violation is gone after a complete full run).
 * Output 1: per page, the result of every item. Output 2: per run, a
 * summary on its last page.
 *
 * Pages of device runs are handled three at a time (while some wait for
 * 4me's asynchronous results the next is uploaded), everything else one at
 * a time; results go out in arrival order (lib/shared/page-scheduler.ts). What the node
 * remembers (fingerprints of what 4me confirmed, the CIs and incidents this
 * instance owns) lives in node context, in the store chosen in the node,
 * per instance (`msg.sync.instance`).
 */
import { setMaxListeners } from 'node:events';
import type { NodeAPI, Node, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { healthPart } from '../lib/node-red/config-health';
import { StatusDot } from '../lib/node-red/status-dot';
import { StatusTexts, shorten, type IntuneNodeStatus, type StatusParam } from '../lib/node-red/status-text';
import { FourMeConfigError, errorCode, type FourMeConfigNode } from '../lib/fourme/fourme-connection';
import { isAbort } from '../lib/fourme/fourme-client';
import {
  FourMeSink,
  SinkInputError,
  SinkSettingsError,
  parseSinkSettings,
  topicOf,
  type PageOutcome,
  type RunSummary4me,
  type SinkMessage,
  type SinkSettings,
} from '../lib/fourme/fourme-sink';
import { SinkStateStore } from '../lib/fourme/sink-fingerprints';
import { syncEnvelopeIn, TOPIC_DEVICES } from '../lib/contracts';
import { storeInfo } from '../lib/node-red/context-state';
import { asMessage, configNode, contextOf, contextStorageOf, registerNode } from '../lib/node-red/register';
import { runProgress } from '../lib/run/run-progress';
import { PageScheduler, type Settled } from '../lib/shared/page-scheduler';
import { fourMeRunEntry, recordRun } from '../lib/run/run-history';

interface FourMeSinkDef extends NodeDef {
  fourme: string;
  [prop: string]: unknown;
}

const OUT_TOPIC = { devices: 'intune-4me/cis', compliance: 'intune-4me/incidents', summary: 'intune-4me/summary' } as const;

export = function register(RED: NodeAPI): void {
  const texts = new StatusTexts(RED, 'intune-4me');
  const say = (key: string, en: string, params?: Record<string, StatusParam>) => texts.msg(`status.${key}`, en, params);

  function IntuneFourMe(this: Node, def: FourMeSinkDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    let settings: SinkSettings | undefined;
    let problem: Error | undefined;
    try {
      settings = parseSinkSettings(def as Record<string, unknown>);
    } catch (err) {
      problem = err as Error;
    }
    const cfg = configNode<FourMeConfigNode>(RED, def.fourme);
    if (!problem && !cfg) problem = new SinkSettingsError('fourme', 'No 4me connection is selected: pick an intune-4me-config node in this node\u2019s settings');

    const store = storeInfo(contextStorageOf(RED), settings?.store);
    if (!problem && store.unknown) node.warn(`The context store "${settings?.store}" does not exist; the cache is kept in the default store "${store.name}"`);
    const memoryNote = store.persistent ? [] : [say('notPersistent', ' · cache in memory only')];
    const stateStore = new SinkStateStore(contextOf(node), store.unknown ? undefined : settings?.store || undefined);

    let closed = false;
    const pages = new PageScheduler();
    const dot = new StatusDot(node, texts);
    let lastStatus: IntuneNodeStatus = texts.status('grey', 'ring', say('idle', 'idle'), ...memoryNote);
    let working: IntuneNodeStatus | undefined;
    const show = (s: IntuneNodeStatus) => dot.show(s);
    const showIdle = () => {
      if (pages.busy) return;
      const health = dot.health;
      if (health && health.level === 'error') {
        const part = healthPart(health);
        show(texts.status('red', 'ring', say('connection', 'connection: __text__', { text: typeof part === 'string' ? shorten(part, 60) : part })));
      } else show(lastStatus);
    };

    if (problem) {
      show(texts.status('red', 'ring', shorten(problem.message, 58)));
      node.error(`Not started: ${problem.message}`);
    }
    const unwatch = !problem ? dot.watch(cfg?.board, showIdle) : undefined;
    if (!problem) showIdle();

    const abort = new AbortController();
    // Every 4me call in flight listens to it (two pages × up to 8 uploads and their result polls).
    setMaxListeners(0, abort.signal);
    const sink = settings
      ? new FourMeSink({
          client: () => cfg!.connection().client,
          people: () => cfg!.connection().people,
          store: stateStore,
          settings,
          onWork: (w) => {
            const what = w.topic === TOPIC_DEVICES ? say('devices', 'devices') : say('compliance', 'compliance');
            const text =
              w.phase === 'archive'
                ? say('archiving', '__what__: archiving', { what })
                : w.phase === 'resolve'
                  ? say('resolving', '__what__: resolving incidents', { what })
                  : say('writing', '__what__: writing page __page__', { what, page: w.page });
            working = texts.status('blue', 'dot', text, w.batches ? ` (${w.batch}/${w.batches})` : '');
            show(working);
          },
          onWait: (ms) => show(texts.status('yellow', 'ring', say('throttled', 'throttled, waiting __seconds__ s', { seconds: Math.ceil(ms / 1000) }))),
          onResume: () => {
            if (working) show(working);
          },
          warn: (m) => node.warn(m),
        })
      : undefined;

    function resultStatus(sum: RunSummary4me): IntuneNodeStatus {
      const time = sum.finishedAt.slice(11, 16);
      const errors = sum.errorCount;
      let text;
      if (sum.cis) {
        const c = sum.cis;
        text = say('doneDevices', '__written__ written, __unchanged__ unchanged, __archived__ archived', {
          written: c.created + c.updated,
          unchanged: c.unchanged,
          archived: c.archived,
        });
      } else {
        const i = sum.incidents ?? {};
        text = say('doneIncidents', '__raised__ raised, __resolved__ resolved, __capped__ capped', {
          raised: i.raised ?? 0,
          resolved: i.resolved ?? 0,
          capped: i.capped ?? 0,
        });
      }
      const more = errors ? [say('errors', ', __errors__ errors', { errors })] : [];
      return texts.status(errors ? 'yellow' : 'green', 'dot', text, ...more, ` · ${time} UTC`, ...memoryNote);
    }

    function outputs(msg: NodeMessageInFlow, out: PageOutcome): [NodeMessage, NodeMessage | null] {
      const m = msg as unknown as Record<string, unknown>;
      m.topic = out.topic === TOPIC_DEVICES ? OUT_TOPIC.devices : OUT_TOPIC.compliance;
      m.payload = out.items;
      m.sync = out.sync;
      const summary = out.summary ? asMessage({ topic: OUT_TOPIC.summary, payload: out.summary, sync: out.sync, _msgid: RED.util.generateId() }) : null;
      return [asMessage(m), summary];
    }

    /** The error for done(err): plain words, a code for Catch-node logic, never a secret. */
    function explain(err: unknown): Error {
      if (err instanceof SinkInputError) return err;
      const base = (err as Error)?.message ?? String(err);
      const e = new Error(err instanceof FourMeConfigError ? `4me connection: ${base}` : base) as Error & { code?: string };
      e.code = errorCode(err);
      return e;
    }

    /** The run and page of a page message, for the source's flow control (run-progress.ts). */
    const pageOf = (msg: NodeMessageInFlow) => syncEnvelopeIn((msg as { sync?: unknown }).sync);

    /** Device pages share the scheduler's slots; everything else is handled alone. */
    const isDevicePage = (msg: NodeMessageInFlow): boolean => {
      try {
        return topicOf(msg as unknown as SinkMessage) === TOPIC_DEVICES && !!pageOf(msg);
      } catch {
        return false;
      }
    };

    node.on('input', (msg: NodeMessageInFlow, send, done) => {
      if (problem || !sink) {
        done(new Error(problem?.message ?? 'Not configured'));
        return;
      }
      const pg = pageOf(msg);
      if (pg) runProgress.received(pg.runId, node.id, pg.page);
      const progressed = () => {
        if (!pg) return;
        runProgress.finished(pg.runId, node.id, pg.page);
        if (pg.last) runProgress.release(pg.runId, node.id);
      };
      const shared = isDevicePage(msg);
      if (shared) sink.expect(msg as unknown as SinkMessage);
      const report = (r: Settled<PageOutcome | undefined>) => {
        if ('value' in r && r.value) {
          const out = r.value;
          send(outputs(msg, out));
          if (out.summary) {
            void recordRun(node, fourMeRunEntry(out.summary), store.unknown ? undefined : settings?.store);
            lastStatus = resultStatus(out.summary);
            if (out.summary.errorCount) {
              const first = out.summary.errors[0];
              node.warn(
                `Run ${out.summary.runId}: ${out.summary.errorCount} item(s) not written` +
                  (first ? ` — first: ${String(first.sourceID ?? first.key ?? '')} ${String(first.error ?? '')}`.slice(0, 300) : ''),
              );
            }
          }
          if (!pages.busy) working = undefined;
          showIdle();
          progressed();
          done();
          return;
        }
        const err = (r as { error: unknown }).error;
        if (!pages.busy) working = undefined;
        progressed();
        if (closed && isAbort(err)) return;
        const summary = (err as { summary?: RunSummary4me }).summary;
        if (summary) {
          void recordRun(node, fourMeRunEntry(summary, err), store.unknown ? undefined : settings?.store);
          send([null, { topic: OUT_TOPIC.summary, payload: summary, _msgid: RED.util.generateId() } as unknown as NodeMessage]);
        }
        const e = explain(err);
        lastStatus = texts.status('red', 'ring', shorten(e.message, 68));
        showIdle();
        done(e);
      };
      pages.submit(shared, () => sink.handle(msg as unknown as Record<string, unknown>, String(msg._msgid ?? RED.util.generateId()), abort.signal), report);
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      pages.stop();
      dot.close();
      unwatch?.();
      runProgress.releaseAll(node.id);
      abort.abort(Object.assign(new Error('The flow was stopped'), { name: 'AbortError' }));
      let finished = false;
      const once = () => {
        if (!finished) done();
        finished = true;
      };
      const timer = setTimeout(once, 5000);
      // Pages end (aborted), then what 4me confirmed since the last state write is written.
      const finish = () =>
        stateStore.saveAll().then(() => {
          clearTimeout(timer);
          once();
        });
      pages.drained().then(finish, finish);
    });
  }

  registerNode(RED, 'intune-4me', IntuneFourMe);
};
