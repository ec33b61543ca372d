/**
 * The piecewise XML writer, the byte form of a message and the publish body
 * built as bytes must give exactly what the earlier string-at-once code gave:
 * the same XML text, the same UTF-8 bytes, the same JSON body on the wire.
 * `referenceXml` is the earlier writer, kept here as the yardstick.
 */
import { expect } from 'chai';
import { XmlError, base64Length, el, xmlByteLength, escapeAttr, escapeText, renderXml, renderXmlBytes, textElement, toBase64, writeBase64, type XmlChild, type XmlNode } from '../nodes/lib/acmp/acmp-xml';
import { encodeMessage, encodeMessageBytes, header, type WireMessage } from '../nodes/lib/acmp/acmp-wire';
import { publishBody } from '../nodes/lib/acmp/sics-client';
import { makeDevice } from './support/acmp-fixtures';

/** The writer as it was: one array of every piece, joined at the end. */
function referenceXml(root: XmlNode, declaration = true): string {
  const out: string[] = [];
  const attr = (v: string | number | boolean) => (typeof v === 'number' ? String(v) : typeof v === 'boolean' ? (v ? 'true' : 'false') : v);
  const into = (node: XmlNode): void => {
    out.push('<', node.name);
    for (const [k, v] of Object.entries(node.attrs ?? {})) if (v !== null && v !== undefined) out.push(' ', k, '="', escapeAttr(attr(v)), '"');
    const kids = (node.children ?? []).filter((c): c is XmlNode | string => c !== null && c !== undefined && c !== false);
    if (!kids.length) return void out.push('/>');
    out.push('>');
    for (const c of kids) typeof c === 'string' ? out.push(escapeText(c)) : into(c);
    out.push('</', node.name, '>');
  };
  if (declaration) out.push('<?xml version="1.0" encoding="UTF-8"?>');
  into(root);
  return out.join('');
}

const ODD = ['', 'plain', 'Tom & Jerry\'s "phone" <b>', 'line1\nline2\r\nend\ttab', 'Ünïcödé 王 Łukasz 🚀📱', 'ctrl\u0001\u001f', '\uFFFE', '&amp; ]]>'];

/** A wide tree: many elements, multi-byte text at every position, so pieces end next to every kind of character. */
function bigTree(n: number): XmlNode {
  const kids: XmlChild[] = [];
  for (let i = 0; i < n; i++) {
    const s = ODD[i % ODD.length] + '王'.repeat(i % 7) + '🚀'.repeat(i % 3);
    kids.push(el('Item', { i, odd: i % 2 === 1, text: ODD[i % ODD.length].replace(/[\u0001\u001f\uFFFE]/g, '') || null }, textElement('T', s), i % 5 ? null : false, el('E'), i % 3 ? 'tail & text' : undefined));
  }
  return el('Root', { xmlns: 'urn:x' }, ...kids);
}

function inventory(n: number): WireMessage {
  const devices = Array.from({ length: n }, (_, i) => makeDevice({ name: `${ODD[i % ODD.length]}-${i}`, model: i % 4 ? 'Surface 王' : null, user: i % 3 ? null : { id: 'u', upn: 'ü@x', email: null, displayName: ODD[(i + 1) % ODD.length] } }));
  return { kind: 'inventory', header: header({ instance: 'IntuneConnector_1', serverId: 'SRV1' }), onDemandDefinition: 'IntuneMobileDevices_1', runId: 'r', mode: 'full', page: 3, batch: 2, devices };
}

describe('acmp-xml: piecewise writing', () => {
  it('renders exactly the text of the earlier writer (and counts its bytes), small and large trees, with and without declaration', () => {
    const trees = [el('R'), el('A', { x: 'say "hi" & <go>', n: 3, b: true, skip: null }, 'T&T', el('B')), el('A', null, null, false, undefined), el('A', {}, ''), bigTree(50), bigTree(3000)];
    for (const t of trees) {
      for (const declaration of [true, false]) {
        const want = referenceXml(t, declaration);
        expect(renderXml(t, { declaration })).to.equal(want);
        expect(renderXmlBytes(t, { declaration }).equals(Buffer.from(want, 'utf8'))).to.equal(true);
        expect(xmlByteLength(t, { declaration })).to.equal(Buffer.byteLength(want, 'utf8'));
      }
    }
    expect(renderXmlBytes(bigTree(3000)).length).to.be.greaterThan(64 * 1024); // several pieces
  });

  it('refuses what the earlier writer refused', () => {
    for (const bad of [el('bad name'), el('A', { 'x y': '1' }), el('A', { n: Number.NaN }), el('A', null, 'a\u0001'), el('A', { v: '\uFFFF' })]) {
      expect(() => renderXml(bad)).to.throw(XmlError);
      expect(() => renderXmlBytes(bad)).to.throw(XmlError);
      expect(() => xmlByteLength(bad)).to.throw(XmlError);
    }
  });

  it('writeBase64 writes what toString("base64") writes, at any length and offset', () => {
    const step = 3 * 16 * 1024;
    for (const n of [0, 1, 2, 3, 4, 100, step - 1, step, step + 1, step + 2, 3 * step + 5]) {
      const src = Buffer.alloc(n);
      for (let i = 0; i < n; i++) src[i] = (i * 131 + 7) & 0xff;
      const dst = Buffer.alloc(base64Length(n) + 5, 0x2a);
      const end = writeBase64(src, dst, 3);
      expect(end, `n=${n}`).to.equal(3 + base64Length(n));
      expect(dst.subarray(3, end).toString('latin1'), `n=${n}`).to.equal(src.toString('base64'));
      expect(dst.subarray(0, 3).toString('latin1') + dst.subarray(end).toString('latin1')).to.equal('*****');
    }
    // a view into a larger buffer is read from its own offset
    const whole = Buffer.from('xxhello worldyy');
    const dst = Buffer.alloc(base64Length(11));
    writeBase64(whole.subarray(2, 13), dst, 0);
    expect(dst.toString('latin1')).to.equal(Buffer.from('hello world').toString('base64'));
  });
});

describe('acmp-wire: messages as bytes', () => {
  it('encodeMessageBytes is the UTF-8 of encodeMessage, every kind, both formats', () => {
    const msgs: WireMessage[] = [
      inventory(0),
      inventory(1),
      inventory(200),
      { kind: 'removal', header: header(), onDemandDefinition: 'D', runId: 'r', deviceIds: ['a', 'b'] },
      { kind: 'jobStatus', header: header(), jobId: 'j', state: 'finished', finishedAt: '2025-01-01T00:00:00.000Z', reason: 'Ü & <x>', clients: [{ intuneId: 'a', state: 'failed', error: '王' }] },
      { kind: 'ping', header: header() },
      { kind: 'reply', header: header({ serverId: 'S' }), inReplyTo: 'm1', command: 'IntuneDeviceInventory', code: 0, message: 'ok 🚀', failed: [{ intuneId: 'a', code: 32 }] },
    ];
    for (const m of msgs) for (const format of [1, 2] as const) expect(encodeMessageBytes(m, format).equals(Buffer.from(encodeMessage(m, format), 'utf8')), `${m.kind} v${format}`).to.equal(true);
    expect(() => encodeMessageBytes({ kind: 'ping', header: { messageId: '', sentAt: 'x' } })).to.throw(/messageId/);
  });
});

describe('sics-client: the publish body as bytes', () => {
  it('is byte for byte JSON.stringify of the object with the Base64 body', () => {
    const docs = ['', '<x/>', encodeMessage(inventory(200)), 'Ünïcödé 王 🚀'];
    const fieldSets: Array<Record<string, string>> = [
      { Routing_Key: 'IntuneConnector', VirtualRouter: 'ACMP', ExchangeType: 'ROUTING' },
      { Routing_Key: 'k "quoted" \\ back', VirtualRouter: 'Ü王🚀\n', ExchangeType: 'ROUTING', Callback_VirtualRouter: 'cb', Callback_Routing_Key: 'cb' },
      {},
    ];
    for (const xml of docs) {
      for (const fields of fieldSets) {
        const want = Buffer.from(JSON.stringify({ Body: toBase64(xml), ...fields }), 'utf8');
        const got = publishBody(Buffer.from(xml, 'utf8'), fields);
        expect(got.equals(want), `${xml.slice(0, 20)} ${JSON.stringify(fields)}`).to.equal(true);
        expect(JSON.parse(got.toString('utf8'))).to.deep.equal({ Body: toBase64(xml), ...fields });
      }
    }
  });
});
