#!/usr/bin/env node
'use strict';
// Builds the package in the layout Node-RED loads:
//   build/                 tsc output of everything (nodes, sim, test, bench)
//   dist/nodes/<node>/     <node>.js beside <node>.html, plus locales/<lang>/<node>.{json,html}
//   dist/nodes/lib/        shared services
//   dist/nodes/<node>/icons/  the palette icons (Node-RED looks beside the node's .js)
//   dist/bin/              the instance tool (node-red-intune-instance)
//   examples/              copied from flows/ (the only folder Import > Examples reads)
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const r = (...p) => path.join(root, ...p);

function copyTree(from, to, filter = () => true) {
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst, filter);
    else if (filter(src)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(src, dst);
    }
  }
}

// Status texts in the editor's language (nodes/lib/status-text.ts): the editor half,
// nodes/lib/editor-status-i18n.js, goes into each node HTML that marks its place.
const STATUS_MARK = '<!-- intune:status-i18n -->';
function inlineStatusI18n(file, type) {
  if (!fs.existsSync(file)) return;
  const html = fs.readFileSync(file, 'utf8');
  if (!html.includes(STATUS_MARK)) return;
  const code = fs.readFileSync(r('nodes', 'lib', 'editor-status-i18n.js'), 'utf8').trim();
  const script = `<script type="text/javascript">\n(function () {\n${code}\ninstallIntuneStatusI18n(${JSON.stringify(type)});\n})();\n</script>`;
  fs.writeFileSync(file, html.split(STATUS_MARK).join(script));
}

fs.rmSync(r('build'), { recursive: true, force: true });
fs.rmSync(r('dist'), { recursive: true, force: true });
fs.rmSync(r('examples'), { recursive: true, force: true });

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', r('tsconfig.json')], {
  stdio: 'inherit',
});

const jsOnly = (f) => f.endsWith('.js');
const locales = fs.existsSync(r('locales')) ? fs.readdirSync(r('locales')) : [];
for (const dir of fs.readdirSync(r('nodes'), { withFileTypes: true })) {
  if (!dir.isDirectory()) continue;
  const name = dir.name;
  const out = r('dist', 'nodes', name);
  copyTree(r('build', 'nodes', name), out, jsOnly);
  if (name === 'lib') continue;
  copyTree(r('nodes', name), out, (f) => f.endsWith('.html'));
  inlineStatusI18n(path.join(out, `${name}.html`), name);
  copyTree(r('icons'), path.join(out, 'icons'), (f) => f.endsWith('.svg') || f.endsWith('.png'));
  for (const lang of locales) {
    for (const ext of ['json', 'html']) {
      const src = r('locales', lang, `${name}.${ext}`);
      if (fs.existsSync(src)) {
        fs.mkdirSync(path.join(out, 'locales', lang), { recursive: true });
        fs.copyFileSync(src, path.join(out, 'locales', lang, `${name}.${ext}`));
      }
    }
  }
}

// The instance tool: dist/bin/*.js (package.json "bin"), executable.
copyTree(r('build', 'bin'), r('dist', 'bin'), jsOnly);
for (const f of fs.existsSync(r('dist', 'bin')) ? fs.readdirSync(r('dist', 'bin')) : []) fs.chmodSync(r('dist', 'bin', f), 0o755);

// Examples: flows/<file>.json -> examples/<file>.json (validated as JSON on the way).
copyTree(r('flows'), r('examples'), (f) => {
  if (!f.endsWith('.json')) return false;
  JSON.parse(fs.readFileSync(f, 'utf8'));
  return true;
});
console.log('build: dist/ and examples/ assembled');
