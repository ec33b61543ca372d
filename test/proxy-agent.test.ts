/**
 * How the proxy agent words a proxy's failure (nodes/lib/shared/proxy-agent.ts),
 * for the cases the tinyproxy tests cannot stage: a silent proxy, an
 * https:// proxy whose certificate is not trusted, errors that are not the
 * proxy's. The words carry host:port of the proxy, never its credentials.
 */
import { expect } from 'chai';
import { ProxyError, findProxyError, toProxyError } from '../nodes/lib/shared/proxy-agent';
import { classifyTransportError } from '../nodes/lib/shared/connection-errors';

const withCode = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});
const HTTP_PROXY = new URL('http://svc:s3cret@proxy.corp:3128');
const HTTPS_PROXY = new URL('https://svc:s3cret@proxy.corp:8443');

describe('proxy failures in words (proxy-agent)', () => {
  it('CONNECT answers: 407 and 401 are the proxy sign-in, anything else a refusal naming the server', () => {
    const auth = toProxyError(new Error('Bad response: 407'), HTTP_PROXY, 'graph.microsoft.com:443') as ProxyError;
    expect([auth.kind, auth.reason, auth.proxy]).to.deep.equal(['ERR_PROXY_AUTH', '407', 'proxy.corp:3128']);
    expect((toProxyError(new Error('Bad response: 401'), HTTP_PROXY, 'x:443') as ProxyError).kind).to.equal('ERR_PROXY_AUTH');
    const refused = toProxyError(new Error('Bad response: 403'), HTTP_PROXY, 'sics.corp:3900') as ProxyError;
    expect(refused.kind).to.equal('ERR_PROXY_REFUSED');
    expect(refused.message).to.equal('The proxy proxy.corp:3128 refused the connection to sics.corp:3900 (HTTP 403): the proxy may block this host or port, or cannot reach it');
  });

  it('a proxy that cannot be reached, or does not answer in time', () => {
    expect((toProxyError(withCode('connect ECONNREFUSED', 'ECONNREFUSED'), HTTP_PROXY, 'x:443') as ProxyError).kind).to.equal('ERR_PROXY_UNREACHABLE');
    expect((toProxyError(withCode('getaddrinfo ENOTFOUND proxy.corp', 'ENOTFOUND'), HTTP_PROXY, 'x:443') as ProxyError).reason).to.equal('ENOTFOUND');
    const silent = toProxyError(new Error('Proxy timeout'), HTTP_PROXY, 'x:443') as ProxyError;
    expect([silent.kind, silent.reason]).to.deep.equal(['ERR_PROXY_UNREACHABLE', 'no answer']);
  });

  it("an https:// proxy whose own certificate is not trusted; the same code from a plain proxy is left alone", () => {
    const tls = toProxyError(withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'), HTTPS_PROXY, 'x:443') as ProxyError;
    expect(tls.kind).to.equal('ERR_PROXY_UNREACHABLE');
    expect(tls.message).to.match(/its TLS certificate is not trusted/);
    const other = withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(toProxyError(other, HTTP_PROXY, 'x:443')).to.equal(other);
  });

  it('no message or field carries the proxy credentials', () => {
    for (const e of [new Error('Bad response: 407'), new Error('Bad response: 502'), withCode('x', 'ECONNRESET'), new Error('Proxy timeout')]) {
      expect(JSON.stringify({ ...(toProxyError(e, HTTP_PROXY, 'x:443') as ProxyError), message: (toProxyError(e, HTTP_PROXY, 'x:443') as Error).message })).to.not.match(/s3cret|svc/);
    }
  });

  it('found behind the transport error that wraps it (axios keeps it as cause), and classified before "unreachable"', () => {
    const pe = toProxyError(new Error('Bad response: 407'), HTTP_PROXY, 'login.microsoftonline.com:443') as ProxyError;
    const axiosLike = Object.assign(new Error(pe.message), { code: undefined, cause: pe });
    expect(findProxyError({ cause: axiosLike })).to.equal(pe);
    const ce = classifyTransportError(axiosLike, 'login.microsoftonline.com')!;
    expect([ce.code, ce.params.proxy, ce.params.target]).to.deep.equal(['proxyAuth', 'proxy.corp:3128', 'login.microsoftonline.com:443']);
    expect(findProxyError(withCode('connect ECONNREFUSED', 'ECONNREFUSED'))).to.equal(null);
  });
});
