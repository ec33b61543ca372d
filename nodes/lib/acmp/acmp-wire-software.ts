/**
 * The `<Software>` part of a `<Device>` in OUR wire format
 * (docs/acmp-wire-format.md, section 4.1): the apps Intune discovered on the
 * device (contracts.ts `Device.software`, `InstalledApp`).
 *
 *   <Software count="2">                       the device's complete current list
 *     <App sizeBytes="52428800">
 *       <Key>…</Key><Name>…</Name><Version>…</Version><Publisher>…</Publisher><Platform>…</Platform>
 *     </App>
 *   </Software>
 *
 * The three states of the contract travel as three different documents:
 * - `software` undefined (not read this run): no `<Software>` element. ACMP
 *   keeps the list it holds for the device;
 * - `[]` (read, Intune reports none): `<Software count="0"/>`. ACMP ends with
 *   no software for the device;
 * - a list: every app, and the list REPLACES what ACMP held (an app missing
 *   from it was removed from the device).
 * Free text (key, name, version, publisher, platform) is element content,
 * escaped, Base64 with enc="base64" where XML cannot carry it; the size, a
 * number, is an attribute. `count` lets a reader tell a cut message from a
 * short list. A null field is an absent element, as everywhere in the format.
 *
 * Failures are reported through the caller's `fail` (acmp-wire.ts passes its
 * WireError), so this module needs nothing from acmp-wire and the import stays
 * one-way.
 */
import type { InstalledApp } from '../contracts';
import { child, childrenNamed, el, textElement, textOf, type XmlElement, type XmlNode } from './acmp-xml';

/** Most apps one device may carry on the wire (a guard against runaway input, as MAX_ITEMS_PER_MESSAGE is for devices). */
export const MAX_APPS_PER_DEVICE = 10_000;

export type Fail = (message: string, field: string) => never;

const opt = (name: string, v: string | null | undefined): XmlNode | null => (v === null || v === undefined ? null : textElement(name, v));

/** The `<Software>` element of a device, or null when the software was not read (the element is left out). */
export function softwareToXml(apps: readonly InstalledApp[] | undefined): XmlNode | null {
  if (apps === undefined) return null;
  return el(
    'Software',
    { count: apps.length },
    ...apps.map((a) =>
      el(
        'App',
        { sizeBytes: typeof a.sizeBytes === 'number' && Number.isFinite(a.sizeBytes) && a.sizeBytes >= 0 ? Math.floor(a.sizeBytes) : null },
        textElement('Key', a.key),
        textElement('Name', a.name),
        opt('Version', a.version),
        opt('Publisher', a.publisher),
        opt('Platform', a.platform),
      ),
    ),
  );
}

function text(e: XmlElement, name: string, path: string, fail: Fail): string | null {
  const c = child(e, name);
  if (!c) return null;
  try {
    return textOf(c);
  } catch (err) {
    return fail(`${path}/${name}: ${(err as Error).message}`, `${path}/${name}`);
  }
}

/**
 * Reads the `<Software>` of a `<Device>` element: undefined when the device
 * carries none (ACMP keeps what it has), else the list as sent. Throws through
 * `fail` for a list that cannot be read.
 */
export function softwareFromXml(device: XmlElement, path: string, fail: Fail): InstalledApp[] | undefined {
  const sw = child(device, 'Software');
  if (!sw) return undefined;
  const p = `${path}/Software`;
  const apps = childrenNamed(sw, 'App');
  if (apps.length > MAX_APPS_PER_DEVICE) fail(`${p} carries ${apps.length} apps, at most ${MAX_APPS_PER_DEVICE} are accepted`, p);
  const count = sw.attrs.count;
  if (count !== undefined && (!/^\d+$/.test(count) || Number(count) !== apps.length)) {
    fail(`${p}/@count says ${count.slice(0, 20)} apps, the element holds ${apps.length} (a cut or altered message)`, `${p}/@count`);
  }
  return apps.map((a, i) => {
    const ap = `${p}/App[${i + 1}]`;
    const key = text(a, 'Key', ap, fail);
    const name = text(a, 'Name', ap, fail);
    if (key === null || !key.trim()) fail(`${ap} has no <Key>`, `${ap}/Key`);
    if (name === null) fail(`${ap} has no <Name>`, `${ap}/Name`);
    const size = a.attrs.sizeBytes;
    if (size !== undefined && !/^\d+$/.test(size)) fail(`${ap}/@sizeBytes must be a whole number, not "${size.slice(0, 20)}"`, `${ap}/@sizeBytes`);
    return {
      key: key!,
      name: name!,
      version: text(a, 'Version', ap, fail),
      publisher: text(a, 'Publisher', ap, fail),
      platform: text(a, 'Platform', ap, fail),
      sizeBytes: size === undefined ? null : Number(size),
    };
  });
}
