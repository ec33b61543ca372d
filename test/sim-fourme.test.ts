/**
 * The simulated 4me (sim/fourme.ts): schema validation, auth (personal
 * access tokens, OAuth client credentials, account header), paging limits,
 * asynchronous discovered CIs (adoption by serial number, per-item errors,
 * idempotent upsert), incidents, rate-limit headers and 429s, faults.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { createAxios, createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim, type FourMeProduct, type FourMeProductCategory } from '../sim/fourme';

const PAT = 'pat-acme-0123456789';
const PAT_ACME_ONLY = 'pat-only-acme';
const CLIENT = { clientId: 'intune-connector', clientSecret: 'oauth-secret-value' };
const ACCOUNT = 'acme';
const DIRECTORY = 'acme-dir';
const OTHER = 'globex';

const DISCOVERED = `mutation Upload($input: DiscoveredConfigurationItemsInput!) {
  discoveredConfigurationItems(input: $input) {
    errors { path message }
    configurationItems { id sourceID }
    asyncQuery { id resultUrl errorCount resultCount status }
  }
}`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('sim/fourme', function () {
  this.timeout(20_000);
  const pki = sharedTestCa();
  let sim: FourMeSim;
  let http: AxiosInstance;
  let category: FourMeProductCategory;
  let product: FourMeProduct;

  const headers = (token = PAT, account: string | null = ACCOUNT): Record<string, string> => ({
    authorization: `Bearer ${token}`,
    ...(account ? { 'x-4me-account': account } : {}),
  });
  const post = (query: string, variables?: Json, h: Record<string, string> = headers()): Promise<AxiosResponse<Json>> =>
    http.post(sim.graphqlUrl, { query, variables }, { headers: h });
  async function gql(query: string, variables?: Json, h?: Record<string, string>): Promise<Json> {
    const r = await post(query, variables, h);
    expect(r.status, JSON.stringify(r.data)).to.equal(200);
    expect(r.data.errors, JSON.stringify(r.data.errors)).to.equal(undefined);
    return r.data.data;
  }
  const ci = (sourceID: string, extra: Json = {}): Json => ({ sourceID, name: `DEV-${sourceID}`, ...extra });
  const inputOf = (cis: Json[], extra: Json = {}, productExtra: Json = {}): Json => ({
    source: 'Intune',
    physicalAssets: [
      {
        reference: 'computer/laptop_pc',
        name: 'Laptop PC',
        products: [
          {
            sourceID: 'microsoft-surface-pro-4',
            brand: 'Microsoft Corporation',
            model: 'Surface Pro 4',
            name: 'Microsoft Corporation Surface Pro 4',
            configurationItems: cis,
            ...productExtra,
          },
        ],
      },
    ],
    ...extra,
  });
  async function upload(input: Json, h?: Record<string, string>): Promise<{ submit: Json; result: Json; polls: number }> {
    const submit = (await gql(DISCOVERED, { input }, h)).discoveredConfigurationItems;
    expect(submit.errors).to.deep.equal([]);
    let polls = 0;
    for (;;) {
      const r = await http.get(submit.asyncQuery.resultUrl);
      polls++;
      expect(r.status).to.equal(200);
      if (r.data && r.data.data) return { submit, result: r.data.data.discoveredConfigurationItems, polls };
      expect(r.data).to.deep.equal({});
      expect(polls).to.be.below(50);
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  before(async () => {
    http = createAxios(createHttpsAgent({ ca: pki.certPem }), 10_000);
    sim = new FourMeSim({
      tls: pki.server,
      accounts: [{ id: ACCOUNT, name: 'Acme Corp', directoryAccountId: DIRECTORY }, { id: DIRECTORY }, { id: OTHER }],
      personalAccessTokens: [{ token: PAT, personName: 'Intune connector' }, { token: PAT_ACME_ONLY, accounts: [ACCOUNT] }],
      oauthClients: [{ ...CLIENT, personName: 'Intune OAuth app' }],
    });
    await sim.start();
    category = sim.seedProductCategory({ name: 'Laptop PC', group: 'computer' });
    product = sim.seedProduct({ brand: 'Contoso', model: 'Book 1', category: category.reference });
  });
  after(async () => {
    await sim?.stop();
  });
  beforeEach(() => {
    sim.clearFaults();
    sim.resetThrottling();
    sim.setRetryAfter(true);
    sim.setLimits({ burstRequests: 20, burstWindowMs: 2000, hourlyRequests: 3600, costPoints: 5000 });
    sim.setAsyncOptions({ delayMs: 0, pollsBeforeResult: 0, ttlMs: 15 * 60_000 });
  });

  describe('schema', () => {
    it('loads the SDL copy with its provenance header and a subset-shaped root', () => {
      const text = fs.readFileSync(sim.engine.schemaPath, 'utf8');
      expect(text).to.match(/verbatim copy of \.\.\/shared\/reference\/4me\/schema\.graphql/);
      expect(text).to.include('Works4me.Xurrent.GraphQL');
      expect(Object.keys(sim.engine.schema.getMutationType()!.getFields())).to.include.members([
        'discoveredConfigurationItems',
        'configurationItemUpdate',
        'requestCreate',
        'requestUpdate',
        'noteCreate',
      ]);
    });

    it('rejects operations the schema does not allow, with GraphQL errors and no data', async () => {
      const before = sim.stats.invalidOperations;
      const r1 = await post('{ people(first: 5) { nodes { id emailAddress } } }');
      expect(r1.status).to.equal(200);
      expect(r1.data.data).to.equal(undefined);
      expect(r1.data.errors[0].message).to.match(/Cannot query field "emailAddress" on type "Person"/);
      expect(r1.data.errors[0].locations).to.be.an('array');

      const r2 = await post('{ people(first: "ten") { totalCount } }');
      expect(r2.data.errors[0].message).to.match(/Int cannot represent/);

      // Required input field missing (DiscoveredConfigurationItemsInput.source: String!).
      const r3 = await post(DISCOVERED, { input: { physicalAssets: [] } });
      expect(r3.data.errors[0].message).to.match(/Field "source" of required type "String!" was not provided/);

      const r4 = await post('{ requests(first: 1, filter: {status: {values: ["completed"]}}) { nodes { status(x: 1) } } }');
      expect(r4.data.errors[0].message).to.match(/Unknown argument "x"/);

      const r5 = await post('{ configurationItems(first: 1, filter: {lastSeenAt: {greaterThan: "yesterday"}}) { totalCount } }');
      expect(r5.data.errors[0].message).to.match(/not a valid ISO 8601 timestamp/);

      expect(sim.stats.invalidOperations - before).to.equal(5);
      expect(sim.stats.mutations.discoveredConfigurationItems ?? 0).to.equal(0);
    });

    it('refuses variables typed with placeholder filter value types, but accepts the values inline or via the top-level filter type', async () => {
      const bad = await post('query($f: StringFilter) { people(first: 1, filter: {primaryEmail: $f}) { totalCount } }', { f: { values: ['a@b.c'] } });
      expect(bad.data.errors[0].message).to.match(/"\$f" is declared with type "StringFilter", a placeholder name/);
      await gql('query($f: PersonFilter) { people(first: 1, filter: $f) { totalCount } }', { f: { primaryEmail: { values: ['a@b.c'] } } });
      await gql('{ people(first: 1, filter: {primaryEmail: {values: ["a@b.c"]}}) { totalCount } }');
    });

    it('reports filter fields the simulator does not implement instead of ignoring them', async () => {
      const r = await post('{ people(first: 1, filter: {skillPool: {values: ["x"]}}) { totalCount } }');
      expect(r.data.errors[0].message).to.match(/does not implement the 'skillPool' field of PersonFilter/);
    });
  });

  describe('authentication', () => {
    it('answers 401 with a JSON errors body when the token or the account header is missing or wrong', async () => {
      const q = { query: '{ me { id } }' };
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ 'x-4me-account': ACCOUNT }, /Missing access token/],
        [headers('not-a-token'), /access token is invalid/],
        [headers(PAT, null), /Missing account/],
        [headers(PAT, 'nope'), /Unknown account 'nope'/],
        [headers(PAT_ACME_ONLY, OTHER), /not valid for account 'globex'/],
      ];
      const before = sim.stats.unauthorized;
      for (const [h, msg] of cases) {
        const r = await http.post(sim.graphqlUrl, q, { headers: h });
        expect(r.status, JSON.stringify(h)).to.equal(401);
        expect(r.headers['content-type']).to.match(/application\/json/);
        expect(r.headers['x-request-id']).to.be.a('string').and.not.empty;
        expect(r.headers['x-ratelimit-limit']).to.equal(undefined);
        expect(r.data.errors[0].message).to.match(msg);
      }
      expect(sim.stats.unauthorized - before).to.equal(cases.length);
    });

    it('accepts X-Xurrent-Account and answers me/account for the token person in that account', async () => {
      const d = await gql('{ me { id name } account { id name } }', undefined, { authorization: `Bearer ${PAT}`, 'x-xurrent-account': ACCOUNT });
      expect(d.account).to.deep.equal({ id: ACCOUNT, name: 'Acme Corp' });
      expect(d.me.name).to.equal('Intune connector');
      expect(d.me.id).to.equal(sim.personOf(PAT, ACCOUNT)!.id);
    });

    it('issues OAuth client-credential tokens (form, JSON or Basic) that work as bearer tokens', async () => {
      const form = `grant_type=client_credentials&client_id=${CLIENT.clientId}&client_secret=${CLIENT.clientSecret}`;
      const r = await http.post(sim.tokenUrl, form, { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(r.status).to.equal(200);
      expect(r.data).to.include({ token_type: 'Bearer', expires_in: 3600 });
      expect(r.data.access_token).to.be.a('string').with.length.above(20);
      const d = await gql('{ me { name } }', undefined, headers(r.data.access_token));
      expect(d.me.name).to.equal('Intune OAuth app');

      const j = await http.post(sim.tokenUrl, { grant_type: 'client_credentials', client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret });
      expect(j.status).to.equal(200);
      const basic = Buffer.from(`${CLIENT.clientId}:${CLIENT.clientSecret}`).toString('base64');
      const b = await http.post(sim.tokenUrl, 'grant_type=client_credentials', {
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      });
      expect(b.status).to.equal(200);
    });

    it('answers token errors with {error, error_description}: 400 invalid_request / unsupported_grant_type, 401 invalid_client', async () => {
      const form = { headers: { 'content-type': 'application/x-www-form-urlencoded' } };
      const noGrant = await http.post(sim.tokenUrl, `client_id=${CLIENT.clientId}&client_secret=x`, form);
      expect(noGrant.status).to.equal(400);
      expect(noGrant.data.error).to.equal('invalid_request');
      expect(noGrant.data.error_description).to.match(/grant_type/);
      const badGrant = await http.post(sim.tokenUrl, `grant_type=password&client_id=${CLIENT.clientId}`, form);
      expect(badGrant.status).to.equal(400);
      expect(badGrant.data.error).to.equal('unsupported_grant_type');
      const badSecret = await http.post(sim.tokenUrl, `grant_type=client_credentials&client_id=${CLIENT.clientId}&client_secret=wrong`, form);
      expect(badSecret.status).to.equal(401);
      expect(badSecret.data.error).to.equal('invalid_client');
      const unknown = await http.post(sim.tokenUrl, 'grant_type=client_credentials&client_id=who&client_secret=x', form);
      expect(unknown.status).to.equal(401);
      sim.setClientDisabled(CLIENT.clientId, true);
      try {
        const disabled = await http.post(sim.tokenUrl, `grant_type=client_credentials&client_id=${CLIENT.clientId}&client_secret=${CLIENT.clientSecret}`, form);
        expect(disabled.status).to.equal(401);
        expect(disabled.data.error_description).to.match(/disabled/);
      } finally {
        sim.setClientDisabled(CLIENT.clientId, false);
      }
    });

    it('expires OAuth tokens on expireTokens() and by lifetime; personal access tokens keep working', async () => {
      const token = sim.issueToken(CLIENT.clientId);
      await gql('{ me { id } }', undefined, headers(token));
      sim.expireTokens();
      const r = await post('{ me { id } }', undefined, headers(token));
      expect(r.status).to.equal(401);
      expect(r.data.errors[0].message).to.match(/expired/);
      await gql('{ me { id } }'); // PAT unaffected
      const short = sim.issueToken(CLIENT.clientId, 0);
      expect((await post('{ me { id } }', undefined, headers(short))).status).to.equal(401);
      const fresh = sim.issueToken(CLIENT.clientId);
      await gql('{ me { id } }', undefined, headers(fresh));
    });
  });

  describe('queries and paging', () => {
    before(() => {
      sim.seedPeople(
        Array.from({ length: 60 }, (_, i) => ({ name: `Person ${i}`, primaryEmail: `person${i}@acme.example` })),
        ACCOUNT,
      );
      sim.seedPeople([{ name: 'Dora Directory', primaryEmail: 'Dora.Directory@Acme.example' }], DIRECTORY);
      sim.seedConfigurationItem({ name: 'Paging-CI', productId: product.id });
    });

    it('refuses first/last outside 1..100 on root and nested connections', async () => {
      for (const q of [
        '{ people(first: 0) { totalCount } }',
        '{ people(first: 101) { totalCount } }',
        '{ people(last: 101) { totalCount } }',
        '{ configurationItems(first: 10) { nodes { users(first: 200) { totalCount } } } }',
      ]) {
        const r = await post(q);
        expect(r.status).to.equal(200);
        expect(r.data.errors, q).to.be.an('array');
        expect(r.data.errors[0].message).to.match(/must be between 1 and 100/);
      }
      await gql('{ people(first: 100) { totalCount } }');
    });

    it('refuses requests for more than 500,000 potential nodes', async () => {
      const r = await post('{ people(first: 100) { nodes { configurationItems(first: 100) { nodes { requests(first: 100) { nodes { notes(first: 100) { totalCount } } } } } } } }');
      expect(r.data.errors[0].message).to.equal('Individual calls cannot request more than 500,000 total nodes.');
    });

    it('pages with first/after and reports totalCount, hasNextPage and endCursor; 25 per page by default', async () => {
      const q = 'query($after: String) { people(first: 25, after: $after, filter: {query: "Person "}) { totalCount pageInfo { hasNextPage endCursor } nodes { name } } }';
      const names: string[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const d: Json = await gql(q, { after });
        pages++;
        expect(d.people.totalCount).to.equal(60);
        names.push(...d.people.nodes.map((n: Json) => n.name));
        if (!d.people.pageInfo.hasNextPage) break;
        after = d.people.pageInfo.endCursor;
      }
      expect(pages).to.equal(3);
      expect(names).to.have.length(60);
      expect(new Set(names).size).to.equal(60);
      const dflt = await gql('{ people(filter: {query: "Person "}) { nodes { id } pageInfo { hasNextPage } } }');
      expect(dflt.people.nodes).to.have.length(25);
      expect(dflt.people.pageInfo.hasNextPage).to.equal(true);
    });

    it('finds people by primaryEmail (many values, case-insensitive); view: all adds the directory account', async () => {
      const q = 'query($f: PersonFilter, $v: PersonView) { people(first: 100, view: $v, filter: $f) { nodes { id name primaryEmail account { id } } } }';
      const emails = ['PERSON3@acme.example', 'person7@acme.example', 'dora.directory@acme.example', 'nobody@acme.example'];
      const own = await gql(q, { f: { primaryEmail: { values: emails } } });
      expect(own.people.nodes.map((n: Json) => n.name).sort()).to.deep.equal(['Person 3', 'Person 7']);
      const all = await gql(q, { f: { primaryEmail: { values: emails } }, v: 'all' });
      expect(all.people.nodes.map((n: Json) => n.name).sort()).to.deep.equal(['Dora Directory', 'Person 3', 'Person 7']);
      expect(all.people.nodes.find((n: Json) => n.name === 'Dora Directory').account.id).to.equal(DIRECTORY);
    });

    it('lists products and product categories with filters, and resolves node(id)', async () => {
      const d = await gql(`{
        productCategories(first: 10, filter: {reference: {values: ["computer/laptop_pc"]}}) { nodes { id name group reference } }
        products(first: 10, filter: {productBrand: {values: ["Contoso"]}}) { nodes { id brand model name productCategory { reference } } }
      }`);
      expect(d.productCategories.nodes).to.deep.equal([{ id: category.id, name: 'Laptop PC', group: 'computer', reference: 'computer/laptop_pc' }]);
      expect(d.products.nodes[0]).to.deep.include({ id: product.id, brand: 'Contoso', model: 'Book 1', name: 'Contoso Book 1' });
      const n = await gql('query($id: ID!) { node(id: $id) { id ... on Product { brand } } }', { id: product.id });
      expect(n.node).to.deep.equal({ id: product.id, brand: 'Contoso' });
      const other = await gql('query($id: ID!) { node(id: $id) { id } }', { id: product.id }, headers(PAT, OTHER));
      expect(other.node).to.equal(null);
    });
  });

  describe('discoveredConfigurationItems', () => {
    it('answers with asyncQuery and configurationItems null; the resultUrl gives {} until done, then the mutation result', async () => {
      sim.setAsyncOptions({ delayMs: 60_000, pollsBeforeResult: 2 });
      const submit = (await gql(DISCOVERED, { input: inputOf([ci('async-1'), ci('async-2')]) })).discoveredConfigurationItems;
      expect(submit.configurationItems).to.equal(null);
      expect(submit.errors).to.deep.equal([]);
      expect(submit.asyncQuery.status).to.equal('queued');
      expect(submit.asyncQuery.errorCount).to.equal(null);
      expect(submit.asyncQuery.resultUrl).to.match(new RegExp(`^${sim.url}/async/`));

      const first = await http.get(submit.asyncQuery.resultUrl);
      expect(first.status).to.equal(200);
      expect(first.data).to.deep.equal({});
      expect(sim.account().ciBySource('Intune', 'async-1')).to.equal(undefined); // not applied before the job runs
      expect(sim.completeAsyncJobs()).to.equal(1);
      expect(sim.account().ciBySource('Intune', 'async-1')).to.not.equal(undefined);
      expect((await http.get(submit.asyncQuery.resultUrl)).data).to.deep.equal({}); // done: 1st of 2 extra polls
      expect((await http.get(submit.asyncQuery.resultUrl)).data).to.deep.equal({});
      const done = await http.get(submit.asyncQuery.resultUrl);
      const result = done.data.data.discoveredConfigurationItems;
      expect(result.errors).to.deep.equal([]);
      expect(result.asyncQuery).to.include({ id: submit.asyncQuery.id, status: 'completed', errorCount: 0, resultCount: 2 });
      const stored = ['async-1', 'async-2'].map((s) => sim.account().ciBySource('Intune', s)!);
      expect(result.configurationItems).to.deep.equal(stored.map((c) => ({ id: c.id, sourceID: c.sourceID })));

      const n = await gql('query($id: ID!) { node(id: $id) { ... on AsyncQuery { status errorCount resultCount } } }', { id: submit.asyncQuery.id });
      expect(n.node).to.deep.equal({ status: 'completed', errorCount: 0, resultCount: 2 });
    });

    it('runs a delayed job on its own once the delay has passed, without being polled', async () => {
      sim.setAsyncOptions({ delayMs: 30 });
      await gql(DISCOVERED, { input: inputOf([ci('timer-1')]) });
      expect(sim.pendingAsyncJobs).to.equal(1);
      const deadline = Date.now() + 5000;
      while (sim.pendingAsyncJobs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(sim.pendingAsyncJobs).to.equal(0);
      expect(sim.account().ciBySource('Intune', 'timer-1')).to.not.equal(undefined);
    });

    it('creates a simple product per brand/model in the category and CIs with every field, user and custom field', async () => {
      const [user] = sim.seedPeople([{ name: 'Anders Ravnholt', primaryEmail: 'anders@acme.example' }], DIRECTORY);
      const cf = [
        { id: 'intune_os', value: 'Windows' },
        { id: 'intune_encrypted', value: true },
      ];
      const { result } = await upload(
        inputOf([
          ci('dev-full', {
            name: 'COMPUTERS00015',
            serialNr: 'SN-FULL-1',
            systemID: 'https://endpoint.microsoft.com/#blade/x/dev-full',
            status: 'in_production',
            lastSeenAt: '2022-06-13T10:00:00Z',
            userIds: [user.id],
            customFields: cf,
          }),
        ]),
      );
      expect(result.errors).to.deep.equal([]);
      const acc = sim.account();
      const stored = acc.ciBySource('Intune', 'dev-full')!;
      const prod = acc.product(stored.productId)!;
      expect(prod).to.include({ brand: 'Microsoft Corporation', model: 'Surface Pro 4', source: 'Intune', sourceID: 'microsoft-surface-pro-4' });
      expect(acc.productCategory(prod.categoryId)!.reference).to.equal('computer/laptop_pc');
      expect(stored).to.include({
        name: 'COMPUTERS00015',
        serialNr: 'SN-FULL-1',
        systemID: 'https://endpoint.microsoft.com/#blade/x/dev-full',
        status: 'in_production',
        lastSeenAt: '2022-06-13T10:00:00Z',
        source: 'Intune',
      });
      expect(stored.userIds).to.deep.equal([user.id]);
      expect(stored.customFields).to.deep.equal(cf);
      const d = await gql('query($f: ConfigurationItemFilter) { configurationItems(first: 5, filter: $f) { nodes { name users(first: 5) { nodes { primaryEmail } } customFields { id value } product { brand model } } } }', {
        f: { source: { values: ['Intune'] }, sourceID: { values: ['dev-full'] } },
      });
      expect(d.configurationItems.nodes).to.deep.equal([
        { name: 'COMPUTERS00015', users: { nodes: [{ primaryEmail: 'anders@acme.example' }] }, customFields: cf, product: { brand: 'Microsoft Corporation', model: 'Surface Pro 4' } },
      ]);
    });

    it('adopts an existing CI with the same serial number on first upload, keeping its id', async () => {
      const legacy = sim.seedConfigurationItem({ name: 'Uphill-Surface-Pro4', productId: product.id, serialNr: 'ADOPT-ME-1' });
      const writes = sim.stats.cisAdopted;
      const { result } = await upload(inputOf([ci('dev-adopt', { name: 'COMPUTERS00016', serialNr: 'adopt-me-1 ' })]));
      expect(result.configurationItems).to.deep.equal([{ id: legacy.id, sourceID: 'dev-adopt' }]);
      expect(sim.account().configurationItem(legacy.id)).to.include({ source: 'Intune', sourceID: 'dev-adopt', name: 'COMPUTERS00016' });
      expect(sim.account().ciBySource('Intune', 'dev-adopt')!.id).to.equal(legacy.id);
      expect(sim.stats.cisAdopted - writes).to.equal(1);
      expect(sim.account().cisBySerial('ADOPT-ME-1')).to.have.length(1);
    });

    it('reports per-item errors {path message} in the async result and applies the other items', async () => {
      sim.seedCiCustomFields(['intune_os']);
      try {
        sim.seedConfigurationItem({ name: 'Other-Intune-CI', productId: product.id, serialNr: 'DUP-1', source: 'Intune', sourceID: 'older-enrolment' });
        const input = inputOf([
          ci('ok-1'),
          ci('bad-serial', { serialNr: 'X'.repeat(51) }),
          ci('bad-user', { userIds: ['NG1lLXNpbS50ZXN0L1BlcnNvbi85OTk5OQ'] }),
          ci('bad-cf', { customFields: [{ id: 'not_defined', value: 1 }] }),
          ci('bad-name', { name: '' }),
          ci('ok-2'),
        ]);
        input.physicalAssets[0].products.push({
          sourceID: 'contoso-book-1',
          brand: 'Contoso',
          model: 'Book 1',
          name: 'Contoso Book 1',
          configurationItems: [ci('dup-serial', { serialNr: 'DUP-1' })],
        });
        const { result } = await upload(input);
        const paths = result.errors.map((e: Json) => e.path.join('.'));
        expect(paths).to.deep.equal([
          'physicalAssets.0.products.0.configurationItems.1.serialNr',
          'physicalAssets.0.products.0.configurationItems.2.userIds',
          'physicalAssets.0.products.0.configurationItems.3.customFields',
          'physicalAssets.0.products.0.configurationItems.4.name',
          'physicalAssets.0.products.1.configurationItems.0.serialNr',
        ]);
        expect(result.errors[0].message).to.equal('Serial number is too long (maximum is 50 characters)');
        expect(result.errors[4].message).to.match(/already been taken for brand 'Contoso'/);
        expect(result.asyncQuery.errorCount).to.equal(5);
        expect(result.configurationItems.map((c: Json) => c.sourceID)).to.deep.equal(['ok-1', 'ok-2']);
        for (const s of ['bad-serial', 'bad-user', 'bad-cf', 'bad-name', 'dup-serial']) expect(sim.account().ciBySource('Intune', s), s).to.equal(undefined);
      } finally {
        sim.seedCiCustomFields(null);
      }
    });

    it('refuses more than 100 CIs per call and a blank source in the payload errors, without a job', async () => {
      const jobs = sim.stats.asyncJobs;
      const many = await gql(DISCOVERED, { input: inputOf(Array.from({ length: 101 }, (_, i) => ci(`many-${i}`))) });
      expect(many.discoveredConfigurationItems.asyncQuery).to.equal(null);
      expect(many.discoveredConfigurationItems.errors).to.deep.equal([
        { path: ['physicalAssets'], message: 'At most 100 configuration items can be discovered in one call (got 101)' },
      ]);
      const blankSource = await gql(DISCOVERED, { input: inputOf([ci('x')], { source: ' ' }) });
      expect(blankSource.discoveredConfigurationItems.errors[0].path).to.deep.equal(['source']);
      await upload(inputOf(Array.from({ length: 100 }, (_, i) => ci(`hundred-${i}`))));
      expect(sim.stats.asyncJobs - jobs).to.equal(1);
    });

    it('upserts idempotently by source + sourceID (same ids, no duplicates), updating only what is sent', async () => {
      const cis = Array.from({ length: 5 }, (_, i) => ci(`idem-${i}`, { serialNr: `IDEM-${i}` }));
      const first = await upload(inputOf(cis));
      const count = sim.account().configurationItems.length;
      const created = sim.stats.cisCreated;
      const second = await upload(inputOf(cis));
      expect(second.result.configurationItems).to.deep.equal(first.result.configurationItems);
      expect(sim.account().configurationItems.length).to.equal(count);
      expect(sim.stats.cisCreated).to.equal(created);
      const unchanged = sim.ciWriteLog.slice(-5);
      expect(unchanged.every((w) => !w.created && !w.changed)).to.equal(true);
      cis[2] = { ...cis[2], name: 'RENAMED' };
      await upload(inputOf(cis));
      const changed = sim.ciWriteLog.slice(-5).filter((w) => w.changed);
      expect(changed.map((w) => w.sourceID)).to.deep.equal(['idem-2']);
      expect(sim.account().ciBySource('intune', 'idem-2')!.name).to.equal('RENAMED');
      expect(sim.account().products.filter((p) => p.sourceID === 'microsoft-surface-pro-4')).to.have.length(1);
    });

    it('honours meta.strategy CREATE and the APPEND user strategy', async () => {
      const people = sim.seedPeople([{ name: 'U1', primaryEmail: 'u1@acme.example' }, { name: 'U2', primaryEmail: 'u2@acme.example' }]);
      await upload(inputOf([ci('strat-1', { userIds: [people[0].id] })]));
      await upload(inputOf([ci('strat-1', { userIds: [people[1].id] })], { referenceStrategies: { ciUserIds: { strategy: 'APPEND' } } }));
      expect(sim.account().ciBySource('Intune', 'strat-1')!.userIds).to.deep.equal([people[0].id, people[1].id]);
      await upload(inputOf([ci('strat-1', { userIds: [people[1].id] })]));
      expect(sim.account().ciBySource('Intune', 'strat-1')!.userIds).to.deep.equal([people[1].id]);
      await upload(inputOf([ci('strat-1', { name: 'IGNORED', meta: { strategy: 'CREATE' } })]));
      expect(sim.account().ciBySource('Intune', 'strat-1')!.name).to.equal('DEV-strat-1');
    });

    it('serves 404 for expired and unknown result links', async () => {
      const { submit } = await upload(inputOf([ci('expire-1')]));
      expect((await http.get(submit.asyncQuery.resultUrl)).status).to.equal(200);
      sim.expireAsyncResults();
      expect((await http.get(submit.asyncQuery.resultUrl)).status).to.equal(404);
      sim.setAsyncOptions({ ttlMs: 30 });
      const s2 = (await gql(DISCOVERED, { input: inputOf([ci('expire-2')]) })).discoveredConfigurationItems;
      await new Promise((r) => setTimeout(r, 60));
      expect((await http.get(s2.asyncQuery.resultUrl)).status).to.equal(404);
      expect((await http.get(`${sim.url}/async/nope`)).status).to.equal(404);
      expect(sim.stats.asyncExpiredPolls).to.be.at.least(2);
    });

    it('archives through configurationItemUpdate; active: true hides inactive CIs; removed drops the users', async () => {
      const [u] = sim.seedPeople([{ name: 'Arch User', primaryEmail: 'arch@acme.example' }]);
      await upload(inputOf([ci('arch-1', { userIds: [u.id] }), ci('arch-2', { userIds: [u.id] })]));
      const [a1, a2] = ['arch-1', 'arch-2'].map((s) => sim.account().ciBySource('Intune', s)!);
      const m = 'mutation($input: ConfigurationItemUpdateInput!) { configurationItemUpdate(input: $input) { errors { path message } configurationItem { id status } } }';
      const d = await gql(m, { input: { id: a1.id, status: 'archived' } });
      expect(d.configurationItemUpdate).to.deep.equal({ errors: [], configurationItem: { id: a1.id, status: 'archived' } });
      expect(a1.userIds).to.deep.equal([u.id]);
      await gql(m, { input: { id: a2.id, status: 'removed' } });
      expect(a2.userIds).to.deep.equal([]);
      const q = await gql('{ configurationItems(first: 100, filter: {active: true, sourceID: {values: ["arch-1", "arch-2", "ok-1"]}}) { nodes { sourceID } } }');
      expect(q.configurationItems.nodes.map((n: Json) => n.sourceID)).to.deep.equal(['ok-1']);
      const missing = await gql(m, { input: { id: 'NG1lLXNpbS50ZXN0L0NvbmZpZ3VyYXRpb25JdGVtLzk5OTk5', status: 'archived' } });
      expect(missing.configurationItemUpdate.errors[0].path).to.deep.equal(['id']);
    });
  });

  describe('requests (incidents)', () => {
    const CREATE = `mutation($input: RequestCreateInput!) { requestCreate(input: $input) {
      errors { path message } request { id requestId subject category impact status sourceID requestedFor { id } configurationItems(first: 5) { nodes { id } } notes(first: 5) { nodes { text } } } } }`;
    const UPDATE = 'mutation($input: RequestUpdateInput!) { requestUpdate(input: $input) { errors { path message } request { id status completionReason completedAt notes(first: 10) { totalCount nodes { text } } } } }';
    const OPEN = 'query($f: RequestFilter) { requests(first: 10, filter: $f) { nodes { id sourceID status } } }';

    it('creates an incident linked to the CI and the person, finds it open by sourceID, completes it with a note', async () => {
      await upload(inputOf([ci('inc-dev')]));
      const device = sim.account().ciBySource('Intune', 'inc-dev')!;
      const [person] = sim.seedPeople([{ name: 'Incident User', primaryEmail: 'inc@acme.example' }]);
      const sourceID = 'inc-dev:policy-1';
      const noImpact = await gql(CREATE, { input: { subject: 'Noncompliant', category: 'incident', sourceID } });
      expect(noImpact.requestCreate.request).to.equal(null);
      expect(noImpact.requestCreate.errors[0].path).to.deep.equal(['impact']);
      expect(sim.account().requestsBySourceID(sourceID)).to.have.length(0);

      const d = await gql(CREATE, {
        input: { subject: 'Noncompliant', category: 'incident', impact: 'low', source: 'Intune', sourceID, configurationItemIds: [device.id], requestedForId: person.id, note: 'Policy X: Firewall' },
      });
      const req = d.requestCreate.request;
      expect(d.requestCreate.errors).to.deep.equal([]);
      expect(req).to.deep.include({ category: 'incident', impact: 'low', status: 'assigned', sourceID, requestedFor: { id: person.id } });
      expect(req.configurationItems.nodes).to.deep.equal([{ id: device.id }]);
      expect(req.notes.nodes).to.deep.equal([{ text: 'Policy X: Firewall' }]);

      const openFilter = { sourceID: { values: [sourceID] }, status: { values: ['completed'], negate: true } };
      expect((await gql(OPEN, { f: openFilter })).requests.nodes.map((n: Json) => n.id)).to.deep.equal([req.id]);

      const noReason = await gql(UPDATE, { input: { id: req.id, status: 'completed' } });
      expect(noReason.requestUpdate.errors[0].path).to.deep.equal(['completionReason']);
      const done = await gql(UPDATE, { input: { id: req.id, status: 'completed', completionReason: 'solved', note: 'Compliant again' } });
      expect(done.requestUpdate.request).to.deep.include({ status: 'completed', completionReason: 'solved' });
      expect(done.requestUpdate.request.completedAt).to.match(/^\d{4}-\d{2}-\d{2}T/);
      expect(done.requestUpdate.request.notes.nodes.map((n: Json) => n.text)).to.deep.equal(['Policy X: Firewall', 'Compliant again']);
      expect((await gql(OPEN, { f: openFilter })).requests.nodes).to.deep.equal([]);
      expect(sim.account().request(req.id)!.status).to.equal('completed');
    });

    it('adds notes with noteCreate and refuses links to removed CIs', async () => {
      const r = sim.seedRequest({ subject: 'Seeded', category: 'incident', impact: 'medium', sourceID: 'seed:1' });
      const n = await gql('mutation($input: NoteCreateInput!) { noteCreate(input: $input) { errors { path message } note { id text internal } } }', {
        input: { ownerId: r.id, text: 'internal remark', internal: true },
      });
      expect(n.noteCreate.note).to.include({ text: 'internal remark', internal: true });
      expect(sim.account().request(r.id)!.notes.map((x) => x.text)).to.deep.equal(['internal remark']);
      const removed = sim.seedConfigurationItem({ name: 'Gone', productId: product.id, status: 'removed' });
      const bad = await gql(CREATE, { input: { subject: 'x', category: 'incident', impact: 'low', configurationItemIds: [removed.id] } });
      expect(bad.requestCreate.errors[0].message).to.match(/status Removed/);
    });
  });

  describe('rate limits', () => {
    it('puts x-ratelimit-*, x-costlimit-* and x-request-id on every answer', async () => {
      const t0 = Math.floor(Date.now() / 1000);
      const a = await post('{ people(first: 100) { nodes { id } } }');
      const b = await post('{ me { id } }');
      for (const r of [a, b]) {
        expect(r.headers['x-ratelimit-limit']).to.equal('3600');
        expect(Number(r.headers['x-ratelimit-reset'])).to.be.within(t0 + 3590, t0 + 3610);
        expect(r.headers['x-costlimit-limit']).to.equal('5000');
        expect(Number(r.headers['x-costlimit-reset'])).to.be.within(t0 + 3590, t0 + 3610);
        expect(r.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
      }
      expect(Number(a.headers['x-ratelimit-remaining']) - Number(b.headers['x-ratelimit-remaining'])).to.equal(1);
      expect(a.headers['x-costlimit-cost']).to.equal('1');
      expect(Number(a.headers['x-costlimit-remaining']) - Number(b.headers['x-costlimit-remaining'])).to.equal(Number(b.headers['x-costlimit-cost']));
      const big = await post('{ people(first: 100) { nodes { configurationItems(first: 100) { totalCount } } } }');
      expect(big.headers['x-costlimit-cost']).to.equal('101');
    });

    it('answers 429 with Retry-After past the burst limit, and without it when switched off', async () => {
      sim.setLimits({ burstRequests: 3, burstWindowMs: 10_000 });
      for (let i = 0; i < 3; i++) expect((await post('{ me { id } }')).status).to.equal(200);
      const r = await post('{ me { id } }');
      expect(r.status).to.equal(429);
      expect(Number(r.headers['retry-after'])).to.be.within(1, 10);
      expect(r.headers['x-ratelimit-remaining']).to.be.a('string');
      expect(r.data.errors[0].message).to.equal('Too Many Requests');
      sim.setRetryAfter(false);
      const r2 = await post('{ me { id } }');
      expect(r2.status).to.equal(429);
      expect(r2.headers['retry-after']).to.equal(undefined);
      expect(sim.stats.throttledBy.burst).to.be.at.least(2);
    });

    it('enforces the hourly request budget and the cost budget per credential', async () => {
      sim.setLimits({ hourlyRequests: 2 });
      await gql('{ me { id } }');
      const last = await post('{ me { id } }');
      expect(last.headers['x-ratelimit-remaining']).to.equal('0');
      const over = await post('{ me { id } }');
      expect(over.status).to.equal(429);
      expect(Number(over.headers['retry-after'])).to.be.within(3500, 3600);
      // Another credential has its own budget.
      expect((await post('{ me { id } }', undefined, headers(PAT_ACME_ONLY))).status).to.equal(200);

      sim.resetThrottling();
      sim.setLimits({ hourlyRequests: 3600, costPoints: 3 });
      const c1 = await post('{ people(first: 100) { nodes { configurationItems(first: 100) { totalCount } } } }'); // cost 101
      expect(c1.status).to.equal(200);
      expect(c1.headers['x-costlimit-remaining']).to.equal('0');
      const c2 = await post('{ me { id } }');
      expect(c2.status).to.equal(429);
      expect(Number(c2.headers['retry-after'])).to.be.above(3000);
      expect(sim.stats.throttledBy.cost).to.be.at.least(1);
    });

    it('throttleNext answers 429 for the matching operation only, with or without Retry-After', async () => {
      sim.throttleNext(1, { operation: 'requestCreate', retryAfter: null });
      sim.throttleNext(1, { retryAfter: 7 });
      const other = await post('{ me { id } }');
      expect(other.status).to.equal(429);
      expect(other.headers['retry-after']).to.equal('7');
      const create = await post('mutation { requestCreate(input: {subject: "x"}) { errors { message } } }');
      expect(create.status).to.equal(429);
      expect(create.headers['retry-after']).to.equal(undefined);
      expect((await post('mutation { requestCreate(input: {subject: "x"}) { errors { message } } }')).status).to.equal(200);
    });
  });

  describe('faults, stats and lifecycle', () => {
    it('failNext answers 503 (with Retry-After when asked), dropNext drops the connection', async () => {
      sim.failNext(1, { retryAfter: 3 });
      const r = await post('{ me { id } }');
      expect(r.status).to.equal(503);
      expect(r.headers['retry-after']).to.equal('3');
      const submit = (await gql(DISCOVERED, { input: inputOf([ci('fault-1')]) })).discoveredConfigurationItems;
      sim.failNext(1, { route: 'async', status: 500 });
      expect((await http.get(submit.asyncQuery.resultUrl)).status).to.equal(500);
      expect((await http.get(submit.asyncQuery.resultUrl)).data.data.discoveredConfigurationItems.configurationItems).to.have.length(1);
      sim.dropNext(1, { operation: 'people' });
      let err: Error | undefined;
      await post('{ people(first: 1) { totalCount } }').catch((e) => (err = e));
      expect(err).to.be.instanceOf(Error);
      expect(err!.message).to.match(/socket hang up|ECONNRESET|aborted/i);
      expect(sim.stats.faults).to.include({ status: 2, dropped: 1 });
      expect((await post('{ people(first: 1) { totalCount } }')).status).to.equal(200);
    });

    it('counts requests by operation name, mutations, CI writes and polls, and logs what was sent', async () => {
      sim.resetStats();
      await gql('query FindPeople { people(first: 1) { totalCount } }');
      sim.setAsyncOptions({ pollsBeforeResult: 1 });
      const { polls } = await upload(inputOf([ci('stats-1'), ci('stats-2')]));
      const s = sim.stats;
      expect(s.byOperation).to.deep.equal({ FindPeople: 1, Upload: 1 });
      expect(s.byRootField).to.deep.equal({ 'query.people': 1, 'mutation.discoveredConfigurationItems': 1 });
      expect(s.mutations).to.deep.equal({ discoveredConfigurationItems: 1 });
      expect(s.cisWritten).to.equal(2);
      expect(s.discoveredItemsReceived).to.equal(2);
      expect(polls).to.equal(2);
      expect(s.asyncPolls).to.equal(2);
      expect(s.asyncPollsPending).to.equal(1);
      const op = sim.operationLog[sim.operationLog.length - 1];
      expect(op.operationName).to.equal('Upload');
      expect((op.variables.input as Json).physicalAssets[0].products[0].configurationItems).to.have.length(2);
      expect(sim.requestLog.map((e) => e.route)).to.deep.equal(['graphql', 'graphql', 'async', 'async']);
      expect(sim.ciWriteLog.map((w) => w.sourceID)).to.deep.equal(['stats-1', 'stats-2']);
    });

    it('stop() closes keep-alive connections at once and pending async jobs do not run later', async () => {
      const s2 = new FourMeSim({ tls: pki.server, accounts: [{ id: 'a' }], personalAccessTokens: [{ token: 't' }], async: { delayMs: 1000 } });
      await s2.start();
      const agent = createHttpsAgent({ ca: pki.certPem });
      const h2 = createAxios(agent, 5000);
      const r = await h2.post(s2.graphqlUrl, { query: DISCOVERED, variables: { input: inputOf([ci('late')]) } }, { headers: { authorization: 'Bearer t', 'x-4me-account': 'a' } });
      expect(r.data.data.discoveredConfigurationItems.asyncQuery.status).to.equal('queued');
      expect(s2.pendingAsyncJobs).to.equal(1);
      const t0 = Date.now();
      await s2.stop();
      expect(Date.now() - t0).to.be.below(1000);
      await new Promise((res) => setTimeout(res, 1200)); // past the job's delay
      expect(s2.account().configurationItems).to.have.length(0);
      agent.destroy();
    });
  });
});
