/**
 * The `Retry-After` header (RFC 9110 §10.2.3), read the same way for every
 * service that sends it (Graph, 4me): delay-seconds or an HTTP date.
 */

/** `Retry-After` as milliseconds (never negative). Undefined when absent or unreadable. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = String(value).trim();
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  if (!/^[A-Za-z]{3}/.test(v)) return undefined; // an HTTP date starts with the day name
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
