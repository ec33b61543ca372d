/**
 * intune-action in a real browser: the guards in its dialog (destructive
 * actions off and flagged, the device limit validated while typing, follow-up
 * fields only when following up), the second output appearing on the canvas,
 * and after Deploy a sync sent from an inject node to the simulated tenant,
 * followed by the status dot.
 */
import { expect } from 'chai';
import { browserStack, onFailure, CONFIG_ID, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { squash, text } from './support/catalog';

const T = 'intune-action';
const en = (key: string, params?: Record<string, string | number>) => text(T, 'en-US', `${T}.${key}`, params);
const INJECT = 'inj-sync';

describe('browser: intune-action guards, outputs and a sync', function () {
  this.timeout(90_000);
  let stack: Stack;
  let ed: Editor | undefined;
  let nodeId = '';
  let deviceId = '';
  onFailure(() => ed);

  const input = (prop: string) => ed!.page.locator(`#node-input-${prop}`);
  const hasError = async (prop: string) => ((await input(prop).getAttribute('class')) ?? '').includes('input-error');

  before(async () => {
    stack = await browserStack();
    deviceId = stack.env.tenant.deviceIdAt(0);
    await stack.reset([
      ...stack.deployedConfig(),
      {
        id: INJECT, type: 'inject', name: 'sync one device', props: [{ p: 'payload' }],
        payload: JSON.stringify({ action: 'sync', deviceIds: [deviceId], requestedBy: 'browser test' }), payloadType: 'json',
        repeat: '', once: false, x: 150, y: 100, wires: [[]],
      },
    ]);
    ed = await stack.editor();
  });
  after(async () => {
    await ed?.close();
  });

  it('guards: retire and wipe start off, and ticking one shows what it needs', async () => {
    nodeId = await ed!.addFromPalette(T, { x: 420, y: 100 });
    await ed!.openNode(nodeId);
    await input('intune').selectOption(CONFIG_ID);
    const checked = async (p: string) => input(p).isChecked();
    expect({ notify: await checked('allowNotify'), sync: await checked('allowSync'), lock: await checked('allowLock'), retire: await checked('allowRetire'), wipe: await checked('allowWipe') })
      .to.deep.equal({ notify: true, sync: true, lock: true, retire: false, wipe: false });
    const hint = ed!.page.locator('#intune-action-danger-hint');
    expect(await hint.isVisible(), 'destructive hint before ticking').to.equal(false);
    await input('allowWipe').check();
    expect(await hint.isVisible(), 'destructive hint after ticking wipe').to.equal(true);
    expect(squash(await hint.innerText())).to.equal(en('hint.destructive'));
    await ed!.screenshotTray('dialog-intune-action-wipe-ticked');
    await input('allowWipe').uncheck();
    expect(await hint.isVisible()).to.equal(false);
  });

  it('guards: the destructive actions line up under the other allowed actions', async () => {
    const x = async (p: string) => (await input(p).boundingBox())!.x;
    expect(Math.round(await x('allowRetire')), 'retire under notify').to.equal(Math.round(await x('allowNotify')));
  });

  it('validates the device limit as it is typed; follow-up fields only when following up', async () => {
    const max = input('maxDevices');
    for (const bad of ['0', 'abc', '10001', '2.5']) {
      await max.fill('');
      await max.pressSequentially(bad);
      expect(await hasError('maxDevices'), `"${bad}" refused`).to.equal(true);
    }
    await max.fill('');
    await max.pressSequentially('25');
    expect(await hasError('maxDevices'), '"25" accepted').to.equal(false);

    expect(await input('followUpInterval').isVisible()).to.equal(false);
    await input('followUp').check();
    expect(await input('followUpInterval').isVisible()).to.equal(true);
    expect(await input('followUpTimeout').isVisible()).to.equal(true);
    await input('followUp').uncheck();
    expect(await input('followUpInterval').isVisible()).to.equal(false);
  });

  it('"one message per device" adds a second output on the canvas, with its label', async () => {
    await input('perDevice').check();
    await ed!.dialogDone();
    const outputs = ed!.node(nodeId).locator('g.red-ui-flow-port-output');
    expect(await outputs.count()).to.equal(2);
    expect(await ed!.portLabel(nodeId, 'output', 1)).to.equal(en('label.output2'));
    await ed!.openNode(nodeId);
    await input('perDevice').uncheck();
    // A persistent store, so that the idle status has nothing to warn about.
    await input('store').selectOption('file');
    await ed!.dialogDone();
    expect(await outputs.count()).to.equal(1);
  });

  it('after Deploy, a sync from the inject node reaches the tenant and the status dot shows the result', async () => {
    await ed!.wire(INJECT, nodeId);
    await ed!.deploy();
    await ed!.waitForStatus(nodeId, { shape: 'ring-grey', text: new RegExp(`^${en('status.idle')}$`) });
    const before = stack.env.tenant.actionLog.length;
    await ed!.recordStatus(nodeId);
    await ed!.pressInject(INJECT);
    const done = await ed!.waitForStatus(nodeId, { shape: /^dot-(green|yellow|red)$|^ring-red$/ }, 30_000);
    expect(done, `status history ${JSON.stringify(await ed!.statusHistory(nodeId))}`).to.deep.equal({
      shape: 'dot-green',
      text: en('status.finished', { accepted: 1, total: 1 }),
    });
    const sent = stack.env.tenant.actionLog.slice(before);
    expect(sent.map((e) => ({ deviceId: e.deviceId, action: e.action }))).to.deep.equal([{ deviceId, action: 'syncDevice' }]);
    await ed!.screenshot('canvas-intune-action-after-sync', ed!.page.locator('#red-ui-workspace-chart'));
  });
});
