/**
 * The duplicate pass of a full run, read as several listings side by side.
 *
 * Why: Graph pages managedDevices 1,000 at a time, and each page follows the
 * previous page's next link, so one listing of 100,000 devices is 100 round
 * trips in a row. No device page can go out before the pass has read every
 * record (device-duplicates.ts), so this is time in which the sinks wait.
 * The pass needs every record once, in any order: SPLIT_PARTS listings of
 * disjoint ranges of `enrolledDateTime` read it in about 1 / SPLIT_PARTS of
 * the time, within Intune's 2,000 requests per 20 s.
 *
 * Why `enrolledDateTime` (docs/graph-facts.md): the managedDevice schema
 * lists `lt` and `gt` for it, it is not nullable, and a record keeps it (a
 * re-enrolment is a new record), so each record is in exactly one range for
 * the whole pass. `lastSyncDateTime` would move records between ranges while
 * they are read.
 *
 * - Bounds: quantiles of the first page of the plain listing (a sample; those
 *   records are read again by the parts and not learned from the sample). If
 *   that page is the whole tenant, it is the whole pass. A sample that is not
 *   representative makes the parts unequal: slower, never wrong.
 * - Ranges: `lt b1`, `gt b1 − 1 ms and lt b2`, …, `gt bK − 1 ms` (there is no
 *   `ge`). A record in a 1 ms overlap is read twice, which the duplicate index
 *   does not mind (same serial, same last sync: it is kept).
 * - A middle range puts two clauses on one property, joined with `and` as the
 *   description asks of combinations. Should Graph refuse a part (HTTP 400),
 *   the pass is read again as one plain listing (`onFallback` says why).
 */
import type { CallOptions, GraphClient } from '../graph/graph-client';
import { GraphRequestError } from '../graph/graph-errors';

/** Listings side by side; each has one page in flight and one read ahead. */
export const SPLIT_PARTS = 4;

export interface SplitListingOptions extends Pick<CallOptions, 'version' | 'signal' | 'stats'> {
  /** `$select`; must include `enrolledDateTime`. */
  select: string[];
  parts?: number;
  /** Graph refused the ranges: the pass goes on as one listing. */
  onFallback?: (err: GraphRequestError) => void;
}

type Dated = { enrolledDateTime?: string | null };

/** The `$filter` of each part, from the sample's enrolment times (ms); one part (no filter) when they do not spread. */
export function enrolledRanges(samples: number[], parts: number): Array<string | undefined> {
  const sorted = samples.filter(Number.isFinite).sort((a, b) => a - b);
  const bounds: number[] = [];
  for (let k = 1; k < parts && sorted.length; k++) {
    const b = sorted[Math.floor((k * sorted.length) / parts)];
    if (b > (bounds[bounds.length - 1] ?? -Infinity) && b > sorted[0]) bounds.push(b);
  }
  if (!bounds.length) return [undefined];
  const iso = (ms: number) => new Date(ms).toISOString();
  return bounds
    .map((b, i) => (i === 0 ? `enrolledDateTime lt ${iso(b)}` : `enrolledDateTime gt ${iso(bounds[i - 1] - 1)} and enrolledDateTime lt ${iso(b)}`))
    .concat(`enrolledDateTime gt ${iso(bounds[bounds.length - 1] - 1)}`);
}

/** Every record of `path`, page by page in the order they arrive, numbered from 1. */
export async function* splitListing<T extends Dated>(graph: Pick<GraphClient, 'pages'>, path: string, o: SplitListingOptions): AsyncGenerator<{ items: T[]; page: number }> {
  const base = { version: o.version, select: o.select, signal: o.signal, stats: o.stats };
  let page = 0;
  const plain = graph.pages<T>(path, base);
  const first = await plain.next();
  if (first.done) return;
  if (first.value.more !== true) {
    // The whole tenant in one page, or a listing that does not say whether more follow: read on as one.
    yield { items: first.value.items, page: ++page };
    for (let r = await plain.next(); !r.done; r = await plain.next()) yield { items: r.value.items, page: ++page };
    return;
  }
  await plain.return(undefined);
  const filters = enrolledRanges(
    first.value.items.map((r) => (r?.enrolledDateTime ? Date.parse(r.enrolledDateTime) : NaN)),
    o.parts ?? SPLIT_PARTS,
  );
  try {
    for await (const items of merged<T>(graph, path, base, filters)) yield { items, page: ++page };
  } catch (err) {
    if (!(err instanceof GraphRequestError) || err.status !== 400 || filters.length < 2) throw err;
    o.onFallback?.(err);
    for await (const p of graph.pages<T>(path, base)) yield { items: p.items, page: ++page };
  }
}

/** The pages of one listing per filter, as they come; the first failure stops them all. */
async function* merged<T>(graph: Pick<GraphClient, 'pages'>, path: string, base: CallOptions, filters: Array<string | undefined>): AsyncGenerator<T[]> {
  const stop = new AbortController();
  const outer = base.signal;
  const onAbort = () => stop.abort(outer?.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  if (outer?.aborted) onAbort();
  const lists = filters.map((filter) => graph.pages<T>(path, { ...base, filter, signal: stop.signal }));
  type Step = { i: number; r?: IteratorResult<{ items: T[] }>; err?: unknown };
  const pending = new Map<number, Promise<Step>>();
  const pull = (i: number) =>
    pending.set(
      i,
      lists[i].next().then(
        (r) => ({ i, r }),
        (err: unknown) => ({ i, err }),
      ),
    );
  lists.forEach((_, i) => pull(i));
  try {
    while (pending.size) {
      const s = await Promise.race(pending.values());
      pending.delete(s.i);
      if (s.err !== undefined) throw s.err;
      if (s.r!.done) continue;
      // Ask for this part's next page before handing this one on.
      pull(s.i);
      yield s.r!.value.items;
    }
  } finally {
    outer?.removeEventListener('abort', onAbort);
    if (pending.size) {
      stop.abort(new Error('listing stopped'));
      await Promise.allSettled(pending.values());
    }
  }
}
