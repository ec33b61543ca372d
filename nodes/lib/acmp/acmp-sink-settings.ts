/**
 * The properties of an `intune-acmp` node, checked once at deploy: which
 * ACMP server(s) it publishes to, the on-demand definition, the batch size,
 * removals after a complete full run and their limit, where its state is
 * kept, how long it waits for a reply, the wire format it writes and the
 * largest message it sends.
 */
import { parseWireFormat, type WireFormat } from './acmp-wire';
import { strictBool } from '../shared/validation';

/** The node's properties as the editor saves them (numbers and flags may arrive as strings). */
export interface AcmpSinkProperties {
  serverId?: string;
  onDemandDefinition?: string;
  batchSize?: string | number;
  reconcile?: boolean | string;
  removalLimitPercent?: string | number;
  store?: string;
  replyTimeoutSec?: string | number;
  wireFormat?: string | number;
  maxMessageKb?: string | number;
}

export const SINK_DEFAULTS = { serverId: '*', onDemandDefinition: 'IntuneMobileDevices_1', batchSize: 200, replyTimeoutSec: 60, removalLimitPercent: 50, maxMessageKb: 4096 } as const;

export interface SinkSettings {
  serverId: string;
  onDemandDefinition: string;
  batchSize: number;
  reconcile: boolean;
  removalLimitPercent: number;
  store: string;
  replyTimeoutMs: number;
  format: WireFormat;
  /** Most bytes of XML per inventory message (acmp-batches.ts; our choice, nothing public states a SICS limit). */
  maxMessageBytes: number;
}

/** Throws a plain-words Error naming the property. */
export function parseSinkSettings(def: AcmpSinkProperties): SinkSettings {
  const serverId = String(def.serverId ?? '').trim() || SINK_DEFAULTS.serverId;
  const odd = String(def.onDemandDefinition ?? '').trim() || SINK_DEFAULTS.onDemandDefinition;
  if (odd.length > 200) throw new Error('The on-demand definition name is too long (at most 200 characters)');
  const num = (v: unknown, fallback: number, what: string, min: number, max: number) => {
    if (v === undefined || v === null || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${what} must be a whole number from ${min} to ${max}`);
    return n;
  };
  return {
    serverId,
    onDemandDefinition: odd,
    batchSize: num(def.batchSize, SINK_DEFAULTS.batchSize, 'Devices per message', 1, 5000),
    // Strictly (shared/validation): a "no" meant to switch removals off must not leave them on.
    reconcile: strictBool(def.reconcile, true, (reason) => new Error(`"Report devices that are gone from Intune" ${reason}`)),
    removalLimitPercent: num(def.removalLimitPercent, SINK_DEFAULTS.removalLimitPercent, 'The removal limit (%)', 1, 100),
    store: typeof def.store === 'string' ? def.store.trim() : '',
    replyTimeoutMs: num(def.replyTimeoutSec, SINK_DEFAULTS.replyTimeoutSec, 'Reply timeout (s)', 1, 3600) * 1000,
    format: parseWireFormat(def.wireFormat),
    maxMessageBytes: num(def.maxMessageKb, SINK_DEFAULTS.maxMessageKb, 'Largest message (KB)', 64, 65536) * 1024,
  };
}
