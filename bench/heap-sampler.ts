/**
 * Loaded into the benchmarked Node-RED process with `--require` (the bench
 * passes it in NODE_OPTIONS when BENCH_HEAP_SAMPLES names a file): every
 * 250 ms it appends one line of JSON with the process's memory by kind —
 * RSS, V8's spaces (committed bytes: new, old, large objects, code, …) and
 * the memory outside V8's heap (Buffers, ArrayBuffers). The bench reads the
 * lines of a scenario's time span and reports the breakdown at its peak RSS,
 * which is how the report says where each MB goes.
 *
 * Why a require hook and not heap snapshots alone: a snapshot shows what is
 * live, but the peak RSS of a default-sized heap is mostly memory V8 has not
 * collected yet; only the spaces' committed sizes over time show that. A
 * `--require` changes nothing of the heap sizing being measured.
 */
import fs from 'node:fs';
import v8 from 'node:v8';

const file = process.env.BENCH_HEAP_SAMPLES;
const MB = 1024 * 1024;
const round = (n: number) => Math.round((n / MB) * 10) / 10;

if (file) {
  const fd = fs.openSync(file, 'a');
  const sample = () => {
    const m = process.memoryUsage();
    const spaces: Record<string, number> = {};
    for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name.replace(/_space$/, '')] = round(s.space_size);
    const line = { t: Date.now(), rss: round(m.rss), heapTotal: round(m.heapTotal), heapUsed: round(m.heapUsed), external: round(m.external), arrayBuffers: round(m.arrayBuffers), spaces };
    fs.writeSync(fd, JSON.stringify(line) + '\n');
  };
  setInterval(sample, 250).unref();
}
