/**
 * intune-4me-config and intune-4me in Node-RED (node-red-node-test-helper)
 * against the simulated 4me. Input is what the Intune sources emit: page
 * messages of sync runs over Device / ComplianceViolation objects built
 * from a simulated 10,000-device tenant (test/support/device-fixtures.ts).
 * Results are checked in the sim's own records, not in what the node says.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import helper from 'node-red-node-test-helper';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim, type FourMeRequest } from '../sim/fourme';
import { SimTenant } from '../sim/tenant';
import type { ComplianceViolation, Device } from '../nodes/lib/contracts';
import type { RunSummary4me } from '../nodes/lib/fourme/fourme-sink';
import { makeDevice, makeViolation, runPages, tenantDevices, type RunOptions } from './support/device-fixtures';

helper.init(require.resolve('node-red'));
const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [nodeRedDir] }));
// The compiled nodes of the same build as this test file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const configNode = require(path.join(__dirname, '..', 'nodes', 'intune-4me-config', 'intune-4me-config.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sinkNode = require(path.join(__dirname, '..', 'nodes', 'intune-4me', 'intune-4me.js'));

const PAT = 'pat-4me-sink-test-0123456789abcdef';
const CLIENT = { clientId: 'intune-connector-app', clientSecret: 'oauth-client-secret-abcdef-0123' };
const ACCOUNT = 'acme';
const DIRECTORY = 'acme-dir';
const GIB = 1024 ** 3;

type Msg = { topic?: string; payload: unknown; sync?: { runId: string; page: number; last: boolean }; error?: { message: string } };
interface TestNode {
  on(ev: string, fn: (m: Msg) => void): void;
  receive(m: Record<string, unknown>): void;
  context(): { get(k: string): unknown; set(k: string, v: unknown): void; keys(): string[] };
  warn: { args: unknown[][] };
  error: { args: unknown[][] };
  /** text: the form the editor translates (status-text.ts); runtimeText: the runtime's language. */
  status: { args: Array<[{ fill?: string; shape?: string; text?: string; runtimeText?: string }]> };
}

async function waitFor(cond: () => boolean, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ------------------------------------------------------------ expectations
// Written here on their own (not taken from the mapping module), from the seed's CI attribute table.

function expectedCategory(d: Device): string {
  const n = (d.os.name ?? '').toLowerCase();
  if (n.startsWith('windows')) return 'computer/windows_pc';
  if (n.startsWith('mac')) return 'computer/mac';
  if (n.startsWith('ipados')) return 'mobile_device/ipad';
  if (n === 'ios') return 'mobile_device/iphone';
  if (n.startsWith('android')) return 'mobile_device/android_device';
  if (n.startsWith('linux')) return 'computer/linux_pc';
  return 'computer/other_device';
}

function cap1(s: string | null): string | null {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : null;
}

function expectedCustomFields(d: Device): Record<string, unknown> {
  return {
    intune_operating_system: d.os.name,
    intune_os_version: d.os.version,
    intune_os_sku: d.os.sku,
    intune_total_storage_gb: d.storage.totalBytes === null ? null : Math.round(d.storage.totalBytes / GIB),
    intune_free_storage_gb: d.storage.freeBytes === null ? null : Math.round(d.storage.freeBytes / GIB),
    intune_enrolled_date: d.enrolledAt ? d.enrolledAt.slice(0, 10) : null,
    intune_last_contact: d.lastContactAt ? d.lastContactAt.slice(0, 10) : null,
    intune_azure_ad_registered: d.azureAdRegistered,
    intune_join_type: cap1(d.joinType),
    intune_ownership: cap1(d.ownership),
    intune_compliance: cap1(d.complianceState),
    intune_encrypted: d.encrypted,
    intune_jailbroken: cap1(d.jailbroken),
  };
}

describe('intune-4me (sink) against the simulated 4me', function () {
  this.timeout(120_000);
  const pki = sharedTestCa();
  let sim: FourMeSim;
  let caDir: string;
  let caFile: string;
  let tenant: SimTenant;
  let devices: Device[];
  /** lower-case e-mail → person id, for the people seeded as active. */
  const people = new Map<string, string>();

  before(async () => {
    sim = new FourMeSim({
      tls: pki.server,
      accounts: [{ id: ACCOUNT, name: 'Acme Corp', directoryAccountId: DIRECTORY }, { id: DIRECTORY, name: 'Acme Directory' }, { id: 'globex' }],
      personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }],
      oauthClients: [CLIENT],
    });
    await sim.start();
    caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-4me-ca-'));
    caFile = path.join(caDir, 'ca.pem');
    fs.writeFileSync(caFile, pki.certPem);
    tenant = new SimTenant({ seed: 5, devices: 10_000 });
    devices = tenantDevices(tenant);
    // People live in the directory account (found with view: all); every 10th user has no person,
    // every 25th person is disabled (not matched).
    let u = 0;
    for (const user of tenant.users.iterate()) {
      u++;
      if (u % 10 === 0) continue;
      const disabled = u % 25 === 0;
      const [p] = sim.seedPeople([{ name: user.displayName, primaryEmail: user.userPrincipalName, disabled }], DIRECTORY);
      if (!disabled) people.set(user.userPrincipalName.toLowerCase(), p.id);
    }
  });
  after(async () => {
    await sim?.stop();
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  // ---------------------------------------------------------------- flows

  interface Deployed {
    sink: TestNode;
    sink2: TestNode;
    out: Msg[];
    summaries: Msg[];
    errors: Msg[];
    out2: Msg[];
    summaries2: Msg[];
  }

  function cfgProps(o: Record<string, unknown> = {}) {
    return {
      id: 'cfg',
      type: 'intune-4me-config',
      name: 'sim',
      accountId: ACCOUNT,
      environment: 'custom',
      region: 'global',
      brand: '4me',
      graphqlUrl: sim.graphqlUrl,
      tokenUrl: sim.tokenUrl,
      tls: 'tls1',
      authType: 'token',
      clientId: '',
      requestsPer2s: 19,
      asyncPollMs: 50,
      retryAfterFallbackSec: 1,
      asyncTimeoutSec: 30,
      ...o,
    };
  }

  async function deploy(sinkProps: Record<string, unknown> = {}, o: { cfg?: Record<string, unknown>; creds?: Record<string, unknown>; sink2?: Record<string, unknown> } = {}): Promise<Deployed> {
    const flow = [
      { id: 'f1', type: 'tab', label: '4me' },
      { id: 'tls1', type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: caFile, verifyservercert: true },
      cfgProps(o.cfg),
      { id: 's1', type: 'intune-4me', z: 'f1', name: '', fourme: 'cfg', ...sinkProps, wires: [['out'], ['sum']] },
      { id: 's2', type: 'intune-4me', z: 'f1', name: '', fourme: 'cfg', ...sinkProps, ...(o.sink2 ?? {}), wires: [['out2'], ['sum2']] },
      { id: 'out', type: 'helper', z: 'f1' },
      { id: 'sum', type: 'helper', z: 'f1' },
      { id: 'out2', type: 'helper', z: 'f1' },
      { id: 'sum2', type: 'helper', z: 'f1' },
      { id: 'c1', type: 'catch', z: 'f1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f1' },
    ];
    const credentials = { cfg: o.creds ?? { token: PAT } };
    await helper.load([tlsNode, configNode, sinkNode], flow as never, credentials as never);
    const d = { out: [], summaries: [], errors: [], out2: [], summaries2: [] } as unknown as Deployed;
    attach(d);
    return d;
  }

  /** (Re)connects the test's collectors to the nodes of the running flow. */
  function attach(d: Deployed): void {
    d.sink = helper.getNode('s1') as unknown as TestNode;
    d.sink2 = helper.getNode('s2') as unknown as TestNode;
    (helper.getNode('out') as unknown as TestNode).on('input', (m) => d.out.push(m));
    (helper.getNode('sum') as unknown as TestNode).on('input', (m) => d.summaries.push(m));
    (helper.getNode('out2') as unknown as TestNode).on('input', (m) => d.out2.push(m));
    (helper.getNode('sum2') as unknown as TestNode).on('input', (m) => d.summaries2.push(m));
    (helper.getNode('caught') as unknown as TestNode).on('input', (m) => d.errors.push(m));
  }

  /** Sends a run's pages and waits for its summary (or an error). */
  async function run(d: Deployed, items: unknown[], o: RunOptions = {}, which: 1 | 2 = 1): Promise<{ summary: RunSummary4me; results: Msg[] }> {
    const node = which === 1 ? d.sink : d.sink2;
    const sums = which === 1 ? d.summaries : d.summaries2;
    const outs = which === 1 ? d.out : d.out2;
    const s0 = sums.length;
    const o0 = outs.length;
    const e0 = d.errors.length;
    const pages = runPages(items, o);
    for (const p of pages) node.receive(p as unknown as Record<string, unknown>);
    await waitFor(() => sums.length > s0 || d.errors.length > e0, 90_000, 'the run summary');
    if (d.errors.length > e0) throw new Error(`the run failed: ${d.errors[e0].error?.message}`);
    await waitFor(() => outs.length >= o0 + pages.length, 5000, 'the page results');
    return { summary: sums[s0].payload as RunSummary4me, results: outs.slice(o0) };
  }

  /** Sends messages and waits for the first caught error. */
  async function firstError(d: Deployed, msgs: Array<Record<string, unknown>>): Promise<string> {
    const e0 = d.errors.length;
    for (const m of msgs) d.sink.receive(m);
    await waitFor(() => d.errors.length > e0, 30_000, 'a caught error');
    return d.errors[e0].error!.message;
  }

  /** "Restarts Node-RED" with the context kept: flows stopped and started again. */
  /**
   * "Restarts Node-RED" with a persistent context store: flows stopped and
   * started again, node context carried over (the test helper's store is
   * memory only, which Node-RED empties when a node closes).
   */
  async function restartKeepingContext(d: Deployed): Promise<void> {
    const red = (helper as unknown as { _redNodes: { stopFlows(): Promise<void>; startFlows(): Promise<void> } })._redNodes;
    const saved = new Map<string, Record<string, unknown>>();
    for (const id of ['s1', 's2']) {
      const ctx = (helper.getNode(id) as unknown as TestNode).context();
      saved.set(id, Object.fromEntries(ctx.keys().map((k) => [k, JSON.parse(JSON.stringify(ctx.get(k)))])));
    }
    await red.stopFlows();
    for (const id of ['s1', 's2']) expect((helper.getNode(id) as unknown as TestNode | null)?.context().keys() ?? []).to.deep.equal([]);
    await red.startFlows();
    for (const [id, values] of saved) {
      const ctx = (helper.getNode(id) as unknown as TestNode).context();
      for (const [k, v] of Object.entries(values)) ctx.set(k, v);
    }
    attach(d);
  }

  const cisOf = (source = 'Intune', account = ACCOUNT) => sim.account(account).configurationItems.filter((c) => c.source === source);
  const ciBySource = (account = ACCOUNT) => new Map(cisOf('Intune', account).map((c) => [c.sourceID!, c]));
  const discoveredCalls = () => sim.stats.mutations.discoveredConfigurationItems ?? 0;

  // ======================================================= devices → CIs
  describe('devices → configuration items (10,000-device tenant)', () => {
    let d: Deployed;
    let current: Device[];
    before(async () => {
      d = await deploy();
      current = devices.slice();
    });
    after(async () => {
      await helper.unload();
    });

    it('syncs every device into a CI with product, person relation and custom fields, in about devices/100 + person look-ups requests', async () => {
      sim.resetStats();
      const { summary, results } = await run(d, current);
      expect(summary.complete).to.equal(true);
      expect(summary.cis).to.include({ created: current.length, failed: 0, invalid: 0, unchanged: 0, archived: 0 });
      expect(results.flatMap((r) => r.payload as unknown[])).to.have.length(current.length);

      const cis = ciBySource();
      expect(cisOf().length, 'one CI per device, no more').to.equal(current.length);
      const acc = sim.account(ACCOUNT);
      const productOf = new Map(acc.products.map((p) => [p.id, p]));
      const categoryOf = new Map(acc.productCategories.map((c) => [c.id, c]));
      let matched = 0;
      for (const dev of current) {
        const ci = cis.get(dev.id);
        expect(ci, `CI of ${dev.id}`).to.not.equal(undefined);
        expect({ name: ci!.name, serialNr: ci!.serialNr, systemID: ci!.systemID, status: ci!.status, lastSeenAt: ci!.lastSeenAt }).to.deep.equal({
          name: dev.name,
          serialNr: dev.serialNumber,
          systemID: dev.deepLinks.overview,
          status: 'in_production',
          lastSeenAt: dev.lastContactAt,
        });
        const product = productOf.get(ci!.productId)!;
        expect([product.brand, product.model], `product of ${dev.id}`).to.deep.equal([dev.manufacturer ?? 'Unknown', dev.model ?? 'Unknown']);
        expect(categoryOf.get(product.categoryId)!.reference).to.equal(expectedCategory(dev));
        const email = (dev.user?.upn || dev.user?.email || '').toLowerCase();
        const person = email ? people.get(email) : undefined;
        expect(ci!.userIds, `users of ${dev.name}`).to.deep.equal(person ? [person] : []);
        if (person) matched++;
        expect(Object.fromEntries(ci!.customFields.map((f) => [f.id, f.value])), `custom fields of ${dev.id}`).to.deep.equal(expectedCustomFields(dev));
      }
      expect(summary.people!.matched).to.equal(matched);
      expect(summary.people!.matched + summary.people!.unmatched + summary.people!.noUser).to.equal(current.length);
      expect(matched).to.be.greaterThan(current.length * 0.5);
      // one product per brand + model
      const keys = new Set(current.map((x) => `${x.manufacturer ?? 'Unknown'}|${x.model ?? 'Unknown'}`.toLowerCase()));
      expect(acc.products.filter((p) => p.source === 'Intune')).to.have.length(keys.size);

      // requests: one upload per 100 CIs of a page; person look-ups: at most one per page with new
      // addresses, fewer when queued pages ride along (look-ahead), never an address twice
      const pages = runPages(current);
      let uploads = 0;
      let pagesWithNew = 0;
      const seen = new Set<string>();
      for (const p of pages) {
        uploads += Math.ceil(p.payload.length / 100);
        const fresh = new Set((p.payload as Device[]).map((x) => (x.user?.upn || x.user?.email || '').toLowerCase()).filter((e) => e.includes('@') && !seen.has(e)));
        fresh.forEach((e) => seen.add(e));
        if (fresh.size) pagesWithNew++;
      }
      const r = summary.requests as Record<string, number>;
      console.log(`      4me requests for ${current.length} devices: ${r.graphql} GraphQL (${r.uploads} uploads, ${r.personLookups} person look-ups, ${r.retries} retries), ${r.resultPolls} result polls, cost ${r.cost}`);
      expect(r.uploads).to.equal(uploads);
      expect(r.personLookups).to.be.within(Math.ceil(seen.size / 5000), pagesWithNew);
      expect(r.personLookups, 'look-ahead: fewer look-ups than pages').to.be.below(pagesWithNew);
      expect(sim.stats.byRootField['query.people'], 'each address asked once: full connections of 100 but the last of each request').to.be.at.most(Math.ceil(seen.size / 100) + r.personLookups);
      expect(r.graphql).to.equal(uploads + r.personLookups + r.retries);
      expect(r.uploads).to.be.at.most(Math.ceil(current.length / 100) + pages.length);
      expect(sim.stats.byRootField['mutation.discoveredConfigurationItems']).to.equal(uploads);
      expect(sim.stats.throttled, 'no 429: paced under the burst limit').to.equal(0);
      expect(sim.stats.discoveredItemErrors).to.equal(0);
    });

    it('an unchanged second run sends no CI writes', async () => {
      const calls = discoveredCalls();
      const writes = sim.ciWriteLog.length;
      const { summary } = await run(d, current);
      expect(summary.cis).to.include({ unchanged: current.length, created: 0, updated: 0 });
      expect(discoveredCalls() - calls).to.equal(0);
      expect(sim.ciWriteLog.length - writes).to.equal(0);
      expect((summary.requests as Record<string, number>).graphql, 'people come from the cache').to.equal(0);
    });

    it('changing 10 devices writes exactly those 10', async () => {
      const someone = [...people.keys()][3];
      const changed = new Set<string>();
      current = current.map((dev, i) => {
        if (i % 900 !== 7 || changed.size >= 10) return dev;
        changed.add(dev.id);
        switch (changed.size % 4) {
          case 0:
            return { ...dev, name: `${dev.name}-RENAMED` };
          case 1:
            return { ...dev, os: { ...dev.os, version: '99.1' } };
          case 2:
            return { ...dev, lastContactAt: '2030-01-02T03:04:05.000Z' };
          default:
            return { ...dev, user: { id: 'u', upn: someone, email: someone, displayName: 'Someone' } };
        }
      });
      expect(changed.size).to.equal(10);
      const received = sim.stats.discoveredItemsReceived;
      const writes = sim.ciWriteLog.length;
      const { summary } = await run(d, current);
      expect(summary.cis).to.include({ updated: 10, unchanged: current.length - 10, created: 0 });
      expect(sim.stats.discoveredItemsReceived - received).to.equal(10);
      expect(new Set(sim.ciWriteLog.slice(writes).map((w) => w.sourceID))).to.deep.equal(changed);
      const cis = ciBySource();
      let moved = 0;
      for (const dev of current.filter((x) => changed.has(x.id))) {
        const ci = cis.get(dev.id)!;
        expect([ci.name, ci.lastSeenAt]).to.deep.equal([dev.name, dev.lastContactAt]);
        expect(ci.customFields.find((f) => f.id === 'intune_os_version')!.value).to.equal(dev.os.version);
        if (dev.user?.upn === someone) {
          // the device changed hands: its CI's user is the new person only
          expect(ci.userIds).to.deep.equal([people.get(someone)]);
          moved++;
        }
      }
      expect(moved).to.be.at.least(2);
    });

    it('removed devices: nothing archived by incremental, aborted or incomplete runs; archived once after a complete full run', async () => {
      const gone = current.filter((_, i) => i % 1400 === 3).slice(0, 7);
      const goneIds = new Set(gone.map((x) => x.id));
      const rest = current.filter((x) => !goneIds.has(x.id));
      const statusOfGone = () => {
        const cis = ciBySource();
        return gone.map((x) => cis.get(x.id)!.status);
      };

      let r = await run(d, rest, { mode: 'incremental' });
      expect(r.summary.reconciled).to.equal(false);
      expect(r.summary.reason).to.match(/incremental/);
      expect(statusOfGone()).to.deep.equal(gone.map(() => 'in_production'));

      r = await run(d, rest, { aborted: true });
      expect(r.summary.reconciled).to.equal(false);
      expect(r.summary.reason).to.match(/aborted/);

      // a page of the run never arrives: 1000 devices missing, none may be archived
      r = await run(d, rest, { dropPages: [2] });
      expect(r.summary.reconciled).to.equal(false);
      expect(r.summary.reason).to.match(/page 2/);
      expect(cisOf().filter((c) => c.status !== 'in_production')).to.have.length(0);

      r = await run(d, rest);
      expect(r.summary.reconciled).to.equal(true);
      expect(r.summary.cis!.archived).to.equal(7);
      expect(statusOfGone()).to.deep.equal(gone.map(() => 'archived'));
      expect(cisOf().filter((c) => c.status !== 'in_production').map((c) => c.sourceID).sort()).to.deep.equal([...goneIds].sort());
      // user relations survive archiving (they would not with "removed")
      const withUser = gone.find((x) => x.user?.upn && people.has(x.user.upn.toLowerCase()));
      if (withUser) expect(ciBySource().get(withUser.id)!.userIds).to.have.length(1);

      const calls = discoveredCalls();
      r = await run(d, rest);
      expect(r.summary.cis!.archived, 'archived once').to.equal(0);
      expect(discoveredCalls() - calls).to.equal(0);

      // a device that comes back is in production again
      r = await run(d, [...rest, gone[0]]);
      expect(r.summary.cis!.created).to.equal(1);
      expect(ciBySource().get(gone[0].id)!.status).to.equal('in_production');
      current = [...rest, gone[0]];
    });

    it('two instances into one account: each archives only its own CIs; a run that would archive most of them is stopped', async () => {
      const b = Array.from({ length: 30 }, (_, i) => makeDevice(50_000 + i));
      let rb = await run(d, b, { instance: 'tenant-b' }, 2);
      expect(rb.summary.cis!.created).to.equal(30);
      // A's complete full run does not know B's CIs: none archived
      const ra = await run(d, current);
      expect(ra.summary.cis!.archived).to.equal(0);
      let cis = ciBySource();
      expect(b.map((x) => cis.get(x.id)!.status)).to.deep.equal(b.map(() => 'in_production'));
      // B's run without 3 devices archives those 3 and nothing of A
      rb = await run(d, b.slice(3), { instance: 'tenant-b' }, 2);
      expect(rb.summary.cis!.archived).to.equal(3);
      cis = ciBySource();
      expect(b.slice(0, 3).map((x) => cis.get(x.id)!.status)).to.deep.equal(['archived', 'archived', 'archived']);
      expect(current.filter((x) => cis.get(x.id)!.status !== 'in_production')).to.have.length(0);
      // A full run that saw nothing (a broken filter upstream) would archive everything: refused
      const empty = await run(d, []);
      expect(empty.summary.reconciled).to.equal(false);
      expect(empty.summary.reason).to.match(/more than the limit of 50 %/);
      expect(empty.summary.errorCount).to.equal(1);
      cis = ciBySource();
      expect(current.filter((x) => cis.get(x.id)!.status !== 'in_production')).to.have.length(0);
    });

    it('after a restart with the cache kept nothing is written; with the cache wiped everything is re-sent and nothing is duplicated', async () => {
      await restartKeepingContext(d);
      const calls = discoveredCalls();
      let r = await run(d, current);
      expect(r.summary.cis!.unchanged).to.equal(current.length);
      expect(discoveredCalls() - calls).to.equal(0);

      await helper.unload(); // context cleaned: the cache is gone
      d = await deploy();
      const before = cisOf().length;
      const created = sim.stats.cisCreated;
      r = await run(d, current);
      expect(r.summary.cis!.created, 're-sent as new to this cache').to.equal(current.length);
      expect(r.summary.cis!.archived).to.equal(0);
      expect(cisOf().length, 'no duplicate CI').to.equal(before);
      expect(sim.stats.cisCreated - created, 'upserts matched the existing CIs').to.equal(0);
      const again = await run(d, current);
      expect(again.summary.cis!.unchanged).to.equal(current.length);
    });

    it('page 1 naming the run\u2019s users (sync.userPrincipalNames): pages that come one at a time find their people in ceil(addresses / 5,000) look-ups', async () => {
      const addresses = [...new Set(current.map((x) => (x.user?.upn || x.user?.email || '').toLowerCase()).filter((e) => e.includes('@')))];
      expect(addresses.length, 'more addresses than one look-up request takes').to.be.above(5000);
      // Each run with the person cache cold (a fresh deployment); the pages one at a time, as a
      // source that reads behind its sinks sends them, so queued pages cannot announce theirs.
      const oneByOne = async (announce: boolean) => {
        await helper.unload();
        d = await deploy();
        const pages = runPages(current);
        if (announce) pages[0].sync.userPrincipalNames = addresses;
        const s0 = d.summaries.length;
        const queries = sim.stats.byRootField['query.people'] ?? 0;
        for (const p of pages) {
          const o0 = d.out.length;
          d.sink.receive(p as unknown as Record<string, unknown>);
          await waitFor(() => d.out.length > o0 || d.errors.length > 0, 60_000, `the result of page ${p.sync.page}`);
        }
        await waitFor(() => d.summaries.length > s0, 30_000, 'the run summary');
        expect(d.errors).to.deep.equal([]);
        const summary = d.summaries[s0].payload as RunSummary4me;
        return { lookups: (summary.requests as Record<string, number>).personLookups, queries: (sim.stats.byRootField['query.people'] ?? 0) - queries, summary };
      };
      const without = await oneByOne(false);
      const withNames = await oneByOne(true);
      expect(withNames.lookups, 'full requests of 5,000 addresses').to.equal(Math.ceil(addresses.length / 5000));
      expect(without.lookups, 'one look-up per page with new addresses').to.be.above(withNames.lookups);
      expect(withNames.queries, 'each address asked once: connections of 100').to.be.at.most(Math.ceil(addresses.length / 100) + withNames.lookups);
      expect(withNames.summary.people, 'the same people matched').to.deep.equal(without.summary.people);
    });
  });

  // ============================================================ incidents
  describe('compliance violations → incidents', () => {
    let d: Deployed;
    const devs = Array.from({ length: 8 }, (_, i) => makeDevice(70_000 + i));
    const pol = (n: number) => ({ id: `pol-${n}`, name: `Compliance policy ${n}` });
    let violations: ComplianceViolation[];
    const requestsOf = () => sim.account(ACCOUNT).requests.filter((r) => r.source === 'Intune');
    const requestFor = (key: string, open = true): FourMeRequest | undefined =>
      requestsOf().find((r) => r.sourceID === key && (!open || r.status !== 'completed'));

    before(async () => {
      // the devices' users exist in the directory account
      for (const x of devs) people.set(x.user!.upn!.toLowerCase(), sim.seedPeople([{ name: x.user!.displayName!, primaryEmail: x.user!.upn! }], DIRECTORY)[0].id);
      d = await deploy({ maxNewPerRun: 5, impact: 'high' });
      await run(d, devs, { instance: 'inc' });
      violations = [
        ...devs.slice(0, 6).map((x) => makeViolation(x, pol(1), [
          { name: 'Antivirus', state: 'nonCompliant', currentValue: 'Off', errorCode: null, errorDescription: null },
          { name: 'Firewall', state: 'error', currentValue: null, errorCode: 65009, errorDescription: 'Remediation failed' },
        ])),
        makeViolation(devs[0], pol(2)),
        makeViolation(devs[1], pol(2)),
      ];
    });
    after(async () => {
      await helper.unload();
    });

    const comp = (items: ComplianceViolation[], o: RunOptions = {}) => run(d, items, { topic: 'intune/compliance', instance: 'inc', ...o });

    it('raises one incident per violation, up to the cap per run; the rest later', async () => {
      let r = await comp(violations);
      expect(r.summary.incidents).to.include({ raised: 5, capped: 3, failed: 0 });
      expect(requestsOf()).to.have.length(5);
      const first = violations[0];
      const req = requestFor(first.key)!;
      const ci = ciBySource().get(first.device.id)!;
      expect(req).to.deep.include({ category: 'incident', impact: 'high', configurationItemIds: [ci.id], requestedForId: people.get(first.device.user!.upn!.toLowerCase()) });
      expect(req.requestedById, 'requested by the connector').to.equal(sim.personOf(PAT, ACCOUNT)!.id);
      expect(req.subject).to.equal(`Intune compliance: ${first.device.name} does not meet "Compliance policy 1"`);
      const note = req.notes[0].text;
      expect(note).to.include('Compliance policy 1').and.include('- Antivirus: nonCompliant, current value: Off').and.include('Remediation failed (65009)').and.include(first.deepLink);

      r = await comp(violations);
      expect(r.summary.incidents).to.include({ raised: 3, open: 5, capped: 0 });
      expect(requestsOf()).to.have.length(8);
      expect(new Set(requestsOf().map((x) => x.sourceID)).size).to.equal(8);
    });

    it('never duplicates across restarts, with the cache kept or lost', async () => {
      await restartKeepingContext(d);
      let r = await comp(violations);
      expect(r.summary.incidents).to.include({ raised: 0, open: 8 });

      await helper.unload();
      d = await deploy({ maxNewPerRun: 5, impact: 'high' });
      r = await comp(violations);
      expect(r.summary.incidents).to.include({ raised: 0, adopted: 8 });
      expect(requestsOf()).to.have.length(8);
    });

    it('resolves an incident once its violation is gone after a complete full run, and only once', async () => {
      const goneKeys = [violations[6].key, violations[2].key];
      const rest = violations.filter((v) => !goneKeys.includes(v.key));
      let r = await comp(rest, { mode: 'incremental' });
      expect(r.summary.incidents!.resolved).to.equal(0);
      r = await comp(rest, { aborted: true });
      expect(r.summary.incidents!.resolved).to.equal(0);
      expect(goneKeys.map((k) => requestFor(k)?.status)).to.deep.equal(['assigned', 'assigned']);

      r = await comp(rest);
      expect(r.summary.incidents!.resolved).to.equal(2);
      for (const k of goneKeys) {
        const req = requestFor(k, false)!;
        expect([req.status, req.completionReason]).to.deep.equal(['completed', 'solved']);
        expect(req.notes[req.notes.length - 1].text).to.match(/no longer reports a violation of "Compliance policy \d"/);
      }
      const notes = goneKeys.map((k) => requestFor(k, false)!.notes.length);
      r = await comp(rest);
      expect(r.summary.incidents!.resolved, 'resolved once').to.equal(0);
      expect(goneKeys.map((k) => requestFor(k, false)!.notes.length)).to.deep.equal(notes);
      expect(rest.every((v) => requestFor(v.key)?.status === 'assigned')).to.equal(true);
      violations = rest;
    });

    it('an incident completed in 4me while the violation persists is not raised again; it is when the violation returns', async () => {
      const v = violations[0];
      const req = requestFor(v.key)!;
      req.status = 'completed';
      req.completionReason = 'solved';
      let r = await comp(violations);
      expect(r.summary.incidents).to.include({ raised: 0, closedIn4me: 1 });
      expect(requestsOf().filter((x) => x.sourceID === v.key)).to.have.length(1);
      const without = violations.slice(1);
      r = await comp(without);
      expect(r.summary.incidents!.resolved).to.equal(0);
      r = await comp(violations);
      expect(r.summary.incidents!.raised).to.equal(1);
      expect(requestsOf().filter((x) => x.sourceID === v.key)).to.have.length(2);
    });

    it('finds the incidents a lost cache forgot, for devices this instance owns, and resolves them', async () => {
      await helper.unload();
      d = await deploy({ maxNewPerRun: 5, impact: 'high' });
      await run(d, devs, { instance: 'inc' }); // ownership of the devices again
      const v = violations[1];
      const r = await comp(violations.filter((x) => x.key !== v.key));
      expect(r.summary.incidents!.resolved).to.equal(1);
      expect(requestFor(v.key, false)!.status).to.equal('completed');
      violations = violations.filter((x) => x.key !== v.key);
    });

    it('note-only mode adds one note and leaves the request open', async () => {
      await helper.unload();
      const devsB = Array.from({ length: 2 }, (_, i) => makeDevice(80_000 + i));
      d = await deploy({ onResolve: 'note', noteLanguage: 'de' });
      await run(d, devsB, { instance: 'note' });
      const vs = devsB.map((x) => makeViolation(x, pol(9)));
      let r = await run(d, vs, { topic: 'intune/compliance', instance: 'note' });
      expect(r.summary.incidents!.raised).to.equal(2);
      expect(requestFor(vs[0].key)!.subject).to.match(/^Intune-Compliance: .* erfüllt „Compliance policy 9“ nicht$/);
      r = await run(d, [vs[1]], { topic: 'intune/compliance', instance: 'note' });
      expect(r.summary.incidents).to.include({ noted: 1, resolved: 0 });
      const req = requestFor(vs[0].key)!;
      expect(req.status).to.equal('assigned');
      expect(req.notes[req.notes.length - 1].text).to.match(/meldet keinen Verstoß gegen „Compliance policy 9“ mehr/);
      const n = req.notes.length;
      r = await run(d, [vs[1]], { topic: 'intune/compliance', instance: 'note' });
      expect(r.summary.incidents!.noted).to.equal(0);
      expect(requestFor(vs[0].key)!.notes.length).to.equal(n);
    });
  });

  // ========================================== throttling and per-item errors
  describe('throttling and errors per item', () => {
    let d: Deployed;
    afterEach(async () => {
      sim.clearFaults();
      sim.setAsyncOptions({ delayMs: 0, pollsBeforeResult: 0, ttlMs: 15 * 60_000 });
      await helper.unload();
    });

    it('survives 429 without and with Retry-After and 503, and reports the waits', async () => {
      d = await deploy();
      const devs = Array.from({ length: 250 }, (_, i) => makeDevice(90_000 + i));
      sim.throttleNext(2, { operation: 'discoveredConfigurationItems', retryAfter: null });
      sim.throttleNext(1, { operation: 'people', retryAfter: 1 });
      sim.failNext(1, { status: 503, route: 'graphql', operation: 'discoveredConfigurationItems' });
      const { summary } = await run(d, devs, { instance: 'thr' });
      expect(summary.cis).to.include({ created: 250, failed: 0 });
      const r = summary.requests as Record<string, number>;
      expect(r.throttled).to.be.at.least(4);
      expect(r.retries).to.equal(4);
      // 3 waits of 1 s; timers may fire a millisecond or two early against Date.now()
      expect(r.throttleWaitMs).to.be.at.least(2950);
      expect(d.sink.status.args.some(([s]) => /throttled, waiting 1 s/.test(s.runtimeText ?? ''))).to.equal(true);
      expect(d.sink.status.args.some(([s]) => s.text === 'intune-4me.status.throttled {"seconds":1}'), 'the form the editor translates').to.equal(true);
      expect(ciBySource().get(devs[249].id)).to.not.equal(undefined);
    });

    it('the first upload takes over existing CIs by serial number: without a source, or of a source named for it', async () => {
      d = await deploy({ alternativeSources: 'QRatify, Old tool' });
      const devs = Array.from({ length: 5 }, (_, i) => makeDevice(95_000 + i));
      const cat = sim.seedProductCategory({ name: 'Tablet', reference: 'computer/tablet_adopt' });
      const prods = devs.map((x, i) => sim.seedProduct({ name: `P${i}`, brand: x.manufacturer!, model: 'Old', category: cat.id, source: null, sourceID: null }));
      const manual = sim.seedConfigurationItem({ name: 'HAND-MADE', productId: prods[0].id, serialNr: devs[0].serialNumber });
      const old = sim.seedConfigurationItem({ name: 'FROM-QRATIFY', productId: prods[1].id, serialNr: devs[1].serialNumber, source: 'QRatify', sourceID: 'q-1' });
      const foreign = sim.seedConfigurationItem({ name: 'OTHER-TOOL', productId: prods[2].id, serialNr: devs[2].serialNumber, source: 'Lansweeper', sourceID: 'l-1' });
      const before = sim.account(ACCOUNT).configurationItems.length;
      const r = await run(d, devs, { instance: 'adopt' });
      expect(r.summary.cis).to.include({ created: 4, failed: 1 });
      // taken over: same records, now with our source and the Intune device id
      expect([manual.source, manual.sourceID, manual.name]).to.deep.equal(['Intune', devs[0].id, devs[0].name]);
      expect([old.source, old.sourceID]).to.deep.equal(['Intune', devs[1].id]);
      // a CI of a source not named is never taken over: 4me refuses the serial number for that brand
      expect([foreign.source, foreign.sourceID]).to.deep.equal(['Lansweeper', 'l-1']);
      expect(r.summary.errors[0]).to.deep.include({ sourceID: devs[2].id });
      expect(sim.account(ACCOUNT).configurationItems.length - before, 'only the two without a match are new').to.equal(2);
      // a CI a 4me user moved to a better product stays there when Intune data changes
      const ci3 = ciBySource().get(devs[3].id)!;
      sim.updateConfigurationItem(ci3.id, { productId: prods[3].id });
      const r2 = await run(d, devs.map((x, i) => (i === 3 ? { ...x, name: 'RENAMED-3' } : x)), { instance: 'adopt' });
      expect(r2.summary.cis!.updated).to.equal(1);
      expect([ci3.name, ci3.productId]).to.deep.equal(['RENAMED-3', prods[3].id]);
    });

    it('reports mutation errors per device, writes the others, and retries the failed one next run', async () => {
      d = await deploy();
      const devs = Array.from({ length: 40 }, (_, i) => makeDevice(91_000 + i));
      const victim = devs[17];
      // a CI of another tool already has this brand + serial number
      const cat = sim.seedProductCategory({ name: 'Laptop PC', reference: 'computer/laptop_pc' });
      const prod = sim.seedProduct({ name: 'Other', brand: victim.manufacturer!, model: 'X', category: cat.id, source: 'Other', sourceID: 'x' });
      const other = sim.seedConfigurationItem({ name: 'OTHER-CI', productId: prod.id, source: 'Other', sourceID: 'o1', serialNr: victim.serialNumber, status: 'in_production' });
      let r = await run(d, devs, { instance: 'err' });
      expect(r.summary.cis).to.include({ created: 39, failed: 1 });
      expect(r.summary.errorCount).to.equal(1);
      expect(r.summary.errors[0]).to.deep.include({ sourceID: victim.id, name: victim.name, outcome: 'failed' });
      expect(String(r.summary.errors[0].error)).to.match(/Serial number .* has already been taken/);
      expect((r.summary.errors[0].path as string[]).slice(-1)).to.deep.equal(['serialNr']);
      const item = r.results.flatMap((m) => m.payload as Array<{ sourceID: string; outcome: string }>).find((x) => x.sourceID === victim.id)!;
      expect(item.outcome).to.equal('failed');
      expect(d.sink.warn.args.map((a) => String(a[0])).join('\n')).to.match(/1 item\(s\) not written/);
      expect(d.sink.status.args[d.sink.status.args.length - 1][0]).to.include({ fill: 'yellow' });

      const received = sim.stats.discoveredItemsReceived;
      r = await run(d, devs, { instance: 'err' });
      expect(sim.stats.discoveredItemsReceived - received, 'only the failed device is sent again').to.equal(1);
      expect(r.summary.cis).to.include({ failed: 1, unchanged: 39 });

      sim.updateConfigurationItem(other.id, { serialNr: 'CHANGED' });
      r = await run(d, devs, { instance: 'err' });
      expect(r.summary.cis).to.include({ created: 1, unchanged: 39, failed: 0 });
      expect(ciBySource().get(victim.id)!.serialNr).to.equal(victim.serialNumber);
    });

    it('a page that fails as a whole goes to done(err), and its run archives nothing', async () => {
      d = await deploy();
      const devs = Array.from({ length: 40 }, (_, i) => makeDevice(94_000 + i));
      await run(d, devs, { instance: 'fatal', pageSize: 10 });
      // next run: page 2 has changes, 4me refuses the token for it; device 39 (page 4) is gone
      const next = devs.slice(0, 39).map((x, i) => (i >= 10 && i < 20 ? { ...x, name: `${x.name}-X` } : x));
      sim.failNext(1, { status: 401, operation: 'discoveredConfigurationItems' });
      const s0 = d.summaries.length;
      const e0 = d.errors.length;
      for (const p of runPages(next, { instance: 'fatal', pageSize: 10 })) d.sink.receive(p as unknown as Record<string, unknown>);
      await waitFor(() => d.summaries.length > s0, 30_000, 'the summary');
      expect(d.errors.length - e0).to.equal(1);
      expect(d.errors[e0].error!.message).to.match(/did not accept the personal access token/);
      const sum = d.summaries[s0].payload as RunSummary4me;
      expect(sum.reconciled).to.equal(false);
      expect(sum.reason).to.match(/a page failed/);
      expect(ciBySource().get(devs[39].id)!.status).to.equal('in_production');
      // the next complete run writes page 2 and archives device 39
      const r = await run(d, next, { instance: 'fatal', pageSize: 10 });
      expect(r.summary.cis).to.include({ updated: 10, archived: 1 });
    });

    it('an asynchronous result that cannot be fetched fails its batch only, and the next run writes it', async () => {
      d = await deploy();
      const devs = Array.from({ length: 30 }, (_, i) => makeDevice(92_000 + i));
      sim.setAsyncOptions({ ttlMs: 1 });
      let r = await run(d, devs, { instance: 'async' });
      expect(r.summary.cis).to.include({ failed: 30 });
      expect(String(r.summary.errors[0].error)).to.match(/could not be fetched \(HTTP 404/);
      sim.setAsyncOptions({ ttlMs: 15 * 60_000 });
      r = await run(d, devs, { instance: 'async' });
      expect(r.summary.cis).to.include({ created: 30, failed: 0 });
    });

    it('closing the flow aborts a run at once', async () => {
      d = await deploy();
      sim.setAsyncOptions({ delayMs: 60_000 });
      const devs = Array.from({ length: 10 }, (_, i) => makeDevice(93_000 + i));
      for (const p of runPages(devs, { instance: 'close' })) d.sink.receive(p as unknown as Record<string, unknown>);
      const before = sim.stats.asyncJobs;
      await waitFor(() => sim.stats.asyncJobs > before, 10_000, 'the upload');
      await new Promise((r) => setTimeout(r, 100));
      const t = Date.now();
      await helper.unload();
      expect(Date.now() - t).to.be.below(1500);
      await new Promise((r) => setTimeout(r, 150)); // a poll already on the wire may still arrive
      const polls = sim.stats.asyncPolls;
      await new Promise((r) => setTimeout(r, 500));
      expect(sim.stats.asyncPolls, 'no polling after close').to.equal(polls);
      d = await deploy(); // for afterEach
    });
  });

  // ================================================== configuration and input
  describe('configuration, credentials and input errors', () => {
    afterEach(async () => {
      await helper.unload();
    });

    const badConfigs: Array<[string, Record<string, unknown>, Record<string, unknown> | undefined, RegExp]> = [
      ['no account id', { accountId: '' }, undefined, /accountId is required/],
      ['account id with blanks', { accountId: 'my account' }, undefined, /letters, digits and hyphens/],
      ['custom environment without URL', { graphqlUrl: '' }, undefined, /GraphQL URL is required/],
      ['GraphQL URL over http', { graphqlUrl: 'http://127.0.0.1:1/graphql' }, undefined, /must start with https/],
      ['demo in a region', { environment: 'demo', region: 'uk' }, undefined, /demo environment exists only in the global region/],
      ['OAuth without client id', { authType: 'oauth' }, { clientSecret: 'x' }, /clientId is required/],
      ['no token', {}, { token: '' }, /personal access token/],
      ['burst above 20', { requestsPer2s: 25 }, undefined, /requestsPer2s must be a whole number from 1 to 20/],
    ];
    for (const [what, cfg, creds, re] of badConfigs) {
      it(`bad configuration: ${what}`, async () => {
        const d = await deploy({}, { cfg, creds });
        const msg = await firstError(d, runPages([makeDevice(1)]) as unknown as Array<Record<string, unknown>>);
        expect(msg).to.match(re);
      });
    }

    it('bad sink settings stop the node with a clear error', async () => {
      const d = await deploy({ ciStatus: 'archived' });
      expect(d.sink.status.args[d.sink.status.args.length - 1][0]).to.include({ fill: 'red' });
      const msg = await firstError(d, [{ topic: 'intune/devices', payload: [] }]);
      expect(msg).to.match(/active one, not "archived"/);
    });

    it('bad input: clear errors through done(err)', async () => {
      const d = await deploy();
      expect(await firstError(d, [{ topic: 'intune/devices', payload: 'x' }])).to.match(/msg.payload must be the list of devices/);
      expect(await firstError(d, [{ topic: 'something', payload: [{ foo: 1 }] }])).to.match(/Cannot tell what this message carries/);
      expect(await firstError(d, [{ topic: 'intune/devices', payload: [], sync: { runId: 'r', mode: 'weekly', page: 1, last: true } }])).to.match(/msg.sync.mode must be "full" or "incremental"/);
      expect(await firstError(d, [{ topic: 'intune/devices', payload: [], sync: { runId: 'r', mode: 'full', page: 0, last: true } }])).to.match(/msg.sync.page/);
      expect(await firstError(d, [{ topic: 'intune/devices', payload: [], sync: { runId: 'r', mode: 'full', page: 1 } }])).to.match(/msg\.sync\.last must be true or false \(got undefined\)/);
      // items that are not devices are reported per item, and the run is not reconciled
      const good = makeDevice(2);
      const { summary, results } = await run(d, [good, { name: 'no id' }], { instance: 'bad' });
      expect(summary.cis).to.include({ created: 1, invalid: 1 });
      expect(summary.reconciled).to.equal(false);
      expect(summary.reason).to.match(/without a device id/);
      expect((results[0].payload as Array<{ outcome: string; error?: string }>)[1]).to.deep.include({ outcome: 'invalid', error: 'Item 1 of the page has no id' });
    });

    it('a wrong token: a plain error, no secret in logs, status or messages', async () => {
      const d = await deploy({}, { creds: { token: 'pat-not-known-9876543210' } });
      const msg = await firstError(d, runPages([makeDevice(3)], { instance: 'wrong' }) as unknown as Array<Record<string, unknown>>);
      expect(msg).to.match(/did not accept the personal access token/);
      const spy = helper.log() as unknown as { args: unknown[][] };
      const all = JSON.stringify([spy.args, d.sink.status.args, d.sink.warn.args, d.errors]);
      expect(all).to.not.include('pat-not-known-9876543210');
      expect(all).to.not.include(PAT);
    });

    it('OAuth client credentials: token fetched, renewed after expiry, never shown', async () => {
      const d = await deploy({}, { cfg: { authType: 'oauth', clientId: CLIENT.clientId }, creds: { clientSecret: CLIENT.clientSecret } });
      const issued = sim.stats.tokensIssued;
      let r = await run(d, [makeDevice(4)], { instance: 'oauth' });
      expect(r.summary.cis!.created).to.equal(1);
      sim.expireTokens();
      r = await run(d, [makeDevice(4, { name: 'RENAMED' })], { instance: 'oauth' });
      expect(r.summary.cis!.updated).to.equal(1);
      expect(sim.stats.tokensIssued - issued).to.equal(2);
      const spy = helper.log() as unknown as { args: unknown[][] };
      expect(JSON.stringify([spy.args, d.sink.status.args, d.summaries, d.out])).to.not.include(CLIENT.clientSecret);
    });

    it('"Verify connection" answers in plain words, uses the stored secret for an unchanged field, and never returns it', async () => {
      await deploy();
      const form = { ...cfgProps(), id: 'cfg', tls: 'tls1' };
      let res = await helper.request().post('/intune-4me-config/verify').send({ ...form, credentials: { token: '__PWRD__' } }).expect(200);
      expect(res.body).to.deep.include({ ok: true, code: 'ok' });
      expect(res.body.params).to.deep.include({ account: ACCOUNT, accountName: 'Acme Corp', person: 'Intune connector' });
      expect(res.body.params.requestsRemaining).to.be.a('number');
      res = await helper.request().post('/intune-4me-config/verify').send({ ...form, credentials: { token: 'pat-typed-wrong-000' } }).expect(200);
      expect(res.body).to.deep.include({ ok: false, code: 'authFailed' });
      expect(JSON.stringify(res.body)).to.not.include('pat-typed-wrong-000');
      res = await helper.request().post('/intune-4me-config/verify').send({ ...form, accountId: 'nope', credentials: {} }).expect(200);
      expect(res.body.code).to.equal('authFailed');
      expect(res.body.message).to.match(/Unknown account 'nope'/);
      res = await helper.request().post('/intune-4me-config/verify').send({ ...form, graphqlUrl: 'http://x', credentials: {} }).expect(200);
      expect(res.body).to.deep.include({ ok: false, code: 'invalidConfig' });
      expect(res.body.params.field).to.equal('graphqlUrl');
      expect(JSON.stringify(res.body)).to.not.include(PAT);
    });
  });
});
