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
const { assembleEditorHtml } = require(path.join(root, 'scripts', 'editor-html.js')) as { assembleEditorHtml: (root: string, type: string) => string };

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
});
