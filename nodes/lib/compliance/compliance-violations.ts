/**
 * Report rows (+ device verdict, + per-device policy state when read) →
 * `ComplianceViolation` (contracts.ts), or the reason it is not passed on.
 * Pure functions: the scan (compliance-scan.ts) does the reading.
 *
 * A violation counts under the first reason that applies, in this order:
 *
 *   policy          its policy is not watched (not listed, or its platform
 *                   is switched off)
 *   notFound        Intune no longer has the device
 *   duplicate … stale   the device filters of intune-devices, in their order
 *                   (device-filters.ts): the device would not be imported
 *   gracePeriod     the device is in its grace period, and such devices do
 *                   not count
 *   errors          only settings Intune could not evaluate (state "error")
 *                   fail, and errors do not count
 *   resolved        the device's current policy state is no longer failing
 *                   (the report lags behind the devices a little)
 *
 * A policy whose platform only the device's policy states tell (one the
 * catalogue could not name, such as the built-in default policy) is
 * checked against the watched platforms after the device filters.
 *
 * Settings: with setting details on and the device's policy state read,
 * its failing settings (with the current value and error description);
 * otherwise the report's rows (current value and error description null).
 */
import type { ComplianceViolation, ViolationSetting } from '../contracts';
import { SKIP_REASONS, type SkipReason } from '../devices/device-filters';
import type { PolicyCatalogue, PolicySelection } from './compliance-policies';
import type { ReportDevice, ReportPolicy } from './compliance-report';
import { failingSettings, type PolicyStateDetail } from './compliance-details';
import type { DeviceVerdict } from './compliance-devices';

export type ComplianceSkipReason = 'policy' | 'notFound' | SkipReason | 'gracePeriod' | 'errors' | 'resolved';

/** Every reason, in the order counters are shown (and checked). */
export const COMPLIANCE_SKIP_REASONS: readonly ComplianceSkipReason[] = ['policy', 'notFound', ...SKIP_REASONS, 'gracePeriod', 'errors', 'resolved'];

export function emptyComplianceSkips(): Record<ComplianceSkipReason, number> {
  return Object.fromEntries(COMPLIANCE_SKIP_REASONS.map((r) => [r, 0])) as Record<ComplianceSkipReason, number>;
}

export interface ViolationOptions {
  selection: PolicySelection;
  countGracePeriod: boolean;
  includeErrors: boolean;
  /** Settings from the device's policy state (current value, error description); false: always the report's rows. */
  settingDetails: boolean;
}

/** One device × policy of the report that the policy selection did not rule out yet. */
export interface Candidate {
  key: string;
  device: ReportDevice;
  policy: ReportPolicy;
  /** Platform from the catalogue; null: only the device's policy state can tell. */
  platform: string | null;
}

export function violationKey(deviceId: string, policyId: string): string {
  return `${deviceId}:${policyId}`;
}

/** First check, before anything is read about the device: is the policy watched? */
export function checkPolicy(device: ReportDevice, policy: ReportPolicy, catalogue: PolicyCatalogue, s: PolicySelection): Candidate | 'policy' {
  const known = catalogue.get(policy.policyId);
  if (!s.listed(policy.policyId, policy.policyName || known?.name)) return 'policy';
  const platform = known?.platform ?? null;
  if (platform !== null && !s.familyWatched(platform)) return 'policy';
  return { key: violationKey(device.deviceId, policy.policyId), device, policy, platform };
}

/** Second check: the device (null verdict: gone from Intune). */
export function checkDevice(verdict: DeviceVerdict | null, o: ViolationOptions): ComplianceSkipReason | null {
  if (!verdict) return 'notFound';
  if (verdict.reason) return verdict.reason;
  if (verdict.inGrace && !o.countGracePeriod) return 'gracePeriod';
  return null;
}

/** Does a candidate need the device's policy states? (`details`: setting details are wanted for every violation) */
export function needsDetail(c: Candidate, details: boolean): boolean {
  return details || c.platform === null;
}

/**
 * The violation of a candidate whose device passed, from its policy state
 * (`state`: read and found; null: read, and the device has no such policy
 * any more; undefined: not read, or reading failed).
 */
export function buildViolation(
  c: Candidate,
  verdict: DeviceVerdict,
  state: PolicyStateDetail | null | undefined,
  catalogue: PolicyCatalogue,
  o: ViolationOptions,
): ComplianceViolation | ComplianceSkipReason {
  const platform = c.platform ?? state?.platformType ?? null;
  if (c.platform === null && !o.selection.familyWatched(platform)) return 'policy';
  let settings: ViolationSetting[];
  if (state === null) return 'resolved';
  if (state) {
    if (state.state !== 'nonCompliant' && state.state !== 'error') return 'resolved';
    const failing = failingSettings(state, o.includeErrors);
    if (!o.settingDetails) {
      if (state.state === 'error' && !o.includeErrors) return 'errors';
      settings = fromRows(c.policy, o);
    } else if (failing.length) {
      settings = failing.map((s) => ({ name: s.settingName || s.setting, state: s.state, currentValue: s.currentValue, errorCode: s.errorCode, errorDescription: s.errorDescription }));
    } else if (failingSettings(state, true).length || (state.state === 'error' && !o.includeErrors)) {
      return 'errors';
    } else settings = fromRows(c.policy, o);
  } else settings = fromRows(c.policy, o);
  if (!settings.length) return 'errors';
  return {
    key: c.key,
    device: verdict.device,
    policy: { id: c.policy.policyId, name: c.policy.policyName || catalogue.get(c.policy.policyId)?.name || state?.displayName || '', platform: platform ?? 'unknown' },
    settings,
    detectedAt: verdict.lastContactAt,
    deepLink: verdict.deepLink,
  };
}

function fromRows(p: ReportPolicy, o: ViolationOptions): ViolationSetting[] {
  return p.settings
    .filter((s) => s.state === 'nonCompliant' || (o.includeErrors && s.state === 'error'))
    .map((s) => ({ name: s.name || s.setting, state: s.state, currentValue: null, errorCode: s.errorCode, errorDescription: null }));
}
