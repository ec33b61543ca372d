/**
 * Node state kept in Node-RED context, in a store the user picks.
 *
 * - `storeInfo()` tells whether a store survives a restart, from the
 *   runtime's `contextStorage` setting: the built-in `memory` module does
 *   not, `localfilesystem` does; a custom module is assumed to (we cannot
 *   know). No setting at all means everything is in memory. An unknown store
 *   name falls back to the default store, as the runtime does.
 * - `ContextValue` reads and writes one key through the asynchronous API,
 *   so stores without a cache work too. Keys must not contain '.', which
 *   context treats as a path.
 */
export interface ContextStorageSetting {
  [store: string]: string | { module?: unknown; config?: unknown };
}

export interface StoreInfo {
  /** The store the runtime will actually use. */
  name: string;
  persistent: boolean;
  /** The store asked for does not exist; the default is used instead. */
  unknown: boolean;
}

/** Which store `requested` ('' = default) resolves to, and whether it persists. */
export function storeInfo(contextStorage: ContextStorageSetting | undefined | null, requested?: string): StoreInfo {
  const stores = contextStorage && typeof contextStorage === 'object' ? contextStorage : {};
  const names = Object.keys(stores).filter((n) => n !== '_');
  if (!names.length) return { name: 'memory', persistent: false, unknown: !!requested && requested !== 'memory' && requested !== 'default' };
  const defaultName = (): string => {
    const d = stores.default;
    if (typeof d === 'string') return d;
    if (d) return 'default';
    return names.find((n) => typeof stores[n] !== 'string') ?? names[0];
  };
  let name = requested && requested.trim() ? requested.trim() : defaultName();
  let unknown = false;
  if (name === 'default') name = defaultName();
  if (!Object.prototype.hasOwnProperty.call(stores, name) || typeof stores[name] === 'string') {
    unknown = !!requested && requested.trim() !== '' && requested !== 'default';
    name = defaultName();
  }
  const conf = stores[name];
  const mod = typeof conf === 'object' && conf ? conf.module : undefined;
  const persistent = mod === undefined ? false : typeof mod === 'string' ? mod !== 'memory' : true;
  return { name, persistent, unknown };
}

/**
 * How often a sink writes its per-device state to context during a run (it
 * always writes at a run's end, and when the node closes). The in-memory
 * state is current all along; what the interval bounds is what a crash can
 * lose — a re-upload of what was confirmed since, never a duplicate. Writing after
 * every page made `localfilesystem` serialise the whole state (tens of MB
 * for 100,000 devices) every 30 s of a long run: the peak of its memory.
 */
export const STATE_WRITE_INTERVAL_MS = 5 * 60_000;

/**
 * When each of a sink's states (by key) is written: the first write at once,
 * then, within a run, at most one per interval; what changed meanwhile waits
 * for the run's end or the node's close, which write whatever is pending.
 * A write marks its key clean when it starts (changes made while it runs
 * count again) and pending again when it fails, so a failed write is
 * retried by the next one that is due.
 */
export class WriteSchedule {
  private readonly keys = new Map<string, { at?: number; pending: boolean }>();

  constructor(private readonly o: { intervalMs?: number; now?: () => number } = {}) {}

  /** Something of `key` changed that is not written yet. */
  changed(key: string): void {
    const e = this.keys.get(key);
    if (e) e.pending = true;
    else this.keys.set(key, { pending: true });
  }

  /** Whether `key` has changes not written yet. */
  pending(key: string): boolean {
    return !!this.keys.get(key)?.pending;
  }

  /** Whether a write of `key` within a run is due: it has changes, and none was written within the interval. */
  due(key: string): boolean {
    const e = this.keys.get(key);
    if (!e?.pending) return false;
    return e.at === undefined || this.now() - e.at >= (this.o.intervalMs ?? STATE_WRITE_INTERVAL_MS);
  }

  /** Runs `write` as the write of `key` (whether due or not). */
  async write(key: string, write: () => Promise<void>): Promise<void> {
    const e = this.keys.get(key) ?? { pending: false };
    this.keys.set(key, e);
    e.pending = false;
    e.at = this.now();
    try {
      await write();
    } catch (err) {
      e.pending = true;
      throw err;
    }
  }

  /** Forgets `key` (its state was dropped or replaced): nothing pending, and its next write is due at once. */
  forget(key: string): void {
    this.keys.delete(key);
  }

  /** Keys with changes not written yet. */
  pendingKeys(): string[] {
    return [...this.keys].filter(([, e]) => e.pending).map(([k]) => k);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}

/** The part of a Node-RED context object used here. */
export interface ContextLike {
  get(key: string, store: string | undefined, cb: (err: Error | null | undefined, value?: unknown) => void): void;
  set(key: string, value: unknown, store: string | undefined, cb: (err?: Error | null) => void): void;
}

export class ContextValue<T> {
  constructor(
    private readonly context: ContextLike,
    private readonly key: string,
    private readonly store?: string,
  ) {
    if (key.includes('.')) throw new Error(`Context key "${key}" must not contain "."`);
  }

  get(): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.context.get(this.key, this.store || undefined, (err, value) => (err ? reject(err) : resolve(value as T | undefined)));
    });
  }

  set(value: T | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      this.context.set(this.key, value, this.store || undefined, (err) => (err ? reject(err) : resolve()));
    });
  }
}
