/**
 * Intune compliance violations → 4me incidents.
 *
 * - Each violation (device × policy) is one incident, `sourceID` =
 *   "<deviceId>:<policyId>" (the violation key) under the sink's `source`.
 * - Before anything is created, the open requests with those sourceIDs are
 *   looked up (100 keys per request): an open one is adopted, so a lost
 *   cache, a restart or a replayed run never creates a second incident.
 * - New incidents: category incident, impact as configured, linked to the
 *   device's CI, requested for the person whose primary e-mail is
 *   the device user's UPN, with a note naming the policy, listing the
 *   failing settings and linking to the device's compliance page in Intune.
 *   At most `maxNewPerRun` per run; the others are reported as capped and
 *   raised by a later run.
 * - An incident closed in 4me while the violation persists is not raised
 *   again; it may be once the violation has gone and come back.
 * - After a complete full compliance run, incidents of violations that are
 *   gone get a note and are completed (or only the note, as configured).
 *   Incidents whose record the cache lost are found again by listing the
 *   open requests of the source, for devices this instance owns.
 */
import type { ComplianceViolation } from '../contracts';
import { FourMeError, isAbort, payloadErrors, type FourMeClient, type FourMeStats } from './fourme-client';
import { OPS, type Connection } from './fourme-operations';
import type { PeopleDirectory } from './fourme-people';
import { normaliseEmail } from './fourme-people';
import type { SinkState } from './sink-fingerprints';
import { strictBool } from '../shared/validation';

export type Impact = 'low' | 'medium' | 'high' | 'top';
export type Language = 'en' | 'de';

export interface IncidentSettings {
  enabled: boolean;
  impact: Impact;
  maxNewPerRun: number;
  onResolve: 'complete' | 'note';
  templateId: string;
  serviceInstanceId: string;
  teamId: string;
  language: Language;
}

export class IncidentSettingsError extends Error {
  override name = 'IncidentSettingsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v).trim());

export function parseIncidentSettings(raw: Record<string, unknown>): IncidentSettings {
  const enabled = strictBool(raw.incidents, true, (reason) => new IncidentSettingsError('incidents', `"Raise incidents for compliance violations" ${reason}`));
  const impact = (str(raw.impact) || 'medium') as Impact;
  if (!['low', 'medium', 'high', 'top'].includes(impact)) throw new IncidentSettingsError('impact', 'The impact must be low, medium, high or top');
  const capRaw = str(raw.maxNewPerRun);
  const maxNewPerRun = capRaw === '' ? 50 : Number(capRaw);
  if (!Number.isInteger(maxNewPerRun) || maxNewPerRun < 0 || maxNewPerRun > 10_000) {
    throw new IncidentSettingsError('maxNewPerRun', 'The number of new incidents per run must be a whole number from 0 to 10000');
  }
  const onResolve = (str(raw.onResolve) || 'complete') as IncidentSettings['onResolve'];
  if (onResolve !== 'complete' && onResolve !== 'note') throw new IncidentSettingsError('onResolve', 'When a violation is gone, choose "complete" or "note"');
  const language = (str(raw.noteLanguage) || 'en') as Language;
  if (language !== 'en' && language !== 'de') throw new IncidentSettingsError('noteLanguage', 'The language of the notes must be "en" or "de"');
  return {
    enabled,
    impact,
    maxNewPerRun,
    onResolve,
    templateId: str(raw.templateId),
    serviceInstanceId: str(raw.serviceInstanceId),
    teamId: str(raw.teamId),
    language,
  };
}

// -------------------------------------------------------------------- texts

const T = {
  en: {
    subject: (device: string, policy: string) => `Intune compliance: ${device} does not meet "${policy}"`,
    intro: (device: string, policy: string, platform: string) =>
      `Microsoft Intune reports that the device "${device}" does not comply with the compliance policy "${policy}"${platform ? ` (${platform})` : ''}.`,
    failing: 'Failing settings:',
    noSettings: 'Intune did not name the failing settings.',
    current: 'current value',
    error: 'error',
    device: 'Device',
    serial: 'serial number',
    user: 'User',
    detected: 'Detected',
    link: 'Compliance of this device in Intune',
    resolved: (policy: string) => `Intune no longer reports a violation of "${policy}" on this device (complete compliance run). Completed by the Intune connector.`,
    resolvedNote: (policy: string) => `Intune no longer reports a violation of "${policy}" on this device (complete compliance run). The request was left open for you to complete.`,
  },
  de: {
    subject: (device: string, policy: string) => `Intune-Compliance: ${device} erfüllt „${policy}“ nicht`,
    intro: (device: string, policy: string, platform: string) =>
      `Microsoft Intune meldet, dass das Gerät „${device}“ die Konformitätsrichtlinie „${policy}“${platform ? ` (${platform})` : ''} nicht erfüllt.`,
    failing: 'Nicht erfüllte Einstellungen:',
    noSettings: 'Intune hat die nicht erfüllten Einstellungen nicht genannt.',
    current: 'aktueller Wert',
    error: 'Fehler',
    device: 'Gerät',
    serial: 'Seriennummer',
    user: 'Benutzer',
    detected: 'Erkannt',
    link: 'Konformität dieses Geräts in Intune',
    resolved: (policy: string) => `Intune meldet keinen Verstoß gegen „${policy}“ mehr für dieses Gerät (vollständiger Compliance-Lauf). Vom Intune-Connector abgeschlossen.`,
    resolvedNote: (policy: string) => `Intune meldet keinen Verstoß gegen „${policy}“ mehr für dieses Gerät (vollständiger Compliance-Lauf). Die Anfrage bleibt zum Abschließen offen.`,
  },
} as const;

export function incidentSubject(v: ComplianceViolation, lang: Language): string {
  const s = T[lang].subject(v.device.name || v.device.id, v.policy.name || v.policy.id);
  return s.length > 250 ? `${s.slice(0, 249)}…` : s;
}

export function incidentNote(v: ComplianceViolation, lang: Language): string {
  const t = T[lang];
  const lines: string[] = [t.intro(v.device.name || v.device.id, v.policy.name || v.policy.id, v.policy.platform ?? ''), ''];
  if (v.settings?.length) {
    lines.push(t.failing);
    for (const s of v.settings) {
      const extra: string[] = [s.state];
      if (s.currentValue !== null && s.currentValue !== undefined && s.currentValue !== '') extra.push(`${t.current}: ${s.currentValue}`);
      if (s.errorDescription || (s.errorCode !== null && s.errorCode !== undefined && s.errorCode !== 0)) {
        extra.push(`${t.error}: ${[s.errorDescription, s.errorCode ? `(${s.errorCode})` : ''].filter(Boolean).join(' ')}`);
      }
      lines.push(`- ${s.name}: ${extra.filter(Boolean).join(', ')}`);
    }
  } else {
    lines.push(t.noSettings);
  }
  lines.push('');
  const os = [v.device.os?.name, v.device.os?.version].filter(Boolean).join(' ');
  lines.push(`${t.device}: ${v.device.name}${v.device.serialNumber ? ` (${t.serial} ${v.device.serialNumber})` : ''}${os ? `, ${os}` : ''}`);
  const upn = v.device.user?.upn || v.device.user?.email;
  if (upn) lines.push(`${t.user}: ${v.device.user?.displayName ? `${v.device.user.displayName} <${upn}>` : upn}`);
  if (v.detectedAt) lines.push(`${t.detected}: ${v.detectedAt}`);
  lines.push(`${t.link}: ${v.deepLink}`);
  return lines.join('\n');
}

export function resolutionNote(policyName: string, lang: Language, mode: IncidentSettings['onResolve']): string {
  return mode === 'complete' ? T[lang].resolved(policyName) : T[lang].resolvedNote(policyName);
}

// ------------------------------------------------------------- validation

export function violationProblem(v: unknown): string | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'is not an object';
  const o = v as Partial<ComplianceViolation>;
  if (typeof o.key !== 'string' || !o.key.includes(':')) return 'has no key "<deviceId>:<policyId>"';
  if (o.key.length > 128) return 'has a key longer than the 128 characters of a 4me sourceID';
  if (!o.device || typeof o.device !== 'object' || typeof o.device.id !== 'string') return 'has no device id';
  if (!o.policy || typeof o.policy !== 'object' || typeof o.policy.id !== 'string') return 'has no policy';
  if (o.settings !== undefined && !Array.isArray(o.settings)) return 'has settings that are not a list';
  if (typeof o.deepLink !== 'string') return 'has no deepLink';
  return null;
}

// ---------------------------------------------------------------- sync

export type IncidentOutcome = 'raised' | 'adopted' | 'open' | 'capped' | 'closedIn4me' | 'resolved' | 'noted' | 'failed' | 'invalid';

export interface IncidentResult {
  key: string;
  outcome: IncidentOutcome;
  requestId?: string;
  requestNo?: string;
  error?: string;
  path?: string[];
  person?: 'matched' | 'unmatched' | 'none';
  ci?: 'linked' | 'notFound';
}

export interface IncidentContext {
  client: FourMeClient;
  people: PeopleDirectory | null;
  settings: IncidentSettings;
  source: string;
  state: SinkState;
  stats: FourMeStats;
  signal?: AbortSignal;
  persist(): Promise<void>;
  /** Incidents created in this run so far (the cap counts across the run's pages). */
  run: { created: number };
}

interface RequestNode {
  id: string;
  requestId: string | null;
  sourceID: string | null;
  status: string | null;
}

function fatal(err: unknown): boolean {
  if (isAbort(err)) return true;
  if (err instanceof FourMeError) return ['auth', 'forbidden', 'notFound', 'config', 'tls', 'unreachable'].includes(err.kind);
  return true;
}

async function pagedNodes<T>(
  ctx: Pick<IncidentContext, 'client' | 'stats' | 'signal'>,
  doc: string,
  field: string,
  filter: Record<string, unknown>,
): Promise<T[]> {
  const out: T[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const data: Record<string, Connection<T> | undefined> = await ctx.client.graphql<Record<string, Connection<T>>>(doc, { filter, after }, { signal: ctx.signal, stats: ctx.stats });
    const conn: Connection<T> | undefined = data[field];
    for (const n of conn?.nodes ?? []) if (n) out.push(n);
    if (!conn?.pageInfo?.hasNextPage || !conn.pageInfo.endCursor) break;
    after = conn.pageInfo.endCursor;
  }
  return out;
}

/** Open requests of `source` with these sourceIDs (100 per request). */
export async function openRequestsBySourceID(ctx: Pick<IncidentContext, 'client' | 'stats' | 'signal' | 'source'>, keys: string[]): Promise<Map<string, RequestNode>> {
  const out = new Map<string, RequestNode>();
  for (let i = 0; i < keys.length; i += 100) {
    const nodes = await pagedNodes<RequestNode>(ctx, OPS.requestsBySource, 'requests', {
      source: { values: [ctx.source] },
      sourceID: { values: keys.slice(i, i + 100) },
      status: { values: ['completed'], negate: true },
    });
    for (const n of nodes) if (n.sourceID && n.status !== 'completed' && !out.has(n.sourceID)) out.set(n.sourceID, n);
  }
  return out;
}

/** CI node ids of `source` by sourceID (device id), 100 per request. */
export async function ciIdsBySourceID(ctx: Pick<IncidentContext, 'client' | 'stats' | 'signal' | 'source'>, ids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 100) {
    const nodes = await pagedNodes<{ id: string; sourceID: string | null }>(ctx, OPS.cisBySource, 'configurationItems', {
      source: { values: [ctx.source] },
      sourceID: { values: ids.slice(i, i + 100) },
    });
    for (const n of nodes) if (n.sourceID && !out.has(n.sourceID)) out.set(n.sourceID, n.id);
  }
  return out;
}

/** Raises incidents for the new violations of one page. Throws only fatal errors. */
export async function processViolations(items: unknown[], ctx: IncidentContext): Promise<IncidentResult[]> {
  const results: IncidentResult[] = [];
  const valid = new Map<string, ComplianceViolation>();
  items.forEach((v, i) => {
    const p = violationProblem(v);
    if (p) {
      const k = (v as { key?: unknown })?.key;
      results.push({ key: typeof k === 'string' ? k : `#${i}`, outcome: 'invalid', error: `Item ${i} of the page ${p}` });
    } else valid.set((v as ComplianceViolation).key, v as ComplianceViolation);
  });
  if (!valid.size) return results;
  // Per item in page order at the end.
  const order = new Map<string, number>();
  items.forEach((v, i) => {
    const k = (v as { key?: unknown } | null)?.key;
    if (typeof k === 'string' && !order.has(k)) order.set(k, i);
  });
  const sorted = (list: IncidentResult[]) => list.sort((a, b) => (order.get(a.key) ?? Infinity) - (order.get(b.key) ?? Infinity));

  const open = await openRequestsBySourceID(ctx, [...valid.keys()]);
  const toCreate: ComplianceViolation[] = [];
  let changed = false;
  for (const [key, v] of valid) {
    const local = ctx.state.incidents[key];
    const remote = open.get(key);
    if (remote) {
      ctx.state.incidents[key] = { id: remote.id, no: remote.requestId ?? undefined, s: 'open', d: v.device.id, pn: v.policy.name, at: local?.at ?? new Date().toISOString() };
      changed = changed || !local || local.id !== remote.id || local.s !== 'open';
      results.push({ key, outcome: local && local.id === remote.id ? 'open' : 'adopted', requestId: remote.id, requestNo: remote.requestId ?? undefined });
    } else if (local) {
      // Closed in 4me while Intune still reports it: not raised again until the violation has gone.
      if (local.s !== 'closed') {
        ctx.state.incidents[key] = { ...local, s: 'closed' };
        changed = true;
      }
      results.push({ key, outcome: 'closedIn4me', requestId: local.id, requestNo: local.no });
    } else {
      toCreate.push(v);
    }
  }
  if (changed) await ctx.persist();
  if (!toCreate.length) return sorted(results);

  // Within the cap only.
  const room = Math.max(0, ctx.settings.maxNewPerRun - ctx.run.created);
  const now = toCreate.slice(0, room);
  for (const v of toCreate.slice(room)) results.push({ key: v.key, outcome: 'capped' });
  if (!now.length) return sorted(results);

  const deviceIds = [...new Set(now.map((v) => v.device.id))];
  const ciIds = new Map<string, string>();
  const unknown: string[] = [];
  for (const d of deviceIds) {
    const id = ctx.state.cis.get(d)?.id;
    if (id) ciIds.set(d, id);
    else unknown.push(d);
  }
  if (unknown.length) for (const [k, id] of await ciIdsBySourceID(ctx, unknown)) ciIds.set(k, id);
  let persons = new Map<string, string | null>();
  if (ctx.people) persons = (await ctx.people.resolve(now.map((v) => v.device.user?.upn ?? v.device.user?.email ?? null), { signal: ctx.signal, stats: ctx.stats })).ids;

  for (const v of now) {
    const email = normaliseEmail(v.device.user?.upn ?? v.device.user?.email ?? null);
    const personId = email ? persons.get(email) ?? null : null;
    const ciId = ciIds.get(v.device.id);
    const input: Record<string, unknown> = {
      category: 'incident',
      impact: ctx.settings.impact,
      subject: incidentSubject(v, ctx.settings.language),
      note: incidentNote(v, ctx.settings.language),
      source: ctx.source,
      sourceID: v.key,
    };
    if (ciId) input.configurationItemIds = [ciId];
    // Requested for the device's user; requested by stays the token's person (the connector).
    if (personId) input.requestedForId = personId;
    if (ctx.settings.templateId) input.templateId = ctx.settings.templateId;
    if (ctx.settings.serviceInstanceId) input.serviceInstanceId = ctx.settings.serviceInstanceId;
    if (ctx.settings.teamId) input.teamId = ctx.settings.teamId;
    const r: IncidentResult = { key: v.key, outcome: 'raised', person: email ? (personId ? 'matched' : 'unmatched') : 'none', ci: ciId ? 'linked' : 'notFound' };
    results.push(r);
    ctx.run.created++;
    try {
      const data = await ctx.client.graphql<{ requestCreate: { errors?: unknown; request: { id: string; requestId: string | null } | null } | null }>(
        OPS.requestCreate,
        { input },
        // Never repeated after a lost answer: the next run's look-up finds it instead.
        { signal: ctx.signal, stats: ctx.stats, idempotent: false },
      );
      const payload = data.requestCreate;
      const errs = payloadErrors(payload);
      if (errs.length || !payload?.request) {
        r.outcome = 'failed';
        r.error = errs.length ? errs.map((e) => (e.path.length ? `${e.path.join('.')}: ${e.message}` : e.message)).join('; ') : '4me created no request';
        if (errs[0]?.path.length) r.path = errs[0].path;
        continue;
      }
      r.requestId = payload.request.id;
      r.requestNo = payload.request.requestId ?? undefined;
      ctx.state.incidents[v.key] = { id: payload.request.id, no: r.requestNo, s: 'open', d: v.device.id, pn: v.policy.name, at: new Date().toISOString() };
      await ctx.persist();
    } catch (err) {
      if (fatal(err)) throw err;
      r.outcome = 'failed';
      r.error = (err as Error).message;
    }
  }
  return sorted(results);
}

/**
 * After a complete full compliance run: completes (or notes) the incidents
 * of violations that were not in the run. Incidents the cache lost are
 * recovered only for devices whose CIs this instance owns.
 */
export async function resolveGone(seen: ReadonlySet<string>, ctx: IncidentContext): Promise<IncidentResult[]> {
  const results: IncidentResult[] = [];
  // Incidents the cache does not know: open requests of our source, for devices this instance owns.
  const listed = await pagedNodes<RequestNode>(ctx, OPS.requestsBySource, 'requests', {
    source: { values: [ctx.source] },
    category: { values: ['incident'] },
    status: { values: ['completed'], negate: true },
  });
  const openRemote = new Map<string, RequestNode>();
  for (const n of listed) if (n.sourceID && n.status !== 'completed') openRemote.set(n.sourceID, n);
  let changed = false;
  for (const [key, n] of openRemote) {
    if (seen.has(key) || ctx.state.incidents[key]) continue;
    const deviceId = key.split(':')[0];
    if (!ctx.state.cis.has(deviceId)) continue;
    ctx.state.incidents[key] = { id: n.id, no: n.requestId ?? undefined, s: 'open', d: deviceId, at: new Date().toISOString() };
    changed = true;
  }
  for (const [key, entry] of Object.entries(ctx.state.incidents)) {
    if (seen.has(key)) continue;
    const remote = openRemote.get(key);
    if (!remote || remote.id !== entry.id) {
      // Completed in 4me (or by an earlier run that could not record it): nothing left to do.
      delete ctx.state.incidents[key];
      changed = true;
      continue;
    }
    if (entry.s === 'noted') continue;
    const policy = entry.pn || key.split(':').slice(1).join(':');
    const text = resolutionNote(policy, ctx.settings.language, ctx.settings.onResolve);
    const r: IncidentResult = { key, outcome: ctx.settings.onResolve === 'complete' ? 'resolved' : 'noted', requestId: entry.id, requestNo: entry.no };
    results.push(r);
    try {
      let payload: unknown;
      if (ctx.settings.onResolve === 'complete') {
        const data = await ctx.client.graphql<{ requestUpdate: unknown }>(
          OPS.requestUpdate,
          { input: { id: entry.id, status: 'completed', completionReason: 'solved', note: text } },
          { signal: ctx.signal, stats: ctx.stats, idempotent: true },
        );
        payload = data.requestUpdate;
      } else {
        const data = await ctx.client.graphql<{ noteCreate: unknown }>(
          OPS.noteCreate,
          { input: { ownerId: entry.id, text } },
          { signal: ctx.signal, stats: ctx.stats, idempotent: false },
        );
        payload = data.noteCreate;
      }
      const errs = payloadErrors(payload);
      if (errs.length || !payload) {
        r.outcome = 'failed';
        r.error = errs.length ? errs.map((e) => (e.path.length ? `${e.path.join('.')}: ${e.message}` : e.message)).join('; ') : '4me gave no answer';
        continue;
      }
      if (ctx.settings.onResolve === 'complete') delete ctx.state.incidents[key];
      else ctx.state.incidents[key] = { ...entry, s: 'noted' };
      changed = true;
      await ctx.persist();
      changed = false;
    } catch (err) {
      if (fatal(err)) throw err;
      r.outcome = 'failed';
      r.error = (err as Error).message;
    }
  }
  if (changed) await ctx.persist();
  return results;
}
