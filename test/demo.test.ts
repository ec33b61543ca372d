/**
 * `npm run demo` the way a new user runs it: in a fresh copy of the
 * repository (what a clone holds, with the installed node_modules), the one
 * command from the README, then the editor and a completed first sync are
 * observed, ACMP query actions go through (a notification only to devices
 * that can receive one), and Ctrl-C (SIGINT to the whole process group, as a
 * terminal sends it) leaves nothing running. Then the demo run as npm runs it
 * (`sh -c "node build/sim/demo.js"`) stops, Node-RED included, when a script
 * signals it: SIGINT to the pid in .demo/demo.pid, or SIGTERM to the shell
 * (npm passes SIGTERM to it; the shell dies and the demo is left alone).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, repoRoot } from '../sim/node-red-runner';
import { SimTenant } from '../sim/tenant';
import { parseFilterSettings } from '../nodes/lib/devices/device-filters';
import { deviceGroundTruth } from './support/device-fixtures';

const DEVICES = 300;

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('demo: npm run demo in a fresh copy of the repository', function () {
  this.timeout(300_000);
  let copy: string;
  let child: ChildProcess | undefined;
  let out = '';
  const ports: Record<string, number> = {};

  before(async () => {
    copy = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-demo-clone-'));
    // What a clone holds: the tracked files (and new ones not ignored, when run before a commit).
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      const src = path.join(repoRoot, f);
      if (!fs.existsSync(src)) continue;
      fs.mkdirSync(path.dirname(path.join(copy, f)), { recursive: true });
      fs.copyFileSync(src, path.join(copy, f));
    }
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
    for (const k of ['DEMO_PORT', 'DEMO_CONSOLE_PORT', 'DEMO_IDENTITY_PORT', 'DEMO_GRAPH_PORT', 'DEMO_SICS_PORT', 'DEMO_4ME_PORT']) ports[k] = await freePort();
  });
  after(() => {
    if (child?.pid && groupAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
    if (copy) fs.rmSync(copy, { recursive: true, force: true });
  });

  it('starts the sims and a Node-RED with an ACMP and a 4me instance, syncs at once, takes a query action, and stops on SIGINT to the pid of npm', async () => {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), DEMO_DEVICES: String(DEVICES) };
    for (const [k, v] of Object.entries(ports)) env[k] = String(v);
    child = spawn('npm', ['run', 'demo'], { cwd: copy, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    const until = Date.now() + 200_000;
    while (!/Intune connector demo is running/.test(out)) {
      if (Date.now() > until) throw new Error(`the demo did not come up:\n${out.slice(-3000)}`);
      if (child.exitCode !== null) throw new Error(`the demo exited (${child.exitCode}):\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const editor = /Node-RED editor:\s+(http:\/\/\S+?)\/?\s/.exec(out)![1];
    const sims = /Simulated services:\s+(http:\/\/\S+?)\/?\s/.exec(out)![1];
    expect(editor).to.equal(`http://127.0.0.1:${ports.DEMO_PORT}`);

    const page = await fetch(`${editor}/`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.match(/<title>Node-RED<\/title>/);
    const flows = (await (await fetch(`${editor}/flows`)).json()) as Array<{ type: string; label?: string }>;
    expect(flows.filter((n) => n.type === 'tab').map((n) => n.label)).to.deep.equal(['IntuneConnector_1', 'IntuneWorkflowEngine_1', 'IntuneMobileDevices_1', 'Intune4me_1']);

    // The first sync: every device the filters pass on, in both ACMP servers and in 4me.
    const tenant = new SimTenant({ seed: 'demo', devices: DEVICES });
    const tmpl = JSON.parse(fs.readFileSync(path.join(repoRoot, 'flows', 'ACMP instance (IntuneConnector_1).json'), 'utf8')) as Array<Record<string, unknown>>;
    const kept = deviceGroundTruth(tenant, parseFilterSettings(tmpl.find((n) => n.type === 'intune-devices')!), Date.now()).kept;
    type Summary = {
      acmp: Record<string, { devices: number }>;
      fourme: { configurationItems: number; incidents: number };
      jobs: Array<{ jobId: string; state: string; clients?: Array<{ acmpClientId: string; state: string; outcome?: string }> }>;
    };
    const summary = async () => (await (await fetch(`${sims}/api/summary`)).json()) as Summary;
    let s = await summary();
    const syncBy = Date.now() + 90_000;
    while (!(s.acmp.ACMP01.devices === kept.size && s.acmp.ACMP02.devices === kept.size && s.fourme.configurationItems === kept.size && s.fourme.incidents > 0)) {
      if (Date.now() > syncBy) throw new Error(`no complete first sync: ${JSON.stringify(s)}\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
      s = await summary();
    }
    const acmpIds = ((await (await fetch(`${sims}/api/acmp/ACMP01/devices`)).json()) as Array<{ id: string }>).map((d) => d.id).sort();
    expect(acmpIds).to.deep.equal([...kept].sort());

    // An ACMP admin's query action goes to Intune and its result comes back.
    const sent = await fetch(`${sims}/api/acmp/ACMP02/jobs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'sync', devices: 2 }) });
    expect(sent.status).to.equal(202);
    const { jobId } = (await sent.json()) as { jobId: string };
    const jobBy = Date.now() + 30_000;
    while ((await summary()).jobs.find((j) => j.jobId === jobId)?.state !== 'finished') {
      if (Date.now() > jobBy) throw new Error(`job ${jobId} not finished: ${JSON.stringify((await summary()).jobs)}`);
      await new Promise((r) => setTimeout(r, 250));
    }

    // A notification: the console picks devices that can receive one (iOS/iPadOS, Android work profile), so none is "unsupported".
    const notify = await fetch(`${sims}/api/acmp/ACMP01/jobs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'notify', devices: 3 }) });
    expect(notify.status).to.equal(202);
    const notifyJob = ((await notify.json()) as { jobId: string }).jobId;
    const notifyBy = Date.now() + 30_000;
    let job = (await summary()).jobs.find((j) => j.jobId === notifyJob);
    while (!job || job.state === 'sent') {
      if (Date.now() > notifyBy) throw new Error(`job ${notifyJob} not answered: ${JSON.stringify((await summary()).jobs)}`);
      await new Promise((r) => setTimeout(r, 250));
      job = (await summary()).jobs.find((j) => j.jobId === notifyJob);
    }
    expect(job.state, JSON.stringify(job)).to.equal('finished');
    expect(job.clients, 'clients of the notify job').to.have.length(3);
    const consolePage = await (await fetch(`${sims}/`)).text();
    expect(consolePage, 'the console says whom a notification reaches').to.match(/reaches only iOS\/iPadOS and Android Enterprise personally-owned work profile devices/);
    expect(consolePage, 'the console explains the incident cap').to.match(/at most 50 new ones per compliance run/);

    // SIGINT to npm's pid only, as a script would send it (Ctrl-C signals the whole group, an easier case):
    // the demo script execs the demo, so npm hands the signal straight to it.
    process.kill(child.pid!, 'SIGINT');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    expect(code, out.slice(-2000)).to.not.equal('hung');
    const stopBy = Date.now() + 15_000;
    while (groupAlive(child.pid!) && Date.now() < stopBy) await new Promise((r) => setTimeout(r, 100));
    expect(groupAlive(child.pid!), 'a process of the demo is still running').to.equal(false);
    for (const [k, p] of Object.entries(ports)) expect(await refused(p), `${k} ${p} still open`).to.equal(true);
    expect(out).to.match(/Stopping the demo/);
    expect(fs.existsSync(path.join(copy, '.demo', 'demo.pid')), 'the pid file is removed').to.equal(false);
  });

  /** Starts the built demo the way npm runs a script (under `sh -c`), in its own process group; resolves when it is up. */
  async function startUnderShell(): Promise<{ sh: ChildProcess; output: () => string; exited: Promise<unknown> }> {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), DEMO_DEVICES: '50', DEMO_QUIET: '1' };
    for (const [k, v] of Object.entries(ports)) env[k] = String(v);
    const sh = spawn('sh', ['-c', 'node build/sim/demo.js && echo "demo ended"'], { cwd: copy, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child = sh;
    let text = '';
    sh.stdout!.on('data', (d) => (text += d));
    sh.stderr!.on('data', (d) => (text += d));
    const exited = new Promise((resolve) => sh.once('exit', resolve));
    const until = Date.now() + 120_000;
    while (!/Intune connector demo is running/.test(text)) {
      if (Date.now() > until || sh.exitCode !== null) throw new Error(`the demo did not come up:\n${text.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return { sh, output: () => text, exited };
  }

  async function expectAllStopped(pgid: number, output: () => string): Promise<void> {
    const stopBy = Date.now() + 30_000;
    while (groupAlive(pgid) && Date.now() < stopBy) await new Promise((r) => setTimeout(r, 100));
    expect(groupAlive(pgid), `a process of the demo is still running:\n${output().slice(-1500)}`).to.equal(false);
    for (const [k, p] of Object.entries(ports)) expect(await refused(p), `${k} ${p} still open`).to.equal(true);
  }

  it('stops from a script: SIGINT to the pid in .demo/demo.pid, and SIGTERM to the shell npm runs it in', async () => {
    expect(child?.exitCode ?? child?.signalCode, 'the first test stopped its demo').to.not.equal(null);
    // SIGINT to the demo itself (the pid a script reads from .demo/demo.pid).
    let run = await startUnderShell();
    const pid = Number(fs.readFileSync(path.join(copy, '.demo', 'demo.pid'), 'utf8').trim());
    expect(pid).to.be.greaterThan(0);
    expect(pid, 'the pid is the demo, not the shell').to.not.equal(run.sh.pid);
    process.kill(pid, 'SIGINT');
    await expectAllStopped(run.sh.pid!, run.output);
    expect(run.output()).to.match(/Stopping the demo/);

    // SIGTERM as npm passes it on: to the shell only. The shell dies at once; the demo sees it is left alone and stops.
    run = await startUnderShell();
    process.kill(run.sh.pid!, 'SIGTERM');
    await run.exited;
    await expectAllStopped(run.sh.pid!, run.output);
    expect(run.output()).to.match(/The process that started the demo has gone: stopping the demo/);
  });
});
