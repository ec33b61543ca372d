/**
 * Domain logic the ACMP nodes used to carry themselves, tested without
 * Node-RED: the intune-acmp settings (lib/acmp/acmp-sink-settings.ts), the
 * job status both ACMP nodes send back and the result check
 * (lib/acmp/acmp-jobs.ts), a page's problem lines (acmp-sync.ts) and the
 * wire format of an unreadable job (acmp-wire.ts).
 */
import { expect } from 'chai';
import { parseSinkSettings, SINK_DEFAULTS } from '../nodes/lib/acmp/acmp-sink-settings';
import { failedStatus, isActionResult, jobStatusMessage, statusRoute } from '../nodes/lib/acmp/acmp-jobs';
import { pageProblems, type PageReport } from '../nodes/lib/acmp/acmp-sync';
import { formatOf } from '../nodes/lib/acmp/acmp-wire';

describe('ACMP node logic in lib', () => {
  describe('parseSinkSettings (intune-acmp)', () => {
    it('empty properties give the defaults: every server, IntuneMobileDevices_1, 200 per message, removals on at 50 %, 60 s, format 2', () => {
      expect(parseSinkSettings({})).to.deep.equal({
        serverId: '*',
        onDemandDefinition: 'IntuneMobileDevices_1',
        batchSize: 200,
        reconcile: true,
        removalLimitPercent: 50,
        store: '',
        replyTimeoutMs: 60_000,
        format: 2,
        maxMessageBytes: 4096 * 1024,
      });
      expect(SINK_DEFAULTS.batchSize).to.equal(200);
    });

    it('reads the editor\u2019s strings: trimmed names, numbers, "false", format 1', () => {
      const s = parseSinkSettings({ serverId: ' acmp1 ', onDemandDefinition: ' Mine ', batchSize: '50', reconcile: 'false', removalLimitPercent: '10', store: ' file ', replyTimeoutSec: '5', wireFormat: '1', maxMessageKb: '512' });
      expect(s).to.deep.equal({ serverId: 'acmp1', onDemandDefinition: 'Mine', batchSize: 50, reconcile: false, removalLimitPercent: 10, store: 'file', replyTimeoutMs: 5000, format: 1, maxMessageBytes: 512 * 1024 });
    });

    it('refuses what is out of range, in words naming the property', () => {
      expect(() => parseSinkSettings({ batchSize: 0 })).to.throw('Devices per message must be a whole number from 1 to 5000');
      expect(() => parseSinkSettings({ batchSize: '2.5' })).to.throw(/Devices per message/);
      expect(() => parseSinkSettings({ removalLimitPercent: 101 })).to.throw('The removal limit (%) must be a whole number from 1 to 100');
      expect(() => parseSinkSettings({ replyTimeoutSec: 3601 })).to.throw(/Reply timeout \(s\)/);
      expect(() => parseSinkSettings({ onDemandDefinition: 'x'.repeat(201) })).to.throw(/at most 200 characters/);
    });
  });

  describe('the job status sent back', () => {
    const server = { serverId: 'acmp1', virtualRouter: 'IntuneConnector', routingKey: 'acmp1.in', extra: 42 };

    it('goes to the job\u2019s callback when it named both parts, else to the server\u2019s routing key', () => {
      expect(statusRoute(server, { virtualRouter: 'cbvr', routingKey: 'cbkey' })).to.deep.equal({ ...server, virtualRouter: 'cbvr', routingKey: 'cbkey' });
      expect(statusRoute(server, undefined)).to.equal(server);
      expect(statusRoute(server, { virtualRouter: 'cbvr', routingKey: '' })).to.equal(server);
      expect(statusRoute(server, { virtualRouter: 7, routingKey: 'k' })).to.equal(server);
    });

    it('is a jobStatus message with the parts, a fresh header and the finish time; no action or reason when there is none', () => {
      const at = new Date('2026-03-04T05:06:07Z');
      const parts = failedStatus('J1', 'no clients', [{ intuneId: 'i1', acmpClientId: 'c1' }], 'lock');
      const m = jobStatusMessage(parts, at);
      expect(m).to.deep.include({ kind: 'jobStatus', jobId: 'J1', action: 'lock', state: 'failed', finishedAt: '2026-03-04T05:06:07.000Z', reason: 'no clients', clients: parts.clients });
      expect(m.header.messageId).to.be.a('string').and.not.equal('');
      expect(jobStatusMessage(parts, at).header.messageId).to.not.equal(m.header.messageId);
      const bare = jobStatusMessage({ jobId: 'J2', state: 'finished', clients: [] }, at);
      expect(bare).to.not.have.any.keys('action', 'reason');
    });
  });

  it('isActionResult: a job id, a status and a list of results', () => {
    expect(isActionResult({ jobId: 'J', status: 'finished', results: [] })).to.equal(true);
    expect(isActionResult({ jobId: 7, status: 'finished', results: [] })).to.equal(false);
    expect(isActionResult({ jobId: 'J', status: 'finished' })).to.equal(false);
    expect(isActionResult([{ jobId: 'J' }])).to.equal(false);
    expect(isActionResult(null)).to.equal(false);
  });

  it('pageProblems: one line per failed batch and removal, then the warnings', () => {
    const report = {
      servers: [{ serverId: 's1', batches: [{ batch: 1, devices: 200, ok: true }, { batch: 2, devices: 50, ok: false, code: 7 }] }],
      removals: [{ serverId: 's2', batches: [{ batch: 1, devices: 3, ok: false, error: 'timeout' }] }],
      warnings: ['state not written'],
    } as unknown as PageReport;
    expect(pageProblems(report)).to.deep.equal(['s1 batch 2 (50 devices): result code 7', 's2 removal 1 (3 devices): timeout', 'state not written']);
    expect(pageProblems({ servers: [], warnings: [] } as unknown as PageReport)).to.deep.equal([]);
  });

  it('formatOf: an unreadable job is answered in the old envelope (1) only when it came in one', () => {
    expect(formatOf('<IntuneConnector><Header/></IntuneConnector>')).to.equal(1);
    expect(formatOf('<IntuneConnector\n version="1">')).to.equal(1);
    expect(formatOf('<Command><ActionJob/></Command>')).to.equal(2);
    expect(formatOf('<IntuneConnectorX/>')).to.equal(2);
  });
});
