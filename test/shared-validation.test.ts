/**
 * strictBool (nodes/lib/shared/validation.ts): the one reading of a yes/no
 * setting, and every settings parser that reads one through it, each with
 * its own error type and field.
 */
import { expect } from 'chai';
import { BOOL_ECHO_CHARS, strictBool } from '../nodes/lib/shared/validation';
import { FilterSettingsError, parseFilterSettings } from '../nodes/lib/devices/device-filters';
import { DeviceSettingsError, parseDeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';
import { ComplianceSettingsError, parseComplianceSettings } from '../nodes/lib/compliance/compliance-settings';
import { parseSicsSettings } from '../nodes/lib/acmp/sics-settings';
import { SicsError } from '../nodes/lib/acmp/sics-errors';
import { parseActionSettings } from '../nodes/lib/actions/action-settings';
import { parseSinkSettings as parseAcmpSinkSettings } from '../nodes/lib/acmp/acmp-sink-settings';
import { parseSinkSettings as parseFourMeSinkSettings, SinkSettingsError } from '../nodes/lib/fourme/fourme-sink';
import { IncidentSettingsError, parseIncidentSettings } from '../nodes/lib/fourme/fourme-incidents';
import { MappingSettingsError, parseCiMappingSettings } from '../nodes/lib/fourme/fourme-ci-mapping';
import { parseSoftwareSettings, SoftwareSettingsError } from '../nodes/lib/fourme/fourme-software-mapping';

class Refused extends Error {}
const refuse = (reason: string) => new Refused(reason);
const read = (v: unknown, fallback = false) => strictBool(v, fallback, refuse);
function refusal(v: unknown): string {
  try {
    read(v);
  } catch (e) {
    expect(e, JSON.stringify(v)).to.be.instanceOf(Refused);
    return (e as Error).message;
  }
  throw new Error(`${JSON.stringify(v)} was accepted`);
}

describe('shared: strictBool', () => {
  it('accepts the booleans, "true"/"false" in any case and with spaces, 1/0 and "1"/"0"', () => {
    for (const v of [true, 'true', 'TRUE', 'True', ' true ', '\ttrue\n', 1, '1', ' 1 ']) expect(read(v, false), JSON.stringify(v)).to.equal(true);
    for (const v of [false, 'false', 'FALSE', 'False', ' false ', 0, '0', ' 0 ']) expect(read(v, true), JSON.stringify(v)).to.equal(false);
  });

  it('gives the default for an empty value: undefined, null, "" and only spaces', () => {
    for (const v of [undefined, null, '', '   ']) {
      expect(read(v, true), JSON.stringify(v)).to.equal(true);
      expect(read(v, false), JSON.stringify(v)).to.equal(false);
    }
  });

  it('refuses anything else through the caller\u2019s error, quoting the value', () => {
    const rejected: unknown[] = ['yes', 'no', 'on', 'off', 'YES', 'y', 'n', 't', 'f', 'ture', 'flase', 'true false', '01', '1.0', '2', '-1', 2, -1, 0.5, NaN, Infinity, [], [true], {}, { value: true }, new Date(0)];
    for (const v of rejected) expect(refusal(v), JSON.stringify(v)).to.match(/^must be true or false, not /);
    expect(refusal('yes')).to.equal('must be true or false, not "yes"');
    expect(refusal(2)).to.equal('must be true or false, not 2');
  });

  it('cuts a long value to a few dozen characters and names its length', () => {
    const long = 'x'.repeat(5000);
    const m = refusal(long);
    expect(m).to.include(`"${'x'.repeat(BOOL_ECHO_CHARS)}…"`);
    expect(m).to.include('(5000 characters)');
    expect(m.length).to.be.lessThan(120);
  });

  it('says so when the value is an environment reference that Node-RED left as it is (the variable is unset)', () => {
    expect(refusal('${READ_SOFTWARE}')).to.equal('must be true or false, not "${READ_SOFTWARE}" (the environment variable READ_SOFTWARE is not set)');
  });
});

describe('settings parsers: a yes/no setting that is neither is an error naming it', () => {
  type Case = { parser: string; parse: (raw: Record<string, unknown>) => unknown; base: Record<string, unknown>; field: string; label: RegExp; type: new (...a: never[]) => Error; fieldOf?: (e: Error) => unknown };
  const fieldOf = (e: Error) => (e as Error & { field?: unknown }).field;
  const sics = { host: 'sics.example.test' };
  const cases: Case[] = [
    { parser: 'device filters', parse: parseFilterSettings, base: {}, field: 'platformWindows', label: /^The platform switch "Windows" must be/, type: FilterSettingsError },
    { parser: 'device filters', parse: parseFilterSettings, base: {}, field: 'includePersonal', label: /^"Include personally owned computers" must be/, type: FilterSettingsError },
    { parser: 'device filters', parse: parseFilterSettings, base: {}, field: 'onlyWithPrimaryUser', label: /^"Only devices with a primary user" must be/, type: FilterSettingsError },
    { parser: 'device filters', parse: parseFilterSettings, base: {}, field: 'includeDeletedUser', label: /^"Include devices whose primary user was deleted" must be/, type: FilterSettingsError },
    { parser: 'device source', parse: parseDeviceSourceSettings, base: {}, field: 'readSoftware', label: /^"Discovered apps" must be/, type: DeviceSettingsError },
    { parser: 'device source', parse: parseDeviceSourceSettings, base: {}, field: 'collapseDuplicates', label: /^"Collapse re-enrolled duplicates" must be/, type: DeviceSettingsError },
    { parser: 'device source', parse: parseDeviceSourceSettings, base: {}, field: 'checkDeletedUsers', label: /^"Ask the directory which primary users were deleted" must be/, type: DeviceSettingsError },
    // A filter of the device source comes out as the source's own error, as the other filter errors do.
    { parser: 'device source', parse: parseDeviceSourceSettings, base: {}, field: 'platformLinux', label: /^The platform switch "Linux" must be/, type: DeviceSettingsError },
    { parser: 'compliance', parse: parseComplianceSettings, base: {}, field: 'countGracePeriod', label: /^"Devices in their grace period count" must be/, type: ComplianceSettingsError },
    { parser: 'compliance', parse: parseComplianceSettings, base: {}, field: 'includeErrors', label: /^"Settings Intune could not evaluate \(error\) count" must be/, type: ComplianceSettingsError },
    { parser: 'compliance', parse: parseComplianceSettings, base: {}, field: 'settingDetails', label: /^"Read current values and error descriptions" must be/, type: ComplianceSettingsError },
    { parser: 'compliance', parse: parseComplianceSettings, base: {}, field: 'includePersonal', label: /^"Include personally owned computers" must be/, type: ComplianceSettingsError },
    { parser: 'SICS connection', parse: (r) => parseSicsSettings(r), base: sics, field: 'useTls', label: /^useTls must be/, type: SicsError, fieldOf: (e) => (e as SicsError).params?.field },
    { parser: 'SICS connection', parse: (r) => parseSicsSettings(r), base: { ...sics, useTls: false }, field: 'allowUnencrypted', label: /^allowUnencrypted must be/, type: SicsError, fieldOf: (e) => (e as SicsError).params?.field },
    { parser: 'intune-action', parse: parseActionSettings, base: {}, field: 'allowWipe', label: /^"Allowed: wipe" must be/, type: Error },
    { parser: 'intune-action', parse: parseActionSettings, base: {}, field: 'allowNotify', label: /^"Allowed: notify" must be/, type: Error },
    { parser: 'intune-action', parse: parseActionSettings, base: {}, field: 'dryRun', label: /^"Dry run" must be/, type: Error },
    { parser: 'intune-action', parse: parseActionSettings, base: {}, field: 'followUp', label: /^"Follow up on the action state" must be/, type: Error },
    { parser: 'intune-action', parse: parseActionSettings, base: {}, field: 'perDevice', label: /^"Second output: one message per device" must be/, type: Error },
    { parser: 'intune-acmp', parse: parseAcmpSinkSettings, base: {}, field: 'reconcile', label: /^"Report devices that are gone from Intune" must be/, type: Error },
    { parser: 'intune-4me', parse: parseFourMeSinkSettings, base: {}, field: 'matchPeople', label: /^"Relate each CI to the person" must be/, type: SinkSettingsError },
    { parser: 'intune-4me', parse: parseFourMeSinkSettings, base: {}, field: 'incidents', label: /^"Raise incidents for compliance violations" must be/, type: SinkSettingsError },
    { parser: 'intune-4me incidents', parse: parseIncidentSettings, base: {}, field: 'incidents', label: /^"Raise incidents/, type: IncidentSettingsError },
    { parser: 'intune-4me mapping', parse: parseCiMappingSettings, base: {}, field: 'sendCustomFields', label: /^"Send the Intune data attributes as custom fields" must be/, type: MappingSettingsError },
    { parser: 'intune-4me software', parse: parseSoftwareSettings, base: {}, field: 'software', label: /^"Write the devices' discovered software" must be/, type: SoftwareSettingsError },
  ];

  for (const c of cases) {
    it(`${c.parser}: ${c.field} "yes" is refused with its label, the value and the field; "TRUE" and "0" are read`, () => {
      let err: Error | undefined;
      try {
        c.parse({ ...c.base, [c.field]: 'yes' });
      } catch (e) {
        err = e as Error;
      }
      expect(err, 'an error').to.be.instanceOf(c.type);
      expect(err!.message).to.match(c.label);
      expect(err!.message).to.include('must be true or false, not "yes"');
      expect((c.fieldOf ?? fieldOf)(err!)).to.equal(c.type === Error ? undefined : c.field);
      // The accepted spellings still parse (a platform switched off leaves the others on).
      expect(() => c.parse({ ...c.base, [c.field]: 'TRUE' })).to.not.throw();
      expect(() => c.parse({ ...c.base, [c.field]: '0' })).to.not.throw();
    });
  }

  it('the accepted spellings mean what they say, and empty means the default', () => {
    expect(parseDeviceSourceSettings({ readSoftware: 'TRUE' }).readSoftware).to.equal(true);
    expect(parseDeviceSourceSettings({ readSoftware: ' false ' }).readSoftware).to.equal(false);
    expect(parseDeviceSourceSettings({ readSoftware: '' }).readSoftware).to.equal(false);
    expect(parseDeviceSourceSettings({ collapseDuplicates: '' }).collapseDuplicates).to.equal(true);
    expect(parseFilterSettings({ platformOther: '1' }).platforms.other).to.equal(true);
    // Before, any text but "false" switched a filter on: "FALSE" and "no" included personal computers.
    expect(parseFilterSettings({ includePersonal: 'FALSE' }).includePersonal).to.equal(false);
    expect(parseActionSettings({ allowWipe: 'TRUE' }).policy.allowed).to.include('wipe');
    expect(parseActionSettings({ allowWipe: '' }).policy.allowed).to.not.include('wipe');
    expect(parseAcmpSinkSettings({ reconcile: 'FALSE' }).reconcile).to.equal(false);
    expect(parseAcmpSinkSettings({ reconcile: '' }).reconcile).to.equal(true);
    expect(parseSicsSettings({ ...{ host: 'h.example.test' }, useTls: 'False' }).tls).to.equal(false);
    expect(parseSoftwareSettings({ software: 'false' }).enabled).to.equal(false);
    expect(parseIncidentSettings({ incidents: '' }).enabled).to.equal(true);
  });
});
