'use strict';
// Assembles a node's editor HTML from nodes/<type>/<type>.html and the editor toolkit in nodes/lib/editor/.
// Used by scripts/build.js (dist/nodes/<type>.html) and by the tests that evaluate the editors
// (test/support/example-checks.ts), so both see the same page.
//
// Markers a node's HTML may carry:
//   /* intune:editor NAME */     inside a <script type="text/javascript">: replaced by nodes/lib/editor/NAME.js,
//                                so the helpers share the node's closure (its TYPE, its session).
//   <!-- intune:editor NAME -->  inside the template: replaced by nodes/lib/editor/NAME.html, with every
//                                $TYPE in it replaced by the node's type (its i18n keys and CSS classes).
//   <!-- intune:status-i18n -->  after the registerType script: the status translation
//                                (nodes/lib/node-red/editor-status-i18n.js) for this type.
// The registerType call itself stays written out in the node's HTML: the Flow Library reads its literal.
const fs = require('node:fs');
const path = require('node:path');

const STATUS_MARK = '<!-- intune:status-i18n -->';
const JS_MARK = /^([ \t]*)\/\* intune:editor ([a-z0-9-]+) \*\/[ \t]*$/gm;
const HTML_MARK = /^([ \t]*)<!-- intune:editor ([a-z0-9-]+) -->[ \t]*$/gm;

function indent(text, pad) {
  return text
    .split('\n')
    .map((l) => (l ? pad + l : l))
    .join('\n');
}

function piece(root, name, ext) {
  const file = path.join(root, 'nodes', 'lib', 'editor', `${name}.${ext}`);
  if (!fs.existsSync(file)) throw new Error(`editor piece ${name}.${ext} not found in nodes/lib/editor/`);
  return fs.readFileSync(file, 'utf8').replace(/\s+$/, '');
}

/** The editor HTML of node `type` as Node-RED gets it. */
function assembleEditorHtml(root, type) {
  let html = fs.readFileSync(path.join(root, 'nodes', type, `${type}.html`), 'utf8');
  html = html.replace(JS_MARK, (_, pad, name) => indent(piece(root, name, 'js'), pad));
  html = html.replace(HTML_MARK, (_, pad, name) => indent(piece(root, name, 'html').split('$TYPE').join(type), pad));
  if (html.includes(STATUS_MARK)) {
    const code = fs.readFileSync(path.join(root, 'nodes', 'lib', 'node-red', 'editor-status-i18n.js'), 'utf8').trim();
    const script = `<script type="text/javascript">\n(function () {\n${code}\ninstallIntuneStatusI18n(${JSON.stringify(type)});\n})();\n</script>`;
    html = html.split(STATUS_MARK).join(script);
  }
  return html;
}

module.exports = { assembleEditorHtml };
