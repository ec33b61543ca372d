/**
 * CI relations in the simulated 4me (sim/fourme-ci-relations.ts), over the
 * wire: discovered CIs with `ciRelations { childIds childSourceRefs }`,
 * replacement of the upload source's child relations, per-item errors, and
 * what a CI's `ciRelations` connection shows. docs/fourme-software.md says
 * which rules are documented and which are assumed.
 */
import { expect } from 'chai';
import type { AxiosInstance } from 'axios';
import { createAxios, createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim } from '../sim/fourme';

const PAT = 'pat-relations-0123456789';
const ACCOUNT = 'acme';
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DISCOVERED = `mutation Upload($input: DiscoveredConfigurationItemsInput!) {
  discoveredConfigurationItems(input: $input) {
    errors { path message }
    configurationItems { id sourceID }
    asyncQuery { resultUrl errorCount }
  }
}`;
const RELATIONS = `query Rel($filter: ConfigurationItemFilter) {
  configurationItems(first: 10, filter: $filter) {
    nodes { sourceID ciRelations(first: 100) { nodes { relationType source configurationItem { sourceID } } } }
  }
}`;

describe('sim/fourme: CI relations written by discovery', function () {
  this.timeout(20_000);
  const pki = sharedTestCa();
  let sim: FourMeSim;
  let http: AxiosInstance;

  async function gql(query: string, variables?: Json): Promise<Json> {
    const r = await http.post(sim.graphqlUrl, { query, variables }, { headers: { authorization: `Bearer ${PAT}`, 'x-4me-account': ACCOUNT } });
    expect(r.data.errors, JSON.stringify(r.data.errors)).to.equal(undefined);
    return r.data.data;
  }
  /** Uploads and returns the asynchronous result (errors and CIs). */
  async function upload(input: Json): Promise<Json> {
    const submit = (await gql(DISCOVERED, { input })).discoveredConfigurationItems;
    for (let i = 0; i < 100; i++) {
      const r = await http.get(submit.asyncQuery.resultUrl);
      if (r.data?.data) return r.data.data.discoveredConfigurationItems;
      await new Promise((res) => setTimeout(res, 5));
    }
    throw new Error('no result');
  }
  const software = (cis: Json[]) => ({
    reference: 'software/application',
    name: 'Application',
    products: [{ sourceID: 'sw|vendor|tool', brand: 'Vendor', model: 'Tool', name: 'Vendor Tool', configurationItems: cis }],
  });
  const device = (ciRelations?: Json, extra: Json = {}) => ({
    reference: 'computer/laptop_pc',
    name: 'Laptop PC',
    products: [{ sourceID: 'contoso|book', brand: 'Contoso', model: 'Book', name: 'Contoso Book', configurationItems: [{ sourceID: 'dev-1', name: 'DEV-1', ...(ciRelations ? { ciRelations } : {}), ...extra }] }],
  });
  const relationsOf = async (sourceID: string) =>
    ((await gql(RELATIONS, { filter: { sourceID: { values: [sourceID] } } })).configurationItems.nodes[0].ciRelations.nodes as Json[]).map(
      (n) => `${n.relationType}:${n.configurationItem.sourceID}:${n.source ?? ''}`,
    );
  const ids = new Map<string, string>();

  before(async () => {
    http = createAxios(createHttpsAgent({ ca: pki.certPem }), 10_000);
    sim = new FourMeSim({ tls: pki.server, accounts: [{ id: ACCOUNT }, { id: 'globex' }], personalAccessTokens: [{ token: PAT, personName: 'Connector' }] });
    await sim.start();
    sim.seedProductCategory({ name: 'Application', group: 'software', ruleSet: 'software' }, ACCOUNT);
    sim.setAsyncOptions({ delayMs: 0, pollsBeforeResult: 0, ttlMs: 60_000 });
  });
  after(async () => {
    await sim?.stop();
  });

  it('childSourceRefs relate children created in the same call; both sides show the relation', async () => {
    const r = await upload({
      source: 'Intune',
      physicalAssets: [software([{ sourceID: 'app:1', name: 'Vendor Tool 1.0' }, { sourceID: 'app:2', name: 'Vendor Tool 2.0' }]), device({ childSourceRefs: [{ sourceID: 'app:1' }, { source: 'Intune', sourceID: 'app:2' }] })],
    });
    expect(r.errors).to.deep.equal([]);
    for (const c of r.configurationItems) ids.set(c.sourceID, c.id);
    expect(await relationsOf('dev-1')).to.have.members(['child:app:1:Intune', 'child:app:2:Intune']);
    expect(await relationsOf('app:1')).to.deep.equal(['parent:dev-1:Intune']);
  });

  it('childIds replace the children of the upload source; absent ciRelations leave them; other sources keep theirs', async () => {
    // another tool relates the same device to a software CI of its own
    let r = await upload({ source: 'SCCM', physicalAssets: [software([{ sourceID: 'sccm:9', name: 'Vendor Tool 9' }])] });
    const sccmCi = r.configurationItems[0].id;
    const dev = sim.account(ACCOUNT).ciBySource('Intune', 'dev-1')!;
    dev.childRelations.push({ childId: sccmCi, source: 'SCCM' });

    r = await upload({ source: 'Intune', physicalAssets: [device({ childIds: [ids.get('app:2')] })] });
    expect(r.errors).to.deep.equal([]);
    expect(await relationsOf('dev-1')).to.have.members(['child:app:2:Intune', 'child:sccm:9:SCCM']);

    r = await upload({ source: 'Intune', physicalAssets: [device(undefined, { name: 'DEV-1 renamed' })] });
    expect(await relationsOf('dev-1')).to.have.members(['child:app:2:Intune', 'child:sccm:9:SCCM']);

    r = await upload({ source: 'Intune', physicalAssets: [device({ childIds: [] })] });
    expect(await relationsOf('dev-1')).to.deep.equal(['child:sccm:9:SCCM']);
  });

  it('an unknown child, one of another account, or the CI itself fails that item only, and its relations stay', async () => {
    await upload({ source: 'Intune', physicalAssets: [device({ childIds: [ids.get('app:1')] })] });
    const other = sim.seedConfigurationItem(
      { name: 'Elsewhere', productId: sim.seedProduct({ brand: 'X', model: 'Y', category: sim.seedProductCategory({ name: 'Laptop PC', group: 'computer' }, 'globex').reference }, 'globex').id },
      'globex',
    );
    const r = await upload({
      source: 'Intune',
      physicalAssets: [device({ childIds: [ids.get('app:2'), 'bm9zdWNoaWQ', other.id], childSourceRefs: [{ sourceID: 'app:none' }] })],
    });
    expect(r.errors.map((e: Json) => e.path.slice(-3).join('/'))).to.deep.equal(['childIds/1', 'childIds/2', 'childSourceRefs/0'].map((p) => `ciRelations/${p}`));
    expect(r.errors[0].path.slice(0, 6)).to.deep.equal(['physicalAssets', '0', 'products', '0', 'configurationItems', '0']);
    expect(await relationsOf('dev-1')).to.include('child:app:1:Intune').and.not.include('child:app:2:Intune');
    const self = await upload({ source: 'Intune', physicalAssets: [device({ childIds: [ids.get('dev-1')] })] });
    expect(self.errors[0].message).to.match(/itself/);
  });

  it('a CI set to "removed" loses its CI relations, both ways', async () => {
    await upload({ source: 'Intune', physicalAssets: [device({ childIds: [ids.get('app:1'), ids.get('app:2')] })] });
    expect(await relationsOf('app:2')).to.deep.equal(['parent:dev-1:Intune']);
    await upload({ source: 'Intune', physicalAssets: [software([{ sourceID: 'app:2', name: 'Vendor Tool 2.0', status: 'removed' }])] });
    expect(await relationsOf('app:2')).to.deep.equal([]);
    expect(await relationsOf('dev-1')).to.include('child:app:1:Intune').and.not.include('child:app:2:Intune');
  });
});
