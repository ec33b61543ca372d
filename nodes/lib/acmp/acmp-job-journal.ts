/**
 * The jobs intake's journal: ACMP jobs that SICS has handed over but that
 * `intune-acmp-actions` has not yet handed on (forwarded to the executor or
 * answered as refused).
 *
 * SICS takes a message off its queue when a consume answers, so a job is
 * this node's alone from then on. Each consumed job is written here first,
 * handed on, then struck off. A job that a consume returns while the node
 * closes (a redeploy) is only written here; the next node with the same id
 * (after the redeploy, or after a restart when the context store is
 * persistent) hands it on before it reads new jobs. Handing on twice (a
 * crash between hand-on and strike-off) is harmless: the executor refuses a
 * job id it has already run (action-journal.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ConsumedMessage } from './sics-client';

export interface JournalEntry extends ConsumedMessage {
  /** Our own key (SICS message ids are not public, may be missing). */
  key: string;
  takenAt: string;
}

export interface JournalStore {
  get(): Promise<unknown>;
  set(value: unknown): Promise<void>;
}

function isEntry(v: unknown): v is JournalEntry {
  const e = v as JournalEntry;
  return !!e && typeof e === 'object' && typeof e.key === 'string' && typeof e.xml === 'string';
}

export class JobJournal {
  private entries?: JournalEntry[];
  /** Writes one after the other, each with the whole list (a store keeps values, not appends). */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly store: JournalStore) {}

  private async list(): Promise<JournalEntry[]> {
    if (!this.entries) {
      const raw = await this.store.get();
      this.entries = Array.isArray(raw) ? raw.filter(isEntry) : [];
    }
    return this.entries;
  }

  private update(fn: (list: JournalEntry[]) => void): Promise<void> {
    const run = this.chain.then(async () => {
      const list = await this.list();
      fn(list);
      await this.store.set(list.length ? list : undefined);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The jobs taken but not handed on, oldest first. */
  async pending(): Promise<JournalEntry[]> {
    await this.chain;
    return [...(await this.list())];
  }

  /** Writes consumed messages down; resolves once the store has them. */
  async add(msgs: ConsumedMessage[], now = new Date()): Promise<JournalEntry[]> {
    const added = msgs.map((m) => ({ ...m, key: randomUUID(), takenAt: now.toISOString() }));
    if (added.length) await this.update((list) => list.push(...added));
    return added;
  }

  /** Strikes a job off once it was handed on. */
  remove(key: string): Promise<void> {
    return this.update((list) => {
      const i = list.findIndex((e) => e.key === key);
      if (i !== -1) list.splice(i, 1);
    });
  }
}
