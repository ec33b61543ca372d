/**
 * The demo's window into the simulated services: what the ACMP servers
 * hold, the 4me CIs and incidents, the Graph traffic and the device actions
 * Intune received, as a page (refreshing itself) and as JSON. It can also
 * play ACMP: "send a query action" publishes a job as an ACMP admin would,
 * and the page shows the status the connector reports back.
 *
 *   GET  /                          the page
 *   GET  /api/summary               counts (used by the demo test)
 *   GET  /api/acmp/<server>/devices devices stored by one ACMP server
 *   GET  /api/4me/cis | /api/4me/incidents
 *   POST /api/acmp/<server>/jobs    {action, devices?} → {jobId}; the status appears in /api/summary
 *   POST /api/graph/pace            {latencyMs?, pageSize?}: slows the simulated Graph (every request waits
 *                                   latencyMs, lists come in pages of pageSize), so a Preview's progress can be
 *                                   watched on a small tenant; {latencyMs: 0, pageSize: 1000} is the usual pace
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ActionName } from '../nodes/lib/contracts';
import { notificationSupported } from '../nodes/lib/actions/action-executor';
import type { FourMeSim } from './fourme';
import type { GraphSim } from './graph';
import type { AcmpServerSim } from './sics';
import type { SimTenant } from './tenant';

export interface DemoServices {
  tenant: SimTenant;
  graph: GraphSim;
  acmpServers: AcmpServerSim[];
  fourme: FourMeSim;
  fourmeAccount: string;
  /** The 4me instance's cap on new incidents per run and its compliance interval, to explain the incident count. */
  incidents?: { maxNewPerRun: number; everyMinutes: number };
}

interface JobRecord {
  jobId: string;
  serverId: string;
  action: ActionName;
  devices: number;
  sentAt: string;
  state: string;
  clients?: Array<{ acmpClientId: string; state: string; outcome?: string }>;
}

const JOB_ACTIONS: ActionName[] = ['sync', 'lock', 'notify'];

function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class DemoConsole {
  private server?: http.Server;
  private readonly jobs: JobRecord[] = [];

  constructor(private readonly s: DemoServices) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async start(port: number): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => this.json(res, 500, { error: err.message }));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  summary() {
    const account = this.s.fourme.account(this.s.fourmeAccount);
    const incidents = account.requests.filter((r) => r.category === 'incident');
    const stats = this.s.graph.stats;
    return {
      tenant: { devices: this.s.tenant.size },
      acmp: Object.fromEntries(this.s.acmpServers.map((srv) => [srv.serverId, { devices: srv.storedDevices().length }])),
      fourme: {
        configurationItems: account.configurationItems.length,
        inProduction: account.configurationItems.filter((c) => c.status === 'in_production').length,
        incidents: incidents.length,
        openIncidents: incidents.filter((r) => r.status !== 'completed').length,
      },
      graph: { requests: stats.requests, throttled: stats.throttled, actions: stats.actions },
      jobs: this.jobs,
    };
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body, null, 2));
  }

  private async body(req: http.IncomingMessage): Promise<Record<string, unknown>> {
    let raw = '';
    for await (const chunk of req) {
      raw += chunk;
      if (raw.length > 10_000) throw new Error('request too large');
    }
    if (!raw) return {};
    if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
    return JSON.parse(raw) as Record<string, unknown>;
  }

  private acmpServer(id: string): AcmpServerSim | undefined {
    return this.s.acmpServers.find((x) => x.serverId === id);
  }

  /**
   * The devices of an ACMP server that can receive the action, as Intune
   * decides it: a Company Portal notification reaches only iOS/iPadOS and
   * Android Enterprise personally-owned work profile devices (the product's
   * own rule, `notificationSupported`, applied to the tenant's record); lock
   * and sync go to any device.
   */
  devicesFor(srv: AcmpServerSim, action: ActionName) {
    const all = srv.storedDevices();
    if (action !== 'notify') return all;
    return all.filter((d) => {
      const rec = this.s.tenant.getDevice(d.id);
      return !!rec && notificationSupported(rec as unknown as Record<string, unknown>);
    });
  }

  /** Publishes a query-action job for the first devices of an ACMP server that can receive it, as an ACMP admin would. */
  sendJob(serverId: string, action: ActionName, count: number): JobRecord {
    const srv = this.acmpServer(serverId);
    if (!srv) throw new Error(`no ACMP server ${serverId}`);
    if (!JOB_ACTIONS.includes(action)) throw new Error(`the demo sends ${JOB_ACTIONS.join(', ')} only`);
    if (!srv.storedDevices().length) throw new Error(`ACMP server ${serverId} holds no devices yet: wait for the first sync`);
    const devices = this.devicesFor(srv, action).slice(0, Math.max(1, Math.min(20, count)));
    if (!devices.length) throw new Error(`ACMP server ${serverId} holds no device that can receive "${action}"`);
    const jobId = srv.emitJob({
      action,
      requestedBy: 'DEMO\\acmp.admin',
      clients: devices.map((d, i) => ({ acmpClientId: `CL-${String(i + 1).padStart(4, '0')}`, intuneId: d.id })),
      ...(action === 'notify' ? { notification: { title: 'Please open the Company Portal', body: 'Your device needs attention (demo).' } } : {}),
    });
    const rec: JobRecord = { jobId, serverId, action, devices: devices.length, sentAt: new Date().toISOString(), state: 'sent' };
    this.jobs.unshift(rec);
    this.jobs.length = Math.min(this.jobs.length, 20);
    srv.waitForJobStatus(jobId, 600_000).then(
      (st) => Object.assign(rec, { state: st.state, clients: st.clients.map((c) => ({ acmpClientId: c.acmpClientId, state: c.state, outcome: c.outcome })) }),
      () => Object.assign(rec, { state: 'no answer' }),
    );
    return rec;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(this.page());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/summary') return this.json(res, 200, this.summary());
    if (parts[0] === 'api' && parts[1] === 'acmp' && parts[2]) {
      const srv = this.acmpServer(parts[2]);
      if (!srv) return this.json(res, 404, { error: `no ACMP server ${parts[2]}` });
      if (req.method === 'GET' && parts[3] === 'devices') return this.json(res, 200, srv.storedDevices());
      if (req.method === 'POST' && parts[3] === 'jobs') {
        const b = await this.body(req);
        try {
          const rec = this.sendJob(srv.serverId, String(b.action ?? 'sync') as ActionName, Number(b.devices ?? 3));
          if ((req.headers['content-type'] ?? '').includes('form')) {
            res.writeHead(303, { Location: '/' });
            res.end();
            return;
          }
          return this.json(res, 202, rec);
        } catch (err) {
          return this.json(res, 400, { error: (err as Error).message });
        }
      }
    }
    if (req.method === 'POST' && url.pathname === '/api/graph/pace') {
      const b = await this.body(req);
      const latency = Number(b.latencyMs ?? 0);
      const pageSize = Number(b.pageSize ?? 1000);
      if (!Number.isFinite(latency) || latency < 0 || latency > 60_000 || !Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
        return this.json(res, 400, { error: 'latencyMs: 0 to 60000, pageSize: 1 to 1000' });
      }
      this.s.graph.setLatency(latency);
      this.s.graph.setPageSize(pageSize);
      return this.json(res, 200, { latencyMs: latency, pageSize });
    }
    if (req.method === 'GET' && parts[0] === 'api' && parts[1] === '4me') {
      const account = this.s.fourme.account(this.s.fourmeAccount);
      if (parts[2] === 'cis') return this.json(res, 200, account.configurationItems);
      if (parts[2] === 'incidents') return this.json(res, 200, account.requests.filter((r) => r.category === 'incident'));
    }
    this.json(res, 404, { error: 'not found' });
  }

  private page(): string {
    const sum = this.summary();
    const account = this.s.fourme.account(this.s.fourmeAccount);
    const rows = (cells: unknown[][]) => cells.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('');
    const acmp = this.s.acmpServers
      .map((srv) => {
        const devs = srv.storedDevices();
        return `<h3>ACMP server ${esc(srv.serverId)}: ${devs.length} mobile devices</h3>
<form method="post" action="/api/acmp/${esc(srv.serverId)}/jobs">Send a query action as an ACMP admin:
<select name="action">${JOB_ACTIONS.map((a) => `<option>${a}</option>`).join('')}</select> for the first
<input name="devices" value="3" size="2"> devices that can receive it <button>send</button>
<br><small>A notification (Company Portal) reaches only iOS/iPadOS and Android Enterprise personally-owned work profile devices:
${this.devicesFor(srv, 'notify').length} of the ${devs.length} here; the console picks those.</small></form>
<table><tr><th>Intune id</th><th>name</th><th>serial</th><th>OS</th><th>user</th></tr>${rows(
          devs.slice(0, 25).map((d) => [d.id, d.name, d.serialNumber, `${d.os.name} ${d.os.version ?? ''}`, d.user?.upn ?? '']),
        )}</table>`;
      })
      .join('\n');
    const incidents = account.requests.filter((r) => r.category === 'incident');
    return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Intune connector demo: simulated services</title>
<style>body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eee}</style></head><body>
<h1>Simulated services of the Intune connector demo</h1>
<p>Tenant: ${sum.tenant.devices} devices · Graph requests so far: ${sum.graph.requests} (throttled ${sum.graph.throttled}) · device actions received: ${esc(JSON.stringify(sum.graph.actions))}</p>
<h2>ACMP (through SICS)</h2>${acmp}
<h2>Query actions sent from here</h2>
<table><tr><th>job</th><th>server</th><th>action</th><th>devices</th><th>state reported back</th><th>clients</th></tr>${rows(
      this.jobs.map((j) => [j.jobId, j.serverId, j.action, j.devices, j.state, (j.clients ?? []).map((c) => `${c.acmpClientId}: ${c.outcome ?? c.state}`).join(', ')]),
    )}</table>
<h2>4me account ${esc(this.s.fourmeAccount)}</h2>
<p>${sum.fourme.configurationItems} configuration items (${sum.fourme.inProduction} in production) · ${sum.fourme.incidents} incidents (${sum.fourme.openIncidents} open)</p>
${this.s.incidents ? `<p><small>One incident per compliance violation, but at most ${this.s.incidents.maxNewPerRun} new ones per compliance run (the 4me node's "New per run at most"): the rest are raised by the next runs, every ${this.s.incidents.everyMinutes} minutes.</small></p>` : ''}
<table><tr><th>CI</th><th>serial</th><th>status</th><th>source id</th></tr>${rows(account.configurationItems.slice(0, 25).map((c) => [c.name, c.serialNr, c.status, c.sourceID]))}</table>
<table><tr><th>incident</th><th>subject</th><th>status</th></tr>${rows(incidents.slice(0, 25).map((r) => [r.requestId, r.subject, r.status]))}</table>
<p>JSON: <a href="/api/summary">summary</a> · <a href="/api/4me/cis">4me CIs</a> · <a href="/api/4me/incidents">4me incidents</a>${this.s.acmpServers.map((x) => ` · <a href="/api/acmp/${esc(x.serverId)}/devices">${esc(x.serverId)} devices</a>`).join('')}</p>
</body></html>`;
  }
}
