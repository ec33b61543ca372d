/**
 * The package's message catalogs and help files as shipped (dist/nodes/locales/<lang>/<node>.*),
 * the oracle the browser tests hold the editor's texts against.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../../sim/node-red-runner';

export type Lang = 'en-US' | 'de';

function localeFile(type: string, lang: Lang, ext: 'json' | 'html'): string {
  return path.join(repoRoot, 'dist', 'nodes', 'locales', lang, `${type}.${ext}`);
}

const cache = new Map<string, Record<string, unknown>>();

export function catalog(type: string, lang: Lang): Record<string, unknown> {
  const key = `${type}/${lang}`;
  if (!cache.has(key)) {
    const file = localeFile(type, lang, 'json');
    if (!fs.existsSync(file)) throw new Error(`no ${lang} catalog for ${type}: ${file} is missing`);
    cache.set(key, JSON.parse(fs.readFileSync(file, 'utf8')));
  }
  return cache.get(key)!;
}

/** A catalog string by its full key ("intune-config.label.name"), with __param__ filled in; undefined when absent. */
export function lookup(type: string, lang: Lang, key: string, params: Record<string, string | number> = {}): string | undefined {
  let v: unknown = catalog(type, lang);
  for (const part of key.split('.')) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (typeof v !== 'string') return undefined;
  return v.replace(/__([A-Za-z0-9_]+)__/g, (m, p: string) => (p in params ? String(params[p]) : m));
}

/** Like lookup, but a missing key is a test failure. */
export function text(type: string, lang: Lang, key: string, params: Record<string, string | number> = {}): string {
  const v = lookup(type, lang, key, params);
  if (v === undefined) throw new Error(`the ${lang} catalog of ${type} has no "${key}"`);
  return v;
}

/** Plain text of an HTML fragment, whitespace collapsed. */
export function plain(html: string): string {
  return html
    .replace(/<\/?(?:i|b|em|strong|code|a|span|small|sup|sub|kbd|var|abbr)\b[^>]*>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

export function squash(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** What a help file says first (its first paragraph) and its section headings, as plain text. */
export function helpOutline(type: string, lang: Lang): { intro: string; headings: string[] } {
  const file = localeFile(type, lang, 'html');
  if (!fs.existsSync(file)) throw new Error(`no ${lang} help for ${type}: ${file} is missing`);
  const html = fs.readFileSync(file, 'utf8');
  const p = /<p[^>]*>([\s\S]*?)<\/p>/i.exec(html);
  const headings = [...html.matchAll(/<h3[^>]*>([\s\S]*?)<\/h3>/gi)].map((m) => plain(m[1]));
  return { intro: p ? plain(p[1]) : '', headings };
}

/** Expected date text of the editor's fmtDate (toLocaleDateString, long month). */
export function longDate(d: Date, lang: Lang): string {
  return d.toLocaleDateString(lang, { year: 'numeric', month: 'long', day: 'numeric' });
}

export function number(n: number, lang: Lang): string {
  return n.toLocaleString(lang);
}
