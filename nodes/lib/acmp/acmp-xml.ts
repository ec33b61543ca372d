/**
 * A small, strict XML writer and reader for the messages this package
 * exchanges with ACMP over SICS. No dependency: the subset we need is
 * elements, attributes and text, and that subset is implemented with care:
 *
 * Writing
 * - Text is escaped (`&`, `<`, `>` and CR, so a CR survives a parser's
 *   line-end normalisation); attribute values also escape `"`, `'`, TAB and
 *   LF (which a parser would otherwise turn into spaces).
 * - XML 1.0 cannot carry some characters at all (NUL and most C0 controls,
 *   U+FFFE/U+FFFF, unpaired surrogates), not even as character references.
 *   `textElement()` therefore writes such a value Base64-encoded (UTF-8) and
 *   marks it `enc="base64"`; `textOf()` undoes it. Plain `el()` text and any
 *   attribute value with such a character is refused (XmlError).
 * - Element and attribute names are checked against a conservative pattern.
 *
 * Reading
 * - Elements, attributes, character data, CDATA, comments, processing
 *   instructions (ignored). A DOCTYPE is refused outright, so no entity other
 *   than the five predefined ones and numeric character references exists
 *   (no entity expansion, no external entities).
 * - Well-formedness is enforced: matching end tags, one root element, no
 *   duplicate attributes, only whitespace outside the root, valid
 *   characters, depth and size limits.
 * - Namespaces are not interpreted: `xmlns` is an ordinary attribute and a
 *   prefixed name keeps its prefix. Callers check the `xmlns` they expect.
 */

import { textPieces, utf8Pieces } from '../shared/pieces';

export class XmlError extends Error {
  override name = 'XmlError';
  constructor(
    message: string,
    /** Offset (UTF-16 code units) in the input where the problem was found, when reading. */
    readonly offset?: number,
  ) {
    super(message);
  }
}

// ------------------------------------------------------------------ characters

/** Characters XML 1.0 cannot carry in any form (checked on UTF-16 code units; surrogate pairs are checked separately). */
const FORBIDDEN_UNITS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
const ANY_SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` contains a character that XML 1.0 cannot represent. */
export function hasInvalidXmlChars(s: string): boolean {
  return FORBIDDEN_UNITS.test(s) || (ANY_SURROGATE.test(s) && LONE_SURROGATE.test(s));
}

function isXmlCodePoint(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
const ATTR_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/** Escapes character data. Throws XmlError for characters XML cannot carry. */
export function escapeText(s: string): string {
  if (hasInvalidXmlChars(s)) throw new XmlError('The text contains a character that XML cannot carry (a control character or an unpaired surrogate)');
  return s.replace(/[&<>\r]/g, (c) => TEXT_ESCAPES[c]);
}

/** Escapes an attribute value (for double or single quotes). Throws XmlError for characters XML cannot carry. */
export function escapeAttr(s: string): string {
  if (hasInvalidXmlChars(s)) throw new XmlError('The attribute value contains a character that XML cannot carry (a control character or an unpaired surrogate)');
  return s.replace(/[&<>"'\t\n\r]/g, (c) => ATTR_ESCAPES[c]);
}

const NAME = /^[A-Za-z_][A-Za-z0-9._-]*(?::[A-Za-z_][A-Za-z0-9._-]*)?$/;

export function isXmlName(s: string): boolean {
  return NAME.test(s);
}

// ------------------------------------------------------------------ writing

export type XmlAttrValue = string | number | boolean | null | undefined;
export type XmlAttrs = Record<string, XmlAttrValue>;
export type XmlChild = XmlNode | string | null | undefined | false;

export interface XmlNode {
  name: string;
  attrs?: XmlAttrs;
  children?: XmlChild[];
}

/** An element; null/undefined attributes and null/undefined/false children are left out. */
export function el(name: string, attrs?: XmlAttrs | null, ...children: XmlChild[]): XmlNode {
  return { name, attrs: attrs ?? undefined, children };
}

/**
 * An element holding one text value. A value XML cannot carry is written as
 * Base64 of its UTF-8 bytes with `enc="base64"` (and read back by `textOf`).
 * Lone surrogates cannot be encoded in UTF-8 either: they are refused.
 */
export function textElement(name: string, value: string, attrs?: XmlAttrs): XmlNode {
  if (!hasInvalidXmlChars(value)) return { name, attrs, children: [value] };
  if (LONE_SURROGATE.test(value)) throw new XmlError(`The value of <${name}> contains an unpaired surrogate and cannot be sent`);
  return { name, attrs: { ...(attrs ?? {}), enc: 'base64' }, children: [Buffer.from(value, 'utf8').toString('base64')] };
}

function attrString(v: Exclude<XmlAttrValue, null | undefined>): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new XmlError(`An attribute cannot hold the number ${v}`);
    return String(v);
  }
  return typeof v === 'boolean' ? (v ? 'true' : 'false') : v;
}

/*
 * Rendered text is handed on in pieces (shared/pieces.ts). An inventory
 * message is some 300 KB of XML: collected as one array of small strings,
 * the array alone outgrew V8's large-object size (128 KB) several times per
 * message, and the joined document was one more large string.
 * `renderXmlBytes` never makes the whole document a string.
 */
const present = (c: XmlChild): c is XmlNode | string => c !== null && c !== undefined && c !== false;

/** Where rendered text goes: pieces of the document (pieces.ts), or only a count of its bytes. */
interface TextSink {
  write(s: string): void;
}

function renderInto(node: XmlNode, out: TextSink, depth: number): void {
  if (depth > MAX_DEPTH_DEFAULT) throw new XmlError('The document is nested too deeply');
  if (!isXmlName(node.name)) throw new XmlError(`"${String(node.name).slice(0, 40)}" is not a valid element name`);
  // Tokens are written one by one, not concatenated first: the byte counter then allocates nothing for them.
  out.write('<');
  out.write(node.name);
  if (node.attrs) {
    for (const k of Object.keys(node.attrs)) {
      const v = node.attrs[k];
      if (v === null || v === undefined) continue;
      if (!isXmlName(k)) throw new XmlError(`"${k.slice(0, 40)}" is not a valid attribute name`);
      const value = escapeAttr(attrString(v));
      out.write(' ');
      out.write(k);
      out.write('="');
      out.write(value);
      out.write('"');
    }
  }
  const kids = node.children ?? [];
  if (!kids.some(present)) {
    out.write('/>');
    return;
  }
  out.write('>');
  for (const c of kids) {
    if (!present(c)) continue;
    if (typeof c === 'string') out.write(escapeText(c));
    else renderInto(c, out, depth + 1);
  }
  out.write('</');
  out.write(node.name);
  out.write('>');
}

/**
 * The UTF-8 length of `renderXml(root, opts)` without writing it: the ACMP
 * sink measures every device before cutting batches (acmp-batches.ts).
 * Every token is whole characters (escaping refuses lone surrogates), so
 * the tokens' lengths add up to the document's.
 */
export function xmlByteLength(root: XmlNode, opts: { declaration?: boolean } = {}): number {
  let n = 0;
  renderDocument(root, { write: (s) => (n += Buffer.byteLength(s, 'utf8')) }, opts.declaration !== false);
  return n;
}

/** Serialises a tree. With `declaration` (default) the document starts with the UTF-8 XML declaration. */
export function renderXml(root: XmlNode, opts: { declaration?: boolean } = {}): string {
  return textPieces((out) => renderDocument(root, out, opts.declaration !== false));
}

/** `renderXml` as UTF-8 bytes, written piece by piece: the document never exists as one string. */
export function renderXmlBytes(root: XmlNode, opts: { declaration?: boolean } = {}): Buffer {
  return utf8Pieces((out) => renderDocument(root, out, opts.declaration !== false));
}

function renderDocument(root: XmlNode, out: TextSink, declaration: boolean): void {
  if (declaration) out.write('<?xml version="1.0" encoding="UTF-8"?>');
  renderInto(root, out, 0);
}

// ------------------------------------------------------------------ reading

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own character data (text and CDATA), concatenated; child elements' text is not included. */
  text: string;
}

export interface ParseLimits {
  /** Longest accepted document, in UTF-16 code units. Default 64 Mi. */
  maxLength?: number;
  /** Deepest accepted nesting. Default 64. */
  maxDepth?: number;
}

const MAX_DEPTH_DEFAULT = 64;
const MAX_LENGTH_DEFAULT = 64 * 1024 * 1024;

const NAME_AT = /[A-Za-z_][A-Za-z0-9._-]*(?::[A-Za-z_][A-Za-z0-9._-]*)?/y;
const WS_AT = /[ \t\r\n]*/y;
const REF = /&(#x[0-9A-Fa-f]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);|&/g;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeRefs(raw: string, at: number): string {
  if (raw.indexOf('&') === -1) return raw;
  return raw.replace(REF, (m, body: string | undefined) => {
    if (body === undefined) throw new XmlError('A bare "&" must be written as &amp;', at);
    if (body[0] === '#') {
      const cp = body[1] === 'x' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (!Number.isFinite(cp) || !isXmlCodePoint(cp)) throw new XmlError(`The character reference ${m} names a character XML does not allow`, at);
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[body];
    if (v === undefined) throw new XmlError(`Unknown entity ${m} (only &lt; &gt; &amp; &quot; &apos; and character references are accepted)`, at);
    return v;
  });
}

function checkChars(raw: string, at: number): void {
  if (hasInvalidXmlChars(raw)) throw new XmlError('The document contains a character XML does not allow', at);
}

/** Parses a document into its root element. Throws XmlError with the offset of the problem. */
export function parseXml(input: string, limits: ParseLimits = {}): XmlElement {
  const maxLength = limits.maxLength ?? MAX_LENGTH_DEFAULT;
  const maxDepth = limits.maxDepth ?? MAX_DEPTH_DEFAULT;
  if (typeof input !== 'string') throw new XmlError('The document is not text');
  if (input.length > maxLength) throw new XmlError(`The document is too large (${input.length} characters, at most ${maxLength})`);
  const s = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const n = s.length;
  const stack: Array<{ el: XmlElement; texts: string[] }> = [];
  let root: XmlElement | undefined;
  let pos = 0;

  const fail = (msg: string, at = pos): never => {
    throw new XmlError(msg, at);
  };
  const skipWs = () => {
    WS_AT.lastIndex = pos;
    WS_AT.exec(s);
    pos = WS_AT.lastIndex;
  };
  const readName = (what: string): string => {
    NAME_AT.lastIndex = pos;
    const m = NAME_AT.exec(s);
    if (!m) fail(`Expected ${what} name`);
    pos = NAME_AT.lastIndex;
    return m![0];
  };
  const addText = (raw: string, at: number, cdata: boolean) => {
    if (!raw) return;
    checkChars(raw, at);
    const top = stack[stack.length - 1];
    if (!top) {
      if (cdata || /[^ \t\r\n]/.test(raw)) fail('Only whitespace may stand outside the root element', at);
      return;
    }
    const text = cdata ? raw.replace(/\r\n?/g, '\n') : decodeRefs(raw.replace(/\r\n?/g, '\n'), at);
    top.texts.push(text);
  };

  while (pos < n) {
    const lt = s.indexOf('<', pos);
    if (lt === -1) {
      addText(s.slice(pos), pos, false);
      pos = n;
      break;
    }
    if (lt > pos) {
      const raw = s.slice(pos, lt);
      if (raw.indexOf(']]>') !== -1) fail('"]]>" must not appear in text', pos);
      addText(raw, pos, false);
    }
    pos = lt;
    const c1 = s.charCodeAt(pos + 1);
    if (c1 === 0x3f /* ? */) {
      const end = s.indexOf('?>', pos + 2);
      if (end === -1) fail('Unterminated processing instruction');
      const target = /^<\?([A-Za-z_][A-Za-z0-9._-]*)/.exec(s.slice(pos, Math.min(end, pos + 64)));
      if (!target) fail('Malformed processing instruction');
      if (target![1].toLowerCase() === 'xml' && pos !== 0) fail('The XML declaration must come first');
      checkChars(s.slice(pos, end), pos);
      pos = end + 2;
      continue;
    }
    if (c1 === 0x21 /* ! */) {
      if (s.startsWith('<!--', pos)) {
        const end = s.indexOf('-->', pos + 4);
        if (end === -1) fail('Unterminated comment');
        checkChars(s.slice(pos, end), pos);
        pos = end + 3;
        continue;
      }
      if (s.startsWith('<![CDATA[', pos)) {
        const end = s.indexOf(']]>', pos + 9);
        if (end === -1) fail('Unterminated CDATA section');
        if (!stack.length) fail('CDATA may only stand inside an element');
        addText(s.slice(pos + 9, end), pos, true);
        pos = end + 3;
        continue;
      }
      if (s.startsWith('<!DOCTYPE', pos)) fail('Document type declarations (DOCTYPE) are not accepted');
      fail('Malformed markup after "<!"');
    }
    if (c1 === 0x2f /* / */) {
      pos += 2;
      const name = readName('end tag');
      skipWs();
      if (s[pos] !== '>') fail(`Expected ">" to close </${name}`);
      pos += 1;
      const top = stack.pop();
      if (!top) fail(`End tag </${name}> without a start tag`, lt);
      if (top!.el.name !== name) fail(`End tag </${name}> does not match <${top!.el.name}>`, lt);
      top!.el.text = top!.texts.join('');
      continue;
    }
    // start tag
    pos += 1;
    const name = readName('element');
    const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
    let selfClosing = false;
    for (;;) {
      const before = pos;
      skipWs();
      const ch = s[pos];
      if (ch === '>') {
        pos += 1;
        break;
      }
      if (ch === '/' && s[pos + 1] === '>') {
        pos += 2;
        selfClosing = true;
        break;
      }
      if (pos === before) fail(`Expected whitespace, ">" or "/>" in <${name}>`);
      const attr = readName('attribute');
      skipWs();
      if (s[pos] !== '=') fail(`Expected "=" after attribute ${attr}`);
      pos += 1;
      skipWs();
      const q = s[pos];
      if (q !== '"' && q !== "'") fail(`The value of attribute ${attr} must be quoted`);
      const end = s.indexOf(q, pos + 1);
      if (end === -1) fail(`Unterminated value of attribute ${attr}`);
      const raw = s.slice(pos + 1, end);
      if (raw.indexOf('<') !== -1) fail(`"<" is not allowed in the value of attribute ${attr}`, pos);
      checkChars(raw, pos);
      if (Object.prototype.hasOwnProperty.call(attrs, attr)) fail(`Attribute ${attr} appears twice in <${name}>`, pos);
      attrs[attr] = decodeRefs(raw.replace(/\r\n|[\t\n\r]/g, ' '), pos);
      pos = end + 1;
    }
    const element: XmlElement = { name, attrs: { ...attrs }, children: [], text: '' };
    const parent = stack[stack.length - 1];
    if (parent) parent.el.children.push(element);
    else if (root) fail('A document has exactly one root element', lt);
    else root = element;
    if (!selfClosing) {
      if (stack.length + 1 > maxDepth) fail(`The document is nested deeper than ${maxDepth} levels`, lt);
      stack.push({ el: element, texts: [] });
    }
  }
  if (stack.length) fail(`The document ends inside <${stack[stack.length - 1].el.name}>`, n);
  if (!root) fail('The document has no root element', 0);
  return root!;
}

// ------------------------------------------------------------------ reading helpers

/** The first child element called `name`, or undefined. */
export function child(e: XmlElement, name: string): XmlElement | undefined {
  return e.children.find((c) => c.name === name);
}

/** All child elements called `name`. */
export function childrenNamed(e: XmlElement, name: string): XmlElement[] {
  return e.children.filter((c) => c.name === name);
}

/** The text of an element written by `textElement` (Base64 undone when marked `enc="base64"`). */
export function textOf(e: XmlElement): string {
  const enc = e.attrs.enc;
  if (enc === undefined) return e.text;
  if (enc !== 'base64') throw new XmlError(`<${e.name}> has an unknown encoding "${enc.slice(0, 20)}"`);
  const b64 = e.text.replace(/[ \t\r\n]/g, '');
  if (!isBase64(b64)) throw new XmlError(`<${e.name}> is marked as Base64 but is not`);
  return Buffer.from(b64, 'base64').toString('utf8');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isBase64(s: string): boolean {
  return BASE64.test(s);
}

/** A document as SICS carries it: Base64 of its UTF-8 bytes. */
export function toBase64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}

/** Input bytes per Base64 step of `writeBase64`: a multiple of 3 (no padding inside), 64 KB of text per step, below V8's large-object size. */
const BASE64_STEP = 3 * 16 * 1024;

/** Length of the Base64 text of `n` bytes. */
export function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/**
 * Writes the Base64 of `bytes` into `dst` at `offset` (as `toBase64` would
 * write it) and answers the offset after it; no string of the whole text.
 */
export function writeBase64(bytes: Uint8Array, dst: Buffer, offset: number): number {
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < src.length; i += BASE64_STEP) offset += dst.write(src.subarray(i, i + BASE64_STEP).toString('base64'), offset, 'latin1');
  return offset;
}

/** The document inside a SICS message body. Throws XmlError when the body is not Base64 or not UTF-8. */
export function fromBase64(body: string): string {
  const b64 = typeof body === 'string' ? body.replace(/[\r\n]/g, '') : '';
  if (!b64 || !isBase64(b64)) throw new XmlError('The message body is not Base64');
  const bytes = Buffer.from(b64, 'base64');
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  try {
    return text.decode(bytes);
  } catch {
    throw new XmlError('The message body is not UTF-8 text');
  }
}
