/**
 * The runtime half of "New instance…" without a Node-RED: the admin-consent
 * link per national cloud, and the instance built from the shipped template
 * with the instance tool's logic (next free number, answers, clashes, no
 * credentials ever). The browser test (test/browser/new-instance.test.ts)
 * drives the set-up against the demo.
 */
import { expect } from 'chai';
import { adminConsentUrl } from '../plugins/intune-new-instance/admin-consent';
import { buildInstance, readAnswers, templateFacts } from '../plugins/intune-new-instance/instance-build';
import { CLOUDS } from '../nodes/lib/intune/clouds';
import { PERMISSION_NEEDS } from '../nodes/lib/intune/permissions';
import { loadTemplate, makeInstance, type FlowNode } from '../bin/instance-template';

const TENANT = '6f1c2d3e-4a5b-4c6d-8e7f-901234567890';
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';

describe('New instance: admin-consent link', () => {
  const hosts: Record<string, string> = {
    global: 'https://login.microsoftonline.com',
    usgov: 'https://login.microsoftonline.us',
    usgovdod: 'https://login.microsoftonline.us',
    china: 'https://login.chinacloudapi.cn',
  };
  for (const cloud of Object.keys(CLOUDS)) {
    it(`${cloud}: the cloud's sign-in host, the tenant and the client id`, () => {
      const url = new URL(adminConsentUrl({ cloud, tenantId: TENANT, clientId: CLIENT }));
      expect(url.origin).to.equal(hosts[cloud]);
      expect(url.pathname).to.equal(`/${TENANT}/adminconsent`);
      expect([...url.searchParams.entries()]).to.deep.equal([['client_id', CLIENT]]);
    });
  }
  it('custom: the configured authority host; a domain as tenant', () => {
    const url = adminConsentUrl({ cloud: 'custom', tenantId: 'contoso.onmicrosoft.com', clientId: CLIENT, authorityHost: 'https://login.example.test/', graphBaseUrl: 'https://graph.example.test' });
    expect(url).to.equal(`https://login.example.test/contoso.onmicrosoft.com/adminconsent?client_id=${CLIENT}`);
  });
  it('refuses what the connection would refuse, naming the field', () => {
    expect(() => adminConsentUrl({ cloud: 'global', tenantId: TENANT, clientId: 'not-a-guid' })).to.throw(/client/i);
    expect(() => adminConsentUrl({ cloud: 'global', tenantId: 'bad tenant/..', clientId: CLIENT })).to.throw();
    expect(() => adminConsentUrl({ cloud: 'custom', tenantId: TENANT, clientId: CLIENT })).to.throw(/authority/i);
  });
});

describe('New instance: building from the template', () => {
  const answers = { 'tenant-id': TENANT, 'client-id': CLIENT, auth: 'secret', cloud: 'global', 'sics-host': 'aesb.example.test', 'sics-port': '3901', 'acmp-server': ['ACMP03'], 'acmp-target': 'ACMP03', platforms: 'ios,android', 'full-scan-hours': '12' };

  it('the facts the set-up shows: every permission need, each template\u2019s tabs, schedule and platforms', () => {
    const f = templateFacts() as Record<string, { tabs: string[]; env: Record<string, string>; platforms: Record<string, boolean>; devices: Record<string, unknown> }>;
    expect(f.acmp.tabs).to.deep.equal(['IntuneConnector_1', 'IntuneWorkflowEngine_1', 'IntuneMobileDevices_1']);
    expect(f['4me'].tabs).to.deep.equal(['Intune4me_1']);
    const shipped = (loadTemplate('acmp').find((n) => n.type === 'tab')!.env as Array<{ name: string; value: string }>).find((e) => e.name === 'FULL_SCAN_HOURS')!.value;
    expect(f.acmp.env.FULL_SCAN_HOURS).to.equal(shipped);
    expect(f['4me'].platforms, 'a new 4me instance imports no platform until chosen').to.deep.equal({ windows: false, macos: false, ios: false, android: false, linux: false, other: false });
    expect(Object.values(f.acmp.devices).some((v) => typeof v === 'string' && v.startsWith('${')), 'no env references in the preview settings').to.equal(false);
    expect(PERMISSION_NEEDS.length).to.be.greaterThan(0);
  });

  it('instance 1 when the flows hold none, 2 beside instance 1, with the answers set as the tool sets them', () => {
    const first = buildInstance({ template: 'acmp', answers, existing: [] });
    expect(first.instance).to.equal(1);
    const one = makeInstance(loadTemplate('acmp'), { instance: 1 });
    const b = buildInstance({ template: 'acmp', answers, existing: one });
    expect(b.instance).to.equal(2);
    expect(b.tabs).to.deep.equal(['IntuneConnector_2', 'IntuneWorkflowEngine_2', 'IntuneMobileDevices_2']);
    const byType = (t: string) => b.nodes.filter((n) => n.type === t);
    expect(byType('intune-config')[0]).to.include({ tenantId: TENANT, clientId: CLIENT, authType: 'secret', cloud: 'global' });
    expect(byType('intune-acmp-config')[0]).to.include({ host: 'aesb.example.test', port: 3901 });
    expect(byType('intune-acmp-config')[0].servers).to.deep.equal([{ serverId: 'ACMP03', name: 'ACMP03', virtualRouter: 'ACMP', routingKey: 'acmp.ACMP03' }]);
    expect(byType('intune-devices')[0]).to.include({ platformIos: true, platformAndroid: true, platformWindows: false });
    const env = Object.fromEntries(b.nodes.filter((n) => n.type === 'tab').flatMap((t) => (t.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value])));
    expect(env).to.include({ ACMP_SERVER_ID: 'ACMP03', ACMP_JOBS_ROUTING_KEY: 'IntuneConnector_2.jobs', FULL_SCAN_HOURS: '12', INSTANCE_NAME: 'IntuneConnector_2', ACMP_ON_DEMAND_DEFINITION: 'IntuneMobileDevices_2' });
    expect(b.nodes.some((n) => n.credentials !== undefined)).to.equal(false);
    expect(new Set(b.nodes.map((n) => n.id)).size).to.equal(b.nodes.length);
    expect(b.nodes.some((n) => one.some((o) => o.id === n.id))).to.equal(false);
  });

  it('numbers each template on its own: a 4me instance next to ACMP instances 1 and 2 is Intune4me_1, then _2', () => {
    const existing: FlowNode[] = [...makeInstance(loadTemplate('acmp'), { instance: 1 }), ...makeInstance(loadTemplate('acmp'), { instance: 2 })];
    expect(buildInstance({ template: '4me', answers: {}, existing }).tabs).to.deep.equal(['Intune4me_1']);
    existing.push(...makeInstance(loadTemplate('4me'), { instance: 1 }));
    expect(buildInstance({ template: '4me', answers: {}, existing }).tabs).to.deep.equal(['Intune4me_2']);
  });

  it('takes a gap: with instances 1 and 3, the next is 2', () => {
    const existing = [...makeInstance(loadTemplate('4me'), { instance: 1 }), ...makeInstance(loadTemplate('4me'), { instance: 3 })];
    expect(buildInstance({ template: '4me', answers: {}, existing }).instance).to.equal(2);
  });

  it('a TLS configuration of the flows goes on the private endpoints only; one not in the flows is refused', () => {
    const existing: FlowNode[] = [{ id: 'tls1', type: 'tls-config', name: 'CA' }];
    let b = buildInstance({ template: 'acmp', answers, tls: 'tls1', existing });
    expect(b.nodes.find((n) => n.type === 'intune-acmp-config')!.tls, 'SICS').to.equal('tls1');
    expect(b.nodes.find((n) => n.type === 'intune-config')!.tls, 'Intune on the global cloud keeps the public CAs').to.equal('');
    b = buildInstance({ template: 'acmp', answers: { ...answers, cloud: 'custom', 'authority-host': 'https://login.example.test', 'graph-url': 'https://graph.example.test' }, tls: 'tls1', existing });
    expect(b.nodes.find((n) => n.type === 'intune-config')!.tls, 'custom Intune endpoints').to.equal('tls1');
    b = buildInstance({ template: '4me', answers: { 'fourme-environment': 'production' }, tls: 'tls1', existing });
    expect(b.nodes.find((n) => n.type === 'intune-4me-config')!.tls, '4me production').to.equal('');
    b = buildInstance({ template: '4me', answers: { 'fourme-graphql-url': 'https://4me.example.test/graphql' }, tls: 'tls1', existing });
    expect(b.nodes.find((n) => n.type === 'intune-4me-config')!.tls, '4me custom URL').to.equal('tls1');
    expect(() => buildInstance({ template: 'acmp', answers, tls: 'nope', existing })).to.throw(/TLS configuration/);
  });

  it('refuses what the tool refuses: a routing key another instance takes, an unknown template or platform', () => {
    const one = makeInstance(loadTemplate('acmp'), { instance: 1 });
    expect(() => buildInstance({ template: 'acmp', answers: { ...answers, 'jobs-routing-key': 'IntuneConnector_1.jobs' }, existing: one })).to.throw(/routing key/);
    expect(() => buildInstance({ template: 'nope', answers, existing: [] })).to.throw(/Unknown template/);
    expect(() => buildInstance({ template: '4me', answers: { platforms: 'windows,beos' }, existing: [] })).to.throw(/beos/);
  });

  it('reads only the known answers: secrets sent by mistake are dropped, not used', () => {
    const a = readAnswers({ 'tenant-id': TENANT, 'client-secret': 'oops-secret', credentials: { clientSecret: 'oops' }, password: 'x', 'acmp-server': [' ACMP01 ', ''] });
    expect(a).to.deep.equal({ 'tenant-id': TENANT, 'acmp-server': ['ACMP01'] });
    const b = buildInstance({ template: 'acmp', answers: { ...answers, 'client-secret': 'oops-secret', credentials: { clientSecret: 'oops-secret' } }, existing: [] });
    expect(JSON.stringify(b)).to.not.include('oops');
    expect(() => readAnswers({ 'acmp-server': 'ACMP01' })).to.throw(/list/);
  });
});

describe('New instance: the catalogs', () => {
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  const root = path.resolve(__dirname, '..', '..');
  const flat = (o: Record<string, unknown>, pre = ''): Record<string, string> =>
    Object.entries(o).reduce<Record<string, string>>((acc, [k, v]) => Object.assign(acc, typeof v === 'object' && v ? flat(v as Record<string, unknown>, `${pre}${k}.`) : { [`${pre}${k}`]: String(v) }), {});
  const cat = (lang: string) => flat(JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, 'intune-new-instance.json'), 'utf8')));

  it('en-US and de have the same keys, the same __parameters__, and German texts', () => {
    const en = cat('en-US');
    const de = cat('de');
    expect(Object.keys(de).sort()).to.deep.equal(Object.keys(en).sort());
    const params = (s: string) => (s.match(/__\w+__/g) ?? []).sort();
    for (const k of Object.keys(en)) expect(params(de[k]), k).to.deep.equal(params(en[k]));
    const names = ['cloud.china']; // a proper name, the same in both
    const same = Object.keys(en).filter((k) => en[k] === de[k] && en[k].length > 12 && !names.includes(k));
    expect(same, 'untranslated').to.deep.equal([]);
  });

  it('every literal key the editor uses is in the catalog', () => {
    const html = fs.readFileSync(path.join(root, 'plugins', 'intune-new-instance', 'intune-new-instance.html'), 'utf8');
    const used = [...html.matchAll(/\bt\("([a-zA-Z0-9.]+)"/g)].map((m) => m[1]).filter((k) => !k.endsWith(".")); // "prefix." + value: below
    expect(used.length).to.be.greaterThan(20);
    const en = cat('en-US');
    expect(used.filter((k) => !(k in en))).to.deep.equal([]);
    // Keys made of a prefix and a value: every value the editor offers.
    for (const c of Object.keys(CLOUDS).concat('custom')) expect(en, `cloud.${c}`).to.have.property(`cloud.${c}`);
    for (const need of PERMISSION_NEEDS) expect(en, `feature.${need.feature}`).to.have.property(`feature.${need.feature}`);
    for (let n = 1; n <= 5; n++) expect(en).to.have.property(`steps.${n}`);
  });
});
