/**
 * Editor, help and message catalogs of the three ACMP nodes: en-US and de
 * have the same keys and placeholders; every key the editors and runtimes
 * use exists; the runtime's built-in English equals en-US; the editor
 * scripts parse, register the right type and have a field for every
 * property; the help of each node exists in both languages and covers
 * every property; the runtime registers the types with the credentials.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { editorHtml } from './support/example-checks';
import { SICS_STATUS_EN, type SicsErrorCode } from '../nodes/lib/acmp/sics-errors';

const NODES = ['intune-acmp-config', 'intune-acmp', 'intune-acmp-actions'] as const;
const LANGS = ['en-US', 'de'] as const;

const root = [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..'), process.cwd()].find((p) => fs.existsSync(path.join(p, 'locales', 'en-US', 'intune-acmp.json')));
const read = (...p: string[]) => fs.readFileSync(path.join(root!, ...p), 'utf8');

type Tree = { [k: string]: string | Tree };

function flatten(t: Tree, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(t)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out[key] = v;
    else Object.assign(out, flatten(v, key));
  }
  return out;
}

const catalog = (lang: string, node: string) => flatten(JSON.parse(read('locales', lang, `${node}.json`)) as Tree);
const placeholders = (s: string) => [...s.matchAll(/__(\w+)__/g)].map((m) => m[1]).sort();

describe('intune-acmp editor, help and catalogs', () => {
  it('finds the repository', () => {
    expect(root, 'locales/ not found next to the build or in the working directory').to.be.a('string');
  });

  for (const node of NODES) {
    describe(node, () => {
      const en = () => catalog('en-US', node);
      const de = () => catalog('de', node);

      it('en-US and de have the same keys and the same placeholders', () => {
        expect(Object.keys(de()).sort()).to.deep.equal(Object.keys(en()).sort());
        for (const k of Object.keys(en())) expect(placeholders(de()[k]), k).to.deep.equal(placeholders(en()[k]));
        for (const v of Object.values(de())) expect(v.trim()).to.not.equal('');
      });

      it('the runtime\'s built-in English texts are the en-US texts, and every runtime key exists', () => {
        const src = read('nodes', node, `${node}.ts`);
        const uses = [...src.matchAll(/\bt\('([A-Za-z.]+)', '((?:[^'\\]|\\.)*)'/g)];
        expect(uses.length).to.be.greaterThan(1);
        for (const [, key, english] of uses) {
          expect(en(), key).to.have.property(`${node}.${key}`);
          expect(en()[`${node}.${key}`], key).to.equal(english.replace(/\\'/g, "'").replace(/\\\\/g, '\\'));
        }
      });

      it('the editor uses only existing keys, parses, and has a field for every property', () => {
        const html = editorHtml(root!, node); // as the build assembles it: the editor toolkit inlined
        const keys = new Set([...html.matchAll(/data-i18n="(?:\[[a-z]+\])?([^"]+)"/g)].map((m) => m[1]).concat([...html.matchAll(/\bt\("([A-Za-z-]+\.[A-Za-z.]+)"/g)].map((m) => m[1])));
        expect(keys.size).to.be.greaterThan(3);
        for (const k of keys) expect(en(), k).to.have.property(k);
        const js = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
        let registered: { type: string; def: { defaults: Record<string, unknown>; credentials?: Record<string, unknown>; category: string } } | undefined;
        const fakeRED = { nodes: { registerType: (type: string, def: never) => (registered = { type, def }), getType: () => null, node: () => null }, _: (k: string) => k, settings: {} };
        new Function('RED', '$', js)(fakeRED, () => ({}));
        expect(registered?.type).to.equal(node);
        expect(registered!.def.category).to.equal(node === 'intune-acmp-config' ? 'config' : 'Intune');
        const prefix = node === 'intune-acmp-config' ? 'node-config-input-' : 'node-input-';
        const fields = [...Object.keys(registered!.def.defaults), ...Object.keys(registered!.def.credentials ?? {})].filter((k) => k !== 'servers');
        for (const f of fields) expect(html, f).to.include(`id="${prefix}${f}"`);
      });

      for (const lang of LANGS) {
        it(`has help in ${lang} that covers every property`, () => {
          const help = read('locales', lang, `${node}.html`);
          expect(help).to.include(`data-help-name="${node}"`);
          expect(help.length).to.be.greaterThan(1500);
          const labels = catalog(lang, node);
          const props: Record<string, string[]> = {
            'intune-acmp-config': ['host', 'port', 'useTls', 'tls', 'allowUnencrypted', 'timeoutSec', 'user', 'password', 'servers', 'replyVirtualRouter'],
            'intune-acmp': ['acmp', 'serverId', 'onDemandDefinition', 'batchSize', 'replyTimeoutSec', 'reconcile', 'store'],
            'intune-acmp-actions': ['acmp', 'virtualRouter', 'routingKey'],
          };
          for (const p of props[node]) {
            const label = labels[`${node}.label.${p}`].split(' (')[0];
            expect(help, `${lang} help mentions "${label}"`).to.include(label);
          }
        });
      }
    });
  }

  it('every SICS error code has a status and a "Verify connection" text', () => {
    const src = read('nodes', 'lib', 'acmp', 'sics-errors.ts');
    const codes = /export type SicsErrorCode =([\s\S]*?);/.exec(src)![1].match(/'(\w+)'/g)!.map((c) => c.slice(1, -1));
    expect(codes.length).to.be.greaterThan(10);
    for (const lang of LANGS) {
      const c = catalog(lang, 'intune-acmp-config');
      for (const code of [...codes, 'serverUnanswered', 'unexpected', 'unencrypted', 'plainHttp', 'noServers']) expect(c, `${lang} verify.${code}`).to.have.property(`intune-acmp-config.verify.${code}`);
      for (const code of [...codes, 'ready', 'connected', 'unencrypted']) expect(c, `${lang} status.${code}`).to.have.property(`intune-acmp-config.status.${code}`);
    }
    // The runtime's English fallback for those statuses (nodes that show the connection's status) is the en-US text.
    const en = catalog('en-US', 'intune-acmp-config');
    for (const code of codes) expect(SICS_STATUS_EN[code as SicsErrorCode], code).to.equal(en[`intune-acmp-config.status.${code}`]);
  });

  it('the runtimes register their types, the config node with user and password as credentials', () => {
    const types: Record<string, unknown> = {};
    const routes: string[] = [];
    const RED = {
      nodes: { registerType: (t: string, _fn: unknown, o?: unknown) => (types[t] = o ?? {}), createNode: () => undefined, getNode: () => null, getCredentials: () => ({}) },
      httpAdmin: { post: (p: string) => routes.push(p) },
      auth: { needsPermission: (p: string) => p },
      _: (k: string) => k,
      log: { error: () => undefined, warn: () => undefined },
      settings: {},
    };
    /* eslint-disable @typescript-eslint/no-require-imports */
    require('../nodes/intune-acmp-config/intune-acmp-config')(RED);
    require('../nodes/intune-acmp/intune-acmp')(RED);
    require('../nodes/intune-acmp-actions/intune-acmp-actions')(RED);
    expect(Object.keys(types).sort()).to.deep.equal([...NODES].sort());
    expect(types['intune-acmp-config']).to.deep.equal({ credentials: { user: { type: 'text' }, password: { type: 'password' } } });
    expect(routes).to.deep.equal(['/intune-acmp-config/verify']);
  });
});
