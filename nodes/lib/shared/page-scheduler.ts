/**
 * The order in which a sink handles its input messages (intune-4me,
 * intune-acmp).
 *
 * Pages of device runs share the slots: while some pages wait for the
 * service's answers, the next one's requests go out (each client's own
 * pacing keeps them under the limits). Everything else — a run's end,
 * compliance pages, other messages — takes every slot, so it is handled
 * alone. Work starts in arrival order (a message that needs more slots than
 * are free holds back the ones behind it), and reports in arrival order,
 * whichever finishes first.
 */

/**
 * intune-4me's device pages handled side by side: three keep 4me's burst
 * window busy — one page uploads while the others wait for their
 * asynchronous results.
 */
export const PAGES_IN_FLIGHT = 3;

/** How a piece of work ended: its value, or what it threw. */
export type Settled<T> = { value: T } | { error: unknown };

export class PageScheduler {
  private starts: Promise<void> = Promise.resolve();
  private reports: Promise<void> = Promise.resolve();
  private running = 0;
  private waiters: Array<() => void> = [];
  private stopped = false;

  constructor(readonly slots = PAGES_IN_FLIGHT) {}

  /** Some work holds a slot. */
  get busy(): boolean {
    return this.running > 0;
  }

  /**
   * Queues `task`: `shared` (a device page) takes one slot, anything else all of them.
   * `report` gets its outcome, after the reports of everything queued before it.
   */
  submit<T>(shared: boolean, task: () => Promise<T>, report: (r: Settled<T>) => void | Promise<void>): void {
    const weight = shared ? 1 : this.slots;
    const started = this.starts.then(() => this.acquire(weight));
    this.starts = started;
    const outcome = started.then(async (): Promise<Settled<T> | undefined> => {
      // Skipped work gives its slots back, or what is queued behind it would wait for ever
      // (and drained() with it: the node's close would not save its state).
      if (this.stopped) {
        this.release(weight);
        return undefined;
      }
      try {
        return { value: await task() };
      } catch (error) {
        return { error };
      } finally {
        this.release(weight);
      }
    });
    this.reports = this.reports.then(async () => {
      const r = await outcome;
      if (r) await report(r);
    });
  }

  /** Work that has not started yet will not start (nor report); what runs, runs on. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves (or rejects, if a report threw) once everything queued so far has reported. */
  drained(): Promise<void> {
    return this.reports;
  }

  private async acquire(weight: number): Promise<void> {
    while (this.running + weight > this.slots) await new Promise<void>((r) => this.waiters.push(r));
    this.running += weight;
  }

  private release(weight: number): void {
    this.running -= weight;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}
