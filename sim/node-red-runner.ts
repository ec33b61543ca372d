/**
 * Runs a real Node-RED (the one in node_modules, or another install) in a
 * child process with this package installed in its user directory, for the
 * end-to-end tests, the demo and the benchmarks. `install: 'pack'` installs
 * what `npm pack` ships (what users get); `'link'` symlinks the working tree
 * (fast, for the demo). Callers talk to it through its Admin API only.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import axios, { type AxiosInstance } from 'axios';

export const repoRoot = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  dependencies: Record<string, string>;
};

/**
 * A copy of the repository as a clone has it, in a new temporary directory:
 * the tracked files (and new ones not ignored, when run before a commit), so
 * no build output; node_modules is the installed one, linked.
 */
export function cleanCopy(prefix = 'intune-clone-'): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    const src = path.join(repoRoot, f);
    if (!fs.existsSync(src)) continue;
    fs.mkdirSync(path.dirname(path.join(copy, f)), { recursive: true });
    fs.copyFileSync(src, path.join(copy, f));
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  return copy;
}

/**
 * What `npm install <tarball>` in a Node-RED user directory does, without the
 * network: `npm ci --offline` from a lockfile that pins the package to the
 * tarball and its dependencies (as the tarball's package.json names them) to
 * the versions this repository's package-lock.json locks, all in npm's cache
 * once `npm ci` ran here. npm itself unpacks the package and makes its bin
 * links, as in a user's install.
 */
export function installTarball(tarball: string, userDir: string): void {
  const shipped = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as {
    name: string;
    version: string;
    license?: string;
    dependencies?: Record<string, string>;
    bin?: Record<string, string>;
  };
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const spec = `file:${tarball}`;
  const packages: Record<string, unknown> = {
    '': { name: 'node-red-project', dependencies: { [shipped.name]: spec } },
    [`node_modules/${shipped.name}`]: { version: shipped.version, resolved: spec, license: shipped.license, dependencies: shipped.dependencies, bin: shipped.bin },
  };
  for (const [where, entry] of Object.entries(lock.packages)) if (where && !entry.dev && !entry.devOptional) packages[where] = entry;
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true, dependencies: { [shipped.name]: spec } }, null, 2));
  fs.writeFileSync(path.join(userDir, 'package-lock.json'), JSON.stringify({ name: 'node-red-project', lockfileVersion: 3, requires: true, packages }, null, 2));
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: userDir, stdio: ['ignore', 'pipe', 'pipe'] });
}

let packed: string | undefined;
/** `npm pack` of the tree as built (no prepack: the suite built it already) once per test process; returns the tarball path. */
export function packOnce(): string {
  if (packed) return packed;
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
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
  /** Process id of the Node-RED child (for resource measurements). */
  pid: number;
  admin: AxiosInstance;
  logs(): string;
  /** Offset of the end of the output so far, for waitForLog(…, since). */
  mark(): number;
  /** Waits for `re` in the output written after offset `since` (use `logs().length` as a mark). */
  waitForLog(re: RegExp, timeoutMs?: number, since?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Admin user/password; when set, the Admin API needs a token (fetched for `admin`). */
  adminUser?: { username: string; password: string };
  flows?: unknown[];
  env?: Record<string, string>;
  /** How the package gets into the user directory (default 'pack'); 'installed': it is there already (installTarball). */
  install?: 'pack' | 'link' | 'installed';
  /** Keep this user directory (created if missing) instead of a temporary one, and keep it on stop. */
  userDir?: string;
  /** Port for the editor (default: a free one). */
  port?: number;
  /** Extra settings.js properties (JSON-serialisable). */
  settings?: Record<string, unknown>;
  /** Pass Node-RED's output through to this process's stdout too. */
  echo?: boolean;
  /** Node.js binary to run Node-RED with (e.g. Node 22 for Node-RED 5). */
  nodeBinary?: string;
  /** Directory of the node-red package to run. */
  nodeRedHome?: string;
}

export async function startNodeRed(opts: StartOptions = {}): Promise<NodeRedProcess> {
  const keepDir = Boolean(opts.userDir);
  const userDir = opts.userDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'intune-nr-'));
  fs.mkdirSync(userDir, { recursive: true });
  const modDir = path.join(userDir, 'node_modules', ...pkg.name.split('/'));
  if (opts.install === 'installed') {
    if (!fs.existsSync(path.join(modDir, 'package.json'))) throw new Error(`the package is not installed in ${userDir}`);
  } else {
    fs.rmSync(modDir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(modDir), { recursive: true });
  }
  if (opts.install === 'installed') {
    // npm put it there, with its dependencies.
  } else if (opts.install === 'link') {
    // Node resolves the symlink to the working tree, whose node_modules has the dependencies.
    fs.symlinkSync(repoRoot, modDir, 'dir');
  } else {
    fs.mkdirSync(modDir, { recursive: true });
    execFileSync('tar', ['-xzf', packOnce(), '-C', modDir, '--strip-components=1']);
    // Runtime dependencies resolve from the user directory, as after `npm install` there.
    for (const dep of Object.keys(pkg.dependencies)) {
      const link = path.join(userDir, 'node_modules', ...dep.split('/'));
      fs.rmSync(link, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.join(repoRoot, 'node_modules', ...dep.split('/')), link, 'dir');
    }
  }
  const port = opts.port ?? (await freePort());
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
      ...${JSON.stringify(opts.settings ?? {})},
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
  // Keep the last 2 MB of output: enough for tests to search, bounded for long demo runs.
  const append = (d: Buffer) => {
    out += d;
    if (out.length > 2_000_000) {
      trimmed += out.length - 1_000_000;
      out = out.slice(-1_000_000);
    }
    if (opts.echo) process.stdout.write(d);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Never leave a Node-RED behind when this process ends without calling stop().
  const reap = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  void exited.then(() => process.off('exit', reap));

  const url = `http://127.0.0.1:${port}`;
  let trimmed = 0; // characters dropped from the front of `out`
  const waitForLog = async (re: RegExp, timeoutMs = 30_000, since = 0) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = re.exec(out.slice(Math.max(0, since - trimmed)));
      if (m) return m[0];
      if (child.exitCode !== null) throw new Error(`Node-RED exited (${child.exitCode}):\n${out.slice(-3000)}`);
      // Node-RED keeps running when its port is taken; say so instead of waiting in vain.
      const busy = /Unable to listen on (\S+)/.exec(out);
      if (busy) {
        child.kill('SIGKILL');
        throw new Error(`Node-RED cannot listen on ${busy[1]}: the port is in use (choose another one)`);
      }
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
    pid: child.pid!,
    admin,
    logs: () => out,
    mark: () => trimmed + out.length,
    waitForLog,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      if (!keepDir) fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}
