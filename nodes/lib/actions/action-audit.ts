/**
 * The audit trail of device actions: one line per request saying who asked
 * for what (action, job id, requestedBy), how it ended, and the device ids
 * grouped by outcome (in lines of at most 100 ids). Values are JSON-quoted,
 * so a job id or a name cannot break a line or fake a field. Never logged:
 * secrets (the macOS unlock code) and the notification text (it may be
 * personal); only its length is.
 */
import type { ActionReport } from './action-executor';

const IDS_PER_LINE = 100;

const q = (v: unknown) => JSON.stringify(v ?? null);

export interface AuditContext {
  /** The request was refused as a whole (guards, malformed, replay protection). */
  rejected?: boolean;
  dryRun?: boolean;
  replayed?: boolean;
  notification?: { title: string; body: string };
}

export function auditLines(report: ActionReport, ctx: AuditContext = {}): string[] {
  const kind = ctx.rejected ? 'REJECTED' : ctx.dryRun ? 'DRY RUN' : ctx.replayed ? 'REPLAYED' : 'EXECUTED';
  const head = [
    kind,
    `action=${q(report.action)}`,
    `jobId=${q(report.jobId)}`,
    `requestedBy=${q(report.requestedBy)}`,
    `devices=${report.results.length}`,
    `status=${report.status}`,
    ...Object.entries(report.counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k}=${n}`),
  ];
  if (ctx.notification) head.push(`titleChars=${[...ctx.notification.title].length}`, `bodyChars=${[...ctx.notification.body].length}`);
  if (report.code) head.push(`reason=${report.code}`);
  if (report.aborted) head.push('aborted=true');
  const lines = [`audit: ${head.join(' ')}`];
  const groups = new Map<string, string[]>();
  for (const r of report.results) {
    const list = groups.get(r.outcome) ?? [];
    list.push(r.deviceId);
    groups.set(r.outcome, list);
  }
  for (const [outcome, ids] of groups) {
    const parts = Math.ceil(ids.length / IDS_PER_LINE);
    for (let i = 0; i < ids.length; i += IDS_PER_LINE) {
      const part = ids.slice(i, i + IDS_PER_LINE);
      const n = parts > 1 ? ` (${i / IDS_PER_LINE + 1}/${parts})` : '';
      lines.push(`audit: jobId=${q(report.jobId)} ${outcome}${n}: ${part.map(q).join(',')}`);
    }
  }
  return lines;
}
