/**
 * The one module that talks to SICS (the message bus of Aagon's AESB), and
 * through it to ACMP servers.
 *
 * What is public and followed (ACMP's documentation of its SICS connection
 * and AESB client commands, and the public TypeScript SICS client named in
 * docs/acmp-wire-format.md; sics.md in the project's reference):
 * - SICS listens on port 3900 by default, over HTTP or HTTPS, with a user
 *   and password; ACMP offers to "allow an unencrypted connection" when
 *   SSL/TLS fails.
 * - `POST /Session {UserName, Password}` signs in and answers a `Session`
 *   token, which later requests carry in the `X-SICS-SESSION` header. The
 *   public client treats a session as valid for 60 s: we sign in again
 *   after 50 s, and on result code 7.
 * - Reply channel: `POST /VirtualRouter {VirtualRouterName}` and
 *   `POST /Target {TargetName}` of one fresh name per request, deleted
 *   afterwards with `DELETE /Target/{name}` and `DELETE /VirtualRouter/{name}`
 *   (name in the path, no body). The answer is correlated by the channel it
 *   arrives on, not by a field inside it.
 * - `POST /Publish` sends a message: `Body` (Base64 of an ICQL XML
 *   document), `Routing_Key`, `VirtualRouter`, `ExchangeType` and the
 *   `Callback_VirtualRouter` / `Callback_Routing_Key` the answer goes to.
 * - ACMP's result codes (0, 7, 15, 18, 19, 26, 30, 32, 35, -1).
 *
 * What we ASSUME (not published; our simulator in sim/sics.ts implements the
 * same, and docs/acmp-wire-format.md lists it): how a target is bound to a
 * routing key of another virtual router (`VirtualRouter` and `Routing_Keys`
 * next to `TargetName`, used only for the jobs target), the consume call
 * (`POST /Consume` with `VirtualRouter`/`TargetName`/`Wait`/`WaitTimeout`/
 * `MaxMessages` answering `Messages[]` with `Id`, `Body`, `Routing_Key` and
 * the publisher's `Callback_*`), and that every answer may carry
 * `ResultCode` and `Message`.
 *
 * Behaviour:
 * - One session per client, signed in on first use, again before 60 s are
 *   up and whenever SICS answers result code 7 (or HTTP 401 outside the
 *   sign-in); the request is then repeated once with the new session.
 * - HTTPS with an optional extra CA. When the TLS handshake fails and
 *   "allow unencrypted" is on (off by default), the client continues over
 *   plain HTTP on the same host and port, says so in a warning and in its
 *   health, and tries TLS again at the next sign-in.
 * - Retries with exponential backoff and jitter what is safe to retry:
 *   network failures, timeouts, codes 18, 19 and -1 and HTTP 5xx. This is
 *   safe because every message of our schema is idempotent (inventory and
 *   removals are keyed by the Intune device id, job statuses by job id).
 *   Not retried: 15 (wrong credentials), 26, 30, 32, 35 and unknown codes.
 * - `call()` publishes a message with a reply channel of its own and waits
 *   for the answer there: our own reply (with per-item failures) or the
 *   generic ACMP answer (`<T…Response_Vn>` with a `<ResultCode>`). One
 *   channel per publish costs four short SICS requests (create and delete a
 *   router and a target) per message, about 200 for 10,000 devices in
 *   batches of 200; one channel per batch or run would save them but could
 *   not tell a late answer to a timed-out attempt from the answer to its
 *   retry, which a generic answer does not name.
 * - Never logs or reports the password or the session token.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type https from 'node:https';
import { randomBytes } from 'node:crypto';
import type { AxiosInstance } from 'axios';
import { createAxios, createHttpAgent, createHttpsAgent } from '../shared/http-transport';
import { base64Length, fromBase64, writeBase64 } from './acmp-xml';
import { DEFAULT_WIRE_FORMAT, encodeMessageBytes, newMessageId, readReply, type ReplyMessage, type WireFormat, type WireMessage } from './acmp-wire';
import { sleep } from '../shared/abort';
import { invalidConfig, resultCodeError, SICS_STATUS_EN, SicsError, transportError } from './sics-errors';
import type { AcmpServerRoute, SicsSecrets, SicsSettings } from './sics-settings';

// ------------------------------------------------------------------ client

export interface SicsLog {
  warn(m: string): void;
  debug?(m: string): void;
}

export interface SicsHealth {
  level: 'ok' | 'warn' | 'error';
  /** 'ready' | 'connected' | 'unencrypted' | an error code */
  code: string;
  text: string;
}

export interface ConsumedMessage {
  id: string;
  routingKey: string;
  /** The decoded XML document (Base64 undone). */
  xml: string;
  /** Where the publisher wants its answer (its Callback_VirtualRouter / Callback_Routing_Key), when it named one. */
  callback?: { virtualRouter: string; routingKey: string };
}

export interface CallResult {
  reply: ReplyMessage;
  /** Publishes it took (1 = no retry). */
  attempts: number;
}

export interface SicsStats {
  requests: number;
  logins: number;
  relogins: number;
  retries: number;
  publishes: number;
  replies: number;
  replyTimeouts: number;
  fallbacks: number;
}

interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Retry transport failures and retryable codes (default true). */
  retry?: boolean;
  /** Not cut short when the client closes (a consume that may already hold messages). */
  survivesClose?: boolean;
}

type Json = Record<string, unknown>;

/** How long close() waits for consumes that may already hold messages. */
const DRAIN_LIMIT_MS = 12_000;
/** How long the public SICS client treats a session as valid (sics.md), and how early we sign in again before that. */
export const SESSION_VALID_MS = 60_000;
const SESSION_SKEW_MS = 10_000;

/** What an abortable wait of the client rejects with when the client is stopped. */
const stopped = () => new SicsError('aborted', 'stopped');

/** A client of one SICS connection. Emits 'health' (SicsHealth) when its state changes. */
export class SicsClient extends EventEmitter {
  readonly stats: SicsStats = { requests: 0, logins: 0, relogins: 0, retries: 0, publishes: 0, replies: 0, replyTimeouts: 0, fallbacks: 0 };
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent: http.Agent;
  private readonly http: AxiosInstance;
  private session?: { token: string; scheme: 'http' | 'https'; at: number };
  private loginInFlight?: Promise<void>;
  private closed = false;
  private readonly closer = new AbortController();
  /** Reply channels that exist in SICS (open, or being deleted). */
  private readonly channels = new Set<string>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly draining = new Set<Promise<void>>();
  private readonly sessionRenewMs: number;
  private currentHealth: SicsHealth = { level: 'ok', code: 'ready', text: 'ready' };
  private fallbackWarned = false;
  /** Middle part of this client's reply channel names (the connection it belongs to). */
  readonly channelKey: string;

  constructor(
    readonly settings: SicsSettings,
    private readonly secrets: SicsSecrets,
    private readonly log: SicsLog = { warn: () => undefined },
    opts: { clientKey?: string; sessionValidMs?: number } = {},
  ) {
    super();
    if (!secrets.user || !String(secrets.user).trim()) throw invalidConfig('user', 'is required');
    if (!secrets.password) throw invalidConfig('password', 'is required');
    this.httpsAgent = createHttpsAgent({ ca: settings.ca, proxy: settings.proxy });
    this.httpAgent = createHttpAgent({ ca: settings.ca, proxy: settings.proxy });
    this.http = createAxios(this.httpsAgent, settings.timeoutMs);
    this.channelKey = (opts.clientKey ?? 'connector').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60);
    const valid = opts.sessionValidMs ?? SESSION_VALID_MS;
    this.sessionRenewMs = valid - Math.min(SESSION_SKEW_MS, valid / 4);
  }

  get health(): SicsHealth {
    return this.currentHealth;
  }

  /** The protocol of the current session: 'https', 'http' (plain by setting), 'http-fallback' (TLS failed, unencrypted allowed), or null before sign-in. */
  get transport(): 'https' | 'http' | 'http-fallback' | null {
    if (!this.session) return null;
    if (this.session.scheme === 'https') return 'https';
    return this.settings.tls ? 'http-fallback' : 'http';
  }

  private setHealth(h: SicsHealth): void {
    if (h.level === this.currentHealth.level && h.code === this.currentHealth.code && h.text === this.currentHealth.text) return;
    this.currentHealth = h;
    this.emit('health', h);
  }

  private baseUrl(scheme: 'http' | 'https'): string {
    const host = this.settings.host.includes(':') && !this.settings.host.startsWith('[') ? `[${this.settings.host}]` : this.settings.host;
    return `${scheme}://${host}:${this.settings.port}`;
  }

  private signalFor(signal?: AbortSignal): AbortSignal {
    return signal ? AbortSignal.any([signal, this.closer.signal]) : this.closer.signal;
  }

  private backoff(attempt: number): number {
    const base = this.settings.retryBaseMs * 2 ** attempt;
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** One HTTP exchange, no retry. Answers the parsed JSON body and the HTTP status. */
  private async exchange(scheme: 'http' | 'https', method: 'POST' | 'DELETE', path: string, body: Json | Buffer | undefined, o: { token?: string; signal: AbortSignal; timeoutMs: number }): Promise<{ status: number; data: Json }> {
    this.stats.requests++;
    const where = `SICS ${method} ${path}`;
    let res;
    try {
      res = await this.http.request({
        method,
        url: `${this.baseUrl(scheme)}${path}`,
        ...(body !== undefined ? { data: body } : {}),
        headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), Accept: 'application/json', ...(o.token ? { 'X-SICS-SESSION': o.token } : {}) },
        httpAgent: this.httpAgent,
        httpsAgent: this.httpsAgent,
        timeout: o.timeoutMs,
        signal: o.signal,
        responseType: 'text',
        transformResponse: (d) => d,
      });
    } catch (err) {
      throw transportError(err, where, scheme);
    }
    let data: Json = {};
    const text = typeof res.data === 'string' ? res.data : '';
    if (text.trim()) {
      try {
        const parsed = JSON.parse(text) as unknown;
        data = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : {};
      } catch {
        if (res.status >= 200 && res.status < 300) throw new SicsError('badAnswer', `${where}: SICS answered something that is not JSON (HTTP ${res.status})`, { where, status: res.status }, true);
      }
    }
    return { status: res.status, data };
  }

  /** The result code of an answer: ResultCode when given, else derived from the HTTP status. */
  private codeOf(status: number, data: Json, isLogin: boolean): number {
    const rc = data.ResultCode ?? data.resultCode;
    if (rc !== undefined && rc !== null && rc !== '' && Number.isInteger(Number(rc))) return Number(rc);
    if (status >= 200 && status < 300) return 0;
    if (status === 401 || status === 403) return isLogin ? 15 : 7;
    if (status === 400) return 35;
    if (status === 404) return 30;
    if (status >= 500) return 18;
    return -1;
  }

  /** Signs in (single flight). Tries HTTPS first when TLS is on; falls back to HTTP only when allowed. */
  async login(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new SicsError('closed', 'The SICS connection is closed');
    if (!this.loginInFlight) {
      this.loginInFlight = this.doLogin(this.signalFor(signal)).finally(() => {
        this.loginInFlight = undefined;
      });
    }
    return this.loginInFlight;
  }

  private async doLogin(signal: AbortSignal): Promise<void> {
    const body = { UserName: String(this.secrets.user).trim(), Password: String(this.secrets.password) };
    const first: 'http' | 'https' = this.settings.tls ? 'https' : 'http';
    let scheme = first;
    let attempt = 0;
    for (;;) {
      try {
        const { status, data } = await this.exchange(scheme, 'POST', '/Session', body, { signal, timeoutMs: this.settings.timeoutMs });
        const code = this.codeOf(status, data, true);
        const token = typeof data.Session === 'string' ? data.Session : '';
        if (code !== 0) throw resultCodeError(code, 'SICS sign-in', typeof data.Message === 'string' ? data.Message : undefined);
        if (!token) throw new SicsError('badAnswer', 'SICS sign-in: the answer carries no Session token', {}, true);
        this.stats.logins++;
        this.session = { token, scheme, at: Date.now() };
        if (scheme === 'http' && this.settings.tls) {
          this.stats.fallbacks++;
          const text = `connected WITHOUT encryption to ${this.settings.host}:${this.settings.port}: TLS failed and "allow unencrypted connection" is on`;
          if (!this.fallbackWarned) this.log.warn(`SICS: ${text}. User name, password and all messages travel in clear text; fix the TLS setup of SICS or add its CA.`);
          this.fallbackWarned = true;
          this.setHealth({ level: 'warn', code: 'unencrypted', text: 'unencrypted (TLS failed)' });
        } else {
          this.setHealth({ level: 'ok', code: 'connected', text: scheme === 'https' ? 'connected (TLS)' : 'connected (HTTP)' });
        }
        return;
      } catch (err) {
        const e = err instanceof SicsError ? err : transportError(err, 'SICS sign-in', scheme);
        if (e.code === 'tlsError' && scheme === 'https' && this.settings.allowUnencrypted) {
          this.log.warn(`SICS: ${e.message}; trying the unencrypted connection because it is allowed`);
          scheme = 'http';
          continue;
        }
        if (e.code === 'aborted' || !e.retryable || e.code === 'invalidSession' || attempt >= this.settings.retries) {
          if (e.code !== 'aborted') this.setHealth({ level: 'error', code: e.code, text: SICS_STATUS_EN[e.code] ?? e.code });
          throw e;
        }
        this.stats.retries++;
        await sleep(this.backoff(attempt++), signal, stopped);
        scheme = first;
      }
    }
  }

  /**
   * A SICS API request with the session header. Signs in when needed, signs
   * in again on code 7 (once per request), retries what is retryable.
   */
  async request(method: 'POST' | 'DELETE', path: string, body: Json | Buffer | undefined, o: RequestOptions = {}): Promise<Json> {
    const signal = o.survivesClose ? (o.signal ?? new AbortController().signal) : this.signalFor(o.signal);
    const retry = o.retry !== false;
    let attempt = 0;
    let relogged = false;
    for (;;) {
      if (this.closed && !(o.survivesClose && this.session)) throw new SicsError('closed', 'The SICS connection is closed');
      // Sign in again before the session's time is up (as the public client does), not only after a code 7.
      if (this.session && Date.now() - this.session.at > this.sessionRenewMs && !this.closed) this.session = undefined;
      if (!this.session) await this.login(signal);
      const s = this.session!;
      try {
        const { status, data } = await this.exchange(s.scheme, method, path, body, { token: s.token, signal, timeoutMs: o.timeoutMs ?? this.settings.timeoutMs });
        const code = this.codeOf(status, data, false);
        if (code === 0) return data;
        const msg = typeof data.Message === 'string' ? data.Message : undefined;
        if (code === 7 && !relogged) {
          relogged = true;
          this.stats.relogins++;
          if (this.session === s) this.session = undefined;
          continue;
        }
        throw resultCodeError(code, `SICS ${method} ${path}`, msg);
      } catch (err) {
        const e = err instanceof SicsError ? err : transportError(err, `SICS ${method} ${path}`, s.scheme);
        if (e.code === 'aborted') throw e;
        if (e.code === 'tlsError' && this.settings.allowUnencrypted && this.session === s) {
          // The certificate changed under a running session: sign in again (which may fall back).
          this.session = undefined;
          if (!relogged) {
            relogged = true;
            continue;
          }
        }
        if (!retry || !e.retryable || e.code === 'invalidSession' || attempt >= this.settings.retries) throw e;
        this.stats.retries++;
        this.log.debug?.(`SICS: ${e.message}; retrying`);
        await sleep(this.backoff(attempt++), signal, stopped);
      }
    }
  }

  // ---------------------------------------------------------------- bus operations

  /** `POST /VirtualRouter {VirtualRouterName}` (the public shape, sics.md). */
  async ensureVirtualRouter(name: string, signal?: AbortSignal): Promise<void> {
    await this.request('POST', '/VirtualRouter', { VirtualRouterName: name }, { signal });
  }

  /**
   * Creates (or confirms) a target. Public shape: `POST /Target {TargetName}`,
   * which public clients use with a virtual router and a routing key of the
   * same name. A target bound elsewhere (the jobs target: ACMP's jobs
   * routing key in the jobs virtual router) also names `VirtualRouter` and
   * `Routing_Keys`: our assumption, nothing public shows how a target is bound.
   */
  async ensureTarget(virtualRouter: string, targetName: string, routingKeys: string[], signal?: AbortSignal): Promise<void> {
    await this.ensureVirtualRouter(virtualRouter, signal);
    const conventional = virtualRouter === targetName && routingKeys.length === 1 && routingKeys[0] === targetName;
    await this.request('POST', '/Target', conventional ? { TargetName: targetName } : { TargetName: targetName, VirtualRouter: virtualRouter, Routing_Keys: routingKeys }, { signal });
  }

  /** `DELETE /Target/{name}` (name in the path, no body: the public shape). */
  async deleteTarget(targetName: string, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/Target/${encodeURIComponent(targetName)}`, undefined, { signal, retry: false });
  }

  /** `DELETE /VirtualRouter/{name}` (name in the path, no body: the public shape). */
  async deleteVirtualRouter(name: string, signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/VirtualRouter/${encodeURIComponent(name)}`, undefined, { signal, retry: false });
  }

  /** Publishes one document (Base64-encoded here; a string is sent as UTF-8) to a routing key. */
  async publish(p: { virtualRouter: string; routingKey: string; xml: string | Uint8Array; callback?: { virtualRouter: string; routingKey: string }; signal?: AbortSignal }): Promise<void> {
    this.stats.publishes++;
    const xml = typeof p.xml === 'string' ? Buffer.from(p.xml, 'utf8') : p.xml;
    const fields = {
      Routing_Key: p.routingKey,
      VirtualRouter: p.virtualRouter,
      ExchangeType: 'ROUTING',
      ...(p.callback ? { Callback_VirtualRouter: p.callback.virtualRouter, Callback_Routing_Key: p.callback.routingKey } : {}),
    };
    await this.request('POST', '/Publish', publishBody(xml, fields), { signal: p.signal });
  }

  /**
   * Takes up to `max` messages from a target, waiting up to `waitMs` for the
   * first. `drainOnClose`: closing the client does not cut this call short
   * (SICS may already have handed the messages over); close() waits for it.
   */
  async consume(p: { virtualRouter: string; targetName: string; waitMs?: number; max?: number; signal?: AbortSignal; drainOnClose?: boolean }): Promise<ConsumedMessage[]> {
    const waitMs = p.waitMs ?? this.settings.consumeWaitMs;
    const body = { VirtualRouter: p.virtualRouter, TargetName: p.targetName, Wait: waitMs > 0, WaitTimeout: waitMs, MaxMessages: p.max ?? 50 };
    const o: RequestOptions = { signal: p.signal, timeoutMs: waitMs + this.settings.timeoutMs, ...(p.drainOnClose ? { survivesClose: true } : {}) };
    let data: Json;
    if (p.drainOnClose) {
      const running = this.request('POST', '/Consume', body, o);
      const tracked = running.then(
        () => undefined,
        () => undefined,
      );
      this.draining.add(tracked);
      try {
        data = await running;
      } finally {
        this.draining.delete(tracked);
      }
    } else data = await this.request('POST', '/Consume', body, o);
    const list = Array.isArray(data.Messages) ? (data.Messages as Json[]) : [];
    const out: ConsumedMessage[] = [];
    for (const m of list) {
      const id = String(m.Id ?? m.MessageId ?? '');
      const cbVr = typeof m.Callback_VirtualRouter === 'string' ? m.Callback_VirtualRouter.trim() : '';
      const cbKey = typeof m.Callback_Routing_Key === 'string' ? m.Callback_Routing_Key.trim() : '';
      try {
        out.push({ id, routingKey: String(m.Routing_Key ?? ''), xml: fromBase64(String(m.Body ?? '')), ...(cbVr && cbKey ? { callback: { virtualRouter: cbVr, routingKey: cbKey } } : {}) });
      } catch (err) {
        this.log.warn(`SICS: message ${id || '(no id)'} from ${p.targetName} is not readable and is skipped: ${(err as Error).message}`);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- request/reply

  /**
   * A reply channel for one publish, as public SICS clients make it: a
   * virtual router and a target of one fresh name, which is also the
   * callback routing key. Whatever arrives there answers that publish and
   * nothing else, so any answer, even one that names no message, is
   * correlated by the channel it came on.
   */
  private async openChannel(signal: AbortSignal): Promise<string> {
    const name = `${this.settings.replyVirtualRouter}.${this.channelKey}.${randomBytes(6).toString('hex')}`;
    this.channels.add(name);
    try {
      await this.ensureTarget(name, name, [name], signal);
    } catch (err) {
      this.dropChannel(name);
      throw err;
    }
    return name;
  }

  /** Deletes a channel in the background (best effort, as public clients do); close() waits for what is still running. */
  private dropChannel(name: string): void {
    if (this.closed) return this.dropChannelNow(name);
    const signal = AbortSignal.timeout(5_000);
    const work = (async () => {
      await this.deleteTarget(name, signal).catch(() => undefined);
      await this.deleteVirtualRouter(name, signal).catch(() => undefined);
      this.channels.delete(name); // kept listed until gone, so a close() meanwhile deletes it too
    })();
    this.cleanups.add(work);
    void work.finally(() => this.cleanups.delete(work));
  }

  /** Reads the channel until an answer to `messageId` arrives or the time is up. */
  private async awaitReply(channel: string, messageId: string, timeoutMs: number, signal: AbortSignal, where: string): Promise<ReplyMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.stats.replyTimeouts++;
        throw new SicsError('replyTimeout', `${where}: no reply within ${Math.round(timeoutMs / 1000)} s`, { where, timeoutMs }, true);
      }
      const msgs = await this.consume({ virtualRouter: channel, targetName: channel, waitMs: Math.max(10, Math.min(this.settings.consumeWaitMs, left)), max: 10, signal });
      for (const m of msgs) {
        let reply: ReplyMessage | undefined;
        try {
          reply = readReply(m.xml);
        } catch (err) {
          this.log.warn(`SICS: an answer on the reply channel of ${where} cannot be read and is skipped: ${(err as Error).message}`);
          continue;
        }
        if (!reply) {
          this.log.warn(`SICS: a message on the reply channel of ${where} is no answer and is skipped`);
          continue;
        }
        // Our own replies name the message; one that names another is stale (it cannot be, on a fresh channel, but cheap to check).
        if (reply.inReplyTo && reply.inReplyTo !== messageId) {
          this.log.debug?.(`SICS: reply to ${reply.inReplyTo} skipped on the channel of ${messageId}`);
          continue;
        }
        this.stats.replies++;
        return reply;
      }
    }
  }

  /**
   * Publishes a message to an ACMP server and waits for its answer on a
   * reply channel of its own. Retries (with a new message id and channel
   * each time) on transport failures, reply timeouts and retryable result
   * codes; resolves with an answer of code 0 (which may still list failed
   * items), rejects with SicsError otherwise.
   */
  async call(server: AcmpServerRoute, message: WireMessage, o: { signal?: AbortSignal; replyTimeoutMs?: number; format?: WireFormat } = {}): Promise<CallResult> {
    const signal = this.signalFor(o.signal);
    const replyTimeoutMs = o.replyTimeoutMs ?? Math.max(this.settings.timeoutMs, 5_000);
    const where = `ACMP server ${server.serverId}`;
    let attempt = 0;
    let relogged = false;
    for (;;) {
      if (signal.aborted) throw new SicsError('aborted', `${where}: stopped`);
      const messageId = newMessageId();
      const msg = { ...message, header: { ...message.header, messageId, serverId: server.serverId } } as WireMessage;
      let xml: Buffer;
      try {
        xml = encodeMessageBytes(msg, o.format ?? DEFAULT_WIRE_FORMAT);
      } catch (err) {
        throw new SicsError('invalidRequest', `${where}: the message cannot be written: ${(err as Error).message}`, {}, false);
      }
      let channel: string | undefined;
      try {
        channel = await this.openChannel(signal);
        await this.publish({ virtualRouter: server.virtualRouter, routingKey: server.routingKey, xml, callback: { virtualRouter: channel, routingKey: channel }, signal });
        const reply = await this.awaitReply(channel, messageId, replyTimeoutMs, signal, where);
        if (reply.code === 0) return { reply, attempts: attempt + 1 };
        if (reply.code === 7 && !relogged) {
          relogged = true;
          this.session = undefined;
          continue;
        }
        throw resultCodeError(reply.code, where, reply.message);
      } catch (err) {
        const e = err instanceof SicsError ? err : new SicsError('httpError', `${where}: ${(err as Error).message}`, {}, true);
        if (e.code === 'aborted' || e.code === 'closed' || !e.retryable || attempt >= this.settings.retries) throw e;
        this.stats.retries++;
        this.log.debug?.(`${e.message}; retrying`);
        await sleep(this.backoff(attempt++), signal, stopped);
      } finally {
        if (channel) this.dropChannel(channel);
      }
    }
  }

  /** Deletes the open reply channels (best effort), waits for draining consumes, ends the session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort();
    for (const name of [...this.channels]) this.dropChannelNow(name);
    // A consume that may already hold messages is let finish (bounded), so its messages reach their node.
    if (this.draining.size) await Promise.race([Promise.all([...this.draining]), new Promise((r) => setTimeout(r, DRAIN_LIMIT_MS).unref())]);
    await Promise.race([Promise.all([...this.cleanups]), new Promise((r) => setTimeout(r, 3_000).unref())]);
    const session = this.session;
    if (session) {
      try {
        await this.exchange(session.scheme, 'DELETE', '/Session', undefined, { token: session.token, signal: AbortSignal.timeout(2_000), timeoutMs: 2_000 });
      } catch {
        /* best effort */
      }
    }
    this.session = undefined;
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
    this.removeAllListeners();
  }

  /** During close: the channel deletes go out directly (request() refuses once closed). */
  private dropChannelNow(name: string): void {
    this.channels.delete(name);
    const session = this.session;
    if (!session) return;
    const o = { token: session.token, signal: AbortSignal.timeout(2_000), timeoutMs: 2_000 };
    const work = (async () => {
      await this.exchange(session.scheme, 'DELETE', `/Target/${encodeURIComponent(name)}`, undefined, o).catch(() => undefined);
      await this.exchange(session.scheme, 'DELETE', `/VirtualRouter/${encodeURIComponent(name)}`, undefined, o).catch(() => undefined);
    })();
    this.cleanups.add(work);
    void work.finally(() => this.cleanups.delete(work));
  }
}

const BODY_HEAD = Buffer.from('{"Body":"', 'latin1');

/**
 * The JSON body of a publish, as bytes: exactly
 * `JSON.stringify({ Body: <Base64 of xml>, ...fields })` in UTF-8, written
 * without that text as a string. An inventory message's Base64 and its JSON
 * were two strings of some 400 KB each (plus the UTF-8 copy axios makes),
 * each one a large object V8 frees only in a full collection. Base64 needs
 * no JSON escaping; `fields` are written by JSON.stringify.
 */
export function publishBody(xml: Uint8Array, fields: Record<string, string>): Buffer {
  const more = JSON.stringify(fields);
  // After the Base64: `",` and the fields without their opening brace, or only `"}`.
  const tail = Buffer.from(more === '{}' ? '"}' : `",${more.slice(1)}`, 'utf8');
  const body = Buffer.allocUnsafe(BODY_HEAD.length + base64Length(xml.length) + tail.length);
  const at = writeBase64(xml, body, BODY_HEAD.copy(body, 0));
  tail.copy(body, at);
  return body;
}
