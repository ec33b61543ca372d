/**
 * The flow the demo deploys on its first start: one tab with two connections
 * to the simulated tenant (client secret and certificate) and the nodes that
 * use them. URLs and the CA file come from environment variables the demo
 * sets, so the saved flow survives restarts.
 */
import type { DemoIdentity } from './demo';

export function demoFlow(ids: DemoIdentity, pfxBase64: string, sampleDeviceIds: string[]): Array<Record<string, unknown>> {
  const tab = 'demo-tab';
  const common = {
    tenantId: ids.tenantId,
    cloud: 'custom',
    authorityHost: '${INTUNE_DEMO_AUTHORITY}',
    graphBaseUrl: '${INTUNE_DEMO_GRAPH}',
    portalUrl: 'https://intune.microsoft.com',
    tls: 'demo-tls',
    requestsPer20s: 2000,
    writesPer20s: 200,
    timeoutSec: 30,
  };
  return [
    { id: tab, type: 'tab', label: 'Intune demo', info: 'Two connections to the simulated tenant: one with a client secret, one with a certificate.' },
    { id: 'demo-tls', type: 'tls-config', name: 'Simulated services CA', cert: '', key: '', ca: '${INTUNE_DEMO_CA}', verifyservercert: true },
    {
      id: 'demo-intune-secret',
      type: 'intune-config',
      name: 'Simulated tenant (secret)',
      clientId: ids.secretClientId,
      authType: 'secret',
      ...common,
      credentials: { clientSecret: ids.secret },
    },
    {
      id: 'demo-intune-cert',
      type: 'intune-config',
      name: 'Simulated tenant (certificate)',
      clientId: ids.certClientId,
      authType: 'certificate',
      ...common,
      credentials: { pfx: pfxBase64, pfxName: 'intune-connector-demo.pfx', passphrase: ids.certPassword },
    },
    {
      id: 'demo-comment',
      type: 'comment',
      z: tab,
      name: 'Open a connection (Configuration nodes sidebar) and press "Verify connection"',
      info: 'Both connections point at the simulated identity platform and Graph started by `npm run demo`.',
      x: 330,
      y: 60,
      wires: [],
    },
    // Devices: a full run at start (after a few seconds), then every 24 h; the button runs it again.
    { id: 'demo-inject-run', type: 'inject', z: tab, name: 'full run now', props: [{ p: 'mode', v: 'full', vt: 'str' }], repeat: '', once: false, x: 140, y: 240, wires: [['demo-devices']] },
    {
      id: 'demo-devices',
      type: 'intune-devices',
      z: tab,
      name: 'Intune devices',
      intune: 'demo-intune-cert',
      platformWindows: true,
      platformMacos: true,
      platformIos: true,
      platformAndroid: true,
      platformLinux: true,
      platformOther: false,
      includePersonal: false,
      onlyWithPrimaryUser: false,
      includeDeletedUser: false,
      staleDays: 0,
      collapseDuplicates: true,
      checkDeletedUsers: true,
      graphVersion: 'beta',
      triggerMode: 'full',
      fullEveryHours: 24,
      incrementalEveryMinutes: 15,
      overlapMinutes: 30,
      instance: 'demo',
      store: '',
      x: 340,
      y: 240,
      wires: [['demo-page'], ['demo-summary']],
    },
    { id: 'demo-page', type: 'debug', z: tab, name: 'device pages', active: false, tosidebar: true, console: false, complete: 'sync', targetType: 'msg', x: 560, y: 220, wires: [] },
    { id: 'demo-summary', type: 'debug', z: tab, name: 'run summary', active: true, tosidebar: true, console: true, complete: 'payload', targetType: 'msg', statusVal: 'payload.stats.emitted', statusType: 'msg', x: 560, y: 260, wires: [] },
    { id: 'demo-inject-sync', type: 'inject', z: tab, name: 'sync 3 devices', props: [{ p: 'payload' }], payload: '', payloadType: 'str', x: 140, y: 140, wires: [['demo-pick']] },
    {
      id: 'demo-pick',
      type: 'function',
      z: tab,
      name: 'sync request',
      func: `// Any managed device ids work; these come from the simulated tenant.\nmsg.payload = { action: 'sync', deviceIds: ${JSON.stringify(sampleDeviceIds)}, jobId: 'demo-' + Date.now(), requestedBy: 'demo' };\nreturn msg;`,
      outputs: 1,
      x: 330,
      y: 140,
      wires: [['demo-action']],
    },
    { id: 'demo-action', type: 'intune-action', z: tab, name: '', intune: 'demo-intune-secret', allowNotify: true, allowSync: true, allowLock: true, allowRetire: false, allowWipe: false, maxDevices: 100, dryRun: false, followUp: false, followUpInterval: 30, followUpTimeout: 600, perDevice: false, store: '', retentionHours: 168, outputs: 1, x: 530, y: 140, wires: [['demo-debug']] },
    { id: 'demo-debug', type: 'debug', z: tab, name: 'result', active: true, tosidebar: true, console: false, complete: 'payload', targetType: 'msg', x: 720, y: 140, wires: [] },
  ];
}
