/**
 * The ACMP nodes in Node-RED against the simulated SICS/ACMP servers (and,
 * for actions, the simulated Intune tenant behind intune-action):
 *
 * - a 10,000-device full run to every server ("*") and to one server by id:
 *   each server then holds exactly the tenant's devices; an unchanged rerun
 *   publishes nothing; a changed device is sent again, alone;
 * - removals only after a complete full run (not incremental, aborted,
 *   partly seen runs), scoped to the instance;
 * - ACMP query-action jobs: through intune-action to the simulated Graph and
 *   back as "finished"; a wipe without confirmation, a job the executor
 *   refuses and a malformed job come back "failed" with nothing reaching Graph;
 * - result codes at node level (licence amount, invalid request), wrong
 *   password, TLS failure with and without the fallback (status + log),
 *   unreachable host, misconfiguration, "Verify connection" (no secrets),
 *   a device name with XML markup, closing in the middle of a run;
 * - an ACMP that answers like its Public API (generic <T…Response_V1> with a
 *   result code), wire formats 1 and 2, job statuses to the job's callback
 *   routing key, a run whose earlier page failed ending red at a Catch node,
 *   and a job taken by a consume under way while the jobs node closes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Device } from '../nodes/lib/contracts';
import type { PageReport } from '../nodes/lib/acmp/acmp-sync';
import { SimTenant } from '../sim/tenant';
import { parseXml } from '../nodes/lib/acmp/acmp-xml';
import {
  SICS_PASSWORD,
  acmpConfigFlow,
  helper,
  loadFlow,
  makeDevice,
  sleep,
  startAcmpEnv,
  syncPages,
  tenantDevices,
  tlsNode,
  until,
  type AcmpEnv,
} from './support/acmp-fixtures';
import { configFlow, startSimEnv, type SimEnv } from './support/sim-env';

/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
const acmpConfigNode = require('../nodes/intune-acmp-config/intune-acmp-config');
const acmpNode = require('../nodes/intune-acmp/intune-acmp');
const acmpActionsNode = require('../nodes/intune-acmp-actions/intune-acmp-actions');
const intuneConfigNode = require('../nodes/intune-config/intune-config');
const intuneActionNode = require('../nodes/intune-action/intune-action');

type AnyNode = {
  receive(msg: unknown): void;
  on(ev: string, fn: (x: any) => void): void;
  removeListener(ev: string, fn: (x: any) => void): void;
  status: { getCalls(): Array<{ thisValue: unknown; args: any[] }> };
  warn: { getCalls(): Array<{ thisValue: unknown; args: any[] }> };
};

const INSTANCE = 'IntuneConnector_1';

interface Fed {
  outputs: Array<Record<string, any>>;
  errors: Error[];
}

/** Sends messages into a node and collects one output per message (and the errors). */
async function feed(nodeId: string, msgs: unknown[], o: { outId?: string; expectOutputs?: number; timeoutMs?: number } = {}): Promise<Fed> {
  const node = helper.getNode(nodeId) as unknown as AnyNode;
  const out = helper.getNode(o.outId ?? 'out') as unknown as AnyNode;
  const want = o.expectOutputs ?? msgs.length;
  const fed: Fed = { outputs: [], errors: [] };
  const onErr = (c: { args: unknown[] }) => fed.errors.push(c.args[0] as Error);
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const onOut = (m: Record<string, any>) => {
    fed.outputs.push(m);
    if (fed.outputs.length >= want) resolveAll();
  };
  node.on('call:error', onErr);
  out.on('input', onOut);
  if (want === 0) resolveAll();
  for (const m of msgs) node.receive(m);
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`only ${fed.outputs.length} of ${want} outputs within the time; errors: ${fed.errors.map(String).join(' | ')}`)), o.timeoutMs ?? 80_000));
  try {
    await Promise.race([all, timer]);
    await sleep(40); // done(err) follows the message
  } finally {
    node.removeListener('call:error', onErr);
    out.removeListener('input', onOut);
  }
  return fed;
}

const reports = (f: Fed) => f.outputs.map((m) => m.payload as PageReport);
const sum = (rs: PageReport[], serverId: string, k: 'sent' | 'changed' | 'failed' | 'unchanged') =>
  rs.reduce((a, r) => a + (r.servers.find((s) => s.serverId === serverId)?.[k] ?? 0), 0);

/** text: the form the editor translates (status-text.ts); runtimeText: the runtime's language. */
function statuses(id: string): Array<{ fill?: string; text?: string; runtimeText?: string }> {
  const n = helper.getNode(id) as unknown as AnyNode;
  return n.status
    .getCalls()
    .filter((c) => c.thisValue === n)
    .map((c) => c.args[0]);
}

describe('intune-acmp nodes', function () {
  this.timeout(120_000);
  let env: AcmpEnv;

  before(async () => {
    env = await startAcmpEnv({ servers: 2 });
  });
  after(async () => {
    await env?.stop();
  });
  afterEach(async () => {
    await helper.unload();
    env.sics.clearFaults();
    for (const s of env.servers) {
      s.clearFaults();
      s.clear();
      s.licenceLimit = undefined;
      s.replyDelayMs = 0;
      s.answers = 'reply';
      s.formats = [1, 2];
      s.jobFormat = 2;
    }
  });

  async function deploySink(props: Record<string, unknown> = {}, cfg: Parameters<typeof acmpConfigFlow>[1] = {}) {
    const { nodes, credentials } = acmpConfigFlow(env, cfg);
    const cfgId = (nodes.find((n) => n.type === 'intune-acmp-config') as { id: string }).id;
    await loadFlow(
      [tlsNode, acmpConfigNode, acmpNode],
      [{ id: 'f1', type: 'tab', label: 'acmp' }, ...nodes, { id: 'sink', z: 'f1', type: 'intune-acmp', acmp: cfgId, serverId: '*', batchSize: 500, wires: [['out']], ...props }, { id: 'out', z: 'f1', type: 'helper' }],
      credentials,
    );
  }

  // ------------------------------------------------------------------ inventory

  describe('inventory', () => {
    let tenantList: Device[];

    before(() => {
      tenantList = tenantDevices(new SimTenant({ seed: 21, devices: 10_000 }));
      expect(tenantList).to.have.length(10_000);
    });

    it('10,000 devices to every server ("*"): both store exactly the tenant\'s devices; an unchanged rerun publishes nothing; one change is sent alone', async () => {
      await deploySink();
      const [a, b] = env.servers;
      const first = await feed('sink', syncPages(tenantList, { instance: INSTANCE, pageSize: 1000 }));
      expect(first.errors.map(String)).to.deep.equal([]);
      const r1 = reports(first);
      expect(r1.map((r) => r.page)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      for (const s of ['SRV1', 'SRV2']) {
        expect(sum(r1, s, 'sent'), s).to.equal(10_000);
        expect(r1.flatMap((r) => r.servers.find((x) => x.serverId === s)!.batches)).to.have.length(20);
      }
      expect(r1[9].complete).to.equal(true);
      expect(r1[9].removals!.map((x) => x.candidates)).to.deep.equal([0, 0]);
      for (const srv of [a, b]) {
        expect(srv.stats.inventoryBatches).to.equal(20);
        const stored = srv.storedDevices(INSTANCE);
        expect(stored.length).to.equal(10_000);
        expect(stored).to.deep.equal(tenantList);
        expect(srv.devices.get(tenantList[0].id)!.onDemandDefinition).to.equal('IntuneMobileDevices_1');
      }

      // unchanged rerun: nothing published at all
      const publishes = env.sics.stats.publishes;
      const second = await feed('sink', syncPages(tenantList, { instance: INSTANCE, pageSize: 2500 }));
      expect(second.errors.map(String)).to.deep.equal([]);
      expect(env.sics.stats.publishes - publishes).to.equal(0);
      expect(sum(reports(second), 'SRV1', 'unchanged')).to.equal(10_000);
      expect(sum(reports(second), 'SRV2', 'changed')).to.equal(0);
      expect(reports(second)[3].complete).to.equal(true);

      // one device changes: only it is sent, to each server, in one message
      const changed = tenantList.map((d, i) => (i === 4321 ? { ...d, lastContactAt: '2030-01-01T00:00:00.000Z', name: `${d.name}-renamed` } : d));
      const third = await feed('sink', syncPages(changed, { instance: INSTANCE, pageSize: 5000, mode: 'incremental' }));
      expect(env.sics.stats.publishes - publishes).to.equal(2);
      expect(sum(reports(third), 'SRV1', 'sent')).to.equal(1);
      expect(a.devices.get(tenantList[4321].id)!.device.name).to.equal(`${tenantList[4321].name}-renamed`);
      expect(b.storedDevices(INSTANCE)).to.deep.equal(changed);
      const last = statuses('sink').pop();
      expect(last?.fill).to.equal('green');
    });

    it('10,000 devices to one server by id: only that server gets them', async () => {
      await deploySink({ serverId: 'SRV2', batchSize: 1000 });
      const [a, b] = env.servers;
      const fed = await feed('sink', syncPages(tenantList, { instance: 'IntuneConnector_2', pageSize: 1000 }));
      expect(fed.errors.map(String)).to.deep.equal([]);
      expect(reports(fed).every((r) => r.servers.length === 1 && r.servers[0].serverId === 'SRV2')).to.equal(true);
      expect(a.stats.messages.inventory ?? 0).to.equal(0);
      expect(a.devices.size).to.equal(0);
      expect(b.stats.inventoryBatches).to.equal(10);
      expect(b.storedDevices('IntuneConnector_2')).to.deep.equal(tenantList);
    });
  });

  // ------------------------------------------------------------------ removals

  describe('removals', () => {
    const all = Array.from({ length: 30 }, (_, i) => makeDevice({ name: `D${i}` }));
    const fewer = all.slice(0, 25);
    const ids = (l: Device[]) => l.map((d) => d.id).sort();

    it('only after a complete full run: not after incremental, aborted or partly received runs; only the instance\'s own devices', async () => {
      await deploySink({ batchSize: 10 });
      const [a] = env.servers;
      // another instance's devices on the same servers
      const other = [makeDevice({ name: 'B1' }), makeDevice({ name: 'B2' })];
      await feed('sink', syncPages(other, { instance: 'OtherTenant_1' }));

      await feed('sink', syncPages(all, { instance: INSTANCE, pageSize: 10 }));
      expect(ids(a.storedDevices(INSTANCE))).to.deep.equal(ids(all));

      const inc = reports(await feed('sink', syncPages(fewer, { instance: INSTANCE, mode: 'incremental', pageSize: 10 })));
      expect(inc[inc.length - 1]).to.include({ complete: false, removalSkipped: 'the run is incremental' });
      expect(a.storedDevices(INSTANCE)).to.have.length(30);

      const aborted = reports(await feed('sink', syncPages(fewer, { instance: INSTANCE, pageSize: 10, aborted: true })));
      expect(aborted[aborted.length - 1].removalSkipped).to.match(/aborted/);
      expect(a.storedDevices(INSTANCE)).to.have.length(30);

      const pages = syncPages(fewer, { instance: INSTANCE, pageSize: 10 });
      const gap = reports(await feed('sink', [pages[0], pages[2]]));
      expect(gap[1].removalSkipped).to.match(/did not receive every page/);
      expect(a.storedDevices(INSTANCE)).to.have.length(30);

      const full = reports(await feed('sink', syncPages(fewer, { instance: INSTANCE, pageSize: 10 })));
      const end = full[full.length - 1];
      expect(end.complete).to.equal(true);
      expect(end.removals!.map((r) => [r.serverId, r.candidates, r.removed])).to.deep.equal([
        ['SRV1', 5, 5],
        ['SRV2', 5, 5],
      ]);
      for (const srv of env.servers) {
        expect(ids(srv.storedDevices(INSTANCE))).to.deep.equal(ids(fewer));
        expect(ids(srv.storedDevices('OtherTenant_1'))).to.deep.equal(ids(other));
      }
      // removals are not repeated
      const publishes = env.sics.stats.publishes;
      await feed('sink', syncPages(fewer, { instance: INSTANCE, pageSize: 10 }));
      expect(env.sics.stats.publishes).to.equal(publishes);
    });

    it('publishes two pages of a run side by side, reports them in page order, and ends the run (removals) only after every page was answered', async () => {
      await deploySink({ batchSize: 10, serverId: 'SRV1' });
      const [a] = env.servers;
      const instance = 'Pipeline_1';
      await feed('sink', syncPages(all, { instance, pageSize: 10 }));
      // Every device changed (new OS version), five gone: three pages of one message each, then one removal.
      const next = fewer.map((d) => ({ ...d, os: { ...d.os, version: `${d.os.version}.1` } }));
      a.replyDelayMs = 300;
      const arrivals: Array<{ inventory: number; removals: number; repliedBefore: number }> = [];
      const sim = a as unknown as { receive: (...args: unknown[]) => void };
      const receive = sim.receive.bind(a);
      sim.receive = (...args: unknown[]) => {
        const repliedBefore = a.stats.repliesSent;
        receive(...args);
        arrivals.push({ inventory: a.stats.inventoryBatches, removals: a.stats.removalsReceived, repliedBefore });
      };
      const start = { replied: a.stats.repliesSent, inventory: a.stats.inventoryBatches };
      let fed: Fed;
      try {
        fed = await feed('sink', syncPages(next, { instance, pageSize: 10 }));
      } finally {
        delete (sim as { receive?: unknown }).receive; // the prototype's again
      }
      expect(fed.errors.map(String)).to.deep.equal([]);
      expect(reports(fed).map((r) => r.page), 'reported in page order').to.deep.equal([1, 2, 3]);
      const inv = arrivals.filter((x) => x.inventory > start.inventory && x.removals === arrivals[0].removals);
      expect(inv, 'three inventory messages').to.have.length(3);
      // Page 2's message reached ACMP before page 1's reply went out (replies wait 300 ms): side by side.
      expect(inv[1].repliedBefore, 'page 2 sent while page 1 waited for its reply').to.equal(start.replied);
      const removal = arrivals.find((x) => x.removals > arrivals[0].removals);
      expect(removal, 'a removal message').to.exist;
      expect(removal!.repliedBefore, "the removal waited for every page's reply").to.be.at.least(start.replied + 3);
      expect(ids(a.storedDevices(instance))).to.deep.equal(ids(fewer));
      expect(a.storedDevices(instance).every((d) => String(d.os.version).endsWith('.1'))).to.equal(true);
    });

    it('a run that would remove more than the removal limit removes nothing, says why and turns yellow; a higher limit lets it through', async () => {
      const instance = 'LimitTest_1';
      await deploySink({ serverId: 'SRV1', removalLimitPercent: 50 });
      const srv = env.servers[0];
      await feed('sink', syncPages(all, { instance }));
      const few = all.slice(0, 12); // 18 of 30 gone: 60 %
      const held = await feed('sink', syncPages(few, { instance }));
      const end = reports(held)[0];
      expect(end.removals!.map((r) => [r.candidates, r.removed, r.heldBack])).to.deep.equal([[18, 0, '18 of the 30 devices this instance sent would be removed, more than the limit of 50 %: nothing was removed. Check the source\'s filters, or raise the limit']]);
      expect(String(held.errors[0])).to.match(/more than the limit of 50 %/);
      expect(ids(srv.storedDevices(instance))).to.deep.equal(ids(all));
      const sink = helper.getNode('sink') as unknown as { status: { lastCall: { args: [{ fill: string }] } } };
      expect(sink.status.lastCall.args[0].fill).to.equal('yellow');
      await helper.unload();
      await deploySink({ serverId: 'SRV1', removalLimitPercent: 60 });
      const second = 'LimitTest_2';
      const all2 = Array.from({ length: 30 }, (_, i) => makeDevice({ name: `E${i}` }));
      await feed('sink', syncPages(all2, { instance: second }));
      const through = reports(await feed('sink', syncPages(all2.slice(0, 12), { instance: second })))[0];
      expect(through.removals!.map((r) => [r.candidates, r.removed, r.heldBack ?? null])).to.deep.equal([[18, 18, null]]);
      expect(ids(srv.storedDevices(second))).to.deep.equal(ids(all2.slice(0, 12)));
    });

    it('"acmp/resend" forgets what was published: the next run sends everything again', async () => {
      await deploySink({ serverId: 'SRV1' });
      await feed('sink', syncPages(fewer, { instance: INSTANCE }));
      const before = env.servers[0].stats.devicesReceived;
      const reset = await feed('sink', [{ topic: 'acmp/resend', instance: INSTANCE }]);
      expect(reset.outputs[0].payload).to.deep.equal({ instance: INSTANCE, reset: true });
      await feed('sink', syncPages(fewer, { instance: INSTANCE }));
      expect(env.servers[0].stats.devicesReceived - before).to.equal(25);
    });
  });

  // ------------------------------------------------------------------ markup

  it('a device name with XML markup round-trips intact', async () => {
    await deploySink({ serverId: 'SRV1' });
    const evil = makeDevice({
      name: '</Name></Device><Device intuneId="injected"><Name>pwn</Name></Device><![CDATA[ ]]> & "quotes" \'apos\' <!-- c --> \u0001\r\n',
      model: '<Model/>&amp;',
      user: { id: null, upn: 'a&b@<x>.com', email: null, displayName: '"><script>alert(1)</script>' },
    });
    const fed = await feed('sink', syncPages([evil, makeDevice()], { instance: INSTANCE }));
    expect(fed.errors.map(String)).to.deep.equal([]);
    const srv = env.servers[0];
    expect(srv.devices.get(evil.id)!.device).to.deep.equal(evil);
    expect(srv.devices.has('injected')).to.equal(false);
    expect(srv.devices.size).to.equal(2);
    const doc = parseXml(srv.lastInventoryXml[srv.lastInventoryXml.length - 1]);
    const inv = doc.children[0].children[0].children[0].children[0];
    expect(inv.children.map((c) => c.name)).to.deep.equal(['Device', 'Device']);
  });

  describe('what a real ACMP can answer, and the wire formats', () => {
    it('an ACMP that answers like its Public API (<T…Response_V1> with a result code) confirms every batch: no reply time-outs, no retries', async () => {
      await deploySink({ serverId: 'SRV1', batchSize: 4, replyTimeoutSec: 5 });
      const srv = env.servers[0];
      srv.answers = 'generic';
      const publishes = env.sics.stats.byPath['POST /Publish'] ?? 0;
      const list = Array.from({ length: 10 }, () => makeDevice());
      const fed = await feed('sink', syncPages(list, { instance: INSTANCE }), { timeoutMs: 30_000 });
      expect(fed.errors.map(String)).to.deep.equal([]);
      const r = reports(fed)[0].servers[0];
      expect([r.sent, r.failed]).to.deep.equal([10, 0]);
      expect(r.batches.map((b) => b.attempts)).to.deep.equal([1, 1, 1]);
      expect((env.sics.stats.byPath['POST /Publish'] ?? 0) - publishes).to.equal(3);
      expect(srv.devices.size).to.equal(10);
      expect(statuses('sink').pop()?.fill).to.equal('green');
      // a generic answer with code 35 fails the batch with that code's meaning
      srv.failNext({ kind: 'inventory', code: 35 });
      const bad = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(String(bad.errors[0])).to.match(/refused the request as invalid .*\[result code 35\]/);
    });

    it('writes wire format 2 (command framing) by default and format 1 when set; an ACMP side that reads only format 1 answers 2 with code 35', async () => {
      const srv = env.servers[0];
      await deploySink({ serverId: 'SRV1' });
      await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(parseXml(srv.lastInventoryXml[srv.lastInventoryXml.length - 1]).children[0].children[0].name).to.equal('IntuneDeviceInventory');
      srv.formats = [1];
      const refused = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(String(refused.errors[0])).to.match(/result code 35/);
      await helper.unload();
      await deploySink({ serverId: 'SRV1', wireFormat: '1' });
      const ok = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(ok.errors.map(String)).to.deep.equal([]);
      expect(parseXml(srv.lastInventoryXml[srv.lastInventoryXml.length - 1]).children[0].children[0].name).to.equal('IntuneConnector');
    });

    it('a run whose first page failed with code 35 ends red, and its last page reaches a Catch node with the run\'s failure', async () => {
      const { nodes, credentials } = acmpConfigFlow(env);
      await loadFlow(
        [tlsNode, acmpConfigNode, acmpNode],
        [
          { id: 'f1', type: 'tab', label: 'acmp' },
          ...nodes,
          { id: 'sink', z: 'f1', type: 'intune-acmp', acmp: 'acmpcfg', serverId: 'SRV1', batchSize: 500, wires: [['out']] },
          { id: 'out', z: 'f1', type: 'helper' },
          { id: 'c1', z: 'f1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
          { id: 'caught', z: 'f1', type: 'helper' },
        ],
        credentials,
      );
      const caught: Array<Record<string, any>> = [];
      (helper.getNode('caught') as unknown as AnyNode).on('input', (m) => caught.push(m));
      env.servers[0].failNext({ kind: 'inventory', code: 35 });
      // page 1 (two devices) is refused; page 2, the last, is empty: "run done: 0 sent" on the old code
      const pages = syncPages([makeDevice(), makeDevice()], { instance: INSTANCE, pageSize: 2 });
      const last = { ...pages[0], payload: [], sync: { ...pages[0].sync, page: 2, last: true, stats: { items: 2, emitted: 2, skipped: {}, pages: 2, requests: 2, retries: 0, throttled: 0, throttleWaitMs: 0, durationMs: 1 } } };
      pages[0].sync = { ...pages[0].sync, last: false };
      delete (pages[0].sync as { stats?: unknown }).stats;
      await feed('sink', [pages[0], last]);
      await until(() => caught.length >= 2, 5_000, 'two caught errors');
      const fromLast = caught.find((m) => m.sync?.last === true);
      expect(fromLast, 'the last page reaches Catch').to.not.equal(undefined);
      expect(fromLast!.error.message).to.match(/ended with 2 device\(s\) not published to ACMP \(0 sent\); first: SRV1 page 1 batch 1: .*result code 35/);
      expect(caught.find((m) => m.sync?.page === 1)!.error.message).to.match(/result code 35/);
      const end = statuses('sink').pop()!;
      expect(end.fill).to.equal('red');
      expect(end.runtimeText ?? end.text).to.match(/0 sent, 2 failed|runFailed/);
    });
  });

  // ------------------------------------------------------------------ errors

  describe('result codes and connection problems', () => {
    it('licence amount reached (32 per device): clear error, the refused devices are sent again next time', async () => {
      await deploySink({ serverId: 'SRV1', batchSize: 5 });
      const srv = env.servers[0];
      srv.licenceLimit = 7;
      const list = Array.from({ length: 10 }, () => makeDevice());
      const fed = await feed('sink', syncPages(list, { instance: INSTANCE }));
      expect(fed.errors).to.have.length(1);
      expect(String(fed.errors[0])).to.match(/licence amount reached/);
      const r = reports(fed)[0].servers[0];
      expect([r.sent, r.failed]).to.deep.equal([7, 3]);
      expect(statuses('sink').pop()?.fill).to.equal('red');
      srv.licenceLimit = undefined;
      const again = await feed('sink', syncPages(list, { instance: INSTANCE }));
      expect(again.errors).to.have.length(0);
      expect(reports(again)[0].servers[0].sent).to.equal(3);
      expect(srv.devices.size).to.equal(10);
    });

    it('an invalid-request reply (35) fails the batch with a clear error; a passing internal error (18) is retried', async () => {
      await deploySink({ serverId: 'SRV2' });
      const srv = env.servers[1];
      srv.failNext({ kind: 'inventory', code: 35 });
      const bad = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(String(bad.errors[0])).to.match(/refused the request as invalid .*\[result code 35\]/);
      expect(reports(bad)[0].servers[0].batches[0]).to.include({ ok: false, code: 35 });
      srv.failNext({ kind: 'inventory', code: 18 });
      const ok = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(ok.errors).to.have.length(0);
      expect(reports(ok)[0].servers[0].batches[0]).to.include({ ok: true, attempts: 2 });
    });

    it('wrong password: every batch fails with "user name or password"; the password appears nowhere', async () => {
      await deploySink({ serverId: 'SRV1' }, { credentials: { password: 'totally-wrong-pw' } });
      const fed = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(String(fed.errors[0])).to.match(/user name or password/);
      const logged = JSON.stringify((helper.log() as unknown as { args: unknown[][] }).args);
      expect(logged).to.not.include('totally-wrong-pw');
      expect(logged).to.not.include(SICS_PASSWORD);
      expect(JSON.stringify(fed.outputs)).to.not.include('totally-wrong-pw');
    });

    it('session expiry in the middle of a run: signs in again and carries on', async () => {
      await deploySink({ batchSize: 5 });
      const list = Array.from({ length: 20 }, () => makeDevice());
      const pages = syncPages(list, { instance: INSTANCE, pageSize: 10 });
      await feed('sink', [pages[0]]);
      const logins = env.sics.stats.logins;
      env.sics.expireSessions();
      const fed = await feed('sink', [pages[1]]);
      expect(fed.errors).to.have.length(0);
      expect(env.sics.stats.logins - logins).to.equal(1);
      expect(env.servers[1].devices.size).to.equal(20);
    });

    it('TLS failure without the fallback: a TLS error; with the fallback: works unencrypted, said in status and log', async () => {
      await deploySink({ serverId: 'SRV1' }, { withCa: false });
      const strict = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(String(strict.errors[0])).to.match(/TLS connection failed/);
      expect(env.servers[0].devices.size).to.equal(0);
      await helper.unload();

      await deploySink({ serverId: 'SRV1' }, { withCa: false, overrides: { allowUnencrypted: true } });
      const plain = env.sics.stats.plainConnections;
      const ok = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(ok.errors).to.have.length(0);
      expect(env.servers[0].devices.size).to.equal(1);
      expect(env.sics.stats.plainConnections).to.be.greaterThan(plain);
      const cfg = helper.getNode('acmpcfg') as unknown as AnyNode;
      const warned = cfg.warn
        .getCalls()
        .filter((c) => c.thisValue === cfg)
        .map((c) => String(c.args[0]));
      expect(warned.some((w) => /WITHOUT encryption/.test(w))).to.equal(true);
      await until(() => statuses('sink').some((s) => /unencrypted/.test(String(s.runtimeText)) && /"\$t":"intune-acmp\.status\.unencrypted"|^intune-acmp\.status\.unencrypted$/.test(String(s.text))), 2000, 'an "unencrypted" status');
    });

    it('unreachable host: the batch fails with "cannot be reached"', async () => {
      await deploySink({ serverId: 'SRV1' }, { overrides: { port: 1, retries: 1 } });
      const fed = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(String(fed.errors[0])).to.match(/cannot be reached/);
    });

    it('jobs node, SICS unreachable: the status says why in plain words (both languages) and when it tries again', async () => {
      const { nodes, credentials } = acmpConfigFlow(env, { overrides: { port: 1, retries: 1 } });
      const cfgId = (nodes.find((n) => n.type === 'intune-acmp-config') as { id: string }).id;
      await loadFlow([tlsNode, acmpConfigNode, acmpActionsNode], [{ id: 'f1', type: 'tab', label: 'acmp' }, ...nodes, { id: 'jobs', z: 'f1', type: 'intune-acmp-actions', acmp: cfgId, wires: [[]] }], credentials);
      const jobs = helper.getNode('jobs') as unknown as { status: { getCalls(): Array<{ args: [{ fill: string; shape: string; text: string; runtimeText?: string }] }> } };
      const retrying = () => jobs.status.getCalls().map((c) => c.args[0]).find((st) => /status\.retrying/.test(st.text));
      await until(() => !!retrying(), 20_000, 'a retrying status');
      const st = retrying()!;
      expect(st).to.include({ fill: 'red', shape: 'ring' });
      // The editor translates the key and the nested reason itself; flows get the runtime's text.
      expect(JSON.parse(st.text.slice(st.text.indexOf(' ') + 1))).to.deep.include({ why: { $t: 'intune-acmp-config.status.unreachable' } });
      expect(st.runtimeText).to.match(/^retrying in \d+ s: SICS not reachable$/);
      const locales = [path.resolve(__dirname, '..', 'locales'), path.resolve(__dirname, '..', '..', 'locales')].find((p) => fs.existsSync(p))!;
      const de = JSON.parse(fs.readFileSync(path.join(locales, 'de', 'intune-acmp-config.json'), 'utf8'));
      expect(de['intune-acmp-config'].status.unreachable, 'the reason exists in German').to.be.a('string').and.not.equal('SICS not reachable');
    });

    it('misconfiguration is reported in plain words: unknown server id, bad host, not a device list, unknown message, no server for "*"', async () => {
      await deploySink({ serverId: 'SRV9' });
      const unknown = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }), { expectOutputs: 0 });
      expect(String(unknown.errors[0])).to.match(/"SRV9" is not configured .*SRV1, SRV2/);
      const notList = await feed('sink', [{ topic: 'intune/devices', payload: 'x', sync: { runId: 'r', instance: 'i', mode: 'full', page: 1, last: true, startedAt: '' } }], { expectOutputs: 0 });
      expect(String(notList.errors[0])).to.match(/msg\.payload must be a list of devices/);
      // A malformed envelope: the one check of contracts.ts names the field and what it got.
      const badPage = await feed('sink', [{ topic: 'intune/devices', payload: [], sync: { runId: 'r', instance: 'i', mode: 'full', page: 0, last: true } }], { expectOutputs: 0 });
      expect(String(badPage.errors[0])).to.match(/msg\.sync is not a sync-run envelope.*: msg\.sync\.page must be a whole number from 1 \(got 0\)/);
      const badMode = await feed('sink', [{ topic: 'intune/devices', payload: [], sync: { runId: 'r', instance: 'i', mode: 'weekly', page: 1, last: true } }], { expectOutputs: 0 });
      expect(String(badMode.errors[0])).to.match(/msg\.sync\.mode must be "full" or "incremental" \(got "weekly"\)/);
      const other = await feed('sink', [{ payload: 42 }], { expectOutputs: 0 });
      expect(String(other.errors[0])).to.match(/Unrecognised message/);
      const summary = await feed('sink', [{ topic: 'intune/devices/summary', payload: {} }], { expectOutputs: 0 });
      expect(summary.errors).to.have.length(0);
      await helper.unload();
      await deploySink({}, { overrides: { host: 'https://sics.example:3900' } });
      const badHost = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }), { expectOutputs: 0 });
      expect(String(badHost.errors[0])).to.match(/host must be a host name/);
      await helper.unload();
      await deploySink({}, { overrides: { servers: [] } });
      const noServers = await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }), { expectOutputs: 0 });
      expect(String(noServers.errors[0])).to.match(/no ACMP server configured: add the ACMP servers/);
    });

    it('warns about a non-persistent store once, with the first device page, not when only job statuses pass', async () => {
      await deploySink();
      const sink = helper.getNode('sink') as unknown as AnyNode;
      const memoryWarnings = () => sink.warn.getCalls().filter((c) => /non-persistent context store/.test(String(c.args[0]))).length;
      await sleep(50);
      expect(memoryWarnings(), 'nothing published yet').to.equal(0);
      await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      await feed('sink', syncPages([makeDevice()], { instance: INSTANCE }));
      expect(memoryWarnings()).to.equal(1);
    });

    it('closing in the middle of a run stops at once', async () => {
      await deploySink({ serverId: 'SRV1' });
      env.servers[0].replyDelayMs = 5_000;
      try {
        const sink = helper.getNode('sink') as unknown as AnyNode;
        sink.receive(syncPages([makeDevice()], { instance: INSTANCE })[0]);
        await sleep(200);
        const t0 = Date.now();
        await helper.unload();
        expect(Date.now() - t0).to.be.lessThan(3_000);
      } finally {
        env.servers[0].replyDelayMs = 0;
      }
    });
  });

  // ------------------------------------------------------------------ verify

  it('"Verify connection" answers in plain words and never returns the password; stored credentials are used for __PWRD__', async () => {
    await deploySink();
    const base = { host: '127.0.0.1', port: env.sics.port, useTls: true, tls: 'acmpcfg-tls', timeoutSec: 5, servers: env.servers.map((s) => s.route) };
    const ok = await helper.request().post('/intune-acmp-config/verify').send({ ...base, id: 'acmpcfg', credentials: { user: 'intune', password: '__PWRD__' } });
    expect(ok.status).to.equal(200);
    expect(ok.body).to.include({ ok: true, transport: 'https' });
    expect(ok.body.servers.map((s: { ok: boolean }) => s.ok)).to.deep.equal([true, true]);
    const bad = await helper.request().post('/intune-acmp-config/verify').send({ ...base, credentials: { user: 'intune', password: 'nope-nope-42' } });
    expect(bad.body).to.include({ ok: false, code: 'wrongCredentials' });
    const text = JSON.stringify([ok.body, bad.body]);
    expect(text).to.not.include('nope-nope-42');
    expect(text).to.not.include(SICS_PASSWORD);
  });

  // ------------------------------------------------------------------ actions

  describe('query-action jobs', () => {
    let sim: SimEnv;
    const ready: string[] = [];

    before(async () => {
      sim = await startSimEnv({ devices: 80, seed: 5 });
      for (let i = 0; i < sim.tenant.positions; i++) {
        const d = sim.tenant.deviceAt(i);
        const m = sim.tenant.metaAt(i);
        if (d && m && d.managementState === 'managed' && m.duplicateOf === null) ready.push(d.id);
      }
    });
    after(async () => {
      await sim?.stop();
    });

    let lastFlow: { nodes: unknown[]; credentials: Record<string, unknown> } = { nodes: [], credentials: {} };
    async function deployActions(actionProps: Record<string, unknown> = {}) {
      const acmp = acmpConfigFlow(env);
      const intune = configFlow(sim);
      const nodes = [
        { id: 'f1', type: 'tab', label: 'acmp' },
        ...acmp.nodes,
        ...intune.nodes.map((n) => (n.type === 'tls-config' ? { cert: '', key: '', ...n } : n)),
        { id: 'jobs', z: 'f1', type: 'intune-acmp-actions', acmp: 'acmpcfg', wires: [['act', 'requests']] },
        { id: 'act', z: 'f1', type: 'intune-action', intune: 'cfg1', wires: [['sink']], ...actionProps },
        { id: 'sink', z: 'f1', type: 'intune-acmp', acmp: 'acmpcfg', serverId: '*', wires: [['out']] },
        { id: 'requests', z: 'f1', type: 'helper' },
        { id: 'out', z: 'f1', type: 'helper' },
      ];
      lastFlow = { nodes, credentials: { ...acmp.credentials, ...intune.credentials } };
      await loadFlow([tlsNode, acmpConfigNode, acmpNode, acmpActionsNode, intuneConfigNode, intuneActionNode], nodes, lastFlow.credentials);
      await until(() => env.sics.targetNames('IntuneConnector').some((t) => t.startsWith('intune-jobs-')), 5000, 'the jobs target');
    }

    it('a job reaches the simulated Graph through intune-action and comes back "finished"', async () => {
      await deployActions();
      const srv = env.servers[1];
      const devices = ready.slice(0, 2);
      const before = sim.graph.stats.actions.syncDevice ?? 0;
      const requests: Array<Record<string, any>> = [];
      (helper.getNode('requests') as unknown as AnyNode).on('input', (m) => requests.push(m));
      const jobId = srv.emitJob({ action: 'sync', requestedBy: 'ACME\\j.doe', clients: devices.map((id, i) => ({ acmpClientId: `CL-${i}`, intuneId: id })) });
      const status = await srv.waitForJobStatus(jobId, 30_000);
      expect(status.state).to.equal('finished');
      expect(status.reason).to.equal(undefined);
      expect(status.clients.map((c) => [c.acmpClientId, c.state, c.outcome])).to.deep.equal([
        ['CL-0', 'finished', 'accepted'],
        ['CL-1', 'finished', 'accepted'],
      ]);
      expect((sim.graph.stats.actions.syncDevice ?? 0) - before).to.equal(2);
      expect(requests[0].payload).to.deep.equal({ action: 'sync', deviceIds: devices, jobId, requestedBy: 'ACMP SRV2: ACME\\j.doe' });
      expect(requests[0].acmp).to.include({ serverId: 'SRV2', jobId });
    });

    it('a wipe without confirmation comes back "failed" and nothing reaches Graph', async () => {
      await deployActions({ allowWipe: true });
      const srv = env.servers[0];
      const graphBefore = sim.graph.stats.requests;
      const logBefore = sim.tenant.actionLog.length;
      const jobId = srv.emitJob({ action: 'wipe', confirmed: false, clients: [{ acmpClientId: 'CL-W', intuneId: ready[5] }] });
      const status = await srv.waitForJobStatus(jobId, 15_000);
      expect(status.state).to.equal('failed');
      expect(status.reason).to.match(/needs the operator's confirmation/);
      expect(status.clients).to.deep.equal([{ intuneId: ready[5], acmpClientId: 'CL-W', state: 'failed', outcome: 'rejected', error: status.reason }]);
      await sleep(300);
      expect(sim.graph.stats.requests).to.equal(graphBefore);
      expect(sim.tenant.actionLog.length).to.equal(logBefore);
    });

    it('a confirmed wipe the executor does not allow comes back "failed" with its reason, nothing reaches Graph', async () => {
      await deployActions();
      const srv = env.servers[0];
      const graphBefore = sim.graph.stats.requests;
      const jobId = srv.emitJob({ action: 'wipe', confirmed: true, clients: [{ acmpClientId: 'CL-X', intuneId: ready[6] }] });
      const status = await srv.waitForJobStatus(jobId, 15_000);
      expect(status.state).to.equal('failed');
      expect(status.reason).to.match(/does not allow the action "wipe"/);
      expect(sim.graph.stats.requests).to.equal(graphBefore);
    });

    it('malformed jobs are answered "failed" with the reason and never executed', async () => {
      await deployActions();
      const srv = env.servers[0];
      const graphBefore = sim.graph.stats.requests;
      const forwarded: unknown[] = [];
      (helper.getNode('requests') as unknown as AnyNode).on('input', (m) => forwarded.push(m));
      // an unknown action, written by hand
      const badId = `acmp-job-${crypto.randomUUID()}`;
      srv.emitRaw(
        `<ICQL><ACMP><IntuneConnector xmlns="urn:x-intune-connector:acmp:v1" version="1.0" messageId="${crypto.randomUUID()}" sentAt="${new Date().toISOString()}" serverId="SRV1"><ActionJob jobId="${badId}" action="SelfDestruct" confirmed="true"><Client intuneId="${ready[7]}"/></ActionJob></IntuneConnector></ACMP></ICQL>`,
        badId,
      );
      const s1 = await srv.waitForJobStatus(badId, 15_000);
      expect(s1.state).to.equal('failed');
      expect(s1.reason).to.match(/Unknown job action "SelfDestruct"/);
      // a client that is not an Intune device, and a notification without text
      const j2 = srv.emitJob({ action: 'lock', clients: [{ acmpClientId: 'WS-1', intuneId: 'not-a-guid' }] });
      expect((await srv.waitForJobStatus(j2, 15_000)).reason).to.match(/no valid Intune device id/);
      const j3 = srv.emitJob({ action: 'notify', clients: [{ intuneId: ready[8] }], notification: { title: 'x', body: '' } });
      expect((await srv.waitForJobStatus(j3, 15_000)).reason).to.match(/title and a body/);
      await sleep(200);
      expect(forwarded).to.have.length(0);
      expect(sim.graph.stats.requests).to.equal(graphBefore);
    });

    it('a job published with a callback gets its status there, in the job\'s wire format', async () => {
      await deployActions();
      const srv = env.servers[0];
      for (const format of [1, 2] as const) {
        const jobId = srv.emitJob({ action: 'sync', clients: [{ intuneId: ready[10 + format] }], callback: true, format });
        const status = await srv.waitForJobStatus(jobId, 30_000);
        expect(status.state).to.equal('finished');
        expect(status.header.format, `a job in format ${format}`).to.equal(format);
        expect(srv.jobs.get(jobId)!.statusKeys).to.deep.equal([srv.statusRoutingKey]);
      }
      // without a callback: the server's own routing key
      const plain = srv.emitJob({ action: 'sync', clients: [{ intuneId: ready[13] }] });
      await srv.waitForJobStatus(plain, 30_000);
      expect(srv.jobs.get(plain)!.statusKeys).to.deep.equal([srv.routingKey]);
    });

    it('a job that a consume under way takes while the node closes is journaled and runs once after the redeploy; its status reaches ACMP', async () => {
      {
        await deployActions();
        const srv = env.servers[1];
        const before = sim.graph.stats.actions.syncDevice ?? 0;
        // the next consume takes the job off the queue, then answers only after 1.5 s: the node closes meanwhile
        const consumes = env.sics.stats.consumes;
        env.sics.failNext({ path: '/Consume', holdAnswerMs: 1_500 });
        await until(() => env.sics.stats.consumes > consumes, 5_000, 'the held consume');
        const jobId = srv.emitJob({ action: 'sync', clients: [{ intuneId: ready[14] }] });
        await sleep(100);
        const target = env.sics.targetNames('IntuneConnector').find((t) => t.startsWith('intune-jobs-'))!;
        expect(env.sics.queued('IntuneConnector', target), 'the consume under way took the job off the queue').to.have.length(0);
        // A full redeploy, as the editor's Deploy does: every node closes and starts again; node context is kept.
        const redeployed = helper.setFlows(lastFlow.nodes as never, 'full', lastFlow.credentials as never);
        await sleep(300);
        expect(srv.jobs.get(jobId)!.statuses, 'nothing answered before the redeploy').to.have.length(0);
        await redeployed;
        const status = await srv.waitForJobStatus(jobId, 30_000);
        expect(status.state).to.equal('finished');
        await sleep(1_000);
        expect(srv.jobs.get(jobId)!.statuses, 'exactly one status').to.have.length(1);
        expect((sim.graph.stats.actions.syncDevice ?? 0) - before, 'executed once').to.equal(1);
      }
    });

    it('the jobs target survives a redeploy, so jobs sent meanwhile are not lost', async () => {
      await deployActions();
      const target = env.sics.targetNames('IntuneConnector').find((t) => t.startsWith('intune-jobs-'))!;
      await helper.unload();
      expect(env.sics.hasTarget('IntuneConnector', target)).to.equal(true);
      const srv = env.servers[1];
      const jobId = srv.emitJob({ action: 'sync', clients: [{ intuneId: ready[9] }] });
      await deployActions();
      expect((await srv.waitForJobStatus(jobId, 30_000)).state).to.equal('finished');
    });
  });
});
