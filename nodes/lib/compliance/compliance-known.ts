/**
 * Violations the compliance source has already passed on with their policy
 * states read (current values, error descriptions), so that a later run does
 * not read them again while they stay the same.
 *
 * Why: the policy states are one Graph request per device (in $batches of
 * 20), and the 4me sink uses them only when it RAISES an incident — the note
 * of a new incident lists the failing settings; a violation whose incident
 * is already open is adopted as it is. A violation passed on before with the
 * same failing settings (by the report: setting, state, error code) therefore
 * gets no new read: it is passed on with the report's settings. A new
 * violation, or one whose failing settings changed, is read as before. So a
 * run that raises nothing new reads no policy states at all.
 *
 * The price (our choice): a violation the sink held back by its
 * `maxNewPerRun` cap and raises in a later run carries the report's settings
 * (no current values) in its note, unless its settings changed meanwhile.
 *
 * Stored packed in the node's state: one line per violation,
 * "<key> <fingerprint>/<platform>" (about 100 bytes; 500 KB for 5,000
 * violations). The platform is kept because the built-in default policy's
 * platform is known only from the policy states.
 */
import { createHash } from 'node:crypto';
import type { ReportPolicy } from './compliance-report';

export class KnownViolations {
  private readonly byKey = new Map<string, string>();

  /** Reads what `pack()` wrote (anything unreadable is simply not known). */
  static parse(packed: unknown): KnownViolations {
    const k = new KnownViolations();
    if (typeof packed !== 'string' || !packed) return k;
    for (const line of packed.split('\n')) {
      const at = line.lastIndexOf(' ');
      if (at > 0) k.byKey.set(line.slice(0, at), line.slice(at + 1));
    }
    return k;
  }

  get size(): number {
    return this.byKey.size;
  }

  /**
   * Was this violation passed on, with these failing settings, before? Then
   * its policy's platform as it was known (the built-in policy's only from
   * the policy states), else undefined.
   */
  platform(key: string, fingerprint: string): string | undefined {
    const v = this.byKey.get(key);
    if (!v || !v.startsWith(fingerprint + '/')) return undefined;
    return v.slice(fingerprint.length + 1);
  }

  add(key: string, fingerprint: string, platform: string): void {
    // Neither part holds a space or a slash: base64url and Graph's platform enum names.
    this.byKey.set(key, `${fingerprint}/${platform.replace(/[\s/]/g, '')}`);
  }

  pack(): string {
    let out = '';
    for (const [k, f] of this.byKey) out += (out ? '\n' : '') + k + ' ' + f;
    return out;
  }
}

/** The report's failing settings of one device × policy, as a short stable digest (order does not matter). */
export function reportFingerprint(p: ReportPolicy): string {
  const rows = p.settings.map((s) => `${s.setting}\u0001${s.state}\u0001${s.errorCode ?? ''}`).sort();
  return createHash('sha256').update(rows.join('\u0002')).digest('base64url').slice(0, 12);
}
