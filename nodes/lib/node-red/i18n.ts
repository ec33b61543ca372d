/**
 * Messages in the runtime's language (logs, errors, warnings): the node
 * type's catalog through RED._, with the English text in the code as the
 * fallback. (Status texts go to the editor in its own language instead:
 * status-text.ts.)
 */
type Params = Record<string, unknown>;

/**
 * `t(key, english, params)`: the runtime's translation of `<ns>.<key>`, or
 * the given English text when the catalog has none (a missing catalog, the
 * test helper). `__name__` placeholders are filled in either way. The
 * English texts equal locales/en-US (checked by the locale test).
 */
export function translator(RED: { _: (id: string, params?: never) => string }, ns: string): (key: string, english: string, params?: Params) => string {
  return (key, english, params = {}) => {
    const id = `${ns}.${key}`;
    let s: string | undefined;
    try {
      s = RED._(id, params as never);
    } catch {
      s = undefined;
    }
    if (typeof s !== 'string' || !s || s === id) s = english.replace(/__(\w+)__/g, (_m, k: string) => (params[k] === undefined || params[k] === null ? '' : String(params[k])));
    return s;
  };
}
