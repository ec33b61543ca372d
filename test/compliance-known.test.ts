import { expect } from 'chai';
import { KnownViolations, reportFingerprint } from '../nodes/lib/compliance/compliance-known';
import type { ReportPolicy } from '../nodes/lib/compliance/compliance-report';

describe('compliance-known (violations already passed on with their policy states)', () => {
  const policy = (settings: ReportPolicy['settings']): ReportPolicy => ({ policyId: 'p1', policyName: 'Win', settings });
  const a = { setting: 'Windows10CompliancePolicy.bitLockerEnabled', name: 'BitLocker', state: 'nonCompliant', errorCode: 0 };
  const b = { setting: 'Windows10CompliancePolicy.osMinimumVersion', name: 'Minimum OS', state: 'error', errorCode: -2016281112 };

  it('fingerprints the failing settings whatever their order, and changes with a setting, a state or an error code', () => {
    const fp = reportFingerprint(policy([a, b]));
    expect(reportFingerprint(policy([b, a]))).to.equal(fp);
    expect(reportFingerprint(policy([a]))).to.not.equal(fp);
    expect(reportFingerprint(policy([a, { ...b, state: 'nonCompliant' }]))).to.not.equal(fp);
    expect(reportFingerprint(policy([a, { ...b, errorCode: 1 }]))).to.not.equal(fp);
    expect(fp).to.match(/^[A-Za-z0-9_-]{12}$/);
  });

  it('packs and reads back key, fingerprint and platform; a changed fingerprint is not known', () => {
    const k = new KnownViolations();
    k.add('dev-1:p1', 'AAAAAAAAAAAA', 'windows10AndLater');
    k.add('dev-2:default', 'BBBBBBBBBBBB', 'iOS');
    const back = KnownViolations.parse(k.pack());
    expect(back.size).to.equal(2);
    expect(back.platform('dev-1:p1', 'AAAAAAAAAAAA')).to.equal('windows10AndLater');
    expect(back.platform('dev-2:default', 'BBBBBBBBBBBB')).to.equal('iOS');
    expect(back.platform('dev-1:p1', 'CCCCCCCCCCCC')).to.equal(undefined);
    expect(back.platform('dev-3:p1', 'AAAAAAAAAAAA')).to.equal(undefined);
    expect(KnownViolations.parse(undefined).size).to.equal(0);
    expect(KnownViolations.parse(42).size).to.equal(0);
  });
});
