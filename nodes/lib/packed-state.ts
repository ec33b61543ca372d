/**
 * The sinks' per-device state (fingerprints, CI ids) stored compactly.
 *
 * In memory the sinks keep a plain object per device, which is what their
 * code reads and writes. A persistent context store serialises that object
 * as JSON: Node-RED's `localfilesystem` store writes the whole context of a
 * node in one string, indented by 4 spaces, every 30 s while it changes. For
 * 100,000 devices that was a string of some 50 MB (two bytes per character
 * once one device name is not Latin-1), built in one go next to the live
 * state — the peak of a sync's memory. Packed, every device is one line of
 * ASCII (`id|field|field`, fields percent-encoded when they hold anything
 * else), less than half the size and one byte per character.
 *
 * `storeAs` attaches the packed form as a non-enumerable `toJSON`, which
 * JSON.stringify (and so every serialising store) honours, while the memory
 * store keeps the object itself. Readers accept both forms, so state saved
 * before packing still loads.
 */

/** Characters that must be encoded in a field: separators, '%', and anything outside printable ASCII. */
const NEEDS_ENCODING = /[^\x20-\x7e]|[|\n%]/;

export function enc(v: string | undefined): string {
  if (v === undefined) return '';
  return NEEDS_ENCODING.test(v) ? encodeURIComponent(v) : v;
}

export function dec(v: string): string {
  return v.includes('%') ? decodeURIComponent(v) : v;
}

/** One line per key: `key|field|field…` (an undefined field is empty). */
export function packRecord<T>(rec: Record<string, T> | ReadonlyMap<string, T>, fields: (v: T) => Array<string | undefined>): string {
  const lines: string[] = [];
  const entries = rec instanceof Map ? rec.entries() : Object.entries(rec as Record<string, T>);
  for (const [k, v] of entries) lines.push([enc(k), ...fields(v).map(enc)].join('|'));
  return lines.join('\n');
}

/**
 * `key|value` lines of a Map of strings, joined from the strings as they
 * are (no string per line): the form of a large per-device map, where the
 * serialising store copies the text once more anyway.
 */
export function packPairs(map: ReadonlyMap<string, string>): string {
  const parts: string[] = new Array(map.size * 4);
  let i = 0;
  for (const [k, v] of map) {
    if (i) parts[i++] = '\n';
    parts[i++] = enc(k);
    parts[i++] = '|';
    parts[i++] = enc(v);
  }
  parts.length = i;
  return parts.join('');
}

/** Calls `row` for every line of packed text (fields decoded). Throws on text that is not packed state. */
export function forEachPacked(text: string, row: (key: string, fields: string[]) => void): void {
  if (!text) return;
  for (const line of text.split('\n')) {
    const parts = line.split('|').map(dec);
    const key = parts.shift();
    if (!key) throw new Error('packed state: a line without a key');
    row(key, parts);
  }
}

/** The inverse of packRecord (empty fields come back as ''). Throws on text that is not packed state. */
export function unpackRecord<T>(text: string, build: (fields: string[]) => T): Record<string, T> {
  const out: Record<string, T> = {};
  forEachPacked(text, (key, fields) => {
    out[key] = build(fields);
  });
  return out;
}

/** Makes JSON.stringify write `packed()` in place of `obj` (non-enumerable: the object's own keys are untouched). */
export function storeAs<T extends object>(obj: T, packed: (obj: T) => unknown): T {
  Object.defineProperty(obj, 'toJSON', { value: () => packed(obj), enumerable: false, configurable: true, writable: true });
  return obj;
}

/**
 * A sequential one-byte copy of an ASCII string. A string cut from a longer
 * one (slice) keeps the whole original alive, and a concatenation keeps its
 * parts: for a value held per device for the node's lifetime, that doubles
 * what it costs.
 */
export function flat(s: string): string {
  // Callers pass ASCII; text beyond Latin-1 would not survive the round trip, so it is left as it is.
  return /[^\x00-\xff]/.test(s) ? s : Buffer.from(s, 'latin1').toString('latin1');
}
