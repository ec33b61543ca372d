/**
 * What the ACMP sink remembers of a device it published, to tell a changed
 * device from an unchanged one without keeping the device.
 *
 * Two parts, because the device's software is read only in some runs
 * (contracts.ts `Device.software`: undefined = not read this run):
 * - the device part: SHA-256 of the device WITHOUT its software (canonical
 *   JSON), the on-demand definition and a schema tag;
 * - the software part: SHA-256 of the software list, present only once a
 *   list was sent (an empty list has one too: "none" is a state ACMP holds).
 * Stored as `device` or `device:software` (base64url has no ':').
 *
 * A run without software compares the device part only and, when it sends
 * the device (no `<Software>` element, so ACMP keeps its list), keeps the
 * software part it had: such a run neither resends every device nor forgets
 * what ACMP holds. A device of a state written before software existed has
 * the same device part as then, so the upgrade resends nothing by itself.
 */
import { createHash } from 'node:crypto';
import type { Device, InstalledApp } from '../contracts';
import { flat } from '../run/packed-state';

/**
 * The schema tag hashed into the device part. Pinned, not WIRE_VERSION:
 * format revisions that only add optional elements (1.1: `<Software>`) must
 * not make every device look changed; raise it only when every device has to
 * be sent again.
 */
const DEVICE_SCHEMA = '1.0';

export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

function digest(text: string): string {
  // A flat copy: the 22-character slice would keep the whole 43-character digest alive, per device in the state.
  return flat(createHash('sha256').update(text).digest('base64url').slice(0, 22));
}

/** The device part: everything but the software. */
export function fingerprint(d: Device, onDemandDefinition: string): string {
  return digest(`${DEVICE_SCHEMA}\u0000${onDemandDefinition}\u0000${canonical({ ...d, software: undefined })}`);
}

/** The software part. Independent of the order of the list (the contract sorts it; a source that did not must not cause resends). */
export function softwareFingerprint(apps: readonly InstalledApp[]): string {
  return digest(`software\u0000${apps.map(canonical).sort().join('\n')}`);
}

export interface DeviceFingerprint {
  device: string;
  /** Undefined when the software was not read in this run. */
  software?: string;
}

export function fingerprintOf(d: Device, onDemandDefinition: string): DeviceFingerprint {
  return { device: fingerprint(d, onDemandDefinition), ...(d.software !== undefined ? { software: softwareFingerprint(d.software) } : {}) };
}

/** Why a device is sent: not at all, never sent before, the device changed, or only its software changed. */
export type Change = 'none' | 'new' | 'device' | 'software';

function parts(stored: string): [string, string | undefined] {
  const i = stored.indexOf(':');
  return i === -1 ? [stored, undefined] : [stored.slice(0, i), stored.slice(i + 1)];
}

export function changeOf(stored: string | undefined, fp: DeviceFingerprint): Change {
  if (stored === undefined) return 'new';
  const [device, software] = parts(stored);
  if (device !== fp.device) return 'device';
  if (fp.software !== undefined && fp.software !== software) return 'software';
  return 'none';
}

/** What to remember once the server confirmed the device: a list not sent this run stays what ACMP holds. */
export function remembered(stored: string | undefined, fp: DeviceFingerprint): string {
  const software = fp.software ?? (stored === undefined ? undefined : parts(stored)[1]);
  return flat(software === undefined ? fp.device : `${fp.device}:${software}`);
}
