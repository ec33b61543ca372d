/**
 * "Set up 4me" as the editor's admin endpoint runs it: one short-lived
 * connection (like "Verify connection"), the target taken from the deployed
 * sinks that use this connection, a dry run, and — only when the editor
 * confirms the very plan it showed — the changes. Answers in plain words,
 * never with a secret.
 *
 * Why the deployed sinks: the extension must define exactly the custom
 * field ids the running sink writes, and the running sink writes what was
 * deployed, not what an open editor dialog holds.
 */
import { FourMeConfigError, FourMeConnection, errorCode, parseFourMeSettings, type ClientOverrides, type FourMeSecrets } from './fourme-connection';
import { DEFAULT_CUSTOM_FIELDS, MappingSettingsError, parseCiMappingSettings } from './fourme-ci-mapping';
import { fieldsFromMapping, labelLanguage, type ExtensionField } from './fourme-setup-extension';
import { planSetup, readSetupState, roleWords, type SetupPlan, type SetupTarget } from './fourme-setup-plan';
import { applySetup, type SetupResult } from './fourme-setup-apply';
import { FourMeError } from './fourme-client';
import type { ProxySource } from '../shared/proxy-route';

export interface SinkInfo {
  id: string;
  name: string;
  /** The sink's saved properties (as in the flow file). */
  props: Record<string, unknown>;
}

export interface SetupAnswer {
  ok: boolean;
  code: string;
  message: string;
  params: Record<string, unknown>;
  plan?: Omit<SetupPlan, 'html'>;
  result?: SetupResult;
  /** The sinks the fields came from, and whether each already sends this extension on new products. */
  sinks?: Array<{ id: string; name: string; uiExtensionId: string; sendsExtension: boolean }>;
}

/** The fields and sources of every sink (defaults when none is deployed). Throws MappingSettingsError. */
export function targetOf(sinks: readonly SinkInfo[], language: unknown): SetupTarget {
  const fields: ExtensionField[] = [];
  const sources = new Set<string>();
  const mappings = sinks.length ? sinks.map((s) => parseCiMappingSettings(s.props)) : [parseCiMappingSettings({})];
  for (const m of mappings) {
    sources.add(m.source);
    for (const f of fieldsFromMapping(m.customFields)) if (!fields.some((x) => x.id === f.id)) fields.push(f);
  }
  return { fields, sources: [...sources], language: labelLanguage(language) };
}

export async function runSetup(
  raw: Record<string, unknown>,
  secrets: FourMeSecrets,
  opts: {
    sinks: SinkInfo[];
    apply: boolean;
    planId?: string;
    language?: unknown;
    ca?: string | string[];
    proxy?: ProxySource;
    signal?: AbortSignal;
    overrides?: ClientOverrides;
  },
): Promise<SetupAnswer> {
  let conn: FourMeConnection | undefined;
  try {
    const target = targetOf(opts.sinks, opts.language);
    const settings = { ...parseFourMeSettings(raw, opts.ca), proxy: opts.proxy };
    conn = new FourMeConnection({ ...settings, retryAfterFallbackMs: Math.min(settings.retryAfterFallbackMs, 5000) }, secrets, undefined, { maxRetries: 1, ...(opts.overrides ?? {}) });
    const state = await readSetupState(conn.client, target, opts.signal);
    const plan = planSetup(state, target);
    const { html: _html, ...shown } = plan;
    const params = {
      account: state.accountName ?? state.accountId,
      person: state.personName ?? '',
      roles: state.roles.map(roleWords).join(', '),
      fields: target.fields.map((f) => f.id).join(', '),
      usesDefaults: opts.sinks.length === 0,
      defaults: opts.sinks.length === 0 ? Object.values(DEFAULT_CUSTOM_FIELDS) : undefined,
    };
    const sinkInfo = (extensionId: string | null) =>
      opts.sinks.map((s) => {
        const id = String(s.props.uiExtensionId ?? '').trim();
        return { id: s.id, name: s.name, uiExtensionId: id, sendsExtension: !!extensionId && id === extensionId };
      });
    if (!plan.ok) return { ok: false, code: plan.code, message: plan.message, params, plan: shown, sinks: sinkInfo(plan.extensionId) };
    if (!opts.apply || plan.code === 'upToDate') {
      return { ok: true, code: plan.code, message: plan.message, params, plan: shown, sinks: sinkInfo(plan.extensionId) };
    }
    if (opts.planId !== plan.planId) {
      // 4me (or the sinks) changed since the dry run: show the new plan instead of applying another one.
      return { ok: false, code: 'planChanged', message: 'What 4me holds changed since the plan was shown: review the new plan and confirm again', params, plan: shown, sinks: sinkInfo(plan.extensionId) };
    }
    const result = await applySetup(conn.client, plan, target.language, opts.signal);
    return {
      ok: true,
      code: 'applied',
      message: `4me is set up: UI extension ${result.created ? 'created' : result.updated ? 'updated' : 'unchanged'}, ${result.productsLinked} product(s) linked`,
      params,
      plan: { ...shown, extensionId: result.extensionId },
      result,
      sinks: sinkInfo(result.extensionId),
    };
  } catch (err) {
    const params: Record<string, unknown> = { message: (err as Error)?.message ?? String(err) };
    if (err instanceof MappingSettingsError) return { ok: false, code: 'invalidSink', message: err.message, params: { ...params, field: err.field } };
    if (err instanceof FourMeConfigError) {
      params.field = err.field;
      params.reason = err.reason;
    }
    if (err instanceof FourMeError && err.status) params.status = err.status;
    return { ok: false, code: errorCode(err), message: (err as Error)?.message ?? String(err), params };
  } finally {
    conn?.close();
  }
}
