/**
 * The sidebar's admin endpoints under Node-RED's adminAuth: nothing without
 * a token; a read-only user (how Prometheus scrapes) reads /intune/runs and
 * /intune/metrics but may not start a run; starting one needs the source
 * type's own write permission, as its other endpoints do.
 */
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../sim/node-red-runner';

describe('Intune sidebar endpoints: permissions', function () {
  this.timeout(120_000);
  let red: NodeRedProcess | undefined;
  let base = '';
  let readerToken = '';

  before(async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bcrypt = require(require.resolve('bcryptjs', { paths: [path.join(repoRoot, 'node_modules', 'node-red')] }));
    const users = [
      { username: 'admin', password: bcrypt.hashSync('admin-pass', 8), permissions: '*' },
      { username: 'prometheus', password: bcrypt.hashSync('reader-pass', 8), permissions: 'read' },
    ];
    red = await startNodeRed({
      install: 'link',
      adminUser: { username: 'admin', password: 'admin-pass' },
      settings: { adminAuth: { type: 'credentials', users } },
      flows: [
        { id: 't1', type: 'tab', label: 'Auth test' },
        { id: 'cfg', type: 'intune-config', name: 'no secret', tenantId: '11111111-2222-4333-8444-555555555555', clientId: '11111111-2222-4333-8444-666666666666', authType: 'secret', cloud: 'global' },
        { id: 'dev', type: 'intune-devices', z: 't1', name: 'scanner', intune: 'cfg', x: 100, y: 100, wires: [[], []] },
      ],
    });
    base = red.url;
    const res = await fetch(`${base}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: 'read', username: 'prometheus', password: 'reader-pass' }),
    });
    const answer = (await res.text());
    readerToken = (JSON.parse(answer) as { access_token: string }).access_token;
    expect(readerToken, answer).to.be.a('string');
  });
  after(async () => {
    await red?.stop();
  });

  it('without a token: 401 for the overview, the metrics and starting a run', async () => {
    for (const [method, p] of [['GET', '/intune/runs'], ['GET', '/intune/metrics'], ['POST', '/intune/run/dev']]) {
      const res = await fetch(`${base}${p}`, { method });
      expect(res.status, `${method} ${p}`).to.equal(401);
    }
  });

  it('a read-only token scrapes the metrics and reads the overview, but may not start a run', async () => {
    const auth = { Authorization: `Bearer ${readerToken}` };
    const runs = await fetch(`${base}/intune/runs`, { headers: auth });
    expect(runs.status).to.equal(200);
    const o = (await runs.json()) as { instances: Array<{ name: string; loose: boolean; connections: Array<{ level: string; text: string }> }> };
    expect(o.instances.map((i) => [i.name, i.loose])).to.deep.equal([['Auth test', true]]);
    expect(o.instances[0].connections[0]).to.include({ level: 'error', text: 'The client secret is missing' });
    const metrics = await fetch(`${base}/intune/metrics`, { headers: auth });
    expect(metrics.status).to.equal(200);
    expect(metrics.headers.get('content-type')).to.match(/^text\/plain/);
    expect(await metrics.text()).to.match(/^intune_connector_connection_up\{instance="Auth test",connection="no secret",connection_id="cfg",service="intune"\} 0$/m);
    const start = await fetch(`${base}/intune/run/dev`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{}' });
    // Node-RED's needsPermission answers a valid token without the permission with 401 too.
    expect(start.status).to.equal(401);
    expect(await start.text()).to.not.include('ok');
  });

  it('the Preview\'s progress needs the source\'s write permission, as the Preview does', async () => {
    const p = '/intune-devices/preview/progress/abcdefgh12345678';
    expect((await fetch(`${base}${p}`)).status, 'no token').to.equal(401);
    expect((await fetch(`${base}${p}`, { headers: { Authorization: `Bearer ${readerToken}` } })).status, 'read-only').to.equal(401);
    const admin = await red!.admin.get(p, { validateStatus: () => true });
    expect(admin.status, 'admin: allowed, and no such Preview runs').to.equal(404);
    expect(admin.data).to.deep.include({ ok: false, code: 'unknown' });
  });

  it('an admin starts a run of a deployed source (the node gets it as an input message); other ids are 404', async () => {
    const mark = red!.mark();
    const res = await red!.admin.post('/intune/run/dev', { mode: 'full' });
    expect(res.data).to.deep.equal({ ok: true });
    // The node's own answer to an input while its connection is broken: done(err) with the problem.
    await red!.waitForLog(/\[intune-devices:scanner\].*client secret is missing/, 10_000, mark);
    const other = await red!.admin.post('/intune/run/cfg', {}, { validateStatus: () => true });
    expect(other.status).to.equal(404);
  });
});
