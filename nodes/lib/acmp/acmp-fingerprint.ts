/**
 * What the ACMP sink remembers of a device it published: a fingerprint of
 * the device as sent, to tell a changed device from an unchanged one.
 */
import { createHash } from 'node:crypto';
import type { Device } from '../contracts';
import { WIRE_VERSION } from './acmp-wire';
import { flat } from '../run/packed-state';

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

export function fingerprint(d: Device, onDemandDefinition: string): string {
  // A flat copy: the 22-character slice would keep the whole 43-character digest alive, per device in the state.
  return flat(createHash('sha256').update(`${WIRE_VERSION}\u0000${onDemandDefinition}\u0000${canonical(d)}`).digest('base64url').slice(0, 22));
}
