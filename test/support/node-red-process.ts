/**
 * Runs a real Node-RED (the one in node_modules, or NODE_RED_HOME) in a child
 * process with our package installed the way users get it: from `npm pack`,
 * unpacked into the user directory's node_modules. Tests then talk to it only
 * through its Admin API, as an integrator's tooling would.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import axios, { type AxiosInstance } from 'axios';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  dependencies: Record<string, string>;
};

let packed: string | undefined;
/** `npm pack` once per test process; returns the tarball path. */
export function packOnce(): string {
  if (packed) return packed;
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const info = JSON.parse(out) as Array<{ filename: string }>;
  packed = path.join(dest, path.basename(info[0].filename));
  return packed;
}

/** Files the tarball ships (paths inside the package). */
export function packedFiles(): string[] {
  const list = execFileSync('tar', ['-tzf', packOnce()], { encoding: 'utf8' });
  return list.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface NodeRedProcess {
  url: string;
  userDir: string;
  admin: AxiosInstance;
  logs(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Admin user/password; when set, the Admin API needs a token (fetched for `admin`). */
  adminUser?: { username: string; password: string };
  flows?: unknown[];
  env?: Record<string, string>;
  /** Node.js binary to run Node-RED with (e.g. Node 22 for Node-RED 5). */
  nodeBinary?: string;
  /** Directory of the node-red package to run. */
  nodeRedHome?: string;
}

export async function startNodeRed(opts: StartOptions = {}): Promise<NodeRedProcess> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-nr-'));
  const modDir = path.join(userDir, 'node_modules', ...pkg.name.split('/'));
  fs.mkdirSync(modDir, { recursive: true });
  execFileSync('tar', ['-xzf', packOnce(), '-C', modDir, '--strip-components=1']);
  // Runtime dependencies resolve from the user directory, as after `npm install` there.
  for (const dep of Object.keys(pkg.dependencies)) {
    const link = path.join(userDir, 'node_modules', ...dep.split('/'));
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(repoRoot, 'node_modules', ...dep.split('/')), link, 'dir');
  }
  const port = await freePort();
  let adminAuth = '';
  if (opts.adminUser) {
    const bcrypt = require(require.resolve('bcryptjs', { paths: [path.join(repoRoot, 'node_modules', 'node-red')] }));
    const hash = bcrypt.hashSync(opts.adminUser.password, 8);
    adminAuth = `adminAuth: { type: 'credentials', users: [{ username: ${JSON.stringify(opts.adminUser.username)}, password: ${JSON.stringify(hash)}, permissions: '*' }] },`;
  }
  fs.writeFileSync(
    path.join(userDir, 'settings.js'),
    `module.exports = {
      uiHost: '127.0.0.1', uiPort: ${port}, flowFile: 'flows.json',
      credentialSecret: 'e2e-credential-secret',
      ${adminAuth}
      contextStorage: { default: { module: 'memory' }, file: { module: 'localfilesystem' } },
      logging: { console: { level: 'debug', metrics: false, audit: false } },
      editorTheme: { tours: false, palette: { catalogues: [] } },
      externalModules: { autoInstall: false, palette: { allowInstall: false } },
      diagnostics: { enabled: false }, telemetry: { enabled: false },
    };\n`,
  );
  if (opts.flows) fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(opts.flows));
  const home = opts.nodeRedHome ?? path.join(repoRoot, 'node_modules', 'node-red');
  const child: ChildProcess = spawn(opts.nodeBinary ?? process.execPath, [path.join(home, 'red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
    cwd: userDir,
    env: { ...process.env, ...opts.env, NODE_RED_ENABLE_PROJECTS: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const url = `http://127.0.0.1:${port}`;
  const waitForLog = async (re: RegExp, timeoutMs = 30_000) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = re.exec(out);
      if (m) return m[0];
      if (child.exitCode !== null) throw new Error(`Node-RED exited (${child.exitCode}):\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${re} in Node-RED log:\n${out.slice(-3000)}`);
  };
  await waitForLog(/Server now running at/, 60_000);

  const admin = axios.create({ baseURL: url, validateStatus: () => true, headers: { 'Node-RED-API-Version': 'v2' } });
  if (opts.adminUser) {
    const tok = await admin.post('/auth/token', {
      client_id: 'node-red-admin',
      grant_type: 'password',
      scope: '*',
      username: opts.adminUser.username,
      password: opts.adminUser.password,
    });
    if (tok.status !== 200) throw new Error(`admin login failed: ${tok.status}`);
    admin.defaults.headers.common.Authorization = `Bearer ${tok.data.access_token}`;
  }
  return {
    url,
    userDir,
    admin,
    logs: () => out,
    waitForLog,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}
