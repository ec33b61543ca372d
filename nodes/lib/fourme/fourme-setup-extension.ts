/**
 * The "Intune data attributes" UI extension: the HTML whose fields are the
 * custom fields the 4me sink writes on every CI, and how an extension that
 * already exists in 4me is updated without losing what an administrator
 * added by hand.
 *
 * 4me takes a UI extension's fields from the ids of its input elements
 * (developer.4me.com/v1/ui_extensions: `<input id="move_from" …>`), and a
 * product's UI extension is added to the CIs of that product
 * (docs/fourme-setup.md). Our fields live between two HTML comments; the set-up
 * rewrites only that block and keeps everything outside it as it is.
 *
 * Pure: no I/O.
 */
import { ATTRIBUTE_KEYS, type AttributeKey } from './fourme-ci-mapping';

export const EXTENSION_NAME = 'Intune data attributes';
/** Source + source ID that find our extension again (source at most 30 characters). */
export const EXTENSION_SOURCE = 'Intune connector';
export const EXTENSION_SOURCE_ID = 'intune-data-attributes';
/** The category whose UI extensions a product offers for its CIs (UiExtensionCategory.product). */
export const EXTENSION_CATEGORY = 'product';

export const BLOCK_BEGIN = '<!-- intune-connector:begin (managed by the Intune connector set-up; edit outside this block) -->';
export const BLOCK_END = '<!-- intune-connector:end -->';

export type LabelLanguage = 'en' | 'de';

/**
 * The labels 4me users see above each field: 4me content, written into the
 * extension in the language chosen in the set-up dialog. Same wording as the
 * sink's attribute names (locales/<lang>/intune-4me.json, "attribute").
 */
const LABELS: Record<LabelLanguage, Record<AttributeKey, string> & { title: string }> = {
  en: {
    title: 'Intune data attributes',
    os: 'Operating system',
    osVersion: 'Operating system version',
    osSku: 'Operating system SKU',
    storageTotal: 'Total storage (GB)',
    storageFree: 'Free storage (GB)',
    enrolled: 'Enrolled date',
    lastContact: 'Last contact',
    aadRegistered: 'Azure AD registered',
    joinType: 'Azure AD join type',
    ownership: 'Ownership',
    compliance: 'Compliance',
    encrypted: 'Encrypted',
    jailbroken: 'Jailbroken',
  },
  de: {
    title: 'Intune-Datenattribute',
    os: 'Betriebssystem',
    osVersion: 'Betriebssystemversion',
    osSku: 'Betriebssystem-SKU',
    storageTotal: 'Gesamtspeicher (GB)',
    storageFree: 'Freier Speicher (GB)',
    enrolled: 'Registrierungsdatum',
    lastContact: 'Letzter Kontakt',
    aadRegistered: 'In Azure AD registriert',
    joinType: 'Azure AD-Beitrittstyp',
    ownership: 'Besitz',
    compliance: 'Konformität',
    encrypted: 'Verschlüsselt',
    jailbroken: 'Jailbreak',
  },
};

export function labelLanguage(v: unknown): LabelLanguage {
  return String(v ?? '').toLowerCase().startsWith('de') ? 'de' : 'en';
}

export function extensionTitle(lang: LabelLanguage): string {
  return LABELS[lang].title;
}

/** How each value looks in 4me (what the sink sends: attributeValues in fourme-ci-mapping.ts). */
const INPUT_TYPE: Record<AttributeKey, 'text' | 'number' | 'date' | 'checkbox'> = {
  os: 'text',
  osVersion: 'text',
  osSku: 'text',
  storageTotal: 'number',
  storageFree: 'number',
  enrolled: 'date',
  lastContact: 'date',
  aadRegistered: 'checkbox',
  joinType: 'text',
  ownership: 'text',
  compliance: 'text',
  encrypted: 'checkbox',
  jailbroken: 'text',
};

export interface ExtensionField {
  key: AttributeKey;
  id: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Our block: one read-only field per custom field id (the data comes from Intune; a 4me edit would be overwritten). */
export function managedBlock(fields: readonly ExtensionField[], lang: LabelLanguage): string {
  const rows = fields.map((f) => {
    const label = esc(LABELS[lang][f.key]);
    const id = esc(f.id);
    const cls = INPUT_TYPE[f.key] === 'date' ? ' class="date"' : '';
    const type = INPUT_TYPE[f.key] === 'date' ? 'text' : INPUT_TYPE[f.key];
    return `<div class="row vertical">\n  <label for="${id}">${label}</label>\n  <input id="${id}" type="${type}"${cls} readonly>\n</div>`;
  });
  return [BLOCK_BEGIN, ...rows, BLOCK_END].join('\n');
}

/** Ids of the fields an extension's HTML defines (input, select, textarea). */
export function fieldIdsOf(html: string): string[] {
  const ids: string[] = [];
  for (const m of html.matchAll(/<(?:input|select|textarea)\b[^>]*?\bid\s*=\s*(["'])([^"']+)\1/gi)) ids.push(m[2]);
  return ids;
}

/** The HTML outside our block (what an administrator owns), or all of it when there is no block. */
export function outsideBlock(html: string): { before: string; after: string; hadBlock: boolean } {
  const b = html.indexOf(BLOCK_BEGIN);
  const e = b < 0 ? -1 : html.indexOf(BLOCK_END, b);
  if (b < 0 || e < 0) return { before: html, after: '', hadBlock: false };
  return { before: html.slice(0, b), after: html.slice(e + BLOCK_END.length), hadBlock: true };
}

/**
 * The HTML the extension should have: the administrator's part kept, our
 * block (re)written. Fields the administrator defined outside the block
 * with one of our ids stay theirs (their field is the one 4me shows), so
 * the block leaves those out instead of defining an id twice.
 */
export function desiredHtml(current: string | null, fields: readonly ExtensionField[], lang: LabelLanguage): string {
  const { before, after } = outsideBlock(current ?? '');
  const theirs = new Set(fieldIdsOf(before + after));
  const block = managedBlock(
    fields.filter((f) => !theirs.has(f.id)),
    lang,
  );
  const head = before.trimEnd();
  const tail = after.trimStart();
  return [head, block, tail].filter(Boolean).join('\n');
}

/** The fields the sink writes, in attribute order, without blanks (a blank id is not sent). */
export function fieldsFromMapping(customFields: Record<AttributeKey, string>): ExtensionField[] {
  const seen = new Set<string>();
  const out: ExtensionField[] = [];
  for (const key of ATTRIBUTE_KEYS) {
    const id = customFields[key];
    if (!id || seen.has(id)) continue;
    seen.add(id);
    out.push({ key, id });
  }
  return out;
}
