/**
 * What a running Preview has counted so far, for the editor to show while the
 * POST /intune-devices/preview is still reading the tenant (a 100,000-device
 * tenant takes seconds; issue #23 wants progress, not just "running").
 *
 * The editor picks a random id, sends it with the POST and asks
 * GET /intune-devices/preview/progress/:id about once a second. The Preview
 * puts a copy of its tally here after every Graph page (device-preview.ts,
 * `onPage`) and removes its entry when it answers, however it ends.
 *
 * Only counts are held, never settings, records or secrets. The registry is
 * bounded: beyond MAX_RUNNING Previews at once (each reads a whole tenant, so
 * that many means something is wrong) a new one runs untracked instead of
 * pushing out one whose editor is watching.
 */
import type { Platform } from './device-normaliser';
import type { SkipReason } from './device-filters';
import type { ScanTally } from './device-scan';

/** A client-chosen progress id: 8–64 letters, digits, '_' or '-' (it travels in a URL path). */
export const PROGRESS_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** The most Previews tracked at once. */
export const MAX_RUNNING = 20;

/** What the Preview is reading: the discovered-apps report (exported first when on), then the devices. */
export type PreviewStage = 'software' | 'devices';

/** The provisional counts of a running Preview (the final answer's names). */
export interface PreviewSoFar {
  stage: PreviewStage;
  pages: number;
  /** Devices read so far. */
  total: number;
  /** Of these, what a run would pass on, as far as the records read so far tell. */
  imported: number;
  skipped: Record<SkipReason, number>;
  platforms: Record<Platform, { read: number; kept: number }>;
  requests: number;
  userLookupsPending: number;
}

/** The answer of GET …/progress/:id while the Preview runs. */
export interface PreviewProgressAnswer extends PreviewSoFar {
  ok: true;
  running: true;
  elapsedMs: number;
}

interface Entry {
  startedMs: number;
  soFar: PreviewSoFar;
}

/** The counts of a tally, copied (the Preview goes on changing its own). */
export function soFarOf(tally: ScanTally, extra: { stage: PreviewStage; requests: number; userLookupsPending: number }): PreviewSoFar {
  return {
    stage: extra.stage,
    pages: tally.pages,
    total: tally.read,
    imported: tally.kept,
    skipped: { ...tally.skipped },
    platforms: Object.fromEntries(Object.entries(tally.platforms).map(([p, c]) => [p, { ...c }])) as PreviewSoFar['platforms'],
    requests: extra.requests,
    userLookupsPending: extra.userLookupsPending,
  };
}

export class PreviewProgressRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly max = MAX_RUNNING,
    private readonly now: () => number = Date.now,
  ) {}

  /** Previews tracked now. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Starts tracking Preview `id` with its first counts. False (not tracked) when the id is
   * taken by a Preview still running, or MAX_RUNNING are tracked: that Preview runs without progress.
   */
  begin(id: string, soFar: PreviewSoFar): boolean {
    if (this.entries.has(id) || this.entries.size >= this.max) return false;
    this.entries.set(id, { startedMs: this.now(), soFar });
    return true;
  }

  /** The Preview's counts after another page (ignored for an id not tracked). */
  update(id: string, soFar: PreviewSoFar): void {
    const e = this.entries.get(id);
    if (e) e.soFar = soFar;
  }

  /** The Preview answered (or failed, or was aborted): no progress any more. */
  end(id: string): void {
    this.entries.delete(id);
  }

  /** What Preview `id` has so far; undefined when no such Preview is running. */
  get(id: string): PreviewProgressAnswer | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    return { ok: true, running: true, ...e.soFar, elapsedMs: Math.max(0, this.now() - e.startedMs) };
  }
}

/** The runtime's one registry (module state: shared by every intune-devices node and the editor's requests). */
export const previewProgress = new PreviewProgressRegistry();
