/**
 * Starts Debian's Chromium (never a downloaded browser) headless through
 * playwright-core. When it cannot start, the error says so in capitals and
 * says how to fix it: the browser suite must fail, never skip.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';

/** CHROMIUM_PATH, else Debian's package. */
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Flags for this machine: as root no sandbox; no GPU; and no background
 * networking, whose connections the closed network refuses many at a time.
 */
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--lang=en-US',
];

export class ChromiumUnavailable extends Error {
  override name = 'ChromiumUnavailable';
}

function loud(reason: string): ChromiumUnavailable {
  const bar = '#'.repeat(78);
  return new ChromiumUnavailable(
    [
      '',
      bar,
      '#  BROWSER TESTS CANNOT RUN: Chromium did not start.',
      `#  ${reason}`,
      `#  Binary: ${chromiumPath}  (override with CHROMIUM_PATH)`,
      '#  Install Debian\'s Chromium with:  bash scripts/browser-deps.sh',
      '#  (apt-get install -y chromium). The suite fails instead of skipping.',
      bar,
      '',
    ].join('\n'),
  );
}

let userDataDirs: string[] = [];

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath)) throw loud(`${chromiumPath} does not exist.`);
  let chromium: typeof import('playwright-core').chromium;
  try {
    chromium = require('playwright-core').chromium;
  } catch (err) {
    throw loud(`playwright-core is not installed (${(err as Error).message}); run npm ci.`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-chromium-'));
  userDataDirs.push(dataDir);
  try {
    // launch() makes its own empty profile; the data dir holds crash dumps etc.
    return await chromium.launch({
      executablePath: chromiumPath,
      args: [...CHROMIUM_ARGS, `--crash-dumps-dir=${dataDir}`],
      timeout: 60_000,
      env: { ...process.env, HOME: dataDir },
    });
  } catch (err) {
    throw loud(String((err as Error).message).split('\n').slice(0, 6).join(' | '));
  }
}

export function cleanupChromiumDirs(): void {
  for (const d of userDataDirs) fs.rmSync(d, { recursive: true, force: true });
  userDataDirs = [];
}
