/**
 * shared/json-bytes.ts writes request bodies in pieces; the bytes must be
 * exactly those of JSON.stringify, whatever the value holds.
 */
import { expect } from 'chai';
import { jsonBytes } from '../nodes/lib/shared/json-bytes';
import { PIECE_CHARS } from '../nodes/lib/shared/pieces';

const same = (v: unknown, label: string) => expect(jsonBytes(v).toString('utf8'), label).to.equal(JSON.stringify(v));

describe('json-bytes', () => {
  it('writes what JSON.stringify writes: odd values, lists, key order, unicode', () => {
    const sym = Symbol('s');
    const values: Array<[string, unknown]> = [
      ['empty object', {}],
      ['empty list', []],
      ['primitives', { s: 'a"b\\c\n\u2028\u0000 Ü王🚀', n: -0, big: 1e21, small: 5e-324, nan: Number.NaN, inf: -Infinity, t: true, f: false, z: null }],
      ['left out in objects', { u: undefined, fn: () => 1, sym, [sym]: 1, kept: 1 }],
      ['null in lists', [undefined, () => 1, sym, null, 0, '']],
      ['holes', [1, , 3]], // eslint-disable-line no-sparse-arrays
      ['nested', { a: [[], [{}], { b: [{ c: [1, { d: 'e' }] }] }], '': 'empty key', 'k"q': 1, 2: 'numeric key first', x: 'y' }],
      ['boxed', { n: Object(1), s: Object('s'), b: Object(false), list: [Object(2), Object('t')] }],
      ['dates', { at: new Date(0), list: [new Date(86_400_000)] }],
      ['toJSON with key', { a: { toJSON: (k: string) => `key=${k}` }, list: [{ toJSON: (k: string) => `index=${k}` }] }],
      ['toJSON answering undefined', { gone: { toJSON: () => undefined }, list: [{ toJSON: () => undefined }], after: 1 }],
      ['toJSON answering an object', { a: { toJSON: () => ({ inner: [1, { toJSON: () => 'deep' }] }) } }],
      ['non-enumerable toJSON', { state: Object.defineProperty({ raw: 1 }, 'toJSON', { value: () => 'packed', enumerable: false }) }],
      ['null prototype', { o: Object.assign(Object.create(null), { a: 1 }) }],
      ['long list of odd items', Array.from({ length: 40 }, (_, i) => [{ r: i }, undefined, () => 1, new Date(i), { toJSON: (k: string) => `i${k}` }, { toJSON: () => undefined }, Object(i), [i], null, 'ü'][i % 10])],
    ];
    for (const [label, v] of values) same(v, label);
  });

  it('large bodies across many pieces, as a 4me upload looks', () => {
    const cis = Array.from({ length: 1000 }, (_, i) => ({ sourceID: `dev-${i}`, name: `Ünïcödé 王 🚀 ${'x'.repeat(i % 50)}`, customFields: [{ id: 'f', value: i % 2 ? null : { nested: [i] } }], userIds: i % 3 ? undefined : ['u'] }));
    const body = { query: 'mutation discoveredConfigurationItems($input: DiscoveredConfigurationItemsInput!) { x }', variables: { input: { source: 'Intune', referenceStrategy: 'SOURCE', configurationItems: cis } } };
    expect(JSON.stringify(body).length).to.be.greaterThan(4 * PIECE_CHARS);
    same(body, 'upload');
    same(cis, 'top-level list');
    same('x'.repeat(3 * PIECE_CHARS), 'long string');
  });

  it('refuses what JSON.stringify refuses', () => {
    const cyc: Record<string, unknown> = { a: 1 };
    cyc.self = { back: cyc };
    expect(() => JSON.stringify(cyc)).to.throw(TypeError);
    expect(() => jsonBytes(cyc)).to.throw(TypeError);
    const cycList: unknown[] = [];
    cycList.push({ list: cycList });
    expect(() => jsonBytes(cycList)).to.throw(TypeError);
    expect(() => jsonBytes({ n: BigInt(1) })).to.throw(TypeError);
    expect(() => jsonBytes([BigInt(1)])).to.throw(TypeError);
    expect(() => jsonBytes(undefined)).to.throw(TypeError);
  });
});
