/**
 * The editor and the runtime must agree on every value they share: what a
 * dialog lets through, the runtime must run with, and what the dialog rejects,
 * the runtime rejects too. Each editor (as the build assembles it, toolkit
 * inlined) is evaluated in the sandbox of test/support/example-checks.ts, and
 * its validators are compared with the runtime's parse function of the same
 * node:
 *   - the editor's defaults, as a whole, are settings the runtime accepts, and
 *     they are the runtime's own defaults (a node imported without them runs alike);
 *   - every number property: the bounds the validator names in its message
 *     (and the values around them) are accepted or refused alike;
 *   - every choice a <select> of the dialog offers is one the runtime accepts,
 *     and the validator of that property accepts it too.
 * (The device-filter defaults themselves: test/examples.test.ts.)
 */
import path from 'node:path';
import { expect } from 'chai';
import { editorDefs, editorHtml, type EditorDef } from './support/example-checks';
import { parseDeviceSourceSettings } from '../nodes/lib/devices/device-source-settings';
import { parseComplianceSettings } from '../nodes/lib/compliance/compliance-settings';
import { parseSettings as parseIntuneSettings } from '../nodes/lib/intune/intune-connection';
import { parseFourMeSettings } from '../nodes/lib/fourme/fourme-connection';
import { parseSinkSettings as parseFourMeSinkSettings } from '../nodes/lib/fourme/fourme-sink';
import { parseSicsSettings } from '../nodes/lib/acmp/sics-settings';
import { parseActionSettings } from '../nodes/lib/actions/action-settings';
import { parseWireFormat } from '../nodes/lib/acmp/acmp-wire';

const root = path.resolve(__dirname, '..', '..');
const GUID = '11111111-2222-3333-4444-555555555555';

type Raw = Record<string, unknown>;
/**
 * The runtime's reading of each node's properties (what its constructor calls), with what a
 * dialog requires filled in. intune-acmp reads its numbers in its node file (not exported), so only
 * its wire format is compared here.
 */
const RUNTIME: Record<string, (raw: Raw) => unknown> = {
  'intune-devices': (raw) => parseDeviceSourceSettings(raw),
  'intune-compliance': (raw) => parseComplianceSettings(raw),
  'intune-config': (raw) => parseIntuneSettings(filled(raw, { tenantId: GUID, clientId: GUID })),
  'intune-4me-config': (raw) => parseFourMeSettings(filled(raw, { accountId: 'acme' })),
  'intune-4me': (raw) => parseFourMeSinkSettings(raw),
  'intune-acmp-config': (raw) => parseSicsSettings(filled(raw, { host: 'sics.example.test' })),
  'intune-action': (raw) => parseActionSettings(raw as never),
};
/** What a choice needs besides itself (the URLs a custom cloud or environment asks for in the dialog). */
const CHOICE_NEEDS: Record<string, Record<string, Raw>> = {
  'intune-config': { 'cloud=custom': { authorityHost: 'https://login.example.test', graphBaseUrl: 'https://graph.example.test' } },
  'intune-4me-config': { 'environment=custom': { graphqlUrl: 'https://graphql.example.test' }, 'authType=oauth': { clientId: 'connector-client' } },
};
/**
 * Settings where a node without the property runs differently from a freshly dropped one, on purpose so far:
 * the schedule. Without fullEveryHours / everyMinutes (a flow from before the schedule existed) the runtime
 * schedules nothing; a new node starts with a daily (devices) or hourly (compliance) run. Reported to the lead
 * (issue #19): whether a bare node should be scheduled is a behaviour decision, not part of this refactor.
 */
const ABSENT_DIFFERS: Record<string, string[]> = { 'intune-devices': ['fullEveryMs'], 'intune-compliance': ['everyMs'] };
/** Switches that make the runtime read more of the numbers (the follow-up ones only with follow-up on). */
const SWITCHED_ON: Record<string, Raw> = { 'intune-action': { followUp: true } };

/** `raw` with what the user must type in (empty in a fresh node) filled in. */
function filled(raw: Raw, required: Raw): Raw {
  const out = { ...raw };
  for (const [k, v] of Object.entries(required)) if (out[k] === undefined || out[k] === '') out[k] = v;
  return out;
}

/** Properties a dialog sets that are not the node's own settings (links to other nodes). */
const NOT_SETTINGS = new Set(['name', 'intune', 'fourme', 'acmp', 'tls', 'proxy', 'filtersFrom', 'servers']);

function accepts(type: string, raw: Raw): boolean {
  try {
    RUNTIME[type](raw);
    return true;
  } catch {
    return false;
  }
}

/** The editor's default of every property: a freshly dropped node. */
function fresh(def: EditorDef): Raw {
  const node: Raw = {};
  for (const [k, d] of Object.entries(def.defaults)) if (!NOT_SETTINGS.has(k)) node[k] = d.value;
  return node;
}

/** A fresh node with the switches on that make the runtime read every number. */
function switchedOn(type: string, def: EditorDef): Raw {
  return { ...fresh(def), ...SWITCHED_ON[type] };
}

function validates(def: EditorDef, node: Raw, prop: string, v: unknown): boolean {
  const check = def.defaults[prop].validate;
  return check ? check.call({ ...node, [prop]: v }, v, {}) === true : true;
}

/** The static choices of <select id="node(-config)-input-<prop>"> in the dialog. */
function selectOptions(html: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of html.matchAll(/<select id="node-(?:config-)?input-([A-Za-z0-9]+)"[^>]*>([\s\S]*?)<\/select>/g)) {
    const values = [...m[2].matchAll(/<option value="([^"]*)"/g)].map((o) => o[1]);
    if (values.length) out.set(m[1], values);
  }
  return out;
}

describe('editor and runtime agree (drift)', function () {
  this.timeout(30_000);
  const types = Object.keys(RUNTIME);
  const defs = editorDefs(root, [...types, 'intune-acmp']);

  for (const type of types) {
    describe(type, () => {
      const def = defs.get(type)!;

      it("the editor's defaults are settings the runtime accepts", () => {
        expect(() => RUNTIME[type](fresh(def))).to.not.throw();
      });

      it('a node with no properties at all (imported bare) runs like a fresh node of the editor: the defaults are the same', () => {
        const without = (settings: unknown) => {
          const out = { ...(settings as Raw) };
          for (const k of ABSENT_DIFFERS[type] ?? []) delete out[k];
          return out;
        };
        const bare = RUNTIME[type]({ ...SWITCHED_ON[type] });
        const dropped = RUNTIME[type](switchedOn(type, def));
        expect(without(bare)).to.deep.equal(without(dropped));
        // The known difference is still there (else it goes from ABSENT_DIFFERS).
        for (const k of ABSENT_DIFFERS[type] ?? []) expect((bare as Raw)[k], `${type}: ${k}`).to.not.deep.equal((dropped as Raw)[k]);
      });

      it('every number property: the validator and the runtime accept and refuse the same values', () => {
        const node = switchedOn(type, def);
        const numeric = Object.keys(def.defaults).filter((p) => !NOT_SETTINGS.has(p) && typeof def.defaults[p].value === 'number' && def.defaults[p].validate);
        expect(numeric.length, 'number properties with a validator').to.be.greaterThan(0);
        for (const prop of numeric) {
          // The validator names its range when it refuses: "… from <min> to <max>".
          const refusal = String(def.defaults[prop].validate!.call(node, '-1', {}));
          const bounds = (refusal.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number);
          expect(bounds.length, `${type}.${prop}: the refusal of -1 names the range (${refusal})`).to.be.at.least(2);
          const [min, max] = [Math.min(...bounds), Math.max(...bounds)];
          const probes = [min - 1, min, max, max + 1, Math.floor((min + max) / 2), min + 0.5, 'abc'];
          for (const v of probes) {
            const editor = validates(def, node, prop, String(v));
            const runtime = accepts(type, { ...node, [prop]: String(v) });
            expect(editor, `${type}.${prop} = ${v}: editor ${editor ? 'accepts' : 'refuses'}, runtime ${runtime ? 'accepts' : 'refuses'}`).to.equal(runtime);
          }
          if (!def.defaults[prop].required) {
            expect(accepts(type, { ...node, [prop]: '' }), `${type}.${prop} empty: the runtime takes its default, as the editor lets it`).to.equal(validates(def, node, prop, ''));
          }
        }
      });

      it('every choice of a select is accepted by the runtime and by its validator', () => {
        const node = fresh(def);
        const selects = [...selectOptions(editorHtml(root, type))].filter(([p]) => p in def.defaults && !NOT_SETTINGS.has(p));
        for (const [prop, values] of selects) {
          for (const v of values) {
            const chosen = { ...node, ...CHOICE_NEEDS[type]?.[`${prop}=${v}`], [prop]: v };
            expect(accepts(type, chosen), `${type}.${prop} = "${v}" (a choice of the dialog) is refused by the runtime`).to.equal(true);
            expect(validates(def, chosen, prop, v), `${type}.${prop} = "${v}" (a choice of the dialog) is refused by its validator`).to.equal(true);
          }
          if (def.defaults[prop].validate) {
            expect(validates(def, node, prop, 'no-such-choice'), `${type}.${prop}: an unknown choice`).to.equal(accepts(type, { ...node, [prop]: 'no-such-choice' }));
          }
        }
      });
    });
  }

  it('intune-acmp: the wire formats of the dialog are those the runtime reads, and its default is one', () => {
    const def = defs.get('intune-acmp')!;
    const offered = selectOptions(editorHtml(root, 'intune-acmp')).get('wireFormat') ?? [];
    expect(offered.length).to.be.greaterThan(0);
    for (const v of offered) expect(() => parseWireFormat(v), v).to.not.throw();
    expect(offered).to.include(String(def.defaults.wireFormat.value));
    expect(() => parseWireFormat('no-such-format')).to.throw();
  });
});
