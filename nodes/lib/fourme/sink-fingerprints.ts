/**
 * What the 4me sink remembers between runs, in Node-RED context (the store
 * the user picks), one value per instance so that two instances feeding the
 * same sink, or two sinks, never share it:
 *
 * - `cis`: per Intune device id (= CI sourceID) the fingerprint of the
 *   mapped CI last CONFIRMED by 4me, the CI's node id when 4me told it, the
 *   product it hangs under and its name. The keys are also this instance's
 *   ownership record: a complete full run archives only CIs listed here.
 * - `products`: the products those CIs hang under (for archival uploads).
 * - `incidents`: per violation key (deviceId:policyId) the incident this
 *   instance raised or adopted and whether it is still open.
 * - `software`: the software CIs this instance wrote and each device's
 *   software relations (fourme-software-ledger.ts); stored as `software`
 *   next to the `v: 3` fields, absent in states written before.
 *
 * The state is a cache: losing it costs a full re-upload (discovered CIs are
 * upserts keyed by source + sourceID) and a query per incident before any
 * create (keyed by sourceID), never a duplicate. It is bound to the 4me
 * endpoint, account and source it was written for; a change of any of them
 * starts afresh.
 *
 * Stored packed (packed-state.ts): `v: 3` with `cis` as one line per device
 * (`deviceId|product|f|id|n`, the product an index into `productKeys`); in
 * memory it is the `v: 1` object below, `cis` a compact CiLedger
 * (ci-ledger.ts). Earlier forms load too: `v: 2` (the product key in each
 * line) and `v: 1` with `cis` a plain object.
 */
import { createHash } from 'node:crypto';
import { ContextValue, WriteSchedule, type ContextLike } from '../node-red/context-state';
import { CiLedger, type CiEntry } from './ci-ledger';
import { SoftwareLedger, type PackedSoftware } from './fourme-software-ledger';
import { storeAs } from '../run/packed-state';

export type { CiEntry };

export interface ProductEntry {
  /** Category reference and name. */
  c: string;
  cn: string;
  /** Brand, model, product name, product sourceID. */
  b: string;
  m: string;
  n: string;
  s: string;
}

export interface IncidentEntry {
  /** Request node id. */
  id: string;
  /** Request number shown in 4me. */
  no?: string;
  /**
   * open: raised/adopted and not resolved; noted: resolution note added
   * (note-only mode); closed: completed in 4me while the violation persists.
   */
  s: 'open' | 'noted' | 'closed';
  /** Policy name (for the resolution note). */
  pn?: string;
  /** Device id of the violation. */
  d: string;
  at: string;
}

export interface SinkState {
  v: 1;
  scope: string;
  cis: CiLedger;
  products: Record<string, ProductEntry>;
  incidents: Record<string, IncidentEntry>;
  /** Software CIs and device software relations (fourme-software-ledger.ts). */
  software: SoftwareLedger;
}

export interface StateScope {
  endpoint: string;
  account: string;
  source: string;
}

export function scopeKey(s: StateScope): string {
  return JSON.stringify([s.endpoint, s.account.toLowerCase(), s.source]);
}

/** Context key for an instance: readable prefix + hash (context keys must not contain '.'). */
export function stateKeyFor(instance: string): string {
  const safe = instance.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const h = createHash('sha1').update(instance).digest('hex').slice(0, 10);
  return `intune4me_${safe}_${h}`;
}

/**
 * Short, stable fingerprint of any JSON-able value: the first 15 bytes of
 * the SHA-1 in base64url, exactly 20 characters (the same text as the first
 * 20 of the full digest). Encoded at that length rather than cut from the
 * full text, because a cut string keeps the whole digest alive behind it:
 * one per device in the state.
 */
export function fingerprint(value: unknown): string {
  return createHash('sha1').update(JSON.stringify(value)).digest().toString('base64url', 0, 15);
}

/** How the state is written by a serialising store (see packed-state.ts, ci-ledger.ts). */
interface StoredState {
  v: 3;
  scope: string;
  /** One `deviceId|product|f|id|n` line per device; product = index into productKeys. */
  cis: string;
  productKeys: string[];
  products: Record<string, ProductEntry>;
  incidents: Record<string, IncidentEntry>;
  /** Absent in states written before software was synced. */
  software?: PackedSoftware;
}

/** The `v: 2` form (product keys in the lines), still read. */
interface StoredStateV2 {
  v: 2;
  scope: string;
  cis: string;
  products: Record<string, ProductEntry>;
  incidents: Record<string, IncidentEntry>;
}

function packed(s: SinkState): StoredState {
  const { lines, productKeys } = s.cis.toPacked();
  return { v: 3, scope: s.scope, cis: lines, productKeys, products: s.products, incidents: s.incidents, software: s.software.toPacked() };
}

/** The in-memory state, from what a store returned (any form); null when it is not a state. */
export function fromStored(raw: unknown): SinkState | null {
  const r = raw as Partial<SinkState> | Partial<StoredState> | Partial<StoredStateV2> | null | undefined;
  if (!r || typeof r !== 'object' || typeof r.scope !== 'string' || !r.products || !r.incidents) return null;
  // The memory store hands back the very object it was given.
  if (r.v === 1 && r.cis instanceof CiLedger) {
    if (!((r as SinkState).software instanceof SoftwareLedger)) (r as SinkState).software = new SoftwareLedger();
    return r as SinkState;
  }
  const state = (cis: () => CiLedger): SinkState | null => {
    try {
      const sw = r.v === 3 ? (r as Partial<StoredState>).software : undefined;
      return storeAs<SinkState>({ v: 1, scope: r.scope!, cis: cis(), products: r.products!, incidents: r.incidents!, software: SoftwareLedger.fromPacked(sw) }, packed);
    } catch {
      return null;
    }
  };
  if (r.v === 1 && r.cis && typeof r.cis === 'object') return state(() => CiLedger.fromRecord(r.cis as unknown as Record<string, CiEntry>));
  if (r.v === 2 && typeof r.cis === 'string') return state(() => CiLedger.fromLines(r.cis as string));
  if (r.v === 3 && typeof r.cis === 'string') return state(() => CiLedger.fromPacked({ lines: r.cis as string, productKeys: (r as StoredState).productKeys }));
  return null;
}

export function emptyState(scope: string): SinkState {
  return storeAs<SinkState>({ v: 1, scope, cis: new CiLedger(), products: {}, incidents: {}, software: new SoftwareLedger() }, packed);
}

/** Loads and saves the state of each instance; keeps loaded states in memory. */
export class SinkStateStore {
  private loaded = new Map<string, { value: ContextValue<SinkState>; state: SinkState; fresh: boolean }>();
  private readonly writes: WriteSchedule;
  private reading = new Map<string, Promise<{ state: SinkState; fresh: boolean }>>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly context: ContextLike,
    private readonly store?: string,
    o: { writeIntervalMs?: number; now?: () => number } = {},
  ) {
    this.writes = new WriteSchedule({ intervalMs: o.writeIntervalMs, now: o.now });
  }

  /**
   * The state of `instance` for `scope`. `fresh` is true when nothing usable
   * was stored (first run, wiped cache, or another account/source).
   */
  async load(instance: string, scope: StateScope): Promise<{ state: SinkState; fresh: boolean }> {
    const sk = scopeKey(scope);
    const have = this.loaded.get(instance);
    if (have && have.state.scope === sk) return { state: have.state, fresh: have.fresh };
    // Pages handled side by side ask at the same time: one read, one state object for all of them.
    const key = `${instance}\u0000${sk}`;
    let reading = this.reading.get(key);
    if (!reading) {
      reading = this.read(instance, sk).finally(() => this.reading.delete(key));
      this.reading.set(key, reading);
    }
    return reading;
  }

  private async read(instance: string, sk: string): Promise<{ state: SinkState; fresh: boolean }> {
    const value = new ContextValue<SinkState>(this.context, stateKeyFor(instance), this.store);
    const stored = fromStored(await value.get());
    let state: SinkState;
    let fresh = false;
    if (stored && stored.scope === sk) {
      state = stored;
    } else {
      state = emptyState(sk);
      fresh = true;
    }
    this.loaded.set(instance, { value, state, fresh });
    this.writes.forget(instance);
    return { state, fresh };
  }

  /** Marks that some entries of `instance` are stored now (after a confirmed write). */
  touch(instance: string): void {
    const l = this.loaded.get(instance);
    if (l) {
      this.writes.changed(instance);
      l.fresh = false;
    }
  }

  /**
   * Writes a changed state (serialised: one context write at a time). Within
   * a run (`soon`), at most once per STATE_WRITE_INTERVAL_MS after the first
   * write; the rest waits for the next write or the run's end.
   */
  async save(instance: string, o: { soon?: boolean } = {}): Promise<void> {
    const l = this.loaded.get(instance);
    if (!l || !(o.soon ? this.writes.due(instance) : this.writes.pending(instance))) return;
    await this.writes.write(instance, () => {
      const run = this.chain.then(() => l.value.set(l.state));
      this.chain = run.catch(() => undefined);
      return run;
    });
  }

  /** Writes every loaded state with unwritten changes (the node closes). Never throws. */
  async saveAll(): Promise<void> {
    for (const instance of this.writes.pendingKeys()) await this.save(instance).catch(() => undefined);
  }

  /** Forgets the in-memory copies (the next load reads context again). */
  forget(): void {
    this.loaded.clear();
  }
}
