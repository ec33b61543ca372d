/**
 * The registry of running Previews (nodes/lib/devices/preview-progress.ts):
 * what GET /intune-devices/preview/progress/:id answers from. No servers.
 */
import { expect } from 'chai';
import { emptyTally } from '../nodes/lib/devices/device-scan';
import { MAX_RUNNING, PROGRESS_ID_RE, PreviewProgressRegistry, soFarOf } from '../nodes/lib/devices/preview-progress';

describe('preview progress registry', () => {
  const extra = { stage: 'devices' as const, requests: 3, userLookupsPending: 2 };

  it('answers the counts of a running Preview with the time since it began, and nothing once it ended', () => {
    let now = 1_000;
    const reg = new PreviewProgressRegistry(MAX_RUNNING, () => now);
    const tally = emptyTally();
    expect(reg.begin('abcdefgh', soFarOf(tally, { ...extra, stage: 'software' }))).to.equal(true);
    now = 1_250;
    expect(reg.get('abcdefgh')).to.deep.include({ ok: true, running: true, stage: 'software', pages: 0, total: 0, imported: 0, elapsedMs: 250 });
    tally.read = 1000;
    tally.kept = 900;
    tally.pages = 1;
    tally.skipped.duplicate = 100;
    tally.platforms.windows = { read: 1000, kept: 900 };
    reg.update('abcdefgh', soFarOf(tally, extra));
    now = 2_000;
    const p = reg.get('abcdefgh')!;
    expect(p).to.deep.include({ stage: 'devices', pages: 1, total: 1000, imported: 900, requests: 3, userLookupsPending: 2, elapsedMs: 1000 });
    expect(p.skipped.duplicate).to.equal(100);
    expect(p.platforms.windows).to.deep.equal({ read: 1000, kept: 900 });
    // A copy: the Preview goes on counting in its own tally, the registry shows the last page's counts.
    tally.read = 2000;
    tally.skipped.duplicate = 500;
    tally.platforms.windows.read = 2000;
    expect(reg.get('abcdefgh')).to.deep.include({ total: 1000 });
    expect(reg.get('abcdefgh')!.skipped.duplicate).to.equal(100);
    expect(reg.get('abcdefgh')!.platforms.windows.read).to.equal(1000);
    // Only counts: no field beyond the documented ones.
    expect(Object.keys(p).sort()).to.deep.equal(['elapsedMs', 'imported', 'ok', 'pages', 'platforms', 'requests', 'running', 'skipped', 'stage', 'total', 'userLookupsPending']);
    reg.end('abcdefgh');
    expect(reg.get('abcdefgh')).to.equal(undefined);
    expect(reg.size).to.equal(0);
    // An update after the end (a late page) does not bring it back.
    reg.update('abcdefgh', soFarOf(tally, extra));
    expect(reg.get('abcdefgh')).to.equal(undefined);
  });

  it('is bounded: beyond its limit, and for an id already running, a Preview is not tracked; a slot frees when one ends', () => {
    const reg = new PreviewProgressRegistry(3);
    const s = soFarOf(emptyTally(), extra);
    expect(['id-00001', 'id-00002', 'id-00003'].map((id) => reg.begin(id, s))).to.deep.equal([true, true, true]);
    expect(reg.begin('id-00004', s), 'full').to.equal(false);
    expect(reg.get('id-00004')).to.equal(undefined);
    expect(reg.get('id-00001'), 'the oldest stays').to.not.equal(undefined);
    reg.end('id-00002');
    expect(reg.begin('id-00002', s), 'taken by nobody now').to.equal(true);
    expect(reg.begin('id-00002', s), 'taken by a running Preview').to.equal(false);
    expect(reg.size).to.equal(3);
  });

  it('accepts ids of 8 to 64 letters, digits, "_" and "-" only', () => {
    for (const ok of ['abcdefgh', 'A1_b2-C3', 'x'.repeat(64), '0123456789abcdef0123456789abcdef']) expect(PROGRESS_ID_RE.test(ok), ok).to.equal(true);
    for (const bad of ['', 'abcdefg', 'x'.repeat(65), 'abc/defgh', 'abcd efgh', 'abcdefgh\n', '../../../x', 'äbcdefgh']) expect(PROGRESS_ID_RE.test(bad), JSON.stringify(bad)).to.equal(false);
  });
});
