/**
 * Issue #20, the ACMP side: a device's discovered apps (Device.software)
 * travel with the device to ACMP.
 *
 * - the <Software> element in both wire formats: absent when the software
 *   was not read, `<Software count="0"/>` for none, every app otherwise;
 *   escaping of odd app names against hand-written expectations; strict
 *   reading (count, key, size);
 * - change detection: device and software fingerprinted apart, a run without
 *   software neither resends every device nor forgets the software part,
 *   the device part equals the fingerprint of before (no resend on upgrade);
 * - messages bounded by bytes as well as by devices;
 * - the intune-acmp node against the simulated SICS/ACMP servers, in wire
 *   formats 1 and 2: first run carries the apps, an identical run publishes
 *   nothing, a removed app resends that device alone and the app is gone in
 *   ACMP, a run without software sends no <Software> and ACMP keeps its lists,
 *   [] empties the list, a removed device is removed as before, and a page
 *   of devices with many apps is split so no message exceeds the limit.
 */
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { Device, InstalledApp } from '../nodes/lib/contracts';
import { WireError, decodeMessage, deviceToXml, encodeMessage, header, type InventoryMessage } from '../nodes/lib/acmp/acmp-wire';
import { MAX_APPS_PER_DEVICE, softwareToXml } from '../nodes/lib/acmp/acmp-wire-software';
import { renderXml } from '../nodes/lib/acmp/acmp-xml';
import { canonical, changeOf, fingerprintOf, remembered } from '../nodes/lib/acmp/acmp-fingerprint';
import { DEFAULT_MAX_MESSAGE_BYTES, inventoryBatches } from '../nodes/lib/acmp/acmp-batches';
import { InventoryPublisher, type PageReport } from '../nodes/lib/acmp/acmp-sync';
import { parseSinkSettings } from '../nodes/lib/acmp/acmp-sink-settings';
import type { WireMessage } from '../nodes/lib/acmp/acmp-wire';
import { acmpConfigFlow, helper, loadFlow, makeDevice, sleep, startAcmpEnv, syncPages, tlsNode, type AcmpEnv } from './support/acmp-fixtures';

/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
const acmpConfigNode = require('../nodes/intune-acmp-config/intune-acmp-config');
const acmpNode = require('../nodes/intune-acmp/intune-acmp');

const INSTANCE = 'IntuneConnector_1';

function app(name: string, version: string | null = '1.0', extra: Partial<InstalledApp> = {}): InstalledApp {
  return { key: `k-${name}-${version}`, name, version, publisher: 'Contoso', platform: 'iOS', sizeBytes: 1_048_576, ...extra };
}

function inventory(devices: Device[]): InventoryMessage {
  return { kind: 'inventory', header: header({ instance: 'I' }), onDemandDefinition: 'D', runId: 'r', mode: 'full', page: 1, batch: 1, devices };
}

describe('ACMP software: the <Software> element', () => {
  it('is left out when the software was not read, empty with count 0 for none, and lists every app otherwise', () => {
    const without = renderXml(deviceToXml(makeDevice()), { declaration: false });
    expect(without).to.not.include('Software');
    expect(renderXml(deviceToXml(makeDevice({ software: [] })), { declaration: false })).to.match(/<\/Links><Software count="0"\/><\/Device>$/);
    const one = renderXml(softwareToXml([app('Teams', '24.1', { sizeBytes: 123 })])!, { declaration: false });
    expect(one).to.equal('<Software count="1"><App sizeBytes="123"><Key>k-Teams-24.1</Key><Name>Teams</Name><Version>24.1</Version><Publisher>Contoso</Publisher><Platform>iOS</Platform></App></Software>');
    const nulls = renderXml(softwareToXml([{ key: 'k', name: 'N', version: null, publisher: null, platform: null, sizeBytes: null }])!, { declaration: false });
    expect(nulls).to.equal('<Software count="1"><App><Key>k</Key><Name>N</Name></App></Software>');
  });

  it('escapes odd app names exactly (hand-written expectations) and reads them back unchanged', () => {
    const xml = renderXml(softwareToXml([app(`Tom & Jerry's "<Player>" ]]>`, '1 < 2'), app('Ünïcödé 王 📱', null)])!, { declaration: false });
    expect(xml).to.include(`<Name>Tom &amp; Jerry's "&lt;Player&gt;" ]]&gt;</Name><Version>1 &lt; 2</Version>`);
    expect(xml).to.include('<Name>Ünïcödé 王 📱</Name>');
    expect(xml).to.include(`<Key>k-Tom &amp; Jerry's "&lt;Player&gt;" ]]&gt;-1 &lt; 2</Key>`);
  });

  it('survives encode → decode in both formats: odd names, control characters (Base64), very long names, [], and absence', () => {
    const long = 'L'.repeat(20_000) + ' — ende';
    const apps = [
      app('</Name></App></Software><Injected/>', '1'),
      app(`"quotes" & 'apostrophes'`, '2.0'),
      app('ctrl\u0001bell\u0007', '3'),
      app(long, '4'),
      app('Ünïcödé 王 Łukasz 🚀', null, { publisher: null, platform: null, sizeBytes: null }),
      app('tab\tline\r\nbreak', '5', { sizeBytes: 0 }),
    ];
    const devices = [makeDevice({ software: apps }), makeDevice({ software: [] }), makeDevice()];
    for (const format of [1, 2] as const) {
      const xml = encodeMessage(inventory(devices), format);
      expect(xml).to.not.include('<Injected/>');
      expect(xml).to.include('enc="base64"');
      const back = decodeMessage(xml) as InventoryMessage;
      expect(back.devices, `format ${format}`).to.deep.equal(devices);
      expect('software' in back.devices[2], 'no element → no software key at all').to.equal(false);
      expect(back.devices[1].software).to.deep.equal([]);
    }
  });

  it('refuses a list it cannot trust: a count that does not match, an app without key or name, a size that is no number, too many apps', () => {
    const d = makeDevice({ software: [app('A'), app('B')] });
    const xml = encodeMessage(inventory([d]), 2);
    expect(() => decodeMessage(xml.replace('<Software count="2">', '<Software count="3">'))).to.throw(WireError, /count says 3 apps, the element holds 2/);
    expect(() => decodeMessage(xml.replace('<Key>k-A-1.0</Key>', ''))).to.throw(WireError, /has no <Key>/);
    expect(() => decodeMessage(xml.replace('<Name>A</Name>', ''))).to.throw(WireError, /has no <Name>/);
    expect(() => decodeMessage(xml.replace('sizeBytes="1048576"', 'sizeBytes="big"'))).to.throw(WireError, /sizeBytes must be a whole number/);
    const many = xml.replace(/<Software count="2">[\s\S]*<\/Software>/, `<Software>${'<App><Key>k</Key><Name>n</Name></App>'.repeat(MAX_APPS_PER_DEVICE + 1)}</Software>`);
    expect(() => decodeMessage(many)).to.throw(WireError, /at most 10000/);
  });
});

describe('ACMP software: change detection', () => {
  const ODD = 'IntuneMobileDevices_1';

  it('the device part is the fingerprint of before (the software left out), so an upgrade resends nothing by itself', () => {
    const d = makeDevice();
    // The formula up to this change, written out: SHA-256 of schema 1.0, the on-demand definition and the device.
    const before = createHash('sha256').update(`1.0\u0000${ODD}\u0000${canonical(d)}`).digest('base64url').slice(0, 22);
    expect(fingerprintOf(d, ODD)).to.deep.equal({ device: before });
    expect(fingerprintOf({ ...d, software: [app('A')] }, ODD).device).to.equal(before);
  });

  it('tells new, device, software and unchanged apart; a run without software keeps the software part', () => {
    const d = makeDevice({ software: [app('A'), app('B')] });
    const fp = fingerprintOf(d, ODD);
    expect(changeOf(undefined, fp)).to.equal('new');
    const stored = remembered(undefined, fp);
    expect(stored).to.match(/^[\w-]{22}:[\w-]{22}$/);
    expect(changeOf(stored, fp)).to.equal('none');
    expect(changeOf(stored, fingerprintOf({ ...d, software: [app('A')] }, ODD))).to.equal('software');
    expect(changeOf(stored, fingerprintOf({ ...d, software: [] }, ODD))).to.equal('software');
    expect(changeOf(stored, fingerprintOf({ ...d, software: [app('B'), app('A')] }, ODD)), 'order does not matter').to.equal('none');
    const notRead = fingerprintOf({ ...d, software: undefined }, ODD);
    expect(changeOf(stored, notRead), 'not read: the device part decides').to.equal('none');
    const renamedNotRead = fingerprintOf({ ...d, name: 'renamed', software: undefined }, ODD);
    expect(changeOf(stored, renamedNotRead)).to.equal('device');
    const after = remembered(stored, renamedNotRead);
    expect(after.split(':')[1], 'ACMP kept its list, so do we').to.equal(stored.split(':')[1]);
    expect(changeOf(after, fingerprintOf({ ...d, name: 'renamed' }, ODD)), 'same list read again later: nothing to send').to.equal('none');
    expect(fingerprintOf({ ...d, software: [] }, ODD).software).to.not.equal(undefined);
    // remembered before software existed (device part only): the first run that reads software sends it once
    const old = remembered(undefined, fingerprintOf({ ...d, software: undefined }, ODD));
    expect(old).to.not.include(':');
    expect(changeOf(old, fp)).to.equal('software');
    expect(changeOf(old, fingerprintOf({ ...d, software: [] }, ODD)), 'none is a list ACMP must learn too').to.equal('software');
  });
});

describe('ACMP software: message size', () => {
  const fat = (n: number, apps: number) => Array.from({ length: n }, () => makeDevice({ software: Array.from({ length: apps }, (_, i) => app(`App number ${i} with a long-ish name`, `${i}.0.1`)) }));

  it('cuts batches so that no message exceeds the byte limit, and keeps the device count limit', () => {
    const devices = fat(60, 40);
    const limit = 64 * 1024;
    const batches = inventoryBatches(devices, 200, limit);
    expect(batches.length).to.be.greaterThan(1);
    expect(batches.flat().map((d) => d.id)).to.deep.equal(devices.map((d) => d.id));
    for (const b of batches) for (const format of [1, 2] as const) expect(Buffer.byteLength(encodeMessage(inventory(b), format))).to.be.at.most(limit);
    expect(inventoryBatches(fat(10, 0), 3, limit).map((b) => b.length)).to.deep.equal([3, 3, 3, 1]);
  });

  it('sends a device larger than the limit alone, never splitting it', () => {
    const big = fat(1, 2000)[0];
    const small = fat(2, 1);
    const batches = inventoryBatches([small[0], big, small[1]], 200, 64 * 1024);
    expect(batches.map((b) => b.map((d) => d.id))).to.deep.equal([[small[0].id], [big.id], [small[1].id]]);
  });

  it('"Largest message (KB)" is a node setting: 4096 KB by default, 64 to 65536 KB', () => {
    expect(parseSinkSettings({}).maxMessageBytes).to.equal(DEFAULT_MAX_MESSAGE_BYTES).and.to.equal(4096 * 1024);
    expect(parseSinkSettings({ maxMessageKb: '256' }).maxMessageBytes).to.equal(256 * 1024);
    expect(() => parseSinkSettings({ maxMessageKb: 10 })).to.throw(/Largest message \(KB\) must be a whole number from 64 to 65536/);
    // a device-only page of 1,000 typical devices still fits one default message, as before the limit existed
    expect(inventoryBatches(Array.from({ length: 1000 }, () => makeDevice()), 1000)).to.have.length(1);
  });

  it('the publisher uses the limit: many messages for one page when the devices carry many apps', async () => {
    const sent: WireMessage[] = [];
    const caller = { call: async (_s: unknown, m: WireMessage) => (sent.push(m), { reply: { kind: 'reply', header: header(), inReplyTo: '', code: 0, failed: [] }, attempts: 1 }) as never };
    const data = new Map<string, unknown>();
    const pub = new InventoryPublisher({ caller, onDemandDefinition: 'D', batchSize: 200, reconcile: false, maxMessageBytes: 64 * 1024, store: { get: async (k) => data.get(k), set: async (k, v) => void data.set(k, v) } });
    const devices = fat(30, 40);
    const r = await pub.handlePage({ runId: 'r', instance: 'I', mode: 'full', page: 1, last: true, startedAt: new Date().toISOString() }, devices, [{ serverId: 'S' } as never]);
    expect(sent.length).to.be.greaterThan(1);
    for (const m of sent) expect(Buffer.byteLength(encodeMessage(m, 2))).to.be.at.most(64 * 1024);
    expect(r.servers[0].sent).to.equal(30);
    expect(r.servers[0].batches.map((b) => b.batch)).to.deep.equal(sent.map((_, i) => i + 1));
  });
});

// ------------------------------------------------------------------ node + simulated ACMP

type AnyNode = { receive(msg: unknown): void; on(ev: string, fn: (x: any) => void): void; removeListener(ev: string, fn: (x: any) => void): void };

/** Feeds page messages into the sink and collects one report per page (and the errors). */
async function run(msgs: unknown[]): Promise<{ reports: PageReport[]; errors: Error[] }> {
  const node = helper.getNode('sink') as unknown as AnyNode;
  const out = helper.getNode('out') as unknown as AnyNode;
  const reports: PageReport[] = [];
  const errors: Error[] = [];
  const onErr = (c: { args: unknown[] }) => errors.push(c.args[0] as Error);
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const onOut = (m: { payload: PageReport }) => {
    reports.push(m.payload);
    if (reports.length >= msgs.length) resolveAll();
  };
  node.on('call:error', onErr);
  out.on('input', onOut);
  for (const m of msgs) node.receive(m);
  try {
    await Promise.race([all, sleep(60_000).then(() => Promise.reject(new Error(`only ${reports.length} of ${msgs.length} reports; errors: ${errors.join(' | ')}`)))]);
    await sleep(40);
  } finally {
    node.removeListener('call:error', onErr);
    out.removeListener('input', onOut);
  }
  return { reports, errors };
}

const total = (rs: PageReport[], k: 'changed' | 'softwareChanged' | 'sent') => rs.reduce((a, r) => a + r.servers.reduce((b, s) => b + s[k], 0), 0);
const names = (apps: InstalledApp[] | undefined) => apps?.map((a) => a.name);

describe('intune-acmp with software against the simulated ACMP server', function () {
  this.timeout(120_000);
  let env: AcmpEnv;

  before(async () => {
    env = await startAcmpEnv({ servers: 1 });
  });
  after(async () => {
    await env?.stop();
  });
  afterEach(async () => {
    await helper.unload();
    for (const s of env.servers) s.clear();
  });

  async function deploySink(wireFormat: 1 | 2, props: Record<string, unknown> = {}) {
    const { nodes, credentials } = acmpConfigFlow(env);
    await loadFlow(
      [tlsNode, acmpConfigNode, acmpNode],
      [{ id: 'f1', type: 'tab', label: 'acmp' }, ...nodes, { id: 'sink', z: 'f1', type: 'intune-acmp', acmp: 'acmpcfg', serverId: '*', batchSize: 200, wireFormat, wires: [['out']], ...props }, { id: 'out', z: 'f1', type: 'helper' }],
      credentials,
    );
  }

  for (const format of [1, 2] as const) {
    it(`wire format ${format}: apps travel, identical runs send nothing, changes resend only that device, undefined keeps, [] empties, removals as before`, async () => {
      await deploySink(format);
      const srv = env.servers[0];
      const withApps = (i: number): Device => makeDevice({ id: `dev-${i}`, software: [app(`App ${i}a`), app(`App ${i}b`, '2.0'), app('Shared & <Common>', '9')] });
      let devices = Array.from({ length: 6 }, (_, i) => withApps(i));
      const pages = (ds: Device[], o: { mode?: 'full' | 'incremental' } = {}) => syncPages(ds, { instance: INSTANCE, pageSize: 4, ...o });

      // 1. first run: every device with its apps
      let r = await run(pages(devices));
      expect(r.errors.map(String)).to.deep.equal([]);
      for (const d of devices) expect(srv.softwareOf(d.id), d.id).to.deep.equal(d.software);
      expect(srv.lastInventoryXml.at(-1)).to.include(format === 1 ? '<IntuneConnector' : '<IntuneDeviceInventory version="2">');
      expect(srv.lastInventoryXml.at(-1)).to.include('<Name>Shared &amp; &lt;Common&gt;</Name>');

      // 2. the same run again: not one publish
      let before = env.sics.stats.publishes;
      r = await run(pages(devices));
      expect(env.sics.stats.publishes - before, 'publishes of an identical run').to.equal(0);
      expect(total(r.reports, 'changed')).to.equal(0);

      // 3. an app removed from one device: that device alone, with its whole current list; the app is gone in ACMP
      devices = devices.map((d) => (d.id === 'dev-2' ? { ...d, software: d.software!.filter((a) => a.name !== 'App 2a') } : d));
      before = srv.stats.devicesReceived;
      r = await run(pages(devices));
      expect(srv.stats.devicesReceived - before).to.equal(1);
      expect(total(r.reports, 'softwareChanged')).to.equal(1);
      expect(r.reports.at(-1)!.run!.softwareChanged).to.equal(1);
      expect(names(srv.softwareOf('dev-2'))).to.deep.equal(['App 2b', 'Shared & <Common>']);

      // 4. a run that did not read software: nothing sent, ACMP keeps every list
      const notRead = devices.map(({ software: _s, ...d }) => d as Device);
      before = env.sics.stats.publishes;
      r = await run(pages(notRead));
      expect(env.sics.stats.publishes - before, 'no mass resend').to.equal(0);
      for (const d of devices) expect(srv.softwareOf(d.id), d.id).to.deep.equal(d.software);

      //    … and one device renamed in that run: sent without <Software>, ACMP keeps its list
      before = srv.stats.devicesReceived;
      r = await run(pages(notRead.map((d) => (d.id === 'dev-4' ? { ...d, name: 'RENAMED' } : d))));
      expect(srv.stats.devicesReceived - before).to.equal(1);
      expect(total(r.reports, 'softwareChanged')).to.equal(0);
      expect(srv.lastInventoryXml.at(-1)).to.include('RENAMED').and.not.include('<Software');
      expect(srv.devices.get('dev-4')!.device.name).to.equal('RENAMED');
      expect(srv.softwareOf('dev-4')).to.deep.equal(devices[4].software);
      devices = devices.map((d) => (d.id === 'dev-4' ? { ...d, name: 'RENAMED' } : d));

      //    … the lists read again afterwards: unchanged, nothing sent
      before = env.sics.stats.publishes;
      await run(pages(devices));
      expect(env.sics.stats.publishes - before, 'the software part was kept through the run without software').to.equal(0);

      // 5. Intune reports no apps for a device: an explicit empty list, ACMP ends with none
      devices = devices.map((d) => (d.id === 'dev-5' ? { ...d, software: [] } : d));
      r = await run(pages(devices));
      expect(total(r.reports, 'changed')).to.equal(1);
      expect(srv.lastInventoryXml.at(-1)).to.include('<Software count="0"/>');
      expect(srv.softwareOf('dev-5')).to.deep.equal([]);

      // 6. a device gone from Intune: removed as before (software with it); incremental runs remove nothing
      const gone = devices.filter((d) => d.id !== 'dev-0');
      await run(pages(gone, { mode: 'incremental' }));
      expect(srv.devices.has('dev-0')).to.equal(true);
      r = await run(pages(gone));
      expect(r.reports.at(-1)!.removals![0].removed).to.equal(1);
      expect(srv.devices.has('dev-0')).to.equal(false);
      expect(srv.softwareOf('dev-0')).to.equal(undefined);
      expect(srv.storedDevices().map((d) => d.id)).to.deep.equal(gone.map((d) => d.id));
    });
  }

  it('a page of devices with many apps is split so that no message exceeds the node\'s "Largest message"', async () => {
    await deploySink(2, { maxMessageKb: 256 });
    const srv = env.servers[0];
    const apps = Array.from({ length: 40 }, (_, i) => app(`Application ${String(i).padStart(2, '0')} of a vendor with a name`, `${i}.0.${i}`, { publisher: 'Vendor Software Corporation GmbH & Co. KG' }));
    const devices = Array.from({ length: 200 }, (_, i) => makeDevice({ id: `fat-${String(i).padStart(3, '0')}`, software: apps }));
    const before = srv.stats.inventoryBatches;
    const seen: string[] = [];
    const keep = srv.lastInventoryXml.push.bind(srv.lastInventoryXml);
    srv.lastInventoryXml.push = (...xs: string[]) => (seen.push(...xs), keep(...xs));
    const r = await run(syncPages(devices, { instance: INSTANCE, pageSize: 200 }));
    expect(r.errors.map(String)).to.deep.equal([]);
    expect(srv.stats.inventoryBatches - before, 'one page of 200, more than one message').to.be.greaterThan(1);
    expect(seen.length).to.equal(srv.stats.inventoryBatches - before);
    for (const xml of seen) expect(Buffer.byteLength(xml)).to.be.at.most(256 * 1024);
    expect(srv.storedDevices().length).to.equal(200);
    expect(srv.softwareOf('fat-199')).to.deep.equal(apps);
  });
});
