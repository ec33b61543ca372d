/**
 * The 4me sink's services without Node-RED: the GraphQL documents against
 * the schema subset, endpoints, the device → CI mapping, and the client's
 * pacing, budgets, Retry-After handling, OAuth renewal and abort against
 * the simulated 4me.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { buildSchema, parse, validate, Kind, type OperationDefinitionNode } from 'graphql';
import { sharedTestCa } from '../sim/pki';
import { FourMeSim } from '../sim/fourme';
import { OPS, PEOPLE_GROUPS_PER_REQUEST, peopleByEmailGroups } from '../nodes/lib/fourme/fourme-operations';
import { PeopleDirectory } from '../nodes/lib/fourme/fourme-people';
import { resolveEndpoints, EndpointError, accountIdProblem } from '../nodes/lib/fourme/fourme-endpoints';
import { FourMeClient, FourMeError, FourMeStats, isAbort } from '../nodes/lib/fourme/fourme-client';
import {
  ATTRIBUTE_KEYS,
  DEFAULT_CUSTOM_FIELDS,
  buildBatch,
  defaultMappingSettings,
  locateError,
  mapDevice,
  parseCiMappingSettings,
  platformKey,
} from '../nodes/lib/fourme/fourme-ci-mapping';
import { interpretPayload } from '../nodes/lib/fourme/fourme-ci-sync';
import { incidentNote, incidentSubject } from '../nodes/lib/fourme/fourme-incidents';
import { makeDevice, makeViolation } from './support/device-fixtures';

/** The reference schema: the sim's verbatim copy in the repository (a plain clone has nothing beside it). */
function schemaText(): string {
  const candidates = [
    path.join(__dirname, '..', 'sim', 'fourme-schema.graphql'),
    path.join(__dirname, '..', '..', 'sim', 'fourme-schema.graphql'),
  ];
  for (const c of candidates) if (fs.existsSync(c)) return fs.readFileSync(c, 'utf8');
  throw new Error('4me schema not found');
}

const PAT = 'pat-lib-test-0123456789';
const CLIENT = { clientId: 'lib-client', clientSecret: 'lib-secret-value-0123' };

/** A file of the package: beside the compiled node (assembled build), or in the repository. */
function packageFile(node: string, ...rel: string[]): string {
  const candidates = [
    path.join(__dirname, '..', 'nodes', node, ...rel),
    path.join(__dirname, '..', '..', 'dist', 'nodes', node, ...rel),
    path.join(__dirname, '..', '..', ...(rel[0] === 'locales' ? rel : ['nodes', node, ...rel])),
  ];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`${rel.join('/')} of ${node} not found`);
}

describe('intune-4me services', function () {
  this.timeout(30_000);

  describe('editor and catalogs', () => {
    for (const node of ['intune-4me-config', 'intune-4me']) {
      it(`${node}: every key the editor uses exists in English and German, and both catalogs have the same keys`, () => {
        const html = fs.readFileSync(packageFile(node, `${node}.html`), 'utf8');
        const flat = (o: Record<string, unknown>, pre = ''): string[] =>
          Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? flat(v as Record<string, unknown>, `${pre}${k}.`) : [`${pre}${k}`]));
        const en = new Set(flat(JSON.parse(fs.readFileSync(packageFile(node, 'locales', 'en-US', `${node}.json`), 'utf8'))));
        const de = new Set(flat(JSON.parse(fs.readFileSync(packageFile(node, 'locales', 'de', `${node}.json`), 'utf8'))));
        expect([...en].filter((k) => !de.has(k)), 'missing in German').to.deep.equal([]);
        expect([...de].filter((k) => !en.has(k)), 'missing in English').to.deep.equal([]);
        const used = new Set<string>();
        for (const m of html.matchAll(new RegExp(`(?:data-i18n="(?:\\[[a-z]+\\])?|\\b(?:t|msg)\\(")(${node}\\.[A-Za-z0-9_.]+)`, 'g'))) used.add(m[1]);
        expect(used.size).to.be.greaterThan(20);
        // "prefix." + value: the family must exist
        for (const k of [...used].filter((x) => x.endsWith('.'))) expect([...en].some((e) => e.startsWith(k)), k).to.equal(true);
        expect([...used].filter((k) => !k.endsWith('.') && !en.has(k)), 'used but not in the catalog').to.deep.equal([]);
        if (node === 'intune-4me-config') {
          // every code "Verify connection" can answer has a text
          for (const code of ['ok', 'invalidConfig', 'authFailed', 'forbidden', 'notFound', 'unreachable', 'tlsError', 'throttled', 'aborted', 'unexpected']) {
            expect(en.has(`${node}.verify.${code}`), code).to.equal(true);
          }
        } else {
          for (const p of ['windows', 'macos', 'linux', 'ios', 'ipados', 'android', 'other']) expect(en.has(`${node}.platform.${p}`), p).to.equal(true);
          for (const a of ATTRIBUTE_KEYS) expect(en.has(`${node}.attribute.${a}`), a).to.equal(true);
        }
        for (const lang of ['en-US', 'de']) {
          const help = fs.readFileSync(packageFile(node, 'locales', lang, `${node}.html`), 'utf8');
          expect(help).to.include(`data-help-name="${node}"`);
        }
      });
    }
  });

  describe('GraphQL documents', () => {
    const schema = buildSchema(schemaText());
    const docs: Array<[string, string]> = [...Object.entries(OPS), ...[1, 2, PEOPLE_GROUPS_PER_REQUEST].map((n): [string, string] => [`peopleByEmailGroups(${n})`, peopleByEmailGroups(n)])];
    for (const [name, doc] of docs) {
      it(`${name} is valid against the schema subset and follows its conventions`, () => {
        const ast = parse(doc);
        expect(validate(schema, ast).map((e) => e.message)).to.deep.equal([]);
        const op = ast.definitions[0] as OperationDefinitionNode;
        for (const v of op.variableDefinitions ?? []) {
          const typeName = JSON.stringify(v.type);
          expect(typeName, 'placeholder filter types must not be declared').to.not.match(/"(StringFilter|IDFilter|ISO8601TimestampFilter|ISO8601DateFilter|NumberFilter)"/);
        }
        if (op.operation === 'mutation') expect(doc.replace(/\s+/g, ' ')).to.include('errors { path message }');
        // every connection asks for at most 100
        for (const m of doc.matchAll(/first:\s*(\d+)/g)) expect(Number(m[1])).to.be.within(1, 100);
        expect(op.kind).to.equal(Kind.OPERATION_DEFINITION);
      });
    }
  });

  describe('endpoints', () => {
    const cases: Array<[Record<string, string>, string, string, string]> = [
      [{ environment: 'production', region: 'global', brand: '4me' }, 'https://graphql.4me.com', 'https://oauth.4me.com/token', 'X-4me-Account'],
      [{ environment: 'production', region: 'au', brand: '4me' }, 'https://graphql.au.4me.com', 'https://oauth.au.4me.com/token', 'X-4me-Account'],
      [{ environment: 'qa', region: 'ch', brand: '4me' }, 'https://graphql.ch.4me.qa', 'https://oauth.ch.4me.qa/token', 'X-4me-Account'],
      [{ environment: 'demo', region: 'global', brand: '4me' }, 'https://graphql.4me-demo.com', 'https://oauth.4me-demo.com/token', 'X-4me-Account'],
      [{ environment: 'production', region: 'us', brand: 'xurrent' }, 'https://graphql.us.xurrent.com', 'https://oauth.us.xurrent.com/token', 'X-Xurrent-Account'],
      [{ environment: 'qa', region: 'global', brand: 'xurrent' }, 'https://graphql.xurrent.qa', 'https://oauth.xurrent.qa/token', 'X-Xurrent-Account'],
      [{ environment: 'demo', region: 'global', brand: 'xurrent' }, 'https://graphql.xurrent-demo.com', 'https://oauth.xurrent-demo.com/token', 'X-Xurrent-Account'],
    ];
    for (const [s, g, o, h] of cases) {
      it(`${s.environment}/${s.region}/${s.brand} → ${g}`, () => {
        const e = resolveEndpoints(s);
        expect([e.graphqlUrl, e.tokenUrl, e.accountHeader]).to.deep.equal([g, o, h]);
      });
    }
    it('refuses what does not exist, in plain words', () => {
      expect(() => resolveEndpoints({ environment: 'demo', region: 'uk' })).to.throw(EndpointError, /demo environment exists only in the global region/);
      expect(() => resolveEndpoints({ environment: 'staging' })).to.throw(/production, qa, demo, custom/);
      expect(() => resolveEndpoints({ environment: 'custom', graphqlUrl: 'http://127.0.0.1/graphql' })).to.throw(/must start with https/);
      expect(() => resolveEndpoints({ environment: 'custom' })).to.throw(/GraphQL URL is required/);
      expect(() => resolveEndpoints({ environment: 'custom', graphqlUrl: 'https://x.example/graphql?a=1' })).to.throw(/query/);
      expect(resolveEndpoints({ environment: 'custom', graphqlUrl: 'https://proxy.example/graphql/' }).graphqlUrl).to.equal('https://proxy.example/graphql');
      expect(accountIdProblem('')).to.match(/required/);
      expect(accountIdProblem('wid get')).to.match(/letters, digits and hyphens/);
      expect(accountIdProblem('widget-it')).to.equal(null);
    });
  });

  describe('device → discovered CI', () => {
    const s = defaultMappingSettings();

    it('maps every field of the seed\u2019s CI attribute table to its custom field', () => {
      const d = makeDevice(1, { storage: { totalBytes: 252 * 1024 ** 3, freeBytes: 150.4 * 1024 ** 3 } });
      const m = mapDevice(d, s, 'person-1');
      expect(m.ci).to.deep.include({
        sourceID: d.id,
        name: d.name,
        serialNr: d.serialNumber,
        systemID: d.deepLinks.overview,
        status: 'in_production',
        lastSeenAt: d.lastContactAt,
        userIds: ['person-1'],
      });
      const cf = Object.fromEntries(m.ci.customFields!.map((f) => [f.id, f.value]));
      expect(cf).to.deep.equal({
        [DEFAULT_CUSTOM_FIELDS.os]: 'Windows',
        [DEFAULT_CUSTOM_FIELDS.osVersion]: '10.0.22631.3447',
        [DEFAULT_CUSTOM_FIELDS.osSku]: 'Windows 11 Enterprise (4)',
        [DEFAULT_CUSTOM_FIELDS.storageTotal]: 252,
        [DEFAULT_CUSTOM_FIELDS.storageFree]: 150,
        [DEFAULT_CUSTOM_FIELDS.enrolled]: '2024-01-15',
        [DEFAULT_CUSTOM_FIELDS.lastContact]: '2024-06-01',
        [DEFAULT_CUSTOM_FIELDS.aadRegistered]: true,
        [DEFAULT_CUSTOM_FIELDS.joinType]: 'AzureADJoined',
        [DEFAULT_CUSTOM_FIELDS.ownership]: 'Company',
        [DEFAULT_CUSTOM_FIELDS.compliance]: 'Compliant',
        [DEFAULT_CUSTOM_FIELDS.encrypted]: true,
        [DEFAULT_CUSTOM_FIELDS.jailbroken]: 'Unknown',
      });
      expect(ATTRIBUTE_KEYS).to.have.length(13);
      expect(m.product).to.deep.include({ b: 'Microsoft Corporation', m: 'Surface Pro 9', n: 'Microsoft Corporation Surface Pro 9', c: 'computer/windows_pc' });
      expect(m.personMatched).to.equal(true);
    });

    it('leaves out what 4me would refuse, sends null for unknown attributes, and takes configured field ids', () => {
      const d = makeDevice(2, { serialNumber: 'X'.repeat(51), manufacturer: null, model: null, storage: { totalBytes: null, freeBytes: null }, encrypted: null, user: null });
      const s2 = parseCiMappingSettings({ cf_os: 'os_name', cf_osSku: '', cf_encrypted: 'bitlocker' });
      const m = mapDevice(d, s2, undefined);
      expect(m.ci.serialNr).to.equal(undefined);
      expect(m.notes.join()).to.match(/serial number longer than 50/);
      expect(m.ci.userIds).to.equal(undefined);
      expect(m.personMatched).to.equal(null);
      const ids = m.ci.customFields!.map((f) => f.id);
      expect(ids).to.include('os_name').and.include('bitlocker').and.not.include(DEFAULT_CUSTOM_FIELDS.osSku);
      expect(m.ci.customFields!.find((f) => f.id === 'bitlocker')!.value).to.equal(null);
      expect(m.product).to.deep.include({ b: 'Unknown', m: 'Unknown' });
      expect(() => parseCiMappingSettings({ category_windows_ref: 'Computers' })).to.throw(/group\/name/);
      expect(() => parseCiMappingSettings({ source: 'x'.repeat(31) })).to.throw(/30 characters/);
      expect(() => parseCiMappingSettings({ ciStatus: 'archived' })).to.throw(/active one/);
    });

    it('the fingerprint changes exactly when a mapped value changes', () => {
      const d = makeDevice(3);
      const a = mapDevice(d, s, 'p1').fingerprint;
      expect(mapDevice({ ...d }, s, 'p1').fingerprint).to.equal(a);
      expect(mapDevice({ ...d, imei: '123' }, s, 'p1').fingerprint, 'IMEI is not mapped').to.equal(a);
      expect(mapDevice({ ...d, os: { ...d.os, version: '17.5' } }, s, 'p1').fingerprint).to.not.equal(a);
      expect(mapDevice(d, s, 'p2').fingerprint, 'another person').to.not.equal(a);
      expect(mapDevice(d, s, null).fingerprint, 'person gone').to.not.equal(a);
    });

    it('the person relation: replaced by default (cleared when nobody matches), appended on request', () => {
      const d = makeDevice(4);
      expect(mapDevice(d, s, null).ci.userIds, 'replace: nobody found clears').to.deep.equal([]);
      expect(mapDevice(d, s, 'p9').ci.userIds).to.deep.equal(['p9']);
      expect(mapDevice(d, s, undefined).ci.userIds, 'not matching people').to.equal(undefined);
      expect(buildBatch([{ sourceID: d.id, ci: mapDevice(d, s, 'p9').ci, product: mapDevice(d, s, 'p9').product }], s).input.referenceStrategies).to.deep.equal({ ciUserIds: { strategy: 'REPLACE' } });
      const a = parseCiMappingSettings({ userStrategy: 'append' });
      expect(mapDevice(d, a, null).ci.userIds, 'append: users added in 4me stay').to.equal(undefined);
      expect(buildBatch([{ sourceID: d.id, ci: mapDevice(d, a, 'p9').ci, product: mapDevice(d, a, 'p9').product }], a).input.referenceStrategies).to.deep.equal({ ciUserIds: { strategy: 'APPEND' } });
    });

    it('platforms', () => {
      const k = (name: string) => platformKey({ os: { name, version: null, sku: null } });
      expect(['Windows', 'macOS', 'iOS', 'iPadOS', 'Android', 'AndroidEnterprise', 'Linux', 'ChromeOS', ''].map(k)).to.deep.equal([
        'windows',
        'macos',
        'ios',
        'ipados',
        'android',
        'android',
        'linux',
        'other',
        'other',
      ]);
    });

    it('batches group CIs by category and product, and error paths lead back to the device', () => {
      const devs = [1, 2, 3, 4, 5, 6].map((n) => makeDevice(n));
      const items = devs.map((d) => {
        const m = mapDevice(d, s, null);
        return { sourceID: m.sourceID, ci: m.ci, product: m.product };
      });
      const b = buildBatch(items, s);
      const assets = b.input.physicalAssets as Array<{ reference: string; products: Array<{ configurationItems: unknown[] }> }>;
      expect(assets.map((a) => a.reference).sort()).to.deep.equal(['computer/windows_pc', 'mobile_device/iphone']);
      expect(b.sourceIDs).to.have.members(devs.map((d) => d.id));
      const iphoneCat = assets.findIndex((a) => a.reference === 'mobile_device/iphone');
      const second = b.index[iphoneCat][0][1];
      expect(locateError(b, ['physicalAssets', String(iphoneCat), 'products', '0', 'configurationItems', '1', 'serialNr'])).to.deep.equal([second]);
      expect(locateError(b, ['physicalAssets', String(iphoneCat), 'products', '0', 'brand'])).to.have.length(2);
      expect(locateError(b, ['source'])).to.have.length(6);
      // a precise error fails only its CI, even when 4me confirmed the others
      const res = interpretPayload(
        b,
        {
          configurationItems: b.sourceIDs.filter((x) => x !== second).map((x, i) => ({ id: `ci-${i}`, sourceID: x })),
          errors: [{ path: ['physicalAssets', String(iphoneCat), 'products', '0', 'configurationItems', '1', 'serialNr'], message: 'Serial number has already been taken' }],
        },
        false,
      );
      expect([...res.values()].filter((r) => !r.ok)).to.deep.equal([
        { ok: false, error: 'Serial number has already been taken', path: ['physicalAssets', String(iphoneCat), 'products', '0', 'configurationItems', '1', 'serialNr'] },
      ]);
      expect(() => buildBatch(new Array(101).fill(items[0]), s)).to.throw(/at most 100/);
    });

    it('incident texts name the device, the policy, the failing settings and the Intune link, in English and German', () => {
      const d = makeDevice(7);
      const v = makeViolation(d, { id: 'pol-1', name: 'Windows 11 baseline' }, [
        { name: 'Antivirus', state: 'nonCompliant', currentValue: 'Off', errorCode: null, errorDescription: null },
        { name: 'BitLocker', state: 'error', currentValue: null, errorCode: -2016281112, errorDescription: 'Remediation failed' },
      ]);
      const en = incidentNote(v, 'en');
      expect(en).to.include('Windows 11 baseline').and.include('- Antivirus: nonCompliant, current value: Off').and.include('Remediation failed (-2016281112)').and.include(d.deepLinks.compliance);
      expect(incidentSubject(v, 'de')).to.equal(`Intune-Compliance: ${d.name} erfüllt „Windows 11 baseline“ nicht`);
      expect(incidentNote(v, 'de')).to.include('Nicht erfüllte Einstellungen:').and.include('aktueller Wert: Off');
    });
  });

  describe('client against the simulated 4me', () => {
    const pki = sharedTestCa();
    let sim: FourMeSim;
    const clients: FourMeClient[] = [];
    const client = (o: Partial<ConstructorParameters<typeof FourMeClient>[0]> = {}) => {
      const c = new FourMeClient({
        endpoints: { graphqlUrl: sim.graphqlUrl, tokenUrl: sim.tokenUrl, accountHeader: 'X-4me-Account', domain: '' },
        accountId: 'acme',
        auth: { kind: 'token', token: PAT },
        ca: pki.certPem,
        asyncPollMs: 20,
        ...o,
      });
      clients.push(c);
      return c;
    };
    const ME = 'query LibMe { me { id name } }';

    beforeEach(async () => {
      sim = new FourMeSim({
        tls: pki.server,
        accounts: [{ id: 'acme' }],
        personalAccessTokens: [{ token: PAT }],
        oauthClients: [CLIENT],
        limits: { burstRequests: 5, burstWindowMs: 500 },
      });
      await sim.start();
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) c.close();
      await sim.stop();
    });

    it('stays under the burst limit over ANY window, with many calls at once', async () => {
      // The service's own limit, 5 per 500 ms: 4me counts arrivals, so our window runs from send to answer + 500 ms.
      const c = client({ burst: { requests: 5, windowMs: 500 }, maxConcurrent: 8 });
      const started = Date.now();
      await Promise.all(Array.from({ length: 21 }, () => c.graphql(ME)));
      const took = Date.now() - started;
      expect(sim.stats.throttled, '429s').to.equal(0);
      // 21 calls, 5 per 500 ms: the 21st cannot start before 4 windows have passed
      expect(took).to.be.at.least(2000);
      const times = sim.requestLog.filter((r) => r.route === 'graphql').map((r) => Date.parse(r.at)).sort((a, b) => a - b);
      expect(times).to.have.length(21);
      for (let i = 0; i + 5 < times.length; i++) expect(times[i + 5] - times[i], `window at ${i}`).to.be.at.least(500);
    });

    it('waits for the hourly request budget to reset instead of running into 429', async () => {
      sim.setLimits({ burstRequests: 100, hourlyRequests: 8, hourlyWindowMs: 1500 });
      const waits: string[] = [];
      const stats = new FourMeStats({ onWait: (_ms, why) => waits.push(why) });
      const c = client({ burst: { requests: 100, windowMs: 1000 }, requestReserve: 2, maxConcurrent: 1 });
      for (let i = 0; i < 12; i++) await c.graphql(ME, {}, { stats });
      expect(sim.stats.throttledBy.hourly, '429 for the hourly budget').to.equal(0);
      expect(waits).to.include('requestBudget');
      expect(stats.requests).to.equal(12);
    });

    it('waits for the cost budget too', async () => {
      sim.setLimits({ burstRequests: 100, costPoints: 6, costWindowMs: 1500 });
      const waits: string[] = [];
      const stats = new FourMeStats({ onWait: (_ms, why) => waits.push(why) });
      const c = client({ burst: { requests: 100, windowMs: 1000 }, costReserve: 1, maxConcurrent: 1 });
      for (let i = 0; i < 9; i++) await c.graphql(ME, {}, { stats });
      expect(sim.stats.throttledBy.cost, '429 for the cost budget').to.equal(0);
      expect(waits).to.include('costBudget');
      expect(stats.cost).to.equal(9);
    });

    it('honours Retry-After on 429 and 503, and waits the configured fallback when it is missing', async () => {
      const c = client({ retryAfterFallbackMs: 400, burst: { requests: 5, windowMs: 500 } });
      const stats = new FourMeStats();
      sim.throttleNext(1, { retryAfter: null });
      let t = Date.now();
      await c.graphql(ME, {}, { stats });
      expect(Date.now() - t).to.be.at.least(380);
      sim.throttleNext(1, { retryAfter: 1 });
      t = Date.now();
      await c.graphql(ME, {}, { stats });
      expect(Date.now() - t).to.be.at.least(980);
      sim.failNext(1, { status: 503, route: 'graphql' });
      await c.graphql(ME, {}, { stats });
      expect(stats.retries).to.equal(3);
      expect(stats.throttled).to.equal(3);
    });

    it('gives up after its retries and says why', async () => {
      const c = client({ retryAfterFallbackMs: 10, maxRetries: 2 });
      sim.throttleNext(5, { retryAfter: null });
      const err = await c.graphql(ME).catch((e) => e);
      expect(err).to.be.instanceOf(FourMeError);
      expect(err.kind).to.equal('throttled');
      expect(err.message).to.match(/kept answering HTTP 429 after 3 attempts/);
      sim.clearFaults();
    });

    it('OAuth: one token for concurrent calls, renewed before it expires and after a 401', async () => {
      await sim.stop();
      sim = new FourMeSim({ tls: pki.server, accounts: [{ id: 'acme' }], oauthClients: [CLIENT], tokenLifetimeSec: 3 });
      await sim.start();
      const c = client({ auth: { kind: 'oauth', ...CLIENT } });
      await Promise.all(Array.from({ length: 6 }, () => c.graphql(ME)));
      expect(sim.stats.tokensIssued, 'one token for six calls').to.equal(1);
      await new Promise((r) => setTimeout(r, 1700)); // past half of the 3 s lifetime
      await c.graphql(ME);
      expect(sim.stats.tokensIssued, 'renewed before expiry').to.equal(2);
      expect(sim.stats.unauthorized).to.equal(0);
      sim.expireTokens();
      await c.graphql(ME);
      expect(sim.stats.tokensIssued, 'renewed after 401').to.equal(3);
      expect(sim.stats.unauthorized).to.equal(1);
    });

    it('wrong credentials: plain words, no secret', async () => {
      const bad = client({ auth: { kind: 'token', token: 'pat-wrong-secret-value' } });
      const e1 = await bad.graphql(ME).catch((e) => e);
      expect(e1.kind).to.equal('auth');
      expect(e1.message).to.match(/did not accept the personal access token/).and.not.include('pat-wrong-secret-value');
      const o = client({ auth: { kind: 'oauth', clientId: CLIENT.clientId, clientSecret: 'wrong-secret-xyz' } });
      const e2 = await o.graphql(ME).catch((e) => e);
      expect(e2.kind).to.equal('auth');
      expect(e2.message).to.match(/refused the OAuth client credentials/).and.not.include('wrong-secret-xyz');
      const acc = client({ accountId: 'globex' });
      const e3 = await acc.graphql(ME).catch((e) => e);
      expect(e3.message).to.match(/Unknown account 'globex'/);
    });

    it('close() ends a throttled wait at once', async () => {
      const c = client({ retryAfterFallbackMs: 30_000 });
      sim.throttleNext(1, { retryAfter: null });
      const p = c.graphql(ME).catch((e) => e);
      await new Promise((r) => setTimeout(r, 200));
      const t = Date.now();
      c.close();
      const err = await p;
      expect(isAbort(err)).to.equal(true);
      expect(Date.now() - t).to.be.below(200);
    });

    it('a caller that gives up while queued behind a long wait leaves at once; the others keep waiting', async () => {
      const c = client({ retryAfterFallbackMs: 30_000 });
      sim.throttleNext(1, { retryAfter: null });
      const first = c.graphql(ME).catch((e) => e);
      // first gets its 429 and holds everyone back for 30 s (waited for, not timed: CI machines are busy)
      for (let i = 0; i < 100 && sim.stats.throttled < 1; i++) await new Promise((r) => setTimeout(r, 20));
      expect(sim.stats.throttled, 'the first call was throttled').to.equal(1);
      await new Promise((r) => setTimeout(r, 100));
      const ctl = new AbortController();
      const second = c.graphql(ME, {}, { signal: ctl.signal }).catch((e) => e);
      const third = c.graphql(ME).catch((e) => e);
      await new Promise((r) => setTimeout(r, 100));
      const t = Date.now();
      ctl.abort();
      expect(isAbort(await second)).to.equal(true);
      expect(Date.now() - t).to.be.below(100);
      let settled = false;
      void third.then(() => (settled = true));
      await new Promise((r) => setTimeout(r, 100));
      expect(settled, 'the third call still waits for the pause').to.equal(false);
      c.close();
      expect(isAbort(await first)).to.equal(true);
      expect(isAbort(await third)).to.equal(true);
    });

    it('people look-ups: up to 5,000 addresses per request (50 connections of 100), disabled people and misses remembered as null', async () => {
      const c = client({ burst: { requests: 5, windowMs: 500 } });
      const emails = Array.from({ length: 7345 }, (_, i) => `user${i}@acme.example`);
      const seeded = sim.seedPeople(
        emails.filter((_, i) => i % 7 !== 0).map((e, i) => ({ name: `P ${i}`, primaryEmail: e.toUpperCase(), disabled: i % 50 === 3 })),
      );
      const want = new Map(seeded.filter((p) => !p.disabled).map((p) => [p.primaryEmail!.toLowerCase(), p.id]));
      const dir = new PeopleDirectory(c, { ttlMs: 60_000 });
      const stats = new FourMeStats();
      const r = await dir.resolve([...emails, 'not an address', null, emails[0]], { stats });
      expect(r.requests, 'ceil(7345 / 5000)').to.equal(2);
      expect(stats.byOperation).to.deep.equal({ IntunePeopleByEmailGroups: 2 });
      for (const e of emails) expect(r.ids.get(e), e).to.equal(want.get(e) ?? null);
      expect(sim.stats.byRootField['query.people'], 'connections of 100').to.equal(74);
      const again = await dir.resolve(emails.slice(0, 500));
      expect(again.requests, 'cached').to.equal(0);
    });

    it('people look-ahead: announced addresses ride along in the room of the next look-up; an address in flight is awaited, not asked twice', async () => {
      const c = client({ burst: { requests: 5, windowMs: 500 } });
      const pageA = Array.from({ length: 700 }, (_, i) => `a${i}@acme.example`);
      const pageB = Array.from({ length: 600 }, (_, i) => `b${i}@acme.example`);
      const pageC = Array.from({ length: 4000 }, (_, i) => `c${i}@acme.example`);
      sim.seedPeople([...pageA, ...pageB, ...pageC].filter((_, i) => i % 3 === 0).map((e, i) => ({ name: `L ${i}`, primaryEmail: e })));
      const dir = new PeopleDirectory(c, { ttlMs: 60_000 });
      // B and C wait in the queue; A's look-up has room for 4,300 more addresses: all of B, 3,700 of C.
      dir.expect([...pageB, 'not an address', null]);
      dir.expect(pageC);
      const a = await dir.resolve(pageA);
      expect(a.requests).to.equal(1);
      expect(sim.stats.byRootField['query.people'], 'one request of 50 connections').to.equal(50);
      const b = await dir.resolve(pageB);
      expect(b.requests, 'B was looked up with A').to.equal(0);
      for (const [i, e] of pageB.entries()) expect(b.ids.get(e) !== null, e).to.equal((pageA.length + i) % 3 === 0);
      const cr = await dir.resolve(pageC);
      expect(cr.requests, 'the 300 addresses of C that did not fit').to.equal(1);
      expect(sim.stats.byRootField['query.people'], '3 more connections').to.equal(53);
      for (const [i, e] of pageC.entries()) expect(cr.ids.get(e) !== null, e).to.equal((pageA.length + pageB.length + i) % 3 === 0);

      // Two pages at once sharing addresses: the shared ones are asked for once.
      const d1 = Array.from({ length: 300 }, (_, i) => `d${i}@acme.example`);
      const d2 = Array.from({ length: 300 }, (_, i) => `d${i + 150}@acme.example`);
      const before = sim.stats.byRootField['query.people'];
      const [r1, r2] = await Promise.all([dir.resolve(d1), dir.resolve(d2)]);
      expect(r1.requests + r2.requests).to.equal(2);
      expect(sim.stats.byRootField['query.people'] - before, '3 + 2 connections: 450 distinct addresses').to.equal(5);
      expect(r2.ids.size).to.equal(300);
    });

    it('a connection reset on the first try is repeated at once; further ones back off', async () => {
      const c = client();
      const stats = new FourMeStats();
      sim.dropNext(1);
      const t0 = Date.now();
      await c.graphql(ME, {}, { stats });
      expect(Date.now() - t0, 'no backoff for the first reset').to.be.below(800);
      expect(stats.retries).to.equal(1);
      sim.dropNext(2);
      const t1 = Date.now();
      await c.graphql(ME, {}, { stats });
      expect(Date.now() - t1, 'the second reset backs off').to.be.at.least(1000);
      expect(stats.retries).to.equal(3);
    });

    it('follows an asynchronous result, and reports an expired link', async () => {
      const c = client();
      sim.setAsyncOptions({ delayMs: 150, pollsBeforeResult: 2 });
      const up = await c.graphql<{ discoveredConfigurationItems: { asyncQuery: { resultUrl: string } } }>(OPS.discoveredCis, {
        input: {
          source: 'Intune',
          physicalAssets: [{ reference: 'computer/windows_pc', name: 'Windows PC', products: [{ sourceID: 'p', brand: 'B', model: 'M', name: 'B M', configurationItems: [{ sourceID: 'd1', name: 'D1' }] }] }],
        },
      });
      const stats = new FourMeStats();
      const res = await c.asyncResult<{ data: { discoveredConfigurationItems: { configurationItems: Array<{ sourceID: string }> } } }>(
        up.discoveredConfigurationItems.asyncQuery.resultUrl,
        { stats },
      );
      expect(res.data.discoveredConfigurationItems.configurationItems.map((x) => x.sourceID)).to.deep.equal(['d1']);
      expect(stats.polls).to.be.at.least(3);
      sim.setAsyncOptions({ delayMs: 0, pollsBeforeResult: 0, ttlMs: 1 });
      const up2 = await c.graphql<{ discoveredConfigurationItems: { asyncQuery: { resultUrl: string } } }>(OPS.discoveredCis, {
        input: { source: 'Intune', physicalAssets: [] },
      });
      await new Promise((r) => setTimeout(r, 20));
      const err = await c.asyncResult(up2.discoveredConfigurationItems.asyncQuery.resultUrl).catch((e) => e);
      expect(err.kind).to.equal('asyncFailed');
      expect(err.message).to.match(/HTTP 404/);
    });
  });
});
