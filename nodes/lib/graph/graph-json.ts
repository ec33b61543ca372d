/**
 * Reads a Graph answer from its bytes without making the whole answer one
 * string. A page of 1,000 managed devices is 1.5-2 MB of JSON: as text it
 * is a string above V8's large-object size (128 KB), which outlives the
 * parse (the parse itself allocates enough to run a scavenge, and a large
 * object that survives one goes to the old generation) and waits there for
 * a full collection; a sync of 100,000 devices made 200 of them.
 *
 * An answer of the OData collection form `{ …, "value": [ … ], … }` is cut
 * at its top-level `value` list: every item is parsed from its own bytes,
 * the rest of the object (with an empty list in place) on its own, and the
 * items are put back in place. The result is what `JSON.parse` of the
 * decoded text gives, key order included; anything else (a small answer,
 * another shape, two `value` keys, text the cutter does not understand)
 * is parsed as a whole. Invalid JSON throws a SyntaxError either way.
 */

/** Below this, the answer is parsed as one string: no large object, and the cutting would cost more than it saves. */
export const SPLIT_MIN_BYTES = 64 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const VALUE_KEY = Buffer.from('"value"', 'latin1');

/** What `Response.text()` gives: UTF-8 with a leading BOM dropped, malformed bytes as U+FFFD. */
const decoder = new TextDecoder('utf-8');

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** The index after the string that starts (with its quote) at `i`; -1 when it does not end. */
function endOfString(buf: Buffer, i: number): number {
  let at = i + 1;
  for (;;) {
    const q = buf.indexOf(QUOTE, at);
    if (q === -1) return -1;
    let slashes = 0;
    for (let k = q - 1; k > i && buf[k] === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    at = q + 1;
  }
}

interface Cut {
  /** The list's `[` and the index after its `]`. */
  open: number;
  end: number;
  /** Start and end (exclusive) of every item. */
  items: number[];
}

/**
 * Finds the top-level `"value": [ … ]` of an object and its items' bounds.
 * Undefined when the text is not such an object as far as the cutter can
 * tell (then it is parsed whole, which also reports any error).
 */
function cutValueList(buf: Buffer, start: number): Cut | undefined {
  let i = start;
  while (i < buf.length && isSpace(buf[i])) i++;
  if (buf[i] !== OPEN_OBJ) return undefined;
  let depth = 0;
  let cut: Cut | undefined;
  for (; i < buf.length; i++) {
    const b = buf[i];
    if (b === QUOTE) {
      const end = endOfString(buf, i);
      if (end === -1) return undefined;
      if (depth === 1) {
        let j = end;
        while (j < buf.length && isSpace(buf[j])) j++;
        const isKey = buf[j] === COLON;
        // A key with an escape may spell "value" too: which list JSON.parse keeps is then left to it.
        if (isKey && hasByte(buf, BACKSLASH, i, end)) return undefined;
        if (isKey && end - i === VALUE_KEY.length && buf.compare(VALUE_KEY, 0, VALUE_KEY.length, i, end) === 0) {
          // A second top-level "value": JSON.parse keeps the last one; leave that to it.
          if (cut) return undefined;
          j++;
          while (j < buf.length && isSpace(buf[j])) j++;
          if (buf[j] !== OPEN_ARR) return undefined;
          cut = itemsOf(buf, j);
          if (!cut) return undefined;
          i = cut.end - 1;
          continue;
        }
      }
      i = end - 1;
    } else if (b === OPEN_OBJ || b === OPEN_ARR) depth++;
    else if (b === CLOSE_OBJ || b === CLOSE_ARR) depth--;
  }
  return cut;
}

/** The items of the list whose `[` is at `open`; undefined when it does not close. */
function itemsOf(buf: Buffer, open: number): Cut | undefined {
  const items: number[] = [];
  let depth = 0;
  let from = open + 1;
  for (let i = open + 1; i < buf.length; i++) {
    const b = buf[i];
    if (b === QUOTE) {
      const end = endOfString(buf, i);
      if (end === -1) return undefined;
      i = end - 1;
    } else if (b === OPEN_OBJ || b === OPEN_ARR) depth++;
    else if ((b === CLOSE_OBJ || b === CLOSE_ARR) && depth > 0) depth--;
    else if (depth === 0 && (b === COMMA || b === CLOSE_ARR)) {
      items.push(from, i);
      if (b === CLOSE_ARR) return { open, end: i + 1, items };
      from = i + 1;
    }
  }
  return undefined;
}

function hasByte(buf: Buffer, byte: number, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === byte) return true;
  return false;
}

function isBlank(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(buf[i])) return false;
  return true;
}

/** `JSON.parse` of the UTF-8 text in `bytes` (see above). Undefined for an empty answer, as for empty text. */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buf.length) return undefined;
  const start = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  const cut = buf.length >= SPLIT_MIN_BYTES ? cutValueList(buf, start) : undefined;
  if (!cut) {
    const text = decoder.decode(buf);
    return text ? JSON.parse(text) : undefined;
  }
  const { items: bounds } = cut;
  const items: unknown[] = [];
  // `[]` and `[ ]` hold no item; anything else must be items separated by commas (an empty one is invalid, as in JSON.parse).
  if (!(bounds.length === 2 && isBlank(buf, bounds[0], bounds[1]))) {
    for (let k = 0; k < bounds.length; k += 2) items.push(JSON.parse(buf.toString('utf8', bounds[k], bounds[k + 1])));
  }
  const rest = JSON.parse(buf.toString('utf8', start, cut.open) + '[]' + buf.toString('utf8', cut.end)) as Record<string, unknown>;
  rest.value = items;
  return rest;
}
