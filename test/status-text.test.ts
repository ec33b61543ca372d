/**
 * Status texts in the editor's language (nodes/lib/node-red/status-text.ts and its
 * editor half nodes/lib/node-red/editor-status-i18n.js): the form node.status() gets,
 * the runtime-language copy for Status nodes, that the editor's reader and
 * the runtime's agree, that every status key our nodes send is in both
 * catalogs with the English text the code falls back to, and that the build
 * puts the reader into the HTML of every node that shows a status.
 * (test/browser/status-language.test.ts proves it in the real editor.)
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { expect } from 'chai';
import { StatusText, StatusTexts, decodeStatusText, toStatus } from '../nodes/lib/node-red/status-text';
import { healthPart } from '../nodes/lib/node-red/config-health';

const root = path.resolve(__dirname, '..', '..');
const MODULE = '@intune-connector/node-red-intune';

type Catalog = Record<string, unknown>;
function catalog(type: string, lang: string): Catalog {
  return JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, `${type}.json`), 'utf8')) as Catalog;
}
function lookup(key: string, lang: string): string | undefined {
  const type = key.split('.')[0];
  const file = path.join(root, 'locales', lang, `${type}.json`);
  if (!fs.existsSync(file)) return undefined;
  let v: unknown = catalog(type, lang);
  for (const part of key.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return typeof v === 'string' ? v : undefined;
}
/** What i18next in the editor does with a key and parameters (our catalogs use __name__). */
function translateIn(lang: string) {
  return (key: string, params: Record<string, string> = {}) => {
    const s = lookup(key, lang);
    return s === undefined ? key : s.replace(/__(\w+)__/g, (m, k: string) => (k in params ? params[k] : m));
  };
}

/** RED as the runtime sees it without catalogs (the test helper) or with the English ones. */
const noCatalog = { _: (key: string) => key };
const english = { _: (key: string, params?: Record<string, string>) => translateIn('en-US')(key, params) };

describe('status texts in the editor\u2019s language', () => {
  const devices = new StatusTexts(noCatalog, 'intune-devices');
  const note = devices.msg('status.notPersistent', ' · state in memory only');

  it('a fixed text is its key alone; Status nodes also get it in the runtime\u2019s language', () => {
    expect(devices.status('grey', 'ring', devices.msg('status.idle', 'idle'))).to.deep.equal({ fill: 'grey', shape: 'ring', text: 'intune-devices.status.idle', runtimeText: 'idle' });
  });

  it('a text with parameters: the key, then its parameters as JSON; nested messages and appended parts', () => {
    const done = devices.msg('status.done', '__mode__: __emitted__ devices, __skipped__ skipped · __time__ UTC', {
      mode: devices.msg('status.mode.full', 'full'),
      emitted: 57,
      skipped: 3,
      time: '12:34',
    });
    const s = devices.status('green', 'dot', done, note);
    expect(s.text).to.equal(
      'intune-devices.status.done {"mode":{"$t":"intune-devices.status.mode.full"},"emitted":57,"skipped":3,"time":"12:34","$+":[{"$t":"intune-devices.status.notPersistent"}]}',
    );
    expect(s.runtimeText).to.equal('full: 57 devices, 3 skipped · 12:34 UTC · state in memory only');
    // With the runtime's catalog the copy for Status nodes comes from it.
    expect(toStatus('green', 'dot', StatusText.of(done, note), new StatusTexts(english, 'intune-devices').tr).runtimeText).to.equal(s.runtimeText);
  });

  it('a text that starts with a message of its own (an error) is sent as it is', () => {
    const s = devices.status('red', 'ring', 'The client secret is missing', note);
    expect(s.text).to.equal('The client secret is missing · state in memory only');
    expect(s.runtimeText).to.equal(s.text);
  });

  it('the editor shows it in its language: German and English from the catalogs, parameters untouched', () => {
    const text = StatusText.of(
      devices.msg('status.connection', 'connection: __text__', { text: healthPart({ level: 'warn', key: 'intune-config.status.certExpiresSoon', text: 'certificate expires in 5 d', params: { days: 5 } }) }),
    ).encode();
    expect(decodeStatusText(text, translateIn('de'))).to.equal('Verbindung: Zertifikat läuft in 5 Tag(en) ab');
    expect(decodeStatusText(text, translateIn('en-US'))).to.equal('connection: certificate expires in 5 day(s)');
    const sneaky = StatusText.of(devices.msg('status.failed', 'failed: __error__', { error: '__mode__ $t(intune-devices.status.idle) {"$t":"x"}' })).encode();
    expect(decodeStatusText(sneaky, translateIn('de'))).to.equal('fehlgeschlagen: __mode__ $t(intune-devices.status.idle) {"$t":"x"}');
    expect(decodeStatusText('full: 3 devices', translateIn('de')), 'not our form: as it is').to.equal('full: 3 devices');
  });

  it('a health that is a message of its own stays as it is; one that names a state is translated', () => {
    expect(healthPart({ level: 'error', key: 'intune-config.status.error', text: 'The client secret is missing', literal: true })).to.equal('The client secret is missing');
    expect(healthPart({ level: 'warn', key: 'intune-acmp-config.status.unencrypted', text: 'unencrypted (TLS failed)' })).to.deep.equal({ key: 'intune-acmp-config.status.unencrypted', en: 'unencrypted (TLS failed)' });
  });

  it('the editor\u2019s reader (editor-status-i18n.js) and the runtime\u2019s agree, and the reader leaves other texts to Node-RED', () => {
    const code = fs.readFileSync(path.join(root, 'nodes', 'lib', 'node-red', 'editor-status-i18n.js'), 'utf8');
    const de = translateIn('de');
    const defs: Record<string, { set: { module: string }; _: (k: string, o?: Record<string, unknown>) => unknown }> = {};
    const coreCalls: string[] = [];
    for (const type of ['intune-devices', 'intune-config', 'intune-acmp-config']) {
      // Node-RED's definition._: the type's namespace, the key back when it has no text.
      defs[type] = { set: { module: MODULE }, _: (k: string, o: Record<string, unknown> = {}) => (coreCalls.push(k), de(k, o as Record<string, string>)) };
    }
    defs.inject = { set: { module: 'node-red' }, _: (k: string) => k };
    const RED = { nodes: { getType: (t: string) => defs[t] } };
    vm.runInNewContext(`${code}\ninstallIntuneStatusI18n("intune-devices");`, { RED });
    const nodeUnderscore = defs['intune-devices']._;
    const samples = [
      StatusText.of(devices.msg('status.idle', 'idle'), note).encode(),
      StatusText.of(devices.msg('status.done', '', { mode: devices.msg('status.mode.incremental', ''), emitted: 1, skipped: 0, time: '01:02' })).encode(),
      StatusText.of(devices.msg('status.connection', '', { text: { key: 'intune-acmp-config.status.wrongCredentials', en: '' } })).encode(),
      'intune-devices.status.idle',
    ];
    for (const s of samples) expect(nodeUnderscore(s, { defaultValue: s }), s).to.equal(decodeStatusText(s, de));
    expect(nodeUnderscore(samples[0], { defaultValue: samples[0] })).to.equal('bereit · Zustand nur im Speicher');
    // Not the status path, or not our form: Node-RED's own translation, unchanged.
    coreCalls.length = 0;
    expect(nodeUnderscore('intune-devices.label.name')).to.equal(de('intune-devices.label.name'));
    expect(coreCalls).to.deep.equal(['intune-devices.label.name']);
    expect(nodeUnderscore('node-red:common.status.connected', { defaultValue: 'node-red:common.status.connected' })).to.equal('node-red:common.status.connected');
    const foreign = 'inject.status.x {"a":1}';
    expect(nodeUnderscore(foreign, { defaultValue: foreign }), 'keys of other modules are not ours to read').to.equal(foreign);
  });

  describe('the statuses our nodes send', () => {
    const sources = fs.readdirSync(path.join(root, 'nodes'), { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'lib').map((d) => d.name);
    /** Type → the source files whose status texts it sends. */
    const files: Record<string, string[]> = {};
    for (const type of sources) files[type] = [path.join(root, 'nodes', type, `${type}.ts`)];
    for (const type of ['intune-devices', 'intune-compliance']) {
      files[type].push(path.join(root, 'nodes', 'lib', 'node-red', 'source-status.ts'), path.join(root, 'nodes', 'lib', 'source', 'source-node.ts'));
    }

    for (const type of sources) {
      it(`${type}: every status key is in the en-US and de catalogs, with the English text the code falls back to`, () => {
        const found: Array<{ key: string; en: string }> = [];
        for (const f of files[type]) {
          const src = fs.readFileSync(f, 'utf8');
          for (const m of src.matchAll(/\b(say|\.msg)\(\s*'([A-Za-z0-9_.]+)',\s*'((?:[^'\\]|\\.)*)'/g)) {
            found.push({ key: `${type}.${m[1] === 'say' ? 'status.' : ''}${m[2]}`, en: m[3].replace(/\\'/g, "'") });
          }
          if (/modeWord/.test(src)) for (const mode of ['full', 'incremental']) found.push({ key: `${type}.status.mode.${mode}`, en: mode });
        }
        const shows = /node\.status\(|new SourceStatus\(|new StatusDot\(|sourceNode\(/.test(fs.readFileSync(files[type][0], 'utf8'));
        if (shows) expect(found.length, 'status texts found in the source').to.be.greaterThan(0);
        const wrong: string[] = [];
        for (const { key, en } of found) {
          const want = lookup(key, 'en-US');
          if (want === undefined) wrong.push(`${key}: not in the en-US catalog`);
          else if (want !== en) wrong.push(`${key}: the code says "${en}", the catalog "${want}"`);
          if (lookup(key, 'de') === undefined) wrong.push(`${key}: not in the de catalog`);
        }
        expect(wrong).to.deep.equal([]);
      });
    }

    it('the build puts the editor\u2019s reader into the HTML of every node that shows a status, right after its registerType', () => {
      for (const type of sources) {
        const html = fs.readFileSync(path.join(root, 'dist', 'nodes', `${type}.html`), 'utf8');
        const isConfig = /category:\s*"config"/.test(html);
        const at = html.indexOf(`installIntuneStatusI18n(${JSON.stringify(type)})`);
        if (isConfig) {
          expect(at, `${type} (a config node shows no status)`).to.equal(-1);
        } else {
          const registered = html.indexOf('RED.nodes.registerType(');
          expect(registered, `${type}: registerType`).to.be.greaterThan(-1);
          expect(at, `${type}: reader installed after registerType`).to.be.greaterThan(registered);
          expect(html).to.not.include('<!-- intune:status-i18n -->');
        }
      }
    });
  });
});
