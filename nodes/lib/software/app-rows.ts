/**
 * Turns a record of Intune's AppInvRawData report (CSV header → value) into
 * an AppRow. Column names are the ones the report documents
 * (docs/graph-software.md); the export job selects exactly these, so a
 * missing column means the service changed the report, and is said so.
 */
import { createHash } from 'node:crypto';
import type { AppRow } from './software-index';

/** The columns the export job asks for (select), in this order. */
export const APP_REPORT_COLUMNS = [
  'DeviceId',
  'ApplicationKey',
  'ApplicationName',
  'ApplicationPublisher',
  'ApplicationVersion',
  'ApplicationShortVersion',
  'Platform',
] as const;

/** Columns without which a row means nothing. */
const REQUIRED = ['DeviceId', 'ApplicationName'] as const;

export class AppReportFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AppReportFormatError';
  }
}

/** Throws when the header lacks a required column (checked once, on the header). */
export function checkHeader(columns: readonly string[]): void {
  const missing = REQUIRED.filter((c) => !columns.includes(c));
  if (missing.length) {
    throw new AppReportFormatError(`The discovered-apps report has no ${missing.join(', ')} column (columns: ${columns.slice(0, 20).join(', ')})`);
  }
}

function text(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t ? t : null;
}

/**
 * Identifies an app when the report gives no ApplicationKey: the same title,
 * publisher, version and platform always give the same key.
 */
export function derivedAppKey(name: string, publisher: string | null, version: string | null, platform: string | null): string {
  return 'derived:' + createHash('sha256').update(JSON.stringify([name, publisher, version, platform])).digest('hex').slice(0, 32);
}

export function appRowOf(rec: Record<string, string | undefined>): AppRow {
  const name = text(rec.ApplicationName) ?? '';
  const version = text(rec.ApplicationVersion) ?? text(rec.ApplicationShortVersion);
  const publisher = text(rec.ApplicationPublisher);
  // With localizedValuesAsAdditionalColumn the readable value is in Platform_loc; we ask for replaceLocalizableValues.
  const platform = text(rec.Platform_loc) ?? text(rec.Platform);
  const key = text(rec.ApplicationKey) ?? derivedAppKey(name, publisher, version, platform);
  return { deviceId: text(rec.DeviceId) ?? '', key, name, version, publisher, platform };
}
