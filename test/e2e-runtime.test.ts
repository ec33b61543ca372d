/**
 * The package as users install it (npm pack → node_modules of a Node-RED
 * user directory) in a real Node-RED process, driven through the Admin API.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { packedFiles, repoRoot, startNodeRed, type NodeRedProcess } from '../sim/node-red-runner';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';

describe('e2e: package in a real Node-RED runtime', function () {
  this.timeout(120_000);
  let env: SimEnv;
  let red: NodeRedProcess;
  const admin = { username: 'admin', password: 'e2e-admin-password' };

  before(async () => {
    env = await startSimEnv({ devices: 75, seed: 3 });
    red = await startNodeRed({ adminUser: admin });
  });
  after(async () => {
    await red?.stop();
    await env?.stop();
  });

  it('npm pack ships the built nodes, locales, icons and examples, and nothing else', () => {
    const files = packedFiles();
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/nodes/intune-config.js',
      'dist/nodes/intune-config/intune-config.js',
      'dist/nodes/intune-config.html',
      'dist/nodes/locales/en-US/intune-config.json',
      'dist/nodes/locales/de/intune-config.json',
      'dist/nodes/locales/en-US/intune-config.html',
      'dist/nodes/locales/de/intune-config.html',
      'dist/nodes/lib/graph/graph-client.js',
      'dist/nodes/icons/intune.svg',
    ]) {
      expect(files, f).to.include(f);
    }
    const stray = files.filter((f) => /^(sim|test|bench|build|scripts|nodes|flows|locales)\//.test(f) || f.endsWith('.ts') || f.endsWith('.map'));
    expect(stray).to.deep.equal([]);
  });

  it('registers intune-config from the installed package', async () => {
    const res = await red.admin.get('/nodes', { headers: { Accept: 'application/json' } });
    expect(res.status).to.equal(200);
    const mods = res.data as Array<{ module: string; types: string[]; enabled: boolean; loaded: boolean; err?: string }>;
    const config = mods.find((m) => m.module === '@intune-connector/node-red-intune' && m.types.includes('intune-config'));
    expect(config, 'intune-config node set').to.not.equal(undefined);
    expect({ enabled: config!.enabled, err: config!.err ?? null }).to.deep.equal({ enabled: true, err: null });
  });

  it('serves the editor side: node HTML and both languages', async () => {
    const html = await red.admin.get('/nodes', { headers: { Accept: 'text/html' } });
    expect(html.data).to.include('data-template-name="intune-config"');
    expect(html.data).to.include('data-help-name="intune-config"');
    const de = await red.admin.get('/nodes/messages', { params: { lng: 'de' } });
    const en = await red.admin.get('/nodes/messages', { params: { lng: 'en-US' } });
    const key = '@intune-connector/node-red-intune/intune-config';
    expect(de.data[key], 'German catalog').to.be.an('object');
    expect(en.data[key], 'English catalog').to.be.an('object');
    expect(JSON.stringify(de.data[key])).to.not.equal(JSON.stringify(en.data[key]));
  });

  it('offers the shipped examples under Import > Examples, and each one deploys with every node type known', async () => {
    // What the editor's Import > Examples menu reads.
    const ours = await red.admin.get('/library/examples/flows/@intune-connector/node-red-intune');
    expect(ours.status, JSON.stringify(ours.data)).to.equal(200);
    const shipped = fs.readdirSync(path.join(repoRoot, 'flows')).filter((f) => f.endsWith('.json'));
    expect(shipped.length, 'examples in flows/').to.be.greaterThan(0);
    expect((ours.data as Array<{ fn: string }>).map((e) => e.fn).sort()).to.deep.equal(shipped.map((f) => f.replace(/\.json$/, '')).sort());
    for (const file of shipped) {
      const nodes = JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', file), 'utf8')) as Array<{ id: string; wires?: string[][] }>;
      const ids = new Set(nodes.map((n) => n.id));
      for (const n of nodes) for (const out of n.wires ?? []) for (const w of out) expect(ids.has(w), `${file}: wire to ${w}`).to.equal(true);
      const mark = red.mark();
      const res = await red.admin.post('/flows', { flows: nodes }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
      expect(res.status, `${file}: ${JSON.stringify(res.data)}`).to.equal(200);
      await red.waitForLog(/Started flows/, 30_000, mark);
      expect(red.logs().slice(mark - (red.mark() - red.logs().length)), `${file}: missing node types`).to.not.match(/Waiting for missing types|Unknown type/i);
    }
  });

  it('guards the admin endpoints with Node-RED admin auth', async () => {
    const anon = await fetch(`${red.url}/intune-config/verify`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(anon.status).to.equal(401);
  });

  it('deploys a connection, verifies it, and keeps every secret out of flows, logs and answers', async () => {
    const { nodes, credentials } = configFlow(env, { id: 'e2eCfg' });
    const flow = nodes.map((n) => (credentials[n.id as string] ? { ...n, credentials: credentials[n.id as string] } : n));
    const mark = red.mark();
    const deployed = await red.admin.post('/flows', { flows: flow }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
    expect(deployed.status, JSON.stringify(deployed.data)).to.equal(200);
    await red.waitForLog(/Started flows/, 30_000, mark);

    const verify = await red.admin.post('/intune-config/verify', { ...nodes[1], id: 'e2eCfg', credentials: { clientSecret: '__PWRD__' } });
    expect(verify.data.code, verify.data.message).to.equal('ok');
    expect(verify.data.params.deviceCount).to.equal(env.tenant.size);

    const exported = await red.admin.get('/flows');
    const text = JSON.stringify(exported.data);
    const onDisk = fs.readFileSync(path.join(red.userDir, 'flows.json'), 'utf8');
    const credFile = fs.readFileSync(path.join(red.userDir, 'flows_cred.json'), 'utf8');
    for (const [where, content] of [
      ['exported flows', text],
      ['flows.json', onDisk],
      ['flows_cred.json (must be encrypted)', credFile],
      ['verify answer', JSON.stringify(verify.data)],
      ['Node-RED log', red.logs()],
    ]) {
      expect(content, where).to.not.include(env.secretApp.secret);
    }
    const creds = await red.admin.get('/credentials/intune-config/e2eCfg');
    expect(creds.data).to.deep.equal({
      has_clientSecret: true,
      has_pfx: false,
      has_passphrase: false,
      pfxName: '',
      // PEM certificate and key: the texts' names are shown, the contents never
      certificatePem: '',
      certificateName: '',
      has_privateKeyPem: false,
      privateKeyName: '',
      has_keyPassphrase: false,
    });
  });
});
