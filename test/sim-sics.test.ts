/**
 * The simulated SICS bus and ACMP servers, and the SICS client against them:
 * sessions (sign-in, wrong password, expiry and renewal), TLS with and
 * without the CA, the unencrypted fallback (allowed or not, on a port that
 * speaks both or only plain HTTP), unreachable hosts, every ACMP result code
 * at the SICS level and in ACMP replies (retried or not), reply timeouts,
 * routing to several servers, job emission and consumption, aborting and
 * closing, and "Verify connection"; the public call shapes (sics.md) and
 * nothing kinder: `{VirtualRouterName}`, DELETE with the name in the path,
 * 60 s sessions; replies correlated by a reply channel per request, in
 * our own form or as ACMP's generic Public API answer.
 */
import net from 'node:net';
import { expect } from 'chai';
import { SicsClient } from '../nodes/lib/acmp/sics-client';
import { SicsError, RESULT_CODES } from '../nodes/lib/acmp/sics-errors';
import { parseSicsSettings, type SicsSettings } from '../nodes/lib/acmp/sics-settings';
import { verifySicsConnection } from '../nodes/lib/acmp/sics-verify';
import { decodeMessage, encodeMessage, header, type ActionJobMessage, type ReplyMessage } from '../nodes/lib/acmp/acmp-wire';
import { SicsSim } from '../sim/sics';
import { sharedTestCa } from '../sim/pki';
import { SICS_PASSWORD, SICS_USER, makeDevice, startAcmpEnv, type AcmpEnv } from './support/acmp-fixtures';

const ping = () => ({ kind: 'ping' as const, header: header() });

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function raw(port: number, path: string, body: unknown, session?: string, method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(session ? { 'X-SICS-SESSION': session } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('simulated SICS and the SICS client', function () {
  this.timeout(30_000);
  let env: AcmpEnv;
  const logs: string[] = [];
  const clients: SicsClient[] = [];

  before(async () => {
    env = await startAcmpEnv({ servers: 2 });
  });
  after(async () => {
    await env?.stop();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    env.sics.clearFaults();
    for (const s of env.servers) s.clearFaults();
    env.sics.sessionTtlMs = 60_000;
    for (const s of env.servers) s.answers = 'reply';
    for (const l of logs) {
      expect(l).to.not.include(SICS_PASSWORD);
    }
    logs.length = 0;
  });

  function settings(over: Record<string, unknown>, ca: string | undefined, port: number): SicsSettings {
    return parseSicsSettings({ host: '127.0.0.1', port, useTls: true, timeoutSec: 5, retries: 2, retryBaseMs: 10, consumeWaitMs: 300, servers: env.servers.map((s) => s.route), ...over }, ca);
  }

  /** A client; `ca: null` = without the test CA (the simulator's certificate is then untrusted). */
  function client(over: Record<string, unknown> = {}, o: { ca?: string | null; password?: string; port?: number } = {}): SicsClient {
    const ca = o.ca === null ? undefined : (o.ca ?? env.caPem);
    const c = new SicsClient(settings(over, ca, o.port ?? env.sics.port), { user: SICS_USER, password: o.password ?? SICS_PASSWORD }, { warn: (m) => logs.push(m), debug: (m) => logs.push(m) });
    clients.push(c);
    return c;
  }

  // ------------------------------------------------------------------ the simulator itself

  describe('simulator', () => {
    it('sign-in: a session token for the right password, 401 with code 15 for a wrong one, 401 with code 7 without a session', async () => {
      const bad = await raw(env.sics.port, '/Session', { UserName: SICS_USER, Password: 'nope' });
      expect(bad.status).to.equal(401);
      expect(bad.body.ResultCode).to.equal(15);
      const ok = await raw(env.sics.port, '/Session', { UserName: SICS_USER, Password: SICS_PASSWORD });
      expect(ok.body.ResultCode).to.equal(0);
      expect(ok.body.Session).to.match(/^[0-9a-f]{48}$/);
      const none = await raw(env.sics.port, '/VirtualRouter', { VirtualRouterName: 'X' });
      expect(none.status).to.equal(401);
      expect(none.body.ResultCode).to.equal(7);
      const withS = await raw(env.sics.port, '/VirtualRouter', { VirtualRouterName: 'X' }, ok.body.Session as string);
      expect(withS.body.ResultCode).to.equal(0);
    });

    it('takes the public shapes only: {VirtualRouterName}, {TargetName}, DELETE /Target/{name} and /VirtualRouter/{name} without a body; the invented ones get 400 / code 35', async () => {
      const s = (await raw(env.sics.port, '/Session', { UserName: SICS_USER, Password: SICS_PASSWORD })).body.Session as string;
      const invented = await raw(env.sics.port, '/VirtualRouter', { Name: 'ch1' }, s);
      expect([invented.status, invented.body.ResultCode]).to.deep.equal([400, 35]);
      expect((await raw(env.sics.port, '/VirtualRouter', { VirtualRouterName: 'ch1' }, s)).body.ResultCode).to.equal(0);
      // {TargetName} alone: a target in the router of that name, bound to the routing key of that name
      expect((await raw(env.sics.port, '/Target', { TargetName: 'ch1' }, s)).body.ResultCode).to.equal(0);
      expect(env.sics.hasTarget('ch1', 'ch1')).to.equal(true);
      await raw(env.sics.port, '/Publish', { VirtualRouter: 'ch1', Routing_Key: 'ch1', ExchangeType: 'ROUTING', Body: Buffer.from('<a/>').toString('base64') }, s);
      expect(env.sics.queued('ch1', 'ch1')).to.deep.equal(['<a/>']);
      const withBody = await raw(env.sics.port, '/Target', { VirtualRouter: 'ch1', TargetName: 'ch1' }, s, 'DELETE');
      expect([withBody.status, withBody.body.ResultCode]).to.deep.equal([400, 35]);
      const bodyInPath = await raw(env.sics.port, '/Target/ch1', { TargetName: 'ch1' }, s, 'DELETE');
      expect([bodyInPath.status, bodyInPath.body.ResultCode]).to.deep.equal([400, 35]);
      expect(env.sics.hasTarget('ch1', 'ch1')).to.equal(true);
      expect((await raw(env.sics.port, '/Target/ch1', undefined, s, 'DELETE')).body.ResultCode).to.equal(0);
      expect(env.sics.hasTarget('ch1', 'ch1')).to.equal(false);
      expect((await raw(env.sics.port, '/Target/ch1', undefined, s, 'DELETE')).body.ResultCode).to.equal(30);
      expect((await raw(env.sics.port, '/VirtualRouter/ch1', undefined, s, 'DELETE')).body.ResultCode).to.equal(0);
      expect(env.sics.routerNames()).to.not.include('ch1');
    });

    it('routes by virtual router and routing key to targets and ACMP servers; consume waits for messages', async () => {
      const s = (await raw(env.sics.port, '/Session', { UserName: SICS_USER, Password: SICS_PASSWORD })).body.Session as string;
      await raw(env.sics.port, '/VirtualRouter', { VirtualRouterName: 'VR' }, s);
      await raw(env.sics.port, '/Target', { VirtualRouter: 'VR', TargetName: 'q1', Routing_Keys: ['k1'] }, s);
      expect((await raw(env.sics.port, '/Publish', { VirtualRouter: 'nope', Routing_Key: 'k1', ExchangeType: 'ROUTING', Body: 'AA==' }, s)).body.ResultCode).to.equal(30);
      expect((await raw(env.sics.port, '/Publish', { VirtualRouter: 'VR', Routing_Key: 'k1', ExchangeType: 'ROUTING', Body: 'not base64!' }, s)).body.ResultCode).to.equal(35);
      expect((await raw(env.sics.port, '/Publish', { VirtualRouter: 'VR', Routing_Key: 'k1', Body: 'AA==' }, s)).body.ResultCode, 'no ExchangeType').to.equal(35);
      const waiting = raw(env.sics.port, '/Consume', { VirtualRouter: 'VR', TargetName: 'q1', Wait: true, WaitTimeout: 5000, MaxMessages: 10 }, s);
      await new Promise((r) => setTimeout(r, 50));
      await raw(env.sics.port, '/Publish', { VirtualRouter: 'VR', Routing_Key: 'other', ExchangeType: 'ROUTING', Body: Buffer.from('<x/>').toString('base64') }, s);
      await raw(env.sics.port, '/Publish', { VirtualRouter: 'VR', Routing_Key: 'k1', ExchangeType: 'ROUTING', Body: Buffer.from('<y/>').toString('base64') }, s);
      const got = await waiting;
      expect((got.body.Messages as Array<{ Body: string }>).map((m) => Buffer.from(m.Body, 'base64').toString())).to.deep.equal(['<y/>']);
      const empty = await raw(env.sics.port, '/Consume', { VirtualRouter: 'VR', TargetName: 'q1', Wait: true, WaitTimeout: 100 }, s);
      expect(empty.body.Messages).to.deep.equal([]);
      expect((await raw(env.sics.port, '/Consume', { VirtualRouter: 'VR', TargetName: 'nope' }, s)).body.ResultCode).to.equal(30);
    });

    it('a session is valid 60 s from its sign-in (by default), used or not; then code 7', async () => {
      expect(new SicsSim().sessionTtlMs).to.equal(60_000);
      env.sics.sessionTtlMs = 600;
      const t0 = Date.now();
      const s = (await raw(env.sics.port, '/Session', { UserName: SICS_USER, Password: SICS_PASSWORD })).body.Session as string;
      for (let i = 0; i < 4; i++) {
        expect((await raw(env.sics.port, '/VirtualRouter', { VirtualRouterName: 'X' }, s)).body.ResultCode).to.equal(0);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 650 - (Date.now() - t0))));
      const late = await raw(env.sics.port, '/VirtualRouter', { VirtualRouterName: 'X' }, s);
      expect([late.status, late.body.ResultCode]).to.deep.equal([401, 7]);
    });

    it('each ACMP server stores devices per instance, enforces its licence amount and removes only its instance\'s devices', async () => {
      const c = client();
      const [a, b] = env.servers;
      a.clear();
      b.clear();
      a.licenceLimit = 2;
      try {
        const devs = [makeDevice(), makeDevice(), makeDevice()];
        const r1 = await c.call(a.route, { kind: 'inventory', header: header({ instance: 'I1' }), onDemandDefinition: 'D', runId: 'r', mode: 'full', page: 1, batch: 1, devices: devs });
        expect(r1.reply.failed.map((f) => [f.intuneId, f.code])).to.deep.equal([[devs[2].id, 32]]);
        expect(a.storedDevices('I1').map((d) => d.id).sort()).to.deep.equal([devs[0].id, devs[1].id].sort());
        expect(b.devices.size).to.equal(0);
        const r2 = await c.call(a.route, { kind: 'removal', header: header({ instance: 'OTHER' }), onDemandDefinition: 'D', runId: 'r', deviceIds: [devs[0].id] });
        expect(r2.reply.failed[0]).to.include({ intuneId: devs[0].id, code: 30 });
        expect(a.devices.has(devs[0].id)).to.equal(true);
        const r3 = await c.call(a.route, { kind: 'removal', header: header({ instance: 'I1' }), onDemandDefinition: 'D', runId: 'r', deviceIds: [devs[0].id] });
        expect(r3.reply.failed).to.deep.equal([]);
        expect(a.devices.has(devs[0].id)).to.equal(false);
      } finally {
        a.licenceLimit = undefined;
      }
    });
  });

  // ------------------------------------------------------------------ sessions and transport

  describe('sessions and transport', () => {
    it('signs in over TLS with the CA and answers a ping of each server', async () => {
      const c = client();
      for (const s of env.servers) {
        const { reply, attempts } = await c.call(s.route, ping());
        expect(reply.code).to.equal(0);
        expect(reply.header.serverId).to.equal(s.serverId);
        expect(attempts).to.equal(1);
      }
      expect(c.transport).to.equal('https');
      expect(c.health.code).to.equal('connected');
    });

    it('wrong password: a clear error (code 15), no retry, error health, password nowhere', async () => {
      const before = env.sics.stats.loginFailures;
      const c = client({}, { password: 'wrong-password-123' });
      try {
        await c.call(env.servers[0].route, ping());
        expect.fail('should throw');
      } catch (err) {
        const e = err as SicsError;
        expect(e.code).to.equal('wrongCredentials');
        expect(e.resultCode).to.equal(15);
        expect(e.message).to.match(/user name or password/);
        expect(e.message).to.not.include('wrong-password-123');
      }
      expect(env.sics.stats.loginFailures - before).to.equal(1);
      expect(c.health).to.include({ level: 'error', code: 'wrongCredentials' });
    });

    it('session expiry (code 7): signs in again and repeats the request', async () => {
      const c = client();
      await c.call(env.servers[0].route, ping());
      const logins = env.sics.stats.logins;
      env.sics.expireSessions();
      const { reply } = await c.call(env.servers[0].route, ping());
      expect(reply.code).to.equal(0);
      expect(env.sics.stats.logins - logins).to.equal(1);
      expect(c.stats.relogins).to.be.greaterThan(0);
    });

    it('signs in again before the session\'s time is up, as the public client does, instead of running into code 7', async () => {
      env.sics.sessionTtlMs = 400;
      const c = new SicsClient(settings({}, env.caPem, env.sics.port), { user: SICS_USER, password: SICS_PASSWORD }, { warn: (m) => logs.push(m) }, { sessionValidMs: 400 });
      clients.push(c);
      const invalid = env.sics.stats.invalidSession;
      const logins = env.sics.stats.logins;
      for (let i = 0; i < 4; i++) {
        await c.call(env.servers[0].route, ping());
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(env.sics.stats.logins - logins).to.be.greaterThan(1);
      expect(env.sics.stats.invalidSession - invalid, 'no request ran into an expired session').to.equal(0);
      expect(c.stats.relogins).to.equal(0);
    });

    it('short session lifetime: keeps working across many renewals', async () => {
      env.sics.sessionTtlMs = 250;
      const c = client();
      for (let i = 0; i < 4; i++) {
        await c.call(env.servers[i % 2].route, ping());
        await new Promise((r) => setTimeout(r, 260));
      }
      expect(c.stats.relogins).to.be.greaterThan(1);
    });

    it('unreachable host: gives up after the retries with a plain error', async () => {
      const port = await freePort();
      const c = client({ retries: 2 }, { port });
      const t0 = Date.now();
      try {
        await c.login();
        expect.fail('should throw');
      } catch (err) {
        expect((err as SicsError).code).to.equal('unreachable');
        expect((err as Error).message).to.match(/cannot be reached \(ECONNREFUSED\)/);
      }
      expect(c.stats.retries).to.equal(2);
      expect(Date.now() - t0).to.be.lessThan(5_000);
    });

    it('TLS failure (untrusted certificate) without the fallback: a TLS error, nothing sent in clear text', async () => {
      const plain = env.sics.stats.plainConnections;
      const c = client({}, { ca: null });
      try {
        await c.login();
        expect.fail('should throw');
      } catch (err) {
        expect((err as SicsError).code).to.equal('tlsError');
        expect((err as Error).message).to.match(/TLS connection failed/);
      }
      expect(env.sics.stats.plainConnections).to.equal(plain);
      expect(c.transport).to.equal(null);
    });

    it('TLS failure with "allow unencrypted": continues over HTTP on the same port, says so in health and log', async () => {
      const plain = env.sics.stats.plainConnections;
      const c = client({ allowUnencrypted: true }, { ca: null });
      const healths: string[] = [];
      c.on('health', (h: { code: string }) => healths.push(h.code));
      const { reply } = await c.call(env.servers[1].route, ping());
      expect(reply.code).to.equal(0);
      expect(c.transport).to.equal('http-fallback');
      expect(c.health).to.include({ level: 'warn', code: 'unencrypted' });
      expect(healths).to.include('unencrypted');
      expect(logs.some((l) => /WITHOUT encryption/.test(l))).to.equal(true);
      expect(env.sics.stats.plainConnections).to.be.greaterThan(plain);
    });

    it('a SICS that speaks only plain HTTP: TLS fails without the fallback, works with it', async () => {
      const sim = new SicsSim({ protocols: 'http', users: { [SICS_USER]: SICS_PASSWORD } });
      await sim.start();
      try {
        sim.addAcmpServer({ serverId: 'P1' });
        const route = sim.servers.get('P1')!.route;
        const strict = client({ servers: [route] }, { port: sim.port });
        try {
          await strict.login();
          expect.fail('should throw');
        } catch (err) {
          expect((err as SicsError).code).to.equal('tlsError');
        }
        const lenient = client({ servers: [route], allowUnencrypted: true }, { port: sim.port });
        expect((await lenient.call(route, ping())).reply.code).to.equal(0);
        expect(lenient.transport).to.equal('http-fallback');
        const plainByChoice = client({ servers: [route], useTls: false }, { port: sim.port });
        expect((await plainByChoice.call(route, ping())).reply.code).to.equal(0);
        expect(plainByChoice.transport).to.equal('http');
      } finally {
        await Promise.all(clients.splice(0).map((c) => c.close()));
        await sim.stop();
      }
    });

    it('a SICS that speaks only HTTPS: a plain-HTTP client cannot connect', async () => {
      const sim = new SicsSim({ protocols: 'https', tls: sharedTestCa().server, users: { [SICS_USER]: SICS_PASSWORD } });
      await sim.start();
      try {
        const c = client({ useTls: false, retries: 0 }, { port: sim.port });
        try {
          await c.login();
          expect.fail('should throw');
        } catch (err) {
          expect(['unreachable', 'httpError']).to.include((err as SicsError).code);
        }
      } finally {
        await Promise.all(clients.splice(0).map((c) => c.close()));
        await sim.stop();
      }
    });
  });

  // ------------------------------------------------------------------ result codes

  describe('result codes', () => {
    const retried = [18, 19, -1];
    const final: Record<number, string> = { 15: 'wrongCredentials', 26: 'clientMissing', 30: 'notFound', 32: 'licenceLimit', 35: 'invalidRequest', 99: 'unknownCode' };

    it('the table covers every public ACMP code', () => {
      expect(Object.keys(RESULT_CODES).map(Number).sort((a, b) => a - b)).to.deep.equal([-1, 7, 15, 18, 19, 26, 30, 32, 35]);
    });

    for (const code of [7, ...retried, ...Object.keys(final).map(Number)]) {
      it(`SICS answers ${code} to a publish`, async () => {
        const c = client();
        await c.login();
        const publishes = env.sics.stats.byPath['POST /Publish'] ?? 0;
        env.sics.failNext({ path: '/Publish', resultCode: code });
        const p = c.publish({ virtualRouter: 'ACMP', routingKey: 'nobody', xml: '<x/>' });
        if (code === 7 || retried.includes(code)) {
          await p;
          expect((env.sics.stats.byPath['POST /Publish'] ?? 0) - publishes).to.equal(2);
          if (code === 7) expect(c.stats.relogins).to.equal(1);
          else expect(c.stats.retries).to.equal(1);
        } else {
          try {
            await p;
            expect.fail('should throw');
          } catch (err) {
            const e = err as SicsError;
            expect(e.code).to.equal(final[code]);
            expect(e.resultCode).to.equal(code);
            expect(e.message).to.include(`result code ${code}`);
          }
          expect((env.sics.stats.byPath['POST /Publish'] ?? 0) - publishes).to.equal(1);
        }
      });

      for (const style of ['reply', 'generic'] as const) it(`an ACMP server replies ${code} (${style === 'reply' ? 'our own reply' : 'generic Public API answer'})`, async () => {
        const c = client();
        const srv = env.servers[0];
        srv.answers = style;
        const before = srv.stats.messages.ping ?? 0;
        srv.failNext({ kind: 'ping', code });
        const p = c.call(srv.route, ping());
        if (code === 7 || retried.includes(code)) {
          const { reply, attempts } = await p;
          expect(reply.code).to.equal(0);
          expect(attempts).to.equal(code === 7 ? 1 : 2);
          expect((srv.stats.messages.ping ?? 0) - before).to.equal(2);
        } else {
          try {
            await p;
            expect.fail('should throw');
          } catch (err) {
            const e = err as SicsError;
            expect(e.code).to.equal(final[code]);
            expect(e.resultCode).to.equal(code);
            expect(e.message).to.match(new RegExp(`^ACMP server SRV1: .*result code ${code}`));
          }
          expect((srv.stats.messages.ping ?? 0) - before).to.equal(1);
        }
      });
    }

    it('a retryable code that persists fails after the retries', async () => {
      const c = client({ retries: 2 });
      env.servers[0].failNext({ kind: 'ping', code: 19, count: 5 });
      try {
        await c.call(env.servers[0].route, ping());
        expect.fail('should throw');
      } catch (err) {
        expect((err as SicsError).code).to.equal('databaseError');
      }
      expect(c.stats.retries).to.equal(2);
    });

    it('a lost reply times out and the message is sent again', async () => {
      const c = client();
      env.servers[1].failNext({ kind: 'ping', drop: true });
      const { reply, attempts } = await c.call(env.servers[1].route, ping(), { replyTimeoutMs: 300 });
      expect(reply.code).to.equal(0);
      expect(attempts).to.equal(2);
      expect(c.stats.replyTimeouts).to.equal(1);
    });

    it('HTTP failures without a result code map to codes (5xx retried, connection drop retried)', async () => {
      const c = client();
      await c.login();
      env.sics.failNext({ path: '/Publish', status: 503 });
      env.sics.failNext({ path: '/Publish', drop: true });
      await c.publish({ virtualRouter: 'ACMP', routingKey: 'nobody', xml: '<x/>' });
      expect(c.stats.retries).to.equal(2);
    });
  });

  // ------------------------------------------------------------------ jobs, abort, close, verify

  describe('jobs, abort, close, verify', () => {
    it('a job an ACMP server emits arrives in a target bound to the jobs routing key', async () => {
      const c = client();
      await c.ensureTarget('IntuneConnector', 'jobs-test', ['intune.jobs']);
      const id = env.servers[0].emitJob({ action: 'lock', clients: [{ acmpClientId: 'C1', intuneId: '0f8c5c9e-1111-4222-8333-944455556666' }] });
      const msgs = await c.consume({ virtualRouter: 'IntuneConnector', targetName: 'jobs-test', waitMs: 2000 });
      expect(msgs).to.have.length(1);
      const job = decodeMessage(msgs[0].xml) as ActionJobMessage;
      expect(job).to.include({ kind: 'actionJob', jobId: id, action: 'lock' });
      expect(job.header.serverId).to.equal('SRV1');
      await c.deleteTarget('jobs-test');
      expect(env.sics.hasTarget('IntuneConnector', 'jobs-test')).to.equal(false);
    });

    it('a job status for an unknown job is answered with code 30; for a known job it is recorded', async () => {
      const c = client();
      const srv = env.servers[1];
      try {
        await c.call(srv.route, { kind: 'jobStatus', header: header(), jobId: 'nope', state: 'finished', finishedAt: new Date().toISOString(), clients: [] });
        expect.fail('should throw');
      } catch (err) {
        expect((err as SicsError).resultCode).to.equal(30);
      }
      const id = srv.emitJob({ action: 'sync', clients: [{ intuneId: '0f8c5c9e-1111-4222-8333-944455556666' }] });
      await c.call(srv.route, { kind: 'jobStatus', header: header(), jobId: id, state: 'finished', finishedAt: new Date().toISOString(), clients: [] });
      expect((await srv.waitForJobStatus(id, 1000)).state).to.equal('finished');
    });

    it('aborting a call stops waiting at once; closing rejects what waits and cleans up in SICS', async () => {
      const c = client();
      await c.login();
      const srv = env.servers[0];
      srv.replyDelayMs = 2_000;
      try {
        const ac = new AbortController();
        const p = c.call(srv.route, ping(), { signal: ac.signal });
        setTimeout(() => ac.abort(), 50);
        const t0 = Date.now();
        try {
          await p;
          expect.fail('should throw');
        } catch (err) {
          expect((err as SicsError).code).to.equal('aborted');
        }
        expect(Date.now() - t0).to.be.lessThan(1000);
        const channels = () => env.sics.routerNames().filter((n) => n.startsWith('IntuneConnector.'));
        // the aborted call's channel is deleted in the background
        await new Promise((r) => setTimeout(r, 200));
        expect(channels()).to.deep.equal([]);
        const sessions = env.sics.sessionCount;
        const waiting = c.call(srv.route, ping()).then(
          () => null,
          (err: SicsError) => err,
        );
        await new Promise((r) => setTimeout(r, 100));
        expect(channels(), 'a waiting call has a reply channel of its own').to.have.length(1);
        await c.close();
        const err = await waiting;
        expect(err, 'the call should fail').to.be.instanceOf(SicsError);
        expect(['closed', 'aborted']).to.include(err!.code);
        expect(channels()).to.deep.equal([]);
        expect(env.sics.sessionCount).to.equal(sessions - 1);
      } finally {
        srv.replyDelayMs = 0;
      }
    });

    it('each publish gets a reply channel of its own (public shapes), deleted afterwards', async () => {
      const c = client();
      const before = { ...env.sics.stats.byPath };
      const n = (k: string) => (env.sics.stats.byPath[k] ?? 0) - (before[k] ?? 0);
      await c.call(env.servers[0].route, ping());
      await c.call(env.servers[1].route, ping());
      await new Promise((r) => setTimeout(r, 100));
      expect(n('POST /VirtualRouter')).to.equal(2);
      expect(n('POST /Target')).to.equal(2);
      expect(n('POST /Publish')).to.equal(2);
      expect(Object.keys(env.sics.stats.byPath).filter((k) => k.startsWith('DELETE /Target/IntuneConnector.'))).to.have.length.greaterThan(0);
      expect(env.sics.routerNames().filter((r) => r.startsWith('IntuneConnector.'))).to.deep.equal([]);
      expect(n('DELETE /Target')).to.equal(0);
    });

    it('a generic ICQL answer (<T…Response_V1> with <ResultCode>) confirms a message; junk and replies to other messages on the channel are skipped', async () => {
      const c = client();
      const srv = env.servers[0];
      srv.answers = 'generic';
      expect((await c.call(srv.route, ping())).reply).to.include({ code: 0, inReplyTo: '' });
      srv.answers = 'reply';
      srv.replyDelayMs = 300;
      for (let i = 0; i < 100 && env.sics.routerNames().some((r) => r.startsWith('IntuneConnector.')); i++) await new Promise((r) => setTimeout(r, 10));
      try {
        const p = c.call(srv.route, ping());
        const channel = await (async () => {
          for (let i = 0; i < 100; i++) {
            const ch = env.sics.routerNames().find((r) => r.startsWith('IntuneConnector.') && env.sics.hasTarget(r, r));
            if (ch) return ch;
            await new Promise((r) => setTimeout(r, 5));
          }
          throw new Error('no channel');
        })();
        env.sics.route(channel, channel, Buffer.from('<junk/>').toString('base64'));
        const stray: ReplyMessage = { kind: 'reply', header: header(), inReplyTo: 'someone-else', code: 35, failed: [] };
        env.sics.route(channel, channel, Buffer.from(encodeMessage(stray, 1)).toString('base64'));
        expect((await p).reply.code).to.equal(0);
        expect(logs.some((l) => /no answer and is skipped|cannot be read/.test(l))).to.equal(true);
      } finally {
        srv.replyDelayMs = 0;
      }
    });

    it('Verify connection: signs in and pings every server, in plain words', async () => {
      const base = { host: '127.0.0.1', port: env.sics.port, useTls: true, timeoutSec: 5, retryBaseMs: 10, consumeWaitMs: 300, servers: env.servers.map((s) => s.route) };
      const ok = await verifySicsConnection(base, { user: SICS_USER, password: SICS_PASSWORD }, { ca: env.caPem });
      expect(ok).to.include({ ok: true, code: 'ok', transport: 'https' });
      expect(ok.servers.map((s) => [s.serverId, s.ok])).to.deep.equal([['SRV1', true], ['SRV2', true]]);

      const wrong = await verifySicsConnection(base, { user: SICS_USER, password: 'bad-pass-987' }, { ca: env.caPem });
      expect(wrong).to.include({ ok: false, code: 'wrongCredentials' });
      expect(JSON.stringify(wrong)).to.not.include('bad-pass-987');

      const ghost = await verifySicsConnection({ ...base, servers: [...base.servers, { serverId: 'GHOST', virtualRouter: 'ACMP', routingKey: 'acmp.ghost' }] }, { user: SICS_USER, password: SICS_PASSWORD }, { ca: env.caPem, pingTimeoutMs: 300 });
      expect(ghost).to.include({ ok: false, code: 'serverUnanswered' });
      expect(ghost.servers.find((s) => s.serverId === 'GHOST')).to.include({ ok: false, code: 'replyTimeout' });

      const fallback = await verifySicsConnection({ ...base, allowUnencrypted: true }, { user: SICS_USER, password: SICS_PASSWORD });
      expect(fallback).to.include({ ok: true, transport: 'http-fallback' });
      expect(fallback.warnings.map((w) => w.code)).to.include('unencrypted');

      const bad = await verifySicsConnection({ ...base, host: 'https://sics:3900' }, { user: SICS_USER, password: SICS_PASSWORD });
      expect(bad).to.include({ ok: false, code: 'invalidConfig' });
      expect(bad.message).to.match(/host/);
      const noPass = await verifySicsConnection(base, { user: SICS_USER });
      expect(noPass).to.include({ ok: false, code: 'invalidConfig' });
    });

    it('settings are checked in plain words', () => {
      const s = (o: Record<string, unknown>) => () => parseSicsSettings({ host: 'sics.local', ...o });
      expect(parseSicsSettings({ host: 'sics.local' })).to.include({ port: 3900, tls: true, allowUnencrypted: false, timeoutMs: 30_000 });
      expect(s({ host: '' })).to.throw(/host is required/);
      expect(s({ host: 'sics.local:3900' })).to.throw(/port/);
      expect(s({ port: 70000 })).to.throw(/port must be a whole number from 1 to 65535/);
      expect(s({ servers: [{ serverId: '*', virtualRouter: 'A', routingKey: 'b' }] })).to.throw(/"\*" is not a server id/);
      expect(s({ servers: [{ serverId: 'A', virtualRouter: 'A', routingKey: 'b' }, { serverId: 'a', virtualRouter: 'A', routingKey: 'c' }] })).to.throw(/listed twice/);
      expect(s({ servers: [{ serverId: 'A', virtualRouter: '', routingKey: 'b' }] })).to.throw(/virtual router/);
      expect(s({ servers: 'not json' })).to.throw(/not a valid list/);
      expect(parseSicsSettings({ host: 'h', useTls: false, allowUnencrypted: true }).allowUnencrypted).to.equal(false);
      expect(() => new SicsClient(parseSicsSettings({ host: 'h' }), { user: 'u' })).to.throw(SicsError, /password is required/);
    });
  });
});
