/**
 * Writes the software of a page of devices into 4me (docs/fourme-software.md):
 * software CIs first, in bulk (100 per discoveredConfigurationItems call),
 * so that their node ids are known when the devices' CIs relate them as
 * children (`ciRelations.childIds`, fourme-ci-sync.ts). A software CI whose
 * fingerprint 4me confirmed earlier is not sent again; one set inactive is
 * sent again (active) as soon as a device has it.
 *
 * After a complete full run in which every device carried its software,
 * the software CIs this instance owns that no device has any more are set
 * to the inactive status (never deleted): `inactivateGone`.
 */
import type { Device } from '../contracts';
import type { FourMeClient, FourMeStats } from './fourme-client';
import { buildBatch, MAX_CIS_PER_CALL, type BatchItem, type CiMappingSettings, type CiStatus } from './fourme-ci-mapping';
import { appsOf, mapApp, softwareSourceId, softwareStatusItem, type MappedSoftware, type SoftwareSettings } from './fourme-software-mapping';
import type { SinkState } from './sink-fingerprints';
import { chunks, isFatal, uploadBatch } from './fourme-ci-sync';
import { pool } from '../shared/pool';
import { OPS } from './fourme-operations';

export type SoftwareOutcome = 'created' | 'updated' | 'unchanged' | 'reactivated' | 'inactivated' | 'failed';

export interface SoftwareItemError {
  sourceID: string;
  name: string;
  error: string;
  path?: string[];
}

export interface SoftwareSyncContext {
  /** The run's instance (tenant): part of the software CIs' sourceIDs. */
  instance: string;
  client: FourMeClient;
  settings: CiMappingSettings;
  software: SoftwareSettings;
  state: SinkState;
  stats: FourMeStats;
  signal?: AbortSignal;
  concurrency: number;
  asyncTimeoutMs?: number;
  persist(): Promise<void>;
  onBatch?(done: number, total: number): void;
}

export interface SoftwarePageResult {
  /** Outcome per software CI of the page (each sourceID once). */
  outcomes: Map<string, SoftwareOutcome>;
  errors: SoftwareItemError[];
  uploads: number;
}

/** Discovery input without the device products' UI extension (it holds the Intune device fields). */
function softwareBatch(items: BatchItem[], s: CiMappingSettings) {
  return buildBatch(items, { ...s, uiExtensionId: '' });
}

/**
 * Why software cannot be written into the configured category (null: it
 * can). Discovery would create a missing category with a rule set it cannot
 * choose (not Software), and every software product and CI would land there
 * as a physical asset: so the category must exist, enabled, with rule set
 * Software. One query per run.
 */
export async function softwareCategoryProblem(ctx: Pick<SoftwareSyncContext, 'client' | 'software' | 'stats' | 'signal'>): Promise<string | null> {
  const ref = ctx.software.reference;
  const data = await ctx.client.graphql<{ productCategories: { nodes: Array<{ reference: string; ruleSet: string | null; disabled: boolean | null } | null> | null } | null }>(
    OPS.softwareCategory,
    { filter: { reference: { values: [ref] } } },
    { signal: ctx.signal, stats: ctx.stats, idempotent: true },
  );
  const cat = (data.productCategories?.nodes ?? []).find((c) => c && c.reference === ref);
  const fix = 'create it in 4me (Settings → Product Categories) with rule set "Software", or name an existing software category in the node';
  if (!cat) return `The software product category "${ref}" does not exist in 4me: ${fix}. Software was not written`;
  if (cat.ruleSet !== 'software') return `The product category "${ref}" has rule set "${cat.ruleSet ?? 'none'}", not "software": ${fix}. Software was not written`;
  if (cat.disabled) return `The software product category "${ref}" is disabled in 4me. Software was not written`;
  return null;
}

/** Writes the software CIs the page's devices need that 4me does not have as they are. Throws only fatal errors. */
export async function syncSoftwarePage(devices: Device[], ctx: SoftwareSyncContext): Promise<SoftwarePageResult> {
  const ledger = ctx.state.software;
  const outcomes = new Map<string, SoftwareOutcome>();
  const errors: SoftwareItemError[] = [];
  const toWrite: MappedSoftware[] = [];
  const waitFor = new Set<Promise<void>>();
  for (const d of devices) {
    for (const app of appsOf(d) ?? []) {
      const sid = softwareSourceId(app, ctx.instance);
      if (outcomes.has(sid)) continue;
      const busy = ledger.inFlight.get(sid);
      if (busy) {
        // Another page is writing it: wait for that, then judge it again (below).
        waitFor.add(busy);
        outcomes.set(sid, 'unchanged');
        continue;
      }
      const m = mapApp(app, ctx.instance, ctx.software, ctx.settings);
      const prev = ledger.app(sid);
      if (prev && !prev.st && prev.f === m.fingerprint) {
        outcomes.set(sid, 'unchanged');
        continue;
      }
      outcomes.set(sid, !prev ? 'created' : prev.st ? 'reactivated' : 'updated');
      toWrite.push(m);
    }
  }
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  for (const m of toWrite) ledger.inFlight.set(m.sourceID, mine);
  const batches = chunks(toWrite, MAX_CIS_PER_CALL);
  try {
    let done = 0;
    await pool(batches, Math.max(1, ctx.concurrency), async (group, _i, sent) => {
      const batch = softwareBatch(group.map((m) => ({ sourceID: m.sourceID, ci: m.ci, product: m.product })), ctx.settings);
      ctx.onBatch?.(done, batches.length);
      let answer;
      try {
        answer = await uploadBatch(batch, ctx, sent);
      } catch (err) {
        if (isFatal(err)) throw err;
        for (const m of group) fail(m, (err as Error).message);
        return;
      } finally {
        done++;
      }
      let changed = false;
      for (const m of group) {
        const a = answer.get(m.sourceID);
        if (a && a.ok) {
          ledger.setApp(m.sourceID, { f: m.fingerprint, id: a.id ?? ledger.app(m.sourceID)?.id, p: m.productKey, n: m.ci.name, st: '' });
          ctx.state.products[m.productKey] = m.product;
          changed = true;
        } else fail(m, a && !a.ok ? a.error : '4me did not confirm this software configuration item', a && !a.ok ? a.path : undefined);
      }
      if (changed) await ctx.persist();
    });
  } finally {
    for (const m of toWrite) if (ledger.inFlight.get(m.sourceID) === mine) ledger.inFlight.delete(m.sourceID);
    release();
  }
  if (waitFor.size) await Promise.all(waitFor);
  return { outcomes, errors, uploads: batches.length };

  function fail(m: MappedSoftware, error: string, path?: string[]) {
    outcomes.set(m.sourceID, 'failed');
    const e: SoftwareItemError = { sourceID: m.sourceID, name: m.ci.name, error };
    if (path?.length) e.path = path;
    errors.push(e);
  }
}

/** What a run saw of software, and its counts for the summary. */
export class SoftwareTally {
  /** Software CI sourceIDs on the run's devices. */
  readonly seen = new Set<string>();
  /** Devices of the run whose software was not read. */
  unread = 0;
  /** Devices of the run that carried their software. */
  read = 0;
  /** Why software on no device was not set inactive (complete runs only). */
  reason?: string;
  /** The run's check of the software category (once per run; its answer: why software is not written). */
  category?: Promise<string | null>;
  /** Why software was not written in this run (the category check failed). */
  skipped?: string;
  readonly counts: Record<SoftwareOutcome | 'relationsChanged', number> = {
    created: 0,
    updated: 0,
    unchanged: 0,
    reactivated: 0,
    inactivated: 0,
    failed: 0,
    relationsChanged: 0,
  };
  /** Software CIs written (or failed) in this run; and those only ever found unchanged so far. */
  private written = new Set<string>();
  private onlyUnchanged = new Set<string>();

  /** Notes what a page's payload carries (before anything is written: a page that fails is still seen). */
  notePage(payload: unknown[], instance: string): void {
    for (const d of payload) {
      const apps = d && typeof d === 'object' ? appsOf(d as Device) : undefined;
      if (!apps) {
        this.unread++;
        continue;
      }
      this.read++;
      for (const a of apps) this.seen.add(softwareSourceId(a, instance));
    }
  }

  /**
   * Counts a page's software outcomes: every write and failure, and as unchanged only a software CI
   * that no page of the run wrote. Pages run side by side and report in any order: a page that
   * found an app another page was writing calls it unchanged, and may report before the page that
   * created it, so "unchanged" is settled at the end, not counted on the way.
   */
  add(outcomes: ReadonlyMap<string, SoftwareOutcome>): void {
    for (const [sid, o] of outcomes) {
      if (o === 'unchanged') {
        if (!this.written.has(sid)) this.onlyUnchanged.add(sid);
        continue;
      }
      this.counts[o]++;
      this.written.add(sid);
      this.onlyUnchanged.delete(sid);
    }
    this.counts.unchanged = this.onlyUnchanged.size;
  }

  /** The summary part, or undefined when the run carried no software and set nothing inactive. */
  summary(): Record<string, number> | undefined {
    if (!this.read && !this.counts.inactivated) return undefined;
    return { ...this.counts, received: this.seen.size, devicesRead: this.read, devicesNotRead: this.unread };
  }
}

/**
 * After a complete full run that read every device's software: sets the
 * software CIs this instance owns that no device of the run has to
 * `status`, 100 per call, and remembers them as inactive once 4me confirms.
 */
export async function inactivateGone(seen: ReadonlySet<string>, status: CiStatus, ctx: SoftwareSyncContext): Promise<{ inactivated: number; errors: SoftwareItemError[]; uploads: number }> {
  const ledger = ctx.state.software;
  const gone: BatchItem[] = [];
  const errors: SoftwareItemError[] = [];
  for (const sid of ledger.appKeys()) {
    if (seen.has(sid)) continue;
    const e = ledger.app(sid)!;
    if (e.st) continue; // inactive already
    const product = ctx.state.products[e.p];
    if (!product) {
      errors.push({ sourceID: sid, name: e.n, error: 'The product of this software is not known any more: it cannot be set inactive through discovery' });
      continue;
    }
    gone.push(softwareStatusItem(sid, e.n, product, status));
  }
  const batches = chunks(gone, MAX_CIS_PER_CALL);
  let inactivated = 0;
  let done = 0;
  await pool(batches, Math.max(1, ctx.concurrency), async (group, _i, sent) => {
    ctx.onBatch?.(done, batches.length);
    let answer;
    try {
      answer = await uploadBatch(softwareBatch(group, ctx.settings), ctx, sent);
    } catch (err) {
      if (isFatal(err)) throw err;
      for (const it of group) errors.push({ sourceID: it.sourceID, name: it.ci.name, error: (err as Error).message });
      return;
    } finally {
      done++;
    }
    for (const it of group) {
      const a = answer.get(it.sourceID);
      if (a && a.ok) {
        const e = ledger.app(it.sourceID)!;
        ledger.setApp(it.sourceID, { ...e, f: '', st: status });
        inactivated++;
      } else errors.push({ sourceID: it.sourceID, name: it.ci.name, error: a && !a.ok ? a.error : '4me did not confirm the status change' });
    }
    await ctx.persist();
  });
  return { inactivated, errors, uploads: batches.length };
}
