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

/**
 * JSON with every object's keys sorted (UTF-16 order) and undefined members
 * left out; what is hashed, so its text must never change. Written by
 * concatenation with the keys sorted in place: the sink fingerprints every
 * device of every page, and the arrays of a map/filter/sort/join version
 * were a fifth of everything the process allocated in a full sync.
 */
export function canonical(v: unknown): string {
  return canonicalExcept(v, undefined);
}

/** `canonical(v)`, with the top-level key `skip` left out (as if undefined). */
function canonicalExcept(v: unknown, skip: string | undefined): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let out = '[';
    // A hole stays empty, as Array#map and join left it.
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + (i in v ? canonical(v[i]) : '');
    return out + ']';
  }
  const o = v as Record<string, unknown>;
  const keys = sortInPlace(Object.keys(o));
  let out = '{';
  let first = true;
  for (const k of keys) {
    if (k === skip) continue;
    const item = o[k];
    if (item === undefined) continue;
    out += (first ? '' : ',') + quotedKey(k) + ':' + canonical(item);
    first = false;
  }
  return out + '}';
}

/** Insertion sort by UTF-16 code units (Array#sort's default order): a device has some 30 keys, and no temporary array is made. */
function sortInPlace(keys: string[]): string[] {
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > k) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** JSON.stringify of a key; the keys of devices are few and repeat on every device. */
const quoted = new Map<string, string>();
function quotedKey(k: string): string {
  let q = quoted.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quoted.size < 1000) quoted.set(k, q);
  }
  return q;
}

function digest(text: string): string {
  // A flat copy: the 22-character slice would keep the whole 43-character digest alive, per device in the state.
  return flat(createHash('sha256').update(text).digest('base64url').slice(0, 22));
}

/** The device part: everything but the software. */
export function fingerprint(d: Device, onDemandDefinition: string): string {
  return digest(`${DEVICE_SCHEMA}\u0000${onDemandDefinition}\u0000${canonicalExcept(d, 'software')}`);
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
