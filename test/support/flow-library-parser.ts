/**
 * How the Node-RED Flow Library and `node-red-dev validate` read a node's
 * editor file, re-done with the same parser (acorn + acorn-walk) because
 * neither offers it as a package: the Flow Library is a web application
 * (github.com/node-red/flow-library, lib/modules.js getNodeDefinitions and
 * examineModule), and node-red-dev 0.1.6 (github.com/node-red/node-red-dev-cli,
 * src/libs/checknodes.js) keeps its getNodeDefinitions private and fetches
 * catalogue.nodered.org and the npm registry while validating, so it cannot
 * run offline in a test.
 *
 * What both do with the HTML file beside each file of package.json
 * `node-red.nodes`:
 * - take the <script> blocks: node-red-dev only those written with
 *   type="text/javascript" (a regular expression); the Flow Library every
 *   block without a type, of type text/javascript or module (JSDOM);
 * - parse each block with acorn (ecmaVersion latest); a syntax error in any
 *   block makes the whole file unreadable;
 * - for each call `<anything>.registerType(a, b)`: a must be a string
 *   literal and b an object literal, or the call is an error and the type
 *   is not listed; of b's properties, `defaults` and `credentials` must be
 *   object literals, `icon`, `color`, `inputs`, `outputs` (and for
 *   node-red-dev `category`) literals, or they are recorded as errors;
 * - a type's icon is shown only if the file `icons/<icon>` exists beside the
 *   node's file (examineModule: path.dirname(file)/icons/<icon>).
 * A property whose key is not a plain name (a spread `...x`) makes the Flow
 * Library throw on `key.name`, which also loses the whole file.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as acorn from 'acorn';
import * as walk from 'acorn-walk';

export interface TypeDefinition {
  defaults?: string[];
  credentials?: string[];
  icon?: string;
  color?: string;
  inputs?: unknown;
  outputs?: unknown;
  category?: string;
}

export interface ParsedEditorFile {
  /** Types found, as the libraries list them. */
  types: Record<string, TypeDefinition>;
  /** What the libraries record as wrong (code and where). */
  errors: string[];
}

type Node = acorn.Node & Record<string, unknown>;

/** node-red-dev's selection of script blocks (its regular expression, verbatim). */
function scriptsAsNodeRedDev(html: string): string[] {
  const re = /<script.+?type=['"]text\/javascript['"].*?>([\S\s]*?)<\/script>/gi;
  const out: string[] = [];
  for (let m = re.exec(html); m; m = re.exec(html)) out.push(m[1]);
  return out;
}

/** The Flow Library's selection: every <script> without a type, or of type text/javascript or module. */
function scriptsAsFlowLibrary(html: string): Array<{ code: string; module: boolean }> {
  const re = /<script\b([^>]*)>([\S\s]*?)<\/script>/gi;
  const out: Array<{ code: string; module: boolean }> = [];
  for (let m = re.exec(html); m; m = re.exec(html)) {
    const type = /\btype\s*=\s*['"]([^'"]*)['"]/i.exec(m[1])?.[1] ?? 'text/javascript';
    if (type === 'text/javascript' || type === 'module') out.push({ code: m[2], module: type === 'module' });
  }
  return out;
}

function readDefinitions(blocks: Array<{ code: string; module: boolean }>, what: string, checkCategory: boolean): ParsedEditorFile {
  const types: Record<string, TypeDefinition> = {};
  const errors: string[] = [];
  if (blocks.length === 0) return { types, errors: [`${what}: no <script> sections found`] };
  for (const [i, block] of blocks.entries()) {
    let ast: acorn.Node;
    try {
      ast = acorn.parse(block.code, { ecmaVersion: 'latest', sourceType: block.module ? 'module' : 'script' });
    } catch (err) {
      // Both libraries give up on the whole file here.
      return { types: {}, errors: [`${what}: script ${i + 1} does not parse: ${(err as Error).message}`] };
    }
    walk.simple(ast, {
      CallExpression(n) {
        const call = n as unknown as { callee: Node; arguments: Node[] };
        const prop = call.callee.property as { name?: string } | undefined;
        if (prop?.name !== 'registerType') return;
        const [typeNode, defNode] = call.arguments;
        if (typeNode?.type !== 'Literal') {
          errors.push(`${what}: non-literal type (${typeNode?.type})`);
          return;
        }
        if (defNode?.type !== 'ObjectExpression') {
          errors.push(`${what}: definition of ${String(typeNode.value)} is not an object literal (non-objectexpression)`);
          return;
        }
        const type = String(typeNode.value);
        const def: TypeDefinition = {};
        types[type] = def;
        for (const p of defNode.properties as Node[]) {
          const key = (p.key as { name?: string } | undefined)?.name;
          if (p.type !== 'Property') {
            errors.push(`${what}: ${type} has a ${p.type} among its properties (the Flow Library fails on it)`);
            continue;
          }
          const value = p.value as Node;
          const literal = value.type === 'Literal' ? (value.value as unknown) : undefined;
          if (key === 'defaults' || key === 'credentials') {
            if (value.type !== 'ObjectExpression') errors.push(`${what}: ${type} ${key}-not-inline`);
            else {
              const names = (value.properties as Node[]).map((q) => (q.key as { name?: string } | undefined)?.name);
              if (names.some((nm) => nm === undefined)) errors.push(`${what}: ${type} ${key} has a property without a plain name`);
              def[key] = names.filter((nm): nm is string => nm !== undefined);
            }
          } else if (key === 'icon' || key === 'color' || key === 'inputs' || key === 'outputs' || (checkCategory && key === 'category')) {
            if (value.type !== 'Literal') errors.push(`${what}: ${type} ${key}-not-inline`);
            else (def as Record<string, unknown>)[key] = literal;
          }
        }
      },
    });
  }
  if (Object.keys(types).length === 0 && errors.length === 0) errors.push(`${what}: no type definitions found`);
  return { types, errors };
}

/** Reads an editor file as the Flow Library does. */
export function parseAsFlowLibrary(htmlFile: string): ParsedEditorFile {
  return readDefinitions(scriptsAsFlowLibrary(fs.readFileSync(htmlFile, 'utf8')), `Flow Library, ${path.basename(htmlFile)}`, false);
}

/** Reads an editor file as `node-red-dev validate` does. */
export function parseAsNodeRedDev(htmlFile: string): ParsedEditorFile {
  const blocks = scriptsAsNodeRedDev(fs.readFileSync(htmlFile, 'utf8')).map((code) => ({ code, module: false }));
  return readDefinitions(blocks, `node-red-dev, ${path.basename(htmlFile)}`, true);
}

/** Where the Flow Library looks for a type's icon: icons/<icon> beside the node's file. */
export function flowLibraryIconPath(packageDir: string, nodeFile: string, icon: string): string {
  return path.join(packageDir, path.dirname(nodeFile), 'icons', icon);
}
