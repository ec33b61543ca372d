/**
 * Adds an instance to a running Node-RED through its Admin API: signs in
 * when admin auth is on, refuses what would clash with an instance already
 * there, and deploys with the "flows" deployment type so running instances
 * are not restarted.
 */
import axios, { type AxiosInstance } from 'axios';
import { InstanceError, instanceTabLabels, type FlowNode } from './instance-template';

export interface AdminLogin {
  /** An Admin API access token (e.g. from `node-red admin login`). */
  token?: string;
  username?: string;
  password?: string;
}

export async function adminClient(url: string, login: AdminLogin = {}): Promise<AxiosInstance> {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new InstanceError(`--url must be the Node-RED editor's URL, e.g. http://127.0.0.1:1880 (got ${JSON.stringify(url)})`);
  }
  const admin = axios.create({ baseURL: base.toString().replace(/\/$/, ''), validateStatus: () => true, timeout: 30_000, headers: { 'Node-RED-API-Version': 'v2' } });
  if (login.token) {
    admin.defaults.headers.common.Authorization = `Bearer ${login.token}`;
    return admin;
  }
  const scheme = await admin.get('/auth/login').catch((err: Error) => {
    throw new InstanceError(`Node-RED at ${base.origin} cannot be reached: ${err.message}`);
  });
  if (scheme.status !== 200) throw new InstanceError(`Node-RED at ${base.origin} answered ${scheme.status} to /auth/login: is this a Node-RED editor URL?`);
  if (scheme.data && scheme.data.type === 'credentials') {
    if (!login.username || !login.password) throw new InstanceError('This Node-RED has admin authentication on: give --token, or --user with --password-env');
    const tok = await admin.post('/auth/token', { client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: login.username, password: login.password });
    if (tok.status !== 200) throw new InstanceError(`Signing in to Node-RED as ${login.username} failed (HTTP ${tok.status}): check the user name and password`);
    admin.defaults.headers.common.Authorization = `Bearer ${tok.data.access_token}`;
  }
  return admin;
}

/** A flow-scoped env value of the node's tab, or the literal value. */
function resolved(value: unknown, node: FlowNode, byId: Map<string, FlowNode>): string {
  const s = String(value ?? '');
  const m = /^\$\{(\w+)\}$/.exec(s);
  if (!m || !node.z) return s;
  const env = (byId.get(node.z)?.env as Array<{ name: string; value: string }> | undefined) ?? [];
  return env.find((e) => e.name === m[1])?.value ?? s;
}

/** Reasons the instance cannot join these flows. */
export function clashes(existing: FlowNode[], adding: FlowNode[]): string[] {
  const problems: string[] = [];
  const labels = new Set(instanceTabLabels(existing));
  for (const label of instanceTabLabels(adding)) if (labels.has(label)) problems.push(`a flow named ${label} exists already: choose another instance number`);
  // Two intake nodes on one routing key would both receive every ACMP job, and run it twice.
  const routes = (all: FlowNode[]) => {
    const byId = new Map(all.map((x) => [x.id, x]));
    return all.filter((n) => n.type === 'intune-acmp-actions' && !n.d).map((n) => `${resolved(n.virtualRouter, n, byId)}/${resolved(n.routingKey, n, byId)}`);
  };
  const taken = new Set(routes(existing));
  for (const k of routes(adding)) {
    if (taken.has(k)) problems.push(`another instance already takes ACMP jobs from ${k}: give this one its own routing key (--jobs-routing-key)`);
  }
  const ids = new Set(existing.map((n) => n.id));
  if (adding.some((n) => ids.has(n.id))) problems.push('a node id of the new instance is in use (run the tool again)');
  return problems;
}

/** Deploys the instance next to what runs; returns the new flows revision. */
export async function addInstance(admin: AxiosInstance, nodes: FlowNode[]): Promise<string> {
  const current = await admin.get('/flows');
  if (current.status === 401) throw new InstanceError('Node-RED refused the Admin API request (401): the token is missing, wrong or expired');
  if (current.status !== 200) throw new InstanceError(`Reading the flows failed: HTTP ${current.status}`);
  const existing = (current.data.flows ?? []) as FlowNode[];
  const problems = clashes(existing, nodes);
  if (problems.length) throw new InstanceError(`Not added: ${problems.join('; ')}`);
  const res = await admin.post('/flows', { rev: current.data.rev, flows: [...existing, ...nodes] }, { headers: { 'Node-RED-Deployment-Type': 'flows' } });
  if (res.status === 409) throw new InstanceError('The flows changed while the instance was being added: run the tool again');
  if (res.status !== 200) throw new InstanceError(`Deploying failed: HTTP ${res.status} ${JSON.stringify(res.data).slice(0, 300)}`);
  return String(res.data.rev ?? '');
}
