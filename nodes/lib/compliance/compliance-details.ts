/**
 * Per-device policy detail: `GET /deviceManagement/managedDevices/{id}/
 * deviceCompliancePolicyStates` with their `settingStates`, asked only for
 * devices whose violations need what the report lacks: a setting's current
 * value and error description, or the platform of a policy the catalogue
 * could not name (the built-in default policy). Sent in `$batch`es of 20
 * under the compliance throttling bucket (these are device-configuration
 * types: half the devices bucket's limits).
 *
 * A device Graph no longer knows (404) is reported as gone; other failures
 * of single items (throttled to the end, outages) are reported per device,
 * so the caller can fall back to the report's rows for those.
 */
import type { GraphClient, StatsSink } from '../graph/graph-client';
import { assertSelect } from '../graph/graph-schema';

/** One setting state as the connector reads it. */
export interface SettingDetail {
  setting: string;
  settingName: string;
  state: string;
  currentValue: string | null;
  errorCode: number | null;
  errorDescription: string | null;
}

export interface PolicyStateDetail {
  id: string;
  displayName: string;
  platformType: string | null;
  /** complianceStatus of the policy on the device. */
  state: string;
  settings: SettingDetail[];
}

export type DeviceDetail =
  | { status: 'ok'; policies: Map<string, PolicyStateDetail> }
  | { status: 'notFound' }
  | { status: 'failed'; httpStatus: number; error: string };

export const POLICY_STATE_SELECT: readonly string[] = ['id', 'displayName', 'platformType', 'state', 'settingStates'];
assertSelect('v1.0', 'deviceCompliancePolicyState', POLICY_STATE_SELECT);

export function policyStatesUrl(deviceId: string): string {
  return `/deviceManagement/managedDevices/${encodeURIComponent(deviceId)}/deviceCompliancePolicyStates?$select=${POLICY_STATE_SELECT.join(',')}`;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function nullable(v: unknown): string | null {
  return typeof v === 'string' ? v : v === null || v === undefined ? null : String(v);
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/** A `deviceCompliancePolicyState` collection body → policy id → detail. */
export function parsePolicyStates(body: unknown): Map<string, PolicyStateDetail> {
  const out = new Map<string, PolicyStateDetail>();
  const list = (body as { value?: unknown })?.value;
  if (!Array.isArray(list)) return out;
  for (const raw of list as Record<string, unknown>[]) {
    const id = str(raw?.id);
    if (!id || out.has(id)) continue;
    const settings: SettingDetail[] = Array.isArray(raw.settingStates)
      ? (raw.settingStates as Record<string, unknown>[]).filter((x) => x && typeof x === 'object').map((x) => ({
          setting: str(x.setting),
          settingName: str(x.settingName) || str(x.setting),
          state: str(x.state) || 'unknown',
          currentValue: nullable(x.currentValue),
          errorCode: num(x.errorCode),
          errorDescription: nullable(x.errorDescription),
        }))
      : [];
    out.set(id, { id, displayName: str(raw.displayName), platformType: nullable(raw.platformType), state: str(raw.state) || 'unknown', settings });
  }
  return out;
}

export interface DetailOptions {
  graph: Pick<GraphClient, 'batch'>;
  signal?: AbortSignal;
  stats?: StatsSink;
}

/** Policy states of these devices, in $batches (compliance bucket). */
export async function readPolicyStates(deviceIds: readonly string[], o: DetailOptions): Promise<Map<string, DeviceDetail>> {
  const out = new Map<string, DeviceDetail>();
  const ids = [...new Set(deviceIds)];
  if (!ids.length) return out;
  const answers = await o.graph.batch(
    ids.map((id, k) => ({ id: String(k), method: 'GET' as const, url: policyStatesUrl(id) })),
    { version: 'v1.0', bucket: 'compliance', signal: o.signal, stats: o.stats },
  );
  ids.forEach((id, k) => {
    const a = answers.get(String(k));
    if (!a) out.set(id, { status: 'failed', httpStatus: 0, error: 'no answer' });
    else if (a.status >= 200 && a.status < 300) out.set(id, { status: 'ok', policies: parsePolicyStates(a.body) });
    else if (a.status === 404) out.set(id, { status: 'notFound' });
    else {
      const msg = (a.body as { error?: { message?: string; code?: string } })?.error;
      out.set(id, { status: 'failed', httpStatus: a.status, error: [msg?.code, msg?.message].filter(Boolean).join(': ') || `HTTP ${a.status}` });
    }
  });
  return out;
}

/** The failing settings of a policy state ("nonCompliant", and "error" when errors count). */
export function failingSettings(p: PolicyStateDetail, includeErrors: boolean): SettingDetail[] {
  return p.settings.filter((s) => s.state === 'nonCompliant' || (includeErrors && s.state === 'error'));
}
