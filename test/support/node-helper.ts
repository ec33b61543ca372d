/**
 * node-red-node-test-helper set up for this package: loads the BUILT nodes
 * from dist/ (with their locales), plus Node-RED's core tls-config node.
 */
import path from 'node:path';
import helper from 'node-red-node-test-helper';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
helper.init(require.resolve('node-red'));

export function distNode(name: string): unknown {
  return require(path.join(repoRoot, 'dist', 'nodes', name, `${name}.js`));
}

export const tlsNode = require(require.resolve('@node-red/nodes/core/network/05-tls.js', { paths: [path.join(repoRoot, 'node_modules', 'node-red')] }));

export function loadFlow(nodes: unknown[], flow: unknown[], credentials: Record<string, unknown> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      helper.load(nodes as never, flow as never, credentials as never, () => resolve());
    } catch (err) {
      reject(err);
    }
  });
}

/** Everything the runtime logged during the test, as one string (to search for leaks). */
export function loggedText(): string {
  const spy = helper.log() as unknown as { args: unknown[][] };
  return spy.args.map((a) => JSON.stringify(a)).join('\n');
}

export { helper };
