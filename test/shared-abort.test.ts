/** sleep and raceAbort (nodes/lib/shared/abort.ts): waiting that stops when a run is stopped. */
import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { abortError, raceAbort, sleep } from '../nodes/lib/shared/abort';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** How many listeners a signal holds for 'abort' (Node keeps them on the EventTarget). */
function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

class MyStop extends Error {}

describe('shared: abortable waits', () => {
  describe('sleep', () => {
    it('waits the time, and leaves no listener behind', async () => {
      const ctl = new AbortController();
      const t0 = Date.now();
      await sleep(40, ctl.signal);
      expect(Date.now() - t0).to.be.at.least(35);
      expect(abortListeners(ctl.signal)).to.equal(0);
    });

    it('sleeps abortably', async () => {
      const ctl = new AbortController();
      const t0 = Date.now();
      setTimeout(() => ctl.abort(), 30);
      const err = (await rejection(sleep(10_000, ctl.signal))) as Error;
      expect(err.name).to.equal('AbortError');
      expect(Date.now() - t0).to.be.below(1000);
    });

    it('rejects at once with the caller\'s error when the signal has already aborted', async () => {
      const ctl = new AbortController();
      ctl.abort();
      const t0 = Date.now();
      const err = await rejection(sleep(10_000, ctl.signal, () => new MyStop('stopped')));
      expect(err).to.be.instanceOf(MyStop);
      expect(Date.now() - t0).to.be.below(100);
    });

    it('rejects with the caller\'s error when aborted while waiting, and gets the signal', async () => {
      const ctl = new AbortController();
      setTimeout(() => ctl.abort('why'), 10);
      const err = await rejection(sleep(10_000, ctl.signal, (s) => new MyStop(String(s.reason))));
      expect(err).to.be.instanceOf(MyStop);
      expect((err as Error).message).to.equal('why');
    });

    it('resolves at once for no time, and works without a signal', async () => {
      const t0 = Date.now();
      await sleep(0);
      await sleep(-5);
      await sleep(20);
      expect(Date.now() - t0).to.be.within(15, 500);
    });
  });

  describe('raceAbort', () => {
    it('settles like the promise when nothing aborts, and removes its listener', async () => {
      const ctl = new AbortController();
      expect(await raceAbort(Promise.resolve(7), ctl.signal)).to.equal(7);
      const err = await rejection(raceAbort(Promise.reject(new Error('boom')), ctl.signal));
      expect((err as Error).message).to.equal('boom');
      expect(abortListeners(ctl.signal)).to.equal(0);
    });

    it('rejects as soon as the signal aborts, although the promise never settles', async () => {
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 10);
      const err = (await rejection(raceAbort(new Promise(() => undefined), ctl.signal))) as Error;
      expect(err.name).to.equal('AbortError');
    });

    it('rejects at once with the caller\'s error when already aborted', async () => {
      const ctl = new AbortController();
      ctl.abort();
      const err = await rejection(raceAbort(new Promise(() => undefined), ctl.signal, () => new MyStop('x')));
      expect(err).to.be.instanceOf(MyStop);
    });
  });

  it('abortError is an Error named AbortError', () => {
    const e = abortError('stopped');
    expect(e).to.be.instanceOf(Error);
    expect(e.name).to.equal('AbortError');
    expect(e.message).to.equal('stopped');
  });
});
