/**
 * The XML module and our versioned wire schema: escaping against literal,
 * hand-written expectations (so writer and reader cannot share a mistake),
 * strict well-formedness, no DTDs/entities, lossless round trips of hostile
 * text, every message type, version checks, the examples in
 * docs/acmp-wire-format.md, and the job/result mappings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { XmlError, el, escapeAttr, escapeText, fromBase64, hasInvalidXmlChars, parseXml, renderXml, textElement, textOf, toBase64 } from '../nodes/lib/acmp/acmp-xml';
import {
  WIRE_NAMESPACE,
  WireError,
  decodeMessage,
  deviceToXml,
  encodeMessage,
  header,
  readReply,
  type ReplyMessage,
  type ActionJobMessage,
  type InventoryMessage,
  type WireMessage,
} from '../nodes/lib/acmp/acmp-wire';
import { JobProblem, failedStatus, jobToRequest, statusFromResult } from '../nodes/lib/acmp/acmp-jobs';
import { makeDevice } from './support/acmp-fixtures';

const HOSTILE = [
  '<Device intuneId="x"/></Name></Device><Device>',
  'Tom & Jerry\'s "phone" <b>bold</b> ]]> --> <!-- <![CDATA[ x ]]>',
  'line1\nline2\r\nline3\rend\ttab',
  '  leading and trailing  ',
  '&amp; &lt; &#x41; &unknown;',
  'Ünïcödé 王 Łukasz 🚀📱',
  'ctrl\u0001\u0002\u001f\u000b\u000cend',
  '\uFFFE\uFFFF',
  '',
];

describe('acmp-xml', () => {
  it('escapes text and attribute values exactly as expected', () => {
    expect(escapeText('a<b>&c\r\n\t"\'')).to.equal('a&lt;b&gt;&amp;c&#13;\n\t"\'');
    expect(escapeAttr('a<b>&c\r\n\t"\'')).to.equal('a&lt;b&gt;&amp;c&#13;&#10;&#9;&quot;&apos;');
    expect(renderXml(el('A', { x: 'say "hi" & <go>', n: 3, b: true, skip: null }, 'T&T', el('B')), { declaration: false })).to.equal(
      '<A x="say &quot;hi&quot; &amp; &lt;go&gt;" n="3" b="true">T&amp;T<B/></A>',
    );
    expect(renderXml(el('R'))).to.equal('<?xml version="1.0" encoding="UTF-8"?><R/>');
  });

  it('refuses characters XML cannot carry, and invalid names', () => {
    expect(hasInvalidXmlChars('ok \t\n\r 🚀')).to.equal(false);
    expect(hasInvalidXmlChars('a\u0000b')).to.equal(true);
    expect(hasInvalidXmlChars('a\uD800b')).to.equal(true);
    expect(hasInvalidXmlChars('\uDC00')).to.equal(true);
    expect(() => escapeText('a\u0001')).to.throw(XmlError);
    expect(() => escapeAttr('\uFFFF')).to.throw(XmlError);
    expect(() => renderXml(el('bad name'))).to.throw(XmlError, /element name/);
    expect(() => renderXml(el('A', { 'x y': '1' }))).to.throw(XmlError, /attribute name/);
    expect(() => renderXml(el('A', { n: Number.NaN }))).to.throw(XmlError);
  });

  it('reads a hand-written document: entities, char refs, CDATA, comments, PIs, attribute normalisation, BOM', () => {
    const doc = parseXml(
      '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><R a="1 &amp; 2" b=\'x&#10;y\' c="t\tu\nv"><?pi x?><N>&lt;b&gt; &#x1F680; &#65;</N><C><![CDATA[<raw> & ]]></C><E/>\r\n</R>\n',
    );
    expect(doc.name).to.equal('R');
    expect(doc.attrs).to.deep.equal({ a: '1 & 2', b: 'x\ny', c: 't u v' });
    expect(doc.children.map((c) => c.name)).to.deep.equal(['N', 'C', 'E']);
    expect(doc.children[0].text).to.equal('<b> 🚀 A');
    expect(doc.children[1].text).to.equal('<raw> & ');
    expect(doc.text).to.equal('\n');
  });

  const bad: Array<[string, RegExp]> = [
    ['<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', /DOCTYPE/],
    ['<r>&x;</r>', /Unknown entity/],
    ['<r>a & b</r>', /bare "&"/],
    ['<r><a></b></r>', /does not match/],
    ['<r a="1" a="2"/>', /twice/],
    ['<r a=1/>', /quoted/],
    ['<r a="<"/>', /not allowed/],
    ['<r/><s/>', /exactly one root/],
    ['text<r/>', /outside the root/],
    ['<r>', /ends inside/],
    ['', /no root/],
    ['<r>\u0001</r>', /does not allow/],
    ['<r>&#0;</r>', /does not allow/],
    ['<r>]]></r>', /must not appear/],
    ['<r/><?xml version="1.0"?>', /must come first/],
  ];
  for (const [xml, re] of bad) {
    it(`rejects ${JSON.stringify(xml).slice(0, 50)}`, () => {
      expect(() => parseXml(xml)).to.throw(XmlError, re);
    });
  }

  it('limits depth and size', () => {
    expect(() => parseXml('<a>'.repeat(70) + '</a>'.repeat(70))).to.throw(XmlError, /deeper/);
    expect(() => parseXml('<a/>', { maxLength: 3 })).to.throw(XmlError, /too large/);
  });

  it('round-trips hostile text in elements and attributes; base64 only where XML cannot carry it', () => {
    for (const s of HOSTILE) {
      const node = el('R', hasInvalidXmlChars(s) ? {} : { v: s }, textElement('T', s));
      const back = parseXml(renderXml(node));
      expect(textOf(back.children[0]), JSON.stringify(s)).to.equal(s);
      if (!hasInvalidXmlChars(s)) {
        expect(back.attrs.v).to.equal(s);
        expect(back.children[0].attrs.enc).to.equal(undefined);
      } else {
        expect(back.children[0].attrs.enc).to.equal('base64');
      }
    }
    expect(() => textElement('T', 'lone \uD800 surrogate')).to.throw(XmlError, /surrogate/);
  });

  it('Base64 bodies: UTF-8 both ways, garbage refused', () => {
    expect(toBase64('<a>Ü</a>')).to.equal(Buffer.from('<a>Ü</a>', 'utf8').toString('base64'));
    expect(fromBase64(toBase64('<a>王🚀</a>'))).to.equal('<a>王🚀</a>');
    expect(() => fromBase64('not base64!')).to.throw(XmlError, /Base64/);
    expect(() => fromBase64(Buffer.from([0xff, 0xfe, 0xc0]).toString('base64'))).to.throw(XmlError, /UTF-8/);
  });
});

describe('acmp-wire', () => {
  const job: ActionJobMessage = {
    kind: 'actionJob',
    header: header({ serverId: 'SRV1' }),
    jobId: 'job-1',
    action: 'notify',
    requestedBy: 'ACME\\admin',
    createdAt: '2025-01-01T00:00:00.000Z',
    confirmed: false,
    clients: [{ acmpClientId: 'C-1', intuneId: '0f8c5c9e-1111-4222-8333-944455556666', name: 'Ada <iPhone>' }],
    notification: { title: 'Hi & bye', body: '<script>alert(1)</script>' },
  };

  it('every message type survives encode → decode', () => {
    const d = makeDevice({ name: 'x' });
    const msgs: WireMessage[] = [
      { kind: 'inventory', header: header({ instance: 'IntuneMobileDevices_1', serverId: 'SRV1' }), onDemandDefinition: 'IntuneMobileDevices_1', runId: 'r1', mode: 'full', page: 2, batch: 3, devices: [d] },
      { kind: 'removal', header: header({ instance: 'I' }), onDemandDefinition: 'D', runId: 'r1', deviceIds: [d.id, 'other'] },
      {
        kind: 'jobStatus',
        header: header(),
        jobId: 'job-1',
        action: 'wipe',
        state: 'partial',
        finishedAt: '2025-01-01T00:00:00.000Z',
        reason: '1 of 2 failed',
        clients: [
          { intuneId: 'a', acmpClientId: 'C1', state: 'finished', outcome: 'accepted' },
          { intuneId: 'b', state: 'failed', outcome: 'notFound', error: 'gone <away>' },
        ],
      },
      { kind: 'ping', header: header() },
      job,
      { kind: 'reply', header: header({ serverId: 'SRV2' }), inReplyTo: 'm1', code: -1, message: 'oops & <more>', failed: [{ intuneId: 'a', code: 32, message: 'licence' }, { intuneId: 'b', code: 30 }] },
    ];
    for (const format of [1, 2] as const) {
      for (const m of msgs) {
        const back = decodeMessage(encodeMessage(m, format));
        const { version, format: f, ...h } = back.header;
        expect(version).to.equal(format === 1 ? '1.1' : '2');
        expect(f).to.equal(format);
        const rest = { ...back, header: h } as Record<string, unknown>;
        if (format === 2 && m.kind === 'reply') {
          expect(rest.command).to.equal('IntuneConnector');
          delete rest.command;
        }
        expect(rest, `${m.kind} in format ${format}`).to.deep.equal(m);
      }
    }
  });

  it('format 2 frames each message as ACMP frames a Public API command: <ICQL><ACMP><Command version="2"><TCommandRequest_V2>', () => {
    const expected: Record<string, string> = { inventory: 'IntuneDeviceInventory', removal: 'IntuneDeviceRemoval', jobStatus: 'IntuneJobStatus', ping: 'IntunePing', actionJob: 'IntuneActionJob' };
    const msgs: WireMessage[] = [
      { kind: 'inventory', header: header({ instance: 'IntuneConnector_1' }), onDemandDefinition: 'IntuneMobileDevices_1', runId: 'r', mode: 'full', page: 1, batch: 1, devices: [makeDevice()] },
      { kind: 'removal', header: header(), onDemandDefinition: 'D', runId: 'r', deviceIds: ['a'] },
      { kind: 'jobStatus', header: header(), jobId: 'j', state: 'finished', finishedAt: '2025-01-01T00:00:00.000Z', clients: [] },
      { kind: 'ping', header: header() },
      job,
    ];
    for (const m of msgs) {
      const doc = parseXml(encodeMessage(m));
      const command = doc.children[0].children[0];
      const cmd = expected[m.kind];
      expect(command.name, m.kind).to.equal(cmd);
      expect(command.attrs.version).to.equal('2');
      const request = command.children[0];
      expect(request.name).to.equal(`T${cmd}Request_V2`);
      expect(request.attrs.xmlns).to.equal('urn:x-intune-connector:acmp:v2');
      expect(request.attrs.messageId).to.equal(m.header.messageId);
      expect(request.children).to.have.length(1);
    }
    // version 1 is still written on request
    expect(parseXml(encodeMessage(job, 1)).children[0].children[0].name).to.equal('IntuneConnector');
  });

  it('reads every form of answer: our v1 <Reply>, our v2 <T…Response_V2> with <Failed> items, and the generic Public API answer', () => {
    const ours: ReplyMessage = { kind: 'reply', header: header({ serverId: 'SRV1' }), inReplyTo: 'm1', command: 'IntuneDeviceInventory', code: 0, failed: [{ intuneId: 'a', code: 32 }] };
    const v1 = readReply(encodeMessage(ours, 1))!;
    expect(v1).to.include({ inReplyTo: 'm1', code: 0 });
    expect(v1.failed).to.deep.equal([{ intuneId: 'a', code: 32 }]);
    const v2 = readReply(encodeMessage(ours, 2))!;
    expect(v2).to.include({ inReplyTo: 'm1', code: 0, command: 'IntuneDeviceInventory' });
    expect(v2.failed).to.deep.equal([{ intuneId: 'a', code: 32 }]);
    const generic = readReply('<ICQL><ACMP><GetCommandVersions version="1"><TGetCommandVersionsResponse_V1 xmlns="http://acmp.com/GetCommandVersionsResponse_V1"><ResultCode>35</ResultCode></TGetCommandVersionsResponse_V1></GetCommandVersions></ACMP></ICQL>')!;
    expect(generic).to.include({ kind: 'reply', code: 35, inReplyTo: '', command: 'GetCommandVersions' });
    expect(generic.failed).to.deep.equal([]);
    expect(readReply('<TSaveAssetsResponse_V1><ResultCode>0</ResultCode></TSaveAssetsResponse_V1>')).to.include({ code: 0 });
    // generic answers carry no items, even when an element of that name is in them
    expect(readReply('<ICQL><ACMP><X><TXResponse_V1><ResultCode>0</ResultCode><Failed intuneId="a" code="1"/></TXResponse_V1></X></ACMP></ICQL>')!.failed).to.deep.equal([]);
    expect(() => readReply('<ICQL><ACMP><X><TXResponse_V1><ResultCode>zero</ResultCode></TXResponse_V1></X></ACMP></ICQL>')).to.throw(WireError, /not a whole number/);
    expect(() => readReply('<TXResponse_V1/>')).to.throw(WireError, /no <ResultCode>/);
    // a job is no answer
    expect(readReply(encodeMessage(job))).to.equal(undefined);
    expect(readReply(encodeMessage(job, 1))).to.equal(undefined);
    expect(readReply('<junk/>')).to.equal(undefined);
  });

  it('devices round-trip exactly, nulls and empty strings included', () => {
    const variants = [
      makeDevice(),
      makeDevice({ name: '', serialNumber: null, rawSerialNumber: '0', user: null, os: { name: null, version: null, sku: null }, storage: { totalBytes: null, freeBytes: 0 }, azureAdRegistered: null, encrypted: null, jailbroken: 'unknown', ownership: 'unknown' }),
      makeDevice({ user: { id: null, upn: null, email: null, displayName: null }, coManaged: true, userDeleted: true }),
      ...HOSTILE.map((s) => makeDevice({ name: s, model: s || null, user: { id: null, upn: s, email: null, displayName: s } })),
    ];
    for (const d of variants) {
      const m: InventoryMessage = { kind: 'inventory', header: header({ instance: 'I' }), onDemandDefinition: 'D', runId: 'r', mode: 'incremental', page: 1, batch: 1, devices: [d] };
      const back = decodeMessage(encodeMessage(m)) as InventoryMessage;
      expect(back.devices[0], JSON.stringify(d.name)).to.deep.equal(d);
    }
  });

  it('a device name full of markup cannot break the envelope: the document has exactly the elements we wrote', () => {
    const evil = '</Name></Device></DeviceInventory></IntuneConnector><Injected/><IntuneConnector><DeviceInventory><Device intuneId="evil"><Name>';
    const xml = encodeMessage({ kind: 'inventory', header: header({ instance: 'I' }), onDemandDefinition: 'D', runId: 'r', mode: 'full', page: 1, batch: 1, devices: [makeDevice({ name: evil })] });
    expect(xml).to.not.include('<Injected/>');
    const doc = parseXml(xml);
    const inv = doc.children[0].children[0].children[0].children[0];
    expect(inv.name).to.equal('DeviceInventory');
    expect(inv.children).to.have.length(1);
    expect(inv.children[0].attrs.intuneId).to.not.equal('evil');
    expect((decodeMessage(xml) as InventoryMessage).devices[0].name).to.equal(evil);
  });

  it('deviceToXml writes free text as element content, never as attributes', () => {
    const xml = renderXml(deviceToXml(makeDevice({ name: 'a"b' })), { declaration: false });
    expect(xml).to.match(/^<Device intuneId="[0-9a-f-]+"><Name>a"b<\/Name>/);
  });

  it('format 2: refuses other command versions, foreign namespaces, unknown commands and a body that is not the command\'s', () => {
    const xml = encodeMessage(job, 2);
    expect(decodeMessage(xml).kind).to.equal('actionJob');
    expect(() => decodeMessage(xml.replace(/_V2/g, '_V3'))).to.throw(WireError, /version 3.*reads version 2/);
    expect(() => decodeMessage(xml.replace('urn:x-intune-connector:acmp:v2', 'urn:other'))).to.throw(WireError, /namespace/);
    expect(() => decodeMessage(xml.replace(/IntuneActionJob/g, 'SelfDestruct'))).to.throw(WireError, /Unknown command <SelfDestruct>/);
    expect(() => decodeMessage(xml.replace(/IntuneActionJob/g, 'IntunePing'))).to.throw(WireError, /carries <ActionJob>, expected <Ping>/);
  });

  it('refuses other major versions, foreign namespaces, non-ICQL documents and unknown types, with the ids it could read', () => {
    const xml = encodeMessage(job, 1);
    expect(() => decodeMessage(xml.replace(WIRE_NAMESPACE, 'urn:x-intune-connector:acmp:v2'))).to.throw(WireError, /version 2/);
    expect(() => decodeMessage(xml.replace(WIRE_NAMESPACE, 'urn:other'))).to.throw(WireError, /namespace/);
    const withVersion = (v: string) => xml.replace(/(xmlns="[^"]+") version="1\.1"/, `$1 version="${v}"`);
    expect(withVersion('2.0')).to.include('version="2.0"');
    expect(() => decodeMessage(withVersion('2.0'))).to.throw(WireError, /not 1\.x/);
    expect(decodeMessage(withVersion('1.7')).kind).to.equal('actionJob');
    expect(() => decodeMessage('<Other/>')).to.throw(WireError, /not an ICQL/);
    expect(() => decodeMessage('<ICQL><ACMP><Something/></ACMP></ICQL>')).to.throw(WireError, /IntuneConnector/);
    expect(() => decodeMessage('<ICQL><ACMP>')).to.throw(WireError, /well-formed/);
    try {
      decodeMessage(xml.replace('action="SendNotification"', 'action="Explode"'));
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(WireError);
      expect((err as WireError).details).to.include({ jobId: 'job-1', serverId: 'SRV1' });
      expect((err as Error).message).to.match(/Unknown job action "Explode"/);
    }
    const unknownType = xml.replace(/<ActionJob[\s\S]*<\/ActionJob>/, '<Mystery/>');
    expect(() => decodeMessage(unknownType)).to.throw(WireError, /Unknown message type <Mystery>/);
  });

  it('ignores elements and attributes a later 1.x version may add', () => {
    for (const format of [1, 2] as const) {
      const xml = encodeMessage(job, format).replace('<Notification>', '<FutureThing a="1"><X/></FutureThing><Notification extra="y">');
      const back = decodeMessage(xml) as ActionJobMessage;
      expect(back.notification).to.deep.equal(job.notification);
    }
  });

  it('every XML example in docs/acmp-wire-format.md is a valid message of this version', () => {
    const root = [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..'), process.cwd()].find((p) => fs.existsSync(path.join(p, 'docs', 'acmp-wire-format.md')));
    expect(root, 'docs/acmp-wire-format.md not found').to.be.a('string');
    const md = fs.readFileSync(path.join(root!, 'docs', 'acmp-wire-format.md'), 'utf8');
    const blocks = [...md.matchAll(/```xml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => b.includes('<ICQL>'));
    expect(blocks.length).to.be.greaterThan(5);
    const kinds = new Set(blocks.map((b) => `${decodeMessage(b).kind}@${decodeMessage(b).header.format ?? 'generic'}`));
    const all = ['actionJob', 'inventory', 'jobStatus', 'ping', 'removal', 'reply'];
    // both formats are documented with every message type, and the generic answer too
    expect([...kinds].sort()).to.deep.equal([...all.map((k) => `${k}@1`), ...all.map((k) => `${k}@2`), 'reply@generic'].sort());
    for (const b of blocks.filter((x) => /instance="/.test(x))) expect(b, 'the instance the product sends').to.match(/instance="IntuneConnector_1"/);
  });
});

describe('acmp-jobs', () => {
  const base: ActionJobMessage = {
    kind: 'actionJob',
    header: header({ serverId: 'SRV1' }),
    jobId: 'J1',
    action: 'lock',
    confirmed: false,
    requestedBy: 'ACME\\admin',
    clients: [
      { acmpClientId: 'C1', intuneId: '0f8c5c9e-1111-4222-8333-944455556666' },
      { acmpClientId: 'C1b', intuneId: '0F8C5C9E-1111-4222-8333-944455556666' },
      { acmpClientId: 'C2', intuneId: '1f8c5c9e-1111-4222-8333-944455556666' },
    ],
  };

  it('maps a job to an action request with jobId and requestedBy; duplicates collapse', () => {
    const { request, context } = jobToRequest(base, 'SRV1');
    expect(request).to.deep.equal({ action: 'lock', deviceIds: ['0f8c5c9e-1111-4222-8333-944455556666', '1f8c5c9e-1111-4222-8333-944455556666'], jobId: 'J1', requestedBy: 'ACMP SRV1: ACME\\admin' });
    expect(context).to.include({ serverId: 'SRV1', jobId: 'J1', action: 'lock' });
    expect(jobToRequest({ ...base, action: 'wipe', confirmed: true, wipe: { keepUserData: true } }, 'SRV1').request).to.include({ confirm: true });
    expect(jobToRequest({ ...base, action: 'notify', notification: { title: 't', body: 'b' } }, 'SRV1').request.notification).to.deep.equal({ title: 't', body: 'b' });
  });

  const problems: Array<[string, Partial<ActionJobMessage>, string]> = [
    ['no clients', { clients: [] }, 'noClients'],
    ['a client without Intune id', { clients: [{ acmpClientId: 'C9', intuneId: 'WS-0042' }] }, 'badDeviceId'],
    ['notify without body', { action: 'notify', notification: { title: 'x', body: ' ' } }, 'textMissing'],
    ['wipe without confirmation', { action: 'wipe', confirmed: false }, 'confirmMissing'],
    ['retire without confirmation', { action: 'retire' }, 'confirmMissing'],
    ['notification text on a lock', { notification: { title: 'a', body: 'b' } }, 'wrongOptions'],
    ['wipe options on a sync', { action: 'sync', wipe: { keepUserData: true } }, 'wrongOptions'],
  ];
  for (const [what, patch, code] of problems) {
    it(`refuses ${what}`, () => {
      try {
        jobToRequest({ ...base, ...patch } as ActionJobMessage, 'SRV1');
        expect.fail('should throw');
      } catch (err) {
        expect(err).to.be.instanceOf(JobProblem);
        expect((err as JobProblem).code).to.equal(code);
      }
    });
  }

  it('maps results to job states: finished, partial, failed, rejected, dry run', () => {
    const a = '0f8c5c9e-1111-4222-8333-944455556666';
    const b = '1f8c5c9e-1111-4222-8333-944455556666';
    const clients = [{ acmpClientId: 'C1', intuneId: a }, { acmpClientId: 'C2', intuneId: b }];
    const ok = statusFromResult({ jobId: 'J', action: 'lock', status: 'finished', results: [{ deviceId: a, outcome: 'accepted' }, { deviceId: b, outcome: 'accepted' }] }, clients);
    expect(ok.state).to.equal('finished');
    expect(ok.reason).to.equal(undefined);
    expect(ok.clients.map((c) => [c.acmpClientId, c.state])).to.deep.equal([['C1', 'finished'], ['C2', 'finished']]);
    const part = statusFromResult({ jobId: 'J', status: 'partial', results: [{ deviceId: a, outcome: 'accepted' }, { deviceId: b, outcome: 'notFound' }] }, clients);
    expect(part.state).to.equal('partial');
    expect(part.reason).to.match(/1 of 2 device\(s\) failed/);
    const rej = statusFromResult({ jobId: 'J', action: 'wipe', status: 'rejected', results: [], error: 'This node does not allow the action "wipe"' }, clients);
    expect(rej.state).to.equal('failed');
    expect(rej.reason).to.match(/does not allow/);
    expect(rej.clients).to.have.length(2);
    const dry = statusFromResult({ jobId: 'J', status: 'finished', dryRun: true, results: [{ deviceId: a, outcome: 'accepted' }] }, clients);
    expect(dry.state).to.equal('failed');
    expect(failedStatus('J', 'why', clients).clients.every((c) => c.state === 'failed' && c.error === 'why')).to.equal(true);
  });
});
