/**
 * intune-new-instance: the runtime half of the editor's "New instance…"
 * set-up (intune-new-instance.html): the permissions, the admin-consent link
 * and the new instance built from the shipped template (instance-build.ts),
 * which the editor imports. It never takes or returns a secret: the editor
 * adds the typed credentials to the imported config nodes and deploys, the
 * way Node-RED carries any credentials typed into a config dialog (in the
 * deploy request only; flows_cred.json keeps them encrypted, GET /flows never
 * returns them).
 */
import type { NodeAPI } from 'node-red';
import type { Request, Response } from 'express';
import { PERMISSION_NEEDS } from '../../nodes/lib/intune/permissions';
import type { ConnectionError } from '../../nodes/lib/shared/connection-errors';
import { InstanceError } from '../../bin/instance-template';
import { adminConsentUrl } from './admin-consent';
import { buildInstance, templateFacts, type BuildRequest } from './instance-build';

const PLUGIN = 'intune-new-instance';

export = function register(RED: NodeAPI): void {
  (RED as unknown as { plugins: { registerPlugin(id: string, def: object): void } }).plugins.registerPlugin(PLUGIN, { type: PLUGIN });
  // The same kind of permission as the nodes' own admin endpoints (<type>.write).
  const guard = RED.auth.needsPermission(`${PLUGIN}.write`);

  RED.httpAdmin.get(`/${PLUGIN}/info`, guard, (_req: Request, res: Response) => {
    res.json({ permissions: PERMISSION_NEEDS, templates: templateFacts() });
  });

  RED.httpAdmin.post(`/${PLUGIN}/consent`, guard, (req: Request, res: Response) => {
    try {
      res.json({ ok: true, url: adminConsentUrl((req.body ?? {}) as Record<string, unknown>) });
    } catch (err) {
      const e = err as ConnectionError;
      res.json({ ok: false, code: e.code ?? 'invalidConfig', message: e.message, params: e.params ?? {} });
    }
  });

  RED.httpAdmin.post(`/${PLUGIN}/build`, guard, (req: Request, res: Response) => {
    try {
      res.json({ ok: true, ...buildInstance((req.body ?? {}) as BuildRequest) });
    } catch (err) {
      if (err instanceof InstanceError) {
        res.json({ ok: false, code: 'invalidInstance', message: err.message });
        return;
      }
      RED.log.error(`${PLUGIN}: building the instance failed unexpectedly: ${(err as Error)?.message}`);
      res.status(500).json({ ok: false, code: 'unexpected', message: 'Building the instance failed unexpectedly' });
    }
  });
};
