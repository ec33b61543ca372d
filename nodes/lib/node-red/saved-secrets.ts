/**
 * Which saved credentials an admin endpoint ("Verify connection" and the
 * like) may use for the editor form it was sent.
 *
 * The form names an endpoint and a node id; the node's saved secrets are
 * looked up by that id. Without a rule, any editor user could make the
 * runtime send a saved 4me token, SICS password or Graph client secret to a
 * host of their choice, or read the process environment through `${NAME}`
 * references. So:
 *
 * - a saved secret is used only when the form names the very endpoint the
 *   deployed node was saved with; for any other endpoint the secret must be
 *   typed into the form (the answer says which one);
 * - a saved password that unlocks a saved file (certificate password, key
 *   passphrase) is used only with that saved file, never with a new one
 *   (which is checked with the password typed for it, or none);
 * - `${NAME}` in a form field is resolved only where the deployed node has the
 *   same reference in the same field, to the value the runtime gave that node
 *   (flow, group, global env as Node-RED resolved them), and only towards the
 *   saved endpoint. Anything else is refused: nothing is read from the
 *   environment for a caller.
 */
import type { NodeAPI } from 'node-red';
import { UNCHANGED_PASSWORD } from './editor-form';

/** The answer an admin endpoint gives when it refuses a form (never carrying a value of the form). */
export interface FormRefusal {
  ok: false;
  code: 'savedSecretOtherEndpoint' | 'envNotDeployed' | 'envOtherEndpoint';
  message: string;
  params: Record<string, unknown>;
}

export interface FormView<K extends string> {
  /** The form's properties, `${NAME}` references resolved as the deployed node resolved them. */
  raw: Record<string, unknown>;
  /** Typed secrets, and saved ones where the rules allow them. */
  secrets: Partial<Record<K, string>>;
}

export interface SecretRules<K extends string> {
  /** The node type whose saved credentials may be used (an id of another type gets none). */
  type: string;
  /** The credential keys the endpoint uses. */
  keys: readonly K[];
  /**
   * A readable, canonical name of the endpoint the secrets would go to (equal
   * strings = same endpoint). Throws or returns undefined when the properties
   * are not valid: then no saved secret is used and the caller reports the problem.
   * Absent for endpoints that contact nothing (a local file check).
   */
  endpointOf?: (raw: Record<string, unknown>) => string | undefined;
  /** The keys the form's method needs (e.g. the secret for `authType: secret`); default: all keys. */
  needed?: (raw: Record<string, unknown>) => readonly K[];
  /** [file, its password]: a saved password is used only with the saved file. */
  pairs?: ReadonlyArray<readonly [K, K]>;
}

// What the runtime gave each deployed config node (env references resolved), by node.
const deployedProps = new WeakMap<object, Record<string, unknown>>();

/**
 * Called by a config node's constructor with its definition: the values the
 * deployed node works with, to compare forms with and to resolve `${NAME}` from.
 */
export function rememberDeployed(node: object, def: object): void {
  deployedProps.set(node, { ...(def as Record<string, unknown>) });
}

// Node-RED resolves a property that is one reference as a whole: ${NAME}, or the old $(NAME).
const WHOLE_ENV_REF = /^\$(\{\S+\}|\(\S+\))$/;

function savedConfig(RED: NodeAPI, id: unknown, type: string): { props: Record<string, unknown>; flowProps: Record<string, unknown> } | undefined {
  if (typeof id !== 'string' || !id) return undefined;
  const node = RED.nodes.getNode(id) as unknown as { type?: string } | null;
  if (!node || node.type !== type) return undefined;
  const props = deployedProps.get(node);
  if (!props) return undefined;
  // The flow configuration as saved, before the runtime resolved references.
  let flowProps: Record<string, unknown> | undefined;
  RED.nodes.eachNode((n: { id?: string }) => {
    if (n.id === id) flowProps = n as Record<string, unknown>;
  });
  return { props, flowProps: flowProps ?? {} };
}

function safeEndpoint<K extends string>(rules: SecretRules<K>, raw: Record<string, unknown>): string | undefined {
  try {
    return rules.endpointOf?.(raw) || undefined;
  } catch {
    return undefined;
  }
}

function typed(v: unknown): string | undefined {
  return v === undefined || v === null || v === '' || v === UNCHANGED_PASSWORD ? undefined : String(v);
}

/**
 * Reads an editor form under the rules above. Returns the form and the
 * secrets to use, or the refusal to answer with (in plain words, naming
 * fields, never values).
 */
export function readForm<K extends string>(
  RED: NodeAPI,
  body: Record<string, unknown> & { id?: unknown; credentials?: unknown },
  rules: SecretRules<K>,
): FormView<K> | FormRefusal {
  const saved = savedConfig(RED, body.id, rules.type);

  // 1. `${NAME}` only as the deployed node resolved it, in the same field.
  const raw: Record<string, unknown> = {};
  let usedEnv = false;
  for (const [k, v] of Object.entries(body)) {
    if (k === 'credentials') continue;
    if (typeof v === 'string' && WHOLE_ENV_REF.test(v.trim())) {
      if (!saved || saved.flowProps[k] !== v) {
        return {
          ok: false,
          code: 'envNotDeployed',
          message: `${k} refers to an environment variable: the check resolves it only as the deployed connection does. Deploy first, or type the value`,
          params: { field: k },
        };
      }
      raw[k] = saved.props[k];
      usedEnv = true;
    } else {
      raw[k] = v;
    }
  }

  // 2. Same endpoint as saved?
  const local = !rules.endpointOf;
  const formEndpoint = local ? undefined : safeEndpoint(rules, raw);
  const savedEndpoint = local || !saved ? undefined : safeEndpoint(rules, saved.props);
  const sameEndpoint = local ? !!saved : formEndpoint !== undefined && formEndpoint === savedEndpoint;
  if (usedEnv && !sameEndpoint) {
    return {
      ok: false,
      code: 'envOtherEndpoint',
      message: 'Environment variables are resolved only for the endpoint the connection is deployed with; for another endpoint type the values',
      params: { endpoint: savedEndpoint ?? '' },
    };
  }

  // 3. Secrets: typed ones always; saved ones only for the saved endpoint (and file).
  const sent = (body.credentials && typeof body.credentials === 'object' ? body.credentials : {}) as Record<string, unknown>;
  const stored = ((saved ? RED.nodes.getCredentials(String(body.id)) : undefined) ?? {}) as Record<string, unknown>;
  const secrets: Partial<Record<K, string>> = {};
  const withheld: K[] = [];
  for (const k of rules.keys) {
    const t = typed(sent[k]);
    if (t !== undefined) {
      secrets[k] = t;
      continue;
    }
    const s = typed(stored[k]);
    if (s === undefined) continue;
    // A new file comes with its own password (or none): the saved one unlocks only the saved file.
    const partnerFile = rules.pairs?.find(([, pw]) => pw === k)?.[0];
    if (partnerFile !== undefined && typed(sent[partnerFile]) !== undefined) continue;
    if (sameEndpoint) secrets[k] = s;
    else withheld.push(k);
  }
  const needed = rules.needed ? rules.needed(raw) : rules.keys;
  const missing = withheld.filter((k) => needed.includes(k));
  // An invalid form contacts nobody: the caller reports its problem rather than asking for secrets.
  if (missing.length && formEndpoint !== undefined) {
    return {
      ok: false,
      code: 'savedSecretOtherEndpoint',
      message: `The saved ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} used only with the endpoint ${missing.length > 1 ? 'they were' : 'it was'} saved for${savedEndpoint ? ` (${savedEndpoint})` : ''}: type ${missing.length > 1 ? 'them' : 'it'} again to check this form`,
      params: { field: missing[0], fields: missing, endpoint: savedEndpoint ?? '' },
    };
  }
  return { raw, secrets };
}

export function isRefusal<K extends string>(v: FormView<K> | FormRefusal): v is FormRefusal {
  return (v as FormRefusal).ok === false;
}
