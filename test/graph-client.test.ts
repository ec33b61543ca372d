/**
 * The Graph client: retry and pacing policy on their own, the client against
 * a scripted HTTPS server (exact answers, resets, headers), and the client
 * against the simulated Graph tenant (paging, throttling, $batch, faults,
 * aborts, pacing).
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { expect } from 'chai';
import { sharedTestCa } from '../sim/pki';
import { createHttpsAgent } from '../nodes/lib/shared/http-transport';
import { GraphClient, GraphRequestError, type GraphClientOptions, type RequestStats } from '../nodes/lib/graph/graph-client';
import { GraphAbortError, isAbortError } from '../nodes/lib/graph/graph-errors';
import {
  RetryBudget,
  backoffDelay,
  isRetryableStatus,
  isRetryableTransport,
  resolveRetry,
} from '../nodes/lib/graph/graph-retry';
import { sleep } from '../nodes/lib/shared/abort';
import { GraphPacer, DEFAULT_LIMITS } from '../nodes/lib/graph/graph-pacer';
import { GraphSim } from '../sim/graph';
import { SimTenant } from '../sim/tenant';


async function rejection(p: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, any>;
  }
  throw new Error('expected the promise to reject');
}

/** Largest number of timestamps inside any window [t, t + windowMs). */
function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (t[i] - t[j] >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

// ------------------------------------------------------------------ policy

describe('graph retry policy', () => {
  it('backs off exponentially with full jitter, capped', () => {
    const p = resolveRetry({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect(backoffDelay(0, p, () => 0)).to.equal(0);
    expect(backoffDelay(0, p, () => 0.999)).to.be.within(90, 99);
    expect(backoffDelay(2, p, () => 0.999)).to.be.within(390, 399);
    expect(backoffDelay(10, p, () => 0.999)).to.be.within(990, 999);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(3, p)));
    expect(seen.size, 'jitter spreads the delays').to.be.greaterThan(10);
    for (const d of seen) expect(d).to.be.within(0, 800);
  });

  it('repeats only what is safe to repeat', () => {
    expect(isRetryableStatus(429, false)).to.equal(true);
    expect(isRetryableStatus(503, false)).to.equal(true);
    expect(isRetryableStatus(504, true)).to.equal(true);
    expect(isRetryableStatus(504, false), '504 on a POST may have been carried out').to.equal(false);
    expect(isRetryableStatus(500, true)).to.equal(false);
    expect(isRetryableStatus(404, true)).to.equal(false);
    expect(isRetryableTransport('ECONNRESET', true)).to.equal(true);
    expect(isRetryableTransport('ECONNRESET', false), 'a reset after sending a POST').to.equal(false);
    expect(isRetryableTransport('ETIMEDOUT', false)).to.equal(false);
    expect(isRetryableTransport('ECONNREFUSED', false), 'a refused connection never carried the request').to.equal(true);
    expect(isRetryableTransport('CERT_HAS_EXPIRED', true)).to.equal(false);
  });

  it('bounds retries by count and by total wait, and refuses a Retry-After that does not fit', () => {
    const b = new RetryBudget(resolveRetry({ maxRetries: 3, maxTotalWaitMs: 10_000, baseDelayMs: 1000, maxDelayMs: 8000 }));
    const first = b.plan(4000);
    expect(first).to.deep.equal({ ok: true, delayMs: 4000, fromServer: true });
    b.spend(4000);
    const tooLong = b.plan(7000);
    expect(tooLong).to.deep.equal({ ok: false, reason: 'time', requestedMs: 7000 });
    const backoff = b.plan(undefined, () => 0.999);
    expect(backoff.ok).to.equal(true);
    if (backoff.ok) expect(backoff.delayMs, 'own backoff is clipped to what is left').to.be.at.most(6000);
    b.spend(1);
    b.spend(1);
    expect(b.plan(0)).to.deep.equal({ ok: false, reason: 'retries' });
  });
});

describe('graph pacing plan', () => {
  it('a full $batch fits every Intune limit; limits below one request are refused', () => {
    const pacer = new GraphPacer();
    for (const bucket of ['devices', 'compliance'] as const) {
      expect(pacer.maxBatch(bucket)).to.deep.equal({ requests: 20, writes: 20 });
    }
    expect(pacer.plan('devices').writes.limit).to.equal(DEFAULT_LIMITS.writesPer20s);
    pacer.stop();
    expect(() => new GraphPacer({ writesPer20s: 0 })).to.throw(RangeError);
  });

  it('hands out the whole write limit at once, and the next write only one window after the answers', async function () {
    this.timeout(10_000);
    // The token bucket this replaced gave a burst of half the limit and spread the rest over the window.
    const pacer = new GraphPacer({ requestsPer20s: 40, writesPer20s: 20, windowMs: 1000 });
    const t0 = Date.now();
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await pacer.acquire('devices', 5, 5));
    expect(Date.now() - t0, 'four $batches of 5 writes go out at once').to.be.below(300);
    const answeredAt = Date.now();
    for (const f of first) f.done();
    const next = await pacer.acquire('devices', 1, 1);
    expect(Date.now() - answeredAt, 'the 21st write waits one window after the answers').to.be.at.least(990);
    next.done();
    pacer.stop();
  });

  it('a live pacer holds 20 per 1 s over any window', async function () {
    this.timeout(10_000);
    const pacer = new GraphPacer({ requestsPer20s: 20, writesPer20s: 10, windowMs: 1000 });
    const times: number[] = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        const r = await pacer.acquire('devices', 1, 0);
        times.push(Date.now());
        r.done();
      }),
    );
    pacer.stop();
    expect(times).to.have.length(32);
    expect(maxInWindow(times, 1000)).to.be.at.most(20);
    expect(Date.now() - t0, 'it does not crawl either').to.be.below(5000);
  });

  it('an aborted wait for room rejects at once', async () => {
    const pacer = new GraphPacer({ requestsPer20s: 4, writesPer20s: 2, windowMs: 60_000 });
    const limit = pacer.plan('devices').requests.limit; // 4
    await pacer.acquire('devices', limit, 0); // window full now
    const ctl = new AbortController();
    const waiting = pacer.acquire('devices', 1, 0, ctl.signal);
    setTimeout(() => ctl.abort(), 20);
    const t0 = Date.now();
    const err = await rejection(waiting);
    expect(err.name).to.equal('AbortError');
    expect(Date.now() - t0).to.be.below(500);
    pacer.stop();
  });

  it('user look-ups have their own directory budget and do not use up the device budget', async () => {
    const pacer = new GraphPacer({ requestsPer20s: 4, writesPer20s: 2, directoryRequestsPer10s: 400, windowMs: 60_000 });
    const deviceBurst = pacer.plan('devices').requests.limit;
    expect(pacer.plan('directory').requests.limit).to.equal(400);
    let longestDirectoryWait = 0;
    for (let i = 0; i < 50; i++) longestDirectoryWait = Math.max(longestDirectoryWait, (await pacer.acquire('directory', 1, 0)).waitedMs);
    const devices = await pacer.acquire('devices', deviceBurst, 0);
    // 50 look-ups exceed the whole device budget (4 per minute): sharing it would mean waits of many seconds.
    expect(longestDirectoryWait, 'directory waited').to.be.below(1000);
    expect(devices.waitedMs, 'devices waited').to.be.below(1000);
    pacer.stop();
  });

  it('a paused bucket holds requests back until the pause ends', async () => {
    const pacer = new GraphPacer();
    pacer.pause('compliance', 300);
    const t0 = Date.now();
    await pacer.acquire('devices', 1, 0);
    expect(Date.now() - t0, 'other bucket unaffected').to.be.below(100);
    const r = await pacer.acquire('compliance', 1, 0);
    expect(Date.now() - t0).to.be.at.least(280);
    expect(r.waitedMs).to.be.at.least(280);
    pacer.stop();
  });
});

// ------------------------------------------------------- scripted server

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}
type Handler = (req: Seen, res: ServerResponse, n: number) => void;

class ScriptedGraph {
  seen: Seen[] = [];
  handler: Handler = (_r, res) => json(res, 200, {});
  private server?: https.Server;

  async start(): Promise<string> {
    const pki = sharedTestCa();
    this.server = https.createServer({ key: pki.server.keyPem, cert: pki.server.certPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
        this.seen.push(s);
        try {
          this.handler(s, res, this.seen.length);
        } catch (e) {
          json(res, 500, { error: { code: 'testHandler', message: String(e) } });
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `https://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...(text ? { 'Content-Type': 'application/json' } : {}), 'request-id': 'req-123', ...headers });
  res.end(text);
}

function reset(res: ServerResponse): void {
  res.socket?.destroy();
}

describe('graph client against a scripted server', function () {
  this.timeout(15_000);
  const srv = new ScriptedGraph();
  let base: string;
  let agent: https.Agent;
  let client: GraphClient | undefined;
  let tokens: Array<{ force: boolean }>;

  before(async () => {
    base = await srv.start();
  });
  after(async () => {
    await srv.stop();
  });
  beforeEach(() => {
    srv.seen = [];
    tokens = [];
    agent = createHttpsAgent({ ca: sharedTestCa().certPem });
  });
  afterEach(() => {
    client?.close();
    client = undefined;
    agent.destroy();
  });

  function make(o: Partial<GraphClientOptions> = {}): GraphClient {
    client = new GraphClient({
      baseUrl: base,
      agent,
      getToken: async (_signal, opts) => {
        tokens.push({ force: !!opts?.forceRefresh });
        return `tok-${tokens.length}`;
      },
      retry: { baseDelayMs: 10, maxDelayMs: 50, maxTotalWaitMs: 3000 },
      ...o,
    });
    return client;
  }

  it('sends the token, Accept-Language and encoded query options; counts the request', async () => {
    srv.handler = (_r, res) => json(res, 200, { value: [{ id: 'a' }] });
    const c = make();
    const stats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0 };
    const out = await c.get<{ value: unknown[] }>('/deviceManagement/managedDevices', {
      select: ['id', 'deviceName'],
      filter: "lastSyncDateTime gt 2026-01-01T00:00:00Z and operatingSystem eq 'iOS&Co'",
      top: 50,
      stats,
    });
    expect(out.value).to.have.length(1);
    const r = srv.seen[0];
    expect(r.headers.authorization).to.equal('Bearer tok-1');
    expect(r.headers['accept-language']).to.equal('en-US');
    const u = new URL(r.url, base);
    expect(u.pathname).to.equal('/v1.0/deviceManagement/managedDevices');
    expect(u.searchParams.get('$select')).to.equal('id,deviceName');
    expect(u.searchParams.get('$filter')).to.equal("lastSyncDateTime gt 2026-01-01T00:00:00Z and operatingSystem eq 'iOS&Co'");
    expect(u.searchParams.get('$top')).to.equal('50');
    expect(stats.requests).to.equal(1);
    expect(c.stats.requests).to.equal(1);
  });

  it('refuses a $select property managedDevice does not have in that version', async () => {
    const c = make();
    const err = await rejection(c.get('/deviceManagement/managedDevices', { select: ['id', 'skuFamily'] }));
    expect(err.message).to.match(/skuFamily/);
    expect(srv.seen).to.have.length(0);
    srv.handler = (_r, res) => json(res, 200, { value: [] });
    await c.get('/deviceManagement/managedDevices', { version: 'beta', select: ['id', 'skuFamily'] });
    expect(srv.seen).to.have.length(1);
  });

  it('after 401 InvalidAuthenticationToken retries once with a fresh token, then reports it', async () => {
    srv.handler = (r, res, n) =>
      n === 1 || r.headers.authorization !== 'Bearer tok-2'
        ? json(res, 401, { error: { code: 'InvalidAuthenticationToken', message: 'Lifetime validation failed, the token is expired.' } })
        : json(res, 200, { ok: true });
    const c = make();
    expect(await c.get('/x')).to.deep.equal({ ok: true });
    expect(tokens).to.deep.equal([{ force: false }, { force: true }]);

    srv.seen = [];
    tokens = [];
    srv.handler = (_r, res) => json(res, 401, { error: { code: 'InvalidAuthenticationToken', message: 'Access token validation failure.' } });
    const err = await rejection(c.get('/x'));
    expect(err).to.be.instanceOf(GraphRequestError);
    expect(err.status).to.equal(401);
    expect(err.code).to.equal('InvalidAuthenticationToken');
    expect(err.message).to.not.include('tok-');
    expect(srv.seen, 'exactly one retry').to.have.length(2);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    srv.handler = (_r, res, n) =>
      n === 1 ? json(res, 429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'Retry-After': new Date(Date.now() + 1500).toUTCString() }) : json(res, 200, { ok: 1 });
    const c = make();
    const stats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0 };
    await c.get('/x', { stats });
    const gap = srv.seen[1].at - srv.seen[0].at;
    // HTTP dates have whole seconds: the wait is between 0.5 and 1.5 s.
    expect(gap).to.be.within(450, 2000);
    expect(stats).to.include({ requests: 2, retries: 1, throttled: 1 });
  });

  it('retries a GET after a connection reset, never a POST; a POST is retried on 429/503', async () => {
    srv.handler = (_r, res, n) => (n === 1 ? reset(res) : json(res, 200, { ok: 1 }));
    const c = make();
    expect(await c.get('/x')).to.deep.equal({ ok: 1 });
    expect(srv.seen).to.have.length(2);

    srv.seen = [];
    srv.handler = (_r, res, n) => (n === 1 ? reset(res) : json(res, 204, undefined));
    const err = await rejection(c.post('/deviceManagement/managedDevices/d1/retire', undefined));
    expect(err).to.be.instanceOf(GraphRequestError);
    expect(err.message).to.match(/not sent again/);
    expect(err.retryable).to.equal(false);
    expect(srv.seen, 'the POST reached the server once').to.have.length(1);

    srv.seen = [];
    srv.handler = (_r, res, n) => (n === 1 ? json(res, 504, {}) : json(res, 204, undefined));
    const err504 = await rejection(c.post('/deviceManagement/managedDevices/d1/retire', undefined));
    expect(err504.status).to.equal(504);
    expect(srv.seen).to.have.length(1);

    srv.seen = [];
    srv.handler = (_r, res, n) =>
      n === 1 ? json(res, 429, {}, { 'Retry-After': '0' }) : n === 2 ? json(res, 503, {}) : json(res, 204, undefined);
    expect(await c.post('/deviceManagement/managedDevices/d1/retire', { a: 1 })).to.equal(undefined);
    expect(srv.seen).to.have.length(3);
    expect(srv.seen[2].body).to.equal('{"a":1}');
    expect(srv.seen[2].headers['content-type']).to.match(/application\/json/);
  });

  it('a read-only POST (report action) is repeated after a reset or a 504, and paced as a read', async () => {
    srv.handler = (_r, res, n) => (n === 1 ? reset(res) : n === 2 ? json(res, 504, {}) : json(res, 200, { Values: [] }));
    const c = make({ limits: { requestsPer20s: 100, writesPer20s: 2, windowMs: 60_000 } });
    const stats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
    expect(await c.post('/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { top: 1 }, { readOnly: true, stats })).to.deep.equal({ Values: [] });
    expect(srv.seen).to.have.length(3);
    // Six more report reads go out at once although the write budget is 2 per minute.
    srv.seen = [];
    srv.handler = (_r, res) => json(res, 200, { Values: [] });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 6 }, () => c.post('/deviceManagement/reports/getNoncompliantDevicesAndSettingsReport', { top: 1 }, { readOnly: true })));
    expect(srv.seen).to.have.length(6);
    expect(Date.now() - t0).to.be.below(2000);
  });

  it('follows @odata.nextLink byte for byte, and not to another host', async () => {
    const odd = `${base}/v1.0/deviceManagement/managedDevices?$top=2&$select=id,deviceName&$skiptoken=RFNwdAIAAQAAACw6%2bA%3d%3d&x=a=b`;
    srv.handler = (r, res) =>
      r.url.includes('skiptoken') ? json(res, 200, { value: [{ id: 3 }] }) : json(res, 200, { value: [{ id: 1 }, { id: 2 }], '@odata.nextLink': odd });
    const c = make();
    const pages = [];
    for await (const p of c.pages<{ id: number }>('/deviceManagement/managedDevices', { top: 2, select: ['id', 'deviceName'] })) pages.push(p);
    expect(pages.map((p) => p.items.length)).to.deep.equal([2, 1]);
    expect(pages.map((p) => p.page)).to.deep.equal([1, 2]);
    expect(srv.seen[1].url).to.equal(odd.slice(base.length));

    srv.seen = [];
    srv.handler = (_r, res) => json(res, 200, { value: [{ id: 1 }], '@odata.nextLink': 'https://evil.example/v1.0/x?$skiptoken=1' });
    const err = await rejection((async () => {
      for await (const _ of c.pages('/x')) void _;
    })());
    expect(err.message).to.match(/another host/);
    expect(srv.seen).to.have.length(1);
  });

  it('stops on a next-page link it has already followed (loop guard)', async () => {
    srv.handler = (_r, res) => json(res, 200, { value: [{ id: 1 }], '@odata.nextLink': `${base}/v1.0/x?$skiptoken=same` });
    const c = make();
    const got: number[] = [];
    const err = await rejection((async () => {
      for await (const p of c.pages('/x')) got.push(p.page);
    })());
    expect(err).to.be.instanceOf(GraphRequestError);
    expect(err.code).to.equal('nextLinkLoop');
    expect(err.message).to.match(/same next-page link/);
    expect(got).to.deep.equal([1, 2]);
    expect(srv.seen).to.have.length(2);
  });

  it('$batch: chunks of 20, Content-Type on items with a body, answers matched by id in any order', async () => {
    srv.handler = (r, res) => {
      const { requests } = JSON.parse(r.body) as { requests: Array<{ id: string; method: string; url: string }> };
      const responses = requests.map((q) => ({ id: q.id, status: q.method === 'POST' ? 204 : 200, headers: { 'content-type': 'application/json' }, body: q.method === 'POST' ? undefined : { echo: q.url } })).reverse();
      json(res, 200, { responses });
    };
    const c = make();
    const reqs = Array.from({ length: 45 }, (_, i) =>
      i % 3 === 0
        ? { id: `p${i}`, method: 'POST' as const, url: `/deviceManagement/managedDevices/d${i}/retire`, body: { reason: 'x' } }
        : { id: `g${i}`, method: 'GET' as const, url: `deviceManagement/managedDevices/d${i}?$select=id` },
    );
    const stats: RequestStats = { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
    const out = await c.batch(reqs, { stats });
    expect(srv.seen).to.have.length(3);
    const sizes = srv.seen.map((s) => (JSON.parse(s.body) as { requests: unknown[] }).requests.length).sort((a, b) => a - b);
    expect(sizes).to.deep.equal([5, 20, 20]);
    for (const s of srv.seen) {
      expect(new URL(s.url, base).pathname).to.equal('/v1.0/$batch');
      for (const q of (JSON.parse(s.body) as { requests: Array<{ method: string; url: string; body?: unknown; headers?: Record<string, string> }> }).requests) {
        expect(q.url.startsWith('/deviceManagement/managedDevices/'), q.url).to.equal(true);
        if (q.method === 'POST') {
          expect(q.body).to.deep.equal({ reason: 'x' });
          const ct = Object.entries(q.headers ?? {}).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
          expect(ct).to.equal('application/json');
        }
      }
    }
    expect(out.size).to.equal(45);
    expect(out.get('p0')).to.include({ status: 204 });
    expect(out.get('g1')?.body).to.deep.equal({ echo: '/deviceManagement/managedDevices/d1?$select=id' });
    expect(stats.batches).to.equal(3);
    expect(stats.requests, 'a $batch counts its inner requests').to.equal(45);
  });

  it('$batch: a POST/PATCH item without a body is refused before anything is sent; `{}` goes out as a JSON body with Content-Type', async () => {
    srv.handler = (r, res) => {
      const { requests } = JSON.parse(r.body) as { requests: Array<{ id: string }> };
      json(res, 200, { responses: requests.map((q) => ({ id: q.id, status: 204 })) });
    };
    const c = make();
    for (const method of ['POST', 'PATCH'] as const) {
      const err = await rejection(
        c.batch([
          { id: 'ok', method: 'POST', url: '/deviceManagement/managedDevices/d1/syncDevice', body: {} },
          { id: 'bare', method, url: '/deviceManagement/managedDevices/d2/remoteLock' },
        ]),
      );
      expect(err).to.be.instanceOf(TypeError);
      expect(err.message).to.match(/\$batch (POST|PATCH) request "bare" needs a body \(use \{\} for an action without parameters\)/);
    }
    expect(srv.seen, 'nothing was sent').to.have.length(0);
    const out = await c.batch([{ id: 'lock', method: 'POST', url: '/deviceManagement/managedDevices/d2/remoteLock', body: {} }]);
    expect(out.get('lock')).to.include({ status: 204 });
    const [item] = (JSON.parse(srv.seen[0].body) as { requests: Array<{ body?: unknown; headers?: Record<string, string> }> }).requests;
    expect(item.body).to.deep.equal({});
    expect(Object.entries(item.headers ?? {}).find(([k]) => k.toLowerCase() === 'content-type')?.[1]).to.equal('application/json');
  });

  it('$batch: an outer 503 retries the whole chunk; an outer failure that lasts gives every item that status', async () => {
    srv.handler = (r, res, n) => {
      if (n === 1) return json(res, 503, { error: { code: 'ServiceUnavailable', message: 'down' } });
      const { requests } = JSON.parse(r.body) as { requests: Array<{ id: string }> };
      json(res, 200, { responses: requests.map((q) => ({ id: q.id, status: 200, body: { id: q.id } })) });
    };
    const c = make();
    const out = await c.batch([{ id: '1', method: 'GET', url: '/a' }, { id: '2', method: 'GET', url: '/b' }]);
    expect(srv.seen).to.have.length(2);
    expect(out.get('1')).to.deep.include({ status: 200, body: { id: '1' } });

    srv.seen = [];
    srv.handler = (_r, res) => json(res, 503, { error: { code: 'ServiceUnavailable', message: 'down' } });
    const c2 = make({ retry: { baseDelayMs: 10, maxDelayMs: 20, maxRetries: 2, maxTotalWaitMs: 1000 } });
    const out2 = await c2.batch([{ id: '1', method: 'POST', url: '/a/retire', body: {} }]);
    expect(srv.seen).to.have.length(3);
    expect(out2.get('1')?.status).to.equal(503);
    expect(out2.get('1')?.body.error.message).to.match(/unavailable/);
  });

  it('close() aborts a request that is waiting for an answer', async () => {
    srv.handler = () => undefined; // never answers
    const c = make();
    const p = c.get('/slow');
    setTimeout(() => c.close(), 100);
    const t0 = Date.now();
    const err = await rejection(p);
    expect(err.name).to.equal('AbortError');
    expect(err).to.be.instanceOf(GraphAbortError);
    expect(Date.now() - t0).to.be.below(1000);
    const again = await rejection(c.get('/x'));
    expect(isAbortError(again)).to.equal(true);
  });
});


// ------------------------------------------------------------ simulated Graph

const SIM_ROLES = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.ReadWrite.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementConfiguration.Read.All',
];

describe('graph client against the simulated Graph', function () {
  this.timeout(30_000);
  const DEVICES = 5000;
  let tenant: SimTenant;
  let sim: GraphSim;
  let agent: https.Agent;
  const clients: GraphClient[] = [];

  before(async () => {
    tenant = new SimTenant({ seed: 11, devices: DEVICES });
    sim = new GraphSim({
      tls: sharedTestCa().server,
      tenant,
      pageSize: 1000,
      verifyToken: (token) => {
        if (!token.startsWith('tok-')) throw Object.assign(new Error('Access token validation failure.'), { code: 'InvalidAuthenticationToken' });
        return { tid: tenant.tenantId, roles: SIM_ROLES, appid: 'graph-client-test' };
      },
    });
    await sim.start();
  });
  after(async () => {
    await sim?.stop();
  });
  beforeEach(() => {
    agent = createHttpsAgent({ ca: sharedTestCa().certPem });
    sim.clearFaults();
    sim.setRetryAfter(true);
    sim.setPageSize(1000);
    sim.setLimits({ windowMs: 20_000, devices: { appRequests: 2000, appWrites: 200 } });
    sim.resetThrottling();
    sim.resetStats();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    agent.destroy();
  });

  function make(o: Partial<GraphClientOptions> = {}): GraphClient {
    const c = new GraphClient({
      baseUrl: sim.url,
      agent,
      getToken: async () => 'tok-sim',
      retry: { baseDelayMs: 20, maxDelayMs: 200, maxTotalWaitMs: 10_000 },
      ...o,
    });
    clients.push(c);
    return c;
  }

  function newStats(): RequestStats {
    return { requests: 0, retries: 0, throttled: 0, throttleWaitMs: 0, batches: 0, pacingWaitMs: 0 };
  }

  async function allIds(c: GraphClient, stats?: RequestStats, signal?: AbortSignal): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let pages = 0;
    for await (const p of c.pages<{ id: string }>('/deviceManagement/managedDevices', { select: ['id', 'deviceName'], stats, signal })) {
      pages = p.page;
      for (const d of p.items) ids.push(d.id);
    }
    return { ids, pages };
  }

  function expectEveryDeviceOnce(ids: string[]): void {
    expect(ids).to.have.length(DEVICES);
    expect(new Set(ids).size).to.equal(DEVICES);
    const expected = new Set(Array.from({ length: DEVICES }, (_, i) => tenant.deviceIdAt(i)));
    for (const id of ids) expect(expected.has(id), id).to.equal(true);
  }

  const deviceIds = (n: number, from = 0) => Array.from({ length: n }, (_, i) => tenant.deviceIdAt(from + i));

  it(`pages ${DEVICES} devices: each exactly once, one request per page`, async () => {
    const c = make();
    const stats = newStats();
    const { ids, pages } = await allIds(c, stats);
    expectEveryDeviceOnce(ids);
    expect(pages).to.equal(5);
    expect(sim.stats.requests).to.equal(5);
    expect(stats.requests).to.equal(5);
    expect(stats.retries).to.equal(0);
  });

  it('recovers from 503, 504 and dropped connections (before and during the answer) while paging', async () => {
    sim.failNext(1, { path: 'skiptoken', status: 503 });
    sim.failNext(1, { path: 'skiptoken', status: 504 });
    sim.dropNext(1, { path: 'skiptoken' });
    sim.dropNext(1, { path: 'skiptoken', phase: 'midResponse' });
    const c = make();
    const stats = newStats();
    const { ids } = await allIds(c, stats);
    expectEveryDeviceOnce(ids);
    expect(sim.stats.faults).to.deep.include({ status: 2, dropped: 2 });
    expect(stats.retries).to.equal(4);
    expect(sim.stats.requests).to.equal(5 + 4);
  });

  it('survives throttling that says Retry-After', async function () {
    sim.setLimits({ windowMs: 1000, devices: { appRequests: 4 } });
    const c = make();
    const stats = newStats();
    const t0 = Date.now();
    const got = await Promise.all(deviceIds(10).map((id) => c.get<{ id: string }>(`/deviceManagement/managedDevices/${id}`, { select: ['id'], stats })));
    expect(got.map((d) => d.id)).to.deep.equal(deviceIds(10));
    expect(sim.stats.throttled).to.be.greaterThan(0);
    expect(stats.throttled, 'every 429 the sim sent was seen').to.equal(sim.stats.throttled);
    expect(stats.retries).to.equal(stats.throttled);
    // Retry-After from the sim is at least 1 s
    expect(stats.throttleWaitMs).to.be.at.least(1000);
    expect(Date.now() - t0).to.be.below(15_000);
  });

  it('survives throttling without Retry-After, backing off on its own', async () => {
    sim.setLimits({ windowMs: 1000, devices: { appRequests: 4 } });
    sim.setRetryAfter(false);
    const c = make({ retry: { baseDelayMs: 100, maxDelayMs: 800, maxTotalWaitMs: 20_000, maxRetries: 30 } });
    const stats = newStats();
    const got = await Promise.all(deviceIds(10).map((id) => c.get<{ id: string }>(`/deviceManagement/managedDevices/${id}`, { select: ['id'], stats })));
    expect(got).to.have.length(10);
    expect(sim.stats.throttled).to.be.greaterThan(0);
    expect(stats.throttled).to.equal(sim.stats.throttled);
    expect(sim.stats.byStatus['200']).to.equal(10);
  });

  it('$batch: retries only the inner requests that were throttled, once per action', async () => {
    sim.throttleNext(3, { scope: 'batchItem', retryAfter: 1 });
    const c = make();
    const stats = newStats();
    const ids = deviceIds(20, 100);
    const t0 = Date.now();
    const out = await c.batch(
      ids.map((id) => ({ id, method: 'POST' as const, url: `/deviceManagement/managedDevices/${id}/syncDevice`, body: {} })),
      { stats },
    );
    expect([...out.values()].map((r) => r.status)).to.deep.equal(Array(20).fill(204));
    expect([...out.keys()].sort()).to.deep.equal([...ids].sort());
    expect(sim.stats.batches).to.equal(2);
    expect(sim.stats.batchInner, 'first 20, then only the 3 throttled').to.equal(23);
    expect(sim.stats.throttledBatchItems).to.equal(3);
    expect(sim.stats.actions.syncDevice, 'no device got a second sync').to.equal(20);
    expect(stats).to.deep.include({ requests: 23, batches: 2, throttled: 3, retries: 3 });
    expect(Date.now() - t0, 'waited the inner Retry-After').to.be.at.least(950);
  });

  it('$batch: splits 45 reads into chunks and matches shuffled answers by id', async () => {
    const c = make();
    const ids = deviceIds(45, 300);
    const out = await c.batch(ids.map((id) => ({ id: `r-${id}`, method: 'GET' as const, url: `/deviceManagement/managedDevices/${id}?$select=id,deviceName` })));
    expect(sim.stats.batches).to.equal(3);
    for (const id of ids) {
      const r = out.get(`r-${id}`);
      expect(r?.status).to.equal(200);
      expect(r?.body.id).to.equal(id);
    }
  });

  it('gives up after the total-wait bound with a clear error, and a still-throttled $batch item keeps its 429', async () => {
    sim.throttleNext(100, { retryAfter: 1 });
    const c = make({ retry: { maxTotalWaitMs: 2500, baseDelayMs: 20, maxDelayMs: 200 } });
    const t0 = Date.now();
    const err = await rejection(c.get(`/deviceManagement/managedDevices/${tenant.deviceIdAt(0)}`));
    const took = Date.now() - t0;
    expect(err).to.be.instanceOf(GraphRequestError);
    expect(err.status).to.equal(429);
    expect(err.retryable).to.equal(true);
    expect(err.message).to.match(/throttling/);
    expect(err.message).to.match(/limit of 2\.5 s/);
    expect(err.message).to.match(/3 attempts and 2 s of waiting/);
    expect(took).to.be.within(1900, 4000);
    expect(sim.stats.requests).to.equal(3);

    sim.clearFaults();
    sim.resetStats();
    sim.throttleNext(100, { scope: 'batchItem', retryAfter: 1 });
    const out = await c.batch([{ id: 'a', method: 'GET', url: `/deviceManagement/managedDevices/${tenant.deviceIdAt(1)}` }]);
    expect(out.get('a')?.status).to.equal(429);
    expect(out.get('a')?.headers?.['retry-after']).to.equal('1');
    expect(sim.stats.batches).to.equal(3);
  });

  it('a Retry-After longer than the wait budget fails that item at once and does not stall the rest of the tenant', async () => {
    // E.g. Intune's per-device notification limit answers with an hour-long Retry-After.
    sim.throttleNext(1, { scope: 'batchItem', retryAfter: 3600 });
    const c = make({ retry: { maxTotalWaitMs: 5000, baseDelayMs: 20, maxDelayMs: 200 } });
    const t0 = Date.now();
    const out = await c.batch([{ id: 'slow', method: 'POST', url: `/deviceManagement/managedDevices/${tenant.deviceIdAt(2)}/syncDevice`, body: {} }]);
    expect(out.get('slow')?.status).to.equal(429);
    const single = await c.get<{ id: string }>(`/deviceManagement/managedDevices/${tenant.deviceIdAt(3)}`, { select: ['id'] });
    expect(single.id).to.equal(tenant.deviceIdAt(3));
    expect(Date.now() - t0, 'nothing waited for the hour-long Retry-After').to.be.below(2000);
  });

  it('an abort through the signal ends a run within moments, in flight, and nothing more reaches Graph', async () => {
    sim.setPageSize(500);
    sim.delayNext(1000, 1500); // every answer takes 1.5 s
    const c = make();
    const ctl = new AbortController();
    let abortedAt = 0;
    setTimeout(() => {
      abortedAt = Date.now();
      ctl.abort();
    }, 2000); // the second page is in flight then
    const err = await rejection(allIds(c, undefined, ctl.signal));
    expect(err.name).to.equal('AbortError');
    expect(Date.now() - abortedAt, 'the request in flight was cancelled').to.be.below(500);
    const n = sim.stats.requests;
    expect(n).to.equal(2);
    await sleep(600);
    expect(sim.stats.requests, 'no request after the abort').to.equal(n);
    // an aborted call does not spoil the client
    sim.clearFaults();
    expect((await c.get<{ value: unknown[] }>('/deviceManagement/managedDevices', { top: 1, select: ['id'] })).value).to.have.length(1);
  });

  it('close() ends waits for Retry-After and for pacing at once; no request reaches Graph afterwards', async () => {
    sim.throttleNext(100, { retryAfter: 30 });
    const c = make({ limits: { requestsPer20s: 4, windowMs: 60_000 }, retry: { maxTotalWaitMs: 120_000 } });
    const calls = deviceIds(8).map((id) => c.get(`/deviceManagement/managedDevices/${id}`).then(() => null, (e: Error) => e));
    // Wait for the window's 4 to reach the sim, then make sure nothing more follows them.
    for (let i = 0; i < 60 && sim.stats.requests < 4; i++) await sleep(50);
    await sleep(300);
    const before = sim.stats.requests;
    expect(before, 'only what fits the pacing window went out').to.equal(4);
    const t0 = Date.now();
    c.close();
    const errs = await Promise.all(calls);
    expect(Date.now() - t0).to.be.below(1000);
    for (const e of errs) expect(e?.name).to.equal('AbortError');
    await sleep(500);
    expect(sim.stats.requests).to.equal(before);
  });

  it('pacing keeps every window under the configured limit (the sim throttles at that limit)', async () => {
    // The client counts each request from its send until a window after its answer, so
    // the sim, counting arrivals, may throttle at exactly the limit.
    sim.setLimits({ windowMs: 1000, devices: { appRequests: 20 } });
    const c = make({ limits: { requestsPer20s: 20, windowMs: 1000 } });
    const stats = newStats();
    const t0 = Date.now();
    await Promise.all(deviceIds(40, 1000).map((id) => c.get(`/deviceManagement/managedDevices/${id}`, { select: ['id'], stats })));
    const times = sim.requestLog.filter((e) => !e.batchItem).map((e) => Date.parse(e.at));
    expect(sim.stats.throttled, 'the sim never had to throttle').to.equal(0);
    expect(times).to.have.length(40);
    expect(maxInWindow(times, 1000)).to.be.at.most(20);
    expect(stats.pacingWaitMs).to.be.greaterThan(0);
    expect(Date.now() - t0).to.be.below(8000);
  });
});
