/**
 * Status texts that the Node-RED editor shows in *its* language, not the
 * runtime's.
 *
 * The editor translates a status text itself when it starts with a letter:
 * `node._(text, { defaultValue: text })` in the `status/#` handler of
 * red.js (Node-RED 4.1 and 5), where `node._` looks the text up as a key of
 * the node type's catalog. So a node sends the *key* and every editor shows
 * it in its own language:
 *
 *   "intune-devices.status.idle"                           → "idle" / "bereit"
 *
 * A key alone cannot carry parameters (counts, times), and i18next's own
 * nesting (`$t(key, {...})`) only works after a leading text that stays
 * visible. For those texts the node sends the key followed by its
 * parameters as JSON, and the editor side of every node of this package
 * (nodes/editor-status-i18n.js, inlined into each node's HTML by the build)
 * wraps `node._` to read that form:
 *
 *   intune-devices.status.done {"mode":{"$t":"intune-devices.status.mode.full"},"emitted":57,
 *                               "skipped":3,"time":"12:34","$+":[{"$t":"intune-devices.status.notPersistent"}]}
 *
 * A parameter is a value or a nested message `{"$t": key, ...params}`
 * (translated too); `"$+"` lists parts appended after the text (nested
 * messages or literal text). Literal text (an error message) stays in the
 * runtime's language, as logs and errors do.
 *
 * The status object also carries `runtimeText`: the same text in the
 * runtime's language. Node-RED passes it on to Status nodes (the editor gets
 * only fill, shape and text), so a flow can use either.
 */
import type { NodeStatus } from 'node-red';
import { runtimeTranslator, type Catalog, type RuntimeTranslate } from './i18n';

export type StatusParam = string | number | boolean | null | undefined | StatusMessage;

/** One translatable text: its full catalog key, the English text (used when the runtime has no catalog) and its parameters. */
export interface StatusMessage {
  key: string;
  en: string;
  params?: Record<string, StatusParam>;
}

/** A part of a status text: a message, or literal text (shown as it is). */
export type StatusPart = string | StatusMessage;

/** What our nodes pass to node.status(). */
export type IntuneNodeStatus = NodeStatus & { runtimeText?: string };

const KEY = /^[a-z][a-z0-9-]*(\.[A-Za-z0-9_-]+)+$/;

function isMessage(v: unknown): v is StatusMessage {
  return !!v && typeof v === 'object' && typeof (v as StatusMessage).key === 'string';
}

function interpolate(template: string, params: Record<string, string>): string {
  return template.replace(/__(\w+)__/g, (m, k: string) => (k in params ? params[k] : m));
}

/** A status text: messages and literal text, in order. Immutable. */
export class StatusText {
  readonly parts: readonly StatusPart[];

  private constructor(parts: StatusPart[]) {
    this.parts = parts.filter((p) => p !== '');
  }

  static of(...parts: Array<StatusText | StatusPart>): StatusText {
    const out: StatusPart[] = [];
    for (const p of parts) {
      if (p instanceof StatusText) out.push(...p.parts);
      else out.push(p);
    }
    return new StatusText(out);
  }

  /** This text followed by more parts. */
  plus(...more: Array<StatusText | StatusPart>): StatusText {
    return StatusText.of(this, ...more);
  }

  /**
   * The form for node.status(): the key alone, or the key and its
   * parameters as JSON (see the module header). A text that starts with
   * literal text is sent in the runtime's language (`render`).
   */
  encode(tr?: RuntimeTranslate): string {
    const [first, ...rest] = this.parts;
    if (first === undefined) return '';
    if (!isMessage(first) || !KEY.test(first.key)) return this.render(tr);
    const obj: Record<string, unknown> = encodeParams(first.params);
    if (rest.length) obj['$+'] = rest.map((p) => (isMessage(p) ? encodeMessage(p) : p));
    return Object.keys(obj).length ? `${first.key} ${JSON.stringify(obj)}` : first.key;
  }

  /** The text in the runtime's language (English where the runtime has no catalog). */
  render(tr?: RuntimeTranslate): string {
    return this.parts.map((p) => renderPart(p, tr)).join('');
  }
}

function encodeParams(params: Record<string, StatusParam> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined) continue;
    out[k] = isMessage(v) ? encodeMessage(v) : v;
  }
  return out;
}

function encodeMessage(m: StatusMessage): Record<string, unknown> {
  return { $t: m.key, ...encodeParams(m.params) };
}

function renderPart(p: StatusPart, tr?: RuntimeTranslate): string {
  if (!isMessage(p)) return p;
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.params ?? {})) params[k] = v === null || v === undefined ? '' : isMessage(v) ? renderPart(v, tr) : String(v);
  return tr?.(p.key, params) ?? interpolate(p.en, params);
}

/**
 * The status texts of one node type: `msg('status.idle', 'idle')` is the
 * message `<type>.status.idle` with its English text; `status(fill, shape,
 * ...parts)` is what node.status() gets.
 */
export class StatusTexts {
  readonly tr: RuntimeTranslate;

  constructor(
    RED: Catalog,
    readonly ns: string,
  ) {
    this.tr = runtimeTranslator(RED);
  }

  msg(key: string, en: string, params?: Record<string, StatusParam>): StatusMessage {
    return params ? { key: `${this.ns}.${key}`, en, params } : { key: `${this.ns}.${key}`, en };
  }

  text(...parts: Array<StatusText | StatusPart>): StatusText {
    return StatusText.of(...parts);
  }

  status(fill: NodeStatus['fill'], shape: NodeStatus['shape'], ...parts: Array<StatusText | StatusPart>): IntuneNodeStatus {
    return toStatus(fill, shape, StatusText.of(...parts), this.tr);
  }

  render(text: StatusText | StatusPart): string {
    return StatusText.of(text).render(this.tr);
  }
}

export function toStatus(fill: NodeStatus['fill'], shape: NodeStatus['shape'], text: StatusText, tr?: RuntimeTranslate): IntuneNodeStatus {
  return { fill, shape, text: text.encode(tr), runtimeText: text.render(tr) };
}

/** A literal text cut to `max` characters (with an ellipsis), for messages in the status line. */
export function shorten(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/**
 * Reads an encoded status text back into what the editor shows, given a
 * translation of full keys (for tests and documentation; the editor's own
 * reader is nodes/editor-status-i18n.js). Texts that are not in the
 * encoded form come back as they are.
 */
export function decodeStatusText(text: string, translate: (key: string, params: Record<string, string>) => string): string {
  const m = /^([a-z][a-z0-9-]*(?:\.[A-Za-z0-9_-]+)+)(?: (\{[\s\S]*\}))?$/.exec(text);
  if (!m) return text;
  let obj: Record<string, unknown> = {};
  if (m[2]) {
    try {
      obj = JSON.parse(m[2]) as Record<string, unknown>;
    } catch {
      return text;
    }
  }
  const value = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    if (typeof v === 'object' && typeof (v as { $t?: unknown }).$t === 'string') return message((v as { $t: string }).$t, v as Record<string, unknown>);
    return String(v);
  };
  const message = (key: string, o: Record<string, unknown>): string => {
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(o)) if (k !== '$t' && k !== '$+') params[k] = value(v);
    let s = translate(key, params);
    for (const p of Array.isArray(o['$+']) ? (o['$+'] as unknown[]) : []) s += value(p);
    return s;
  };
  return message(m[1], obj);
}
