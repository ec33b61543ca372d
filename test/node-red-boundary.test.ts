/**
 * The Node-RED boundary written once (nodes/lib/node-red/: i18n.ts,
 * status-dot.ts, register.ts; nodes/lib/source/source-node.ts): the one
 * translation helper, the status dot every node shows through, the typed
 * config-node lookup, and that the English the source nodes fall back to
 * for their warnings is the en-US catalog's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Node, NodeAPI } from 'node-red';
import { runtimeTranslator, translator } from '../nodes/lib/node-red/i18n';
import { StatusDot } from '../nodes/lib/node-red/status-dot';
import { StatusTexts } from '../nodes/lib/node-red/status-text';
import { HealthBoard } from '../nodes/lib/node-red/config-health';
import { configNode } from '../nodes/lib/node-red/register';
import { sourceExplainer } from '../nodes/lib/source/source-node';

const root = path.resolve(__dirname, '..', '..');

describe('the Node-RED boundary', () => {
  describe('i18n', () => {
    const catalog = { _: (key: string, params?: Record<string, string | number>) => (key === 'x.greet' ? `Hallo ${String(params?.name)}` : key) };

    it('translator: the catalog text when there is one, else the English with its placeholders filled (missing ones empty)', () => {
      const t = translator(catalog, 'x');
      expect(t('greet', 'Hello __name__', { name: 'Ada' })).to.equal('Hallo Ada');
      expect(t('other', 'Page __page__ of __total__', { page: 2 })).to.equal('Page 2 of ');
      expect(t('other', 'Nothing __x__', { x: null })).to.equal('Nothing ');
    });

    it('a catalog that throws or answers empty counts as none', () => {
      const throwing = { _: (): string => { throw new Error('no i18n'); } };
      const empty = { _: () => '' };
      expect(translator(throwing, 'x')('k', 'English __n__', { n: 1 })).to.equal('English 1');
      expect(runtimeTranslator(empty)('x.k', {})).to.equal(undefined);
      expect(runtimeTranslator(catalog)('x.greet', { name: 'Bo' })).to.equal('Hallo Bo');
    });
  });

  describe('StatusDot', () => {
    function fakeNode() {
      const shown: unknown[] = [];
      return { shown, node: { status: (s: unknown) => shown.push(s) } as unknown as Node };
    }
    const texts = new StatusTexts({ _: (k: string) => k }, 'intune-action');

    it('shows until the node closes, then nothing; clear() still empties the dot', () => {
      const { shown, node } = fakeNode();
      const dot = new StatusDot(node, texts);
      dot.paint('green', 'dot', texts.msg('status.idle', 'idle'));
      expect(shown).to.deep.equal([{ fill: 'green', shape: 'dot', text: 'intune-action.status.idle', runtimeText: 'idle' }]);
      dot.close();
      dot.paint('red', 'ring', 'late');
      expect(shown).to.have.length(1);
      expect(dot.isClosed).to.equal(true);
      dot.clear();
      expect(shown[1]).to.deep.equal({});
    });

    it('follows the connection health until unwatched', () => {
      const { node } = fakeNode();
      const dot = new StatusDot(node, texts);
      const board = new HealthBoard();
      let changes = 0;
      expect(dot.watch(undefined, () => changes++), 'no board, nothing to follow').to.equal(undefined);
      const unwatch = dot.watch(board, () => changes++)!;
      expect(changes, 'called at once').to.equal(1);
      board.set({ level: 'warn', key: 'k', text: 'w' });
      expect(dot.health?.level).to.equal('warn');
      expect(changes).to.equal(2);
      unwatch();
      board.set({ level: 'error', key: 'k', text: 'e' });
      expect(changes).to.equal(2);
      expect(dot.health?.level).to.equal('warn');
    });
  });

  it('configNode: null for an empty or non-string id and for one nothing is deployed with', () => {
    const asked: string[] = [];
    const RED = { nodes: { getNode: (id: string) => (asked.push(id), id === 'c1' ? { id: 'c1' } : null) } } as unknown as NodeAPI;
    expect(configNode(RED, '')).to.equal(null);
    expect(configNode(RED, 42)).to.equal(null);
    expect(configNode(RED, 'gone')).to.equal(null);
    expect(configNode<Node>(RED, 'c1')?.id).to.equal('c1');
    expect(asked).to.deep.equal(['gone', 'c1']);
  });

  it('a source explains a 403 with the permissions it needs, other failures as they are', () => {
    const explain = sourceExplainer('grant the app X.Read.All');
    expect(explain(Object.assign(new Error('Forbidden'), { status: 403 }))).to.equal('Forbidden — grant the app X.Read.All');
    expect(explain(Object.assign(new Error('Bad'), { status: 400 }))).to.equal('Bad');
    expect(explain('plain')).to.equal('plain');
  });

  for (const type of ['intune-devices', 'intune-compliance']) {
    it(`${type}: the English of its warnings (t(...) and overlap) is the en-US catalog's`, () => {
      const src = fs.readFileSync(path.join(root, 'nodes', type, `${type}.ts`), 'utf8');
      const en = JSON.parse(fs.readFileSync(path.join(root, 'locales', 'en-US', `${type}.json`), 'utf8'))[type] as Record<string, Record<string, string>>;
      const uses = [...src.matchAll(/\bt\(\s*'([A-Za-z.]+)',\s*'((?:[^'\\]|\\.)*)'/g)].map((m) => [m[1], m[2]]);
      const overlap = /\boverlap: '((?:[^'\\]|\\.)*)'/.exec(src);
      expect(overlap, 'overlap text').to.not.equal(null);
      uses.push(['warn.overlap', overlap![1]]);
      for (const [key, english] of uses) {
        const [group, name] = key.split('.');
        expect(en[group]?.[name], key).to.equal(english.replace(/\\'/g, "'"));
      }
    });
  }
});
