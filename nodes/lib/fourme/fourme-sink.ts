/**
 * The 4me sink's work on sync runs (DESIGN.md "Sync run"): it takes the
 * page messages of device runs (`intune/devices`) and compliance runs
 * (`intune/compliance`) one at a time, writes each page (fourme-ci-sync,
 * fourme-incidents), keeps track of every run per topic and instance, and
 * after the last page of a run that was complete — a full run, not
 * aborted, every page from 1 to the last seen, no page failed, no item
 * without an id — reconciles what is gone: CIs archived, incidents
 * resolved, software on no device set inactive, only among what this
 * instance owns. Device pages that carry software write it first
 * (fourme-software-sync.ts), then the devices with their relations. It reports per item (one
 * result message per page) and per run (a summary on the last page).
 *
 * The node (nodes/intune-4me) only adds Node-RED: queueing, status, close.
 */
import { readSyncEnvelope, SyncEnvelopeError, TOPIC_COMPLIANCE, TOPIC_DEVICES, type SourceTopic, type SyncEnvelope, type SyncMode } from '../contracts';
import { FourMeStats, isAbort, type FourMeClient, type WaitReason } from './fourme-client';
import { archiveMissing, syncDevicePage, type ItemResult } from './fourme-ci-sync';
import { deviceProblem, userEmailOf } from './fourme-ci-mapping';
import {
  CI_STATUSES,
  INACTIVE_STATUSES,
  MappingSettingsError,
  parseCiMappingSettings,
  type CiMappingSettings,
  type CiStatus,
} from './fourme-ci-mapping';
import {
  IncidentSettingsError,
  parseIncidentSettings,
  processViolations,
  resolveGone,
  type IncidentResult,
  type IncidentSettings,
} from './fourme-incidents';
import type { PeopleDirectory } from './fourme-people';
import type { SinkState, SinkStateStore } from './sink-fingerprints';
import { echo } from '../shared/echo';
import { strictBool } from '../shared/validation';
import { parseSoftwareSettings, SoftwareSettingsError, type SoftwareSettings } from './fourme-software-mapping';
import { inactivateGone, softwareCategoryProblem, SoftwareTally, syncSoftwarePage, type SoftwareItemError, type SoftwareSyncContext } from './fourme-software-sync';
import type { Device } from '../contracts';

export type SinkTopic = SourceTopic;

export interface SinkSettings {
  mapping: CiMappingSettings;
  incidents: IncidentSettings;
  /** Discovered software (fourme-software-mapping.ts). */
  software: SoftwareSettings;
  /** Relate CIs to people (look-ups by e-mail). */
  matchPeople: boolean;
  /** Status for CIs of devices gone from Intune; 'none' leaves them. */
  inactiveStatus: CiStatus | 'none';
  /** Largest share (%) of owned CIs one run may archive. */
  archiveLimitPercent: number;
  /** Parallel discovered-CI uploads. */
  concurrency: number;
  /** Context store for the cache ('' = default). */
  store: string;
  /** Items listed in a run summary's errors (the count is always complete). */
  maxErrorsListed: number;
}

export class SinkSettingsError extends Error {
  override name = 'SinkSettingsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function intIn(raw: unknown, fallback: number, min: number, max: number, field: string, what: string): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new SinkSettingsError(field, `${what} must be a whole number from ${min} to ${max}`);
  return n;
}

/** All settings of an intune-4me node, from its properties. Throws SinkSettingsError in plain words. */
export function parseSinkSettings(raw: Record<string, unknown>): SinkSettings {
  let mapping: CiMappingSettings;
  let incidents: IncidentSettings;
  let software: SoftwareSettings;
  try {
    mapping = parseCiMappingSettings(raw);
    incidents = parseIncidentSettings(raw);
    software = parseSoftwareSettings(raw);
  } catch (err) {
    if (err instanceof MappingSettingsError || err instanceof IncidentSettingsError || err instanceof SoftwareSettingsError) throw new SinkSettingsError(err.field, err.message);
    throw err;
  }
  const inactive = String(raw.inactiveStatus ?? '').trim() || 'archived';
  if (inactive !== 'none' && !(CI_STATUSES as readonly string[]).includes(inactive)) {
    throw new SinkSettingsError('inactiveStatus', `"${inactive}" is not a 4me CI status`);
  }
  if (inactive !== 'none' && !INACTIVE_STATUSES.includes(inactive as CiStatus)) {
    throw new SinkSettingsError('inactiveStatus', `Devices gone from Intune need an inactive status (archived, to_be_removed, lost_or_stolen or removed), not "${inactive}"`);
  }
  return {
    mapping,
    incidents,
    software,
    matchPeople: strictBool(raw.matchPeople, true, (reason) => new SinkSettingsError('matchPeople', `"Relate each CI to the person" ${reason}`)),
    inactiveStatus: inactive as CiStatus | 'none',
    archiveLimitPercent: intIn(raw.archiveLimitPercent, 50, 1, 100, 'archiveLimitPercent', 'The archive limit (%)'),
    concurrency: intIn(raw.concurrency, 2, 1, 8, 'concurrency', 'The number of parallel uploads'),
    store: String(raw.store ?? '').trim(),
    maxErrorsListed: intIn(raw.maxErrorsListed, 200, 0, 100_000, 'maxErrorsListed', 'The number of errors listed'),
  };
}

/** Something wrong with an input message (goes to done(err)). */
export class SinkInputError extends Error {
  override name = 'SinkInputError';
}

export interface SinkMessage {
  topic?: unknown;
  payload?: unknown;
  sync?: unknown;
}

/** The topic of a message: as given, or told by the shape of its items. */
export function topicOf(msg: SinkMessage): SinkTopic {
  const t = msg.topic;
  if (t === TOPIC_DEVICES || t === TOPIC_COMPLIANCE) return t;
  const first = Array.isArray(msg.payload) ? (msg.payload as unknown[])[0] : undefined;
  if (first && typeof first === 'object') {
    const o = first as Record<string, unknown>;
    if ('policy' in o && 'key' in o) return TOPIC_COMPLIANCE;
    if ('deepLinks' in o && 'id' in o) return TOPIC_DEVICES;
  }
  const shown = t === undefined ? 'no msg.topic' : `msg.topic ${echo(t, 60)}`;
  throw new SinkInputError(
    `Cannot tell what this message carries (${shown}): send the page messages of an Intune source, with msg.topic "${TOPIC_DEVICES}" or "${TOPIC_COMPLIANCE}"`,
  );
}

/** The run envelope of a message; a message without one is a single-page incremental run (never reconciles). */
export function envelopeOf(msg: SinkMessage, fallbackId: string): SyncEnvelope {
  const s = msg.sync;
  if (s === undefined || s === null) {
    return { runId: `single-${fallbackId}`, instance: 'default', mode: 'incremental', page: 1, last: true, startedAt: new Date().toISOString() };
  }
  try {
    return readSyncEnvelope(s);
  } catch (err) {
    throw err instanceof SyncEnvelopeError ? new SinkInputError(err.message) : err;
  }
}

interface RunTrack {
  topic: SinkTopic;
  instance: string;
  runId: string;
  mode: SyncMode;
  startedAt: string;
  startedMs: number;
  nextPage: number;
  pages: number;
  /** Why the run cannot be treated as complete (first reason). */
  incomplete?: string;
  seen: Set<string>;
  stats: FourMeStats;
  counts: Record<string, number>;
  people: { matched: number; unmatched: number; none: number };
  errors: Array<Record<string, unknown>>;
  errorCount: number;
  personRequests: number;
  uploads: number;
  incidentRun: { created: number };
  /** Software seen and written in this run (device runs). */
  sw: SoftwareTally;
  /** Pages of this run being handled (pages may be handled side by side; the last one waits for the others). */
  pending: Set<Promise<void>>;
}

export interface PageOutcome {
  topic: SinkTopic;
  sync: SyncEnvelope;
  /** Results of this page's items (and, on the last page of a complete run, of the reconciliation). */
  items: Array<ItemResult | IncidentResult>;
  /** Present on the last page of a run. */
  summary?: RunSummary4me;
}

export interface RunSummary4me {
  runId: string;
  instance: string;
  topic: SinkTopic;
  mode: SyncMode;
  complete: boolean;
  /** Whether removals were reconciled, and why not. */
  reconciled: boolean;
  reason?: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  pages: number;
  cis?: Record<string, number>;
  /** Software CIs created, updated, unchanged, reactivated, inactivated, failed; devices whose software relations changed. */
  software?: Record<string, number>;
  people?: { matched: number; unmatched: number; noUser: number };
  incidents?: Record<string, number>;
  requests: Record<string, unknown>;
  errorCount: number;
  errors: Array<Record<string, unknown>>;
  /** Why software on no device was not set inactive after a complete run. */
  softwareNotInactivated?: string;
}

export interface SinkDeps {
  client(): FourMeClient;
  people(): PeopleDirectory | null;
  store: SinkStateStore;
  settings: SinkSettings;
  /** Status hooks. */
  onWork?(text: { topic: SinkTopic; page: number; batch?: number; batches?: number; phase: 'page' | 'archive' | 'resolve' }): void;
  onWait?(ms: number, reason: WaitReason): void;
  onResume?(): void;
  warn?(m: string): void;
}

const CI_OUTCOMES = ['created', 'updated', 'unchanged', 'archived', 'failed', 'invalid'];
const INCIDENT_OUTCOMES = ['raised', 'adopted', 'open', 'capped', 'closedIn4me', 'resolved', 'noted', 'failed', 'invalid'];

export class FourMeSink {
  private runs = new Map<string, RunTrack>();

  constructor(private readonly d: SinkDeps) {}

  /** Forgets runs in progress (e.g. after the node restarted its connection). */
  reset(): void {
    this.runs.clear();
  }

  private track(topic: SinkTopic, env: SyncEnvelope): RunTrack {
    const key = `${topic}|${env.instance}`;
    let r = this.runs.get(key);
    if (r && r.runId !== env.runId) {
      this.d.warn?.(`Run ${r.runId} (${topic}, instance ${env.instance}) ended without its last page: it is not reconciled`);
      r = undefined;
    }
    if (!r) {
      const stats = new FourMeStats({ onWait: (ms, why) => this.d.onWait?.(ms, why), onResume: () => this.d.onResume?.() });
      r = {
        topic,
        instance: env.instance,
        runId: env.runId,
        mode: env.mode,
        startedAt: env.startedAt,
        startedMs: Date.now(),
        nextPage: 1,
        pages: 0,
        seen: new Set(),
        stats,
        counts: Object.fromEntries((topic === TOPIC_DEVICES ? CI_OUTCOMES : INCIDENT_OUTCOMES).map((k) => [k, 0])),
        people: { matched: 0, unmatched: 0, none: 0 },
        errors: [],
        errorCount: 0,
        personRequests: 0,
        uploads: 0,
        incidentRun: { created: 0 },
        sw: new SoftwareTally(),
        pending: new Set(),
      };
      this.runs.set(key, r);
    }
    if (env.page > r.nextPage) r.incomplete ??= `page ${r.nextPage} of the run never arrived`;
    if (env.page >= r.nextPage) r.nextPage = env.page + 1;
    if (env.mode !== r.mode) r.incomplete ??= 'the run changed its mode';
    r.pages++;
    return r;
  }

  private record(r: RunTrack, items: Array<ItemResult | IncidentResult>): void {
    for (const it of items) {
      r.counts[it.outcome] = (r.counts[it.outcome] ?? 0) + 1;
      if ((it as ItemResult).relations) r.sw.counts.relationsChanged++;
      const p = (it as ItemResult).person;
      if (p === 'matched') r.people.matched++;
      else if (p === 'unmatched') r.people.unmatched++;
      else if (p === 'none') r.people.none++;
      if (it.outcome === 'failed' || it.outcome === 'invalid' || (it.error && it.outcome !== 'capped')) {
        r.errorCount++;
        if (r.errors.length < this.d.settings.maxErrorsListed) {
          const e: Record<string, unknown> = { outcome: it.outcome, error: it.error };
          if ('sourceID' in it) {
            e.sourceID = it.sourceID;
            if (it.name) e.name = it.name;
          } else e.key = (it as IncidentResult).key;
          if (it.path) e.path = it.path;
          r.errors.push(e);
        }
      }
    }
  }

  /**
   * A device page has arrived and waits for its turn: its users' addresses
   * ride along with the person look-up of the page before it (look-ahead,
   * fourme-people.ts). Never throws; a message that is not a device page,
   * or a node without person matching, announces nothing.
   */
  expect(msg: SinkMessage): void {
    try {
      if (!this.d.settings.matchPeople || topicOf(msg) !== TOPIC_DEVICES || !Array.isArray(msg.payload)) return;
      const people = this.d.people();
      if (!people) return;
      const devices = msg.payload as unknown[];
      // Page 1 of a full run announces the users of the whole run: they replace what earlier runs left, after this page's own.
      const upns = (msg.sync as { userPrincipalNames?: unknown } | undefined)?.userPrincipalNames;
      if (Array.isArray(upns)) people.forgetExpected();
      people.expect(devices.map((d) => (deviceProblem(d) ? null : userEmailOf(d as Parameters<typeof userEmailOf>[0]))));
      if (Array.isArray(upns)) people.expect(upns.filter((u): u is string => typeof u === 'string'));
    } catch {
      // Bad messages are reported when their turn comes (handle).
    }
  }

  /**
   * Handles one page message. Throws SinkInputError for bad messages and
   * the fatal errors of the 4me connection (the run is then not reconciled);
   * everything per item is in the outcome.
   */
  async handle(msg: SinkMessage, msgId: string, signal?: AbortSignal): Promise<PageOutcome> {
    const topic = topicOf(msg);
    if (!Array.isArray(msg.payload)) {
      throw new SinkInputError(`msg.payload must be the list of ${topic === TOPIC_DEVICES ? 'devices' : 'compliance violations'} of one page (got ${msg.payload === null ? 'null' : typeof msg.payload})`);
    }
    const env = envelopeOf(msg, msgId);
    const payload = msg.payload as unknown[];
    const r = this.track(topic, env);
    let pageDone!: () => void;
    const mine = new Promise<void>((resolve) => (pageDone = resolve));
    r.pending.add(mine);
    try {
      return await this.handlePage(topic, env, payload, r, mine, signal);
    } finally {
      r.pending.delete(mine);
      pageDone();
    }
  }

  private async handlePage(topic: SinkTopic, env: SyncEnvelope, payload: unknown[], r: RunTrack, mine: Promise<void>, signal?: AbortSignal): Promise<PageOutcome> {
    const s = this.d.settings;
    // What the run saw counts before anything can fail: a page that fails is still "seen".
    for (const it of payload) {
      const k = (it as { id?: unknown; key?: unknown } | null)?.[topic === TOPIC_DEVICES ? 'id' : 'key'];
      if (typeof k === 'string' && k) r.seen.add(k);
      else r.incomplete ??= `an item without a ${topic === TOPIC_DEVICES ? 'device id' : 'violation key'} was received`;
    }
    if (topic === TOPIC_DEVICES && s.software.enabled) r.sw.notePage(payload, env.instance);
    const items: Array<ItemResult | IncidentResult> = [];
    let client: FourMeClient;
    let state: SinkState;
    // CI state is written at most every few minutes within a run and always at its end;
    // incidents at once (few, and each one raised must be remembered).
    const persist = async () => {
      this.d.store.touch(env.instance);
      await this.d.store.save(env.instance, { soon: topic === TOPIC_DEVICES && !env.last });
    };
    try {
      client = this.d.client();
      const scope = { endpoint: client.endpoints.graphqlUrl, account: client.accountId, source: s.mapping.source };
      state = (await this.d.store.load(env.instance, scope)).state;
      if (topic === TOPIC_DEVICES) {
        this.d.onWork?.({ topic, page: env.page, phase: 'page' });
        let writeSoftware = s.software.enabled;
        if (writeSoftware && payload.some((d) => Array.isArray((d as Device | null)?.software))) {
          const swCtx = this.softwareContext(client, state, r, env, persist, signal);
          if (!r.sw.category) {
            r.sw.category = softwareCategoryProblem(swCtx);
            const problem = await r.sw.category;
            if (problem) {
              r.errorCount++;
              r.errors.push({ outcome: 'failed', software: true, error: problem });
              this.d.warn?.(problem);
            }
          }
          r.sw.skipped = (await r.sw.category) ?? undefined;
          if (r.sw.skipped) writeSoftware = false; // devices go without software relations: theirs stay as they are
          else {
            // Software CIs first: the devices relate them by their node ids.
            const sw = await syncSoftwarePage(payload.filter((d) => !deviceProblem(d)) as Device[], swCtx);
            r.sw.add(sw.outcomes);
            this.softwareErrors(r, sw.errors);
            r.uploads += sw.uploads;
          }
        }
        const res = await syncDevicePage(payload, {
          softwareInstance: writeSoftware ? env.instance : undefined,
          client,
          people: s.matchPeople ? this.d.people() : null,
          settings: s.mapping,
          state,
          stats: r.stats,
          signal,
          concurrency: s.concurrency,
          persist,
          onBatch: (done, total) => this.d.onWork?.({ topic, page: env.page, batch: done + 1, batches: total, phase: 'page' }),
        });
        r.personRequests += res.personRequests;
        r.uploads += res.uploads;
        items.push(...res.items);
      } else if (s.incidents.enabled) {
        this.d.onWork?.({ topic, page: env.page, phase: 'page' });
        items.push(
          ...(await processViolations(payload, {
            client,
            people: s.matchPeople ? this.d.people() : null,
            settings: s.incidents,
            source: s.mapping.source,
            state,
            stats: r.stats,
            signal,
            persist,
            run: r.incidentRun,
          })),
        );
      } else {
        r.incomplete ??= 'incidents are switched off in this node';
      }
    } catch (err) {
      r.incomplete ??= isAbort(err) ? 'the run was interrupted' : `a page failed: ${(err as Error).message}`;
      this.record(r, items);
      if (env.last && this.runs.get(`${topic}|${env.instance}`) === r) this.runs.delete(`${topic}|${env.instance}`);
      // What earlier pages confirmed is written all the same (their writes were spread out).
      if (env.last) await this.d.store.save(env.instance).catch(() => undefined);
      throw err;
    }
    this.record(r, items);
    const out: PageOutcome = { topic, sync: env, items };
    if (!env.last) return out;

    // ---- last page: the run's other pages finish first; then reconcile when complete, and summarise
    await Promise.all([...r.pending].filter((p) => p !== mine));
    if (this.runs.get(`${topic}|${env.instance}`) === r) this.runs.delete(`${topic}|${env.instance}`);
    try {
      await this.d.store.save(env.instance);
    } catch (err) {
      r.errorCount++;
      r.errors.push({ outcome: 'failed', error: `what 4me confirmed could not be saved: ${(err as Error).message}` });
    }
    let reason: string | undefined;
    if (env.mode !== 'full') reason = 'only a complete full run reconciles removals (this run is incremental)';
    else if (env.stats?.aborted) reason = `the source aborted the run${env.stats.error ? `: ${env.stats.error}` : ''}`;
    else if (r.incomplete) reason = r.incomplete;
    let reconciled = false;
    if (!reason) {
      try {
        if (topic === TOPIC_DEVICES) {
          if (s.inactiveStatus === 'none') reason = 'archiving is switched off in this node';
          else {
            const owned = state.cis.size;
            let gone = 0;
            for (const k of state.cis.keys()) if (!r.seen.has(k)) gone++;
            if (gone && owned && (gone * 100) / owned > s.archiveLimitPercent) {
              reason = `${gone} of ${owned} CIs would become ${s.inactiveStatus}, more than the limit of ${s.archiveLimitPercent} %: nothing was archived. Check the source's filters, or raise the limit`;
              r.errorCount++;
              r.errors.push({ outcome: 'failed', error: reason });
            } else {
              this.d.onWork?.({ topic, page: env.page, phase: 'archive' });
              const archived = await archiveMissing(r.seen, s.inactiveStatus, {
                client,
                people: null,
                settings: s.mapping,
                state,
                stats: r.stats,
                signal,
                concurrency: s.concurrency,
                persist,
                onBatch: (done, total) => this.d.onWork?.({ topic, page: env.page, batch: done + 1, batches: total, phase: 'archive' }),
              });
              this.record(r, archived);
              items.push(...archived);
              reconciled = true;
              const why = this.softwareGoneBlocked(r, state);
              if (why) r.sw.reason = why;
              else if (s.software.enabled) {
                const gone = await inactivateGone(r.sw.seen, s.inactiveStatus, this.softwareContext(client, state, r, env, persist, signal));
                r.sw.counts.inactivated += gone.inactivated;
                this.softwareErrors(r, gone.errors);
                r.uploads += gone.uploads;
              }
            }
          }
        } else {
          this.d.onWork?.({ topic, page: env.page, phase: 'resolve' });
          const resolved = await resolveGone(r.seen, {
            client,
            people: null,
            settings: s.incidents,
            source: s.mapping.source,
            state,
            stats: r.stats,
            signal,
            persist,
            run: r.incidentRun,
          });
          this.record(r, resolved);
          items.push(...resolved);
          reconciled = true;
        }
      } catch (err) {
        if (isAbort(err)) throw err;
        reason = `reconciling failed: ${(err as Error).message}`;
        r.errorCount++;
        r.errors.push({ outcome: 'failed', error: reason });
        out.summary = this.summary(r, env, false, reason);
        throw Object.assign(err as Error, { summary: out.summary, items });
      }
    }
    out.summary = this.summary(r, env, reconciled, reason);
    return out;
  }

  private softwareContext(client: FourMeClient, state: SinkState, r: RunTrack, env: SyncEnvelope, persist: () => Promise<void>, signal?: AbortSignal): SoftwareSyncContext {
    const s = this.d.settings;
    return {
      instance: env.instance,
      client,
      settings: s.mapping,
      software: s.software,
      state,
      stats: r.stats,
      signal,
      concurrency: s.concurrency,
      persist,
      onBatch: (done, total) => this.d.onWork?.({ topic: r.topic, page: env.page, batch: done + 1, batches: total, phase: 'page' }),
    };
  }

  private softwareErrors(r: RunTrack, errors: SoftwareItemError[]): void {
    for (const e of errors) {
      r.errorCount++;
      if (r.errors.length < this.d.settings.maxErrorsListed) r.errors.push({ outcome: 'failed', software: true, ...e });
    }
  }

  /** Why software missing from this complete run must not be set inactive (undefined: it may). */
  private softwareGoneBlocked(r: RunTrack, state: SinkState): string | undefined {
    if (!this.d.settings.software.enabled || !state.software.size) return undefined; // nothing owned to set inactive
    if (r.sw.skipped) return 'software was not written in this run (see errors): none was set inactive';
    if (r.sw.unread) return `the software of ${r.sw.unread} device(s) was not read in this run: no software was set inactive`;
    if (!r.sw.seen.size && r.sw.read) {
      for (const k of state.software.appKeys()) if (!state.software.app(k)!.st) return 'no device of this run reported any software: none was set inactive (check the source)';
    }
    return undefined;
  }

  private summary(r: RunTrack, env: SyncEnvelope, reconciled: boolean, reason?: string): RunSummary4me {
    const now = Date.now();
    const st = r.stats;
    const sum: RunSummary4me = {
      runId: r.runId,
      instance: r.instance,
      topic: r.topic,
      mode: r.mode,
      complete: env.mode === 'full' && !env.stats?.aborted && !r.incomplete,
      reconciled,
      startedAt: r.startedAt,
      finishedAt: new Date(now).toISOString(),
      durationMs: now - r.startedMs,
      pages: r.pages,
      requests: {
        graphql: st.requests,
        resultPolls: st.polls,
        uploads: r.uploads,
        personLookups: r.personRequests,
        retries: st.retries,
        throttled: st.throttled,
        throttleWaitMs: st.throttleWaitMs,
        cost: st.cost,
        byOperation: { ...st.byOperation },
      },
      errorCount: r.errorCount,
      errors: r.errors,
    };
    if (reason) sum.reason = reason;
    if (r.topic === TOPIC_DEVICES) {
      sum.cis = { ...r.counts, received: r.seen.size };
      const sw = r.sw.summary();
      if (sw) sum.software = sw;
      if (r.sw.reason) sum.softwareNotInactivated = r.sw.reason;
      sum.people = { matched: r.people.matched, unmatched: r.people.unmatched, noUser: r.people.none };
    } else {
      sum.incidents = { ...r.counts, received: r.seen.size };
    }
    return sum;
  }
}
