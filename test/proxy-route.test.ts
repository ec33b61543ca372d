/**
 * Proxy choice (nodes/lib/shared/proxy-route.ts) against Node-RED's own: the same
 * cases go through @node-red/nodes' proxyHelper (what the core http request
 * node uses) and through ours, and must pick the same proxy.
 */
import path from 'node:path';
import { expect } from 'chai';
import { bypassesProxy, parseProxyUrl, proxyForUrl, proxyLabel, proxyUrlFor, type ProxySource } from '../nodes/lib/shared/proxy-route';

const nodeRedDir = path.dirname(require.resolve('node-red/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeRed = require(require.resolve('@node-red/nodes/core/network/lib/proxyHelper.js', { paths: [nodeRedDir] })) as {
  getProxyForUrl(url: string, o?: { env?: Record<string, string> }): string;
};

type Env = Record<string, string>;

const ENVS: Array<[string, Env]> = [
  ['nothing set', {}],
  ['HTTPS_PROXY only', { HTTPS_PROXY: 'http://proxy.corp:3128' }],
  ['https_proxy wins over HTTPS_PROXY', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }],
  ['HTTP_PROXY only (https goes direct)', { HTTP_PROXY: 'http://proxy.corp:8080' }],
  ['both, no scheme', { HTTP_PROXY: 'proxy.corp:8080', HTTPS_PROXY: 'proxy.corp:3128' }],
  ['ALL_PROXY', { ALL_PROXY: 'http://all.corp:9000' }],
  ['NO_PROXY exact name', { HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1', NO_PROXY: 'graph.microsoft.com' }],
  ['no_proxy lower case, with spaces', { https_proxy: 'http://p:1', no_proxy: 'login.microsoftonline.com, 127.0.0.1' }],
  ['NO_PROXY leading dot', { HTTPS_PROXY: 'http://p:1', NO_PROXY: '.4me.com' }],
  ['NO_PROXY wildcard', { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*.microsoft.com' }],
  ['NO_PROXY with port', { HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1', NO_PROXY: 'sics.corp:3900' }],
  ['NO_PROXY star', { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }],
  ['NO_PROXY loopback', { HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1', NO_PROXY: 'localhost,127.0.0.1' }],
  ['proxy with credentials', { HTTPS_PROXY: 'http://u%40corp:p%3Ass@p:1' }],
];

const URLS = [
  'https://graph.microsoft.com/v1.0/deviceManagement/managedDevices',
  'https://login.microsoftonline.com/tenant/oauth2/v2.0/token',
  'https://graph.4me.com/',
  'https://oauth.4me.com/token',
  'https://4me.com/',
  'http://sics.corp:3900/Session',
  'https://sics.corp:3900/Session',
  'https://127.0.0.1:41234/v1.0/me',
  'http://localhost:3900/Session',
  'https://GRAPH.Microsoft.com/v1.0',
];

const norm = (s: string) => (s ? new URL(s).href : null);

describe('proxy choice (proxy-route) agrees with Node-RED\'s http request node', () => {
  for (const [title, env] of ENVS) {
    it(`environment: ${title}`, () => {
      for (const url of URLS) {
        const ours = proxyForUrl(url, { env });
        expect(ours ? ours.href : null, `${url}`).to.equal(norm(nodeRed.getProxyForUrl(url, { env })));
      }
    });
  }

  it('a chosen http proxy node wins over the environment, with its own ignore list, as Node-RED builds it', () => {
    const env: Env = { HTTPS_PROXY: 'http://env-proxy:1', NO_PROXY: 'graph.microsoft.com' };
    const node = { url: 'http://node-proxy:3128', noProxy: ['login.microsoftonline.com', '.corp'] };
    for (const url of URLS) {
      const ours = proxyForUrl(url, { node, env });
      const theirs = nodeRed.getProxyForUrl(url, { env: { no_proxy: node.noProxy.join(','), http_proxy: node.url, https_proxy: node.url } });
      expect(ours ? ours.href : null, url).to.equal(norm(theirs));
    }
    // The environment's NO_PROXY is not read once a node is chosen.
    expect(proxyForUrl('https://graph.microsoft.com/', { node, env })?.host).to.equal('node-proxy:3128');
    expect(proxyForUrl('https://graph.microsoft.com/', { env })).to.equal(null);
  });

  it('the node\'s user and password go into the proxy URL (over any in it); messages show only host:port', () => {
    const u = parseProxyUrl('http://old:old@proxy.corp:3128', { url: '', username: 'corp\\svc', password: 'p@ss:w/rd' })!;
    expect(decodeURIComponent(u.username)).to.equal('corp\\svc');
    expect(decodeURIComponent(u.password)).to.equal('p@ss:w/rd');
    expect(proxyLabel(u)).to.equal('proxy.corp:3128');
    expect(proxyLabel(new URL('http://a:b@proxy.corp'))).to.equal('proxy.corp:80');
    const src: ProxySource = { node: { url: 'http://proxy.corp:3128', username: 'svc', password: 'pw' } };
    expect(proxyForUrl('https://graph.microsoft.com', src)!.password).to.equal('pw');
  });

  it('rejects a proxy URL that is not http(s)://host:port, in words and without its password', () => {
    expect(() => parseProxyUrl('socks5://u:secret@p:1080')).to.throw(/must start with http:\/\/ or https:\/\//);
    expect(() => parseProxyUrl('http://u:secret@')).to.throw(Error).with.property('message').that.does.not.include('secret');
  });

  it('Node-RED\'s proxyOptions: lowerCaseOnly and favourUpperCase', () => {
    const env = { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2', NO_PROXY: 'graph.microsoft.com' };
    expect(proxyUrlFor('https', { env, options: { favourUpperCase: true } })).to.equal('http://upper:2');
    expect(proxyUrlFor('https', { env, options: { lowerCaseOnly: true } })).to.equal('http://lower:1');
    expect(bypassesProxy('graph.microsoft.com', 443, { env, options: { lowerCaseOnly: true } })).to.equal(false);
    expect(bypassesProxy('graph.microsoft.com', 443, { env })).to.equal(true);
  });
});
