/**
 * intune-devices in a real browser: added from the palette onto a flow with a
 * deployed Intune connection (simulated tenant), the preview counts what a run
 * would pass on for the dialog's current settings, and after Deploy the status
 * dot follows a run started from an inject node to its result, which agrees
 * with the preview.
 *
 * Then every shipped template in flows/ with a device source (intune-devices,
 * or intune-compliance, which shares the device filters): the Preview of the
 * node as imported (before any deploy), the Preview of the deployed node and a
 * run of it count the same, and opening the dialog and pressing Done changes
 * nothing a run does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot } from '../../sim/node-red-runner';
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

const num = (s: string) => Number(s.replace(/[^\d]/g, ''));

/** Presses Preview in the open dialog; the counts it shows. */
async function previewIn(ed: Editor): Promise<Preview> {
  const box = ed.page.locator('#intune-devices-preview-result');
  await box.evaluate((el) => {
    const seen: string[] = [];
    (window as any).__previewSeen = seen;
    new MutationObserver(() => {
      const t = (el as HTMLElement).innerText.replace(/\s+/g, ' ').trim();
      if (t && seen[seen.length - 1] !== t) seen.push(t);
    }).observe(el, { childList: true, subtree: true, characterData: true });
  });
  await ed.page.locator('#intune-devices-preview').click();
  await ed.page.waitForFunction(() => /is-(ok|error)/.test(document.getElementById('intune-devices-preview-result')!.className), undefined, { timeout: 30_000 });
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
    seen: await ed.page.evaluate(() => (window as any).__previewSeen as string[]),
  };
}

describe('browser: intune-devices preview, deploy and a run', function () {
  this.timeout(90_000);
  let stack: Stack;
  let ed: Editor | undefined;
  let nodeId = '';
  let firstPreview: Preview;
  onFailure(() => ed);

  const runPreview = () => previewIn(ed!);

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

  it('preview of a slow tenant: the counts so far in the same tables, under a "still reading" line with devices, pages and seconds, until the final counts replace them', async () => {
    // Pages of 10 devices at 800 ms each: the Preview reads for about five seconds, the dialog looks every second.
    stack.env.graph.setPageSize(10);
    stack.env.graph.setLatency(800);
    try {
      const box = ed!.page.locator('#intune-devices-preview-result');
      await box.evaluate((el) => {
        const states: Array<{ cls: string; first: string; tables: number; spinner: boolean; cost: boolean }> = [];
        (window as any).__previewStates = states;
        new MutationObserver(() => {
          const e = el as HTMLElement;
          const s = {
            cls: e.className,
            first: (e.firstElementChild?.textContent ?? '').replace(/\s+/g, ' ').trim(),
            tables: e.querySelectorAll('table').length,
            spinner: !!e.querySelector('.fa-spinner'),
            cost: e.innerText.includes('Graph requests'),
          };
          if (JSON.stringify(states[states.length - 1]) !== JSON.stringify(s)) states.push(s);
        }).observe(el, { childList: true, subtree: true, characterData: true, attributes: true });
      });
      const p = await runPreview();
      const states = (await ed!.page.evaluate(() => (window as any).__previewStates)) as Array<{ cls: string; first: string; tables: number; spinner: boolean; cost: boolean }>;
      const soFar = new RegExp(`^${escape(en('preview.soFar', { devices: '§', pages: '§', seconds: '§' })).replace(/§/g, '([\\d,.]+)')}$`);
      const running = states.filter((s) => s.cls.includes('is-running'));
      expect(running.length, `states seen: ${JSON.stringify(states)}`).to.be.at.least(2);
      for (const s of running) {
        expect(s.first, 'the "so far" line first').to.match(soFar);
        expect(s.spinner, 'busy').to.equal(true);
        expect(s.tables, 'the same two tables as the final counts').to.equal(2);
        expect(s.cost, 'no cost line before the end').to.equal(false);
      }
      const numbers = running.map((s) => s.first.match(soFar)!.slice(1).map(num));
      expect(numbers.some(([devices]) => devices > 0 && devices < TENANT_DEVICES), `devices so far: ${JSON.stringify(numbers)}`).to.equal(true);
      for (const [devices, pages] of numbers) expect(devices, 'whole pages of 10 so far').to.equal(pages * 10);
      for (let k = 1; k < numbers.length; k++) expect(numbers[k][0], 'never fewer').to.be.at.least(numbers[k - 1][0]);
      // Then the final answer replaced them: the counts of the fast Preview above, and no "so far" line.
      const last = states[states.length - 1];
      expect(last.cls).to.include('is-ok');
      expect(last.spinner).to.equal(false);
      expect(last.cost).to.equal(true);
      expect(p.platforms).to.deep.equal(firstPreview.platforms);
      expect(p.summary).to.equal(firstPreview.summary);
    } finally {
      stack.env.graph.setLatency(0);
      stack.env.graph.setPageSize(1000);
    }
  });

  it('after Deploy, the status dot follows a run from the inject node to its result', async () => {
    await ed!.dialogDone();
    await ed!.wire(INJECT, nodeId);
    await ed!.deploy();
    const idle = en('status.idle') + en('status.notPersistent');
    await ed!.waitForStatus(nodeId, { shape: 'ring-grey', text: new RegExp(`^${escape(idle)}$`) });
    await ed!.recordStatus(nodeId);
    // Each Graph request 400 ms, so the blue "reading" dot lasts long enough for the editor to draw it: the editor
    // redraws the canvas at its own pace, and on a loaded machine a fast run went from grey to green in one redraw.
    stack.env.graph.setLatency(400);
    let done;
    try {
      await ed!.pressInject(INJECT);
      done = await ed!.waitForStatus(nodeId, { shape: 'dot-green' }, 30_000);
    } finally {
      stack.env.graph.setLatency(0);
    }
    const kept = Object.values(firstPreview.platforms).reduce((a, c) => a + c.kept, 0);
    const history = await ed!.statusHistory(nodeId);
    expect(history.some((s) => s.shape === 'dot-blue'), `a blue dot while running; seen ${JSON.stringify(history)}`).to.equal(true);
    // "full: 57 devices, 3 skipped · 12:34 UTC · state in memory only".
    const want = new RegExp(
      '^' +
        escape(en('status.done', { mode: 'full', emitted: '§E', skipped: '§S', time: '@@' }))
          .replace('§E', '(\\d+)')
          .replace('§S', '(\\d+)')
          .replace('@@', '\\d\\d:\\d\\d') +
        escape(en('status.notPersistent')) +
        '$',
    );
    expect(done.text).to.match(want);
    const [emitted, skippedByRun] = done.text.match(want)!.slice(1, 3).map(Number);
    expect(emitted + skippedByRun, 'every device passed on or skipped').to.equal(TENANT_DEVICES);
    // The first Preview did not wait for the directory (it says how many users it left unchecked), so a
    // device of a deleted user it could not tell by its record counted as passed on; the run asked.
    expect(emitted, 'the run passes on at most what the Preview counted').to.be.at.most(kept);
    await ed!.screenshot('canvas-intune-devices-after-run', ed!.page.locator('#red-ui-workspace-chart'));
    // The run's directory answers are cached now: a Preview agrees with the run exactly.
    await ed!.openNode(nodeId);
    const again = await runPreview();
    expect(Object.values(again.platforms).reduce((a, c) => a + c.kept, 0), 'a Preview after the run').to.equal(emitted);
    expect(again.skippedTotal).to.equal(skippedByRun);
    await ed!.dialogDone();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------- shipped templates

type FlowNode = Record<string, any> & { id: string; type: string };
const SOURCES = ['intune-devices', 'intune-compliance'];
const PLATFORM_PROPS = ['platformWindows', 'platformMacos', 'platformIos', 'platformAndroid', 'platformLinux'];
/** Scheduling only: switched off so that runs start when the test says (no filter setting among them). */
const SCHEDULE_PROPS = ['fullEveryHours', 'incrementalEveryMinutes', 'everyMinutes'];
const SCHEDULE_ENV = ['FULL_SCAN_HOURS', 'INCREMENTAL_SCAN_MINUTES', 'COMPLIANCE_EVERY_MINUTES'];

function shippedTemplates(): Array<{ file: string; nodes: FlowNode[] }> {
  const dir = path.join(repoRoot, 'flows');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, nodes: JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as FlowNode[] }))
    .filter((t) => t.nodes.some((n) => SOURCES.includes(n.type)));
}

/**
 * A template's device sources as shipped, on their own tabs (with the tabs'
 * environment), the connection being the simulated tenant's. The 4me instance
 * imports no platform until they are chosen: as the demo and the instance
 * tool's --platforms do, they are switched on.
 */
function asDeployed(n: FlowNode): FlowNode {
  const m: FlowNode = { ...n, intune: CONFIG_ID, wires: [[], []] };
  for (const p of SCHEDULE_PROPS) if (p in m && !/^\$\{/.test(String(m[p]))) m[p] = 0;
  if (m.type === 'intune-devices' && !PLATFORM_PROPS.some((p) => m[p] === true || m[p] === undefined)) for (const p of PLATFORM_PROPS) m[p] = true;
  return m;
}

function deployableFlow(nodes: FlowNode[]): FlowNode[] {
  const out: FlowNode[] = [];
  for (const n of nodes) {
    if (n.type === 'tab') out.push({ ...n, env: (n.env ?? []).map((e: FlowNode) => (SCHEDULE_ENV.includes(e.name) ? { ...e, value: '0' } : e)) });
    else if (SOURCES.includes(n.type)) {
      out.push(asDeployed(n));
      out.push({ id: `inj-${n.id}`, type: 'inject', z: n.z, name: 'run', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', once: false, x: 100, y: Number(n.y ?? 100) + 60, wires: [[n.id]] });
    }
  }
  return out;
}

interface RunCounts {
  emitted: number;
  skipped: number;
  text: string;
}

/** Starts a run through the node's inject and reads the counts of its result from the status dot. */
async function runOf(ed: Editor, stack: Stack, node: FlowNode): Promise<RunCounts> {
  await ed.page.evaluate((z) => (window as any).RED.workspaces.show(z), node.z);
  await ed.recordStatus(node.id);
  const before = (await ed.statusHistory(node.id)).length;
  const r = await stack.red.admin.post(`/inject/inj-${node.id}`, {});
  expect(r.status, 'inject').to.equal(200);
  const until = Date.now() + 60_000;
  for (;;) {
    const seen = (await ed.statusHistory(node.id)).slice(before);
    const end = seen.find((s) => s.shape === 'dot-green' || s.shape === 'ring-red');
    if (end) {
      expect(end.shape, `the run of ${node.id} ended: ${end.text}`).to.equal('dot-green');
      const type = node.type as 'intune-devices' | 'intune-compliance';
      const done = text(type, 'en-US', `${type}.status.done`, { mode: 'full', emitted: '@E', skipped: '@S', time: '@T' });
      const re = new RegExp('^' + escape(done).replace('@E', '([\\d,]+)').replace('@S', '([\\d,]+)').replace('@T', '\\d\\d:\\d\\d'));
      const m = re.exec(end.text);
      if (!m) throw new Error(`unexpected status of ${node.id}: ${end.text}`);
      return { emitted: num(m[1]), skipped: num(m[2]), text: end.text };
    }
    if (Date.now() > until) throw new Error(`the run of ${node.id} did not end; seen ${JSON.stringify(seen)}`);
    await ed.page.waitForTimeout(150);
  }
}

/** Opens a node's dialog as a double click would (the node may sit on another tab). */
async function editNode(ed: Editor, id: string): Promise<void> {
  await ed.page.evaluate((nid) => (window as any).RED.editor.edit((window as any).RED.nodes.node(nid)), id);
  await ed.page.locator('#node-dialog-ok').waitFor({ state: 'visible' });
  await ed.page.waitForTimeout(300);
}

describe('browser: shipped templates — Preview before deploy, Preview of the deployed node and a run agree', function () {
  this.timeout(180_000);
  let stack: Stack;
  let ed: Editor | undefined;
  const restore: Array<[string, string]> = [];
  onFailure(() => ed, { closeDialogs: true });

  before(async () => {
    stack = await browserStack();
    // Three company Windows devices with violations report the placeholder serial "Default string": a run must not
    // take them for duplicates of each other (placeholders count as no serial), and neither may a Preview.
    const t = stack.env.tenant;
    const picked: string[] = [];
    for (let i = 0; i < t.positions && picked.length < 3; i++) {
      const d = t.deviceAt(i);
      if (!d || d.operatingSystem !== 'Windows' || d.managedDeviceOwnerType === 'personal' || d.managementState !== 'managed') continue;
      if (!d.userPrincipalName || !t.violationsAt(i).length) continue;
      picked.push(d.id);
      restore.push([d.id, d.serialNumber]);
    }
    expect(picked.length, 'company Windows devices with violations in the simulated tenant').to.equal(3);
    for (const id of picked) t.patchDevice(id, { serialNumber: 'Default string' });
  });
  after(async () => {
    await ed?.close();
    for (const [id, serialNumber] of restore) stack.env.tenant.patchDevice(id, { serialNumber });
  });

  for (const tpl of shippedTemplates()) {
    it(`"${tpl.file.replace(/\.json$/, '')}"`, async () => {
      const flow = deployableFlow(tpl.nodes);
      await stack.reset([...stack.deployedConfig(), ...flow]);
      ed = await stack.editor();
      const sources = flow.filter((n) => SOURCES.includes(n.type));
      const devices = sources.filter((n) => n.type === 'intune-devices');

      // The deployed node: a run, then its Preview. In this order because the Preview never waits for the
      // directory: before any run it cannot tell a deleted user it has not looked up (it says how many it left
      // unchecked), and would count that user's devices as passed on; after the run it uses the run's answers.
      const runs = new Map<string, RunCounts>();
      for (const s of sources) runs.set(s.id, await runOf(ed, stack, s));
      const deployedPreview = new Map<string, Preview>();
      for (const d of devices) {
        await editNode(ed, d.id);
        deployedPreview.set(d.id, await previewIn(ed));
        await ed.dialogCancel();
      }
      for (const d of devices) {
        const p = deployedPreview.get(d.id)!;
        const kept = Object.values(p.platforms).reduce((a, c) => a + c.kept, 0);
        expect({ passedOn: kept, skipped: p.skippedTotal }, `${d.id}: Preview of the deployed node vs its run (${runs.get(d.id)!.text})`).to.deep.equal({
          passedOn: runs.get(d.id)!.emitted,
          skipped: runs.get(d.id)!.skipped,
        });
      }

      // Opening the dialog and pressing Done changes nothing a run does, and keeps every ${VAR} binding
      // (a checkbox bound to the tab's variable, READ_SOFTWARE, shows its value disabled and is left as it is).
      for (const s of sources) {
        await editNode(ed, s.id);
        const template = tpl.nodes.find((n) => n.id === s.id)!;
        if (typeof template.readSoftware === 'string') {
          const box = ed.page.locator('#node-input-readSoftware-env');
          expect(await box.isDisabled(), 'the bound checkbox is disabled').to.equal(true);
          expect(await box.isChecked(), "it shows the tab's value").to.equal(/^(true|1)$/i.test(String((tpl.nodes.find((n) => n.id === s.z)!.env as FlowNode[]).find((e) => `\${${e.name}}` === template.readSoftware)?.value)));
        }
        await ed.dialogDone();
        const bound = Object.entries(template).filter(([, v]) => typeof v === 'string' && /^\$\{\w+\}$/.test(v));
        const now = await ed.page.evaluate(([id, keys]) => keys.map((k) => (window as any).RED.nodes.node(id)[k]), [s.id, bound.map(([k]) => k)] as [string, string[]]);
        expect(now, `${s.id}: environment bindings after Done`).to.deep.equal(bound.map(([, v]) => v));
      }
      const changed = await ed.page.evaluate(() => !document.getElementById('red-ui-header-button-deploy')!.classList.contains('disabled'));
      if (changed) await ed.deploy();
      for (const s of sources) {
        const again = await runOf(ed, stack, s);
        expect({ emitted: again.emitted, skipped: again.skipped }, `${s.id}: run after the dialog's Done vs before`).to.deep.equal({
          emitted: runs.get(s.id)!.emitted,
          skipped: runs.get(s.id)!.skipped,
        });
      }

      // The node as imported, before any deploy: its Preview counts what the deployed node's did.
      for (const d of devices) {
        const template = tpl.nodes.find((n) => n.id === d.id)!;
        const before = await ed.page.evaluate((n) => {
          const RED = (window as any).RED;
          const known = new Set<string>();
          RED.nodes.eachNode((x: any) => void known.add(x.id));
          RED.view.importNodes([n], { generateIds: true, touchImport: true, notify: false });
          let id = '';
          RED.nodes.eachNode((x: any) => {
            if (!known.has(x.id) && x.type === n.type) id = x.id;
          });
          return id;
        }, { ...asDeployed(template), wires: [[], []] });
        expect(before, 'the imported node').to.not.equal('');
        await editNode(ed, before);
        const p = await previewIn(ed);
        await ed.dialogCancel();
        expect(p.summary, `${d.id}: Preview before deploy vs Preview of the deployed node`).to.equal(deployedPreview.get(d.id)!.summary);
        expect(p.skipped, `${d.id}: skip reasons, Preview before deploy vs deployed`).to.deep.equal(deployedPreview.get(d.id)!.skipped);
      }
      await ed.close();
      ed = undefined;
    });
  }
});
