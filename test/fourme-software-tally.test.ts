/**
 * The software part of intune-4me's run summary (SoftwareTally,
 * nodes/lib/fourme/fourme-software-sync.ts): pages run side by side and
 * report in any order, so "unchanged" must not count a software CI that
 * another page of the same run wrote.
 */
import { expect } from 'chai';
import { SoftwareTally, type SoftwareOutcome } from '../nodes/lib/fourme/fourme-software-sync';

const page = (o: Record<string, SoftwareOutcome>) => new Map(Object.entries(o));

describe('4me software tally', () => {
  it('a first run: an app created on one page and found "in flight" on another counts as created only, whatever the order', () => {
    for (const order of ['creator first', 'creator last'] as const) {
      const t = new SoftwareTally();
      const creator = page({ a: 'created', b: 'created' });
      const other = page({ a: 'unchanged', c: 'created' }); // a: was being written by the creator page
      if (order === 'creator first') [creator, other].forEach((p) => t.add(p));
      else [other, creator].forEach((p) => t.add(p));
      t.read = 1; // the run carried software
      expect(t.summary(), order).to.include({ created: 3, unchanged: 0, updated: 0, failed: 0 });
    }
  });

  it('a second run: what no page wrote is unchanged, once per software CI; writes and failures count every time', () => {
    const t = new SoftwareTally();
    t.add(page({ a: 'unchanged', b: 'unchanged', c: 'updated' }));
    t.add(page({ a: 'unchanged', b: 'updated', d: 'failed' }));
    t.add(page({ d: 'failed', e: 'reactivated' }));
    t.read = 1;
    expect(t.summary()).to.include({ unchanged: 1, updated: 2, failed: 2, reactivated: 1, created: 0 });
  });
});
