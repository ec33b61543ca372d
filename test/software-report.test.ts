/**
 * Discovered apps, library and simulator: the compact index, the zipped CSV
 * reader (zips built here with yazl), the sim's app mix, and the sim's
 * export-job lifecycle (status over time, expiring storage link, 403 without
 * the role, 429 from the reports bucket, no bearer token at storage).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import yazl from 'yazl';
import { SoftwareIndexBuilder } from '../nodes/lib/software/software-index';
import { appRowOf, derivedAppKey } from '../nodes/lib/software/app-rows';
import { readZippedCsv } from '../nodes/lib/software/report-file';
import { runAppExportJob, ExportJobError } from '../nodes/lib/software/export-job';
import { downloadReport, ReportDownloadError } from '../nodes/lib/software/report-download';
import { readDiscoveredApps } from '../nodes/lib/software/software-source';
import { GraphClient, GraphRequestError } from '../nodes/lib/graph/graph-client';
import { createAxios, createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { sharedTestCa } from '../sim/pki';
import { GraphSim, type GraphSimOptions, type TokenClaims } from '../sim/graph';
import { SimTenant } from '../sim/tenant';

const NOW = '2024-09-01T12:00:00Z';

async function zipOf(name: string, text: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-test-'));
  const file = path.join(dir, 'r.zip');
  const z = new yazl.ZipFile();
  z.addBuffer(Buffer.from(text, 'utf8'), name);
  z.end();
  await new Promise<void>((res, rej) => z.outputStream.pipe(fs.createWriteStream(file)).on('finish', res).on('error', rej));
  return file;
}

async function rowsOf(file: string): Promise<Record<string, string>[]> {
  const out: Record<string, string>[] = [];
  for await (const r of readZippedCsv(file)) out.push(r);
  return out;
}

describe('software index (discovered apps per device)', () => {
  const row = (deviceId: string, name: string, version: string | null, key = `${name}@${version}`) => ({ deviceId, key, name, version, publisher: 'P', platform: 'Windows' });

  it('groups rows of any order per device, sorted by name then version, repeats dropped', () => {
    const b = new SoftwareIndexBuilder();
    b.add(row('D1', 'Zoom', '5.1'));
    b.add(row('D2', 'Edge', '120'));
    b.add(row('D1', 'Edge', '121'));
    b.add(row('D1', 'Edge', '120'));
    b.add(row('D1', 'Zoom', '5.1'));
    b.add(row('', 'Orphan', '1'));
    const idx = b.seal();
    expect(idx.appsOf('d1').map((a) => `${a.name} ${a.version}`)).to.deep.equal(['Edge 120', 'Edge 121', 'Zoom 5.1']);
    expect(idx.appsOf('D2').map((a) => a.key)).to.deep.equal(['Edge@120']);
    expect(idx.appsOf('D3')).to.deep.equal([]);
    expect(idx.installations).to.equal(4);
    expect(idx.distinctApps).to.equal(3);
    expect(idx.skippedRows).to.equal(1);
    expect(idx.appsOf('D2')[0]).to.deep.equal({ key: 'Edge@120', name: 'Edge', version: '120', publisher: 'P', platform: 'Windows', sizeBytes: null });
  });

  it('hands out fresh objects: a sink changing one device leaves the next alone', () => {
    const b = new SoftwareIndexBuilder();
    b.add(row('A', 'Edge', '1'));
    b.add(row('B', 'Edge', '1'));
    const idx = b.seal();
    idx.appsOf('A')[0].name = 'changed';
    expect(idx.appsOf('B')[0].name).to.equal('Edge');
  });

  it('maps report columns: version falls back to the short version, Platform_loc wins, a missing key is derived', () => {
    const r = appRowOf({ DeviceId: 'D', ApplicationName: ' 7-Zip ', ApplicationVersion: '', ApplicationShortVersion: '23.01', Platform: '1', Platform_loc: 'Windows', ApplicationKey: '', ApplicationPublisher: '' });
    expect(r).to.deep.equal({ deviceId: 'D', key: derivedAppKey('7-Zip', null, '23.01', 'Windows'), name: '7-Zip', version: '23.01', publisher: null, platform: 'Windows' });
    expect(derivedAppKey('7-Zip', null, '23.01', 'Windows')).to.not.equal(derivedAppKey('7-Zip', null, '23.02', 'Windows'));
  });
});

describe('zipped CSV report reader', () => {
  it('reads a BOM, quoted commas, quotes and line breaks', async () => {
    const csv = '\ufeff"DeviceId","ApplicationName","ApplicationVersion"\r\n"d1","Visual C++ 2015-2022, x64","14.38"\r\n"d2","Say ""hi""\nnow","1"\r\n';
    const rows = await rowsOf(await zipOf('AppInvRawData_x.csv', csv));
    expect(rows).to.deep.equal([
      { DeviceId: 'd1', ApplicationName: 'Visual C++ 2015-2022, x64', ApplicationVersion: '14.38' },
      { DeviceId: 'd2', ApplicationName: 'Say "hi"\nnow', ApplicationVersion: '1' },
    ]);
  });

  it('refuses a report without the DeviceId column, and a zip without a CSV', async () => {
    let err: Error | undefined;
    try {
      await rowsOf(await zipOf('a.csv', 'Name,Version\r\nx,1\r\n'));
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/has no DeviceId/);
    err = undefined;
    try {
      await rowsOf(await zipOf('readme.txt', 'hello'));
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/holds no CSV/);
  });
});

describe('SimTenant discovered apps', () => {
  const t = new SimTenant({ seed: 5, devices: 2000, now: NOW });

  it('gives tens of apps per Windows PC, fewer on mobile, none on Linux; thousands of titles in several versions; deterministic', () => {
    const per: Record<string, number[]> = {};
    const titles = new Set<string>();
    const versions = new Map<string, Set<string>>();
    for (let i = 0; i < t.size; i++) {
      const meta = t.metaAt(i)!;
      const apps = t.appsAt(i);
      (per[meta.platform] ??= []).push(apps.length);
      for (const a of apps) {
        titles.add(a.name);
        if (!versions.has(a.name)) versions.set(a.name, new Set());
        versions.get(a.name)!.add(a.version);
      }
    }
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(avg(per.windows)).to.be.within(30, 70);
    expect(avg(per.ios)).to.be.lessThan(avg(per.windows) / 2);
    expect(Math.max(...(per.linux ?? [0]))).to.equal(0);
    expect(titles.size).to.be.greaterThan(1000);
    expect([...versions.values()].filter((v) => v.size > 1).length).to.be.greaterThan(100);
    expect(new SimTenant({ seed: 5, devices: 2000, now: NOW }).appsAt(17)).to.deep.equal(t.appsAt(17));
  });

  it('removeApp and setAppVersion change one device only', () => {
    const i = [...Array(50).keys()].find((k) => t.metaAt(k)!.platform === 'windows')!;
    const id = t.deviceAt(i)!.id;
    const [first, second] = t.appsAt(i);
    t.removeApp(id, first.name);
    t.setAppVersion(id, second.name, '99.0');
    const after = t.appsAt(i);
    expect(after.map((a) => a.name)).to.not.include(first.name);
    const changed = after.find((a) => a.name === second.name)!;
    expect(changed.version).to.equal('99.0');
    expect(changed.key).to.not.equal(second.key);
  });
});

// ---------------------------------------------------------------------------

function verifier(aud: () => string): GraphSimOptions['verifyToken'] {
  return (token: string, audience: string): TokenClaims => {
    if (audience !== aud()) throw Object.assign(new Error('bad audience'), { code: 'InvalidAuthenticationToken' });
    const [tid, appid, roles] = token.split('|');
    return { tid, appid, roles: roles ? roles.split(',') : [] };
  };
}

describe('Graph sim: report export jobs', function () {
  this.timeout(60_000);
  const pki = sharedTestCa();
  const tenant = new SimTenant({ seed: 9, devices: 300, now: NOW });
  let graph: GraphSim;
  const agent = createHttpsAgent({ ca: pki.certPem });
  const http = createAxios(agent);
  let roles = ['DeviceManagementApps.ReadWrite.All'];
  const client = () =>
    new GraphClient({ baseUrl: graph.url, getToken: async () => `${tenant.tenantId}|app|${roles.join(',')}`, agent, retry: { maxRetries: 3, maxTotalWaitMs: 10_000 } });

  before(async () => {
    graph = new GraphSim({ tls: pki.server, tenant, verifyToken: verifier(() => graph.url) });
    await graph.start();
  });
  after(async () => {
    await graph.stop();
    agent.destroy();
  });
  beforeEach(() => {
    roles = ['DeviceManagementApps.ReadWrite.All'];
    graph.reports.setTiming({ startMs: 150, readyMs: 400, linkTtlMs: 3_600_000 });
    graph.resetThrottling();
  });

  it('moves notStarted → inProgress → completed, with an https link that needs no token, holding the documented columns', async () => {
    const seen: string[] = [];
    const { job, requests } = await runAppExportJob({ graph: client(), version: 'v1.0', pollMs: 60, maxPollMs: 60, onStatus: (s) => seen.push(s) });
    expect(job.status).to.equal('completed');
    expect(job.id).to.match(/^AppInvRawData_/);
    expect(seen).to.include('inProgress');
    expect(seen[seen.length - 1]).to.equal('completed');
    expect(requests).to.equal(1 + seen.length);
    expect(Date.parse(job.expirationDateTime!)).to.be.greaterThan(Date.now() + 3_000_000);
    const url = new URL(job.url!);
    expect(url.protocol).to.equal('https:');
    expect(url.pathname).to.not.match(/^\/(v1\.0|beta)\//);
    const dl = await downloadReport(job.url!, { agent });
    try {
      const rows = await rowsOf(dl.file);
      const expected = [...Array(tenant.positions).keys()].reduce((n, i) => n + (tenant.deviceAt(i) ? tenant.appsAt(i).length : 0), 0);
      expect(rows.length).to.equal(expected);
      expect(Object.keys(rows[0])).to.deep.equal(['DeviceId', 'ApplicationKey', 'ApplicationName', 'ApplicationPublisher', 'ApplicationVersion', 'ApplicationShortVersion', 'Platform']);
      expect(rows.every((r) => ['Windows', 'macOS', 'iOS', 'Android'].includes(r.Platform))).to.equal(true);
    } finally {
      await dl.dispose();
    }
    expect(graph.reports.stats.downloadsWithAuthorization).to.equal(0);
  });

  it('refuses the download after the link expired (403 from storage) and with a bearer token', async () => {
    const { job } = await runAppExportJob({ graph: client(), version: 'v1.0', pollMs: 50, maxPollMs: 50 });
    const withToken = await http.get(job.url!, { headers: { Authorization: 'Bearer x' } });
    expect(withToken.status).to.equal(403);
    expect(graph.reports.stats.downloadsWithAuthorization).to.be.greaterThan(0);
    graph.reports.expireLinks();
    let err: unknown;
    try {
      await downloadReport(job.url!, { agent });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ReportDownloadError);
    expect((err as ReportDownloadError).code).to.equal('linkExpired');
    expect((err as Error).message).to.not.include('sig=');
    // A tampered signature is refused too.
    const bad = new URL(job.url!);
    bad.searchParams.set('se', '2999-01-01T00:00:00Z');
    expect((await http.get(bad.toString())).status).to.equal(403);
  });

  it('answers 403 to a job creation without a ReadWrite role, while reading jobs needs only a Read role', async () => {
    roles = ['DeviceManagementApps.Read.All', 'DeviceManagementManagedDevices.Read.All'];
    let err: unknown;
    try {
      await runAppExportJob({ graph: client(), version: 'v1.0', pollMs: 50 });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(GraphRequestError);
    expect((err as GraphRequestError).status).to.equal(403);
    const list = await client().get<{ value: unknown[] }>('/deviceManagement/reports/exportJobs', { version: 'beta' });
    expect(list.value).to.be.an('array');
  });

  it('throttles job creation in the reports bucket with 429 (client retries after Retry-After)', async () => {
    graph.setLimits({ windowMs: 1500, reports: { appWrites: 1 } });
    graph.setRetryAfter(true);
    try {
      const c = client();
      await runAppExportJob({ graph: c, version: 'v1.0', pollMs: 50, maxPollMs: 50 });
      const before = c.stats.throttled;
      await runAppExportJob({ graph: c, version: 'v1.0', pollMs: 50, maxPollMs: 50 });
      expect(c.stats.throttled).to.be.greaterThan(before);
      expect(graph.stats.byStatus['429']).to.be.greaterThan(0);
    } finally {
      graph.setRetryAfter('sometimes');
      graph.setLimits({ windowMs: 20_000, reports: { appWrites: 100 } });
    }
  });

  it('reports a failed job as failed', async () => {
    graph.reports.failNextJobs(1);
    let err: unknown;
    try {
      await runAppExportJob({ graph: client(), version: 'v1.0', pollMs: 50, maxPollMs: 50 });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ExportJobError);
    expect((err as ExportJobError).code).to.equal('jobFailed');
  });

  it('readDiscoveredApps builds the index the tenant implies, and sees a removed app in the next read', async () => {
    const first = await readDiscoveredApps({ graph: client(), agent, version: 'v1.0', pollMs: 50, maxPollMs: 50 });
    const i = [...Array(50).keys()].find((k) => tenant.metaAt(k)!.platform === 'windows' && tenant.deviceAt(k))!;
    const id = tenant.deviceAt(i)!.id;
    const truth = tenant.appsAt(i);
    expect(first.index.appsOf(id).map((a) => a.key).sort()).to.deep.equal(truth.map((a) => a.key).sort());
    expect(first.exportRequests).to.be.greaterThan(1);
    tenant.removeApp(id, truth[0].name);
    const second = await readDiscoveredApps({ graph: client(), agent, version: 'v1.0', pollMs: 50, maxPollMs: 50 });
    expect(second.index.appsOf(id).map((a) => a.name)).to.not.include(truth[0].name);
    expect(second.index.appsOf(id).length).to.equal(truth.length - 1);
  });
});
