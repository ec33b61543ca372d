/**
 * The incremental watermark of `intune-devices`: what a run continues from,
 * and what it leaves for the next one.
 *
 * The state is kept with the tenant and a fingerprint of the settings that
 * decide which devices a run passes on (filters, duplicates, deleted users,
 * placeholder serials): a change of either makes the next incremental run a
 * full one, since the devices sent so far were chosen by other rules. An
 * incremental run reads the devices synced since the watermark, less an
 * overlap (Graph's lastSyncDateTime is not written in order). A completed
 * run moves the watermark to the newest last sync it saw, capped at its own
 * start; it never moves back.
 */
import type { SyncMode } from '../contracts';
import { filterFingerprint } from './device-filters';
import type { DeviceSourceSettings } from './device-source-settings';

/** What the node keeps in context, per node (context is per node id) and checked against tenant + settings. */
export interface DeviceSyncState {
  v: 1;
  tenantId: string;
  fingerprint: string;
  /** Newest last sync (Graph's clock) covered by a completed run, capped at that run's start. */
  watermark?: string;
  lastFullAt?: string;
  lastRunAt?: string;
}

export function settingsFingerprint(s: Pick<DeviceSourceSettings, 'filters' | 'collapseDuplicates' | 'checkDeletedUsers' | 'placeholderSerials'>, tenantId: string): string {
  return JSON.stringify([tenantId, filterFingerprint(s.filters), s.collapseDuplicates, s.checkDeletedUsers, s.placeholderSerials]);
}

export interface RunPlan {
  /** The saved state belongs to this tenant and these settings. */
  valid: boolean;
  /** Read the devices synced since then (an incremental run that can continue). */
  since?: string;
  /** An incremental run that has to be a full one, and why. */
  fullBecause?: 'changed' | 'noEarlierRun';
}

/** Where a run of `requestedMode` starts from, given the saved state. */
export function planRun(saved: DeviceSyncState | undefined, requestedMode: SyncMode, key: { tenantId: string; fingerprint: string }, overlapMs: number): RunPlan {
  const valid = !!saved && saved.v === 1 && saved.tenantId === key.tenantId && saved.fingerprint === key.fingerprint;
  if (requestedMode !== 'incremental') return { valid };
  if (valid && saved!.watermark) return { valid, since: new Date(Date.parse(saved!.watermark) - overlapMs).toISOString() };
  return { valid, fullBecause: saved && !valid ? 'changed' : 'noEarlierRun' };
}

/** The state a completed run leaves. */
export function stateAfterRun(
  saved: DeviceSyncState | undefined,
  valid: boolean,
  run: { tenantId: string; fingerprint: string; mode: SyncMode; startedMs: number; startedAt: string; newestSyncMs: number },
): DeviceSyncState {
  const newest = run.newestSyncMs ? Math.min(run.newestSyncMs, run.startedMs) : run.mode === 'full' ? run.startedMs : 0;
  const prev = valid && saved!.watermark ? Date.parse(saved!.watermark) : 0;
  const mark = Math.max(prev, newest);
  return {
    v: 1,
    tenantId: run.tenantId,
    fingerprint: run.fingerprint,
    watermark: mark ? new Date(mark).toISOString() : undefined,
    lastFullAt: run.mode === 'full' ? run.startedAt : valid ? saved!.lastFullAt : undefined,
    lastRunAt: run.startedAt,
  };
}
