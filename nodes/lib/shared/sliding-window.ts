/**
 * An exact sliding-window limit as a client can keep it: at most `limit`
 * units in ANY window of `windowMs`, counted the way the service counts them
 * (when a request arrives), without knowing when that is.
 *
 * A request arrives some time between our send and its answer. So each unit
 * occupies the window from its send until `windowMs` after its answer, and a
 * new one goes out only while fewer than `limit` units occupy it. Then no
 * window of the service's can hold more than `limit` arrivals: any unit
 * arriving in a window [t, t + windowMs) was sent before t + windowMs and
 * answered after t, so it still occupied our window at the moment the last of
 * them was sent — and at that moment at most `limit` did.
 *
 * Unlike a token bucket this gives nothing away: in steady state a sender
 * gets `limit` units per `windowMs + latency`, i.e. all of the limit but the
 * latency's share (a bucket proven for every window keeps only part of it).
 *
 * This class is only the bookkeeping; callers wait in their own way (the
 * Graph pacer, the 4me client), because they also wait for other things
 * (pauses after a 429, hourly budgets). Times come from `now`, so the bound
 * can be checked with a fake clock.
 */
export interface WindowTicket {
  readonly units: number;
  settled: boolean;
}

export class SlidingWindow {
  /** Units sent and not answered yet. */
  private inFlight = 0;
  /** Answers still inside the window: when, and how many units (ascending by time). */
  private answered: Array<{ at: number; units: number }> = [];
  private waiters: Array<() => void> = [];

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isFinite(limit) || limit < 1) throw new RangeError(`A rate limit must allow at least 1 request per window (got ${limit})`);
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError(`The rate-limit window must be longer than 0 ms (got ${windowMs})`);
    this.limit = Math.floor(limit);
  }

  /** Units that occupy the window at `at`. */
  used(at: number = this.now()): number {
    this.forget(at);
    let n = this.inFlight;
    for (const a of this.answered) n += a.units;
    return n;
  }

  /**
   * How long until `units` more may go out: 0 = now; a number of ms = then,
   * when enough answers have left the window; `undefined` = not before some
   * request in flight is answered (see `answer()`).
   */
  delay(units: number, at: number = this.now()): number | undefined {
    if (units > this.limit) throw new RangeError(`${units} requests at once can never fit a limit of ${this.limit} per window`);
    const over = this.used(at) + units - this.limit;
    if (over <= 0) return 0;
    let freed = 0;
    for (const a of this.answered) {
      freed += a.units;
      if (freed >= over) return a.at + this.windowMs + 1 - at;
    }
    return undefined;
  }

  /** Records `units` sent now. Call `settle` with the ticket when the answer (or the failure) is in. */
  take(units: number): WindowTicket {
    this.inFlight += units;
    return { units, settled: false };
  }

  /** The request of `ticket` was answered (or failed) now: its units leave the window `windowMs` from now. */
  settle(ticket: WindowTicket): void {
    if (ticket.settled) return;
    ticket.settled = true;
    this.inFlight -= ticket.units;
    if (ticket.units > 0) {
      const at = this.now();
      const last = this.answered[this.answered.length - 1];
      // Clocks may step back; keep the list ascending (a later exit is the safe side).
      if (last && last.at >= at) last.units += ticket.units;
      else this.answered.push({ at, units: ticket.units });
    }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves at the next `settle` (for a caller that `delay` told to wait for an answer). */
  nextAnswer(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private forget(at: number): void {
    let i = 0;
    while (i < this.answered.length && this.answered[i].at + this.windowMs <= at) i++;
    if (i) this.answered.splice(0, i);
  }
}
