/**
 * Flow control between a source's pages and the sinks writing them
 * (nodes/lib/run/run-progress.ts).
 */
import { expect } from 'chai';
import { RunProgress } from '../nodes/lib/run/run-progress';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('run-progress (source ↔ sink flow control)', () => {
  it('nobody consuming, or page < 1: no wait', async () => {
    const p = new RunProgress();
    p.begin('r');
    expect(await p.waitFor('r', 0, { maxWaitMs: 1000 })).to.deep.equal({ waitedMs: 0, timedOut: false });
    expect(await p.waitFor('r', 5, { maxWaitMs: 1000 })).to.deep.equal({ waitedMs: 0, timedOut: false });
    expect(await p.waitFor('unknown', 5, { maxWaitMs: 1000 })).to.deep.equal({ waitedMs: 0, timedOut: false });
  });

  it('waits for the slowest sink to finish the page', async () => {
    const p = new RunProgress();
    p.begin('r');
    p.received('r', 'a', 1);
    p.received('r', 'b', 1);
    let done = false;
    const w = p.waitFor('r', 2, { maxWaitMs: 10_000 }).then((x) => {
      done = true;
      return x;
    });
    p.finished('r', 'a', 1);
    p.finished('r', 'a', 2);
    p.finished('r', 'b', 1);
    await tick();
    expect(done, 'b has not finished page 2').to.equal(false);
    expect(p.consumers('r')).to.deep.equal({ a: 2, b: 1 });
    p.finished('r', 'b', 2);
    expect((await w).timedOut).to.equal(false);
    expect(done).to.equal(true);
  });

  it('a sink joining late counts from the page before the one it received; one leaving (last page, close) is not waited for', async () => {
    const p = new RunProgress();
    p.begin('r');
    p.received('r', 'a', 3);
    expect(p.consumers('r')).to.deep.equal({ a: 2 });
    const w = p.waitFor('r', 4, { maxWaitMs: 10_000 });
    p.release('r', 'a');
    expect((await w).timedOut).to.equal(false);
    p.received('r', 'b', 1);
    const w2 = p.waitFor('r', 1, { maxWaitMs: 10_000 });
    p.releaseAll('b');
    expect((await w2).timedOut).to.equal(false);
  });

  it('gives up after maxWaitMs, and an abort ends the wait at once', async () => {
    const p = new RunProgress();
    p.begin('r');
    p.received('r', 'stuck', 1);
    const t0 = Date.now();
    const w = await p.waitFor('r', 1, { maxWaitMs: 50 });
    expect(w.timedOut).to.equal(true);
    expect(Date.now() - t0).to.be.within(40, 1000);
    const ctl = new AbortController();
    const pending = p.waitFor('r', 1, { maxWaitMs: 60_000, signal: ctl.signal }).then(
      () => 'resolved',
      (e) => (e as Error).name,
    );
    ctl.abort(Object.assign(new Error('stop'), { name: 'AbortError' }));
    expect(await pending).to.equal('AbortError');
  });

  it('the end of a run releases its waiters and forgets it once every sink has left', async () => {
    const p = new RunProgress();
    p.begin('r');
    p.received('r', 'a', 1);
    const w = p.waitFor('r', 1, { maxWaitMs: 60_000 });
    p.end('r');
    expect((await w).timedOut).to.equal(false);
    expect(p.consumers('r')).to.deep.equal({ a: 0 });
    p.finished('r', 'a', 1);
    p.release('r', 'a');
    expect(p.consumers('r')).to.deep.equal({});
    // reports about unknown runs are harmless
    p.finished('gone', 'a', 3);
    p.release('gone', 'a');
  });
});
