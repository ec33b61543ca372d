/**
 * `Buffer.from(JSON.stringify(value), 'utf8')` without the JSON text as one
 * string: the value is walked as JSON.stringify walks it (toJSON with its
 * key, boxed primitives unwrapped, undefined/functions/symbols left out of
 * objects and written as null in lists, TypeError on a cycle or a BigInt)
 * and written in pieces (pieces.ts). Primitives, and the rows of long
 * lists, are written by JSON.stringify itself, so the text is the same and
 * the cost stays near JSON.stringify's.
 *
 * Used for request bodies that can be large: a 4me upload of 100 devices is
 * some 200 KB of JSON, which axios would otherwise make a string and then a
 * Buffer (both large objects, see pieces.ts).
 */
import { PieceWriter, utf8Pieces } from './pieces';

/** A list of at least this many items is taken for a list of rows (see writeValue). */
const ROW_LIST = 16;

export function jsonBytes(value: unknown): Buffer {
  return utf8Pieces((w) => {
    // As JSON.stringify: a top-level value that is left out gives no text; the callers send objects.
    if (!writeValue('', value, w, [])) throw new TypeError('The value has no JSON form');
  });
}

/** Writes the JSON of the value `v` read under `key`; false when JSON leaves it out. */
function writeValue(key: string, v: unknown, w: PieceWriter, stack: object[]): boolean {
  if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') v = toJSON.call(v, key);
  }
  if (typeof v === 'object' && v !== null) {
    if (v instanceof Number || v instanceof String || v instanceof Boolean) v = v.valueOf();
  }
  if (typeof v !== 'object' || v === null) {
    const text = JSON.stringify(v);
    if (text === undefined) return false;
    w.write(text);
    return true;
  }
  if (stack.includes(v)) throw new TypeError('Converting circular structure to JSON');
  stack.push(v);
  if (Array.isArray(v)) {
    w.write('[');
    for (let i = 0; i < v.length; i++) {
      if (i) w.write(',');
      const item: unknown = v[i];
      // The items of a long list are rows (a CI, a device: a few KB each): written in one go, at
      // JSON.stringify's speed. A short list (categories, products) may hold the large lists: walked.
      if (v.length >= ROW_LIST && isRecord(item)) w.write(JSON.stringify(item));
      else if (!writeValue(String(i), item, w, stack)) w.write('null');
    }
    w.write(']');
  } else {
    w.write('{');
    let first = true;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const item = o[k];
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      const lead = (first ? '' : ',') + JSON.stringify(k) + ':';
      if (!mayVanish(item)) {
        w.write(lead);
        writeValue(k, item, w, stack);
        first = false;
        continue;
      }
      // A toJSON may answer undefined: then JSON leaves the key out, so the value is written aside first.
      const parts: string[] = [];
      const aside = new PieceWriter((p) => parts.push(p));
      if (!writeValue(k, item, aside, stack)) continue;
      aside.end();
      w.write(lead);
      for (const p of parts) w.write(p);
      first = false;
    }
    w.write('}');
  }
  stack.pop();
  return true;
}

/** Whether writing `v` may turn out to write nothing (a toJSON may answer undefined). */
function mayVanish(v: unknown): boolean {
  return (typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') || typeof v === 'bigint';
}

/** An object JSON.stringify writes as it is: no list, no toJSON, no boxed primitive. */
function isRecord(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { toJSON?: unknown }).toJSON !== 'function' && !(v instanceof Number || v instanceof String || v instanceof Boolean);
}
