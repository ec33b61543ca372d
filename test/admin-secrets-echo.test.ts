/**
 * Input echoed back in an error (node errors for Catch nodes, admin answers
 * for the editor) is cut to a bounded length: a 2 MB `msg.mode` once came
 * back whole.
 */
import { expect } from 'chai';
import { helper, distNode, tlsNode, loadFlow } from './support/node-helper';
import { startSimEnv, configFlow, type SimEnv } from './support/sim-env';
import { echo, ECHO_MAX_CHARS } from '../nodes/lib/shared/echo';

const HUGE = 'x'.repeat(2 * 1024 * 1024);
const BOUND = 400; // a whole sentence around the echo fits; megabytes do not

describe('echoed input is bounded', function () {
  this.timeout(30_000);

  describe('echo()', () => {
    it('quotes short values as JSON, unchanged', () => {
      expect(echo('full ')).to.equal('"full "');
      expect(echo(42)).to.equal('42');
      expect(echo({ a: 1 })).to.equal('{"a":1}');
      expect(echo(undefined)).to.equal('undefined');
    });

    it('cuts long strings and big objects, naming the full length', () => {
      const s = echo(HUGE);
      expect(s.length).to.be.lessThan(ECHO_MAX_CHARS + 40);
      expect(s).to.match(/^"x+…" \(2097152 characters\)$/);
      const o = echo({ list: new Array(10_000).fill('y') });
      expect(o.length).to.be.lessThan(ECHO_MAX_CHARS + 40);
      expect(o).to.match(/… \(\d+ characters\)$/);
    });

    it('survives values JSON cannot write', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(echo(cyclic)).to.equal('[object Object]');
      expect(echo(10n)).to.equal('[object BigInt]');
    });
  });

  describe('in nodes and admin answers', () => {
    let env: SimEnv;
    before(async () => {
      env = await startSimEnv({ devices: 3, seed: 2 });
    });
    after(async () => {
      await env?.stop();
    });
    afterEach(async () => {
      await helper.unload();
    });

    async function deploy() {
      const { nodes, credentials } = configFlow(env);
      const flow = [
        ...nodes,
        { id: 'f1', type: 'tab', label: 'echo' },
        { id: 'dev', type: 'intune-devices', z: 'f1', intune: 'cfg1', fullEveryHours: 0, incrementalEveryMinutes: 0, wires: [[], []] },
        { id: 'cmp', type: 'intune-compliance', z: 'f1', intune: 'cfg1', everyMinutes: 0, wires: [[], []] },
        { id: 'c1', type: 'catch', z: 'f1', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', z: 'f1' },
      ];
      await loadFlow([tlsNode, distNode('intune-config'), distNode('intune-devices'), distNode('intune-compliance')], flow, credentials);
    }

    for (const id of ['dev', 'cmp']) {
      it(`${id === 'dev' ? 'intune-devices' : 'intune-compliance'}: a 2 MB msg.mode comes back cut in the error`, async () => {
        await deploy();
        const caught = new Promise<{ error: { message: string } }>((resolve) => {
          (helper.getNode('caught') as unknown as { on: (e: string, f: (m: unknown) => void) => void }).on('input', (m) => resolve(m as { error: { message: string } }));
        });
        (helper.getNode(id) as unknown as { receive: (m: unknown) => void }).receive({ mode: HUGE });
        const m = await caught;
        expect(m.error.message).to.match(/Unknown msg\.mode "x+…" \(2097152 characters\)/);
        expect(m.error.message.length).to.be.lessThan(BOUND);
      });
    }

    it('intune-devices/preview: a 2 MB setting comes back cut in the answer', async () => {
      await deploy();
      const res = await helper.request().post('/intune-devices/preview').send({ intune: 'cfg1', triggerMode: HUGE });
      expect(res.status).to.equal(400);
      expect(res.body.message).to.match(/2097152 characters/);
      expect(JSON.stringify(res.body).length).to.be.lessThan(BOUND);
    });

    it('intune-config/verify: a 2 MB URL comes back cut in the answer', async () => {
      await deploy();
      const { nodes } = configFlow(env, { id: 'form' });
      const res = await helper.request().post('/intune-config/verify').send({ ...(nodes[1] as object), graphBaseUrl: `not a url ${HUGE}`, credentials: { clientSecret: 'typed' } });
      expect(res.body.code).to.equal('invalidConfig');
      expect(JSON.stringify(res.body).length).to.be.lessThan(BOUND * 2);
    });
  });
});
