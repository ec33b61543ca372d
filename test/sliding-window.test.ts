/**
 * The shared sliding-window pacer (nodes/lib/shared/sliding-window.ts),
 * checked with a fake clock: a greedy sender replayed event by event, the
 * service counting each request when it ARRIVES (somewhere between our send
 * and its answer). No wall time is measured.
 */
import { expect } from 'chai';
import { SlidingWindow } from '../nodes/lib/shared/sliding-window';

/** The most timestamps in any half-open window [t, t + windowMs). */
function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (t[i] - t[j] >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/** Small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sim {
  limit: number;
  windowMs: number;
  /** Units per request (a $batch of 20 writes = 20). */
  units: number;
  latencyMs: [number, number];
  /** Where between send and answer the service counts the request: a fixed fraction, or random. */
  arrival: number | 'random';
  concurrency: number;
  windows: number;
  seed: number;
}

/** Replays a sender that sends whenever the window lets it; returns send and arrival times per unit. */
function simulate(s: Sim): { sends: number[]; arrivals: number[] } {
  const r = rng(s.seed);
  let now = 0;
  const win = new SlidingWindow(s.limit, s.windowMs, () => now);
  const sends: number[] = [];
  const arrivals: number[] = [];
  let answers: Array<{ at: number; settle: () => void }> = [];
  const end = s.windows * s.windowMs;
  while (now < end) {
    let wait: number | undefined = 0;
    while (answers.length < s.concurrency) {
      wait = win.delay(s.units, now);
      if (wait !== 0) break;
      const ticket = win.take(s.units);
      const latency = s.latencyMs[0] + r() * (s.latencyMs[1] - s.latencyMs[0]);
      const f = s.arrival === 'random' ? r() : s.arrival;
      for (let i = 0; i < s.units; i++) {
        sends.push(now);
        arrivals.push(now + f * latency);
      }
      answers.push({ at: now + latency, settle: () => win.settle(ticket) });
    }
    const nextAnswer = answers.reduce((m, a) => Math.min(m, a.at), Infinity);
    const nextRoom = typeof wait === 'number' && wait > 0 ? now + wait : Infinity;
    const next = Math.min(nextAnswer, nextRoom);
    if (!Number.isFinite(next)) throw new Error('the sender is stuck');
    now = next;
    const due = answers.filter((a) => a.at <= now).sort((a, b) => a.at - b.at);
    answers = answers.filter((a) => a.at > now);
    for (const a of due) a.settle();
  }
  return { sends, arrivals };
}

/** Units sent per window in steady state (after the first window), averaged. */
function steadyRate(sends: number[], windowMs: number, windows: number): number {
  const from = windowMs;
  const to = windows * windowMs;
  return sends.filter((t) => t >= from && t < to).length / (windows - 1);
}

describe('shared sliding-window pacer (fake clock)', () => {
  const cases: Array<Partial<Sim> & { name: string }> = [
    { name: 'Graph writes: 200 per 20 s, $batches of 20', limit: 200, windowMs: 20_000, units: 20, latencyMs: [40, 600], concurrency: 8 },
    { name: 'Graph writes, one at a time', limit: 200, windowMs: 20_000, units: 1, latencyMs: [40, 600], concurrency: 50 },
    { name: '4me: 20 per 2 s, one call each', limit: 20, windowMs: 2_000, units: 1, latencyMs: [30, 90], concurrency: 8 },
    { name: 'Graph requests: 2,000 per 20 s, $batches of 20', limit: 2000, windowMs: 20_000, units: 20, latencyMs: [40, 600], concurrency: 20 },
  ];
  for (const c of cases) {
    for (const arrival of [0, 1, 'random'] as const) {
      it(`${c.name}, counted at ${arrival === 0 ? 'the send' : arrival === 1 ? 'the answer' : 'a random moment in between'}: no window exceeds the limit, ≥ 95 % of it is used`, () => {
        const s: Sim = { limit: 0, windowMs: 0, units: 1, latencyMs: [0, 0], concurrency: 1, windows: 30, seed: 7, arrival, ...c } as Sim;
        const { sends, arrivals } = simulate(s);
        expect(maxInWindow(arrivals, s.windowMs), 'arrivals in the worst window').to.be.at.most(s.limit);
        expect(steadyRate(sends, s.windowMs, s.windows), 'units per window in steady state').to.be.at.least(0.95 * s.limit);
      });
    }
  }

  it('counting a request only from its send would not hold: the answer is what bounds the window', () => {
    // The checker can see a violation: 200 sent at 0 arriving late, 200 more sent at 20 s arriving early.
    const arrivals = [...Array(200).fill(19_000), ...Array(200).fill(20_001)];
    expect(maxInWindow(arrivals, 20_000)).to.equal(400);
    // The window keeps the second lot back until 20 s after the first lot's answer.
    let now = 0;
    const win = new SlidingWindow(200, 20_000, () => now);
    const t = win.take(200);
    now = 19_500;
    win.settle(t);
    now = 20_001;
    expect(win.delay(1, now)).to.equal(19_500 + 20_000 + 1 - 20_001);
  });

  it('waits for an answer when everything in the window is still in flight', async () => {
    let now = 0;
    const win = new SlidingWindow(3, 1000, () => now);
    const a = win.take(2);
    win.take(1);
    expect(win.delay(1, now)).to.equal(undefined);
    const woke = win.nextAnswer();
    now = 50;
    win.settle(a);
    await woke;
    expect(win.delay(1, now), 'the answered units leave one window after the answer').to.equal(1001);
    expect(win.delay(2, 1051)).to.equal(0);
    expect(win.used(1051)).to.equal(1);
  });

  it('refuses a request larger than the limit, and a ticket settles once', () => {
    const win = new SlidingWindow(20, 1000, () => 0);
    expect(() => win.delay(21)).to.throw(RangeError);
    const t = win.take(5);
    win.settle(t);
    win.settle(t);
    expect(win.used(0)).to.equal(5);
  });
});
