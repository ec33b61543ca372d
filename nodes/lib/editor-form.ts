/**
 * What the admin endpoints of config nodes ("Verify connection" and the like)
 * need to read an editor form the way the runtime would read the deployed
 * node: the unchanged-password placeholder, and `${NAME}` references.
 */
import type { NodeAPI } from 'node-red';

/** Node-RED's placeholder for a password field the user did not change. */
export const UNCHANGED_PASSWORD = '__PWRD__';

/**
 * The form's current credentials, falling back to the deployed node's stored
 * ones where the form sends nothing, an empty value or the placeholder.
 */
export function formCredentials<K extends string>(
  RED: NodeAPI,
  body: { id?: string; credentials?: Partial<Record<K, unknown>> },
  keys: readonly K[],
): Partial<Record<K, string>> {
  const sent = (body.credentials ?? {}) as Partial<Record<K, unknown>>;
  const stored = ((body.id ? RED.nodes.getCredentials(body.id) : undefined) ?? {}) as Partial<Record<K, string>>;
  const out: Partial<Record<K, string>> = {};
  for (const k of keys) {
    const v = sent[k];
    out[k] = v === undefined || v === null || v === '' || v === UNCHANGED_PASSWORD ? stored[k] : String(v);
  }
  return out;
}

/**
 * The form sends properties as typed, so `${NAME}` references are still
 * unexpanded; expand them from the process environment as the runtime does
 * at deploy (flow and group variables are not known outside a flow).
 */
export function expandEnvReferences(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    out[k] = typeof v === 'string' ? v.replace(/\$\{(\w+)\}/g, (_m, name: string) => process.env[name] ?? '') : v;
  }
  return out;
}

type TlsConfigNode = { addTLSOptions?: (o: Record<string, unknown>) => void };

/**
 * The CA (PEM) of a deployed core `tls-config` node, for connections to
 * proxies and private endpoints; undefined when none is chosen or deployed.
 */
export function caFromTlsConfig(RED: NodeAPI, id?: string): string | undefined {
  if (!id) return undefined;
  const tls = RED.nodes.getNode(id) as unknown as TlsConfigNode | null;
  if (!tls?.addTLSOptions) return undefined;
  const opts: Record<string, unknown> = {};
  tls.addTLSOptions(opts);
  const ca = opts.ca as string | Buffer | undefined;
  return ca ? String(ca) : undefined;
}
