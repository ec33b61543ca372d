/**
 * A source's own schedule, like the AESB scanner intervals: e.g. a full run
 * every 24 h and an incremental run every 15 min. Generic over the run kinds.
 *
 * - One timer for all kinds. When several are due at once only the first
 *   listed (highest priority, e.g. full before incremental) fires, and the
 *   others count as done: a full run covers an incremental one.
 * - `firstDueAt` lets a node start from persisted state (the last full run
 *   was 30 h ago → due now), so a redeploy does not push a daily run back by
 *   a day every time.
 * - Ticks that were missed (the process slept, a run took longer than the
 *   interval) are not replayed: the next one is the next future slot.
 * - Node's timers cannot wait more than 2^31-1 ms; longer waits re-arm.
 * - `stop()` clears the timer; a node calls it in its close handler.
 */
import { echo } from '../shared/echo';

export interface ScheduleEntry<M extends string> {
  mode: M;
  /** Interval in ms; 0 = this kind is not scheduled. */
  everyMs: number;
  /** When the first run is due (ms since epoch); default now + everyMs. */
  firstDueAt?: number;
}

export interface ScheduleClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: ScheduleClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

const MAX_TIMER_MS = 2 ** 31 - 1;
/** Entries due within this many ms of each other fire as one tick. */
const SAME_TICK_MS = 1000;

/** Scheduled runs never start sooner than this after a deploy, so a redeploy burst does not start runs at once. */
export const FIRST_RUN_DELAY_MS = 10_000;

/**
 * When a schedule's first run is due: one interval after the last run saved
 * in context (`lastIso`), but never before FIRST_RUN_DELAY_MS from now; soon
 * after deploy when there was no (readable) last run.
 */
export function firstDueAt(lastIso: string | undefined, everyMs: number, now = Date.now()): number {
  const last = lastIso ? Date.parse(lastIso) : NaN;
  const earliest = now + FIRST_RUN_DELAY_MS;
  return Number.isFinite(last) ? Math.max(earliest, last + everyMs) : earliest;
}

export class RunSchedule<M extends string> {
  private readonly entries: Array<{ mode: M; everyMs: number; nextAt: number }>;
  private timer: unknown;
  private running = false;

  constructor(
    entries: ReadonlyArray<ScheduleEntry<M>>,
    private readonly onDue: (mode: M) => void,
    private readonly clock: ScheduleClock = systemClock,
  ) {
    const now = clock.now();
    this.entries = entries
      .filter((e) => e.everyMs > 0)
      .map((e) => ({ mode: e.mode, everyMs: e.everyMs, nextAt: e.firstDueAt ?? now + e.everyMs }));
  }

  /** True when at least one kind is scheduled. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The next tick, if any. */
  next(): { mode: M; at: number } | undefined {
    let best: { mode: M; at: number } | undefined;
    for (const e of this.entries) if (!best || e.nextAt < best.at) best = { mode: e.mode, at: e.nextAt };
    return best;
  }

  /** A run of `mode` happened at `atMs` outside the schedule (e.g. on request): count from there. */
  ranAt(mode: M, atMs: number): void {
    const e = this.entries.find((x) => x.mode === mode);
    if (!e) return;
    e.nextAt = Math.max(e.nextAt, atMs + e.everyMs);
    if (this.running) this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.running) return;
    const n = this.next();
    if (!n) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, n.at - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.tick(), wait);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const now = this.clock.now();
    const due = this.entries.filter((e) => e.nextAt <= now + SAME_TICK_MS);
    for (const e of due) {
      while (e.nextAt <= now + SAME_TICK_MS) e.nextAt += e.everyMs;
    }
    this.arm();
    // The first listed kind wins; the others were covered by it.
    if (due.length) this.onDue(due[0].mode);
  }
}

/**
 * An interval setting in `unit` (0 or empty = off). Throws a plain message
 * for negative, fractional-when-not-allowed or non-numeric values.
 */
export function intervalMs(v: unknown, unit: 'minutes' | 'hours', label: string): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${label} must be 0 (off) or a positive number of ${unit}, not ${echo(v)}`);
  const ms = n * (unit === 'hours' ? 3_600_000 : 60_000);
  if (n > 0 && ms < 60_000) throw new Error(`${label} must be at least 1 minute`);
  if (ms > 366 * 86_400_000) throw new Error(`${label} must be at most a year`);
  return Math.round(ms);
}
