/**
 * Writes pages of Intune devices into 4me as discovered configuration
 * items, and archives the CIs of devices gone from Intune.
 *
 * Per page: look up the users' people (cached, 100 per request), map each
 * device, skip those whose mapped CI has the fingerprint last confirmed by
 * 4me, upload the rest 100 per call (a few calls in parallel), follow each
 * asynchronous result to the end, and record a fingerprint only for the
 * CIs 4me confirmed. Errors 4me reports for a CI (`errors {path message}`)
 * are mapped back to the device and reported per item; a failed call fails
 * the items of that call only, except for problems no later call can
 * survive (authentication, permissions, endpoint, abort), which end the page.
 */
import { pool } from '../shared/pool';
import type { Device } from '../contracts';
import { FourMeError, isAbort, payloadErrors, type FourMeClient, type FourMeStats } from './fourme-client';
import { OPS } from './fourme-operations';
import type { PeopleDirectory } from './fourme-people';
import {
  MAX_CIS_PER_CALL,
  archiveItem,
  buildBatch,
  deviceProblem,
  locateError,
  mapDevice,
  userEmailOf,
  type Batch,
  type BatchItem,
  type CiMappingSettings,
  type CiStatus,
  type MappedCi,
} from './fourme-ci-mapping';
import type { SinkState } from './sink-fingerprints';
import { childIdsOf, relationsFingerprint } from './fourme-software-mapping';

export type CiOutcome = 'created' | 'updated' | 'unchanged' | 'archived' | 'failed' | 'invalid';

export interface ItemResult {
  sourceID: string;
  name?: string;
  outcome: CiOutcome;
  ciId?: string;
  error?: string;
  path?: string[];
  /** Person relation: matched, unmatched (no active person with that e-mail), none (no user). */
  person?: 'matched' | 'unmatched' | 'none';
  /** Set when the device's software relations were written anew (fourme-software-sync.ts). */
  relations?: 'changed';
}

export interface CiSyncContext {
  client: FourMeClient;
  people: PeopleDirectory | null;
  settings: CiMappingSettings;
  state: SinkState;
  stats: FourMeStats;
  signal?: AbortSignal;
  /** Parallel upload calls (each followed to its result). */
  concurrency: number;
  asyncTimeoutMs?: number;
  /** Stores the state after confirmed writes. */
  persist(): Promise<void>;
  /** Called before each upload call (for "writing page n, batch k/m"). */
  onBatch?(done: number, total: number): void;
  /** Relate each device's CI to its software CIs (when the device carries its software): the run's instance, or undefined to leave relations alone. */
  softwareInstance?: string;
}

/** Errors after which no further call can succeed: they end the page (and go to done(err)). */
export function isFatal(err: unknown): boolean {
  if (isAbort(err)) return true;
  if (err instanceof FourMeError) return ['auth', 'forbidden', 'notFound', 'config', 'tls', 'unreachable'].includes(err.kind);
  return true;
}

interface DiscoveredPayload {
  errors?: Array<{ path?: unknown; message?: unknown }> | null;
  configurationItems?: Array<{ id: string; sourceID: string | null } | null> | null;
  asyncQuery?: { id: string; resultUrl: string | null; errorCount: number | null; resultCount?: number | null; status?: string | null } | null;
}

type Confirmation = { ok: true; id?: string } | { ok: false; error: string; path?: string[] };

function firstProperty(o: unknown): unknown {
  if (!o || typeof o !== 'object') return undefined;
  const k = Object.keys(o)[0];
  return k === undefined ? undefined : (o as Record<string, unknown>)[k];
}

/** What 4me said about each CI of a batch, from a mutation payload or an asynchronous result. */
export function interpretPayload(batch: Batch, payload: DiscoveredPayload, submittedOnly: boolean): Map<string, Confirmation> {
  const out = new Map<string, Confirmation>();
  const confirmed = new Map<string, string>();
  const listed = Array.isArray(payload.configurationItems);
  for (const c of payload.configurationItems ?? []) if (c && c.sourceID) confirmed.set(c.sourceID, c.id);
  const precise = new Map<string, { error: string; path: string[] }>();
  const broad = new Map<string, { error: string; path: string[] }>();
  for (const e of payloadErrors(payload)) {
    const ids = locateError(batch, e.path);
    const isPrecise = ids.length === 1 && e.path.includes('configurationItems');
    for (const id of ids) {
      const target = isPrecise ? precise : broad;
      const prev = target.get(id);
      target.set(id, prev ? { error: `${prev.error}; ${e.message}`, path: prev.path } : { error: e.message, path: e.path });
    }
  }
  for (const sid of batch.sourceIDs) {
    const p = precise.get(sid);
    if (p) {
      out.set(sid, { ok: false, error: p.error, path: p.path });
      continue;
    }
    if (confirmed.has(sid)) {
      out.set(sid, { ok: true, id: confirmed.get(sid) });
      continue;
    }
    const b = broad.get(sid);
    if (b) {
      out.set(sid, { ok: false, error: b.error, path: b.path });
      continue;
    }
    if (submittedOnly) {
      out.set(sid, { ok: false, error: '4me accepted the upload but gave no result to follow' });
    } else if (!listed) {
      // No list of CIs in the result but no error either: 4me reports success as errorCount 0.
      out.set(sid, { ok: true });
    } else {
      out.set(sid, { ok: false, error: '4me did not confirm this configuration item' });
    }
  }
  return out;
}

/** Uploads one batch and follows it to its result. */
/**
 * Uploads one batch and waits for 4me's answer. `onSent`: called once the
 * upload itself is answered, before the wait for its asynchronous result
 * (the caller's pool lets the next upload go then: see shared/pool.ts).
 */
export async function uploadBatch(batch: Batch, ctx: Pick<CiSyncContext, 'client' | 'stats' | 'signal' | 'asyncTimeoutMs'>, onSent?: () => void): Promise<Map<string, Confirmation>> {
  const data = await ctx.client.graphql<{ discoveredConfigurationItems: DiscoveredPayload | null }>(
    OPS.discoveredCis,
    { input: batch.input },
    { signal: ctx.signal, stats: ctx.stats, idempotent: true },
  );
  onSent?.();
  const payload = data.discoveredConfigurationItems;
  if (!payload) throw new FourMeError('badResponse', '4me answered the discovered-CI upload without a result');
  const url = payload.asyncQuery?.resultUrl;
  if (!url) {
    // Rejected at once (validation), or processed synchronously.
    const sync = Array.isArray(payload.configurationItems) || payloadErrors(payload).length > 0;
    return interpretPayload(batch, payload, !sync);
  }
  if (payloadErrors(payload).length) return interpretPayload(batch, { errors: payload.errors, configurationItems: [] }, false);
  const json = await ctx.client.asyncResult<{ data?: unknown }>(url, { signal: ctx.signal, stats: ctx.stats, timeoutMs: ctx.asyncTimeoutMs });
  const data2 = (json.data ?? {}) as Record<string, unknown>;
  const result = (data2.discoveredConfigurationItems ?? firstProperty(data2)) as DiscoveredPayload | undefined;
  if (!result || typeof result !== 'object') throw new FourMeError('badResponse', 'The asynchronous 4me result holds no discovered-CI answer');
  return interpretPayload(batch, result, false);
}

export function chunks<T>(items: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

export interface CiPageResult {
  items: ItemResult[];
  /** Person look-up requests made for this page. */
  personRequests: number;
  /** Upload calls made. */
  uploads: number;
}

/** Writes what changed of one page of devices. Throws only fatal errors (see isFatal). */
export async function syncDevicePage(devices: unknown[], ctx: CiSyncContext): Promise<CiPageResult> {
  // Results in the order of the page; a device twice in a page is written once (the later one).
  const results: ItemResult[] = new Array(devices.length);
  const valid = new Map<string, { d: Device; i: number }>();
  devices.forEach((d, i) => {
    const problem = deviceProblem(d);
    if (problem) {
      const id = (d as { id?: unknown })?.id;
      results[i] = { sourceID: typeof id === 'string' ? id : `#${i}`, outcome: 'invalid', error: `Item ${i} of the page ${problem}` };
      return;
    }
    const id = (d as Device).id;
    const earlier = valid.get(id);
    if (earlier) results[earlier.i] = { sourceID: id, outcome: 'invalid', error: `Item ${earlier.i} of the page is the same device as item ${i}, which was written instead` };
    valid.set(id, { d: d as Device, i });
  });

  let personRequests = 0;
  let ids = new Map<string, string | null>();
  if (ctx.people) {
    const r = await ctx.people.resolve([...valid.values()].map((v) => userEmailOf(v.d)), { signal: ctx.signal, stats: ctx.stats });
    ids = r.ids;
    personRequests = r.requests;
  }

  const toWrite: Array<{ m: MappedCi; r: ItemResult; rel?: string }> = [];
  for (const { d, i } of valid.values()) {
    const email = userEmailOf(d);
    const personId = ctx.people ? (email ? ids.get(email) ?? null : null) : undefined;
    const m = mapDevice(d, ctx.settings, personId);
    const r: ItemResult = { sourceID: d.id, name: m.ci.name, outcome: 'unchanged', person: m.email ? (m.personMatched ? 'matched' : 'unmatched') : 'none' };
    results[i] = r;
    const prev = ctx.state.cis.get(d.id);
    if (prev?.id) r.ciId = prev.id;
    // Software relations: sent whenever the device carries its software; the device is written when they changed.
    const kids = ctx.softwareInstance !== undefined ? childIdsOf(d, ctx.state.software, ctx.softwareInstance) : undefined;
    const rel = kids && relationsFingerprint(kids);
    const relChanged = rel !== undefined && ctx.state.software.devices.get(d.id) !== rel;
    if (prev && prev.f === m.fingerprint && !relChanged) continue;
    if (kids) m.ci = { ...m.ci, ciRelations: { childIds: kids } };
    r.outcome = prev ? 'updated' : 'created';
    toWrite.push({ m, r, rel: relChanged ? rel : undefined });
  }

  const batches = chunks(toWrite, MAX_CIS_PER_CALL);
  let done = 0;
  await pool(batches, Math.max(1, ctx.concurrency), async (group, _i, release) => {
    const batch = buildBatch(
      group.map(({ m }) => ({ sourceID: m.sourceID, ci: m.ci, product: m.product })),
      ctx.settings,
    );
    ctx.onBatch?.(done, batches.length);
    let answer: Map<string, Confirmation>;
    try {
      answer = await uploadBatch(batch, ctx, release);
    } catch (err) {
      if (isFatal(err)) throw err;
      const msg = (err as Error).message;
      for (const { r } of group) {
        r.outcome = 'failed';
        r.error = msg;
      }
      return;
    } finally {
      done++;
    }
    let changed = false;
    for (const { m, r, rel } of group) {
      const a = answer.get(m.sourceID);
      if (a && a.ok) {
        const id = a.id ?? ctx.state.cis.get(m.sourceID)?.id;
        ctx.state.cis.set(m.sourceID, { f: m.fingerprint, id, p: m.productKey, n: m.ci.name });
        if (rel !== undefined) {
          ctx.state.software.devices.set(m.sourceID, rel);
          r.relations = 'changed';
        }
        ctx.state.products[m.productKey] = m.product;
        if (id) r.ciId = id;
        changed = true;
      } else {
        r.outcome = 'failed';
        r.error = a && !a.ok ? a.error : '4me did not confirm this configuration item';
        if (a && !a.ok && a.path?.length) r.path = a.path;
      }
    }
    if (changed) await ctx.persist();
  });
  return { items: results, personRequests, uploads: batches.length };
}

/**
 * After a complete full run: sets the CIs this instance owns (state.cis)
 * whose devices were not in the run to `status`, 100 per call, and forgets
 * them once 4me confirms.
 */
export async function archiveMissing(seen: ReadonlySet<string>, status: CiStatus, ctx: CiSyncContext): Promise<ItemResult[]> {
  const gone: BatchItem[] = [];
  const results = new Map<string, ItemResult>();
  for (const sid of ctx.state.cis.keys()) {
    if (seen.has(sid)) continue;
    const entry = ctx.state.cis.get(sid)!; // decoded only for the few that are gone
    const product = ctx.state.products[entry.p];
    if (!product) {
      results.set(sid, { sourceID: sid, name: entry.n, outcome: 'failed', error: 'The product of this CI is not known any more: it cannot be archived through discovery' });
      continue;
    }
    gone.push(archiveItem(sid, entry, product, status));
    results.set(sid, { sourceID: sid, name: entry.n, outcome: 'archived', ciId: entry.id });
  }
  const batches = chunks(gone, MAX_CIS_PER_CALL);
  let done = 0;
  await pool(batches, Math.max(1, ctx.concurrency), async (group, _i, release) => {
    const batch = buildBatch(group, ctx.settings);
    ctx.onBatch?.(done, batches.length);
    let answer: Map<string, Confirmation>;
    try {
      answer = await uploadBatch(batch, ctx, release);
    } catch (err) {
      if (isFatal(err)) throw err;
      for (const it of group) Object.assign(results.get(it.sourceID)!, { outcome: 'failed', error: (err as Error).message });
      return;
    } finally {
      done++;
    }
    for (const it of group) {
      const a = answer.get(it.sourceID);
      const r = results.get(it.sourceID)!;
      if (a && a.ok) {
        ctx.state.cis.delete(it.sourceID);
        ctx.state.software.devices.delete(it.sourceID);
      } else {
        r.outcome = 'failed';
        r.error = a && !a.ok ? a.error : '4me did not confirm the status change';
      }
    }
    await ctx.persist();
  });
  return [...results.values()];
}
