/**
 * The ACMP sink's fingerprints are stored: the canonical text they hash must
 * stay exactly what the earlier map/filter/sort/join version wrote, or every
 * device would look changed after an upgrade. `reference` is that version.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { canonical, fingerprint } from '../nodes/lib/acmp/acmp-fingerprint';
import { makeDevice } from './support/acmp-fixtures';

function reference(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${reference(o[k])}`)
    .join(',')}}`;
}

describe('acmp-fingerprint: canonical text', () => {
  it('is the text of the earlier version for devices and odd values', () => {
    const values: unknown[] = [
      makeDevice(),
      makeDevice({ name: 'Ünïcödé 王 🚀 "q" \\', user: null, software: [{ key: 'k', name: 'N', version: null, publisher: 'P', platform: null, sizeBytes: 1 }] }),
      { b: 1, a: 2, A: 3, _: 4, '10': 5, '9': 6, 'é': 7, 'z"q': 8, '': 9, 'ä': { y: [1, { d: undefined, c: null }], x: undefined } },
      [1, , 3, undefined, null, [[]], {}], // eslint-disable-line no-sparse-arrays
      { n: Number.NaN, i: -Infinity, z: -0, big: 1e21, s: '\u2028\u0000', f: () => 1, sym: Symbol('x'), d: new Date(0) },
      'text',
      42,
      null,
      undefined,
    ];
    for (const v of values) expect(canonical(v), JSON.stringify(v)).to.equal(reference(v));
  });

  it('the device part leaves the software out exactly as the spread copy did', () => {
    const defs = ['IntuneMobileDevices_1', 'Ü'];
    for (const d of [makeDevice(), makeDevice({ software: [] }), makeDevice({ software: undefined }), makeDevice({ name: '🚀', serialNumber: null })]) {
      for (const def of defs) {
        const text = `1.0\u0000${def}\u0000${reference({ ...d, software: undefined })}`;
        expect(fingerprint(d, def)).to.equal(createHash('sha256').update(text).digest('base64url').slice(0, 22));
      }
    }
  });
});
