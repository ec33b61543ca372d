/**
 * What the admin endpoints of config nodes ("Verify connection" and the like)
 * need to read an editor form: the unchanged-password placeholder, and the
 * deployed TLS configuration. Which saved secrets a form may use, and how
 * `${NAME}` references are resolved, is saved-secrets.ts's job.
 */
import type { NodeAPI } from 'node-red';

/** Node-RED's placeholder for a password field the user did not change. */
export const UNCHANGED_PASSWORD = '__PWRD__';

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
