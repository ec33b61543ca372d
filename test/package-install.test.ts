/**
 * The package as a new user gets it from a clean clone: `npm pack` in a copy
 * of the repository without any build output (prepack builds it), then
 * `npm install <tarball>` in a fresh Node-RED user directory (npm unpacks
 * it: no link, no copy of the working tree), then Node-RED started there.
 * All nine node types load, the palette icon is served, the examples are
 * offered under Import > Examples, and the instance tool runs from the
 * install's bin link.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { cleanCopy, installTarball, repoRoot, startNodeRed, type NodeRedProcess } from '../sim/node-red-runner';

const run = promisify(execFile);
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  'node-red': { nodes: Record<string, string>; version: string };
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const TYPES = Object.keys(pkg['node-red'].nodes).sort();

/** Every file below dir, as paths relative to it. */
function filesBelow(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const p = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...filesBelow(dir, p));
    else out.push(p.split(path.sep).join('/'));
  }
  return out;
}

describe('package: npm pack from a clean clone, npm install of the tarball, Node-RED loads it', function () {
  this.timeout(120_000);
  let copy: string;
  let packDir: string;
  let tarball: string;
  let userDir: string;
  let installed: string;
  let red: NodeRedProcess | undefined;

  before(async function () {
    // Under load on two cores the build alone takes a minute or two.
    this.timeout(600_000);
    copy = cleanCopy('intune-pack-clone-');
    packDir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-pack-out-'));
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'intune-pack-user-'));
    expect(fs.existsSync(path.join(copy, 'dist')), 'the copy has no build output').to.equal(false);
    execFileSync('npm', ['pack', '--pack-destination', packDir], { cwd: copy, stdio: ['ignore', 'pipe', 'pipe'] });
    const tgz = fs.readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
    expect(tgz, 'one tarball').to.have.length(1);
    tarball = path.join(packDir, tgz[0]);
    installTarball(tarball, userDir);
    installed = path.join(userDir, 'node_modules', ...pkg.name.split('/'));
    red = await startNodeRed({ userDir, install: 'installed' });
  });
  after(async () => {
    await red?.stop();
    for (const d of [copy, packDir, userDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('prepack builds before packing: the tarball holds every node, its editor file and catalogs, the icon once, the examples and the tool', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    for (const type of TYPES) {
      const file = pkg['node-red'].nodes[type];
      for (const f of [file, file.replace(/\.js$/, '.html'), `dist/nodes/locales/en-US/${type}.json`, `dist/nodes/locales/de/${type}.json`, `dist/nodes/${type}/${type}.js`]) {
        expect(files, f).to.include(f);
      }
    }
    expect(files.filter((f) => f.endsWith('.svg'))).to.deep.equal(['dist/nodes/icons/intune.svg']);
    const examples = fs.readdirSync(path.join(repoRoot, 'flows')).filter((f) => f.endsWith('.json'));
    expect(files.filter((f) => f.startsWith('examples/')).sort()).to.deep.equal(examples.map((f) => `examples/${f}`).sort());
    for (const bin of Object.values(pkg.bin)) expect(files, bin).to.include(bin.replace(/^\.\//, ''));
    expect(files.filter((f) => f.endsWith('.map') || f.endsWith('.ts'))).to.deep.equal([]);
  });

  it('npm installed the package itself (not a link) with its runtime dependencies only', () => {
    expect(fs.lstatSync(installed).isSymbolicLink()).to.equal(false);
    expect(fs.realpathSync(installed).startsWith(fs.realpathSync(userDir))).to.equal(true);
    for (const dep of Object.keys(pkg.dependencies)) expect(fs.existsSync(path.join(userDir, 'node_modules', ...dep.split('/'), 'package.json')), dep).to.equal(true);
    // Development-only packages (graphql among them) stay out of a user's install.
    for (const dep of ['graphql', 'typescript', 'mocha', 'node-red']) expect(fs.existsSync(path.join(userDir, 'node_modules', dep)), dep).to.equal(false);
  });

  it('no shipped script names a source map (none are shipped)', () => {
    const withUrl = filesBelow(installed)
      .filter((f) => f.endsWith('.js'))
      .filter((f) => /sourceMappingURL/.test(fs.readFileSync(path.join(installed, f), 'utf8')));
    expect(withUrl).to.deep.equal([]);
  });

  it('Node-RED loads all nine node types from the installed package', async () => {
    const res = await red!.admin.get('/nodes', { headers: { Accept: 'application/json' } });
    expect(res.status).to.equal(200);
    const sets = (res.data as Array<{ module: string; types: string[]; enabled: boolean; err?: string }>).filter((m) => m.module === pkg.name);
    expect(sets.flatMap((s) => s.types).sort()).to.deep.equal(TYPES);
    expect(sets.filter((s) => !s.enabled || s.err).map((s) => `${s.types.join()}: ${s.err}`)).to.deep.equal([]);
    // The editor gets each node's form and help: only sets whose code loaded are served.
    const html = await red!.admin.get('/nodes', { headers: { Accept: 'text/html' } });
    for (const type of TYPES) {
      expect(html.data, type).to.include(`data-template-name="${type}"`);
      expect(html.data, type).to.include(`RED.nodes.registerType("${type}"`);
    }
  });

  it('the one icon file serves the palette of every type', async () => {
    const icons = await red!.admin.get('/icons', { headers: { Accept: 'application/json' } });
    expect(icons.status).to.equal(200);
    expect(icons.data[pkg.name]).to.deep.equal(['intune.svg']);
    const svg = await red!.admin.get(`/icons/${pkg.name}/intune.svg`, { responseType: 'text' });
    expect(svg.status).to.equal(200);
    expect(svg.data).to.equal(fs.readFileSync(path.join(repoRoot, 'icons', 'intune.svg'), 'utf8'));
  });

  it('offers the shipped examples under Import > Examples', async () => {
    const res = await red!.admin.get(`/library/examples/flows/${pkg.name}`);
    expect(res.status, JSON.stringify(res.data)).to.equal(200);
    const shipped = fs.readdirSync(path.join(repoRoot, 'flows')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
    expect((res.data as Array<{ fn: string }>).map((e) => e.fn).sort()).to.deep.equal(shipped.sort());
  });

  it('the instance tool runs from the install\'s bin link and writes an instance from the installed examples', async () => {
    const [name] = Object.keys(pkg.bin);
    const bin = path.join(userDir, 'node_modules', '.bin', name);
    expect(fs.existsSync(bin), bin).to.equal(true);
    const out = path.join(userDir, 'instance.json');
    const { stdout } = await run(bin, [
      '--template', '4me', '--instance', '3', '--out', out,
      '--tenant-id', 'contoso.onmicrosoft.com', '--client-id', '11111111-2222-3333-4444-555555555555', '--auth', 'secret', '--fourme-account', 'acme',
    ], { cwd: userDir });
    expect(stdout).to.match(/Wrote Intune4me_3/);
    const flow = JSON.parse(fs.readFileSync(out, 'utf8')) as Array<{ type: string; label?: string }>;
    expect(flow.filter((n) => n.type === 'tab').map((n) => n.label)).to.deep.equal(['Intune4me_3']);
    expect(flow.filter((n) => n.type === 'intune-4me')).to.have.length(1);
  });
});
