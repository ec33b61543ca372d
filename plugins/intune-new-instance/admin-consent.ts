/**
 * The admin-consent link of an app registration: the page where a tenant's
 * administrator grants the app the Graph permissions it asks for, on the
 * sign-in host of the app's national cloud. Format from Microsoft's "Grant
 * tenant-wide admin consent to an application" (docs/admin-consent.md):
 *   https://<authority host>/<tenant>/adminconsent?client_id=<application id>
 */
import { parseSettings } from '../../nodes/lib/intune/intune-connection';

/** The link for a form of intune-config properties (cloud, tenantId, clientId, custom endpoints); throws the field's problem. */
export function adminConsentUrl(raw: Record<string, unknown>): string {
  // The connection's own rules: a tenant and client id the connection would accept, the cloud's hosts.
  const s = parseSettings(raw);
  return `${s.endpoints.authorityHost}/${encodeURIComponent(s.tenantId)}/adminconsent?client_id=${encodeURIComponent(s.clientId)}`;
}
