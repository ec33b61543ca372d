/**
 * Downloads the finished report from the link the export job returned. The
 * link is not a Graph URL: it points at Azure storage and carries its own
 * short-lived signature (a SAS), so the request goes WITHOUT the Graph token
 * (our token must never leave for another host), through the connection's
 * agent (the same proxy and trusted CAs as every Graph call). The link is a
 * secret as long as it is valid: it never appears in a message or a log.
 *
 * The file is streamed to a private temporary directory, not held in memory;
 * the caller removes it with `dispose()`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type https from 'node:https';
import type { Readable } from 'node:stream';
import { createAxios } from '../shared/http-transport';
import { sanitiseTransportError } from '../graph/graph-errors';

export class ReportDownloadError extends Error {
  constructor(
    message: string,
    readonly code: 'linkExpired' | 'downloadFailed' | 'invalidLink',
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ReportDownloadError';
  }
}

export interface DownloadedReport {
  file: string;
  bytes: number;
  dispose(): Promise<void>;
}

export interface DownloadOptions {
  agent: https.Agent;
  signal?: AbortSignal;
  /** Per-request timeout (ms) until the answer starts; the body may take longer. */
  timeoutMs?: number;
}

/** Drains and discards an error answer's body (a few hundred bytes of XML from storage). */
async function drain(s: Readable): Promise<void> {
  s.resume();
  await new Promise<void>((r) => {
    s.once('end', r);
    s.once('error', () => r());
    s.once('close', r);
  });
}

export async function downloadReport(url: string, o: DownloadOptions): Promise<DownloadedReport> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new ReportDownloadError('The export job returned a download link that is not a URL', 'invalidLink');
  }
  if (target.protocol !== 'https:') throw new ReportDownloadError(`The export job returned a download link that is not https (${target.protocol})`, 'invalidLink');
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'intune-apps-'));
  const dispose = () => fs.promises.rm(dir, { recursive: true, force: true });
  const file = path.join(dir, 'report.zip');
  try {
    const http = createAxios(o.agent, o.timeoutMs ?? 60_000);
    // No Authorization header: the signature in the link is the credential.
    const res = await http.get<Readable>(target.toString(), { responseType: 'stream', signal: o.signal, headers: { Accept: 'application/zip, application/octet-stream' } });
    if (res.status !== 200) {
      await drain(res.data);
      // Azure storage answers 403 AuthenticationFailed once the link's signature has expired.
      if (res.status === 403) throw new ReportDownloadError(`The report's download link was refused (HTTP 403 from ${target.host}): it has expired or is not valid`, 'linkExpired', 403);
      throw new ReportDownloadError(`Downloading the report from ${target.host} failed with HTTP ${res.status}`, 'downloadFailed', res.status);
    }
    let bytes = 0;
    res.data.on('data', (c: Buffer) => (bytes += c.length));
    await pipeline(res.data, fs.createWriteStream(file, { mode: 0o600 }), { signal: o.signal });
    return { file, bytes, dispose };
  } catch (err) {
    await dispose();
    if (err instanceof ReportDownloadError) throw err;
    if ((err as Error)?.name === 'AbortError' || (err as Error)?.name === 'CanceledError' || o.signal?.aborted) throw o.signal?.reason ?? err;
    // Transport errors from axios carry the request config (URL with its signature): keep code and message only.
    const e = sanitiseTransportError(err);
    throw new ReportDownloadError(`Downloading the report from ${target.host} failed: ${e.message.replace(url, target.host)}`, 'downloadFailed');
  }
}
