/**
 * Reads the rows of a downloaded report: the zip Intune's export job
 * produces holds one CSV file. yauzl reads the zip from the file on disk
 * (its central directory, not a guess from the stream), csv-parse reads the
 * CSV as a stream (quotes, embedded commas and line breaks, the UTF-8 BOM),
 * so only one record is in memory at a time.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { parse } from 'csv-parse';
import { AppReportFormatError, checkHeader } from './app-rows';

/** The one .csv entry of the zip, as a stream. */
async function csvEntry(zip: yauzl.ZipFile): Promise<Readable> {
  zip.readEntry();
  for (;;) {
    const [entry] = (await Promise.race([once(zip, 'entry'), once(zip, 'end').then(() => [null])])) as [yauzl.Entry | null];
    if (!entry) throw new AppReportFormatError('The report file holds no CSV file');
    if (/\.csv$/i.test(entry.fileName)) return zip.openReadStreamPromise(entry);
    zip.readEntry();
  }
}

/**
 * Every record of the CSV in the zip at `file`, header → value. Stops (and
 * closes the file) when the caller stops or the signal aborts.
 */
export async function* readZippedCsv(file: string, signal?: AbortSignal): AsyncGenerator<Record<string, string>> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  try {
    const input = await csvEntry(zip);
    const parser = parse({
      bom: true,
      columns: (header: string[]) => {
        checkHeader(header);
        return header;
      },
      relax_column_count: true,
      skip_empty_lines: true,
    });
    input.pipe(parser);
    input.on('error', (e) => parser.destroy(e));
    try {
      for await (const rec of parser) {
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        yield rec as Record<string, string>;
      }
    } finally {
      input.unpipe(parser);
      input.destroy();
      parser.destroy();
    }
  } finally {
    zip.close();
  }
}
