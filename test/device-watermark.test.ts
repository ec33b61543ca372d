/**
 * The incremental watermark of intune-devices (lib/devices/device-watermark.ts),
 * without Node-RED or Graph.
 */
import { expect } from 'chai';
import { planRun, settingsFingerprint, stateAfterRun, type DeviceSyncState } from '../nodes/lib/devices/device-watermark';
import { parseDeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';

const T = 'tenant-1';
const settings = parseDeviceSourceSettings({});
const fp = settingsFingerprint(settings, T);
const saved = (e: Partial<DeviceSyncState> = {}): DeviceSyncState => ({
  v: 1,
  tenantId: T,
  fingerprint: fp,
  watermark: '2026-05-01T10:00:00.000Z',
  lastFullAt: '2026-04-30T00:00:00.000Z',
  lastRunAt: '2026-05-01T10:05:00.000Z',
  ...e,
});

describe('device-watermark: incremental runs of intune-devices', () => {
  it('the fingerprint changes with the tenant and with the settings that choose devices, not with others', () => {
    expect(settingsFingerprint(settings, 'other')).to.not.equal(fp);
    expect(settingsFingerprint({ ...settings, collapseDuplicates: !settings.collapseDuplicates }, T)).to.not.equal(fp);
    expect(settingsFingerprint({ ...settings, checkDeletedUsers: !settings.checkDeletedUsers }, T)).to.not.equal(fp);
    const later: typeof settings = { ...settings, overlapMs: settings.overlapMs + 60_000 };
    expect(settingsFingerprint(later, T)).to.equal(fp);
  });

  it('an incremental run continues from the watermark, less the overlap', () => {
    const plan = planRun(saved(), 'incremental', { tenantId: T, fingerprint: fp }, 15 * 60_000);
    expect(plan).to.deep.equal({ valid: true, since: '2026-05-01T09:45:00.000Z' });
  });

  it('an incremental run becomes full when the tenant or settings changed, or when there is nothing to continue from', () => {
    expect(planRun(saved({ tenantId: 'x' }), 'incremental', { tenantId: T, fingerprint: fp }, 0)).to.deep.equal({ valid: false, fullBecause: 'changed' });
    expect(planRun(saved({ fingerprint: 'x' }), 'incremental', { tenantId: T, fingerprint: fp }, 0)).to.deep.equal({ valid: false, fullBecause: 'changed' });
    expect(planRun(undefined, 'incremental', { tenantId: T, fingerprint: fp }, 0)).to.deep.equal({ valid: false, fullBecause: 'noEarlierRun' });
    expect(planRun(saved({ watermark: undefined }), 'incremental', { tenantId: T, fingerprint: fp }, 0)).to.deep.equal({ valid: true, fullBecause: 'noEarlierRun' });
  });

  it('a full run asked for is full, whatever was saved', () => {
    expect(planRun(saved(), 'full', { tenantId: T, fingerprint: fp }, 0)).to.deep.equal({ valid: true });
    expect(planRun(saved({ v: 2 as 1 }), 'full', { tenantId: T, fingerprint: fp }, 0)).to.deep.equal({ valid: false });
  });

  describe('the state a completed run leaves', () => {
    const startedMs = Date.parse('2026-05-02T12:00:00.000Z');
    const run = { tenantId: T, fingerprint: fp, startedMs, startedAt: new Date(startedMs).toISOString() };

    it('the watermark moves to the newest last sync seen, capped at the run\u2019s start', () => {
      const newer = stateAfterRun(saved(), true, { ...run, mode: 'incremental', newestSyncMs: Date.parse('2026-05-02T11:00:00.000Z') });
      expect(newer).to.deep.equal({ ...saved(), watermark: '2026-05-02T11:00:00.000Z', lastRunAt: run.startedAt });
      const future = stateAfterRun(saved(), true, { ...run, mode: 'incremental', newestSyncMs: startedMs + 3_600_000 });
      expect(future.watermark).to.equal(run.startedAt);
    });

    it('never moves back; an incremental run that saw nothing keeps it', () => {
      expect(stateAfterRun(saved(), true, { ...run, mode: 'incremental', newestSyncMs: Date.parse('2026-04-01T00:00:00.000Z') }).watermark).to.equal(saved().watermark);
      expect(stateAfterRun(saved(), true, { ...run, mode: 'incremental', newestSyncMs: 0 }).watermark).to.equal(saved().watermark);
    });

    it('a full run that saw no sync time sets the watermark to its start and is the last full run', () => {
      const s = stateAfterRun(undefined, false, { ...run, mode: 'full', newestSyncMs: 0 });
      expect(s).to.deep.equal({ v: 1, tenantId: T, fingerprint: fp, watermark: run.startedAt, lastFullAt: run.startedAt, lastRunAt: run.startedAt });
    });

    it('a state of other settings is not continued: neither its watermark nor its last full run carry over', () => {
      const s = stateAfterRun(saved({ watermark: '2030-01-01T00:00:00.000Z' }), false, { ...run, mode: 'incremental', newestSyncMs: 0 });
      expect(s.watermark).to.equal(undefined);
      expect(s.lastFullAt).to.equal(undefined);
    });
  });
});
