/**
 * One stack for the whole browser suite, started by the first test file that
 * asks for it and stopped after the last: headless Chromium (first, so that a
 * missing browser fails the suite at once), the simulated identity platform
 * and Graph, and a real Node-RED with the packed package installed.
 *
 * Each test file starts from a known flow (`reset`) and its own browser
 * context (`editor`), so files do not depend on each other's order.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../../../sim/node-red-runner';
import { startSimEnv, configFlow, type SimEnv } from '../../support/sim-env';
import { launchChromium, cleanupChromiumDirs } from './chromium';
import { Editor } from './editor';

export const outputDir = process.env.TEST_OUTPUT_DIR || path.join(repoRoot, '.test-output');
export const screenshotDir = path.join(outputDir, 'screenshots');

/** Devices in the simulated tenant: small, so a preview and a run take a second. */
export const TENANT_DEVICES = 60;

export const FLOW_TAB = 'tab-intune';
export const TLS_ID = 'sim-ca';
export const CONFIG_ID = 'sim-cfg';

export interface Stack {
  env: SimEnv;
  red: NodeRedProcess;
  browser: Browser;
  /** Replaces the deployed flows: one tab, the sim CA as a tls-config, plus `nodes`. */
  reset(nodes?: Record<string, unknown>[]): Promise<void>;
  /** A fresh browser context with the editor loaded. */
  editor(opts?: { language?: string }): Promise<Editor>;
  /** The intune-config node (with credentials) of the secret app, for tests that need a deployed connection. */
  deployedConfig(): Record<string, unknown>[];
}

let pending: Promise<Stack> | undefined;
let started: Stack | undefined;
let stopAll: (() => Promise<void>) | undefined;

async function start(): Promise<Stack> {
  fs.mkdirSync(screenshotDir, { recursive: true });
  // Pictures of failures from an earlier run would mislead.
  for (const f of fs.readdirSync(screenshotDir)) if (f.startsWith('FAILED-')) fs.rmSync(path.join(screenshotDir, f), { force: true });
  const browser = await launchChromium();
  let env: SimEnv | undefined;
  let red: NodeRedProcess | undefined;
  stopAll = async () => {
    await browser.close().catch(() => undefined);
    cleanupChromiumDirs();
    await red?.stop();
    await env?.stop();
  };
  env = await startSimEnv({ devices: TENANT_DEVICES, seed: 7 });
  red = await startNodeRed({ install: 'pack', settings: { lang: 'en-US' } });
  const e = env;
  const r = red;
  const stack: Stack = {
    env: e,
    red: r,
    browser,
    deployedConfig() {
      const { nodes, credentials } = configFlow(e, { id: CONFIG_ID });
      return nodes
        .filter((n) => n.type === 'intune-config')
        .map((n) => ({ ...n, tls: TLS_ID, credentials: credentials[n.id as string] }));
    },
    async reset(nodes = []) {
      const flows = [
        { id: FLOW_TAB, type: 'tab', label: 'Intune', disabled: false, info: '' },
        { id: TLS_ID, type: 'tls-config', name: 'sim CA', cert: '', key: '', ca: e.caFile, verifyservercert: true },
        ...nodes.map((n) => (n.type === 'tls-config' || n.type === 'intune-config' || n.z ? n : { ...n, z: FLOW_TAB })),
      ];
      const mark = r.mark();
      const res = await r.admin.post('/flows', { flows }, { headers: { 'Node-RED-Deployment-Type': 'full' } });
      if (res.status !== 200) throw new Error(`deploying the test flow failed: ${res.status} ${JSON.stringify(res.data)}`);
      await r.waitForLog(/Started flows/, 30_000, mark);
    },
    editor(opts = {}) {
      return Editor.open(browser, r.url, screenshotDir, opts);
    },
  };
  started = stack;
  return stack;
}

/** The shared stack; the first call starts it. */
export function browserStack(): Promise<Stack> {
  if (!pending) {
    pending = start().catch(async (err) => {
      await stopAll?.().catch(() => undefined);
      throw err;
    });
  }
  return pending;
}

/** Stops the stack (root-level after hook below). */
export async function stopBrowserStack(): Promise<void> {
  const p = pending;
  pending = undefined;
  if (!p) return;
  await p.catch(() => undefined);
  await stopAll?.();
  started = undefined;
}

/** The last part of Node-RED's log, for failure messages. */
export function redLogTail(chars = 1500): string {
  return started ? started.red.logs().slice(-chars) : '(Node-RED not started)';
}

// Root hook: registered once, when the first browser test file imports this module.
after(async function () {
  this.timeout(60_000);
  await stopBrowserStack();
});

/**
 * Per-file hooks: a screenshot and the Node-RED log tail when a test fails.
 * Call inside a describe(); `get` returns the file's current editor. With
 * `closeDialogs`, open dialogs are cancelled afterwards (for files whose
 * tests each start from the canvas).
 */
export function onFailure(get: () => Editor | undefined, opts: { closeDialogs?: boolean } = {}): void {
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    const ed = get();
    const name = `FAILED-${this.currentTest.fullTitle()}`.slice(0, 120);
    if (ed) await ed.screenshot(name).catch(() => undefined);
    // A failed step must not leave a dialog open over the canvas for the next one.
    if (ed && opts.closeDialogs) await ed.closeAllDialogs().catch(() => undefined);
    const errors = ed?.errors.length ? `\nbrowser errors:\n  ${ed.errors.join('\n  ')}` : '';
    // eslint-disable-next-line no-console
    console.log(`\n--- Node-RED log (tail) for "${this.currentTest.title}" ---\n${redLogTail()}${errors}\n---`);
  });
}
