/**
 * What each source, sink and executor did, run by run: the one place the
 * nodes record a finished run (or action job) and the Intune sidebar and the
 * metrics read it. Nodes call one hook line (recordRun with one of the entry
 * builders below); nothing here contacts a service.
 *
 * Kept per node in its context (key HISTORY_KEY, in the store the node keeps
 * its state in), the last HISTORY_LIMIT entries, newest last, so it survives
 * a restart with a persistent store. Entries are compact: short keys, zero
 * counts and empty fields left out (40 instances × 200 runs stay small).
 * A recording never throws and never delays the node: its context write is
 * chained per node and its failure only logged by the caller's choice.
 */
import { EventEmitter } from 'node:events';
import type { RunSummary, SyncEnvelope } from '../contracts';

/** Runs kept per node. */
export const HISTORY_LIMIT = 200;
/** The context key of a node's run history. */
export const HISTORY_KEY = 'intuneRunHistory';

/** What kind of work an entry is: a source's run, a sink's handling of one, or an action job. */
export type RunKind = 'devices' | 'compliance' | 'cis' | 'incidents' | 'acmp' | 'job';
/** ok; warn = done with items not written (or a job only partly accepted); failed; aborted (cancelled, redeployed). */
export type RunOutcome = 'ok' | 'warn' | 'failed' | 'aborted';

/**
 * One finished run or action job. Counts are left out when zero.
 *   at/ms  start (epoch ms) and duration
 *   read   items read (source) or received (sink); pass  passed on (source's emitted)
 *   wr     written (created+updated / sent); un  unchanged; rm  removed (archived)
 *   skip   skipped by reason (source); fail  items that failed
 *   req    requests to the service; thr  throttled answers
 *   raised/resolved/open  compliance incidents (4me sink); job  what became of an action job
 */
export interface RunEntry {
  k: RunKind;
  /** runId or jobId (short, never a secret). */
  id?: string;
  at: number;
  ms: number;
  r: RunOutcome;
  /** f = full, i = incremental. */
  m?: 'f' | 'i';
  /** What started it (message, schedule). */
  tr?: string;
  read?: number;
  pass?: number;
  wr?: number;
  un?: number;
  rm?: number;
  skip?: Record<string, number>;
  fail?: number;
  req?: number;
  thr?: number;
  raised?: number;
  resolved?: number;
  open?: number;
  /** Action jobs: executed, refused, replayed, dryRun, unsent, broken, unreadable. */
  job?: string;
  /** The error in plain words (the nodes' own messages carry no secrets), at most ERROR_CHARS. */
  err?: string;
}

const ERROR_CHARS = 240;

/** The part of a Node-RED node used here. */
export interface HistoryNode {
  id: string;
  type: string;
  context(): unknown;
}

interface ContextLike {
  get(key: string, store: string | undefined, cb: (err: Error | null | undefined, value?: unknown) => void): void;
  set(key: string, value: unknown, store: string | undefined, cb: (err?: Error | null) => void): void;
}

/** 'run' (nodeId: string, entry: RunEntry) after each recording: the sidebar's live update, the metrics' counters. */
export const runEvents = new EventEmitter();
runEvents.setMaxListeners(0);

const cache = new Map<string, RunEntry[]>();
const chains = new Map<string, Promise<unknown>>();

function contextOf(node: HistoryNode): ContextLike | undefined {
  try {
    const c = node.context() as ContextLike | undefined;
    return c && typeof c.get === 'function' ? c : undefined;
  } catch {
    return undefined;
  }
}

function load(node: HistoryNode, store: string | undefined): Promise<RunEntry[]> {
  const have = cache.get(node.id);
  if (have) return Promise.resolve(have);
  const ctx = contextOf(node);
  if (!ctx) return Promise.resolve([]);
  return new Promise((resolve) => {
    try {
      ctx.get(HISTORY_KEY, store || undefined, (err, value) => {
        const list = !err && Array.isArray(value) ? (value as RunEntry[]).filter(isEntry).slice(-HISTORY_LIMIT) : [];
        // A recording may have filled the cache while the store answered.
        resolve(cache.get(node.id) ?? list);
      });
    } catch {
      resolve([]);
    }
  });
}

function isEntry(v: unknown): v is RunEntry {
  const e = v as RunEntry;
  return !!e && typeof e === 'object' && typeof e.k === 'string' && typeof e.at === 'number' && typeof e.r === 'string';
}

/** Serialises the work on one node's history (a read that fills the cache, then writes). */
function chained<T>(id: string, work: () => Promise<T>): Promise<T> {
  const next = (chains.get(id) ?? Promise.resolve()).then(work, work);
  const settled = next.catch(() => undefined);
  chains.set(id, settled);
  settled.then(() => {
    if (chains.get(id) === settled) chains.delete(id);
  });
  return next;
}

/**
 * Records one finished run of `node` (undefined: nothing). Resolves when the
 * context has it; never rejects (a store that fails to write keeps the run in
 * memory, where the sidebar still shows it).
 */
export function recordRun(node: HistoryNode, entry: RunEntry | undefined, store?: string): Promise<void> {
  if (!entry) return Promise.resolve();
  const clean = compact(entry);
  return chained(node.id, async () => {
    const list = [...(await load(node, store)), clean].slice(-HISTORY_LIMIT);
    cache.set(node.id, list);
    runEvents.emit('run', node.id, clean);
    const ctx = contextOf(node);
    if (!ctx) return;
    await new Promise<void>((resolve) => {
      try {
        ctx.set(HISTORY_KEY, list, store || undefined, () => resolve());
      } catch {
        resolve();
      }
    });
  }).catch(() => undefined);
}

/** The node's runs, oldest first (from memory, else its context store). */
export function readRuns(node: HistoryNode, store?: string): Promise<RunEntry[]> {
  return chained(node.id, async () => {
    const list = await load(node, store);
    if (list.length) cache.set(node.id, list);
    return list;
  }).catch(() => []);
}

/** Forgets what is held in memory (tests; the context keeps its copy). */
export function clearRunCache(): void {
  cache.clear();
}

// ------------------------------------------------------------------ next scheduled run

const schedules = new Map<string, () => { mode: string; at: number } | undefined>();

/** A source tells when its schedule runs next (a function, asked when the sidebar looks). */
export function noteSchedule(node: { id: string }, next: () => { mode: string; at: number } | undefined): void {
  schedules.set(node.id, next);
}

/** The node's next scheduled run, if it has a schedule. */
export function nextRun(nodeId: string): { mode: string; at: number } | undefined {
  try {
    return schedules.get(nodeId)?.();
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ entry builders (one per kind of node)

/** Leaves out zero counts, empty maps and empty texts. */
export function compact(e: RunEntry): RunEntry {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (v === undefined || v === null || v === '' || v === 0) {
      if (k === 'at' || k === 'ms') out[k] = 0;
      continue;
    }
    if (k === 'skip') {
      const skip: Record<string, number> = {};
      for (const [reason, n] of Object.entries(v as Record<string, number>)) if (typeof n === 'number' && n > 0) skip[reason] = n;
      if (Object.keys(skip).length) out.skip = skip;
      continue;
    }
    out[k] = k === 'err' ? String(v).slice(0, ERROR_CHARS) : v;
  }
  return out as unknown as RunEntry;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const mode = (m: unknown): 'f' | 'i' | undefined => (m === 'full' ? 'f' : m === 'incremental' ? 'i' : undefined);
const time = (iso: unknown, fallback: number): number => {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? t : fallback;
};

/** A source's run (its RunSummary) as an entry; `topic` says which source. */
export function sourceRunEntry(topic: string, sum: RunSummary): RunEntry {
  const s = sum.stats;
  return {
    k: topic === 'intune/compliance' ? 'compliance' : 'devices',
    id: sum.runId,
    at: time(sum.startedAt, Date.now()),
    ms: num(s?.durationMs),
    r: sum.result === 'completed' ? 'ok' : sum.result === 'aborted' ? 'aborted' : 'failed',
    m: mode(sum.mode),
    tr: sum.trigger,
    read: num(s?.items),
    pass: num(s?.emitted),
    skip: s?.skipped,
    req: num(s?.requests),
    thr: num(s?.throttled),
    err: sum.result === 'completed' ? undefined : s?.error,
  };
}

/** What the 4me sink's run summary holds that an entry needs (fourme-sink.ts RunSummary4me). */
export interface FourMeRunLike {
  runId: string;
  topic: string;
  mode: string;
  startedAt: string;
  durationMs: number;
  cis?: Record<string, number>;
  incidents?: Record<string, number>;
  requests: Record<string, unknown>;
  errorCount: number;
  errors: Array<Record<string, unknown>>;
}

/** A 4me sink's run; `failed` when the run ended in an error (its message). */
export function fourMeRunEntry(sum: FourMeRunLike, failed?: unknown): RunEntry {
  const c = sum.cis;
  const i = sum.incidents;
  const first = sum.errors?.[0];
  const base: RunEntry = {
    k: c ? 'cis' : 'incidents',
    id: sum.runId,
    at: time(sum.startedAt, Date.now() - num(sum.durationMs)),
    ms: num(sum.durationMs),
    r: failed ? 'failed' : sum.errorCount ? 'warn' : 'ok',
    m: mode(sum.mode),
    req: num(sum.requests?.graphql),
    thr: num(sum.requests?.throttled),
    fail: num(sum.errorCount),
    err: failed ? String((failed as Error)?.message ?? failed) : first ? `${String(first.sourceID ?? first.key ?? '')} ${String(first.error ?? '')}`.trim() : undefined,
  };
  if (c) {
    base.read = num(c.received);
    base.wr = num(c.created) + num(c.updated);
    base.un = num(c.unchanged);
    base.rm = num(c.archived);
  }
  if (i) {
    base.read = num(i.received);
    base.raised = num(i.raised);
    base.resolved = num(i.resolved);
    // Open after the run: raised now, adopted from 4me, or still open from before.
    base.open = num(i.raised) + num(i.adopted) + num(i.open);
  }
  return base;
}

/** What an action job came to (action-job.ts outcome kinds) and its report (action-executor.ts ActionReport). */
export interface ActionReportLike {
  jobId?: string | null;
  status?: string;
  startedAt?: string;
  finishedAt?: string;
  results?: unknown[];
  counts?: Record<string, number>;
  error?: string;
  code?: string;
}

/** An action job as an entry: `kind` is the outcome's (executed, refused, replayed, …). */
export function actionJobEntry(kind: string, report: ActionReportLike, requests?: number): RunEntry {
  const c = report.counts ?? {};
  const at = time(report.startedAt, Date.now());
  const failed = num(c.failed) + num(c.notFound) + num(c.unsupported) + num(c.rejected);
  const bad = kind === 'refused' || kind === 'unreadable' || kind === 'unsent' || kind === 'broken' || report.status === 'failed' || report.status === 'rejected';
  return {
    k: 'job',
    id: report.jobId ?? undefined,
    at,
    ms: Math.max(0, time(report.finishedAt, at) - at),
    r: bad ? 'failed' : report.status === 'partial' || kind === 'replayed' ? 'warn' : 'ok',
    job: kind,
    read: Array.isArray(report.results) ? report.results.length : 0,
    wr: num(c.accepted),
    fail: failed,
    req: requests,
    err: bad ? report.error ?? report.code : undefined,
  };
}

/** A job a job source (intune-acmp-actions) handed on or refused itself (`reason`: why, in plain words). */
export function jobIntakeEntry(jobId: string, outcome: 'forwarded' | 'refused', reason?: string, now = Date.now()): RunEntry {
  return { k: 'job', id: jobId, at: now, ms: 0, r: outcome === 'refused' ? 'failed' : 'ok', job: outcome, read: 1, err: reason };
}

// ------------------------------------------------------------------ page-wise sinks (ACMP)

interface Tally {
  entry: RunEntry;
  seen: number;
}
const tallies = new Map<string, Tally>();

/** What one page of a device run did at a page-wise sink (intune-acmp). */
export interface PageCounts {
  read: number;
  written: number;
  unchanged: number;
  removed?: number;
  failed: number;
  problem?: string;
}

/**
 * Adds one page of a run at a page-wise sink; on the run's last page the
 * run is recorded (its duration from the run's start at the source, else
 * from its first page here, to the end of its last page here).
 */
export function recordSinkPage(node: HistoryNode, sync: SyncEnvelope, page: PageCounts, store?: string, now = Date.now()): Promise<void> {
  const key = `${node.id}\u0000${sync.runId}`;
  let t = tallies.get(key);
  if (!t) {
    // From the run's start at the source: a one-page run is over before the sink hears of it.
    t = { entry: { k: 'acmp', id: sync.runId, at: Math.min(now, time(sync.startedAt, now)), ms: 0, r: 'ok', m: mode(sync.mode) }, seen: 0 };
    tallies.set(key, t);
  }
  const e = t.entry;
  t.seen++;
  e.read = num(e.read) + num(page.read);
  e.wr = num(e.wr) + num(page.written);
  e.un = num(e.un) + num(page.unchanged);
  e.rm = num(e.rm) + num(page.removed);
  e.fail = num(e.fail) + num(page.failed);
  if (page.problem && !e.err) e.err = page.problem;
  if (!sync.last) {
    // A run whose last page never comes (the source failed) is not kept for ever.
    if (tallies.size > 1000) tallies.delete(tallies.keys().next().value as string);
    return Promise.resolve();
  }
  tallies.delete(key);
  e.ms = Math.max(0, now - e.at);
  e.r = e.fail || e.err ? (e.wr ? 'warn' : 'failed') : 'ok';
  return recordRun(node, e, store);
}
