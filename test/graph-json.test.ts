/**
 * graph-json.ts reads a Graph answer from its bytes, cutting a large OData
 * collection at its `value` list. Whatever it does, the result must be what
 * `JSON.parse` of the text `Response.text()` gives (BOM dropped, malformed
 * UTF-8 as U+FFFD), and invalid JSON must throw as it did.
 */
import { expect } from 'chai';
import { SPLIT_MIN_BYTES, parseJsonBytes } from '../nodes/lib/graph/graph-json';

const reference = (b: Buffer) => {
  const text = new TextDecoder('utf-8').decode(b);
  return text ? JSON.parse(text) : undefined;
};

/** Items odd enough to trip a cutter: quotes, backslashes at string ends, brackets and "value" in strings, unicode, nesting. */
function oddItem(i: number): unknown {
  return {
    id: `dev-${i}`,
    deviceName: ['plain', 'quote " inside', 'ends with backslash \\', '\\"', '{[', ']}', ',', '"value":[', 'Ünïcödé 王 🚀', '\u0000\u001f\u2028'][i % 10],
    value: i % 3 ? [i, { value: [] }] : 'value',
    nested: { a: [[], {}, [null, true, false, -1.5e-7]], 'key "q"': '\\\\' },
    n: i,
  };
}

function page(items: unknown[], o: { nextFirst?: boolean; pretty?: boolean } = {}): string {
  const obj = o.nextFirst
    ? { '@odata.nextLink': 'https://graph.microsoft.com/v1.0/x?$skiptoken=a%22b', '@odata.context': 'ctx', value: items }
    : { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices', '@odata.count': items.length, value: items, '@odata.nextLink': 'https://graph.microsoft.com/v1.0/x?$skiptoken=abc' };
  return o.pretty ? JSON.stringify(obj, null, 2) : JSON.stringify(obj);
}

const many = (n: number) => Array.from({ length: n }, (_, i) => oddItem(i));

function same(text: string | Buffer, label: string): void {
  const b = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  let want: unknown;
  let wantErr: unknown;
  try {
    want = reference(b);
  } catch (e) {
    wantErr = e;
  }
  if (wantErr) {
    expect(() => parseJsonBytes(b), label).to.throw(SyntaxError);
    return;
  }
  const got = parseJsonBytes(b);
  expect(got, label).to.deep.equal(want);
  if (got && typeof got === 'object') expect(Object.keys(got), label).to.deep.equal(Object.keys(want as object));
}

describe('graph-json: answers read from bytes', () => {
  it('large pages come out as JSON.parse makes them, key order included', () => {
    const big = many(1500);
    expect(Buffer.byteLength(page(big))).to.be.greaterThan(SPLIT_MIN_BYTES);
    same(page(big), 'compact');
    same(page(big, { pretty: true }), 'pretty');
    same(page(big, { nextFirst: true }), 'nextLink first');
    same('\uFEFF' + page(big), 'BOM');
    same(`  \n${page(big)}\n  `, 'whitespace around');
  });

  it('small answers, empty lists and other shapes too', () => {
    const pad = 'x'.repeat(SPLIT_MIN_BYTES);
    for (const [label, text] of [
      ['empty', ''],
      ['BOM only', '\uFEFF'],
      ['small page', page(many(3))],
      ['empty list, large', `{"pad":"${pad}","value":[]}`],
      ['blank list, large', `{"pad":"${pad}","value":[ \n ]}`],
      ['no value key', `{"pad":"${pad}","values":[1,2]}`],
      ['value not a list', `{"pad":"${pad}","value":{"a":[1]}}`],
      ['value as a string value', `{"a":"value","pad":"${pad}","value":[1,"2",{"value":[3]}]}`],
      ['error body', `{"error":{"code":"BadRequest","message":"${pad}","innerError":{"request-id":"r"}}}`],
      ['top-level list', `[${JSON.stringify(pad)},1]`],
      ['two value keys', `{"value":[1,2],"pad":"${pad}","value":[3]}`],
      ['escaped value key after', `{"value":[1,2],"pad":"${pad}","\\u0076alue":[]}`],
      ['escaped value key before', `{"\\u0076alue":[9],"pad":"${pad}","value":[1]}`],
      ['primitive items', `{"pad":"${pad}","value":[1, -2.5e3 ,"a,b]",true,null,[],{}]}`],
    ] as const) {
      same(text, label);
    }
  });

  it('malformed UTF-8 is read as U+FFFD, as Response.text() reads it', () => {
    const head = Buffer.from(`{"pad":"${'y'.repeat(SPLIT_MIN_BYTES)}","value":[{"n":"`);
    const b = Buffer.concat([head, Buffer.from([0xff, 0xc3]), Buffer.from('"},{"n":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}]}')]);
    same(b, 'bad utf-8');
    expect((parseJsonBytes(b) as { value: Array<{ n: string }> }).value[0].n).to.equal('\uFFFD\uFFFD');
  });

  it('invalid JSON still throws a SyntaxError', () => {
    const pad = 'z'.repeat(SPLIT_MIN_BYTES);
    const bad = [
      `{"pad":"${pad}","value":[1,2,]}`,
      `{"pad":"${pad}","value":[,]}`,
      `{"pad":"${pad}","value":[1 2]}`,
      `{"pad":"${pad}","value":[{"a":1}{"b":2}]}`,
      `{"pad":"${pad}","value":[{"a":1]}`,
      `{"pad":"${pad}","value":[1,2]`,
      `{"pad":"${pad}","value":[1,2]}}`,
      `{"pad":"${pad}","value":[1,2]} x`,
      `{"pad":"${pad}" "value":[1]}`,
      `{"pad":"${pad}`,
      page(many(1500)).slice(0, -10),
      `<html>${pad}</html>`,
    ];
    for (const text of bad) {
      expect(() => reference(Buffer.from(text)), text.slice(-30)).to.throw(SyntaxError);
      expect(() => parseJsonBytes(Buffer.from(text)), text.slice(-30)).to.throw(SyntaxError);
    }
  });

  it('reads a view into a larger buffer from its own bytes', () => {
    const text = page(many(1500));
    const whole = Buffer.concat([Buffer.from('garbage['), Buffer.from(text), Buffer.from(']]')]);
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 8, Buffer.byteLength(text));
    expect(parseJsonBytes(view)).to.deep.equal(JSON.parse(text));
  });
});
