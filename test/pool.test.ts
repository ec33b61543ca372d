/**
 * shared/pool.ts: at most n workers hold a slot; release() frees a slot
 * early (a 4me upload answered, only its asynchronous result to wait for),
 * and a fatal error stops new starts but waits for the started ones.
 */
import { expect } from 'chai';
import { pool } from '../nodes/lib/shared/pool';

const tick = () => new Promise((r) => setImmediate(r));

describe('pool (shared/pool.ts)', () => {
  it('never lets more than n hold a slot, and runs every item once, in order of start', async () => {
    let holding = 0;
    let most = 0;
    const started: number[] = [];
    await pool([0, 1, 2, 3, 4, 5, 6], 3, async (item) => {
      started.push(item);
      holding++;
      most = Math.max(most, holding);
      await tick();
      await tick();
      holding--;
    });
    expect(most).to.equal(3);
    expect(started).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
  });

  it('release() lets the next item start while the released one still runs; pool() returns only when all have ended', async () => {
    const finishers: Array<() => void> = [];
    const started: number[] = [];
    const ended: number[] = [];
    let done = false;
    const all = pool([0, 1, 2, 3], 1, async (item, _i, release) => {
      started.push(item);
      release();
      await new Promise<void>((r) => finishers.push(r));
      ended.push(item);
    }).then(() => (done = true));
    for (let k = 0; k < 5; k++) await tick();
    expect(started, 'each released its slot at once: all four started with n = 1').to.deep.equal([0, 1, 2, 3]);
    expect(done).to.equal(false);
    finishers.forEach((f) => f());
    await all;
    expect(ended.sort()).to.deep.equal([0, 1, 2, 3]);
  });

  it('without release() a slot is held to the end: with n = 1 the second starts after the first ended', async () => {
    const log: string[] = [];
    await pool(['a', 'b'], 1, async (item) => {
      log.push(`start ${item}`);
      await tick();
      log.push(`end ${item}`);
    });
    expect(log).to.deep.equal(['start a', 'end a', 'start b', 'end b']);
  });

  it('a fatal error starts nothing new, waits for what runs, and is thrown once', async () => {
    const started: number[] = [];
    let slowEnded = false;
    const err = await pool([0, 1, 2, 3, 4], 2, async (item) => {
      started.push(item);
      if (item === 0) {
        await tick();
        await tick();
        await tick();
        slowEnded = true;
        return;
      }
      if (item === 1) throw new Error('fatal');
    }).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.equal('fatal');
    expect(slowEnded, 'the running worker was awaited').to.equal(true);
    expect(started).to.not.include(4);
  });
});
