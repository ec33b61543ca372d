/**
 * The instance tool's template transformation and command line, without a
 * Node-RED (the end-to-end test deploys what it makes into a real one).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InstanceError, TEMPLATES, loadTemplate, makeInstance, missingCredentials, renameForInstance, withoutCredentials, type FlowNode } from '../bin/instance-template';
import { clashes } from '../bin/instance-admin';
import { main } from '../bin/node-red-intune-instance';

const INSTANCE_1 = /\b(IntuneConnector|IntuneWorkflowEngine|IntuneMobileDevices|Intune4me)_1\b/;
const CONFIG_REFS: Record<string, string> = { intune: 'intune-config', acmp: 'intune-acmp-config', fourme: 'intune-4me-config', tls: 'tls-config' };

function counter(prefix = 'n'): () => string {
  let i = 0;
  return () => `${prefix}${String(++i).padStart(15, '0')}`;
}

/** Every reference between the nodes resolves to a node of the right kind. */
function checkReferences(nodes: FlowNode[]): void {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  expect(byId.size, 'unique ids').to.equal(nodes.length);
  for (const n of nodes) {
    if (n.z !== undefined) expect(byId.get(n.z)?.type, `${n.id}.z`).to.equal('tab');
    for (const out of (n.wires as string[][] | undefined) ?? []) for (const w of out) expect(byId.has(w), `${n.id} wire to ${w}`).to.equal(true);
    for (const [prop, type] of Object.entries(CONFIG_REFS)) {
      if (typeof n[prop] === 'string' && n[prop] !== '' && n.type !== 'tab') expect(byId.get(n[prop] as string)?.type, `${n.id}.${prop}`).to.equal(type);
    }
    if (n.type === 'intune-compliance' && n.filtersFrom) expect(byId.get(n.filtersFrom as string)?.type).to.equal('intune-devices');
    for (const l of (n.links as string[] | undefined) ?? []) {
      const target = byId.get(l);
      expect(target, `${n.id} link to ${l}`).to.not.equal(undefined);
      // link out ↔ link in are recorded on both ends; a link call only on its own side, as the editor does.
      if (n.type === 'link call') expect(target!.type, `${n.id} calls a link in`).to.equal('link in');
      else expect((target!.links as string[]).includes(n.id), `${l} links back to ${n.id}`).to.equal(true);
    }
  }
}

function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => strings(x, out));
  return out;
}

const envOf = (nodes: FlowNode[], tab: string) =>
  Object.fromEntries(((nodes.find((n) => n.type === 'tab' && n.label === tab)?.env as Array<{ name: string; value: string }>) ?? []).map((e) => [e.name, e.value]));

describe('instance tool', () => {
  for (const name of Object.keys(TEMPLATES)) {
    it(`the shipped ${name} template is a consistent instance 1`, () => {
      const t = loadTemplate(name);
      checkReferences(t);
      expect(t.some((n) => n.credentials !== undefined), 'no credentials in a template').to.equal(false);
      expect(t.filter((n) => n.type === 'tab').every((n) => /_1$/.test(String(n.label)))).to.equal(true);
      // Texts name the instance by its name (renamed for instance N), never "instance 1" (which would not be).
      expect(strings(t).filter((s) => /\binstance 1\b/i.test(s)), 'no "instance 1" in a text').to.deep.equal([]);
    });
  }

  it('makes instance N of the ACMP template: new ids everywhere, _N names, the instance\'s own routing key and definition', () => {
    const template = loadTemplate('acmp');
    const before = JSON.stringify(template);
    const three = makeInstance(template, { instance: 3, newId: counter('a'), env: { ACMP_SERVER_ID: 'SRV2', ACMP_JOBS_ROUTING_KEY: 'IntuneConnector_3.jobs' } });
    expect(JSON.stringify(template), 'the template is left as it was').to.equal(before);
    checkReferences(three);
    const oldIds = new Set(template.map((n) => n.id));
    expect(three.filter((n) => oldIds.has(n.id))).to.deep.equal([]);
    expect(strings(three).filter((s) => oldIds.has(s)), 'no reference to a template id').to.deep.equal([]);
    expect(three.filter((n) => n.type === 'tab').map((n) => n.label)).to.deep.equal(['IntuneConnector_3', 'IntuneWorkflowEngine_3', 'IntuneMobileDevices_3']);
    expect(strings(three).filter((s) => INSTANCE_1.test(s)), 'no name of instance 1 left').to.deep.equal([]);
    expect(envOf(three, 'IntuneConnector_3')).to.include({ INSTANCE_NAME: 'IntuneConnector_3' });
    expect(envOf(three, 'IntuneMobileDevices_3')).to.deep.equal({ ACMP_SERVER_ID: 'SRV2', ACMP_ON_DEMAND_DEFINITION: 'IntuneMobileDevices_3' });
    expect(envOf(three, 'IntuneWorkflowEngine_3')).to.deep.equal({ ACMP_JOBS_ROUTING_KEY: 'IntuneConnector_3.jobs' });
    expect(three.find((n) => n.type === 'intune-config')!.name).to.equal('Intune (IntuneConnector_3)');

    const four = makeInstance(template, { instance: 4 });
    expect(four.filter((n) => three.some((m) => m.id === n.id)), 'two instances share no id').to.deep.equal([]);
    expect(four.every((n) => /^[0-9a-f]{16}$/.test(n.id)), 'ids in the editor\'s format').to.equal(true);
  });

  it('sets connection properties, a CA for every connection, and credentials only where asked', () => {
    const nodes = makeInstance(loadTemplate('4me'), {
      instance: 2,
      caFile: '/etc/ssl/ca.pem',
      nodeProps: { 'intune-config': { tenantId: 'fabrikam.onmicrosoft.com', authType: 'certificate' }, 'intune-devices': { platformIos: true } },
      credentials: { 'intune-config': { pfx: 'UEZY', passphrase: 'pw', clientSecret: '' }, 'intune-4me-config': { token: undefined } },
    });
    checkReferences(nodes);
    const cfg = nodes.find((n) => n.type === 'intune-config')!;
    expect(cfg).to.include({ tenantId: 'fabrikam.onmicrosoft.com', authType: 'certificate' });
    expect(cfg.credentials).to.deep.equal({ pfx: 'UEZY', passphrase: 'pw' });
    expect(nodes.find((n) => n.type === 'intune-4me-config')!.credentials, 'empty credentials are not sent').to.equal(undefined);
    const tls = nodes.filter((n) => n.type === 'tls-config');
    expect(tls.map((n) => n.ca)).to.deep.equal(['/etc/ssl/ca.pem']);
    expect(nodes.filter((n) => n.tls === tls[0].id).map((n) => n.type).sort()).to.deep.equal(['intune-4me-config', 'intune-config']);
    expect(nodes.find((n) => n.type === 'intune-devices')).to.include({ platformIos: true, platformWindows: false });
    expect(withoutCredentials(nodes).some((n) => 'credentials' in n)).to.equal(false);
    expect(missingCredentials(nodes)).to.deep.equal(['4me (Intune4me_2): the 4me token or OAuth client secret']);
  });

  it('refuses what it cannot do, in words', () => {
    const t = loadTemplate('acmp');
    expect(() => makeInstance(t, { instance: 0 })).to.throw(InstanceError, /1 to 999/);
    expect(() => makeInstance(t, { instance: 2, env: { ACMP_SERVR_ID: 'x' } })).to.throw(InstanceError, /no environment variable ACMP_SERVR_ID/);
    expect(() => makeInstance(t, { instance: 2, env: { FULL_SCAN_HOURS: 'daily' } })).to.throw(InstanceError, /FULL_SCAN_HOURS must be a number/);
    expect(() => makeInstance(t, { instance: 2, nodeProps: { 'intune-4me-config': { accountId: 'x' } } })).to.throw(InstanceError, /no intune-4me-config node/);
    expect(() => loadTemplate('acmpp')).to.throw(InstanceError, /use one of acmp, 4me or a flow file/);
  });

  it('reads a yes/no variable or property as the nodes do, writes exactly true or false, and refuses anything else', () => {
    for (const name of Object.keys(TEMPLATES)) {
      const t = loadTemplate(name);
      const tab = t.find((n) => n.type === 'tab' && (n.env as Array<{ name: string }> | undefined)?.some((e) => e.name === 'READ_SOFTWARE'))!;
      const readSoftware = (env: Record<string, string>) => envOf(makeInstance(t, { instance: 2, env }), renameForInstance(String(tab.label), 2)).READ_SOFTWARE;
      // Node-RED reads a bool flow variable as `value === "true"`: "TRUE" must be written as "true" to be on.
      expect(readSoftware({ READ_SOFTWARE: 'TRUE' }), name).to.equal('true');
      expect(readSoftware({ READ_SOFTWARE: ' 1 ' }), name).to.equal('true');
      expect(readSoftware({ READ_SOFTWARE: 'False' }), name).to.equal('false');
      expect(readSoftware({ READ_SOFTWARE: '' }), `${name}: empty keeps the template's value`).to.equal('false');
      for (const bad of ['yes', 'on', 'ture']) {
        expect(() => makeInstance(t, { instance: 2, env: { READ_SOFTWARE: bad } }), `${name} ${bad}`).to.throw(InstanceError, `READ_SOFTWARE must be true or false, not "${bad}"`);
      }
      // Properties: one the template holds as true/false, or as a yes/no variable, is read the same way and set as a boolean.
      const dev = (props: Record<string, unknown>) => makeInstance(t, { instance: 2, nodeProps: { 'intune-devices': props } }).find((n) => n.type === 'intune-devices')!;
      expect(dev({ platformOther: 'TRUE', readSoftware: '1' })).to.include({ platformOther: true, readSoftware: true });
      expect(dev({ readSoftware: '' }).readSoftware, 'empty keeps the template\'s ${READ_SOFTWARE}').to.equal('${READ_SOFTWARE}');
      expect(() => dev({ readSoftware: 'yes' })).to.throw(InstanceError, 'intune-devices.readSoftware must be true or false, not "yes"');
      expect(() => dev({ platformWindows: 'on' })).to.throw(InstanceError, 'intune-devices.platformWindows must be true or false, not "on"');
      // Anything else is set as given.
      expect(dev({ instance: 'yes' }).instance).to.equal('yes');
    }
  });

  it('finds clashes with what runs: a tab of the same name, and a second intake on the same ACMP routing key', () => {
    const one = makeInstance(loadTemplate('acmp'), { instance: 1 });
    const again = makeInstance(loadTemplate('acmp'), { instance: 1 });
    expect(clashes(one, again).join('\n')).to.match(/IntuneConnector_1 exists already/).and.match(/ACMP jobs from IntuneConnector\/IntuneConnector_1\.jobs/);
    const sameKey = makeInstance(loadTemplate('acmp'), { instance: 2, env: { ACMP_JOBS_ROUTING_KEY: 'IntuneConnector_1.jobs' } });
    expect(clashes(one, sameKey)).to.have.length(1);
    const own = makeInstance(loadTemplate('acmp'), { instance: 2, env: { ACMP_JOBS_ROUTING_KEY: 'IntuneConnector_2.jobs' } });
    expect(clashes(one, own)).to.deep.equal([]);
  });

  describe('command line', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'instance-cli-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('--out writes instance N with the settings from the flags and no secrets, and says what to enter', async () => {
      const out = path.join(dir, 'instance-2.json');
      const said = await main([
        '--template', 'acmp', '--instance', '2', '--out', out,
        '--tenant-id', 'contoso.onmicrosoft.com', '--client-id', '11111111-2222-4333-8444-555555555555', '--auth', 'certificate',
        '--sics-host', 'aesb.contoso.local', '--acmp-server', 'SRV1', '--acmp-server', 'SRV2:ACMP2:acmp.two', '--acmp-target', 'SRV2',
        '--full-scan-hours', '12', '--set', 'intune-acmp.batchSize=500', '--env', 'READ_SOFTWARE=TRUE', '--set', 'intune-devices.platformOther=1',
      ]);
      const nodes = JSON.parse(fs.readFileSync(out, 'utf8')) as FlowNode[];
      checkReferences(nodes);
      expect(nodes.some((n) => 'credentials' in n)).to.equal(false);
      expect(nodes.find((n) => n.type === 'intune-config')).to.include({ tenantId: 'contoso.onmicrosoft.com', clientId: '11111111-2222-4333-8444-555555555555', authType: 'certificate' });
      expect(nodes.find((n) => n.type === 'intune-acmp-config')!.servers).to.deep.equal([
        { serverId: 'SRV1', name: 'SRV1', virtualRouter: 'ACMP', routingKey: 'acmp.SRV1' },
        { serverId: 'SRV2', name: 'SRV2', virtualRouter: 'ACMP2', routingKey: 'acmp.two' },
      ]);
      expect(nodes.find((n) => n.type === 'intune-acmp')!.batchSize).to.equal(500);
      expect(envOf(nodes, 'IntuneConnector_2')).to.include({ FULL_SCAN_HOURS: '12', INSTANCE_NAME: 'IntuneConnector_2', READ_SOFTWARE: 'true' });
      expect(nodes.find((n) => n.type === 'intune-devices')!.platformOther).to.equal(true);
      expect(envOf(nodes, 'IntuneWorkflowEngine_2')).to.deep.equal({ ACMP_JOBS_ROUTING_KEY: 'IntuneConnector_2.jobs' });
      expect(envOf(nodes, 'IntuneMobileDevices_2')).to.include({ ACMP_SERVER_ID: 'SRV2' });
      expect(said).to.match(/Wrote IntuneConnector_2, IntuneWorkflowEngine_2, IntuneMobileDevices_2/).and.match(/SICS \(IntuneConnector_2\): the SICS user and password/);
    });

    it('never writes a secret to a file, and rejects unknown settings', async () => {
      process.env.INSTANCE_TEST_SECRET = 'very-secret-value';
      try {
        const out = path.join(dir, 'x.json');
        await expectReject(main(['--template', '4me', '--instance', '2', '--out', out, '--client-secret-env', 'INSTANCE_TEST_SECRET']), /never written to files/);
        expect(fs.existsSync(out)).to.equal(false);
        await expectReject(main(['--template', '4me', '--instance', '2', '--out', out, '--client-secret-env', 'INSTANCE_TEST_UNSET']), /\$INSTANCE_TEST_UNSET, which is not set/);
        await expectReject(main(['--template', '4me', '--instance', '2', '--out', out, '--platforms', 'windows,symbian']), /unknown symbian/);
        await expectReject(main(['--template', '4me', '--instance', '2', '--out', out, '--env', 'NOPE=1']), /no environment variable NOPE/);
        await expectReject(main(['--template', '4me', '--instance', '2', '--out', out, '--env', 'READ_SOFTWARE=yes']), /^READ_SOFTWARE must be true or false, not "yes"$/);
        await expectReject(main(['--template', 'acmp', '--instance', '2', '--out', out, '--set', 'intune-devices.readSoftware=on']), /^intune-devices\.readSoftware must be true or false, not "on"$/);
        expect(fs.existsSync(out), 'nothing written').to.equal(false);
        await expectReject(main(['--template', '4me', '--instance', '2', '--out', out, '--url', 'http://127.0.0.1:1']), /exactly one of --out/);
        await expectReject(main(['--template', '4me', '--out', out]), /--instance N is required/);
        expect(await main(['--help'])).to.match(/^Usage: node-red-intune-instance/);
      } finally {
        delete process.env.INSTANCE_TEST_SECRET;
      }
    });
  });
});

async function expectReject(p: Promise<unknown>, re: RegExp): Promise<void> {
  let err: Error | undefined;
  try {
    await p;
  } catch (e) {
    err = e as Error;
  }
  expect(err, `expected a rejection matching ${re}`).to.be.instanceOf(Error);
  expect(err!.message).to.match(re);
}
