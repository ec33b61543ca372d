/** The message contracts (nodes/lib/contracts.ts): the topics and the one check of msg.sync every consumer uses. */
import { expect } from 'chai';
import { readSyncEnvelope, syncEnvelopeIn, SyncEnvelopeError, TOPIC_COMPLIANCE, TOPIC_DEVICES, type RunStats } from '../nodes/lib/contracts';

const stats: RunStats = { items: 2, emitted: 2, skipped: {}, pages: 1, requests: 1, retries: 0, throttled: 0, throttleWaitMs: 0, durationMs: 5 };
const valid = () => ({ runId: 'devices-20260101T000000Z-abc123', instance: 'IntuneConnector_1', mode: 'full', page: 2, last: true, startedAt: '2026-01-01T00:00:00.000Z', stats });

function failure(value: unknown): SyncEnvelopeError {
  try {
    readSyncEnvelope(value);
  } catch (e) {
    expect(e).to.be.instanceOf(SyncEnvelopeError);
    return e as SyncEnvelopeError;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('contracts: topics', () => {
  it('name the two kinds of source runs', () => {
    expect(TOPIC_DEVICES).to.equal('intune/devices');
    expect(TOPIC_COMPLIANCE).to.equal('intune/compliance');
  });
});

describe('contracts: readSyncEnvelope', () => {
  it('accepts a complete envelope and keeps every field', () => {
    expect(readSyncEnvelope(valid())).to.deep.equal(valid());
    expect(readSyncEnvelope({ ...valid(), mode: 'incremental', page: 1, last: false })).to.include({ mode: 'incremental', page: 1, last: false });
  });

  it('keeps the users page 1 of a full run names', () => {
    const upns = ['a@contoso.com', 'b@contoso.com'];
    expect(readSyncEnvelope({ ...valid(), page: 1, last: false, userPrincipalNames: upns }).userPrincipalNames).to.deep.equal(upns);
    expect(readSyncEnvelope(valid())).to.not.have.property('userPrincipalNames');
  });

  it('fills what may be left out: instance "default", startedAt now; no stats stays no stats', () => {
    const now = Date.parse('2026-03-04T05:06:07Z');
    const env = readSyncEnvelope({ runId: 'r', mode: 'incremental', page: 1, last: false }, () => now);
    expect(env).to.deep.equal({ runId: 'r', instance: 'default', mode: 'incremental', page: 1, last: false, startedAt: '2026-03-04T05:06:07.000Z' });
    expect(env).not.to.have.property('stats');
  });

  it('drops fields that are not part of the envelope', () => {
    expect(readSyncEnvelope({ ...valid(), extra: 'x' })).not.to.have.property('extra');
  });

  it('rejects what is not an object, showing what it got', () => {
    for (const v of [undefined, null, 'run-1', 42, [valid()]]) {
      const e = failure(v);
      expect(e.field).to.equal(undefined);
      expect(e.message).to.match(/^msg\.sync must be the run envelope of an Intune source \(\{runId, instance, mode, page, last, …\}\), got /);
    }
    expect(failure('run-1').message).to.match(/got "run-1"$/);
  });

  const malformed: Array<[string, Record<string, unknown>, RegExp]> = [
    ['runId', { runId: undefined }, /^msg\.sync\.runId is missing \(got undefined\)$/],
    ['runId', { runId: '' }, /^msg\.sync\.runId is missing \(got ""\)$/],
    ['runId', { runId: 7 }, /^msg\.sync\.runId is missing \(got 7\)$/],
    ['instance', { instance: 3 }, /^msg\.sync\.instance must be a string \(got 3\)$/],
    ['mode', { mode: 'weekly' }, /^msg\.sync\.mode must be "full" or "incremental" \(got "weekly"\)$/],
    ['mode', { mode: undefined }, /^msg\.sync\.mode must be "full" or "incremental" \(got undefined\)$/],
    ['page', { page: 0 }, /^msg\.sync\.page must be a whole number from 1 \(got 0\)$/],
    ['page', { page: 1.5 }, /^msg\.sync\.page must be a whole number from 1 \(got 1\.5\)$/],
    ['page', { page: '2' }, /^msg\.sync\.page must be a whole number from 1 \(got "2"\)$/],
    ['last', { last: 'true' }, /^msg\.sync\.last must be true or false \(got "true"\)$/],
    ['last', { last: undefined }, /^msg\.sync\.last must be true or false \(got undefined\)$/],
    ['startedAt', { startedAt: 17 }, /^msg\.sync\.startedAt must be an ISO date text \(got 17\)$/],
    ['stats', { stats: 'all fine' }, /^msg\.sync\.stats must be the run's statistics object \(got "all fine"\)$/],
    ['stats', { stats: null }, /^msg\.sync\.stats must be the run's statistics object \(got null\)$/],
    ['userPrincipalNames', { userPrincipalNames: 'a@contoso.com' }, /^msg\.sync\.userPrincipalNames must be a list of user principal names \(got "a@contoso\.com"\)$/],
    ['userPrincipalNames', { userPrincipalNames: ['a@contoso.com', 7] }, /^msg\.sync\.userPrincipalNames must be a list of user principal names \(got a list holding 7\)$/],
  ];
  for (const [field, change, message] of malformed) {
    it(`rejects a malformed ${field} (${JSON.stringify(change)}), naming the field`, () => {
      const e = failure({ ...valid(), ...change });
      expect(e.field).to.equal(field);
      expect(e.message).to.match(message);
    });
  }

  it('cuts a huge value in the message', () => {
    const e = failure({ ...valid(), mode: 'x'.repeat(100_000) });
    expect(e.message.length).to.be.below(200);
    expect(e.message).to.include('(100000 characters)');
  });
});

describe('contracts: syncEnvelopeIn (flow control)', () => {
  it('is the envelope when valid, undefined otherwise, and never throws', () => {
    expect(syncEnvelopeIn(valid())).to.deep.equal(valid());
    expect(syncEnvelopeIn(undefined)).to.equal(undefined);
    expect(syncEnvelopeIn({ ...valid(), page: 0 })).to.equal(undefined);
  });
});
