/**
 * intune-devices in a real browser: added from the palette onto a flow with a
 * deployed Intune connection (simulated tenant), the preview counts what a run
 * would pass on for the dialog's current settings, and after Deploy the status
 * dot follows a run started from an inject node to its result, which agrees
 * with the preview.
 */
import { expect } from 'chai';
import { browserStack, onFailure, CONFIG_ID, TENANT_DEVICES, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { number, squash, text } from './support/catalog';

const T = 'intune-devices';
const en = (key: string, params?: Record<string, string | number>) => text(T, 'en-US', `${T}.${key}`, params);
const INJECT = 'inj-run';

interface Preview {
  summary: string;
  platforms: Record<string, { read: number; kept: number }>;
  skipped: Record<string, number>;
  skippedTotal: number;
  seen: string[];
}

describe('browser: intune-devices preview, deploy and a run', function () {
  this.timeout(90_000);
  let stack: Stack;
  let ed: Editor | undefined;
  let nodeId = '';
  let firstPreview: Preview;
  onFailure(() => ed);

  const num = (s: string) => Number(s.replace(/[^\d]/g, ''));

  async function runPreview(): Promise<Preview> {
    const box = ed!.page.locator('#intune-devices-preview-result');
    await box.evaluate((el) => {
      const seen: string[] = [];
      (window as any).__previewSeen = seen;
      new MutationObserver(() => {
        const t = (el as HTMLElement).innerText.replace(/\s+/g, ' ').trim();
        if (t && seen[seen.length - 1] !== t) seen.push(t);
      }).observe(el, { childList: true, subtree: true, characterData: true });
    });
    await ed!.page.locator('#intune-devices-preview').click();
    await ed!.page.waitForFunction(() => /is-(ok|error)/.test(document.getElementById('intune-devices-preview-result')!.className), undefined, { timeout: 30_000 });
    if (!(await box.getAttribute('class'))!.includes('is-ok')) throw new Error(`preview failed: ${await box.innerText()}`);
    const tables = await box.locator('table').evaluateAll((ts) =>
      ts.map((t) => Array.from(t.querySelectorAll('tr')).slice(1).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => (td.textContent ?? '').trim()))),
    );
    const platforms: Preview['platforms'] = {};
    for (const [name, read, kept] of tables[0]) platforms[name] = { read: num(read), kept: num(kept) };
    const skipped: Record<string, number> = {};
    let skippedTotal = -1;
    for (const [reason, n] of tables[1]) {
      if (reason === en('preview.skippedTotal')) skippedTotal = num(n);
      else skipped[reason] = num(n);
    }
    return {
      summary: squash(await box.locator('.intune-devices-big').innerText()),
      platforms,
      skipped,
      skippedTotal,
      seen: await ed!.page.evaluate(() => (window as any).__previewSeen as string[]),
    };
  }

  before(async () => {
    stack = await browserStack();
    await stack.reset([
      ...stack.deployedConfig(),
      { id: INJECT, type: 'inject', name: 'run now', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', once: false, x: 130, y: 100, wires: [[]] },
    ]);
    ed = await stack.editor();
  });
  after(async () => {
    await ed?.close();
  });

  it('preview: counts the tenant and what a run would pass on, per platform and skip reason', async () => {
    nodeId = await ed!.addFromPalette(T, { x: 380, y: 100 });
    await ed!.openNode(nodeId);
    // Choose the deployed connection (listed by its name).
    const conn = ed!.page.locator('#node-input-intune');
    expect(await conn.locator('option').allInnerTexts()).to.include('sim secret');
    await conn.selectOption(CONFIG_ID);
    const p = await runPreview();
    firstPreview = p;
    expect(p.seen[0], 'progress while the tenant is read').to.equal(en('preview.running'));
    const read = Object.values(p.platforms).reduce((a, c) => a + c.read, 0);
    const kept = Object.values(p.platforms).reduce((a, c) => a + c.kept, 0);
    expect(read, 'devices read, summed over the platform rows').to.equal(TENANT_DEVICES);
    expect(p.summary).to.equal(en('preview.summary', { imported: number(kept, 'en-US'), total: number(TENANT_DEVICES, 'en-US') }));
    expect(p.skippedTotal, 'skipped total').to.equal(Object.values(p.skipped).reduce((a, b) => a + b, 0));
    expect(kept + p.skippedTotal, 'every device is either passed on or skipped for one reason').to.equal(TENANT_DEVICES);
    expect(kept, 'some devices pass').to.be.greaterThan(0);
    await ed!.screenshotTray('dialog-intune-devices-preview');
  });

  it('preview: follows the undeployed settings of the dialog (Windows off)', async () => {
    const windows = en('platform.windows');
    expect(firstPreview.platforms[windows]?.kept, 'Windows devices passed with Windows on').to.be.greaterThan(0);
    await ed!.page.locator('#node-input-platformWindows').uncheck();
    const p = await runPreview();
    expect(p.platforms[windows]?.kept ?? 0, 'Windows devices passed with Windows off').to.equal(0);
    const kept = Object.values(p.platforms).reduce((a, c) => a + c.kept, 0);
    const keptBefore = Object.values(firstPreview.platforms).reduce((a, c) => a + c.kept, 0);
    expect(kept).to.equal(keptBefore - firstPreview.platforms[windows].kept);
    await ed!.page.locator('#node-input-platformWindows').check();
  });

  it('after Deploy, the status dot follows a run from the inject node to its result', async () => {
    await ed!.dialogDone();
    await ed!.wire(INJECT, nodeId);
    await ed!.deploy();
    const idle = en('status.idle') + en('status.notPersistent');
    await ed!.waitForStatus(nodeId, { shape: 'ring-grey', text: new RegExp(`^${escape(idle)}$`) });
    await ed!.recordStatus(nodeId);
    await ed!.pressInject(INJECT);
    const kept = Object.values(firstPreview.platforms).reduce((a, c) => a + c.kept, 0);
    const done = await ed!.waitForStatus(nodeId, { shape: 'dot-green' }, 30_000);
    const history = await ed!.statusHistory(nodeId);
    expect(history.some((s) => s.shape === 'dot-blue'), `a blue dot while running; seen ${JSON.stringify(history)}`).to.equal(true);
    // "full: 57 devices, 3 skipped · 12:34 UTC · state in memory only", and it agrees with the preview.
    const want = new RegExp(
      '^' + escape(en('status.done', { mode: 'full', emitted: kept, skipped: TENANT_DEVICES - kept, time: '@@' })).replace('@@', '\\d\\d:\\d\\d') +
        escape(en('status.notPersistent')) + '$',
    );
    expect(done.text).to.match(want);
    await ed!.screenshot('canvas-intune-devices-after-run', ed!.page.locator('#red-ui-workspace-chart'));
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
