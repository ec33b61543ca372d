/**
 * Checks for the example flows in flows/ (what Import > Examples offers),
 * without Node-RED: structure, references, secrets, node types, property
 * values and layout. Every check returns problems in plain words
 * ("<file>: <node>: <what is wrong>"), so a test can show them all at once
 * and a mutated copy can prove that a check catches what it should.
 *
 * What the editor would say about a property comes from the editor itself:
 * each node's `nodes/<type>/<type>.html` script is run in a small sandbox
 * that records `RED.nodes.registerType` (defaults with their validators,
 * credentials, ports, label), with the en-US catalog for texts.
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { parseSettings as parseIntuneSettings } from '../../nodes/lib/intune/intune-connection';
import { editorFilterSettings, parseDeviceSourceSettings } from '../../nodes/lib/devices/device-source-settings';
import { parseComplianceSettings } from '../../nodes/lib/compliance/compliance-settings';
import { parseActionSettings } from '../../nodes/lib/actions/action-settings';
import { parseFourMeSettings } from '../../nodes/lib/fourme/fourme-connection';
import { parseSinkSettings as parseFourMeSinkSettings } from '../../nodes/lib/fourme/fourme-sink';
import { parseSicsSettings, parseServers } from '../../nodes/lib/acmp/sics-settings';
import { resolveServers } from '../../nodes/lib/acmp/acmp-config-api';

export type FlowNode = Record<string, unknown> & { id: string; type: string };

export interface ExampleFile {
  /** File name, e.g. "Device inventory.json". */
  name: string;
  text: string;
}

/** What the editor registers for one of our node types. */
export interface EditorDef {
  category: string;
  defaults: Record<string, { value?: unknown; type?: string; required?: boolean; validate?: (this: unknown, v: unknown, opt: unknown) => unknown }>;
  credentials: Record<string, unknown>;
  inputs: number;
  outputs: number;
  label?: string | ((this: unknown) => string);
}

export interface CheckContext {
  /** Types this package registers (package.json node-red.nodes). */
  ours: Set<string>;
  /** Types Node-RED's core registers, plus tab/group/junction. */
  core: Set<string>;
  /** Editor definitions of our types. */
  defs: Map<string, EditorDef>;
  /** Sets the nodes that RED.nodes.node(id) sees while validators run. */
  setCurrent(nodes: FlowNode[]): void;
}

const STRUCTURAL_TYPES = ['tab', 'group', 'junction'];
/** Properties every flow node may carry besides its defaults. */
const NODE_KEYS = new Set(['id', 'type', 'z', 'g', 'x', 'y', 'w', 'h', 'wires', 'name', 'info', 'd', 'l', 'inputLabels', 'outputLabels', 'icon']);
/** Core config node types (they live outside tabs and have no wires). */
const CORE_CONFIG_TYPES = new Set(['tls-config', 'http proxy', 'mqtt-broker', 'websocket-listener', 'websocket-client', 'global-config']);
/** References between nodes that are not config-node properties. */
const NODE_REFS: Record<string, Record<string, string>> = { 'intune-compliance': { filtersFrom: 'intune-devices' } };
/** Ports of the core nodes the examples use (others are not checked). */
const CORE_PORTS: Record<string, { inputs: number; outputs: number }> = {
  inject: { inputs: 0, outputs: 1 },
  debug: { inputs: 1, outputs: 0 },
  comment: { inputs: 0, outputs: 0 },
  function: { inputs: 1, outputs: 1 },
  change: { inputs: 1, outputs: 1 },
};

// ------------------------------------------------------------------ context

function coreTypes(root: string): Set<string> {
  const coreDir = path.join(path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [root] })), 'core');
  const out = new Set<string>(STRUCTURAL_TYPES);
  for (const group of fs.readdirSync(coreDir)) {
    const dir = path.join(coreDir, group);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith('.html')) continue;
      for (const m of fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/registerType\(\s*['"]([^'"]+)['"]/g)) out.add(m[1]);
    }
  }
  out.delete('unknown');
  return out;
}

/** en-US catalog of our nodes: key "intune-devices.paletteLabel" → text. */
function catalog(root: string): (key: string, params?: Record<string, unknown>) => string {
  const all: Record<string, unknown> = {};
  const dir = path.join(root, 'locales', 'en-US');
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.json')) Object.assign(all, JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
  return (key, params) => {
    let v: unknown = all;
    for (const part of key.replace(/^[^:]*:/, '').split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
    if (typeof v !== 'string') return key;
    return v.replace(/__([A-Za-z0-9_]+)__/g, (_m, p: string) => String(params?.[p] ?? ''));
  };
}

/** Anything jQuery would be asked at load time: every property is a function returning the same stub. */
function inertStub(): unknown {
  const fn = function () {
    return proxy;
  };
  const proxy: unknown = new Proxy(fn, {
    get: (_t, p) => (p === Symbol.toPrimitive ? () => '' : proxy),
    apply: () => proxy,
  });
  return proxy;
}

/** The node settings the runtime exports to the editor (registerType's `settings` option). */
export function runtimeNodeSettings(): Record<string, unknown> {
  return { intuneDevicesFilterDefaults: editorFilterSettings(), intuneComplianceFilterDefaults: editorFilterSettings() };
}

/** A node's editor HTML as the build assembles it (the toolkit of nodes/lib/editor/ inlined: scripts/editor-html.js). */
export function editorHtml(root: string, type: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { assembleEditorHtml } = require(path.join(root, 'scripts', 'editor-html.js')) as { assembleEditorHtml: (root: string, type: string) => string };
  return assembleEditorHtml(root, type);
}

/** What each node's HTML registers, run with the given `RED.settings` (default: what the runtime exports). */
export function editorDefs(root: string, types: string[], current: () => FlowNode[] = () => [], settings: Record<string, unknown> = runtimeNodeSettings()): Map<string, EditorDef> {
  const defs = new Map<string, EditorDef>();
  const t = catalog(root);
  const RED = {
    _: t,
    nodes: {
      registerType: (type: string, def: EditorDef) => defs.set(type, def),
      getType: () => undefined,
      node: (id: string) => current().find((n) => n.id === id) ?? null,
    },
    settings,
    i18n: { lang: () => 'en-US' },
  };
  const $ = inertStub();
  for (const type of types) {
    const html = editorHtml(root, type);
    const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    for (const code of scripts) vm.runInNewContext(code, { RED, $, jQuery: $, document: inertStub(), window: {}, console, URL }, { filename: `${type}.html` });
    if (!defs.has(type)) throw new Error(`${type}.html does not register ${type}`);
  }
  return defs;
}

export function loadContext(root: string): CheckContext {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
  const ours = new Set(Object.keys(pkg['node-red'].nodes));
  let nodes: FlowNode[] = [];
  return {
    ours,
    core: coreTypes(root),
    defs: editorDefs(root, [...ours], () => nodes),
    setCurrent: (n) => {
      nodes = n;
    },
  };
}

export function readExamples(dir: string): ExampleFile[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => ({ name, text: fs.readFileSync(path.join(dir, name), 'utf8') }));
}

// ------------------------------------------------------------------ parsing

/** The nodes of a file, or the problem that keeps it from being a flow. */
export function parseExample(file: ExampleFile): { nodes: FlowNode[]; problems: string[] } {
  let data: unknown;
  try {
    data = JSON.parse(file.text);
  } catch (err) {
    return { nodes: [], problems: [`${file.name}: not valid JSON (${(err as Error).message})`] };
  }
  if (!Array.isArray(data)) return { nodes: [], problems: [`${file.name}: not a JSON array of nodes`] };
  if (!data.length) return { nodes: [], problems: [`${file.name}: the array is empty`] };
  const problems: string[] = [];
  const nodes: FlowNode[] = [];
  data.forEach((n, i) => {
    if (!n || typeof n !== 'object' || Array.isArray(n)) problems.push(`${file.name}: item ${i} is not an object`);
    else if (typeof (n as FlowNode).id !== 'string' || !(n as FlowNode).id) problems.push(`${file.name}: item ${i} has no id`);
    else if (typeof (n as FlowNode).type !== 'string' || !(n as FlowNode).type) problems.push(`${file.name}: ${(n as FlowNode).id} has no type`);
    else nodes.push(n as FlowNode);
  });
  return { nodes, problems };
}

const who = (file: string, n: FlowNode) => `${file}: ${n.type} ${n.id}`;

function isConfig(ctx: CheckContext, type: string): boolean {
  return CORE_CONFIG_TYPES.has(type) || ctx.defs.get(type)?.category === 'config';
}

// ------------------------------------------------------------------ checks

/** Ids unique within each file and across all files. */
export function checkIds(files: Array<{ name: string; nodes: FlowNode[] }>): string[] {
  const problems: string[] = [];
  const owner = new Map<string, string>();
  for (const f of files) {
    const seen = new Set<string>();
    for (const n of f.nodes) {
      if (seen.has(n.id)) problems.push(`${f.name}: id ${n.id} is used twice in the file`);
      seen.add(n.id);
    }
    for (const id of seen) {
      const other = owner.get(id);
      if (other) problems.push(`${f.name}: id ${id} is also used in ${other}`);
      else owner.set(id, f.name);
    }
  }
  return problems;
}

/** Tabs, z, wires, config-node and node references of one file. */
export function checkStructure(ctx: CheckContext, file: string, nodes: FlowNode[]): string[] {
  const problems: string[] = [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const tabs = new Set(nodes.filter((n) => n.type === 'tab').map((n) => n.id));
  if (!tabs.size) problems.push(`${file}: has no tab`);
  for (const n of nodes) {
    if (n.type === 'tab') continue;
    const config = isConfig(ctx, n.type);
    if (n.z !== undefined && !tabs.has(n.z as string)) problems.push(`${who(file, n)}: z "${String(n.z)}" is not a tab of this file`);
    if (!config && n.z === undefined) problems.push(`${who(file, n)}: is not on a tab (no z)`);
    if (n.g !== undefined && byId.get(n.g as string)?.type !== 'group') problems.push(`${who(file, n)}: g "${String(n.g)}" is not a group of this file`);
    if (config && n.wires !== undefined) problems.push(`${who(file, n)}: a config node has wires`);
    if (!config && n.type !== 'group' && n.type !== 'junction' && (typeof n.x !== 'number' || typeof n.y !== 'number')) problems.push(`${who(file, n)}: has no position (x, y)`);

    // wires
    if (n.wires !== undefined) {
      if (!Array.isArray(n.wires) || n.wires.some((port) => !Array.isArray(port) || port.some((w) => typeof w !== 'string'))) {
        problems.push(`${who(file, n)}: wires must be a list of lists of ids`);
      } else {
        const ports = portsOf(ctx, n);
        if (ports && n.wires.length !== ports.outputs) problems.push(`${who(file, n)}: has ${n.wires.length} output port(s) wired, the node has ${ports.outputs}`);
        for (const w of (n.wires as string[][]).flat()) {
          const target = byId.get(w);
          if (!target) problems.push(`${who(file, n)}: wire to ${w}, which is not in the file`);
          else if (isConfig(ctx, target.type) || target.type === 'tab') problems.push(`${who(file, n)}: wire to ${w}, a ${target.type}`);
          else if (target.z !== n.z) problems.push(`${who(file, n)}: wire to ${w} on another tab`);
          else if (portsOf(ctx, target)?.inputs === 0) problems.push(`${who(file, n)}: wire to ${w}, a ${target.type} without input`);
        }
      }
    }

    // config-node and node references
    const def = ctx.defs.get(n.type);
    const refs: Record<string, string> = { ...(NODE_REFS[n.type] ?? {}) };
    for (const [prop, d] of Object.entries(def?.defaults ?? {})) if (d.type) refs[prop] = d.type;
    for (const [prop, type] of Object.entries(refs)) {
      const v = n[prop];
      const required = def?.defaults[prop]?.required === true;
      if (v === undefined || v === null || v === '') {
        if (required) problems.push(`${who(file, n)}: ${prop} must name a ${type} node`);
        continue;
      }
      const target = byId.get(v as string);
      if (!target) problems.push(`${who(file, n)}: ${prop} refers to ${String(v)}, which is not in the file`);
      else if (target.type !== type) problems.push(`${who(file, n)}: ${prop} refers to ${String(v)}, a ${target.type}, not a ${type}`);
    }
  }
  return problems;
}

function portsOf(ctx: CheckContext, n: FlowNode): { inputs: number; outputs: number } | undefined {
  const def = ctx.defs.get(n.type);
  const outputs = (fallback: number) => (typeof n.outputs === 'number' ? n.outputs : fallback);
  if (def) return { inputs: def.inputs ?? 0, outputs: outputs(def.outputs ?? 0) };
  const core = CORE_PORTS[n.type];
  return core && { inputs: core.inputs, outputs: outputs(core.outputs) };
}

const SECRET_KEY = /pass(word|phrase)|secret|token|pfx|private.?key|api.?key|bearer|session|credential/i;
/** Keys that match SECRET_KEY but hold no secret. */
const NOT_SECRET = new Set(['tokenUrl', 'authType']);
const SECRET_VALUE: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, 'a JSON web token'],
  [/^[A-Za-z0-9+/]{120,}={0,2}$/, 'a long base64 blob (a certificate or key?)'],
  [/\bBearer\s+[A-Za-z0-9._~+/-]{16,}/, 'a bearer token'],
];

/** No credentials objects, no property that looks like a secret, anywhere in the file. */
export function checkSecrets(ctx: CheckContext, file: string, nodes: FlowNode[]): string[] {
  const problems: string[] = [];
  for (const n of nodes) {
    if ('credentials' in n) problems.push(`${who(file, n)}: carries a credentials object`);
    const credentialProps = Object.keys(ctx.defs.get(n.type)?.credentials ?? {});
    for (const p of credentialProps) if (p in n) problems.push(`${who(file, n)}: carries the credential "${p}" as a property`);
    walk(n, [], (keyPath, value) => {
      const key = keyPath[keyPath.length - 1] ?? '';
      if (typeof value === 'string' && value.trim() && SECRET_KEY.test(key) && !NOT_SECRET.has(key)) {
        problems.push(`${who(file, n)}: ${keyPath.join('.')} looks like a secret`);
      }
      if (typeof value === 'string') {
        for (const [re, what] of SECRET_VALUE) if (re.test(value)) problems.push(`${who(file, n)}: ${keyPath.join('.')} holds ${what}`);
      }
    });
  }
  return problems;
}

function walk(v: unknown, keyPath: string[], visit: (keyPath: string[], value: unknown) => void): void {
  if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...keyPath, String(i)], visit));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...keyPath, k], visit);
  else visit(keyPath, v);
}

/** Core types or ours; our nodes carry only properties their editor knows. */
export function checkTypes(ctx: CheckContext, file: string, nodes: FlowNode[]): string[] {
  const problems: string[] = [];
  for (const n of nodes) {
    if (ctx.ours.has(n.type)) {
      const def = ctx.defs.get(n.type)!;
      for (const k of Object.keys(n)) if (!NODE_KEYS.has(k) && !(k in def.defaults) && k !== 'credentials') problems.push(`${who(file, n)}: unknown property "${k}"`);
    } else if (!ctx.core.has(n.type)) {
      problems.push(`${who(file, n)}: type "${n.type}" is neither a Node-RED core type nor one of this package (package.json node-red.nodes)`);
    }
  }
  return problems;
}

/** The node as the editor holds it after the import: defaults filled in for missing properties. */
function withDefaults(def: EditorDef, n: FlowNode): FlowNode {
  const out: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(def.defaults)) out[k] = d.value === undefined ? undefined : JSON.parse(JSON.stringify(d.value));
  return { ...out, ...n } as FlowNode;
}

/** Runtime settings parsers of our node types, fed the node's properties (and its config node's where needed). */
const RUNTIME_PARSERS: Record<string, (n: FlowNode, byId: Map<string, FlowNode>) => void> = {
  'intune-config': (n) => void parseIntuneSettings(n),
  'intune-devices': (n) => void parseDeviceSourceSettings(n),
  'intune-compliance': (n) => void parseComplianceSettings(n),
  'intune-action': (n) => void parseActionSettings(n as Parameters<typeof parseActionSettings>[0]),
  'intune-4me-config': (n) => void parseFourMeSettings(n),
  'intune-4me': (n) => void parseFourMeSinkSettings(n),
  'intune-acmp-config': (n) => void parseSicsSettings(n),
  'intune-acmp': (n, byId) => {
    const cfg = byId.get(n.acmp as string);
    if (cfg) resolveServers(parseServers(cfg.servers), String(n.serverId ?? '*').trim() || '*');
  },
};

/**
 * The node as the runtime receives it: a property that is exactly `${NAME}`
 * takes the value of the tab's environment variable NAME, as Node-RED
 * substitutes it before the node starts.
 */
function withFlowEnv(n: FlowNode, byId: Map<string, FlowNode>): FlowNode {
  const env = (n.z ? (byId.get(n.z as string)?.env as Array<{ name: string; value: string; type?: string }> | undefined) : undefined) ?? [];
  if (!env.length) return n;
  const out: Record<string, unknown> = { ...n };
  for (const [k, v] of Object.entries(n)) {
    const m = typeof v === 'string' ? /^\$\{(\w+)\}$/.exec(v) : null;
    const e = m ? env.find((x) => x.name === m[1]) : undefined;
    if (e) out[k] = e.type === 'num' ? Number(e.value) : e.value;
  }
  return out as FlowNode;
}

/** Every property of our nodes passes the editor's validation and the runtime's settings parser. */
export function checkValues(ctx: CheckContext, file: string, nodes: FlowNode[]): string[] {
  const problems: string[] = [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  ctx.setCurrent(nodes);
  try {
    for (const raw of nodes) {
      const def = ctx.defs.get(raw.type);
      if (!def) continue;
      const n = withDefaults(def, raw);
      for (const [prop, d] of Object.entries(def.defaults)) {
        const v = n[prop];
        if (d.required && (v === undefined || v === null || v === '')) problems.push(`${who(file, raw)}: ${prop} is required (editor)`);
        if (typeof d.validate === 'function') {
          const r = d.validate.call(n, v, {});
          if (r !== true && r !== undefined) problems.push(`${who(file, raw)}: ${prop} = ${JSON.stringify(v)?.slice(0, 80)}: ${typeof r === 'string' ? r : 'invalid'} (editor)`);
        }
      }
      try {
        RUNTIME_PARSERS[raw.type]?.(withFlowEnv(n, byId), byId);
      } catch (err) {
        problems.push(`${who(file, raw)}: ${(err as Error).message} (runtime)`);
      }
    }
  } finally {
    ctx.setCurrent([]);
  }
  return problems;
}

// ------------------------------------------------------------------ layout

/** Advance widths of Arial/Helvetica (Liberation Sans) per 1000 em. */
const WIDTHS: Record<string, number> = {
  ' ': 278, '!': 278, '"': 355, '#': 556, '$': 556, '%': 889, '&': 667, "'": 191, '(': 333, ')': 333, '*': 389, '+': 584, ',': 278, '-': 333, '.': 278, '/': 278,
  ':': 278, ';': 278, '<': 584, '=': 584, '>': 584, '?': 556, '@': 1015, '[': 278, '\\': 278, ']': 278, '^': 469, _: 556, '`': 333, '{': 334, '|': 260, '}': 334, '~': 584,
  A: 667, B: 667, C: 722, D: 722, E: 667, F: 611, G: 778, H: 722, I: 278, J: 500, K: 667, L: 556, M: 833, N: 722, O: 778, P: 667, Q: 778, R: 722, S: 667, T: 611,
  U: 722, V: 667, W: 944, X: 667, Y: 667, Z: 611,
  a: 556, b: 556, c: 500, d: 556, e: 556, f: 278, g: 556, h: 556, i: 222, j: 222, k: 500, l: 222, m: 833, n: 556, o: 556, p: 556, q: 556, r: 333, s: 500, t: 278,
  u: 556, v: 500, w: 722, x: 500, y: 500, z: 500,
};
/** Node-RED draws node labels at 14px. */
const FONT_PX = 14;
/**
 * Without Helvetica or Arial (a bare Linux) Chromium falls back to DejaVu
 * Sans, which is wider: measured in the editor, 1.15 × Arial covers it.
 */
const FONT_SAFETY = 1.15;

/** Width of a label in px, on the safe side. */
export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += WIDTHS[ch] ?? 556;
  return (w * FONT_PX * FONT_SAFETY) / 1000;
}

/** The label the editor shows for a node. */
export function labelOf(ctx: CheckContext, n: FlowNode): string {
  const def = ctx.defs.get(n.type);
  if (def) {
    const full = withDefaults(def, n);
    const l = typeof def.label === 'function' ? def.label.call(full) : def.label;
    return String(l || n.type);
  }
  if (typeof n.name === 'string' && n.name) return n.name;
  return n.type === 'debug' ? 'msg.payload' : n.type;
}

export interface Box {
  id: string;
  label: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** The rectangle the editor draws (view.js: width from the label, 100 at least, in steps of 20; x, y are the centre), with the node's button. */
export function boxOf(ctx: CheckContext, n: FlowNode): Box {
  const label = labelOf(ctx, n);
  const inputs = portsOf(ctx, n)?.inputs ?? (n.type === 'comment' || n.type === 'inject' ? 0 : 1);
  // view.js: link in/out nodes hide their label unless "l" says otherwise; a node without a label is 30 px wide.
  const hideLabel = 'l' in n ? !n.l : n.type === 'link in' || n.type === 'link out';
  const w = hideLabel ? 30 : Math.max(100, 20 * Math.ceil((textWidth(label) + 50 + (inputs > 0 ? 7 : 0)) / 20));
  const outputs = Array.isArray(n.wires) ? n.wires.length : 0;
  const h = Math.max(30, outputs * 15);
  const x = n.x as number;
  const y = n.y as number;
  // The button of an inject node sticks out on the left, that of a debug node on the right.
  const button = { left: n.type === 'inject' ? 25 : 0, right: n.type === 'debug' ? 25 : 0 };
  return { id: n.id, label, left: x - w / 2 - button.left, right: x + w / 2 + button.right, top: y - h / 2, bottom: y + h / 2 };
}

/** Nodes of one tab keep at least `gap` px between their rectangles, and stay on the canvas. */
export function checkLayout(ctx: CheckContext, file: string, nodes: FlowNode[], gap = 10): string[] {
  const problems: string[] = [];
  const placed = nodes.filter((n) => n.z !== undefined && typeof n.x === 'number' && typeof n.y === 'number' && n.type !== 'group');
  const boxes = placed.map((n) => ({ n, b: boxOf(ctx, n) }));
  for (const { n, b } of boxes) if (b.left < 0 || b.top < 0) problems.push(`${who(file, n)}: sticks out of the canvas (left ${Math.round(b.left)}, top ${Math.round(b.top)})`);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const c = boxes[j];
      if (a.n.z !== c.n.z) continue;
      const apartX = a.b.right + gap <= c.b.left || c.b.right + gap <= a.b.left;
      const apartY = a.b.bottom + gap <= c.b.top || c.b.bottom + gap <= a.b.top;
      if (!apartX && !apartY) problems.push(`${file}: "${a.b.label}" (${a.n.id}) and "${c.b.label}" (${c.n.id}) overlap or touch`);
    }
  }
  return problems;
}

// ------------------------------------------------------------------ all

/** Every check on every file. */
export function checkExamples(ctx: CheckContext, files: ExampleFile[]): string[] {
  const problems: string[] = [];
  const parsed = files.map((f) => {
    const p = parseExample(f);
    problems.push(...p.problems);
    return { name: f.name, nodes: p.nodes };
  });
  problems.push(...checkIds(parsed));
  for (const f of parsed) {
    if (!f.nodes.length) continue;
    problems.push(...checkTypes(ctx, f.name, f.nodes));
    problems.push(...checkStructure(ctx, f.name, f.nodes));
    problems.push(...checkSecrets(ctx, f.name, f.nodes));
    problems.push(...checkValues(ctx, f.name, f.nodes));
    problems.push(...checkLayout(ctx, f.name, f.nodes));
  }
  return problems;
}
