/**
 * The order in which intune-4me handles its messages
 * (nodes/lib/shared/page-scheduler.ts), without Node-RED or 4me: tasks are
 * promises the test settles by hand.
 */
import { expect } from 'chai';
import { PAGES_IN_FLIGHT, PageScheduler, type Settled } from '../nodes/lib/shared/page-scheduler';

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A task the test finishes (or fails) when it wants; `started` says whether it was called. */
function gate<T>(value: T) {
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const g = {
    started: false,
    task: () => {
      g.started = true;
      return new Promise<T>((res, rej) => {
        finish = () => res(value);
        fail = rej;
      });
    },
    finish: () => finish(),
    fail: (e: Error) => fail(e),
  };
  return g;
}

describe('page-scheduler: how intune-4me orders its pages', () => {
  it('device pages run PAGES_IN_FLIGHT (3) at a time; the next starts when one finishes', async () => {
    expect(PAGES_IN_FLIGHT).to.equal(3);
    const s = new PageScheduler();
    const gs = [1, 2, 3, 4].map((n) => gate(n));
    for (const g of gs) s.submit(true, g.task, () => undefined);
    await tick();
    expect(gs.map((g) => g.started)).to.deep.equal([true, true, true, false]);
    gs[1].finish();
    await tick();
    expect(gs[3].started).to.equal(true);
  });

  it('anything else runs alone: after the pages before it, and before the pages after it', async () => {
    const s = new PageScheduler();
    const page1 = gate('p1');
    const alone = gate('c');
    const page2 = gate('p2');
    s.submit(true, page1.task, () => undefined);
    s.submit(false, alone.task, () => undefined);
    s.submit(true, page2.task, () => undefined);
    await tick();
    expect([page1.started, alone.started, page2.started]).to.deep.equal([true, false, false]);
    page1.finish();
    await tick();
    // page2 had free slots, but starts keep arrival order
    expect([alone.started, page2.started]).to.deep.equal([true, false]);
    alone.finish();
    await tick();
    expect(page2.started).to.equal(true);
  });

  it('reports go out in arrival order, whichever task finishes first; a failure is reported and the rest goes on', async () => {
    const s = new PageScheduler();
    const seen: string[] = [];
    const note = (name: string) => (r: Settled<string>) => void seen.push('value' in r ? `${name}=${r.value}` : `${name}!${(r.error as Error).message}`);
    const a = gate('a');
    const b = gate('b');
    const c = gate('c');
    s.submit(true, a.task, note('a'));
    s.submit(true, b.task, note('b'));
    s.submit(true, c.task, note('c'));
    await tick();
    c.finish();
    b.fail(new Error('429'));
    await tick();
    expect(seen).to.deep.equal([]);
    a.finish();
    await s.drained();
    expect(seen).to.deep.equal(['a=a', 'b!429', 'c=c']);
  });

  it('busy while any task holds a slot', async () => {
    const s = new PageScheduler();
    expect(s.busy).to.equal(false);
    const a = gate(1);
    s.submit(true, a.task, () => undefined);
    await tick();
    expect(s.busy).to.equal(true);
    a.finish();
    await s.drained();
    expect(s.busy).to.equal(false);
  });

  it('after stop(), work not yet started neither starts nor reports; running work still reports', async () => {
    const s = new PageScheduler();
    const seen: string[] = [];
    const running = gate('r');
    const queued = gate('q');
    s.submit(false, running.task, () => void seen.push('running'));
    s.submit(true, queued.task, () => void seen.push('queued'));
    await tick();
    s.stop();
    running.finish();
    await s.drained();
    expect(queued.started).to.equal(false);
    expect(seen).to.deep.equal(['running']);
  });

  it('after stop(), skipped work gives its slots back: what is queued behind it is skipped too, and drained() resolves', async () => {
    const s = new PageScheduler();
    const running = gate('r');
    const alone = gate('a');
    const page = gate('p');
    s.submit(true, running.task, () => undefined);
    s.submit(false, alone.task, () => undefined);
    s.submit(true, page.task, () => undefined);
    await tick();
    s.stop();
    running.finish();
    const drained = await Promise.race([s.drained().then(() => 'drained'), new Promise((r) => setTimeout(() => r('stuck'), 200))]);
    expect(drained).to.equal('drained');
    expect([alone.started, page.started, s.busy]).to.deep.equal([false, false, false]);
  });
});
