/**
 * Domain logic the ACMP nodes used to carry themselves, tested without
 * Node-RED: the intune-acmp settings (lib/acmp/acmp-sink-settings.ts) and
 * the job status both ACMP nodes send back (lib/acmp/acmp-jobs.ts).
 */
import { expect } from 'chai';
import { parseSinkSettings, SINK_DEFAULTS } from '../nodes/lib/acmp/acmp-sink-settings';
import { failedStatus, jobStatusMessage, statusRoute } from '../nodes/lib/acmp/acmp-jobs';

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
      });
      expect(SINK_DEFAULTS.batchSize).to.equal(200);
    });

    it('reads the editor\u2019s strings: trimmed names, numbers, "false", format 1', () => {
      const s = parseSinkSettings({ serverId: ' acmp1 ', onDemandDefinition: ' Mine ', batchSize: '50', reconcile: 'false', removalLimitPercent: '10', store: ' file ', replyTimeoutSec: '5', wireFormat: '1' });
      expect(s).to.deep.equal({ serverId: 'acmp1', onDemandDefinition: 'Mine', batchSize: 50, reconcile: false, removalLimitPercent: 10, store: 'file', replyTimeoutMs: 5000, format: 1 });
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
});
