/**
 * What every node of the package looks like in the editor, in English and in
 * German (the editor language chosen in User Settings): palette entry and
 * icon, port labels, every text of its dialog against the catalog of that
 * language, a dialog whose checkboxes sit beside their labels, help in the
 * info sidebar, and a screenshot of the dialog.
 *
 * The nodes come from support/nodes-under-test.ts: one line there adds a node.
 */
import { expect } from 'chai';
import { browserStack, onFailure, type Stack } from './support/stack';
import type { Editor } from './support/editor';
import { NODES_UNDER_TEST, MODULE, type NodeUnderTest } from './support/nodes-under-test';
import { helpOutline, lookup, squash, type Lang } from './support/catalog';

const LANGS: Lang[] = ['en-US', 'de'];

describe('browser: every node in the editor, en-US and de', function () {
  this.timeout(120_000);
  let stack: Stack;
  let ed: Editor | undefined;
  onFailure(() => ed, { closeDialogs: true });

  before(async () => {
    stack = await browserStack();
    await stack.reset([]);
  });
  after(async () => {
    await ed?.close();
  });

  for (const lang of LANGS) {
    describe(lang, () => {
      before(async function () {
        this.timeout(120_000);
        await ed?.close();
        ed = await stack.editor();
        if (lang !== 'en-US') await ed.chooseLanguage(lang);
        expect(await ed.language(), 'the editor language after choosing it').to.equal(lang);
      });

      for (const n of NODES_UNDER_TEST) describeNode(n, lang);
    });
  }

  function describeNode(n: NodeUnderTest, lang: Lang) {
    describe(n.type, () => {
      let nodeId = '';
      let hostId = '';
      // Dragged from the palette once; each test below works on it.
      before(async () => {
        const y = 120 + 80 * NODES_UNDER_TEST.indexOf(n);
        if (n.palette) nodeId = await ed!.addFromPalette(n.type, { x: 300, y });
        else hostId = await ed!.addFromPalette(n.via!.type, { x: 600, y });
      });

      if (n.palette) {
        it('is in the palette under its category, with its label and the package icon', async () => {
          const entry = await ed!.showInPalette(n.type);
          const category = await entry.evaluate((el) => el.closest('.red-ui-palette-category')!.id);
          expect(category, 'palette category').to.equal(`red-ui-palette-container-${n.palette}`);
          const label = squash(await entry.locator('.red-ui-palette-label').innerText());
          const want = lookup(n.type, lang, `${n.type}.paletteLabel`) ?? n.type;
          expect(label, 'palette label').to.equal(want);
          const icon = await entry.locator('.red-ui-palette-icon').evaluate((el) => getComputedStyle(el).backgroundImage);
          expect(icon, 'palette icon: the package\u2019s own, not Node-RED\u2019s fallback').to.include(`/icons/${MODULE}/`);
          const url = /url\("?([^")]+)"?\)/.exec(icon)![1];
          const res = await ed!.page.request.get(url);
          expect(res.status(), `icon ${url}`).to.equal(200);
          expect(res.headers()['content-type'] ?? '').to.match(/svg|png/);
        });
      }

      /** Opens the node's dialog (a config node's through its host's "+"), unless it is open. */
      async function openDialog(): Promise<void> {
        const open = n.palette ? '#node-dialog-ok' : '#node-config-dialog-ok';
        if (await ed!.page.locator(open).isVisible()) return;
        await ed!.closeAllDialogs();
        if (n.palette) {
          await ed!.openNode(nodeId);
        } else {
          await ed!.openNode(hostId);
          await ed!.addConfigFrom(n.via!.prop);
        }
      }

      it('opens a dialog whose every text comes from the ' + lang + ' catalog', async () => {
        ed!.errors.length = 0;
        await openDialog();
        const tray = ed!.topTray();
        await ed!.screenshotTray(`dialog-${n.type}-${lang}`);
        const texts = (await ed!.i18nTexts(tray)).filter((t) => t.key.startsWith(`${n.type}.`));
        expect(texts.length, 'translated elements in the dialog').to.be.greaterThan(3);
        const wrong: string[] = [];
        for (const t of texts) {
          const want = lookup(n.type, lang, t.key);
          if (want === undefined) wrong.push(`${t.key}: missing from the ${lang} catalog`);
          else if (t.target === 'html' ? squash(t.shown) !== squash(want.replace(/<[^>]+>/g, '')) : t.shown !== squash(want)) {
            wrong.push(`${t.key} [${t.target}]: shows "${t.shown}", catalog says "${want}"`);
          }
        }
        expect(wrong, 'dialog texts that differ from the catalog').to.deep.equal([]);
        if (lang !== 'en-US') {
          // Equal to the catalog is not enough if the catalog is still English.
          const english = texts.filter((t) => t.shown !== '' && t.shown === squash(lookup(n.type, 'en-US', t.key) ?? ''));
          const translatable = texts.filter((t) => t.shown !== '');
          expect(english.length / translatable.length, `share of dialog texts still in English: ${english.map((t) => t.shown).join(' | ')}`).to.be.below(0.5);
        }
        expect(await ed!.untranslated(tray, n.type), 'raw catalog keys shown in the dialog').to.deep.equal([]);
        expect(ed!.errors, 'browser errors while opening the dialog').to.deep.equal([]);
      });

      it('gives the reason of every invalid field (validators take (value, opt), else Node-RED ignores their message)', async () => {
        // Node-RED 3+ treats a one-argument validator as a 2.x one: a returned message
        // becomes `true`, so the field is never marked invalid. Seen here in intune-action.
        const oneArg = await ed!.page.evaluate((t) => {
          const d = (window as any).RED.nodes.getType(t);
          const out: string[] = [];
          for (const group of ['defaults', 'credentials']) {
            for (const [k, v] of Object.entries<any>(d[group] || {})) {
              if (typeof v?.validate === 'function' && v.validate.length < 2 && /return\s+[^;]*(\bt|RED\._|\.\_)\(/.test(String(v.validate))) out.push(`${group}.${k}`);
            }
          }
          return out;
        }, n.type);
        expect(oneArg, 'validators that return a message but take one argument').to.deep.equal([]);
      });

      it('lays out every checkbox beside its own label', async () => {
        await openDialog();
        try {
          expect(await ed!.checkboxLayoutProblems(ed!.topTray())).to.deep.equal([]);
        } finally {
          await ed!.closeAllDialogs();
        }
      });

      if (n.palette) {
        it('labels its inputs and outputs', async () => {
          const def = await ed!.page.evaluate((t) => {
            const d = (window as any).RED.nodes.getType(t);
            return { inputs: d.inputs ?? 0, outputs: d.outputs ?? 0 };
          }, n.type);
          const labels: string[] = [];
          for (let i = 0; i < Math.min(def.inputs, 1); i++) labels.push(await ed!.portLabel(nodeId, 'input', i));
          for (let i = 0; i < def.outputs; i++) labels.push(await ed!.portLabel(nodeId, 'output', i));
          expect(labels.length, 'ports').to.equal(Math.min(def.inputs, 1) + def.outputs);
          for (const l of labels) {
            expect(l, 'port label').to.not.equal('');
            expect(l, 'port label is a raw catalog key').to.not.match(new RegExp(`^${n.type}\\.`));
          }
          if (lang !== 'en-US') {
            // The labels come from this language's catalog when it has them.
            const keys = ['label.input', 'label.output', 'label.output1', 'label.output2'].map((k) => lookup(n.type, lang, `${n.type}.${k}`)).filter(Boolean);
            for (const l of labels) expect(keys, `port label "${l}" is from the ${lang} catalog`).to.include(l);
          }
        });
      }

      it(`shows its ${lang} help in the info sidebar`, async () => {
        const target = n.palette ? nodeId : hostId;
        let help: { title: string; text: string };
        if (n.palette) help = await ed!.helpFor(target);
        else help = await configHelp(ed!, n.type);
        expect(help.title, 'help title').to.equal(lookup(n.type, lang, `${n.type}.paletteLabel`) ?? n.type);
        const outline = helpOutline(n.type, lang);
        const shown = squash(help.text);
        expect(shown, 'help: what the node does').to.include(outline.intro);
        for (const h of outline.headings) expect(shown, `help section "${h}"`).to.include(h);
        await ed!.screenshot(`help-${n.type}-${lang}`, ed!.page.locator('.red-ui-sidebar-help-stack').first());
      });
    });
  }
});

/** Help of a config node: its type in the help tab's list (config nodes are not in the palette). */
async function configHelp(ed: Editor, type: string): Promise<{ title: string; text: string }> {
  await ed.page.locator('#red-ui-tab-help-link-button').click();
  const search = ed.page.locator('.red-ui-sidebar-help-stack').locator('xpath=..').locator('input[type=text]').first();
  await search.fill(type);
  await ed.page.locator(`.red-ui-sidebar-help-toc .red-ui-treeList-label:has-text("${type}")`).first().click();
  const title = ed.page.locator('.red-ui-sidebar-help-stack h1.red-ui-help-title').first();
  await ed.page.waitForFunction((t) => document.querySelector('.red-ui-sidebar-help-stack h1.red-ui-help-title')?.textContent === t, type);
  const section = title.locator('xpath=..');
  return { title: (await title.innerText()).trim(), text: await section.innerText() };
}
