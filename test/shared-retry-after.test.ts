/** parseRetryAfter (nodes/lib/shared/retry-after.ts): the one reading of Retry-After for Graph and 4me. */
import { expect } from 'chai';
import { parseRetryAfter } from '../nodes/lib/shared/retry-after';

describe('shared: parseRetryAfter', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).to.equal(7000);
    expect(parseRetryAfter(' 0 ', now)).to.equal(0);
    expect(parseRetryAfter('1.5', now)).to.equal(1500);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).to.equal(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).to.equal(0);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT'))).to.equal(2000);
  });

  it('takes what a header object holds: a number, or nothing', () => {
    expect(parseRetryAfter(3, 0)).to.equal(3000);
    expect(parseRetryAfter(undefined)).to.equal(undefined);
    expect(parseRetryAfter(null)).to.equal(undefined);
    expect(parseRetryAfter('   ')).to.equal(undefined);
  });

  it('gives undefined for what is neither seconds nor a date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('soon', now)).to.equal(undefined);
    expect(parseRetryAfter('-3', now)).to.equal(undefined);
    expect(parseRetryAfter('2026-01-01T00:00:30Z', now)).to.equal(undefined); // not an HTTP date
    expect(parseRetryAfter('Mon, 99 Foo 2026', now)).to.equal(undefined);
  });
});
