/**
 * A real HTTP proxy for the proxy tests: Debian's tinyproxy (installed by
 * scripts/proxy-deps.sh in `pretest`), started on a free loopback port with
 * its own configuration, Basic authentication when asked, and its own log,
 * which the tests read to see which CONNECTs went through it.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

export const TINYPROXY = process.env.TINYPROXY_PATH || '/usr/bin/tinyproxy';

export interface Tinyproxy {
  port: number;
  /** http://127.0.0.1:port, without credentials. */
  url: string;
  /** The proxy's log so far. */
  log(): string;
  /** host:port of every CONNECT request the proxy received (from its log). */
  connects(): string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Starts tinyproxy. `auth` turns on Basic authentication; `connectPorts`
 * limits CONNECT to those ports (as corporate proxies limit it to 443), so
 * other CONNECTs are refused.
 */
export async function startTinyproxy(o: { auth?: { user: string; password: string }; connectPorts?: number[] } = {}): Promise<Tinyproxy> {
  if (!fs.existsSync(TINYPROXY)) throw new Error(`tinyproxy is not installed at ${TINYPROXY}: run bash scripts/proxy-deps.sh (npm test runs it in pretest)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyproxy-'));
  const logFile = path.join(dir, 'tinyproxy.log');
  const port = await freePort();
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logFile}"`,
    'LogLevel Info',
    'MaxClients 200',
    'Allow 127.0.0.1',
    ...(o.auth ? [`BasicAuth ${o.auth.user} ${o.auth.password}`] : []),
    ...(o.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'tinyproxy.conf'), `${conf}\n`);
  const child: ChildProcess = spawn(TINYPROXY, ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const t0 = Date.now();
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() - t0 > 10_000) {
      child.kill();
      throw new Error(`tinyproxy did not start on port ${port}: ${stderr.slice(0, 500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log,
    connects: () => [...log().matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((m) => m[1]),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
