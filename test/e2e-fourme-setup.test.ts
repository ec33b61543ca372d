/**
 * "Set up 4me" end to end: the shipped 4me template (added by the shipped
 * instance tool) in a real Node-RED, the simulated Intune tenant and 4me,
 * and the config node's admin endpoint as the editor's dialog calls it.
 *
 * - a fresh account: the dry run plans the "Intune data attributes" UI
 *   extension; confirming creates it; with its id in the sink, every CI's
 *   product carries the extension and every CI's custom fields are fields
 *   of that extension;
 * - a second set-up plans nothing and sends no write;
 * - a token whose person lacks the role is refused in plain words;
 * - a field id changed in the sink: the set-up updates the extension and
 *   keeps the field a 4me administrator added by hand.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startNodeRed, type NodeRedProcess } from '../sim/node-red-runner';
import { FourMeSim } from '../sim/fourme';
import type { FourMeData } from '../sim/fourme-store';
import { activeVersion, fieldIdsOfHtml, setPersonRoles, uiExtensionsOf } from '../sim/fourme-ui-extensions';
import { sharedTestCa } from '../sim/pki';
import { startSimEnv, type SimEnv } from './support/sim-env';
import { until } from './support/until';

const run = promisify(execFile);
const MODULE = '@intune-connector/node-red-intune';
const ACCOUNT = 'acme';
const PAT = 'setup-4me-personal-access-token';
const SPECIALIST_PAT = 'setup-4me-specialist-token';
type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string };

describe('e2e: Set up 4me from the 4me template', function () {
  this.timeout(240_000);
  const admin = { username: 'admin', password: 'e2e-setup-admin' };
  let env: SimEnv;
  let fourme: FourMeSim;
  let red: NodeRedProcess;

  const data = () => (fourme as unknown as { data: FourMeData }).data;
  const flows = async () => (await red.admin.get('/flows')).data.flows as FlowNode[];
  const configNode = async () => (await flows()).find((n) => n.type === 'intune-4me-config')!;
  const sinkNode = async () => (await flows()).find((n) => n.type === 'intune-4me')!;
  /** The endpoint as the editor's dialog calls it: the form of the deployed connection, its saved token. */
  async function setup(extra: Record<string, unknown> = {}) {
    const res = await red.admin.post('/intune-4me-config/setup', { ...(await configNode()), credentials: {}, ...extra });
    expect(res.status, JSON.stringify(res.data)).to.equal(200);
    return res.data as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  }
  async function changeSink(patch: Record<string, unknown>) {
    const all = (await red.admin.get('/flows')).data as { flows: FlowNode[]; rev: string };
    const next = all.flows.map((n) => (n.type === 'intune-4me' ? { ...n, ...patch } : n));
    const mark = red.mark();
    const dep = await red.admin.post('/flows', { flows: next, rev: all.rev }, { headers: { 'Node-RED-Deployment-Type': 'nodes' } });
    expect(dep.status, JSON.stringify(dep.data)).to.equal(200);
    await red.waitForLog(/Started modified nodes|Started flows/, 30_000, mark);
  }
  async function fullRun() {
    const before = fourme.stats.asyncJobs;
    const inject = (await flows()).find((n) => n.type === 'inject' && n.name === 'full run now')!;
    expect((await red.admin.post(`/inject/${inject.id}`, {})).status).to.equal(200);
    await until(() => fourme.stats.asyncJobs, (n) => n > before, 60_000, 'a discovery upload');
  }
  const writes = () => Object.values(fourme.stats.mutations).reduce((a, b) => a + b, 0);

  before(async () => {
    env = await startSimEnv({ devices: 24, seed: 22 });
    fourme = new FourMeSim({
      tls: sharedTestCa().server,
      accounts: [{ id: ACCOUNT }],
      personalAccessTokens: [
        { token: PAT, personName: 'Intune connector' },
        { token: SPECIALIST_PAT, personName: 'Service desk bot' },
      ],
    });
    await fourme.start();
    setPersonRoles(data(), fourme.personOf(SPECIALIST_PAT, ACCOUNT)!.id, ['specialist']);
    red = await startNodeRed({ adminUser: admin, install: 'link', settings: { contextStorage: { default: { module: 'localfilesystem' } } } });
    const bin = path.join(red.userDir, 'node_modules', ...MODULE.split('/'), 'dist', 'bin', 'node-red-intune-instance.js');
    // prettier-ignore
    await run(process.execPath, [bin,
      '--template', '4me', '--instance', '1', '--url', red.url, '--user', admin.username, '--password-env', 'NR_PW',
      '--tenant-id', env.tenantId, '--cloud', 'custom', '--authority-host', env.identity.url, '--graph-url', env.graph.url,
      '--portal-url', 'https://intune.microsoft.com', '--ca', env.caFile,
      '--client-id', env.secretApp.clientId, '--auth', 'secret', '--client-secret-env', 'SECRET',
      '--fourme-account', ACCOUNT, '--fourme-graphql-url', fourme.graphqlUrl, '--fourme-token-env', 'PAT', '--platforms', 'windows,macos,ios,android,linux',
      '--set', 'intune-4me.maxNewPerRun=1000',
    ], { env: { ...process.env, NR_PW: admin.password, SECRET: env.secretApp.secret, PAT }, cwd: red.userDir });
  });
  after(async () => {
    await red?.stop();
    await fourme?.stop();
    await env?.stop();
  });

  let extensionId = '';

  it('a fresh account: the dry run plans the extension, confirming creates it, and the CIs of every product show exactly its fields', async () => {
    const before = writes();
    const plan = await setup();
    expect(plan.ok, JSON.stringify(plan)).to.equal(true);
    expect(plan.code).to.equal('ready');
    expect(writes(), 'the dry run writes nothing').to.equal(before);
    const create = plan.plan.steps.find((s: { kind: string }) => s.kind === 'createExtension');
    expect(create.name).to.equal('Intune data attributes');
    expect(create.fields).to.include.members(['intune_operating_system', 'intune_compliance', 'intune_jailbroken']);
    expect(create.fields).to.have.length(13);
    expect(plan.sinks.map((s: { sendsExtension: boolean }) => s.sendsExtension)).to.deep.equal([false]);

    const applied = await setup({ apply: true, planId: plan.plan.planId });
    expect(applied.code, JSON.stringify(applied)).to.equal('applied');
    extensionId = applied.result.extensionId;
    const [ext] = uiExtensionsOf(data(), ACCOUNT);
    expect(ext.id).to.equal(extensionId);
    expect([ext.name, ext.category]).to.deep.equal(['Intune data attributes', 'product']);
    const fields = fieldIdsOfHtml(activeVersion(ext)!.html);
    expect([...fields].sort()).to.deep.equal([...create.fields].sort());
    expect(activeVersion(ext)!.html).to.match(/<input id="intune_compliance" type="text" readonly>/);

    // The sink sends the extension with the products it creates (what the dialog fills in).
    await changeSink({ uiExtensionId: extensionId });
    await fullRun();
    const account = fourme.account(ACCOUNT);
    await until(() => account.configurationItems.length, (n) => n > 0 && fourme.stats.asyncJobs > 0, 60_000, 'CIs');
    await until(() => fourme.stats.discoveredItemsReceived, (n) => n >= account.configurationItems.length, 60_000, 'the run');
    expect(fourme.stats.discoveredItemErrors, 'no custom field refused').to.equal(0);
    for (const ci of account.configurationItems) {
      const product = account.products.find((p) => p.id === ci.productId)!;
      expect(product.uiExtensionId, product.name).to.equal(extensionId);
      expect(ci.customFields.length).to.be.greaterThan(0);
      for (const f of ci.customFields) expect(fields.has(f.id), f.id).to.equal(true);
    }
  });

  it('a second set-up plans nothing and sends no write request', async () => {
    const before = writes();
    const plan = await setup();
    expect([plan.ok, plan.code, plan.plan.steps]).to.deep.equal([true, 'upToDate', []]);
    expect(plan.sinks[0].sendsExtension).to.equal(true);
    const again = await setup({ apply: true, planId: plan.plan.planId });
    expect(again.code).to.equal('upToDate');
    expect(writes(), 'no mutation').to.equal(before);
    expect(uiExtensionsOf(data(), ACCOUNT)).to.have.length(1);
    expect(activeVersion(uiExtensionsOf(data(), ACCOUNT)[0])!.versionNr).to.equal(1);
  });

  it('a token whose person lacks the Account Designer or Administrator role is refused in plain words, and 4me refuses it too', async () => {
    const before = writes();
    const plan = await setup({ credentials: { token: SPECIALIST_PAT } });
    expect([plan.ok, plan.code]).to.deep.equal([false, 'missingRole']);
    expect(plan.message).to.match(/needs the Account Designer, Account Administrator or Account Owner role in account .*it has: Specialist/);
    expect(plan.message).to.not.include(SPECIALIST_PAT);
    expect(writes()).to.equal(before);
    // 4me itself refuses the write for that person.
    const res = await fetchGraphql(SPECIALIST_PAT, 'mutation { uiExtensionCreate(input: {name: "x", category: product}) { errors { message } uiExtension { id } } }');
    expect(res.errors?.[0]?.message).to.match(/Insufficient permissions/);
    expect(uiExtensionsOf(data(), ACCOUNT)).to.have.length(1);
  });

  it('a field id changed in the sink updates the extension, keeps a field added by hand, and the next run is accepted', async () => {
    // A 4me administrator adds a field of their own (in 4me, outside our block).
    const ext = uiExtensionsOf(data(), ACCOUNT)[0];
    const handmade = `${activeVersion(ext)!.html}\n<div class="row vertical">\n  <label for="asset_owner_note">Owner note</label>\n  <input id="asset_owner_note" type="text">\n</div>`;
    const edit = await fetchGraphql(PAT, `mutation($html: String!) { uiExtensionUpdate(input: {id: "${ext.id}", html: $html, activate: true}) { errors { message } } }`, { html: handmade });
    expect(edit.errors ?? edit.data.uiExtensionUpdate.errors).to.deep.equal([]);

    await changeSink({ cf_os: 'intune_os_name' });
    const plan = await setup();
    expect(plan.code, JSON.stringify(plan)).to.equal('ready');
    const update = plan.plan.steps.find((s: { kind: string }) => s.kind === 'updateExtension');
    expect(update.added).to.deep.equal(['intune_os_name']);
    expect(update.removed).to.deep.equal(['intune_operating_system']);
    expect(plan.plan.keptFields).to.deep.equal(['asset_owner_note']);
    const applied = await setup({ apply: true, planId: plan.plan.planId });
    expect(applied.code, JSON.stringify(applied)).to.equal('applied');
    const fields = fieldIdsOfHtml(activeVersion(uiExtensionsOf(data(), ACCOUNT)[0])!.html);
    expect(fields.has('intune_os_name')).to.equal(true);
    expect(fields.has('asset_owner_note'), 'the hand-added field stays').to.equal(true);
    expect(fields.has('intune_operating_system')).to.equal(false);

    const errorsBefore = fourme.stats.discoveredItemErrors;
    const jobs = fourme.stats.asyncJobs;
    await fullRun();
    await until(() => fourme.stats.asyncJobs, (n) => n > jobs, 60_000, 'the upload');
    await until(
      () => fourme.account(ACCOUNT).configurationItems.every((c) => c.customFields.some((f) => f.id === 'intune_os_name')),
      (ok) => ok,
      60_000,
      'CIs with the new field',
    );
    expect(fourme.stats.discoveredItemErrors).to.equal(errorsBefore);
  });

  async function fetchGraphql(token: string, query: string, variables: Record<string, unknown> = {}) {
    const https = await import('node:https');
    const body = JSON.stringify({ query, variables });
    return await new Promise<Record<string, any>>((resolve, reject) => { // eslint-disable-line @typescript-eslint/no-explicit-any
      const req = https.request(
        fourme.graphqlUrl,
        { method: 'POST', ca: sharedTestCa().certPem, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-4me-account': ACCOUNT } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(JSON.parse(text)));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
});
