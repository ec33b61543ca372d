/**
 * Which instance each of our deployed nodes belongs to, read from the flow
 * configuration alone:
 *
 * 1. the INSTANCE_NAME environment variable of the node's tab (the shipped
 *    templates set it on their tab);
 * 2. the AESB tab family: IntuneConnector_N, IntuneWorkflowEngine_N and
 *    IntuneMobileDevices_N are one instance (DESIGN: the AESB instance
 *    pattern), named by the INSTANCE_NAME one of them sets, else
 *    IntuneConnector_N;
 * 3. a node that shares a connection (config node) with a node placed by 1
 *    or 2 joins that node's instance;
 * 4. anything else is "loose": one group per tab, named after the tab.
 *
 * Only ids, types, names, labels and the INSTANCE_NAME value are read: no
 * other property of a node (and never credentials) goes into the result.
 */

/** Our node types that do work, with the service each talks to and its role. */
export const WORKER_TYPES: Record<string, { service: 'intune' | '4me' | 'acmp'; role: 'source' | 'sink' | 'executor' }> = {
  'intune-devices': { service: 'intune', role: 'source' },
  'intune-compliance': { service: 'intune', role: 'source' },
  'intune-action': { service: 'intune', role: 'executor' },
  'intune-acmp-actions': { service: 'acmp', role: 'source' },
  'intune-4me': { service: '4me', role: 'sink' },
  'intune-acmp': { service: 'acmp', role: 'sink' },
};

/** Our connection (config) types, and the property of a worker that names one. */
export const CONFIG_TYPES: Record<string, { service: 'intune' | '4me' | 'acmp'; prop: string }> = {
  'intune-config': { service: 'intune', prop: 'intune' },
  'intune-4me-config': { service: '4me', prop: 'fourme' },
  'intune-acmp-config': { service: 'acmp', prop: 'acmp' },
};

/** A flow-configuration entry as RED.nodes.eachNode gives it (only what is read here). */
export interface FlowEntry {
  id: string;
  type: string;
  z?: string;
  name?: string;
  label?: string;
  disabled?: boolean;
  d?: boolean;
  store?: string;
  env?: Array<{ name?: string; value?: unknown; type?: string }>;
  [prop: string]: unknown;
}

export interface InstanceNode {
  id: string;
  type: string;
  name: string;
  tab: string;
  service: string;
  role: string;
  /** The context store its state (and run history) is kept in ('' = default). */
  store: string;
  /** Ids of the connections it uses. */
  configs: string[];
}

export interface InstanceGroup {
  name: string;
  /** Not part of a template: grouped by tab. */
  loose: boolean;
  tabs: Array<{ id: string; label: string }>;
  nodes: InstanceNode[];
  /** The connections its nodes use: id, type, name. */
  configs: Array<{ id: string; type: string; name: string }>;
}

const AESB_TAB = /^Intune(Connector|WorkflowEngine|MobileDevices)_(\d+)$/;

function instanceVar(tab: FlowEntry | undefined): string | undefined {
  const v = tab?.env?.find((e) => e && e.name === 'INSTANCE_NAME' && (e.type === undefined || e.type === 'str'));
  return typeof v?.value === 'string' && v.value.trim() ? v.value.trim() : undefined;
}

export function groupInstances(entries: FlowEntry[]): InstanceGroup[] {
  const byId = new Map(entries.map((e) => [e.id, e]));
  const tabs = entries.filter((e) => e.type === 'tab');
  // 2. AESB families: number → name.
  const family = new Map<string, string>();
  for (const t of tabs) {
    const m = AESB_TAB.exec(String(t.label ?? ''));
    if (!m) continue;
    const own = instanceVar(t);
    if (own || !family.has(m[2])) family.set(m[2], own ?? `IntuneConnector_${m[2]}`);
  }
  const tabInstance = (tabId: string | undefined): string | undefined => {
    const t = tabId ? byId.get(tabId) : undefined;
    if (!t || t.type !== 'tab') return undefined;
    const own = instanceVar(t);
    if (own) return own;
    const m = AESB_TAB.exec(String(t.label ?? ''));
    return m ? family.get(m[2]) : undefined;
  };

  const workers: InstanceNode[] = [];
  for (const e of entries) {
    const w = WORKER_TYPES[e.type];
    if (!w) continue;
    const tab = e.z ? byId.get(e.z) : undefined;
    if (e.d || tab?.disabled) continue;
    const configs = Object.values(CONFIG_TYPES)
      .map((c) => e[c.prop])
      .filter((v): v is string => typeof v === 'string' && !!v && CONFIG_TYPES[byId.get(v)?.type ?? ''] !== undefined);
    workers.push({ id: e.id, type: e.type, name: String(e.name || ''), tab: e.z ?? '', service: w.service, role: w.role, store: typeof e.store === 'string' ? e.store : '', configs });
  }

  const placed = new Map<string, string>();
  for (const w of workers) {
    const name = tabInstance(w.tab);
    if (name) placed.set(w.id, name);
  }
  // 3. Shared connections (one pass per hop is enough for the templates; two hops cover chains).
  for (let hop = 0; hop < 2; hop++) {
    const byConfig = new Map<string, string>();
    for (const w of workers) if (placed.has(w.id)) for (const c of w.configs) if (!byConfig.has(c)) byConfig.set(c, placed.get(w.id)!);
    for (const w of workers) {
      if (placed.has(w.id)) continue;
      const via = w.configs.find((c) => byConfig.has(c));
      if (via) placed.set(w.id, byConfig.get(via)!);
    }
  }

  const groups = new Map<string, InstanceGroup>();
  for (const w of workers) {
    const named = placed.get(w.id);
    const tab = byId.get(w.tab);
    const name = named ?? String(tab?.label || tab?.name || w.tab || 'global');
    const key = named ? `i:${named}` : `t:${w.tab}`;
    let g = groups.get(key);
    if (!g) {
      g = { name, loose: !named, tabs: [], nodes: [], configs: [] };
      groups.set(key, g);
    }
    g.nodes.push(w);
    if (tab && !g.tabs.some((t) => t.id === tab.id)) g.tabs.push({ id: tab.id, label: String(tab.label ?? '') });
    for (const c of w.configs) {
      if (g.configs.some((x) => x.id === c)) continue;
      const def = byId.get(c)!;
      g.configs.push({ id: c, type: def.type, name: String(def.name || '') });
    }
  }
  return [...groups.values()].sort((a, b) => Number(a.loose) - Number(b.loose) || a.name.localeCompare(b.name));
}
