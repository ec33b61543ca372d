/**
 * The floor: the fewest requests the services' documented limits allow for
 * a piece of work, and the least time those limits impose on them.
 *
 * Time comes from a greedy schedule: every request is sent at the earliest
 * moment at which every sliding window it counts in still has room (a
 * request counts `weight` in each window it names; it fits when the
 * window's sum plus its weight stays within the limit). Requests that depend
 * on each other (Graph's @odata.nextLink paging) add the round trip of each
 * step instead. The last request's round trip is added at the end.
 */

export interface WindowLimit {
  limit: number;
  ms: number;
}

export interface FloorRequest {
  /** Window name → weight this request counts there. */
  counts: Record<string, number>;
}

/** Time (ms) at which the last of `requests` can be sent, in order, under `windows` (sliding, starting empty). */
export function scheduleMs(requests: FloorRequest[], windows: Record<string, WindowLimit>): number {
  const state = new Map<string, { t: number[]; w: number[]; head: number; sum: number }>();
  for (const k of Object.keys(windows)) state.set(k, { t: [], w: [], head: 0, sum: 0 });
  let now = 0;
  for (const r of requests) {
    for (;;) {
      let next = now;
      for (const [name, weight] of Object.entries(r.counts)) {
        const lim = windows[name];
        if (!lim) throw new Error(`unknown window ${name}`);
        if (weight > lim.limit) throw new Error(`a request of weight ${weight} never fits window ${name} (${lim.limit})`);
        const s = state.get(name)!;
        while (s.head < s.t.length && s.t[s.head] <= now - lim.ms) s.sum -= s.w[s.head++];
        // Earliest time enough of the oldest entries have left the window.
        let sum = s.sum;
        let i = s.head;
        let at = now;
        while (sum + weight > lim.limit) {
          at = s.t[i] + lim.ms;
          sum -= s.w[i++];
        }
        next = Math.max(next, at);
      }
      if (next === now) break;
      now = next;
    }
    for (const [name, weight] of Object.entries(r.counts)) {
      const s = state.get(name)!;
      s.t.push(now);
      s.w.push(weight);
      s.sum += weight;
    }
  }
  return now;
}

// ------------------------------------------------------------------ the services' limits

/** 4me (per token): 20 requests / 2 s, 3600 requests / h, 5000 cost points / h. */
export function fourmeWindows(scale: number): Record<string, WindowLimit> {
  return {
    burst: { limit: 20, ms: 2000 / scale },
    hourly: { limit: 3600, ms: 3_600_000 / scale },
    cost: { limit: 5000, ms: 3_600_000 / scale },
  };
}

/** Intune devices bucket per app: 2000 requests and 200 writes / 20 s; device configuration (compliance): 1000 / 100; reports like configuration. */
export function graphWindows(scale: number): Record<string, WindowLimit> {
  const ms = 20_000 / scale;
  return {
    devices: { limit: 2000, ms },
    deviceWrites: { limit: 200, ms },
    configuration: { limit: 1000, ms },
    reports: { limit: 1000, ms },
  };
}

export interface ServiceFloor {
  requests: number;
  /** Write requests among them (records written, for 4me and ACMP). */
  writes: number;
  /** Cost points (4me, the simulator's model: ceil(nodes / 100) + 1 per mutation). */
  cost?: number;
  /** Least time the limits (and dependent round trips) impose, ms. */
  timeMs: number;
  /** How the figure was computed, for the report. */
  how: string;
}

/**
 * 4me, writing `changed` devices as CIs and looking up `emails` people:
 * ceil(changed / 100) discovered-CI uploads (100 per call is the documented
 * maximum; cost 2 each), and — 4me's only bound on a query is 500,000 nodes
 * per request — all look-ups in one request of ceil(emails / 100)
 * connections of 100 (cost ceil(emails / 100)).
 */
export function fourmeCiFloor(changed: number, emails: number, scale: number, latencyMs: number): ServiceFloor {
  const uploads = Math.ceil(changed / 100);
  const lookups = emails > 0 ? Math.ceil(emails / 500_000) : 0;
  const reqs: FloorRequest[] = [];
  for (let i = 0; i < lookups; i++) reqs.push({ counts: { burst: 1, hourly: 1, cost: Math.ceil(Math.min(emails, 500_000) / 100) } });
  for (let i = 0; i < uploads; i++) reqs.push({ counts: { burst: 1, hourly: 1, cost: 2 } });
  const n = reqs.length;
  return {
    requests: n,
    writes: uploads,
    cost: reqs.reduce((a, r) => a + r.counts.cost, 0),
    timeMs: n ? scheduleMs(reqs, fourmeWindows(scale)) + latencyMs / scale : 0,
    how: `ceil(${changed} CIs / 100) = ${uploads} uploads (cost 2 each) + ${lookups} look-up request${lookups === 1 ? '' : 's'} for ${emails} addresses (≤ 500,000 nodes per request; cost ceil(addresses / 100)); sent as early as 20 / 2 s, 3,600 / h and 5,000 points / h allow`,
  };
}

/**
 * 4me, raising `incidents` incidents: one requestCreate each (4me has no
 * bulk create; cost 2 each) + one request holding every look-up (CIs,
 * people, open requests of the source; cost ceil(nodes / 100)).
 */
export function fourmeIncidentFloor(incidents: number, lookupNodes: number, scale: number, latencyMs: number): ServiceFloor {
  const reqs: FloorRequest[] = [];
  if (lookupNodes > 0) reqs.push({ counts: { burst: 1, hourly: 1, cost: Math.ceil(lookupNodes / 100) } });
  for (let i = 0; i < incidents; i++) reqs.push({ counts: { burst: 1, hourly: 1, cost: 2 } });
  return {
    requests: reqs.length,
    writes: incidents,
    cost: reqs.reduce((a, r) => a + r.counts.cost, 0),
    timeMs: reqs.length ? scheduleMs(reqs, fourmeWindows(scale)) + latencyMs / scale : 0,
    how: `${incidents} requestCreate (cost 2 each) + 1 request with every look-up (${lookupNodes} nodes); sent as early as 20 / 2 s, 3,600 / h and 5,000 points / h allow`,
  };
}

/** Graph, reading `devices` managed devices: ceil(devices / 1000) pages, one after the other (each needs the previous page's nextLink). */
export function graphReadFloor(devices: number, scale: number, latencyMs: number): ServiceFloor {
  const pages = Math.max(1, Math.ceil(devices / 1000));
  const reqs: FloorRequest[] = Array.from({ length: pages }, () => ({ counts: { devices: 1 } }));
  const limitMs = scheduleMs(reqs, graphWindows(scale));
  return {
    requests: pages,
    writes: 0,
    timeMs: Math.max(limitMs, 0) + (pages * latencyMs) / scale,
    how: `ceil(${devices} / 1,000) = ${pages} pages (1,000 is Graph's page size for managedDevices), fetched in sequence (nextLink): ${pages} round trips`,
  };
}

/** Graph, one device action on `devices` devices: `devices` writes (in $batches of 20) under 200 writes / 20 s. */
export function graphActionFloor(devices: number, scale: number, latencyMs: number): ServiceFloor {
  const batches = Math.ceil(devices / 20);
  const reqs: FloorRequest[] = [];
  for (let b = 0; b < batches; b++) {
    const n = Math.min(20, devices - b * 20);
    reqs.push({ counts: { devices: n, deviceWrites: n } });
  }
  return {
    requests: batches,
    writes: devices,
    timeMs: scheduleMs(reqs, graphWindows(scale)) + latencyMs / scale,
    how: `${devices} writes in ceil(${devices} / 20) = ${batches} $batch requests, sent as early as 200 writes / 20 s allow`,
  };
}

/**
 * Graph, the compliance work: the non-compliance report (1,000 rows a page,
 * in sequence) — which names every failing setting of every device × policy
 * — plus one request for the policy catalogue.
 */
export function graphComplianceFloor(reportRows: number, scale: number, latencyMs: number): ServiceFloor {
  const pages = Math.max(1, Math.ceil(reportRows / 1000));
  return {
    requests: pages + 1,
    writes: 0,
    timeMs: ((pages + 1) * latencyMs) / scale,
    how: `policy catalogue (1) + ceil(${reportRows} report rows / 1,000) = ${pages} report pages, in sequence`,
  };
}

/** ACMP over SICS: no published limit; one inventory message per batch of `batchSize` devices. */
export function acmpFloor(changed: number, batchSize: number): ServiceFloor {
  const messages = Math.ceil(changed / batchSize);
  return {
    requests: messages,
    writes: messages,
    timeMs: 0,
    how: `SICS publishes no limits: ceil(${changed} devices / ${batchSize} per message) = ${messages} publishes, no time imposed`,
  };
}
