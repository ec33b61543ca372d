/**
 * The way of one action request (nodes/lib/actions/action-job.ts) without
 * Node-RED: guards, replay protection against the journal, dry run,
 * execution, and the outcome the node carries out. The Graph client is a
 * stub that counts the writes; the journal lives in a Map-backed context.
 */
import { expect } from 'chai';
import { ActionJobs, replayDecision, shortfallError, type JobHooks } from '../nodes/lib/actions/action-job';
import { ActionMemory, fingerprintOf, type JournalEntry } from '../nodes/lib/actions/action-journal';
import { parseActionSettings } from '../nodes/lib/actions/action-settings';
import type { ActionReport, BatchClient, DeviceResult } from '../nodes/lib/actions/action-executor';
import type { BatchRequest, BatchResult } from '../nodes/lib/graph/graph-client';
import type { ContextLike } from '../nodes/lib/node-red/context-state';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';

/** A context kept in a Map; `failGet` / `failSet` make its reads / writes fail. */
function mapContext() {
  const data = new Map<string, unknown>();
  const ctx = {
    data,
    failGet: false,
    failSet: false,
    get(key: string, _store: string | undefined, cb: (err: Error | null | undefined, value?: unknown) => void) {
      setImmediate(() => (ctx.failGet ? cb(new Error('store offline')) : cb(null, data.get(key))));
    },
    set(key: string, value: unknown, _store: string | undefined, cb: (err?: Error | null) => void) {
      setImmediate(() => {
        if (ctx.failSet) return cb(new Error('disk full'));
        data.set(key, JSON.parse(JSON.stringify(value)));
        cb();
      });
    },
  };
  return ctx satisfies ContextLike;
}

/** Answers every write with `status[deviceId]` (default 204); counts the POSTs. */
function stubGraph(status: Record<string, number> = {}, opts: { fail?: Error; gate?: Promise<void> } = {}) {
  const posts: string[] = [];
  const graph: BatchClient = {
    async batch(requests: BatchRequest[]) {
      if (opts.gate) await opts.gate;
      if (opts.fail) throw opts.fail;
      const out = new Map<string, BatchResult>();
      for (const r of requests) {
        const id = r.url.split('/')[3];
        if (r.method === 'POST') posts.push(id);
        out.set(r.id, { status: status[id] ?? 204 });
      }
      return out;
    },
  };
  return { graph, posts };
}

const settings = parseActionSettings({});
const hooksFor = (graph: BatchClient, extra: Partial<JobHooks> = {}): JobHooks => ({ connect: () => graph, ...extra });
const lock = (deviceIds: string[], jobId?: string) => ({ action: 'lock', deviceIds, ...(jobId ? { jobId } : {}) });

function setup(now = () => Date.now()) {
  const ctx = mapContext();
  const memory = new ActionMemory<ActionReport>({ context: ctx, retentionMs: 3_600_000, now });
  return { ctx, memory, jobs: new ActionJobs(memory, now) };
}

describe('action-job: the way of one action request', () => {
  describe('replayDecision', () => {
    const req = { jobId: 'j1', action: 'lock' as const, deviceIds: [A, B] };
    const entry = (e: Partial<JournalEntry<ActionReport>>): JournalEntry<ActionReport> => ({
      at: Date.UTC(2026, 0, 2, 3, 4, 5),
      state: 'done',
      fingerprint: fingerprintOf('lock', [A, B]),
      action: 'lock',
      devices: 2,
      requestedBy: null,
      ...e,
    });
    const earlier = { jobId: 'j1', action: 'lock', status: 'finished', results: [], counts: {}, startedAt: 'then' } as unknown as ActionReport;

    it('no entry: run it', () => {
      expect(replayDecision(req, undefined)).to.equal(undefined);
    });

    it('the same request finished before: its earlier report, marked replayed (the journal copy untouched)', () => {
      const e = entry({ result: earlier });
      const d = replayDecision({ ...req, deviceIds: [B.toUpperCase(), A] }, e);
      expect(d).to.deep.equal({ replay: { ...earlier, replayed: true } });
      expect(e.result).to.not.have.property('replayed');
    });

    it('another request under the same job id is refused as jobIdReused, naming when and what it was', () => {
      const d = replayDecision({ ...req, deviceIds: [A] }, entry({ result: earlier }));
      expect(d).to.have.property('refuse');
      const err = (d as { refuse: { code: string; message: string } }).refuse;
      expect(err.code).to.equal('jobIdReused');
      expect(err.message).to.include('2026-01-02T03:04:05.000Z').and.include('lock on 2 device(s)');
    });

    it('a job that started and never finished is refused as interrupted', () => {
      for (const e of [entry({ state: 'started' }), entry({ state: 'done', result: undefined })]) {
        const d = replayDecision(req, e) as { refuse: { code: string; message: string } };
        expect(d.refuse.code).to.equal('interrupted');
        expect(d.refuse.message).to.include('never finished');
      }
    });
  });

  describe('shortfallError', () => {
    const report = (outcomes: DeviceResult['outcome'][], status: ActionReport['status']): ActionReport =>
      ({
        jobId: 'j9',
        action: 'lock',
        status,
        results: outcomes.map((outcome, i) => ({ deviceId: `d${i}`, outcome, ...(outcome === 'accepted' ? {} : { error: `why ${i}` }) })),
        counts: {
          accepted: outcomes.filter((o) => o === 'accepted').length,
          failed: outcomes.filter((o) => o === 'failed').length,
          notFound: outcomes.filter((o) => o === 'notFound').length,
          unsupported: 0,
          rejected: 0,
        },
      }) as unknown as ActionReport;

    it('none when every device accepted', () => {
      expect(shortfallError(report(['accepted', 'accepted'], 'finished'))).to.equal(undefined);
    });

    it('counts what was missed, names the first device, carries the status as code', () => {
      const e = shortfallError(report(['accepted', 'notFound', 'failed'], 'partial'));
      expect(e?.code).to.equal('partial');
      expect(e?.message).to.equal('lock: 2 of 3 device(s) not carried out (job j9; 1 failed, 1 not found; 1 accepted): d1: why 1');
    });
  });

  describe('ActionJobs.handle', () => {
    it('executes a request, journals it, and answers the same job id again with the earlier result without a second write', async () => {
      const { jobs, memory } = setup();
      const { graph, posts } = stubGraph();
      const first = await jobs.handle(lock([A, B], 'job-1'), { settings }, hooksFor(graph));
      expect(first.kind).to.equal('executed');
      expect(first.report.status).to.equal('finished');
      expect(first.error).to.equal(undefined);
      expect(first.audit).to.deep.equal({ notification: undefined });
      expect(posts).to.deep.equal([A, B]);
      expect((await memory.lookup('job-1'))?.state).to.equal('done');

      const again = await jobs.handle(lock([B, A], 'job-1'), { settings }, hooksFor(graph));
      expect(again.kind).to.equal('replayed');
      expect(again.report).to.deep.equal({ ...first.report, replayed: true });
      expect(again.audit).to.deep.equal({ replayed: true });
      expect(again.error?.code).to.equal('replayed');
      expect(again.error?.message).to.include('job job-1 was already executed');
      expect(posts).to.have.length(2);
    });

    it('the same job id for other devices is refused (jobIdReused) with every device rejected', async () => {
      const { jobs } = setup();
      const { graph, posts } = stubGraph();
      await jobs.handle(lock([A], 'job-2'), { settings }, hooksFor(graph));
      const o = await jobs.handle(lock([B, C], 'job-2'), { settings }, hooksFor(graph));
      expect(o.kind).to.equal('refused');
      expect(o.audit).to.deep.equal({ rejected: true });
      expect(o.error?.code).to.equal('jobIdReused');
      expect(o.error?.message).to.match(/^Action request refused: Job job-2 was already used/);
      expect(o.report.status).to.equal('rejected');
      expect(o.report.results.map((r) => [r.deviceId, r.outcome])).to.deep.equal([
        [B, 'rejected'],
        [C, 'rejected'],
      ]);
      expect(posts).to.deep.equal([A]);
    });

    it('a job id running right now is refused (alreadyRunning); once it ended, the id answers as a replay', async () => {
      const { jobs } = setup();
      let open!: () => void;
      const { graph, posts } = stubGraph({}, { gate: new Promise<void>((r) => (open = r)) });
      const first = jobs.handle(lock([A], 'job-3'), { settings }, hooksFor(graph));
      const second = await jobs.handle(lock([A], 'job-3'), { settings }, hooksFor(graph));
      expect(second.kind).to.equal('refused');
      expect(second.error?.code).to.equal('alreadyRunning');
      open();
      expect((await first).kind).to.equal('executed');
      expect((await jobs.handle(lock([A], 'job-3'), { settings }, hooksFor(graph))).kind).to.equal('replayed');
      expect(posts).to.deep.equal([A]);
    });

    it('a job that started and never finished (journal says "started") is refused as interrupted, nothing is sent', async () => {
      const { jobs, memory } = setup();
      await memory.start('job-4', { fingerprint: fingerprintOf('lock', [A]), action: 'lock', devices: 1, requestedBy: null });
      const { graph, posts } = stubGraph();
      const o = await jobs.handle(lock([A], 'job-4'), { settings }, hooksFor(graph));
      expect(o.kind).to.equal('refused');
      expect(o.error?.code).to.equal('interrupted');
      expect(posts).to.deep.equal([]);
    });

    it('a journal that cannot be read runs nothing, and is not audited as executed', async () => {
      const { jobs, ctx } = setup();
      ctx.failGet = true;
      const { graph, posts } = stubGraph();
      const o = await jobs.handle(lock([A], 'job-5'), { settings }, hooksFor(graph));
      expect(o.kind).to.equal('unreadable');
      expect(o.audit).to.equal(undefined);
      expect(o.report.status).to.equal('failed');
      expect(o.error?.message).to.equal('The journal of executed jobs cannot be read (store offline); nothing was sent');
      expect(posts).to.deep.equal([]);
    });

    it('without a job id there is no replay protection: the same request runs each time', async () => {
      const { jobs, memory } = setup();
      const { graph, posts } = stubGraph();
      const a = await jobs.handle(lock([A]), { settings }, hooksFor(graph));
      const b = await jobs.handle(lock([A]), { settings }, hooksFor(graph));
      expect([a.kind, b.kind]).to.deep.equal(['executed', 'executed']);
      expect(a.report.jobId).to.not.equal(b.report.jobId);
      expect(posts).to.deep.equal([A, A]);
      expect(await memory.size()).to.equal(0);
    });

    it('a misconfigured node and a request against the policy are refused before anything else', async () => {
      const { jobs } = setup();
      const { graph, posts } = stubGraph();
      const mis = await jobs.handle(lock([A], 'job-6'), { problem: 'Max. devices per request must be …' }, hooksFor(graph));
      expect(mis.kind).to.equal('refused');
      expect(mis.error?.code).to.equal('misconfigured');
      expect(mis.error?.message).to.equal('Action request refused: The node is misconfigured: Max. devices per request must be …');
      const wipe = await jobs.handle({ action: 'wipe', deviceIds: [A], confirm: true, jobId: 'job-6' }, { settings }, hooksFor(graph));
      expect(wipe.kind).to.equal('refused');
      expect(wipe.error?.code).to.equal('notAllowed');
      const bad = await jobs.handle('{"action":"lock"}', { settings }, hooksFor(graph));
      expect(bad.error?.code).to.equal('malformed');
      expect(posts).to.deep.equal([]);
    });

    it('a dry run (node or request) reports what would be sent, sends nothing and journals nothing', async () => {
      const { jobs, memory } = setup();
      const { graph, posts } = stubGraph();
      const node = await jobs.handle(lock([A], 'job-7'), { settings: { ...settings, dryRun: true } }, hooksFor(graph));
      const asked = await jobs.handle({ ...lock([B], 'job-8'), dryRun: true }, { settings }, hooksFor(graph));
      for (const o of [node, asked]) {
        expect(o.kind).to.equal('dryRun');
        expect(o.report.dryRun).to.equal(true);
        expect(o.audit).to.deep.equal({ dryRun: true, notification: undefined });
        expect(o.error).to.equal(undefined);
      }
      expect(posts).to.deep.equal([]);
      expect(await memory.size()).to.equal(0);
    });

    it('no connection: nothing sent, the reason in the report and the error', async () => {
      const { jobs } = setup();
      const o = await jobs.handle(lock([A], 'job-9'), { settings }, {
        connect: () => {
          throw new Error('no Intune connection');
        },
      });
      expect(o.kind).to.equal('unsent');
      expect(o.error?.message).to.equal('Nothing was sent: no Intune connection');
      expect(o.report.results[0]).to.include({ deviceId: A, outcome: 'failed' });
    });

    it('a partial result is executed and carries the shortfall error; hooks see the run, each device and the progress', async () => {
      const { jobs } = setup();
      const { graph } = stubGraph({ [B]: 404 });
      const seen: string[] = [];
      const o = await jobs.handle(lock([A, B], 'job-10'), { settings }, {
        connect: () => graph,
        onExecute: (req, stats) => seen.push(`execute ${req.jobId} ${typeof stats.requests}`),
        onDevice: (r, req) => seen.push(`device ${r.deviceId === A ? 'A' : 'B'} ${r.outcome} ${req.jobId}`),
        onProgress: (p) => seen.push(`progress ${p.phase} ${p.done}/${p.total}`),
      });
      expect(o.kind).to.equal('executed');
      expect(o.report.status).to.equal('partial');
      expect(o.error?.code).to.equal('partial');
      expect(seen[0]).to.equal('execute job-10 number');
      expect(seen).to.include('device A accepted job-10').and.include('device B notFound job-10');
      expect(seen).to.include('progress sending 2/2');
    });

    it('an error once sending began is "broken" and says devices may have been actioned; the job is left "started"', async () => {
      const { jobs, memory } = setup();
      const { graph } = stubGraph({}, { fail: new Error('socket hang up') });
      const o = await jobs.handle(lock([A], 'job-11'), { settings }, hooksFor(graph));
      expect(o.kind).to.equal('broken');
      expect(o.audit).to.deep.equal({ notification: undefined });
      expect(o.error?.message).to.equal(
        'The request stopped with an error after sending had begun; some devices may have been actioned – check them in Intune: socket hang up',
      );
      expect((await memory.lookup('job-11'))?.state).to.equal('started');
      expect((await jobs.handle(lock([A], 'job-11'), { settings }, hooksFor(graph))).error?.code).to.equal('interrupted');
    });
  });
});
