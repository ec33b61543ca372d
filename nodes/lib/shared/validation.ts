/** Checks of configuration values, shared by the runtime and its tests. */
import { echo } from './echo';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A DNS name with at least two labels, e.g. contoso.onmicrosoft.com.
const DOMAIN = /^(?=.{4,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$/i;

export function isGuid(v: unknown): v is string {
  return typeof v === 'string' && GUID.test(v.trim());
}

/** A tenant is named by its directory id or one of its verified domains; `common` & co. cannot do app-only auth. */
export function tenantProblem(v: unknown): string | null {
  if (typeof v !== 'string' || !v.trim()) return 'is required';
  const t = v.trim();
  if (['common', 'organizations', 'consumers'].includes(t.toLowerCase())) {
    return `"${t}" cannot be used for app-only access: give the directory (tenant) id or a verified domain`;
  }
  if (isGuid(t) || DOMAIN.test(t)) return null;
  return 'must be a directory (tenant) id (GUID) or a verified domain such as contoso.onmicrosoft.com';
}

export function clientIdProblem(v: unknown): string | null {
  if (typeof v !== 'string' || !v.trim()) return 'is required';
  return isGuid(v) ? null : 'must be the application (client) id, a GUID';
}

/** A positive integer setting, with a default for empty values. */
export function positiveInt(v: unknown, fallback: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${what} must be a whole number from 1 to ${max}`);
  return n;
}

/** How much of a rejected value a message quotes: enough to recognise a typo, not a pasted document. */
export const BOOL_ECHO_CHARS = 40;

/**
 * A yes/no setting, strictly. Node properties arrive as the editor's
 * checkboxes save them (true/false), as hand-written flows spell them, and
 * as text from the flow's environment variables (`${READ_SOFTWARE}`), so
 * more than the two booleans has to be read; but a value that is neither
 * true nor false is an error naming the setting, never a silent "off".
 *
 * Accepted: true/false, the texts "true"/"false" in any case and with
 * surrounding spaces, 1/0 and "1"/"0". Empty (undefined, null, "" or only
 * spaces): `fallback`, the setting's default.
 *
 * Not accepted: yes/no, on/off. Node-RED itself knows only "true": a flow
 * variable of type boolean is `value === "true"` and a typed input of type
 * bool is /^true$/i, so there "yes" means false. Reading "yes" as true here
 * would make one word mean on in one place and off in the other; the two
 * words everyone agrees on (and the checkboxes and the bool variable type
 * write) are the only ones documented.
 *
 * `fail` turns the reason ("must be true or false, not "yes"") into the
 * caller's own error, which names the setting, so each parser keeps its
 * error type and the field its status and the editor point at.
 */
export function strictBool(v: unknown, fallback: boolean, fail: (reason: string) => Error): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'boolean') return v;
  if (v === 1) return true;
  if (v === 0) return false;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === '') return fallback;
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  }
  throw fail(boolReason(v));
}

/** Why `v` is no boolean, in the words of the other checks here ("must be …"). */
function boolReason(v: unknown): string {
  const reason = `must be true or false, not ${echo(v, BOOL_ECHO_CHARS)}`;
  // Node-RED leaves `${NAME}` as it is when no flow, group or process environment defines NAME.
  const unset = typeof v === 'string' ? /^\$\{(\w+)\}$/.exec(v.trim()) : null;
  return unset ? `${reason} (the environment variable ${unset[1]} is not set)` : reason;
}
