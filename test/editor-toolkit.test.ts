/**
 * The editor toolkit (nodes/lib/editor/) and its assembly into each node's
 * HTML (scripts/editor-html.js, used by the build).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { expect } from 'chai';
import { editorHtml } from './support/example-checks';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
const types = Object.keys(pkg['node-red'].nodes);
const pieces = fs.readdirSync(path.join(root, 'nodes', 'lib', 'editor'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { assembleEditorHtml, assemblePluginHtml } = require(path.join(root, 'scripts', 'editor-html.js')) as {
  assembleEditorHtml: (root: string, type: string) => string;
  assemblePluginHtml: (root: string, name: string) => string;
};
const plugins = fs.readdirSync(path.join(root, 'plugins'), { withFileTypes: true }).filter((d) => d.isDirectory() && fs.existsSync(path.join(root, 'plugins', d.name, `${d.name}.html`))).map((d) => d.name);

/** The toolkit's functions for node type `type`, with a catalog that echoes key and parameters. */
function toolkit(type: string): Record<string, (...a: unknown[]) => unknown> {
  const code = fs.readFileSync(path.join(root, 'nodes', 'lib', 'editor', 'toolkit.js'), 'utf8');
  const RED = { nodes: { getType: () => undefined }, _: (key: string, p?: object) => `${key} ${JSON.stringify(p ?? {})}` };
  const sandbox: Record<string, unknown> = { RED, TYPE: type };
  vm.runInNewContext(`${code}\nthis.out = { t: t, str: str, checkNumber: checkNumber, checkInterval: checkInterval, ENV_RE: ENV_RE };`, sandbox);
  return sandbox.out as Record<string, (...a: unknown[]) => unknown>;
}

describe('editor toolkit', () => {
  it('every node gets the toolkit, no marker is left, and every piece of nodes/lib/editor is used', () => {
    const used = new Set<string>();
    for (const type of types) {
      const source = fs.readFileSync(path.join(root, 'nodes', type, `${type}.html`), 'utf8');
      for (const m of source.matchAll(/intune:editor ([a-z0-9-]+)/g)) used.add(m[1]);
      const html = editorHtml(root, type);
      expect(html, type).to.not.match(/intune:editor [a-z]/);
      expect(html, type).to.not.include('<!-- intune:status-i18n -->');
      expect(html, `${type}: the toolkit`).to.include('function checkNumber(');
      expect(html, `${type}: $TYPE replaced`).to.not.include('$TYPE');
    }
    for (const name of plugins) {
      const html = assemblePluginHtml(root, name);
      expect(html, name).to.not.match(/intune:editor [a-z]/);
    }
    expect(assemblePluginHtml(root, 'intune-new-instance'), 'the New instance dialog watches the Preview with the shared piece').to.include('function watchPreviewProgress(');
    const files = new Set(pieces.map((f) => f.replace(/\.(js|html)$/, '')));
    expect([...files].filter((p) => !used.has(p)), 'pieces no node uses').to.deep.equal([]);
  });

  it('a marker naming a piece that does not exist fails the build', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'editor-html-'));
    try {
      fs.mkdirSync(path.join(dir, 'nodes', 'x'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'nodes', 'lib', 'editor'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'nodes', 'x', 'x.html'), '<script type="text/javascript">\n    /* intune:editor nothing-here */\n</script>');
      expect(() => assembleEditorHtml(dir, 'x')).to.throw(/nothing-here/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('numbers: empty and ${ENV} pass (the runtime gets the default or the resolved value), else a number in range', () => {
    const k = toolkit('intune-x');
    const whole = k.checkNumber(1, 600) as (v: unknown) => unknown;
    for (const v of ['', '  ', '${TIMEOUT}', '$(TIMEOUT)', '1', '600', 30, ' 42 ']) expect(whole(v), String(v)).to.equal(true);
    for (const v of ['0', '601', '1.5', 'abc', '${}', '${A', '-1']) expect(whole(v), String(v)).to.equal('intune-x.validation.integer {"min":1,"max":600}');
    const decimals = k.checkNumber(0.0001, 8760, 'range', true) as (v: unknown) => unknown;
    expect(decimals('0.5')).to.equal(true);
    expect(decimals('0')).to.equal('intune-x.validation.range {"min":0.0001,"max":8760}');
  });

  it('run intervals: 0 (off), or from 1 minute to a year, in minutes or hours', () => {
    const k = toolkit('intune-x');
    const minutes = k.checkInterval('minutes', 'minutes') as (v: unknown) => unknown;
    const hours = k.checkInterval('hours', 'hours') as (v: unknown) => unknown;
    for (const v of ['0', '1', '1.5', '527040', '']) expect(minutes(v), v).to.equal(true);
    for (const v of ['0.5', '527041', '-1']) expect(minutes(v), v).to.match(/^intune-x\.validation\.minutes /);
    for (const v of ['0', '0.5', '8784']) expect(hours(v), v).to.equal(true);
    for (const v of ['0.01', '8785']) expect(hours(v), v).to.match(/^intune-x\.validation\.hours /);
  });

  describe('preview progress (preview-progress.js)', () => {
    /** The piece with a fake jQuery ajax and fake timers: each request waits until the test answers it. */
    function harness() {
      const code = fs.readFileSync(path.join(root, 'nodes', 'lib', 'editor', 'preview-progress.js'), 'utf8');
      const timers: Array<{ fn: () => void; ms: number; id: number }> = [];
      const requests: Array<{ url: string; aborted: boolean; answer: (body: unknown) => void; fail: () => void }> = [];
      let next = 1;
      const $ = {
        ajax(o: { url: string }) {
          const done: Array<(b: unknown) => void> = [];
          const always: Array<() => void> = [];
          const req = {
            url: o.url,
            aborted: false,
            answer: (b: unknown) => {
              done.forEach((f) => f(b));
              always.forEach((f) => f());
            },
            fail: () => always.forEach((f) => f()),
          };
          requests.push(req);
          const x = {
            done: (f: (b: unknown) => void) => (done.push(f), x),
            always: (f: () => void) => (always.push(f), x),
            abort: () => {
              req.aborted = true;
              always.forEach((f) => f());
            },
          };
          return x;
        },
      };
      const sandbox: Record<string, unknown> = {
        $,
        window: { crypto: { getRandomValues: (a: Uint8Array) => (a.forEach((_, i) => (a[i] = (i * 37) % 256)), a) } },
        setTimeout: (fn: () => void, ms: number) => (timers.push({ fn, ms, id: next }), next++),
        clearTimeout: (id: number) => {
          const k = timers.findIndex((t) => t.id === id);
          if (k >= 0) timers.splice(k, 1);
        },
      };
      vm.runInNewContext(`${code}\nthis.out = { watch: watchPreviewProgress, params: previewSoFarParams };`, sandbox);
      const out = sandbox.out as { watch: (f: (p: unknown) => void) => { id: string; stop: () => void }; params: (p: unknown, f?: (n: number) => string) => Record<string, string> };
      const tick = () => timers.splice(0, 1)[0]?.fn();
      return { ...out, timers, requests, tick };
    }

    it('looks once a second, one request at a time, hands on answers of a running Preview only, and stops for good', () => {
      const h = harness();
      const got: unknown[] = [];
      const w = h.watch((p) => got.push(p));
      expect(w.id).to.match(/^[0-9a-f]{32}$/);
      expect(h.requests, 'nothing before the first second').to.have.length(0);
      expect(h.timers.map((t) => t.ms)).to.deep.equal([1000]);
      h.tick();
      expect(h.requests.map((r) => r.url)).to.deep.equal([`intune-devices/preview/progress/${w.id}`]);
      expect(h.timers, 'no second look while the first is unanswered').to.have.length(0);
      h.requests[0].fail(); // 404: the POST not begun yet
      expect(got).to.have.length(0);
      h.tick();
      h.requests[1].answer({ ok: true, running: true, total: 250, pages: 1 });
      expect(got).to.deep.equal([{ ok: true, running: true, total: 250, pages: 1 }]);
      h.tick();
      h.requests[2].answer({ ok: false, code: 'unknown' });
      expect(got).to.have.length(1);
      h.tick();
      // The POST answered while a look is out: it is aborted, and nothing is looked at again.
      w.stop();
      expect(h.requests[3].aborted).to.equal(true);
      expect(h.timers).to.have.length(0);
      h.requests[3].answer({ ok: true, running: true, total: 500, pages: 2 });
      expect(got, 'a late answer is not shown over the final one').to.have.length(1);
    });

    it('stop() between looks cancels the next one', () => {
      const h = harness();
      const w = h.watch(() => undefined);
      h.tick();
      h.requests[0].answer({ ok: true, running: true });
      expect(h.timers).to.have.length(1);
      w.stop();
      expect(h.timers).to.have.length(0);
    });

    it('words the numbers of the "so far" line: devices, passed on, pages, whole seconds', () => {
      const h = harness();
      expect(h.params({ total: 12000, imported: 11000, pages: 12, elapsedMs: 5999 })).to.deep.equal({ devices: '12000', imported: '11000', pages: '12', seconds: '5' });
      expect(h.params({ total: 1000, imported: 900, pages: 1, elapsedMs: 0 }, (n) => `#${n}`)).to.deep.include({ devices: '#1000', imported: '#900' });
    });
  });
});
