/**
 * What an `intune-action` node remembers between messages and restarts, in
 * the store the user picked:
 *
 * - the **journal** of executed job ids: an entry is written *before* the
 *   first write to Intune ("started") and completed with the result after
 *   it. A job id found there is not executed again: a finished job answers
 *   with its earlier result, a started one that never finished (crash,
 *   restart in the middle) is refused, because some of its devices may have
 *   been actioned already. Entries older than the retention are dropped.
 *   Kept in the node's own context: two nodes never share a journal.
 * - the **notification ledger**: when each device last got Company Portal
 *   notifications, to keep under Intune's limit of 10 per device per hour
 *   before Graph has to refuse them. Intune counts per device, whoever
 *   sends, so the ledger is kept in the context of the Intune connection
 *   (config node), shared by every action node that uses it: several
 *   workflow instances (one per ACMP server) acting on one tenant count
 *   together. Its reads and writes go through one queue per connection and
 *   store.
 *
 * Both are caches (DESIGN.md "State and idempotency"): losing them loses
 * the replay protection for what they held, nothing else. All reads and
 * writes of one journal (or ledger) go through one queue, so concurrent
 * requests never overwrite each other's changes.
 */
import type { ActionName } from '../contracts';
import { ContextValue, type ContextLike } from '../node-red/context-state';

export const JOURNAL_KEY = 'intune-action-journal';
export const LEDGER_KEY = 'intune-action-notifications';
/** At most this many jobs are kept (oldest dropped first), whatever the retention. */
export const MAX_JOURNAL_ENTRIES = 2000;
export const NOTIFICATIONS_PER_HOUR = 10;
const HOUR = 3_600_000;

export interface JournalEntry<R = unknown> {
  /** When the job started (ms since epoch). */
  at: number;
  state: 'started' | 'done';
  /** Same job id + different action or devices = a different request. */
  fingerprint: string;
  action: ActionName;
  devices: number;
  requestedBy: string | null;
  result?: R;
  finishedAt?: number;
}

interface JournalData<R> {
  v: 1;
  /** Keyed by "job:" + jobId (a prefix, so that no job id can clash with an Object property). */
  jobs: Record<string, JournalEntry<R>>;
}

const jobKey = (jobId: string) => `job:${jobId}`;

interface LedgerData {
  v: 1;
  /** deviceId (lower case) → send times (ms) within the last hour. */
  sent: Record<string, number[]>;
}

export function fingerprintOf(action: ActionName, deviceIds: readonly string[]): string {
  return `${action}:${[...deviceIds].map((d) => d.toLowerCase()).sort().join(',')}`;
}

/** Runs tasks one after the other. */
/**
 * One queue per ledger (context object and store), whichever node asks:
 * nodes sharing a connection must not interleave their read-modify-writes.
 */
const ledgerQueues = new WeakMap<ContextLike, Map<string, SerialQueue>>();
function sharedLedgerQueue(context: ContextLike, store: string | undefined): SerialQueue {
  let byStore = ledgerQueues.get(context);
  if (!byStore) ledgerQueues.set(context, (byStore = new Map()));
  let q = byStore.get(store ?? '');
  if (!q) byStore.set(store ?? '', (q = new SerialQueue()));
  return q;
}

class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export interface ActionMemoryOptions {
  /** The node's context: the journal. */
  context: ContextLike;
  /** Where the notification ledger is kept: the Intune connection's context (default: `context`). */
  ledgerContext?: ContextLike;
  /** Context store name; '' or undefined = the default store. */
  store?: string;
  /** How long finished and started jobs are remembered, in ms. */
  retentionMs: number;
  now?: () => number;
}

export class ActionMemory<R = unknown> {
  private readonly journal: ContextValue<JournalData<R>>;
  private readonly ledger: ContextValue<LedgerData>;
  private readonly queue = new SerialQueue();
  private readonly ledgerQueue: SerialQueue;
  private readonly now: () => number;
  private readonly retentionMs: number;

  constructor(o: ActionMemoryOptions) {
    this.journal = new ContextValue<JournalData<R>>(o.context, JOURNAL_KEY, o.store);
    const ledgerContext = o.ledgerContext ?? o.context;
    this.ledger = new ContextValue<LedgerData>(ledgerContext, LEDGER_KEY, o.store);
    this.ledgerQueue = sharedLedgerQueue(ledgerContext, o.store || undefined);
    this.now = o.now ?? Date.now;
    this.retentionMs = o.retentionMs;
  }

  private async readJournal(): Promise<JournalData<R>> {
    const raw = await this.journal.get();
    if (!raw || typeof raw !== 'object' || raw.v !== 1 || typeof raw.jobs !== 'object' || raw.jobs === null) return { v: 1, jobs: {} };
    return raw;
  }

  private prune(data: JournalData<R>): JournalData<R> {
    const cutoff = this.now() - this.retentionMs;
    const kept = Object.entries(data.jobs)
      .filter(([, e]) => e && typeof e.at === 'number' && e.at >= cutoff)
      .sort(([, a], [, b]) => b.at - a.at)
      .slice(0, MAX_JOURNAL_ENTRIES);
    return { v: 1, jobs: Object.fromEntries(kept) };
  }

  /** The remembered entry of `jobId` (within the retention), if any. */
  lookup(jobId: string): Promise<JournalEntry<R> | undefined> {
    return this.queue.run(async () => {
      const data = this.prune(await this.readJournal());
      const k = jobKey(jobId);
      return Object.prototype.hasOwnProperty.call(data.jobs, k) ? data.jobs[k] : undefined;
    });
  }

  /** Marks `jobId` as started (before anything is sent). */
  start(jobId: string, e: Omit<JournalEntry<R>, 'state' | 'at' | 'result' | 'finishedAt'>): Promise<void> {
    return this.queue.run(async () => {
      const data = this.prune(await this.readJournal());
      data.jobs[jobKey(jobId)] = { ...e, state: 'started', at: this.now() };
      await this.journal.set(data);
    });
  }

  /** Completes `jobId` with its result. */
  finish(jobId: string, result: R): Promise<void> {
    return this.queue.run(async () => {
      const data = this.prune(await this.readJournal());
      const k = jobKey(jobId);
      const e = Object.prototype.hasOwnProperty.call(data.jobs, k) ? data.jobs[k] : undefined;
      if (!e) return; // pruned while running (retention shorter than the job): nothing to complete
      data.jobs[k] = { ...e, state: 'done', result, finishedAt: this.now() };
      await this.journal.set(data);
    });
  }

  /** Number of jobs remembered (for tests and status). */
  size(): Promise<number> {
    return this.queue.run(async () => Object.keys(this.prune(await this.readJournal()).jobs).length);
  }

  private async readLedger(): Promise<LedgerData> {
    const raw = await this.ledger.get();
    const now = this.now();
    const sent: Record<string, number[]> = {};
    if (raw && typeof raw === 'object' && raw.v === 1 && raw.sent && typeof raw.sent === 'object') {
      for (const [id, times] of Object.entries(raw.sent)) {
        if (!Array.isArray(times)) continue;
        const recent = times.filter((t) => typeof t === 'number' && now - t < HOUR);
        if (recent.length) sent[id] = recent;
      }
    }
    return { v: 1, sent };
  }

  /**
   * Devices that already had NOTIFICATIONS_PER_HOUR notifications within the
   * last hour, with the time (ms) from which one more is allowed.
   */
  notificationsExhausted(deviceIds: readonly string[]): Promise<Map<string, number>> {
    return this.ledgerQueue.run(async () => {
      const data = await this.readLedger();
      const out = new Map<string, number>();
      for (const id of deviceIds) {
        const times = data.sent[id.toLowerCase()];
        if (times && times.length >= NOTIFICATIONS_PER_HOUR) out.set(id, Math.min(...times) + HOUR);
      }
      return out;
    });
  }

  /** Records one notification sent to each of `deviceIds`. */
  recordNotifications(deviceIds: readonly string[]): Promise<void> {
    if (!deviceIds.length) return Promise.resolve();
    return this.ledgerQueue.run(async () => {
      const data = await this.readLedger();
      const now = this.now();
      for (const id of deviceIds) {
        const k = id.toLowerCase();
        (data.sent[k] ??= []).push(now);
      }
      await this.ledger.set(data);
    });
  }
}
