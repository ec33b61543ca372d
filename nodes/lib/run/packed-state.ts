/**
 * The sinks' per-device state (fingerprints, CI ids) stored compactly.
 *
 * In memory each sink keeps one flat string per device in a Map
 * (ci-ledger.ts for 4me, acmp-sync.ts for ACMP). A persistent context store
 * serialises the state as JSON: Node-RED's `localfilesystem` store writes
 * the whole context of a node in one string, indented by 4 spaces, 30 s
 * after it changed. Written as objects, 100,000 devices made a string of
 * some 50 MB (two bytes per character once one device name is not
 * Latin-1), built in one go next to the live state. Packed, every device is
 * one line of ASCII (`id|field|field`, fields percent-encoded when they hold
 * anything else), about a quarter of that, one byte per character.
 *
 * `storeAs` attaches the packed form as a non-enumerable `toJSON`, which
 * JSON.stringify (and so every serialising store) honours, while the memory
 * store keeps the object itself. Readers accept the earlier forms too.
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

/**
 * `key|value` lines of a Map of strings, joined from the strings as they
 * are (no string per line): the form of a large per-device map, where the
 * serialising store copies the text once more anyway.
 */
export function packPairs(map: ReadonlyMap<string, string>): string {
  return packLines(map, '|', enc);
}

/** Lines joined per chunk: a chunk of some 500 lines stays well below V8's large-object size (128 KB). */
const LINES_PER_CHUNK = 500;

/**
 * The lines `enc(key) + sep + value(v)` of a map, joined by '\n'. Joined in
 * chunks, then the chunks: one array of every part of 100,000 lines was a
 * 2-3 MB array next to the 6-12 MB text, written each time a persistent
 * store serialises the state; the chunks are small young objects.
 */
export function packLines(map: ReadonlyMap<string, string>, sep: string, value: (v: string) => string): string {
  const chunks: string[] = [];
  let parts: string[] = [];
  for (const [k, v] of map) {
    if (parts.length) parts.push('\n');
    parts.push(enc(k), sep, value(v));
    if (parts.length >= LINES_PER_CHUNK * 4) {
      chunks.push(parts.join(''));
      parts = [];
    }
  }
  if (parts.length) chunks.push(parts.join(''));
  return chunks.join('\n');
}

/**
 * Calls `row` for every line of packed text (fields decoded). Throws on text
 * that is not packed state. The fields are flat copies: the callers keep
 * them for the node's lifetime, and a piece split from the stored text
 * would keep the whole text alive behind it.
 */
export function forEachPacked(text: string, row: (key: string, fields: string[]) => void): void {
  if (!text) return;
  for (const line of text.split('\n')) {
    const parts = line.split('|').map((f) => flat(dec(f)));
    const key = parts.shift();
    if (!key) throw new Error('packed state: a line without a key');
    row(key, parts);
  }
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
