/**
 * The runtime side of the "Intune" sidebar (a Node-RED plugin; its editor
 * side is intune-sidebar.html). Admin endpoints:
 *
 *   GET  /intune/runs[?runs=N]  every instance with connection health and the
 *                               nodes' last N runs (default 30, at most 200)
 *                               — permission intune.read
 *   GET  /intune/metrics        Prometheus text format (prom-client)
 *                               — permission intune.read
 *   POST /intune/run/:id        starts a run of a deployed source the way an
 *                               input message does ({mode} optional)
 *                               — the node type's own write permission
 *
 * and the comms topic `intune/runs` (a finished run: {node, entry}) so the
 * sidebar updates as runs finish. It reads what the nodes and connections
 * already hold; it makes no request to Intune, 4me or SICS.
 */
import type { Request, Response, NextFunction } from 'express';
import { HISTORY_LIMIT, runEvents, type RunEntry } from '../../nodes/lib/run/run-history';
import { createRunMetrics, type MetricsSnapshot } from '../../nodes/lib/metrics/run-metrics';
import { buildOverview, DEFAULT_RUNS, InstanceIndex, type RuntimeNodes } from './overview';
import { WORKER_TYPES } from './instances';

interface PluginRED {
  nodes: RuntimeNodes;
  httpAdmin: { get: (...a: unknown[]) => void; post: (...a: unknown[]) => void };
  auth: { needsPermission(p: string): (req: Request, res: Response, next: NextFunction) => void };
  events: { on(ev: string, fn: (...a: unknown[]) => void): void };
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
  plugins: { registerPlugin(id: string, def: Record<string, unknown>): void };
  log: { warn(m: string): void };
}

/** Sources a user may start from the sidebar (an input message starts their run). */
const STARTABLE = new Set(['intune-devices', 'intune-compliance']);

export = function register(RED: PluginRED): void {
  RED.plugins.registerPlugin('intune-sidebar', { type: 'intune-sidebar' });

  const index = new InstanceIndex(RED.nodes);
  RED.events.on('flows:started', () => index.invalidate());

  runEvents.on('run', (nodeId: string, entry: RunEntry) => {
    RED.comms.publish('intune/runs', { node: nodeId, entry }, false);
  });

  const metrics = createRunMetrics({
    labelsOf: (id) => {
      const f = index.find(id);
      return f ? { instance: f.instance, node: f.node.name || f.node.id, node_id: f.node.id, service: f.node.service } : undefined;
    },
    snapshot: async () => {
      const o = await buildOverview(index, RED.nodes, { runs: 1 });
      const s: MetricsSnapshot = { nodes: [], connections: [] };
      for (const i of o.instances) {
        for (const n of i.nodes) {
          const last = n.runs[n.runs.length - 1];
          s.nodes.push({
            instance: i.name,
            node: n.name || n.id,
            node_id: n.id,
            service: n.service,
            ...(last ? { last } : {}),
            ...(n.next ? { nextAt: n.next.at } : {}),
            ...(last?.k === 'incidents' ? { openIncidents: last.open ?? 0 } : {}),
          });
        }
        for (const c of i.connections) {
          if (c.level === 'unknown') continue;
          s.connections.push({ instance: i.name, connection: c.name || c.id, connection_id: c.id, service: c.service, up: c.level !== 'error', ...(c.certificate ? { certificateNotAfter: c.certificate.notAfter } : {}) });
        }
      }
      return s;
    },
  });

  const read = RED.auth.needsPermission('intune.read');

  RED.httpAdmin.get('/intune/runs', read, async (req: Request, res: Response) => {
    const asked = Number(req.query.runs ?? DEFAULT_RUNS);
    const runs = Number.isFinite(asked) ? Math.min(HISTORY_LIMIT, Math.max(0, Math.floor(asked))) : DEFAULT_RUNS;
    try {
      res.json(await buildOverview(index, RED.nodes, { runs }));
    } catch (err) {
      RED.log.warn(`intune sidebar: overview failed: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, message: 'The overview could not be built' });
    }
  });

  RED.httpAdmin.get('/intune/metrics', read, async (_req: Request, res: Response) => {
    try {
      const text = await metrics.registry.metrics();
      res.set('Content-Type', metrics.registry.contentType);
      res.send(text);
    } catch (err) {
      RED.log.warn(`intune metrics failed: ${(err as Error)?.message}`);
      res.status(500).send('metrics failed');
    }
  });

  // The permission is the node type's own (intune-devices.write …), checked once the id names a node.
  RED.httpAdmin.post('/intune/run/:id', (req: Request, res: Response, next: NextFunction) => {
    const node = RED.nodes.getNode(String(req.params.id)) as { type?: string; receive?: (msg: object) => void } | null;
    if (!node || !node.type || !STARTABLE.has(node.type) || !WORKER_TYPES[node.type] || typeof node.receive !== 'function') {
      res.status(404).json({ ok: false, code: 'notFound', message: 'No deployed Intune source with this id' });
      return;
    }
    RED.auth.needsPermission(`${node.type}.write`)(req, res, () => {
      const mode = (req.body as { mode?: unknown } | undefined)?.mode;
      node.receive!(mode === 'full' || mode === 'incremental' ? { mode } : {});
      res.json({ ok: true });
    });
    void next;
  });
};
