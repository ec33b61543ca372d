/** Checks of configuration values, shared by the runtime and its tests. */

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
