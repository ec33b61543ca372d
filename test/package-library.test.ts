/**
 * The built package as the Node-RED Flow Library and `node-red-dev validate`
 * read it (test/support/flow-library-parser.ts): every type of package.json
 * `node-red.nodes` is found in its editor file, with a literal category,
 * color and icon, the icon file where the library looks for it, and no
 * parse errors; every type that is not a configuration node is used in an
 * example (node-red-dev's check N02).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot } from '../sim/node-red-runner';
import { flowLibraryIconPath, parseAsFlowLibrary, parseAsNodeRedDev, type ParsedEditorFile } from './support/flow-library-parser';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
const nodes = Object.entries(pkg['node-red'].nodes);
/** The editor file beside a node file: how both libraries find it. */
const htmlOf = (file: string) => path.join(repoRoot, path.dirname(file), `${path.basename(file, '.js')}.html`);

describe('package: editor files as the Flow Library and node-red-dev read them', () => {
  it('package.json names the nine node types', () => {
    expect(nodes.map(([type]) => type).sort()).to.deep.equal(
      ['intune-4me', 'intune-4me-config', 'intune-acmp', 'intune-acmp-actions', 'intune-acmp-config', 'intune-action', 'intune-compliance', 'intune-config', 'intune-devices'],
    );
  });

  for (const [reader, parse] of [
    ['Flow Library', parseAsFlowLibrary],
    ['node-red-dev', parseAsNodeRedDev],
  ] as Array<[string, (f: string) => ParsedEditorFile]>) {
    it(`the ${reader} finds each type in its built editor file, with no errors`, () => {
      for (const [type, file] of nodes) {
        const html = htmlOf(file);
        expect(fs.existsSync(html), `${html} (run the build first)`).to.equal(true);
        const parsed = parse(html);
        expect(parsed.errors, type).to.deep.equal([]);
        expect(Object.keys(parsed.types), type).to.deep.equal([type]);
      }
    });
  }

  it('each type has a literal category, color and icon, and the icon is where the Flow Library looks for it', () => {
    const seen: string[] = [];
    for (const [type, file] of nodes) {
      const def = parseAsNodeRedDev(htmlOf(file)).types[type];
      expect(def.category, `${type} category`).to.be.a('string').and.not.equal('');
      expect(def.color, `${type} color`).to.match(/^#[0-9a-fA-F]{3,6}$/);
      expect(def.icon, `${type} icon`).to.be.a('string');
      const icon = flowLibraryIconPath(repoRoot, file, def.icon!);
      expect(fs.existsSync(icon), `${type}: ${icon}`).to.equal(true);
      seen.push(fs.realpathSync(icon));
    }
    // One icon file serves all nine types: the package ships it once.
    expect(new Set(seen).size).to.equal(1);
  });

  it('every type that is not a configuration node appears in a shipped example (node-red-dev N02)', () => {
    const dir = path.join(repoRoot, 'examples');
    const used = new Set<string>();
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      for (const n of JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Array<{ type: string }>) used.add(n.type);
    }
    const flowNodes = nodes.filter(([type, file]) => parseAsNodeRedDev(htmlOf(file)).types[type]?.category !== 'config').map(([t]) => t);
    expect(flowNodes.length, 'non-config types').to.equal(6);
    expect(flowNodes.filter((t) => !used.has(t))).to.deep.equal([]);
  });

  it('the parser rejects what the libraries reject: a type in a variable, a definition in a variable, an icon from an expression, a spread', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'library-parser-'));
    try {
      const write = (name: string, body: string) => {
        const f = path.join(tmp, name);
        fs.writeFileSync(f, `<script type="text/javascript">\n${body}\n</script>\n<script type="text/html" data-template-name="x"><input></script>`);
        return f;
      };
      const variable = write('a.html', 'var TYPE = "intune-x"; RED.nodes.registerType(TYPE, { category: "Intune", icon: "intune.svg" });');
      expect(parseAsFlowLibrary(variable).types).to.deep.equal({});
      expect(parseAsFlowLibrary(variable).errors.join()).to.match(/non-literal type/);
      const defVar = write('b.html', 'var def = { icon: "intune.svg" }; RED.nodes.registerType("intune-x", def);');
      expect(parseAsNodeRedDev(defVar).errors.join()).to.match(/not an object literal/);
      const iconExpr = write('c.html', 'var I = "intune"; RED.nodes.registerType("intune-x", { category: "Intune", icon: I + ".svg", defaults: { name: { value: "" } } });');
      const parsed = parseAsNodeRedDev(iconExpr);
      expect(parsed.types).to.deep.equal({ 'intune-x': { category: 'Intune', defaults: ['name'] } });
      expect(parsed.errors.join()).to.match(/icon-not-inline/);
      const spread = write('d.html', 'var more = {}; RED.nodes.registerType("intune-x", { category: "Intune", ...more });');
      expect(parseAsFlowLibrary(spread).errors.join()).to.match(/SpreadElement/);
      const broken = write('e.html', 'RED.nodes.registerType("intune-x", { category: "Intune" ');
      expect(parseAsFlowLibrary(broken)).to.deep.include({ types: {} });
      // node-red-dev reads only blocks written with type="text/javascript"; the Flow Library also untyped ones.
      const untyped = path.join(tmp, 'f.html');
      fs.writeFileSync(untyped, '<script>RED.nodes.registerType("intune-x", { category: "Intune" });</script>');
      expect(Object.keys(parseAsFlowLibrary(untyped).types)).to.deep.equal(['intune-x']);
      expect(parseAsNodeRedDev(untyped).errors.join()).to.match(/no <script> sections/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
