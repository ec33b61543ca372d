/**
 * The errors of the SICS connection: our error codes with their English
 * status texts, ACMP's result codes and what each means, and how a failed
 * HTTP request (TLS, network, timeout) becomes a SicsError.
 */
// ------------------------------------------------------------------ result codes

export type SicsErrorCode =
  | 'invalidSession'
  | 'wrongCredentials'
  | 'internalError'
  | 'databaseError'
  | 'clientMissing'
  | 'notFound'
  | 'licenceLimit'
  | 'invalidRequest'
  | 'unspecified'
  | 'unknownCode'
  | 'unreachable'
  | 'tlsError'
  | 'timeout'
  | 'replyTimeout'
  | 'httpError'
  | 'badAnswer'
  | 'aborted'
  | 'closed'
  | 'invalidConfig';

/**
 * The SICS connection's status text per error code in English: the runtime's
 * fallback when the key `intune-acmp-config.status.<code>` is not in the
 * catalog of the node that shows it (the runtime looks keys up in a node's
 * own catalog; the editor finds the config node's). Equal to locales/en-US
 * (checked by the locale test).
 */
export const SICS_STATUS_EN: Record<SicsErrorCode, string> = {
  invalidSession: 'session not accepted',
  wrongCredentials: 'wrong user or password',
  internalError: 'The ACMP server reported an internal error (result code 18).',
  databaseError: 'The ACMP server reported a database error (result code 19).',
  clientMissing: 'The client does not exist in ACMP (result code 26).',
  notFound: 'SICS or ACMP did not find the element (result code 30), e.g. the virtual router.',
  licenceLimit: 'The ACMP licence amount is reached (result code 32).',
  invalidRequest: 'ACMP refused the request as invalid (result code 35).',
  unspecified: 'The ACMP server reported an unspecified error (result code -1).',
  unknownCode: 'SICS answered with a result code this connector does not know.',
  unreachable: 'SICS not reachable',
  tlsError: 'TLS error',
  timeout: 'timeout',
  replyTimeout: 'The ACMP server did not reply in time. Check its server id, virtual router and routing key.',
  httpError: 'The request to SICS failed.',
  badAnswer: 'SICS sent an answer that could not be read.',
  aborted: 'The check was stopped.',
  closed: 'closed',
  invalidConfig: 'invalid settings',
};

interface CodeInfo {
  code: SicsErrorCode;
  retry: boolean;
  text: string;
}

/** ACMP's result codes, what they mean for this connector, and whether repeating the request may help. */
export const RESULT_CODES: Readonly<Record<number, CodeInfo>> = {
  7: { code: 'invalidSession', retry: true, text: 'The SICS session is not valid (it expired or was closed)' },
  15: { code: 'wrongCredentials', retry: false, text: 'SICS refused the user name or password: check the user and password of the SICS connection (the AESB operator)' },
  18: { code: 'internalError', retry: true, text: 'The ACMP server reported an internal error' },
  19: { code: 'databaseError', retry: true, text: 'The ACMP server reported a database error' },
  26: { code: 'clientMissing', retry: false, text: 'The client does not exist in ACMP' },
  30: { code: 'notFound', retry: false, text: 'ACMP did not find the element the request refers to' },
  32: { code: 'licenceLimit', retry: false, text: 'The ACMP licence amount is reached: ACMP accepts no further clients until licences are added or clients removed' },
  35: { code: 'invalidRequest', retry: false, text: 'ACMP refused the request as invalid (check that the ACMP side reads version 1 of the connector schema)' },
  [-1]: { code: 'unspecified', retry: true, text: 'The ACMP server reported an unspecified error' },
};

export class SicsError extends Error {
  override name = 'SicsError';
  constructor(
    readonly code: SicsErrorCode,
    message: string,
    readonly params: Record<string, unknown> = {},
    readonly retryable = false,
    /** ACMP result code, when the error came from one. */
    readonly resultCode?: number,
  ) {
    super(message);
  }
}

/** A setting (or credential) of the connection that is missing or wrong: `field` and why. */
export const invalidConfig = (field: string, reason: string) => new SicsError('invalidConfig', `${field} ${reason}`, { field, reason });

/** The error for a non-zero result code, with where it came from. */
export function resultCodeError(resultCode: number, where: string, detail?: string): SicsError {
  const info = RESULT_CODES[resultCode];
  const extra = detail ? ` (${String(detail).slice(0, 300)})` : '';
  if (!info) return new SicsError('unknownCode', `${where}: result code ${resultCode}, which this connector does not know${extra}`, { resultCode, where }, false, resultCode);
  return new SicsError(info.code, `${where}: ${info.text} [result code ${resultCode}]${extra}`, { resultCode, where }, info.retry, resultCode);
}

// ------------------------------------------------------------------ transport errors

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|ERR_TLS|ERR_SSL|EPROTO|HOSTNAME|ALTNAME|SSL routines|wrong version number|handshake|alert/i;
const NET_CODES = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|EPIPE|ERR_SOCKET|socket hang up|ENOTCONN/i;
const TIMEOUT_CODES = /ETIMEDOUT|ECONNABORTED|timeout/i;

interface RawError {
  code?: string;
  message?: string;
  name?: string;
  cause?: { code?: string; message?: string };
}

export function transportError(err: unknown, where: string, scheme: 'http' | 'https'): SicsError {
  const e = (err ?? {}) as RawError;
  const code = e.code ?? e.cause?.code ?? '';
  const text = `${code} ${e.message ?? ''} ${e.cause?.message ?? ''}`;
  if (e.name === 'CanceledError' || code === 'ERR_CANCELED' || e.name === 'AbortError') return new SicsError('aborted', `${where}: stopped`, { where });
  if (scheme === 'https' && TLS_CODES.test(text)) {
    return new SicsError(
      'tlsError',
      `${where}: the TLS connection failed (${code || e.message}): add the CA of the SICS certificate with a TLS configuration, or allow the unencrypted connection`,
      { where, reason: code || String(e.message) },
    );
  }
  if (TIMEOUT_CODES.test(text)) return new SicsError('timeout', `${where}: no answer in time (${code || e.message})`, { where, reason: code || String(e.message) }, true);
  if (NET_CODES.test(text)) return new SicsError('unreachable', `${where}: SICS cannot be reached (${code || e.message})`, { where, reason: code || String(e.message) }, true);
  return new SicsError('httpError', `${where}: ${e.message ?? String(err)}`, { where, reason: e.message ?? String(err) }, true);
}
