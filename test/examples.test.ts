/**
 * The example flows in flows/ (Import > Examples), checked without
 * Node-RED: valid JSON arrays, ids unique within and across files, every
 * `z` a tab of the same file, every wire to an existing node of the same
 * tab, every config-node reference to a node of the right type in the same
 * file, no credentials and nothing that looks like a secret, only core
 * node types or ours (package.json node-red.nodes), property values the
 * editor's validators and the runtime's settings parsers accept, and no
 * two nodes drawn on top of each other.
 *
 * The second half breaks copies of the real examples, one rule at a time,
 * to show that each check does catch what it is for.
 */
import path from 'node:path';
import { expect } from 'chai';
import { filterPropertyDefaults, parseDeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';
import { checkExamples, editorDefs, loadContext, parseExample, readExamples, labelOf, boxOf, type CheckContext, type ExampleFile, type FlowNode } from './support/example-checks';

const root = path.resolve(__dirname, '..', '..');
const flowsDir = path.join(root, 'flows');

/**
 * Problems a template has on purpose. The 4me instance imports nothing until
 * platforms are chosen (the 4me connector's default, so the device preview
 * is seen first): its device source is invalid, and says so, until then.
 */
const INTENDED = [
  /^4me instance \(Intune4me_1\)\.json: intune-devices fm1-devices: platformWindows = false: Select at least one platform \(editor\)$/,
  /^4me instance \(Intune4me_1\)\.json: intune-devices fm1-devices: No platform is selected: .* \(runtime\)$/,
];
/** Instance templates (flows/<…> instance (<Name>_1).json) have one tab per part of the instance. */
const TEMPLATE_TABS: Record<string, number> = { 'ACMP instance (IntuneConnector_1).json': 3, '4me instance (Intune4me_1).json': 1 };
const README_LINK = /\(https:\/\/www\.npmjs\.com\/package\/@intune-connector\/node-red-intune#[a-z0-9-]+\)/;

describe('examples in flows/ (Import > Examples)', function () {
  this.timeout(30_000);
  let ctx: CheckContext;
  let files: ExampleFile[];

  before(() => {
    ctx = loadContext(root);
    files = readExamples(flowsDir);
  });

  it('the checker knows our node types, their config-node properties and Node-RED\'s core types', () => {
    expect([...ctx.ours].sort()).to.deep.equal([...ctx.defs.keys()].sort());
    expect(ctx.ours.size).to.be.greaterThan(0);
    const refs = (type: string) =>
      Object.fromEntries(
        Object.entries(ctx.defs.get(type)!.defaults)
          .filter(([, d]) => d.type)
          .map(([k, d]) => [k, d.type]),
      );
    expect(refs('intune-devices')).to.deep.equal({ intune: 'intune-config' });
    expect(refs('intune-4me')).to.deep.equal({ fourme: 'intune-4me-config' });
    expect(refs('intune-acmp')).to.deep.equal({ acmp: 'intune-acmp-config' });
    expect(refs('intune-4me-config')).to.deep.equal({ tls: 'tls-config', proxy: 'http proxy' });
    expect(Object.keys(ctx.defs.get('intune-acmp-config')!.credentials).sort()).to.deep.equal(['password', 'user']);
    for (const t of ['inject', 'debug', 'comment', 'function', 'tls-config', 'tab', 'group']) expect(ctx.core.has(t), t).to.equal(true);
    expect(ctx.core.has('intune-config')).to.equal(false);
  });

  it('the device-filter defaults of both editors come from the runtime, and the HTML holds no copy of them', () => {
    const want = filterPropertyDefaults();
    for (const type of ['intune-devices', 'intune-compliance']) {
      const given = ctx.defs.get(type)!.defaults;
      for (const [prop, value] of Object.entries(want)) expect(given[prop]?.value, `${type}.${prop}`).to.deep.equal(value);
      // Without what the runtime hands over, the editor has no value of its own for any of them.
      const bare = editorDefs(root, [type], () => [], {}).get(type)!.defaults;
      for (const prop of Object.keys(want)) expect(bare[prop], `${type}.${prop} is a property of the editor`).to.not.equal(undefined);
      expect(Object.keys(want).filter((prop) => bare[prop].value !== undefined), `${type}: filter defaults written into the HTML`).to.deep.equal([]);
    }
    // A node without any filter property runs with exactly these values.
    const lacking = parseDeviceSourceSettings({});
    const given = parseDeviceSourceSettings({ ...want });
    expect(given.filters).to.deep.equal(lacking.filters);
    expect([given.placeholderSerials, given.collapseDuplicates, given.checkDeletedUsers]).to.deep.equal([lacking.placeholderSerials, lacking.collapseDuplicates, lacking.checkDeletedUsers]);
  });

  it('there are examples, and each file passes every check', () => {
    expect(files.length).to.be.greaterThan(0);
    const problems = checkExamples(ctx, files);
    expect(problems.filter((p) => !INTENDED.some((re) => re.test(p)))).to.deep.equal([]);
    // The intended ones are still reported, so they stay deliberate.
    for (const re of INTENDED) expect(problems.some((p) => re.test(p)), `${re} is not reported any more: remove it from INTENDED`).to.equal(true);
  });

  it('every node type of the package appears in at least one example', () => {
    const used = new Set(files.flatMap((f) => parseExample(f).nodes.map((n) => n.type)));
    expect([...ctx.ours].filter((t) => !used.has(t))).to.deep.equal([]);
  });

  it('each example has one tab (an instance template one per part), and a comment saying what to fill in, with a link to the README', () => {
    const explained = (f: ExampleFile) =>
      parseExample(f).nodes.some((n) => n.type === 'comment' && /what to fill in/i.test(String(n.info)) && README_LINK.test(String(n.info)));
    for (const f of files) {
      expect(parseExample(f).nodes.filter((n) => n.type === 'tab').length, f.name).to.equal(TEMPLATE_TABS[f.name] ?? 1);
      expect(explained(f), `${f.name}: a comment node whose info says what to fill in and links to the README`).to.equal(true);
    }
  });

  describe('the checks catch broken examples', () => {
    const first = () => files.find((f) => f.name === 'ACMP - query actions.json') ?? files[0];
    /** All examples, with `name` replaced by the result of `edit` on its nodes. */
    function broken(edit: (nodes: FlowNode[]) => FlowNode[] | void, name = first().name): ExampleFile[] {
      return files.map((f) => {
        if (f.name !== name) return f;
        const nodes = JSON.parse(f.text) as FlowNode[];
        return { name: f.name, text: JSON.stringify(edit(nodes) ?? nodes) };
      });
    }
    const byType = (nodes: FlowNode[], type: string) => nodes.find((n) => n.type === type)!;
    const problems = (set: ExampleFile[]) => checkExamples(ctx, set);
    const expectProblem = (set: ExampleFile[], re: RegExp) => {
      const p = problems(set);
      expect(p.some((x) => re.test(x)), `expected a problem matching ${re}, got ${JSON.stringify(p)}`).to.equal(true);
    };

    it('not JSON, not an array, an item without id', () => {
      expectProblem(files.map((f) => (f === first() ? { name: f.name, text: f.text.slice(0, -5) } : f)), /not valid JSON/);
      expectProblem(broken(() => ({}) as unknown as FlowNode[]), /not a JSON array/);
      expectProblem(
        broken((n) => {
          delete (n[3] as Partial<FlowNode>).id;
        }),
        /item 3 has no id/,
      );
    });

    it('an id used twice in a file, or in two files', () => {
      expectProblem(
        broken((n) => {
          n[4].id = n[3].id;
        }),
        /is used twice in the file/,
      );
      const other = files.find((f) => f !== first())!;
      const foreignId = (JSON.parse(other.text) as FlowNode[])[1].id;
      expectProblem(
        broken((n) => {
          n[1].id = foreignId;
        }),
        new RegExp(`id ${foreignId} is also used in`),
      );
    });

    it('a z that is not a tab of the file, a flow node without z', () => {
      expectProblem(
        broken((n) => {
          byType(n, 'debug').z = 'no-such-tab';
        }),
        /z "no-such-tab" is not a tab of this file/,
      );
      expectProblem(
        broken((n) => {
          delete byType(n, 'debug').z;
        }),
        /is not on a tab \(no z\)/,
      );
    });

    it('a wire to a missing node, to a config node, or on the wrong number of ports', () => {
      expectProblem(
        broken((n) => {
          (byType(n, 'intune-acmp-actions').wires as string[][])[0].push('gone');
        }),
        /wire to gone, which is not in the file/,
      );
      expectProblem(
        broken((n) => {
          (byType(n, 'intune-acmp-actions').wires as string[][])[0].push(byType(n, 'intune-config').id);
        }),
        /wire to .*, a intune-config/,
      );
      expectProblem(
        broken((n) => {
          (byType(n, 'intune-acmp-actions').wires as string[][]).push([]);
        }),
        /has 2 output port\(s\) wired, the node has 1/,
      );
    });

    it('a config-node reference to a missing node, to a node of another type, or left empty', () => {
      expectProblem(
        broken((n) => {
          byType(n, 'intune-action').intune = 'nowhere';
        }),
        /intune refers to nowhere, which is not in the file/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-action').intune = byType(n, 'intune-acmp-config').id;
        }),
        /intune refers to .*, a intune-acmp-config, not a intune-config/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-acmp').acmp = '';
        }),
        /acmp must name a intune-acmp-config node/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-compliance').filtersFrom = byType(n, 'intune-4me').id;
        }, '4me - compliance incidents.json'),
        /filtersFrom refers to .*, a intune-4me, not a intune-devices/,
      );
    });

    it('credentials, a credential as a property, and values that look like secrets', () => {
      expectProblem(
        broken((n) => {
          byType(n, 'intune-acmp-config').credentials = { user: 'admin', password: 'x' };
        }),
        /carries a credentials object/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-config').clientSecret = 'abc~123';
        }),
        /carries the credential "clientSecret" as a property|clientSecret looks like a secret/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'debug').name = '-----BEGIN RSA PRIVATE KEY-----';
        }),
        /holds a private key/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'comment').info = 'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
        }),
        /holds a JSON web token/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-4me-config').apiKey = 'k';
        }, '4me - compliance incidents.json'),
        /apiKey looks like a secret/,
      );
    });

    it('a type that is neither core nor ours, and an unknown property of ours', () => {
      expectProblem(
        broken((n) => {
          byType(n, 'debug').type = 'node-red-contrib-something';
        }),
        /type "node-red-contrib-something" is neither a Node-RED core type nor one of this package/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-action').dryrun = true;
        }),
        /unknown property "dryrun"/,
      );
    });

    it('values the editor or the runtime would refuse', () => {
      expectProblem(
        broken((n) => {
          byType(n, 'intune-acmp-config').port = 70000;
        }),
        /port = 70000: .*\(editor\)/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-acmp').serverId = 'SRV9';
        }),
        /serverId = "SRV9".*\(editor\)|SRV9.*not configured.*\(runtime\)/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-devices').graphVersion = 'v2';
        }, '4me - devices to configuration items.json'),
        /Graph version must be "v1.0" or "beta".*\(runtime\)/,
      );
      expectProblem(
        broken((n) => {
          const d = byType(n, 'intune-devices');
          for (const p of ['platformWindows', 'platformMacos', 'platformIos', 'platformAndroid', 'platformLinux', 'platformOther']) d[p] = false;
        }, '4me - devices to configuration items.json'),
        /platformWindows = false: .*\(editor\)/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-4me-config').accountId = 'not an account';
        }, '4me - compliance incidents.json'),
        /accountId = "not an account".*\(editor\)/,
      );
    });

    it('two nodes on top of each other, or off the canvas', () => {
      expectProblem(
        broken((n) => {
          const a = byType(n, 'intune-action');
          const d = byType(n, 'debug');
          d.x = (a.x as number) + 30;
          d.y = (a.y as number) + 5;
        }),
        /overlap or touch/,
      );
      expectProblem(
        broken((n) => {
          byType(n, 'intune-acmp-actions').x = 20;
        }),
        /sticks out of the canvas/,
      );
    });

    it('labels and widths follow the editor: a node without a name shows its computed label', () => {
      const { nodes } = parseExample(first());
      const action = nodes.find((n) => n.type === 'intune-action')!;
      expect(labelOf(ctx, { ...action, name: '' })).to.match(/^\[dry run\] Intune: notify, sync, lock$/);
      expect(labelOf(ctx, { ...action, name: 'x', dryRun: true })).to.equal('x');
      const w = (label: string) => {
        const b = boxOf(ctx, { id: 'w', type: 'comment', name: label, x: 500, y: 100, z: 't' });
        return b.right - b.left;
      };
      expect(w('a')).to.equal(100);
      expect(w('Read me: fill in both connections, preview, then run')).to.be.within(380, 440);
    });
  });
});
