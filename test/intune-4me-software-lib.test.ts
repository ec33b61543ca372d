/**
 * The pure parts of the 4me software sync: settings, the mapping of an
 * Intune discovered app to a software CI and product, the relations a
 * device should have, and the software ledger's stored form.
 */
import { expect } from 'chai';
import type { InstalledApp } from '../nodes/lib/contracts';
import { defaultMappingSettings } from '../nodes/lib/fourme/fourme-ci-mapping';
import { appsOf, childIdsOf, mapApp, parseSoftwareSettings, softwareSourceId } from '../nodes/lib/fourme/fourme-software-mapping';
import { SoftwareLedger } from '../nodes/lib/fourme/fourme-software-ledger';
import { emptyState, fromStored } from '../nodes/lib/fourme/sink-fingerprints';
import { parseSinkSettings, SinkSettingsError } from '../nodes/lib/fourme/fourme-sink';

const app = (o: Partial<InstalledApp> = {}): InstalledApp => ({ key: 'k1', name: 'Reader', version: '9.1.0', publisher: 'Adobe', platform: 'windows', sizeBytes: 1, ...o });

describe('4me software: settings, mapping, ledger', () => {
  it('settings: on by default, category "software/application"; a bad reference is refused in plain words', () => {
    expect(parseSoftwareSettings({})).to.deep.equal({ enabled: true, reference: 'software/application', name: 'Application' });
    expect(parseSoftwareSettings({ software: false, softwareCategoryRef: 'Software/Browser_Viewer_Application' })).to.deep.equal({
      enabled: false,
      reference: 'software/browser_viewer_application',
      name: 'Browser viewer application',
    });
    expect(() => parseSinkSettings({ softwareCategoryRef: 'software' })).to.throw(SinkSettingsError, /group\/name/);
  });

  it('maps an app to "[Brand] [Software Name] [Version]" under the product "[Brand] [Software Name]"', () => {
    const s = parseSoftwareSettings({});
    const m = mapApp(app(), 'tenant-a', s, defaultMappingSettings());
    expect(m.ci).to.deep.equal({ sourceID: 'app:tenant-a:k1', name: 'Adobe Reader 9.1.0', status: 'in_production' });
    expect(m.product).to.deep.include({ c: 'software/application', b: 'Adobe', m: 'Reader', n: 'Adobe Reader' });
    // a name that starts with its publisher is not doubled; no publisher or version
    expect(mapApp(app({ name: 'Adobe Acrobat', publisher: 'Adobe' }), 'i', s, defaultMappingSettings()).ci.name).to.equal('Adobe Acrobat 9.1.0');
    expect(mapApp(app({ publisher: null, version: null }), 'i', s, defaultMappingSettings()).ci.name).to.equal('Unknown Reader');
    // long keys still make sourceIDs within 4me's 128 characters, distinct per key
    const a = softwareSourceId({ key: 'x'.repeat(300) + 'a' }, 'i');
    const b = softwareSourceId({ key: 'x'.repeat(300) + 'b' }, 'i');
    expect(a.length).to.be.at.most(128);
    expect(a).to.not.equal(b);
    // the fingerprint follows what is written
    expect(mapApp(app({ version: '9.2' }), 'tenant-a', s, defaultMappingSettings()).fingerprint).to.not.equal(m.fingerprint);
  });

  it('a device relates the software CIs 4me confirmed; unread software is undefined, read-and-none is []', () => {
    const l = new SoftwareLedger();
    l.setApp('app:i:k1', { f: 'f', id: 'CI-2', p: 'p', n: 'n', st: '' });
    l.setApp('app:i:k2', { f: 'f', id: 'CI-1', p: 'p', n: 'n', st: '' });
    l.setApp('app:i:k3', { f: 'f', p: 'p', n: 'n', st: '' }); // confirmed without an id
    expect(childIdsOf({ software: [app({ key: 'k1' }), app({ key: 'k2' }), app({ key: 'k3' }), app({ key: 'k1' })] }, l, 'i')).to.deep.equal(['CI-1', 'CI-2']);
    expect(childIdsOf({}, l, 'i')).to.equal(undefined);
    expect(childIdsOf({ software: [] }, l, 'i')).to.deep.equal([]);
    expect(appsOf({ software: [app(), { key: '', name: 'x' } as InstalledApp, null as unknown as InstalledApp] })).to.have.length(1);
  });

  it('the ledger is stored packed with the state and loads back; a state without software still loads', () => {
    const s = emptyState('scope');
    s.software.setApp('app:i:Müller|1', { f: 'fp', id: 'CI-1', p: 'sw|adobe|reader', n: 'Adobe Reader | 9', st: '' });
    s.software.setApp('app:i:k2', { f: '', p: 'sw|x|y', n: 'X Y', st: 'archived' });
    s.software.devices.set('dev-1', 'relfp');
    const stored = JSON.parse(JSON.stringify(s));
    expect(stored.software.apps).to.be.a('string');
    const back = fromStored(stored)!;
    expect(back.software.app('app:i:Müller|1')).to.deep.equal({ f: 'fp', id: 'CI-1', p: 'sw|adobe|reader', n: 'Adobe Reader | 9', st: '' });
    expect(back.software.app('app:i:k2')).to.deep.equal({ f: '', p: 'sw|x|y', n: 'X Y', st: 'archived' });
    expect(back.software.devices.get('dev-1')).to.equal('relfp');
    const old = { ...stored };
    delete old.software;
    expect(fromStored(old)!.software.size).to.equal(0);
  });
});
