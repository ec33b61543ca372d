/**
 * The software part of a device run: export Intune's discovered-apps report
 * once (export-job.ts), download it (report-download.ts), read it row by row
 * into the compact per-device index (report-file.ts, software-index.ts), and
 * then hand each device that the run passes on its apps. The device source
 * decides which devices go out; this module only adds `software` to them,
 * so both always describe the same devices.
 */
import type https from 'node:https';
import type { Device } from '../contracts';
import type { GraphClient, StatsSink } from '../graph/graph-client';
import type { GraphVersion } from '../graph/graph-schema';
import { runAppExportJob, type PollOptions } from './export-job';
import { downloadReport } from './report-download';
import { readZippedCsv } from './report-file';
import { appRowOf } from './app-rows';
import { SoftwareIndexBuilder, type SoftwareIndex } from './software-index';

export interface SoftwareReadOptions extends PollOptions {
  graph: Pick<GraphClient, 'get' | 'post'>;
  /** The connection's agent: the download goes through the same proxy and CAs as Graph. */
  agent: https.Agent;
  version: GraphVersion;
  signal?: AbortSignal;
  stats?: StatsSink;
  /** Stages, for status dots: the job's status while waiting, then 'downloading' and 'reading'. */
  onStage?: (stage: string) => void;
}

export interface SoftwareRead {
  index: SoftwareIndex;
  /** Graph requests for the report (job creation + status checks); the download is not a Graph request. */
  exportRequests: number;
  /** Size of the downloaded zip. */
  bytes: number;
  /** Rows in the report. */
  rows: number;
  jobId: string;
}

export async function readDiscoveredApps(o: SoftwareReadOptions): Promise<SoftwareRead> {
  o.onStage?.('notStarted');
  const { job, requests } = await runAppExportJob({ ...o, onStatus: (s) => o.onStage?.(s) });
  o.onStage?.('downloading');
  const file = await downloadReport(job.url!, { agent: o.agent, signal: o.signal });
  try {
    o.onStage?.('reading');
    const builder = new SoftwareIndexBuilder();
    for await (const rec of readZippedCsv(file.file, o.signal)) builder.add(appRowOf(rec));
    const rows = builder.rows + builder.skippedRows;
    return { index: builder.seal(), exportRequests: requests, bytes: file.bytes, rows, jobId: job.id };
  } finally {
    await file.dispose();
  }
}

/** What the devices of a run took: counted once per device passed on. */
export class SoftwareTally {
  devices = 0;
  /** Devices passed on that the report lists no app for (`software: []`). */
  devicesWithout = 0;
  installations = 0;
  private seen: Uint8Array;
  private distinct = 0;

  constructor(private readonly index: SoftwareIndex) {
    this.seen = new Uint8Array(index.distinctApps);
  }

  /** Distinct apps among the devices passed on. */
  get distinctApps(): number {
    return this.distinct;
  }

  /** Counts a device's apps without building them (the preview). */
  count(deviceId: string): void {
    const idx = this.index.indexesOf(deviceId);
    this.devices++;
    if (!idx.length) this.devicesWithout++;
    this.installations += idx.length;
    for (const i of idx) {
      if (!this.seen[i]) {
        this.seen[i] = 1;
        this.distinct++;
      }
    }
  }

  /** Sets `software` on each device (`[]` when the report lists none for it) and counts. */
  attach(devices: Device[]): void {
    for (const d of devices) {
      this.count(d.id);
      d.software = this.index.appsOf(d.id);
    }
  }

  summary(): { devices: number; devicesWithoutApps: number; installations: number; distinctApps: number } {
    return { devices: this.devices, devicesWithoutApps: this.devicesWithout, installations: this.installations, distinctApps: this.distinct };
  }
}
