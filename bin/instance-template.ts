/**
 * Turns a shipped instance template (flows/… built into examples/) into
 * instance N: fresh node ids, `_N` names, the instance's flow environment
 * variables and connection settings. Pure functions, no I/O beyond reading
 * the template, so the instance tool and the tests share them.
 *
 * A template is written as instance 1: every name that identifies the
 * instance ends in `_1` after one of the INSTANCE_WORDS (IntuneConnector_1,
 * IntuneWorkflowEngine_1, IntuneMobileDevices_1, Intune4me_1), in tab
 * labels, node names, comments and environment values alike. That one rule
 * is all the renaming there is, so a template stays importable as it is.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PLATFORM_PROPERTIES } from '../nodes/lib/devices/device-filters';
import { strictBool } from '../nodes/lib/shared/validation';

export type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string };

/** The AESB names of an instance's parts (and the 4me instance's tab). */
export const INSTANCE_WORDS = ['IntuneConnector', 'IntuneWorkflowEngine', 'IntuneMobileDevices', 'Intune4me'] as const;
const INSTANCE_NAME_RE = new RegExp(`\\b(${INSTANCE_WORDS.join('|')})_1\\b`, 'g');

/** Short names of the shipped templates → file in examples/. */
export const TEMPLATES: Record<string, string> = {
  acmp: 'ACMP instance (IntuneConnector_1).json',
  '4me': '4me instance (Intune4me_1).json',
};

/** The package's examples folder (dist/bin → package root, or build/bin → repository). */
export const examplesDir = path.resolve(__dirname, '..', '..', 'examples');

export class InstanceError extends Error {}

/** Reads a template: a short name (acmp, 4me) or a path to an exported flow file. */
export function loadTemplate(nameOrFile: string): FlowNode[] {
  const file = TEMPLATES[nameOrFile] ? path.join(examplesDir, TEMPLATES[nameOrFile]) : nameOrFile;
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const known = Object.keys(TEMPLATES).join(', ');
    throw new InstanceError(`Cannot read the template ${JSON.stringify(nameOrFile)} (${(err as Error).message}); use one of ${known} or a flow file`);
  }
  if (!Array.isArray(data) || !data.every((n) => n && typeof n === 'object' && typeof n.id === 'string' && typeof n.type === 'string')) {
    throw new InstanceError(`The template ${JSON.stringify(nameOrFile)} is not a Node-RED flow export (an array of nodes with id and type)`);
  }
  if (!data.some((n) => n.type === 'tab')) throw new InstanceError(`The template ${JSON.stringify(nameOrFile)} has no flow tab`);
  return data as FlowNode[];
}

/** A Node-RED node id: 16 hex digits, as the editor makes them. */
export function newNodeId(): string {
  return crypto.randomBytes(8).toString('hex');
}

/** Credentials for the instance's connections, by config node type. Never written to files. */
export interface InstanceCredentials {
  'intune-config'?: { clientSecret?: string; pfx?: string; pfxName?: string; passphrase?: string };
  'intune-acmp-config'?: { user?: string; password?: string };
  'intune-4me-config'?: { token?: string; clientSecret?: string };
}

export interface InstanceOptions {
  /** The instance number N (1 … 999). */
  instance: number;
  /** Flow environment variables to set, by name; each must be defined on a tab of the template. */
  env?: Record<string, string>;
  /** Properties to set on every node of a type, e.g. { 'intune-config': { tenantId: '…' } }. */
  nodeProps?: Record<string, Record<string, unknown>>;
  /** A CA certificate file for every connection of the instance (adds one tls-config node). */
  caFile?: string;
  credentials?: InstanceCredentials;
  /** Id generator (tests pass a deterministic one). */
  newId?: () => string;
}

const CONFIG_TYPES_WITH_TLS = ['intune-config', 'intune-acmp-config', 'intune-4me-config'];

/** Replaces `Word_1` by `Word_N` in a string. */
export function renameForInstance(text: string, n: number): string {
  return text.replace(INSTANCE_NAME_RE, `$1_${n}`);
}

/** Every tab label of the instance (what the AESB console would list). */
export function instanceTabLabels(nodes: FlowNode[]): string[] {
  return nodes.filter((n) => n.type === 'tab').map((n) => String(n.label ?? ''));
}

/**
 * Instance N of a template. Ids are replaced everywhere a property holds one
 * (z, wires, link targets, config references, catch/status scopes, group
 * members), so the result can sit beside the template and other instances.
 */
export function makeInstance(template: FlowNode[], o: InstanceOptions): FlowNode[] {
  if (!Number.isInteger(o.instance) || o.instance < 1 || o.instance > 999) throw new InstanceError('The instance number must be a whole number from 1 to 999');
  const newId = o.newId ?? newNodeId;
  const ids = new Map<string, string>();
  for (const n of template) {
    if (ids.has(n.id)) throw new InstanceError(`The template uses the node id ${n.id} twice`);
    ids.set(n.id, newId());
  }
  const remap = (v: unknown): unknown => {
    if (typeof v === 'string') return ids.get(v) ?? renameForInstance(v, o.instance);
    if (Array.isArray(v)) return v.map(remap);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, remap(x)]));
    return v;
  };
  const out = template.map((n) => {
    const copy = remap(JSON.parse(JSON.stringify(n))) as FlowNode;
    delete copy.credentials; // a template never carries secrets; an exported flow might
    return copy;
  });

  // Flow environment variables: only names the template defines, so a typo is an error, not a silent no-op.
  const wanted = new Map(Object.entries(o.env ?? {}));
  for (const tab of out.filter((n) => n.type === 'tab')) {
    const env = Array.isArray(tab.env) ? (tab.env as Array<{ name: string; value: string; type: string }>) : [];
    for (const e of env) {
      if (wanted.has(e.name)) {
        const given = String(wanted.get(e.name));
        // A number-typed variable keeps its type only when the value is a number.
        if (e.type === 'num' && !Number.isFinite(Number(given))) throw new InstanceError(`${e.name} must be a number, not ${JSON.stringify(given)}`);
        // A yes/no variable: read as the nodes read their settings (shared/validation), written as exactly "true" or
        // "false", since Node-RED reads a bool variable as `value === "true"` (so "TRUE" or "yes" would be off). Empty:
        // the template's value.
        e.value = e.type === 'bool' ? String(strictBool(given, e.value === 'true', (reason) => new InstanceError(`${e.name} ${reason}`))) : given;
      }
    }
  }
  const defined = new Set(out.filter((n) => n.type === 'tab').flatMap((t) => ((t.env as Array<{ name: string }>) ?? []).map((e) => e.name)));
  const unknown = [...wanted.keys()].filter((k) => !defined.has(k));
  if (unknown.length) throw new InstanceError(`The template has no environment variable ${unknown.join(', ')} (it has ${[...defined].sort().join(', ') || 'none'})`);

  // Variables the template holds as yes/no: a property set from one of them (`${READ_SOFTWARE}`) is a yes/no property.
  const boolEnv = new Set(
    out.filter((n) => n.type === 'tab').flatMap((t) => ((t.env as Array<{ name: string; type?: string }>) ?? []).filter((e) => e.type === 'bool').map((e) => e.name)),
  );
  for (const [type, props] of Object.entries(o.nodeProps ?? {})) {
    const targets = out.filter((n) => n.type === type);
    if (!targets.length) throw new InstanceError(`The template has no ${type} node to set ${Object.keys(props).join(', ')} on`);
    for (const n of targets) Object.assign(n, yesNoChecked(n, JSON.parse(JSON.stringify(props)), boolEnv));
  }

  if (o.caFile) {
    const tlsId = newId();
    out.push({ id: tlsId, type: 'tls-config', name: `CA (${instanceTabLabels(out)[0]})`, cert: '', key: '', ca: o.caFile, certname: '', keyname: '', caname: '', servername: '', verifyservercert: true, alpnprotocol: '' });
    for (const n of out) if (CONFIG_TYPES_WITH_TLS.includes(n.type)) n.tls = tlsId;
  }

  for (const [type, creds] of Object.entries(o.credentials ?? {})) {
    const clean = Object.fromEntries(Object.entries(creds ?? {}).filter(([, v]) => v !== undefined && v !== ''));
    if (!Object.keys(clean).length) continue;
    const targets = out.filter((n) => n.type === type);
    if (!targets.length) throw new InstanceError(`The template has no ${type} node for the credentials given`);
    for (const n of targets) n.credentials = { ...clean };
  }
  return out;
}

/**
 * The properties to set on node `n`, with each yes/no property (one the
 * template holds as true/false, or as a yes/no flow variable) read strictly
 * and written as a boolean: `--set intune-devices.readSoftware=yes` is
 * refused before anything is written, instead of a node that stops at
 * deploy. An empty value leaves the template's setting as it is.
 */
function yesNoChecked(n: FlowNode, props: Record<string, unknown>, boolEnv: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    const current = n[k];
    const ref = typeof current === 'string' ? /^\$\{(\w+)\}$/.exec(current) : null;
    if (typeof current !== 'boolean' && !(ref && boolEnv.has(ref[1]))) {
      out[k] = v;
      continue;
    }
    if (v === undefined || v === null || (typeof v === 'string' && !v.trim())) continue;
    out[k] = strictBool(v, false, (reason) => new InstanceError(`${n.type}.${k} ${reason}`));
  }
  return out;
}

/** The same nodes without credentials, for writing to a file. */
export function withoutCredentials(nodes: FlowNode[]): FlowNode[] {
  return nodes.map(({ credentials: _c, ...rest }) => rest as FlowNode);
}

/** Which credentials the user still has to enter (for the tool's hint after writing a file). */
export function missingCredentials(nodes: FlowNode[]): string[] {
  const need: Record<string, string> = {
    'intune-config': 'the client secret or certificate',
    'intune-acmp-config': 'the SICS user and password',
    'intune-4me-config': 'the 4me token or OAuth client secret',
  };
  return nodes.filter((n) => need[n.type] && !n.credentials).map((n) => `${String(n.name || n.type)}: ${need[n.type]}`);
}

/**
 * The settings of an instance in the instance tool's words (its option names,
 * values as typed), for the tool and the editor's "New instance…" set-up alike.
 */
export interface InstanceAnswers {
  'tenant-id'?: string;
  'client-id'?: string;
  auth?: string;
  cloud?: string;
  'authority-host'?: string;
  'graph-url'?: string;
  'portal-url'?: string;
  'sics-host'?: string;
  'sics-port'?: string;
  /** ID[:VIRTUALROUTER[:ROUTINGKEY]] per ACMP server. */
  'acmp-server'?: string[];
  'acmp-target'?: string;
  'on-demand-definition'?: string;
  'jobs-routing-key'?: string;
  'fourme-account'?: string;
  'fourme-environment'?: string;
  'fourme-region'?: string;
  'fourme-graphql-url'?: string;
  /** Comma-separated platforms to import. */
  platforms?: string;
  'full-scan-hours'?: string;
  'incremental-minutes'?: string;
  'compliance-minutes'?: string;
}

/** The flow environment variables and node properties that `makeInstance` sets for these answers. */
export function instanceSettings(template: FlowNode[], n: number, a: InstanceAnswers): { env: Record<string, string>; nodeProps: Record<string, Record<string, unknown>> } {
  const env: Record<string, string> = {};
  const props: Record<string, Record<string, unknown>> = {};
  const setProp = (type: string, prop: string, value: unknown) => {
    if (value !== undefined) (props[type] ??= {})[prop] = value;
  };
  const isAcmp = template.some((x) => x.type === 'intune-acmp-config');
  if (isAcmp) env.ACMP_JOBS_ROUTING_KEY = a['jobs-routing-key'] ?? `IntuneConnector_${n}.jobs`;
  else if (a['jobs-routing-key']) env.ACMP_JOBS_ROUTING_KEY = a['jobs-routing-key'];
  if (a['acmp-target']) env.ACMP_SERVER_ID = a['acmp-target'];
  if (a['on-demand-definition']) env.ACMP_ON_DEMAND_DEFINITION = a['on-demand-definition'];
  if (a['full-scan-hours']) env.FULL_SCAN_HOURS = a['full-scan-hours'];
  if (a['incremental-minutes']) env.INCREMENTAL_SCAN_MINUTES = a['incremental-minutes'];
  if (a['compliance-minutes']) env.COMPLIANCE_EVERY_MINUTES = a['compliance-minutes'];

  setProp('intune-config', 'tenantId', a['tenant-id']);
  setProp('intune-config', 'clientId', a['client-id']);
  if (a.auth !== undefined && a.auth !== 'secret' && a.auth !== 'certificate') throw new InstanceError('--auth must be secret or certificate');
  setProp('intune-config', 'authType', a.auth);
  setProp('intune-config', 'cloud', a.cloud);
  setProp('intune-config', 'authorityHost', a['authority-host']);
  setProp('intune-config', 'graphBaseUrl', a['graph-url']);
  setProp('intune-config', 'portalUrl', a['portal-url']);
  setProp('intune-acmp-config', 'host', a['sics-host']);
  if (a['sics-port'] !== undefined) setProp('intune-acmp-config', 'port', Number(a['sics-port']));
  if (a['acmp-server']) {
    setProp(
      'intune-acmp-config',
      'servers',
      a['acmp-server'].map((s) => {
        const [serverId, virtualRouter, routingKey] = s.split(':');
        if (!serverId) throw new InstanceError(`--acmp-server expects ID[:VIRTUALROUTER[:ROUTINGKEY]], not ${JSON.stringify(s)}`);
        return { serverId, name: serverId, virtualRouter: virtualRouter || 'ACMP', routingKey: routingKey || `acmp.${serverId}` };
      }),
    );
  }
  setProp('intune-4me-config', 'accountId', a['fourme-account']);
  setProp('intune-4me-config', 'environment', a['fourme-graphql-url'] ? 'custom' : a['fourme-environment']);
  setProp('intune-4me-config', 'region', a['fourme-region']);
  setProp('intune-4me-config', 'graphqlUrl', a['fourme-graphql-url']);
  if (a.platforms !== undefined) {
    const chosen = a.platforms.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean);
    const bad = chosen.filter((p) => !(p in PLATFORM_PROPERTIES));
    if (bad.length) throw new InstanceError(`--platforms: unknown ${bad.join(', ')} (use ${Object.keys(PLATFORM_PROPERTIES).join(', ')})`);
    for (const [p, prop] of Object.entries(PLATFORM_PROPERTIES)) setProp('intune-devices', prop, chosen.includes(p));
  }
  return { env, nodeProps: props };
}

/** The lowest instance number N from 1 whose tab names are not in use among `existing`. */
export function nextFreeInstance(template: FlowNode[], existing: FlowNode[]): number {
  const taken = new Set(instanceTabLabels(existing));
  const labels = instanceTabLabels(template);
  for (let n = 1; n <= 999; n++) if (!labels.some((l) => taken.has(renameForInstance(l, n)))) return n;
  throw new InstanceError('Every instance number from 1 to 999 is in use');
}
