/**
 * "Set up 4me": the plan (pure), the extension's HTML, where the fields come
 * from, and the simulated 4me's rules for UI extensions and roles.
 */
import { expect } from 'chai';
import { DEFAULT_CUSTOM_FIELDS } from '../nodes/lib/fourme/fourme-ci-mapping';
import { BLOCK_BEGIN, EXTENSION_SOURCE, EXTENSION_SOURCE_ID, desiredHtml, fieldIdsOf, fieldsFromMapping, managedBlock } from '../nodes/lib/fourme/fourme-setup-extension';
import { SETUP_OPS, planSetup, type SetupState, type SetupTarget } from '../nodes/lib/fourme/fourme-setup-plan';
import { targetOf } from '../nodes/lib/fourme/fourme-setup-run';
import { FourMeData } from '../sim/fourme-store';
import { FourMeEngine } from '../sim/fourme-graphql';
import { fieldIdsOfHtml, productFieldErrors, setPersonRoles, uiExtensionsOf } from '../sim/fourme-ui-extensions';

const target = (over: Partial<SetupTarget> = {}): SetupTarget => ({ fields: fieldsFromMapping(DEFAULT_CUSTOM_FIELDS), sources: ['Intune'], language: 'en', ...over });
const state = (over: Partial<SetupState> = {}): SetupState => ({ accountId: 'acme', accountName: 'ACME', personName: 'Connector', roles: ['account_designer'], extension: null, products: [], ...over });
const ours = (html: string) => ({ id: 'ext-1', name: 'Intune data attributes', title: 'Intune data attributes', category: 'product', disabled: false, source: EXTENSION_SOURCE, sourceID: EXTENSION_SOURCE_ID, html });

describe('4me set-up: plan', () => {
  it('a fresh account: create the extension with the 13 field ids, link the products without one, leave a product an administrator linked elsewhere', () => {
    const plan = planSetup(
      state({
        products: [
          { id: 'p1', name: 'Surface Pro', uiExtension: null },
          { id: 'p2', name: 'iPhone 15', uiExtension: { id: 'other', name: 'Phones' } },
        ],
      }),
      target(),
    );
    expect(plan.code).to.equal('ready');
    expect(plan.steps).to.deep.equal([
      { kind: 'createExtension', name: 'Intune data attributes', fields: Object.values(DEFAULT_CUSTOM_FIELDS) },
      { kind: 'linkProduct', productId: 'p1', product: 'Surface Pro' },
    ]);
    expect(plan.otherExtension).to.deep.equal([{ product: 'iPhone 15', extension: 'Phones' }]);
    expect(fieldIdsOf(plan.html)).to.deep.equal(Object.values(DEFAULT_CUSTOM_FIELDS));
    expect(plan.planId).to.match(/^[0-9a-f]{16}$/);
  });

  it('without the Account Designer, Administrator or Owner role: refused in plain words, no steps', () => {
    const plan = planSetup(state({ roles: ['specialist', 'service_desk_analyst'] }), target());
    expect([plan.ok, plan.code, plan.steps]).to.deep.equal([false, 'missingRole', []]);
    expect(plan.message).to.include('needs the Account Designer, Account Administrator or Account Owner role in account ACME');
    expect(plan.message).to.include('it has: Specialist, Service Desk Analyst');
    expect(planSetup(state({ roles: [] }), target()).message).to.include('it has: no role');
    for (const r of ['account_owner', 'account_administrator', 'account_designer']) expect(planSetup(state({ roles: [r] }), target()).ok, r).to.equal(true);
  });

  it('set up already: nothing to do, and the HTML it would write is the HTML 4me has', () => {
    const html = desiredHtml(null, target().fields, 'en');
    const plan = planSetup(state({ extension: ours(html), products: [{ id: 'p1', name: 'X', uiExtension: { id: 'ext-1', name: 'Intune data attributes' } }] }), target());
    expect([plan.code, plan.steps, plan.planId]).to.deep.equal(['upToDate', [], '']);
    expect(desiredHtml(html, target().fields, 'en')).to.equal(html);
  });

  it('a changed field id: added and removed named, a field added by hand outside the block kept', () => {
    const hand = '<p>Asset notes</p>\n<div class="row"><label for="owner_note">Owner</label><input id="owner_note" type="text"></div>';
    const html = `${hand}\n${desiredHtml(null, target().fields, 'en')}`;
    const changed = target({ fields: fieldsFromMapping({ ...DEFAULT_CUSTOM_FIELDS, os: 'intune_os_name' }) });
    const plan = planSetup(state({ extension: ours(html) }), changed);
    expect(plan.steps).to.have.length(1);
    expect(plan.steps[0]).to.include({ kind: 'updateExtension', id: 'ext-1' });
    expect(plan.steps[0]).to.deep.include({ added: ['intune_os_name'], removed: ['intune_operating_system'], kept: ['owner_note'] });
    expect(plan.html.startsWith(hand), 'the administrator\u2019s part is kept as it was').to.equal(true);
    expect(fieldIdsOf(plan.html)).to.include.members(['owner_note', 'intune_os_name']);
  });

  it('an id an administrator defined outside the block stays theirs: the block does not define it twice', () => {
    const hand = '<input id="intune_compliance" type="text">';
    const html = desiredHtml(hand, target().fields, 'en');
    expect(fieldIdsOf(html).filter((id) => id === 'intune_compliance')).to.have.length(1);
    expect(html.startsWith(hand)).to.equal(true);
  });

  it('an extension an administrator built by hand with our name is adopted: our block appended, theirs kept', () => {
    const plan = planSetup(state({ extension: { ...ours('<input id="x1" type="text">'), source: '4me', sourceID: null } }), target());
    expect(plan.steps[0]).to.deep.include({ kind: 'updateExtension', removed: [], kept: ['x1'] });
    expect(plan.html).to.include(BLOCK_BEGIN);
  });

  it('German labels: read-only inputs, German title; switching the language is an update without field changes', () => {
    const de = managedBlock(target().fields, 'de');
    expect(de).to.include('<label for="intune_operating_system">Betriebssystem</label>');
    expect(de).to.include('<input id="intune_encrypted" type="checkbox" readonly>');
    expect(de).to.include('<input id="intune_enrolled_date" type="text" class="date" readonly>');
    const plan = planSetup(state({ extension: ours(desiredHtml(null, target().fields, 'en')) }), target({ language: 'de' }));
    expect(plan.steps[0]).to.deep.include({ kind: 'updateExtension', added: [], removed: [], relabel: true });
  });
});

describe('4me set-up: the fields come from the deployed sinks', () => {
  it('the union of the sinks\u2019 ids and sources; blank ids and sinks that send no custom fields add none', () => {
    const t = targetOf(
      [
        { id: 's1', name: 'a', props: { source: 'Intune', cf_os: 'os_a', cf_jailbroken: '' } },
        { id: 's2', name: 'b', props: { source: 'Intune EU', cf_os: 'os_b' } },
        { id: 's3', name: 'c', props: { source: 'Intune', sendCustomFields: false } },
      ],
      'de-DE',
    );
    const ids = t.fields.map((f) => f.id);
    expect(ids).to.include.members(['os_a', 'os_b', 'intune_compliance']);
    expect(ids.filter((id) => id === 'intune_compliance')).to.have.length(1);
    expect(t.sources).to.deep.equal(['Intune', 'Intune EU']);
    expect(t.language).to.equal('de');
  });

  it('no deployed sink: the sink\u2019s default ids', () => {
    expect(targetOf([], 'en-US').fields.map((f) => f.id)).to.deep.equal(Object.values(DEFAULT_CUSTOM_FIELDS));
  });
});

describe('4me sim: UI extensions, roles, product links', () => {
  const setup = () => {
    const data = new FourMeData();
    data.addAccount('acme', 'ACME', null);
    const me = data.addPerson('acme', { name: 'API', primaryEmail: null });
    const engine = new FourMeEngine(data);
    const exec = (query: string, variables: Record<string, unknown> = {}) => {
      const p = engine.prepare({ query, variables });
      if ('errors' in p) throw new Error(p.errors.map((e) => e.message).join('; '));
      return engine.run(p, { account: data.account('acme'), me, submitAsync: () => { throw new Error('no'); }, onMutation: () => {}, onCiWrite: () => {} });
    };
    return { data, me, exec };
  };
  const create = 'mutation($html: String) { uiExtensionCreate(input: {name: "E", category: product, html: $html, activate: true}) { errors { message } uiExtension { id activeVersion { html } } } }';

  it('a new version is prepared until activated; the active one defines the CI fields of its products', () => {
    const { data, exec } = setup();
    const r = exec(create, { html: '<input id="a" type="text">' }) as { data: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const ext = r.data.uiExtensionCreate.uiExtension;
    exec(`mutation { uiExtensionUpdate(input: {id: "${ext.id}", html: "<input id='b'>"}) { errors { message } } }`);
    const e = uiExtensionsOf(data, 'acme')[0];
    expect([...fieldIdsOfHtml(e.versions.find((v) => v.status === 'active')!.html)]).to.deep.equal(['a']);
    const cat = data.addProductCategory('acme', { name: 'PC', group: 'Computer' });
    const product = data.addProduct('acme', { name: 'P', brand: 'B', category: cat.id });
    expect(productFieldErrors(data, product, [{ id: 'a', value: 1 }], []), 'no extension: the account rule').to.equal(null);
    const link = exec(`mutation { productUpdate(input: {id: "${product.id}", uiExtensionId: "${ext.id}"}) { errors { message } product { uiExtension { id } } } }`) as { data: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(link.data.productUpdate.product.uiExtension.id).to.equal(ext.id);
    expect(productFieldErrors(data, product, [{ id: 'a', value: 1 }, { id: 'b', value: 2 }], ['p'])).to.deep.equal([
      { path: ['p', 'customFields'], message: "Custom field 'b' is not defined in the UI extension of this configuration item" },
    ]);
    exec(`mutation { uiExtensionUpdate(input: {id: "${ext.id}", activate: true}) { errors { message } } }`);
    expect(productFieldErrors(data, product, [{ id: 'b', value: 2 }], [])).to.deep.equal([]);
    expect(e.versions.map((v) => v.status)).to.deep.equal(['archived', 'active']);
  });

  it('every document the set-up sends validates against the simulated schema (top-level filter types only)', () => {
    const engine = new FourMeEngine(new FourMeData());
    for (const [name, query] of Object.entries(SETUP_OPS)) {
      const p = engine.prepare({ query, variables: {} });
      expect('errors' in p ? p.errors.map((e) => e.message) : [], name).to.deep.equal([]);
    }
  });

  it('a person without a designer role cannot create or change an extension, and `me { permissions }` tells the roles', () => {
    const { data, me, exec } = setup();
    setPersonRoles(data, me.id, ['specialist']);
    const r = exec(create, { html: '' });
    expect(r.errors?.[0]?.message).to.match(/Insufficient permissions/);
    expect(uiExtensionsOf(data, 'acme')).to.deep.equal([]);
    const who = exec('{ me { permissions(first: 10) { nodes { account { id } roles } } } }') as { data: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(who.data.me.permissions.nodes).to.deep.equal([{ account: { id: 'acme' }, roles: ['specialist'] }]);
  });
});
