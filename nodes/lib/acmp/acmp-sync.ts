/**
 * The inventory side of the `intune-acmp` sink, free of Node-RED: takes the
 * pages of device sync runs (DESIGN.md "Sync run") and publishes the mobile
 * devices to ACMP servers through a SicsClient.
 *
 * - Only devices that changed since the last successful publish *to that
 *   server* are sent. "Changed" = a different fingerprint (acmp-fingerprint.ts:
 *   the device without its software, and its software when the run read it),
 *   remembered per instance and server once the server confirmed the device
 *   (reply code 0 and the device not listed as failed). A device whose
 *   software changed goes out with its whole current list; a run that did
 *   not read software sends no list and keeps the remembered one.
 * - Devices go out in batches (one message per batch, at most `batchSize`
 *   devices and `maxMessageBytes` of XML, acmp-batches.ts); up to
 *   MESSAGES_IN_FLIGHT batches of a page to one server at a time, servers in
 *   parallel; the node publishes ACMP_PAGES_IN_FLIGHT pages side by side
 *   (publishPage) and a run's end alone, after all its pages (finishRun).
 * - A run is complete only when this sink saw every page of a `full` run,
 *   from page 1 to `last: true`, without `stats.aborted`, and the state
 *   could be read. Only then, per server, the devices this instance
 *   published earlier but that the run did not contain are announced as
 *   removed (`<DeviceRemoval>`), and forgotten once ACMP confirmed (or
 *   answered 30: not there / not ours). An incremental, aborted or partly
 *   seen run never removes anything.
 * - State is a cache (DESIGN.md): keyed per instance (msg.sync.instance)
 *   and server, so two instances never share it; losing it means the next
 *   run publishes everything again, never a duplicate in ACMP (devices are
 *   keyed by their Intune id there).
 */
import { createHash } from 'node:crypto';
import type { Device, SyncEnvelope } from '../contracts';
import { changeOf, fingerprintOf, remembered, type DeviceFingerprint } from './acmp-fingerprint';
import { inventoryBatches } from './acmp-batches';
import { header, type ReplyItem, type WireFormat, type WireMessage } from './acmp-wire';
import type { CallResult } from './sics-client';
import { SicsError } from './sics-errors';
import type { AcmpServerRoute } from './sics-settings';
import { forEachPacked, packPairs, storeAs } from '../run/packed-state';
import { WriteSchedule } from '../node-red/context-state';
import { pool } from '../shared/pool';

/**
 * Inventory messages of one page in flight at once, per ACMP server. SICS
 * publishes no limits (a message bus queues what it gets); one at a time made
 * ACMP the slowest sink (each call: reply channel, publish, consume). Our
 * choice: 5 sends a page of 1,000 devices (Graph's page) at the default 200
 * devices per message in one round of calls.
 */
export const MESSAGES_IN_FLIGHT = 5;

/**
 * Device pages published side by side. Each SICS call waits for its own
 * reply (reply channel, publish, consume), so while one page waits for its
 * last replies the next one's messages can go out: a small incremental
 * run's two pages take one round of calls instead of two. SICS publishes no
 * limits; 2 is our choice (with MESSAGES_IN_FLIGHT, at most 10 calls per server).
 */
export const ACMP_PAGES_IN_FLIGHT = 2;

export interface StateStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

export interface Caller {
  call(server: AcmpServerRoute, message: WireMessage, o?: { signal?: AbortSignal; replyTimeoutMs?: number; format?: WireFormat }): Promise<CallResult>;
}

export interface InventoryOptions {
  caller: Caller;
  onDemandDefinition: string;
  batchSize: number;
  reconcile: boolean;
  /**
   * Most devices one run may remove from a server, as a share (%) of those
   * this instance sent there. A full run that would remove more removes
   * nothing and says why: a tenant does not lose half its devices overnight,
   * a wrong filter or a broken source does.
   */
  removalLimitPercent?: number;
  store: StateStore;
  /** Least time between two state writes within a run (default STATE_WRITE_INTERVAL_MS); a run's end always writes. */
  stateWriteIntervalMs?: number;
  replyTimeoutMs?: number;
  /** Most bytes of XML one inventory message may carry (acmp-batches.ts; default DEFAULT_MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
  /** The wire format the messages are written in (acmp-wire.ts; default: its default). */
  format?: WireFormat;
  log?: { warn(m: string): void; debug?(m: string): void };
}

export interface BatchReport {
  batch: number;
  devices: number;
  ok: boolean;
  attempts: number;
  code?: number;
  error?: string;
  failed?: ReplyItem[];
}

export interface ServerPageReport {
  serverId: string;
  changed: number;
  unchanged: number;
  /** Of `changed`: devices sent only because their software changed (the rest of the device did not). */
  softwareChanged: number;
  sent: number;
  failed: number;
  batches: BatchReport[];
}

export interface RemovalReport {
  serverId: string;
  candidates: number;
  removed: number;
  notThere: number;
  failed: number;
  batches: BatchReport[];
  /** Set when the removal limit stopped this server's removals. */
  heldBack?: string;
}

export interface PageReport {
  runId: string;
  instance: string;
  mode: string;
  page: number;
  last: boolean;
  devices: number;
  servers: ServerPageReport[];
  /** On the last page: whether the run counts as complete for removals, and why not. */
  complete?: boolean;
  removalSkipped?: string;
  removals?: RemovalReport[];
  /** Problems that are not per batch (state could not be read or written). */
  warnings: string[];
  /** On the last page: what the whole run did (all its pages seen by this sink), so a run that failed on an earlier page does not end looking fine. */
  run?: { sent: number; failed: number; softwareChanged: number; firstProblem?: string };
}

/** Every problem of a page in one line each: failed batches, failed removals, then the warnings. */
export function pageProblems(r: PageReport): string[] {
  const out: string[] = [];
  for (const s of r.servers) {
    for (const b of s.batches) if (!b.ok) out.push(`${s.serverId} batch ${b.batch} (${b.devices} devices): ${b.error ?? `result code ${b.code}`}`);
  }
  for (const rm of r.removals ?? []) {
    for (const b of rm.batches) if (!b.ok) out.push(`${rm.serverId} removal ${b.batch} (${b.devices} devices): ${b.error ?? `result code ${b.code}`}`);
  }
  return [...out, ...r.warnings];
}

interface SinkState {
  v: 1;
  instance: string;
  serverId: string;
  /**
   * Intune device id → fingerprint of what the server confirmed. A Map, not
   * an object: with 100,000 keys an object becomes a larger, slower dictionary.
   */
  devices: Map<string, string>;
  updatedAt?: string;
}

/** How a serialising store writes the state: one `id|fingerprint` line per device (packed-state.ts). */
interface StoredState {
  v: 2;
  instance: string;
  serverId: string;
  devices: string;
  updatedAt?: string;
}

function packed(s: SinkState): StoredState {
  return { v: 2, instance: s.instance, serverId: s.serverId, devices: packPairs(s.devices), updatedAt: s.updatedAt };
}

function newState(instance: string, serverId: string, devices = new Map<string, string>()): SinkState {
  return storeAs<SinkState>({ v: 1, instance, serverId, devices }, packed);
}

/** The devices of a stored state of this instance and server (either form, or the memory store's own object), or none. */
function storedDevices(raw: Partial<SinkState> | Partial<StoredState> | undefined, instance: string, serverId: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!raw || typeof raw !== 'object' || raw.instance !== instance || raw.serverId !== serverId) return out;
  if (raw.v === 1 && raw.devices instanceof Map) return raw.devices;
  if (raw.v === 1 && raw.devices && typeof raw.devices === 'object') return new Map(Object.entries(raw.devices as unknown as Record<string, string>));
  if (raw.v === 2 && typeof raw.devices === 'string') {
    try {
      forEachPacked(raw.devices, (id, [fp]) => out.set(id, fp));
    } catch {
      out.clear();
    }
  }
  return out;
}

interface RunState {
  runId: string;
  instance: string;
  mode: string;
  nextPage: number;
  contiguous: boolean;
  stateTrouble: boolean;
  seen: Set<string>;
  sent: number;
  failed: number;
  softwareChanged: number;
  firstProblem?: string;
}

/** Context keys must not contain '.': a short hash of instance and server. */
export function stateKey(instance: string, serverId: string): string {
  return `acmpSink_${createHash('sha256').update(`${instance}\u0000${serverId}`).digest('hex').slice(0, 24)}`;
}

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function errorText(err: unknown): { code?: number; error: string } {
  const e = err as SicsError;
  return { ...(typeof e?.resultCode === 'number' ? { code: e.resultCode } : {}), error: e?.message ?? String(err) };
}

export class InventoryPublisher {
  private readonly runs = new Map<string, RunState>();
  private readonly states = new Map<string, SinkState>();
  private readonly loading = new Map<string, Promise<SinkState>>();
  /** When each state is written (context-state.ts). */
  private readonly writes: WriteSchedule;

  constructor(private readonly o: InventoryOptions) {
    this.writes = new WriteSchedule({ intervalMs: o.stateWriteIntervalMs });
  }

  private loadState(instance: string, serverId: string): Promise<SinkState> {
    const key = stateKey(instance, serverId);
    const cached = this.states.get(key);
    if (cached) return Promise.resolve(cached);
    // Pages published side by side must share ONE state object: the second asks while the first still reads.
    let loading = this.loading.get(key);
    if (!loading) {
      loading = (async () => {
        const raw = (await this.o.store.get(key)) as Partial<SinkState> | Partial<StoredState> | undefined;
        const state = newState(instance, serverId, storedDevices(raw, instance, serverId));
        this.states.set(key, state);
        return state;
      })().finally(() => this.loading.delete(key));
      this.loading.set(key, loading);
    }
    return loading;
  }

  private async saveState(s: SinkState): Promise<void> {
    s.updatedAt = new Date().toISOString();
    // The state object itself, not a copy: copying every device's fingerprint on each page
    // allocated O(devices) per page, O(devices²) per run. Only confirmed entries are ever in it.
    await this.writes.write(stateKey(s.instance, s.serverId), () => this.o.store.set(stateKey(s.instance, s.serverId), s));
  }

  /** A run's end: writes every state of the instance that changed since its last write. */
  private async saveChanged(instance: string, servers: AcmpServerRoute[], report: PageReport): Promise<void> {
    for (const server of servers) {
      const key = stateKey(instance, server.serverId);
      const state = this.states.get(key);
      if (!state || !this.writes.pending(key)) continue;
      try {
        await this.saveState(state);
      } catch (err) {
        report.warnings.push(`${server.serverId}: what was published cannot be saved (${(err as Error).message})`);
      }
    }
  }

  /** Forgets what was published for an instance (all servers given), so the next run sends every device again. */
  async reset(instance: string, servers: AcmpServerRoute[]): Promise<void> {
    this.runs.delete(instance);
    for (const s of servers) {
      const state = newState(instance, s.serverId);
      this.states.set(stateKey(instance, s.serverId), state);
      await this.saveState(state);
    }
  }

  /** Writes every state that changed since its last write (the node closes: nothing confirmed is left unwritten). */
  async saveAllChanged(): Promise<void> {
    for (const key of this.writes.pendingKeys()) {
      const state = this.states.get(key);
      if (state) await this.saveState(state).catch(() => undefined);
    }
  }

  /** Forgets the in-memory copy of the state (it is read from the store again). */
  dropCache(): void {
    this.states.clear();
  }

  private track(sync: SyncEnvelope): RunState {
    let run = this.runs.get(sync.instance);
    if (!run || run.runId !== sync.runId) {
      run = { runId: sync.runId, instance: sync.instance, mode: sync.mode, nextPage: sync.page + 1, contiguous: sync.page === 1, stateTrouble: false, seen: new Set(), sent: 0, failed: 0, softwareChanged: 0 };
      this.runs.set(sync.instance, run);
      return run;
    }
    if (sync.page !== run.nextPage) run.contiguous = false;
    run.nextPage = sync.page + 1;
    return run;
  }

  /**
   * Publishes one page to the given servers. Never throws for per-server
   * problems (they are in the report); throws only when aborted.
   */
  async handlePage(sync: SyncEnvelope, devices: Device[], servers: AcmpServerRoute[], signal?: AbortSignal): Promise<PageReport> {
    const report = await this.publishPage(sync, devices, servers, signal);
    return sync.last ? this.finishRun(sync, servers, report, signal) : report;
  }

  /**
   * Publishes one page's changed devices, without the run's end (finishRun).
   * Pages of a run may be published side by side (the node keeps
   * ACMP_PAGES_IN_FLIGHT going), as long as they START in page order: the
   * run is tracked at the start. Devices of different pages never share a
   * state entry, and every state entry is set only once ACMP confirmed it.
   */
  async publishPage(sync: SyncEnvelope, devices: Device[], servers: AcmpServerRoute[], signal?: AbortSignal): Promise<PageReport> {
    const run = this.track(sync);
    for (const d of devices) run.seen.add(d.id);
    const report: PageReport = { runId: sync.runId, instance: sync.instance, mode: sync.mode, page: sync.page, last: sync.last, devices: devices.length, servers: [], warnings: [] };
    const fps = new Map<string, DeviceFingerprint>();
    for (const d of devices) fps.set(d.id, fingerprintOf(d, this.o.onDemandDefinition));

    report.servers = await Promise.all(servers.map((s) => this.publishToServer(s, sync, run, devices, fps, report, signal)));
    for (const s of report.servers) {
      run.sent += s.sent;
      run.failed += s.failed;
      run.softwareChanged += s.softwareChanged;
      const bad = s.batches.find((b) => !b.ok);
      if (bad && !run.firstProblem) run.firstProblem = `${s.serverId} page ${sync.page} batch ${bad.batch}: ${bad.error ?? `result code ${bad.code}`}`;
    }
    return report;
  }

  /**
   * The end of a run, after its last page was published: writes the state and,
   * for a complete full run, removes what the run did not contain. Must run
   * only once every page of the run has been published and before the next
   * run's first page starts (the node runs it alone): a device confirmed by
   * a later run must not look like one this run no longer has.
   */
  async finishRun(sync: SyncEnvelope, servers: AcmpServerRoute[], report: PageReport, signal?: AbortSignal): Promise<PageReport> {
    const run = this.runs.get(sync.instance);
    if (!run || run.runId !== sync.runId) throw new Error(`finishRun: run ${sync.runId} of ${sync.instance} is not the one being tracked`);
    await this.saveChanged(sync.instance, servers, report);
    this.runs.delete(sync.instance);
    const why =
      sync.mode !== 'full'
        ? 'the run is incremental'
        : sync.stats?.aborted
          ? `the run was aborted${sync.stats.error ? ` (${sync.stats.error})` : ''}`
          : !run.contiguous
            ? 'this node did not receive every page of the run'
            : run.stateTrouble
              ? 'what was published before could not be read or saved'
              : !this.o.reconcile
                ? 'removals are switched off in the node'
                : undefined;
    report.complete = sync.mode === 'full' && !sync.stats?.aborted && run.contiguous && !run.stateTrouble;
    if (why) report.removalSkipped = why;
    else report.removals = await Promise.all(servers.map((s) => this.removeGone(s, sync, run, report, signal)));
    report.run = { sent: run.sent, failed: run.failed, softwareChanged: run.softwareChanged, ...(run.firstProblem ? { firstProblem: run.firstProblem } : {}) };
    return report;
  }

  private async publishToServer(
    server: AcmpServerRoute,
    sync: SyncEnvelope,
    run: RunState,
    devices: Device[],
    fps: Map<string, DeviceFingerprint>,
    report: PageReport,
    signal?: AbortSignal,
  ): Promise<ServerPageReport> {
    const out: ServerPageReport = { serverId: server.serverId, changed: 0, unchanged: 0, softwareChanged: 0, sent: 0, failed: 0, batches: [] };
    let state: SinkState;
    try {
      state = await this.loadState(sync.instance, server.serverId);
    } catch (err) {
      run.stateTrouble = true;
      report.warnings.push(`${server.serverId}: what was published before cannot be read (${(err as Error).message}); every device is sent`);
      state = newState(sync.instance, server.serverId);
    }
    const changed: Device[] = [];
    for (const d of devices) {
      const change = changeOf(state.devices.get(d.id), fps.get(d.id)!);
      if (change === 'none') continue;
      changed.push(d);
      if (change === 'software') out.softwareChanged++;
    }
    out.changed = changed.length;
    out.unchanged = devices.length - changed.length;
    // The messages of a page go out MESSAGES_IN_FLIGHT at a time: each waits for its answer on a
    // reply channel of its own (sics-client.ts), which costs four round trips besides ACMP's work.
    const batches = [...inventoryBatches(changed, this.o.batchSize, this.o.maxMessageBytes)];
    await pool(batches, MESSAGES_IN_FLIGHT, async (batch, k) => {
      const n = k + 1;
      if (signal?.aborted) throw new SicsError('aborted', 'stopped');
      const message: WireMessage = {
        kind: 'inventory',
        header: header({ instance: sync.instance }),
        onDemandDefinition: this.o.onDemandDefinition,
        runId: sync.runId,
        mode: sync.mode,
        page: sync.page,
        batch: n,
        devices: batch,
      };
      try {
        const { reply, attempts } = await this.o.caller.call(server, message, { signal, replyTimeoutMs: this.o.replyTimeoutMs, ...(this.o.format ? { format: this.o.format } : {}) });
        const failed = new Map(reply.failed.map((f) => [f.intuneId, f]));
        for (const d of batch) if (!failed.has(d.id)) state.devices.set(d.id, remembered(state.devices.get(d.id), fps.get(d.id)!));
        out.sent += batch.length - failed.size;
        out.failed += failed.size;
        out.batches.push({ batch: n, devices: batch.length, ok: failed.size === 0, attempts, code: reply.code, ...(failed.size ? { failed: reply.failed, error: failedText(reply.failed) } : {}) });
      } catch (err) {
        if ((err as SicsError)?.code === 'aborted') throw err;
        out.failed += batch.length;
        out.batches.push({ batch: n, devices: batch.length, ok: false, attempts: 0, ...errorText(err) });
      }
    });
    out.batches.sort((a, b) => a.batch - b.batch);
    if (changed.length) {
      const key = stateKey(sync.instance, server.serverId);
      this.writes.changed(key);
      try {
        // Within a run at most one write per interval; the last page writes what is pending.
        if (sync.last || this.writes.due(key)) await this.saveState(state);
      } catch (err) {
        run.stateTrouble = true;
        report.warnings.push(`${server.serverId}: what was published cannot be saved (${(err as Error).message})`);
      }
    }
    return out;
  }

  private async removeGone(server: AcmpServerRoute, sync: SyncEnvelope, run: RunState, report: PageReport, signal?: AbortSignal): Promise<RemovalReport> {
    const out: RemovalReport = { serverId: server.serverId, candidates: 0, removed: 0, notThere: 0, failed: 0, batches: [] };
    let state: SinkState;
    try {
      state = await this.loadState(sync.instance, server.serverId);
    } catch (err) {
      report.warnings.push(`${server.serverId}: removals skipped, the state cannot be read (${(err as Error).message})`);
      return out;
    }
    const gone = [...state.devices.keys()].filter((id) => !run.seen.has(id));
    out.candidates = gone.length;
    const owned = state.devices.size;
    const limit = this.o.removalLimitPercent ?? 100;
    if (gone.length && (gone.length * 100) / owned > limit) {
      out.heldBack = `${gone.length} of the ${owned} devices this instance sent would be removed, more than the limit of ${limit} %: nothing was removed. Check the source's filters, or raise the limit`;
      report.warnings.push(`${server.serverId}: ${out.heldBack}`);
      return out;
    }
    let n = 0;
    for (const ids of chunks(gone, this.o.batchSize)) {
      n++;
      if (signal?.aborted) throw new SicsError('aborted', 'stopped');
      const message: WireMessage = { kind: 'removal', header: header({ instance: sync.instance }), onDemandDefinition: this.o.onDemandDefinition, runId: sync.runId, deviceIds: ids };
      try {
        const { reply, attempts } = await this.o.caller.call(server, message, { signal, replyTimeoutMs: this.o.replyTimeoutMs, ...(this.o.format ? { format: this.o.format } : {}) });
        const failed = new Map(reply.failed.map((f) => [f.intuneId, f]));
        let batchFailed = 0;
        for (const id of ids) {
          const f = failed.get(id);
          if (!f) {
            state.devices.delete(id);
            out.removed++;
          } else if (f.code === 30) {
            state.devices.delete(id);
            out.notThere++;
          } else {
            out.failed++;
            batchFailed++;
          }
        }
        out.batches.push({ batch: n, devices: ids.length, ok: batchFailed === 0, attempts, code: reply.code, ...(batchFailed ? { failed: reply.failed.filter((f) => f.code !== 30), error: failedText(reply.failed.filter((f) => f.code !== 30)) } : {}) });
      } catch (err) {
        if ((err as SicsError)?.code === 'aborted') throw err;
        out.failed += ids.length;
        out.batches.push({ batch: n, devices: ids.length, ok: false, attempts: 0, ...errorText(err) });
      }
    }
    if (out.removed || out.notThere) {
      try {
        await this.saveState(state);
      } catch (err) {
        report.warnings.push(`${server.serverId}: the state after removals cannot be saved (${(err as Error).message})`);
      }
    }
    return out;
  }
}

function failedText(items: ReplyItem[]): string {
  if (!items.length) return '';
  const byCode = new Map<number, number>();
  for (const f of items) byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
  const parts = [...byCode].map(([code, count]) => `${count} with result code ${code}${code === 32 ? ' (licence amount reached)' : code === 30 ? ' (not found)' : ''}`);
  return `${items.length} device(s) not accepted: ${parts.join(', ')}${items[0].message ? `; first: ${items[0].message}` : ''}`;
}
