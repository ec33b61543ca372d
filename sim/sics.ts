/**
 * A simulated SICS bus (Aagon AESB) with simulated ACMP servers attached,
 * for tests and the demo. Loopback only.
 *
 * SICS side: the calls public material shows, in their public shape
 * (sics.md; the public TypeScript client named in docs/acmp-wire-format.md),
 * and nothing kinder:
 *   POST   /Session              {UserName, Password}       → {ResultCode, Session}
 *   POST   /VirtualRouter        {VirtualRouterName}        (`{Name}` is refused: 400, code 35)
 *   POST   /Target               {TargetName}               target in the virtual router of that name,
 *                                                           bound to the routing key of that name
 *   DELETE /Target/{name}        no body                    (a body, or no name in the path: 400, code 35)
 *   DELETE /VirtualRouter/{name} no body                    (with its targets)
 *   POST   /Publish              {Body (Base64), Routing_Key, VirtualRouter, ExchangeType "ROUTING" (else 35),
 *                                 Callback_VirtualRouter?, Callback_Routing_Key?}
 * Our assumptions where nothing is public (sics-client.ts says the same):
 *   POST   /Target               {TargetName, VirtualRouter, Routing_Keys[]}  bound elsewhere (the jobs target)
 *   POST   /Consume              {VirtualRouter, TargetName, Wait, WaitTimeout (ms), MaxMessages}
 *                                 → {ResultCode, Messages:[{Id, Body, Routing_Key, Callback_VirtualRouter?, Callback_Routing_Key?}]}
 *   DELETE /Session              (sign out)
 * Every request but the sign-in needs a valid X-SICS-SESSION header
 * (else HTTP 401, ResultCode 7). Wrong user or password: HTTP 401, ResultCode 15.
 * A session is valid for `sessionTtlMs` (default 60 s, what the public
 * client assumes) from its sign-in, used or not; then code 7. A consume
 * takes its messages off the queue when it answers: a client that stops
 * reading before the answer arrives has lost them (`holdAnswerMs` shows it).
 *
 * One port speaks HTTPS, plain HTTP or both (the first byte of a connection
 * tells a TLS ClientHello from an HTTP request), so "TLS fails, fall back to
 * unencrypted on the same host and port" can be tested.
 *
 * ACMP side: `addAcmpServer()` attaches a server that consumes what is
 * published to its routing key, applies our wire messages (either format;
 * `formats` limits which it reads: others get code 35) and answers on the
 * message's callback, either with our own reply (`answers: 'reply'`, with
 * per-device failures) or as ACMP answers Public API commands
 * (`answers: 'generic'`: a `<T…Response_Vn>` holding only `<ResultCode>`,
 * naming no message). It can be told to emit query-action jobs (with a
 * callback routing key for their status, or without), to answer with any
 * result code, to drop replies, and to enforce a licence limit (result code
 * 32 per device). A device's software list is replaced when one arrives and
 * kept when the device comes without one (acmp-software.ts; `softwareOf()`).
 * No message size limit: none is published for SICS.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import type { KeyPairPem } from './pki';
import type { ActionName, Device } from '../nodes/lib/contracts';
import { fromBase64, isBase64, toBase64 } from '../nodes/lib/acmp/acmp-xml';
import { softwareOf, withKeptSoftware } from './acmp-software';
import {
  COMMAND_OF,
  WireError,
  decodeMessage,
  encodeMessage,
  header,
  type WireFormat,
  type ActionJobMessage,
  type JobClient,
  type JobStatusMessage,
  type ReplyItem,
  type WireMessage,
} from '../nodes/lib/acmp/acmp-wire';

export type SimProtocols = 'both' | 'https' | 'http';

export interface SicsSimOptions {
  /** Server certificate (required for 'both' and 'https'). */
  tls?: KeyPairPem;
  /** What the port speaks. Default: 'both' with a certificate, else 'http'. */
  protocols?: SimProtocols;
  /** Accepted users (name → password). Default { intune: 'sics-secret' }. */
  users?: Record<string, string>;
  /** How long a session is valid from its sign-in. Default 60 s. */
  sessionTtlMs?: number;
  /** Longest wait a consume call may ask for. Default 30 s. */
  maxConsumeWaitMs?: number;
  port?: number;
  /** Latency added to every HTTP request before it is handled (default 0), for benchmarks. */
  latencyMs?: number;
}

export interface SicsFault {
  /** Path the fault applies to (e.g. '/Publish'); all paths when missing. */
  path?: string;
  /** Answer this result code (HTTP status 500 unless `status` is set, 401 for 7 and 15). */
  resultCode?: number;
  status?: number;
  /** Destroy the connection instead of answering. */
  drop?: boolean;
  /** Delay before handling. */
  delayMs?: number;
  /** How many requests (default 1). */
  count?: number;
  /** Consume: take the messages off the queue, then wait this long before answering. */
  holdAnswerMs?: number;
}

export interface SicsSimStats {
  requests: number;
  byPath: Record<string, number>;
  logins: number;
  loginFailures: number;
  invalidSession: number;
  publishes: number;
  publishedBytes: number;
  consumes: number;
  delivered: number;
  tlsConnections: number;
  plainConnections: number;
  faults: number;
}

interface BusMessage {
  Id: string;
  Body: string;
  Routing_Key: string;
  Callback_VirtualRouter?: string;
  Callback_Routing_Key?: string;
}

interface Waiter {
  max: number;
  resolve(msgs: BusMessage[]): void;
  timer: NodeJS.Timeout;
}

interface Target {
  name: string;
  type: string;
  routingKeys: Set<string>;
  queue: BusMessage[];
  waiters: Waiter[];
}

interface VirtualRouter {
  name: string;
  targets: Map<string, Target>;
}

type Callback = { virtualRouter: string; routingKey: string };
type Subscriber = (m: { body: string; routingKey: string; callback?: Callback }) => void;

class HttpAnswer extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.Message ?? status));
  }
}

const fail = (status: number, resultCode: number, message: string) => new HttpAnswer(status, { ResultCode: resultCode, Message: message });

export class SicsSim {
  readonly stats: SicsSimStats = {
    requests: 0,
    byPath: {},
    logins: 0,
    loginFailures: 0,
    invalidSession: 0,
    publishes: 0,
    publishedBytes: 0,
    consumes: 0,
    delivered: 0,
    tlsConnections: 0,
    plainConnections: 0,
    faults: 0,
  };
  readonly servers = new Map<string, AcmpServerSim>();
  users: Record<string, string>;
  sessionTtlMs: number;
  protocols: SimProtocols;
  /** Latency added to every request (ms, 0 = none); may be changed at any time. */
  latencyMs: number;
  private readonly sessions = new Map<string, { user: string; since: number }>();
  private readonly routers = new Map<string, VirtualRouter>();
  private readonly subscribers = new Map<string, Subscriber[]>();
  private faults: SicsFault[] = [];
  private front?: net.Server;
  private readonly httpServer: http.Server;
  private readonly tlsServer?: https.Server;
  private readonly sockets = new Set<net.Socket>();
  private listenPort = 0;
  private stopped = false;

  constructor(private readonly opts: SicsSimOptions = {}) {
    this.users = { ...(opts.users ?? { intune: 'sics-secret' }) };
    this.sessionTtlMs = opts.sessionTtlMs ?? 60_000;
    this.latencyMs = Math.max(0, opts.latencyMs ?? 0);
    this.protocols = opts.protocols ?? (opts.tls ? 'both' : 'http');
    if (this.protocols !== 'http' && !opts.tls) throw new Error('SicsSim: HTTPS needs a server certificate (tls)');
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ ResultCode: 18, Message: `simulator error: ${(err as Error).message}` }));
        }
      });
    };
    this.httpServer = http.createServer({ keepAliveTimeout: 5_000 }, handler);
    if (opts.tls) this.tlsServer = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler);
  }

  get port(): number {
    return this.listenPort;
  }

  url(scheme: 'http' | 'https' = 'https'): string {
    return `${scheme}://127.0.0.1:${this.listenPort}`;
  }

  async start(): Promise<void> {
    this.front = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.once('data', (first: Buffer) => {
        socket.pause();
        socket.unshift(first);
        const tls = first[0] === 0x16;
        if (tls && this.protocols !== 'http' && this.tlsServer) {
          this.stats.tlsConnections++;
          this.tlsServer.emit('connection', socket);
        } else if (!tls && this.protocols !== 'https') {
          this.stats.plainConnections++;
          this.httpServer.emit('connection', socket);
        } else if (tls) {
          // A plain HTTP server receiving a ClientHello answers in plain text (clients see a TLS protocol error).
          this.stats.plainConnections++;
          this.httpServer.emit('connection', socket);
        } else {
          socket.destroy();
          return;
        }
        process.nextTick(() => socket.resume());
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.front!.once('error', reject);
      this.front!.listen(this.opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.listenPort = (this.front.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const vr of this.routers.values()) for (const t of vr.targets.values()) this.flushWaiters(t);
    for (const s of this.sockets) s.destroy();
    this.httpServer.closeAllConnections?.();
    await new Promise<void>((resolve) => (this.front ? this.front.close(() => resolve()) : resolve()));
  }

  // ---------------------------------------------------------------- controls

  /** Makes every current session invalid (the next request answers 7). */
  expireSessions(): void {
    this.sessions.clear();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  failNext(f: SicsFault): void {
    this.faults.push({ count: 1, ...f });
  }

  clearFaults(): void {
    this.faults = [];
  }

  resetStats(): void {
    for (const k of Object.keys(this.stats) as Array<keyof SicsSimStats>) {
      if (k === 'byPath') this.stats.byPath = {};
      else (this.stats[k] as number) = 0;
    }
  }

  /** A target's queued (not yet consumed) messages, decoded. */
  queued(virtualRouter: string, targetName: string): string[] {
    const t = this.routers.get(virtualRouter)?.targets.get(targetName);
    return t ? t.queue.map((m) => fromBase64(m.Body)) : [];
  }

  hasTarget(virtualRouter: string, targetName: string): boolean {
    return !!this.routers.get(virtualRouter)?.targets.has(targetName);
  }

  routerNames(): string[] {
    return [...this.routers.keys()];
  }

  targetNames(virtualRouter: string): string[] {
    return [...(this.routers.get(virtualRouter)?.targets.keys() ?? [])];
  }

  addAcmpServer(o: AcmpServerSimOptions): AcmpServerSim {
    if (this.servers.has(o.serverId)) throw new Error(`ACMP server ${o.serverId} exists`);
    const s = new AcmpServerSim(this, o);
    this.servers.set(o.serverId, s);
    return s;
  }

  // ---------------------------------------------------------------- bus

  ensureRouter(name: string): VirtualRouter {
    let vr = this.routers.get(name);
    if (!vr) {
      vr = { name, targets: new Map() };
      this.routers.set(name, vr);
    }
    return vr;
  }

  /** @internal ACMP servers listen to a routing key like a bound queue would. */
  subscribe(virtualRouter: string, routingKey: string, fn: Subscriber): void {
    this.ensureRouter(virtualRouter);
    const k = `${virtualRouter}\u0000${routingKey}`;
    this.subscribers.set(k, [...(this.subscribers.get(k) ?? []), fn]);
  }

  /** Routes a message (Base64 body) to the targets bound to the key and to subscribed ACMP servers. */
  route(virtualRouter: string, routingKey: string, body: string, callback?: Callback): number {
    let delivered = 0;
    const vr = this.routers.get(virtualRouter);
    if (vr) {
      for (const t of vr.targets.values()) {
        if (!t.routingKeys.has(routingKey) && !t.routingKeys.has('#')) continue;
        this.enqueue(t, { Id: randomUUID(), Body: body, Routing_Key: routingKey, ...(callback ? { Callback_VirtualRouter: callback.virtualRouter, Callback_Routing_Key: callback.routingKey } : {}) });
        delivered++;
      }
    }
    for (const fn of this.subscribers.get(`${virtualRouter}\u0000${routingKey}`) ?? []) {
      delivered++;
      setImmediate(() => fn({ body, routingKey, callback }));
    }
    return delivered;
  }

  private enqueue(t: Target, m: BusMessage): void {
    t.queue.push(m);
    while (t.waiters.length && t.queue.length) {
      const w = t.waiters.shift()!;
      clearTimeout(w.timer);
      w.resolve(t.queue.splice(0, w.max));
    }
  }

  private flushWaiters(t: Target): void {
    for (const w of t.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve([]);
    }
  }

  // ---------------------------------------------------------------- HTTP

  private async readJson(req: http.IncomingMessage): Promise<Record<string, unknown> | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 256 * 1024 * 1024) throw fail(413, 35, 'request too large');
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text.trim()) return undefined;
    try {
      const v = JSON.parse(text) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw fail(400, 35, 'the request body is not a JSON object');
    }
  }

  private takeFault(path: string): SicsFault | undefined {
    const i = this.faults.findIndex((f) => !f.path || f.path === path);
    if (i === -1) return undefined;
    const f = this.faults[i];
    f.count = (f.count ?? 1) - 1;
    if (f.count <= 0) this.faults.splice(i, 1);
    this.stats.faults++;
    return f;
  }

  private sessionOf(req: http.IncomingMessage): string {
    const token = String(req.headers['x-sics-session'] ?? '');
    const s = token ? this.sessions.get(token) : undefined;
    const now = Date.now();
    if (!s || now - s.since > this.sessionTtlMs) {
      if (s) this.sessions.delete(token);
      this.stats.invalidSession++;
      throw fail(401, 7, 'Invalid session');
    }
    return token;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    this.stats.requests++;
    this.stats.byPath[`${method} ${path}`] = (this.stats.byPath[`${method} ${path}`] ?? 0) + 1;
    let status = 200;
    let answer: Record<string, unknown> = { ResultCode: 0 };
    try {
      const body = await this.readJson(req);
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      const fault = this.takeFault(path);
      if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault?.drop) {
        req.socket.destroy();
        return;
      }
      if (fault && (fault.resultCode !== undefined || fault.status !== undefined)) {
        const rc = fault.resultCode;
        throw new HttpAnswer(fault.status ?? (rc === 7 || rc === 15 ? 401 : 500), rc === undefined ? { Message: 'fault' } : { ResultCode: rc, Message: `simulated result code ${rc}` });
      }
      answer = await this.route2(method, path, body, req, res, fault);
    } catch (err) {
      if (err instanceof HttpAnswer) {
        status = err.status;
        answer = err.body;
      } else throw err;
    }
    if (this.stopped) {
      req.socket.destroy();
      return;
    }
    const text = JSON.stringify(answer);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private str(body: Record<string, unknown>, k: string): string {
    const v = body[k];
    if (typeof v !== 'string' || !v.trim()) throw fail(400, 35, `${k} is required`);
    return v;
  }

  private async route2(method: string, path: string, raw: Record<string, unknown> | undefined, req: http.IncomingMessage, res: http.ServerResponse, fault?: SicsFault): Promise<Record<string, unknown>> {
    const body = raw ?? {};
    if (path === '/Session' && method === 'POST') {
      const user = typeof body.UserName === 'string' ? body.UserName : '';
      const pass = typeof body.Password === 'string' ? body.Password : '';
      if (!user || !Object.prototype.hasOwnProperty.call(this.users, user) || this.users[user] !== pass) {
        this.stats.loginFailures++;
        throw fail(401, 15, 'Wrong user name or password');
      }
      const token = randomBytes(24).toString('hex');
      this.sessions.set(token, { user, since: Date.now() });
      this.stats.logins++;
      return { ResultCode: 0, Session: token };
    }
    const token = this.sessionOf(req);
    if (path === '/Session' && method === 'DELETE') {
      this.sessions.delete(token);
      return { ResultCode: 0 };
    }
    if (path === '/VirtualRouter' && method === 'POST') {
      this.ensureRouter(this.str(body, 'VirtualRouterName'));
      return { ResultCode: 0 };
    }
    if (path === '/Target' && method === 'POST') {
      const name = this.str(body, 'TargetName');
      // Public shape: the target lives in the virtual router of its name and takes the routing key of its name.
      const vrName = typeof body.VirtualRouter === 'string' && body.VirtualRouter.trim() ? body.VirtualRouter : name;
      const vr = this.routers.get(vrName);
      if (!vr) throw fail(404, 30, `virtual router ${vrName} not found`);
      const keys = Array.isArray(body.Routing_Keys) && body.Routing_Keys.length ? body.Routing_Keys.map(String) : [name];
      const t = vr.targets.get(name);
      if (t) for (const k of keys) t.routingKeys.add(k);
      else vr.targets.set(name, { name, type: 'Queue', routingKeys: new Set(keys), queue: [], waiters: [] });
      return { ResultCode: 0 };
    }
    const named = /^\/(Target|VirtualRouter)(?:\/(.*))?$/.exec(path);
    if (named && method === 'DELETE') {
      const name = named[2] ? decodeURIComponent(named[2]) : '';
      if (!name) throw fail(400, 35, `DELETE /${named[1]} needs the name in the path (/${named[1]}/{name})`);
      if (raw !== undefined) throw fail(400, 35, `DELETE /${named[1]}/{name} takes no body`);
      if (named[1] === 'VirtualRouter') {
        const vr = this.routers.get(name);
        if (!vr) throw fail(404, 30, `virtual router ${name} not found`);
        for (const t of vr.targets.values()) this.flushWaiters(t);
        this.routers.delete(name);
        return { ResultCode: 0 };
      }
      let found = false;
      for (const vr of this.routers.values()) {
        const t = vr.targets.get(name);
        if (!t) continue;
        found = true;
        vr.targets.delete(name);
        this.flushWaiters(t);
      }
      if (!found) throw fail(404, 30, `target ${name} not found`);
      return { ResultCode: 0 };
    }
    if (path === '/Publish' && method === 'POST') {
      const vrName = this.str(body, 'VirtualRouter');
      const key = this.str(body, 'Routing_Key');
      const b = typeof body.Body === 'string' ? body.Body : '';
      if (!b || !isBase64(b)) throw fail(400, 35, 'Body must be Base64');
      // The only exchange type public material shows.
      if (body.ExchangeType !== 'ROUTING') throw fail(400, 35, 'ExchangeType must be "ROUTING"');
      if (!this.routers.has(vrName)) throw fail(404, 30, `virtual router ${vrName} not found`);
      const cbVr = typeof body.Callback_VirtualRouter === 'string' ? body.Callback_VirtualRouter : '';
      const cbKey = typeof body.Callback_Routing_Key === 'string' ? body.Callback_Routing_Key : '';
      this.stats.publishes++;
      this.stats.publishedBytes += b.length;
      this.route(vrName, key, b, cbVr && cbKey ? { virtualRouter: cbVr, routingKey: cbKey } : undefined);
      return { ResultCode: 0 };
    }
    if (path === '/Consume' && method === 'POST') {
      const vr = this.routers.get(this.str(body, 'VirtualRouter'));
      const t = vr?.targets.get(this.str(body, 'TargetName'));
      if (!t) throw fail(404, 30, `target ${String(body.TargetName)} not found`);
      this.stats.consumes++;
      const max = Math.max(1, Math.min(1000, Number(body.MaxMessages) || 50));
      let msgs: BusMessage[] = t.queue.splice(0, max);
      const wait = body.Wait === true || body.Wait === 'true' ? Math.min(Number(body.WaitTimeout) || 0, this.opts.maxConsumeWaitMs ?? 30_000) : 0;
      if (!msgs.length && wait > 0 && !this.stopped) {
        msgs = await new Promise<BusMessage[]>((resolve) => {
          const w: Waiter = {
            max,
            resolve,
            timer: setTimeout(() => {
              t.waiters = t.waiters.filter((x) => x !== w);
              resolve([]);
            }, wait),
          };
          t.waiters.push(w);
          res.once('close', () => {
            // The client gave up waiting.
            if (t.waiters.includes(w)) {
              clearTimeout(w.timer);
              t.waiters = t.waiters.filter((x) => x !== w);
              resolve([]);
            }
          });
        });
      }
      this.stats.delivered += msgs.length;
      // Taken off the queue already: a client that gives up now has lost them.
      if (fault?.holdAnswerMs) await new Promise((r) => setTimeout(r, fault.holdAnswerMs));
      return { ResultCode: 0, Messages: msgs };
    }
    throw fail(404, 35, `unknown request ${method} ${path}`);
  }
}

// ------------------------------------------------------------------ ACMP servers

export interface AcmpServerSimOptions {
  serverId: string;
  virtualRouter?: string;
  routingKey?: string;
  /** Where this server publishes query-action jobs. Defaults: IntuneConnector / intune.jobs */
  jobsVirtualRouter?: string;
  jobsRoutingKey?: string;
  /** Most devices the server accepts (result code 32 for each further new device). */
  licenceLimit?: number;
  replyDelayMs?: number;
  /** How the server answers: our own reply (default) or the generic Public API answer (`<T…Response_Vn><ResultCode>`). */
  answers?: 'reply' | 'generic';
  /** The wire formats the server reads (default both); a message in another is answered with code 35. */
  formats?: WireFormat[];
  /** The format of the jobs it emits (default 2). */
  jobFormat?: WireFormat;
}

export interface StoredDevice {
  device: Device;
  owner: string;
  onDemandDefinition: string;
  runId: string;
  updatedAt: number;
}

export interface AcmpFault {
  /** Message kind the fault applies to; all when missing. */
  kind?: WireMessage['kind'];
  /** Answer this result code instead of processing. */
  code?: number;
  /** Process, but publish no reply. */
  drop?: boolean;
  count?: number;
}

export interface EmitJobOptions {
  action: ActionName;
  clients: JobClient[];
  jobId?: string;
  requestedBy?: string;
  confirmed?: boolean;
  notification?: { title: string; body: string };
  wipe?: ActionJobMessage['wipe'];
  /** Publish the job with a callback routing key (`<routingKey>.status`) for its status. */
  callback?: boolean;
  format?: WireFormat;
}

export interface AcmpServerStats {
  messages: Record<string, number>;
  inventoryBatches: number;
  devicesReceived: number;
  removalsReceived: number;
  invalid: number;
  repliesSent: number;
  repliesDropped: number;
}

export class AcmpServerSim {
  readonly serverId: string;
  readonly virtualRouter: string;
  readonly routingKey: string;
  readonly jobsVirtualRouter: string;
  readonly jobsRoutingKey: string;
  licenceLimit?: number;
  replyDelayMs: number;
  answers: 'reply' | 'generic';
  formats: WireFormat[];
  jobFormat: WireFormat;
  /** Where job statuses are expected when a job names a callback. */
  readonly statusRoutingKey: string;
  readonly devices = new Map<string, StoredDevice>();
  /** Jobs emitted, with the statuses received and the routing key each status arrived on. */
  readonly jobs = new Map<string, { job: ActionJobMessage; statuses: JobStatusMessage[]; statusKeys: string[] }>();
  readonly stats: AcmpServerStats = { messages: {}, inventoryBatches: 0, devicesReceived: 0, removalsReceived: 0, invalid: 0, repliesSent: 0, repliesDropped: 0 };
  /** The last inventory documents as received (XML), newest last; at most 5 kept. */
  readonly lastInventoryXml: string[] = [];
  private faults: AcmpFault[] = [];
  private readonly statusWaiters = new Map<string, Array<(s: JobStatusMessage) => void>>();

  constructor(
    private readonly sics: SicsSim,
    o: AcmpServerSimOptions,
  ) {
    this.serverId = o.serverId;
    this.virtualRouter = o.virtualRouter ?? 'ACMP';
    this.routingKey = o.routingKey ?? `acmp.${o.serverId}`;
    this.jobsVirtualRouter = o.jobsVirtualRouter ?? 'IntuneConnector';
    this.jobsRoutingKey = o.jobsRoutingKey ?? 'intune.jobs';
    this.licenceLimit = o.licenceLimit;
    this.replyDelayMs = o.replyDelayMs ?? 0;
    this.answers = o.answers ?? 'reply';
    this.formats = o.formats ?? [1, 2];
    this.jobFormat = o.jobFormat ?? 2;
    this.statusRoutingKey = `${this.routingKey}.status`;
    sics.ensureRouter(this.jobsVirtualRouter);
    sics.subscribe(this.virtualRouter, this.routingKey, (m) => this.receive(m.body, m.callback, m.routingKey));
    sics.subscribe(this.virtualRouter, this.statusRoutingKey, (m) => this.receive(m.body, m.callback, m.routingKey));
  }

  /** Connection settings for an intune-acmp-config server entry. */
  get route(): { serverId: string; virtualRouter: string; routingKey: string } {
    return { serverId: this.serverId, virtualRouter: this.virtualRouter, routingKey: this.routingKey };
  }

  failNext(f: AcmpFault): void {
    this.faults.push({ count: 1, ...f });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Devices stored for an instance (all instances when omitted), sorted by id. */
  storedDevices(instance?: string): Device[] {
    return [...this.devices.values()]
      .filter((d) => instance === undefined || d.owner === instance)
      .map((d) => d.device)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The software list the server holds for a device (undefined: none ever received, or no such device). */
  softwareOf(intuneId: string): ReturnType<typeof softwareOf> {
    return softwareOf(this.devices.get(intuneId)?.device);
  }

  clear(): void {
    this.devices.clear();
    this.jobs.clear();
    this.lastInventoryXml.length = 0;
    for (const k of Object.keys(this.stats.messages)) delete this.stats.messages[k];
    Object.assign(this.stats, { inventoryBatches: 0, devicesReceived: 0, removalsReceived: 0, invalid: 0, repliesSent: 0, repliesDropped: 0 });
  }

  /** Publishes a query-action job (as ACMP does when an admin runs an Intune query action). Returns its job id. */
  emitJob(o: EmitJobOptions): string {
    const jobId = o.jobId ?? `acmp-job-${randomUUID()}`;
    const job: ActionJobMessage = {
      kind: 'actionJob',
      header: header({ serverId: this.serverId }),
      jobId,
      action: o.action,
      requestedBy: o.requestedBy ?? 'ACME\\acmp.admin',
      createdAt: new Date().toISOString(),
      confirmed: o.confirmed ?? false,
      clients: o.clients,
      ...(o.notification ? { notification: o.notification } : {}),
      ...(o.wipe ? { wipe: o.wipe } : {}),
    };
    this.jobs.set(jobId, { job, statuses: [], statusKeys: [] });
    const callback = o.callback ? { virtualRouter: this.virtualRouter, routingKey: this.statusRoutingKey } : undefined;
    this.sics.route(this.jobsVirtualRouter, this.jobsRoutingKey, toBase64(encodeMessage(job, o.format ?? this.jobFormat)), callback);
    return jobId;
  }

  /** Publishes any document on the jobs routing key (for malformed-job tests); `jobId` registers the job as known. */
  emitRaw(xml: string, jobId?: string): void {
    if (jobId) this.jobs.set(jobId, { job: { kind: 'actionJob', header: header({ serverId: this.serverId }), jobId, action: 'sync', confirmed: false, clients: [] }, statuses: [], statusKeys: [] });
    this.sics.route(this.jobsVirtualRouter, this.jobsRoutingKey, toBase64(xml));
  }

  /** Resolves with the first status of the job recorded from now on (or the latest one already recorded). */
  waitForJobStatus(jobId: string, timeoutMs = 20_000): Promise<JobStatusMessage> {
    const known = this.jobs.get(jobId)?.statuses;
    if (known?.length) return Promise.resolve(known[known.length - 1]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ACMP server ${this.serverId}: no status for job ${jobId} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.statusWaiters.get(jobId) ?? [];
      list.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.statusWaiters.set(jobId, list);
    });
  }

  private takeFault(kind: WireMessage['kind']): AcmpFault | undefined {
    const i = this.faults.findIndex((f) => !f.kind || f.kind === kind);
    if (i === -1) return undefined;
    const f = this.faults[i];
    f.count = (f.count ?? 1) - 1;
    if (f.count <= 0) this.faults.splice(i, 1);
    return f;
  }

  private receive(body: string, callback: Callback | undefined, routingKey: string): void {
    let xml: string;
    let msg: WireMessage;
    try {
      xml = fromBase64(body);
      msg = decodeMessage(xml);
      if (!this.formats.includes(msg.header.format ?? 1)) throw new WireError(`this ACMP server reads wire format ${this.formats.join(', ')} only`);
    } catch (err) {
      this.stats.invalid++;
      // The answer goes back on the callback channel, which correlates it even without a message id.
      const messageId = err instanceof WireError ? err.details.messageId : undefined;
      this.reply(callback, { inReplyTo: messageId ?? '', code: 35, message: (err as Error).message, failed: [] }, undefined);
      return;
    }
    this.stats.messages[msg.kind] = (this.stats.messages[msg.kind] ?? 0) + 1;
    const fault = this.takeFault(msg.kind);
    if (fault?.code !== undefined) {
      this.reply(callback, { inReplyTo: msg.header.messageId, code: fault.code, message: `simulated result code ${fault.code}`, failed: [] }, msg);
      return;
    }
    const result = this.apply(msg, xml, routingKey);
    if (fault?.drop) {
      this.stats.repliesDropped++;
      return;
    }
    this.reply(callback, { inReplyTo: msg.header.messageId, ...result }, msg);
  }

  private apply(msg: WireMessage, xml: string, routingKey: string): { code: number; message?: string; failed: ReplyItem[] } {
    const failed: ReplyItem[] = [];
    switch (msg.kind) {
      case 'inventory': {
        this.stats.inventoryBatches++;
        this.lastInventoryXml.push(xml);
        if (this.lastInventoryXml.length > 5) this.lastInventoryXml.shift();
        const owner = msg.header.instance ?? '';
        for (const d of msg.devices) {
          this.stats.devicesReceived++;
          const known = this.devices.get(d.id);
          if (known && known.owner !== owner) {
            failed.push({ intuneId: d.id, code: 35, message: `the device belongs to instance ${known.owner}` });
            continue;
          }
          if (!known && this.licenceLimit !== undefined && this.devices.size >= this.licenceLimit) {
            failed.push({ intuneId: d.id, code: 32, message: 'licence amount reached' });
            continue;
          }
          this.devices.set(d.id, { device: withKeptSoftware(d, known?.device), owner, onDemandDefinition: msg.onDemandDefinition, runId: msg.runId, updatedAt: Date.now() });
        }
        return { code: 0, failed };
      }
      case 'removal': {
        const owner = msg.header.instance ?? '';
        for (const id of msg.deviceIds) {
          this.stats.removalsReceived++;
          const known = this.devices.get(id);
          if (!known || known.owner !== owner) {
            failed.push({ intuneId: id, code: 30, message: known ? 'the device belongs to another instance' : 'no such device' });
            continue;
          }
          this.devices.delete(id);
        }
        return { code: 0, failed };
      }
      case 'jobStatus': {
        const j = this.jobs.get(msg.jobId);
        if (!j) return { code: 30, message: `job ${msg.jobId} not found`, failed };
        j.statuses.push(msg);
        j.statusKeys.push(routingKey);
        const waiters = this.statusWaiters.get(msg.jobId) ?? [];
        this.statusWaiters.delete(msg.jobId);
        for (const w of waiters) w(msg);
        return { code: 0, failed };
      }
      case 'ping':
        return { code: 0, message: `ACMP server ${this.serverId}`, failed };
      default:
        return { code: 35, message: `an ACMP server does not accept ${msg.kind} messages`, failed };
    }
  }

  /**
   * Answers on the callback: our reply in the message's format, or (answers = 'generic', or a
   * message it cannot read) the generic Public API answer, which carries only the result code
   * (a per-device failure becomes the code of the whole message).
   */
  private reply(callback: Callback | undefined, r: { inReplyTo: string; code: number; message?: string; failed: ReplyItem[] }, msg: WireMessage | undefined): void {
    if (!callback) return;
    let doc: string;
    if (this.answers === 'generic' || !msg) {
      const code = r.code !== 0 ? r.code : r.failed.length ? r.failed[0].code : 0;
      const format = msg?.header.format ?? 1;
      const command = msg && msg.kind !== 'reply' && format === 2 ? COMMAND_OF[msg.kind] : 'IntuneConnector';
      doc = `<?xml version="1.0" encoding="UTF-8"?><ICQL><ACMP><${command} version="${format}"><T${command}Response_V${format}><ResultCode>${code}</ResultCode></T${command}Response_V${format}></${command}></ACMP></ICQL>`;
    } else {
      const command = msg.kind !== 'reply' ? COMMAND_OF[msg.kind] : undefined;
      doc = encodeMessage(
        { kind: 'reply', header: header({ serverId: this.serverId }), inReplyTo: r.inReplyTo, ...(command ? { command } : {}), code: r.code, ...(r.message !== undefined ? { message: r.message } : {}), failed: r.failed },
        msg.header.format ?? 1,
      );
    }
    const send = () => {
      this.stats.repliesSent++;
      this.sics.route(callback.virtualRouter, callback.routingKey, toBase64(doc));
    };
    if (this.replyDelayMs > 0) setTimeout(send, this.replyDelayMs);
    else send();
  }
}
