/**
 * OUR message schema for the Intune connector's traffic with ACMP over SICS
 * (docs/acmp-wire-format.md has examples and the XSD).
 *
 * Aagon publishes no schema for what an Intune connector sends to ACMP, so
 * everything inside the `<IntuneConnector>` element is defined here, by this
 * package, and versioned: the namespace carries the major version
 * (`…:v1`), the `version` attribute the minor one. A reader accepts every
 * 1.x message and ignores elements and attributes it does not know (a minor
 * version only adds); it refuses another major version. What is public and
 * kept: a request travels as Base64 of an XML document whose root is
 * `<ICQL>` with an `<ACMP>` child.
 *
 *   <ICQL><ACMP>
 *     <IntuneConnector xmlns="urn:x-intune-connector:acmp:v1" version="1.0"
 *                      messageId=".." sentAt=".." instance=".." serverId="..">
 *       <DeviceInventory> | <DeviceRemoval> | <JobStatus> | <Ping>   (connector → ACMP)
 *       <ActionJob> | <Reply>                                        (ACMP → connector)
 *     </IntuneConnector>
 *   </ACMP></ICQL>
 *
 * Two framings of the same message elements (docs/acmp-wire-format.md):
 * - version 2 (default): framed as ACMP frames its Public API commands
 *   (`<ICQL><ACMP><Command version="N"><TCommandRequest_VN>…`, sics.md),
 *   one command per message type (`IntuneDeviceInventory`, …), so an
 *   ACMP-side consumer dispatches them like any Public API command; the
 *   answer is a `<T…Response_V2>` holding `<ResultCode>` (plus our
 *   `<Failed>` items);
 * - version 1: the `<IntuneConnector>` envelope above, answered by `<Reply>`.
 * A reader takes both, and also the generic Public API answer
 * (`<T…Response_Vn>` with only a `<ResultCode>`), see readReply().
 *
 * Every Device field of contracts.ts travels: a null value is an absent
 * element, an empty string an empty one, so `decode(encode(d))` equals `d`.
 * The device's software (when the source read it) travels as `<Software>`
 * at the end of `<Device>` (acmp-wire-software.ts); no element = not read.
 * Free text goes into element content (never attributes) and is escaped by
 * acmp-xml; a value XML cannot carry is sent Base64-encoded (enc="base64").
 */
import { randomUUID } from 'node:crypto';
import type { ActionName, ActionOutcome, Device, DeviceUser, SyncMode } from '../contracts';
import { XmlError, child, childrenNamed, el, parseXml, renderXml, renderXmlBytes, textElement, textOf, type XmlElement, type XmlNode } from './acmp-xml';
import { softwareFromXml, softwareToXml } from './acmp-wire-software';

export const WIRE_NAMESPACE = 'urn:x-intune-connector:acmp:v1';
export const WIRE_MAJOR = 1;
/** 1.1 added the optional `<Software>` of a device (acmp-wire-software.ts); a 1.0 reader ignores it. */
export const WIRE_VERSION = '1.1';
/** Namespace of the version-2 (command-framed) messages. */
export const WIRE_NAMESPACE_V2 = 'urn:x-intune-connector:acmp:v2';

/** The wire format versions this connector writes and reads: 1 = `<IntuneConnector>` envelope, 2 = Public-API command framing. */
export type WireFormat = 1 | 2;
export const WIRE_FORMATS: readonly WireFormat[] = [1, 2];
export const DEFAULT_WIRE_FORMAT: WireFormat = 2;

/** The wire format of a document that could not be read as a job (to answer in kind): 1 for the old envelope, else 2. */
export function formatOf(xml: string): WireFormat {
  return /<IntuneConnector[\s>]/.test(xml) ? 1 : 2;
}

/** Reads a wire format setting ("1", "2", 1, 2; empty = the default). Throws for anything else. */
export function parseWireFormat(v: unknown): WireFormat {
  if (v === undefined || v === null || v === '') return DEFAULT_WIRE_FORMAT;
  const n = Number(v);
  if (n === 1 || n === 2) return n;
  throw new WireError(`The wire format must be 1 or 2, not "${String(v).slice(0, 20)}"`, { field: 'wireFormat' });
}

/** Most devices or clients one message may carry (a guard against runaway input, not a batch size). */
export const MAX_ITEMS_PER_MESSAGE = 10_000;

export class WireError extends Error {
  override name = 'WireError';
  constructor(
    message: string,
    readonly details: { field?: string; messageId?: string; jobId?: string; serverId?: string; type?: string } = {},
  ) {
    super(message);
  }
}

// ------------------------------------------------------------------ types

export interface WireHeader {
  messageId: string;
  sentAt: string;
  /** The connector instance (the source's instance name, e.g. IntuneConnector_1): ACMP keeps devices per instance. */
  instance?: string;
  /** Connector → ACMP: the addressed server. ACMP → connector: the sending server. */
  serverId?: string;
  /** The minor version the sender wrote (e.g. "1.0"); "2" for version 2. */
  version?: string;
  /** The framing the message came in (set by the reader). */
  format?: WireFormat;
}

export interface InventoryMessage {
  kind: 'inventory';
  header: WireHeader;
  onDemandDefinition: string;
  runId: string;
  mode: SyncMode;
  page: number;
  batch: number;
  devices: Device[];
}

export interface RemovalMessage {
  kind: 'removal';
  header: WireHeader;
  onDemandDefinition: string;
  runId: string;
  deviceIds: string[];
}

export type JobState = 'finished' | 'partial' | 'failed';

export interface JobClientStatus {
  intuneId: string;
  acmpClientId?: string;
  state: 'finished' | 'failed';
  outcome?: ActionOutcome;
  error?: string;
}

export interface JobStatusMessage {
  kind: 'jobStatus';
  header: WireHeader;
  jobId: string;
  action?: ActionName;
  state: JobState;
  finishedAt: string;
  reason?: string;
  clients: JobClientStatus[];
}

export interface PingMessage {
  kind: 'ping';
  header: WireHeader;
}

export interface JobClient {
  acmpClientId?: string;
  intuneId: string;
  name?: string;
}

export interface ActionJobMessage {
  kind: 'actionJob';
  header: WireHeader;
  jobId: string;
  action: ActionName;
  requestedBy?: string;
  createdAt?: string;
  /** The operator confirmed the action (required for retire and wipe). */
  confirmed: boolean;
  clients: JobClient[];
  notification?: { title: string; body: string };
  wipe?: { keepEnrollmentData?: boolean; keepUserData?: boolean; persistEsimDataPlan?: boolean };
}

export interface ReplyItem {
  intuneId: string;
  code: number;
  message?: string;
}

export interface ReplyMessage {
  kind: 'reply';
  header: WireHeader;
  /** The message answered; empty for a generic Public API answer, which names none (the channel correlates it). */
  inReplyTo: string;
  /** Version 2: the command answered (e.g. IntuneDeviceInventory); it names the `<T…Response_V2>` element. */
  command?: string;
  code: number;
  message?: string;
  /** Items the server could not process although the message as a whole was accepted. */
  failed: ReplyItem[];
}

export type WireMessage = InventoryMessage | RemovalMessage | JobStatusMessage | PingMessage | ActionJobMessage | ReplyMessage;

/** ACMP's query actions, as our schema names them, and the contract's action names. */
export const WIRE_ACTIONS: Record<string, ActionName> = {
  SendNotification: 'notify',
  Retire: 'retire',
  Wipe: 'wipe',
  RemoteLock: 'lock',
  Synchronize: 'sync',
};
const ACTION_TO_WIRE: Record<ActionName, string> = Object.fromEntries(Object.entries(WIRE_ACTIONS).map(([k, v]) => [v, k])) as Record<ActionName, string>;

export function wireAction(a: ActionName): string {
  return ACTION_TO_WIRE[a];
}

const ELEMENT_OF: Record<WireMessage['kind'], string> = {
  inventory: 'DeviceInventory',
  removal: 'DeviceRemoval',
  jobStatus: 'JobStatus',
  ping: 'Ping',
  actionJob: 'ActionJob',
  reply: 'Reply',
};

/** Version 2: the Public-API-style command name of each message type. */
export const COMMAND_OF: Record<Exclude<WireMessage['kind'], 'reply'>, string> = {
  inventory: 'IntuneDeviceInventory',
  removal: 'IntuneDeviceRemoval',
  jobStatus: 'IntuneJobStatus',
  ping: 'IntunePing',
  actionJob: 'IntuneActionJob',
};
const KIND_OF_COMMAND: Record<string, Exclude<WireMessage['kind'], 'reply'>> = Object.fromEntries(Object.entries(COMMAND_OF).map(([k, v]) => [v, k])) as Record<string, Exclude<WireMessage['kind'], 'reply'>>;

export function newMessageId(): string {
  return randomUUID();
}

export function header(h: Partial<WireHeader> = {}): WireHeader {
  return { messageId: h.messageId ?? newMessageId(), sentAt: h.sentAt ?? new Date().toISOString(), ...(h.instance ? { instance: h.instance } : {}), ...(h.serverId ? { serverId: h.serverId } : {}) };
}

// ------------------------------------------------------------------ devices

const opt = (name: string, v: string | null | undefined): XmlNode | null => (v === null || v === undefined ? null : textElement(name, v));
const bool = (name: string, v: boolean | null | undefined): XmlNode | null => (v === null || v === undefined ? null : el(name, null, v ? 'true' : 'false'));

/** One Device as our `<Device>` element. */
export function deviceToXml(d: Device): XmlNode {
  const u = d.user;
  return el(
    'Device',
    { intuneId: d.id },
    textElement('Name', d.name),
    opt('AzureAdDeviceId', d.azureAdDeviceId),
    opt('SerialNumber', d.serialNumber),
    opt('RawSerialNumber', d.rawSerialNumber),
    opt('Manufacturer', d.manufacturer),
    opt('Model', d.model),
    el('OperatingSystem', null, opt('Name', d.os?.name), opt('Version', d.os?.version), opt('Sku', d.os?.sku)),
    el('Storage', { totalBytes: d.storage?.totalBytes ?? null, freeBytes: d.storage?.freeBytes ?? null }),
    opt('EnrolledAt', d.enrolledAt),
    opt('LastContactAt', d.lastContactAt),
    bool('AzureAdRegistered', d.azureAdRegistered),
    opt('JoinType', d.joinType),
    el('Ownership', null, d.ownership),
    opt('ComplianceState', d.complianceState),
    bool('Encrypted', d.encrypted),
    el('Jailbroken', null, d.jailbroken),
    opt('ManagementAgent', d.managementAgent),
    bool('CoManaged', d.coManaged),
    opt('ManagementState', d.managementState),
    u ? el('User', null, opt('Id', u.id), opt('Upn', u.upn), opt('Email', u.email), opt('DisplayName', u.displayName)) : null,
    bool('UserDeleted', d.userDeleted),
    opt('Imei', d.imei),
    opt('Meid', d.meid),
    opt('PhoneNumber', d.phoneNumber),
    opt('WifiMac', d.wifiMac),
    el('Links', null, textElement('Overview', d.deepLinks?.overview ?? ''), textElement('Compliance', d.deepLinks?.compliance ?? '')),
    softwareToXml(d.software),
  );
}

function wireFail(message: string, field: string, extra: WireError['details'] = {}): never {
  throw new WireError(message, { field, ...extra });
}

function txt(e: XmlElement, name: string, path: string): string | null {
  const c = child(e, name);
  if (!c) return null;
  try {
    return textOf(c);
  } catch (err) {
    return wireFail(`${path}/${name}: ${(err as Error).message}`, `${path}/${name}`);
  }
}

function boolText(e: XmlElement, name: string, path: string): boolean | null {
  const v = txt(e, name, path);
  if (v === null) return null;
  if (v === 'true') return true;
  if (v === 'false') return false;
  return wireFail(`${path}/${name} must be true or false, not "${v.slice(0, 20)}"`, `${path}/${name}`);
}

function numAttr(e: XmlElement, name: string, path: string): number | null {
  const v = e.attrs[name];
  if (v === undefined) return null;
  if (!/^\d+$/.test(v)) wireFail(`${path}/@${name} must be a whole number, not "${v.slice(0, 20)}"`, `${path}/@${name}`);
  return Number(v);
}

function oneOf<T extends string>(v: string | null, allowed: readonly T[], field: string): T {
  if (v !== null && (allowed as readonly string[]).includes(v)) return v as T;
  return wireFail(`${field} must be one of ${allowed.join(', ')}, not "${String(v).slice(0, 20)}"`, field);
}

/** Reads a `<Device>` back into a Device. Throws WireError. */
export function deviceFromXml(e: XmlElement): Device {
  const id = (e.attrs.intuneId ?? '').trim();
  if (!id) wireFail('A <Device> has no intuneId', 'Device/@intuneId');
  const path = `Device[${id}]`;
  const name = txt(e, 'Name', path);
  if (name === null) wireFail(`${path} has no <Name>`, `${path}/Name`);
  const os = child(e, 'OperatingSystem');
  const storage = child(e, 'Storage');
  const userEl = child(e, 'User');
  const links = child(e, 'Links');
  const software = softwareFromXml(e, path, wireFail);
  const user: DeviceUser | null = userEl
    ? { id: txt(userEl, 'Id', `${path}/User`), upn: txt(userEl, 'Upn', `${path}/User`), email: txt(userEl, 'Email', `${path}/User`), displayName: txt(userEl, 'DisplayName', `${path}/User`) }
    : null;
  return {
    id,
    azureAdDeviceId: txt(e, 'AzureAdDeviceId', path),
    name: name!,
    serialNumber: txt(e, 'SerialNumber', path),
    rawSerialNumber: txt(e, 'RawSerialNumber', path),
    manufacturer: txt(e, 'Manufacturer', path),
    model: txt(e, 'Model', path),
    os: os ? { name: txt(os, 'Name', `${path}/OperatingSystem`), version: txt(os, 'Version', `${path}/OperatingSystem`), sku: txt(os, 'Sku', `${path}/OperatingSystem`) } : { name: null, version: null, sku: null },
    storage: storage ? { totalBytes: numAttr(storage, 'totalBytes', `${path}/Storage`), freeBytes: numAttr(storage, 'freeBytes', `${path}/Storage`) } : { totalBytes: null, freeBytes: null },
    enrolledAt: txt(e, 'EnrolledAt', path),
    lastContactAt: txt(e, 'LastContactAt', path),
    azureAdRegistered: boolText(e, 'AzureAdRegistered', path),
    joinType: txt(e, 'JoinType', path),
    ownership: oneOf(txt(e, 'Ownership', path) ?? 'unknown', ['company', 'personal', 'unknown'] as const, `${path}/Ownership`),
    complianceState: txt(e, 'ComplianceState', path),
    encrypted: boolText(e, 'Encrypted', path),
    jailbroken: oneOf(txt(e, 'Jailbroken', path) ?? 'unknown', ['true', 'false', 'unknown'] as const, `${path}/Jailbroken`),
    managementAgent: txt(e, 'ManagementAgent', path),
    coManaged: boolText(e, 'CoManaged', path) ?? false,
    managementState: txt(e, 'ManagementState', path),
    user,
    userDeleted: boolText(e, 'UserDeleted', path) ?? false,
    imei: txt(e, 'Imei', path),
    meid: txt(e, 'Meid', path),
    phoneNumber: txt(e, 'PhoneNumber', path),
    wifiMac: txt(e, 'WifiMac', path),
    deepLinks: { overview: (links && txt(links, 'Overview', `${path}/Links`)) ?? '', compliance: (links && txt(links, 'Compliance', `${path}/Links`)) ?? '' },
    // Absent, not undefined: a device read without software equals one that never had the field.
    ...(software !== undefined ? { software } : {}),
  };
}

// ------------------------------------------------------------------ encoding

function bodyOf(m: WireMessage): XmlNode {
  switch (m.kind) {
    case 'inventory':
      return el(
        'DeviceInventory',
        { onDemandDefinition: m.onDemandDefinition, runId: m.runId, mode: m.mode, page: m.page, batch: m.batch, count: m.devices.length },
        ...m.devices.map(deviceToXml),
      );
    case 'removal':
      return el('DeviceRemoval', { onDemandDefinition: m.onDemandDefinition, runId: m.runId, count: m.deviceIds.length }, ...m.deviceIds.map((id) => el('Device', { intuneId: id })));
    case 'jobStatus':
      return el(
        'JobStatus',
        { jobId: m.jobId, action: m.action ? wireAction(m.action) : undefined, state: m.state, finishedAt: m.finishedAt },
        m.reason !== undefined ? textElement('Reason', m.reason) : null,
        ...m.clients.map((c) => el('Client', { intuneId: c.intuneId, acmpClientId: c.acmpClientId, state: c.state, outcome: c.outcome }, c.error !== undefined ? textElement('Error', c.error) : null)),
      );
    case 'ping':
      return el('Ping');
    case 'actionJob':
      return el(
        'ActionJob',
        { jobId: m.jobId, action: wireAction(m.action) ?? m.action, requestedBy: m.requestedBy, createdAt: m.createdAt, confirmed: m.confirmed },
        ...m.clients.map((c) => el('Client', { acmpClientId: c.acmpClientId, intuneId: c.intuneId }, c.name !== undefined ? textElement('Name', c.name) : null)),
        m.notification ? el('Notification', null, textElement('Title', m.notification.title), textElement('Body', m.notification.body)) : null,
        m.wipe ? el('WipeOptions', { keepEnrollmentData: m.wipe.keepEnrollmentData, keepUserData: m.wipe.keepUserData, persistEsimDataPlan: m.wipe.persistEsimDataPlan }) : null,
      );
    case 'reply':
      return el(
        'Reply',
        { inReplyTo: m.inReplyTo, code: m.code },
        m.message !== undefined ? textElement('Message', m.message) : null,
        ...m.failed.map((f) => el('Failed', { intuneId: f.intuneId, code: f.code }, f.message !== undefined ? textElement('Message', f.message) : null)),
      );
  }
}

/** Version 2: the `<T…Response_V2>` answer, ResultCode first (the generic Public API answer), our Failed items after it. */
function responseV2(m: ReplyMessage): XmlNode {
  const command = m.command && isCommandName(m.command) ? m.command : 'IntuneConnector';
  const h = m.header;
  return el(
    command,
    { version: 2 },
    el(
      `T${command}Response_V2`,
      { xmlns: WIRE_NAMESPACE_V2, messageId: h.messageId, sentAt: h.sentAt, serverId: h.serverId, inReplyTo: m.inReplyTo || undefined },
      el('ResultCode', null, String(m.code)),
      m.message !== undefined ? textElement('Message', m.message) : null,
      ...m.failed.map((f) => el('Failed', { intuneId: f.intuneId, code: f.code }, f.message !== undefined ? textElement('Message', f.message) : null)),
    ),
  );
}

function isCommandName(s: string): boolean {
  return /^[A-Za-z][A-Za-z0-9]{0,99}$/.test(s);
}

/**
 * The complete document for a message: version 2 (default)
 * `<ICQL><ACMP><IntuneDeviceInventory version="2"><TIntuneDeviceInventoryRequest_V2>…`,
 * version 1 `<ICQL><ACMP><IntuneConnector>…`. Throws WireError/XmlError for values that cannot be sent.
 */
export function encodeMessage(m: WireMessage, format: WireFormat = DEFAULT_WIRE_FORMAT): string {
  return renderXml(messageTree(m, format));
}

/** `encodeMessage` as UTF-8 bytes, without the document as one string (what the SICS client publishes). */
export function encodeMessageBytes(m: WireMessage, format: WireFormat = DEFAULT_WIRE_FORMAT): Buffer {
  return renderXmlBytes(messageTree(m, format));
}

function messageTree(m: WireMessage, format: WireFormat): XmlNode {
  const h = m.header;
  if (!h?.messageId) throw new WireError('A message needs a messageId', { field: 'messageId' });
  const items = m.kind === 'inventory' ? m.devices.length : m.kind === 'removal' ? m.deviceIds.length : m.kind === 'actionJob' || m.kind === 'jobStatus' ? m.clients.length : 0;
  if (items > MAX_ITEMS_PER_MESSAGE) throw new WireError(`A message may carry at most ${MAX_ITEMS_PER_MESSAGE} items, not ${items}`, { field: 'items' });
  if (format === 2) {
    if (m.kind === 'reply') return el('ICQL', null, el('ACMP', null, responseV2(m)));
    const command = COMMAND_OF[m.kind];
    return el(
      'ICQL',
      null,
      el(
        'ACMP',
        null,
        el(command, { version: 2 }, el(`T${command}Request_V2`, { xmlns: WIRE_NAMESPACE_V2, messageId: h.messageId, sentAt: h.sentAt, instance: h.instance, serverId: h.serverId }, bodyOf(m))),
      ),
    );
  }
  return el(
    'ICQL',
    null,
    el(
      'ACMP',
      null,
      el(
        'IntuneConnector',
        { xmlns: WIRE_NAMESPACE, version: WIRE_VERSION, messageId: h.messageId, sentAt: h.sentAt, instance: h.instance, serverId: h.serverId },
        bodyOf(m),
      ),
    ),
  );
}

// ------------------------------------------------------------------ decoding

function need(e: XmlElement, attr: string, path: string, extra: WireError['details'] = {}): string {
  const v = e.attrs[attr];
  if (v === undefined || !v.trim()) return wireFail(`${path} has no ${attr}`, `${path}/@${attr}`, extra);
  return v.trim();
}

function intAttr(e: XmlElement, attr: string, path: string, fallback?: number): number {
  const v = e.attrs[attr];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    return wireFail(`${path} has no ${attr}`, `${path}/@${attr}`);
  }
  if (!/^-?\d+$/.test(v.trim())) return wireFail(`${path}/@${attr} must be a whole number, not "${v.slice(0, 20)}"`, `${path}/@${attr}`);
  return Number(v.trim());
}

function boolAttr(e: XmlElement, attr: string, path: string): boolean | undefined {
  const v = e.attrs[attr];
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return wireFail(`${path}/@${attr} must be true or false, not "${v.slice(0, 20)}"`, `${path}/@${attr}`);
}

/** The element children of an element. */
function elements(e: XmlElement): XmlElement[] {
  return e.children.filter((c): c is XmlElement => typeof c === 'object' && c !== null && 'name' in c);
}

const localName = (n: string) => n.slice(n.indexOf(':') + 1);
const REQUEST_V = /^T([A-Za-z][A-Za-z0-9]*)Request_V(\d+)$/;
const RESPONSE_V = /^T([A-Za-z][A-Za-z0-9]*)Response_V(\d+)$/;

/** Finds our message inside the ICQL envelope (either framing) and checks namespace and version. */
export function unwrap(doc: XmlElement): { connector: XmlElement; header: WireHeader; body: XmlElement } {
  if (doc.name !== 'ICQL') wireFail(`The document is not an ICQL message (root <${doc.name}>)`, 'ICQL');
  const acmp = child(doc, 'ACMP');
  if (!acmp) wireFail('The ICQL message has no <ACMP> element', 'ICQL/ACMP');
  const connector = child(acmp!, 'IntuneConnector');
  if (connector) return unwrapV1(connector);
  const command = elements(acmp!)[0];
  const request = command && elements(command).find((e) => REQUEST_V.test(localName(e.name)));
  if (!command || !request) {
    return wireFail(
      `The ICQL message carries neither an <IntuneConnector> element nor a command request of this connector${command ? ` (<${command.name.slice(0, 60)}>)` : ''}: not a message of this connector`,
      'ICQL/ACMP/IntuneConnector',
    );
  }
  return unwrapV2(command, request);
}

function headerOf(c: XmlElement, version: string, format: WireFormat): WireHeader {
  const serverId = c.attrs.serverId?.trim() || undefined;
  return {
    messageId: c.attrs.messageId?.trim() ?? '',
    sentAt: c.attrs.sentAt ?? '',
    ...(c.attrs.instance ? { instance: c.attrs.instance } : {}),
    ...(serverId ? { serverId } : {}),
    version,
    format,
  };
}

function singleBody(c: XmlElement, path: string, h: WireHeader): XmlElement {
  const ids = { messageId: h.messageId || undefined, serverId: h.serverId };
  const kids = elements(c);
  if (!kids.length) wireFail(`The ${path} element is empty`, path, ids);
  if (kids.length > 1) wireFail(`The ${path} element must carry exactly one message`, path, ids);
  if (!h.messageId) wireFail('The message has no messageId', `${path}/@messageId`, { serverId: h.serverId, type: kids[0].name });
  return kids[0];
}

function unwrapV1(c: XmlElement): { connector: XmlElement; header: WireHeader; body: XmlElement } {
  const ns = c.attrs.xmlns;
  if (ns !== WIRE_NAMESPACE) {
    const m = /^urn:x-intune-connector:acmp:v(\d+)$/.exec(ns ?? '');
    wireFail(
      m ? `The message uses version ${m[1]} of the connector schema; this connector reads version ${WIRE_MAJOR}` : `The <IntuneConnector> element is not in the namespace ${WIRE_NAMESPACE}`,
      'IntuneConnector/@xmlns',
    );
  }
  const version = c.attrs.version ?? WIRE_VERSION;
  if (!/^\d+\.\d+$/.test(version) || Number(version.split('.')[0]) !== WIRE_MAJOR) {
    wireFail(`The schema version "${version.slice(0, 20)}" is not ${WIRE_MAJOR}.x`, 'IntuneConnector/@version');
  }
  const hdr = headerOf(c, version, 1);
  return { connector: c, header: hdr, body: singleBody(c, 'IntuneConnector', hdr) };
}

function unwrapV2(command: XmlElement, request: XmlElement): { connector: XmlElement; header: WireHeader; body: XmlElement } {
  const [, name, v] = REQUEST_V.exec(localName(request.name))!;
  const path = `${command.name}/${request.name}`;
  if (name !== localName(command.name) || !KIND_OF_COMMAND[name]) wireFail(`Unknown command <${command.name.slice(0, 60)}> (not a command of this connector)`, path);
  if (v !== '2' || (command.attrs.version !== undefined && command.attrs.version !== '2')) wireFail(`The command ${name} comes in version ${v}; this connector reads version 2`, `${path}/@version`);
  if (request.attrs.xmlns !== WIRE_NAMESPACE_V2) wireFail(`The ${request.name} element is not in the namespace ${WIRE_NAMESPACE_V2}`, `${path}/@xmlns`);
  const hdr = headerOf(request, '2', 2);
  const body = singleBody(request, request.name, hdr);
  // The command names the message type: its body must be that type's element.
  if (body.name !== elementName(KIND_OF_COMMAND[name])) wireFail(`The command ${name} carries <${body.name.slice(0, 60)}>, expected <${elementName(KIND_OF_COMMAND[name])}>`, path, { messageId: hdr.messageId, serverId: hdr.serverId });
  return { connector: request, header: hdr, body };
}

/**
 * The answer to a message, in any of the three forms a SICS reply channel
 * may carry (docs/acmp-wire-format.md "Replies"):
 * - version 1 `<IntuneConnector><Reply inReplyTo code>` (our own, with `<Failed>` items);
 * - version 2 `<T…Response_V2>` in our namespace: `<ResultCode>`, `<Message>`, `<Failed>` items;
 * - the generic ACMP Public API answer, a `<T…Response_Vn>` element holding a
 *   `<ResultCode>` (sics.md), wherever it sits in the document: it names no
 *   message, so only the channel it came on correlates it.
 * Answers undefined for a document that is no answer (e.g. a job); throws
 * WireError for an answer that cannot be read.
 */
export function readReply(xml: string): ReplyMessage | undefined {
  const doc = parseDoc(xml);
  const response = findResponse(doc, 0);
  if (response) return responseOf(response);
  const acmp = doc.name === 'ICQL' ? child(doc, 'ACMP') : undefined;
  if (acmp && child(acmp, 'IntuneConnector')) {
    const m = decodeMessage(xml);
    return m.kind === 'reply' ? m : undefined;
  }
  return undefined;
}

function findResponse(e: XmlElement, depth: number): XmlElement | undefined {
  if (RESPONSE_V.test(localName(e.name))) return e;
  if (depth >= 4) return undefined;
  for (const c of elements(e)) {
    const r = findResponse(c, depth + 1);
    if (r) return r;
  }
  return undefined;
}

function responseOf(r: XmlElement): ReplyMessage {
  const [, command, v] = RESPONSE_V.exec(localName(r.name))!;
  const rc = elements(r).find((e) => localName(e.name) === 'ResultCode');
  if (!rc) wireFail(`The answer <${r.name.slice(0, 60)}> holds no <ResultCode>`, `${r.name}/ResultCode`);
  const codeText = textOf(rc!).trim();
  if (!/^-?\d+$/.test(codeText)) wireFail(`The <ResultCode> of <${r.name.slice(0, 60)}> is not a whole number ("${codeText.slice(0, 20)}")`, `${r.name}/ResultCode`);
  const ours = r.attrs.xmlns === WIRE_NAMESPACE_V2;
  const msgEl = elements(r).find((e) => ['Message', 'ResultText', 'ErrorMessage'].includes(localName(e.name)));
  const failed = ours
    ? limitItems(childrenNamed(r, 'Failed'), `${r.name}/Failed`).map((f) => {
        const m = child(f, 'Message');
        return { intuneId: need(f, 'intuneId', `${r.name}/Failed`), code: intAttr(f, 'code', `${r.name}/Failed`), ...(m ? { message: textOf(m) } : {}) };
      })
    : [];
  return {
    kind: 'reply',
    header: { ...headerOf(r, ours ? '2' : v, 2), ...(ours ? {} : { format: undefined }) },
    inReplyTo: (ours && r.attrs.inReplyTo?.trim()) || '',
    command,
    code: Number(codeText),
    ...(msgEl ? { message: textOf(msgEl) } : {}),
    failed,
  };
}

function parseDoc(xml: string): XmlElement {
  try {
    return parseXml(xml);
  } catch (err) {
    if (err instanceof XmlError) throw new WireError(`The message is not well-formed XML: ${err.message}`, { field: 'xml' });
    throw err;
  }
}

function limitItems(list: XmlElement[], path: string): XmlElement[] {
  if (list.length > MAX_ITEMS_PER_MESSAGE) wireFail(`${path} carries ${list.length} items, at most ${MAX_ITEMS_PER_MESSAGE} are accepted`, path);
  return list;
}

function decodeJob(h: WireHeader, b: XmlElement): ActionJobMessage {
  const jobId = b.attrs.jobId?.trim();
  const ctx = { jobId, serverId: h.serverId, messageId: h.messageId, type: 'ActionJob' };
  if (!jobId) wireFail('The job has no jobId', 'ActionJob/@jobId', ctx);
  const wa = b.attrs.action ?? '';
  const action = WIRE_ACTIONS[wa];
  if (!action) wireFail(`Unknown job action "${wa.slice(0, 40)}" (known: ${Object.keys(WIRE_ACTIONS).join(', ')})`, 'ActionJob/@action', ctx);
  let confirmed: boolean | undefined;
  try {
    confirmed = boolAttr(b, 'confirmed', 'ActionJob');
  } catch (err) {
    wireFail((err as Error).message, 'ActionJob/@confirmed', ctx);
  }
  const clients: JobClient[] = [];
  for (const c of limitItems(childrenNamed(b, 'Client'), 'ActionJob/Client')) {
    const intuneId = c.attrs.intuneId?.trim();
    if (!intuneId) wireFail(`A selected client${c.attrs.acmpClientId ? ` (${c.attrs.acmpClientId.slice(0, 40)})` : ''} has no Intune device id`, 'ActionJob/Client/@intuneId', ctx);
    let name: string | undefined;
    try {
      name = child(c, 'Name') ? textOf(child(c, 'Name')!) : undefined;
    } catch (err) {
      wireFail((err as Error).message, 'ActionJob/Client/Name', ctx);
    }
    clients.push({ intuneId: intuneId!, ...(c.attrs.acmpClientId ? { acmpClientId: c.attrs.acmpClientId } : {}), ...(name !== undefined ? { name } : {}) });
  }
  let notification: ActionJobMessage['notification'];
  const n = child(b, 'Notification');
  if (n) {
    try {
      notification = { title: child(n, 'Title') ? textOf(child(n, 'Title')!) : '', body: child(n, 'Body') ? textOf(child(n, 'Body')!) : '' };
    } catch (err) {
      wireFail((err as Error).message, 'ActionJob/Notification', ctx);
    }
  }
  let wipe: ActionJobMessage['wipe'];
  const w = child(b, 'WipeOptions');
  if (w) {
    try {
      wipe = {};
      for (const k of ['keepEnrollmentData', 'keepUserData', 'persistEsimDataPlan'] as const) {
        const v = boolAttr(w, k, 'ActionJob/WipeOptions');
        if (v !== undefined) wipe[k] = v;
      }
    } catch (err) {
      wireFail((err as Error).message, 'ActionJob/WipeOptions', ctx);
    }
  }
  return {
    kind: 'actionJob',
    header: h,
    jobId: jobId!,
    action: action!,
    ...(b.attrs.requestedBy ? { requestedBy: b.attrs.requestedBy } : {}),
    ...(b.attrs.createdAt ? { createdAt: b.attrs.createdAt } : {}),
    confirmed: confirmed === true,
    clients,
    ...(notification ? { notification } : {}),
    ...(wipe ? { wipe } : {}),
  };
}

const JOB_STATES = ['finished', 'partial', 'failed'] as const;
const OUTCOMES = ['accepted', 'failed', 'notFound', 'unsupported', 'rejected'] as const;

/**
 * Reads a document into a message. Throws WireError (schema) or XmlError
 * (not well-formed). A WireError carries what could be read of the message
 * (messageId, jobId, serverId), so a malformed job can still be answered.
 */
export function decodeMessage(xml: string): WireMessage {
  const doc = parseDoc(xml);
  // An answer in form 2 or the generic form (no element of ours is named T…Response_Vn).
  const response = findResponse(doc, 0);
  if (response) return responseOf(response);
  const { header: h, body: b } = unwrap(doc);
  const typeCtx = { messageId: h.messageId, serverId: h.serverId, type: b.name };
  try {
    switch (b.name) {
      case 'DeviceInventory': {
        const mode = oneOf(b.attrs.mode ?? null, ['full', 'incremental'] as const, 'DeviceInventory/@mode');
        return {
          kind: 'inventory',
          header: h,
          onDemandDefinition: b.attrs.onDemandDefinition ?? '',
          runId: need(b, 'runId', 'DeviceInventory'),
          mode,
          page: intAttr(b, 'page', 'DeviceInventory', 0),
          batch: intAttr(b, 'batch', 'DeviceInventory', 0),
          devices: limitItems(childrenNamed(b, 'Device'), 'DeviceInventory/Device').map(deviceFromXml),
        };
      }
      case 'DeviceRemoval':
        return {
          kind: 'removal',
          header: h,
          onDemandDefinition: b.attrs.onDemandDefinition ?? '',
          runId: need(b, 'runId', 'DeviceRemoval'),
          deviceIds: limitItems(childrenNamed(b, 'Device'), 'DeviceRemoval/Device').map((d) => need(d, 'intuneId', 'DeviceRemoval/Device')),
        };
      case 'JobStatus': {
        const reason = child(b, 'Reason');
        const wa = b.attrs.action;
        return {
          kind: 'jobStatus',
          header: h,
          jobId: need(b, 'jobId', 'JobStatus'),
          ...(wa && WIRE_ACTIONS[wa] ? { action: WIRE_ACTIONS[wa] } : {}),
          state: oneOf(b.attrs.state ?? null, JOB_STATES, 'JobStatus/@state'),
          finishedAt: b.attrs.finishedAt ?? '',
          ...(reason ? { reason: textOf(reason) } : {}),
          clients: limitItems(childrenNamed(b, 'Client'), 'JobStatus/Client').map((c) => {
            const err = child(c, 'Error');
            const outcome = c.attrs.outcome;
            return {
              intuneId: need(c, 'intuneId', 'JobStatus/Client'),
              ...(c.attrs.acmpClientId ? { acmpClientId: c.attrs.acmpClientId } : {}),
              state: oneOf(c.attrs.state ?? null, ['finished', 'failed'] as const, 'JobStatus/Client/@state'),
              ...(outcome ? { outcome: oneOf(outcome, OUTCOMES, 'JobStatus/Client/@outcome') } : {}),
              ...(err ? { error: textOf(err) } : {}),
            };
          }),
        };
      }
      case 'Ping':
        return { kind: 'ping', header: h };
      case 'ActionJob':
        return decodeJob(h, b);
      case 'Reply': {
        const msg = child(b, 'Message');
        return {
          kind: 'reply',
          header: h,
          inReplyTo: need(b, 'inReplyTo', 'Reply'),
          code: intAttr(b, 'code', 'Reply'),
          ...(msg ? { message: textOf(msg) } : {}),
          failed: limitItems(childrenNamed(b, 'Failed'), 'Reply/Failed').map((f) => {
            const m = child(f, 'Message');
            return { intuneId: need(f, 'intuneId', 'Reply/Failed'), code: intAttr(f, 'code', 'Reply/Failed'), ...(m ? { message: textOf(m) } : {}) };
          }),
        };
      }
      default:
        return wireFail(`Unknown message type <${b.name}>`, 'IntuneConnector/*', typeCtx);
    }
  } catch (err) {
    if (err instanceof WireError) {
      if (!err.details.messageId) throw new WireError(err.message, { ...typeCtx, ...err.details });
      throw err;
    }
    if (err instanceof XmlError) throw new WireError(err.message, typeCtx);
    throw err;
  }
}

/** The element name of a message kind (for logs and stats). */
export function elementName(kind: WireMessage['kind']): string {
  return ELEMENT_OF[kind];
}
