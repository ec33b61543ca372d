/**
 * How input appears inside an error message or an admin answer. Errors go
 * to Catch nodes, the debug sidebar, logs and the editor; an input of
 * megabytes (a 2 MB `msg.mode`) must not come back whole. One rule for all:
 * JSON-quoted, cut to a bounded length with the full length named.
 */
export const ECHO_MAX_CHARS = 80;

export function echo(value: unknown, max = ECHO_MAX_CHARS): string {
  // Cut strings before quoting them, so a huge input is never copied whole.
  const cut = typeof value === 'string' && value.length > max;
  let text: string;
  try {
    text = JSON.stringify(cut ? (value as string).slice(0, max) : value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value); // cycles, BigInt
  }
  if (cut) return `${text.slice(0, -1)}…" (${(value as string).length} characters)`;
  if (text.length > max) return `${text.slice(0, max)}… (${text.length} characters)`;
  return text;
}
