/**
 * "Set up 4me", the confirmed part: carries out a plan from
 * fourme-setup-plan.ts — creates or updates the UI extension (and activates
 * the new version, so 4me shows it at once), then links the products. Every
 * step is idempotent: the plan only holds what differs from 4me.
 */
import { FourMeError, type FourMeClient } from './fourme-client';
import { EXTENSION_CATEGORY, EXTENSION_NAME, EXTENSION_SOURCE, EXTENSION_SOURCE_ID, extensionTitle, type LabelLanguage } from './fourme-setup-extension';
import { SETUP_OPS, type SetupPlan } from './fourme-setup-plan';

export interface SetupResult {
  extensionId: string | null;
  created: boolean;
  updated: boolean;
  productsLinked: number;
}

type Payload = { errors?: Array<{ path?: string[] | null; message: string }> | null };

function refused(what: string, p: Payload | null | undefined): void {
  const errs = p?.errors ?? [];
  if (!p || errs.length) {
    const text = errs.map((e) => (e.path?.length ? `${e.path.join('.')}: ${e.message}` : e.message)).join('; ') || 'no answer';
    throw new FourMeError('graphql', `4me refused to ${what}: ${text}`, { messages: errs.map((e) => e.message) });
  }
}

export async function applySetup(client: FourMeClient, plan: SetupPlan, language: LabelLanguage, signal?: AbortSignal): Promise<SetupResult> {
  const out: SetupResult = { extensionId: plan.extensionId, created: false, updated: false, productsLinked: 0 };
  const common = { title: extensionTitle(language), html: plan.html, css: '', javascript: '', activate: true, disabled: false, source: EXTENSION_SOURCE, sourceID: EXTENSION_SOURCE_ID };
  for (const step of plan.steps) {
    if (step.kind === 'createExtension') {
      const d = await client.graphql<{ uiExtensionCreate: Payload & { uiExtension: { id: string } | null } }>(
        SETUP_OPS.create,
        { input: { ...common, name: EXTENSION_NAME, category: EXTENSION_CATEGORY, description: 'Intune device attributes written by the Intune connector for Node-RED' } },
        { signal, idempotent: false },
      );
      refused('create the UI extension', d.uiExtensionCreate);
      out.extensionId = d.uiExtensionCreate.uiExtension?.id ?? null;
      out.created = true;
    } else if (step.kind === 'updateExtension') {
      const d = await client.graphql<{ uiExtensionUpdate: Payload }>(SETUP_OPS.update, { input: { ...common, id: step.id } }, { signal });
      refused('update the UI extension', d.uiExtensionUpdate);
      out.updated = true;
    } else {
      if (!out.extensionId) throw new FourMeError('graphql', 'The UI extension was not created, so no product was linked');
      const d = await client.graphql<{ productUpdate: Payload }>(SETUP_OPS.linkProduct, { input: { id: step.productId, uiExtensionId: out.extensionId } }, { signal });
      refused(`link product ${step.product}`, d.productUpdate);
      out.productsLinked++;
    }
  }
  return out;
}
