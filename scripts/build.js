#!/usr/bin/env node
'use strict';
// Builds the package in the layout Node-RED and the Flow Library load:
//   build/                   tsc output of everything (nodes, sim, test, bench)
//   dist/nodes/<node>.js     what package.json "node-red.nodes" names: loads <node>/<node>.js
//   dist/nodes/<node>.html   beside it (Node-RED and the Flow Library read <file>.html)
//   dist/nodes/locales/<lang>/<node>.{json,html}
//   dist/nodes/icons/        the palette icons, once: Node-RED looks in the icons/ folder beside
//                            each node file, and so does the Flow Library, for every node type
//   dist/nodes/<node>/       the node's compiled code; dist/nodes/lib/ the shared services
//   dist/plugins/            the editor plugins (plugins/<name>/, see below)
//   dist/bin/                the instance tool (node-red-intune-instance)
//   examples/                copied from flows/ (the only folder Import > Examples reads)
// `npm pack` runs this first (package.json "prepack"), so a clean clone packs a complete package.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const r = (...p) => path.join(root, ...p);

function copyTree(from, to, filter = () => true, transform) {
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst, filter, transform);
    else if (filter(src)) {
      fs.mkdirSync(to, { recursive: true });
      if (transform) fs.writeFileSync(dst, transform(fs.readFileSync(src, 'utf8')));
      else fs.copyFileSync(src, dst);
    }
  }
}

// tsc's source maps stay in build/ (for debugging the tests); the package ships no maps,
// so its files carry no sourceMappingURL pointing at a file that is not there.
const stripSourceMapUrl = (code) => code.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');

// The editor HTML: the node's .html with the editor toolkit (nodes/lib/editor/) and the status
// translation inlined where it marks their place (scripts/editor-html.js).
const { assembleEditorHtml, assemblePluginHtml } = require('./editor-html');

fs.rmSync(r('build'), { recursive: true, force: true });
fs.rmSync(r('dist'), { recursive: true, force: true });
fs.rmSync(r('examples'), { recursive: true, force: true });

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', r('tsconfig.json')], {
  stdio: 'inherit',
});

const jsOnly = (f) => f.endsWith('.js');
const nodesOut = r('dist', 'nodes');
const locales = fs.existsSync(r('locales')) ? fs.readdirSync(r('locales')) : [];
for (const dir of fs.readdirSync(r('nodes'), { withFileTypes: true })) {
  if (!dir.isDirectory()) continue;
  const name = dir.name;
  copyTree(r('build', 'nodes', name), path.join(nodesOut, name), jsOnly, stripSourceMapUrl);
  if (name === 'lib') continue;
  fs.writeFileSync(
    path.join(nodesOut, `${name}.js`),
    `'use strict';\n// The file Node-RED loads for ${name} (package.json node-red.nodes); its code is in ${name}/.\nmodule.exports = require('./${name}/${name}.js');\n`,
  );
  if (fs.existsSync(r('nodes', name, `${name}.html`))) {
    fs.writeFileSync(path.join(nodesOut, `${name}.html`), assembleEditorHtml(root, name));
  }
  for (const lang of locales) {
    for (const ext of ['json', 'html']) {
      const src = r('locales', lang, `${name}.${ext}`);
      if (fs.existsSync(src)) {
        fs.mkdirSync(path.join(nodesOut, 'locales', lang), { recursive: true });
        fs.copyFileSync(src, path.join(nodesOut, 'locales', lang, `${name}.${ext}`));
      }
    }
  }
}
copyTree(r('icons'), path.join(nodesOut, 'icons'), (f) => f.endsWith('.svg') || f.endsWith('.png'));

// Editor plugins: every folder plugins/<name>/ (runtime <name>.ts, editor <name>.html) becomes
//   dist/plugins/<name>.js      what package.json "node-red.plugins" names: loads <name>/<name>.js
//   dist/plugins/<name>.html    beside it (the editor side), with the editor pieces it marks inlined
//   dist/plugins/<name>/        its compiled code (it reaches the shared services as ../../nodes/lib/)
//   dist/plugins/locales/<lang>/<name>.json   from locales/<lang>/<name>.json (the plugin's i18n namespace)
const pluginsOut = r('dist', 'plugins');
for (const dir of fs.existsSync(r('plugins')) ? fs.readdirSync(r('plugins'), { withFileTypes: true }) : []) {
  if (!dir.isDirectory()) continue;
  const name = dir.name;
  copyTree(r('build', 'plugins', name), path.join(pluginsOut, name), jsOnly, stripSourceMapUrl);
  if (fs.existsSync(r('plugins', name, `${name}.ts`))) {
    fs.writeFileSync(
      path.join(pluginsOut, `${name}.js`),
      `'use strict';\n// The file Node-RED loads for the ${name} plugin (package.json node-red.plugins); its code is in ${name}/.\nmodule.exports = require('./${name}/${name}.js');\n`,
    );
  }
  if (fs.existsSync(r('plugins', name, `${name}.html`))) {
    fs.mkdirSync(pluginsOut, { recursive: true });
    fs.writeFileSync(path.join(pluginsOut, `${name}.html`), assemblePluginHtml(root, name));
  }
  for (const lang of locales) {
    const src = r('locales', lang, `${name}.json`);
    if (fs.existsSync(src)) {
      fs.mkdirSync(path.join(pluginsOut, 'locales', lang), { recursive: true });
      fs.copyFileSync(src, path.join(pluginsOut, 'locales', lang, `${name}.json`));
    }
  }
}

// The instance tool: dist/bin/*.js (package.json "bin"), executable.
copyTree(r('build', 'bin'), r('dist', 'bin'), jsOnly, stripSourceMapUrl);
for (const f of fs.existsSync(r('dist', 'bin')) ? fs.readdirSync(r('dist', 'bin')) : []) fs.chmodSync(r('dist', 'bin', f), 0o755);

// Examples: flows/<file>.json -> examples/<file>.json (validated as JSON on the way).
copyTree(r('flows'), r('examples'), (f) => {
  if (!f.endsWith('.json')) return false;
  JSON.parse(fs.readFileSync(f, 'utf8'));
  return true;
});
console.log('build: dist/ and examples/ assembled');
