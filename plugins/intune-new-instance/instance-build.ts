/**
 * Builds a new instance for the "New instance…" set-up from a shipped
 * template, with the instance tool's own logic (bin/instance-template): the
 * answers in the tool's option names, the next free number among the
 * editor's flows, the same clash checks as the tool. Never a credential.
 */
import { PLATFORM_PROPERTIES } from '../../nodes/lib/devices/device-filters';
import {
  InstanceError,
  TEMPLATES,
  instanceSettings,
  instanceTabLabels,
  loadTemplate,
  makeInstance,
  nextFreeInstance,
  withoutCredentials,
  type FlowNode,
  type InstanceAnswers,
} from '../../bin/instance-template';
import { clashes } from '../../bin/instance-admin';

/** The answer keys the set-up may send (the instance tool's option names), all text but the server list. */
const TEXT_ANSWERS = [
  'tenant-id', 'client-id', 'auth', 'cloud', 'authority-host', 'graph-url', 'portal-url',
  'sics-host', 'sics-port', 'acmp-target', 'on-demand-definition', 'jobs-routing-key',
  'fourme-account', 'fourme-environment', 'fourme-region', 'fourme-graphql-url',
  'platforms', 'full-scan-hours', 'incremental-minutes', 'compliance-minutes',
] as const;

/** The set-up's answers, only the known keys; anything else (a secret above all) is dropped unread. */
export function readAnswers(body: unknown): InstanceAnswers {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const out: InstanceAnswers = {};
  for (const k of TEXT_ANSWERS) {
    const v = b[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string' && typeof v !== 'number') throw new InstanceError(`${k} must be text`);
    out[k] = String(v).trim();
  }
  const servers = b['acmp-server'];
  if (servers !== undefined) {
    if (!Array.isArray(servers) || !servers.every((s) => typeof s === 'string')) throw new InstanceError('acmp-server must be a list of server ids');
    out['acmp-server'] = servers.map((s) => s.trim()).filter(Boolean);
  }
  return out;
}

/** What the set-up shows before anything is entered: the permissions and each template's defaults. */
export function templateFacts() {
  return Object.fromEntries(
    Object.keys(TEMPLATES).map((name) => {
      const t = loadTemplate(name);
      const devices = t.find((n) => n.type === 'intune-devices') ?? ({} as FlowNode);
      const env = Object.fromEntries(
        t.filter((n) => n.type === 'tab').flatMap((tab) => ((tab.env as Array<{ name: string; value: string }>) ?? []).map((e) => [e.name, e.value])),
      );
      const platforms = Object.fromEntries(Object.entries(PLATFORM_PROPERTIES).map(([p, prop]) => [p, devices[prop] === true]));
      // The device source's settings as the template ships them (for the Preview), without its place in the flow.
      const { id: _id, z: _z, wires: _w, x: _x, y: _y, intune: _i, ...deviceSettings } = devices;
      // Values the flow's environment gives at run time (the schedule) are no filter: left to the Preview's defaults.
      for (const [k, v] of Object.entries(deviceSettings)) if (typeof v === 'string' && /^\$\{\w+\}$/.test(v)) delete deviceSettings[k];
      return [name, { tabs: instanceTabLabels(t), env, platforms, devices: deviceSettings, connections: [...new Set(t.filter((n) => /-config$/.test(n.type)).map((n) => n.type))] }];
    }),
  );
}

export interface BuildRequest {
  template?: unknown;
  answers?: unknown;
  /** A tls-config node of the flows for every connection of the instance (private CAs). */
  tls?: unknown;
  /** The editor's flows (no credentials): where the next free number and clashes are looked up. */
  existing?: unknown;
}

/** The new instance's nodes (no credentials), its number and tabs. */
export function buildInstance(req: BuildRequest): { instance: number; tabs: string[]; nodes: FlowNode[] } {
  const name = String(req.template ?? '');
  if (!TEMPLATES[name]) throw new InstanceError(`Unknown template ${JSON.stringify(name)}: use ${Object.keys(TEMPLATES).join(' or ')}`);
  const existing = (Array.isArray(req.existing) ? req.existing : []).filter((n): n is FlowNode => !!n && typeof n === 'object' && typeof n.id === 'string' && typeof n.type === 'string');
  const template = loadTemplate(name);
  const instance = nextFreeInstance(template, existing);
  const { env, nodeProps } = instanceSettings(template, instance, readAnswers(req.answers));
  const tls = typeof req.tls === 'string' ? req.tls : '';
  if (tls) {
    if (!existing.some((n) => n.id === tls && n.type === 'tls-config')) throw new InstanceError('The chosen TLS configuration is not in the flows');
    // A CA given to a connection replaces the public ones: only private endpoints get it (SICS always; Intune
    // and 4me when their URLs are custom), as the config dialogs keep a TLS configuration only there.
    const custom = (type: string, prop: string) => (nodeProps[type]?.[prop] ?? template.find((n) => n.type === type)?.[prop]) === 'custom';
    const takes: Record<string, boolean> = {
      'intune-config': custom('intune-config', 'cloud'),
      'intune-acmp-config': true,
      'intune-4me-config': custom('intune-4me-config', 'environment'),
    };
    for (const [t, yes] of Object.entries(takes)) if (yes && template.some((n) => n.type === t)) (nodeProps[t] ??= {}).tls = tls;
  }
  const nodes = withoutCredentials(makeInstance(template, { instance, env, nodeProps }));
  const problems = clashes(existing, nodes);
  if (problems.length) throw new InstanceError(problems.join('; '));
  return { instance, tabs: instanceTabLabels(nodes), nodes };
}

