/**
 * Cuts the changed devices of a page into inventory messages: at most
 * `batchSize` devices, and at most `maxBytes` of XML per message.
 *
 * The byte limit is our own choice: neither sics.md nor any public Aagon
 * material states a size limit for a SICS message (docs/acmp-wire-format.md,
 * "Message size"). With software a device grows from some 1.5 KB by
 * 200-300 bytes per app, so a count alone no longer bounds a message: 200
 * Windows devices with 200 discovered apps each would be ~10 MB. 4 MiB
 * leaves every message of a device-only run as it was (1,000 devices of
 * ~2 KB per message still fit) and bounds what software adds.
 * One device larger than the limit goes alone in its message (a device is
 * never split; whether the bus takes it is the bus's call, and a refusal is
 * reported for that device only).
 */
import type { Device } from '../contracts';
import { deviceToXml } from './acmp-wire';
import { xmlByteLength } from './acmp-xml';

/** Default most bytes of XML one inventory message may carry (our choice; see above). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Room for the envelope around the devices (ICQL, command, header attributes, DeviceInventory): generous, it is under 1 KB. */
export const ENVELOPE_BYTES = 2048;

/** The bytes a device adds to a message (UTF-8 of its `<Device>` element). */
export function deviceBytes(d: Device): number {
  return xmlByteLength(deviceToXml(d), { declaration: false });
}

export function inventoryBatches(devices: Device[], batchSize: number, maxBytes = DEFAULT_MAX_MESSAGE_BYTES): Device[][] {
  const out: Device[][] = [];
  let batch: Device[] = [];
  let bytes = ENVELOPE_BYTES;
  for (const d of devices) {
    const size = deviceBytes(d);
    if (batch.length && (batch.length >= batchSize || bytes + size > maxBytes)) {
      out.push(batch);
      batch = [];
      bytes = ENVELOPE_BYTES;
    }
    batch.push(d);
    bytes += size;
  }
  if (batch.length) out.push(batch);
  return out;
}
