/**
 * intune-compliance's policy picker in a real browser, with a deployed Intune
 * connection to the simulated tenant: "Pick from the tenant" lists the
 * tenant's compliance policies (name and platform), ticking two writes them
 * into the list, the selection survives Done, Deploy and reopening the
 * dialog (and ticks the same boxes when loaded again), and a run started
 * from an inject node emits violations of exactly those policies while the
 * status dot shows the result. The picker once more in German.
 */
import { expect } from 'chai';
import { browserStack, onFailure, CONFIG_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { squash, text, type Lang } from './support/catalog';
import { familyOf } from '../../nodes/lib/compliance/compliance-policies';

const T = 'intune-compliance';
const tr = (lang: Lang, key: string, params?: Record<string, string | number>) => text(T, lang, `${T}.${key}`, params);
const en = (key: string, params?: Record<string, string | number>) => tr('en-US', key, params);
const INJECT = 'inj-compliance';
const DEBUG = 'dbg-violations';

interface PickerRow {
  name: string;
  family: string;
  checked: boolean;
}

describe('browser: intune-compliance policy picker, Deploy and a run', function () {
  this.timeout(90_000);
  let stack: Stack;
  let ed: Editor | undefined;
  let nodeId = '';
  /** The two policies with the most violations in the simulated tenant, by name. */
  let chosen: Array<{ id: string; name: string }> = [];
  onFailure(() => ed);

  const policiesBox = () => ed!.page.locator('#intune-compliance-policies');

  /** Presses "Pick from the tenant" and reads the list it shows. */
  async function loadPicker(): Promise<PickerRow[]> {
    await ed!.page.locator('#intune-compliance-load').click();
    await ed!.page.waitForFunction(() => {
      const box = document.getElementById('intune-compliance-picker')!;
      return box.style.display !== 'none' && !box.querySelector('.fa-spinner') && box.textContent!.trim() !== '';
    });
    return ed!.page.locator('#intune-compliance-picker label').evaluateAll((labels) =>
      labels.map((l) => ({
        name: (l.childNodes[1]?.textContent ?? '').trim(),
        family: (l.querySelector('span')?.textContent ?? '').replace(/^\(|\)$/g, ''),
        checked: (l.querySelector('input') as HTMLInputElement).checked,
      })),
    );
  }

  before(async () => {
    stack = await browserStack();
    const perPolicy = new Map<string, number>();
    for (const v of stack.env.tenant.groundTruthViolations()) if (!v.builtInPolicy) perPolicy.set(v.policyId, (perPolicy.get(v.policyId) ?? 0) + 1);
    chosen = [...perPolicy.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([id]) => ({ id, name: stack.env.tenant.getPolicy(id)!.displayName }));
    await stack.reset([
      ...stack.deployedConfig(),
      { id: INJECT, type: 'inject', name: 'run now', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', once: false, x: 130, y: 100, wires: [[]] },
      // Shows in the debug sidebar, per page, how many violations and of which policies.
      { id: DEBUG, type: 'debug', name: 'violations', active: true, tosidebar: true, console: false, tostatus: false, complete: '{"n": $count(payload), "policies": [$distinct(payload.policy.id)]}', targetType: 'jsonata', x: 700, y: 100, wires: [] },
    ]);
    ed = await stack.editor();
  });
  after(async () => {
    await ed?.close();
  });

  it('"Pick from the tenant" lists every compliance policy with its platform; ticking writes them into the list', async () => {
    nodeId = await ed!.addFromPalette(T, { x: 400, y: 100 });
    await ed!.openNode(nodeId);
    const rowsBefore = await (async () => {
      // Without a connection the picker says what is missing instead of loading.
      await ed!.page.locator('#node-input-intune').selectOption('_ADD_').catch(() => undefined);
      return loadPicker();
    })();
    expect(rowsBefore, 'rows without a connection').to.deep.equal([]);
    expect(squash(await ed!.page.locator('#intune-compliance-picker').innerText())).to.equal(en('picker.noConnection'));

    await ed!.page.locator('#node-input-intune').selectOption(CONFIG_ID);
    const rows = await loadPicker();
    const policies = stack.env.tenant.policies;
    const want = [...policies].map((p) => p.displayName).sort((a, b) => a.localeCompare(b));
    expect(rows.map((r) => r.name), 'the tenant\u2019s policies, by name').to.deep.equal(want);
    expect(rows.every((r) => !r.checked), 'nothing ticked before picking').to.equal(true);
    // One policy per line, each checkbox on the line of its own name.
    const tops = await ed!.page.locator('#intune-compliance-picker label').evaluateAll((ls) => ls.map((l) => Math.round(l.getBoundingClientRect().top)));
    expect(new Set(tops).size, `rows at ${tops.join(', ')} px`).to.equal(rows.length);
    expect(await ed!.checkboxLayoutProblems(ed!.page.locator('#intune-compliance-picker'))).to.deep.equal([]);
    for (const r of rows) {
      const p = policies.find((x) => x.displayName === r.name)!;
      expect(r.family, `platform of ${r.name}`).to.equal(en(`family.${familyOf(p.platformType)}`));
    }
    for (const c of chosen) {
      await ed!.page.locator('#intune-compliance-picker label').filter({ hasText: c.name }).locator('input').check();
    }
    expect((await policiesBox().inputValue()).split('\n'), 'the list after ticking').to.deep.equal(chosen.map((c) => c.name));
    // Unticking takes one out again.
    const first = ed!.page.locator('#intune-compliance-picker label').filter({ hasText: chosen[0].name }).locator('input');
    await first.uncheck();
    expect((await policiesBox().inputValue()).split('\n')).to.deep.equal([chosen[1].name]);
    await first.check();
    await ed!.screenshotTray('dialog-intune-compliance-policies');
  });

  it('the selection survives Done, Deploy and reopening the dialog, where loading ticks the same policies', async () => {
    await ed!.dialogDone();
    const props = await ed!.nodeProps(nodeId);
    expect(props.policies, 'saved with the node').to.have.members(chosen.map((c) => c.name));
    expect(props.valid, 'the node is valid').to.equal(true);
    await ed!.wire(INJECT, nodeId);
    await ed!.wire(nodeId, DEBUG, 0);
    await ed!.deploy();

    await ed!.openNode(nodeId);
    expect((await policiesBox().inputValue()).split('\n').sort()).to.deep.equal(chosen.map((c) => c.name).sort());
    const rows = await loadPicker();
    expect(rows.filter((r) => r.checked).map((r) => r.name).sort(), 'ticked after reopening').to.deep.equal(chosen.map((c) => c.name).sort());
    await ed!.dialogCancel();
    // What the runtime got (not only what the editor holds).
    const flows = await stack.red.admin.get('/flows');
    const deployed = (flows.data.flows as Array<Record<string, unknown>>).find((n) => n.id === nodeId)!;
    expect(deployed.policies).to.have.members(chosen.map((c) => c.name));
  });

  it('a run emits violations of the chosen policies only, and the status dot shows its result', async () => {
    await ed!.waitForStatus(nodeId, { shape: 'ring-grey', text: new RegExp(`^${escape(en('status.idle') + en('status.notPersistent'))}$`) });
    await ed!.page.evaluate((dbg) => {
      const seen: unknown[] = [];
      (window as any).__debugSeen = seen;
      (window as any).RED.comms.subscribe('debug', (_topic: string, m: { id?: string; msg?: unknown }) => {
        if (m.id === dbg) seen.push(typeof m.msg === 'string' ? JSON.parse(m.msg) : m.msg);
      });
    }, DEBUG);
    await ed!.recordStatus(nodeId);
    // Graph answers in 400 ms during the run, so the editor, which redraws the canvas at its own pace, gets to draw
    // the blue dot (a fast run on a loaded machine can go from grey to green within one redraw).
    stack.env.graph.setLatency(400);
    let done;
    try {
      await ed!.pressInject(INJECT);
      done = await ed!.waitForStatus(nodeId, { shape: /^(dot|ring)-(green|yellow|red)$/ }, 45_000);
    } finally {
      stack.env.graph.setLatency(0);
    }
    const history = await ed!.statusHistory(nodeId);
    expect(done.shape, `status history ${JSON.stringify(history)}`).to.equal('dot-green');
    const m = new RegExp('^' + escape(en('status.done', { emitted: '@E', skipped: '@S', time: '@T' }))
      .replace('@E', '(\\d+)').replace('@S', '(\\d+)').replace('@T', '\\d\\d:\\d\\d') + escape(en('status.notPersistent')) + '$').exec(done.text);
    expect(m, `"${done.text}" is a result`).to.not.equal(null);
    const emitted = Number(m![1]);
    expect(emitted, 'violations emitted').to.be.greaterThan(0);
    expect(history.some((s) => s.shape === 'dot-blue'), 'a blue dot while running').to.equal(true);
    // The pages in the debug sidebar: as many violations as the status says, all of the chosen policies.
    const pages = (await ed!.page.waitForFunction(
      (n) => {
        const seen = (window as any).__debugSeen as Array<{ n: number }>;
        return seen.reduce((a, p) => a + (p.n ?? 0), 0) >= n ? seen : null;
      },
      emitted,
      { timeout: 10_000 },
    ).then((h) => h.jsonValue())) as Array<{ n: number; policies: unknown }>;
    expect(pages.reduce((a, p) => a + p.n, 0)).to.equal(emitted);
    const ids = new Set(pages.flatMap((p) => [p.policies].flat(2)).filter((x) => typeof x === 'string') as string[]);
    expect([...ids].every((id) => chosen.some((c) => c.id === id)), `policies emitted: ${[...ids].join(', ')}`).to.equal(true);
    expect(ids.size, 'violations of both chosen policies').to.equal(2);
    await ed!.screenshot('canvas-intune-compliance-after-run', ed!.page.locator('#red-ui-workspace-chart'));
  });

  it('in German: the picker lists the policies with German platform names (screenshot)', async () => {
    await ed!.chooseLanguage('de');
    await ed!.openNode(nodeId);
    const rows = await loadPicker();
    expect(rows.filter((r) => r.checked).map((r) => r.name).sort()).to.deep.equal(chosen.map((c) => c.name).sort());
    const families = new Set(rows.map((r) => r.family));
    const de = ['windows', 'macos', 'ios', 'android'].map((f) => tr('de', `family.${f}`));
    expect([...families].every((f) => de.includes(f)), `platforms shown: ${[...families].join(', ')}`).to.equal(true);
    expect(squash(await ed!.page.locator('#intune-compliance-load').innerText())).to.equal(tr('de', 'picker.button'));
    await ed!.screenshotTray('dialog-intune-compliance-policies-de');
    await ed!.dialogCancel();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
