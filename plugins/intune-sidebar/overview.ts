/**
 * The sidebar's data (and GET /intune/runs): every instance found in the
 * deployed flows (instances.ts) with its connections' health (health.ts)
 * and, per node, its last runs (run-history.ts) and next scheduled run.
 * Reads only what the runtime already holds.
 */
import { nextRun, readRuns, type HistoryNode, type RunEntry } from '../../nodes/lib/run/run-history';
import { connectionHealth, type ConnectionHealth } from './health';
import { groupInstances, type FlowEntry, type InstanceGroup, type InstanceNode } from './instances';

/** Runs per node in an answer unless asked for more (the sidebar's charts and table); HISTORY_LIMIT at most. */
export const DEFAULT_RUNS = 30;

export interface NodeOverview extends Omit<InstanceNode, 'configs' | 'store'> {
  configs: string[];
  next?: { mode: string; at: number };
  /** Oldest first. */
  runs: RunEntry[];
}

export interface InstanceOverview {
  name: string;
  loose: boolean;
  tabs: InstanceGroup['tabs'];
  connections: ConnectionHealth[];
  nodes: NodeOverview[];
}

export interface Overview {
  at: string;
  instances: InstanceOverview[];
}

/** The runtime parts read (a plugin's RED). */
export interface RuntimeNodes {
  eachNode(cb: (n: FlowEntry) => void): void;
  getNode(id: string): unknown;
}

/** The deployed flows' instances; cached until `invalidate()` (the plugin calls it on flows:started). */
export class InstanceIndex {
  private groups: InstanceGroup[] | undefined;
  constructor(private readonly nodes: RuntimeNodes) {}

  get(): InstanceGroup[] {
    if (!this.groups) {
      const entries: FlowEntry[] = [];
      this.nodes.eachNode((n) => {
        if (n && typeof n.id === 'string' && typeof n.type === 'string') entries.push(n);
      });
      this.groups = groupInstances(entries);
    }
    return this.groups;
  }

  invalidate(): void {
    this.groups = undefined;
  }

  /** The instance and node of a node id (for metric labels). */
  find(nodeId: string): { instance: string; node: InstanceNode } | undefined {
    for (const g of this.get()) {
      const node = g.nodes.find((n) => n.id === nodeId);
      if (node) return { instance: g.name, node };
    }
    return undefined;
  }
}

export async function buildOverview(index: InstanceIndex, nodes: RuntimeNodes, opts: { runs?: number; now?: Date } = {}): Promise<Overview> {
  const keep = Math.max(0, Math.floor(opts.runs ?? DEFAULT_RUNS));
  const instances: InstanceOverview[] = [];
  for (const g of index.get()) {
    const out: NodeOverview[] = [];
    for (const n of g.nodes) {
      const live = nodes.getNode(n.id) as HistoryNode | null;
      const runs = live ? await readRuns(live, n.store) : [];
      const next = nextRun(n.id);
      out.push({ id: n.id, type: n.type, name: n.name, tab: n.tab, service: n.service, role: n.role, configs: n.configs, ...(next ? { next } : {}), runs: keep ? runs.slice(-keep) : [] });
    }
    instances.push({
      name: g.name,
      loose: g.loose,
      tabs: g.tabs,
      connections: g.configs.map((c) => connectionHealth(c, nodes.getNode(c.id), opts.now)),
      nodes: out,
    });
  }
  return { at: (opts.now ?? new Date()).toISOString(), instances };
}
