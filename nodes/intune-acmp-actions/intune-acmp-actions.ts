/**
 * intune-acmp-actions: the source of ACMP query-action jobs. Keeps a queue
 * target in SICS bound to the jobs routing key, consumes the `<ActionJob>`
 * messages ACMP servers publish there (send notification, retire, wipe,
 * remote lock, synchronize), and emits one action request per job for
 * `intune-action`:
 *
 *   msg.topic   = "intune/action/request"
 *   msg.payload = { action, deviceIds, notification?, wipe?, confirm?, jobId, requestedBy }
 *   msg.acmp    = { serverId, jobId, action, clients, receivedAt }   (carried through
 *                 intune-action to intune-acmp, which sends the job status back)
 *
 * A job that cannot be executed as it stands (unreadable, unknown action, no
 * or invalid Intune device ids, notification without text, retire or wipe
 * without the operator's confirmation) is answered right here as failed,
 * with the reason, and never emitted. Statuses go to the job's callback
 * routing key when it was published with one, in the job's wire format.
 *
 * No job is lost to a redeploy: every consumed job is written to the node's
 * journal (acmp-job-journal.ts, in the flow context's default store) before
 * it is handed on; closing lets a consume that is under way finish and only
 * journals what it returns; the next node with this id hands on what the
 * journal holds before it reads new jobs.
 */
import type { NodeAPI, Node, NodeDef } from 'node-red';
import { healthPart } from '../lib/node-red/config-health';
import { StatusText, StatusTexts, type StatusParam } from '../lib/node-red/status-text';
import { StatusDot, type DotFill, type DotShape } from '../lib/node-red/status-dot';
import { asMessage, configNode, contextOf, registerNode } from '../lib/node-red/register';
import type { AcmpConfigNode } from '../lib/acmp/acmp-config-api';
import { translator } from '../lib/node-red/i18n';
import { decodeMessage, formatOf, WireError, type ActionJobMessage, type JobClient } from '../lib/acmp/acmp-wire';
import { JobProblem, failedStatus, jobStatusMessage, jobToRequest, statusRoute, type JobStatusParts } from '../lib/acmp/acmp-jobs';
import { JobJournal } from '../lib/acmp/acmp-job-journal';
import { ContextValue } from '../lib/node-red/context-state';
import type { ConsumedMessage, SicsClient } from '../lib/acmp/sics-client';
import { SICS_STATUS_EN, SicsError } from '../lib/acmp/sics-errors';
import type { AcmpServerRoute } from '../lib/acmp/sics-settings';
import type { ActionName } from '../lib/contracts';
import type { WireFormat } from '../lib/acmp/acmp-wire';
import { jobIntakeEntry, recordRun } from '../lib/run/run-history';

interface AcmpActionsDef extends NodeDef {
  acmp: string;
  virtualRouter?: string;
  routingKey?: string;
}

type Status = { fill: DotFill; shape: DotShape; text: StatusText };

const DEFAULTS = { virtualRouter: 'IntuneConnector', routingKey: 'intune.jobs' } as const;
const ROUTE = /^[A-Za-z0-9_.:#*{}\-]{1,200}$/;
const MAX_BACKOFF_MS = 60_000;
/** How long closing waits for a consume under way (Node-RED gives a close handler 15 s). */
const CLOSE_DRAIN_MS = 12_000;

export = function register(RED: NodeAPI): void {
  function AcmpActions(this: Node, def: AcmpActionsDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'intune-acmp-actions');
    const texts = new StatusTexts(RED, 'intune-acmp-actions');
    const say = (key: string, en: string, params?: Record<string, StatusParam>) => StatusText.of(texts.msg(`status.${key}`, en, params));

    const virtualRouter = String(def.virtualRouter ?? '').trim() || DEFAULTS.virtualRouter;
    const routingKey = String(def.routingKey ?? '').trim() || DEFAULTS.routingKey;
    const targetName = `intune-jobs-${node.id.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    let problem: string | undefined;
    if (!ROUTE.test(virtualRouter)) problem = t('errors.badVirtualRouter', 'The virtual router may use letters, digits and _ . : - only');
    else if (!ROUTE.test(routingKey)) problem = t('errors.badRoutingKey', 'The routing key may use letters, digits and _ . : # * - only');
    if (problem) node.error(problem);

    const cfg = configNode<AcmpConfigNode>(RED, def.acmp);
    const closer = new AbortController();
    // Aborts a consume under way only when closing has waited long enough for it (its jobs would be lost).
    const consumeCloser = new AbortController();
    let closing = false;
    // In the flow's (the instance's) context, not the node's: Node-RED drops a node's context whenever
    // the node closes unless a context store is configured; a flow's context lives until the flow is deleted.
    const journal = new JobJournal(new ContextValue<unknown>(contextOf(node).flow, `intuneAcmpJobs_${node.id.replace(/[^A-Za-z0-9_]/g, '_')}`));
    const dot = new StatusDot(node, texts);
    let last: Status | undefined;
    const counts = { received: 0, forwarded: 0, refused: 0 };

    function idle(): Status {
      const health = dot.health;
      if (problem) return { fill: 'red', shape: 'ring', text: say('misconfigured', 'misconfigured') };
      if (!cfg) return { fill: 'red', shape: 'ring', text: say('noConfig', 'no SICS connection selected') };
      if (health?.level === 'error') return { fill: 'red', shape: 'ring', text: StatusText.of(healthPart(health)) };
      return { fill: 'grey', shape: 'ring', text: say('starting', 'starting') };
    }

    function show(s?: Status) {
      if (closing) return;
      if (s) last = s;
      const base = last ?? idle();
      const shown = dot.health?.level === 'warn' ? { ...base, fill: base.fill === 'green' ? ('yellow' as const) : base.fill, text: base.text.plus(' · ', say('unencrypted', 'unencrypted')) } : base;
      dot.paint(shown.fill, shown.shape, shown.text);
    }

    const unwatch = dot.watch(cfg?.board, () => show());
    show();

    function listening(): Status {
      return counts.received
        ? { fill: 'green', shape: 'dot', text: say('counts', 'jobs: __received__ received, __forwarded__ forwarded, __refused__ refused', { received: counts.received, forwarded: counts.forwarded, refused: counts.refused }) }
        : { fill: 'green', shape: 'dot', text: say('listening', 'waiting for jobs (__routingKey__)', { routingKey }) };
    }

    /** Sends a failed status for a job refused here. Never throws. */
    async function refuse(client: SicsClient, server: AcmpServerRoute, parts: JobStatusParts, m: ConsumedMessage, format?: WireFormat): Promise<void> {
      counts.refused++;
      void recordRun(node, jobIntakeEntry(parts.jobId, 'refused', parts.reason));
      try {
        await client.call(statusRoute(server, m.callback), jobStatusMessage(parts), { signal: closer.signal, ...(format ? { format } : {}) });
      } catch (err) {
        if ((err as SicsError).code === 'aborted') return;
        node.error(t('errors.statusNotSent', 'The failed status of job __jobId__ could not be sent to ACMP server __server__: __message__', { jobId: parts.jobId, server: server.serverId, message: (err as Error).message }));
      }
    }

    function serverOf(id: string | undefined): AcmpServerRoute | undefined {
      if (!id || !cfg) return undefined;
      return cfg.servers().find((s) => s.serverId.toLowerCase() === id.toLowerCase());
    }

    async function handleMessage(client: SicsClient, m: ConsumedMessage): Promise<void> {
      let job: ActionJobMessage;
      try {
        const msg = decodeMessage(m.xml);
        if (msg.kind !== 'actionJob') {
          node.warn(t('log.notAJob', 'A __kind__ message arrived in the jobs target and was skipped', { kind: msg.kind }));
          return;
        }
        job = msg;
      } catch (err) {
        counts.received++;
        const d = err instanceof WireError ? err.details : {};
        const server = serverOf(d.serverId);
        const reason = t('errors.unreadableJob', 'The job cannot be read: __message__', { message: (err as Error).message });
        if (d.jobId && server) {
          node.warn(t('log.refused', 'Job __jobId__ from __server__ refused: __reason__', { jobId: d.jobId, server: server.serverId, reason }));
          await refuse(client, server, failedStatus(d.jobId, reason), m, formatOf(m.xml));
        } else {
          counts.refused++;
          node.error(t('errors.unanswerable', 'A message in the jobs target cannot be read and cannot be answered (no job id or unknown server): __reason__', { reason }));
        }
        return;
      }
      counts.received++;
      const server = serverOf(job.header.serverId);
      if (!server) {
        counts.refused++;
        node.error(t('errors.unknownServer', "Job __jobId__ comes from ACMP server \"__server__\", which is not configured in the SICS connection: it was not executed and cannot be answered", { jobId: job.jobId, server: job.header.serverId ?? '?' }));
        return;
      }
      let out: ReturnType<typeof jobToRequest>;
      try {
        out = jobToRequest(job, server.serverId, new Date(), m.callback);
      } catch (err) {
        const reason = err instanceof JobProblem ? err.message : String((err as Error)?.message ?? err);
        node.warn(t('log.refused', 'Job __jobId__ from __server__ refused: __reason__', { jobId: job.jobId, server: server.serverId, reason }));
        await refuse(client, server, failedStatus(job.jobId, reason, job.clients as JobClient[], job.action as ActionName), m, job.header.format);
        return;
      }
      counts.forwarded++;
      void recordRun(node, jobIntakeEntry(job.jobId, 'forwarded'));
      node.log(t('log.forwarded', 'Job __jobId__ (__action__ on __devices__ device(s)) from __server__, requested by __by__', { jobId: job.jobId, action: job.action, devices: out.request.deviceIds.length, server: server.serverId, by: out.request.requestedBy ?? '' }));
      node.send(asMessage({ topic: 'intune/action/request', payload: out.request, acmp: out.context }));
    }

    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          closer.signal.removeEventListener('abort', done);
          resolve();
        }
        closer.signal.addEventListener('abort', done, { once: true });
      });

    async function loop(): Promise<void> {
      let client: SicsClient;
      try {
        client = cfg!.client();
      } catch (err) {
        show({ fill: 'red', shape: 'ring', text: say('noConnection', 'SICS connection not usable') });
        node.error(t('errors.noConnection', 'The SICS connection is not usable: __message__', { message: (err as Error).message }));
        return;
      }
      let targetReady = false;
      let failures = 0;
      let lastError = '';
      // Jobs an earlier node (before a redeploy or restart) took but did not hand on go first.
      try {
        for (const e of await journal.pending()) {
          if (closing) return;
          node.log(t('log.fromJournal', 'Job taken before the redeploy or restart (__takenAt__) is handed on now', { takenAt: e.takenAt }));
          await handleMessage(client, e);
          await journal.remove(e.key);
        }
      } catch (err) {
        node.error(t('errors.journal', 'The journal of jobs taken but not handed on cannot be read or written: __message__', { message: (err as Error).message }));
      }
      while (!closing) {
        try {
          if (!targetReady) {
            await client.ensureTarget(virtualRouter, targetName, [routingKey], closer.signal);
            targetReady = true;
            show(listening());
          }
          // Not cut short by closing: SICS may already have taken jobs off the queue for this call.
          const msgs = await client.consume({ virtualRouter, targetName, signal: consumeCloser.signal, drainOnClose: true });
          // Written down before anything else: from here on, these jobs exist nowhere but in this node.
          const taken = await journal.add(msgs).catch((err) => {
            node.error(t('errors.journal', 'The journal of jobs taken but not handed on cannot be read or written: __message__', { message: (err as Error).message }));
            return msgs.map((m) => ({ ...m, key: '', takenAt: '' }));
          });
          if (closing) break; // journaled: the next node hands them on
          if (failures) show(listening());
          failures = 0;
          lastError = '';
          for (const m of taken) {
            if (closing) break;
            await handleMessage(client, m);
            if (m.key) await journal.remove(m.key).catch(() => undefined);
          }
          if (msgs.length) show(listening());
        } catch (err) {
          const e = err as SicsError;
          if (closing || e.code === 'aborted' || e.code === 'closed') break;
          if (e.code === 'notFound') targetReady = false; // SICS restarted and lost the target
          failures++;
          const wait = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures - 1, 6));
          // The reason in plain words, from the SICS connection's own status texts (every SicsErrorCode has one).
          const why: StatusParam = e instanceof SicsError ? { key: `intune-acmp-config.status.${e.code}`, en: SICS_STATUS_EN[e.code] ?? e.code } : String((err as Error)?.message ?? err);
          show({ fill: 'red', shape: 'ring', text: say('retrying', 'retrying in __seconds__ s: __why__', { why, seconds: Math.round(wait / 1000) }) });
          if (e.message !== lastError) node.error(t('errors.consumeFailed', 'Reading jobs from SICS failed: __message__; retrying in __seconds__ s', { message: e.message, seconds: Math.round(wait / 1000) }));
          lastError = e.message;
          await sleep(wait);
        }
      }
    }

    let running: Promise<void> = Promise.resolve();
    if (!problem && cfg) {
      const start = setImmediate(() => {
        running = loop().catch((err) => node.error(String((err as Error)?.message ?? err)));
      });
      closer.signal.addEventListener('abort', () => clearImmediate(start), { once: true });
    }

    // The target is named after the node id and kept across restarts and redeploys, so jobs
    // published meanwhile wait in SICS; it is deleted only when the node is removed.
    node.on('close', (removed: boolean, done: () => void) => {
      closing = true;
      dot.close();
      closer.abort();
      unwatch?.();
      const cut = setTimeout(() => consumeCloser.abort(), CLOSE_DRAIN_MS);
      let client: SicsClient | undefined;
      try {
        client = removed ? cfg?.client() : undefined;
      } catch {
        client = undefined;
      }
      running
        .then(async () => {
          if (!removed) return;
          // The node is gone for good: nobody will hand on what it still holds.
          const left = await journal.pending().catch(() => []);
          if (left.length) {
            node.error(t('errors.journalDropped', '__count__ job(s) taken from SICS were not handed on and are dropped with the node', { count: left.length }));
            for (const e of left) await journal.remove(e.key).catch(() => undefined);
          }
        })
        .then(() => client?.deleteTarget(targetName, AbortSignal.timeout(2_000)).catch(() => undefined))
        .finally(() => {
          clearTimeout(cut);
          dot.clear();
          done();
        });
    });
  }

  registerNode(RED, 'intune-acmp-actions', AcmpActions);
};
