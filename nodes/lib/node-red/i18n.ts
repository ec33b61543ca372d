/**
 * The one translation helper of our nodes, runtime side: a node type's
 * catalog (locales/<lang>/<type>.json) through RED._, with the English text
 * in the code as the fallback (a missing catalog, the test helper).
 *
 * - `translator(RED, type)` gives `t(key, english, params)` for messages in
 *   the runtime's language (logs, errors, warnings).
 * - `runtimeTranslator(RED)` is the lookup both build on; status texts use
 *   it for their runtime-language copy (status-text.ts), while the editor
 *   shows them in its own language.
 */

/** What translating needs of RED (RED itself fits; tests pass a stand-in). */
export interface Catalog {
  _(key: string, params?: Record<string, string | number>): string;
}

type Params = Record<string, unknown>;

/** The runtime's translation of a full key, or undefined when its catalog has none. */
export type RuntimeTranslate = (key: string, params: Params) => string | undefined;

/** `t(key, english, params)`: see translator(). */
export type Translate = (key: string, english: string, params?: Params) => string;

/** The runtime's translations through RED._ (undefined when the catalog has no such key, as in the test helper). */
export function runtimeTranslator(RED: Catalog): RuntimeTranslate {
  return (key, params) => {
    let s: unknown;
    try {
      s = RED._(key, params as never);
    } catch {
      return undefined;
    }
    return typeof s === 'string' && s && s !== key ? s : undefined;
  };
}

/**
 * `t(key, english, params)`: the runtime's translation of `<ns>.<key>`, or
 * the given English text when the catalog has none (a missing catalog, the
 * test helper). `__name__` placeholders are filled in either way. The
 * English texts equal locales/en-US (checked by the locale tests).
 */
export function translator(RED: Catalog, ns: string): Translate {
  const tr = runtimeTranslator(RED);
  return (key, english, params = {}) =>
    tr(`${ns}.${key}`, params) ?? english.replace(/__(\w+)__/g, (_m, k: string) => (params[k] === undefined || params[k] === null ? '' : String(params[k])));
}
