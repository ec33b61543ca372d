/**
 * How a simulated ACMP server keeps the software of a mobile device
 * (docs/acmp-wire-format.md 4.1, `<Software>`; our own format, nothing
 * public says how ACMP itself stores an Intune device's apps):
 * - a device that arrives WITH a software list: that list replaces what the
 *   server held (an app missing from it is gone; an empty list leaves none);
 * - a device that arrives WITHOUT one (the connector did not read software
 *   this run): the list the server held stays.
 */
import type { Device, InstalledApp } from '../nodes/lib/contracts';

/** The device to store: the arriving one, with the held software when it brought none. */
export function withKeptSoftware(arriving: Device, held: Device | undefined): Device {
  if (arriving.software !== undefined || held?.software === undefined) return arriving;
  return { ...arriving, software: held.software };
}

/** The software a stored device holds: undefined = never received any. A copy, so tests cannot change the store. */
export function softwareOf(device: Device | undefined): InstalledApp[] | undefined {
  return device?.software?.map((a) => ({ ...a }));
}
