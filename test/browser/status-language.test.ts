/**
 * Status texts follow the editor's language, not the runtime's: Node-RED
 * runs in English (settings.lang), the editor is switched to German, and the
 * deployed nodes' status texts show in German — fixed texts, texts with
 * counts and a time, nested texts of another node type (the connection's),
 * appended notes — while a connection's own error message stays in the
 * runtime's language, as logs do. A Status node in the flow receives the
 * language-neutral form and the runtime's text (runtimeText). Switched back
 * to English, the same statuses show in English. (nodes/lib/node-red/status-text.ts)
 */
import { expect } from 'chai';
import { browserStack, onFailure, CONFIG_ID, TENANT_DEVICES, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { text, type Lang } from './support/catalog';

const DEV = 'dev-lang';
const ACT = 'act-lang';
const BAD = 'dev-lang-bad';
const BAD_CFG = 'cfg-lang-bad';
const INJECT = 'inj-lang';
const STATUS = 'st-lang';
const DEBUG = 'dbg-lang';

const say = (lang: Lang, type: string, key: string, params?: Record<string, string | number>) => text(type, lang, `${type}.${key}`, params);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A catalog text as a pattern, `@N` standing for a number and `@T` for a time of day. */
const pattern = (s: string) => new RegExp(`^${esc(s).replace(/@N/g, '\\d+').replace(/@T/g, '\\d\\d:\\d\\d')}$`);

describe('browser: status texts follow the editor\u2019s language, not the runtime\u2019s', function () {
  this.timeout(90_000);
  let stack: Stack;
  let ed: Editor | undefined;
  onFailure(() => ed);

  before(async () => {
    stack = await browserStack();
    const [cfg] = stack.deployedConfig();
    const source = { type: 'intune-devices', intune: CONFIG_ID, fullEveryHours: 0, incrementalEveryMinutes: 0, store: '', wires: [[], []] };
    await stack.reset([
      cfg,
      // A connection without its client secret: its problem is a message of its own.
      { ...cfg, id: BAD_CFG, name: 'no secret', credentials: { clientSecret: '' } },
      { id: INJECT, type: 'inject', name: 'run', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', once: false, x: 120, y: 80, wires: [[DEV]] },
      { id: DEV, name: 'devices', ...source, x: 340, y: 80 },
      { id: BAD, name: 'devices (no secret)', ...source, intune: BAD_CFG, x: 340, y: 180 },
      { id: ACT, type: 'intune-action', name: 'action', intune: CONFIG_ID, store: '', x: 340, y: 280, wires: [[]] },
      { id: STATUS, type: 'status', name: 'status of devices', scope: [DEV], x: 120, y: 380, wires: [[DEBUG]] },
      { id: DEBUG, type: 'debug', name: 'status', active: true, tosidebar: true, console: false, tostatus: false, complete: 'status', targetType: 'msg', x: 340, y: 380, wires: [] },
    ]);
    // The runtime speaks English: its log says so in English.
    expect(stack.red.logs()).to.match(/Started flows/);
    ed = await stack.editor({ language: 'de' });
    expect(await ed.language()).to.equal('de');
  });
  after(async () => {
    await ed?.close();
  });

  it('fixed texts, texts with values and appended notes are German in a German editor', async () => {
    const idle = say('de', 'intune-devices', 'status.idle') + say('de', 'intune-devices', 'status.notPersistent');
    await ed!.waitForStatus(DEV, { shape: 'ring-grey', text: pattern(idle) });
    await ed!.waitForStatus(ACT, { shape: 'ring-yellow', text: pattern(say('de', 'intune-action', 'status.idleMemory', { store: 'default' })) });

    await ed!.page.evaluate((dbg) => {
      const seen: unknown[] = [];
      (window as any).__statusMsgs = seen;
      (window as any).RED.comms.subscribe('debug', (_t: string, m: { id?: string; msg?: unknown }) => {
        if (m.id === dbg) seen.push(typeof m.msg === 'string' ? JSON.parse(m.msg) : m.msg);
      });
    }, DEBUG);
    await ed!.recordStatus(DEV);
    // Each Graph request 400 ms: the run's blue "reading" dot stays long enough for the editor to draw it (a fast run
    // on a loaded machine can go from blue to green within one redraw of the canvas, and the blue is never shown).
    stack.env.graph.setLatency(400);
    let shown;
    const done = say('de', 'intune-devices', 'status.done', { mode: say('de', 'intune-devices', 'status.mode.full'), emitted: '@N', skipped: '@N', time: '@T' });
    try {
      await ed!.pressInject(INJECT);
      shown = await ed!.waitForStatus(DEV, { shape: 'dot-green' }, 30_000);
    } finally {
      stack.env.graph.setLatency(0);
    }
    expect(shown.text).to.match(pattern(done + say('de', 'intune-devices', 'status.notPersistent')));
    const running = (await ed!.statusHistory(DEV)).filter((s) => s.shape === 'dot-blue').map((s) => s.text);
    expect(running.length, 'progress shown').to.be.greaterThan(0);
    for (const r of running) {
      expect(r, 'progress in German').to.match(/^vollständig: /);
    }
    const [emitted, skipped] = /(\d+) Geräte, (\d+) übersprungen/.exec(shown.text)!.slice(1).map(Number);
    expect(emitted + skipped, 'the counts of the run').to.equal(TENANT_DEVICES);
    await ed!.screenshot('canvas-status-language-de', ed!.page.locator('#red-ui-workspace-chart'));
  });

  it('a connection\u2019s own error message stays in the runtime\u2019s language, framed in German', async () => {
    const frame = say('de', 'intune-devices', 'status.connection', { text: '@MSG' });
    const s = await ed!.waitForStatus(BAD, { shape: 'ring-red' });
    expect(s.text).to.match(new RegExp(`^${esc(frame).replace('@MSG', '.*client secret is missing.*')}$`, 'i'));
  });

  it('a Status node receives the language-neutral form and the runtime\u2019s (English) text', async () => {
    const msgs = (await ed!.page.waitForFunction(
      () => {
        const seen = (window as any).__statusMsgs as Array<{ fill?: string }>;
        return seen.some((m) => m.fill === 'green') ? seen : null;
      },
      undefined,
      { timeout: 10_000 },
    ).then((h) => h.jsonValue())) as Array<{ fill: string; text: string; runtimeText: string; source: { id: string } }>;
    const last = msgs.find((m) => m.fill === 'green')!;
    expect(last.source.id).to.equal(DEV);
    expect(last.text).to.match(/^intune-devices\.status\.done \{"mode":\{"\$t":"intune-devices\.status\.mode\.full"\},"emitted":\d+,"skipped":\d+,"time":"\d\d:\d\d","\$\+":\[\{"\$t":"intune-devices\.status\.notPersistent"\}\]\}$/);
    const en = say('en-US', 'intune-devices', 'status.done', { mode: say('en-US', 'intune-devices', 'status.mode.full'), emitted: '@N', skipped: '@N', time: '@T' });
    expect(last.runtimeText, 'in the runtime\u2019s language').to.match(pattern(en + say('en-US', 'intune-devices', 'status.notPersistent')));
  });

  it('at the same time, an English editor shows the same statuses in English', async () => {
    const other = await stack.editor({ language: 'en-US' });
    try {
      expect(await other.language()).to.equal('en-US');
      const done = say('en-US', 'intune-devices', 'status.done', { mode: say('en-US', 'intune-devices', 'status.mode.full'), emitted: '@N', skipped: '@N', time: '@T' });
      await other.waitForStatus(DEV, { shape: 'dot-green', text: pattern(done + say('en-US', 'intune-devices', 'status.notPersistent')) });
      await other.waitForStatus(ACT, { shape: 'ring-yellow', text: pattern(say('en-US', 'intune-action', 'status.idleMemory', { store: 'default' })) });
      await other.screenshot('canvas-status-language-en-US', other.page.locator('#red-ui-workspace-chart'));
    } finally {
      await other.close();
    }
    // … while the German one still shows German.
    expect((await ed!.status(DEV)).text).to.match(/ Geräte, /);
  });

  it('switched to English in the user settings, the German editor shows English', async () => {
    await ed!.chooseLanguage('en-US');
    expect(await ed!.language()).to.equal('en-US');
    const done = say('en-US', 'intune-devices', 'status.done', { mode: say('en-US', 'intune-devices', 'status.mode.full'), emitted: '@N', skipped: '@N', time: '@T' });
    await ed!.waitForStatus(DEV, { shape: 'dot-green', text: pattern(done + say('en-US', 'intune-devices', 'status.notPersistent')) });
    await ed!.waitForStatus(ACT, { shape: 'ring-yellow', text: pattern(say('en-US', 'intune-action', 'status.idleMemory', { store: 'default' })) });
  });
});
