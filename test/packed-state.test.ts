/**
 * The sinks' state in a persistent context store: packed to one ASCII line
 * per device when serialised (packed-state.ts), read back in either form,
 * through Node-RED's own `localfilesystem` store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { enc, flat, forEachPacked, packLines, packPairs } from '../nodes/lib/run/packed-state';
import { CiLedger } from '../nodes/lib/fourme/ci-ledger';
import { SinkStateStore, emptyState, fromStored, scopeKey, stateKeyFor, type CiEntry } from '../nodes/lib/fourme/sink-fingerprints';
import { InventoryPublisher, stateKey } from '../nodes/lib/acmp/acmp-sync';
import { WriteSchedule, type ContextLike } from '../nodes/lib/node-red/context-state';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const localfilesystem = require('@node-red/runtime/lib/nodes/context/localfilesystem') as (config: Record<string, unknown>) => {
  open(): Promise<void>;
  close(): Promise<void>;
  get(scope: string, key: string, cb: (err: Error | null, value?: unknown) => void): void;
  set(scope: string, key: string, value: unknown, cb: (err?: Error | null) => void): void;
};

/** Packed text as [key, fields] rows. */
function unpack(text: string): Array<[string, string[]]> {
  const rows: Array<[string, string[]]> = [];
  forEachPacked(text, (k, f) => rows.push([k, f]));
  return rows;
}

const AWKWARD = ['plain', 'with|bar', 'two\nlines', '100% sure', 'Müller’s iPhone', '😀 phone', '', 'tab\there', '%41'];

function scopeOf(store: ReturnType<typeof localfilesystem>, scope: string): ContextLike {
  return {
    get: (key, _s, cb) => store.get(scope, key, (err, v) => cb(err, v)),
    set: (key, value, _s, cb) => store.set(scope, key, value, (err) => cb(err)),
  };
}

async function openStore(dir: string) {
  // cache + flushInterval 0: written at close, as the runtime does at shutdown; read back from the file on open.
  const store = localfilesystem({ dir, cache: true, flushInterval: 0 });
  await store.open();
  return store;
}

describe('packed sink state', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'packed-state-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('packs any text into ASCII lines and unpacks it unchanged', () => {
    const pairs = new Map(AWKWARD.map((v, i) => [i ? `key ${v}` : v, v]));
    const text = packPairs(pairs);
    expect(/^[\x20-\x7e\n]*$/.test(text), 'printable ASCII and newlines only').to.equal(true);
    expect(text.split('\n')).to.have.length(AWKWARD.length);
    expect(unpack(text)).to.deep.equal([...pairs].map(([k, v]) => [k, [v]]));
    expect(unpack(packPairs(new Map()))).to.deep.equal([]);
    expect(() => unpack('|x')).to.throw(/without a key/);
    for (const v of AWKWARD.concat('Grüße', 'x'.repeat(40).slice(3))) expect(flat(v), v).to.equal(v);
  });

  it('joins large maps in chunks to exactly the text of one join', () => {
    for (const n of [0, 1, 499, 500, 501, 1000, 2345]) {
      const map = new Map(Array.from({ length: n }, (_, i) => [`dev-${i}${AWKWARD[i % AWKWARD.length]}`, `v${i}|${AWKWARD[(i + 3) % AWKWARD.length]}`] as [string, string]));
      const oneJoin = [...map].map(([k, v]) => `${enc(k)}|${enc(v)}`).join('\n');
      expect(packPairs(map), `n=${n}`).to.equal(oneJoin);
      expect(packLines(map, '', (v) => `|${v.length}`), `n=${n}`).to.equal([...map].map(([k, v]) => `${enc(k)}|${v.length}`).join('\n'));
      expect(unpack(packPairs(map)).map(([k, f]) => [k, f.join('|')]), `n=${n}`).to.deep.equal([...map]);
    }
  });

  it('4me CI ledger: keeps every field as given, shares product keys, replaces and forgets entries', () => {
    const l = new CiLedger();
    AWKWARD.forEach((v, i) => l.set(`dev-${i}`, { f: `fp|${v}`, id: i % 2 ? `ci ${v}` : undefined, p: `brand|${v}`, n: v }));
    expect(l.size).to.equal(AWKWARD.length);
    AWKWARD.forEach((v, i) => {
      const e = l.get(`dev-${i}`)!;
      expect(e, v).to.deep.equal(i % 2 ? { f: `fp|${v}`, id: `ci ${v}`, p: `brand|${v}`, n: v } : { f: `fp|${v}`, p: `brand|${v}`, n: v });
    });
    expect(l.get('nope')).to.equal(undefined);
    l.set('dev-1', { f: 'new', p: 'brand|plain', n: 'renamed' });
    expect(l.get('dev-1')).to.deep.equal({ f: 'new', p: 'brand|plain', n: 'renamed' });
    expect(l.size).to.equal(AWKWARD.length);
    expect(l.delete('dev-2')).to.equal(true);
    expect(l.has('dev-2')).to.equal(false);
    expect([...l.keys()]).to.have.length(AWKWARD.length - 1);
    expect(Object.keys(l.toRecord())).to.deep.equal([...l.keys()]);
    // Stored: one deviceId|product|f|id|n line per device, the product an index into the key table; loads back.
    const packed = l.toPacked();
    expect(packed.productKeys).to.include('brand|plain');
    const line = unpack(packed.lines).find(([k]) => k === 'dev-1')![1];
    expect(line).to.deep.equal([String(packed.productKeys.indexOf('brand|plain')), 'new', '', 'renamed']);
    expect(CiLedger.fromPacked(JSON.parse(JSON.stringify(packed))).toRecord()).to.deep.equal(l.toRecord());
    expect(CiLedger.fromPacked({ lines: '', productKeys: [] }).size).to.equal(0);
    for (const bad of [{ lines: 'd|9|f||n', productKeys: ['p'] }, { lines: 'd|0|f|n', productKeys: ['p'] }, { lines: '|0|f||n', productKeys: ['p'] }, { lines: 'd|0|f||n', productKeys: 'p' }, { lines: 'd|0|f||%E0%A4%A', productKeys: ['p'] }]) {
      expect(() => CiLedger.fromPacked(bad as never), JSON.stringify(bad)).to.throw(/packed state/);
    }
    // The v2 text (product key in each line) still loads.
    const v2 = 'dev-1|new||brand%7Cplain|renamed\ndev%7Cx|f2|ci%202|p2|M%C3%BCller';
    expect(CiLedger.fromLines(v2).toRecord()).to.deep.equal({ 'dev-1': { f: 'new', p: 'brand|plain', n: 'renamed' }, 'dev|x': { f: 'f2', id: 'ci 2', p: 'p2', n: 'Müller' } });
  });

  it('4me state: JSON is the packed form, less than half the indented size, and loads back; the old form still loads', () => {
    const s = emptyState(scopeKey({ endpoint: 'https://graphql.4me.example', account: 'acme', source: 'Intune' }));
    for (let i = 0; i < 500; i++) {
      const e: CiEntry = { f: `fp${i}`.padEnd(20, 'x'), p: `apple|iphone ${i % 7}`, n: AWKWARD[i % AWKWARD.length] + i };
      if (i % 3) e.id = `NG1lLmNvbS9DaS8${i}`;
      s.cis.set(`0000${i}-aaaa-bbbb-cccc-dddddddddddd`, e);
    }
    s.products['apple|iphone 1'] = { c: 'ref', cn: 'Phones', b: 'Apple', m: 'iPhone 1', n: 'Apple iPhone 1', s: 'apple|iphone 1' };
    s.incidents['d:p'] = { id: 'req1', s: 'open', d: 'd', at: '2026-01-01T00:00:00Z' };
    const json = JSON.stringify({ key: s }, null, 4);
    const stored = JSON.parse(json).key;
    expect(stored.v).to.equal(3);
    expect(stored.cis).to.be.a('string');
    expect(stored.productKeys).to.have.length(7);
    expect(Object.keys(s), 'toJSON is not an own enumerable key').to.deep.equal(['v', 'scope', 'cis', 'products', 'incidents', 'software']);
    const plain = JSON.stringify({ key: { ...s, cis: s.cis.toRecord() } }, null, 4);
    expect(json.length, `${json.length} vs ${plain.length} characters`).to.be.below(plain.length / 2);
    const back = fromStored(stored);
    expect(back!.cis.toRecord()).to.deep.equal(s.cis.toRecord());
    expect(back!.cis.size).to.equal(500);
    expect({ ...back, cis: null }).to.deep.equal({ ...s, cis: null });
    expect(back!.cis.get('00001-aaaa-bbbb-cccc-dddddddddddd')).to.deep.equal(s.cis.get('00001-aaaa-bbbb-cccc-dddddddddddd'));
    expect(back!.cis.get('00001-aaaa-bbbb-cccc-dddddddddddd')!.n).to.equal(AWKWARD[1] + 1);
    expect(back!.cis.get('00000-aaaa-bbbb-cccc-dddddddddddd')).to.not.have.property('id');
    // Saved before packing (v1, plain object) or with product keys in the lines (v2), and not a state at all
    expect(fromStored(JSON.parse(plain).key)!.cis.toRecord()).to.deep.equal(s.cis.toRecord());
    const v2Lines = [...s.cis.entries()].map(([k, e]) => [k, e.f, e.id, e.p, e.n].map(enc).join('|')).join('\n');
    const v2 = { v: 2, scope: s.scope, cis: v2Lines, products: s.products, incidents: s.incidents };
    expect(fromStored(JSON.parse(JSON.stringify(v2)))!.cis.toRecord()).to.deep.equal(s.cis.toRecord());
    expect(fromStored({ v: 2, scope: 'x', cis: 42, products: {}, incidents: {} })).to.equal(null);
    expect(fromStored({ v: 3, scope: 'x', cis: 'd|0|f||n', products: {}, incidents: {} }), 'no product table').to.equal(null);
    expect(fromStored('text')).to.equal(null);
  });

  it('4me state survives a restart of a localfilesystem store, written packed to the file', async () => {
    const scope = { endpoint: 'https://graphql.4me.example', account: 'acme', source: 'Intune' };
    let store = await openStore(dir);
    const sinks = new SinkStateStore(scopeOf(store, 'node1:flow1'));
    const { state, fresh } = await sinks.load('IntuneConnector_1', scope);
    expect(fresh).to.equal(true);
    state.cis.set('dev-1', { f: 'f1', id: 'ci-1', p: 'p', n: 'Müller’s 😀 | phone' });
    state.cis.set('dev-2', { f: 'f2', p: 'p', n: 'plain' });
    sinks.touch('IntuneConnector_1');
    await sinks.save('IntuneConnector_1');
    await store.close();
    const file = fs.readFileSync(path.join(dir, 'context', 'flow1', 'node1.json'), 'utf8');
    const onDisk = JSON.parse(file)[stateKeyFor('IntuneConnector_1')];
    expect(onDisk.v).to.equal(3);
    expect(onDisk.cis.split('\n')).to.have.length(2);
    expect(/^[\x20-\x7e\s]*$/.test(file), 'the file is ASCII').to.equal(true);

    store = await openStore(dir);
    const again = await new SinkStateStore(scopeOf(store, 'node1:flow1')).load('IntuneConnector_1', scope);
    expect(again.fresh).to.equal(false);
    expect(again.state.cis.toRecord()).to.deep.equal(state.cis.toRecord());
    expect(again.state.cis.get('dev-1')!.n).to.equal('Müller’s 😀 | phone');
    await store.close();
  });

  it('ACMP state survives a restart of a localfilesystem store, written packed; the unpacked form still loads', async () => {
    let store = await openStore(dir);
    const ctx = scopeOf(store, 'acmp:flow1');
    const asStore = {
      get: (key: string) => new Promise<unknown>((res, rej) => ctx.get(key, undefined, (e, v) => (e ? rej(e) : res(v)))),
      set: (key: string, value: unknown) => new Promise<void>((res, rej) => ctx.set(key, value, undefined, (e) => (e ? rej(e) : res()))),
    };
    const caller = { call: async () => ({ code: 0, failed: [] }) as never };
    const pub = new InventoryPublisher({ caller, onDemandDefinition: 'Intune', batchSize: 200, reconcile: true, store: asStore });
    await pub.reset('IntuneConnector_1', [{ serverId: 'SRV1' } as never]);
    const key = stateKey('IntuneConnector_1', 'SRV1');
    const live = (await asStore.get(key)) as { devices: Map<string, string> };
    live.devices.set('dev|1', 'fpA');
    live.devices.set('dev-2', 'fpB');
    await asStore.set(key, live);
    await store.close();
    const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'context', 'flow1', 'acmp.json'), 'utf8'))[key];
    expect(onDisk).to.include({ v: 2, instance: 'IntuneConnector_1', serverId: 'SRV1', devices: 'dev%7C1|fpA\ndev-2|fpB' });

    store = await openStore(dir);
    const ctx2 = scopeOf(store, 'acmp:flow1');
    const read = (k: string) => new Promise<unknown>((res, rej) => ctx2.get(k, undefined, (e, v) => (e ? rej(e) : res(v))));
    const pub2 = new InventoryPublisher({ caller, onDemandDefinition: 'Intune', batchSize: 200, reconcile: true, store: { get: read, set: async () => undefined } });
    const loaded = await (pub2 as unknown as { loadState(i: string, s: string): Promise<{ devices: Map<string, string> }> }).loadState('IntuneConnector_1', 'SRV1');
    expect(Object.fromEntries(loaded.devices)).to.deep.equal({ 'dev|1': 'fpA', 'dev-2': 'fpB' });
    await store.close();

    const old = new InventoryPublisher({ caller, onDemandDefinition: 'Intune', batchSize: 200, reconcile: true, store: { get: async () => ({ v: 1, instance: 'I', serverId: 'S', devices: { a: 'x' } }), set: async () => undefined } });
    const oldState = await (old as unknown as { loadState(i: string, s: string): Promise<{ devices: Map<string, string> }> }).loadState('I', 'S');
    expect(Object.fromEntries(oldState.devices)).to.deep.equal({ a: 'x' });
  });
});

describe('sink state writes within a run', () => {
  function countingContext() {
    const writes: unknown[] = [];
    const data = new Map<string, unknown>();
    const ctx: ContextLike = {
      get: (key, _s, cb) => cb(null, data.get(key)),
      set: (key, value, _s, cb) => {
        writes.push(key);
        data.set(key, value);
        cb(null);
      },
    };
    return { ctx, writes, data };
  }

  it('4me: the first write at once, then at most one per interval; a plain save and saveAll write what is left', async () => {
    const { ctx, writes } = countingContext();
    let now = 1_000_000;
    const store = new SinkStateStore(ctx, undefined, { writeIntervalMs: 60_000, now: () => now });
    const scope = { endpoint: 'e', account: 'a', source: 'Intune' };
    const { state } = await store.load('I', scope);
    const confirm = async (id: string, soon = true) => {
      state.cis.set(id, { f: id, p: 'p', n: id });
      store.touch('I');
      await store.save('I', { soon });
    };
    await confirm('d1');
    expect(writes, 'first write').to.have.length(1);
    await confirm('d2');
    now += 30_000;
    await confirm('d3');
    expect(writes, 'within the interval: not written').to.have.length(1);
    now += 31_000;
    await confirm('d4');
    expect(writes, 'interval passed').to.have.length(2);
    await confirm('d5');
    expect(writes).to.have.length(2);
    await confirm('d6', false);
    expect(writes, "a run's end writes at once").to.have.length(3);
    await store.saveAll();
    expect(writes, 'nothing left to write').to.have.length(3);
    now += 1000;
    await confirm('d7');
    await store.saveAll();
    expect(writes, 'the node closes: written').to.have.length(4);
  });

  it('ACMP: pages within the interval are written once at the run end, with every confirmed device', async () => {
    for (const interval of [3_600_000, 0]) {
      const { writes, data } = countingContext();
      const store = {
        get: async (k: string) => data.get(k),
        set: async (k: string, v: unknown) => {
          writes.push(k);
          data.set(k, JSON.parse(JSON.stringify(v)));
        },
      };
      const caller = { call: async () => ({ reply: { code: 0, failed: [] }, attempts: 1 }) as never };
      const pub = new InventoryPublisher({ caller, onDemandDefinition: 'Intune', batchSize: 200, reconcile: true, store, stateWriteIntervalMs: interval });
      const servers = [{ serverId: 'SRV1' } as never];
      const sync = (page: number, last: boolean) => ({ runId: 'r1', instance: 'I', mode: 'full', page, last, startedAt: '2026-01-01T00:00:00Z' }) as never;
      for (let p = 1; p <= 4; p++) {
        await pub.handlePage(sync(p, p === 4), [{ id: `dev-${p}` } as never, { id: `dev-${p}b` } as never], servers);
      }
      expect(writes.length, `interval ${interval}`).to.equal(interval ? 2 : 4);
      const saved = fromStoredAcmp(data.get(stateKey('I', 'SRV1')));
      expect(Object.keys(saved).sort()).to.deep.equal(['dev-1', 'dev-1b', 'dev-2', 'dev-2b', 'dev-3', 'dev-3b', 'dev-4', 'dev-4b']);
    }
  });

  it('ACMP: a failed write is written again by the next one due, and when the node closes', async () => {
    const data = new Map<string, unknown>();
    let failNext = 0;
    let writes = 0;
    const store = {
      get: async (k: string) => data.get(k),
      set: async (k: string, v: unknown) => {
        writes++;
        if (failNext > 0) {
          failNext--;
          throw new Error('disk full');
        }
        data.set(k, JSON.parse(JSON.stringify(v)));
      },
    };
    const caller = { call: async () => ({ reply: { code: 0, failed: [] }, attempts: 1 }) as never };
    const pub = new InventoryPublisher({ caller, onDemandDefinition: 'Intune', batchSize: 200, reconcile: true, store, stateWriteIntervalMs: 0 });
    const servers = [{ serverId: 'SRV1' } as never];
    const sync = (page: number, last: boolean) => ({ runId: 'r1', instance: 'I', mode: 'full', page, last, startedAt: '2026-01-01T00:00:00Z' }) as never;
    failNext = 1;
    const r1 = await pub.handlePage(sync(1, false), [{ id: 'dev-1' } as never], servers);
    expect(r1.warnings.join(), 'the failure is reported').to.match(/cannot be saved \(disk full\)/);
    expect(data.has(stateKey('I', 'SRV1'))).to.equal(false);
    // The next page's write carries the first page's device too.
    await pub.handlePage(sync(2, false), [{ id: 'dev-2' } as never], servers);
    expect(Object.keys(fromStoredAcmp(data.get(stateKey('I', 'SRV1')))).sort()).to.deep.equal(['dev-1', 'dev-2']);
    // On the last page the run's end tries once more; when that fails too, closing the node writes it.
    failNext = 2;
    const r3 = await pub.handlePage(sync(3, true), [{ id: 'dev-3' } as never], servers);
    expect(r3.warnings.filter((w) => /disk full/.test(w))).to.have.length(2);
    expect(Object.keys(fromStoredAcmp(data.get(stateKey('I', 'SRV1'))))).to.not.include('dev-3');
    const before = writes;
    await pub.saveAllChanged();
    expect(writes).to.equal(before + 1);
    expect(Object.keys(fromStoredAcmp(data.get(stateKey('I', 'SRV1'))))).to.include('dev-3');
    await pub.saveAllChanged();
    expect(writes, 'nothing left to write').to.equal(before + 1);
  });

  it('WriteSchedule: due at once, then once per interval; a failed write is pending again', async () => {
    let now = 0;
    const w = new WriteSchedule({ intervalMs: 100, now: () => now });
    expect(w.due('a'), 'nothing changed').to.equal(false);
    w.changed('a');
    expect(w.due('a')).to.equal(true);
    await w.write('a', async () => undefined);
    expect(w.pending('a')).to.equal(false);
    w.changed('a');
    now = 99;
    expect(w.due('a')).to.equal(false);
    expect(w.pendingKeys()).to.deep.equal(['a']);
    now = 100;
    expect(w.due('a')).to.equal(true);
    let error: Error | undefined;
    await w.write('a', async () => Promise.reject(new Error('no'))).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('no');
    expect(w.pending('a'), 'pending again').to.equal(true);
    w.forget('a');
    expect(w.pendingKeys()).to.deep.equal([]);
  });
});

function fromStoredAcmp(v: unknown): Record<string, string> {
  const s = v as { v: number; devices: string };
  expect(s.v).to.equal(2);
  return Object.fromEntries(unpack(s.devices).map(([k, [fp]]) => [k, fp]));
}
